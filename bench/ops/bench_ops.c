/* bench_ops: the weight ops that set the LLM's speed, against CPU references measured
 * in the same run on the same cores.
 *   matmul f32 (y = x·Wᵀ, M = N = K = n): GFLOP/s vs OpenBLAS cblas_sgemm on the same
 *     problem (all cores), ratio.
 *   matvec f32 / f16 / q8_0 / q4_0 (M = 1, the decode step): GB/s of weight bytes read
 *     vs memcpy of a buffer larger than the caches (bytes copied per second, one thread),
 *     ratio, once per weight access style (om_gpu.h): "bda" (buffer device addresses)
 *     and "texel" (texel-buffer views), each on its own om_gpu opened with
 *     OMNID_WEIGHT_ACCESS set, in the same rounds. Also the "load ceiling":
 *     shaders/matvec_probe.comp loading the same bytes in matvec's BDA pattern with no
 *     math, which bounds any BDA matvec on this device.
 * Every sample is the wall time of one call (for the device: om_cmd_begin .. submit,
 * which waits), and each row keeps the best of many rounds that alternate the op and
 * its reference, so both see the same machine: the shortest sample is the one least
 * disturbed by other processes. "cores" is the process CPU time over the wall time of
 * the kept sample: 2.0 means both cores were ours. GPU timestamps are not used: wall
 * time is what a caller sees and the references are wall times too.
 * Usage: bench_ops [max_n [K]]   (matmul sizes 256.. up to max_n, default 2048; with K,
 *   only the matvec rows of that row length: 4096, 2048 or 768) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "om_err.h"
#include "om_gpu.h"
#include "om_ops.h"

#define MEMCPY_BYTES ((size_t)128 << 20)   /* well past any L3 of the build machines */

typedef struct sample {
    double sec, cpu;                       /* wall and process CPU seconds */
} sample;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (llvmpipe's and OpenBLAS's threads included). */
static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec +
           u.ru_stime.tv_usec * 1e-6;
}

static void keep(sample *best, double t0, double c0)
{
    const double sec = now_s() - t0, cpu = cpu_s() - c0;
    if (sec < best->sec) {
        best->sec = sec;
        best->cpu = cpu;
    }
}

static void fill_random(float *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((int32_t)seed >> 8) / (float)(1 << 23);
    }
}

/* One submit of one dispatch, timed into best (NULL: untimed warm-up, which also builds
 * the pipeline). */
static int run_matmul(om_gpu *gpu, const om_tensor *y, const om_tensor *x, const om_tensor *w,
                      sample *best)
{
    om_cmd *c = NULL;
    int err = om_cmd_begin(gpu, &c);
    if (!err && (err = om_op_matmul(c, y, x, w)) < 0)
        om_cmd_abort(c);
    if (err)
        return err;
    const double t0 = now_s(), c0 = cpu_s();
    if ((err = om_cmd_submit(c)) < 0)
        return err;
    if (best)
        keep(best, t0, c0);
    return 0;
}

/* Push constants of matvec_probe.comp. */
struct probe_push {
    uint64_t w, y;
    uint32_t row_words, N;
};

static int run_probe(om_gpu *gpu, om_pipe *p, const struct probe_push *pc, om_buf *w, om_buf *y,
                     sample *best)
{
    om_cmd *c = NULL;
    int err = om_cmd_begin(gpu, &c);
    if (!err && (err = om_cmd_dispatch(c, p, pc, sizeof(*pc), (pc->N + 15) / 16, 1, 1, &w, 1,
                                       &y, 1)) < 0)
        om_cmd_abort(c);
    if (err)
        return err;
    const double t0 = now_s(), c0 = cpu_s();
    if ((err = om_cmd_submit(c)) < 0)
        return err;
    if (best)
        keep(best, t0, c0);
    return 0;
}

static int upload(om_gpu *gpu, const void *src, uint64_t n, om_buf **out)
{
    int err = om_buf_create(gpu, n, OM_BUF_DEVICE, out);
    if (!err && (err = om_buf_write(*out, 0, src, n)) < 0) {
        om_buf_destroy(*out);
        *out = NULL;
    }
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
        err = upload(gpu, x, nn * 4, &bx);
    }
    if (!err)
        err = upload(gpu, w, nn * 4, &bw);
    if (!err)
        err = om_buf_create(gpu, nn * 4, OM_BUF_DEVICE, &by);
    sample dev = { 1e30, 0 }, ref = { 1e30, 0 };
    if (!err) {
        const om_tensor tx = om_tensor_make(bx, 0, OM_TYPE_F32, n, n, 1, 1);
        const om_tensor tw = om_tensor_make(bw, 0, OM_TYPE_F32, n, n, 1, 1);
        const om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, n, n, 1, 1);
        const int rounds = n <= 512 ? 20 : n <= 1024 ? 5 : 2;
        err = run_matmul(gpu, &ty, &tx, &tw, NULL);
        for (int r = 0; r < rounds && !err; r++) {
            err = run_matmul(gpu, &ty, &tx, &tw, &dev);
            const double t0 = now_s(), c0 = cpu_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, x, n, w, n,
                        0.0f, y, n);
            keep(&ref, t0, c0);
        }
    }
    if (!err) {
        const double flop = 2.0 * n * n * (double)n;
        char size[32];
        snprintf(size, sizeof size, "%dx%dx%d", n, n, n);
        printf("| matmul f32 | %-14s | %9.3f | %4.2f | %6.1f GFLOP/s | sgemm %6.1f GFLOP/s, %4.2f cores "
               "| %5.2f |\n", size, dev.sec * 1e3, dev.cpu / dev.sec, flop / dev.sec / 1e9,
               flop / ref.sec / 1e9, ref.cpu / ref.sec, ref.sec / dev.sec);
    }
    om_buf_destroy(bx);
    om_buf_destroy(bw);
    om_buf_destroy(by);
    free(x);
    free(w);
    free(y);
    return err;
}

/* A weight tensor of `type` {K, N} from random floats, in a buffer padded to 256 bytes
 * (the quantized kernels read whole 8-byte words). */
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
        err = upload(gpu, q, size, buf);
    free(f);
    free(q);
    if (!err)
        *t = om_tensor_make(*buf, 0, type, K, N, 1, 1);
    return err;
}

static void row(const char *what, const char *size, const sample *s, double bytes,
                const sample *ref)
{
    const double gbs = bytes / s->sec / 1e9, ref_gbs = MEMCPY_BYTES / ref->sec / 1e9;
    printf("| %-18s | %-14s | %9.3f | %4.2f | %6.2f GB/s | memcpy %6.2f GB/s | %5.2f |\n", what,
           size, s->sec * 1e3, s->cpu / s->sec, gbs, ref_gbs, gbs / ref_gbs);
}

/* One y = x·Wᵀ problem (M columns of x) on one device: W, x, y. */
typedef struct mv_set {
    om_buf   *bw, *bx, *by;
    om_tensor tw, tx, ty;
} mv_set;

static int mv_open(om_gpu *gpu, int type, int64_t K, int64_t N, int64_t M, const float *x,
                   mv_set *m)
{
    int err = make_weights(gpu, type, K, N, &m->bw, &m->tw);
    if (!err)
        err = upload(gpu, x, (uint64_t)(K * M) * 4, &m->bx);
    if (!err)
        err = om_buf_create(gpu, (uint64_t)(N * M) * 4, OM_BUF_DEVICE, &m->by);
    if (!err) {
        m->tx = om_tensor_make(m->bx, 0, OM_TYPE_F32, K, M, 1, 1);
        m->ty = om_tensor_make(m->by, 0, OM_TYPE_F32, N, M, 1, 1);
    }
    return err;
}

static void mv_close(mv_set *m)
{
    om_buf_destroy(m->bw);
    om_buf_destroy(m->bx);
    om_buf_destroy(m->by);
}

/* gpu reads weights through addresses, tex (NULL: not available) through texel views. */
static int bench_matvec(om_gpu *gpu, om_gpu *tex, int type, int64_t K, int64_t N, char *mem)
{
    mv_set b = { 0 }, t = { 0 };
    float *x = malloc((size_t)K * 4);
    int err = x ? 0 : OM_ENOMEM;
    if (!err) {
        fill_random(x, (size_t)K, 3);
        err = mv_open(gpu, type, K, N, 1, x, &b);
    }
    if (!err && tex)
        err = mv_open(tex, type, K, N, 1, x, &t);
    om_buf *bw = b.bw, *by = b.by;
    const om_gpu_info *info = om_gpu_get_info(gpu);
    const uint32_t spec[2] = { info->subgroup_size, 16 };
    const struct probe_push pc = { bw ? om_buf_addr(bw) : 0, by ? om_buf_addr(by) : 0,
                                   (uint32_t)(om_row_bytes(type, K) / 8), (uint32_t)N };
    om_pipe *probe = NULL;
    if (!err)
        err = om_gpu_pipeline(gpu, "matvec_probe", spec, 2, sizeof(pc), &probe);
    sample dev = { 1e30, 0 }, dtex = { 1e30, 0 }, load = { 1e30, 0 }, ref = { 1e30, 0 };
    if (!err) {
        err = run_matmul(gpu, &b.ty, &b.tx, &b.tw, NULL);
        if (!err && tex)
            err = run_matmul(tex, &t.ty, &t.tx, &t.tw, NULL);
        if (!err)
            err = run_probe(gpu, probe, &pc, bw, by, NULL);
        for (int r = 0; r < 30 && !err; r++) {
            err = run_matmul(gpu, &b.ty, &b.tx, &b.tw, &dev);
            if (!err && tex)
                err = run_matmul(tex, &t.ty, &t.tx, &t.tw, &dtex);
            if (!err)
                err = run_probe(gpu, probe, &pc, bw, by, &load);
            const double t0 = now_s(), c0 = cpu_s();
            memcpy(mem + MEMCPY_BYTES, mem, MEMCPY_BYTES);
            keep(&ref, t0, c0);
            mem[r] = mem[MEMCPY_BYTES + MEMCPY_BYTES - 1 - r];
        }
    }
    if (!err) {
        const double bytes = om_row_bytes(type, K) * (double)N;
        char what[32], size[32];
        snprintf(what, sizeof what, "matvec %s bda", om_type_name(type));
        snprintf(size, sizeof size, "%lldx%lld", (long long)K, (long long)N);
        row(what, size, &dev, bytes, &ref);
        if (tex) {
            snprintf(what, sizeof what, "matvec %s texel", om_type_name(type));
            row(what, size, &dtex, bytes, &ref);
        }
        row("load ceiling", size, &load, bytes, &ref);
    }
    mv_close(&b);
    mv_close(&t);
    free(x);
    return err;
}

static int open_style(const char *style, om_gpu **gpu, char *msg, size_t n)
{
    om_gpu_opts o = { .quiet = 1 };
    setenv("OMNID_WEIGHT_ACCESS", style, 1);
    return om_gpu_open(gpu, &o, msg, n);
}

int main(int argc, char **argv)
{
    const int max_n = argc > 1 ? atoi(argv[1]) : 2048;
    const int only_k = argc > 2 ? atoi(argv[2]) : 0;
    char msg[512];
    om_gpu *gpu, *tex = NULL;
    if (open_style("bda", &gpu, msg, sizeof msg) < 0) {
        fprintf(stderr, "bench_ops: %s\n", msg);
        return 1;
    }
    if (open_style("texel", &tex, msg, sizeof msg) < 0)
        fprintf(stderr, "bench_ops: no texel rows: %s\n", msg);
    char *mem = malloc(2 * MEMCPY_BYTES);
    if (!mem) {
        om_gpu_close(tex);
        om_gpu_close(gpu);
        return 1;
    }
    memset(mem, 1, 2 * MEMCPY_BYTES);
    const om_gpu_info *info = om_gpu_get_info(gpu);
    printf("bench_ops on %s (subgroup %u); OpenBLAS %d threads\n\n", info->name,
           info->subgroup_size, openblas_get_num_threads());
    printf("| op | size (K x N [x M]) | ms / op | cores | rate | reference (same rounds) | ratio |\n");
    printf("|---|---|---|---|---|---|---|\n");
    int err = 0;
    for (int n = 256; n <= max_n && !err; n *= 2)
        err = bench_matmul(gpu, n);
    static const int types[4] = { OM_TYPE_F32, OM_TYPE_F16, OM_TYPE_Q8_0, OM_TYPE_Q4_0 };
    /* Row lengths of the LLM shapes: 4096 (7B), 2048 (TinyLlama), 768 (stories110M: its
     * attention and vocabulary matrices). */
    static const struct { int64_t K, N; int f32; } mv[4] = {
        { 4096, 4096, 1 }, { 2048, 5632, 0 }, { 768, 768, 0 }, { 768, 32000, 0 },
    };
    for (int i = 0; i < 4 && !err; i++)
        for (int j = 0; j < 4 && !err; j++)
            if ((!only_k || mv[j].K == only_k) && (mv[j].f32 || types[i] != OM_TYPE_F32))
                err = bench_matvec(gpu, tex, types[i], mv[j].K, mv[j].N, mem);
    if (err)
        fprintf(stderr, "bench_ops: %s (%s | %s)\n", om_strerror(err), om_gpu_last_error(gpu),
                tex ? om_gpu_last_error(tex) : "");
    free(mem);
    om_gpu_close(tex);
    om_gpu_close(gpu);
    return err ? 1 : 0;
}
