/* test_ops_attention: fused attention against softmax(q·kᵀ·scale + mask)·v computed by
 * PyTorch in float64 (tools/golden/ops.py), with sharp scores (mean peak probability
 * 0.3-0.7): causal with a KV offset and GQA 8:2, cross-attention Tq=5/Tk=37 with GQA
 * 4:2, an additive -inf mask and head_dim_v != head_dim, a decode step (Tq=1) over 160
 * F16 keys, an F16 causal prefill, strided q/dst views, one query at a time through
 * views, TinyLlama's GQA 32:4 at decode (3 queries over 300 F16 keys, and the last one
 * alone; F16 and F32 K/V); all three kernels (attn_dec.comp at decode with GQA,
 * attn_vec.comp for other aligned K/V, attn.comp otherwise); refused shapes. */
#include <math.h>

#include "ops_test.h"

#define ATTN_ATOL 1e-5
#define ATTN_RTOL 1e-4

static void test_causal_gqa_offset(void **state)
{
    fx *f = *state;
    om_tensor q = fx_load(f, "attn_causal_q"), k = fx_load(f, "attn_causal_k");
    om_tensor v = fx_load(f, "attn_causal_v");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 32, 8, 5, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_attention(c, &y, &q, &k, &v, NULL, 1.0f / sqrtf(32.0f), 1), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "attn_causal_out", ATTN_ATOL, ATTN_RTOL);
}

static void test_cross_mask(void **state)
{
    fx *f = *state;
    om_tensor q = fx_load(f, "attn_cross_q"), k = fx_load(f, "attn_cross_k");
    om_tensor v = fx_load(f, "attn_cross_v"), m = fx_load(f, "attn_cross_mask");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 24, 4, 5, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_attention(c, &y, &q, &k, &v, &m, 1.0f / sqrtf(32.0f), 0), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "attn_cross_out", ATTN_ATOL, ATTN_RTOL);
}

static void test_decode_f16(void **state)
{
    fx *f = *state;
    om_tensor q = fx_load(f, "attn_dec_q"), k = fx_load(f, "attn_dec_k");
    om_tensor v = fx_load(f, "attn_dec_v");
    assert_int_equal(k.type, OM_TYPE_F16);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 32, 4, 1, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_attention(c, &y, &q, &k, &v, NULL, 1.0f / sqrtf(32.0f), 1), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "attn_dec_out", ATTN_ATOL, ATTN_RTOL);
}

/* GQA 32:4 at decode (attn_dec.comp: 8 query heads per workgroup): three causal
 * queries at once, the last query alone through views (it sees every key), and the
 * three again over the cache converted to F32. */
static void test_gqa_decode(void **state)
{
    fx *f = *state;
    om_tensor q = fx_load(f, "attn_gqa_q"), k = fx_load(f, "attn_gqa_k");
    om_tensor v = fx_load(f, "attn_gqa_v");
    assert_int_equal(k.type, OM_TYPE_F16);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 32, 32, 3, 1);
    om_tensor y32 = fx_empty(f, OM_TYPE_F32, 32, 32, 3, 1);
    om_tensor yl = fx_empty(f, OM_TYPE_F32, 32, 32, 3, 1);
    om_tensor k32 = fx_empty(f, OM_TYPE_F32, 32, 4, 300, 1);
    om_tensor v32 = fx_empty(f, OM_TYPE_F32, 32, 4, 300, 1);
    const int64_t st[4] = { 0, 0, 2, 0 }, ne[4] = { 32, 32, 1, 1 };
    om_tensor ql = om_tensor_view(&q, st, ne), yv = om_tensor_view(&yl, st, ne);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_copy(c, &k32, &k), 0);
    assert_int_equal(om_op_copy(c, &v32, &v), 0);
    assert_int_equal(om_op_attention(c, &y, &q, &k, &v, NULL, 1.0f / sqrtf(32.0f), 1), 0);
    assert_int_equal(om_op_attention(c, &y32, &q, &k32, &v32, NULL, 1.0f / sqrtf(32.0f), 1), 0);
    assert_int_equal(om_op_attention(c, &yv, &ql, &k, &v, NULL, 1.0f / sqrtf(32.0f), 1), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "attn_gqa_out", ATTN_ATOL, ATTN_RTOL);
    fx_expect(f, &y32, "attn_gqa_out", ATTN_ATOL, ATTN_RTOL);

    /* The lone query's result spliced in as the third query of the checked output. */
    om_tensor ye = fx_empty(f, OM_TYPE_F32, 32, 32, 3, 1);
    om_tensor yev = om_tensor_view(&ye, st, ne);
    c = fx_begin(f);
    assert_int_equal(om_op_copy(c, &ye, &y), 0);
    assert_int_equal(om_op_copy(c, &yev, &yv), 0);
    fx_submit(f, c);
    fx_expect(f, &ye, "attn_gqa_out", ATTN_ATOL, ATTN_RTOL);
}

static void test_prefill_f16_strided(void **state)
{
    fx *f = *state;
    /* q read through a permuted copy: stored {40, 16, 4} (token-major per head), viewed
     * back as {40, 4, 16}; the output written into a wider buffer's view. */
    om_tensor q = fx_load(f, "attn_pre_q"), k = fx_load(f, "attn_pre_k");
    om_tensor v = fx_load(f, "attn_pre_v");
    om_tensor qt = fx_empty(f, OM_TYPE_F32, 40, 16, 4, 1);
    om_tensor qtp = om_tensor_permute(&qt, 0, 2, 1, 3);
    om_tensor wide = fx_empty(f, OM_TYPE_F32, 48, 4, 16, 1);
    const int64_t st[4] = { 8, 0, 0, 0 }, ne[4] = { 40, 4, 16, 1 };
    om_tensor yv = om_tensor_view(&wide, st, ne);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 40, 4, 16, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_copy(c, &qtp, &q), 0);
    assert_int_equal(om_op_attention(c, &yv, &qtp, &k, &v, NULL, 1.0f / sqrtf(40.0f), 1), 0);
    assert_int_equal(om_op_copy(c, &y, &yv), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "attn_pre_out", ATTN_ATOL, ATTN_RTOL);
}

/* The causal and cross goldens again, one query at a time through views (Tq = 1, as a
 * decode step). A lone query with causal masking sees every key it is given, so query
 * i gets keys [0, i + 14]. */
static void test_per_query_views(void **state)
{
    fx *f = *state;
    om_tensor q = fx_load(f, "attn_causal_q"), k = fx_load(f, "attn_causal_k");
    om_tensor v = fx_load(f, "attn_causal_v");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 32, 8, 5, 1);
    om_tensor cq = fx_load(f, "attn_cross_q"), ck = fx_load(f, "attn_cross_k");
    om_tensor cv = fx_load(f, "attn_cross_v"), cm = fx_load(f, "attn_cross_mask");
    om_tensor cy = fx_empty(f, OM_TYPE_F32, 24, 4, 5, 1);
    om_cmd *c = fx_begin(f);
    for (int64_t i = 0; i < 5; i++) {
        const int64_t st[4] = { 0, 0, i, 0 }, zero[4] = { 0, 0, 0, 0 };
        const int64_t nq[4] = { 32, 8, 1, 1 }, nk[4] = { 32, 2, i + 15, 1 };
        om_tensor qi = om_tensor_view(&q, st, nq), yi = om_tensor_view(&y, st, nq);
        om_tensor ki = om_tensor_view(&k, zero, nk), vi = om_tensor_view(&v, zero, nk);
        assert_int_equal(om_op_attention(c, &yi, &qi, &ki, &vi, NULL, 1.0f / sqrtf(32.0f), 1), 0);

        const int64_t cnq[4] = { 32, 4, 1, 1 }, cny[4] = { 24, 4, 1, 1 };
        const int64_t mst[4] = { 0, i, 0, 0 }, mne[4] = { 37, 1, 1, 1 };
        om_tensor cqi = om_tensor_view(&cq, st, cnq), cyi = om_tensor_view(&cy, st, cny);
        om_tensor cmi = om_tensor_view(&cm, mst, mne);
        assert_int_equal(om_op_attention(c, &cyi, &cqi, &ck, &cv, &cmi, 1.0f / sqrtf(32.0f), 0), 0);
    }
    fx_submit(f, c);
    fx_expect(f, &y, "attn_causal_out", ATTN_ATOL, ATTN_RTOL);
    fx_expect(f, &cy, "attn_cross_out", ATTN_ATOL, ATTN_RTOL);
}

/* K/V 4 bytes (F32) or 2 bytes (F16) off the alignment of 4-value loads: the generic
 * kernel (attn.comp) instead of attn_vec.comp, on the causal and decode goldens. */
static om_tensor misaligned_copy(fx *f, om_cmd *c, const om_tensor *t)
{
    const int64_t es = t->type == OM_TYPE_F16 ? 2 : 4;
    om_tensor pad = fx_empty(f, t->type, om_tensor_nelem(t) + 1, 1, 1, 1);
    om_tensor m = om_tensor_make(pad.buf, (uint64_t)es, t->type, t->ne[0], t->ne[1], t->ne[2], 1);
    assert_int_equal(om_op_copy(c, &m, t), 0);
    return m;
}

static void test_generic_kernel_unaligned(void **state)
{
    fx *f = *state;
    om_tensor q = fx_load(f, "attn_causal_q"), k = fx_load(f, "attn_causal_k");
    om_tensor v = fx_load(f, "attn_causal_v");
    om_tensor dq = fx_load(f, "attn_dec_q"), dk = fx_load(f, "attn_dec_k");
    om_tensor dv = fx_load(f, "attn_dec_v");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 32, 8, 5, 1);
    om_tensor dy = fx_empty(f, OM_TYPE_F32, 32, 4, 1, 1);
    om_cmd *c = fx_begin(f);
    om_tensor k1 = misaligned_copy(f, c, &k), v1 = misaligned_copy(f, c, &v);
    om_tensor dk1 = misaligned_copy(f, c, &dk), dv1 = misaligned_copy(f, c, &dv);
    assert_int_equal(om_op_attention(c, &y, &q, &k1, &v1, NULL, 1.0f / sqrtf(32.0f), 1), 0);
    assert_int_equal(om_op_attention(c, &dy, &dq, &dk1, &dv1, NULL, 1.0f / sqrtf(32.0f), 1), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "attn_causal_out", ATTN_ATOL, ATTN_RTOL);
    fx_expect(f, &dy, "attn_dec_out", ATTN_ATOL, ATTN_RTOL);
}

static void test_refused(void **state)
{
    fx *f = *state;
    om_tensor q = fx_empty(f, OM_TYPE_F32, 32, 6, 5, 1);
    om_tensor k = fx_empty(f, OM_TYPE_F32, 32, 4, 9, 1);
    om_tensor v = fx_empty(f, OM_TYPE_F32, 32, 4, 9, 1);
    om_tensor kh = fx_empty(f, OM_TYPE_F16, 32, 2, 9, 1);
    om_tensor k2 = fx_empty(f, OM_TYPE_F32, 32, 2, 9, 1);
    om_tensor v8 = fx_empty(f, OM_TYPE_F32, 32, 2, 8, 1);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 32, 6, 5, 1);
    om_tensor m = fx_empty(f, OM_TYPE_F32, 9, 4, 1, 1);
    om_tensor q300 = fx_empty(f, OM_TYPE_F32, 300, 2, 1, 1);
    om_tensor k300 = fx_empty(f, OM_TYPE_F32, 300, 2, 3, 1);
    om_tensor y300 = fx_empty(f, OM_TYPE_F32, 300, 2, 1, 1);
    /* 6 heads over 4 kv heads */
    fx_refused(f, OM_EINVAL, "attention", om_op_attention(c, &y, &q, &k, &v, NULL, 0.1f, 1));
    fx_refused(f, OM_EUNSUPPORTED, "attention",
               om_op_attention(c, &y, &q, &kh, &k2, NULL, 0.1f, 1));
    fx_refused(f, OM_EINVAL, "attention", om_op_attention(c, &y, &q, &k2, &v8, NULL, 0.1f, 1));
    fx_refused(f, OM_EINVAL, "attention", om_op_attention(c, &y, &q, &k2, &k2, &m, 0.1f, 0));
    fx_refused(f, OM_EINVAL, "attention", om_op_attention(c, &q300, &q, &k2, &k2, NULL, 0.1f, 0));
    fx_refused(f, OM_EUNSUPPORTED, "attention",
               om_op_attention(c, &y300, &q300, &k300, &k300, NULL, 0.1f, 0));
    fx_refused(f, OM_EINVAL, "attention", om_op_attention(c, &y, &q, &k2, &k2, NULL, NAN, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_causal_gqa_offset),
        FX_TEST(test_cross_mask),
        FX_TEST(test_decode_f16),
        FX_TEST(test_gqa_decode),
        FX_TEST(test_prefill_f16_strided),
        FX_TEST(test_per_query_views),
        FX_TEST(test_generic_kernel_unaligned),
        FX_TEST(test_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
