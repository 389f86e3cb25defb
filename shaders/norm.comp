#version 450
/* norm: RMS norm or layer norm over ne[0] of F32 rows, optional F32 gain w and bias b
 * ({ne0}, address 0 when absent). One workgroup per row; rows need unit stride in ne[0]. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform PC {
    uint64_t x, d, w, b;
    uint ne[4];
    uint x_nb[4];        /* strides in elements; [0] unused (1) */
    uint d_nb[4];
    float eps;
} pc;

void main()
{
    const uint row = wg_row();
    if (row >= pc.ne[1] * pc.ne[2] * pc.ne[3])
        return;
    const uint i1 = row % pc.ne[1];
    const uint i2 = (row / pc.ne[1]) % pc.ne[2];
    const uint i3 = row / (pc.ne[1] * pc.ne[2]);
    const uint xo = i1 * pc.x_nb[1] + i2 * pc.x_nb[2] + i3 * pc.x_nb[3];
    const uint dof = i1 * pc.d_nb[1] + i2 * pc.d_nb[2] + i3 * pc.d_nb[3];
    const uint n = pc.ne[0];
    const uint lid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    /* Row bases folded into the addresses: llvmpipe then sees unit-stride lane
     * offsets and vectorises the loads (measured 2-4x on rows of 4096). */
    F32Buf X = F32Buf(pc.x + 4ul * xo);
    F32Buf D = F32Buf(pc.d + 4ul * dof);

#if defined(RMS_NORM)
    float ss = 0.0;
    for (uint i = lid; i < n; i += wg) {
        const float v = X.v[i];
        ss += v * v;
    }
    const float mean = 0.0;
    const float inv = inversesqrt(wg_sum(ss) / float(n) + pc.eps);
#else
    /* Two passes (mean, then squared deviations): no cancellation for large means. */
    float s = 0.0;
    for (uint i = lid; i < n; i += wg)
        s += X.v[i];
    const float mean = wg_sum(s) / float(n);
    float ss = 0.0;
    for (uint i = lid; i < n; i += wg) {
        const float v = X.v[i] - mean;
        ss += v * v;
    }
    const float inv = inversesqrt(wg_sum(ss) / float(n) + pc.eps);
#endif
    const bool has_w = pc.w != 0ul, has_b = pc.b != 0ul;
    for (uint i = lid; i < n; i += wg) {
        float v = (X.v[i] - mean) * inv;
        if (has_w)
            v *= F32Buf(pc.w).v[i];
        if (has_b)
            v += F32Buf(pc.b).v[i];
        D.v[i] = v;
    }
}
