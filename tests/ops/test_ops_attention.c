/* test_ops_attention: fused attention against softmax(q·kᵀ·scale + mask)·v computed by
 * PyTorch in float64 (tools/golden/ops.py), with sharp scores (mean peak probability
 * 0.3-0.7): causal with a KV offset and GQA 8:2, cross-attention Tq=5/Tk=37 with an
 * additive -inf mask and head_dim_v != head_dim, a decode step (Tq=1) over 160 F16
 * keys, an F16 causal prefill, strided q/k/v views; refused shapes. */
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
    fx_refused(f, OM_EUNSUPPORTED, "attention", om_op_attention(c, &y, &q, &kh, &k2, NULL, 0.1f, 1));
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
        FX_TEST(test_prefill_f16_strided),
        FX_TEST(test_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
