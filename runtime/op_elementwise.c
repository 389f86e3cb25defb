/* op_elementwise.c: add, mul (b broadcast over a), scale, unary activations, swiglu.
 * All F32, any strides; one eltwise.comp variant per function. */
#include <string.h>

#include "op_internal.h"

struct eltwise_push {
    uint64_t d, a, b;
    uint32_t ne[4];
    uint32_t a_nb[4];
    uint32_t b_ne[4];
    uint32_t b_nb[4];
    uint32_t d_nb[4];
    float    s;
};
_Static_assert(sizeof(struct eltwise_push) <= 128, "push constants over lavapipe's 128 bytes");

/* b == NULL for unary functions. */
static int eltwise(om_cmd *c, const char *op, const char *name, const om_tensor *dst,
                   const om_tensor *a, const om_tensor *b, int broadcast, float s)
{
    char sa[96], sb[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "a", a, OP_F32)) < 0 ||
        (b && (err = op_check(c, op, "b", b, OP_F32)) < 0) ||
        (err = op_same_shape(c, op, "dst", dst, "a", a)) < 0)
        return err;
    if (b && !broadcast && (err = op_same_shape(c, op, "a", a, "b", b)) < 0)
        return err;
    if (b && broadcast)
        for (int i = 0; i < 4; i++)
            if (a->ne[i] % b->ne[i])
                return op_fail(c, OM_EINVAL, op, "b %s does not broadcast over a %s (dim %d)",
                               op_shape(b, sb, sizeof(sb)), op_shape(a, sa, sizeof(sa)), i);

    struct eltwise_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.d = op_addr(dst);
    pc.a = op_addr(a);
    pc.b = b ? op_addr(b) : pc.a;
    op_ne(dst, pc.ne);
    op_strides(a, pc.a_nb);
    op_strides(dst, pc.d_nb);
    op_ne(b ? b : a, pc.b_ne);
    op_strides(b ? b : a, pc.b_nb);
    pc.s = s;

    const int same_b = !b || (op_contiguous(b) && om_tensor_nelem(b) == om_tensor_nelem(a));
    const uint32_t wg = op_wg_flat(c);
    const uint32_t spec[2] = { wg, op_contiguous(dst) && op_contiguous(a) && same_b };
    const om_tensor *rd[2] = { a, b };
    return op_dispatch(c, op, name, spec, 2, &pc, sizeof(pc),
                       op_flat_groups(om_tensor_nelem(dst), wg), 1, 1, rd, 2, &dst, 1);
}

int om_op_add(om_cmd *c, const om_tensor *dst, const om_tensor *a, const om_tensor *b)
{
    if (!b)
        return op_fail(c, OM_EINVAL, "add", "b is missing");
    return eltwise(c, "add", "add", dst, a, b, 1, 0.0f);
}

int om_op_mul(om_cmd *c, const om_tensor *dst, const om_tensor *a, const om_tensor *b)
{
    if (!b)
        return op_fail(c, OM_EINVAL, "mul", "b is missing");
    return eltwise(c, "mul", "mul", dst, a, b, 1, 0.0f);
}

int om_op_scale(om_cmd *c, const om_tensor *dst, const om_tensor *a, float s)
{
    return eltwise(c, "scale", "scale", dst, a, NULL, 0, s);
}

int om_op_unary(om_cmd *c, const om_tensor *dst, const om_tensor *x, int op)
{
    static const char *const names[] = {
        [OM_UNARY_GELU_ERF] = "gelu",
        [OM_UNARY_GELU_TANH] = "gelu_tanh",
        [OM_UNARY_QUICK_GELU] = "quick_gelu",
        [OM_UNARY_SILU] = "silu",
    };
    if (op < 0 || op >= (int)(sizeof(names) / sizeof(names[0])))
        return op_fail(c, OM_EINVAL, "unary", "unknown function %d", op);
    return eltwise(c, names[op], names[op], dst, x, NULL, 0, 0.0f);
}

int om_op_swiglu(om_cmd *c, const om_tensor *dst, const om_tensor *gate, const om_tensor *up)
{
    if (!up)
        return op_fail(c, OM_EINVAL, "swiglu", "up is missing");
    return eltwise(c, "swiglu", "swiglu", dst, gate, up, 0, 0.0f);
}
