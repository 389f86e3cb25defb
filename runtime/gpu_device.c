/* gpu_device.c: instance, validation layer, device choice, features, open/close. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *om_vk_result_name(VkResult r)
{
    switch (r) {
    case VK_SUCCESS:                        return "VK_SUCCESS";
    case VK_NOT_READY:                      return "VK_NOT_READY";
    case VK_TIMEOUT:                        return "VK_TIMEOUT";
    case VK_INCOMPLETE:                     return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY:       return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:     return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:    return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST:              return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED:        return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT:        return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT:    return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT:      return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:      return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS:         return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED:     return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL:          return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_UNKNOWN:                  return "VK_ERROR_UNKNOWN";
    case VK_ERROR_OUT_OF_POOL_MEMORY:       return "VK_ERROR_OUT_OF_POOL_MEMORY";
    case VK_ERROR_INVALID_EXTERNAL_HANDLE:  return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
    case VK_ERROR_FRAGMENTATION:            return "VK_ERROR_FRAGMENTATION";
    case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS";
    case VK_PIPELINE_COMPILE_REQUIRED:      return "VK_PIPELINE_COMPILE_REQUIRED";
    default:                                return "VK_ERROR_(unnamed)";
    }
}

int om_vk_code(VkResult r)
{
    switch (r) {
    case VK_SUCCESS:                    return OM_OK;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_POOL_MEMORY:
    case VK_ERROR_FRAGMENTATION:        return OM_ENOMEM;
    case VK_TIMEOUT:                    return OM_ETIMEDOUT;
    default:                            return OM_EVULKAN;
    }
}

int om_gpu_set_error(om_gpu *gpu, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gpu->err, sizeof gpu->err, fmt, ap);
    va_end(ap);
    return code;
}

const char *om_gpu_last_error(const om_gpu *gpu) { return gpu->err; }
const om_gpu_info *om_gpu_get_info(const om_gpu *gpu) { return &gpu->info; }
int om_gpu_validation_errors(const om_gpu *gpu)
{
    return atomic_load(&((om_gpu *)gpu)->validation_errors);
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_debug(VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT type,
         const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    om_gpu *gpu = user;
    if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        atomic_fetch_add(&gpu->validation_errors, 1);
        fprintf(stderr, "omnid: validation error: %s\n", data->pMessage);
    } else if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        fprintf(stderr, "omnid: validation warning: %s\n", data->pMessage);
    }
    return VK_FALSE;
}

static int layer_available(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
        return 0;
    VkLayerProperties *p = calloc(n, sizeof *p);
    int found = 0;
    if (p && vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static int has_extension(const VkExtensionProperties *ext, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(ext[i].extensionName, name) == 0)
            return 1;
    return 0;
}

static int create_instance(om_gpu *gpu, int validation, char *err, size_t errlen)
{
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "omnid", .pEngineName = "omnid",
        .apiVersion = VK_API_VERSION_1_3,
    };
    uint32_t loader = VK_API_VERSION_1_0;
    vkEnumerateInstanceVersion(&loader);
    if (loader < VK_API_VERSION_1_2) {
        snprintf(err, errlen, "Vulkan loader is %u.%u; omnid needs 1.2",
                 VK_API_VERSION_MAJOR(loader), VK_API_VERSION_MINOR(loader));
        return OM_ENODEV;
    }
    if (loader < VK_API_VERSION_1_3)
        app.apiVersion = VK_API_VERSION_1_2;

    const char *layers[1] = { VALIDATION_LAYER };
    const char *exts[1] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_debug, .pUserData = gpu,
    };
    VkInstanceCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app };
    if (validation && !layer_available(VALIDATION_LAYER)) {
        fprintf(stderr, "omnid: validation requested but %s is not installed; continuing without it\n",
                VALIDATION_LAYER);
        validation = 0;
    }
    if (validation) {
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = exts;
        ci.pNext = &dbg;   /* also reports problems in vkCreateInstance/vkDestroyInstance */
    }
    VkResult r = vkCreateInstance(&ci, NULL, &gpu->instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED) {
        snprintf(err, errlen, "no Vulkan driver found (vkCreateInstance: %s); install a GPU driver "
                 "or mesa-vulkan-drivers (lavapipe)", om_vk_result_name(r));
        return OM_ENODEV;
    }
    if (r != VK_SUCCESS) {
        snprintf(err, errlen, "vkCreateInstance: %s", om_vk_result_name(r));
        return om_vk_code(r);
    }
    if (validation) {
        PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(gpu->instance, "vkCreateDebugUtilsMessengerEXT");
        if (create)
            r = create(gpu->instance, &dbg, NULL, &gpu->messenger);
        if (!create || r != VK_SUCCESS) {
            snprintf(err, errlen, "vkCreateDebugUtilsMessengerEXT: %s",
                     create ? om_vk_result_name(r) : "not found");
            return OM_EVULKAN;
        }
    }
    return OM_OK;
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case OM_DEV_DISCRETE:   return "discrete";
    case OM_DEV_INTEGRATED: return "integrated";
    case OM_DEV_CPU:        return "cpu";
    default:                return "other";
    }
}

static int dev_kind(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:   return OM_DEV_DISCRETE;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return OM_DEV_INTEGRATED;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:            return OM_DEV_CPU;
    default:                                     return OM_DEV_OTHER;
    }
}

/* Why a device cannot run omnid, or NULL when it can. */
static const char *unsuitable(VkPhysicalDevice pd)
{
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    if (p.apiVersion < VK_API_VERSION_1_2)
        return "Vulkan 1.2 not supported";
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12 };
    vkGetPhysicalDeviceFeatures2(pd, &f);
    if (!f12.bufferDeviceAddress)
        return "no bufferDeviceAddress";
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties q[64];
    if (nq > 64)
        nq = 64;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, q);
    for (uint32_t i = 0; i < nq; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
            return NULL;
    return "no compute queue";
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static int name_contains(const char *name, const char *want)
{
    size_t n = strlen(name), m = strlen(want);
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && tolower((unsigned char)name[i + j]) == tolower((unsigned char)want[j]))
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

static int pick_device(om_gpu *gpu, const char *want, char *err, size_t errlen)
{
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(gpu->instance, &n, NULL);
    if (r != VK_SUCCESS || n == 0) {
        snprintf(err, errlen, "no Vulkan device found (vkEnumeratePhysicalDevices: %s, %u devices)",
                 om_vk_result_name(r), n);
        return OM_ENODEV;
    }
    VkPhysicalDevice *pd = calloc(n, sizeof *pd);
    if (!pd)
        return OM_ENOMEM;
    vkEnumeratePhysicalDevices(gpu->instance, &n, pd);

    /* The list of devices goes into every "not found" message, so a user sees the choices. */
    char list[768] = "";
    size_t used = 0;
    int best = -1, best_rank = 99, unusable = -1, ret = OM_OK;
    const char *why_unusable = NULL;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pd[i], &p);
        const char *why = unsuitable(pd[i]);
        if (used < sizeof list)
            used += snprintf(list + used, sizeof list - used, "%s%u: %s (%s%s%s)", i ? "; " : "", i,
                             p.deviceName, kind_name(dev_kind(p.deviceType)),
                             why ? ", unusable: " : "", why ? why : "");
        int match;
        if (want && all_digits(want))
            match = strtoul(want, NULL, 10) == i;
        else
            match = !want || name_contains(p.deviceName, want);
        if (!match)
            continue;
        if (why) {          /* an explicit choice that cannot work is an error, not a fallback */
            if (want && !why_unusable) {
                why_unusable = why;
                unusable = (int)i;
            }
            continue;
        }
        int rank = dev_kind(p.deviceType) == OM_DEV_OTHER ? 3 : dev_kind(p.deviceType);
        if (rank < best_rank) {
            best = (int)i;
            best_rank = rank;
        }
    }
    if (best < 0) {
        if (unusable >= 0)
            snprintf(err, errlen, "device %d chosen by OMNID_DEVICE=%s is unusable: %s (devices: %s)",
                     unusable, want, why_unusable, list);
        else if (want)
            snprintf(err, errlen, "OMNID_DEVICE=%s matches no Vulkan device (devices: %s)", want, list);
        else
            snprintf(err, errlen, "no usable Vulkan device (devices: %s)", list);
        ret = OM_ENODEV;
    } else {
        gpu->phys = pd[best];
    }
    free(pd);
    return ret;
}

static void pick_queue(om_gpu *gpu)
{
    uint32_t nq = 0;
    VkQueueFamilyProperties q[64];
    vkGetPhysicalDeviceQueueFamilyProperties(gpu->phys, &nq, NULL);
    if (nq > 64)
        nq = 64;
    vkGetPhysicalDeviceQueueFamilyProperties(gpu->phys, &nq, q);
    /* A compute-only family runs beside graphics work; timestamps decide ties. */
    int best = -1, best_score = -1;
    for (uint32_t i = 0; i < nq; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
            continue;
        int score = (q[i].timestampValidBits ? 2 : 0) + !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT);
        if (score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    gpu->queue_family = (uint32_t)best;
    gpu->ts_valid_bits = q[best].timestampValidBits;
}

static int find_type(const VkPhysicalDeviceMemoryProperties *m, VkMemoryPropertyFlags want,
                     VkMemoryPropertyFlags avoid)
{
    for (uint32_t i = 0; i < m->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = m->memoryTypes[i].propertyFlags;
        if ((f & want) == want && !(f & avoid))
            return (int)i;
    }
    return -1;
}

/* Chooses memory types once: DEVICE, UPLOAD, DOWNLOAD (see om_buf_usage). */
static int pick_memory(om_gpu *gpu, char *err, size_t errlen)
{
    const VkPhysicalDeviceMemoryProperties *m = &gpu->mem;
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
        HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
        CA = VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
        ODD = VK_MEMORY_PROPERTY_PROTECTED_BIT | VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT;
    uint32_t big = 0;
    for (uint32_t i = 0; i < m->memoryHeapCount; i++)
        if ((m->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            m->memoryHeaps[i].size > gpu->info.device_local_bytes) {
            gpu->info.device_local_bytes = m->memoryHeaps[i].size;
            big = i;
        }
    /* Unified: the main device-local heap is host-visible (iGPU, lavapipe). A discrete
     * card's small BAR window does not count: weights would not fit there. */
    int uni = find_type(m, DL | HV | HC, ODD);
    int integrated = gpu->info.kind == OM_DEV_INTEGRATED || gpu->info.kind == OM_DEV_CPU;
    /* OMNID_UNIFIED=0 forces the staging path (tests of it on lavapipe, debugging). */
    const char *env = getenv("OMNID_UNIFIED");
    if (env && strcmp(env, "0") == 0)
        integrated = 0;
    if (uni >= 0 && integrated && m->memoryTypes[uni].heapIndex == big) {
        gpu->info.unified_memory = 1;
        gpu->type_device = uni;
    } else {
        /* Plain VRAM of the main heap; host-visible types there are the BAR window. */
        gpu->type_device = -1;
        for (uint32_t i = 0; i < m->memoryTypeCount && gpu->type_device < 0; i++) {
            VkMemoryPropertyFlags f = m->memoryTypes[i].propertyFlags;
            if ((f & DL) && !(f & (ODD | HV)) && m->memoryTypes[i].heapIndex == big)
                gpu->type_device = (int)i;
        }
        if (gpu->type_device < 0)
            gpu->type_device = find_type(m, DL, ODD);
    }
    gpu->type_upload = find_type(m, HV | HC, ODD | DL);
    if (gpu->type_upload < 0)
        gpu->type_upload = find_type(m, HV | HC, ODD);
    gpu->type_download = find_type(m, HV | HC | CA, ODD);
    if (gpu->type_download < 0)
        gpu->type_download = gpu->type_upload;
    if (gpu->type_device < 0 || gpu->type_upload < 0) {
        snprintf(err, errlen, "%s: no %s memory type", gpu->info.name,
                 gpu->type_device < 0 ? "device-local" : "host-visible coherent");
        return OM_ENODEV;
    }
    return OM_OK;
}

static int texel_format_ok(om_gpu *gpu, VkFormat fmt)
{
    VkFormatProperties fp;
    vkGetPhysicalDeviceFormatProperties(gpu->phys, fmt, &fp);
    return !!(fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT);
}

static int create_device(om_gpu *gpu, char *err, size_t errlen)
{
    om_gpu_info *info = &gpu->info;
    uint32_t n_ext = 0;
    vkEnumerateDeviceExtensionProperties(gpu->phys, NULL, &n_ext, NULL);
    VkExtensionProperties *ext = calloc(n_ext ? n_ext : 1, sizeof *ext);
    if (!ext)
        return OM_ENOMEM;
    vkEnumerateDeviceExtensionProperties(gpu->phys, NULL, &n_ext, ext);

    int is13 = gpu->props.apiVersion >= VK_API_VERSION_1_3;
    int has_sgc_ext = is13 || has_extension(ext, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    int has_dot_ext = has_extension(ext, n_ext, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    int has_cm_ext = has_extension(ext, n_ext, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    int has_pd_ext = has_extension(ext, n_ext, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);

    /* Query what is supported, then enable the subset omnid's shaders use. */
    VkPhysicalDeviceCooperativeMatrixFeaturesNV fcm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV };
    VkPhysicalDeviceShaderIntegerDotProductFeatures fdot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES };
    VkPhysicalDeviceSubgroupSizeControlFeatures fsg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES };
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .pNext = &f12 };
    VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11 };
    void **tail = &f12.pNext;
    if (has_sgc_ext) { *tail = &fsg; tail = &fsg.pNext; }
    if (has_dot_ext) { *tail = &fdot; tail = &fdot.pNext; }
    if (has_cm_ext)  { *tail = &fcm; tail = &fcm.pNext; }
    vkGetPhysicalDeviceFeatures2(gpu->phys, &f);

    VkPhysicalDeviceFeatures2 e = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2 };
    VkPhysicalDeviceVulkan11Features e11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES };
    VkPhysicalDeviceVulkan12Features e12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
    VkPhysicalDeviceSubgroupSizeControlFeatures esg = fsg;
    VkPhysicalDeviceShaderIntegerDotProductFeatures edot = fdot;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV ecm = fcm;
    e.pNext = &e11;
    e11.pNext = &e12;
    e.features.shaderInt64 = f.features.shaderInt64;
    e.features.shaderInt16 = f.features.shaderInt16;
    e11.storageBuffer16BitAccess = f11.storageBuffer16BitAccess;
    e11.uniformAndStorageBuffer16BitAccess = f11.uniformAndStorageBuffer16BitAccess;
    e12.bufferDeviceAddress = VK_TRUE;
    e12.shaderFloat16 = f12.shaderFloat16;
    e12.shaderInt8 = f12.shaderInt8;
    e12.storageBuffer8BitAccess = f12.storageBuffer8BitAccess;
    e12.uniformAndStorageBuffer8BitAccess = f12.uniformAndStorageBuffer8BitAccess;

    const char *want_ext[5];
    uint32_t n_want = 0;
    tail = &e12.pNext;
    esg.pNext = edot.pNext = ecm.pNext = NULL;
    esg.computeFullSubgroups = VK_FALSE;
    if (has_sgc_ext && fsg.subgroupSizeControl) {
        if (!is13)
            want_ext[n_want++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
        *tail = &esg; tail = &esg.pNext;
    }
    if (has_dot_ext && fdot.shaderIntegerDotProduct) {
        want_ext[n_want++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
        *tail = &edot; tail = &edot.pNext;
    }
    if (has_cm_ext && fcm.cooperativeMatrix) {
        want_ext[n_want++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        ecm.cooperativeMatrixRobustBufferAccess = VK_FALSE;
        *tail = &ecm; tail = &ecm.pNext;
    }
    /* Texel-buffer weight reads bind one view per dispatch as a push descriptor: no
     * pools or sets to manage, and lavapipe has it. */
    info->has_texel = has_pd_ext && texel_format_ok(gpu, VK_FORMAT_R32G32B32A32_UINT) &&
                      texel_format_ok(gpu, VK_FORMAT_R16G16B16A16_SFLOAT);
    if (info->has_texel)
        want_ext[n_want++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    free(ext);

    info->has_fp16 = f12.shaderFloat16;
    info->has_int8 = f12.shaderInt8;
    info->has_int64 = f.features.shaderInt64;
    info->has_16bit_storage = f11.storageBuffer16BitAccess;
    info->has_8bit_storage = f12.storageBuffer8BitAccess && f12.uniformAndStorageBuffer8BitAccess;
    info->has_int_dot = has_dot_ext && fdot.shaderIntegerDotProduct;
    info->has_coopmat = has_cm_ext && fcm.cooperativeMatrix;

    /* Subgroup size: only pin it when the device could vary it (AMD 32/64, Intel 8..32);
     * pinning on fixed-size devices would only add the maxComputeWorkgroupSubgroups limit. */
    VkPhysicalDeviceSubgroupSizeControlProperties psg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES };
    VkPhysicalDeviceSubgroupProperties psub = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                                .pNext = has_sgc_ext ? &psg : NULL };
    VkPhysicalDeviceMaintenance3Properties pm3 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
                                                   .pNext = &psub };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &pm3 };
    vkGetPhysicalDeviceProperties2(gpu->phys, &p2);
    info->subgroup_size = psub.subgroupSize;
    info->max_alloc_bytes = pm3.maxMemoryAllocationSize;
    VkSubgroupFeatureFlags ops = psub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT ? psub.supportedOperations : 0;
    info->has_subgroup_arith = (ops & VK_SUBGROUP_FEATURE_BASIC_BIT) && (ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    info->has_subgroup_shuffle = !!(ops & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    gpu->require_subgroup = has_sgc_ext && fsg.subgroupSizeControl &&
                            (psg.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                            psg.minSubgroupSize != psg.maxSubgroupSize;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                    .queueFamilyIndex = gpu->queue_family, .queueCount = 1,
                                    .pQueuePriorities = &prio };
    VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &e,
                               .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci,
                               .enabledExtensionCount = n_want, .ppEnabledExtensionNames = want_ext };
    VkResult r = vkCreateDevice(gpu->phys, &dci, NULL, &gpu->dev);
    if (r != VK_SUCCESS) {
        snprintf(err, errlen, "vkCreateDevice(%s): %s", info->name, om_vk_result_name(r));
        return om_vk_code(r);
    }
    vkGetDeviceQueue(gpu->dev, gpu->queue_family, 0, &gpu->queue);
    if (info->has_texel) {
        gpu->push_descriptor = (PFN_vkCmdPushDescriptorSetKHR)
            vkGetDeviceProcAddr(gpu->dev, "vkCmdPushDescriptorSetKHR");
        info->has_texel = gpu->push_descriptor != NULL;
    }
    return OM_OK;
}

/* The weight access style: texel on CPU devices that have it (see om_gpu.h), unless
 * $OMNID_WEIGHT_ACCESS says otherwise. */
static int pick_weight_access(om_gpu *gpu, char *err, size_t errlen)
{
    om_gpu_info *info = &gpu->info;
    const char *env = getenv("OMNID_WEIGHT_ACCESS");
    info->weight_access = info->kind == OM_DEV_CPU && info->has_texel ? OM_ACCESS_TEXEL : OM_ACCESS_BDA;
    if (!env || !*env)
        return OM_OK;
    if (strcmp(env, "bda") == 0) {
        info->weight_access = OM_ACCESS_BDA;
        return OM_OK;
    }
    if (strcmp(env, "texel") != 0) {
        snprintf(err, errlen, "OMNID_WEIGHT_ACCESS=%.64s: expected bda or texel", env);
        return OM_EINVAL;
    }
    if (!info->has_texel) {
        snprintf(err, errlen, "OMNID_WEIGHT_ACCESS=texel: %s lacks %s or uniform texel buffers "
                 "of RGBA32UI and RGBA16F", info->name, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
        return OM_EUNSUPPORTED;
    }
    info->weight_access = OM_ACCESS_TEXEL;
    return OM_OK;
}

static int create_sync(om_gpu *gpu, char *err, size_t errlen)
{
    VkCommandPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                    .flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
                                    .queueFamilyIndex = gpu->queue_family };
    VkResult r = vkCreateCommandPool(gpu->dev, &pci, NULL, &gpu->pool);
    if (r == VK_SUCCESS) {
        VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
        r = vkCreateFence(gpu->dev, &fci, NULL, &gpu->fence);
    }
    if (r != VK_SUCCESS) {
        snprintf(err, errlen, "command pool/fence: %s", om_vk_result_name(r));
        return om_vk_code(r);
    }
    return OM_OK;
}

int om_gpu_open(om_gpu **out, const om_gpu_opts *opts, char *err, size_t errlen)
{
    static const om_gpu_opts none;
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = 0;
    if (!out)
        return OM_EINVAL;
    *out = NULL;
    if (!opts)
        opts = &none;
    om_gpu *gpu = calloc(1, sizeof *gpu);
    if (!gpu) {
        snprintf(err, errlen, "out of memory");
        return OM_ENOMEM;
    }
    const char *env_val = getenv("OMNID_VALIDATION");
    int validation = opts->validation || (env_val && strcmp(env_val, "1") == 0);
    const char *want = opts->device;
    if (!want)
        want = getenv("OMNID_DEVICE");
    if (want && !*want)
        want = NULL;

    int ret = create_instance(gpu, validation, err, errlen);
    if (!ret)
        ret = pick_device(gpu, want, err, errlen);
    if (!ret) {
        om_gpu_info *info = &gpu->info;
        vkGetPhysicalDeviceProperties(gpu->phys, &gpu->props);
        vkGetPhysicalDeviceMemoryProperties(gpu->phys, &gpu->mem);
        snprintf(info->name, sizeof info->name, "%s", gpu->props.deviceName);
        info->kind = dev_kind(gpu->props.deviceType);
        info->max_shared_bytes = gpu->props.limits.maxComputeSharedMemorySize;
        info->max_push_bytes = gpu->props.limits.maxPushConstantsSize;
        info->max_wg_invocations = gpu->props.limits.maxComputeWorkGroupInvocations;
        for (int i = 0; i < 3; i++)
            info->max_groups[i] = gpu->props.limits.maxComputeWorkGroupCount[i];
        info->vendor_id = gpu->props.vendorID;
        info->max_texel_elements = gpu->props.limits.maxTexelBufferElements;
        info->texel_align = (uint32_t)gpu->props.limits.minTexelBufferOffsetAlignment;
        info->device_id = gpu->props.deviceID;
        pick_queue(gpu);
        info->timestamp_period_ns = gpu->ts_valid_bits ? gpu->props.limits.timestampPeriod : 0;
        ret = pick_memory(gpu, err, errlen);
    }
    if (!ret)
        ret = create_device(gpu, err, errlen);
    if (!ret)
        ret = pick_weight_access(gpu, err, errlen);
    if (!ret)
        ret = create_sync(gpu, err, errlen);
    if (ret) {
        om_gpu_close(gpu);
        return ret;
    }
    gpu_pipeline_cache_open(gpu);
    if (!opts->quiet)
        fprintf(stderr, "omnid: using %s (%s, subgroup %u, weights via %s)\n", gpu->info.name,
                kind_name(gpu->info.kind), gpu->info.subgroup_size,
                gpu->info.weight_access == OM_ACCESS_TEXEL ? "texel buffers" : "device addresses");
    *out = gpu;
    return OM_OK;
}

void om_gpu_close(om_gpu *gpu)
{
    if (!gpu)
        return;
    if (gpu->dev) {
        vkDeviceWaitIdle(gpu->dev);
        om_buf_destroy(gpu->staging);
        gpu_pipeline_cache_close(gpu);
        if (gpu->fence)
            vkDestroyFence(gpu->dev, gpu->fence, NULL);
        if (gpu->pool)
            vkDestroyCommandPool(gpu->dev, gpu->pool, NULL);
        vkDestroyDevice(gpu->dev, NULL);
    }
    if (gpu->messenger) {
        PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
            vkGetInstanceProcAddr(gpu->instance, "vkDestroyDebugUtilsMessengerEXT");
        if (destroy)
            destroy(gpu->instance, gpu->messenger, NULL);
    }
    if (gpu->instance)
        vkDestroyInstance(gpu->instance, NULL);
    free(gpu);
}
