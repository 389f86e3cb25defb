#version 450
// copy_test: dst[i] = src[i] + add for i < n. The runtime's own test shader: buffer
// device addresses in push constants, workgroup size from specialization constant 0.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

layout(local_size_x_id = 0) in;

layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer Src { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) writeonly buffer Dst { float v[]; };

layout(push_constant) uniform Push {
    uint64_t src;
    uint64_t dst;
    uint     n;
    float    add;
} pc;

void main()
{
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n)
        return;
    Dst(pc.dst).v[i] = Src(pc.src).v[i] + pc.add;
}
