#version 450
/* cpy: dst[i] = src[i] between strided F32/F16 tensors of dst's shape (slices,
 * permutes, conversions; one variant per type pair), and nearest 2x upsampling
 * (src index i0/2, i1/2). Grid-stride over the elements of dst. */
#extension GL_GOOGLE_include_directive : require
#include "ops_common.glsl"

layout(local_size_x_id = 0) in;
/* Both tensors contiguous: skip the index math. */
layout(constant_id = 1) const bool FLAT = false;

layout(push_constant) uniform PC {
    uint64_t s, d;
    uint ne[4];          /* of dst */
    uint s_nb[4];        /* strides in elements */
    uint d_nb[4];
} pc;

#if defined(SRC_F16)
#define SRC_BUF F16Buf
#else
#define SRC_BUF F32Buf
#endif
#if defined(DST_F16)
#define DST_BUF F16Buf
#define DST_T float16_t
#else
#define DST_BUF F32Buf
#define DST_T float
#endif

void main()
{
    const uint n = pc.ne[0] * pc.ne[1] * pc.ne[2] * pc.ne[3];
    const uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < n; i += step) {
        uint is = i, id = i;
        if (!FLAT) {
            const uint i0 = i % pc.ne[0];
            uint r = i / pc.ne[0];
            const uint i1 = r % pc.ne[1];
            r /= pc.ne[1];
            const uint i2 = r % pc.ne[2];
            const uint i3 = r / pc.ne[2];
#if defined(UPSAMPLE2X)
            is = (i0 / 2) * pc.s_nb[0] + (i1 / 2) * pc.s_nb[1] + i2 * pc.s_nb[2] + i3 * pc.s_nb[3];
#else
            is = i0 * pc.s_nb[0] + i1 * pc.s_nb[1] + i2 * pc.s_nb[2] + i3 * pc.s_nb[3];
#endif
            id = i0 * pc.d_nb[0] + i1 * pc.d_nb[1] + i2 * pc.d_nb[2] + i3 * pc.d_nb[3];
        }
        /* Through float: a half-to-half OpFConvert is invalid SPIR-V. */
        DST_BUF(pc.d).v[id] = DST_T(float(SRC_BUF(pc.s).v[is]));
    }
}
