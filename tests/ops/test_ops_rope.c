/* test_ops_rope: RoPE NORM (full n_rot) and NEOX (partial n_rot, freq_scale 0.5) against
 * llama.cpp's definition computed in float64 (tools/golden/ops.py), in place and from a
 * strided view; both again with per-pair frequency factors (rope_freqs); refused
 * arguments. */
#include "ops_test.h"

/* Positions up to 200: float32 angles carry ~1e-5 absolute error. */
#define ROPE_ATOL 1e-4
#define ROPE_RTOL 1e-4

static void test_rope_norm_neox(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "rope_x"), pos = fx_load(f, "rope_pos");
    om_tensor yn = fx_empty(f, OM_TYPE_F32, 64, 2, 7, 1);
    om_tensor yx = fx_empty(f, OM_TYPE_F32, 64, 2, 7, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_rope(c, &yn, &x, &pos, 64, 10000.0f, 1.0f, OM_ROPE_NORM), 0);
    assert_int_equal(om_op_rope(c, &yx, &x, &pos, 32, 10000.0f, 0.5f, OM_ROPE_NEOX), 0);
    fx_submit(f, c);
    fx_expect(f, &yn, "rope_norm_out", ROPE_ATOL, ROPE_RTOL);
    fx_expect(f, &yx, "rope_neox_out", ROPE_ATOL, ROPE_RTOL);
}

static void test_rope_in_place_strided(void **state)
{
    fx *f = *state;
    /* x as the first 64 values of 96-wide rows (a fused-QKV-like layout), rotated in place. */
    om_tensor x = fx_load(f, "rope_x"), pos = fx_load(f, "rope_pos");
    om_tensor wide = fx_empty(f, OM_TYPE_F32, 96, 2, 7, 1);
    const int64_t st[4] = { 0, 0, 0, 0 }, ne[4] = { 64, 2, 7, 1 };
    om_tensor v = om_tensor_view(&wide, st, ne);
    om_tensor y = fx_empty(f, OM_TYPE_F32, 64, 2, 7, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_copy(c, &v, &x), 0);
    assert_int_equal(om_op_rope(c, &v, &v, &pos, 32, 10000.0f, 0.5f, OM_ROPE_NEOX), 0);
    assert_int_equal(om_op_copy(c, &y, &v), 0);
    fx_submit(f, c);
    fx_expect(f, &y, "rope_neox_out", ROPE_ATOL, ROPE_RTOL);
}

static void test_rope_freq_factors(void **state)
{
    fx *f = *state;
    om_tensor x = fx_load(f, "ropef_x"), pos = fx_load(f, "ropef_pos");
    om_tensor ff64 = fx_load(f, "ropef_ff64"), ff16 = fx_load(f, "ropef_ff16");
    om_tensor yn = fx_empty(f, OM_TYPE_F32, 64, 2, 7, 1);
    om_tensor yx = fx_empty(f, OM_TYPE_F32, 64, 2, 7, 1);
    om_cmd *c = fx_begin(f);
    assert_int_equal(om_op_rope_ext(c, &yn, &x, &pos, &ff64, 64, 500000.0f, 1.0f, OM_ROPE_NORM), 0);
    assert_int_equal(om_op_rope_ext(c, &yx, &x, &pos, &ff16, 32, 10000.0f, 0.5f, OM_ROPE_NEOX), 0);
    fx_submit(f, c);
    fx_expect(f, &yn, "ropef_norm_out", ROPE_ATOL, ROPE_RTOL);
    fx_expect(f, &yx, "ropef_neox_out", ROPE_ATOL, ROPE_RTOL);
}

static void test_refused(void **state)
{
    fx *f = *state;
    om_tensor x = fx_empty(f, OM_TYPE_F32, 64, 2, 7, 1);
    om_tensor pos = fx_empty(f, OM_TYPE_I32, 7, 1, 1, 1);
    om_tensor pos6 = fx_empty(f, OM_TYPE_I32, 6, 1, 1, 1);
    om_tensor posf = fx_empty(f, OM_TYPE_F32, 7, 1, 1, 1);
    fx_refused(f, OM_EINVAL, "rope", om_op_rope(c, &x, &x, &pos, 66, 1e4f, 1.0f, OM_ROPE_NORM));
    fx_refused(f, OM_EINVAL, "rope", om_op_rope(c, &x, &x, &pos, 31, 1e4f, 1.0f, OM_ROPE_NORM));
    fx_refused(f, OM_EINVAL, "rope", om_op_rope(c, &x, &x, &pos6, 64, 1e4f, 1.0f, OM_ROPE_NORM));
    fx_refused(f, OM_EINVAL, "rope", om_op_rope(c, &x, &x, &posf, 64, 1e4f, 1.0f, OM_ROPE_NORM));
    fx_refused(f, OM_EINVAL, "rope", om_op_rope(c, &x, &x, &pos, 64, 1e4f, 1.0f, 1));
    fx_refused(f, OM_EINVAL, "rope", om_op_rope(c, &x, &x, &pos, 64, 0.0f, 1.0f, OM_ROPE_NEOX));
    om_tensor ff31 = fx_empty(f, OM_TYPE_F32, 31, 1, 1, 1);
    om_tensor ffh = fx_empty(f, OM_TYPE_F16, 32, 1, 1, 1);
    fx_refused(f, OM_EINVAL, "freq_factors", om_op_rope_ext(c, &x, &x, &pos, &ff31, 64, 1e4f, 1.0f, OM_ROPE_NORM));
    fx_refused(f, OM_EINVAL, "freq_factors", om_op_rope_ext(c, &x, &x, &pos, &ffh, 64, 1e4f, 1.0f, OM_ROPE_NORM));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_rope_norm_neox),
        FX_TEST(test_rope_in_place_strided),
        FX_TEST(test_rope_freq_factors),
        FX_TEST(test_refused),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
