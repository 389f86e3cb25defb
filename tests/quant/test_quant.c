/* test_quant: runtime/type.c against numpy goldens (tools/golden/quant.py). Everything
 * here is bit-exact (tolerance 0): the quantizers must produce llama.cpp's bytes, the
 * half conversions numpy's bits, dequantization numpy's f32 products. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_npy.h"
#include "om_type.h"

static om_npy load(const char *name, int dtype)
{
    char path[512], err[256];
    om_npy a;
    snprintf(path, sizeof path, "%s/%s.npy", OMNID_GOLDEN_DIR, name);
    int rc = om_npy_read(path, &a, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(a.dtype, dtype);
    return a;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Equal bits, or both NaN (the NaN an inf*0 product yields is the FPU's choice). */
static int same_f32(float a, float b)
{
    return f32_bits(a) == f32_bits(b) || (isnan(a) && isnan(b));
}

static void test_fp32_to_fp16(void **state)
{
    om_npy in = load("fp16_in", OM_NPY_F32), out = load("fp16_out", OM_NPY_F16);
    assert_int_equal(in.n, out.n);
    const float *x = in.data;
    const uint16_t *want = out.data;
    int bad = 0;
    for (int64_t i = 0; i < in.n; i++) {
        uint16_t h = om_fp32_to_fp16(x[i]);
        if (h != want[i] && bad++ < 5)
            print_error("fp16(0x%08x) = 0x%04x, numpy 0x%04x\n", f32_bits(x[i]), h, want[i]);
    }
    assert_int_equal(bad, 0);
    om_npy_free(&in);
    om_npy_free(&out);
}

static void test_fp16_to_fp32(void **state)
{
    om_npy in = load("h2f_in", OM_NPY_F16), out = load("h2f_out", OM_NPY_F32);
    const uint16_t *h = in.data;
    const float *want = out.data;
    for (int64_t i = 0; i < in.n; i++)
        if (f32_bits(om_fp16_to_fp32(h[i])) != f32_bits(want[i]))
            fail_msg("fp32(0x%04x) = 0x%08x, numpy 0x%08x", h[i], f32_bits(om_fp16_to_fp32(h[i])),
                     f32_bits(want[i]));
    /* Every half survives the round trip bit for bit, NaN payloads included. */
    for (uint32_t v = 0; v < 0x10000; v++)
        if (om_fp32_to_fp16(om_fp16_to_fp32((uint16_t)v)) != v)
            fail_msg("half 0x%04x does not round-trip", v);
    om_npy_free(&in);
    om_npy_free(&out);
}

/* Expected block bytes from the golden d (f16) and quants (one per element). */
static uint8_t *pack_blocks(int type, const uint16_t *d, const int32_t *qs, int64_t nb)
{
    size_t bb = om_type_block_bytes(type);
    uint8_t *y = calloc((size_t)nb, bb);
    assert_non_null(y);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = y + b * bb;
        const int32_t *q = qs + 32 * b;
        memcpy(blk, &d[b], 2);
        for (int j = 0; j < 32; j++) {
            if (type == OM_TYPE_Q8_0)
                blk[2 + j] = (uint8_t)(int8_t)q[j];
            else
                blk[2 + j % 16] |= (uint8_t)(q[j] << (j < 16 ? 0 : 4));
        }
    }
    return y;
}

static void check_quant(int type, const char *prefix)
{
    char dn[32], qn[32], dqn[32];
    snprintf(dn, sizeof dn, "%s_d", prefix);
    snprintf(qn, sizeof qn, "%s_qs", prefix);
    snprintf(dqn, sizeof dqn, "%s_deq", prefix);
    om_npy x = load("quant_x", OM_NPY_F32), d = load(dn, OM_NPY_F16), qs = load(qn, OM_NPY_I32);
    om_npy deq = load(dqn, OM_NPY_F32);
    int64_t n = x.n, nb = n / 32;
    size_t bb = om_type_block_bytes(type);
    assert_int_equal(d.n, nb);
    uint8_t *want = pack_blocks(type, d.data, qs.data, nb);
    uint8_t *got = malloc((size_t)nb * bb);
    float *back = malloc((size_t)n * sizeof *back);
    assert_non_null(got);
    assert_non_null(back);

    assert_int_equal(om_quantize(type, x.data, got, n), 0);
    int bad = 0;
    for (int64_t b = 0; b < nb; b++) {
        if (memcmp(got + b * bb, want + b * bb, bb) && bad++ < 3) {
            print_error("%s block %lld differs:\n  got ", prefix, (long long)b);
            for (size_t j = 0; j < bb; j++)
                print_error("%02x", got[b * bb + j]);
            print_error("\n  want");
            for (size_t j = 0; j < bb; j++)
                print_error("%02x", want[b * bb + j]);
            print_error("\n");
        }
    }
    assert_int_equal(bad, 0);

    /* Dequantize the golden bytes: exactly numpy's d * q in f32. */
    assert_int_equal(om_dequantize(type, want, back, n), 0);
    const float *dq = deq.data;
    for (int64_t i = 0; i < n; i++)
        if (!same_f32(back[i], dq[i]))
            fail_msg("%s dequantized[%lld] = %.9g, numpy %.9g", prefix, (long long)i, back[i], dq[i]);

    free(want);
    free(got);
    free(back);
    om_npy_free(&x);
    om_npy_free(&d);
    om_npy_free(&qs);
    om_npy_free(&deq);
}

static void test_q8_0(void **state) { check_quant(OM_TYPE_Q8_0, "q8_0"); }
static void test_q4_0(void **state) { check_quant(OM_TYPE_Q4_0, "q4_0"); }

static void test_type_table(void **state)
{
    assert_string_equal(om_type_name(OM_TYPE_F32), "f32");
    assert_string_equal(om_type_name(OM_TYPE_F16), "f16");
    assert_string_equal(om_type_name(OM_TYPE_Q4_0), "q4_0");
    assert_string_equal(om_type_name(OM_TYPE_Q8_0), "q8_0");
    assert_string_equal(om_type_name(OM_TYPE_I32), "i32");
    assert_null(om_type_name(12));                      /* q4_K: read, not computed */
    assert_string_equal(om_ggml_type_name(12), "q4_K");
    assert_null(om_ggml_type_name(4));                  /* removed from ggml */
    assert_null(om_ggml_type_name(-1));
    assert_null(om_ggml_type_name(OM_TYPE_COUNT_));
    assert_int_equal(om_type_block(OM_TYPE_Q8_0), 32);
    assert_int_equal(om_type_block_bytes(OM_TYPE_Q8_0), 34);
    assert_int_equal(om_type_block(OM_TYPE_Q4_0), 32);
    assert_int_equal(om_type_block_bytes(OM_TYPE_Q4_0), 18);
    assert_int_equal(om_type_block(OM_TYPE_F16), 1);
    assert_int_equal(om_type_block(12), 0);
    assert_int_equal(om_row_bytes(OM_TYPE_F32, 7), 28);
    assert_int_equal(om_row_bytes(OM_TYPE_Q4_0, 64), 36);
    assert_int_equal(om_row_bytes(OM_TYPE_Q8_0, 96), 102);
    assert_int_equal(om_row_bytes(OM_TYPE_Q8_0, 33), 0);
    assert_int_equal(om_row_bytes(12, 256), 0);
    assert_int_equal(om_ggml_row_bytes(12, 512), 288);
    assert_int_equal(om_ggml_row_bytes(14, 256), 210);
    assert_int_equal(om_ggml_row_bytes(30, 3), 6);
    assert_int_equal(om_ggml_row_bytes(OM_TYPE_Q8_0, INT64_MAX - 31), ((1ull << 58) - 1) * 34);
    assert_int_equal(om_ggml_row_bytes(28, INT64_MAX), 0);   /* f64: 8 * 2^63 overflows */
    assert_int_equal(om_ggml_row_bytes(OM_TYPE_F32, -32), 0);
}

static void test_api_errors(void **state)
{
    float x[64] = { 0 }, y[64];
    uint8_t buf[256];
    assert_int_equal(om_quantize(OM_TYPE_Q8_0, x, buf, 33), OM_EINVAL);
    assert_int_equal(om_quantize(OM_TYPE_I32, x, buf, 32), OM_EUNSUPPORTED);
    assert_int_equal(om_quantize(12, x, buf, 256), OM_EUNSUPPORTED);
    assert_int_equal(om_dequantize(12, buf, y, 256), OM_EUNSUPPORTED);
    assert_int_equal(om_dequantize(OM_TYPE_Q4_0, buf, y, 48), OM_EINVAL);
    assert_int_equal(om_dequantize(99, buf, y, 1), OM_EUNSUPPORTED);

    /* F32/F16/I32 through the generic entry points. */
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 31) * 0.37f;
    assert_int_equal(om_quantize(OM_TYPE_F16, x, buf, 64), 0);
    assert_int_equal(om_dequantize(OM_TYPE_F16, buf, y, 64), 0);
    for (int i = 0; i < 64; i++)
        assert_true(f32_bits(y[i]) == f32_bits(om_fp16_to_fp32(om_fp32_to_fp16(x[i]))));
    assert_int_equal(om_quantize(OM_TYPE_F32, x, buf, 64), 0);
    assert_int_equal(om_dequantize(OM_TYPE_F32, buf, y, 64), 0);
    assert_memory_equal(x, y, sizeof x);
    int32_t iv[3] = { -7, 0, 123456 };
    assert_int_equal(om_dequantize(OM_TYPE_I32, iv, y, 3), 0);
    assert_true(y[0] == -7.0f && y[1] == 0.0f && y[2] == 123456.0f);
}

/* Non-finite input is outside llama.cpp's contract; ours must stay defined (no UB, the
 * scale is inf/nan, quants in range). */
static void test_nonfinite_input(void **state)
{
    float x[32];
    uint8_t q8[34], q4[18];
    for (int i = 0; i < 32; i++)
        x[i] = (float)i;
    x[5] = INFINITY;
    x[9] = NAN;
    om_quantize_q8_0(x, q8, 32);
    om_quantize_q4_0(x, q4, 32);
    uint16_t d;
    memcpy(&d, q8, 2);
    assert_int_equal(d & 0x7c00, 0x7c00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32_to_fp16),
        cmocka_unit_test(test_fp16_to_fp32),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_api_errors),
        cmocka_unit_test(test_nonfinite_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
