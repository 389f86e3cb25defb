/* bench_lavapipe_loads: does the way a shader reads its buffers decide matvec speed on
 * lavapipe? The same matvec, y = W·x (W N×K F16 or Q8_0, x and y F32; one subgroup per
 * R rows, lanes striding over K, subgroupAdd), in every access style of
 * shaders/access.glsl: buffer device addresses (the runtime's way) with scalar or vector
 * loads, descriptor-bound storage buffers with 32-bit, vector, 16-bit or 8-bit loads,
 * and uniform/storage texel buffers.
 * For each variant: y against a CPU result in double (max |y - ref| / max |ref|), then
 * the best wall time of one submit+wait over many rounds, alternated with a memcpy of
 * 128 MiB (one thread) so both see the same machine; while the best sample had less
 * than 1.8 cores (the machine is shared), up to 10x more rounds are run. Reported: GB/s
 * of weight bytes, its ratio to memcpy's bytes-copied-per-second, and cores (process
 * CPU time / wall time of the kept sample; 2.00 means both cores were ours).
 * --big also runs an F16 W of 256 MiB, beyond maxStorageBufferRange (128 MiB): the
 * texel-buffer style in one view, the SSBO style as one dispatch per binding range.
 * --only S runs only the variants whose name contains S (to profile or disassemble one).
 * Usage: bench_lavapipe_loads [rounds (default 15)] [R rows per subgroup (default 4)]
 *                             [--big] [--only S]
 * Exit status 1 when a variant's result is wrong, the validation layer (on with
 * OMNID_VALIDATION=1) reports an error, or a Vulkan call fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "lvp_vk.h"
#include "om_err.h"
#include "om_shaders.h"

#define MEMCPY_BYTES ((size_t)128 << 20)   /* well past any L3 of the build machines */
#define Q8_BLOCK     34
#define Q8_PAD       48                    /* the shader reads up to 3 chunks per block */
#define MAX_REL_ERR  1e-4                  /* f32 sums of 4096 products vs double */
#define MAX_ROWS     64
#define FULL_CORES   1.8                   /* a sample with less shared its cores */

/* One problem: its weights, input, output and CPU reference. */
typedef struct problem {
    const char *type;                      /* "f16", "q8" or "q8r" (the variant name prefix) */
    uint32_t    N, K;
    uint64_t    w_bytes;                   /* what a matvec reads, without padding */
    uint64_t    scale_off;                 /* q8r: where the scales start in W */
    lvp_buf     w, x, y;
    double     *ref;
} problem;

static uint32_t rng(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static float half_to_float(uint16_t h)
{
    const int e = (h >> 10) & 31, m = h & 1023;
    const float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(1024 + m), e - 25);
    return (h & 0x8000) ? -v : v;
}

/* A normal half in ±[2^lo_exp, 2^(lo_exp+span)): exact in f32, no rounding to argue about. */
static uint16_t random_half(uint32_t *s, int lo_exp, int span, int sign)
{
    const uint32_t r = rng(s);
    const uint16_t e = (uint16_t)(15 + lo_exp + (int)(r % (uint32_t)span));
    return (uint16_t)(((sign && (r & 0x10000)) ? 0x8000 : 0) | (e << 10) | ((r >> 4) & 1023));
}

/* W F16 with values in ±[1/16, 2), x in [-1, 1). */
static int make_f16(lvp_vk *vk, problem *p)
{
    int err;
    p->w_bytes = (uint64_t)p->N * p->K * 2;
    if ((err = lvp_buf_create(vk, p->w_bytes, &p->w)) < 0)
        return err;
    uint16_t *w = p->w.map;
    const float *x = p->x.map;
    uint32_t s = 7;
    for (uint64_t i = 0; i < (uint64_t)p->N * p->K; i++)
        w[i] = random_half(&s, -4, 5, 1);
    for (uint32_t n = 0; n < p->N; n++) {
        double acc = 0;
        for (uint32_t k = 0; k < p->K; k++)
            acc += (double)half_to_float(w[(uint64_t)n * p->K + k]) * x[k];
        p->ref[n] = acc;
    }
    return 0;
}

/* W Q8_0: scales in [1/256, 1/16), values -127..127. Repacked (q8r), the same blocks
 * are stored as all q arrays (32 bytes each, row-major) and then all scales. */
static int make_q8(lvp_vk *vk, problem *p, int repack)
{
    int err;
    const uint32_t nb = p->K / 32;
    const uint64_t nblk = (uint64_t)p->N * nb;
    p->w_bytes = nblk * Q8_BLOCK;
    p->scale_off = repack ? nblk * 32 : 0;
    if ((err = lvp_buf_create(vk, (p->w_bytes + Q8_PAD + 15) / 16 * 16, &p->w)) < 0)
        return err;
    uint8_t *w = p->w.map;
    const float *x = p->x.map;
    uint32_t s = 11;
    memset(w + p->w_bytes, 0, p->w.size - p->w_bytes);
    for (uint32_t n = 0; n < p->N; n++) {
        double acc = 0;
        for (uint32_t b = 0; b < nb; b++) {
            const uint64_t i = (uint64_t)n * nb + b;
            uint8_t *dst = repack ? w + p->scale_off + 2 * i : w + i * Q8_BLOCK;
            uint8_t *qs = repack ? w + 32 * i : dst + 2;
            const uint16_t d = random_half(&s, -8, 4, 0);
            memcpy(dst, &d, 2);
            double t = 0;
            for (int j = 0; j < 32; j++) {
                const int8_t q = (int8_t)(int)(rng(&s) % 255u - 127u);
                qs[j] = (uint8_t)q;
                t += (double)q * x[b * 32 + j];
            }
            acc += half_to_float(d) * t;
        }
        p->ref[n] = acc;
    }
    return 0;
}

static int problem_open(lvp_vk *vk, problem *p, const char *type, uint32_t N, uint32_t K)
{
    memset(p, 0, sizeof *p);
    p->type = type;
    p->N = N;
    p->K = K;
    p->ref = malloc(N * sizeof *p->ref);
    if (!p->ref)
        return OM_ENOMEM;
    int err;
    if ((err = lvp_buf_create(vk, (uint64_t)K * 4, &p->x)) < 0 ||
        (err = lvp_buf_create(vk, (uint64_t)N * 4, &p->y)) < 0)
        return err;
    float *x = p->x.map;
    uint32_t s = 3;
    for (uint32_t k = 0; k < K; k++)
        x[k] = (float)rng(&s) / (float)(1 << 23) - 1.0f;
    return strcmp(type, "f16") == 0 ? make_f16(vk, p) : make_q8(vk, p, strcmp(type, "q8r") == 0);
}

static void problem_close(lvp_vk *vk, problem *p)
{
    lvp_buf_destroy(vk, &p->w);
    lvp_buf_destroy(vk, &p->x);
    lvp_buf_destroy(vk, &p->y);
    free(p->ref);
    memset(p, 0, sizeof *p);
}

/* max |y - ref| / max |ref| over the rows; y is cleared to NaN before each check. */
static double rel_err(const problem *p)
{
    const float *y = p->y.map;
    double emax = 0, rmax = 0;
    for (uint32_t n = 0; n < p->N; n++) {
        const double e = isnan(y[n]) ? INFINITY : fabs(y[n] - p->ref[n]);
        emax = e > emax ? e : emax;
        rmax = fabs(p->ref[n]) > rmax ? fabs(p->ref[n]) : rmax;
    }
    return rmax > 0 ? emax / rmax : INFINITY;
}

static void clear_y(problem *p)
{
    float *y = p->y.map;
    for (uint32_t n = 0; n < p->N; n++)
        y[n] = NAN;
}

static void print_row(const char *name, const problem *p, const om_bench_sample *dev,
                      const om_bench_sample *ref, double err)
{
    const double gbs = p->w_bytes / dev->sec * 1e-9, mgbs = MEMCPY_BYTES / ref->sec * 1e-9;
    printf("| %-13s | %5ux%-5u | %8.3f | %4.2f | %6.2f GB/s | %6.2f GB/s | %4.2f | %8.1e %s |\n",
           name, p->N, p->K, dev->sec * 1e3, dev->cpu / dev->sec, gbs, mgbs, gbs / mgbs, err,
           err <= MAX_REL_ERR ? "ok" : "WRONG");
}

/* Submits each run in turn, the one timed sample of this round. */
static int submit_all(lvp_vk *vk, const lvp_run *runs, int n, om_bench_sample *best)
{
    const double t0 = om_bench_now_s(), c0 = om_bench_cpu_s();
    for (int i = 0; i < n; i++) {
        int err = lvp_run_submit(vk, &runs[i]);
        if (err < 0)
            return err;
    }
    om_bench_keep(best, t0, c0);
    return 0;
}

/* Checks, then times the runs (together one matvec of p) against memcpy. */
static int measure(lvp_vk *vk, const char *name, problem *p, const lvp_run *runs, int n,
                   int rounds, char *scratch, int *wrong)
{
    clear_y(p);
    int err = submit_all(vk, runs, n, &(om_bench_sample)OM_BENCH_SAMPLE_INIT);
    if (err < 0)
        return err;
    const double e = rel_err(p);
    *wrong += !(e <= MAX_REL_ERR);
    om_bench_sample dev = OM_BENCH_SAMPLE_INIT, ref = OM_BENCH_SAMPLE_INIT;
    for (int i = 0; i < rounds || (dev.cpu < FULL_CORES * dev.sec && i < 10 * rounds); i++) {
        om_bench_memcpy_round(scratch, scratch + MEMCPY_BYTES, MEMCPY_BYTES, &ref);
        if ((err = submit_all(vk, runs, n, &dev)) < 0)
            return err;
    }
    print_row(name, p, &dev, &ref, e);
    fflush(stdout);
    return 0;
}

/* Every embedded variant of p's type, whole W in one dispatch. */
static int bench_type(lvp_vk *vk, problem *p, uint32_t R, int rounds, const char *only,
                      char *scratch, int *wrong)
{
    const uint64_t range = vk->props.limits.maxStorageBufferRange;
    const lvp_bindings bind = {
        .w = &p->w, .x = &p->x, .y = &p->y,
        .w_off = 0, .w_range = p->w.size < range ? p->w.size : range,
        .x_range = p->x.size, .y_off = 0, .y_range = p->y.size, .scale_off = p->scale_off,
    };
    const lvp_push push = { p->w.addr, p->x.addr, p->y.addr, p->K, p->N };
    const size_t plen = strlen(p->type);
    for (int i = 0; i < om_shader_count; i++) {
        const om_shader_blob *s = om_shader_table[i];
        if (strncmp(s->name, p->type, plen) != 0 || s->name[plen] != '_' ||
            (only && !strstr(s->name, only)))
            continue;
        lvp_run run = { 0 };
        int err = lvp_run_create(vk, s->code, s->size, R, &bind, &push, p->N / R, &run);
        if (!err)
            err = measure(vk, s->name, p, &run, 1, rounds, scratch, wrong);
        lvp_run_destroy(vk, &run);
        if (err < 0)
            return err;
    }
    return 0;
}

/* A 256 MiB F16 W: the texel-buffer styles in one view (up to maxTexelBufferElements
 * texels of 16 bytes), the SSBO uvec4 style as one dispatch per maxStorageBufferRange
 * slice of whole row groups, and BDA. */
static int bench_big(lvp_vk *vk, uint32_t R, int rounds, char *scratch, int *wrong)
{
    problem p;
    int err = problem_open(vk, &p, "f16", 32768, 4096);
    const uint64_t row_bytes = (uint64_t)p.K * 2;
    const uint32_t slice_rows = (uint32_t)(vk->props.limits.maxStorageBufferRange / row_bytes) / R * R;
    const int nslices = slice_rows ? (int)((p.N + slice_rows - 1) / slice_rows) : 0;
    lvp_run runs[16];
    memset(runs, 0, sizeof runs);
    if (!err && (nslices == 0 || nslices > 16))
        err = OM_ERANGE;
    for (int i = 0; !err && i < nslices; i++) {
        const uint32_t r0 = (uint32_t)i * slice_rows;
        const uint32_t rows = p.N - r0 < slice_rows ? p.N - r0 : slice_rows;
        const lvp_bindings bind = {
            .w = &p.w, .x = &p.x, .y = &p.y,
            .w_off = r0 * row_bytes, .w_range = rows * row_bytes, .x_range = p.x.size,
            .y_off = (uint64_t)r0 * 4, .y_range = (uint64_t)rows * 4,
        };
        const lvp_push push = { 0, 0, 0, p.K, rows };
        const om_shader_blob *s = om_shader_find("f16_ssbo_v4");
        err = s ? lvp_run_create(vk, s->code, s->size, R, &bind, &push, rows / R, &runs[i])
                : OM_ENOENT;
    }
    if (!err)
        err = measure(vk, "f16_ssbo_v4 *", &p, runs, nslices, rounds, scratch, wrong);
    for (int i = 0; i < nslices && i < 16; i++)
        lvp_run_destroy(vk, &runs[i]);
    const char *whole[] = { "f16_stb", "f16_utb", "f16_utb_h", "f16_bda_u64" };
    for (int i = 0; !err && i < 4; i++) {
        const lvp_bindings bind = {
            .w = &p.w, .x = &p.x, .y = &p.y, .w_range = vk->props.limits.maxStorageBufferRange,
            .x_range = p.x.size, .y_range = p.y.size,
        };
        const lvp_push push = { p.w.addr, p.x.addr, p.y.addr, p.K, p.N };
        const om_shader_blob *s = om_shader_find(whole[i]);
        lvp_run run = { 0 };
        err = s ? lvp_run_create(vk, s->code, s->size, R, &bind, &push, p.N / R, &run) : OM_ENOENT;
        if (!err)
            err = measure(vk, whole[i], &p, &run, 1, rounds, scratch, wrong);
        lvp_run_destroy(vk, &run);
    }
    if (!err)
        printf("(* %d dispatches, one per %u-row binding range of at most %llu bytes)\n", nslices,
               slice_rows, (unsigned long long)vk->props.limits.maxStorageBufferRange);
    problem_close(vk, &p);
    return err;
}

int main(int argc, char **argv)
{
    int rounds = 15, big = 0, npos = 0, usage = 0;
    uint32_t R = 4;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--big") == 0) {
            big = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (npos == 0) {
            rounds = atoi(argv[i]);
            npos++;
        } else {
            R = (uint32_t)atoi(argv[i]);
            usage |= npos++ > 1;
        }
    }
    if (usage || rounds < 1 || rounds > 1000 || R < 1 || R > MAX_ROWS || 4096 % R != 0) {
        fprintf(stderr, "usage: %s [rounds 1..1000] [R: a divisor of 4096, <= %d] [--big] [--only S]\n",
                argv[0], MAX_ROWS);
        return 2;
    }

    lvp_vk vk;
    int err = lvp_vk_open(&vk);
    char *scratch = err ? NULL : malloc(2 * MEMCPY_BYTES);
    if (!err && !scratch)
        err = OM_ENOMEM;
    if (err) {
        fprintf(stderr, "bench_lavapipe_loads: %s: %s\n", om_strerror(err), vk.err);
        lvp_vk_close(&vk);
        return 1;
    }
    memset(scratch, 1, 2 * MEMCPY_BYTES);
    printf("device: %s, subgroup %u, R = %u rows per subgroup, best of %d rounds\n",
           vk.props.deviceName, vk.subgroup, R, rounds);
    printf("maxStorageBufferRange %u bytes, maxTexelBufferElements %u\n",
           vk.props.limits.maxStorageBufferRange, vk.props.limits.maxTexelBufferElements);
    om_bench_print_load("at start");
    printf("\n| variant | N x K | ms | cores | weights | memcpy (same rounds) | ratio | max rel err |\n"
           "|---|---|---|---|---|---|---|---|\n");

    int wrong = 0;
    const char *types[] = { "f16", "q8", "q8r" };
    for (int t = 0; !err && t < 3; t++) {
        problem p;
        err = problem_open(&vk, &p, types[t], 4096, 4096);
        if (!err)
            err = bench_type(&vk, &p, R, rounds, only, scratch, &wrong);
        problem_close(&vk, &p);
    }
    if (!err && big)
        err = bench_big(&vk, R, rounds, scratch, &wrong);
    om_bench_print_load("at end");
    if (vk.validation_errors)
        printf("validation errors: %d\n", vk.validation_errors);
    if (err)
        fprintf(stderr, "bench_lavapipe_loads: %s: %s\n", om_strerror(err), vk.err);
    free(scratch);
    const int bad = err || wrong || vk.validation_errors;
    lvp_vk_close(&vk);
    return bad ? 1 : 0;
}
