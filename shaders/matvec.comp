#version 450
/* matvec: y = W·x for one column of x (om_op_matmul with M == 1), any weight type
 * (quant.glsl). One workgroup is one subgroup and owns R rows of W; its lanes split
 * each row into blocks (lane l takes blocks l, l+WG, ...), so a subgroup reads
 * consecutive words of a row and x is loaded once for all R rows. subgroupAdd
 * finishes each row: no shared memory, no barrier. The _tb variants read W through a
 * texel buffer (W_TEXEL in quant.glsl), x and y through addresses as always. */
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "quant.glsl"

layout(local_size_x_id = 0) in;               /* the device's subgroup size */
layout(constant_id = 1) const uint R = 4;     /* rows of W per workgroup */

/* The layout of struct mm_push in runtime/op_matmul.c. Strides are in bytes. */
layout(push_constant) uniform PC {
    uint64_t w, x, y;
    uint K, N, M;
    uint w_nb1, w_nb2, w_nb3;
    uint x_nb1, x_nb2, x_nb3;
    uint y_nb1, y_nb2, y_nb3;
    uint B2;                                  /* x.ne[2]: gl_WorkGroupID.z = i2 + i3*B2 */
    uint r2, r3;                              /* x.ne[2]/w.ne[2], x.ne[3]/w.ne[3] */
} pc;

/* Loads the x values of block b; returns W_OFFSET * their sum, the term that
 * sum((q + off) * d * x) = d * (sum(q * x) + off * sum(x)) shares among all rows. */
float x_block(uint64_t xa, uint b, out vec4 xv[W_BK / 4])
{
    [[unroll]] for (uint s = 0; s < W_BK / 4; s++)
        xv[s] = om_ld_vec4(xa + uint64_t(b * W_BK + 4u * s) * 4u);
#if defined(W_Q4_0)
    vec4 xs = vec4(0.0);
    [[unroll]] for (uint s = 0; s < W_BK / 4; s++)
        xs += xv[s];
    return W_OFFSET * (xs.x + xs.y + xs.z + xs.w);
#else
    return 0.0;
#endif
}

float block_dot(om_wblk blk, vec4 xv[W_BK / 4], float xoff)
{
    vec4 t = vec4(0.0);
    [[unroll]] for (uint s = 0; s < W_BK / 4; s++)
        t += om_wchunk(blk, s) * xv[s];
    return om_wscale(blk) * (t.x + t.y + t.z + t.w + xoff);
}

void main()
{
    const uint lane = gl_LocalInvocationID.x;
    const uint WG = gl_WorkGroupSize.x;
    /* Row groups spread over x and y when there are more than 65535 (vocabularies). */
    const uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * R;
    if (row0 >= pc.N)
        return;
    const uint i2 = gl_WorkGroupID.z % pc.B2, i3 = gl_WorkGroupID.z / pc.B2;

    const uint64_t xa = pc.x + uint64_t(i2) * pc.x_nb2 + uint64_t(i3) * pc.x_nb3;
    /* With W_TEXEL, pc.w is the weight's byte offset in its texel view. */
    const om_waddr wa = om_waddr(pc.w) + om_waddr(i2 / pc.r2) * pc.w_nb2 +
                        om_waddr(i3 / pc.r3) * pc.w_nb3;
    om_waddr wr[R];
    float acc[R];
    [[unroll]] for (uint r = 0; r < R; r++) {
        /* Rows past N repeat row N-1 (never stored): no branch in the loop. */
        wr[r] = wa + om_waddr(min(row0 + r, pc.N - 1)) * pc.w_nb1;
        acc[r] = 0.0;
    }

    const uint nb = pc.K / W_BK;
    /* The same trip count in every lane (measured faster on llvmpipe than a per-lane
     * bound); the lanes past the last block redo it and add nothing. */
    for (uint b0 = 0; b0 < nb; b0 += WG) {
        const uint b = min(b0 + lane, nb - 1);
        const bool live = b0 + lane < nb;
        vec4 xv[W_BK / 4];
        const float xoff = x_block(xa, b, xv);
        [[unroll]] for (uint r = 0; r < R; r++) {
            const float t = block_dot(om_wload(wr[r] + om_waddr(b) * W_BB), xv, xoff);
            acc[r] += live ? t : 0.0;
        }
    }

    const uint64_t ya = pc.y + uint64_t(i2) * pc.y_nb2 + uint64_t(i3) * pc.y_nb3;
    [[unroll]] for (uint r = 0; r < R; r++) {
        const float t = subgroupAdd(acc[r]);
        if (lane == 0 && row0 + r < pc.N)
            OmF32(ya + uint64_t(row0 + r) * 4u).v = t;
    }
}
