/* bench_ops_all: every op family of om_ops.h beyond matmul/matvec (those are bench/ops),
 * each against a CPU reference measured in the same run on the same cores.
 *   memory-bound ops: GB/s of the bytes one call must read + write (each input and the
 *     output once; get_rows: the gathered rows) vs memcpy moving the same byte count
 *     (half read, half written, one thread), ratio.
 *   attention prefill: GFLOP/s (4·Tq·Tk·hd·heads, halved when causal) vs OpenBLAS
 *     cblas_sgemm of the QKᵀ-shaped products (heads x {Tq, hd}·{Tk, hd}ᵀ, all cores).
 *   attention decode (Tq = 1): GB/s of the K/V bytes vs memcpy.
 *   conv2d: GFLOP/s (2·Cout·Ho·Wo·Cin·kh·kw) vs sgemm of the equivalent im2col GEMM
 *     {Cout, Cin·kh·kw}·{Ho·Wo, Cin·kh·kw}ᵀ; the im2col itself is not timed.
 * Rows for comparison: om_op_matmul on each conv GEMM (what im2col + matmul would
 * reach), a contiguous f32 copy and om_cmd_copy (the device's copy ceilings), and a
 * 256-value scale (the cost of one dispatch).
 * Timing: wall time of one om_cmd_submit (which waits) of N dispatches of the op
 * recorded in one command buffer (recording is not timed), divided by N; the reference
 * runs N times back to back the same way, so both see equally warm caches. N is chosen
 * from a warm-up so that one sample lasts ~30 ms. The N dispatches write the same dst,
 * so the recorder puts a barrier between them: the per-op time includes what a chain of
 * dependent ops pays per op. Each row keeps the best of rounds that alternate the op and
 * its reference (the least disturbed sample on a shared machine), with extra rounds
 * for cheap rows whose best op sample did not have both cores. "cores" is process CPU
 * time / wall time of the kept op sample. GPU timestamps are not used: wall time is what
 * a caller sees, and the references are wall times too.
 * Usage: bench_ops_all [filter]   (only the rows whose op name contains filter; with
 * OMNID_VALIDATION=1 the run fails if the validation layer reported an error) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "om_err.h"
#include "om_gpu.h"
#include "om_ops.h"
#include "om_type.h"

#define MEM_HALF ((size_t)32 << 20)   /* largest memcpy reference: 32 MiB read + written */
#define SAMPLE_S 0.03                 /* aimed length of one op sample */
#define ROW_S    2.0                  /* aimed op time per row (the reference adds its own) */
#define MAX_N    256                  /* dispatches per submit */
#define FULL_CORES 1.8                /* a sample with both cores (nearly) ours */
#define POOL_MAX 6

enum kind {
    K_ADD, K_MUL, K_SCALE, K_UNARY, K_SWIGLU, K_RMS_NORM, K_LAYER_NORM, K_GROUP_NORM,
    K_SOFTMAX, K_ROPE, K_ATTENTION, K_CONV2D, K_UPSAMPLE, K_CONCAT, K_COPY, K_GET_ROWS,
    K_MEAN, K_ARGMAX, K_MATMUL, K_BUF_COPY,
};

/* One op call: d is dst, a, b, e the operands in om_ops.h's order (attention q, k, v;
 * conv2d x, w, bias; norms x, w, b; softmax x, mask; rope x, pos; get_rows table, ids). */
typedef struct opcase {
    int       kind;
    om_tensor d, a, b, e;
    float     s;                      /* scale or eps */
    int       i, j;                   /* unary fn, groups, n_rot, causal, stride, dim; pad, mode */
} opcase;

/* A table row. flop > 0: compute-bound, reference sgemm of count products
 * {m, k}·{n, k}ᵀ; else memory-bound, reference memcpy of `bytes`. */
typedef struct row {
    const char *op;
    char        size[48];
    opcase      o;
    double      bytes, flop;
    int         m, n, k, count;
} row;

/* The device buffers of one row; the first failure sticks in err. A dry pool allocates
 * nothing (a row's name is read before its buffers are made). */
typedef struct pool {
    om_gpu *gpu;
    om_buf *buf[POOL_MAX];
    int     n, err, dry;
} pool;

static uint64_t nbytes(const om_tensor *t)
{
    return t->buf ? om_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3])
                  : 0;
}

/* Fills a host copy of n values of `type`: values in [-1, 1) from seed, or for I32
 * i·7919 mod seed (token ids, positions below seed). */
static int fill_host(void *h, int type, int64_t n, uint32_t seed)
{
    if (type == OM_TYPE_I32) {
        int32_t *v = h;
        for (int64_t i = 0; i < n; i++)
            v[i] = (int32_t)((uint64_t)i * 7919u % seed);
        return 0;
    }
    float *f = malloc((size_t)n * sizeof(float));
    if (!f)
        return OM_ENOMEM;
    om_bench_fill_random(f, (size_t)n, seed);
    const int err = om_quantize(type, f, h, n);
    free(f);
    return err;
}

/* A contiguous tensor in a new device buffer, filled by fill_host when seed != 0 (else
 * left as is: outputs). The buffer is padded to 256 bytes: the quantized kernels read
 * whole 8-byte words. On failure p->err is set and the tensor has no buffer. */
static om_tensor tens(pool *p, int type, int64_t n0, int64_t n1, int64_t n2, int64_t n3,
                      uint32_t seed)
{
    om_tensor t;
    memset(&t, 0, sizeof t);
    if (p->err || p->dry)
        return t;
    if (p->n == POOL_MAX) {
        p->err = OM_ERANGE;
        return t;
    }
    const uint64_t bytes = om_row_bytes(type, n0) * (uint64_t)(n1 * n2 * n3);
    const uint64_t size = (bytes + 255) & ~(uint64_t)255;
    om_buf *b = NULL;
    if ((p->err = om_buf_create(p->gpu, size, OM_BUF_DEVICE, &b)) < 0)
        return t;
    p->buf[p->n++] = b;
    if (seed) {
        void *h = calloc(1, size);
        p->err = h ? fill_host(h, type, n0 * n1 * n2 * n3, seed) : OM_ENOMEM;
        if (!p->err)
            p->err = om_buf_write(b, 0, h, size);
        free(h);
        if (p->err)
            return t;
    }
    return om_tensor_make(b, 0, type, n0, n1, n2, n3);
}

static void pool_release(pool *p)
{
    for (int i = 0; i < p->n; i++)
        om_buf_destroy(p->buf[i]);
    p->n = 0;
    p->err = 0;
}

static int record(om_cmd *c, const opcase *o)
{
    switch (o->kind) {
    case K_ADD:        return om_op_add(c, &o->d, &o->a, &o->b);
    case K_MUL:        return om_op_mul(c, &o->d, &o->a, &o->b);
    case K_SCALE:      return om_op_scale(c, &o->d, &o->a, o->s);
    case K_UNARY:      return om_op_unary(c, &o->d, &o->a, o->i);
    case K_SWIGLU:     return om_op_swiglu(c, &o->d, &o->a, &o->b);
    case K_RMS_NORM:   return om_op_rms_norm(c, &o->d, &o->a, &o->b, o->s);
    case K_LAYER_NORM: return om_op_layer_norm(c, &o->d, &o->a, &o->b, &o->e, o->s);
    case K_GROUP_NORM: return om_op_group_norm(c, &o->d, &o->a, &o->b, &o->e, o->i, o->s);
    case K_SOFTMAX:    return om_op_softmax(c, &o->d, &o->a, &o->b, o->s);
    case K_ROPE:       return om_op_rope(c, &o->d, &o->a, &o->b, o->i, 10000.0f, 1.0f, o->j);
    case K_ATTENTION:  return om_op_attention(c, &o->d, &o->a, &o->b, &o->e, NULL, o->s, o->i);
    case K_CONV2D:     return om_op_conv2d(c, &o->d, &o->a, &o->b, &o->e, o->i, o->j);
    case K_UPSAMPLE:   return om_op_upsample2x(c, &o->d, &o->a);
    case K_CONCAT:     return om_op_concat(c, &o->d, &o->a, &o->b, o->i);
    case K_COPY:       return om_op_copy(c, &o->d, &o->a);
    case K_GET_ROWS:   return om_op_get_rows(c, &o->d, &o->a, &o->b);
    case K_MEAN:       return om_op_mean(c, &o->d, &o->a);
    case K_ARGMAX:     return om_op_argmax(c, &o->d, &o->a);
    case K_MATMUL:     return om_op_matmul(c, &o->d, &o->a, &o->b);
    case K_BUF_COPY:
        return om_cmd_copy(c, o->d.buf, o->d.off, o->a.buf, o->a.off, nbytes(&o->a));
    }
    return OM_EINVAL;
}

/* Elementwise and row ops over activations shaped like the models' (LLaMA n_embd 2048 x
 * 256 prefill tokens and its 5632-wide FFN; ViT width 768 / MLP 3072 x 257 tokens; UNet
 * 64x64x320). Returns 1 past the last id. */
static int make_eltwise(int id, pool *p, row *r)
{
    opcase *o = &r->o;
    const int F = OM_TYPE_F32;
    switch (id) {
    case 0:
        r->op = "add";
        snprintf(r->size, sizeof r->size, "2048x256 + 2048x256");
        o->kind = K_ADD;
        o->a = tens(p, F, 2048, 256, 1, 1, 1);
        o->b = tens(p, F, 2048, 256, 1, 1, 2);
        o->d = tens(p, F, 2048, 256, 1, 1, 0);
        return 0;
    case 1:
        r->op = "mul";
        snprintf(r->size, sizeof r->size, "2048x256 * 2048 (bcast)");
        o->kind = K_MUL;
        o->a = tens(p, F, 2048, 256, 1, 1, 1);
        o->b = tens(p, F, 2048, 1, 1, 1, 2);
        o->d = tens(p, F, 2048, 256, 1, 1, 0);
        return 0;
    case 2:
        r->op = "mul";
        snprintf(r->size, sizeof r->size, "2048x256 * 2048x256");
        o->kind = K_MUL;
        o->a = tens(p, F, 2048, 256, 1, 1, 1);
        o->b = tens(p, F, 2048, 256, 1, 1, 2);
        o->d = tens(p, F, 2048, 256, 1, 1, 0);
        return 0;
    case 3:
        r->op = "scale";
        snprintf(r->size, sizeof r->size, "2048x256");
        o->kind = K_SCALE;
        o->a = tens(p, F, 2048, 256, 1, 1, 1);
        o->d = tens(p, F, 2048, 256, 1, 1, 0);
        o->s = 0.5f;
        return 0;
    case 4:
    case 5:
    case 6:
        r->op = id == 4 ? "gelu (erf)" : id == 5 ? "gelu (tanh)" : "quick_gelu";
        snprintf(r->size, sizeof r->size, "3072x257");
        o->kind = K_UNARY;
        o->i = id == 4 ? OM_UNARY_GELU_ERF : id == 5 ? OM_UNARY_GELU_TANH : OM_UNARY_QUICK_GELU;
        o->a = tens(p, F, 3072, 257, 1, 1, 1);
        o->d = tens(p, F, 3072, 257, 1, 1, 0);
        return 0;
    case 7:
        r->op = "silu";
        snprintf(r->size, sizeof r->size, "5632x256");
        o->kind = K_UNARY;
        o->i = OM_UNARY_SILU;
        o->a = tens(p, F, 5632, 256, 1, 1, 1);
        o->d = tens(p, F, 5632, 256, 1, 1, 0);
        return 0;
    case 8:
        r->op = "swiglu";
        snprintf(r->size, sizeof r->size, "5632x256 (gate, up)");
        o->kind = K_SWIGLU;
        o->a = tens(p, F, 5632, 256, 1, 1, 1);
        o->b = tens(p, F, 5632, 256, 1, 1, 2);
        o->d = tens(p, F, 5632, 256, 1, 1, 0);
        return 0;
    case 9:
        r->op = "rms_norm";
        snprintf(r->size, sizeof r->size, "2048x256, w");
        o->kind = K_RMS_NORM;
        o->a = tens(p, F, 2048, 256, 1, 1, 1);
        o->b = tens(p, F, 2048, 1, 1, 1, 2);
        o->d = tens(p, F, 2048, 256, 1, 1, 0);
        o->s = 1e-5f;
        return 0;
    case 10:
        r->op = "layer_norm";
        snprintf(r->size, sizeof r->size, "768x257, w, b");
        o->kind = K_LAYER_NORM;
        o->a = tens(p, F, 768, 257, 1, 1, 1);
        o->b = tens(p, F, 768, 1, 1, 1, 2);
        o->e = tens(p, F, 768, 1, 1, 1, 3);
        o->d = tens(p, F, 768, 257, 1, 1, 0);
        o->s = 1e-6f;
        return 0;
    case 11:
        r->op = "group_norm";
        snprintf(r->size, sizeof r->size, "64x64x320, 32 groups");
        o->kind = K_GROUP_NORM;
        o->a = tens(p, F, 64, 64, 320, 1, 1);
        o->b = tens(p, F, 320, 1, 1, 1, 2);
        o->e = tens(p, F, 320, 1, 1, 1, 3);
        o->d = tens(p, F, 64, 64, 320, 1, 0);
        o->i = 32;
        o->s = 1e-5f;
        return 0;
    case 12:
        r->op = "softmax";
        snprintf(r->size, sizeof r->size, "256x256x32, mask");
        o->kind = K_SOFTMAX;
        o->a = tens(p, F, 256, 256, 32, 1, 1);
        o->b = tens(p, F, 256, 256, 1, 1, 2);
        o->d = tens(p, F, 256, 256, 32, 1, 0);
        o->s = 0.125f;
        return 0;
    case 13:
        r->op = "rope (norm)";
        snprintf(r->size, sizeof r->size, "64x32x256");
        o->kind = K_ROPE;
        o->a = tens(p, F, 64, 32, 256, 1, 1);
        o->b = tens(p, OM_TYPE_I32, 256, 1, 1, 1, 256);
        o->d = tens(p, F, 64, 32, 256, 1, 0);
        o->i = 64;
        o->j = OM_ROPE_NORM;
        return 0;
    }
    return 1;
}

/* Attention (TinyLlama-shaped GQA: 32 query heads over 4 KV heads of 64, F16 KV cache;
 * ViT: 12 heads of 64 over 257 tokens, F32) and conv2d (UNet 3x3 at 64x64, ViT patch
 * embedding 224² patch 14). */
static int make_compute(int id, pool *p, row *r)
{
    opcase *o = &r->o;
    const int F = OM_TYPE_F32, H = OM_TYPE_F16;
    switch (id) {
    case 0:
        r->op = "attn prefill";
        snprintf(r->size, sizeof r->size, "T=256 causal 32/4x64 f16");
        o->kind = K_ATTENTION;
        o->a = tens(p, F, 64, 32, 256, 1, 1);
        o->b = tens(p, H, 64, 4, 256, 1, 2);
        o->e = tens(p, H, 64, 4, 256, 1, 3);
        o->d = tens(p, F, 64, 32, 256, 1, 0);
        o->s = 0.125f;
        o->i = 1;
        r->flop = 4.0 * 256 * 256 * 64 * 32 / 2;
        r->m = r->n = 256, r->k = 64, r->count = 32;
        return 0;
    case 1:
        r->op = "attn ViT";
        snprintf(r->size, sizeof r->size, "T=257 full 12x64 f32");
        o->kind = K_ATTENTION;
        o->a = tens(p, F, 64, 12, 257, 1, 1);
        o->b = tens(p, F, 64, 12, 257, 1, 2);
        o->e = tens(p, F, 64, 12, 257, 1, 3);
        o->d = tens(p, F, 64, 12, 257, 1, 0);
        o->s = 0.125f;
        r->flop = 4.0 * 257 * 257 * 64 * 12;
        r->m = r->n = 257, r->k = 64, r->count = 12;
        return 0;
    case 2:
    case 3:
    case 4: {
        /* id 4: 4 query heads over the same K/V, each K/V byte loaded once: what a
         * kernel that serves a KV head's 8 query heads together would load. */
        const int tk = id == 2 ? 1024 : 4096, nh = id == 4 ? 4 : 32;
        r->op = "attn decode";
        snprintf(r->size, sizeof r->size, "Tq=1 Tk=%d %d/4x64 f16", tk, nh);
        o->kind = K_ATTENTION;
        o->a = tens(p, F, 64, nh, 1, 1, 1);
        o->b = tens(p, H, 64, 4, tk, 1, 2);
        o->e = tens(p, H, 64, 4, tk, 1, 3);
        o->d = tens(p, F, 64, nh, 1, 1, 0);
        o->s = 0.125f;
        o->i = 1;
        r->bytes = 2.0 * 64 * 4 * tk * 2;
        return 0;
    }
    case 5:
    case 6: {
        const int ch = id == 5 ? 64 : 320;
        r->op = "conv2d 3x3";
        snprintf(r->size, sizeof r->size, "64x64x%d -> %d, pad 1", ch, ch);
        o->kind = K_CONV2D;
        o->a = tens(p, F, 64, 64, ch, 1, 1);
        o->b = tens(p, F, 3, 3, ch, ch, 2);
        o->e = tens(p, F, ch, 1, 1, 1, 3);
        o->d = tens(p, F, 64, 64, ch, 1, 0);
        o->i = 1;
        o->j = 1;
        r->m = ch, r->n = 64 * 64, r->k = ch * 9, r->count = 1;
        r->flop = 2.0 * r->m * r->n * r->k;
        return 0;
    }
    case 7:
        r->op = "conv2d patch";
        snprintf(r->size, sizeof r->size, "224x224x3 -> 768, k=s=14");
        o->kind = K_CONV2D;
        o->a = tens(p, F, 224, 224, 3, 1, 1);
        o->b = tens(p, F, 14, 14, 3, 768, 2);
        o->e = tens(p, F, 768, 1, 1, 1, 3);
        o->d = tens(p, F, 16, 16, 768, 1, 0);
        o->i = 14;
        o->j = 0;
        r->m = 768, r->n = 256, r->k = 3 * 14 * 14, r->count = 1;
        r->flop = 2.0 * r->m * r->n * r->k;
        return 0;
    case 8:
    case 9:
    case 10: {
        /* The GEMMs of the three convolutions above through om_op_matmul (y = x·Wᵀ, W
         * {K, Cout}, x {K, Ho·Wo}): what conv2d would reach as im2col + matmul, the
         * im2col not counted. */
        static const int gemm[3][3] = { { 64, 4096, 576 }, { 320, 4096, 2880 },
                                        { 768, 256, 588 } };
        const int *g = gemm[id - 8];
        r->op = "matmul (conv)";
        snprintf(r->size, sizeof r->size, "conv GEMM %dx%dx%d", g[0], g[1], g[2]);
        o->kind = K_MATMUL;
        o->a = tens(p, F, g[2], g[1], 1, 1, 1);
        o->b = tens(p, F, g[2], g[0], 1, 1, 2);
        o->d = tens(p, F, g[0], g[1], 1, 1, 0);
        r->m = g[0], r->n = g[1], r->k = g[2], r->count = 1;
        r->flop = 2.0 * r->m * r->n * r->k;
        return 0;
    }
    }
    return 1;
}

/* Layout ops, gathers, reductions, and the cost of a dispatch that does nothing much. */
static int make_layout(int id, pool *p, row *r)
{
    opcase *o = &r->o;
    const int F = OM_TYPE_F32;
    switch (id) {
    case 0:
        r->op = "upsample2x";
        snprintf(r->size, sizeof r->size, "64x64x320 -> 128x128");
        o->kind = K_UPSAMPLE;
        o->a = tens(p, F, 64, 64, 320, 1, 1);
        o->d = tens(p, F, 128, 128, 320, 1, 0);
        return 0;
    case 1:
        r->op = "concat";
        snprintf(r->size, sizeof r->size, "64x64x(320+320), dim 2");
        o->kind = K_CONCAT;
        o->a = tens(p, F, 64, 64, 320, 1, 1);
        o->b = tens(p, F, 64, 64, 320, 1, 2);
        o->d = tens(p, F, 64, 64, 640, 1, 0);
        o->i = 2;
        return 0;
    case 2:
        r->op = "copy f32->f16";
        snprintf(r->size, sizeof r->size, "2048x256");
        o->kind = K_COPY;
        o->a = tens(p, F, 2048, 256, 1, 1, 1);
        o->d = tens(p, OM_TYPE_F16, 2048, 256, 1, 1, 0);
        return 0;
    case 3: {
        r->op = "copy permute";
        snprintf(r->size, sizeof r->size, "64x32x256 -> 64x256x32");
        o->kind = K_COPY;
        const om_tensor src = tens(p, F, 64, 32, 256, 1, 1);
        o->a = om_tensor_permute(&src, 0, 2, 1, 3);
        o->d = tens(p, F, 64, 256, 32, 1, 0);
        r->bytes = 2.0 * 64 * 32 * 256 * 4;
        return 0;
    }
    case 4:
        r->op = "copy f32";
        snprintf(r->size, sizeof r->size, "64x64x320 (contiguous)");
        o->kind = K_COPY;
        o->a = tens(p, F, 64, 64, 320, 1, 1);
        o->d = tens(p, F, 64, 64, 320, 1, 0);
        return 0;
    case 5:
        /* Not an op: the recorder's vkCmdCopyBuffer, what a concat along the outermost
         * dimension or a contiguous copy could be. */
        r->op = "om_cmd_copy";
        snprintf(r->size, sizeof r->size, "64x64x320 f32");
        o->kind = K_BUF_COPY;
        o->a = tens(p, F, 64, 64, 320, 1, 1);
        o->d = tens(p, F, 64, 64, 320, 1, 0);
        return 0;
    case 6:
    case 7: {
        const int type = id == 6 ? OM_TYPE_F16 : OM_TYPE_Q4_0;
        r->op = id == 6 ? "get_rows f16" : "get_rows q4_0";
        snprintf(r->size, sizeof r->size, "256 of 2048x32000");
        o->kind = K_GET_ROWS;
        o->a = tens(p, type, 2048, 32000, 1, 1, 1);
        o->b = tens(p, OM_TYPE_I32, 256, 1, 1, 1, 32000);
        o->d = tens(p, F, 2048, 256, 1, 1, 0);
        r->bytes = 256.0 * (double)om_row_bytes(type, 2048) + 256 * 4 + 256.0 * 2048 * 4;
        return 0;
    }
    case 8:
        r->op = "mean";
        snprintf(r->size, sizeof r->size, "768x257");
        o->kind = K_MEAN;
        o->a = tens(p, F, 768, 257, 1, 1, 1);
        o->d = tens(p, F, 1, 257, 1, 1, 0);
        return 0;
    case 9:
        r->op = "argmax";
        snprintf(r->size, sizeof r->size, "32000 (logits)");
        o->kind = K_ARGMAX;
        o->a = tens(p, F, 32000, 1, 1, 1, 1);
        o->d = tens(p, OM_TYPE_I32, 1, 1, 1, 1, 0);
        return 0;
    case 10:
        /* Next to nothing to move: the per-dispatch cost (record, barrier, launch). */
        r->op = "scale (tiny)";
        snprintf(r->size, sizeof r->size, "256 (dispatch floor)");
        o->kind = K_SCALE;
        o->a = tens(p, F, 256, 1, 1, 1, 1);
        o->d = tens(p, F, 256, 1, 1, 1, 0);
        o->s = 0.5f;
        return 0;
    }
    return 1;
}

/* Row `id` of the table in r, its buffers in p. Returns 1 past the last row. */
static int make_row(int id, pool *p, row *r)
{
    static int (*const families[3])(int, pool *, row *) = { make_eltwise, make_compute,
                                                            make_layout };
    static const int cases[3] = { 14, 11, 11 };   /* of each family, ids 0.. */
    memset(r, 0, sizeof *r);
    for (int f = 0; f < 3; f++) {
        if (id < cases[f])
            return families[f](id, p, r);
        id -= cases[f];
    }
    return 1;
}

/* One submit of n dispatches, timed into best (NULL: untimed). */
static int submit_n(om_gpu *gpu, const opcase *o, int n, om_bench_sample *best)
{
    om_cmd *c = NULL;
    int err = om_cmd_begin(gpu, &c);
    if (err)
        return err;
    for (int i = 0; i < n && !err; i++)
        err = record(c, o);
    if (err) {
        om_cmd_abort(c);
        return err;
    }
    const double t0 = om_bench_now_s(), c0 = om_bench_cpu_s();
    if ((err = om_cmd_submit(c)) < 0)
        return err;
    if (best)
        om_bench_keep(best, t0, c0);
    return 0;
}

/* The reference of row r, n times back to back. */
static void reference(const row *r, int n, char *mem, const float *A, const float *B, float *C)
{
    for (int i = 0; i < n; i++) {
        if (r->flop > 0) {
            for (int h = 0; h < r->count; h++)
                om_bench_sgemm_nt(r->m, r->n, r->k, A + (size_t)h * r->m * r->k,
                                  B + (size_t)h * r->n * r->k, C + (size_t)h * r->m * r->n);
        } else {
            memcpy(mem + MEM_HALF, mem, (size_t)(r->bytes / 2));
            /* The copies must not be merged or dropped as dead stores. */
            __asm__ volatile("" ::: "memory");
        }
    }
}

static int clampi(double v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : (int)v;
}

static int run_row(om_gpu *gpu, const row *r, char *mem)
{
    om_bench_sample one = OM_BENCH_SAMPLE_INIT, dev = OM_BENCH_SAMPLE_INIT,
                    ref = OM_BENCH_SAMPLE_INIT;
    float *A = NULL, *B = NULL, *C = NULL;
    int err = submit_n(gpu, &r->o, 1, NULL);
    if (!err)
        err = submit_n(gpu, &r->o, 1, &one);
    if (!err && one.sec < 0.1)   /* one disturbed sample would set N too low */
        err = submit_n(gpu, &r->o, 1, &one);
    if (err)
        return err;
    const int n = clampi(SAMPLE_S / one.sec, 1, MAX_N);
    const int rounds = clampi(ROW_S / (n * one.sec), 3, 20);
    if (r->flop > 0) {
        const size_t h = (size_t)r->count;
        A = malloc(h * r->m * r->k * sizeof(float));
        B = malloc(h * r->n * r->k * sizeof(float));
        C = malloc(h * r->m * r->n * sizeof(float));
        if (!A || !B || !C)
            err = OM_ENOMEM;
        else {
            om_bench_fill_random(A, h * r->m * r->k, 5);
            om_bench_fill_random(B, h * r->n * r->k, 6);
            reference(r, 1, mem, A, B, C);
        }
    } else if (r->bytes / 2 > MEM_HALF) {
        err = OM_ERANGE;
    }
    /* While the kept op sample had under FULL_CORES (someone else held a core), rows
     * of cheap rounds get up to as many rounds again. Ops that never use both cores
     * (one workgroup) just run the extra rounds. */
    const int cheap = n * one.sec < 0.25 * ROW_S;
    for (int i = 0; i < 2 * rounds && !err; i++) {
        if (i >= rounds && (!cheap || dev.cpu >= FULL_CORES * dev.sec))
            break;
        if ((err = submit_n(gpu, &r->o, n, &dev)) < 0)
            break;
        const double t0 = om_bench_now_s(), c0 = om_bench_cpu_s();
        reference(r, n, mem, A, B, C);
        om_bench_keep(&ref, t0, c0);
    }
    free(A);
    free(B);
    free(C);
    if (err)
        return err;
    const double sec = dev.sec / n, ref_sec = ref.sec / n;
    printf("| %-13s | %-24s | %3d | %9.4f | %4.2f | ", r->op, r->size, n, sec * 1e3,
           dev.cpu / dev.sec);
    if (r->flop > 0) {
        const double ref_flop = 2.0 * r->m * r->n * (double)r->k * r->count;
        printf("%7.1f GFLOP/s | sgemm %6.1f GFLOP/s, %4.2f cores | %5.3f |\n",
               r->flop / sec / 1e9, ref_flop / ref_sec / 1e9, ref.cpu / ref.sec,
               (r->flop / sec) / (ref_flop / ref_sec));
    } else {
        printf("%7.2f GB/s | memcpy %6.2f GB/s | %5.3f |\n", r->bytes / sec / 1e9,
               r->bytes / ref_sec / 1e9, ref_sec / sec);
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : "";
    char msg[512];
    om_gpu *gpu;
    om_gpu_opts opts = { .quiet = 1 };
    if (om_gpu_open(&gpu, &opts, msg, sizeof msg) < 0) {
        fprintf(stderr, "bench_ops_all: %s\n", msg);
        return 1;
    }
    char *mem = malloc(2 * MEM_HALF);
    if (!mem) {
        om_gpu_close(gpu);
        return 1;
    }
    memset(mem, 1, 2 * MEM_HALF);
    const om_gpu_info *info = om_gpu_get_info(gpu);
    printf("bench_ops_all on %s (subgroup %u); OpenBLAS %d threads; memcpy 1 thread\n",
           info->name, info->subgroup_size, openblas_get_num_threads());
    om_bench_print_load("at start");
    printf("\n| op | size | N | ms / op | cores | rate | reference (same rounds) | ratio |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    pool dry = { .gpu = gpu, .dry = 1 }, p = { .gpu = gpu };
    row r;
    int err = 0;
    const char *failed = NULL;
    for (int id = 0; !err && make_row(id, &dry, &r) == 0; id++) {
        if (!strstr(r.op, filter))
            continue;
        make_row(id, &p, &r);
        if (!(err = p.err)) {
            if (r.flop == 0 && r.bytes == 0)
                r.bytes = (double)(nbytes(&r.o.d) + nbytes(&r.o.a) + nbytes(&r.o.b) +
                                   nbytes(&r.o.e));
            err = run_row(gpu, &r, mem);
        }
        if (err)
            failed = r.op;
        pool_release(&p);
    }
    om_bench_print_load("at end");
    /* With OMNID_VALIDATION=1 (slow: not for numbers) the run doubles as a usage check. */
    const int verr = om_gpu_validation_errors(gpu);
    if (!err && verr > 0) {
        err = OM_EINTERNAL;
        failed = "validation";
        fprintf(stderr, "bench_ops_all: the validation layer reported %d errors\n", verr);
    }
    if (err)
        fprintf(stderr, "bench_ops_all: %s: %s (%s)\n", failed, om_strerror(err),
                om_gpu_last_error(gpu));
    free(mem);
    om_gpu_close(gpu);
    return err ? 1 : 0;
}
