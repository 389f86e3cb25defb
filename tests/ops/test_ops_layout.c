/* test_ops_layout: upsample2x (F.interpolate nearest), concat along dims 0 and 1
 * (torch.cat), copy with a permute into F16 and from an F16 slice, mean and argmax
 * (first index on ties) against goldens from tools/golden/ops.py; refused shapes. */
#include "ops_test.h"

static void test_upsample(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "up_x");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 10, 6, 4, 2);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_upsample2x(c, &y, &x), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "up_out", 0.0, 0.0);
}

static void test_concat(void **state)
{
    fx *f = *state;
    om_tensor a = fx_load(f, "cat_a"), b = fx_load(f, "cat_b"), cc = fx_load(f, "cat_c");
    om_tensor y1 = fx_empty(f, OM_TYPE_F32, 7, 7, 2, 1);
    om_tensor y0 = fx_empty(f, OM_TYPE_F32, 12, 3, 2, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_concat(c, &y1, &a, &b, 1), 0);
    assert_int_equal(om_op_concat(c, &y0, &cc, &a, 0), 0);
    fx_submit(f, c);
    fx_expect(f, &y1, "cat1_out", 0.0, 0.0);
    fx_expect(f, &y0, "cat0_out", 0.0, 0.0);
}

static void test_copy(void **state)
{
    fx *f = *state;
    om_tensor s = fx_load(f, "cpy_src"), h = fx_load(f, "cpy_h");
    om_tensor sp = om_tensor_permute(&s, 1, 2, 0, 3);
    om_tensor y16 = fx_empty(f, OM_TYPE_F16, 5, 3, 7, 1);
    const int64_t st[4] = { 3, 1, 0, 0 }, ne[4] = { 9, 4, 1, 1 };
    om_tensor hv = om_tensor_view(&h, st, ne);
    om_tensor y32 = fx_empty(f, OM_TYPE_F32, 9, 4, 1, 1);
    om_tensor h16 = fx_empty(f, OM_TYPE_F16, 9, 4, 1, 1);
    om_tensor y32b = fx_empty(f, OM_TYPE_F32, 9, 4, 1, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_copy(c, &y16, &sp), 0);
    assert_int_equal(om_op_copy(c, &y32, &hv), 0);
    assert_int_equal(om_op_copy(c, &h16, &hv), 0);         /* F16 -> F16, then back to F32 */
    assert_int_equal(om_op_copy(c, &y32b, &h16), 0);
    fx_submit(f, c);
    fx_expect(f, &y32b, "cpy_slice_out", 0.0, 0.0);
    /* Rounding to F16 may differ from numpy's by one unit in the last place (2^-10). */
    fx_expect(f, &y16, "cpy_perm_f16_out", 0.0, 1e-3);
    fx_expect(f, &y32, "cpy_slice_out", 0.0, 0.0);
}

static void test_mean_argmax(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "mean_x"), ax = fx_load(f, "argmax_x");
    om_tensor m = fx_empty(f, OM_TYPE_F32, 1, 4, 2, 1);
    om_tensor i = fx_empty(f, OM_TYPE_I32, 5, 1, 1, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_mean(c, &m, &x), 0);
    assert_int_equal(om_op_argmax(c, &i, &ax), 0);
    fx_submit(f, c);
    fx_expect(f, &m, "mean_out", 1e-6, 1e-5);
    fx_expect(f, &i, "argmax_out", 0.0, 0.0);
}

static void test_refused(void **state)
{
    fx *f = *state;
    om_tensor a = fx_empty(f, OM_TYPE_F32, 7, 3, 2, 1);
    om_tensor b = fx_empty(f, OM_TYPE_F32, 7, 4, 3, 1);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 7, 7, 2, 1);
    om_tensor i32 = fx_empty(f, OM_TYPE_I32, 7, 3, 2, 1);
    om_tensor up = fx_empty(f, OM_TYPE_F32, 14, 5, 2, 1);
    om_tensor m = fx_empty(f, OM_TYPE_F32, 1, 3, 1, 1);
    om_tensor idx = fx_empty(f, OM_TYPE_I32, 4, 1, 1, 1);
    fx_refused(f, OM_EINVAL, "concat", om_op_concat(c, &y, &a, &b, 1));
    fx_refused(f, OM_EINVAL, "concat", om_op_concat(c, &y, &a, &a, 4));
    fx_refused(f, OM_EINVAL, "copy", om_op_copy(c, &y, &a));
    fx_refused(f, OM_EINVAL, "copy", om_op_copy(c, &i32, &a));
    const int64_t st[4] = { 1, 0, 0, 0 }, ne[4] = { 7, 3, 2, 1 };
    om_tensor outside = om_tensor_view(&a, st, ne);           /* one past ne[0] */
    fx_refused(f, OM_EINVAL, "copy", om_op_copy(c, &a, &outside));
    fx_refused(f, OM_EINVAL, "upsample2x", om_op_upsample2x(c, &up, &a));
    fx_refused(f, OM_EINVAL, "mean", om_op_mean(c, &m, &a));
    fx_refused(f, OM_EINVAL, "argmax", om_op_argmax(c, &idx, &a));
    fx_refused(f, OM_EINVAL, "argmax", om_op_argmax(c, &a, &a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_upsample),
        FX_TEST(test_concat),
        FX_TEST(test_copy),
        FX_TEST(test_mean_argmax),
        FX_TEST(test_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
