/* gpu_memory.c: buffers (one VkDeviceMemory each), staging copies, per-forward arenas. */
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"

#define ARENA_ALIGN  256u
#define TEXEL_MAX    16u          /* bytes of the largest texel format (RGBA32UI) */
#define VIEW_CHUNK   256

static const char *usage_name(int usage)
{
    switch (usage) {
    case OM_BUF_DEVICE:   return "device";
    case OM_BUF_UPLOAD:   return "upload";
    case OM_BUF_DOWNLOAD: return "download";
    default:              return "?";
    }
}

int om_buf_create(om_gpu *gpu, uint64_t size, int usage, om_buf **out)
{
    if (!gpu || !out)
        return OM_EINVAL;
    *out = NULL;
    if (usage < OM_BUF_DEVICE || usage > OM_BUF_DOWNLOAD)
        return om_gpu_set_error(gpu, OM_EINVAL, "om_buf_create: bad usage %d", usage);
    if (size == 0)
        return om_gpu_set_error(gpu, OM_EINVAL, "om_buf_create: size 0");
    if (size > gpu->info.max_alloc_bytes)
        return om_gpu_set_error(gpu, OM_ERANGE,
                                "om_buf_create: %llu bytes exceed maxMemoryAllocationSize %llu of %s",
                                (unsigned long long)size, (unsigned long long)gpu->info.max_alloc_bytes,
                                gpu->info.name);
    om_buf *b = calloc(1, sizeof *b);
    if (!b)
        return om_gpu_set_error(gpu, OM_ENOMEM, "om_buf_create: out of host memory");
    b->gpu = gpu;
    b->size = size;
    /* Whole texels: a texel view may then reach the last bytes of the buffer. */
    b->vk_size = (size + TEXEL_MAX - 1) & ~(uint64_t)(TEXEL_MAX - 1);
    if (b->vk_size > gpu->info.max_alloc_bytes)
        b->vk_size = size;

    int type = usage == OM_BUF_DEVICE ? gpu->type_device
             : usage == OM_BUF_UPLOAD ? gpu->type_upload : gpu->type_download;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = b->vk_size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
                 (gpu->info.has_texel ? VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT : 0),
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    const char *what = "vkCreateBuffer";
    VkResult r = vkCreateBuffer(gpu->dev, &bci, NULL, &b->buffer);
    if (r == VK_SUCCESS) {
        VkMemoryRequirements req;
        vkGetBufferMemoryRequirements(gpu->dev, b->buffer, &req);
        if (!(req.memoryTypeBits & (1u << type))) {
            om_buf_destroy(b);
            return om_gpu_set_error(gpu, OM_EUNSUPPORTED, "om_buf_create: memory type %d not allowed "
                                    "for buffers (bits 0x%x)", type, req.memoryTypeBits);
        }
        VkMemoryAllocateFlagsInfo flags = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
                                            .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT };
        VkMemoryAllocateInfo mai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &flags,
                                     .allocationSize = req.size, .memoryTypeIndex = (uint32_t)type };
        what = "vkAllocateMemory";
        r = vkAllocateMemory(gpu->dev, &mai, NULL, &b->memory);
    }
    if (r == VK_SUCCESS) {
        what = "vkBindBufferMemory";
        r = vkBindBufferMemory(gpu->dev, b->buffer, b->memory, 0);
    }
    /* DEVICE buffers are mapped only on unified memory: a discrete card's BAR-visible
     * device memory is slow to read from the host, so those go through staging. */
    int mappable = gpu->mem.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    if (usage == OM_BUF_DEVICE && !gpu->info.unified_memory)
        mappable = 0;
    if (r == VK_SUCCESS && mappable) {
        what = "vkMapMemory";
        void *p = NULL;
        r = vkMapMemory(gpu->dev, b->memory, 0, VK_WHOLE_SIZE, 0, &p);
        b->map = p;
    }
    if (r != VK_SUCCESS) {
        om_buf_destroy(b);
        return om_gpu_set_error(gpu, om_vk_code(r), "om_buf_create: %s (%llu bytes, %s): %s", what,
                                (unsigned long long)size, usage_name(usage), om_vk_result_name(r));
    }
    VkBufferDeviceAddressInfo ai = { .sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                     .buffer = b->buffer };
    b->addr = vkGetBufferDeviceAddress(gpu->dev, &ai);
    *out = b;
    return OM_OK;
}

int gpu_buf_texels(om_buf *b, int fmt)
{
    static const VkFormat vk_fmt[OM_TEXEL_FORMATS] = { VK_FORMAT_R32G32B32A32_UINT,
                                                       VK_FORMAT_R16G16B16A16_SFLOAT };
    static const uint32_t fmt_bytes[OM_TEXEL_FORMATS] = { 16, 8 };
    om_gpu *gpu = b->gpu;
    if (b->texels[fmt])
        return OM_OK;
    if (!gpu->info.has_texel)
        return om_gpu_set_error(gpu, OM_EUNSUPPORTED, "texel view: %s has no uniform texel "
                                "buffers", gpu->info.name);
    /* The view starts at the aligned offset at or below byte 0 (arena views sit at any
     * multiple of 256) and ends at a whole texel, at most maxTexelBufferElements texels
     * and 2^31 bytes on: shaders index the view with 32-bit byte offsets. */
    const uint64_t tb = fmt_bytes[fmt];
    const uint64_t align = gpu->info.texel_align ? gpu->info.texel_align : 1;
    const uint64_t start = b->offset / align * align;
    uint64_t range = (b->offset - start + b->size + tb - 1) / tb * tb;
    if (range > (b->vk_size - start) / tb * tb)
        range = (b->vk_size - start) / tb * tb;
    if (range > (uint64_t)gpu->info.max_texel_elements * tb)
        range = (uint64_t)gpu->info.max_texel_elements * tb;
    if (range > (1ull << 31))
        range = 1ull << 31;
    if (range == 0)
        return om_gpu_set_error(gpu, OM_ERANGE, "texel view: a buffer of %llu bytes holds no "
                                "whole texel", (unsigned long long)b->size);
    VkBufferViewCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                  .buffer = b->buffer, .format = vk_fmt[fmt],
                                  .offset = start, .range = range };
    VkResult r = vkCreateBufferView(gpu->dev, &ci, NULL, &b->texels[fmt]);
    if (r != VK_SUCCESS) {
        b->texels[fmt] = VK_NULL_HANDLE;
        return om_gpu_set_error(gpu, om_vk_code(r), "vkCreateBufferView (%llu bytes at %llu): %s",
                                (unsigned long long)range, (unsigned long long)start,
                                om_vk_result_name(r));
    }
    b->texel_base[fmt] = (uint32_t)(b->offset - start);
    b->texel_limit[fmt] = range - (b->offset - start);
    return OM_OK;
}

void gpu_buf_drop_texels(om_buf *b)
{
    for (int i = 0; i < OM_TEXEL_FORMATS; i++)
        if (b->texels[i]) {
            vkDestroyBufferView(b->gpu->dev, b->texels[i], NULL);
            b->texels[i] = VK_NULL_HANDLE;
        }
}

void om_buf_destroy(om_buf *b)
{
    if (!b || b->is_view)
        return;
    VkDevice dev = b->gpu->dev;
    gpu_buf_drop_texels(b);
    if (b->buffer)
        vkDestroyBuffer(dev, b->buffer, NULL);
    if (b->memory)
        vkFreeMemory(dev, b->memory, NULL);   /* unmaps implicitly */
    free(b);
}

uint64_t om_buf_size(const om_buf *b) { return b->size; }
uint64_t om_buf_addr(const om_buf *b) { return b->addr; }
void *om_buf_map(om_buf *b) { return b->map; }

static int check_range(om_buf *b, const char *fn, uint64_t off, uint64_t n)
{
    if (off > b->size || n > b->size - off)
        return om_gpu_set_error(b->gpu, OM_ERANGE, "%s: [%llu, +%llu) outside a buffer of %llu bytes", fn,
                                (unsigned long long)off, (unsigned long long)n,
                                (unsigned long long)b->size);
    return OM_OK;
}

static int staging(om_gpu *gpu)
{
    if (gpu->staging)
        return OM_OK;
    uint64_t size = OM_STAGING_BYTES;
    if (size > gpu->info.max_alloc_bytes)
        size = gpu->info.max_alloc_bytes;
    return om_buf_create(gpu, size, OM_BUF_DOWNLOAD, &gpu->staging);
}

int om_buf_write(om_buf *b, uint64_t off, const void *src, uint64_t n)
{
    if (!b || (!src && n))
        return OM_EINVAL;
    int ret = check_range(b, "om_buf_write", off, n);
    if (ret || n == 0)
        return ret;
    if (b->map) {
        memcpy(b->map + off, src, n);
        return OM_OK;
    }
    om_gpu *gpu = b->gpu;
    if ((ret = staging(gpu)))
        return ret;
    for (uint64_t done = 0; done < n && !ret;) {
        uint64_t k = n - done < gpu->staging->size ? n - done : gpu->staging->size;
        memcpy(gpu->staging->map, (const uint8_t *)src + done, k);
        ret = gpu_copy_sync(gpu, b->buffer, b->offset + off + done, gpu->staging->buffer, 0, k);
        done += k;
    }
    return ret;
}

int om_buf_read(om_buf *b, uint64_t off, void *dst, uint64_t n)
{
    if (!b || (!dst && n))
        return OM_EINVAL;
    int ret = check_range(b, "om_buf_read", off, n);
    if (ret || n == 0)
        return ret;
    if (b->map) {
        memcpy(dst, b->map + off, n);
        return OM_OK;
    }
    om_gpu *gpu = b->gpu;
    if ((ret = staging(gpu)))
        return ret;
    for (uint64_t done = 0; done < n && !ret;) {
        uint64_t k = n - done < gpu->staging->size ? n - done : gpu->staging->size;
        ret = gpu_copy_sync(gpu, gpu->staging->buffer, 0, b->buffer, b->offset + off + done, k);
        if (!ret)
            memcpy((uint8_t *)dst + done, gpu->staging->map, k);
        done += k;
    }
    return ret;
}

/* ---- arena ----
 * Each allocation is a view: its own om_buf (byte 0 at the allocation, off = 0) over the
 * arena's buffer, so the recorder tracks hazards per allocation rather than per arena. */
typedef struct view_chunk {
    struct view_chunk *next;
    om_buf             v[VIEW_CHUNK];
} view_chunk;

struct om_arena {
    om_buf     *buf;
    uint64_t    used;
    view_chunk *chunks;
    int         n_views;          /* views handed out since the last reset */
};

int om_arena_create(om_gpu *gpu, uint64_t size, om_arena **out)
{
    if (!gpu || !out)
        return OM_EINVAL;
    *out = NULL;
    om_arena *a = calloc(1, sizeof *a);
    if (!a)
        return om_gpu_set_error(gpu, OM_ENOMEM, "om_arena_create: out of host memory");
    int ret = om_buf_create(gpu, size, OM_BUF_DEVICE, &a->buf);
    if (ret) {
        free(a);
        return ret;
    }
    *out = a;
    return OM_OK;
}

/* Texel views of the views handed out since the last reset (recorded work that used
 * them has been submitted and waited for: recordings are synchronous). */
static void drop_view_texels(om_arena *a)
{
    int i = 0;
    for (view_chunk *ch = a->chunks; ch && i < a->n_views; ch = ch->next)
        for (int j = 0; j < VIEW_CHUNK && i < a->n_views; j++, i++)
            gpu_buf_drop_texels(&ch->v[j]);
}

void om_arena_destroy(om_arena *a)
{
    if (!a)
        return;
    drop_view_texels(a);
    while (a->chunks) {
        view_chunk *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
    om_buf_destroy(a->buf);
    free(a);
}

static om_buf *next_view(om_arena *a)
{
    int i = a->n_views, c = i / VIEW_CHUNK;
    view_chunk **pp = &a->chunks;
    for (; c > 0 && *pp; c--)
        pp = &(*pp)->next;
    if (!*pp && !(*pp = calloc(1, sizeof **pp)))
        return NULL;
    a->n_views++;
    return &(*pp)->v[i % VIEW_CHUNK];
}

int om_arena_alloc(om_arena *a, uint64_t size, om_buf **buf, uint64_t *off)
{
    if (!a || !buf || !off)
        return OM_EINVAL;
    om_gpu *gpu = a->buf->gpu;
    uint64_t cap = a->buf->size;
    if (size == 0)
        return om_gpu_set_error(gpu, OM_EINVAL, "om_arena_alloc: size 0");
    if (size > cap - a->used)
        return om_gpu_set_error(gpu, OM_ERANGE, "om_arena_alloc: %llu bytes requested, %llu of %llu free",
                                (unsigned long long)size, (unsigned long long)(cap - a->used),
                                (unsigned long long)cap);
    om_buf *v = next_view(a);
    if (!v)
        return om_gpu_set_error(gpu, OM_ENOMEM, "om_arena_alloc: out of host memory");
    *v = *a->buf;
    v->memory = VK_NULL_HANDLE;
    memset(v->texels, 0, sizeof v->texels);
    v->is_view = 1;
    v->offset = a->used;
    v->size = size;
    v->addr = a->buf->addr + a->used;
    v->map = a->buf->map ? a->buf->map + a->used : NULL;
    uint64_t step = (size + ARENA_ALIGN - 1) & ~(uint64_t)(ARENA_ALIGN - 1);
    a->used = step > cap - a->used ? cap : a->used + step;
    *buf = v;
    *off = 0;
    return OM_OK;
}

void om_arena_reset(om_arena *a)
{
    drop_view_texels(a);
    a->used = 0;
    a->n_views = 0;
}

uint64_t om_arena_used(const om_arena *a) { return a->used; }
