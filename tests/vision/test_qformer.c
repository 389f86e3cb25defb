/* The BLIP-2 Q-Former and Video-LLaMA's video Q-Former against PyTorch goldens of HF
 * Blip2QFormerModel semantics (tools/golden/vision.py), chained from the EVA features
 * golden, plus a check that a wrong cross-attention schedule is caught. */
#include "vision_test.h"
#include "om_err.h"
#include "om_qformer.h"
#include "om_videnc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATOL 1e-4
#define RTOL 1e-4

static om_qformer *open_qf_opts(const char *name, const om_qformer_opts *o)
{
    om_qformer *q;
    char err[512];
    if (om_qformer_open(&q, vt_gpu, vt_model(name), o, err, sizeof err))
        fail_msg("%s", err);
    return q;
}

static om_qformer *open_qf(const char *name) { return open_qf_opts(name, NULL); }

static void run_qformer(const char *model, const char *golden, int max_tokens, double atol, double rtol)
{
    om_qformer_opts o = { .max_tokens = max_tokens };
    om_qformer *q = open_qf_opts(model, &o);
    const om_qformer_hparams *hp = om_qformer_get_hparams(q);
    om_npy enc, want;
    vt_golden("eva_hidden", &enc);
    vt_golden(golden, &want);
    int B = (int)enc.shape[0], N = (int)enc.shape[1];
    assert_int_equal(enc.shape[2], hp->encoder_width);
    assert_int_equal(want.n, (int64_t)B * hp->n_query * hp->n_embd);
    float *out = malloc(want.n * sizeof *out);
    if (om_qformer_encode(q, enc.data, B, N, NULL, out))
        fail_msg("encode: %s", om_qformer_last_error(q));
    vt_expect(golden, out, &want, atol, rtol);
    free(out);
    om_npy_free(&enc);
    om_npy_free(&want);
    om_qformer_close(q);
}

static void qformer_blip2(void **state) { run_qformer("blip2_qformer.gguf", "qformer_out", 0, ATOL, RTOL); }
/* Room for one item's 17 tokens per forward: the batch is split, the results are the same. */
static void qformer_split(void **state) { run_qformer("blip2_qformer.gguf", "qformer_out", 20, ATOL, RTOL); }
/* The combined blip2 file carries the same Q-Former. */
static void qformer_in_blip2_file(void **state) { run_qformer("blip2.gguf", "qformer_out", 0, ATOL, RTOL); }
/* f16 matrices against a reference run on the same f16-rounded weights. */
static void qformer_f16(void **state) { run_qformer("blip2_qformer_f16.gguf", "qformer_f16_out", 0, ATOL, RTOL); }
/* q8_0 matrices (f16 where rows are not multiples of 32) against the same dequantized weights. */
static void qformer_q8_0(void **state) { run_qformer("blip2_qformer_q8_0.gguf", "qformer_q8_0_out", 0, ATOL, RTOL); }

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

static void expect_refused(const char *path, int code, const char *needle)
{
    om_qformer *q = (om_qformer *)1;
    char err[512] = "";
    int rc = om_qformer_open(&q, vt_gpu, path, NULL, err, sizeof err);
    printf("  refused: %s\n", err);
    assert_int_equal(rc, code);
    assert_null(q);
    if (!strstr(err, needle))
        fail_msg("message '%s' does not name '%s'", err, needle);
}

/* Files whose metadata disagrees with their tensors. */
static void qformer_hostile_files(void **state)
{
    char path[] = "/tmp/om_qformer_hostile_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const char *src = vt_model("blip2_qformer.gguf");
    char s[1024];
    snprintf(s, sizeof s, "%s", src);
    vt_rewrite_gguf(s, path, "qformer.cross_attention_frequency", 1, NULL);
    expect_refused(path, OM_EFORMAT, "q.blk.1.xattn_q.weight is missing");
    vt_rewrite_gguf(s, path, "qformer.cross_attention_frequency", 3, NULL);
    expect_refused(path, OM_EFORMAT, "q.blk.2.xattn_q.weight is present but layer 2 does not cross-attend");
    vt_rewrite_gguf(s, path, "qformer.attention.head_count", 5, NULL);
    expect_refused(path, OM_EFORMAT, "5 heads do not divide width 64");
    vt_rewrite_gguf(s, path, "qformer.encoder_width", 64, NULL);
    expect_refused(path, OM_EFORMAT, "q.blk.0.xattn_k.weight has shape");
    vt_rewrite_gguf(s, path, "qformer.block_count", 100000, NULL);
    expect_refused(path, OM_EFORMAT, "qformer.block_count = 100000 is outside");
    vt_rewrite_gguf(s, path, NULL, 0, "q.blk.2.ffn_ln.bias");
    expect_refused(path, OM_EFORMAT, "q.blk.2.ffn_ln.bias is missing");
    unlink(path);
}

/* frames -> EVA ViT -> Q-Former -> video Q-Former in one object, against the PyTorch chain. */
static void videnc_chain(void **state)
{
    om_videnc *e;
    char err[512], blip2[1024];
    snprintf(blip2, sizeof blip2, "%s", vt_model("blip2.gguf"));
    if (om_videnc_open(&e, vt_gpu, blip2, vt_model("video_qformer.gguf"), 0, err, sizeof err))
        fail_msg("%s", err);
    const om_qformer_hparams *vq = om_videnc_video_hparams(e);
    om_npy px, want;
    vt_golden("eva_pixels", &px);
    vt_golden("videnc_out", &want);
    assert_int_equal(want.n, (int64_t)vq->n_query * vq->n_embd);
    float *out = malloc(want.n * sizeof *out);
    if (om_videnc_encode_pixels(e, px.data, (int)px.shape[0], out))
        fail_msg("%s", om_videnc_last_error(e));
    vt_expect("videnc_out", out, &want, ATOL, RTOL);

    /* RGB frames of any size go through the model's preprocessing first. */
    const int w[3] = { 40, 28, 64 }, h[3] = { 30, 28, 20 }, stride[3] = { 120, 84, 192 };
    uint8_t *buf[3];
    for (int i = 0; i < 3; i++) {
        buf[i] = malloc((size_t)stride[i] * h[i]);
        for (int j = 0; j < stride[i] * h[i]; j++)
            buf[i][j] = (uint8_t)(j * (i + 3));
    }
    const uint8_t *const rgb[3] = { buf[0], buf[1], buf[2] };
    assert_int_equal(om_videnc_encode_rgb(e, rgb, w, h, stride, 3, out), 0);
    for (int64_t i = 0; i < want.n; i++)
        assert_true(out[i] == out[i]);
    assert_int_equal(om_videnc_encode_rgb(e, rgb, w, h, stride, vq->n_frames + 1, out), OM_EINVAL);
    for (int i = 0; i < 3; i++)
        free(buf[i]);
    free(out);
    om_npy_free(&px);
    om_npy_free(&want);
    om_videnc_close(e);

    /* Models that do not chain are refused. */
    e = (om_videnc *)1;
    assert_int_equal(om_videnc_open(&e, vt_gpu, blip2, blip2, 0, err, sizeof err), OM_EFORMAT);
    assert_null(e);
    printf("  refused: %s\n", err);
    assert_non_null(strstr(err, "video Q-Former reads width 48 but the Q-Former gives 64"));
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
        cmocka_unit_test(qformer_blip2), cmocka_unit_test(qformer_split), cmocka_unit_test(qformer_in_blip2_file),
        cmocka_unit_test(qformer_f16), cmocka_unit_test(qformer_q8_0),
        cmocka_unit_test(qformer_custom_query), cmocka_unit_test(qformer_video), cmocka_unit_test(qformer_hostile),
        cmocka_unit_test(qformer_hostile_files), cmocka_unit_test(videnc_chain),
    };
    return cmocka_run_group_tests(tests, vt_setup, vt_teardown);
}
