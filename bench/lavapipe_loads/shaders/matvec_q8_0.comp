#version 450
/* y = W·x, W N×K in GGUF Q8_0 blocks ({f16 d; i8 q[32]}, 34 bytes, so only 2-byte
 * aligned), x and y F32. One subgroup per R rows; lane l takes blocks l, l+8, ... of
 * each row. A block is read as the three 16-byte chunks that cover it (w16) and
 * shifted into place, except in SSBO_I8, which reads its 34 bytes one at a time.
 * With REPACK, W is the same blocks repacked as a load step could: all 32-byte q
 * arrays first (two aligned chunks each), then all scales (read by w_scale).
 * The host pads W by 48 bytes and guarantees K % (32 * subgroup size) == 0, N % R == 0. */
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "access.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint R = 4;

/* Bits [s, s+64) of hi:lo, 0 <= s < 64 (the double shift keeps every count below 64). */
uint64_t funnel(uint64_t lo, uint64_t hi, uint s)
{
    return (lo >> s) | ((hi << 1) << (63u - s));
}

/* Block blk (= row * nb + b), at byte a = 34 * blk: its scale and its 32 values as
 * 8 words of 4 signed bytes. */
float load_block(uint blk, uint a, out uint q[8])
{
#if defined(REPACK)
    const uvec4 lo = w16(2u * blk), hi = w16(2u * blk + 1u);
    q = uint[8](lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    return w_scale(blk);
#elif defined(SSBO_I8)
    const float d = unpackHalf2x16(wb(a) | (wb(a + 1u) << 8)).x;
    [[unroll]] for (uint j = 0; j < 8; j++)
        q[j] = wb(a + 2u + 4u * j) | (wb(a + 3u + 4u * j) << 8) |
               (wb(a + 4u + 4u * j) << 16) | (wb(a + 5u + 4u * j) << 24);
    return d;
#else
    const uint c = a >> 4, o = a & 15u;
    const uvec4 c0 = w16(c), c1 = w16(c + 1u), c2 = w16(c + 2u);
    const uint64_t w[6] = uint64_t[6](pack64(c0.xy), pack64(c0.zw), pack64(c1.xy),
                                      pack64(c1.zw), pack64(c2.xy), pack64(c2.zw));
    /* e: the 40 bytes from a on; which word a starts in is a per-lane select. */
    const bool hi = o >= 8u;
    const uint s = (o & 7u) * 8u;
    uint64_t e[5];
    [[unroll]] for (uint i = 0; i < 5; i++)
        e[i] = funnel(hi ? w[i + 1] : w[i], hi ? w[i + 2 < 6 ? i + 2 : 5] : w[i + 1], s);
    [[unroll]] for (uint j = 0; j < 8; j++) {
        const uint p = 16u + 32u * j;         /* bit of e where value 4j starts */
        q[j] = uint(p % 64u <= 32u ? e[p / 64u] >> (p % 64u)
                                    : funnel(e[p / 64u], e[p / 64u + 1u], p % 64u));
    }
    return unpackHalf2x16(uint(e[0]) & 0xffffu).x;
#endif
}

void main()
{
    const uint lane = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * R;
    const uint nb = pc.K / 32u;
    float acc[R];
    [[unroll]] for (uint r = 0; r < R; r++)
        acc[r] = 0.0;
    for (uint b0 = 0; b0 < nb; b0 += gl_WorkGroupSize.x) {   /* uniform trip count */
        const uint b = b0 + lane;
        vec4 xv[8];
        [[unroll]] for (uint j = 0; j < 8; j++)
            xv[j] = x4(8u * b + j);
        [[unroll]] for (uint r = 0; r < R; r++) {
            uint q[8];
            const uint blk = (row0 + r) * nb + b;
            const float d = load_block(blk, blk * 34u, q);
            vec4 t = vec4(0.0);
            [[unroll]] for (uint j = 0; j < 8; j++)
                t += vec4(ivec4(q[j] << 24, q[j] << 16, q[j] << 8, q[j]) >> 24) * xv[j];
            acc[r] += d * (t.x + t.y + t.z + t.w);
        }
    }
    [[unroll]] for (uint r = 0; r < R; r++) {
        const float t = subgroupAdd(acc[r]);
        if (lane == 0u)
            y1(row0 + r, t);
    }
}
