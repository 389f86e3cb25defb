/* bench_gpu: what the runtime core costs.
 *   pipelines: creating every embedded module with an empty pipeline cache (cold) vs
 *              after a restart with the cache written by the first run (warm); ratio
 *              warm/cold.
 *   open:      om_gpu_open (instance + device + cache load), for scale.
 *   submit:    om_cmd_begin + om_cmd_submit of an empty recording vs the reference, a raw
 *              vkQueueSubmit of no command buffers + fence wait on the same queue.
 * Usage: bench_gpu [iterations]. Uses a temporary $XDG_CACHE_HOME. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "gpu_internal.h"
#include "om_shaders.h"

static int open_gpu(om_gpu **gpu, int quiet)
{
    char err[512];
    om_gpu_opts o = { .quiet = quiet };
    int ret = om_gpu_open(gpu, &o, err, sizeof err);
    if (ret)
        fprintf(stderr, "bench_gpu: %s\n", err);
    return ret;
}

/* Creates every embedded module; returns the wall time in ms, counts failures. */
static double create_all(om_gpu *gpu, int *failed)
{
    uint32_t push = om_gpu_get_info(gpu)->max_push_bytes;
    *failed = 0;
    double t0 = om_bench_now_s();
    for (int i = 0; i < om_shader_count; i++) {
        om_pipe *p;
        /* Texel-buffer modules need their own layout: the plain one refuses them. */
        const char *name = om_shader_table[i]->name;
        if (om_gpu_pipeline(gpu, name, NULL, 0, push, &p) &&
            om_gpu_pipeline_texel(gpu, name, NULL, 0, push, &p)) {
            fprintf(stderr, "bench_gpu: %s\n", om_gpu_last_error(gpu));
            (*failed)++;
        }
    }
    return (om_bench_now_s() - t0) * 1e3;
}

static double raw_submit_us(om_gpu *gpu, int iters)
{
    VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO };
    double t0 = om_bench_now_s();
    for (int i = 0; i < iters; i++) {
        if (vkQueueSubmit(gpu->queue, 1, &si, gpu->fence) != VK_SUCCESS ||
            vkWaitForFences(gpu->dev, 1, &gpu->fence, VK_TRUE, UINT64_MAX) != VK_SUCCESS ||
            vkResetFences(gpu->dev, 1, &gpu->fence) != VK_SUCCESS)
            return -1;
    }
    return (om_bench_now_s() - t0) * 1e6 / iters;
}

static double om_submit_us(om_gpu *gpu, int iters)
{
    double t0 = om_bench_now_s();
    for (int i = 0; i < iters; i++) {
        om_cmd *c;
        if (om_cmd_begin(gpu, &c) || om_cmd_submit(c))
            return -1;
    }
    return (om_bench_now_s() - t0) * 1e6 / iters;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 2000;
    if (iters < 1 || iters > 10000000) {
        fprintf(stderr, "usage: bench_gpu [iterations 1..10000000]\n");
        return 2;
    }
    char dir[] = "/tmp/omnid-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("XDG_CACHE_HOME", dir, 1);

    om_gpu *gpu;
    int failed_cold, failed_warm;
    double t_open = om_bench_now_s();
    if (open_gpu(&gpu, 0))
        return 1;
    t_open = (om_bench_now_s() - t_open) * 1e3;
    double cold = create_all(gpu, &failed_cold);
    om_gpu_close(gpu);                  /* writes the cache */
    if (open_gpu(&gpu, 1))
        return 1;
    double warm = create_all(gpu, &failed_warm);
    double t0 = om_bench_now_s();
    int failed_hit;
    create_all(gpu, &failed_hit);
    double hit_us = (om_bench_now_s() - t0) * 1e6 / (om_shader_count ? om_shader_count : 1);

    printf("open: %.1f ms (instance, device, pipeline cache)\n", t_open);
    printf("pipelines: %d modules (%d failed), cold %.1f ms, warm %.1f ms, warm/cold %.2f, "
           "in-process lookup %.2f us\n", om_shader_count, failed_cold, cold, warm,
           cold > 0 ? warm / cold : 0.0, hit_us);

    om_submit_us(gpu, iters / 10 + 1);  /* warm-up */
    double raw = raw_submit_us(gpu, iters), om = om_submit_us(gpu, iters);
    printf("submit: empty round trip %.1f us (om_cmd) vs %.1f us (raw vkQueueSubmit+fence), "
           "ratio %.2f, %d iterations\n", om, raw, raw > 0 ? om / raw : 0.0, iters);
    char path[1024];
    snprintf(path, sizeof path, "%s/omnid/pipelines-%04x-%04x.bin", dir,
             om_gpu_get_info(gpu)->vendor_id, om_gpu_get_info(gpu)->device_id);
    om_gpu_close(gpu);
    unlink(path);
    snprintf(path, sizeof path, "%s/omnid", dir);
    rmdir(path);
    rmdir(dir);
    return 0;
}
