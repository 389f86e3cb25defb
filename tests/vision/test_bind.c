/* ImageBind's vision head and the LLM input projection against PyTorch goldens, and the
 * BLIP-2 language projection applied to the Q-Former golden. */
#include "vision_test.h"
#include "om_bind.h"
#include "om_err.h"
#include "om_vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATOL 1e-5
#define RTOL 1e-4

static om_bind *open_bind(const char *name)
{
    om_bind *b;
    char err[512];
    if (om_bind_open(&b, vt_gpu, vt_model(name), 0, err, sizeof err))
        fail_msg("%s", err);
    return b;
}

static void bind_vision_head(void **state)
{
    om_bind *b = open_bind("bind_vision.gguf");
    const om_bind_hparams *hp = om_bind_get_hparams(b);
    assert_true(hp->has_head && hp->has_proj);
    assert_string_equal(hp->modality, "vision");
    om_npy x, want_e, want_p;
    vt_golden("bind_in", &x);
    vt_golden("bind_embed", &want_e);
    vt_golden("bind_proj", &want_p);
    int B = (int)x.shape[0], T = (int)x.shape[1];
    float *e = malloc(want_e.n * sizeof *e), *p = malloc(want_p.n * sizeof *p);
    if (om_bind_head(b, x.data, B, T, e))
        fail_msg("head: %s", om_bind_last_error(b));
    vt_expect("bind_embed", e, &want_e, ATOL, RTOL);
    for (int i = 0; i < B; i++) {
        double n2 = 0;
        for (int j = 0; j < hp->joint_dim; j++)
            n2 += (double)e[i * hp->joint_dim + j] * e[i * hp->joint_dim + j];
        assert_true(fabs(sqrt(n2) - 1.0) < 1e-5);
    }
    if (om_bind_project(b, e, B, p))
        fail_msg("project: %s", om_bind_last_error(b));
    vt_expect("bind_proj", p, &want_p, ATOL, RTOL);
    assert_int_equal(om_bind_head(b, x.data, B, 0, e), OM_EINVAL);
    assert_int_equal(om_bind_project(b, e, 0, p), OM_EINVAL);
    free(e);
    free(p);
    om_npy_free(&x);
    om_npy_free(&want_e);
    om_npy_free(&want_p);
    om_bind_close(b);
}

static void bind_language_projection(void **state)
{
    om_bind *b = open_bind("blip2.gguf");
    const om_bind_hparams *hp = om_bind_get_hparams(b);
    assert_false(hp->has_head);
    om_npy q, want;
    vt_golden("qformer_out", &q);
    vt_golden("qformer_proj", &want);
    int n = (int)(q.n / hp->proj_in);
    float *p = malloc(want.n * sizeof *p), dummy[4] = { 0 };
    if (om_bind_project(b, q.data, n, p))
        fail_msg("project: %s", om_bind_last_error(b));
    vt_expect("qformer_proj", p, &want, 1e-4, 1e-4);
    assert_int_equal(om_bind_head(b, dummy, 1, 1, p), OM_EUNSUPPORTED);
    free(p);
    om_npy_free(&q);
    om_npy_free(&want);
    om_bind_close(b);
}

static void bind_video_projection(void **state)
{
    om_bind *b = open_bind("video_qformer.gguf");
    om_npy q, want;
    vt_golden("vqformer_out", &q);
    vt_golden("vqformer_proj", &want);
    float *p = malloc(want.n * sizeof *p);
    assert_int_equal(om_bind_project(b, q.data, (int)q.shape[0], p), 0);
    vt_expect("vqformer_proj", p, &want, 1e-4, 1e-4);
    free(p);
    om_npy_free(&q);
    om_npy_free(&want);
    om_bind_close(b);
}

/* ImageBind's vision tower (converted from its own tensor names) through the ViT, then
 * the head on the ViT's hidden state: the joint embedding of PyTorch's ImageBind. */
static void bind_imagebind_vision(void **state)
{
    om_vit *v;
    char err[512];
    if (om_vit_open(&v, vt_gpu, vt_model("imagebind_vision.gguf"), NULL, err, sizeof err))
        fail_msg("%s", err);
    om_bind *b = open_bind("imagebind_vision.gguf");
    const om_vit_hparams *hp = om_vit_get_hparams(v);
    om_npy px, want_p, want_h, want_e;
    vt_golden("clip_pixels", &px);
    vt_golden("ib_proj", &want_p);
    vt_golden("ib_hidden", &want_h);
    vt_golden("ib_embed", &want_e);
    int B = (int)px.shape[0];
    float *p = malloc(want_p.n * sizeof *p), *h = malloc(want_h.n * sizeof *h), *e = malloc(want_e.n * sizeof *e);
    if (om_vit_encode(v, px.data, B, p, h))
        fail_msg("encode: %s", om_vit_last_error(v));
    vt_expect("ib_proj", p, &want_p, 1e-4, 1e-4);
    vt_expect("ib_hidden", h, &want_h, 1e-4, 1e-4);
    if (om_bind_head(b, h, B, hp->n_tok, e))
        fail_msg("head: %s", om_bind_last_error(b));
    vt_expect("ib_embed", e, &want_e, ATOL, RTOL);
    free(p);
    free(h);
    free(e);
    om_npy_free(&px);
    om_npy_free(&want_p);
    om_npy_free(&want_h);
    om_npy_free(&want_e);
    om_bind_close(b);
    om_vit_close(v);
}

static void bind_hostile(void **state)
{
    om_bind *b = (om_bind *)1;
    char err[512];
    assert_int_equal(om_bind_open(&b, vt_gpu, vt_model("clip_vit.gguf"), 0, err, sizeof err), OM_EFORMAT);
    assert_null(b);
    assert_non_null(strstr(err, "bind.llm_proj.weight"));

    char path[] = "/tmp/om_bind_hostile_XXXXXX", src[1024];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    snprintf(src, sizeof src, "%s", vt_model("bind_vision.gguf"));
    vt_rewrite_gguf(src, path, NULL, 0, "bind.llm_proj.bias");
    assert_int_equal(om_bind_open(&b, vt_gpu, path, 0, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, "bind.llm_proj.bias is missing"));
    vt_rewrite_gguf(src, path, "bind.joint_dim", 31, NULL);
    assert_int_equal(om_bind_open(&b, vt_gpu, path, 0, err, sizeof err), OM_EFORMAT);
    printf("  refused: %s\n", err);
    assert_non_null(strstr(err, "bind.head.proj.weight has shape"));
    vt_rewrite_gguf(src, path, "bind.head.token", 70000, NULL);
    assert_int_equal(om_bind_open(&b, vt_gpu, path, 0, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, "bind.head.token = 70000 is outside"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bind_vision_head), cmocka_unit_test(bind_language_projection),
        cmocka_unit_test(bind_video_projection), cmocka_unit_test(bind_imagebind_vision),
        cmocka_unit_test(bind_hostile),
    };
    return cmocka_run_group_tests(tests, vt_setup, vt_teardown);
}
