/* omni-run: runs a model file without the daemon, for scripting and debugging.
 *   omni-run MODEL.gguf -p "PROMPT" [-n N] [--temp T] [--seed S] [--top-k K] [--top-p P]
 *            [--min-p P] [--repeat-penalty R] [--stop STR]... [--ctx N]
 *   omni-run MODEL.gguf --tokens 1,2,3 ...        feed token ids instead of text
 *   omni-run MODEL.gguf -p "PROMPT" --tokenize    print the prompt's token ids
 *   omni-run MODEL.gguf ... --dump-logits F.npy   logits of every prompt position [n_prompt, n_vocab]
 *   omni-run COMPONENT.gguf --input IN.npy ... | --image FILE   encoders: see component.c
 * Only the generated text goes to stdout; the device line and timings go to stderr. */
#include "om_err.h"
#include "om_gpu.h"
#include "om_llm.h"
#include "om_npy.h"
#include "omni_run.h"
#include "om_tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPT_TOKENS 65536

typedef struct run_args {
    const char *model, *prompt, *tokens, *dump_logits;
    const char *stop[OM_STOP_MAX];
    int n_stop, tokenize, n_ctx, verbose;
    om_sampler_params sp;
} run_args;

static void usage(FILE *f)
{
    fprintf(f, "usage: omni-run MODEL.gguf (-p PROMPT | --tokens ID,ID,...) [-n N] [--temp T] [--seed S]\n"
               "       [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--stop STR]...\n"
               "       [--ctx N] [--tokenize] [--dump-logits FILE.npy] [-v]\n");
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s ? s : "", &end);
    if (!s || errno || end == s || *end || *v < lo || *v > hi) {
        fprintf(stderr, "omni-run: %s needs a number in [%g, %g], got '%s'\n", opt, lo, hi, s ? s : "");
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, run_args *a)
{
    a->sp = om_sampler_default_params();
    a->sp.max_tokens = 128;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
#define NUM(lo, hi) do { if (parse_num(o, v, lo, hi, &d)) return -1; i++; } while (0)
        if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) { if (!v) goto missing; a->prompt = v; i++; }
        else if (!strcmp(o, "--tokens")) { if (!v) goto missing; a->tokens = v; i++; }
        else if (!strcmp(o, "--dump-logits")) { if (!v) goto missing; a->dump_logits = v; i++; }
        else if (!strcmp(o, "--stop")) {
            if (!v) goto missing;
            if (a->n_stop == OM_STOP_MAX) { fprintf(stderr, "omni-run: at most %d --stop\n", OM_STOP_MAX); return -1; }
            a->stop[a->n_stop++] = v; i++;
        }
        else if (!strcmp(o, "-n")) { NUM(0, 1 << 20); a->sp.max_tokens = (int)d; }
        else if (!strcmp(o, "--temp")) { NUM(0, 100); a->sp.temperature = (float)d; }
        else if (!strcmp(o, "--seed")) { NUM(0, 1.8e19); a->sp.seed = (uint64_t)d; }
        else if (!strcmp(o, "--top-k")) { NUM(0, 1 << 22); a->sp.top_k = (int)d; }
        else if (!strcmp(o, "--top-p")) { NUM(0, 1); a->sp.top_p = (float)d; }
        else if (!strcmp(o, "--min-p")) { NUM(0, 1); a->sp.min_p = (float)d; }
        else if (!strcmp(o, "--repeat-penalty")) { NUM(1e-3, 100); a->sp.repeat_penalty = (float)d; }
        else if (!strcmp(o, "--ctx")) { NUM(1, 1 << 20); a->n_ctx = (int)d; }
        else if (!strcmp(o, "--tokenize")) a->tokenize = 1;
        else if (!strcmp(o, "-v")) a->verbose = 1;
        else if (!strcmp(o, "-h") || !strcmp(o, "--help")) { usage(stdout); exit(0); }
        else if (o[0] == '-') { fprintf(stderr, "omni-run: unknown option %s\n", o); return -1; }
        else if (!a->model) a->model = o;
        else { fprintf(stderr, "omni-run: unexpected argument %s\n", o); return -1; }
#undef NUM
        continue;
missing:
        fprintf(stderr, "omni-run: %s needs a value\n", o);
        return -1;
    }
    if (!a->model || (!a->prompt == !a->tokens)) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* "1,2,3" -> ids; every id checked against the vocabulary. */
static int parse_tokens(const char *s, int n_vocab, int32_t *ids, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v >= n_vocab || n == max || (*end && *end != ',')) {
            fprintf(stderr, "omni-run: bad token list near '%s' (ids are 0..%d, comma-separated)\n", s, n_vocab - 1);
            return -1;
        }
        ids[n++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static int on_token(void *user, int32_t tok, const char *text, size_t n)
{
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    return 0;
}

static int dump_logits(om_llm *m, const int32_t *ids, int n, const char *path)
{
    int n_vocab = om_llm_get_hparams(m)->n_vocab;
    float *lg = malloc((size_t)n * n_vocab * sizeof *lg);
    if (!lg)
        return OM_ENOMEM;
    om_llm_batch b = { .tokens = ids, .n = n, .logits = lg, .all_logits = 1 };
    int rc = om_llm_eval(m, &b);
    if (!rc) {
        int64_t shape[2] = { n, n_vocab };
        rc = om_npy_write(path, OM_NPY_F32, 2, shape, lg);
    }
    free(lg);
    om_llm_truncate(m, 0);
    return rc;
}

int main(int argc, char **argv)
{
    if (omni_run_is_component(argc, argv))
        return omni_run_component(argc, argv);
    run_args a = { 0 };
    if (parse_args(argc, argv, &a))
        return 2;
    char err[1024];
    om_gpu *gpu = NULL;
    om_llm *m = NULL;
    int32_t *ids = malloc(MAX_PROMPT_TOKENS * sizeof *ids);
    int rc = ids ? 0 : OM_ENOMEM, status = 1;
    om_gpu_opts go = { .quiet = !a.verbose };
    om_llm_opts lo = { .n_ctx_max = a.n_ctx };
    if (rc || (rc = om_gpu_open(&gpu, &go, err, sizeof err))) {
        fprintf(stderr, "omni-run: %s\n", rc == OM_ENOMEM ? om_strerror(rc) : err);
        goto out;
    }
    if ((rc = om_llm_open(&m, gpu, a.model, &lo, err, sizeof err))) {
        fprintf(stderr, "omni-run: %s\n", err);
        goto out;
    }
    const om_tokenizer *tok = om_llm_get_tokenizer(m);
    int n = a.tokens ? parse_tokens(a.tokens, om_llm_get_hparams(m)->n_vocab, ids, MAX_PROMPT_TOKENS)
                     : om_tokenize(tok, a.prompt, strlen(a.prompt), 1, 1, ids, MAX_PROMPT_TOKENS);
    if (n < 0) {
        if (!a.tokens)
            fprintf(stderr, "omni-run: cannot tokenize the prompt: %s\n", om_strerror(n));
        goto out;
    }
    if (a.tokenize) {
        for (int i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
        status = 0;
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "omni-run: the prompt is empty\n");
        goto out;
    }
    if (a.dump_logits && (rc = dump_logits(m, ids, n, a.dump_logits))) {
        fprintf(stderr, "omni-run: --dump-logits: %s: %s\n", om_strerror(rc), om_llm_last_error(m));
        goto out;
    }
    om_llm_gen g = { .sampling = a.sp, .stop = a.stop, .n_stop = a.n_stop, .on_token = on_token };
    om_llm_stats st;
    if (a.sp.max_tokens > 0) {
        if ((rc = om_llm_generate(m, ids, n, NULL, 0, &g, &st))) {
            fprintf(stderr, "\nomni-run: %s: %s\n", om_strerror(rc), om_llm_last_error(m));
            goto out;
        }
        printf("\n");
        if (a.verbose)
            fprintf(stderr, "omni-run: prompt %d tokens in %.1f ms (%.1f t/s), generated %d in %.1f ms (%.1f t/s)\n",
                    st.n_prompt, st.prompt_ms, st.n_prompt * 1e3 / (st.prompt_ms + 1e-9), st.n_gen, st.gen_ms,
                    st.n_gen * 1e3 / (st.gen_ms + 1e-9));
    }
    status = 0;
out:
    om_llm_close(m);
    om_gpu_close(gpu);
    free(ids);
    return status;
}
