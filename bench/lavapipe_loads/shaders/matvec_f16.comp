#version 450
/* y = W·x, W N×K F16 row-major, x and y F32: the runtime's matvec structure (one
 * subgroup per R rows, lanes striding over K in 16-byte chunks of 8 values, x loaded
 * once for the R rows, subgroupAdd per row) with the loads of access.glsl.
 * The host guarantees K % (8 * subgroup size) == 0 and N % R == 0. */
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "access.glsl"

layout(local_size_x_id = 0) in;               /* the device's subgroup size */
layout(constant_id = 1) const uint R = 4;     /* rows of W per workgroup */

void main()
{
    const uint lane = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * R;
    const uint cpr = pc.K / 8u;               /* chunks per row */
    float acc[R];
    [[unroll]] for (uint r = 0; r < R; r++)
        acc[r] = 0.0;
    /* A trip count the same in every lane (K is a multiple of 8 * subgroup): llvmpipe
     * runs such a loop without an execution mask. */
    for (uint c0 = 0; c0 < cpr; c0 += gl_WorkGroupSize.x) {
        const uint c = c0 + lane;
        const vec4 xa = x4(2u * c), xb = x4(2u * c + 1u);
        [[unroll]] for (uint r = 0; r < R; r++) {
            vec4 a, b;
            wh8((row0 + r) * cpr + c, a, b);
            acc[r] += dot(a, xa) + dot(b, xb);
        }
    }
    [[unroll]] for (uint r = 0; r < R; r++) {
        const float t = subgroupAdd(acc[r]);
        if (lane == 0u)
            y1(row0 + r, t);
    }
}
