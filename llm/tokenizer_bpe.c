/* tokenizer_bpe.c: byte-level BPE of one text fragment, as llama.cpp's llm_tokenizer_bpe:
 * the pre-tokenizer splits the text into words; each word's bytes are mapped to GPT-2's
 * printable code points (bytes_to_unicode); within a word the adjacent pair with the
 * lowest merge rank is merged (leftmost on ties) until no pair has a rank. */
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "tokenizer_impl.h"
#include "unicode.h"

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68
 * (0x00-0x20, 0x7F-0xA0, 0xAD) to U+0100.. in byte order. */
static uint32_t byte_cpt(uint8_t b)
{
    if (b <= 0x20)
        return 256 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 256 + 33 + (b - 0x7F);
    if (b == 0xAD)
        return 256 + 67;
    return b;
}

int om_tok_gpt2_byte(uint32_t cpt)
{
    if (cpt >= 256 + 68)
        return -1;
    if (cpt >= 256) {
        uint32_t n = cpt - 256;
        return n <= 32 ? (int)n : n < 67 ? (int)(0x7F + n - 33) : 0xAD;
    }
    return byte_cpt((uint8_t)cpt) == cpt ? (int)cpt : -1;
}

typedef struct session {
    const om_tokenizer *t;
    const char *w;              /* the byte-encoded word */
    om_tok_sym *syms;
    int cap;
    om_tok_heap q;
    char *key;                  /* "left right" scratch */
    size_t keycap;
} session;

/* A pair merges when "left right" is a merge; the lower its rank, the sooner. */
static int merge_rank(void *ctx, const om_tok_sym *l, const om_tok_sym *r, double *prio)
{
    session *ss = ctx;
    size_t kn = (size_t)l->n + 1 + r->n;
    if (kn > ss->keycap) {
        char *k = realloc(ss->key, kn);
        if (!k)
            return OM_ENOMEM;
        ss->key = k;
        ss->keycap = kn;
    }
    memcpy(ss->key, ss->w + l->off, l->n);
    ss->key[l->n] = ' ';
    memcpy(ss->key + l->n + 1, ss->w + r->off, r->n);
    int rank = om_strtab_find(&ss->t->merges, ss->key, kn);
    if (rank < 0)
        return 0;
    *prio = -(double)rank;
    return 1;
}

/* Merges within one byte-encoded word and appends the resulting ids. */
static int bpe_word(session *ss, const char *w, size_t n, i32vec *out)
{
    const om_tokenizer *t = ss->t;
    if (n + 1 > (size_t)ss->cap) {
        om_tok_sym *s = realloc(ss->syms, (n + 1) * sizeof(*s));
        if (!s)
            return OM_ENOMEM;
        ss->syms = s;
        ss->cap = (int)n + 1;
    }
    ss->w = w;
    int ns;
    if (t->ignore_merges && om_strtab_find(&t->vocab, w, n) >= 0) {
        ss->syms[0] = (om_tok_sym){ -1, -1, 0, (uint32_t)n };
        ns = 1;
    } else {
        ns = om_tok_split_utf8(ss->syms, w, n);
    }
    int rc = om_tok_merge(ss->syms, ns, &ss->q, merge_rank, ss);
    for (int i = 0; i < ns && rc == 0; i++) {
        const om_tok_sym *y = &ss->syms[i];
        if (y->n == 0)
            continue;
        int id = om_strtab_find(&t->vocab, w + y->off, y->n);
        if (id >= 0) {
            rc = om_i32vec_push(out, id);
            continue;
        }
        /* Not a token: llama.cpp then emits whichever single bytes are tokens. */
        for (uint32_t j = 0; j < y->n && rc == 0; j++) {
            int b = om_strtab_find(&t->vocab, w + y->off + j, 1);
            if (b >= 0)
                rc = om_i32vec_push(out, b);
        }
    }
    return rc;
}

int om_tok_bpe_fragment(const om_tokenizer *t, const char *text, size_t len, i32vec *out)
{
    uint32_t *cpts = malloc((len + 1) * sizeof(*cpts));
    char *w = malloc(len * 8 + 1);              /* <= 4 bytes per byte, 2 bytes per code */
    i32vec words = { 0 };
    session ss = { .t = t };
    int rc = OM_ENOMEM;
    if (!cpts || !w)
        goto done;
    size_t nc = 0;
    for (size_t off = 0; off < len;) {
        int l;
        cpts[nc++] = om_utf8_decode((const uint8_t *)text + off, len - off, &l);
        off += (size_t)l;
    }
    rc = om_tok_pretokenize(t->pre, cpts, nc, &words);
    size_t c0 = 0;
    for (int i = 0; i < words.n && rc == 0; i++) {
        size_t wn = 0;
        for (size_t c = c0; c < c0 + (size_t)words.v[i]; c++) {
            char u[4];
            int ul = om_utf8_encode(cpts[c], u);
            for (int j = 0; j < ul; j++)
                wn += (size_t)om_utf8_encode(byte_cpt((uint8_t)u[j]), w + wn);
        }
        c0 += (size_t)words.v[i];
        rc = bpe_word(&ss, w, wn, out);
    }
done:
    free(ss.key);
    free(ss.q.v);
    free(ss.syms);
    free(words.v);
    free(w);
    free(cpts);
    return rc;
}
