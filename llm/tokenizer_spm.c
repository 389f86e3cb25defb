/* tokenizer_spm.c: SentencePiece-style tokenization of one text fragment, as llama.cpp's
 * llm_tokenizer_spm: spaces become U+2581 (with one more in front when prefix_space),
 * the text is split into UTF-8 characters, and the adjacent pair whose concatenation is
 * the highest-scoring token is merged (leftmost on ties) until no pair is a token.
 * What is left and is not a token is emitted byte by byte as <0xXX> tokens. */
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "tokenizer_impl.h"
#include "unicode.h"

typedef struct sym { int prev, next; uint32_t off, n; } sym;
typedef struct bigram { int left, right; float score; uint32_t size; } bigram;

/* Max-heap order: higher score first, then the leftmost pair. */
static int before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
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

typedef struct session {
    const om_tokenizer *t;
    const char *s;
    sym *syms;
    heap q;
} session;

static int try_bigram(session *ss, int left, int right)
{
    if (left < 0 || right < 0)
        return 0;
    uint32_t size = ss->syms[left].n + ss->syms[right].n;
    int id = om_strtab_find(&ss->t->vocab, ss->s + ss->syms[left].off, size);
    if (id < 0)
        return 0;
    return heap_push(&ss->q, (bigram){ left, right, ss->t->score[id], size });
}

/* A final symbol: its token, or its bytes. (llama.cpp's resegment also consults the
 * merge history, but only for texts that are tokens, which are found directly.) */
static int emit(const session *ss, const sym *y, i32vec *out)
{
    int id = om_strtab_find(&ss->t->vocab, ss->s + y->off, y->n);
    if (id >= 0)
        return om_i32vec_push(out, id);
    for (uint32_t j = 0; j < y->n; j++) {
        int32_t b = ss->t->byte_tok[(uint8_t)ss->s[y->off + j]];
        if (b < 0)
            return OM_EFORMAT;
        if (om_i32vec_push(out, b) < 0)
            return OM_ENOMEM;
    }
    return 0;
}

int om_tok_spm_fragment(const om_tokenizer *t, const char *text, size_t len, int prefix_space,
                        i32vec *out)
{
    static const char sp[] = "\xe2\x96\x81";               /* U+2581 */
    size_t nsp = 0;
    for (size_t i = 0; i < len; i++)
        nsp += text[i] == ' ';
    size_t n = (prefix_space ? 3 : 0) + len + nsp * 2;
    char *s = malloc(n + 1);
    sym *syms = malloc((n + 1) * sizeof(*syms));
    session ss = { t, s, syms, { 0 } };
    int rc = OM_ENOMEM;
    if (!s || !syms)
        goto done;
    size_t k = 0;
    if (prefix_space) {
        memcpy(s, sp, 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s + k, sp, 3);
            k += 3;
        } else {
            s[k++] = text[i];
        }
    }
    int ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = (size_t)om_utf8_len((uint8_t)s[off]);
        if (cl > n - off)
            cl = n - off;
        syms[ns] = (sym){ ns - 1, off + cl == n ? -1 : ns + 1, (uint32_t)off, (uint32_t)cl };
        off += cl;
        ns++;
    }
    rc = 0;
    for (int i = 1; i < ns && rc == 0; i++)
        rc = try_bigram(&ss, i - 1, i);
    while (rc == 0 && ss.q.n > 0) {
        bigram b = heap_pop(&ss.q);
        sym *l = &syms[b.left], *r = &syms[b.right];
        /* Stale when either side has merged with something else since. */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        rc = try_bigram(&ss, l->prev, b.left);
        if (rc == 0)
            rc = try_bigram(&ss, b.left, l->next);
    }
    for (int i = ns > 0 ? 0 : -1; rc == 0 && i != -1; i = syms[i].next)
        rc = emit(&ss, &syms[i], out);
done:
    free(ss.q.v);
    free(syms);
    free(s);
    return rc;
}
