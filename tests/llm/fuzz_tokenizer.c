/* fuzz_tokenizer: libFuzzer entry for the tokenizers (scripts/fuzz.sh, seeds in corpus/).
 * The first byte picks what the rest is: text for the llama-spm or gpt-2 vocabulary
 * (tokenized with and without special parsing, counted, then detokenized) and for the
 * llama-3 pre-tokenizer, which no vocabulary here uses; or a GGUF image whose tokenizer
 * metadata is loaded and, if accepted, used. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_gguf.h"
#include "om_tokenizer.h"
#include "tokenizer_impl.h"
#include "unicode.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static om_tokenizer *vocab[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *names[2] = { "llama-spm", "gpt-2" };
    for (int i = 0; i < 2; i++) {
        char path[1024], err[256];
        snprintf(path, sizeof(path), "%s/conformance/tokenizer/ggml-vocab-%s.gguf", OMNID_SHARED_DIR, names[i]);
        if (om_tokenizer_open(&vocab[i], path, err, sizeof(err)) < 0) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err);
            abort();
        }
    }
    return 0;
}

static void roundtrip(const om_tokenizer *t, const char *text, size_t n)
{
    for (int special = 0; special < 2; special++) {
        int count = om_tokenize(t, text, n, 1, special, NULL, 0);
        if (count < 0 || (size_t)count > 4 * n + 5)
            abort();
        int32_t *ids = malloc(((size_t)count + 1) * sizeof(*ids));
        if (om_tokenize(t, text, n, 1, special, ids, count) != count)
            abort();
        for (int i = 0; i < count; i++)
            if (ids[i] < 0 || ids[i] >= om_tokenizer_n_vocab(t))
                abort();
        int len = om_detokenize(t, ids, count, special, special, NULL, 0);
        char *back = malloc((size_t)(len > 0 ? len : 0) + 1);
        if (len < 0 || om_detokenize(t, ids, count, special, special, back, (size_t)len + 1) != len)
            abort();
        free(back);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > (1 << 16))
        return 0;
    int mode = data[0] % 3;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    if (mode < 2) {
        roundtrip(vocab[mode], text, n);
        uint32_t *cpts = malloc((n + 1) * sizeof(*cpts));
        size_t nc = 0;
        for (size_t off = 0; off < n;) {
            int l;
            cpts[nc++] = om_utf8_decode((const uint8_t *)text + off, n - off, &l);
            off += (size_t)l;
        }
        i32vec words = { 0 };
        size_t sum = 0;
        if (om_tok_pretokenize(PRE_LLAMA3, cpts, nc, &words) < 0)
            abort();
        for (int i = 0; i < words.n; i++)
            sum += (size_t)words.v[i];
        if (sum != nc)
            abort();                /* words must tile the text exactly */
        free(words.v);
        free(cpts);
        return 0;
    }
    om_gguf *g;
    char err[256] = "";
    om_gguf_limits lim = { .max_string = 1 << 16, .max_array = 1 << 16 };
    if (om_gguf_open_mem(&g, text, n, &lim, err, sizeof(err)) < 0)
        return 0;
    om_tokenizer *t;
    int rc = om_tokenizer_from_gguf(&t, g, err, sizeof(err));
    om_gguf_close(g);
    if (rc < 0) {
        if (!err[0])
            abort();                /* every refusal must say why */
        return 0;
    }
    static const char probe[] = "Hello <s> world</s>\n\t  \xe2\x82\xac 123 \xff";
    roundtrip(t, probe, sizeof(probe) - 1);
    om_tokenizer_close(t);
    return 0;
}
