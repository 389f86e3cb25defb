/* op_norm.c: row normalisations over ne[0] (rms_norm, layer_norm, softmax) and
 * group_norm. One workgroup per row (or per group), F32 throughout. */
#include <math.h>
#include <string.h>

#include "op_internal.h"

struct norm_push {
    uint64_t x, d, w, b;
    uint32_t ne[4];
    uint32_t x_nb[4];
    uint32_t d_nb[4];
    float    eps;
};
_Static_assert(sizeof(struct norm_push) <= 128, "push constants over lavapipe's 128 bytes");

struct group_norm_push {
    uint64_t x, d, w, b;
    uint32_t hw, cg, n_groups, n_rows;
    float    eps;
};

struct softmax_push {
    uint64_t x, d, m;
    uint32_t ne[4];
    uint32_t x_nb[4];
    uint32_t d_nb[4];
    uint32_t m_nb1;
    float    scale;
};
_Static_assert(sizeof(struct softmax_push) <= 128, "push constants over lavapipe's 128 bytes");

static int check_rows(om_cmd *c, const char *op, const om_tensor *dst, const om_tensor *x)
{
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "x", x, OP_F32)) < 0 ||
        (err = op_same_shape(c, op, "dst", dst, "x", x)) < 0 ||
        (err = op_unit_rows(c, op, "dst", dst)) < 0 ||
        (err = op_unit_rows(c, op, "x", x)) < 0)
        return err;
    return 0;
}

/* w, b: NULL or contiguous F32 {n}. */
static int check_param(om_cmd *c, const char *op, const char *what, const om_tensor *p, int64_t n)
{
    char s[96];
    int err;
    if (!p)
        return 0;
    if ((err = op_check(c, op, what, p, OP_F32)) < 0)
        return err;
    if (om_tensor_nelem(p) != n || p->ne[0] != n || !op_contiguous(p))
        return op_fail(c, OM_EINVAL, op, "%s %s must be a contiguous {%lld}", what,
                       op_shape(p, s, sizeof(s)), (long long)n);
    return 0;
}

static int check_eps(om_cmd *c, const char *op, float eps)
{
    if (!(eps >= 0.0f) || eps > 1.0f)
        return op_fail(c, OM_EINVAL, op, "eps %g is not in [0, 1]", (double)eps);
    return 0;
}

static int norm(om_cmd *c, const char *op, const om_tensor *dst, const om_tensor *x,
                const om_tensor *w, const om_tensor *b, float eps)
{
    int err;
    if ((err = check_rows(c, op, dst, x)) < 0 ||
        (err = check_param(c, op, "w", w, x->ne[0])) < 0 ||
        (err = check_param(c, op, "b", b, x->ne[0])) < 0 ||
        (err = check_eps(c, op, eps)) < 0)
        return err;
    struct norm_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.x = op_addr(x);
    pc.d = op_addr(dst);
    pc.w = w ? op_addr(w) : 0;
    pc.b = b ? op_addr(b) : 0;
    op_ne(x, pc.ne);
    op_strides(x, pc.x_nb);
    op_strides(dst, pc.d_nb);
    pc.eps = eps;
    uint32_t gx, gy;
    op_rows_grid(x->ne[1] * x->ne[2] * x->ne[3], &gx, &gy);
    const uint32_t spec[1] = { op_wg_rows(c) };
    const om_tensor *rd[3] = { x, w, b };
    return op_dispatch(c, op, op, spec, 1, &pc, sizeof(pc), gx, gy, 1, rd, 3, &dst, 1);
}

int om_op_rms_norm(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *w,
                   float eps)
{
    return norm(c, "rms_norm", dst, x, w, NULL, eps);
}

int om_op_layer_norm(om_cmd *c, const om_tensor *dst, const om_tensor *x,
                     const om_tensor *w, const om_tensor *b, float eps)
{
    return norm(c, "layer_norm", dst, x, w, b, eps);
}

int om_op_group_norm(om_cmd *c, const om_tensor *dst, const om_tensor *x,
                     const om_tensor *w, const om_tensor *b, int n_groups, float eps)
{
    const char *op = "group_norm";
    char s[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "x", x, OP_F32)) < 0 ||
        (err = op_same_shape(c, op, "dst", dst, "x", x)) < 0 ||
        (err = check_param(c, op, "w", w, x->ne[2])) < 0 ||
        (err = check_param(c, op, "b", b, x->ne[2])) < 0 ||
        (err = check_eps(c, op, eps)) < 0)
        return err;
    if (!op_contiguous(x) || !op_contiguous(dst))
        return op_fail(c, OM_EINVAL, op, "x and dst must be contiguous");
    if (n_groups < 1 || x->ne[2] % n_groups)
        return op_fail(c, OM_EINVAL, op, "%d groups do not divide the %lld channels of x %s",
                       n_groups, (long long)x->ne[2], op_shape(x, s, sizeof(s)));
    struct group_norm_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.x = op_addr(x);
    pc.d = op_addr(dst);
    pc.w = w ? op_addr(w) : 0;
    pc.b = b ? op_addr(b) : 0;
    pc.hw = (uint32_t)(x->ne[0] * x->ne[1]);
    pc.cg = (uint32_t)(x->ne[2] / n_groups);
    pc.n_groups = (uint32_t)n_groups;
    pc.n_rows = (uint32_t)(n_groups * x->ne[3]);
    pc.eps = eps;
    uint32_t gx, gy;
    op_rows_grid(pc.n_rows, &gx, &gy);
    const uint32_t spec[1] = { op_wg_rows(c) };
    const om_tensor *rd[3] = { x, w, b };
    return op_dispatch(c, op, op, spec, 1, &pc, sizeof(pc), gx, gy, 1, rd, 3, &dst, 1);
}

int om_op_softmax(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *mask,
                  float scale)
{
    const char *op = "softmax";
    char s[96], sm[96];
    int err;
    if ((err = check_rows(c, op, dst, x)) < 0)
        return err;
    if (mask) {
        if ((err = op_check(c, op, "mask", mask, OP_F32)) < 0 ||
            (err = op_unit_rows(c, op, "mask", mask)) < 0)
            return err;
        if (mask->ne[0] != x->ne[0] || mask->ne[1] != x->ne[1] || mask->ne[2] != 1 ||
            mask->ne[3] != 1)
            return op_fail(c, OM_EINVAL, op, "mask %s must be {ne0, ne1} of x %s",
                           op_shape(mask, sm, sizeof(sm)), op_shape(x, s, sizeof(s)));
    }
    if (!isfinite(scale))
        return op_fail(c, OM_EINVAL, op, "scale %g is not finite", (double)scale);
    struct softmax_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.x = op_addr(x);
    pc.d = op_addr(dst);
    pc.m = mask ? op_addr(mask) : 0;
    op_ne(x, pc.ne);
    op_strides(x, pc.x_nb);
    op_strides(dst, pc.d_nb);
    pc.m_nb1 = mask ? (uint32_t)(mask->nb[1] / 4) : 0;
    pc.scale = scale;
    uint32_t gx, gy;
    op_rows_grid(x->ne[1] * x->ne[2] * x->ne[3], &gx, &gy);
    const uint32_t spec[1] = { op_wg_rows(c) };
    const om_tensor *rd[2] = { x, mask };
    return op_dispatch(c, op, op, spec, 1, &pc, sizeof(pc), gx, gy, 1, rd, 2, &dst, 1);
}
