/* bench_llm: prefill and decode speed of one model file, and decode as a fraction of
 * the roofline (weight bytes read per token / time per token, against memcpy bandwidth
 * measured in the same run).
 *   bench_llm MODEL.gguf [--prompt N] [--gen N] [--md]
 * --md prints one Markdown table row. */
#include "bench_util.h"
#include "om_err.h"
#include "om_gpu.h"
#include "om_llm.h"
#include "om_type.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Best of a few copies of 512 MiB: larger than any cache, as decoding's weight stream. A
 * copy reads n bytes and writes n: count what decoding does, reads. */
static double memcpy_gbps(void)
{
    size_t n = 512u << 20;
    char *a = malloc(n), *b = malloc(n);
    double gbps = 0;
    if (a && b) {
        om_bench_sample best = OM_BENCH_SAMPLE_INIT;
        memset(a, 1, n);
        memset(b, 2, n);
        for (int i = 0; i < 4; i++)
            om_bench_memcpy_round(b, a, n, &best);
        gbps = n / best.sec / 1e9;
    }
    free(a);
    free(b);
    return gbps;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int n_prompt = 512, n_gen = 128, md = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc)
            n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--md"))
            md = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_llm MODEL.gguf [--prompt N] [--gen N] [--md]\n");
            return 2;
        }
    }
    if (!path || n_prompt < 1 || n_gen < 1) {
        fprintf(stderr, "usage: bench_llm MODEL.gguf [--prompt N] [--gen N] [--md]\n");
        return 2;
    }
    char err[1024];
    om_gpu *gpu = NULL;
    om_llm *m = NULL;
    om_gpu_opts go = { .quiet = 1 };
    if (om_gpu_open(&gpu, &go, err, sizeof err)) {
        fprintf(stderr, "bench_llm: %s\n", err);
        return 1;
    }
    om_llm_opts lo = { .n_ctx_max = n_prompt + n_gen + 1, .n_batch = 512 };
    if (om_llm_open(&m, gpu, path, &lo, err, sizeof err)) {
        fprintf(stderr, "bench_llm: %s\n", err);
        om_gpu_close(gpu);
        return 1;
    }
    const om_llm_hparams *hp = om_llm_get_hparams(m);
    int32_t *ids = malloc(sizeof *ids * n_prompt);
    float *logits = malloc(sizeof *logits * hp->n_vocab);
    srand(1);
    for (int i = 0; i < n_prompt; i++)
        ids[i] = 1 + rand() % (hp->n_vocab - 1);
    /* Warm-up: pipelines are created on first use. */
    om_llm_batch w = { .tokens = ids, .n = 8, .logits = logits };
    int rc = om_llm_eval(m, &w);
    om_llm_truncate(m, 0);
    double t = om_bench_now_s();
    om_llm_batch b = { .tokens = ids, .n = n_prompt, .logits = logits };
    rc = rc ? rc : om_llm_eval(m, &b);
    double t_prefill = om_bench_now_s() - t;
    t = om_bench_now_s();
    for (int i = 0; i < n_gen && !rc; i++) {
        int32_t tok = ids[i % n_prompt];
        om_llm_batch d = { .tokens = &tok, .n = 1, .logits = logits };
        rc = om_llm_eval(m, &d);
    }
    double t_decode = om_bench_now_s() - t;
    if (rc) {
        fprintf(stderr, "bench_llm: %s: %s\n", om_strerror(rc), om_llm_last_error(m));
    } else {
        double bw = memcpy_gbps();
        double wgb = om_llm_weight_bytes(m) / 1e9;
        double dec_tps = n_gen / t_decode, pre_tps = n_prompt / t_prefill;
        double eff = wgb * dec_tps;           /* GB/s of weights streamed while decoding */
        const om_gpu_info *gi = om_gpu_get_info(gpu);
        if (md)
            printf("| %s | %s | %.0f MB | %.1f | %.2f | %.2f GB/s | %.1f GB/s | %.0f%% |\n", path,
                   om_type_name(hp->ftype), wgb * 1e3, pre_tps, dec_tps, eff, bw, 100 * eff / bw);
        else
            printf("device %s\nmodel %s: %d layers, n_embd %d, weights %s, %.0f MB\n"
                   "prefill %d tokens: %.1f tokens/s\ndecode %d tokens: %.2f tokens/s\n"
                   "weights streamed %.2f GB/s, memcpy %.1f GB/s: %.0f%% of the roofline\n",
                   gi->name, path, hp->n_layer, hp->n_embd, om_type_name(hp->ftype), wgb * 1e3, n_prompt,
                   pre_tps, n_gen, dec_tps, eff, bw, 100 * eff / bw);
    }
    free(ids);
    free(logits);
    om_llm_close(m);
    om_gpu_close(gpu);
    return rc ? 1 : 0;
}
