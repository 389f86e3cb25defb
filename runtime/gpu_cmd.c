/* gpu_cmd.c: recording (one command buffer per om_cmd), hazard barriers, timestamps,
 * synchronous submit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"

#define ACCESS_ALL (VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | \
                    VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT)
#define STAGES     (VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT)

om_gpu *om_cmd_gpu(const om_cmd *c) { return c->gpu; }
int om_cmd_barriers(const om_cmd *c) { return c->barriers; }

static void free_cmd(om_cmd *c)
{
    om_gpu *gpu = c->gpu;
    if (c->qpool)
        vkDestroyQueryPool(gpu->dev, c->qpool, NULL);
    if (c->cb)
        vkFreeCommandBuffers(gpu->dev, gpu->pool, 1, &c->cb);
    free(c->rd);
    free(c->wr);
    free(c);
}

int om_cmd_begin(om_gpu *gpu, om_cmd **out)
{
    if (!gpu || !out)
        return OM_EINVAL;
    *out = NULL;
    om_cmd *c = calloc(1, sizeof *c);
    if (!c)
        return om_gpu_set_error(gpu, OM_ENOMEM, "om_cmd_begin: out of host memory");
    c->gpu = gpu;
    VkCommandBufferAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = gpu->pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1 };
    VkResult r = vkAllocateCommandBuffers(gpu->dev, &ai, &c->cb);
    if (r == VK_SUCCESS) {
        VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
        r = vkBeginCommandBuffer(c->cb, &bi);
    }
    if (r == VK_SUCCESS) {
        /* A fence wait orders earlier submits but does not make their writes visible to
         * this one; one barrier up front does, and costs nothing on an idle queue. */
        VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                               .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                               .dstAccessMask = ACCESS_ALL };
        vkCmdPipelineBarrier(c->cb, STAGES, STAGES, 0, 1, &mb, 0, NULL, 0, NULL);
    }
    if (r != VK_SUCCESS) {
        free_cmd(c);
        return om_gpu_set_error(gpu, om_vk_code(r), "om_cmd_begin: %s", om_vk_result_name(r));
    }
    *out = c;
    return OM_OK;
}

static int fail(om_cmd *c, int code)
{
    if (!c->err)
        c->err = code;
    return code;
}

static int overlaps(const om_range *set, int n, const om_range *x)
{
    for (int i = 0; i < n; i++)
        if (set[i].buffer == x->buffer && set[i].lo < x->hi && x->lo < set[i].hi)
            return 1;
    return 0;
}

static int push_range(om_range **set, int *n, int *cap, om_range x)
{
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        om_range *p = realloc(*set, (size_t)nc * sizeof *p);
        if (!p)
            return OM_ENOMEM;
        *set = p;
        *cap = nc;
    }
    (*set)[(*n)++] = x;
    return OM_OK;
}

static om_range range_of(const om_buf *b)
{
    return (om_range){ b->buffer, b->offset, b->offset + b->size };
}

/* Records a barrier when an access hits one since the last barrier (RAW, WAR, WAW), then
 * adds this command's accesses to the sets. Reads after reads need nothing. */
static int track(om_cmd *c, const om_range *rd, int n_rd, const om_range *wr, int n_wr)
{
    int hazard = 0;
    for (int i = 0; i < n_rd && !hazard; i++)
        hazard = overlaps(c->wr, c->n_wr, &rd[i]);
    for (int i = 0; i < n_wr && !hazard; i++)
        hazard = overlaps(c->wr, c->n_wr, &wr[i]) || overlaps(c->rd, c->n_rd, &wr[i]);
    if (hazard) {
        VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                               .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                               .dstAccessMask = ACCESS_ALL };
        vkCmdPipelineBarrier(c->cb, STAGES, STAGES, 0, 1, &mb, 0, NULL, 0, NULL);
        c->barriers++;
        c->n_rd = c->n_wr = 0;
    }
    for (int i = 0; i < n_rd; i++)
        if (push_range(&c->rd, &c->n_rd, &c->cap_rd, rd[i]))
            return om_gpu_set_error(c->gpu, fail(c, OM_ENOMEM), "om_cmd: out of host memory");
    for (int i = 0; i < n_wr; i++)
        if (push_range(&c->wr, &c->n_wr, &c->cap_wr, wr[i]))
            return om_gpu_set_error(c->gpu, fail(c, OM_ENOMEM), "om_cmd: out of host memory");
    return OM_OK;
}

#define MAX_OPERANDS 32

int om_cmd_dispatch(om_cmd *c, om_pipe *p, const void *push, uint32_t push_bytes,
                    uint32_t gx, uint32_t gy, uint32_t gz,
                    om_buf *const *reads, int n_reads, om_buf *const *writes, int n_writes)
{
    if (!c)
        return OM_EINVAL;
    if (c->err)
        return c->err;
    om_gpu *gpu = c->gpu;
    if (!p || (push_bytes && !push) || n_reads < 0 || n_writes < 0 || (n_reads && !reads) ||
        (n_writes && !writes))
        return om_gpu_set_error(gpu, fail(c, OM_EINVAL), "om_cmd_dispatch: bad arguments");
    if (push_bytes > p->push_bytes || push_bytes % 4)
        return om_gpu_set_error(gpu, fail(c, OM_EINVAL), "dispatch %s: %u push bytes, pipeline takes %u",
                                p->name, push_bytes, p->push_bytes);
    const uint32_t g[3] = { gx, gy, gz };
    for (int i = 0; i < 3; i++)
        if (g[i] > gpu->info.max_groups[i])
            return om_gpu_set_error(gpu, fail(c, OM_ERANGE), "dispatch %s: %u workgroups in %c exceed "
                                    "maxComputeWorkGroupCount[%d] = %u", p->name, g[i], "xyz"[i], i,
                                    gpu->info.max_groups[i]);
    if (n_reads > MAX_OPERANDS || n_writes > MAX_OPERANDS)
        return om_gpu_set_error(gpu, fail(c, OM_ERANGE), "dispatch %s: more than %d buffers",
                                p->name, MAX_OPERANDS);
    om_range rd[MAX_OPERANDS], wr[MAX_OPERANDS];
    int nr = 0, nw = 0;
    /* NULL entries are allowed: ops list optional operands (a norm without weights) as is. */
    for (int i = 0; i < n_reads; i++)
        if (reads[i])
            rd[nr++] = range_of(reads[i]);
    for (int i = 0; i < n_writes; i++)
        if (writes[i])
            wr[nw++] = range_of(writes[i]);
    int ret = track(c, rd, nr, wr, nw);
    if (ret)
        return ret;
    vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    if (push_bytes)
        vkCmdPushConstants(c->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    vkCmdDispatch(c->cb, gx, gy, gz);
    return OM_OK;
}

int om_cmd_bind_texels(om_cmd *c, om_pipe *p, om_buf *buf, int fmt, uint32_t *base,
                       uint64_t *limit)
{
    if (!c)
        return OM_EINVAL;
    if (c->err)
        return c->err;
    om_gpu *gpu = c->gpu;
    if (!p || !buf || !base || !limit || fmt < 0 || fmt >= OM_TEXEL_FORMATS)
        return om_gpu_set_error(gpu, fail(c, OM_EINVAL), "om_cmd_bind_texels: bad arguments");
    if (!p->texel)
        return om_gpu_set_error(gpu, fail(c, OM_EINVAL), "om_cmd_bind_texels: pipeline %s has no "
                                "texel binding (use om_gpu_pipeline_texel)", p->name);
    int ret = gpu_buf_texels(buf, fmt);
    if (ret)
        return fail(c, ret);
    VkWriteDescriptorSet w = { .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstBinding = 0,
                               .descriptorCount = 1,
                               .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                               .pTexelBufferView = &buf->texels[fmt] };
    gpu->push_descriptor(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &w);
    *base = buf->texel_base[fmt];
    *limit = buf->texel_limit[fmt];
    return OM_OK;
}

int om_cmd_copy(om_cmd *c, om_buf *dst, uint64_t dst_off, om_buf *src, uint64_t src_off, uint64_t n)
{
    if (!c)
        return OM_EINVAL;
    if (c->err)
        return c->err;
    if (!dst || !src)
        return om_gpu_set_error(c->gpu, fail(c, OM_EINVAL), "om_cmd_copy: NULL buffer");
    if (dst_off > dst->size || n > dst->size - dst_off || src_off > src->size || n > src->size - src_off)
        return om_gpu_set_error(c->gpu, fail(c, OM_ERANGE), "om_cmd_copy: %llu bytes from %llu of a %llu-byte "
                                "buffer to %llu of a %llu-byte buffer", (unsigned long long)n,
                                (unsigned long long)src_off, (unsigned long long)src->size,
                                (unsigned long long)dst_off, (unsigned long long)dst->size);
    if (n == 0)
        return OM_OK;
    om_range rd = { src->buffer, src->offset + src_off, src->offset + src_off + n };
    om_range wr = { dst->buffer, dst->offset + dst_off, dst->offset + dst_off + n };
    if (rd.buffer == wr.buffer && rd.lo < wr.hi && wr.lo < rd.hi)
        return om_gpu_set_error(c->gpu, fail(c, OM_EINVAL), "om_cmd_copy: source and destination overlap");
    int ret = track(c, &rd, 1, &wr, 1);
    if (ret)
        return ret;
    VkBufferCopy region = { .srcOffset = rd.lo, .dstOffset = wr.lo, .size = n };
    vkCmdCopyBuffer(c->cb, src->buffer, dst->buffer, 1, &region);
    return OM_OK;
}

int om_cmd_timestamp(om_cmd *c, const char *label)
{
    if (!c)
        return OM_EINVAL;
    if (c->err)
        return c->err;
    om_gpu *gpu = c->gpu;
    if (!gpu->ts_valid_bits)
        return om_gpu_set_error(gpu, fail(c, OM_EUNSUPPORTED), "timestamps: the queue of %s has none",
                                gpu->info.name);
    if (c->n_ts == OM_MAX_TIMESTAMPS)
        return om_gpu_set_error(gpu, fail(c, OM_ERANGE), "timestamps: more than %d in one recording",
                                OM_MAX_TIMESTAMPS);
    if (!c->qpool) {
        VkQueryPoolCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                     .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = OM_MAX_TIMESTAMPS };
        VkResult r = vkCreateQueryPool(gpu->dev, &qi, NULL, &c->qpool);
        if (r != VK_SUCCESS)
            return om_gpu_set_error(gpu, fail(c, om_vk_code(r)), "vkCreateQueryPool: %s",
                                    om_vk_result_name(r));
        vkCmdResetQueryPool(c->cb, c->qpool, 0, OM_MAX_TIMESTAMPS);
    }
    snprintf(c->ts_label[c->n_ts], OM_TS_LABEL, "%s", label ? label : "");
    vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, (uint32_t)c->n_ts);
    c->n_ts++;
    return OM_OK;
}

static int read_timestamps(om_cmd *c)
{
    om_gpu *gpu = c->gpu;
    if (!c->n_ts)        /* keep the last profile across om_buf_read and other small submits */
        return OM_OK;
    gpu->n_ts = 0;
    uint64_t t[OM_MAX_TIMESTAMPS];
    VkResult r = vkGetQueryPoolResults(gpu->dev, c->qpool, 0, (uint32_t)c->n_ts, sizeof t, t, sizeof t[0],
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS)
        return om_gpu_set_error(gpu, om_vk_code(r), "vkGetQueryPoolResults: %s", om_vk_result_name(r));
    uint64_t mask = gpu->ts_valid_bits >= 64 ? ~0ull : (1ull << gpu->ts_valid_bits) - 1;
    for (int i = 0; i < c->n_ts; i++) {
        /* Unsigned difference under the mask survives one counter wrap. */
        gpu->ts_ns[i] = (double)((t[i] - t[0]) & mask) * gpu->info.timestamp_period_ns;
        memcpy(gpu->ts_label[i], c->ts_label[i], OM_TS_LABEL);
    }
    gpu->n_ts = c->n_ts;
    return OM_OK;
}

static int submit_wait(om_gpu *gpu, VkCommandBuffer cb)
{
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1,
                        .pCommandBuffers = &cb };
    const char *what = "vkQueueSubmit";
    VkResult r = vkQueueSubmit(gpu->queue, 1, &si, gpu->fence);
    if (r == VK_SUCCESS) {
        what = "vkWaitForFences";
        r = vkWaitForFences(gpu->dev, 1, &gpu->fence, VK_TRUE, UINT64_MAX);
        VkResult r2 = vkResetFences(gpu->dev, 1, &gpu->fence);
        if (r == VK_SUCCESS && r2 != VK_SUCCESS) {
            what = "vkResetFences";
            r = r2;
        }
    }
    if (r != VK_SUCCESS)
        return om_gpu_set_error(gpu, om_vk_code(r), "%s: %s", what, om_vk_result_name(r));
    return OM_OK;
}

int om_cmd_submit(om_cmd *c)
{
    if (!c)
        return OM_EINVAL;
    om_gpu *gpu = c->gpu;
    int ret = c->err;
    if (!ret) {
        /* Results are read by the host (mapped buffers, om_buf_read) after the fence. */
        VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                               .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                               .dstAccessMask = VK_ACCESS_HOST_READ_BIT };
        vkCmdPipelineBarrier(c->cb, STAGES, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        VkResult r = vkEndCommandBuffer(c->cb);
        if (r != VK_SUCCESS)
            ret = om_gpu_set_error(gpu, om_vk_code(r), "vkEndCommandBuffer: %s", om_vk_result_name(r));
    }
    if (!ret)
        ret = submit_wait(gpu, c->cb);
    if (!ret)
        ret = read_timestamps(c);
    free_cmd(c);
    return ret;
}

void om_cmd_abort(om_cmd *c)
{
    if (c)
        free_cmd(c);
}

int om_gpu_timestamps(om_gpu *gpu, const char **labels, double *ns, int max)
{
    int n = gpu->n_ts < max ? gpu->n_ts : max > 0 ? max : 0;
    for (int i = 0; i < n; i++) {
        if (labels)
            labels[i] = gpu->ts_label[i];
        if (ns)
            ns[i] = gpu->ts_ns[i];
    }
    return n;
}

int gpu_copy_sync(om_gpu *gpu, VkBuffer dst, uint64_t dst_off, VkBuffer src, uint64_t src_off, uint64_t n)
{
    om_cmd *c;
    int ret = om_cmd_begin(gpu, &c);
    if (ret)
        return ret;
    VkBufferCopy region = { .srcOffset = src_off, .dstOffset = dst_off, .size = n };
    vkCmdCopyBuffer(c->cb, src, dst, 1, &region);
    return om_cmd_submit(c);
}
