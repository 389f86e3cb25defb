#version 450
/* eltwise: dst = f(a, b) over strided F32 tensors; b broadcasts (index i % b.ne).
 * One variant per f (eltwise.variants). Grid-stride over the elements of dst. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;
/* All three operands contiguous and b the same shape as dst: skip the index math. */
layout(constant_id = 1) const bool FLAT = false;

layout(push_constant) uniform PC {
    uint64_t d, a, b;
    uint ne[4];          /* of dst and a */
    uint a_nb[4];        /* strides in elements */
    uint b_ne[4];
    uint b_nb[4];
    uint d_nb[4];
    float s;
} pc;

float erf_approx(float x)
{
    /* Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: GLSL has no erf. */
    const float t = 1.0 / (1.0 + 0.3275911 * abs(x));
    const float y = 1.0 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 +
                    t * (-1.453152027 + t * 1.061405429)))) * exp(-x * x);
    return x < 0.0 ? -y : y;
}

float f(float x, float y)
{
#if defined(OP_ADD)
    return x + y;
#elif defined(OP_MUL)
    return x * y;
#elif defined(OP_SCALE)
    return x * pc.s;
#elif defined(OP_GELU)
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
#elif defined(OP_GELU_TANH)
    /* Clamped so exp-based tanh implementations cannot produce inf/inf. */
    const float u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
    return 0.5 * x * (1.0 + tanh(u));
#elif defined(OP_QUICK_GELU)
    return x / (1.0 + exp(-1.702 * x));
#elif defined(OP_SILU)
    return x / (1.0 + exp(-x));
#elif defined(OP_SWIGLU)
    return x / (1.0 + exp(-x)) * y;
#else
#error "eltwise: no OP_* defined"
#endif
}

void main()
{
    const uint n = pc.ne[0] * pc.ne[1] * pc.ne[2] * pc.ne[3];
    const uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#if defined(OP_ADD) || defined(OP_MUL) || defined(OP_SWIGLU)
    const bool binary = true;
#else
    const bool binary = false;
#endif
    for (uint i = gl_GlobalInvocationID.x; i < n; i += step) {
        uint ia = i, ib = i, id = i;
        if (!FLAT) {
            const uint i0 = i % pc.ne[0];
            uint r = i / pc.ne[0];
            const uint i1 = r % pc.ne[1];
            r /= pc.ne[1];
            const uint i2 = r % pc.ne[2];
            const uint i3 = r / pc.ne[2];
            ia = i0 * pc.a_nb[0] + i1 * pc.a_nb[1] + i2 * pc.a_nb[2] + i3 * pc.a_nb[3];
            id = i0 * pc.d_nb[0] + i1 * pc.d_nb[1] + i2 * pc.d_nb[2] + i3 * pc.d_nb[3];
            ib = (i0 % pc.b_ne[0]) * pc.b_nb[0] + (i1 % pc.b_ne[1]) * pc.b_nb[1] +
                 (i2 % pc.b_ne[2]) * pc.b_nb[2] + (i3 % pc.b_ne[3]) * pc.b_nb[3];
        }
        const float y = binary ? F32Buf(pc.b).v[ib] : 0.0;
        F32Buf(pc.d).v[id] = f(F32Buf(pc.a).v[ia], y);
    }
}
