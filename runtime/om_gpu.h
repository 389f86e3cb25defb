/* om_gpu.h: the Vulkan compute context. Owns the instance and device, all device
 * memory (buffers, per-forward arenas), the pipelines built from the SPIR-V embedded
 * at build time (with a VkPipelineCache persisted under $XDG_CACHE_HOME/omnid/),
 * and command recording with the barriers ops need.
 *
 * Buffers are addressed with buffer device addresses (VK_KHR_buffer_device_address,
 * core in Vulkan 1.2): a shader receives 64-bit addresses in push constants and needs
 * no descriptor sets, so a tensor larger than maxStorageBufferRange (128 MiB on
 * lavapipe) needs no splitting. Only maxMemoryAllocationSize bounds one buffer; a
 * larger request is refused with OM_ERANGE and a message naming both sizes. The one
 * exception: where it is faster (CPU devices), the matvec reads weights through a
 * texel-buffer view of their buffer (om_gpu_pipeline_texel, om_cmd_bind_texels).
 *
 * Knows nothing of models or sockets. Not thread-safe: one om_gpu per thread that
 * records, or callers serialise. */
#ifndef OM_GPU_H
#define OM_GPU_H

#include <stddef.h>
#include <stdint.h>

typedef struct om_gpu om_gpu;     /* one per process (or per recording thread)     */
typedef struct om_buf om_buf;     /* one device buffer; owner frees it             */
typedef struct om_cmd om_cmd;     /* one recording: ops -> one submit              */
typedef struct om_pipe om_pipe;   /* a compute pipeline, owned by the om_gpu cache */

enum om_dev_kind { OM_DEV_DISCRETE, OM_DEV_INTEGRATED, OM_DEV_CPU, OM_DEV_OTHER };

typedef struct om_gpu_info {
    char     name[256];
    int      kind;                 /* enum om_dev_kind */
    int      unified_memory;       /* device-local memory is host-visible (lavapipe, iGPU) */
    uint32_t subgroup_size;
    uint32_t max_shared_bytes;     /* maxComputeSharedMemorySize */
    uint32_t max_push_bytes;
    uint64_t max_alloc_bytes;      /* maxMemoryAllocationSize */
    uint64_t device_local_bytes;   /* largest device-local heap */
    int      has_fp16, has_int8, has_int_dot, has_coopmat;
    double   timestamp_period_ns;  /* 0 when the queue has no timestamps */
    /* Added by the runtime core (additive): what shaders may rely on. */
    int      has_int64;            /* shaderInt64 */
    int      has_16bit_storage;    /* storageBuffer16BitAccess */
    int      has_8bit_storage;     /* storageBuffer8BitAccess + uniformAndStorageBuffer8BitAccess */
    int      has_subgroup_arith;   /* subgroup basic + arithmetic in compute */
    int      has_subgroup_shuffle; /* subgroup shuffle in compute */
    uint32_t max_wg_invocations;   /* maxComputeWorkGroupInvocations */
    uint32_t max_groups[3];        /* maxComputeWorkGroupCount */
    uint32_t vendor_id, device_id;
    /* Added for texel-buffer weight reads (additive). */
    int      weight_access;        /* enum om_weight_access: how the matvec reads weights */
    int      has_texel;            /* VK_KHR_push_descriptor + uniform texel buffers of
                                      RGBA32UI and RGBA16F */
    uint32_t max_texel_elements;   /* maxTexelBufferElements */
    uint32_t texel_align;          /* minTexelBufferOffsetAlignment */
} om_gpu_info;

/* How om_op_matmul's matvec (M == 1) reads weights. BDA: buffer device addresses, as
 * every other buffer (GPUs: coalesced loads). TEXEL: texelFetch from a uniform
 * texel-buffer view of the weight's buffer: on CPU devices (lavapipe) a texel fetch
 * compiles to straight vector loads where a BDA/SSBO load is a per-lane scalar loop.
 * The default is TEXEL on CPU devices that have it, else BDA; $OMNID_WEIGHT_ACCESS=
 * bda|texel overrides it at open (an unknown value, or texel on a device without it,
 * fails the open). */
enum om_weight_access { OM_ACCESS_BDA, OM_ACCESS_TEXEL };
enum om_texel_format  { OM_TEXEL_RGBA32UI, OM_TEXEL_RGBA16F, OM_TEXEL_FORMATS };

typedef struct om_gpu_opts {
    const char *device;            /* NULL: $OMNID_DEVICE, else best (discrete > integrated > CPU).
                                      A decimal index or a substring of the device name. */
    int validation;                /* enable VK_LAYER_KHRONOS_validation; also on when
                                      $OMNID_VALIDATION=1. Errors are counted, see below. */
    int quiet;                     /* do not print the chosen device to stderr */
} om_gpu_opts;

/* Opens the device. On failure *out is NULL and err says why (no Vulkan loader,
 * no device, a device lacking a required feature, ...). */
int  om_gpu_open(om_gpu **out, const om_gpu_opts *opts, char *err, size_t errlen);
void om_gpu_close(om_gpu *gpu);
const om_gpu_info *om_gpu_get_info(const om_gpu *gpu);
/* Validation-layer messages of severity error seen since open; tests fail on > 0. */
int  om_gpu_validation_errors(const om_gpu *gpu);
/* The last error message of this context (Vulkan result names, sizes). */
const char *om_gpu_last_error(const om_gpu *gpu);
/* Sets the last error message (ops use it to name the op and shapes); returns err. */
int  om_gpu_set_error(om_gpu *gpu, int err, const char *fmt, ...)
     __attribute__((format(printf, 3, 4)));

/* ---- memory ---- */
enum om_buf_usage {
    OM_BUF_DEVICE,                 /* weights, activations: device-local                  */
    OM_BUF_UPLOAD,                 /* host-visible, written by the CPU, read by the GPU   */
    OM_BUF_DOWNLOAD,               /* host-visible + cached, written by the GPU           */
};
int   om_buf_create(om_gpu *gpu, uint64_t size, int usage, om_buf **out);
void  om_buf_destroy(om_buf *buf);
uint64_t om_buf_size(const om_buf *buf);
uint64_t om_buf_addr(const om_buf *buf);          /* device address of byte 0 */
/* Host pointer when the buffer is host-visible (UPLOAD/DOWNLOAD, and DEVICE on
 * unified-memory devices), else NULL. */
void *om_buf_map(om_buf *buf);
/* Synchronous copies through a staging buffer when the buffer is not mappable. */
int   om_buf_write(om_buf *buf, uint64_t off, const void *src, uint64_t n);
int   om_buf_read(om_buf *buf, uint64_t off, void *dst, uint64_t n);

/* Per-forward arena: one device buffer, bump-allocated, reset between forwards.
 * Allocations are aligned to 256 bytes. Running out is OM_ERANGE, not a realloc:
 * the model sizes its arena at load time. */
typedef struct om_arena om_arena;
int   om_arena_create(om_gpu *gpu, uint64_t size, om_arena **out);
void  om_arena_destroy(om_arena *a);
/* *buf is a view owned by the arena (its own om_buf over the allocation, so hazards are
 * tracked per allocation) and *off is 0; om_buf_destroy ignores views. */
int   om_arena_alloc(om_arena *a, uint64_t size, om_buf **buf, uint64_t *off);
void  om_arena_reset(om_arena *a);
uint64_t om_arena_used(const om_arena *a);

/* ---- pipelines ---- */
/* Looks up the embedded SPIR-V module `name` (the shader file's stem plus its
 * variant suffix, e.g. "matvec_q4_0") and returns its pipeline, created on first
 * use and cached. `spec` are specialization constants 0..n_spec-1 (u32), part of
 * the cache key. push_bytes is the push-constant block size. */
int om_gpu_pipeline(om_gpu *gpu, const char *name, const uint32_t *spec, int n_spec,
                    uint32_t push_bytes, om_pipe **out);

/* Like om_gpu_pipeline, for a shader that also reads one uniform texel buffer at
 * set 0, binding 0 (bound per dispatch with om_cmd_bind_texels, as a push descriptor).
 * OM_EUNSUPPORTED when the device lacks has_texel. */
int om_gpu_pipeline_texel(om_gpu *gpu, const char *name, const uint32_t *spec, int n_spec,
                          uint32_t push_bytes, om_pipe **out);

/* ---- recording ---- */
int  om_cmd_begin(om_gpu *gpu, om_cmd **out);
/* Records one dispatch. `reads`/`writes` list the buffers the dispatch touches;
 * the recorder inserts a compute->compute barrier only when a read or write hits a
 * buffer written since the last barrier (or a write hits one read since then). */
int  om_cmd_dispatch(om_cmd *c, om_pipe *p, const void *push, uint32_t push_bytes,
                     uint32_t gx, uint32_t gy, uint32_t gz,
                     om_buf *const *reads, int n_reads, om_buf *const *writes, int n_writes);
/* Binds a uniform texel-buffer view of buf (format fmt; created on first use, owned by
 * buf) to binding 0 of p, a pipeline from om_gpu_pipeline_texel, for the dispatches
 * recorded next. The view starts at or before buf's byte 0 (offset alignment): *base is
 * buf's byte 0 in view bytes; the view reaches *limit bytes of buf from its byte 0,
 * the buffer rounded up to whole texels but at most maxTexelBufferElements texels and
 * 2^31 bytes from the view's start. The dispatch must still list buf among its reads. */
int  om_cmd_bind_texels(om_cmd *c, om_pipe *p, om_buf *buf, int fmt, uint32_t *base,
                        uint64_t *limit);
/* Records a buffer-to-buffer copy (same hazard tracking). */
int  om_cmd_copy(om_cmd *c, om_buf *dst, uint64_t dst_off, om_buf *src, uint64_t src_off, uint64_t n);
/* GPU timestamp after everything recorded so far; label is copied. */
int  om_cmd_timestamp(om_cmd *c, const char *label);
/* Submits, waits, and frees the recording. Returns the first error. */
int  om_cmd_submit(om_cmd *c);
/* After submit: timestamps recorded in the last submitted om_cmd of this gpu that
 * recorded any, in ns relative to the first one. Returns the count (<= max). */
int  om_gpu_timestamps(om_gpu *gpu, const char **labels, double *ns, int max);
/* Frees a recording without submitting (error paths). */
void om_cmd_abort(om_cmd *c);
/* The context a recording belongs to (ops fetch pipelines and report errors with it). */
om_gpu *om_cmd_gpu(const om_cmd *c);
/* Hazard barriers recorded so far (tests check independent dispatches get none). */
int  om_cmd_barriers(const om_cmd *c);

#endif
