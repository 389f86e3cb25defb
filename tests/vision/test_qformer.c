/* The BLIP-2 Q-Former and Video-LLaMA's video Q-Former against PyTorch goldens of HF
 * Blip2QFormerModel semantics (tools/golden/vision.py), chained from the EVA features
 * golden, plus a check that a wrong cross-attention schedule is caught. */
#include "vision_test.h"
#include "om_err.h"
#include "om_qformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATOL 1e-4
#define RTOL 1e-4

static om_qformer *open_qf(const char *name)
{
    om_qformer *q;
    char err[512];
    if (om_qformer_open(&q, vt_gpu, vt_model(name), NULL, err, sizeof err))
        fail_msg("%s", err);
    return q;
}

static void run_qformer(const char *model, double atol, double rtol)
{
    om_qformer *q = open_qf(model);
    const om_qformer_hparams *hp = om_qformer_get_hparams(q);
    om_npy enc, want;
    vt_golden("eva_hidden", &enc);
    vt_golden("qformer_out", &want);
    int B = (int)enc.shape[0], N = (int)enc.shape[1];
    assert_int_equal(enc.shape[2], hp->encoder_width);
    assert_int_equal(want.n, (int64_t)B * hp->n_query * hp->n_embd);
    float *out = malloc(want.n * sizeof *out);
    if (om_qformer_encode(q, enc.data, B, N, NULL, out))
        fail_msg("encode: %s", om_qformer_last_error(q));
    vt_expect("qformer_out", out, &want, atol, rtol);
    free(out);
    om_npy_free(&enc);
    om_npy_free(&want);
    om_qformer_close(q);
}

static void qformer_blip2(void **state) { run_qformer("blip2_qformer.gguf", ATOL, RTOL); }
/* The combined blip2 file carries the same Q-Former. */
static void qformer_in_blip2_file(void **state) { run_qformer("blip2.gguf", ATOL, RTOL); }
static void qformer_f16(void **state) { run_qformer("blip2_qformer_f16.gguf", 2e-2, 2e-2); }

/* Passing the learned queries explicitly gives the same result; other queries do not. */
static void qformer_custom_query(void **state)
{
    om_qformer *q = open_qf("blip2_qformer.gguf");
    const om_qformer_hparams *hp = om_qformer_get_hparams(q);
    om_npy enc, want;
    vt_golden("eva_hidden", &enc);
    vt_golden("qformer_out", &want);
    int N = (int)enc.shape[1];
    size_t nq = (size_t)hp->n_query * hp->n_embd;
    float *query = calloc(nq, sizeof *query), *out = malloc(nq * sizeof *out);
    for (size_t i = 0; i < nq; i++)
        query[i] = (float)((i * 37) % 19) / 9.0f - 1.0f;
    assert_int_equal(om_qformer_encode(q, enc.data, 1, N, query, out), 0);
    double d = vt_maxdiff(out, want.data, (int64_t)nq);
    printf("  other queries move the output by %.3g\n", d);
    assert_true(d > 0.1);
    free(query);
    free(out);
    om_npy_free(&enc);
    om_npy_free(&want);
    om_qformer_close(q);
}

static void qformer_video(void **state)
{
    om_qformer *q = open_qf("video_qformer.gguf");
    const om_qformer_hparams *hp = om_qformer_get_hparams(q);
    assert_int_equal(hp->cross_freq, 1);
    om_npy frames, want;
    vt_golden("vqformer_frames", &frames);
    vt_golden("vqformer_out", &want);
    int T = (int)frames.shape[0], N = (int)frames.shape[1];
    float *out = malloc(want.n * sizeof *out);
    if (om_qformer_encode_video(q, frames.data, T, N, out))
        fail_msg("video: %s", om_qformer_last_error(q));
    vt_expect("vqformer_out", out, &want, ATOL, RTOL);
    /* Without frame positions (plain encode over the same tokens) the golden is missed. */
    assert_int_equal(om_qformer_encode(q, frames.data, 1, T * N, NULL, out), 0);
    double d = vt_maxdiff(out, want.data, want.n);
    printf("  without frame positions: max |diff| %.3g\n", d);
    assert_true(d > 0.1);
    assert_int_equal(om_qformer_encode_video(q, frames.data, hp->n_frames + 1, N, out), OM_EINVAL);
    assert_non_null(strstr(om_qformer_last_error(q), "frames"));
    free(out);
    om_npy_free(&frames);
    om_npy_free(&want);
    om_qformer_close(q);
}

static void qformer_hostile(void **state)
{
    om_qformer *q = (om_qformer *)1;
    char err[512];
    assert_int_equal(om_qformer_open(&q, vt_gpu, vt_model("clip_vit.gguf"), NULL, err, sizeof err), OM_EUNSUPPORTED);
    assert_null(q);
    assert_non_null(strstr(err, "clip-vision"));
    q = open_qf("blip2_qformer.gguf");
    float x[64] = { 0 }, out[1];
    assert_int_equal(om_qformer_encode(q, x, 1, 0, NULL, out), OM_EINVAL);
    assert_int_equal(om_qformer_encode(q, x, 1, 5000, NULL, out), OM_EINVAL);
    assert_int_equal(om_qformer_encode_video(q, x, 1, 1, out), OM_EUNSUPPORTED);
    om_qformer_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(qformer_blip2), cmocka_unit_test(qformer_in_blip2_file), cmocka_unit_test(qformer_f16),
        cmocka_unit_test(qformer_custom_query), cmocka_unit_test(qformer_video), cmocka_unit_test(qformer_hostile),
    };
    return cmocka_run_group_tests(tests, vt_setup, vt_teardown);
}
