/* llama.cpp's own tokenizer test cases (test-tokenizer-0) against our tokenizers:
 * every case of every vocabulary that has a .gguf here must give exactly the ids in
 * the .out file (add_special = 0, parse_special = 0), and detokenizing those ids must
 * give back the input bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "om_err.h"
#include "om_tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

static void run_vocab(const char *name)
{
    char path[1024], err[256] = "";
    snprintf(path, sizeof(path), "%s/conformance/tokenizer/ggml-vocab-%s.gguf", OMNID_SHARED_DIR, name);
    om_tokenizer *t;
    int rc = om_tokenizer_open(&t, path, err, sizeof(err));
    if (rc < 0)
        fail_msg("%s: %s (%s)", path, err, om_strerror(rc));
    size_t inl, outl;
    snprintf(path, sizeof(path), "%s/conformance/tokenizer/ggml-vocab-%s.gguf.inp", OMNID_SHARED_DIR, name);
    char *inp = slurp(path, &inl);
    snprintf(path, sizeof(path), "%s/conformance/tokenizer/ggml-vocab-%s.gguf.out", OMNID_SHARED_DIR, name);
    char *out = slurp(path, &outl);
    assert_non_null(inp);
    assert_non_null(out);

    int ncase = 0, nfail = 0;
    char *p = inp, *line = out;
    char *sep;
    while ((sep = strstr(p, SEP))) {
        size_t len = (size_t)(sep - p);
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = 0;
        int32_t want[512];
        int nw = 0;
        for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " "))
            want[nw++] = atoi(tok);
        int32_t got[512];
        int ng = om_tokenize(t, p, len, 0, 0, got, 512);
        int ok = ng == nw && !memcmp(got, want, (size_t)nw * sizeof(*got));
        if (!ok) {
            nfail++;
            fprintf(stderr, "%s case %d '%.*s': got", name, ncase, (int)len, p);
            for (int i = 0; i < ng; i++)
                fprintf(stderr, " %d", got[i]);
            fprintf(stderr, "\n  want");
            for (int i = 0; i < nw; i++)
                fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
        } else {
            char text[4096];
            int n = om_detokenize(t, got, ng, 0, 0, text, sizeof(text));
            if (n != (int)len || memcmp(text, p, len)) {
                nfail++;
                fprintf(stderr, "%s case %d: detokenized '%.*s' != input\n", name, ncase,
                        n < 0 ? 0 : n, text);
            }
        }
        ncase++;
        p = sep + strlen(SEP);
        line = eol + 1;
    }
    fprintf(stderr, "%s: %d cases, %d failed\n", name, ncase, nfail);
    assert_int_equal(ncase, 46);
    assert_int_equal(nfail, 0);
    free(inp);
    free(out);
    om_tokenizer_close(t);
}

static void test_llama_spm(void **state) { run_vocab("llama-spm"); }
static void test_gpt2(void **state) { run_vocab("gpt-2"); }
static void test_phi3(void **state) { run_vocab("phi-3"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm),
        cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_phi3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
