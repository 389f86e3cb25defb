#version 450
/* attn: fused attention for one (head, query) per workgroup with a flash-attention
 * style online softmax, so Tk is bounded by nothing but time. The visible keys are
 * split into one contiguous chunk per subgroup (a decode step with Tq = 1 still
 * spreads a long KV cache over the whole workgroup), and each subgroup walks its
 * chunk in tiles of one key per lane: a lane computes its key's score (no per-key
 * reduction), the tile updates the running max/sum once, then the lanes switch to
 * spanning head_dim and accumulate the tile's V rows with contiguous loads. The
 * per-subgroup (max, sum, accumulator) triples are merged through shared memory.
 * q, dst F32; K, V F32 or F16 (variant); mask F32 {Tk, Tq} or address 0. This is the
 * generic path (any head_dim, any element-aligned strides); attn_vec.comp is the fast
 * one for 4-aligned rows. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

#define HD_MAX 256
#define SUB_MAX 16
#define LANES_MAX 64
/* -FLT_MAX, not -inf: exp(m_old - m_new) stays defined when scores are -inf. */
#define NEG_BIG -3.402823466e38

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
shared float p_sh[SUB_MAX][LANES_MAX];
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

    /* Row bases are folded into the addresses (see norm.comp). */
    F32Buf Q = F32Buf(pc.q + 4ul * (h * pc.q_nb1 + i * pc.q_nb2));
    for (uint e = lid; e < pc.hd; e += wg)
        q_sh[e] = Q.v[e] * pc.scale;
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
    F32Buf M = F32Buf(pc.m + 4ul * i * pc.m_nb1);
    const uint64_t k_base = pc.k + KV_ES * g * pc.k_nb1;
    const uint64_t v_base = pc.v + KV_ES * g * pc.v_nb1;
    float m = NEG_BIG, l = 0.0;
    for (uint t0 = j0; t0 < j1; t0 += sgs) {
        const uint j = t0 + lane;
        const bool live = j < j1;
        float s = NEG_BIG;
        if (live) {
            KV_BUF K = KV_BUF(k_base + KV_ES * j * pc.k_nb2);
            float dot = 0.0;
            for (uint e = 0; e < pc.hd; ++e)
                dot += q_sh[e] * float(K.v[e]);
            s = dot + (has_m ? M.v[j] : 0.0);
        }
        const float nm = max(m, subgroupMax(s));
        const float p = live ? exp(s - nm) : 0.0;
        const float c = exp(m - nm);
        l = l * c + subgroupAdd(p);
        m = nm;
        p_sh[sub][lane] = p;
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        const uint nt = min(sgs, j1 - t0);
        for (uint e = lane; e < pc.hd_v; e += sgs) {
            float a = acc_sh[sub][e] * c;
            for (uint t = 0; t < nt; ++t)
                a += p_sh[sub][t] * float(KV_BUF(v_base + KV_ES * (t0 + t) * pc.v_nb2).v[e]);
            acc_sh[sub][e] = a;
        }
        subgroupBarrier();
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
