/* ops_common.glsl: what the non-matmul op shaders share: buffer-reference views of
 * tensors (addresses arrive in push constants), workgroup reductions, and the row index
 * of the 2-D workgroup grid the host uses when rows exceed 65535. */
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_buffer_reference2 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32Buf { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 2) buffer F16Buf { float16_t v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer I32Buf { int v[]; };

/* One slot per subgroup; the host keeps workgroups at <= 32 subgroups. */
shared float red_sh[32];

/* Both reductions are called in uniform control flow by the whole workgroup. The
 * leading barrier keeps a second call from overwriting slots still being read. */
float wg_sum(float v)
{
    v = subgroupAdd(v);
    if (gl_NumSubgroups == 1)
        return v;
    barrier();
    if (subgroupElect())
        red_sh[gl_SubgroupID] = v;
    barrier();
    float t = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; ++i)
        t += red_sh[i];
    return t;
}

float wg_max(float v)
{
    v = subgroupMax(v);
    if (gl_NumSubgroups == 1)
        return v;
    barrier();
    if (subgroupElect())
        red_sh[gl_SubgroupID] = v;
    barrier();
    float t = red_sh[0];
    for (uint i = 1; i < gl_NumSubgroups; ++i)
        t = max(t, red_sh[i]);
    return t;
}

/* Row handled by this workgroup when the host spreads rows over x and y. */
uint wg_row()
{
    return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}
