#version 450
/* attn_vec: fused attention, the fast path of attn.comp for head dims that are multiples
 * of 4 and K/V rows aligned to 4 values (8 bytes F16, 16 bytes F32). Same contract and
 * the same split: one workgroup per (head, query), the visible keys cut into one chunk
 * per subgroup, flash-attention style online softmax, partial results merged through
 * shared memory. Inside a subgroup a lane scores one key of each tile of subgroup-size
 * keys against q held in registers, then the lanes span head_dim_v, 4 values each, to
 * accumulate the tile's V rows in registers (p of key t comes from lane t by shuffle).
 * K and V are read as 8-byte words (4 F16) or 16-byte pairs (4 F32): llvmpipe pays per
 * loaded component and lane, so this reads 4-8x fewer components than attn.comp. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"
#extension GL_KHR_shader_subgroup_shuffle : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HD4 = 16;    /* head_dim / 4 */
layout(constant_id = 2) const uint HDV4 = 16;   /* head_dim_v / 4 */
layout(constant_id = 3) const uint VPL = 2;     /* ceil(HDV4 / subgroup size) */

#define SUB_MAX 16
#define NEG_BIG -3.402823466e38   /* keeps exp(m_old - m_new) defined for -inf scores */

layout(push_constant) uniform PC {
    uint64_t q, k, v, m, d;
    uint hd, hd_v, n_head, n_kv;
    uint tq, tk;
    uint q_nb1, q_nb2;   /* strides in elements: head, token */
    uint k_nb1, k_nb2;
    uint v_nb1, v_nb2;
    uint d_nb1, d_nb2;
    uint m_nb1;
    float scale;
    uint causal;
} pc;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer U64Buf {
    uint64_t v;
};
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer U64x2Buf {
    u64vec2 v;
};

#if defined(KV_F16)
#define KV_ES 2ul
vec4 ld4(uint64_t a)
{
    const uvec2 w = unpack32(U64Buf(a).v);
    return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
}
#else
#define KV_ES 4ul
vec4 ld4(uint64_t a)
{
    const u64vec2 w = U64x2Buf(a).v;
    return uintBitsToFloat(uvec4(unpack32(w.x), unpack32(w.y)));
}
#endif

shared float m_sh[SUB_MAX];
shared float l_sh[SUB_MAX];
shared vec4 acc_sh[SUB_MAX * HDV4];

void main()
{
    const uint h = gl_WorkGroupID.x;
    const uint i = gl_WorkGroupID.y;
    const uint g = h / (pc.n_head / pc.n_kv);
    const uint lid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    const uint lane = gl_SubgroupInvocationID;
    const uint sgs = gl_SubgroupSize;
    const uint sub = gl_SubgroupID;
    const uint nsub = gl_NumSubgroups;

    F32Buf Q = F32Buf(pc.q + 4ul * (h * pc.q_nb1 + i * pc.q_nb2));
    vec4 q[HD4];
    for (uint e = 0; e < HD4; ++e)
        q[e] = vec4(Q.v[4 * e], Q.v[4 * e + 1], Q.v[4 * e + 2], Q.v[4 * e + 3]) * pc.scale;

    /* Query i sits at absolute position i + (tk - tq) of the key sequence. */
    uint n_vis = pc.tk;
    if (pc.causal != 0u)
        n_vis = min(pc.tk, uint(max(int(i) + int(pc.tk) - int(pc.tq) + 1, 0)));
    const uint chunk = (n_vis + nsub - 1) / nsub;
    const uint j0 = min(sub * chunk, n_vis), j1 = min(j0 + chunk, n_vis);

    const bool has_m = pc.m != 0ul;
    F32Buf M = F32Buf(pc.m + 4ul * i * pc.m_nb1);
    const uint64_t k_base = pc.k + KV_ES * g * pc.k_nb1;
    const uint64_t v_base = pc.v + KV_ES * g * pc.v_nb1;
    float m = NEG_BIG, l = 0.0;
    vec4 acc[VPL];
    for (uint r = 0; r < VPL; ++r)
        acc[r] = vec4(0.0);
    for (uint t0 = j0; t0 < j1; t0 += sgs) {
        const uint j = t0 + lane;
        const bool live = j < j1;
        float s = NEG_BIG;
        if (live) {
            const uint64_t kr = k_base + KV_ES * j * pc.k_nb2;
            vec4 d4 = vec4(0.0);
            for (uint e = 0; e < HD4; ++e)
                d4 += q[e] * ld4(kr + 4ul * KV_ES * e);
            s = d4.x + d4.y + d4.z + d4.w + (has_m ? M.v[j] : 0.0);
        }
        const float nm = max(m, subgroupMax(s));
        const float p = live ? exp(s - nm) : 0.0;
        const float c = exp(m - nm);
        l = l * c + subgroupAdd(p);
        m = nm;
        for (uint r = 0; r < VPL; ++r)
            acc[r] *= c;
        const uint nt = min(sgs, j1 - t0);
        for (uint t = 0; t < nt; ++t) {
            const float pt = subgroupShuffle(p, t);
            const uint64_t vr = v_base + KV_ES * (t0 + t) * pc.v_nb2;
            for (uint r = 0; r < VPL; ++r) {
                const uint e = lane + r * sgs;
                if (e < HDV4)
                    acc[r] += pt * ld4(vr + 4ul * KV_ES * e);
            }
        }
    }

    if (subgroupElect()) {
        m_sh[sub] = m;
        l_sh[sub] = l;
    }
    barrier();
    float gm = m_sh[0];
    for (uint t = 1; t < nsub; ++t)
        gm = max(gm, m_sh[t]);
    const float own = exp(m - gm);
    for (uint r = 0; r < VPL; ++r) {
        const uint e = lane + r * sgs;
        if (e < HDV4)
            acc_sh[sub * HDV4 + e] = acc[r] * own;
    }
    barrier();
    float gl = 0.0;
    for (uint t = 0; t < nsub; ++t)
        gl += l_sh[t] * exp(m_sh[t] - gm);
    const float inv = gl > 0.0 ? 1.0 / gl : 0.0;
    F32Buf D = F32Buf(pc.d + 4ul * (h * pc.d_nb1 + i * pc.d_nb2));
    for (uint e = lid; e < HDV4; e += wg) {
        vec4 o = vec4(0.0);
        for (uint t = 0; t < nsub; ++t)
            o += acc_sh[t * HDV4 + e];
        o *= inv;
        D.v[4 * e] = o.x;
        D.v[4 * e + 1] = o.y;
        D.v[4 * e + 2] = o.z;
        D.v[4 * e + 3] = o.w;
    }
}
