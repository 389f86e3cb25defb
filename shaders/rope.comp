#version 450
/* rope: rotary position embedding of F32 x {head_dim, n_head, T, ne3} by I32 pos {T}.
 * NORM rotates pairs (2i, 2i+1), NEOX (i, i+n_rot/2), both by theta_i = pos * freq_scale
 * * base^(-2i/n_rot) / ff[i] (ff: optional per-pair frequency factors, llama.cpp's
 * rope_freqs; address 0 when absent); values past n_rot are copied. One workgroup per token: a lane
 * computes cos/sin of its pairs once and applies them to every head of the token
 * (the angles do not depend on the head), so the transcendentals and the index math
 * are paid once per token instead of once per head. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform PC {
    uint64_t x, d, pos, ff;
    uint ne[4];
    uint x_nb[4];        /* strides in elements; [0] unused (1) */
    uint d_nb[4];
    uint n_rot;
    float log2_base;
    float freq_scale;
} pc;

void main()
{
    const uint row = wg_row();             /* token i2 + i3 * ne2 */
    if (row >= pc.ne[2] * pc.ne[3])
        return;
    const uint i2 = row % pc.ne[2], i3 = row / pc.ne[2];
    const uint half_hd = pc.ne[0] / 2;
    const uint half_rot = pc.n_rot / 2;
    const float fpos = float(I32Buf(pc.pos).v[i2]) * pc.freq_scale;
    for (uint p = gl_LocalInvocationID.x; p < half_hd; p += gl_WorkGroupSize.x) {
        const bool rot = p < half_rot;
        float c = 1.0, s = 0.0;
        if (rot) {
            float t = fpos * exp2(-2.0 * float(p) / float(pc.n_rot) * pc.log2_base);
            if (pc.ff != 0ul)           /* uniform: no divergence, one load per pair */
                t /= F32Buf(pc.ff).v[p];
            /* Vulkan only bounds sin/cos error inside [-pi, pi]: reduce first. */
            const float theta = t - 6.2831853071795865 * floor(t * 0.15915494309189534 + 0.5);
            c = cos(theta);
            s = sin(theta);
        }
#if defined(ROPE_NEOX)
        const uint j0 = rot ? p : pc.n_rot + 2 * (p - half_rot);
        const uint j1 = rot ? p + half_rot : j0 + 1;
#else
        const uint j0 = 2 * p, j1 = 2 * p + 1;
#endif
        for (uint i1 = 0; i1 < pc.ne[1]; ++i1) {
            F32Buf X = F32Buf(pc.x + 4ul * (i1 * pc.x_nb[1] + i2 * pc.x_nb[2] + i3 * pc.x_nb[3]));
            F32Buf D = F32Buf(pc.d + 4ul * (i1 * pc.d_nb[1] + i2 * pc.d_nb[2] + i3 * pc.d_nb[3]));
            const float a = X.v[j0], b = X.v[j1];
            D.v[j0] = a * c - b * s;
            D.v[j1] = a * s + b * c;
        }
    }
}
