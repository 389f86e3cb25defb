#version 450
/* attn: fused attention for one (head, query) per workgroup with a flash-attention
 * style online softmax, so Tk is bounded by nothing but time. The keys are split into
 * one contiguous chunk per subgroup (a decode step with Tq = 1 still spreads a long
 * KV cache over the whole workgroup); inside a subgroup the lanes span head_dim, so
 * K and V rows are read contiguously and q·k is one subgroupAdd. The per-subgroup
 * (max, sum, accumulator) triples are merged through shared memory at the end.
 * q, dst F32; K, V F32 or F16 (variant); mask F32 {Tk, Tq} or address 0. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

#define HD_MAX 256
#define SUB_MAX 16

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

#if defined(KV_F16)
#define KV_BUF F16Buf
#define KV_ES 2ul
#else
#define KV_BUF F32Buf
#define KV_ES 4ul
#endif

shared float q_sh[HD_MAX];
shared float acc_sh[SUB_MAX][HD_MAX];
shared float m_sh[SUB_MAX];
shared float l_sh[SUB_MAX];

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

    const uint qo = h * pc.q_nb1 + i * pc.q_nb2;
    for (uint e = lid; e < pc.hd; e += wg)
        q_sh[e] = F32Buf(pc.q + 4ul * qo).v[e] * pc.scale;
    for (uint e = lane; e < pc.hd_v; e += sgs)
        acc_sh[sub][e] = 0.0;
    barrier();

    /* Query i sits at absolute position i + (tk - tq) of the key sequence. */
    uint n_vis = pc.tk;
    if (pc.causal != 0u)
        n_vis = min(pc.tk, uint(max(int(i) + int(pc.tk) - int(pc.tq) + 1, 0)));
    const uint chunk = (n_vis + nsub - 1) / nsub;
    const uint j0 = min(sub * chunk, n_vis), j1 = min(j0 + chunk, n_vis);

    const bool has_m = pc.m != 0ul;
    /* -FLT_MAX, not -inf: exp(m_old - m_new) stays defined when scores are -inf. */
    float m = -3.402823466e38, l = 0.0;
    for (uint j = j0; j < j1; ++j) {
        /* Row bases folded into the addresses: see norm.comp. */
        KV_BUF K = KV_BUF(pc.k + KV_ES * (g * pc.k_nb1 + j * pc.k_nb2));
        float part = 0.0;
        for (uint e = lane; e < pc.hd; e += sgs)
            part += q_sh[e] * float(K.v[e]);
        float s = subgroupAdd(part);
        if (has_m)
            s += F32Buf(pc.m).v[i * pc.m_nb1 + j];
        const float nm = max(m, s);
        const float c = exp(m - nm), p = exp(s - nm);
        l = l * c + p;
        m = nm;
        KV_BUF V = KV_BUF(pc.v + KV_ES * (g * pc.v_nb1 + j * pc.v_nb2));
        for (uint e = lane; e < pc.hd_v; e += sgs)
            acc_sh[sub][e] = acc_sh[sub][e] * c + p * float(V.v[e]);
    }
    if (subgroupElect()) {
        m_sh[sub] = m;
        l_sh[sub] = l;
    }
    barrier();

    float gm = m_sh[0];
    for (uint t = 1; t < nsub; ++t)
        gm = max(gm, m_sh[t]);
    float gl = 0.0;
    for (uint t = 0; t < nsub; ++t)
        gl += l_sh[t] * exp(m_sh[t] - gm);
    const float inv = gl > 0.0 ? 1.0 / gl : 0.0;
    F32Buf D = F32Buf(pc.d + 4ul * (h * pc.d_nb1 + i * pc.d_nb2));
    for (uint e = lid; e < pc.hd_v; e += wg) {
        float o = 0.0;
        for (uint t = 0; t < nsub; ++t)
            o += acc_sh[t][e] * exp(m_sh[t] - gm);
        D.v[e] = o * inv;
    }
}
