/* test_ops_elementwise: om_tensor helpers, add/mul (broadcast, strided), scale, the
 * unary activations and swiglu against PyTorch goldens (tools/golden/ops.py). */
#include <stdio.h>
#include <string.h>

#include "ops_test.h"

static void test_tensor_helpers(void **state)
{
    fx *f = *state;
    om_tensor base = fx_empty(f, OM_TYPE_F32, 160, 1, 1, 1);
    om_tensor t = om_tensor_make(base.buf, 64, OM_TYPE_F32, 5, 4, 3, 2);
    assert_int_equal(om_tensor_nelem(&t), 120);
    assert_int_equal(om_tensor_nbytes(&t), 480);
    assert_int_equal(t.nb[0], 4);
    assert_int_equal(t.nb[1], 20);
    assert_int_equal(t.nb[2], 80);
    assert_int_equal(t.nb[3], 240);
    assert_true(om_tensor_is_contiguous(&t));

    om_tensor q = om_tensor_make(NULL, 0, OM_TYPE_Q4_0, 64, 3, 1, 1);
    assert_int_equal(q.nb[0], 18);
    assert_int_equal(q.nb[1], 36);
    assert_int_equal(om_tensor_nbytes(&q), 108);

    const int64_t st[4] = { 1, 2, 0, 1 }, ne[4] = { 3, 2, 3, 1 };
    om_tensor v = om_tensor_view(&t, st, ne);
    assert_int_equal(v.off, 64 + 4 + 2 * 20 + 240);
    assert_int_equal(v.ne[0], 3);
    assert_int_equal(v.nb[1], 20);
    assert_false(om_tensor_is_contiguous(&v));
    const int64_t row_st[4] = { 0, 1, 0, 0 }, row_ne[4] = { 5, 1, 1, 1 };
    om_tensor row = om_tensor_view(&t, row_st, row_ne);
    assert_true(om_tensor_is_contiguous(&row));

    const int64_t bad_st[4] = { 3, 0, 0, 0 };
    assert_null(om_tensor_view(&t, bad_st, ne).buf);
    assert_non_null(om_tensor_view(&t, st, ne).buf);

    om_tensor p = om_tensor_permute(&t, 2, 0, 1, 3);
    assert_int_equal(p.ne[0], 3);
    assert_int_equal(p.ne[1], 5);
    assert_int_equal(p.ne[2], 4);
    assert_int_equal(p.nb[0], 80);
    assert_int_equal(p.nb[1], 4);
    assert_int_equal(p.nb[2], 20);
    assert_false(om_tensor_is_contiguous(&p));
    assert_null(om_tensor_permute(&t, 0, 0, 1, 2).buf);

    om_arena *a;
    om_tensor x;
    assert_int_equal(om_arena_create(f->gpu, 4096, &a), 0);
    assert_int_equal(om_tensor_alloc(a, OM_TYPE_F16, 10, 3, 1, 1, &x), 0);
    assert_int_equal(x.type, OM_TYPE_F16);
    assert_int_equal(x.nb[1], 20);
    assert_non_null(x.buf);
    assert_int_equal(om_tensor_alloc(a, OM_TYPE_F32, 0, 3, 1, 1, &x), OM_EINVAL);
    assert_int_equal(om_tensor_alloc(a, OM_TYPE_Q8_0, 33, 1, 1, 1, &x), OM_EINVAL);
    assert_int_equal(om_tensor_alloc(a, OM_TYPE_F32, 1024, 2, 1, 1, &x), OM_ERANGE);
    om_arena_destroy(a);
}

static void test_add_mul_scale(void **state)
{
    fx *f = *state;
    om_tensor a = fx_load(f, "add_a"), b = fx_load(f, "add_b"), m = fx_load(f, "mul_b");
    om_tensor bp = fx_load(f, "addp_b");
    om_tensor add = fx_empty(f, OM_TYPE_F32, 67, 5, 2, 1);
    om_tensor mul = fx_empty(f, OM_TYPE_F32, 67, 5, 2, 1);
    om_tensor sc = fx_empty(f, OM_TYPE_F32, 67, 5, 2, 1);
    om_tensor addp = fx_empty(f, OM_TYPE_F32, 5, 67, 2, 1);
    om_tensor ap = om_tensor_permute(&a, 1, 0, 2, 3);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_add(c, &add, &a, &b), 0);
    assert_int_equal(om_op_mul(c, &mul, &a, &m), 0);
    assert_int_equal(om_op_scale(c, &sc, &a, 0.37f), 0);
    assert_int_equal(om_op_add(c, &addp, &ap, &bp), 0);
    fx_submit(f, c);
    fx_expect(f, &add, "add_out", 1e-6, 1e-6);
    fx_expect(f, &mul, "mul_out", 1e-6, 1e-6);
    fx_expect(f, &sc, "scale_out", 1e-6, 1e-6);
    fx_expect(f, &addp, "addp_out", 1e-6, 1e-6);
}

static void test_in_place_and_strided_dst(void **state)
{
    fx *f = *state;
    /* a += b in place, then the result scaled into a permuted (strided) dst. */
    om_tensor a = fx_load(f, "add_a"), b = fx_load(f, "add_b");
    om_tensor out = fx_empty(f, OM_TYPE_F32, 5, 67, 2, 1);
    om_tensor outp = om_tensor_permute(&out, 1, 0, 2, 3);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_add(c, &a, &a, &b), 0);
    assert_int_equal(om_op_scale(c, &outp, &a, 1.0f), 0);
    fx_submit(f, c);
    fx_expect(f, &a, "add_out", 1e-6, 1e-6);
    om_tensor back = fx_empty(f, OM_TYPE_F32, 67, 5, 2, 1);
    c = fx_begin(f);
    assert_int_equal(om_op_copy(c, &back, &outp), 0);
    fx_submit(f, c);
    fx_expect(f, &back, "add_out", 1e-6, 1e-6);
}

static void test_unary(void **state)
{
    fx *f = *state;
    static const struct { int op; const char *golden; double atol; } cases[] = {
        { OM_UNARY_GELU_ERF, "gelu_out", 2e-6 },
        { OM_UNARY_GELU_TANH, "gelu_tanh_out", 2e-6 },
        { OM_UNARY_QUICK_GELU, "quick_gelu_out", 2e-6 },
        { OM_UNARY_SILU, "silu_out", 2e-6 },
    };
    om_tensor x = fx_load(f, "unary_x");
    om_tensor y[4];
    om_cmd *c = fx_begin(f);
    for (int i = 0; i < 4; i++) {
        y[i] = fx_empty(f, OM_TYPE_F32, x.ne[0], 1, 1, 1);
        assert_int_equal(om_op_unary(c, &y[i], &x, cases[i].op), 0);
    }
    fx_submit(f, c);
    for (int i = 0; i < 4; i++)
        fx_expect(f, &y[i], cases[i].golden, cases[i].atol, 1e-5);
}

static void test_swiglu(void **state)
{
    fx *f = *state;
    om_tensor g = fx_load(f, "swiglu_g"), u = fx_load(f, "swiglu_u");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 300, 2, 1, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_swiglu(c, &y, &g, &u), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "swiglu_out", 2e-6, 1e-5);
}

static void test_refused(void **state)
{
    fx *f = *state;
    om_tensor a = fx_empty(f, OM_TYPE_F32, 6, 4, 1, 1);
    om_tensor b = fx_empty(f, OM_TYPE_F32, 4, 1, 1, 1);
    om_tensor d = fx_empty(f, OM_TYPE_F32, 6, 3, 1, 1);
    om_tensor h = fx_empty(f, OM_TYPE_F16, 6, 4, 1, 1);
    om_tensor big = a;
    big.ne[1] = 5;                               /* reaches past its buffer */
    fx_refused(f, OM_EINVAL, "add", om_op_add(c, &a, &a, &b));       /* 4 does not divide 6 */
    fx_refused(f, OM_EINVAL, "mul", om_op_mul(c, &d, &a, &a));       /* dst shape */
    fx_refused(f, OM_EINVAL, "scale", om_op_scale(c, &h, &a, 2.0f)); /* F16 dst */
    fx_refused(f, OM_ERANGE, "silu", om_op_unary(c, &a, &big, OM_UNARY_SILU));
    om_tensor far = a;
    far.nb[1] = (uint64_t)4 << 30;               /* row 2 sits past 2^31 elements */
    fx_refused(f, OM_ERANGE, "gelu", om_op_unary(c, &a, &far, OM_UNARY_GELU_ERF));
    far.nb[1] = 6;                               /* not a whole number of f32 */
    fx_refused(f, OM_EINVAL, "gelu", om_op_unary(c, &a, &far, OM_UNARY_GELU_ERF));
    fx_refused(f, OM_EINVAL, "unary", om_op_unary(c, &a, &a, 99));
    fx_refused(f, OM_EINVAL, "swiglu", om_op_swiglu(c, &a, &a, &d));
    fx_refused(f, OM_EINVAL, "add", om_op_add(c, &a, &a, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_tensor_helpers),
        FX_TEST(test_add_mul_scale),
        FX_TEST(test_in_place_and_strided_dst),
        FX_TEST(test_unary),
        FX_TEST(test_swiglu),
        FX_TEST(test_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
