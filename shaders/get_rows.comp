#version 450
/* get_rows: dst[:, m] = table[:, ids[m]] as F32, for a table of any weight type
 * (quant.glsl). One workgroup (one subgroup) per output row; lanes take blocks l,
 * l+WG, ... An id outside [0, N) yields a row of zeros, never a read outside the table:
 * the host validates ids where they come from (tokenizer, requests). */
#extension GL_GOOGLE_include_directive : require
#include "quant.glsl"

layout(local_size_x_id = 0) in;

/* The layout of struct gr_push in runtime/op_get_rows.c. Strides are in bytes. */
layout(push_constant) uniform PC {
    uint64_t t, ids, d;
    uint K, N, M;
    uint t_nb1, d_nb1;
} pc;

layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer OmI32 { int v; };

void main()
{
    const uint m = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (m >= pc.M)
        return;
    const int id = OmI32(pc.ids + uint64_t(m) * 4u).v;
    const bool ok = id >= 0 && uint(id) < pc.N;
    const uint64_t ta = pc.t + uint64_t(ok ? uint(id) : 0u) * pc.t_nb1;
    const uint64_t da = pc.d + uint64_t(m) * pc.d_nb1;
    const uint nb = pc.K / W_BK;
    for (uint b = gl_LocalInvocationID.x; b < nb; b += gl_WorkGroupSize.x) {
        const om_wblk blk = om_wload(ta + uint64_t(b) * W_BB);
        [[unroll]] for (uint s = 0; s < W_BK / 4; s++) {
            const vec4 v = ok ? om_wdeq(blk, s) : vec4(0.0);
            const uint64_t o = da + uint64_t(b * W_BK + 4u * s) * 4u;
            [[unroll]] for (uint i = 0; i < 4; i++)
                OmF32(o + 4u * i).v = v[i];
        }
    }
}
