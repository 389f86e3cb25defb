/* access.glsl: one way of reading the weights W and the input x, chosen by one define,
 * so that matvec_f16.comp and matvec_q8_0.comp run the same arithmetic over the same
 * bytes in every access style and only the load instructions differ:
 *   BDA_U32  BDA_U64  BDA_V4   buffer device addresses in push constants, 16 bytes of W
 *                              read as 4 uint / 2 uint64_t / 1 uvec4 loads
 *   SSBO_U32  SSBO_V4          descriptor-bound storage buffers (bindings 0, 1, 2)
 *   SSBO_H  SSBO_H4            16-bit storage: float16_t / f16vec4 loads (F16 only)
 *   SSBO_I8                    8-bit storage: uint8_t loads (Q8_0 only)
 *   UTB  UTB_H                 uniform texel buffers: texelFetch on a usamplerBuffer
 *                              (RGBA32UI) / a samplerBuffer (RGBA16F, F16 only)
 *   STB                        storage texel buffers: imageLoad on a uimageBuffer (rgba32ui)
 * With X_BDA as well, x is read through its address (2 uint64_t loads per vec4, as
 * the runtime does) whatever the style of W: weights moved, activations left as they are.
 * Q8_0 repacked at load (REPACK in matvec_q8_0.comp) also reads the block scales
 * through a uniform texel buffer (binding 8, R16F, from the scales' offset in W).
 * It defines
 *   uvec4 w16(uint c)          bytes 16c..16c+15 of W
 *   vec4  x4(uint i)           x[4i..4i+3]
 *   void  y1(uint i, float v)  y[i] = v
 * The push constants are the same block in every variant (one pipeline layout on the
 * host); the descriptor variants ignore the addresses. */
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_control_flow_attributes : require

layout(push_constant) uniform PC {
    uint64_t w, x, y;
    uint K, N;
} pc;

#if defined(BDA_U32) || defined(BDA_U64) || defined(BDA_V4) || defined(X_BDA)
#extension GL_EXT_buffer_reference : require
layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32s { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer V4s { vec4 v[]; };
void y1(uint i, float v) { F32s(pc.y).v[i] = v; }
#else
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
void y1(uint i, float v) { y[i] = v; }
#endif

#if defined(X_BDA)
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer XU64x2 { u64vec2 v[]; };
#define HAVE_X4
vec4 x4(uint i)
{
    const u64vec2 q = XU64x2(pc.x).v[i];
    return uintBitsToFloat(uvec4(unpack32(q.x), unpack32(q.y)));
}
#endif

#if defined(REPACK)
layout(binding = 8) uniform samplerBuffer wscale;
float w_scale(uint blk) { return texelFetch(wscale, int(blk)).x; }
#endif

#if defined(BDA_U32)
layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer U32s { uint v[]; };
uvec4 w16(uint c)
{
    U32s p = U32s(pc.w);
    return uvec4(p.v[4u * c], p.v[4u * c + 1u], p.v[4u * c + 2u], p.v[4u * c + 3u]);
}
vec4 x4(uint i)
{
    F32s p = F32s(pc.x);
    return vec4(p.v[4u * i], p.v[4u * i + 1u], p.v[4u * i + 2u], p.v[4u * i + 3u]);
}

#elif defined(BDA_U64)
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer U64s { uint64_t v[]; };
uvec4 w16(uint c)
{
    U64s p = U64s(pc.w);
    return uvec4(unpack32(p.v[2u * c]), unpack32(p.v[2u * c + 1u]));
}
vec4 x4(uint i)
{
    U64s p = U64s(pc.x);
    return uintBitsToFloat(uvec4(unpack32(p.v[2u * i]), unpack32(p.v[2u * i + 1u])));
}

#elif defined(BDA_V4)
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer UV4s { uvec4 v[]; };
uvec4 w16(uint c) { return UV4s(pc.w).v[c]; }
vec4 x4(uint i) { return V4s(pc.x).v[i]; }

#elif defined(SSBO_U32) || defined(SSBO_H) || defined(SSBO_I8)
/* The scalar descriptor styles: x read one float at a time like W. */
layout(std430, binding = 1) readonly buffer X { float x[]; };
vec4 x4(uint i) { return vec4(x[4u * i], x[4u * i + 1u], x[4u * i + 2u], x[4u * i + 3u]); }
#if defined(SSBO_U32)
layout(std430, binding = 0) readonly buffer W { uint w[]; };
uvec4 w16(uint c) { return uvec4(w[4u * c], w[4u * c + 1u], w[4u * c + 2u], w[4u * c + 3u]); }
#elif defined(SSBO_H)
#extension GL_EXT_shader_16bit_storage : require
layout(std430, binding = 0) readonly buffer W { float16_t w[]; };
#define HAVE_WH8
void wh8(uint c, out vec4 a, out vec4 b)
{
    a = vec4(w[8u * c], w[8u * c + 1u], w[8u * c + 2u], w[8u * c + 3u]);
    b = vec4(w[8u * c + 4u], w[8u * c + 5u], w[8u * c + 6u], w[8u * c + 7u]);
}
#else
#extension GL_EXT_shader_8bit_storage : require
layout(std430, binding = 0) readonly buffer W { uint8_t w[]; };
uint wb(uint a) { return uint(w[a]); }
#endif

#elif defined(SSBO_V4) || defined(SSBO_H4)
layout(std430, binding = 1) readonly buffer X { vec4 x[]; };
vec4 x4(uint i) { return x[i]; }
#if defined(SSBO_V4)
layout(std430, binding = 0) readonly buffer W { uvec4 w[]; };
uvec4 w16(uint c) { return w[c]; }
#else
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(std430, binding = 0) readonly buffer W { f16vec4 w[]; };
#define HAVE_WH8
void wh8(uint c, out vec4 a, out vec4 b)
{
    a = vec4(w[2u * c]);
    b = vec4(w[2u * c + 1u]);
}
#endif

#elif defined(UTB) || defined(UTB_H)
#if !defined(HAVE_X4)
layout(binding = 5) uniform samplerBuffer xt;
vec4 x4(uint i) { return texelFetch(xt, int(i)); }
#endif
#if defined(UTB)
layout(binding = 3) uniform usamplerBuffer wt;
uvec4 w16(uint c) { return texelFetch(wt, int(c)); }
#else
/* The RGBA16F view converts the halves in the texel fetch. */
layout(binding = 7) uniform samplerBuffer wht;
#define HAVE_WH8
void wh8(uint c, out vec4 a, out vec4 b)
{
    a = texelFetch(wht, int(2u * c));
    b = texelFetch(wht, int(2u * c + 1u));
}
#endif

#elif defined(STB)
layout(binding = 4, rgba32ui) readonly uniform uimageBuffer wi;
uvec4 w16(uint c) { return imageLoad(wi, int(c)); }
#if !defined(HAVE_X4)
layout(binding = 6, rgba32f) readonly uniform imageBuffer xi;
vec4 x4(uint i) { return imageLoad(xi, int(i)); }
#endif

#else
#error "access.glsl: define one access style"
#endif

#if !defined(HAVE_WH8) && !defined(SSBO_I8)
/* Eight f16 values of W (16 bytes) as two vec4. */
void wh8(uint c, out vec4 a, out vec4 b)
{
    const uvec4 q = w16(c);
    a = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
    b = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
}
#endif
