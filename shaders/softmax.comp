#version 450
/* softmax over ne[0] of F32 rows: softmax(x*scale + mask[i1]); mask {ne0, ne1} F32
 * (address 0 when absent) broadcast over ne[2], ne[3]. One workgroup per row: one
 * pass keeps a running (max, sum) per invocation, merged across the workgroup, and
 * a second pass writes. A row whose every score is -inf is written as zeros. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform PC {
    uint64_t x, d, m;
    uint ne[4];
    uint x_nb[4];        /* strides in elements; [0] unused (1) */
    uint d_nb[4];
    uint m_nb1;
    float scale;
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
    const uint mo = i1 * pc.m_nb1;
    const bool has_m = pc.m != 0ul;
    const uint n = pc.ne[0];
    const uint lid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    /* Row bases folded into the addresses: llvmpipe then sees unit-stride lane
     * offsets and vectorises the loads (measured 2-4x on rows of 4096). */
    F32Buf X = F32Buf(pc.x + 4ul * xo);
    F32Buf D = F32Buf(pc.d + 4ul * dof);
    F32Buf M = F32Buf(pc.m + 4ul * mo);

    /* -FLT_MAX rather than -inf keeps exp(m - mx) finite for lanes that saw nothing. */
    float mx = -3.402823466e38, sum = 0.0;
    for (uint i = lid; i < n; i += wg) {
        const float v = X.v[i] * pc.scale + (has_m ? M.v[i] : 0.0);
        const float nm = max(mx, v);
        sum = sum * exp(mx - nm) + exp(v - nm);
        mx = nm;
    }
    const float gmx = wg_max(mx);
    const float gsum = wg_sum(sum * exp(mx - gmx));
    const float inv = gsum > 0.0 ? 1.0 / gsum : 0.0;
    for (uint i = lid; i < n; i += wg) {
        const float v = X.v[i] * pc.scale + (has_m ? M.v[i] : 0.0);
        D.v[i] = exp(v - gmx) * inv;
    }
}
