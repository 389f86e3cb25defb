/* test_ops_conv: conv2d against F.conv2d (tools/golden/ops.py): 3x3 pad 1 with bias
 * over a batch of 2 (11 output channels, 13 columns: partial 8x8 channel/pixel blocks),
 * 3x3 stride 2 with F16 weights, and a 14x14 stride-14 patch embedding with F16
 * weights; refused shapes. */
#include "ops_test.h"

static void test_conv3x3(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "conv_x"), w = fx_load(f, "conv_w"), b = fx_load(f, "conv_b");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 13, 7, 11, 2);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_conv2d(c, &y, &x, &w, &b, 1, 1), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "conv3_out", 1e-5, 1e-5);
}

static void test_conv3x3_stride2_f16(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "conv_x"), w = fx_load(f, "conv_w16");
    assert_int_equal(w.type, OM_TYPE_F16);
    const int64_t st[4] = { 0, 0, 0, 0 }, ne[4] = { 13, 7, 5, 1 };
    om_tensor x0 = om_tensor_view(&x, st, ne);          /* the first image of the batch */
    om_tensor y = fx_empty(f, OM_TYPE_F32, 7, 4, 6, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_conv2d(c, &y, &x0, &w, NULL, 2, 1), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "conv3s2_out", 1e-5, 1e-5);
}

static void test_patch_embed(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "patch_x"), w = fx_load(f, "patch_w"), b = fx_load(f, "patch_b");
    om_tensor y = fx_empty(f, OM_TYPE_F32, 2, 2, 8, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_conv2d(c, &y, &x, &w, &b, 14, 0), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "patch_out", 2e-5, 1e-5);
}

static void test_refused(void **state)
{
    fx *f = *state;
    om_tensor x = fx_empty(f, OM_TYPE_F32, 8, 8, 3, 1);
    om_tensor w = fx_empty(f, OM_TYPE_F32, 3, 3, 3, 4);
    om_tensor w4 = fx_empty(f, OM_TYPE_F32, 3, 3, 4, 4);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 8, 8, 4, 1);
    om_tensor y6 = fx_empty(f, OM_TYPE_F32, 6, 6, 4, 1);
    om_tensor b5 = fx_empty(f, OM_TYPE_F32, 5, 1, 1, 1);
    om_tensor xp = om_tensor_permute(&x, 1, 0, 2, 3);
    fx_refused(f, OM_EINVAL, "conv2d", om_op_conv2d(c, &y, &x, &w4, NULL, 1, 1));
    fx_refused(f, OM_EINVAL, "conv2d", om_op_conv2d(c, &y6, &x, &w, NULL, 1, 1));
    fx_refused(f, OM_EINVAL, "conv2d", om_op_conv2d(c, &y, &x, &w, &b5, 1, 1));
    fx_refused(f, OM_EINVAL, "conv2d", om_op_conv2d(c, &y, &x, &w, NULL, 0, 1));
    fx_refused(f, OM_EINVAL, "conv2d", om_op_conv2d(c, &y, &xp, &w, NULL, 1, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_conv3x3),
        FX_TEST(test_conv3x3_stride2_f16),
        FX_TEST(test_patch_embed),
        FX_TEST(test_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
