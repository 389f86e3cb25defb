/* lvp_vk.h: the raw Vulkan the buffer-access experiment needs and om_gpu does not
 * expose (descriptor sets, texel buffer views): one instance and device with BDA,
 * 8/16-bit storage and int64 on, host-visible buffers with device addresses, one
 * descriptor set layout shared by every variant, compute pipelines from SPIR-V, and a
 * recorded dispatch that can be submitted again and again. Benchmark code only. */
#ifndef LVP_VK_H
#define LVP_VK_H

#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

/* The bindings of bench/lavapipe_loads/shaders/access.glsl. */
enum {
    LVP_B_W_SSBO, LVP_B_X_SSBO, LVP_B_Y_SSBO,
    LVP_B_W_UTB,  LVP_B_W_STB,  LVP_B_X_UTB, LVP_B_X_STB, LVP_B_W_UTB_H, LVP_B_W_SCALE,
    LVP_NBIND
};

/* The push constants of access.glsl. */
typedef struct lvp_push {
    uint64_t w, x, y;
    uint32_t K, N;
} lvp_push;

typedef struct lvp_buf {
    VkBuffer       buf;
    VkDeviceMemory mem;
    VkDeviceSize   size;
    uint64_t       addr;
    void          *map;
} lvp_buf;

typedef struct lvp_vk {
    VkInstance               instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice         phys;
    VkDevice                 dev;
    VkQueue                  queue;
    uint32_t                 qfam, mem_type;
    VkPhysicalDeviceProperties props;
    uint32_t                 subgroup;
    VkDescriptorSetLayout    dsl;
    VkPipelineLayout         layout;
    VkDescriptorPool         pool;
    VkCommandPool            cmd_pool;
    VkFence                  fence;
    int                      validation_errors;
    char                     err[512];
} lvp_vk;

/* Opens the CPU device (else the first); validation when $OMNID_VALIDATION=1.
 * Returns 0 or OM_E*, with the reason in vk->err. lvp_vk_close releases whatever open
 * got to. */
int  lvp_vk_open(lvp_vk *vk);
void lvp_vk_close(lvp_vk *vk);

int  lvp_buf_create(lvp_vk *vk, VkDeviceSize size, lvp_buf *out);
void lvp_buf_destroy(lvp_vk *vk, lvp_buf *b);

/* Everything a descriptor variant binds: W, x, y as storage buffers (W and y from an
 * offset, so a W beyond maxStorageBufferRange is bound one slice per dispatch), texel
 * views of the whole W and x, and an R16F view of W from scale_off (repacked Q8_0's
 * scales; a multiple of 16). */
typedef struct lvp_bindings {
    const lvp_buf *w, *x, *y;
    VkDeviceSize   w_off, w_range, x_range, y_off, y_range, scale_off;
} lvp_bindings;

/* One pipeline with its descriptor set and one recorded dispatch. */
typedef struct lvp_run {
    VkShaderModule  module;
    VkPipeline      pipe;
    VkDescriptorSet set;
    VkBufferView    views[4];           /* W RGBA32UI, W RGBA16F, x RGBA32F, W R16F from
                                           scale_off (W's and x's RGBA32 views serve both
                                           texel bindings) */
    VkCommandBuffer cmd;
} lvp_run;

int  lvp_run_create(lvp_vk *vk, const uint32_t *spv, size_t spv_bytes, uint32_t rows,
                    const lvp_bindings *bind, const lvp_push *push, uint32_t groups,
                    lvp_run *out);
/* Submits the recorded dispatch and waits for it. */
int  lvp_run_submit(lvp_vk *vk, const lvp_run *r);
void lvp_run_destroy(lvp_vk *vk, lvp_run *r);

#endif
