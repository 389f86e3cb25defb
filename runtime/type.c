/* type.c: the ggml type table, IEEE half conversion and the Q8_0/Q4_0 reference
 * quantizers. The quantizers restate llama.cpp's quantize_row_q{8,4}_0_ref from the
 * block layouts (MODELS.md §6.7) so that our bytes equal llama.cpp's. */
#include "om_type.h"
#include "om_err.h"

#include <math.h>
#include <string.h>

/* ggml's ids, names and block geometry (ggml.c type_traits, gguf-py GGML_QUANT_SIZES).
 * Holes are ids ggml removed. `ours` marks the types omnid computes with. */
static const struct { const char *name; int blck; int bytes; int ours; } ggml_types[OM_TYPE_COUNT_] = {
    [0]  = { "f32",     1,   4,   1 }, [1]  = { "f16",     1,   2,   1 },
    [2]  = { "q4_0",    32,  18,  1 }, [3]  = { "q4_1",    32,  20,  0 },
    [6]  = { "q5_0",    32,  22,  0 }, [7]  = { "q5_1",    32,  24,  0 },
    [8]  = { "q8_0",    32,  34,  1 }, [9]  = { "q8_1",    32,  36,  0 },
    [10] = { "q2_K",    256, 84,  0 }, [11] = { "q3_K",    256, 110, 0 },
    [12] = { "q4_K",    256, 144, 0 }, [13] = { "q5_K",    256, 176, 0 },
    [14] = { "q6_K",    256, 210, 0 }, [15] = { "q8_K",    256, 292, 0 },
    [16] = { "iq2_xxs", 256, 66,  0 }, [17] = { "iq2_xs",  256, 74,  0 },
    [18] = { "iq3_xxs", 256, 98,  0 }, [19] = { "iq1_s",   256, 50,  0 },
    [20] = { "iq4_nl",  32,  18,  0 }, [21] = { "iq3_s",   256, 110, 0 },
    [22] = { "iq2_s",   256, 82,  0 }, [23] = { "iq4_xs",  256, 136, 0 },
    [24] = { "i8",      1,   1,   0 }, [25] = { "i16",     1,   2,   0 },
    [26] = { "i32",     1,   4,   1 }, [27] = { "i64",     1,   8,   0 },
    [28] = { "f64",     1,   8,   0 }, [29] = { "iq1_m",   256, 56,  0 },
    [30] = { "bf16",    1,   2,   0 }, [34] = { "tq1_0",   256, 54,  0 },
    [35] = { "tq2_0",   256, 66,  0 },
};

static int known(int type)
{
    return type >= 0 && type < OM_TYPE_COUNT_ && ggml_types[type].name;
}

static int ours(int type)
{
    return known(type) && ggml_types[type].ours;
}

const char *om_ggml_type_name(int type)
{
    return known(type) ? ggml_types[type].name : NULL;
}

static uint64_t row_bytes(int type, int64_t ne0)
{
    uint64_t blck = (uint64_t)ggml_types[type].blck;
    if (ne0 < 0 || (uint64_t)ne0 % blck)
        return 0;
    uint64_t nb = (uint64_t)ne0 / blck, bb = (uint64_t)ggml_types[type].bytes;
    if (nb > UINT64_MAX / bb)
        return 0;
    return nb * bb;
}

uint64_t om_ggml_row_bytes(int type, int64_t ne0)
{
    return known(type) ? row_bytes(type, ne0) : 0;
}

const char *om_type_name(int type)
{
    return ours(type) ? ggml_types[type].name : NULL;
}

int om_type_block(int type)
{
    return ours(type) ? ggml_types[type].blck : 0;
}

size_t om_type_block_bytes(int type)
{
    return ours(type) ? (size_t)ggml_types[type].bytes : 0;
}

uint64_t om_row_bytes(int type, int64_t ne0)
{
    return ours(type) ? row_bytes(type, ne0) : 0;
}

/* Round to nearest even on the bit pattern, as numpy's npy_floatbits_to_halfbits, so
 * that NaN payloads and every tie match numpy exactly (F16C agrees except on the
 * payload of signalling NaNs, which numpy keeps and F16C quiets). */
uint16_t om_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = x & 0x7f800000u, sig = x & 0x007fffffu;

    if (exp >= 0x47800000u) {                       /* |f| >= 65536: inf, nan or overflow */
        if (exp == 0x7f800000u && sig) {
            uint16_t h = (uint16_t)(0x7c00u + (sig >> 13));
            return sign | (h == 0x7c00u ? 0x7c01u : h); /* keep it a NaN */
        }
        return sign | 0x7c00u;
    }
    if (exp <= 0x38000000u) {                       /* half subnormal or zero */
        if (exp < 0x33000000u)
            return sign;
        uint32_t shift = 113 - (exp >> 23);         /* 1..11 extra bits drop out */
        uint32_t m = (0x00800000u + sig) >> shift;
        /* Round up unless exactly halfway with an even result; the bits lost to the
         * shift count as sticky bits. */
        if ((m & 0x3fffu) != 0x1000u || (sig & ((1u << shift) - 1)))
            m += 0x1000u;
        return sign | (uint16_t)(m >> 13);
    }
    uint16_t h = (uint16_t)((exp - 0x38000000u) >> 13);
    if ((sig & 0x3fffu) != 0x1000u)
        sig += 0x1000u;
    /* A carry out of the significand bumps the exponent, up to inf: both correct. */
    return sign | (uint16_t)(h + (sig >> 13));
}

float om_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, x;
    if (exp == 0x1f) {
        x = sign | 0x7f800000u | (man << 13);
    } else if (exp) {
        x = sign | ((exp + 112) << 23) | (man << 13);
    } else if (!man) {
        x = sign;
    } else {
        uint32_t e = 113;
        while (!(man & 0x400u)) {
            man <<= 1;
            e--;
        }
        x = sign | (e << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* llama.cpp scales by the reciprocal (x*id, not x/d): the last bit differs, so do we.
 * The clamps change nothing for finite input (|x*id| <= 127 resp. <= 8 up to rounding)
 * but keep the float->int conversion defined for inf/nan input. */
void om_quantize_q8_0(const float *src, void *dst, int64_t n)
{
    uint8_t *y = dst;
    for (int64_t b = 0; b < n / 32; b++, src += 32, y += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(src[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = om_fp32_to_fp16(d);
        memcpy(y, &dh, 2);
        for (int j = 0; j < 32; j++) {
            float q = roundf(src[j] * id);
            q = fminf(fmaxf(q, -128.0f), 127.0f);
            y[2 + j] = (uint8_t)(int8_t)q;
        }
    }
}

void om_quantize_q4_0(const float *src, void *dst, int64_t n)
{
    uint8_t *y = dst;
    for (int64_t b = 0; b < n / 32; b++, src += 32, y += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (amax < fabsf(src[j])) {             /* the first of equal magnitudes wins */
                amax = fabsf(src[j]);
                max = src[j];
            }
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = om_fp32_to_fp16(d);
        memcpy(y, &dh, 2);
        for (int j = 0; j < 16; j++) {
            float v0 = fminf(fmaxf(src[j] * id + 8.5f, 0.0f), 15.0f);
            float v1 = fminf(fmaxf(src[j + 16] * id + 8.5f, 0.0f), 15.0f);
            y[2 + j] = (uint8_t)((int)v0 | ((int)v1 << 4));
        }
    }
}

static void dequantize_q8_0(const uint8_t *x, float *dst, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++, x += 34, dst += 32) {
        uint16_t dh;
        memcpy(&dh, x, 2);
        const float d = om_fp16_to_fp32(dh);
        for (int j = 0; j < 32; j++)
            dst[j] = d * (float)(int8_t)x[2 + j];
    }
}

static void dequantize_q4_0(const uint8_t *x, float *dst, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++, x += 18, dst += 32) {
        uint16_t dh;
        memcpy(&dh, x, 2);
        const float d = om_fp16_to_fp32(dh);
        for (int j = 0; j < 16; j++) {
            dst[j] = d * (float)((x[2 + j] & 15) - 8);
            dst[j + 16] = d * (float)((x[2 + j] >> 4) - 8);
        }
    }
}

int om_dequantize(int type, const void *src, float *dst, int64_t n)
{
    if (!ours(type))
        return OM_EUNSUPPORTED;
    if (n < 0 || n % ggml_types[type].blck)
        return OM_EINVAL;
    const uint8_t *s = src;
    switch (type) {
    case OM_TYPE_F32:
        memcpy(dst, src, (size_t)n * 4);
        return 0;
    case OM_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = om_fp16_to_fp32(h);
        }
        return 0;
    case OM_TYPE_I32:
        for (int64_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, s + 4 * i, 4);
            dst[i] = (float)v;
        }
        return 0;
    case OM_TYPE_Q8_0:
        dequantize_q8_0(s, dst, n);
        return 0;
    case OM_TYPE_Q4_0:
        dequantize_q4_0(s, dst, n);
        return 0;
    }
    return OM_EINTERNAL;
}

int om_quantize(int type, const float *src, void *dst, int64_t n)
{
    if (!ours(type) || type == OM_TYPE_I32)
        return OM_EUNSUPPORTED;
    if (n < 0 || n % ggml_types[type].blck)
        return OM_EINVAL;
    uint8_t *d = dst;
    switch (type) {
    case OM_TYPE_F32:
        memcpy(dst, src, (size_t)n * 4);
        return 0;
    case OM_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = om_fp32_to_fp16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case OM_TYPE_Q8_0:
        om_quantize_q8_0(src, dst, n);
        return 0;
    case OM_TYPE_Q4_0:
        om_quantize_q4_0(src, dst, n);
        return 0;
    }
    return OM_EINTERNAL;
}
