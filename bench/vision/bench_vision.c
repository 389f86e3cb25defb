/* bench_vision: ViT images/s at 224x224 (patch 16 and 14, a small and a base width) and
 * the model's GFLOP/s as a ratio to OpenBLAS cblas_sgemm running the same matmul work
 * (every Linear of one forward, M = tokens x batch) on the CPU in the same run.
 *   bench_vision [--batch B] [--iters N] [--layers L] [--type f16|f32] [--md]
 * Weights are random (written to a temporary GGUF); only the speed is measured. */
#include "bench_util.h"
#include "om_err.h"
#include "om_gguf.h"
#include "om_gpu.h"
#include "om_type.h"
#include "om_vit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cfg {
    const char *name;
    int width, heads, ff, patch;
} cfg;

static const cfg CONFIGS[] = {
    { "small/16", 384, 6, 1536, 16 },
    { "small/14", 384, 6, 1536, 14 },
    { "base/16", 768, 12, 3072, 16 },
    { "base/14", 768, 12, 3072, 14 },
};

#define S 224

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(*s >> 40) / (float)(1ull << 24) - 0.5f) * 0.1f;
}

static int add(om_gguf_writer *w, const char *name, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
               uint64_t *seed)
{
    const int64_t ne[4] = { ne0, ne1, ne2, ne3 };
    int64_t n = ne0 * ne1 * ne2 * ne3;
    int nd = ne3 > 1 ? 4 : ne1 > 1 ? 2 : 1;
    float *f = malloc((size_t)n * sizeof *f);
    void *q = malloc((size_t)om_row_bytes(type, ne0) * (n / ne0));
    int rc = OM_ENOMEM;
    if (f && q) {
        for (int64_t i = 0; i < n; i++)
            f[i] = frand(seed);
        rc = om_quantize(type, f, q, n);
        if (!rc)
            rc = om_gguf_add_tensor(w, name, type, nd, ne, q);
    }
    free(f);
    free(q);
    return rc;
}

/* A clip-variant ViT with random weights, in `type` matrices. */
static int write_model(const char *path, const cfg *c, int layers, int type)
{
    om_gguf_writer *w;
    int rc = om_gguf_writer_open(&w, 32);
    if (rc)
        return rc;
    const int64_t D = c->width, F = c->ff, P = c->patch, T = (S / P) * (S / P) + 1;
    const float mean[3] = { 0.48f, 0.46f, 0.41f }, std[3] = { 0.27f, 0.26f, 0.28f };
    uint64_t seed = 1;
    om_gguf_set_str(w, "general.architecture", "clip-vision");
    om_gguf_set_str(w, "clip.vision.variant", "clip");
    om_gguf_set_u32(w, "clip.vision.image_size", S);
    om_gguf_set_u32(w, "clip.vision.patch_size", (uint32_t)P);
    om_gguf_set_u32(w, "clip.vision.embedding_length", (uint32_t)D);
    om_gguf_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)F);
    om_gguf_set_u32(w, "clip.vision.block_count", (uint32_t)layers);
    om_gguf_set_u32(w, "clip.vision.attention.head_count", (uint32_t)c->heads);
    om_gguf_set_arr(w, "clip.vision.image_mean", OM_GGUF_F32, mean, 3);
    om_gguf_set_arr(w, "clip.vision.image_std", OM_GGUF_F32, std, 3);
    int conv_type = type == OM_TYPE_F32 ? OM_TYPE_F32 : OM_TYPE_F16;
    rc = add(w, "v.patch_embd.weight", conv_type, P, P, 3, D, &seed);
    rc = rc ? rc : add(w, "v.class_embd", OM_TYPE_F32, D, 1, 1, 1, &seed);
    rc = rc ? rc : add(w, "v.position_embd.weight", OM_TYPE_F32, D, T, 1, 1, &seed);
    static const char *vec[] = { "v.pre_ln.weight", "v.pre_ln.bias", "v.post_ln.weight", "v.post_ln.bias" };
    for (int i = 0; i < 4 && !rc; i++)
        rc = add(w, vec[i], OM_TYPE_F32, D, 1, 1, 1, &seed);
    for (int l = 0; l < layers && !rc; l++) {
        char n[64];
        static const char *mat[] = { "attn_q", "attn_k", "attn_v", "attn_out" };
        static const char *ln[] = { "ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias" };
        for (int j = 0; j < 4 && !rc; j++) {
            snprintf(n, sizeof n, "v.blk.%d.%s.weight", l, mat[j]);
            rc = add(w, n, type, D, D, 1, 1, &seed);
            snprintf(n, sizeof n, "v.blk.%d.%s.bias", l, mat[j]);
            rc = rc ? rc : add(w, n, OM_TYPE_F32, D, 1, 1, 1, &seed);
            snprintf(n, sizeof n, "v.blk.%d.%s", l, ln[j]);
            rc = rc ? rc : add(w, n, OM_TYPE_F32, D, 1, 1, 1, &seed);
        }
        snprintf(n, sizeof n, "v.blk.%d.ffn_up.weight", l);
        rc = rc ? rc : add(w, n, type, D, F, 1, 1, &seed);
        snprintf(n, sizeof n, "v.blk.%d.ffn_up.bias", l);
        rc = rc ? rc : add(w, n, OM_TYPE_F32, F, 1, 1, 1, &seed);
        snprintf(n, sizeof n, "v.blk.%d.ffn_down.weight", l);
        rc = rc ? rc : add(w, n, type, F, D, 1, 1, &seed);
        snprintf(n, sizeof n, "v.blk.%d.ffn_down.bias", l);
        rc = rc ? rc : add(w, n, OM_TYPE_F32, D, 1, 1, 1, &seed);
    }
    if (!rc)
        rc = om_gguf_write_file(w, path);
    om_gguf_writer_free(w);
    return rc;
}

/* FLOPs of one image: the Linears, attention (QKᵀ and PV) and the patch conv. */
static double vit_flops(const cfg *c, int layers, double *linear)
{
    const double D = c->width, F = c->ff, T = (S / c->patch) * (S / c->patch) + 1;
    *linear = layers * 2.0 * T * (4 * D * D + 2 * D * F);
    return *linear + layers * 4.0 * T * T * D + 2.0 * (T - 1) * 3 * c->patch * c->patch * D;
}

/* OpenBLAS GFLOP/s on every Linear of one forward of B images (M = T*B). */
static double sgemm_gflops(const cfg *c, int layers, int B)
{
    const int D = c->width, F = c->ff, M = ((S / c->patch) * (S / c->patch) + 1) * B;
    float *x = calloc((size_t)M * F, sizeof *x), *w = calloc((size_t)F * D, sizeof *w);
    float *y = calloc((size_t)M * F, sizeof *y);
    if (!x || !w || !y) {
        free(x);
        free(w);
        free(y);
        return 0;
    }
    const int shapes[6][2] = { { D, D }, { D, D }, { D, D }, { D, D }, { D, F }, { F, D } };   /* K, N */
    double best = 1e30;
    for (int rep = 0; rep < 2; rep++) {
        double t = om_bench_now_s();
        for (int l = 0; l < layers; l++)
            for (int i = 0; i < 6; i++)
                om_bench_sgemm_nt(M, shapes[i][1], shapes[i][0], x, w, y);
        t = om_bench_now_s() - t;
        best = t < best ? t : best;
    }
    free(x);
    free(w);
    free(y);
    return layers * 2.0 * M * (4.0 * D * D + 2.0 * D * F) / best / 1e9;
}

int main(int argc, char **argv)
{
    int B = 4, iters = 2, layers = 12, md = 0, type = OM_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc)
            type = !strcmp(argv[++i], "f32") ? OM_TYPE_F32 : OM_TYPE_F16;
        else if (!strcmp(argv[i], "--md"))
            md = 1;
        else {
            fprintf(stderr, "usage: bench_vision [--batch B] [--iters N] [--layers L] [--type f16|f32] [--md]\n");
            return 2;
        }
    }
    if (B < 1 || B > 256 || iters < 1 || layers < 1 || layers > 64) {
        fprintf(stderr, "bench_vision: batch 1..256, iters >= 1, layers 1..64\n");
        return 2;
    }
    char err[512];
    om_gpu *gpu;
    if (om_gpu_open(&gpu, NULL, err, sizeof err)) {
        fprintf(stderr, "bench_vision: %s\n", err);
        return 1;
    }
    printf("device: %s; %d layers, batch %d, %s matrices\n", om_gpu_get_info(gpu)->name, layers, B,
           type == OM_TYPE_F32 ? "f32" : "f16");
    printf(md ? "| model | tokens | GFLOP/image | images/s | GFLOP/s | sgemm GFLOP/s | ratio |\n|---|---|---|---|---|---|---|\n"
              : "%-9s %6s %11s %9s %9s %13s %7s\n", "model", "tokens", "GFLOP/img", "images/s", "GFLOP/s",
           "sgemm GFLOP/s", "ratio");
    char path[] = "/tmp/bench_vision_XXXXXX";
    int fd = mkstemp(path), status = 0;
    if (fd < 0) {
        perror("bench_vision: mkstemp");
        om_gpu_close(gpu);
        return 1;
    }
    close(fd);
    size_t px = (size_t)B * 3 * S * S;
    float *pix = calloc(px, sizeof *pix), *out = malloc((size_t)B * 1024 * sizeof *out);
    for (size_t i = 0; pix && i < px; i++)
        pix[i] = (float)((i * 7919) % 255) / 128.0f - 1.0f;
    for (size_t k = 0; pix && out && k < sizeof CONFIGS / sizeof CONFIGS[0]; k++) {
        const cfg *c = &CONFIGS[k];
        om_vit *v = NULL;
        om_vit_opts o = { .max_batch = B };
        int rc = write_model(path, c, layers, type);
        if (!rc)
            rc = om_vit_open(&v, gpu, path, &o, err, sizeof err);
        if (rc || (rc = om_vit_encode(v, pix, B, out, NULL))) {
            fprintf(stderr, "bench_vision: %s: %s\n", c->name, v ? om_vit_last_error(v) : rc ? err : "");
            om_vit_close(v);
            status = 1;
            break;
        }
        double t = om_bench_now_s();
        for (int i = 0; i < iters && !rc; i++)
            rc = om_vit_encode(v, pix, B, out, NULL);
        t = om_bench_now_s() - t;
        om_vit_close(v);
        double lin, fl = vit_flops(c, layers, &lin), ips = B * iters / t, ref = sgemm_gflops(c, layers, B);
        int tok = (S / c->patch) * (S / c->patch) + 1;
        printf(md ? "| %s | %d | %.2f | %.2f | %.1f | %.1f | %.2f |\n" : "%-9s %6d %11.2f %9.2f %9.1f %13.1f %7.2f\n",
               c->name, tok, fl / 1e9, ips, ips * fl / 1e9, ref, ips * fl / 1e9 / ref);
    }
    unlink(path);
    free(pix);
    free(out);
    om_gpu_close(gpu);
    return status;
}
