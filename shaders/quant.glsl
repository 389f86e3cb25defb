/* quant.glsl: reading weight rows of every weight type (F32, F16, Q8_0, Q4_0) through
 * buffer device addresses, or with W_TEXEL through a uniform texel buffer at set 0,
 * binding 0, for matvec, matmul and get_rows (others may include it).
 *
 * Weights are read in 8-byte words: llvmpipe (Mesa 22.3) runs every load of a scalar
 * component as one load per lane, about 30 cycles per 8 lanes whatever the width and
 * even when the address is uniform, so bytes per component is what counts; a GPU
 * coalesces 8-byte lanes well. Q8_0 (34 B) and Q4_0 (18 B) blocks are only 2-byte
 * aligned, so a block is read as the aligned words that cover it and shifted into
 * place (om_wq8_0, om_wq4_0). That reads up to 6 bytes past a block's end: the host
 * makes sure the buffer holds them.
 *
 * A shader that reads weights defines one of W_F32, W_F16, W_Q8_0, W_Q4_0, and gets:
 *   W_BK           values per block (4 for F32/F16: one 8/16-byte load)
 *   W_BB           bytes per block
 *   om_wblk        a loaded block
 *   om_waddr       the type of a weight address: uint64_t, or with W_TEXEL a uint byte
 *                  offset in the texel view (RGBA16F for F16, else RGBA32UI; the host
 *                  keeps every offset below 2^31)
 *   om_wload(a)    loads the block at byte address a
 *   om_wchunk(b,s) its stored values 4s..4s+3 (s constant after unrolling): the value is
 *                  (chunk + W_OFFSET) * om_wscale(b), so a dot product over a block can
 *                  apply the scale and offset once per block instead of per value
 *   om_wdeq(b,s)   the dequantized values 4s..4s+3
 *
 * W_TEXEL exists for llvmpipe: there a texel fetch is one vector compare and straight
 * 16-byte (RGBA32UI) or 8-byte + vcvtph2ps (RGBA16F) loads, where an address load is
 * the per-lane loop above (docs/RUNTIME.md, "Weight access styles"). Blocks are read as
 * the 16-byte texels that cover them and shifted into place as with addresses.
 */
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference2 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_control_flow_attributes : require

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer OmU64 { uint64_t v; };
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer OmU64x2 { u64vec2 v; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer OmF32 { float v; };

uint64_t om_ld64(uint64_t a) { return OmU64(a).v; }

/* Four f32 from a 16-byte aligned address. */
vec4 om_ld_vec4(uint64_t a)
{
    const u64vec2 q = OmU64x2(a).v;
    return uintBitsToFloat(uvec4(unpack32(q.x), unpack32(q.y)));
}

/* Bits [s, s+64) of the 128-bit value hi:lo, 0 <= s < 64 (the double shift keeps
 * every shift count below 64). */
uint64_t om_funnel(uint64_t lo, uint64_t hi, uint s)
{
    return (lo >> s) | ((hi << 1) << (63u - s));
}

#if defined(W_TEXEL)
#define om_waddr uint
#if defined(W_F16)
layout(set = 0, binding = 0) uniform samplerBuffer om_wtex;
#else
layout(set = 0, binding = 0) uniform usamplerBuffer om_wtex;
/* The 16 bytes from byte a (a multiple of 16) as two words. */
void om_wt16(uint a, out uint64_t lo, out uint64_t hi)
{
    const uvec4 t = texelFetch(om_wtex, int(a >> 4));
    lo = pack64(t.xy);
    hi = pack64(t.zw);
}
#endif
#else
#define om_waddr uint64_t
#endif

#if defined(W_F32)
#define W_BK 4
#define W_BB 16
#define W_OFFSET 0.0
#define om_wblk vec4
#if defined(W_TEXEL)
om_wblk om_wload(uint a) { return uintBitsToFloat(texelFetch(om_wtex, int(a >> 4))); }
#else
om_wblk om_wload(uint64_t a) { return om_ld_vec4(a); }
#endif
vec4 om_wchunk(om_wblk b, uint s) { return b; }
float om_wscale(om_wblk b) { return 1.0; }

#elif defined(W_F16)
#define W_OFFSET 0.0
#if defined(W_TEXEL) && defined(W_F16X16)
/* Texel only, rows of a multiple of 16 values: a block of 16 from 4 RGBA16F texels (the
 * fetch converts the halves). Fewer, fuller loop trips: 4096x4096 on llvmpipe ran
 * ~2.1 ms against ~2.3-2.5 with 8 values per block and 4-7 ms with 4. */
#define W_BK 16
#define W_BB 32
#define om_wblk mat4
om_wblk om_wload(uint a)
{
    const int t = int(a >> 3);
    return mat4(texelFetch(om_wtex, t), texelFetch(om_wtex, t + 1), texelFetch(om_wtex, t + 2),
                texelFetch(om_wtex, t + 3));
}
vec4 om_wchunk(om_wblk b, uint s) { return b[s]; }
#elif defined(W_TEXEL)
#define W_BK 4
#define W_BB 8
#define om_wblk vec4
om_wblk om_wload(uint a) { return texelFetch(om_wtex, int(a >> 3)); }
vec4 om_wchunk(om_wblk b, uint s) { return b; }
#else
#define W_BK 4
#define W_BB 8
#define om_wblk uint64_t
om_wblk om_wload(uint64_t a) { return om_ld64(a); }
vec4 om_wchunk(om_wblk b, uint s)
{
    const uvec2 u = unpack32(b);
    return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
}
#endif
float om_wscale(om_wblk b) { return 1.0; }

#elif defined(W_Q8_0)
/* { f16 d; i8 qs[32] }: qs word j (bytes 2+4j..5+4j of the block) holds values 4j..4j+3. */
#define W_BK 32
#define W_BB 34
#define W_OFFSET 0.0
struct om_wblk { float d; uint q[8]; };
/* The block whose first byte is bit s of w[0] (s a multiple of 16). */
om_wblk om_wq8_0(const uint64_t w[5], uint s)
{
    uint64_t e[5];
    [[unroll]] for (uint i = 0; i < 4; i++)
        e[i] = om_funnel(w[i], w[i + 1], s);
    e[4] = w[4] >> s;
    om_wblk b;
    b.d = unpackHalf2x16(uint(e[0])).x;
    [[unroll]] for (uint t = 0; t < 4; t++) {
        b.q[2 * t] = uint(e[t] >> 16);
        b.q[2 * t + 1] = uint(e[t] >> 48) | uint(e[t + 1] << 16);
    }
    return b;
}
#if defined(W_TEXEL)
/* The three texels covering the block (it starts at most 14 bytes into the first);
 * which word it starts in is a per-lane select, not an indexed load. */
om_wblk om_wload(uint a)
{
    const uint a0 = a & ~15u, o = a & 15u;
    uint64_t t[6], w[5];
    om_wt16(a0, t[0], t[1]);
    om_wt16(a0 + 16u, t[2], t[3]);
    om_wt16(a0 + 32u, t[4], t[5]);
    [[unroll]] for (uint i = 0; i < 5; i++)
        w[i] = o >= 8u ? t[i + 1] : t[i];
    return om_wq8_0(w, (o & 7u) * 8u);
}
#else
om_wblk om_wload(uint64_t a)
{
    const uint64_t a0 = a & ~uint64_t(7);
    uint64_t w[5];
    [[unroll]] for (uint i = 0; i < 5; i++)
        w[i] = om_ld64(a0 + 8u * i);
    return om_wq8_0(w, uint(a - a0) * 8u);
}
#endif
vec4 om_wchunk(om_wblk b, uint s)
{
    return vec4(ivec4(uvec4(b.q[s]) << uvec4(24, 16, 8, 0)) >> 24);
}
float om_wscale(om_wblk b) { return b.d; }

#elif defined(W_Q4_0)
/* { f16 d; u8 qs[16] }: value j < 16 is the low nibble of qs[j], value j + 16 the high
 * one; qs word t holds the nibbles of values 4t..4t+3 and 16+4t..16+4t+3. */
#define W_BK 32
#define W_BB 18
#define W_OFFSET -8.0
struct om_wblk { float d; uint q[4]; };
/* The block whose first byte is bit s of w0 (s a multiple of 16). */
om_wblk om_wq4_0(uint64_t w0, uint64_t w1, uint64_t w2, uint s)
{
    const uint64_t e0 = om_funnel(w0, w1, s), e1 = om_funnel(w1, w2, s), e2 = w2 >> s;
    om_wblk b;
    b.d = unpackHalf2x16(uint(e0)).x;
    b.q[0] = uint(e0 >> 16);
    b.q[1] = uint(e0 >> 48) | uint(e1 << 16);
    b.q[2] = uint(e1 >> 16);
    b.q[3] = uint(e1 >> 48) | uint(e2 << 16);
    return b;
}
#if defined(W_TEXEL)
/* The two texels covering the block (18 bytes from at most byte 14 of the first). */
om_wblk om_wload(uint a)
{
    const uint a0 = a & ~15u, o = a & 15u;
    uint64_t t0, t1, t2, t3;
    om_wt16(a0, t0, t1);
    om_wt16(a0 + 16u, t2, t3);
    const bool hi = o >= 8u;
    return om_wq4_0(hi ? t1 : t0, hi ? t2 : t1, hi ? t3 : t2, (o & 7u) * 8u);
}
#else
om_wblk om_wload(uint64_t a)
{
    const uint64_t a0 = a & ~uint64_t(7);
    return om_wq4_0(om_ld64(a0), om_ld64(a0 + 8u), om_ld64(a0 + 16u), uint(a - a0) * 8u);
}
#endif
vec4 om_wchunk(om_wblk b, uint s)
{
    /* through int: x86 has no unsigned int -> float conversion below AVX-512 */
    return vec4(ivec4((uvec4(b.q[s & 3u]) >> (uvec4(0, 8, 16, 24) + (s >> 2) * 4u)) & 15u));
}
float om_wscale(om_wblk b) { return b.d; }

#endif

#if defined(W_BK)
vec4 om_wdeq(om_wblk b, uint s)
{
    return (om_wchunk(b, s) + W_OFFSET) * om_wscale(b);
}
#endif
