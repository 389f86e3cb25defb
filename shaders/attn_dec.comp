#version 450
/* attn_dec: fused attention at decode (a few queries) with GQA, same contract as
 * attn.comp for aligned K/V rows of whole groups of 4 values. One workgroup per
 * (GQ query heads of one KV head, query), the visible keys cut into one chunk per
 * subgroup, online softmax, chunks merged through shared memory. Inside a subgroup the
 * lanes span head_dim, 4 values each: a key's K row is loaded once, each lane's slice
 * dotted with the same slice of all GQ queries and the partial scores summed across
 * lanes; its V row is loaded once and accumulated into all GQ outputs. Each K/V byte
 * is thus read once per KV head instead of once per query head, and no lane loads
 * what another lane loads (llvmpipe pays per loaded component and lane). */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HD4 = 16;    /* head_dim / 4 */
layout(constant_id = 2) const uint HDV4 = 16;   /* head_dim_v / 4 */
layout(constant_id = 3) const uint GQ = 8;      /* query heads per workgroup */
layout(constant_id = 4) const uint KPL = 2;     /* ceil(HD4 / subgroup size) */
layout(constant_id = 5) const uint VPL = 2;     /* ceil(HDV4 / subgroup size) */

#define SUB_MAX 8
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

shared float m_sh[SUB_MAX * GQ];
shared float l_sh[SUB_MAX * GQ];
shared vec4 acc_sh[SUB_MAX * GQ * HDV4];

void main()
{
    const uint h0 = gl_WorkGroupID.x * GQ;
    const uint i = gl_WorkGroupID.y;
    const uint g = h0 / (pc.n_head / pc.n_kv);
    const uint lid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    const uint lane = gl_SubgroupInvocationID;
    const uint sgs = gl_SubgroupSize;
    const uint sub = gl_SubgroupID;
    const uint nsub = gl_NumSubgroups;

    /* Lane slices past head_dim hold zeros and load nothing. */
    vec4 q[GQ * KPL];
    for (uint a = 0; a < GQ; ++a) {
        F32Buf Q = F32Buf(pc.q + 4ul * ((h0 + a) * pc.q_nb1 + i * pc.q_nb2));
        for (uint r = 0; r < KPL; ++r) {
            const uint e = lane + r * sgs;
            q[a * KPL + r] = e < HD4 ? vec4(Q.v[4 * e], Q.v[4 * e + 1], Q.v[4 * e + 2],
                                            Q.v[4 * e + 3]) * pc.scale : vec4(0.0);
        }
    }

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
    float m[GQ], l[GQ];
    vec4 acc[GQ * VPL];
    for (uint a = 0; a < GQ; ++a) {
        m[a] = NEG_BIG;
        l[a] = 0.0;
        for (uint r = 0; r < VPL; ++r)
            acc[a * VPL + r] = vec4(0.0);
    }
    for (uint j = j0; j < j1; ++j) {
        const uint64_t kr = k_base + KV_ES * j * pc.k_nb2;
        vec4 k4[KPL];
        for (uint r = 0; r < KPL; ++r) {
            const uint e = lane + r * sgs;
            k4[r] = e < HD4 ? ld4(kr + 4ul * KV_ES * e) : vec4(0.0);
        }
        const float mj = has_m ? M.v[j] : 0.0;
        float p[GQ];
        for (uint a = 0; a < GQ; ++a) {
            vec4 d4 = vec4(0.0);
            for (uint r = 0; r < KPL; ++r)
                d4 += q[a * KPL + r] * k4[r];
            p[a] = subgroupAdd(d4.x + d4.y + d4.z + d4.w) + mj;
        }
        const uint64_t vr = v_base + KV_ES * j * pc.v_nb2;
        vec4 v4[VPL];
        for (uint r = 0; r < VPL; ++r) {
            const uint e = lane + r * sgs;
            v4[r] = e < HDV4 ? ld4(vr + 4ul * KV_ES * e) : vec4(0.0);
        }
        for (uint a = 0; a < GQ; ++a) {
            const float nm = max(m[a], p[a]);
            const float c = exp(m[a] - nm), pa = exp(p[a] - nm);
            l[a] = l[a] * c + pa;
            m[a] = nm;
            for (uint r = 0; r < VPL; ++r)
                acc[a * VPL + r] = acc[a * VPL + r] * c + pa * v4[r];
        }
    }

    if (subgroupElect()) {
        for (uint a = 0; a < GQ; ++a) {
            m_sh[sub * GQ + a] = m[a];
            l_sh[sub * GQ + a] = l[a];
        }
    }
    for (uint a = 0; a < GQ; ++a) {
        for (uint r = 0; r < VPL; ++r) {
            const uint e = lane + r * sgs;
            if (e < HDV4)
                acc_sh[(sub * GQ + a) * HDV4 + e] = acc[a * VPL + r];
        }
    }
    barrier();
    for (uint x = lid; x < GQ * HDV4; x += wg) {
        const uint b = x / HDV4, e = x % HDV4;
        float gm = m_sh[b];
        for (uint t = 1; t < nsub; ++t)
            gm = max(gm, m_sh[t * GQ + b]);
        float gl = 0.0;
        vec4 o = vec4(0.0);
        for (uint t = 0; t < nsub; ++t) {
            const float w = exp(m_sh[t * GQ + b] - gm);
            gl += l_sh[t * GQ + b] * w;
            o += acc_sh[(t * GQ + b) * HDV4 + e] * w;
        }
        o *= gl > 0.0 ? 1.0 / gl : 0.0;
        F32Buf D = F32Buf(pc.d + 4ul * ((h0 + b) * pc.d_nb1 + i * pc.d_nb2));
        D.v[4 * e] = o.x;
        D.v[4 * e + 1] = o.y;
        D.v[4 * e + 2] = o.z;
        D.v[4 * e + 3] = o.w;
    }
}
