/* gpu_pipeline.c: compute pipelines from the embedded SPIR-V (om_shaders), cached per
 * (name, specialization constants, push size), and the VkPipelineCache persisted under
 * $XDG_CACHE_HOME/omnid/ so a second start skips the driver's shader compiles. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu_internal.h"
#include "om_shaders.h"

#define PCACHE_MAX_BYTES (256u << 20)

static int cache_dir(char *dir, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (xdg && xdg[0] == '/')
        len = snprintf(dir, n, "%s/omnid", xdg);
    else if (home && *home)
        len = snprintf(dir, n, "%s/.cache/omnid", home);
    else
        return -1;
    return len > 0 && (size_t)len < n ? 0 : -1;
}

/* The driver checks the blob too, but not every driver survives garbage: reject a file
 * whose header names another device (a copied home directory, a driver update). */
static int header_matches(const om_gpu *gpu, const uint8_t *d, size_t n)
{
    VkPipelineCacheHeaderVersionOne h;
    if (n < sizeof h)
        return 0;
    memcpy(&h, d, sizeof h);
    return h.headerSize >= sizeof h && h.headerSize <= n &&
           h.headerVersion == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           h.vendorID == gpu->props.vendorID && h.deviceID == gpu->props.deviceID &&
           memcmp(h.pipelineCacheUUID, gpu->props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

static void *load_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    void *d = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && len <= (long)PCACHE_MAX_BYTES &&
        fseek(f, 0, SEEK_SET) == 0 && (d = malloc((size_t)len)) &&
        fread(d, 1, (size_t)len, f) != (size_t)len) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *n = d ? (size_t)len : 0;
    return d;
}

void gpu_pipeline_cache_open(om_gpu *gpu)
{
    char dir[900];
    void *data = NULL;
    size_t n = 0;
    if (cache_dir(dir, sizeof dir) == 0) {
        snprintf(gpu->pcache_path, sizeof gpu->pcache_path, "%s/pipelines-%04x-%04x.bin", dir,
                 gpu->props.vendorID, gpu->props.deviceID);
        data = load_file(gpu->pcache_path, &n);
        if (data && !header_matches(gpu, data, n)) {
            free(data);
            data = NULL;
            n = 0;
        }
    }
    VkPipelineCacheCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                     .initialDataSize = n, .pInitialData = data };
    if (vkCreatePipelineCache(gpu->dev, &ci, NULL, &gpu->pcache) != VK_SUCCESS && data) {
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        vkCreatePipelineCache(gpu->dev, &ci, NULL, &gpu->pcache);
    }
    free(data);
}

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int r = mkdir(path, 0755);
        *p = '/';
        if (r && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
}

/* Best effort: a read-only or missing cache directory only costs start-up time. */
static void save_cache(om_gpu *gpu)
{
    size_t n = 0;
    if (!gpu->pcache_path[0] || vkGetPipelineCacheData(gpu->dev, gpu->pcache, &n, NULL) != VK_SUCCESS || !n)
        return;
    void *d = malloc(n);
    if (!d || vkGetPipelineCacheData(gpu->dev, gpu->pcache, &n, d) != VK_SUCCESS) {
        free(d);
        return;
    }
    char dir[1024], tmp[1100];
    snprintf(dir, sizeof dir, "%s", gpu->pcache_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    /* Write then rename, so concurrent processes never read a torn file. */
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", gpu->pcache_path, (long)getpid());
    FILE *f = NULL;
    if (mkdir_p(dir) == 0 && (f = fopen(tmp, "wb"))) {
        int ok = fwrite(d, 1, n, f) == n;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, gpu->pcache_path) != 0)
            unlink(tmp);
    }
    free(d);
}

void gpu_pipeline_cache_close(om_gpu *gpu)
{
    while (gpu->pipes) {
        struct om_pipe *next = gpu->pipes->next;
        vkDestroyPipeline(gpu->dev, gpu->pipes->pipeline, NULL);
        vkDestroyPipelineLayout(gpu->dev, gpu->pipes->layout, NULL);
        if (gpu->pipes->dsl)
            vkDestroyDescriptorSetLayout(gpu->dev, gpu->pipes->dsl, NULL);
        free(gpu->pipes);
        gpu->pipes = next;
    }
    if (gpu->pcache) {
        save_cache(gpu);
        vkDestroyPipelineCache(gpu->dev, gpu->pcache, NULL);
    }
}

static int create_pipe(om_gpu *gpu, const om_shader_blob *blob, struct om_pipe *p)
{
    VkShaderModuleCreateInfo smci = { .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                      .codeSize = blob->size, .pCode = blob->code };
    VkShaderModule sm = VK_NULL_HANDLE;
    const char *what = "vkCreateShaderModule";
    VkResult r = vkCreateShaderModule(gpu->dev, &smci, NULL, &sm);
    if (r == VK_SUCCESS && p->texel) {
        /* One uniform texel buffer, pushed per dispatch (om_cmd_bind_texels). */
        VkDescriptorSetLayoutBinding bind = { .binding = 0,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
        VkDescriptorSetLayoutCreateInfo dci = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
            .flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR,
            .bindingCount = 1, .pBindings = &bind };
        what = "vkCreateDescriptorSetLayout";
        r = vkCreateDescriptorSetLayout(gpu->dev, &dci, NULL, &p->dsl);
    }
    if (r == VK_SUCCESS) {
        VkPushConstantRange range = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = p->push_bytes };
        VkPipelineLayoutCreateInfo lci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                           .setLayoutCount = p->texel ? 1 : 0,
                                           .pSetLayouts = &p->dsl,
                                           .pushConstantRangeCount = p->push_bytes ? 1 : 0,
                                           .pPushConstantRanges = &range };
        what = "vkCreatePipelineLayout";
        r = vkCreatePipelineLayout(gpu->dev, &lci, NULL, &p->layout);
    }
    if (r == VK_SUCCESS) {
        VkSpecializationMapEntry map[OM_MAX_SPEC];
        for (int i = 0; i < p->n_spec; i++)
            map[i] = (VkSpecializationMapEntry){ .constantID = (uint32_t)i, .offset = (uint32_t)(4 * i),
                                                 .size = 4 };
        VkSpecializationInfo si = { .mapEntryCount = (uint32_t)p->n_spec, .pMapEntries = map,
                                    .dataSize = 4 * (size_t)p->n_spec, .pData = p->spec };
        VkPipelineShaderStageRequiredSubgroupSizeCreateInfo sg = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
            .requiredSubgroupSize = gpu->info.subgroup_size };
        VkComputePipelineCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                       .pNext = gpu->require_subgroup ? &sg : NULL,
                       .stage = VK_SHADER_STAGE_COMPUTE_BIT, .module = sm, .pName = "main",
                       .pSpecializationInfo = p->n_spec ? &si : NULL },
            .layout = p->layout,
        };
        what = "vkCreateComputePipelines";
        r = vkCreateComputePipelines(gpu->dev, gpu->pcache, 1, &ci, NULL, &p->pipeline);
    }
    if (sm)
        vkDestroyShaderModule(gpu->dev, sm, NULL);
    if (r != VK_SUCCESS) {
        if (p->layout)
            vkDestroyPipelineLayout(gpu->dev, p->layout, NULL);
        if (p->dsl)
            vkDestroyDescriptorSetLayout(gpu->dev, p->dsl, NULL);
        return om_gpu_set_error(gpu, om_vk_code(r), "pipeline %s: %s: %s", p->name, what,
                                om_vk_result_name(r));
    }
    return OM_OK;
}

/* Whether a SPIR-V module declares descriptor bindings (an OpDecorate ... DescriptorSet).
 * Texel-buffer modules do and need the texel layout; a module created with a layout that
 * lacks its bindings is invalid and crashes lavapipe, so the mismatch is refused here. */
static int spirv_has_descriptors(const om_shader_blob *b)
{
    enum { OP_DECORATE = 71, DECORATION_DESCRIPTOR_SET = 34 };
    size_t n = b->size / 4;
    for (size_t i = 5; i < n;) {
        uint32_t words = b->code[i] >> 16, op = b->code[i] & 0xffff;
        if (words == 0 || i + words > n)
            return 0;
        if (op == OP_DECORATE && words >= 3 && b->code[i + 2] == DECORATION_DESCRIPTOR_SET)
            return 1;
        i += words;
    }
    return 0;
}

static int get_pipeline(om_gpu *gpu, const char *name, const uint32_t *spec, int n_spec,
                        uint32_t push_bytes, int texel, om_pipe **out)
{
    if (!gpu || !name || !out || n_spec < 0 || (n_spec && !spec))
        return OM_EINVAL;
    *out = NULL;
    if (n_spec > OM_MAX_SPEC)
        return om_gpu_set_error(gpu, OM_ERANGE, "pipeline %s: %d specialization constants (max %d)",
                                name, n_spec, OM_MAX_SPEC);
    if (push_bytes > gpu->info.max_push_bytes || push_bytes % 4)
        return om_gpu_set_error(gpu, OM_ERANGE, "pipeline %s: push constants of %u bytes (need a multiple "
                                "of 4, at most maxPushConstantsSize %u)", name, push_bytes,
                                gpu->info.max_push_bytes);
    for (struct om_pipe *p = gpu->pipes; p; p = p->next)
        if (p->n_spec == n_spec && p->push_bytes == push_bytes && p->texel == texel &&
            strcmp(p->name, name) == 0 &&
            (n_spec == 0 || memcmp(p->spec, spec, 4 * (size_t)n_spec) == 0)) {
            *out = p;
            return OM_OK;
        }
    const om_shader_blob *blob = om_shader_find(name);
    if (!blob)
        return om_gpu_set_error(gpu, OM_ENOENT, "pipeline %s: no such shader module", name);
    if (spirv_has_descriptors(blob) != texel)
        return om_gpu_set_error(gpu, OM_EINVAL, "pipeline %s: %s", name,
                                texel ? "the module reads no texel buffer (use om_gpu_pipeline)"
                                      : "the module reads a texel buffer (use om_gpu_pipeline_texel)");
    if (strlen(name) >= sizeof gpu->pipes->name)
        return om_gpu_set_error(gpu, OM_ERANGE, "pipeline %s: name too long", name);
    struct om_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return om_gpu_set_error(gpu, OM_ENOMEM, "pipeline %s: out of host memory", name);
    snprintf(p->name, sizeof p->name, "%s", name);
    if (n_spec)
        memcpy(p->spec, spec, 4 * (size_t)n_spec);
    p->n_spec = n_spec;
    p->push_bytes = push_bytes;
    p->texel = texel;
    int ret = create_pipe(gpu, blob, p);
    if (ret) {
        free(p);
        return ret;
    }
    p->next = gpu->pipes;
    gpu->pipes = p;
    *out = p;
    return OM_OK;
}

int om_gpu_pipeline(om_gpu *gpu, const char *name, const uint32_t *spec, int n_spec,
                    uint32_t push_bytes, om_pipe **out)
{
    return get_pipeline(gpu, name, spec, n_spec, push_bytes, 0, out);
}

int om_gpu_pipeline_texel(om_gpu *gpu, const char *name, const uint32_t *spec, int n_spec,
                          uint32_t push_bytes, om_pipe **out)
{
    if (gpu && out && !gpu->info.has_texel) {
        *out = NULL;
        return om_gpu_set_error(gpu, OM_EUNSUPPORTED, "pipeline %s: %s has no texel-buffer "
                                "weight reads (VK_KHR_push_descriptor)", name ? name : "?",
                                gpu->info.name);
    }
    return get_pipeline(gpu, name, spec, n_spec, push_bytes, 1, out);
}
