/* gpu_internal.h: the structs behind om_gpu.h, shared by the gpu_*.c files only.
 * gpu_device.c owns the instance/device and error reporting, gpu_memory.c buffers and
 * arenas, gpu_pipeline.c pipelines and their on-disk cache, gpu_cmd.c recording. */
#ifndef OM_GPU_INTERNAL_H
#define OM_GPU_INTERNAL_H

#include <stdatomic.h>
#include <vulkan/vulkan.h>

#include "om_err.h"
#include "om_gpu.h"

#define OM_GPU_ERRLEN      512
#define OM_MAX_TIMESTAMPS  256
#define OM_TS_LABEL        48
#define OM_MAX_SPEC        32
#define OM_STAGING_BYTES   (32u << 20)

struct om_buf {
    om_gpu        *gpu;
    VkBuffer       buffer;       /* for arena views: the arena's buffer */
    VkDeviceMemory memory;       /* VK_NULL_HANDLE for arena views */
    uint64_t       offset;       /* of byte 0 within `buffer` (arena views) */
    uint64_t       size;
    uint64_t       addr;         /* device address of byte 0 */
    uint8_t       *map;          /* host pointer of byte 0, or NULL */
    int            is_view;      /* owned by an arena: om_buf_destroy ignores it */
    uint64_t       vk_size;      /* bytes of `buffer` (whole texels past `size`) */
    VkBufferView   texels[OM_TEXEL_FORMATS];  /* created by om_cmd_bind_texels */
    uint32_t       texel_base[OM_TEXEL_FORMATS];
    uint64_t       texel_limit[OM_TEXEL_FORMATS];
};

struct om_pipe {
    struct om_pipe  *next;
    char             name[64];
    uint32_t         spec[OM_MAX_SPEC];
    int              n_spec;
    uint32_t         push_bytes;
    int              texel;      /* layout has the push-descriptor texel binding */
    VkDescriptorSetLayout dsl;   /* VK_NULL_HANDLE unless texel */
    VkPipelineLayout layout;
    VkPipeline       pipeline;
};

/* A byte range of one VkBuffer touched since the last barrier. */
typedef struct om_range {
    VkBuffer buffer;
    uint64_t lo, hi;             /* [lo, hi) */
} om_range;

struct om_cmd {
    om_gpu         *gpu;
    VkCommandBuffer cb;
    int             err;         /* first error while recording */
    int             barriers;
    om_range       *rd, *wr;     /* accesses since the last barrier */
    int             n_rd, n_wr, cap_rd, cap_wr;
    VkQueryPool     qpool;
    int             n_ts;
    char            ts_label[OM_MAX_TIMESTAMPS][OM_TS_LABEL];
};

struct om_gpu {
    VkInstance               instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice         phys;
    VkDevice                 dev;
    VkQueue                  queue;
    uint32_t                 queue_family;
    VkCommandPool            pool;
    VkFence                  fence;
    VkPipelineCache          pcache;
    char                     pcache_path[1024];

    VkPhysicalDeviceProperties       props;
    VkPhysicalDeviceMemoryProperties mem;
    int       type_device, type_upload, type_download;  /* memory type indices */
    uint32_t  ts_valid_bits;
    int       require_subgroup;   /* pass requiredSubgroupSize when creating pipelines */
    PFN_vkCmdPushDescriptorSetKHR push_descriptor;   /* NULL without has_texel */
    om_gpu_info info;

    struct om_pipe *pipes;
    om_buf         *staging;      /* lazily created, host-visible, for om_buf_write/read */

    int     n_ts;
    char    ts_label[OM_MAX_TIMESTAMPS][OM_TS_LABEL];
    double  ts_ns[OM_MAX_TIMESTAMPS];

    atomic_int validation_errors;
    char       err[OM_GPU_ERRLEN];
};

/* "VK_ERROR_OUT_OF_DEVICE_MEMORY", ... */
const char *om_vk_result_name(VkResult r);
/* Maps a failed VkResult to an OM_E* code. */
int om_vk_code(VkResult r);

/* gpu_pipeline.c: pipeline cache load at open, save + pipeline teardown at close. */
void gpu_pipeline_cache_open(om_gpu *gpu);
void gpu_pipeline_cache_close(om_gpu *gpu);

/* gpu_memory.c: buf's texel view of format fmt (enum om_texel_format), created on first
 * use (see om_cmd_bind_texels), and their teardown (buffer destroy, arena reset). */
int  gpu_buf_texels(om_buf *buf, int fmt);
void gpu_buf_drop_texels(om_buf *buf);

/* gpu_cmd.c: a one-shot copy used by om_buf_write/read. */
int gpu_copy_sync(om_gpu *gpu, VkBuffer dst, uint64_t dst_off, VkBuffer src,
                  uint64_t src_off, uint64_t n);

#endif
