/* Tokenizer behaviour beyond the conformance cases: special tokens, BOS/EOS, pieces,
 * detokenize options, the pre-tokenizer regexes (including llama-3's, which no vocab
 * here exercises), and hostile GGUF metadata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "om_err.h"
#include "om_gguf.h"
#include "om_tokenizer.h"
#include "tokenizer_impl.h"
#include "unicode.h"

static om_tokenizer *open_vocab(const char *name)
{
    char path[1024], err[256] = "";
    snprintf(path, sizeof(path), "%s/conformance/tokenizer/ggml-vocab-%s.gguf", OMNID_SHARED_DIR, name);
    om_tokenizer *t;
    int rc = om_tokenizer_open(&t, path, err, sizeof(err));
    if (rc < 0)
        fail_msg("%s: %s", path, err);
    return t;
}

static void expect_ids(const om_tokenizer *t, const char *text, int add_special, int parse_special,
                       const int32_t *want, int n)
{
    int32_t got[64];
    int ng = om_tokenize(t, text, strlen(text), add_special, parse_special, got, 64);
    if (ng != n || memcmp(got, want, (size_t)n * sizeof(*got))) {
        fprintf(stderr, "'%s' ->", text);
        for (int i = 0; i < ng; i++)
            fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
        fail_msg("unexpected ids for '%s'", text);
    }
}

static void expect_detok(const om_tokenizer *t, const int32_t *ids, int n, int remove_special,
                         int unparse, const char *want)
{
    char buf[256];
    int r = om_detokenize(t, ids, n, remove_special, unparse, buf, sizeof(buf));
    assert_int_equal(r, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_spm_special(void **state)
{
    om_tokenizer *t = open_vocab("llama-spm");
    const om_tok_special *sp = om_tokenizer_special(t);
    assert_int_equal(sp->bos, 1);
    assert_int_equal(sp->eos, 2);
    assert_int_equal(sp->unk, 0);
    assert_true(sp->add_bos);
    assert_false(sp->add_eos);
    assert_int_equal(om_tokenizer_model(t), OM_TOK_SPM);
    assert_int_equal(om_tokenizer_n_vocab(t), 32000);

    /* After a special token the SPM space prefix is applied again. */
    expect_ids(t, "<s>Hello</s>", 0, 1, (const int32_t[]){ 1, 15043, 2 }, 3);
    expect_ids(t, "Hello world", 1, 0, (const int32_t[]){ 1, 15043, 3186 }, 3);
    expect_ids(t, "", 1, 0, (const int32_t[]){ 1 }, 1);
    /* Without parse_special "<s>" is ordinary text. */
    int32_t ids[64];
    int n = om_tokenize(t, "<s>", 3, 0, 0, ids, 64);
    assert_true(n > 1);
    for (int i = 0; i < n; i++)
        assert_int_not_equal(ids[i], 1);

    /* The count alone, and a buffer one short. */
    assert_int_equal(om_tokenize(t, "Hello world", 11, 1, 0, NULL, 0), 3);
    assert_int_equal(om_tokenize(t, "Hello world", 11, 1, 0, ids, 2), OM_ERANGE);

    char piece[16];
    assert_int_equal(om_token_to_piece(t, 13, 0, piece, sizeof(piece)), 1);      /* <0x0A> */
    assert_int_equal(piece[0], '\n');
    assert_int_equal(om_token_to_piece(t, 29871, 0, piece, sizeof(piece)), 1);   /* U+2581 */
    assert_int_equal(piece[0], ' ');
    assert_int_equal(om_token_to_piece(t, 1, 0, piece, sizeof(piece)), 0);
    assert_int_equal(om_token_to_piece(t, 1, 1, piece, sizeof(piece)), 3);
    assert_memory_equal(piece, "<s>", 3);
    assert_int_equal(om_token_to_piece(t, 32000, 0, piece, sizeof(piece)), OM_EINVAL);
    assert_int_equal(om_token_to_piece(t, -1, 0, piece, sizeof(piece)), OM_EINVAL);

    const int32_t seq[] = { 1, 15043, 3186, 2 };
    /* llama.cpp: removing the BOS also keeps the first piece's space, and a BOS piece
     * consumes the space-strip even when it renders empty. */
    expect_detok(t, seq, 4, 1, 0, " Hello world");
    expect_detok(t, seq, 3, 0, 0, " Hello world");
    expect_detok(t, seq, 4, 0, 1, "<s> Hello world</s>");
    expect_detok(t, seq + 1, 2, 0, 0, "Hello world");
    assert_int_equal(om_detokenize(t, (const int32_t[]){ 5, 99999 }, 2, 0, 0, piece, sizeof(piece)), OM_EINVAL);
    /* Too small: the count is still returned and nothing overflows. */
    assert_int_equal(om_detokenize(t, seq + 1, 2, 0, 0, piece, 4), 11);

    assert_true(om_token_is_eog(t, 2));
    assert_false(om_token_is_eog(t, 1));
    assert_null(om_tokenizer_chat_template(t));
    om_tokenizer_close(t);
}

static void test_bpe_special(void **state)
{
    om_tokenizer *t = open_vocab("gpt-2");
    assert_int_equal(om_tokenizer_model(t), OM_TOK_BPE);
    expect_ids(t, "Hello world", 0, 0, (const int32_t[]){ 15496, 995 }, 2);
    expect_ids(t, "a<|endoftext|>b", 0, 1, (const int32_t[]){ 64, 50256, 65 }, 3);
    int32_t ids[64];
    int n = om_tokenize(t, "a<|endoftext|>b", 15, 0, 0, ids, 64);
    assert_true(n > 3);
    for (int i = 0; i < n; i++)
        assert_int_not_equal(ids[i], 50256);
    assert_true(om_token_is_eog(t, 50256));
    /* GPT-2 byte decoding: "Ġworld" is " world". */
    char piece[16];
    assert_int_equal(om_token_to_piece(t, 995, 0, piece, sizeof(piece)), 6);
    assert_memory_equal(piece, " world", 6);
    /* Invalid UTF-8 in the input is encoded as U+FFFD, as llama.cpp does. */
    n = om_tokenize(t, "\xff", 1, 0, 0, ids, 64);
    assert_true(n > 0);
    char text[16];
    assert_int_equal(om_detokenize(t, ids, n, 0, 0, text, sizeof(text)), 3);
    assert_memory_equal(text, "\xef\xbf\xbd", 3);
    om_tokenizer_close(t);
}

static void test_phi3_template(void **state)
{
    om_tokenizer *t = open_vocab("phi-3");
    assert_non_null(om_tokenizer_chat_template(t));
    assert_true(om_token_is_eog(t, 32000));                  /* eos <|endoftext|> */
    assert_true(om_token_is_eog(t, om_tokenizer_find(t, "<|end|>", 7)));
    assert_int_equal(om_tokenizer_find(t, "no such token", 13), OM_ENOENT);
    om_tokenizer_close(t);
}

/* Splits text with a pre-tokenizer and joins the words with '|'. */
static void expect_split(int pre, const char *text, const char *want)
{
    uint32_t cpts[256];
    size_t n = 0, len = strlen(text);
    for (size_t off = 0; off < len;) {
        int l;
        cpts[n++] = om_utf8_decode((const uint8_t *)text + off, len - off, &l);
        off += (size_t)l;
    }
    i32vec words = { 0 };
    assert_int_equal(om_tok_pretokenize(pre, cpts, n, &words), 0);
    char got[512];
    size_t g = 0, c = 0;
    for (int i = 0; i < words.n; i++) {
        if (i)
            got[g++] = '|';
        for (int k = 0; k < words.v[i]; k++)
            g += (size_t)om_utf8_encode(cpts[c++], got + g);
    }
    got[g] = 0;
    free(words.v);
    assert_int_equal(c, n);
    assert_string_equal(got, want);
}

static void test_pretokenizers(void **state)
{
    const char *s = "I've 12345 apples!!\n\n  x";
    expect_split(PRE_LLAMA3, s, "I|'ve| |123|45| apples|!!\n\n| | x");
    expect_split(PRE_GPT2, s, "I|'ve| 12345| apples|!!|\n\n | x");
    expect_split(PRE_SMOLLM, "a12 b", "a|1|2| b");
    /* llama-3's contractions ignore case; GPT-2's do not. */
    expect_split(PRE_LLAMA3, "I'VE", "I|'VE");
    expect_split(PRE_GPT2, "I'VE", "I|'|VE");
    /* Trailing whitespace: \s+(?!\S) cannot leave one behind at the end. */
    expect_split(PRE_GPT2, "a  ", "a|  ");
    expect_split(PRE_GPT2, "a  b", "a| | b");
    /* One non-letter may lead a letter run in llama-3 ("[^\r\n\p{L}\p{N}]?\p{L}+"). */
    expect_split(PRE_LLAMA3, "(hello) 1234567", "(hello|)| |123|456|7");
    expect_split(PRE_LLAMA3, "x\r\n\r\ny", "x|\r\n\r\n|y");
    /* Non-ASCII letters and numbers come from the generated Unicode table. */
    expect_split(PRE_GPT2, "Привет мир ٣٤", "Привет| мир| ٣٤");
    expect_split(PRE_LLAMA3, "日本語テキスト", "日本語テキスト");
    assert_true(om_unicode_flags(0x0416) & OM_UC_LETTER);     /* Ж */
    assert_true(om_unicode_flags(0x0663) & OM_UC_NUMBER);     /* Arabic-Indic three */
    assert_true(om_unicode_flags(0x3000) & OM_UC_WHITESPACE); /* ideographic space */
    assert_false(om_unicode_flags(0x001C) & OM_UC_WHITESPACE);
    assert_true(om_unicode_flags(0x0301) & OM_UC_MARK);
    assert_true(om_unicode_flags(0x10FFFF) & OM_UC_UNDEFINED);
}

/* The pre-tokenizers against the regexes themselves, run by Python's regex engine over
 * random texts (tests/llm/make_pretok_golden.py): same words, case by case. */
static void test_pretokenizers_vs_regex(void **state)
{
    FILE *f = fopen(OMNID_TEST_DIR "/golden/pretok.txt", "r");
    if (!f)
        fail_msg("cannot open %s", OMNID_TEST_DIR "/golden/pretok.txt");
    char line[4096];
    int ncase = 0;
    while (fgets(line, sizeof(line), f)) {
        char *save, *tok = strtok_r(line, " \n", &save);
        int pre = !strcmp(tok, "gpt2") ? PRE_GPT2 : !strcmp(tok, "llama3") ? PRE_LLAMA3 : PRE_SMOLLM;
        uint8_t text[1024];
        int want[256], nw = 0;
        size_t n = 0;
        while ((tok = strtok_r(NULL, " \n", &save))) {
            size_t start = n;
            for (size_t i = 0; tok[i] && tok[i + 1]; i += 2) {
                unsigned b;
                sscanf(tok + i, "%2x", &b);
                text[n++] = (uint8_t)b;
            }
            int cps = 0;
            for (size_t off = start; off < n; cps++) {
                int l;
                om_utf8_decode(text + off, n - off, &l);
                off += (size_t)l;
            }
            want[nw++] = cps;
        }
        uint32_t cpts[1024];
        size_t nc = 0;
        for (size_t off = 0; off < n;) {
            int l;
            cpts[nc++] = om_utf8_decode(text + off, n - off, &l);
            off += (size_t)l;
        }
        i32vec words = { 0 };
        assert_int_equal(om_tok_pretokenize(pre, cpts, nc, &words), 0);
        int same = words.n == nw;
        for (int i = 0; same && i < nw; i++)
            same = words.v[i] == want[i];
        if (!same) {
            fprintf(stderr, "case %d (pre %d) '%.*s': got", ncase, pre, (int)n, (const char *)text);
            for (int i = 0; i < words.n; i++)
                fprintf(stderr, " %d", words.v[i]);
            fprintf(stderr, ", want");
            for (int i = 0; i < nw; i++)
                fprintf(stderr, " %d", want[i]);
            fprintf(stderr, " (code points per word)\n");
            fail_msg("pre-tokenizer differs from the regex");
        }
        free(words.v);
        ncase++;
    }
    fclose(f);
    assert_int_equal(ncase, 240);
}

static uint32_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*x >> 33);
}

/* Random text: valid UTF-8 round-trips exactly through every vocabulary; arbitrary bytes
 * tokenize within the documented bound and detokenize without error. */
static void test_random_roundtrip(void **state)
{
    const char *names[] = { "llama-spm", "gpt-2", "phi-3" };
    uint64_t seed = 7;
    for (int v = 0; v < 3; v++) {
        om_tokenizer *t = open_vocab(names[v]);
        for (int iter = 0; iter < 300; iter++) {
            char text[256], back[512];
            size_t n = 0, want = lcg(&seed) % 48;
            int raw = iter % 3 == 0;
            while (n < want) {
                if (raw) {
                    text[n++] = (char)(lcg(&seed) & 0xFF);
                    continue;
                }
                /* Mostly ASCII and spaces, some 2-, 3- and 4-byte code points. */
                uint32_t r = lcg(&seed) % 100, cp;
                if (r < 60)
                    cp = 0x20 + lcg(&seed) % 0x5F;
                else if (r < 70)
                    cp = " \t\n"[lcg(&seed) % 3];
                else if (r < 85)
                    cp = 0x80 + lcg(&seed) % 0x780;
                else if (r < 95)
                    cp = 0x800 + lcg(&seed) % 0xF800;
                else
                    cp = 0x10000 + lcg(&seed) % 0x100000;
                if ((cp >= 0xD800 && cp < 0xE000) || cp == 0x2581)
                    continue;
                n += (size_t)om_utf8_encode(cp, text + n);
            }
            int32_t ids[512];
            int ni = om_tokenize(t, text, n, 0, 0, ids, 512);
            assert_true(ni >= 0 && ni <= 4 * (int)n + 5);
            int nb = om_detokenize(t, ids, ni, 0, 0, back, sizeof(back));
            assert_true(nb >= 0);
            /* Invalid UTF-8 need not come back: BPE reads it as U+FFFD, and in SPM a
             * stray lead byte swallows the first byte of an escaped space (as in llama.cpp). */
            if (!raw && (nb != (int)n || memcmp(back, text, n)))
                fail_msg("%s: iteration %d does not round-trip", names[v], iter);
        }
        om_tokenizer_close(t);
    }
}

/* The committed tiny model (tools/mkllama): layout as llama.cpp writes it, read by our
 * GGUF reader, and its truncated 512-token vocabulary still tokenizes any text. */
static void test_tiny_model(void **state)
{
    char err[256] = "";
    om_gguf *g;
    if (om_gguf_open(&g, OMNID_TEST_DIR "/golden/tiny-llama.gguf", NULL, err, sizeof(err)) < 0)
        fail_msg("tiny-llama.gguf: %s", err);
    static const struct { const char *name; int type; int64_t ne0, ne1; } want[] = {
        { "token_embd.weight", 8, 64, 512 },      /* Q8_0 */
        { "blk.0.attn_norm.weight", 0, 64, 1 },
        { "blk.0.attn_q.weight", 2, 64, 64 },     /* Q4_0 */
        { "blk.1.attn_k.weight", 2, 64, 32 },     /* GQA: 2 kv heads of 16 */
        { "blk.1.attn_v.weight", 2, 64, 32 },
        { "blk.1.attn_output.weight", 2, 64, 64 },
        { "blk.1.ffn_gate.weight", 2, 64, 128 },
        { "blk.1.ffn_down.weight", 2, 128, 64 },
        { "output_norm.weight", 0, 64, 1 },
        { "output.weight", 1, 64, 512 },          /* F16 */
    };
    assert_int_equal(om_gguf_n_tensors(g), 2 + 9 * 2 + 1);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const om_gguf_tensor *t = om_gguf_find_tensor(g, want[i].name);
        if (!t)
            fail_msg("missing %s", want[i].name);
        assert_int_equal(t->type, want[i].type);
        assert_int_equal(t->ne[0], want[i].ne0);
        assert_int_equal(t->ne[1], want[i].ne1);
    }
    uint32_t v;
    assert_int_equal(om_gguf_get_u32(g, "llama.attention.head_count_kv", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(om_gguf_get_u32(g, "llama.rope.dimension_count", &v), 0);
    assert_int_equal(v, 16);
    om_tokenizer *t;
    if (om_tokenizer_from_gguf(&t, g, err, sizeof(err)) < 0)
        fail_msg("tokenizer: %s", err);
    om_gguf_close(g);
    assert_int_equal(om_tokenizer_n_vocab(t), 512);
    /* Spaces only before letters: the truncated vocabulary lacks a lone U+2581 (29871),
     * so " 4" would come back as the three bytes of U+2581 and '4' (llama.cpp does the same). */
    const char *text = "Hello world, this is a test.";
    int32_t ids[64];
    int n = om_tokenize(t, text, strlen(text), 1, 0, ids, 64);
    assert_true(n > 2);
    assert_int_equal(ids[0], 1);
    for (int i = 0; i < n; i++)
        assert_true(ids[i] >= 0 && ids[i] < 512);
    char back[128];
    assert_int_equal(om_detokenize(t, ids, n, 1, 0, back, sizeof(back)), (int)strlen(text) + 1);
    assert_string_equal(back + 1, text);      /* removing the BOS keeps the prefix space */
    om_tokenizer_close(t);
}

/* ---- hostile metadata ---- */

typedef struct bad { const char *what; int want; const char *msg; } bad;

static int write_vocab(const char *path, const bad *b)
{
    om_gguf_writer *w;
    assert_int_equal(om_gguf_writer_open(&w, 32), 0);
    const char *toks[] = { "<unk>", "<s>", "</s>", ("\xe2\x96\x81" "a"), "b" };
    int32_t types[] = { 2, 3, 3, 1, 1 };
    const char *merges[] = { "a b" };
    int n_tok = 5;
    const char *model = "llama";
    if (!strcmp(b->what, "model"))
        model = "bert";
    if (!strcmp(b->what, "gpt2-no-merges") || !strcmp(b->what, "pre"))
        model = "gpt2";
    om_gguf_set_str(w, "tokenizer.ggml.model", model);
    if (!strcmp(b->what, "pre"))
        om_gguf_set_str(w, "tokenizer.ggml.pre", "qwen2");
    if (!strcmp(b->what, "tokens-type"))
        om_gguf_set_arr(w, "tokenizer.ggml.tokens", OM_GGUF_I32, types, 5);
    else if (strcmp(b->what, "no-tokens"))
        om_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n_tok);
    if (!strcmp(b->what, "token-type-value"))
        types[3] = 9;
    om_gguf_set_arr(w, "tokenizer.ggml.token_type", OM_GGUF_I32, types,
                    !strcmp(b->what, "token-type-count") ? 4 : 5);
    if (!strcmp(b->what, "bos"))
        om_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 99);
    if (!strcmp(b->what, "pre"))
        om_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    int rc = om_gguf_write_file(w, path);
    om_gguf_writer_free(w);
    return rc;
}

static void test_hostile(void **state)
{
    const bad cases[] = {
        { "model", OM_EUNSUPPORTED, "'bert'" },
        { "pre", OM_EUNSUPPORTED, "'qwen2'" },
        { "gpt2-no-merges", OM_ENOENT, "tokenizer.ggml.merges" },
        { "no-tokens", OM_ENOENT, "tokenizer.ggml.tokens" },
        { "tokens-type", OM_EFORMAT, "tokenizer.ggml.tokens" },
        { "token-type-value", OM_EFORMAT, "token_type[3]" },
        { "token-type-count", OM_EFORMAT, "tokenizer.ggml.token_type" },
        { "bos", OM_ERANGE, "bos_token_id = 99" },
        { "valid", 0, "" },
    };
    char path[] = "/tmp/omnid-test-vocab-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(write_vocab(path, &cases[i]), 0);
        om_tokenizer *t = NULL;
        char err[256] = "";
        int rc = om_tokenizer_open(&t, path, err, sizeof(err));
        if (rc != cases[i].want || !strstr(err, cases[i].msg))
            fail_msg("%s: rc %d (%s), want %d with '%s'", cases[i].what, rc, err, cases[i].want, cases[i].msg);
        if (rc == 0) {
            /* Without <0xXX> tokens every byte of an unknown piece becomes <unk>:
             * " a" is U+2581 (3 bytes, no token) + "\u2581a". */
            expect_ids(t, " a", 0, 0, (const int32_t[]){ 0, 0, 0, 3 }, 4);
            expect_ids(t, "ab", 0, 0, (const int32_t[]){ 3, 4 }, 2);
            expect_ids(t, "c", 0, 0, (const int32_t[]){ 0, 0, 0, 0 }, 4);
            om_tokenizer_close(t);
        } else {
            assert_null(t);
        }
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_special),
        cmocka_unit_test(test_bpe_special),
        cmocka_unit_test(test_phi3_template),
        cmocka_unit_test(test_pretokenizers),
        cmocka_unit_test(test_pretokenizers_vs_regex),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_tiny_model),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
