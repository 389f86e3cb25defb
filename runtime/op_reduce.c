/* op_reduce.c: mean and argmax over ne[0], one workgroup per row (reduce.comp). */
#include <string.h>

#include "op_internal.h"

struct reduce_push {
    uint64_t x, d;
    uint32_t ne[4];
    uint32_t x_nb[4];
    uint32_t d_nb[4];
};
_Static_assert(sizeof(struct reduce_push) <= 128, "push constants over lavapipe's 128 bytes");

static int reduce(om_cmd *c, const char *op, const om_tensor *dst, const om_tensor *x)
{
    struct reduce_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.x = op_addr(x);
    pc.d = op_addr(dst);
    op_ne(x, pc.ne);
    op_strides(x, pc.x_nb);
    op_strides(dst, pc.d_nb);
    uint32_t gx, gy;
    op_rows_grid(x->ne[1] * x->ne[2] * x->ne[3], &gx, &gy);
    const uint32_t spec[1] = { op_wg_rows(c) };
    return op_dispatch(c, op, op, spec, 1, &pc, sizeof(pc), gx, gy, 1, &x, 1, &dst, 1);
}

int om_op_mean(om_cmd *c, const om_tensor *dst, const om_tensor *x)
{
    const char *op = "mean";
    char sd[96], sx[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "x", x, OP_F32)) < 0 ||
        (err = op_unit_rows(c, op, "x", x)) < 0)
        return err;
    if (dst->ne[0] != 1 || dst->ne[1] != x->ne[1] || dst->ne[2] != x->ne[2] ||
        dst->ne[3] != x->ne[3])
        return op_fail(c, OM_EINVAL, op, "dst %s must be {1, ne1, ne2, ne3} of x %s",
                       op_shape(dst, sd, sizeof(sd)), op_shape(x, sx, sizeof(sx)));
    return reduce(c, op, dst, x);
}

int om_op_argmax(om_cmd *c, const om_tensor *dst, const om_tensor *x)
{
    const char *op = "argmax";
    char sd[96], sx[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_I32)) < 0 ||
        (err = op_check(c, op, "x", x, OP_F32)) < 0 ||
        (err = op_unit_rows(c, op, "x", x)) < 0)
        return err;
    if (dst->ne[0] != x->ne[1] || dst->ne[1] != x->ne[2] || dst->ne[2] != x->ne[3] ||
        dst->ne[3] != 1 || !op_contiguous(dst))
        return op_fail(c, OM_EINVAL, op, "dst %s must be a contiguous {ne1} (ne1, ne2, ne3 "
                       "of x %s)", op_shape(dst, sd, sizeof(sd)), op_shape(x, sx, sizeof(sx)));
    return reduce(c, op, dst, x);
}
