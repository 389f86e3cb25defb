#version 450
/* matvec_probe: the load pattern of matvec.comp with no decode and no math, for
 * bench_ops: every 8-byte word of R rows of W is loaded once (lanes take words l,
 * l+WG, ...) and folded into one float per row. Its GB/s is the ceiling the loads alone
 * allow matvec on this device. Push constants: W's address and geometry. */
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "quant.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint R = 4;

layout(push_constant) uniform PC {
    uint64_t w, y;
    uint row_words, N;       /* 8-byte words per row (rows 8-byte aligned), rows */
} pc;

void main()
{
    const uint lane = gl_LocalInvocationID.x;
    const uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * R;
    if (row0 >= pc.N)
        return;
    uint acc[R];
    [[unroll]] for (uint r = 0; r < R; r++)
        acc[r] = 0u;
    for (uint i = lane; i < pc.row_words; i += gl_WorkGroupSize.x)
        [[unroll]] for (uint r = 0; r < R; r++) {
            const uvec2 v = unpack32(om_ld64(pc.w + (uint64_t(min(row0 + r, pc.N - 1)) *
                                                     pc.row_words + i) * 8u));
            acc[r] += v.x ^ v.y;
        }
    [[unroll]] for (uint r = 0; r < R; r++) {
        const uint t = subgroupAdd(acc[r]);
        if (lane == 0 && row0 + r < pc.N)
            OmF32(pc.y + uint64_t(row0 + r) * 4u).v = float(t);
    }
}
