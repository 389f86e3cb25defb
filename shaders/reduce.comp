#version 450
/* reduce: per row of ne[0] F32 values (unit stride), the mean (F32 dst {1, ne1, ne2,
 * ne3}, strided) or the index of the largest value, first on ties (I32 dst, contiguous,
 * one value per row). One workgroup per row. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform PC {
    uint64_t x, d;
    uint ne[4];
    uint x_nb[4];        /* strides in elements; [0] unused (1) */
    uint d_nb[4];
} pc;

shared uint idx_sh[32];

void main()
{
    const uint row = wg_row();
    if (row >= pc.ne[1] * pc.ne[2] * pc.ne[3])
        return;
    const uint i1 = row % pc.ne[1];
    const uint i2 = (row / pc.ne[1]) % pc.ne[2];
    const uint i3 = row / (pc.ne[1] * pc.ne[2]);
    const uint xo = i1 * pc.x_nb[1] + i2 * pc.x_nb[2] + i3 * pc.x_nb[3];
    const uint n = pc.ne[0];
    const uint lid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    F32Buf X = F32Buf(pc.x + 4ul * xo);       /* see norm.comp */

#if defined(MEAN)
    float s = 0.0;
    for (uint i = lid; i < n; i += wg)
        s += X.v[i];
    s = wg_sum(s);
    if (lid == 0)
        F32Buf(pc.d).v[i1 * pc.d_nb[1] + i2 * pc.d_nb[2] + i3 * pc.d_nb[3]] = s / float(n);
#else
    /* Each invocation scans ascending indices and keeps the first maximum it sees;
     * merging keeps the smallest index among equal maxima. */
    float best = -1.0 / 0.0;
    uint bi = 0xffffffffu;
    for (uint i = lid; i < n; i += wg) {
        const float v = X.v[i];
        if (v > best || bi == 0xffffffffu) {
            best = v;
            bi = i;
        }
    }
    const float smax = subgroupMax(best);
    const uint sidx = subgroupMin(best == smax ? bi : 0xffffffffu);
    if (subgroupElect()) {
        red_sh[gl_SubgroupID] = smax;
        idx_sh[gl_SubgroupID] = sidx;
    }
    barrier();
    if (lid == 0) {
        float gb = red_sh[0];
        uint gi = idx_sh[0];
        for (uint t = 1; t < gl_NumSubgroups; ++t)
            if (red_sh[t] > gb || (red_sh[t] == gb && idx_sh[t] < gi)) {
                gb = red_sh[t];
                gi = idx_sh[t];
            }
        I32Buf(pc.d).v[row] = int(gi);
    }
#endif
}
