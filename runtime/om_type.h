/* om_type.h: element types and their block layouts, shared by GGUF, quantizers and ops.
 * Type ids are ggml's (so a GGUF tensor's type is used as is). Quantized types store
 * rows of ne[0] elements as blocks; llama.cpp's exact layouts:
 *   Q8_0: 32 values / 34 bytes: { f16 d; i8 qs[32] }            x = d*qs[j]
 *   Q4_0: 32 values / 18 bytes: { f16 d; u8 qs[16] }            x_j = d*((qs[j]&15)-8),
 *                                                               x_{j+16} = d*((qs[j]>>4)-8) */
#ifndef OM_TYPE_H
#define OM_TYPE_H

#include <stddef.h>
#include <stdint.h>

enum om_type {
    OM_TYPE_F32  = 0,
    OM_TYPE_F16  = 1,
    OM_TYPE_Q4_0 = 2,
    OM_TYPE_Q8_0 = 8,
    OM_TYPE_I32  = 26,
    OM_TYPE_COUNT_ = 40,          /* bound for ggml type ids we may meet in files */
};

/* Name ("f32", "q4_0"), or NULL for a type omnid cannot compute with. */
const char *om_type_name(int type);
/* Values per block (1 for plain types) and bytes per block; 0 when unsupported. */
int      om_type_block(int type);
size_t   om_type_block_bytes(int type);
/* Bytes of one row of ne0 values; 0 when unsupported or ne0 % block != 0. */
uint64_t om_row_bytes(int type, int64_t ne0);

/* Every ggml type id a GGUF file may hold, including those omnid reads but does not
 * compute (q4_K, iq2_xs, bf16, ...): ggml's name, or NULL for ids ggml does not define
 * (removed or out of range); and the bytes of a row of ne0 values (0 when undefined or
 * ne0 is not a whole number of blocks, or the size would overflow). */
const char *om_ggml_type_name(int type);
uint64_t    om_ggml_row_bytes(int type, int64_t ne0);

/* IEEE half conversion, round-to-nearest-even (as F16C / numpy). */
uint16_t om_fp32_to_fp16(float f);
float    om_fp16_to_fp32(uint16_t h);

/* Reference quantizers (llama.cpp's): Q8_0 d = max|x|/127, q = round(x/d);
 * Q4_0 d = m/-8 with m the value of largest |x|, q = min(15, (int)(x/d + 8.5)).
 * n must be a multiple of 32. dst holds n/32 blocks. */
void om_quantize_q8_0(const float *src, void *dst, int64_t n);
void om_quantize_q4_0(const float *src, void *dst, int64_t n);
/* Any supported type -> f32. */
int  om_dequantize(int type, const void *src, float *dst, int64_t n);
/* f32 -> F32/F16/Q8_0/Q4_0. */
int  om_quantize(int type, const float *src, void *dst, int64_t n);

#endif
