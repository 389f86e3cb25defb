/* op_attention.c: fused attention: GQA, causal with a KV offset, cross-attention,
 * additive mask, K/V in F32 or F16. attn_vec.comp when head dims are multiples of 4, the
 * K/V rows are aligned for 4-value loads and the device has subgroup shuffles, else
 * attn.comp (any layout). At decode with GQA attn_dec.comp serves a KV head's query heads
 * in one workgroup: the K/V cache is read once per KV head, not once per query head. */
#include <math.h>
#include <string.h>

#include "op_internal.h"

#define ATTN_HD_MAX  256   /* attn.comp's HD_MAX; attn_vec.comp keeps q in registers */
#define ATTN_SUB_MAX 16    /* attn.comp's SUB_MAX */
#define ATTN_SUBS    8     /* subgroups per workgroup that share one query's keys */
#define ATTN_DEC_TQ  4     /* up to this many queries is decode: attn_dec.comp with GQA */
#define ATTN_DEC_SUB 8     /* attn_dec.comp's SUB_MAX */
#define ATTN_DEC_ACC 128   /* cap on query heads x head_dim / 4 (q) and x head_dim_v / 4 (acc) */
_Static_assert(ATTN_SUBS <= ATTN_DEC_SUB, "attn_dec.comp holds SUB_MAX partial results");
_Static_assert(ATTN_SUBS <= ATTN_SUB_MAX, "attn.comp holds SUB_MAX accumulators");

struct attn_push {
    uint64_t q, k, v, m, d;
    uint32_t hd, hd_v, n_head, n_kv;
    uint32_t tq, tk;
    uint32_t q_nb1, q_nb2;
    uint32_t k_nb1, k_nb2;
    uint32_t v_nb1, v_nb2;
    uint32_t d_nb1, d_nb2;
    uint32_t m_nb1;
    float    scale;
    uint32_t causal;
};
_Static_assert(sizeof(struct attn_push) <= 128, "push constants over lavapipe's 128 bytes");

/* Query heads one attn_dec.comp workgroup serves: the largest divisor of the GQA group
 * whose queries and outputs stay within ATTN_DEC_ACC vectors and whose merge fits the
 * device's shared memory; 1 (no decode kernel) without GQA or with more queries than a
 * decode step, where attn_vec.comp has workgroups enough. */
static uint32_t heads_per_group(int64_t nh, int64_t nkv, int64_t hd, int64_t hdv, int64_t tq,
                                uint32_t max_shared)
{
    if (tq > ATTN_DEC_TQ)
        return 1;
    const int64_t rep = nh / nkv, hd4 = hd / 4, hdv4 = hdv / 4;
    int64_t gq = rep;
    /* acc_sh, m_sh and l_sh, plus ops_common.glsl's 32-float red_sh */
    while (gq > 1 && (rep % gq || gq * hd4 > ATTN_DEC_ACC || gq * hdv4 > ATTN_DEC_ACC ||
                      (uint64_t)ATTN_DEC_SUB * gq * (16 * hdv4 + 8) + 128 > max_shared))
        gq--;
    return (uint32_t)gq;
}

/* attn_vec.comp reads K and V rows 4 values at a time: 8-byte (F16) or 16-byte (F32)
 * aligned rows of whole groups of 4. */
static int vec_ok(const om_tensor *t, int64_t hd)
{
    const uint64_t align = t->type == OM_TYPE_F16 ? 8 : 16;
    return hd % 4 == 0 && (om_buf_addr(t->buf) + t->off) % align == 0 &&
           t->nb[1] % align == 0 && t->nb[2] % align == 0;
}

int om_op_attention(om_cmd *c, const om_tensor *dst, const om_tensor *q, const om_tensor *k,
                    const om_tensor *v, const om_tensor *mask, float scale, int causal)
{
    const char *op = "attention";
    char s1[96], s2[96], s3[96];
    int err;
    if ((err = op_check(c, op, "dst", dst, OP_F32)) < 0 ||
        (err = op_check(c, op, "q", q, OP_F32)) < 0 ||
        (err = op_check(c, op, "k", k, OP_F32 | OP_F16)) < 0 ||
        (err = op_check(c, op, "v", v, OP_F32 | OP_F16)) < 0 ||
        (err = op_unit_rows(c, op, "dst", dst)) < 0 ||
        (err = op_unit_rows(c, op, "q", q)) < 0 ||
        (err = op_unit_rows(c, op, "k", k)) < 0 ||
        (err = op_unit_rows(c, op, "v", v)) < 0)
        return err;
    if (k->type != v->type)
        return op_fail(c, OM_EUNSUPPORTED, op, "k and v must share a type (%s vs %s)",
                       om_type_name(k->type), om_type_name(v->type));
    const int64_t hd = q->ne[0], nh = q->ne[1], tq = q->ne[2];
    const int64_t hdv = v->ne[0], nkv = k->ne[1], tk = k->ne[2];
    if (q->ne[3] != 1 || k->ne[3] != 1 || v->ne[3] != 1 || dst->ne[3] != 1)
        return op_fail(c, OM_EINVAL, op, "q, k, v, dst must be 3-D (ne[3] == 1)");
    if (k->ne[0] != hd || v->ne[1] != nkv || v->ne[2] != tk)
        return op_fail(c, OM_EINVAL, op, "k %s and v %s do not fit q %s",
                       op_shape(k, s1, sizeof(s1)), op_shape(v, s2, sizeof(s2)),
                       op_shape(q, s3, sizeof(s3)));
    if (nh % nkv)
        return op_fail(c, OM_EINVAL, op, "%lld query heads are not a multiple of %lld kv heads",
                       (long long)nh, (long long)nkv);
    if (dst->ne[0] != hdv || dst->ne[1] != nh || dst->ne[2] != tq)
        return op_fail(c, OM_EINVAL, op, "dst %s must be {%lld, %lld, %lld}",
                       op_shape(dst, s1, sizeof(s1)), (long long)hdv, (long long)nh, (long long)tq);
    if (hd > ATTN_HD_MAX || hdv > ATTN_HD_MAX)
        return op_fail(c, OM_EUNSUPPORTED, op, "head_dim %lld / %lld above %d",
                       (long long)hd, (long long)hdv, ATTN_HD_MAX);
    if (nh > OP_MAX_GROUPS || tq > OP_MAX_GROUPS)
        return op_fail(c, OM_ERANGE, op, "%lld heads x %lld queries: each must be <= %u",
                       (long long)nh, (long long)tq, OP_MAX_GROUPS);
    if (mask) {
        if ((err = op_check(c, op, "mask", mask, OP_F32)) < 0 ||
            (err = op_unit_rows(c, op, "mask", mask)) < 0)
            return err;
        if (mask->ne[0] != tk || mask->ne[1] != tq || mask->ne[2] != 1 || mask->ne[3] != 1)
            return op_fail(c, OM_EINVAL, op, "mask %s must be {Tk = %lld, Tq = %lld}",
                           op_shape(mask, s1, sizeof(s1)), (long long)tk, (long long)tq);
    }
    if (!isfinite(scale))
        return op_fail(c, OM_EINVAL, op, "scale %g is not finite", (double)scale);

    struct attn_push pc;
    uint32_t nb[4];
    memset(&pc, 0, sizeof(pc));
    pc.q = op_addr(q);
    pc.k = op_addr(k);
    pc.v = op_addr(v);
    pc.m = mask ? op_addr(mask) : 0;
    pc.d = op_addr(dst);
    pc.hd = (uint32_t)hd;
    pc.hd_v = (uint32_t)hdv;
    pc.n_head = (uint32_t)nh;
    pc.n_kv = (uint32_t)nkv;
    pc.tq = (uint32_t)tq;
    pc.tk = (uint32_t)tk;
    op_strides(q, nb);
    pc.q_nb1 = nb[1];
    pc.q_nb2 = nb[2];
    op_strides(k, nb);
    pc.k_nb1 = nb[1];
    pc.k_nb2 = nb[2];
    op_strides(v, nb);
    pc.v_nb1 = nb[1];
    pc.v_nb2 = nb[2];
    op_strides(dst, nb);
    pc.d_nb1 = nb[1];
    pc.d_nb2 = nb[2];
    if (mask) {
        op_strides(mask, nb);
        pc.m_nb1 = nb[1];
    }
    pc.scale = scale;
    pc.causal = causal != 0;

    const om_gpu_info *info = om_gpu_get_info(om_cmd_gpu(c));
    const uint32_t sg = info->subgroup_size ? info->subgroup_size : 32;
    uint32_t subs = ATTN_SUBS;
    while (subs > 1 && info->max_wg_invocations && sg * subs > info->max_wg_invocations)
        subs /= 2;
    const om_tensor *rd[4] = { q, k, v, mask };
    const int f16 = k->type == OM_TYPE_F16;
    if (info->has_subgroup_shuffle && vec_ok(k, hd) && vec_ok(v, hdv)) {
        const uint32_t hdv4 = (uint32_t)(hdv / 4);
        const uint32_t hd4 = (uint32_t)(hd / 4);
        const uint32_t gq = heads_per_group(nh, nkv, hd, hdv, tq, info->max_shared_bytes);
        if (gq > 1) {
            const uint32_t dspec[6] = { sg * subs, hd4, hdv4, gq, (hd4 + sg - 1) / sg,
                                        (hdv4 + sg - 1) / sg };
            return op_dispatch(c, op, f16 ? "attn_dec_f16" : "attn_dec_f32", dspec, 6, &pc,
                               sizeof(pc), (uint32_t)(nh / gq), (uint32_t)tq, 1, rd, 4, &dst, 1);
        }
        const uint32_t spec[4] = { sg * subs, hd4, hdv4, (hdv4 + sg - 1) / sg };
        return op_dispatch(c, op, f16 ? "attn_vec_f16" : "attn_vec_f32", spec, 4, &pc,
                           sizeof(pc), (uint32_t)nh, (uint32_t)tq, 1, rd, 4, &dst, 1);
    }
    const uint32_t spec[1] = { sg * subs };
    return op_dispatch(c, op, f16 ? "attn_f16" : "attn_f32", spec, 1, &pc, sizeof(pc),
                       (uint32_t)nh, (uint32_t)tq, 1, rd, 4, &dst, 1);
}
