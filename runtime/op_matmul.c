/* op_matmul.c: om_op_matmul, y = x·Wᵀ with W in any weight type (F32, F16, Q8_0, Q4_0
 * dequantized in the kernel), and the weight checks om_op_get_rows shares.
 *
 * M == 1 (decode) takes shaders/matvec.comp: memory-bound, lanes split each row of W.
 * M > 1 takes shaders/matmul.comp: register tiles of TM x-rows by WG*TN W-rows.
 * Tile sizes are specialization constants picked per device: on llvmpipe (CPU) every
 * per-lane load is a gather, so tiles are large to feed many FMAs per load; a GPU gets
 * smaller tiles with more workgroups in flight.
 *
 * The matvec reads W through a texel-buffer view when the device's weight access is
 * OM_ACCESS_TEXEL (CPU devices by default, see om_gpu.h): the _tb variants, with the
 * weight's byte offset in the view in place of its address. */
#include <stdio.h>

#include "op_internal.h"
#include "op_matmul.h"

/* Push constants of matvec.comp and matmul.comp (same layout); strides in bytes. */
struct mm_push {
    uint64_t w, x, y;
    uint32_t K, N, M;
    uint32_t w_nb1, w_nb2, w_nb3;
    uint32_t x_nb1, x_nb2, x_nb3;
    uint32_t y_nb1, y_nb2, y_nb3;
    uint32_t B2;
    uint32_t r2, r3;
};

static const char *variant(int type)
{
    switch (type) {
    case OM_TYPE_F32:  return "f32";
    case OM_TYPE_F16:  return "f16";
    case OM_TYPE_Q8_0: return "q8_0";
    case OM_TYPE_Q4_0: return "q4_0";
    default:           return NULL;
    }
}

/* The alignment the kernels' loads need of a row start: one 16-byte load per 4 F32
 * values, one 8-byte load per 4 F16 values; quant blocks are 2-byte aligned and read
 * through the aligned 8-byte words around them. */
static uint64_t row_align(int type)
{
    switch (type) {
    case OM_TYPE_F32: return 16;
    case OM_TYPE_F16: return 8;
    default:          return 2;
    }
}

/* Byte stride of dim i for the push constants; a dim of size 1 is never stepped over,
 * so its stride (unchecked) is passed as 0. */
static uint32_t stride(const om_tensor *t, int i)
{
    return t->ne[i] > 1 ? (uint32_t)t->nb[i] : 0;
}

int op_check_weight(om_cmd *c, const char *op, const char *what, const om_tensor *w)
{
    char s[96];
    if (!w)
        return op_fail(c, OM_EINVAL, op, "%s is missing", what);
    if (!w->buf)
        return op_fail(c, OM_EINVAL, op, "%s has no buffer (an out-of-range view?)", what);
    if (!variant(w->type))
        return op_fail(c, OM_EINVAL, op, "%s is %s, expected f32, f16, q8_0 or q4_0", what,
                       op_shape(w, s, sizeof(s)));
    for (int i = 0; i < 4; i++)
        if (w->ne[i] < 1 || w->ne[i] >= OP_MAX_INDEX)
            return op_fail(c, OM_EINVAL, op, "%s has size %lld in dim %d", what,
                           (long long)w->ne[i], i);
    const int64_t bk = om_type_block(w->type);
    const int64_t step = bk > 1 ? bk : 4;
    if (w->ne[0] % step)
        return op_fail(c, OM_EINVAL, op, "%s %s: rows of %lld values are not a multiple of %lld",
                       what, op_shape(w, s, sizeof(s)), (long long)w->ne[0], (long long)step);
    if (w->nb[0] != om_type_block_bytes(w->type))
        return op_fail(c, OM_EINVAL, op, "%s: rows must be contiguous (nb[0] = %llu)", what,
                       (unsigned long long)w->nb[0]);
    const uint64_t al = row_align(w->type);
    if (w->off % al)
        return op_fail(c, OM_EINVAL, op, "%s: offset %llu is not a multiple of %llu", what,
                       (unsigned long long)w->off, (unsigned long long)al);
    const uint64_t size = om_buf_size(w->buf);
    uint64_t span = om_row_bytes(w->type, w->ne[0]);
    for (int i = 1; i < 4; i++) {
        if (w->ne[i] > 1 && (w->nb[i] % al || w->nb[i] > UINT32_MAX))
            return op_fail(c, OM_EINVAL, op, "%s: stride %llu bytes in dim %d is not a multiple "
                           "of %llu below 2^32", what, (unsigned long long)w->nb[i], i,
                           (unsigned long long)al);
        /* each term < 2^63; capping it at size keeps the sum from wrapping */
        const uint64_t reach = (uint64_t)(w->ne[i] - 1) * w->nb[i];
        span += reach < size ? reach : size;
    }
    /* Quant blocks are read in whole aligned 8-byte words, up to 6 bytes past a block. */
    const uint64_t need = w->off > size ? size + 1 : (w->off + span + 7) & ~(uint64_t)7;
    if (w->off > size || span > size - w->off || (al == 2 && need > size))
        return op_fail(c, OM_ERANGE, op, "%s %s: bytes [%llu, %llu) exceed its buffer of %llu%s",
                       what, op_shape(w, s, sizeof(s)), (unsigned long long)w->off,
                       (unsigned long long)(al == 2 ? need : w->off + span),
                       (unsigned long long)size,
                       al == 2 ? " (quantized rows are read in 8-byte words: pad the buffer)" : "");
    return 0;
}

/* x and y: F32, contiguous rows, strides that fit the push constants; x rows 16-byte
 * aligned for the kernels' 16-byte loads. */
static int check_act(om_cmd *c, const char *what, const om_tensor *t, uint64_t align)
{
    int err = op_check(c, "matmul", what, t, OP_F32);
    if (err < 0)
        return err;
    if ((err = op_unit_rows(c, "matmul", what, t)) < 0)
        return err;
    if (t->off % align)
        return op_fail(c, OM_EINVAL, "matmul", "%s: offset %llu is not a multiple of %llu", what,
                       (unsigned long long)t->off, (unsigned long long)align);
    for (int i = 1; i < 4; i++)
        if (t->ne[i] > 1 && (t->nb[i] % align || t->nb[i] > UINT32_MAX))
            return op_fail(c, OM_EINVAL, "matmul", "%s: stride %llu bytes in dim %d is not a "
                           "multiple of %llu below 2^32", what, (unsigned long long)t->nb[i], i,
                           (unsigned long long)align);
    return 0;
}

int op_mm_device_ok(om_cmd *c, const char *op)
{
    const om_gpu_info *info = om_gpu_get_info(om_cmd_gpu(c));
    if (!info->has_int64 || !info->has_subgroup_arith || info->subgroup_size < 1 ||
        info->subgroup_size > info->max_wg_invocations)
        return op_fail(c, OM_EUNSUPPORTED, op, "the device lacks shaderInt64 or subgroup "
                       "arithmetic (subgroup size %u)", info->subgroup_size);
    return 0;
}

void op_mm_tiles(const om_gpu_info *info, int type, int64_t K, uint32_t *rows, uint32_t *tm,
                 uint32_t *tn)
{
    const int cpu = info->kind == OM_DEV_CPU;
    const int quant = om_type_block(type) > 1;
    /* llvmpipe: a matvec workgroup loads x once for its R rows (x costs as many loads
     * per value as f32 weights); 16 measured best on 2048-4096-wide rows (8 and 32 no
     * better, 32 at 2048 within noise). F16 and Q8_0 rows of <= 1024 values (768:
     * stories110M) read through texels take 64: 768x32000 8-12% faster (32: about half
     * that). Q4_0 measured the same at 64, and by address 64 was slower (q8_0 and q4_0
     * 768x32000 1.4-1.7x the time), so those keep 16. A GPU wants many small workgroups. */
    const int short_rows = info->weight_access == OM_ACCESS_TEXEL && K <= 1024 &&
                           (type == OM_TYPE_F16 || type == OM_TYPE_Q8_0);
    *rows = cpu ? (short_rows ? 64 : 16) : 2;
    /* llvmpipe: TM*TN FMAs per TN + TM/8 loads (each a gather); 16x16 measured best at
     * 1024^3. Quant blocks keep TN decoded blocks live besides the TM*TN sums: at 16x16
     * llvmpipe's JIT took 6-8 s per quant pipeline, at 16x8 about 2 s. GPU: one x row
     * per lane of a 32-wide subgroup, 4 W rows per lane. */
    *tm = cpu ? 16 : (info->subgroup_size < 32 ? info->subgroup_size : 32);
    *tn = cpu ? (quant ? 8 : 16) : 4;
}

/* Bytes [w->off, end) of w's buffer that the kernels read. */
static uint64_t weight_end(const om_tensor *w)
{
    uint64_t end = w->off + om_row_bytes(w->type, w->ne[0]);
    for (int i = 1; i < 4; i++)
        end += (uint64_t)(w->ne[i] - 1) * w->nb[i];
    return end;
}

/* The matvec through a texel view of W's buffer: RGBA16F for F16 (the fetch converts
 * the halves), RGBA32UI for the rest. The view is bounded by maxTexelBufferElements
 * (and 2^31 bytes), so a weight past its end is refused rather than read wrapped. */
static int matvec_texel(om_cmd *c, const om_tensor *w, struct mm_push *pc, const uint32_t *spec,
                        uint32_t gx, uint32_t gy, uint32_t gz, om_buf *const *reads,
                        om_buf *const *writes)
{
    om_gpu *gpu = om_cmd_gpu(c);
    /* F16 rows of a multiple of 16 values take 16 per block (see quant.glsl). */
    const int x16 = w->type == OM_TYPE_F16 && w->ne[0] % 16 == 0;
    const int fmt = w->type == OM_TYPE_F16 ? OM_TEXEL_RGBA16F : OM_TEXEL_RGBA32UI;
    const uint64_t texel = fmt == OM_TEXEL_RGBA16F ? 8 : 16;
    char name[32], why[256], sw[96];
    snprintf(name, sizeof(name), "matvec_%s_tb", x16 ? "f16x16" : variant(w->type));
    om_pipe *p;
    uint32_t base;
    uint64_t limit;
    int err = om_gpu_pipeline_texel(gpu, name, spec, 2, sizeof(*pc), &p);
    if (err == 0)
        err = om_cmd_bind_texels(c, p, w->buf, fmt, &base, &limit);
    if (err < 0) {
        snprintf(why, sizeof(why), "%s", om_gpu_last_error(gpu));
        return op_fail(c, err, "matmul", "%s: %s", name, why);
    }
    const uint64_t end = (weight_end(w) + texel - 1) / texel * texel;
    if (end > limit)
        return op_fail(c, OM_ERANGE, "matmul", "w %s: bytes up to %llu of its buffer are past its "
                       "texel view of %llu bytes (maxTexelBufferElements %u, 2^31 bytes); "
                       "split the buffer or set OMNID_WEIGHT_ACCESS=bda",
                       op_shape(w, sw, sizeof(sw)), (unsigned long long)end,
                       (unsigned long long)limit, om_gpu_get_info(gpu)->max_texel_elements);
    pc->w = base + w->off;
    err = om_cmd_dispatch(c, p, pc, sizeof(*pc), gx, gy, gz, reads, 2, writes, 1);
    if (err < 0) {
        snprintf(why, sizeof(why), "%s", om_gpu_last_error(gpu));
        return op_fail(c, err, "matmul", "dispatch %s: %s", name, why);
    }
    return 0;
}

int om_op_matmul(om_cmd *c, const om_tensor *y, const om_tensor *x, const om_tensor *w)
{
    char sy[96], sx[96], sw[96];
    int err;
    if ((err = op_check_weight(c, "matmul", "w", w)) < 0 ||
        (err = check_act(c, "x", x, 16)) < 0 || (err = check_act(c, "y", y, 4)) < 0 ||
        (err = op_mm_device_ok(c, "matmul")) < 0)
        return err;
    if (x->ne[0] != w->ne[0] || y->ne[0] != w->ne[1] || y->ne[1] != x->ne[1] ||
        y->ne[2] != x->ne[2] || y->ne[3] != x->ne[3] || x->ne[2] % w->ne[2] ||
        x->ne[3] % w->ne[3])
        return op_fail(c, OM_EINVAL, "matmul", "y %s = x %s · wᵀ %s: shapes do not match",
                       op_shape(y, sy, sizeof(sy)), op_shape(x, sx, sizeof(sx)),
                       op_shape(w, sw, sizeof(sw)));
    const om_gpu_info *info = om_gpu_get_info(om_cmd_gpu(c));
    const uint32_t wg = info->subgroup_size;
    uint32_t rows, tm, tn;
    op_mm_tiles(info, w->type, x->ne[0], &rows, &tm, &tn);

    const int64_t K = x->ne[0], N = w->ne[1], M = x->ne[1];
    const int64_t batches = x->ne[2] * x->ne[3];
    const int vec = M == 1;
    int64_t gx, gy;
    if (vec) {
        uint32_t x32, y32;
        op_rows_grid((N + rows - 1) / rows, &x32, &y32);
        gx = x32;
        gy = y32;
    } else {
        gx = (N + (int64_t)wg * tn - 1) / ((int64_t)wg * tn);
        gy = (M + tm - 1) / tm;
    }
    if (gx > OP_MAX_GROUPS || gy > OP_MAX_GROUPS || batches > OP_MAX_GROUPS)
        return op_fail(c, OM_ERANGE, "matmul", "y %s needs a grid of %lld x %lld x %lld "
                       "workgroups, beyond %u per dimension", op_shape(y, sy, sizeof(sy)),
                       (long long)gx, (long long)gy, (long long)batches, OP_MAX_GROUPS);

    struct mm_push pc = {
        .w = op_addr(w), .x = op_addr(x), .y = op_addr(y),
        .K = (uint32_t)K, .N = (uint32_t)N, .M = (uint32_t)M,
        .w_nb1 = stride(w, 1), .w_nb2 = stride(w, 2), .w_nb3 = stride(w, 3),
        .x_nb1 = stride(x, 1), .x_nb2 = stride(x, 2), .x_nb3 = stride(x, 3),
        .y_nb1 = stride(y, 1), .y_nb2 = stride(y, 2), .y_nb3 = stride(y, 3),
        .B2 = (uint32_t)x->ne[2],
        .r2 = (uint32_t)(x->ne[2] / w->ne[2]), .r3 = (uint32_t)(x->ne[3] / w->ne[3]),
    };
    const uint32_t spec_vec[2] = { wg, rows };
    const uint32_t spec_mm[3] = { wg, tm, tn };
    /* Only the matvec: the tiled kernel feeds TM FMAs per weight load, and texel reads
     * there measured no clear gain (PERFORMANCE.md "## Ops"). */
    if (vec && info->weight_access == OM_ACCESS_TEXEL) {
        om_buf *const rd[2] = { w->buf, x->buf }, *const wr[1] = { y->buf };
        return matvec_texel(c, w, &pc, spec_vec, (uint32_t)gx, (uint32_t)gy, (uint32_t)batches,
                            rd, wr);
    }
    char name[32];
    snprintf(name, sizeof(name), "%s_%s", vec ? "matvec" : "matmul", variant(w->type));
    const om_tensor *reads[2] = { w, x };
    return op_dispatch(c, "matmul", name, vec ? spec_vec : spec_mm, vec ? 2 : 3, &pc, sizeof(pc),
                       (uint32_t)gx, (uint32_t)gy, (uint32_t)batches, reads, 2, &y, 1);
}
