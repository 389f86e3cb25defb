/* test_ops_matmul: om_op_matmul and om_op_get_rows on every weight type against PyTorch
 * goldens (tools/golden/ops_matmul.py), the M == 1 path against the tiled path, and the
 * refused cases. Shapes are deliberately not multiples of any workgroup or tile. Every
 * test ends with zero validation-layer errors.
 *
 * Everything runs with weights read through device addresses (OMNID_WEIGHT_ACCESS=bda),
 * then every case that takes the matvec (M == 1) again through texel buffers (=texel),
 * against the same goldens, on a freshly opened device (the tiled kernel and get_rows
 * read through addresses in both). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "om_err.h"
#include "om_gpu.h"
#include "om_npy.h"
#include "om_ops.h"

static om_gpu *gpu;
static int access_style;              /* enum om_weight_access of the running group */

/* A golden case of tools/golden/ops_matmul.py: x {K, M, B2, B3}, w {K, N, W2, W3}. */
typedef struct mm_case {
    const char *name;
    int type;
    int64_t K, N, M, B2, B3, W2, W3;
} mm_case;

static const mm_case cases[] = {
    { "mm_f32",   OM_TYPE_F32,  96,  37,  17, 1, 1, 1, 1 },
    { "mm_f16",   OM_TYPE_F16,  64,  37,  70, 1, 1, 1, 1 },
    { "mm_q8_0",  OM_TYPE_Q8_0, 544, 37,  5,  1, 1, 1, 1 },
    { "mm_q4_0",  OM_TYPE_Q4_0, 96,  300, 3,  1, 1, 1, 1 },
    { "mv_f32",   OM_TYPE_F32,  160, 21,  1,  1, 1, 1, 1 },
    { "mv_f16",   OM_TYPE_F16,  32,  300, 1,  1, 1, 1, 1 },
    { "mv_q8_0",  OM_TYPE_Q8_0, 64,  300, 1,  1, 1, 1, 1 },
    { "mv_q4_0",  OM_TYPE_Q4_0, 544, 37,  1,  1, 1, 1, 1 },
    { "bmm_f16",  OM_TYPE_F16,  64,  37,  3,  4, 3, 2, 1 },
    { "bmv_q4_0", OM_TYPE_Q4_0, 96,  37,  1,  4, 3, 2, 3 },
    { "mvl_f16",  OM_TYPE_F16,  1088, 37, 1,  1, 1, 1, 1 },   /* K > 1024: 16 matvec rows */
};

/* Error of y relative to max|y| allowed per weight type. The weights are the exact
 * dequantized values torch used, so only f32 summation order differs (~1e-6 seen);
 * Q4_0 sums q*x and 8*sum(x) separately, which cancels a little more. */
static double tolerance(int type)
{
    switch (type) {
    case OM_TYPE_Q4_0: return 2e-5;
    case OM_TYPE_Q8_0: return 1e-5;
    default:           return 1e-5;
    }
}

static int open_with(int style)
{
    char err[256];
    om_gpu_opts o = { .quiet = 1 };
    setenv("OMNID_WEIGHT_ACCESS", style == OM_ACCESS_TEXEL ? "texel" : "bda", 1);
    access_style = style;
    if (om_gpu_open(&gpu, &o, err, sizeof err) < 0) {
        fprintf(stderr, "om_gpu_open: %s\n", err);
        return -1;
    }
    if (om_gpu_get_info(gpu)->weight_access != style) {
        fprintf(stderr, "weight access %d, asked for %d\n", om_gpu_get_info(gpu)->weight_access,
                style);
        om_gpu_close(gpu);
        return -1;
    }
    return 0;
}

static int setup_bda(void **state) { return open_with(OM_ACCESS_BDA); }
static int setup_texel(void **state) { return open_with(OM_ACCESS_TEXEL); }

static int teardown(void **state)
{
    int verr = om_gpu_validation_errors(gpu);
    om_gpu_close(gpu);
    return verr == 0 ? 0 : -1;
}

static om_npy load(const char *name)
{
    char path[512], err[256];
    om_npy a;
    snprintf(path, sizeof path, "%s/%s.npy", OMNID_GOLDEN_DIR, name);
    if (om_npy_read(path, &a, err, sizeof err) < 0)
        fail_msg("%s: %s", path, err);
    return a;
}

/* A device buffer holding n bytes of src, padded with zeros to a multiple of 256 (the
 * quantized kernels read whole 8-byte words). */
static om_buf *upload(const void *src, uint64_t n)
{
    om_buf *b;
    const uint64_t size = (n + 255) & ~(uint64_t)255;
    assert_int_equal(om_buf_create(gpu, size, OM_BUF_DEVICE, &b), 0);
    void *z = calloc(1, size);
    assert_non_null(z);
    memcpy(z, src, n);
    assert_int_equal(om_buf_write(b, 0, z, size), 0);
    free(z);
    return b;
}

static uint64_t npy_bytes(const om_npy *a)
{
    return (uint64_t)a->n * (a->dtype == OM_NPY_F16 ? 2 : 4);
}

/* Largest |got - want| over max|want|; infinite when anything is NaN. */
static double rel_err(const float *got, const float *want, int64_t n)
{
    double emax = 0, ymax = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (isnan(e))
            return INFINITY;
        if (e > emax)
            emax = e;
        if (fabs(want[i]) > ymax)
            ymax = fabs(want[i]);
    }
    return emax / (ymax > 0 ? ymax : 1);
}

static float *download(const om_tensor *t)
{
    const uint64_t n = (uint64_t)om_tensor_nelem(t) * 4;
    float *out = malloc(n);
    assert_non_null(out);
    assert_int_equal(om_buf_read(t->buf, t->off, out, n), 0);
    return out;
}

static void run(om_cmd *c)
{
    int err = om_cmd_submit(c);
    if (err < 0)
        fail_msg("submit: %s", om_gpu_last_error(gpu));
}

static void test_golden(void **state)
{
    const mm_case *c = *state;
    char name[64];
    snprintf(name, sizeof name, "%s_x", c->name);
    om_npy x = load(name);
    snprintf(name, sizeof name, "%s_w", c->name);
    om_npy w = load(name);
    snprintf(name, sizeof name, "%s_y", c->name);
    om_npy y = load(name);
    assert_int_equal(x.n, c->K * c->M * c->B2 * c->B3);
    assert_int_equal(y.n, c->N * c->M * c->B2 * c->B3);
    const uint64_t wbytes = om_row_bytes(c->type, c->K) * (uint64_t)(c->N * c->W2 * c->W3);
    assert_true(npy_bytes(&w) >= wbytes);

    om_buf *bx = upload(x.data, npy_bytes(&x)), *bw = upload(w.data, wbytes);
    om_buf *by;
    assert_int_equal(om_buf_create(gpu, (uint64_t)y.n * 4, OM_BUF_DEVICE, &by), 0);
    om_tensor tx = om_tensor_make(bx, 0, OM_TYPE_F32, c->K, c->M, c->B2, c->B3);
    om_tensor tw = om_tensor_make(bw, 0, c->type, c->K, c->N, c->W2, c->W3);
    om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, c->N, c->M, c->B2, c->B3);

    om_cmd *cmd;
    assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
    int err = om_op_matmul(cmd, &ty, &tx, &tw);
    if (err < 0)
        fail_msg("%s: %s", c->name, om_gpu_last_error(gpu));
    run(cmd);
    float *got = download(&ty);
    const double e = rel_err(got, y.data, y.n);
    printf("%-9s %-4s %-5s K=%-3lld N=%-3lld M=%-2lld B=%lldx%lld: max err / max|y| = %.2e (tol %.0e)\n",
           c->name, om_type_name(c->type), access_style == OM_ACCESS_TEXEL ? "texel" : "bda", (long long)c->K, (long long)c->N, (long long)c->M,
           (long long)c->B2, (long long)c->B3, e, tolerance(c->type));
    assert_true(e <= tolerance(c->type));

    free(got);
    om_buf_destroy(bx);
    om_buf_destroy(bw);
    om_buf_destroy(by);
    om_npy_free(&x);
    om_npy_free(&w);
    om_npy_free(&y);
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
}

static void test_get_rows(void **state)
{
    const mm_case *c = *state;          /* an mm_* case: its weights are the table */
    const char *tn = om_type_name(c->type);
    char name[64];
    snprintf(name, sizeof name, "%s_w", c->name);
    om_npy w = load(name);
    snprintf(name, sizeof name, "gr_%s_ids", tn);
    om_npy ids = load(name);
    snprintf(name, sizeof name, "gr_%s_y", tn);
    om_npy y = load(name);
    const int64_t M = ids.n;
    const uint64_t wbytes = om_row_bytes(c->type, c->K) * (uint64_t)c->N;

    om_buf *bw = upload(w.data, wbytes), *bi = upload(ids.data, (uint64_t)M * 4);
    om_buf *by;
    assert_int_equal(om_buf_create(gpu, (uint64_t)y.n * 4, OM_BUF_DEVICE, &by), 0);
    om_tensor tw = om_tensor_make(bw, 0, c->type, c->K, c->N, 1, 1);
    om_tensor ti = om_tensor_make(bi, 0, OM_TYPE_I32, M, 1, 1, 1);
    om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, c->K, M, 1, 1);
    om_cmd *cmd;
    assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
    int err = om_op_get_rows(cmd, &ty, &tw, &ti);
    if (err < 0)
        fail_msg("get_rows %s: %s", tn, om_gpu_last_error(gpu));
    run(cmd);
    float *got = download(&ty);
    /* Dequantization is exact in f32 (d * q): any difference is a bug. */
    const double e = rel_err(got, y.data, y.n);
    printf("get_rows %-4s K=%lld N=%lld M=%lld: max err / max|y| = %.2e\n", tn,
           (long long)c->K, (long long)c->N, (long long)M, e);
    assert_true(e <= 1e-7);

    free(got);
    om_buf_destroy(bw);
    om_buf_destroy(bi);
    om_buf_destroy(by);
    om_npy_free(&w);
    om_npy_free(&ids);
    om_npy_free(&y);
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
}

/* An id outside the table yields zeros and must not read outside it. */
static void test_get_rows_bad_ids(void **state)
{
    const mm_case *c = &cases[3];
    om_npy w = load("mm_q4_0_w");
    const int32_t ids[3] = { -1, (int32_t)c->N, (int32_t)c->N - 1 };
    om_buf *bw = upload(w.data, om_row_bytes(c->type, c->K) * (uint64_t)c->N);
    om_buf *bi = upload(ids, sizeof ids);
    om_buf *by;
    assert_int_equal(om_buf_create(gpu, (uint64_t)c->K * 3 * 4, OM_BUF_DEVICE, &by), 0);
    om_tensor tw = om_tensor_make(bw, 0, c->type, c->K, c->N, 1, 1);
    om_tensor ti = om_tensor_make(bi, 0, OM_TYPE_I32, 3, 1, 1, 1);
    om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, c->K, 3, 1, 1);
    om_cmd *cmd;
    assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
    assert_int_equal(om_op_get_rows(cmd, &ty, &tw, &ti), 0);
    run(cmd);
    float *got = download(&ty);
    int nonzero_last = 0;
    for (int64_t k = 0; k < c->K; k++) {
        assert_true(got[k] == 0.0f && got[c->K + k] == 0.0f);
        nonzero_last += got[2 * c->K + k] != 0.0f;
    }
    assert_true(nonzero_last > 0);
    free(got);
    om_buf_destroy(bw);
    om_buf_destroy(bi);
    om_buf_destroy(by);
    om_npy_free(&w);
}

/* The M == 1 kernel (matvec) and the tiled kernel agree column by column. */
static void test_vec_vs_tiled(void **state)
{
    for (int ci = 4; ci < 8; ci++) {
        const mm_case *c = &cases[ci];          /* the mv_* weights */
        char name[64];
        snprintf(name, sizeof name, "%s_w", c->name);
        om_npy w = load(name);
        const int64_t M = 5;
        float *x = malloc((size_t)(c->K * M) * 4);
        assert_non_null(x);
        uint32_t r = 12345;
        for (int64_t i = 0; i < c->K * M; i++) {
            r = r * 1664525u + 1013904223u;
            x[i] = (float)((int32_t)r >> 8) / (float)(1 << 23);
        }
        om_buf *bw = upload(w.data, om_row_bytes(c->type, c->K) * (uint64_t)c->N);
        om_buf *bx = upload(x, (uint64_t)(c->K * M) * 4);
        om_buf *bt, *bv;
        assert_int_equal(om_buf_create(gpu, (uint64_t)(c->N * M) * 4, OM_BUF_DEVICE, &bt), 0);
        assert_int_equal(om_buf_create(gpu, (uint64_t)(c->N * M) * 4, OM_BUF_DEVICE, &bv), 0);
        om_tensor tw = om_tensor_make(bw, 0, c->type, c->K, c->N, 1, 1);
        om_tensor tx = om_tensor_make(bx, 0, OM_TYPE_F32, c->K, M, 1, 1);
        om_tensor tt = om_tensor_make(bt, 0, OM_TYPE_F32, c->N, M, 1, 1);
        om_tensor tv = om_tensor_make(bv, 0, OM_TYPE_F32, c->N, M, 1, 1);
        om_cmd *cmd;
        assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
        assert_int_equal(om_op_matmul(cmd, &tt, &tx, &tw), 0);
        for (int64_t m = 0; m < M; m++) {
            const int64_t xs[4] = { 0, m, 0, 0 }, xn[4] = { c->K, 1, 1, 1 };
            const int64_t ys[4] = { 0, m, 0, 0 }, yn[4] = { c->N, 1, 1, 1 };
            om_tensor xm = om_tensor_view(&tx, xs, xn), ym = om_tensor_view(&tv, ys, yn);
            assert_int_equal(om_op_matmul(cmd, &ym, &xm, &tw), 0);
        }
        run(cmd);
        float *yt = download(&tt), *yv = download(&tv);
        const double e = rel_err(yv, yt, c->N * M);
        printf("matvec vs tiled %-4s %-5s K=%lld N=%lld: max diff / max|y| = %.2e\n",
               om_type_name(c->type), access_style == OM_ACCESS_TEXEL ? "texel" : "bda",
               (long long)c->K, (long long)c->N, e);
        assert_true(e <= tolerance(c->type));
        free(x);
        free(yt);
        free(yv);
        om_buf_destroy(bw);
        om_buf_destroy(bx);
        om_buf_destroy(bt);
        om_buf_destroy(bv);
        om_npy_free(&w);
    }
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
}

/* The mv_* goldens with W at byte offsets that are not texel-aligned (as far as the
 * type's row alignment allows: a quant block inside a texel, an F16 row at half a
 * texel) and W in an arena allocation that is not the arena's first. */
static void test_weight_offsets(void **state)
{
    om_arena *arena;
    assert_int_equal(om_arena_create(gpu, 1 << 20, &arena), 0);
    for (int ci = 4; ci < 8; ci++) {
        const mm_case *c = &cases[ci];
        char name[64];
        om_npy x, w, y;
        snprintf(name, sizeof name, "%s_x", c->name);
        x = load(name);
        snprintf(name, sizeof name, "%s_w", c->name);
        w = load(name);
        snprintf(name, sizeof name, "%s_y", c->name);
        y = load(name);
        const uint64_t wbytes = om_row_bytes(c->type, c->K) * (uint64_t)c->N;
        const uint64_t off = c->type == OM_TYPE_F32 ? 48 : c->type == OM_TYPE_F16 ? 40 : 42;
        uint8_t *pad = calloc(1, off + wbytes + 256);
        assert_non_null(pad);
        memcpy(pad + off, w.data, wbytes);
        om_buf *bw = upload(pad, off + wbytes), *bx = upload(x.data, npy_bytes(&x));
        om_buf *first, *aw, *by;
        uint64_t o0, o1;
        assert_int_equal(om_arena_alloc(arena, 100, &first, &o0), 0);
        assert_int_equal(om_arena_alloc(arena, off + wbytes + 8, &aw, &o1), 0);
        assert_int_equal(om_buf_write(aw, 0, pad, off + wbytes + 8), 0);
        assert_int_equal(om_buf_create(gpu, (uint64_t)y.n * 8, OM_BUF_DEVICE, &by), 0);
        om_tensor tx = om_tensor_make(bx, 0, OM_TYPE_F32, c->K, 1, 1, 1);
        om_tensor tw = om_tensor_make(bw, off, c->type, c->K, c->N, 1, 1);
        om_tensor ta = om_tensor_make(aw, off, c->type, c->K, c->N, 1, 1);
        om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, c->N, 1, 1, 1);
        om_tensor ty2 = om_tensor_make(by, (uint64_t)y.n * 4, OM_TYPE_F32, c->N, 1, 1, 1);
        om_cmd *cmd;
        assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
        if (om_op_matmul(cmd, &ty, &tx, &tw) < 0 || om_op_matmul(cmd, &ty2, &tx, &ta) < 0)
            fail_msg("%s at %llu: %s", c->name, (unsigned long long)off, om_gpu_last_error(gpu));
        run(cmd);
        float *got = download(&ty), *got2 = download(&ty2);
        const double e = rel_err(got, y.data, y.n), e2 = rel_err(got2, y.data, y.n);
        printf("%-9s %-5s W at byte %llu: max err / max|y| = %.2e, in an arena view %.2e\n",
               c->name, access_style == OM_ACCESS_TEXEL ? "texel" : "bda",
               (unsigned long long)off, e, e2);
        assert_true(e <= tolerance(c->type));
        assert_true(e2 <= tolerance(c->type));
        free(got);
        free(got2);
        free(pad);
        om_buf_destroy(bw);
        om_buf_destroy(bx);
        om_buf_destroy(by);
        om_npy_free(&x);
        om_npy_free(&w);
        om_npy_free(&y);
        om_arena_reset(arena);
    }
    om_arena_destroy(arena);
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
}

/* F16 rows of a length that is not a multiple of 16 (the texel path's 4-value kernel;
 * multiples of 16 take 16 per block): the first 20 columns of mm_f16's W (rows 128
 * bytes apart), matvec per column against the tiled kernel. */
static void test_f16_narrow(void **state)
{
    const int64_t K = 20, N = 37, M = 3;
    om_npy w = load("mm_f16_w");
    float x[20 * 3];
    for (int64_t i = 0; i < K * M; i++)
        x[i] = (float)((i * 7) % 11) - 5.0f;
    om_buf *bw = upload(w.data, npy_bytes(&w)), *bx = upload(x, sizeof x), *bt, *bv;
    assert_int_equal(om_buf_create(gpu, (uint64_t)(N * M) * 4, OM_BUF_DEVICE, &bt), 0);
    assert_int_equal(om_buf_create(gpu, (uint64_t)(N * M) * 4, OM_BUF_DEVICE, &bv), 0);
    om_tensor tw = om_tensor_make(bw, 0, OM_TYPE_F16, K, N, 1, 1);
    tw.nb[1] = 64 * 2;
    tw.nb[2] = tw.nb[3] = tw.nb[1] * N;
    om_tensor tx = om_tensor_make(bx, 0, OM_TYPE_F32, K, M, 1, 1);
    om_tensor tt = om_tensor_make(bt, 0, OM_TYPE_F32, N, M, 1, 1);
    om_tensor tv = om_tensor_make(bv, 0, OM_TYPE_F32, N, M, 1, 1);
    om_cmd *cmd;
    assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
    assert_int_equal(om_op_matmul(cmd, &tt, &tx, &tw), 0);
    for (int64_t m = 0; m < M; m++) {
        const int64_t xs[4] = { 0, m, 0, 0 }, xn[4] = { K, 1, 1, 1 };
        const int64_t ys[4] = { 0, m, 0, 0 }, yn[4] = { N, 1, 1, 1 };
        om_tensor xm = om_tensor_view(&tx, xs, xn), ym = om_tensor_view(&tv, ys, yn);
        assert_int_equal(om_op_matmul(cmd, &ym, &xm, &tw), 0);
    }
    run(cmd);
    float *yt = download(&tt), *yv = download(&tv);
    const double e = rel_err(yv, yt, N * M);
    printf("matvec vs tiled f16  %-5s K=%lld N=%lld (rows 128 B apart): max diff / max|y| = %.2e\n",
           access_style == OM_ACCESS_TEXEL ? "texel" : "bda", (long long)K, (long long)N, e);
    assert_true(e <= tolerance(OM_TYPE_F16));
    free(yt);
    free(yv);
    om_buf_destroy(bw);
    om_buf_destroy(bx);
    om_buf_destroy(bt);
    om_buf_destroy(bv);
    om_npy_free(&w);
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
}

/* Strided x and y (views into wider rows) give the same result as contiguous ones,
 * on the tiled and the M == 1 path. */
static void test_strided(void **state)
{
    const mm_case *c = &cases[6];              /* mv_q8_0: K = 64, N = 300 */
    const int64_t M = 5, KP = c->K + 4, NP = c->N + 1;
    om_npy w = load("mv_q8_0_w");
    float *x = calloc((size_t)(KP * M), 4), *xp = malloc((size_t)(c->K * M) * 4);
    assert_non_null(x);
    assert_non_null(xp);
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < c->K; k++)
            xp[m * c->K + k] = x[m * KP + k] = (float)((k * 7 + m * 13) % 17) - 8.0f;
    om_buf *bw = upload(w.data, om_row_bytes(c->type, c->K) * (uint64_t)c->N);
    om_buf *bx = upload(x, (uint64_t)(KP * M) * 4), *bp = upload(xp, (uint64_t)(c->K * M) * 4);
    om_buf *by, *bs;
    assert_int_equal(om_buf_create(gpu, (uint64_t)(c->N * M) * 4, OM_BUF_DEVICE, &by), 0);
    assert_int_equal(om_buf_create(gpu, (uint64_t)(NP * M) * 4, OM_BUF_DEVICE, &bs), 0);
    om_tensor tw = om_tensor_make(bw, 0, c->type, c->K, c->N, 1, 1);
    om_tensor txw = om_tensor_make(bx, 0, OM_TYPE_F32, KP, M, 1, 1);
    om_tensor tp = om_tensor_make(bp, 0, OM_TYPE_F32, c->K, M, 1, 1);
    om_tensor ty = om_tensor_make(by, 0, OM_TYPE_F32, c->N, M, 1, 1);
    om_tensor tsw = om_tensor_make(bs, 0, OM_TYPE_F32, NP, M, 1, 1);
    const int64_t z[4] = { 0, 0, 0, 0 };
    const int64_t xn[4] = { c->K, M, 1, 1 }, yn[4] = { c->N, M, 1, 1 };
    om_tensor tx = om_tensor_view(&txw, z, xn), ts = om_tensor_view(&tsw, z, yn);
    om_cmd *cmd;
    assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
    assert_int_equal(om_op_matmul(cmd, &ty, &tp, &tw), 0);
    assert_int_equal(om_op_matmul(cmd, &ts, &tx, &tw), 0);
    run(cmd);
    float *want = download(&ty), *got = malloc((size_t)(NP * M) * 4);
    assert_non_null(got);
    assert_int_equal(om_buf_read(bs, 0, got, (uint64_t)(NP * M) * 4), 0);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < c->N; n++)
            assert_true(got[m * NP + n] == want[m * c->N + n]);
    /* the M == 1 path on column 2 of the strided view */
    const int64_t s2[4] = { 0, 2, 0, 0 }, x1[4] = { c->K, 1, 1, 1 }, y1[4] = { c->N, 1, 1, 1 };
    om_tensor tx2 = om_tensor_view(&tx, s2, x1), ty2 = om_tensor_view(&ts, s2, y1);
    assert_int_equal(om_cmd_begin(gpu, &cmd), 0);
    assert_int_equal(om_op_matmul(cmd, &ty2, &tx2, &tw), 0);
    run(cmd);
    assert_int_equal(om_buf_read(bs, 0, got, (uint64_t)(NP * M) * 4), 0);
    assert_true(rel_err(got + 2 * NP, want + 2 * c->N, c->N) <= tolerance(c->type));
    free(x);
    free(xp);
    free(want);
    free(got);
    om_buf_destroy(bw);
    om_buf_destroy(bx);
    om_buf_destroy(bp);
    om_buf_destroy(by);
    om_buf_destroy(bs);
    om_npy_free(&w);
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
}

/* The call is refused with err and the message names the op. */
#define REFUSED(err, opname, call)                                                      \
    do {                                                                                \
        om_cmd *c_;                                                                     \
        assert_int_equal(om_cmd_begin(gpu, &c_), 0);                                    \
        om_cmd *cmd = c_;                                                               \
        assert_int_equal((call), (err));                                                \
        assert_non_null(strstr(om_gpu_last_error(gpu), opname));                       \
        om_cmd_abort(c_);                                                               \
    } while (0)

static void test_refused(void **state)
{
    om_buf *b;
    assert_int_equal(om_buf_create(gpu, 1 << 16, OM_BUF_DEVICE, &b), 0);
    const om_tensor x = om_tensor_make(b, 0, OM_TYPE_F32, 64, 3, 1, 1);
    const om_tensor y = om_tensor_make(b, 4096, OM_TYPE_F32, 8, 3, 1, 1);
    const om_tensor w = om_tensor_make(b, 8192, OM_TYPE_Q4_0, 64, 8, 1, 1);
    /* the baseline is accepted: each case below changes one thing */
    om_cmd *ok;
    assert_int_equal(om_cmd_begin(gpu, &ok), 0);
    assert_int_equal(om_op_matmul(ok, &y, &x, &w), 0);
    om_cmd_abort(ok);

    /* K not a multiple of 32 for a quant type */
    om_tensor w48 = om_tensor_make(b, 8192, OM_TYPE_Q4_0, 48, 8, 1, 1);
    om_tensor x48 = om_tensor_make(b, 0, OM_TYPE_F32, 48, 3, 1, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y, &x48, &w48));
    w48.type = OM_TYPE_Q8_0;
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y, &x48, &w48));
    REFUSED(OM_EINVAL, "get_rows", om_op_get_rows(cmd, &x48, &w48, &y));
    /* mismatched shapes */
    om_tensor x32 = om_tensor_make(b, 0, OM_TYPE_F32, 32, 3, 1, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y, &x32, &w));
    om_tensor y9 = om_tensor_make(b, 4096, OM_TYPE_F32, 9, 3, 1, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y9, &x, &w));
    om_tensor y4 = om_tensor_make(b, 4096, OM_TYPE_F32, 8, 4, 1, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y4, &x, &w));
    /* w batch that does not divide x's */
    om_tensor w3 = om_tensor_make(b, 8192, OM_TYPE_Q4_0, 64, 8, 3, 1);
    om_tensor x4 = om_tensor_make(b, 0, OM_TYPE_F32, 64, 3, 4, 1);
    om_tensor y44 = om_tensor_make(b, 4096, OM_TYPE_F32, 8, 3, 4, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y44, &x4, &w3));
    /* activations of the wrong type, x rows not 16-byte aligned */
    om_tensor xi = x;
    xi.type = OM_TYPE_I32;
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y, &xi, &w));
    om_tensor xo = om_tensor_make(b, 4, OM_TYPE_F32, 64, 3, 1, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y, &xo, &w));
    /* a weight type we do not compute, and an F32 weight row not 16-byte aligned */
    om_tensor wi = om_tensor_make(b, 8192, OM_TYPE_I32, 64, 8, 1, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y, &x, &wi));
    om_tensor wf = om_tensor_make(b, 8196, OM_TYPE_F32, 64, 8, 1, 1);
    REFUSED(OM_EINVAL, "matmul", om_op_matmul(cmd, &y, &x, &wf));
    /* quantized rows ending off an 8-byte boundary at the buffer's end: 2 rows of
     * Q4_0 K=32 are 36 bytes, in a buffer of exactly 36 */
    om_buf *tight;
    assert_int_equal(om_buf_create(gpu, 36, OM_BUF_DEVICE, &tight), 0);
    om_tensor wt = om_tensor_make(tight, 0, OM_TYPE_Q4_0, 32, 2, 1, 1);
    om_tensor xt = om_tensor_make(b, 0, OM_TYPE_F32, 32, 1, 1, 1);
    om_tensor yt = om_tensor_make(b, 4096, OM_TYPE_F32, 2, 1, 1, 1);
    REFUSED(OM_ERANGE, "matmul", om_op_matmul(cmd, &yt, &xt, &wt));
    /* a weight reaching past its buffer */
    om_tensor wbig = om_tensor_make(b, 8192, OM_TYPE_F16, 4096, 8, 1, 1);
    om_tensor xbig = om_tensor_make(b, 0, OM_TYPE_F32, 4096, 1, 1, 1);
    REFUSED(OM_ERANGE, "matmul", om_op_matmul(cmd, &yt, &xbig, &wbig));
    /* get_rows: ids not I32, a 3-D table, dst of the wrong shape */
    om_tensor ids = om_tensor_make(b, 12288, OM_TYPE_I32, 3, 1, 1, 1);
    om_tensor idf = ids;
    idf.type = OM_TYPE_F32;
    om_tensor rows = om_tensor_make(b, 0, OM_TYPE_F32, 64, 3, 1, 1);
    REFUSED(OM_EINVAL, "get_rows", om_op_get_rows(cmd, &rows, &w, &idf));
    REFUSED(OM_EINVAL, "get_rows", om_op_get_rows(cmd, &rows, &w3, &ids));
    om_tensor rows4 = om_tensor_make(b, 0, OM_TYPE_F32, 64, 4, 1, 1);
    REFUSED(OM_EINVAL, "get_rows", om_op_get_rows(cmd, &rows4, &w, &ids));
    om_buf_destroy(tight);
    om_buf_destroy(b);
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
}

/* The cases that take the matvec (M == 1), run again with texel-buffer weights. */
static int run_texel(void)
{
    struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 5];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (cases[i].M == 1) {
            tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_golden, (void *)&cases[i]);
            tests[n++].name = cases[i].name;
        }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_weight_offsets);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_f16_narrow);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_vec_vs_tiled);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_strided);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_refused);
    return _cmocka_run_group_tests("ops_matmul_texel", tests, n, setup_texel, teardown);
}

int main(void)
{
    struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 10];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_golden, (void *)&cases[i]);
        tests[n++].name = cases[i].name;
    }
    static const char *gr_names[4] = { "get_rows_f32", "get_rows_f16", "get_rows_q8_0",
                                       "get_rows_q4_0" };
    for (int i = 0; i < 4; i++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_get_rows, (void *)&cases[i]);
        tests[n++].name = gr_names[i];
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_get_rows_bad_ids);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_weight_offsets);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_f16_narrow);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_vec_vs_tiled);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_strided);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_refused);
    const int failed = _cmocka_run_group_tests("ops_matmul_bda", tests, n, setup_bda, teardown);
    return failed + run_texel();
}
