/* lvp_vk.c: instance, device, buffers, descriptor sets and recorded dispatches for
 * bench_lavapipe_loads (see lvp_vk.h). */
#include "lvp_vk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"
#define MAX_RUNS 64

static int fail(lvp_vk *vk, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(lvp_vk *vk, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vk->err, sizeof vk->err, fmt, ap);
    va_end(ap);
    return err;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user)
{
    (void)type;
    if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        ((lvp_vk *)user)->validation_errors++;
        fprintf(stderr, "bench_lavapipe_loads: validation error: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

static int create_instance(lvp_vk *vk)
{
    const char *env = getenv("OMNID_VALIDATION");
    const int validation = env && strcmp(env, "1") == 0;
    const char *layers[] = { VALIDATION_LAYER };
    const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "bench_lavapipe_loads",
        .apiVersion = VK_API_VERSION_1_2,
    };
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
        .pfnUserCallback = on_message,
        .pUserData = vk,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
        .enabledLayerCount = validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = validation ? 1 : 0,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateInstance(&ci, NULL, &vk->instance);
    if (r != VK_SUCCESS)
        return fail(vk, OM_ENODEV, "vkCreateInstance%s: VkResult %d",
                    validation ? " (with " VALIDATION_LAYER ")" : "", r);
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(vk->instance, "vkCreateDebugUtilsMessengerEXT");
        if (!create || create(vk->instance, &dbg, NULL, &vk->messenger) != VK_SUCCESS)
            return fail(vk, OM_EVULKAN, "vkCreateDebugUtilsMessengerEXT failed");
    }
    return 0;
}

static int create_device(lvp_vk *vk)
{
    /* The CPU device (lavapipe) when there is one: the experiment is about it, and on a
     * GPU the host-visible memory used here may be system RAM behind PCIe. */
    VkPhysicalDevice devs[8];
    uint32_t n = 8;
    VkResult r = vkEnumeratePhysicalDevices(vk->instance, &n, devs);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0)
        return fail(vk, OM_ENODEV, "no Vulkan device");
    vk->phys = devs[0];
    for (uint32_t i = 0; i < n; i++) {
        vkGetPhysicalDeviceProperties(devs[i], &vk->props);
        if (vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
            vk->phys = devs[i];
            break;
        }
    }
    vkGetPhysicalDeviceProperties(vk->phys, &vk->props);

    VkPhysicalDeviceVulkan11Properties p11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES,
    };
    VkPhysicalDeviceProperties2 p2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &p11,
    };
    vkGetPhysicalDeviceProperties2(vk->phys, &p2);
    vk->subgroup = p11.subgroupSize;

    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
    };
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12,
    };
    VkPhysicalDeviceFeatures2 f2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11,
    };
    vkGetPhysicalDeviceFeatures2(vk->phys, &f2);
    if (!f12.bufferDeviceAddress || !f12.storageBuffer8BitAccess || !f11.storageBuffer16BitAccess ||
        !f2.features.shaderInt64 || !f12.shaderFloat16 || !f2.features.shaderInt16 ||
        !(p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT))
        return fail(vk, OM_EUNSUPPORTED, "%s lacks BDA, 8/16-bit storage, int64/int16, float16 "
                    "or subgroup arithmetic", vk->props.deviceName);

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, NULL);
    VkQueueFamilyProperties qp[16];
    nq = nq > 16 ? 16 : nq;
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qp);
    vk->qfam = UINT32_MAX;
    for (uint32_t i = 0; i < nq && vk->qfam == UINT32_MAX; i++)
        if (qp[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            vk->qfam = i;
    if (vk->qfam == UINT32_MAX)
        return fail(vk, OM_ENODEV, "%s has no compute queue", vk->props.deviceName);

    /* Only what the shaders use; the Vulkan 1.1/1.2 structs are reset to that. */
    VkPhysicalDeviceVulkan12Features e12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .bufferDeviceAddress = VK_TRUE, .storageBuffer8BitAccess = VK_TRUE, .shaderFloat16 = VK_TRUE,
    };
    VkPhysicalDeviceVulkan11Features e11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &e12,
        .storageBuffer16BitAccess = VK_TRUE,
    };
    VkPhysicalDeviceFeatures2 e2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e11,
        .features = { .shaderInt64 = VK_TRUE, .shaderInt16 = VK_TRUE },
    };
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = vk->qfam, .queueCount = 1, .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &e2,
        .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci,
    };
    if ((r = vkCreateDevice(vk->phys, &dci, NULL, &vk->dev)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateDevice: VkResult %d", r);
    vkGetDeviceQueue(vk->dev, vk->qfam, 0, &vk->queue);

    /* lavapipe's memory is all host-visible; a device without such memory is refused
     * rather than staged, since the experiment is about lavapipe. */
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(vk->phys, &mp);
    const VkMemoryPropertyFlags want =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    vk->mem_type = UINT32_MAX;
    for (uint32_t i = 0; i < mp.memoryTypeCount && vk->mem_type == UINT32_MAX; i++)
        if ((mp.memoryTypes[i].propertyFlags & want) == want)
            vk->mem_type = i;
    if (vk->mem_type == UINT32_MAX)
        return fail(vk, OM_EUNSUPPORTED, "%s has no host-visible coherent memory",
                    vk->props.deviceName);
    return 0;
}

static int create_layouts(lvp_vk *vk)
{
    static const VkDescriptorType types[LVP_NBIND] = {
        [LVP_B_W_SSBO] = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        [LVP_B_X_SSBO] = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        [LVP_B_Y_SSBO] = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        [LVP_B_W_UTB] = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
        [LVP_B_W_STB] = VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER,
        [LVP_B_X_UTB] = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
        [LVP_B_X_STB] = VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER,
        [LVP_B_W_UTB_H] = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
        [LVP_B_W_SCALE] = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
    };
    VkDescriptorSetLayoutBinding b[LVP_NBIND];
    for (int i = 0; i < LVP_NBIND; i++)
        b[i] = (VkDescriptorSetLayoutBinding){ .binding = (uint32_t)i, .descriptorType = types[i],
                                               .descriptorCount = 1,
                                               .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
    VkDescriptorSetLayoutCreateInfo dl = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = LVP_NBIND, .pBindings = b,
    };
    VkResult r = vkCreateDescriptorSetLayout(vk->dev, &dl, NULL, &vk->dsl);
    if (r != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateDescriptorSetLayout: VkResult %d", r);
    VkPushConstantRange pcr = { VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(lvp_push) };
    VkPipelineLayoutCreateInfo pl = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1, .pSetLayouts = &vk->dsl,
        .pushConstantRangeCount = 1, .pPushConstantRanges = &pcr,
    };
    if ((r = vkCreatePipelineLayout(vk->dev, &pl, NULL, &vk->layout)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreatePipelineLayout: VkResult %d", r);
    VkDescriptorPoolSize ps[] = {
        { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 3 * MAX_RUNS },
        { VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, 4 * MAX_RUNS },
        { VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER, 2 * MAX_RUNS },
    };
    VkDescriptorPoolCreateInfo dp = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT,
        .maxSets = MAX_RUNS, .poolSizeCount = 3, .pPoolSizes = ps,
    };
    if ((r = vkCreateDescriptorPool(vk->dev, &dp, NULL, &vk->pool)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateDescriptorPool: VkResult %d", r);
    VkCommandPoolCreateInfo cp = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = vk->qfam,
    };
    if ((r = vkCreateCommandPool(vk->dev, &cp, NULL, &vk->cmd_pool)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateCommandPool: VkResult %d", r);
    VkFenceCreateInfo fc = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    if ((r = vkCreateFence(vk->dev, &fc, NULL, &vk->fence)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateFence: VkResult %d", r);
    return 0;
}

int lvp_vk_open(lvp_vk *vk)
{
    memset(vk, 0, sizeof *vk);
    int err = create_instance(vk);
    if (!err)
        err = create_device(vk);
    if (!err)
        err = create_layouts(vk);
    return err;
}

void lvp_vk_close(lvp_vk *vk)
{
    if (vk->dev) {
        vkDestroyFence(vk->dev, vk->fence, NULL);
        vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL);
        vkDestroyDescriptorPool(vk->dev, vk->pool, NULL);
        vkDestroyPipelineLayout(vk->dev, vk->layout, NULL);
        vkDestroyDescriptorSetLayout(vk->dev, vk->dsl, NULL);
        vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(vk->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy)
            destroy(vk->instance, vk->messenger, NULL);
    }
    if (vk->instance)
        vkDestroyInstance(vk->instance, NULL);
    memset(vk, 0, sizeof *vk);
}

int lvp_buf_create(lvp_vk *vk, VkDeviceSize size, lvp_buf *out)
{
    memset(out, 0, sizeof *out);
    out->size = size;
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                 VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = vkCreateBuffer(vk->dev, &bi, NULL, &out->buf);
    if (r != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateBuffer(%llu bytes): VkResult %d", (unsigned long long)size, r);
    VkMemoryRequirements mr;
    vkGetBufferMemoryRequirements(vk->dev, out->buf, &mr);
    VkMemoryAllocateFlagsInfo fl = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
        .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT,
    };
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &fl,
        .allocationSize = mr.size, .memoryTypeIndex = vk->mem_type,
    };
    if ((r = vkAllocateMemory(vk->dev, &ai, NULL, &out->mem)) != VK_SUCCESS) {
        lvp_buf_destroy(vk, out);
        return fail(vk, OM_ENOMEM, "vkAllocateMemory(%llu bytes): VkResult %d", (unsigned long long)mr.size, r);
    }
    if ((r = vkBindBufferMemory(vk->dev, out->buf, out->mem, 0)) != VK_SUCCESS ||
        (r = vkMapMemory(vk->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &out->map)) != VK_SUCCESS) {
        lvp_buf_destroy(vk, out);
        return fail(vk, OM_EVULKAN, "binding or mapping %llu bytes: VkResult %d", (unsigned long long)size, r);
    }
    VkBufferDeviceAddressInfo da = { .sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO, .buffer = out->buf };
    out->addr = vkGetBufferDeviceAddress(vk->dev, &da);
    return 0;
}

void lvp_buf_destroy(lvp_vk *vk, lvp_buf *b)
{
    if (b->buf)
        vkDestroyBuffer(vk->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(vk->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static int create_view(lvp_vk *vk, const lvp_buf *b, VkDeviceSize off, VkFormat fmt,
                       VkDeviceSize texel, VkBufferView *out)
{
    if (off >= b->size || off % vk->props.limits.minTexelBufferOffsetAlignment)
        return fail(vk, OM_EINVAL, "texel view offset %llu: beyond %llu bytes or not a multiple of %llu",
                    (unsigned long long)off, (unsigned long long)b->size,
                    (unsigned long long)vk->props.limits.minTexelBufferOffsetAlignment);
    VkDeviceSize n = (b->size - off) / texel;
    if (n > vk->props.limits.maxTexelBufferElements)
        n = vk->props.limits.maxTexelBufferElements;
    VkBufferViewCreateInfo vi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
        .buffer = b->buf, .format = fmt, .offset = off, .range = n * texel,
    };
    VkResult r = vkCreateBufferView(vk->dev, &vi, NULL, out);
    return r == VK_SUCCESS ? 0 : fail(vk, OM_EVULKAN, "vkCreateBufferView(format %d): VkResult %d", fmt, r);
}

static int write_set(lvp_vk *vk, const lvp_bindings *bind, lvp_run *r)
{
    int err;
    if ((err = create_view(vk, bind->w, 0, VK_FORMAT_R32G32B32A32_UINT, 16, &r->views[0])) < 0 ||
        (err = create_view(vk, bind->w, 0, VK_FORMAT_R16G16B16A16_SFLOAT, 8, &r->views[1])) < 0 ||
        (err = create_view(vk, bind->x, 0, VK_FORMAT_R32G32B32A32_SFLOAT, 16, &r->views[2])) < 0 ||
        (err = create_view(vk, bind->w, bind->scale_off, VK_FORMAT_R16_SFLOAT, 2, &r->views[3])) < 0)
        return err;
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = vk->pool, .descriptorSetCount = 1, .pSetLayouts = &vk->dsl,
    };
    VkResult res = vkAllocateDescriptorSets(vk->dev, &ai, &r->set);
    if (res != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkAllocateDescriptorSets: VkResult %d", res);
    const VkDescriptorBufferInfo bi[3] = {
        { bind->w->buf, bind->w_off, bind->w_range },
        { bind->x->buf, 0, bind->x_range },
        { bind->y->buf, bind->y_off, bind->y_range },
    };
    const VkBufferView tv[6] = { r->views[0], r->views[0], r->views[2], r->views[2], r->views[1],
                                 r->views[3] };
    VkWriteDescriptorSet w[LVP_NBIND];
    for (int i = 0; i < LVP_NBIND; i++) {
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = r->set,
            .dstBinding = (uint32_t)i, .descriptorCount = 1,
        };
        if (i <= LVP_B_Y_SSBO) {
            w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
            w[i].pBufferInfo = &bi[i];
        } else {
            w[i].descriptorType = (i == LVP_B_W_STB || i == LVP_B_X_STB)
                                      ? VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER
                                      : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
            w[i].pTexelBufferView = &tv[i - LVP_B_W_UTB];
        }
    }
    vkUpdateDescriptorSets(vk->dev, LVP_NBIND, w, 0, NULL);
    return 0;
}

static int record(lvp_vk *vk, const lvp_push *push, uint32_t groups, lvp_run *r)
{
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = vk->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1,
    };
    VkResult res = vkAllocateCommandBuffers(vk->dev, &ai, &r->cmd);
    if (res != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkAllocateCommandBuffers: VkResult %d", res);
    VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
    if ((res = vkBeginCommandBuffer(r->cmd, &bi)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkBeginCommandBuffer: VkResult %d", res);
    vkCmdBindPipeline(r->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, r->pipe);
    vkCmdBindDescriptorSets(r->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->layout, 0, 1, &r->set, 0, NULL);
    vkCmdPushConstants(r->cmd, vk->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof *push, push);
    vkCmdDispatch(r->cmd, groups, 1, 1);
    if ((res = vkEndCommandBuffer(r->cmd)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkEndCommandBuffer: VkResult %d", res);
    return 0;
}

int lvp_run_create(lvp_vk *vk, const uint32_t *spv, size_t spv_bytes, uint32_t rows,
                   const lvp_bindings *bind, const lvp_push *push, uint32_t groups, lvp_run *out)
{
    memset(out, 0, sizeof *out);
    if (groups > vk->props.limits.maxComputeWorkGroupCount[0])
        return fail(vk, OM_ERANGE, "%u workgroups > maxComputeWorkGroupCount[0] %u", groups,
                    vk->props.limits.maxComputeWorkGroupCount[0]);
    VkShaderModuleCreateInfo mi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = spv_bytes, .pCode = spv,
    };
    VkResult res = vkCreateShaderModule(vk->dev, &mi, NULL, &out->module);
    if (res != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateShaderModule: VkResult %d", res);
    const uint32_t spec[2] = { vk->subgroup, rows };
    const VkSpecializationMapEntry me[2] = { { 0, 0, 4 }, { 1, 4, 4 } };
    VkSpecializationInfo si = { 2, me, sizeof spec, spec };
    VkComputePipelineCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                   .stage = VK_SHADER_STAGE_COMPUTE_BIT, .module = out->module, .pName = "main",
                   .pSpecializationInfo = &si },
        .layout = vk->layout,
    };
    if ((res = vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &pi, NULL, &out->pipe)) != VK_SUCCESS)
        return fail(vk, OM_EVULKAN, "vkCreateComputePipelines: VkResult %d", res);
    int err = write_set(vk, bind, out);
    if (!err)
        err = record(vk, push, groups, out);
    return err;
}

int lvp_run_submit(lvp_vk *vk, const lvp_run *r)
{
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                        .pCommandBuffers = &r->cmd };
    VkResult res = vkQueueSubmit(vk->queue, 1, &si, vk->fence);
    if (res == VK_SUCCESS)
        res = vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX);
    if (res == VK_SUCCESS)
        res = vkResetFences(vk->dev, 1, &vk->fence);
    return res == VK_SUCCESS ? 0 : fail(vk, OM_EVULKAN, "submit/wait: VkResult %d", res);
}

void lvp_run_destroy(lvp_vk *vk, lvp_run *r)
{
    if (r->cmd)
        vkFreeCommandBuffers(vk->dev, vk->cmd_pool, 1, &r->cmd);
    if (r->set)
        vkFreeDescriptorSets(vk->dev, vk->pool, 1, &r->set);
    for (int i = 0; i < 4; i++)
        if (r->views[i])
            vkDestroyBufferView(vk->dev, r->views[i], NULL);
    if (r->pipe)
        vkDestroyPipeline(vk->dev, r->pipe, NULL);
    if (r->module)
        vkDestroyShaderModule(vk->dev, r->module, NULL);
    memset(r, 0, sizeof *r);
}
