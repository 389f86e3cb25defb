/* test_llm_model: the LLaMA forward pass (llm/) on tiny random models against PyTorch
 * (tools/golden/llama_ref.py): logits of every prompt position, greedy continuations,
 * KV-cache decode vs full recomputation, the embedding-row hook, and refusals
 * (unsupported architecture, truncated file, context overflow, bad ids, malformed
 * rope_freqs). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "om_err.h"
#include "om_gguf.h"
#include "om_gpu.h"
#include "om_llm.h"
#include "om_npy.h"
#include "om_type.h"

static om_gpu *gpu;

/* Tolerance on max|ours - torch| / max|torch| per weight type. The KV cache is F16, so
 * even F32 weights carry F16 rounding of K and V. */
static const struct { const char *name; double tol; } models[] = {
    { "mha_f32", 1e-3 }, { "gqa_f16", 1e-3 }, { "gqa_q8_0", 1e-3 }, { "gqa_q4_0", 1e-3 },
    { "gqa_f16_rf", 1e-3 },   /* Llama 3.1 rope_freqs */
};

static void path_of(char *buf, size_t n, const char *env, const char *name, const char *suffix)
{
    const char *dir = getenv(env);
    assert_non_null(dir);
    snprintf(buf, n, "%s/%s%s", dir, name, suffix);
}

static om_llm *open_model(const char *name, int n_ctx_max)
{
    char path[1024], err[1024];
    path_of(path, sizeof path, "OM_TEST_MODELS", name, ".gguf");
    om_llm_opts o = { .n_ctx_max = n_ctx_max, .n_batch = 8 };
    om_llm *m = NULL;
    int rc = om_llm_open(&m, gpu, path, &o, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    return m;
}

static void load_golden(const char *name, const char *what, om_npy *a)
{
    char path[1024], err[512];
    path_of(path, sizeof path, "OM_TEST_GOLDEN", name, what);
    int rc = om_npy_read(path, a, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

static double rel_err(const float *a, const float *ref, int64_t n)
{
    double d = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - ref[i]));
        mx = fmax(mx, fabs(ref[i]));
    }
    return d / mx;
}

/* Prefill in chunks of n_batch = 8 (so 12 tokens exercise two forwards and the cache). */
static void test_logits(void **state)
{
    for (unsigned i = 0; i < sizeof models / sizeof models[0]; i++) {
        om_npy tok, ref;
        load_golden(models[i].name, ".tokens.npy", &tok);
        load_golden(models[i].name, ".logits.npy", &ref);
        om_llm *m = open_model(models[i].name, 0);
        int nv = om_llm_get_hparams(m)->n_vocab;
        assert_int_equal(ref.shape[1], nv);
        float *lg = malloc(sizeof(float) * tok.n * nv);
        om_llm_batch b = { .tokens = tok.data, .n = (int)tok.n, .logits = lg, .all_logits = 1 };
        assert_int_equal(om_llm_eval(m, &b), 0);
        double e = rel_err(lg, ref.data, ref.n);
        fprintf(stderr, "%-10s logits rel err %.2e (tol %.0e)\n", models[i].name, e, models[i].tol);
        assert_true(e < models[i].tol);
        free(lg);
        om_llm_close(m);
        om_npy_free(&tok);
        om_npy_free(&ref);
    }
}

typedef struct collect { int32_t ids[64]; int n; } collect;

static int on_token(void *user, int32_t token, const char *text, size_t n)
{
    collect *c = user;
    if (token >= 0 && c->n < 64)
        c->ids[c->n++] = token;
    return 0;
}

static void test_greedy(void **state)
{
    for (unsigned i = 0; i < sizeof models / sizeof models[0]; i++) {
        om_npy tok, ref;
        load_golden(models[i].name, ".tokens.npy", &tok);
        load_golden(models[i].name, ".greedy.npy", &ref);
        om_llm *m = open_model(models[i].name, 0);
        collect c = { .n = 0 };
        om_llm_gen g = { .sampling = om_sampler_default_params(), .on_token = on_token, .user = &c };
        g.sampling.temperature = 0;
        g.sampling.max_tokens = (int)ref.n;
        om_llm_stats st;
        assert_int_equal(om_llm_generate(m, tok.data, (int)tok.n, NULL, 0, &g, &st), 0);
        assert_int_equal(st.stop_reason, OM_LLM_STOP_MAX_TOKENS);
        assert_int_equal(st.n_gen, ref.n);
        assert_int_equal(c.n, ref.n);
        assert_memory_equal(c.ids, ref.data, ref.n * sizeof(int32_t));
        om_llm_close(m);
        om_npy_free(&tok);
        om_npy_free(&ref);
    }
}

/* Final-norm hidden states (the signal-token output) against PyTorch. */
static void test_hidden(void **state)
{
    om_npy tok, ref;
    load_golden("mha_f32", ".tokens.npy", &tok);
    load_golden("mha_f32", ".hidden.npy", &ref);
    om_llm *m = open_model("mha_f32", 0);
    assert_int_equal(ref.shape[1], om_llm_get_hparams(m)->n_embd);
    float *hid = malloc(sizeof(float) * ref.n);
    om_llm_batch b = { .tokens = tok.data, .n = (int)tok.n, .hidden = hid };
    assert_int_equal(om_llm_eval(m, &b), 0);
    double e = rel_err(hid, ref.data, ref.n);
    fprintf(stderr, "mha_f32 hidden rel err %.2e\n", e);
    assert_true(e < 1e-3);
    free(hid);
    om_llm_close(m);
    om_npy_free(&tok);
    om_npy_free(&ref);
}

/* A generated signal token yields the hidden state of its position, the same as a
 * batch evaluation of prompt + that token gives. The golden greedy tokens serve as
 * "signal tokens" so that generation is known to produce them. */
static void test_signal_hidden(void **state)
{
    om_npy tok, greedy;
    load_golden("mha_f32", ".tokens.npy", &tok);
    load_golden("mha_f32", ".greedy.npy", &greedy);
    om_llm *m = open_model("mha_f32", 0);
    int ne = om_llm_get_hparams(m)->n_embd, T = (int)tok.n;
    const int32_t *g = greedy.data;
    int32_t signals[2] = { g[0], g[2] };
    float got[4 * 64];
    om_llm_gen gen = { .sampling = om_sampler_default_params(), .signal_tokens = signals, .n_signal_tokens = 2,
                       .signal_hidden = got, .max_signal = 4 };
    gen.sampling.temperature = 0;
    gen.sampling.max_tokens = 3;
    om_llm_stats st;
    assert_int_equal(om_llm_generate(m, tok.data, T, NULL, 0, &gen, &st), 0);
    int expect = 1 + (g[1] == g[0] || g[1] == g[2]) + 1;
    assert_int_equal(st.n_signal, expect);
    /* Reference: the whole sequence in one batch. */
    int32_t seq[64];
    memcpy(seq, tok.data, T * sizeof *seq);
    memcpy(seq + T, g, 3 * sizeof *seq);
    float *hid = malloc(sizeof(float) * (T + 3) * ne);
    assert_int_equal(om_llm_truncate(m, 0), 0);
    om_llm_batch b = { .tokens = seq, .n = T + 3, .hidden = hid };
    assert_int_equal(om_llm_eval(m, &b), 0);
    assert_true(rel_err(got, hid + (size_t)T * ne, ne) < 1e-4);
    assert_true(rel_err(got + (size_t)(expect - 1) * ne, hid + (size_t)(T + 2) * ne, ne) < 1e-4);
    free(hid);
    om_llm_close(m);
    om_npy_free(&tok);
    om_npy_free(&greedy);
}

/* Decoding one token at a time through the cache gives the logits of a full pass. */
static void test_kv_cache(void **state)
{
    om_npy tok;
    load_golden("gqa_q8_0", ".tokens.npy", &tok);
    om_llm *m = open_model("gqa_q8_0", 0);
    int nv = om_llm_get_hparams(m)->n_vocab, T = (int)tok.n;
    const int32_t *ids = tok.data;
    float *full = malloc(sizeof(float) * T * nv), *step = malloc(sizeof(float) * nv);
    om_llm_batch b = { .tokens = ids, .n = T, .logits = full, .all_logits = 1 };
    assert_int_equal(om_llm_eval(m, &b), 0);
    assert_int_equal(om_llm_truncate(m, 3), 0);
    for (int i = 3; i < T; i++) {
        om_llm_batch s = { .tokens = ids + i, .n = 1, .logits = step };
        assert_int_equal(om_llm_eval(m, &s), 0);
        assert_true(rel_err(step, full + (size_t)i * nv, nv) < 1e-4);
    }
    assert_int_equal(om_llm_n_past(m), T);
    free(full);
    free(step);
    om_llm_close(m);
    om_npy_free(&tok);
}

/* Positions given as embedding rows equal to the tokens' own embeddings change nothing. */
static void test_embedding_rows(void **state)
{
    om_npy tok;
    load_golden("mha_f32", ".tokens.npy", &tok);
    char path[1024], err[512];
    path_of(path, sizeof path, "OM_TEST_MODELS", "mha_f32", ".gguf");
    om_gguf *g;
    assert_int_equal(om_gguf_open(&g, path, NULL, err, sizeof err), 0);
    const om_gguf_tensor *te = om_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(te);
    assert_int_equal(te->type, OM_TYPE_F32);
    int T = (int)tok.n, ne = (int)te->ne[0], nv = (int)te->ne[1];
    int32_t ids[64];
    float rows[64 * 64];
    memcpy(ids, tok.data, T * sizeof *ids);
    int n_rows = 0;
    for (int i = 2; i < 6; i++) {
        memcpy(rows + n_rows++ * ne, (const float *)te->data + (size_t)ids[i] * ne, ne * sizeof(float));
        ids[i] = -1;
    }
    om_llm *m = open_model("mha_f32", 0);
    float *a = malloc(sizeof(float) * T * nv), *b = malloc(sizeof(float) * T * nv);
    om_llm_batch plain = { .tokens = tok.data, .n = T, .logits = a, .all_logits = 1 };
    om_llm_batch hook = { .tokens = ids, .n = T, .embd = rows, .n_embd_rows = n_rows, .logits = b, .all_logits = 1 };
    assert_int_equal(om_llm_eval(m, &plain), 0);
    assert_int_equal(om_llm_truncate(m, 0), 0);
    assert_int_equal(om_llm_eval(m, &hook), 0);
    assert_true(rel_err(b, a, (int64_t)T * nv) < 1e-6);
    /* Fewer rows than placeholders is refused. */
    hook.n_embd_rows = n_rows - 1;
    assert_int_equal(om_llm_eval(m, &hook), OM_EINVAL);
    free(a);
    free(b);
    om_llm_close(m);
    om_gguf_close(g);
    om_npy_free(&tok);
}

static void test_context_overflow(void **state)
{
    om_llm *m = open_model("gqa_f16", 16);
    assert_int_equal(om_llm_get_hparams(m)->n_ctx, 16);
    int32_t ids[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
    om_llm_batch b = { .tokens = ids, .n = 12 };
    assert_int_equal(om_llm_eval(m, &b), 0);
    b.n = 5;
    assert_int_equal(om_llm_eval(m, &b), OM_ERANGE);
    assert_non_null(strstr(om_llm_last_error(m), "context overflow"));
    assert_int_equal(om_llm_n_past(m), 12);
    b.n = 4;
    assert_int_equal(om_llm_eval(m, &b), 0);
    /* Ids outside the vocabulary are refused. */
    assert_int_equal(om_llm_truncate(m, 0), 0);
    int32_t bad = 512;
    om_llm_batch bb = { .tokens = &bad, .n = 1 };
    assert_int_not_equal(om_llm_eval(m, &bb), 0);
    om_llm_close(m);
}

static void test_refusals(void **state)
{
    char path[1024], err[1024];
    om_llm *m = NULL;
    /* A truncated copy of a valid model. */
    path_of(path, sizeof path, "OM_TEST_MODELS", "gqa_f16", ".gguf");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n);
    assert_int_equal(fread(buf, 1, n, f), (size_t)n);
    fclose(f);
    path_of(path, sizeof path, "OM_TEST_MODELS", "truncated", ".gguf");
    f = fopen(path, "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    free(buf);
    assert_int_not_equal(om_llm_open(&m, gpu, path, NULL, err, sizeof err), 0);
    assert_null(m);
    fprintf(stderr, "truncated: %s\n", err);
    /* Another architecture. */
    om_gguf_writer *w;
    assert_int_equal(om_gguf_writer_open(&w, 32), 0);
    assert_int_equal(om_gguf_set_str(w, "general.architecture", "gpt2"), 0);
    path_of(path, sizeof path, "OM_TEST_MODELS", "gpt2", ".gguf");
    assert_int_equal(om_gguf_write_file(w, path), 0);
    om_gguf_writer_free(w);
    assert_int_equal(om_llm_open(&m, gpu, path, NULL, err, sizeof err), OM_EUNSUPPORTED);
    assert_non_null(strstr(err, "unsupported architecture 'gpt2' (supported: llama)"));
    /* A missing file. */
    assert_int_not_equal(om_llm_open(&m, gpu, "/nonexistent/model.gguf", NULL, err, sizeof err), 0);
}

/* The rope_freqs model with its rope_freqs.weight tensor info patched: `field` 0 is
 * ne[0], 1 the ggml type (both keep the data within the file); or, when field is 2, the
 * first factor set to `value`. Returns om_llm_open's code and error. */
static int open_patched_rf(int field, int64_t value, char *err, size_t n_err)
{
    char path[1024];
    path_of(path, sizeof path, "OM_TEST_MODELS", "gqa_f16_rf", ".gguf");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n);
    assert_int_equal(fread(buf, 1, n, f), (size_t)n);
    fclose(f);
    static const char name[] = "rope_freqs.weight";
    char *p = NULL;
    for (long i = 0; i + (long)sizeof name < n && !p; i++)
        if (!memcmp(buf + i, name, sizeof name - 1))
            p = buf + i + sizeof name - 1;   /* then n_dims u32, ne0 u64, type u32, offset u64 */
    assert_non_null(p);
    uint32_t n_dims;
    memcpy(&n_dims, p, 4);
    assert_int_equal(n_dims, 1);
    if (field == 0) {
        uint64_t ne0 = (uint64_t)value;
        memcpy(p + 4, &ne0, 8);
    } else if (field == 1) {
        uint32_t t = (uint32_t)value;
        memcpy(p + 12, &t, 4);
    } else {
        om_gguf *g;
        assert_int_equal(om_gguf_open(&g, path, NULL, err, n_err), 0);
        const om_gguf_tensor *t = om_gguf_find_tensor(g, name);
        assert_non_null(t);
        uint64_t off = om_gguf_data_offset(g) + t->offset;
        om_gguf_close(g);
        float v = (float)value;
        memcpy(buf + off, &v, 4);
    }
    path_of(path, sizeof path, "OM_TEST_MODELS", "rf_patched", ".gguf");
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), (size_t)n);
    fclose(f);
    free(buf);
    om_llm *m = NULL;
    int rc = om_llm_open(&m, gpu, path, NULL, err, n_err);
    if (m)
        om_llm_close(m);
    fprintf(stderr, "rope_freqs patch %d: %s\n", field, rc ? err : "accepted");
    return rc;
}

/* rope_freqs.weight of the wrong length, type or value is refused by name. */
static void test_rope_freqs_refused(void **state)
{
    char err[1024];
    assert_int_equal(open_patched_rf(0, 4, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, "rope_freqs.weight has shape [4"));
    assert_int_equal(open_patched_rf(1, OM_TYPE_F16, err, sizeof err), OM_EUNSUPPORTED);
    assert_non_null(strstr(err, "rope_freqs.weight has type f16"));
    assert_int_equal(open_patched_rf(2, 0, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, "rope_freqs.weight[0] = 0"));
    assert_int_equal(open_patched_rf(2, -2, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, "rope_freqs.weight[0] = -2"));
}

int main(void)
{
    char err[512];
    om_gpu_opts o = { .quiet = 1 };
    if (om_gpu_open(&gpu, &o, err, sizeof err)) {
        fprintf(stderr, "test_llm_model: %s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_hidden),
        cmocka_unit_test(test_signal_hidden),
        cmocka_unit_test(test_kv_cache),
        cmocka_unit_test(test_embedding_rows),
        cmocka_unit_test(test_context_overflow),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_rope_freqs_refused),
    };
    int fails = cmocka_run_group_tests(tests, NULL, NULL);
    int verr = om_gpu_validation_errors(gpu);
    om_gpu_close(gpu);
    if (verr)
        fprintf(stderr, "test_llm_model: %d Vulkan validation errors\n", verr);
    return fails || verr;
}
