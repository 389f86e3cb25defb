#version 450
/* group_norm: x contiguous {W, H, C, N}; each (group, n) is one contiguous span of
 * W*H*C/G values, normalised together, then scaled/shifted per channel by w, b ({C},
 * address 0 when absent). One workgroup per (group, n). */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform PC {
    uint64_t x, d, w, b;
    uint hw;             /* W*H */
    uint cg;             /* channels per group */
    uint n_groups;       /* groups per sample */
    uint n_rows;         /* n_groups * N */
    float eps;
} pc;

void main()
{
    const uint row = wg_row();
    if (row >= pc.n_rows)
        return;
    const uint len = pc.hw * pc.cg;
    const uint base = row * len;
    const uint c0 = (row % pc.n_groups) * pc.cg;
    const uint lid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    F32Buf X = F32Buf(pc.x + 4ul * base);     /* see norm.comp */
    F32Buf D = F32Buf(pc.d + 4ul * base);

    float s = 0.0;
    for (uint i = lid; i < len; i += wg)
        s += X.v[i];
    const float mean = wg_sum(s) / float(len);
    float ss = 0.0;
    for (uint i = lid; i < len; i += wg) {
        const float v = X.v[i] - mean;
        ss += v * v;
    }
    const float inv = inversesqrt(wg_sum(ss) / float(len) + pc.eps);
    const bool has_w = pc.w != 0ul, has_b = pc.b != 0ul;
    for (uint i = lid; i < len; i += wg) {
        const uint c = c0 + i / pc.hw;
        float v = (X.v[i] - mean) * inv;
        if (has_w)
            v *= F32Buf(pc.w).v[c];
        if (has_b)
            v += F32Buf(pc.b).v[c];
        D.v[i] = v;
    }
}
