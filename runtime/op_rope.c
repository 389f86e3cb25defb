/* op_rope.c: rotary position embedding, llama.cpp's NORM and NEOX pairings. */
#include <math.h>
#include <string.h>

#include "op_internal.h"

struct rope_push {
    uint64_t x, d, pos, ff;             /* ff: frequency factors, 0 when absent */
    uint32_t ne[4];
    uint32_t x_nb[4];
    uint32_t d_nb[4];
    uint32_t n_rot;
    float    log2_base;
    float    freq_scale;
};
_Static_assert(sizeof(struct rope_push) <= 128, "push constants over lavapipe's 128 bytes");

int om_op_rope(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *pos,
               int n_rot, float freq_base, float freq_scale, int mode)
{
    return om_op_rope_ext(c, dst, x, pos, NULL, n_rot, freq_base, freq_scale, mode);
}

int om_op_rope_ext(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *pos,
                   const om_tensor *freq_factors, int n_rot, float freq_base, float freq_scale,
                   int mode)
{
    const char *op = "rope";
    char s[96], sp[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "x", x, OP_F32)) < 0 ||
        (err = op_check(c, op, "pos", pos, OP_I32)) < 0 ||
        (err = op_same_shape(c, op, "dst", dst, "x", x)) < 0 ||
        (err = op_unit_rows(c, op, "dst", dst)) < 0 ||
        (err = op_unit_rows(c, op, "x", x)) < 0)
        return err;
    if (mode != OM_ROPE_NORM && mode != OM_ROPE_NEOX)
        return op_fail(c, OM_EINVAL, op, "mode %d is neither NORM (0) nor NEOX (2)", mode);
    if (x->ne[0] % 2 || n_rot < 2 || n_rot % 2 || n_rot > x->ne[0])
        return op_fail(c, OM_EINVAL, op, "n_rot %d must be even and within head_dim of x %s "
                       "(itself even)", n_rot, op_shape(x, s, sizeof(s)));
    if (pos->ne[0] != x->ne[2] || om_tensor_nelem(pos) != pos->ne[0] || !op_contiguous(pos))
        return op_fail(c, OM_EINVAL, op, "pos %s must be a contiguous {%lld} for x %s",
                       op_shape(pos, sp, sizeof(sp)), (long long)x->ne[2],
                       op_shape(x, s, sizeof(s)));
    if (!(freq_base > 1.0f) || !isfinite(freq_base) || !(freq_scale > 0.0f) ||
        !isfinite(freq_scale))
        return op_fail(c, OM_EINVAL, op, "freq_base %g must be > 1 and freq_scale %g > 0",
                       (double)freq_base, (double)freq_scale);
    if (freq_factors) {
        if ((err = op_check(c, op, "freq_factors", freq_factors, OP_F32)) < 0)
            return err;
        if (freq_factors->ne[0] != n_rot / 2 || om_tensor_nelem(freq_factors) != n_rot / 2 ||
            !op_contiguous(freq_factors))
            return op_fail(c, OM_EINVAL, op, "freq_factors %s must be a contiguous {%d} (n_rot / 2)",
                           op_shape(freq_factors, sp, sizeof(sp)), n_rot / 2);
    }

    struct rope_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.x = op_addr(x);
    pc.d = op_addr(dst);
    pc.pos = op_addr(pos);
    pc.ff = freq_factors ? op_addr(freq_factors) : 0;
    op_ne(x, pc.ne);
    op_strides(x, pc.x_nb);
    op_strides(dst, pc.d_nb);
    pc.n_rot = (uint32_t)n_rot;
    pc.log2_base = (float)log2((double)freq_base);
    pc.freq_scale = freq_scale;
    /* One workgroup per token; its lanes take the head_dim/2 pairs. */
    uint32_t gx, gy;
    op_rows_grid(x->ne[2] * x->ne[3], &gx, &gy);
    const uint32_t spec[1] = { 64 };
    const om_tensor *rd[3] = { x, pos, freq_factors };
    return op_dispatch(c, op, mode == OM_ROPE_NEOX ? "rope_neox" : "rope_norm", spec, 1, &pc,
                       sizeof(pc), gx, gy, 1, rd, 3, &dst, 1);
}
