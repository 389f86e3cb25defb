/* tokenizer_bpe.c: byte-level BPE of one text fragment, as llama.cpp's llm_tokenizer_bpe:
 * the pre-tokenizer splits the text into words; each word's bytes are mapped to GPT-2's
 * printable code points (bytes_to_unicode); within a word the adjacent pair with the
 * lowest merge rank is merged (leftmost on ties) until no pair has a rank. */
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "tokenizer_impl.h"
#include "unicode.h"

typedef struct sym { int prev, next; uint32_t off, n; } sym;
typedef struct bigram { int left, right, rank; uint32_t size; } bigram;

static int before(const bigram *a, const bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

typedef struct heap { bigram *v; int n, cap; } heap;

static int heap_push(heap *h, bigram b)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        bigram *v = realloc(h->v, (size_t)cap * sizeof(*v));
        if (!v)
            return OM_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    int i = h->n++;
    while (i > 0 && before(&b, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = b;
    return 0;
}

static bigram heap_pop(heap *h)
{
    bigram top = h->v[0], last = h->v[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

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
    sym *syms;
    int nsyms, cap;
    heap q;
    char *key;                  /* "left right" scratch */
    size_t keycap;
} session;

static int add_bigram(session *ss, int left, int right)
{
    if (left < 0 || right < 0)
        return 0;
    const sym *l = &ss->syms[left], *r = &ss->syms[right];
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
    return heap_push(&ss->q, (bigram){ left, right, rank, l->n + r->n });
}

/* Merges within one byte-encoded word and appends the resulting ids. */
static int bpe_word(session *ss, const char *w, size_t n, i32vec *out)
{
    const om_tokenizer *t = ss->t;
    if (n + 1 > (size_t)ss->cap) {
        sym *s = realloc(ss->syms, (n + 1) * sizeof(*s));
        if (!s)
            return OM_ENOMEM;
        ss->syms = s;
        ss->cap = (int)n + 1;
    }
    ss->w = w;
    ss->q.n = 0;
    int ns = 0;
    if (t->ignore_merges && om_strtab_find(&t->vocab, w, n) >= 0) {
        ss->syms[ns++] = (sym){ -1, -1, 0, (uint32_t)n };
    } else {
        for (size_t off = 0; off < n;) {
            size_t cl = (size_t)om_utf8_len((uint8_t)w[off]);
            if (cl > n - off)
                cl = n - off;
            ss->syms[ns] = (sym){ ns - 1, off + cl == n ? -1 : ns + 1, (uint32_t)off, (uint32_t)cl };
            off += cl;
            ns++;
        }
    }
    int rc = 0;
    for (int i = 1; i < ns && rc == 0; i++)
        rc = add_bigram(ss, i - 1, i);
    while (rc == 0 && ss->q.n > 0) {
        bigram b = heap_pop(&ss->q);
        sym *l = &ss->syms[b.left], *r = &ss->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            ss->syms[r->next].prev = b.left;
        rc = add_bigram(ss, l->prev, b.left);
        if (rc == 0)
            rc = add_bigram(ss, b.left, l->next);
    }
    for (int i = 0; i < ns && rc == 0; i++) {
        const sym *y = &ss->syms[i];
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
