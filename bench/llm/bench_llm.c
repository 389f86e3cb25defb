/* bench_llm: prefill and decode speed of one model file, and decode as a fraction of
 * the roofline (weight bytes read per token / time per token, against memcpy bandwidth
 * measured in the same run; a token reads every matrix but the token embedding table).
 *   bench_llm MODEL.gguf [--prompt N] [--gen N] [--md] [--profile]
 * --md prints one Markdown table row. --profile then prints where one decode step's time
 * goes: device time per op kind (GPU timestamps after every op) and host time (recording,
 * submit and wait beyond the device time, reading logits back, sampling with the default
 * parameters), averaged over --gen further decode steps. */
#include "bench_util.h"
#include "om_err.h"
#include "om_gpu.h"
#include "om_llm.h"
#include "om_sampler.h"
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

enum { MAX_KINDS = 32 };

/* Labels are copied: om_gpu_timestamps' storage is overwritten by the next submit. */
typedef struct prof_row {
    char label[48];
    double ms;
    int n;
} prof_row;

static prof_row *row(prof_row *rows, int *n_rows, const char *label)
{
    for (int i = 0; i < *n_rows; i++)
        if (!strcmp(rows[i].label, label))
            return &rows[i];
    if (*n_rows == MAX_KINDS)
        return NULL;
    rows[*n_rows] = (prof_row){ 0 };
    snprintf(rows[*n_rows].label, sizeof rows[0].label, "%s", label);
    return &rows[(*n_rows)++];
}

static int add(prof_row *rows, int *n_rows, const char *label, double ms)
{
    prof_row *r = row(rows, n_rows, label);
    if (!r) {
        fprintf(stderr, "bench_llm: more than %d op kinds\n", MAX_KINDS);
        return OM_ERANGE;
    }
    r->ms += ms;
    r->n++;
    return 0;
}

static int cmp_ms(const void *a, const void *b)
{
    double d = ((const prof_row *)b)->ms - ((const prof_row *)a)->ms;
    return (d > 0) - (d < 0);
}

/* n decode steps with profiling on, after the cache holds the prompt. */
static int profile_decode(om_gpu *gpu, om_llm *m, const int32_t *ids, int n_ids, int n, float *logits,
                          double plain_ms, double decode_gb, double memcpy_gbps)
{
    const om_llm_hparams *hp = om_llm_get_hparams(m);
    om_sampler_params sp = om_sampler_default_params();
    om_sampler *smp;
    int rc;
    if ((rc = om_sampler_open(&smp, &sp, hp->n_vocab))) {
        fprintf(stderr, "bench_llm: sampler: %s\n", om_strerror(rc));
        return rc;
    }
    if ((rc = om_llm_set_profile(m, 1))) {
        fprintf(stderr, "bench_llm: %s\n", om_llm_last_error(m));
        om_sampler_close(smp);
        return rc;
    }
    prof_row rows[MAX_KINDS];
    int n_rows = 0;
    double wall = 0, device = 0;
    for (int i = 0; i < n && !rc; i++) {
        int32_t tok = ids[i % n_ids];
        om_llm_batch d = { .tokens = &tok, .n = 1, .logits = logits };
        double t0 = om_bench_now_s();
        if ((rc = om_llm_eval(m, &d)))
            break;
        double t1 = om_bench_now_s();
        rc = om_sampler_sample(smp, logits, &tok);
        double t2 = om_bench_now_s();
        wall += (t2 - t0) * 1e3;
        const char *lab[256];
        double ns[256];
        int k = om_gpu_timestamps(gpu, lab, ns, 256);
        om_llm_host_times h;
        om_llm_get_host_times(m, &h);
        double dev = k > 0 ? ns[k - 1] / 1e6 : 0;
        device += dev;
        for (int j = 1; j < k && !rc; j++)
            rc = add(rows, &n_rows, lab[j], (ns[j] - ns[j - 1]) / 1e6);
        if (!rc)
            (void)((rc = add(rows, &n_rows, "host: record commands", h.record_ms)) ||
                   (rc = add(rows, &n_rows, "host: submit+wait beyond device", h.submit_ms - dev)) ||
                   (rc = add(rows, &n_rows, "host: read logits", h.read_ms)) ||
                   (rc = add(rows, &n_rows, "host: sampling (default params)", (t2 - t1) * 1e3)) ||
                   (rc = add(rows, &n_rows, "host: rest of eval",
                              (t1 - t0) * 1e3 - h.record_ms - h.submit_ms - h.read_ms)));
    }
    om_llm_set_profile(m, 0);
    om_sampler_close(smp);
    if (rc) {
        fprintf(stderr, "bench_llm: profile: %s: %s\n", om_strerror(rc), om_llm_last_error(m));
        return rc;
    }
    qsort(rows, (size_t)n_rows, sizeof rows[0], cmp_ms);
    printf("\ndecode step profile, mean of %d steps after a %d-token prompt "
           "(unprofiled step %.2f ms; profiled %.2f ms, device %.2f ms):\n\n",
           n, n_ids, plain_ms, wall / n, device / n);
    printf("| op kind | per step | ms/step | %% |\n|---|---|---|---|\n");
    double mm_ms = 0;
    for (int i = 0; i < n_rows; i++) {
        printf("| %s | %d | %.3f | %.1f%% |\n", rows[i].label, rows[i].n / n, rows[i].ms / n,
               100 * rows[i].ms / wall);
        if (!strncmp(rows[i].label, "matmul", 6))
            mm_ms += rows[i].ms / n;
    }
    printf("\nmatmuls: %.2f ms/step for %.0f MB of weights = %.2f GB/s, %.0f%% of memcpy (%.1f GB/s)\n",
           mm_ms, decode_gb * 1e3, decode_gb / mm_ms * 1e3, 100 * decode_gb / mm_ms * 1e3 / memcpy_gbps,
           memcpy_gbps);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int n_prompt = 512, n_gen = 128, md = 0, profile = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc)
            n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--md"))
            md = 1;
        else if (!strcmp(argv[i], "--profile"))
            profile = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_llm MODEL.gguf [--prompt N] [--gen N] [--md] [--profile]\n");
            return 2;
        }
    }
    if (!path || n_prompt < 1 || n_gen < 1) {
        fprintf(stderr, "usage: bench_llm MODEL.gguf [--prompt N] [--gen N] [--md] [--profile]\n");
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
    om_llm_opts lo = { .n_ctx_max = n_prompt + (profile ? 2 : 1) * n_gen + 1, .n_batch = 512 };
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
        double wgb = om_llm_weight_bytes(m) / 1e9, dgb = om_llm_decode_weight_bytes(m) / 1e9;
        double dec_tps = n_gen / t_decode, pre_tps = n_prompt / t_prefill;
        double eff = dgb * dec_tps;           /* GB/s of weights streamed while decoding */
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
        if (profile)
            rc = profile_decode(gpu, m, ids, n_prompt, n_gen, logits, t_decode * 1e3 / n_gen, dgb, bw);
    }
    free(ids);
    free(logits);
    om_llm_close(m);
    om_gpu_close(gpu);
    return rc ? 1 : 0;
}
