/* test_ops_norm: rms_norm, layer_norm, group_norm and softmax against PyTorch goldens
 * (tools/golden/ops.py): with and without gains/bias/mask, rows not a multiple of the
 * workgroup, strided rows, and refused shapes. */
#include "ops_test.h"

static void test_rms_layer_norm(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "norm_x"), w = fx_load(f, "norm_w"), b = fx_load(f, "norm_b");
    om_tensor y[4];
    for (int i = 0; i < 4; i++)
        y[i] = fx_empty(f, OM_TYPE_F32, 257, 3, 1, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_rms_norm(c, &y[0], &x, &w, 1e-5f), 0);
    assert_int_equal(om_op_rms_norm(c, &y[1], &x, NULL, 1e-5f), 0);
    assert_int_equal(om_op_layer_norm(c, &y[2], &x, &w, &b, 1e-5f), 0);
    assert_int_equal(om_op_layer_norm(c, &y[3], &x, NULL, NULL, 1e-5f), 0);
    fx_submit(f, c);
    fx_expect(f, &y[0], "rms_norm_out", 1e-5, 1e-5);
    fx_expect(f, &y[1], "rms_norm_now_out", 1e-5, 1e-5);
    fx_expect(f, &y[2], "layer_norm_out", 1e-5, 1e-5);
    fx_expect(f, &y[3], "layer_norm_nowb_out", 1e-5, 1e-5);
}

static void test_norm_strided_rows(void **state)
{
    fx *f = *state;
    /* Rows read from a wider buffer (ne1 stride of 300 values), written in place. */
    om_tensor x = fx_load(f, "norm_x"), w = fx_load(f, "norm_w");
    om_tensor wide = fx_empty(f, OM_TYPE_F32, 300, 3, 1, 1);
    const int64_t st[4] = { 20, 0, 0, 0 }, ne[4] = { 257, 3, 1, 1 };
    om_tensor v = om_tensor_view(&wide, st, ne);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 257, 3, 1, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_copy(c, &v, &x), 0);
    assert_int_equal(om_op_rms_norm(c, &v, &v, &w, 1e-5f), 0);
    assert_int_equal(om_op_copy(c, &y, &v), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "rms_norm_out", 1e-5, 1e-5);
}

static void test_group_norm(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "group_norm_x"), w = fx_load(f, "group_norm_w");
    om_tensor b = fx_load(f, "group_norm_b");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 6, 7, 12, 2);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_group_norm(c, &y, &x, &w, &b, 4, 1e-5f), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "group_norm_out", 1e-5, 1e-5);
}

static void test_softmax(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "softmax_x"), m = fx_load(f, "softmax_mask");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 77, 4, 2, 1);
    om_tensor y2 = fx_empty(f, OM_TYPE_F32, 77, 4, 2, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_softmax(c, &y, &x, &m, 0.7f), 0);
    assert_int_equal(om_op_softmax(c, &y2, &x, NULL, 0.7f), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "softmax_out", 1e-6, 1e-5);
    fx_expect(f, &y2, "softmax_nomask_out", 1e-6, 1e-5);
}

static void test_refused(void **state)
{
    fx *f = *state;
    om_tensor x = fx_empty(f, OM_TYPE_F32, 8, 4, 6, 1);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 8, 4, 5, 1);
    om_tensor w7 = fx_empty(f, OM_TYPE_F32, 7, 1, 1, 1);
    om_tensor m = fx_empty(f, OM_TYPE_F32, 8, 3, 1, 1);
    om_tensor xp = om_tensor_permute(&x, 1, 0, 2, 3);
    om_tensor yp = fx_empty(f, OM_TYPE_F32, 4, 8, 6, 1);
    fx_refused(f, OM_EINVAL, "rms_norm", om_op_rms_norm(c, &y, &x, NULL, 1e-5f));
    fx_refused(f, OM_EINVAL, "rms_norm", om_op_rms_norm(c, &x, &x, &w7, 1e-5f));
    fx_refused(f, OM_EINVAL, "layer_norm", om_op_layer_norm(c, &x, &x, NULL, &w7, 1e-5f));
    fx_refused(f, OM_EINVAL, "layer_norm", om_op_layer_norm(c, &yp, &xp, NULL, NULL, 1e-5f));
    fx_refused(f, OM_EINVAL, "layer_norm", om_op_layer_norm(c, &x, &x, NULL, NULL, -1.0f));
    fx_refused(f, OM_EINVAL, "group_norm", om_op_group_norm(c, &x, &x, NULL, NULL, 4, 1e-5f));
    fx_refused(f, OM_EINVAL, "softmax", om_op_softmax(c, &x, &x, &m, 1.0f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_rms_layer_norm),
        FX_TEST(test_norm_strided_rows),
        FX_TEST(test_group_norm),
        FX_TEST(test_softmax),
        FX_TEST(test_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
