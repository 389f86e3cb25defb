#version 450
/* conv2d: direct convolution. x {W, H, Cin, N} F32, w {kW, kH, Cin, Cout} F32 or F16
 * (variant), b {Cout} F32 or address 0, dst {Wo, Ho, Cout, N}; all contiguous. One
 * invocation per output pixel computes CO output channels: neighbouring invocations
 * read neighbouring x (contiguous at stride 1) and all read the same weights, which
 * the loads broadcast. Grid: x over Wo*Ho, y over Cout/CO, z over N. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

#define CO 4

layout(push_constant) uniform PC {
    uint64_t x, w, b, d;
    uint iw, ih, cin, cout;
    uint kw, kh, ow, oh;
    uint stride, pad;
} pc;

#if defined(W_F16)
#define W_BUF F16Buf
#else
#define W_BUF F32Buf
#endif

void main()
{
    const uint pix = gl_GlobalInvocationID.x;
    if (pix >= pc.ow * pc.oh)
        return;
    const uint ox = pix % pc.ow, oy = pix / pc.ow;
    const uint co0 = gl_WorkGroupID.y * CO;
    const uint n = gl_WorkGroupID.z;
    const uint nco = min(uint(CO), pc.cout - co0);
    const int x0 = int(ox * pc.stride) - int(pc.pad);
    const int y0 = int(oy * pc.stride) - int(pc.pad);
    const uint ksz = pc.kw * pc.kh;
    const uint wco = pc.cin * ksz;           /* weights per output channel */
    F32Buf X = F32Buf(pc.x);
    W_BUF Wt = W_BUF(pc.w);

    float acc[CO];
    for (uint c = 0; c < CO; ++c)
        acc[c] = 0.0;
    for (uint ci = 0; ci < pc.cin; ++ci) {
        const uint xc = (n * pc.cin + ci) * pc.ih * pc.iw;
        const uint wc = co0 * wco + ci * ksz;
        for (uint ky = 0; ky < pc.kh; ++ky) {
            const int yy = y0 + int(ky);
            if (yy < 0 || yy >= int(pc.ih))
                continue;
            for (uint kx = 0; kx < pc.kw; ++kx) {
                const int xx = x0 + int(kx);
                if (xx < 0 || xx >= int(pc.iw))
                    continue;
                const float xv = X.v[xc + uint(yy) * pc.iw + uint(xx)];
                const uint wo = wc + ky * pc.kw + kx;
                for (uint c = 0; c < nco; ++c)
                    acc[c] += xv * float(Wt.v[wo + c * wco]);
            }
        }
    }
    const bool has_b = pc.b != 0ul;
    for (uint c = 0; c < nco; ++c) {
        const uint co = co0 + c;
        const float bias = has_b ? F32Buf(pc.b).v[co] : 0.0;
        F32Buf(pc.d).v[((n * pc.cout + co) * pc.oh + oy) * pc.ow + ox] = acc[c] + bias;
    }
}
