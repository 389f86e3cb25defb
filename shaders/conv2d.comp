#version 450
/* conv2d: direct convolution. x {W, H, Cin, N} F32, w {kW, kH, Cin, Cout} F32 or F16
 * (variant), b {Cout} F32 or address 0, dst {Wo, Ho, Cout, N}; all contiguous. One
 * invocation computes PX horizontally adjacent output pixels for CO output channels,
 * so each weight load serves PX pixels and each input load CO channels: llvmpipe pays
 * per load and lane, and 8x8 (0.25 loads per multiply-add) measured 2x faster than
 * 4x4 and than 16x8 or 8x16 on a 3x3 64->64 conv. All invocations of a workgroup share
 * the weights (y = Cout/CO block).
 * Grid: x over ceil(Wo/PX)*Ho pixel groups, y over Cout/CO, z over N. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

#define CO 8
#define PX 8

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
    const uint owg = (pc.ow + PX - 1) / PX;
    const uint pix = gl_GlobalInvocationID.x;
    if (pix >= owg * pc.oh)
        return;
    const uint ox0 = (pix % owg) * PX, oy = pix / owg;
    const uint co0 = gl_WorkGroupID.y * CO;
    const uint n = gl_WorkGroupID.z;
    const uint nco = min(uint(CO), pc.cout - co0);
    const uint npx = min(uint(PX), pc.ow - ox0);
    const int x0 = int(ox0 * pc.stride) - int(pc.pad);
    const int y0 = int(oy * pc.stride) - int(pc.pad);
    const uint ksz = pc.kw * pc.kh;
    const uint wco = pc.cin * ksz;           /* weights per output channel */
    F32Buf X = F32Buf(pc.x);
    W_BUF Wt = W_BUF(pc.w);

    float acc[CO][PX];
    for (uint c = 0; c < CO; ++c)
        for (uint p = 0; p < PX; ++p)
            acc[c][p] = 0.0;
    for (uint ci = 0; ci < pc.cin; ++ci) {
        const uint xc = (n * pc.cin + ci) * pc.ih * pc.iw;
        const uint wc = co0 * wco + ci * ksz;
        for (uint ky = 0; ky < pc.kh; ++ky) {
            const int yy = y0 + int(ky);
            if (yy < 0 || yy >= int(pc.ih))
                continue;
            const uint xr = xc + uint(yy) * pc.iw;
            for (uint kx = 0; kx < pc.kw; ++kx) {
                float wv[CO];
                for (uint c = 0; c < CO; ++c)
                    wv[c] = c < nco ? float(Wt.v[wc + c * wco + ky * pc.kw + kx]) : 0.0;
                for (uint p = 0; p < PX; ++p) {
                    const int xx = x0 + int(p * pc.stride + kx);
                    if (p >= npx || xx < 0 || xx >= int(pc.iw))
                        continue;
                    const float xv = X.v[xr + uint(xx)];
                    for (uint c = 0; c < CO; ++c)
                        acc[c][p] += xv * wv[c];
                }
            }
        }
    }
    const bool has_b = pc.b != 0ul;
    for (uint c = 0; c < nco; ++c) {
        const uint co = co0 + c;
        const float bias = has_b ? F32Buf(pc.b).v[co] : 0.0;
        const uint drow = ((n * pc.cout + co) * pc.oh + oy) * pc.ow;
        for (uint p = 0; p < npx; ++p)
            F32Buf(pc.d).v[drow + ox0 + p] = acc[c][p] + bias;
    }
}
