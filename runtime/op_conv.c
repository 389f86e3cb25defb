/* op_conv.c: 2-D convolution (direct, conv2d.comp), weights F32 or F16. */
#include <string.h>

#include "op_internal.h"

#define CONV_CO 8          /* conv2d.comp's CO: output channels per invocation */
#define CONV_PX 8          /* conv2d.comp's PX: output pixels per invocation */

struct conv2d_push {
    uint64_t x, w, b, d;
    uint32_t iw, ih, cin, cout;
    uint32_t kw, kh, ow, oh;
    uint32_t stride, pad;
};
_Static_assert(sizeof(struct conv2d_push) <= 128, "push constants over lavapipe's 128 bytes");

int om_op_conv2d(om_cmd *c, const om_tensor *dst, const om_tensor *x, const om_tensor *w,
                 const om_tensor *b, int stride, int pad)
{
    const char *op = "conv2d";
    char s1[96], s2[96], s3[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "x", x, OP_F32)) < 0 ||
        (err = op_check(c, op, "w", w, OP_F32 | OP_F16)) < 0 ||
        (b && (err = op_check(c, op, "b", b, OP_F32)) < 0))
        return err;
    if (!op_contiguous(dst) || !op_contiguous(x) || !op_contiguous(w) || (b && !op_contiguous(b)))
        return op_fail(c, OM_EINVAL, op, "dst, x, w and b must be contiguous");
    if (stride < 1 || stride > 64 || pad < 0 || pad > 64)
        return op_fail(c, OM_EINVAL, op, "stride %d must be in [1, 64] and pad %d in [0, 64]",
                       stride, pad);
    const int64_t iw = x->ne[0], ih = x->ne[1], cin = x->ne[2], n = x->ne[3];
    const int64_t kw = w->ne[0], kh = w->ne[1], cout = w->ne[3];
    if (w->ne[2] != cin)
        return op_fail(c, OM_EINVAL, op, "w %s does not take the %lld channels of x %s",
                       op_shape(w, s1, sizeof(s1)), (long long)cin, op_shape(x, s2, sizeof(s2)));
    if (kw > iw + 2 * pad || kh > ih + 2 * pad)
        return op_fail(c, OM_EINVAL, op, "kernel %lldx%lld larger than the padded input of x %s",
                       (long long)kw, (long long)kh, op_shape(x, s1, sizeof(s1)));
    const int64_t ow = (iw + 2 * pad - kw) / stride + 1, oh = (ih + 2 * pad - kh) / stride + 1;
    if (dst->ne[0] != ow || dst->ne[1] != oh || dst->ne[2] != cout || dst->ne[3] != n)
        return op_fail(c, OM_EINVAL, op, "dst %s must be {%lld, %lld, %lld, %lld} for x %s, w %s",
                       op_shape(dst, s1, sizeof(s1)), (long long)ow, (long long)oh,
                       (long long)cout, (long long)n, op_shape(x, s2, sizeof(s2)),
                       op_shape(w, s3, sizeof(s3)));
    if (b && om_tensor_nelem(b) != cout)
        return op_fail(c, OM_EINVAL, op, "b %s must hold %lld values",
                       op_shape(b, s1, sizeof(s1)), (long long)cout);
    const uint32_t wg = 64;
    const int64_t gx = ((ow + CONV_PX - 1) / CONV_PX * oh + wg - 1) / wg;
    const int64_t gy = (cout + CONV_CO - 1) / CONV_CO;
    if (gx > OP_MAX_GROUPS || gy > OP_MAX_GROUPS || n > OP_MAX_GROUPS)
        return op_fail(c, OM_ERANGE, op, "dst %s needs more than %u workgroups in a dimension",
                       op_shape(dst, s1, sizeof(s1)), OP_MAX_GROUPS);

    struct conv2d_push pc;
    memset(&pc, 0, sizeof(pc));
    pc.x = op_addr(x);
    pc.w = op_addr(w);
    pc.b = b ? op_addr(b) : 0;
    pc.d = op_addr(dst);
    pc.iw = (uint32_t)iw;
    pc.ih = (uint32_t)ih;
    pc.cin = (uint32_t)cin;
    pc.cout = (uint32_t)cout;
    pc.kw = (uint32_t)kw;
    pc.kh = (uint32_t)kh;
    pc.ow = (uint32_t)ow;
    pc.oh = (uint32_t)oh;
    pc.stride = (uint32_t)stride;
    pc.pad = (uint32_t)pad;
    const uint32_t spec[1] = { wg };
    const om_tensor *rd[3] = { x, w, b };
    return op_dispatch(c, op, w->type == OM_TYPE_F16 ? "conv2d_f16" : "conv2d_f32", spec, 1,
                       &pc, sizeof(pc), (uint32_t)gx, (uint32_t)gy, (uint32_t)n, rd, 3, &dst, 1);
}
