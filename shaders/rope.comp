#version 450
/* rope: rotary position embedding of F32 x {head_dim, n_head, T, ne3} by I32 pos {T}.
 * One invocation per pair of values of a head: NORM rotates (2i, 2i+1), NEOX (i, i+n_rot/2),
 * both with theta_i = pos * freq_scale * base^(-2i/n_rot); values past n_rot are copied. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform PC {
    uint64_t x, d, pos;
    uint ne[4];
    uint x_nb[4];        /* strides in elements; [0] unused (1) */
    uint d_nb[4];
    uint n_rot;
    float log2_base;
    float freq_scale;
} pc;

void main()
{
    const uint half_hd = pc.ne[0] / 2;
    const uint n = half_hd * pc.ne[1] * pc.ne[2] * pc.ne[3];
    const uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    const uint half_rot = pc.n_rot / 2;
    for (uint g = gl_GlobalInvocationID.x; g < n; g += step) {
        const uint p = g % half_hd;
        uint r = g / half_hd;
        const uint i1 = r % pc.ne[1];
        r /= pc.ne[1];
        const uint i2 = r % pc.ne[2];
        const uint i3 = r / pc.ne[2];
        const uint xo = i1 * pc.x_nb[1] + i2 * pc.x_nb[2] + i3 * pc.x_nb[3];
        const uint dof = i1 * pc.d_nb[1] + i2 * pc.d_nb[2] + i3 * pc.d_nb[3];
        F32Buf X = F32Buf(pc.x);
        F32Buf D = F32Buf(pc.d);
        if (p >= half_rot) {
#if defined(ROPE_NEOX)
            const uint j = pc.n_rot + 2 * (p - half_rot);
#else
            const uint j = 2 * p;
#endif
            D.v[dof + j] = X.v[xo + j];
            D.v[dof + j + 1] = X.v[xo + j + 1];
            continue;
        }
#if defined(ROPE_NEOX)
        const uint j0 = p, j1 = p + half_rot;
#else
        const uint j0 = 2 * p, j1 = 2 * p + 1;
#endif
        const float t = float(I32Buf(pc.pos).v[i2]) * pc.freq_scale *
                        exp2(-2.0 * float(p) / float(pc.n_rot) * pc.log2_base);
        /* Vulkan only bounds sin/cos error inside [-pi, pi]: reduce first. */
        const float theta = t - 6.2831853071795865 * floor(t * 0.15915494309189534 + 0.5);
        const float c = cos(theta), s = sin(theta);
        const float a = X.v[xo + j0], b = X.v[xo + j1];
        D.v[dof + j0] = a * c - b * s;
        D.v[dof + j1] = a * s + b * c;
    }
}
