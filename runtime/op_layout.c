/* op_layout.c: copy between strided F32/F16 tensors (slices, permutes, conversions),
 * concat (two copies into views of dst) and nearest 2x upsampling; all cpy.comp. */
#include <string.h>

#include "op_internal.h"

struct cpy_push {
    uint64_t s, d;
    uint32_t ne[4];
    uint32_t s_nb[4];
    uint32_t d_nb[4];
};
_Static_assert(sizeof(struct cpy_push) <= 128, "push constants over lavapipe's 128 bytes");

static int cpy(om_cmd *c, const char *op, const char *name, const om_tensor *dst,
               const om_tensor *src, int flat)
{
    struct cpy_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.s = op_addr(src);
    pc.d = op_addr(dst);
    op_ne(dst, pc.ne);
    op_strides(src, pc.s_nb);
    op_strides(dst, pc.d_nb);
    const uint32_t wg = op_wg_flat(c);
    const uint32_t spec[2] = { wg, flat };
    return op_dispatch(c, op, name, spec, 2, &pc, sizeof(pc),
                       op_flat_groups(om_tensor_nelem(dst), wg), 1, 1, &src, 1, &dst, 1);
}

static const char *cpy_name(int st, int dt)
{
    if (st == OM_TYPE_F32)
        return dt == OM_TYPE_F32 ? "cpy_f32_f32" : "cpy_f32_f16";
    return dt == OM_TYPE_F32 ? "cpy_f16_f32" : "cpy_f16_f16";
}

int om_op_copy(om_cmd *c, const om_tensor *dst, const om_tensor *src)
{
    const char *op = "copy";
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32 | OP_F16)) < 0 ||
        (err = op_check(c, op, "src", src, OP_F32 | OP_F16)) < 0 ||
        (err = op_same_shape(c, op, "dst", dst, "src", src)) < 0)
        return err;
    return cpy(c, op, cpy_name(src->type, dst->type), dst, src,
               op_contiguous(dst) && op_contiguous(src));
}

int om_op_concat(om_cmd *c, const om_tensor *dst, const om_tensor *a, const om_tensor *b, int dim)
{
    const char *op = "concat";
    char sd[96], sa[96], sb[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32 | OP_F16)) < 0 ||
        (err = op_check(c, op, "a", a, OP_F32 | OP_F16)) < 0 ||
        (err = op_check(c, op, "b", b, OP_F32 | OP_F16)) < 0)
        return err;
    if (dim < 0 || dim > 3)
        return op_fail(c, OM_EINVAL, op, "dim %d is not in [0, 3]", dim);
    for (int i = 0; i < 4; i++) {
        const int64_t want = i == dim ? a->ne[i] + b->ne[i] : a->ne[i];
        if ((i != dim && b->ne[i] != a->ne[i]) || dst->ne[i] != want)
            return op_fail(c, OM_EINVAL, op, "dst %s is not a %s ++ b %s along dim %d",
                           op_shape(dst, sd, sizeof(sd)), op_shape(a, sa, sizeof(sa)),
                           op_shape(b, sb, sizeof(sb)), dim);
    }
    int64_t start[4] = { 0, 0, 0, 0 };
    om_tensor da = om_tensor_view(dst, start, a->ne);
    start[dim] = a->ne[dim];
    om_tensor db = om_tensor_view(dst, start, b->ne);
    if ((err = cpy(c, op, cpy_name(a->type, dst->type), &da, a, 0)) < 0)
        return err;
    return cpy(c, op, cpy_name(b->type, dst->type), &db, b, 0);
}

int om_op_upsample2x(om_cmd *c, const om_tensor *dst, const om_tensor *x)
{
    const char *op = "upsample2x";
    char sd[96], sx[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "x", x, OP_F32)) < 0)
        return err;
    if (dst->ne[0] != 2 * x->ne[0] || dst->ne[1] != 2 * x->ne[1] || dst->ne[2] != x->ne[2] ||
        dst->ne[3] != x->ne[3])
        return op_fail(c, OM_EINVAL, op, "dst %s must be x %s doubled in ne[0] and ne[1]",
                       op_shape(dst, sd, sizeof(sd)), op_shape(x, sx, sizeof(sx)));
    return cpy(c, op, "upsample2x", dst, x, 0);
}
