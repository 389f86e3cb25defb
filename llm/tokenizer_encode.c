/* tokenizer_encode.c: text -> ids (special-token partitioning, BOS/EOS, the model pass per
 * fragment) and ids -> text, with llama.cpp's semantics (llama_tokenize_impl,
 * tokenizer_st_partition, token_to_piece, detokenize). */
#define _GNU_SOURCE                 /* memmem */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "tokenizer_impl.h"
#include "unicode.h"

/* A piece of the input: raw text (tok < 0) or an already-found special token. */
typedef struct frag { int32_t tok; uint32_t off, len; } frag;
typedef struct fragvec { frag *v; int n, cap; } fragvec;

static int frag_push(fragvec *f, frag x)
{
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 16;
        frag *v = realloc(f->v, (size_t)cap * sizeof(*v));
        if (!v)
            return OM_ENOMEM;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = x;
    return 0;
}

/* Cuts every occurrence of every special token (longest first) out of the raw
 * fragments. Control and unknown tokens take part only when parse_special. A token
 * with a strip flag also takes the whitespace beside it. */
static int partition(const om_tokenizer *t, const char *text, size_t len, int parse_special,
                     fragvec *out)
{
    fragvec cur = { 0 }, next = { 0 };
    int rc = frag_push(&cur, (frag){ -1, 0, (uint32_t)len });
    for (int k = 0; k < t->n_special && rc == 0; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != OM_TOKT_USER_DEFINED)
            continue;
        size_t sl;
        const char *st = om_token_text(t, id, &sl);
        next.n = 0;
        for (int i = 0; i < cur.n && rc == 0; i++) {
            frag f = cur.v[i];
            if (f.tok >= 0 || f.len < sl) {
                rc = frag_push(&next, f);
                continue;
            }
            int strip = t->strip ? t->strip[id] : 0;
            size_t p = f.off, end = (size_t)f.off + f.len;
            const char *q;
            while (rc == 0 && (q = memmem(text + p, end - p, st, sl))) {
                size_t at = (size_t)(q - text), left = at;
                if (strip & STRIP_LEFT)
                    while (left > p && isspace((unsigned char)text[left - 1]))
                        left--;
                if (left > p)
                    rc = frag_push(&next, (frag){ -1, (uint32_t)p, (uint32_t)(left - p) });
                if (rc == 0)
                    rc = frag_push(&next, (frag){ id, (uint32_t)at, (uint32_t)sl });
                p = at + sl;
                if (strip & STRIP_RIGHT)
                    while (p < end && isspace((unsigned char)text[p]))
                        p++;
            }
            if (rc == 0 && p < end)
                rc = frag_push(&next, (frag){ -1, (uint32_t)p, (uint32_t)(end - p) });
        }
        fragvec tmp = cur;
        cur = next;
        next = tmp;
    }
    free(next.v);
    if (rc < 0)
        free(cur.v);
    else
        *out = cur;
    return rc;
}

int om_tokenize(const om_tokenizer *t, const char *text, size_t len, int add_special,
                int parse_special, int32_t *ids, int max_ids)
{
    if (!t || (!text && len) || max_ids < 0 || (!ids && max_ids))
        return OM_EINVAL;
    if (len > OM_TOK_MAX_TEXT)
        return OM_ERANGE;
    i32vec out = { 0 };
    fragvec fr = { 0 };
    int rc = 0;
    if (add_special && t->sp.add_bos)
        rc = om_i32vec_push(&out, t->sp.bos);
    /* An empty text has no fragments, so no SPM space prefix either. */
    if (rc == 0 && len > 0)
        rc = partition(t, text, len, parse_special, &fr);
    int prev_special = 1;           /* SPM prefixes a space at the start and after specials */
    for (int i = 0; i < fr.n && rc == 0; i++) {
        const frag *f = &fr.v[i];
        if (f->tok >= 0) {
            rc = om_i32vec_push(&out, f->tok);
            prev_special = 1;
        } else if (t->model == OM_TOK_SPM) {
            rc = om_tok_spm_fragment(t, text + f->off, f->len,
                                     t->sp.add_space_prefix && prev_special, &out);
            prev_special = 0;
        } else {
            rc = om_tok_bpe_fragment(t, text + f->off, f->len, &out);
        }
    }
    if (rc == 0 && add_special && t->sp.add_eos)
        rc = om_i32vec_push(&out, t->sp.eos);
    if (rc == 0) {
        rc = out.n;
        if (ids && out.n <= max_ids) {
            if (out.n > 0)
                memcpy(ids, out.v, (size_t)out.n * sizeof(*ids));
        } else if (ids || max_ids) {
            rc = OM_ERANGE;
        }
    }
    free(fr.v);
    free(out.v);
    return rc;
}

/* Output of pieces: counts every byte, writes those that fit; the first byte is
 * dropped when it is a space and lstrip is set (llama.cpp's lstrip of one). */
typedef struct writer { char *buf; size_t size, pos; int lstrip; } writer;

static void put(writer *w, const char *src, size_t n)
{
    if (w->lstrip && n > 0) {
        w->lstrip = 0;
        if (src[0] == ' ') {
            src++;
            n--;
        }
    }
    if (n > 0 && w->pos + n <= w->size)
        memcpy(w->buf + w->pos, src, n);
    w->pos += n;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
           c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int piece(const om_tokenizer *t, int32_t id, int special, int lstrip, char *buf,
                 size_t size)
{
    if (id < 0 || id >= t->vocab.n)
        return OM_EINVAL;
    int ty = t->type[id];
    size_t n;
    const char *s = om_token_text(t, id, &n);
    writer w = { buf, size, 0, lstrip };
    if (ty == OM_TOKT_CONTROL || ty == OM_TOKT_UNKNOWN) {
        if (special)
            put(&w, s, n);
    } else if (ty == OM_TOKT_USER_DEFINED) {
        put(&w, s, n);
    } else if (ty == OM_TOKT_BYTE && t->model == OM_TOK_SPM) {
        /* "<0xXX>"; any other text of a byte token renders as nothing. */
        int hi = n == 6 ? hexval(s[3]) : -1, lo = n == 6 ? hexval(s[4]) : -1;
        char b = (char)(hi * 16 + lo);
        if (hi >= 0 && lo >= 0)
            put(&w, &b, 1);
    } else if (ty == OM_TOKT_NORMAL && t->model == OM_TOK_SPM) {
        for (size_t i = 0; i < n;) {
            int sp = n - i >= 3 && !memcmp(s + i, "\xe2\x96\x81", 3);
            put(&w, sp ? " " : s + i, 1);
            i += sp ? 3 : 1;
        }
    } else if (ty == OM_TOKT_NORMAL) {
        for (size_t i = 0; i < n;) {
            int l;
            uint32_t c = om_utf8_decode((const uint8_t *)s + i, n - i, &l);
            int b = om_tok_gpt2_byte(c);
            char cb = (char)b;
            /* A code point outside GPT-2's byte alphabet passes through as UTF-8. */
            put(&w, b >= 0 ? &cb : s + i, b >= 0 ? 1 : (size_t)l);
            i += (size_t)l;
        }
    }
    /* Unused tokens, and byte tokens of a BPE vocabulary, render as nothing. */
    return (int)w.pos;
}

int om_token_to_piece(const om_tokenizer *t, int32_t id, int special, char *buf, size_t size)
{
    return piece(t, id, special, 0, buf, size);
}

int om_detokenize(const om_tokenizer *t, const int32_t *ids, int n, int remove_special,
                  int unparse_special, char *buf, size_t size)
{
    if (!t || n < 0 || (n && !ids) || (!buf && size))
        return OM_EINVAL;
    int remove_space = t->sp.add_space_prefix;
    if (remove_special && t->sp.add_bos && n > 0 && ids[0] == t->sp.bos) {
        remove_space = 0;
        ids++;
        n--;
    }
    if (remove_special && t->sp.add_eos && n > 0 && ids[n - 1] == t->sp.eos)
        n--;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        int r = piece(t, ids[i], unparse_special, remove_space,
                      pos < size ? buf + pos : NULL, pos < size ? size - pos : 0);
        if (r < 0)
            return r;
        pos += (size_t)r;
        remove_space = 0;
        if (pos > (size_t)0x7FFFFFFF)
            return OM_ERANGE;
    }
    if (pos < size)
        buf[pos] = 0;
    return (int)pos;
}
