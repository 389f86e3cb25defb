#version 450
/* matmul: Y = X·Wᵀ for M > 1 columns of x, any weight type (quant.glsl).
 *
 * One workgroup is one subgroup and computes a tile of TM rows of x by WG*TN rows
 * of W; lane l owns W rows n0 + l + j*WG (j < TN) for all TM rows of x, in registers.
 * Per step of 4 k values a lane loads its TN weight chunks (its own rows) and the
 * lanes load TM x chunks together (lane l: rows l, l+WG, ...), handing them round with
 * subgroupBroadcast. So each load feeds TM (weights) or TN (x) FMAs and no shared
 * memory or barrier is needed: on llvmpipe, where every per-lane load is a gather of
 * the same cost, and on a GPU, where this is a register-blocked tile. */
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_ballot : require
#include "quant.glsl"

layout(local_size_x_id = 0) in;               /* the device's subgroup size */
layout(constant_id = 1) const uint TM = 16;   /* rows of x per workgroup */
layout(constant_id = 2) const uint TN = 8;    /* rows of W per lane */

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

const uint WG = gl_WorkGroupSize.x;
const uint XG = (TM + WG - 1) / WG;           /* x rows each lane loads per step */

void main()
{
    const uint lane = gl_LocalInvocationID.x;
    const uint n0 = gl_WorkGroupID.x * WG * TN + lane;
    const uint m0 = gl_WorkGroupID.y * TM;
    const uint i2 = gl_WorkGroupID.z % pc.B2, i3 = gl_WorkGroupID.z / pc.B2;

    /* Rows past N or M repeat the last one (never stored): no branch in the loop. */
    const uint64_t wa = pc.w + uint64_t(i2 / pc.r2) * pc.w_nb2 + uint64_t(i3 / pc.r3) * pc.w_nb3;
    uint64_t wr[TN];
    [[unroll]] for (uint j = 0; j < TN; j++)
        wr[j] = wa + uint64_t(min(n0 + j * WG, pc.N - 1)) * pc.w_nb1;
    const uint64_t xa = pc.x + uint64_t(i2) * pc.x_nb2 + uint64_t(i3) * pc.x_nb3;
    uint64_t xr[XG];
    [[unroll]] for (uint g = 0; g < XG; g++)
        xr[g] = xa + uint64_t(min(m0 + g * WG + lane, pc.M - 1)) * pc.x_nb1;

    float acc[TM][TN];
    [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN; j++)
            acc[i][j] = 0.0;

    const uint nb = pc.K / W_BK;
    for (uint b = 0; b < nb; b++) {
        om_wblk blk[TN];
        [[unroll]] for (uint j = 0; j < TN; j++)
            blk[j] = om_wload(wr[j] + uint64_t(b) * W_BB);
        /* Not unrolled: TM*TN FMAs per step are plenty, and 8 copies (quant blocks) would
         * make llvmpipe JIT for seconds. */
        [[dont_unroll]] for (uint s = 0; s < W_BK / 4; s++) {
            vec4 wv[TN];
            [[unroll]] for (uint j = 0; j < TN; j++)
                wv[j] = om_wdeq(blk[j], s);
            vec4 xl[XG];
            [[unroll]] for (uint g = 0; g < XG; g++)
                xl[g] = om_ld_vec4(xr[g] + uint64_t(b * W_BK + 4u * s) * 4u);
            [[unroll]] for (uint i = 0; i < TM; i++) {
                const vec4 xv = subgroupBroadcast(xl[i / WG], i % WG);
                [[unroll]] for (uint j = 0; j < TN; j++)
                    acc[i][j] += dot(xv, wv[j]);
            }
        }
    }

    const uint64_t ya = pc.y + uint64_t(i2) * pc.y_nb2 + uint64_t(i3) * pc.y_nb3;
    [[unroll]] for (uint i = 0; i < TM; i++) {
        const uint m = m0 + i;
        [[unroll]] for (uint j = 0; j < TN; j++) {
            const uint n = n0 + j * WG;
            if (m < pc.M && n < pc.N)
                OmF32(ya + uint64_t(m) * pc.y_nb1 + uint64_t(n) * 4u).v = acc[i][j];
        }
    }
}
