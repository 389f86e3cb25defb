/* bench_ops: the weight ops that set the LLM's speed, against CPU references measured
 * in the same run on the same cores.
 *   matmul f32 (y = x·Wᵀ, M = N = K = n): GFLOP/s vs OpenBLAS cblas_sgemm on the same
 *     problem (all cores), ratio.
 *   matvec f16 / q8_0 / q4_0 (M = 1, the decode step): GB/s of weight bytes read vs
 *     memcpy of a buffer larger than the caches (GB/s of bytes read), ratio. Also the
 *     "load ceiling": shaders/matvec_probe.comp loading the same bytes in matvec's
 *     pattern with no math, which bounds any matvec on this device.
 * Times are the wall time of one submit of one dispatch (om_cmd_begin .. om_cmd_submit,
 * which waits), best of many: the shortest sample is the one least disturbed by other
 * processes on a shared machine. GPU timestamps are not used: wall time is what a
 * caller sees and the references are wall times too.
 * Usage: bench_ops [max_n]   (matmul sizes 256.. up to max_n, default 2048) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "om_err.h"
#include "om_gpu.h"
#include "om_ops.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill_random(float *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((int32_t)seed >> 8) / (float)(1 << 23);
    }
}

/* memcpy of 256 MiB, best of 10: bytes read (= bytes written) per second. */
static double memcpy_gbs(void)
{
    const size_t n = (size_t)256 << 20;
    char *a = malloc(n), *b = malloc(n);
    double best = 1e30;
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    for (int r = 0; r < 10; r++) {
        double t0 = now_s();
        memcpy(b, a, n);
        double t = now_s() - t0;
        if (t < best)
            best = t;
        a[r] = b[n - 1 - r];
    }
    free(a);
    free(b);
    return n / best / 1e9;
}

static double sgemm_gflops(int n, const float *x, const float *w, float *y, int tries)
{
    double best = 1e30;
    for (int r = 0; r < tries; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, x, n, w, n, 0.0f, y, n);
        double t = now_s() - t0;
        if (t < best)
            best = t;
    }
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* Seconds per y = x·Wᵀ on the device: best of `tries` submits of one dispatch. */
static int time_matmul(om_gpu *gpu, const om_tensor *y, const om_tensor *x, const om_tensor *w,
                       int tries, double *sec)
{
    *sec = 1e30;
    for (int t = 0; t < tries + 1; t++) {
        om_cmd *c = NULL;
        int err = om_cmd_begin(gpu, &c);
        if (!err && (err = om_op_matmul(c, y, x, w)) < 0)
            om_cmd_abort(c);
        if (err)
            return err;
        double t0 = now_s();
        if ((err = om_cmd_submit(c)) < 0)
            return err;
        double dt = now_s() - t0;
        if (t > 0 && dt < *sec)                /* the first submit also builds the pipeline */
            *sec = dt;
    }
    return 0;
}

/* A weight tensor of `type` {K, N} filled from random floats, in a buffer padded to
 * 256 bytes (the quantized kernels read whole 8-byte words). */
static int make_weights(om_gpu *gpu, int type, int64_t K, int64_t N, om_buf **buf, om_tensor *t)
{
    const uint64_t bytes = om_row_bytes(type, K) * (uint64_t)N;
    const uint64_t size = (bytes + 255) & ~(uint64_t)255;
    float *f = malloc((size_t)(K * N) * sizeof(float));
    void *q = calloc(1, size);
    int err = f && q ? 0 : OM_ENOMEM;
    if (!err) {
        fill_random(f, (size_t)(K * N), (uint32_t)(K * 31 + N));
        err = om_quantize(type, f, q, K * N);
    }
    if (!err)
        err = om_buf_create(gpu, size, OM_BUF_DEVICE, buf);
    if (!err && (err = om_buf_write(*buf, 0, q, size)) < 0)
        om_buf_destroy(*buf);
    free(f);
    free(q);
    if (!err)
        *t = om_tensor_make(*buf, 0, type, K, N, 1, 1);
    return err;
}

static int bench_matmul(om_gpu *gpu, int n)
{
    const size_t nn = (size_t)n * n;
    float *x = malloc(nn * 4), *w = malloc(nn * 4), *y = malloc(nn * 4);
    om_buf *bx = NULL, *bw = NULL, *by = NULL;
    int err = x && w && y ? 0 : OM_ENOMEM;
    if (!err) {
        fill_random(x, nn, 1);
        fill_random(w, nn, 2);
        err = om_buf_create(gpu, nn * 4, OM_BUF_DEVICE, &bx);
    }
    if (!err)
        err = om_buf_create(gpu, nn * 4, OM_BUF_DEVICE, &bw);
    if (!err)
        err = om_buf_create(gpu, nn * 4, OM_BUF_DEVICE, &by);
    if (!err)
        err = om_buf_write(bx, 0, x, nn * 4);
    if (!err)
        err = om_buf_write(bw, 0, w, nn * 4);
    double sec = 0;
    if (!err) {
        om_tensor tx = om_tensor_make(bx, 0, OM_TYPE_F32, n, n, 1, 1);
        om_tensor tw = om_tensor_make(bw, 0, OM_TYPE_F32, n, n, 1, 1);
        om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, n, n, 1, 1);
        err = time_matmul(gpu, &ty, &tx, &tw, n <= 512 ? 20 : n <= 1024 ? 5 : 2, &sec);
    }
    if (!err) {
        const double ref = sgemm_gflops(n, x, w, y, n <= 1024 ? 10 : 3);
        const double g = 2.0 * n * n * (double)n / sec / 1e9;
        char size[32];
        snprintf(size, sizeof size, "%dx%dx%d", n, n, n);
        printf("| matmul f32 | %-15s | %9.3f | %7.1f GFLOP/s | sgemm %7.1f GFLOP/s | %5.2f |\n",
               size, sec * 1e3, g, ref, g / ref);
    }
    om_buf_destroy(bx);
    om_buf_destroy(bw);
    om_buf_destroy(by);
    free(x);
    free(w);
    free(y);
    return err;
}

/* Push constants of matvec_probe.comp. */
struct probe_push {
    uint64_t w, y;
    uint32_t row_words, N;
};

/* Seconds for matvec_probe to load every word of w (rows padded to 8 bytes). */
static int time_probe(om_gpu *gpu, const om_tensor *w, const om_tensor *y, int tries, double *sec)
{
    const om_gpu_info *info = om_gpu_get_info(gpu);
    const uint32_t spec[2] = { info->subgroup_size, 16 };
    const struct probe_push pc = { om_buf_addr(w->buf) + w->off, om_buf_addr(y->buf) + y->off,
                                   (uint32_t)(om_row_bytes(w->type, w->ne[0]) / 8),
                                   (uint32_t)w->ne[1] };
    om_pipe *p;
    int err = om_gpu_pipeline(gpu, "matvec_probe", spec, 2, sizeof(pc), &p);
    *sec = 1e30;
    for (int t = 0; t < tries + 1 && !err; t++) {
        om_cmd *c = NULL;
        if ((err = om_cmd_begin(gpu, &c)) < 0)
            break;
        if ((err = om_cmd_dispatch(c, p, &pc, sizeof(pc), (pc.N + 15) / 16, 1, 1, &w->buf, 1,
                                   &y->buf, 1)) < 0) {
            om_cmd_abort(c);
            break;
        }
        double t0 = now_s();
        if ((err = om_cmd_submit(c)) < 0)
            break;
        double dt = now_s() - t0;
        if (t > 0 && dt < *sec)
            *sec = dt;
    }
    return err;
}

static int bench_matvec(om_gpu *gpu, int type, int64_t K, int64_t N, double ref)
{
    om_buf *bw = NULL, *bx = NULL, *by = NULL;
    om_tensor tw;
    int err = make_weights(gpu, type, K, N, &bw, &tw);
    if (err)
        return err;
    float *x = malloc((size_t)K * 4);
    err = x ? 0 : OM_ENOMEM;
    if (!err) {
        fill_random(x, (size_t)K, 3);
        err = om_buf_create(gpu, (uint64_t)K * 4, OM_BUF_DEVICE, &bx);
    }
    if (!err)
        err = om_buf_create(gpu, (uint64_t)N * 4, OM_BUF_DEVICE, &by);
    if (!err)
        err = om_buf_write(bx, 0, x, (uint64_t)K * 4);
    double sec = 0, probe = 0;
    if (!err) {
        om_tensor tx = om_tensor_make(bx, 0, OM_TYPE_F32, K, 1, 1, 1);
        om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, N, 1, 1, 1);
        err = time_matmul(gpu, &ty, &tx, &tw, 30, &sec);
        if (!err)
            err = time_probe(gpu, &tw, &ty, 30, &probe);
    }
    if (!err) {
        const double bytes = om_row_bytes(type, K) * (double)N;
        char size[32];
        snprintf(size, sizeof size, "%lldx%lld", (long long)K, (long long)N);
        printf("| matvec %-4s | %-15s | %9.3f | %7.2f GB/s    | memcpy %6.2f GB/s   | %5.2f |\n",
               om_type_name(type), size, sec * 1e3, bytes / sec / 1e9, ref, bytes / sec / 1e9 / ref);
        printf("| load ceiling | %-15s | %9.3f | %7.2f GB/s    | memcpy %6.2f GB/s   | %5.2f |\n",
               size, probe * 1e3, bytes / probe / 1e9, ref, bytes / probe / 1e9 / ref);
    }
    om_buf_destroy(bw);
    om_buf_destroy(bx);
    om_buf_destroy(by);
    free(x);
    return err;
}

int main(int argc, char **argv)
{
    const int max_n = argc > 1 ? atoi(argv[1]) : 2048;
    char msg[512];
    om_gpu *gpu;
    om_gpu_opts o = { .quiet = 1 };
    if (om_gpu_open(&gpu, &o, msg, sizeof msg) < 0) {
        fprintf(stderr, "bench_ops: %s\n", msg);
        return 1;
    }
    const om_gpu_info *info = om_gpu_get_info(gpu);
    printf("bench_ops on %s (subgroup %u); OpenBLAS %d threads\n\n", info->name,
           info->subgroup_size, openblas_get_num_threads());
    printf("| op | size (K x N [x M]) | ms / op | rate | reference (same run) | ratio |\n");
    printf("|---|---|---|---|---|---|\n");
    int err = 0;
    for (int n = 256; n <= max_n && !err; n *= 2)
        err = bench_matmul(gpu, n);
    const double ref = memcpy_gbs();
    static const int types[3] = { OM_TYPE_F16, OM_TYPE_Q8_0, OM_TYPE_Q4_0 };
    for (int i = 0; i < 3 && !err; i++) {
        err = bench_matvec(gpu, types[i], 4096, 4096, ref);
        if (!err)
            err = bench_matvec(gpu, types[i], 2048, 5632, ref);
    }
    if (err)
        fprintf(stderr, "bench_ops: %s (%s)\n", om_strerror(err), om_gpu_last_error(gpu));
    om_gpu_close(gpu);
    return err ? 1 : 0;
}
