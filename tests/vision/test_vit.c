/* The ViT (both variants) against PyTorch goldens of HF CLIPVisionModelWithProjection and
 * Blip2VisionModel semantics (tools/golden/vision.py), preprocessing, hostile files. */
#include "vision_test.h"
#include "om_err.h"
#include "om_gguf.h"
#include "om_vit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* f32 weights: lavapipe's f32 math against PyTorch's f64 reference. */
#define ATOL 1e-4
#define RTOL 1e-4

static void run_vit(const char *model, int max_batch, const char *pix_name, const char *out_name,
                    const char *hid_name, double atol, double rtol)
{
    om_vit *v;
    char err[512];
    om_vit_opts o = { .max_batch = max_batch };
    int rc = om_vit_open(&v, vt_gpu, vt_model(model), &o, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    const om_vit_hparams *hp = om_vit_get_hparams(v);
    om_npy px, want_out, want_hid;
    vt_golden(pix_name, &px);
    vt_golden(out_name, &want_out);
    vt_golden(hid_name, &want_hid);
    int B = (int)px.shape[0];
    assert_int_equal(px.shape[2], hp->image_size);
    assert_int_equal(want_out.n, (int64_t)B * hp->out_dim);
    assert_int_equal(want_hid.n, (int64_t)B * hp->n_tok * hp->n_embd);
    float *out = malloc(want_out.n * sizeof *out), *hid = malloc(want_hid.n * sizeof *hid);
    assert_non_null(out);
    assert_non_null(hid);
    rc = om_vit_encode(v, px.data, B, out, hid);
    if (rc)
        fail_msg("encode: %s", om_vit_last_error(v));
    vt_expect(out_name, out, &want_out, atol, rtol);
    vt_expect(hid_name, hid, &want_hid, atol, rtol);
    free(out);
    free(hid);
    om_npy_free(&px);
    om_npy_free(&want_out);
    om_npy_free(&want_hid);
    om_vit_close(v);
}

static void vit_clip(void **state) { run_vit("clip_vit.gguf", 8, "clip_pixels", "clip_embeds", "clip_hidden", ATOL, RTOL); }
/* One frame per forward: the batch is split and the results are the same. */
static void vit_clip_split(void **state) { run_vit("clip_vit.gguf", 1, "clip_pixels", "clip_embeds", "clip_hidden", ATOL, RTOL); }
/* f16 matrices and conv kernel against a reference run on the same f16-rounded weights. */
static void vit_clip_f16(void **state) { run_vit("clip_vit_f16.gguf", 8, "clip_pixels", "clip_f16_embeds", "clip_f16_hidden", ATOL, RTOL); }
/* q8_0 matrices (llama.cpp's blocks, dequantized in the kernels) against a reference run
 * on the same dequantized weights: only summation order differs. */
static void vit_clip_q8_0(void **state) { run_vit("clip_vit_q8_0.gguf", 8, "clip_pixels", "clip_q8_0_embeds", "clip_q8_0_hidden", ATOL, RTOL); }
/* Head width 15: the fused-attention path (the matmul path needs multiples of 4). */
static void vit_clip_hd15(void **state) { run_vit("clip_vit_hd15.gguf", 8, "clip_pixels", "clip_hd15_embeds", "clip_hd15_hidden", ATOL, RTOL); }
static void vit_eva(void **state) { run_vit("blip2.gguf", 8, "eva_pixels", "eva_pooled", "eva_hidden", ATOL, RTOL); }

static void vit_preprocess(void **state)
{
    om_vit *v;
    char err[512];
    assert_int_equal(om_vit_open(&v, vt_gpu, vt_model("clip_vit.gguf"), NULL, err, sizeof err), 0);
    const int S = om_vit_get_hparams(v)->image_size;
    om_npy rgbf, want;
    vt_golden("pre_rgb", &rgbf);
    vt_golden("pre_pixels", &want);
    uint8_t *rgb = malloc((size_t)S * S * 3);
    float *out = malloc((size_t)3 * S * S * sizeof *out);
    for (int i = 0; i < S * S * 3; i++)
        rgb[i] = (uint8_t)((float *)rgbf.data)[i];
    assert_int_equal(om_vit_preprocess(v, rgb, S, S, S * 3, out), 0);
    vt_expect("pre_pixels (no resize)", out, &want, 1e-5, 1e-5);

    /* A resized constant image stays constant: every value is the normalised colour. */
    const int w = 6 * S, h = 2 * S;   /* scaled to 3S x S, then the middle S x S is kept */
    uint8_t *big = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        big[3 * i] = 200;
        big[3 * i + 1] = 100;
        big[3 * i + 2] = 20;
    }
    assert_int_equal(om_vit_preprocess(v, big, w, h, w * 3, out), 0);
    const float *mean = om_vit_get_hparams(v)->mean, *std = om_vit_get_hparams(v)->std;
    const float col[3] = { 200, 100, 20 };
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) {
            float e = (col[c] / 255.0f - mean[c]) / std[c];
            if (!(out[c * S * S + i] > e - 0.02f && out[c * S * S + i] < e + 0.02f))
                fail_msg("channel %d pixel %d: %g, expected %g", c, i, (double)out[c * S * S + i], (double)e);
        }
    /* Shortest side then centre crop: of dark / bright / dark thirds only the bright one is kept. */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            big[((size_t)y * w + x) * 3] = x < 2 * S || x >= 4 * S ? 0 : 255;
    assert_int_equal(om_vit_preprocess(v, big, w, h, w * 3, out), 0);
    float e = (1.0f - mean[0]) / std[0];
    for (int y = 0; y < S; y++)
        for (int x = 2; x < S - 2; x++)
            if (!(out[y * S + x] > e - 0.05f))
                fail_msg("crop: pixel (%d, %d) is %g, expected the middle band's %g", x, y, (double)out[y * S + x],
                         (double)e);
    assert_int_equal(om_vit_preprocess(v, big, 0, h, w * 3, out), OM_EINVAL);
    assert_int_equal(om_vit_preprocess(v, big, w, h, w, out), OM_EINVAL);
    assert_non_null(strstr(om_vit_last_error(v), "stride"));
    /* A 65:1 strip: refused before scaling (the limit bounds the scaled copy). */
    uint8_t *strip = calloc((size_t)65 * S * S * 3, 1);
    assert_int_equal(om_vit_preprocess(v, strip, 65 * S, S, 65 * S * 3, out), OM_ERANGE);
    assert_non_null(strstr(om_vit_last_error(v), "aspect ratio above 64:1"));
    assert_int_equal(om_vit_preprocess(v, strip, 64 * S, S, 64 * S * 3, out), 0);
    free(strip);
    free(big);
    free(rgb);
    free(out);
    om_npy_free(&rgbf);
    om_npy_free(&want);
    om_vit_close(v);
}

/* A GGUF with clip-vision keys and only the tensors named in `tensors`. */
static void write_partial(const char *path, const char *arch, uint32_t image, uint32_t patch, int with_patch_embd)
{
    om_gguf_writer *w;
    assert_int_equal(om_gguf_writer_open(&w, 32), 0);
    om_gguf_set_str(w, "general.architecture", arch);
    om_gguf_set_str(w, "clip.vision.variant", "clip");
    om_gguf_set_u32(w, "clip.vision.image_size", image);
    om_gguf_set_u32(w, "clip.vision.patch_size", patch);
    om_gguf_set_u32(w, "clip.vision.embedding_length", 8);
    om_gguf_set_u32(w, "clip.vision.feed_forward_length", 16);
    om_gguf_set_u32(w, "clip.vision.block_count", 1);
    om_gguf_set_u32(w, "clip.vision.attention.head_count", 2);
    const float mean[3] = { 0.5f, 0.5f, 0.5f }, std[3] = { 0.25f, 0.25f, 0.25f };
    om_gguf_set_arr(w, "clip.vision.image_mean", OM_GGUF_F32, mean, 3);
    om_gguf_set_arr(w, "clip.vision.image_std", OM_GGUF_F32, std, 3);
    if (with_patch_embd) {
        /* the wrong shape on purpose: 3 output channels instead of 8 */
        float z[4 * 4 * 3 * 3] = { 0 };
        const int64_t ne[4] = { 4, 4, 3, 3 };
        assert_int_equal(om_gguf_add_tensor(w, "v.patch_embd.weight", 0, 4, ne, z), 0);
    }
    assert_int_equal(om_gguf_write_file(w, path), 0);
    om_gguf_writer_free(w);
}

static void expect_refused(const char *path, int code, const char *needle)
{
    om_vit *v = (om_vit *)1;
    char err[512] = "";
    int rc = om_vit_open(&v, vt_gpu, path, NULL, err, sizeof err);
    printf("  refused: %s\n", err);
    assert_int_equal(rc, code);
    assert_null(v);
    if (!strstr(err, needle))
        fail_msg("message '%s' does not name '%s'", err, needle);
}

static void vit_hostile(void **state)
{
    char path[] = "/tmp/om_vit_hostile_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_partial(path, "llama", 16, 4, 0);
    expect_refused(path, OM_EUNSUPPORTED, "llama");
    write_partial(path, "clip-vision", 18, 4, 0);
    expect_refused(path, OM_EFORMAT, "patch size 4 does not divide image size 18");
    write_partial(path, "clip-vision", 16, 4, 0);
    expect_refused(path, OM_EFORMAT, "v.patch_embd.weight is missing");
    write_partial(path, "clip-vision", 16, 4, 1);
    expect_refused(path, OM_EFORMAT, "v.patch_embd.weight has shape");
    unlink(path);
    expect_refused("/nonexistent/vit.gguf", OM_ENOENT, "/nonexistent/vit.gguf");

    om_vit *v;
    char err[512];
    assert_int_equal(om_vit_open(&v, vt_gpu, vt_model("clip_vit.gguf"), NULL, err, sizeof err), 0);
    float px[1] = { 0 };
    assert_int_equal(om_vit_encode(v, px, 0, NULL, NULL), OM_EINVAL);
    assert_int_equal(om_vit_encode(v, NULL, 1, NULL, NULL), OM_EINVAL);
    om_vit_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vit_clip),       cmocka_unit_test(vit_clip_split), cmocka_unit_test(vit_clip_f16),
        cmocka_unit_test(vit_clip_q8_0),  cmocka_unit_test(vit_clip_hd15),  cmocka_unit_test(vit_eva),       cmocka_unit_test(vit_preprocess),
        cmocka_unit_test(vit_hostile),
    };
    return cmocka_run_group_tests(tests, vt_setup, vt_teardown);
}
