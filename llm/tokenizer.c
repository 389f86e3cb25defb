/* tokenizer.c: loading the vocabulary from GGUF, special-token partitioning, BOS/EOS,
 * and detokenization (see om_tokenizer.h). */
#define _GNU_SOURCE                 /* qsort_r */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_gguf.h"
#include "tokenizer_impl.h"
#include "unicode.h"

#define MAX_ARENA (1u << 30)

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;                   /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

int om_strtab_build(strtab *st, int first_wins)
{
    uint32_t size = 16;
    while (size < (uint32_t)st->n * 2u)
        size *= 2;
    st->slot = malloc(size * sizeof(*st->slot));
    if (!st->slot)
        return OM_ENOMEM;
    memset(st->slot, 0xFF, size * sizeof(*st->slot));
    st->mask = size - 1;
    for (int i = 0; i < st->n; i++) {
        const char *s = st->arena + st->off[i];
        uint32_t h = (uint32_t)hash(s, st->len[i]) & st->mask;
        for (;; h = (h + 1) & st->mask) {
            int32_t j = st->slot[h];
            if (j < 0) {
                st->slot[h] = i;
                break;
            }
            if (st->len[j] == st->len[i] && !memcmp(st->arena + st->off[j], s, st->len[i])) {
                if (!first_wins)
                    st->slot[h] = i;
                break;
            }
        }
    }
    return 0;
}

int om_strtab_find(const strtab *st, const char *s, size_t n)
{
    for (uint32_t h = (uint32_t)hash(s, n) & st->mask;; h = (h + 1) & st->mask) {
        int32_t j = st->slot[h];
        if (j < 0)
            return OM_ENOENT;
        if (st->len[j] == n && !memcmp(st->arena + st->off[j], s, n))
            return j;
    }
}

void om_strtab_free(strtab *st)
{
    free(st->arena);
    free(st->off);
    free(st->len);
    free(st->slot);
}

int om_i32vec_push(i32vec *v, int32_t x)
{
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->v, (size_t)cap * sizeof(*p));
        if (!p)
            return OM_ENOMEM;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

/* ---- pair merging ---- */

static int before(const om_tok_bigram *a, const om_tok_bigram *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static int heap_push(om_tok_heap *h, om_tok_bigram b)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        om_tok_bigram *v = realloc(h->v, (size_t)cap * sizeof(*v));
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

static om_tok_bigram heap_pop(om_tok_heap *h)
{
    om_tok_bigram top = h->v[0], last = h->v[--h->n];
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

int om_tok_split_utf8(om_tok_sym *syms, const char *s, size_t n)
{
    int ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = (size_t)om_utf8_len((uint8_t)s[off]);
        if (cl > n - off)
            cl = n - off;
        syms[ns] = (om_tok_sym){ ns - 1, off + cl == n ? -1 : ns + 1, (uint32_t)off,
                                 (uint32_t)cl };
        off += cl;
        ns++;
    }
    return ns;
}

static int queue_pair(om_tok_sym *syms, om_tok_heap *q, om_tok_pair_fn pair, void *ctx,
                      int left, int right)
{
    if (left < 0 || right < 0)
        return 0;
    double prio;
    int rc = pair(ctx, &syms[left], &syms[right], &prio);
    if (rc <= 0)
        return rc;
    return heap_push(q, (om_tok_bigram){ left, right, prio, syms[left].n + syms[right].n });
}

int om_tok_merge(om_tok_sym *syms, int ns, om_tok_heap *q, om_tok_pair_fn pair, void *ctx)
{
    int rc = 0;
    q->n = 0;
    for (int i = 1; i < ns && rc == 0; i++)
        rc = queue_pair(syms, q, pair, ctx, i - 1, i);
    while (rc == 0 && q->n > 0) {
        om_tok_bigram b = heap_pop(q);
        om_tok_sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        rc = queue_pair(syms, q, pair, ctx, l->prev, b.left);
        if (rc == 0)
            rc = queue_pair(syms, q, pair, ctx, b.left, l->next);
    }
    return rc;
}

/* ---- loading ---- */

#define FAIL(code, ...) do { snprintf(err, errlen, __VA_ARGS__); rc = (code); goto fail; } while (0)

static int str_eq(om_gguf_str s, const char *lit)
{
    return s.n == strlen(lit) && !memcmp(s.p, lit, s.n);
}

/* Copies a string array into st (n strings); max_n and per-string limits enforced. */
static int load_strings(strtab *st, const om_gguf_kv *kv, const char *key, uint64_t max_n,
                        char *err, size_t errlen)
{
    int rc;
    if (kv->type != OM_GGUF_ARRAY || kv->arr_type != OM_GGUF_STRING)
        FAIL(OM_EFORMAT, "%s: not an array of strings", key);
    if (kv->arr_n > max_n)
        FAIL(OM_ERANGE, "%s: %llu entries exceed the limit %llu", key,
             (unsigned long long)kv->arr_n, (unsigned long long)max_n);
    uint64_t total = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        om_gguf_str s;
        if (om_gguf_arr_str(kv, i, &s) < 0)
            FAIL(OM_EFORMAT, "%s[%llu]: unreadable", key, (unsigned long long)i);
        if (s.n > OM_TOK_MAX_TOKLEN)
            FAIL(OM_ERANGE, "%s[%llu]: %llu bytes exceed the limit %d", key,
                 (unsigned long long)i, (unsigned long long)s.n, OM_TOK_MAX_TOKLEN);
        total += s.n;
    }
    if (total > MAX_ARENA)
        FAIL(OM_ERANGE, "%s: %llu bytes of text exceed the limit", key, (unsigned long long)total);
    st->n = (int)kv->arr_n;
    st->arena = malloc(total + 1);
    st->off = malloc((kv->arr_n + 1) * sizeof(*st->off));
    st->len = malloc((kv->arr_n + 1) * sizeof(*st->len));
    if (!st->arena || !st->off || !st->len)
        FAIL(OM_ENOMEM, "%s: out of memory", key);
    uint32_t off = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        om_gguf_str s;
        om_gguf_arr_str(kv, i, &s);
        memcpy(st->arena + off, s.p, s.n);
        st->off[i] = off;
        st->len[i] = (uint32_t)s.n;
        off += (uint32_t)s.n;
    }
    return 0;
fail:
    return rc;
}

/* An optional token id key: absent keeps *id; 0xFFFFFFFF or -1 means none. */
static int load_id(const om_gguf *g, const char *key, int n_vocab, int32_t *id,
                   char *err, size_t errlen)
{
    int64_t v;
    int rc = om_gguf_get_i64(g, key, &v);
    if (rc == OM_ENOENT)
        return 0;
    if (rc < 0)
        FAIL(rc, "%s: not an integer", key);
    if (v == -1 || v == 0xFFFFFFFFll) {
        *id = -1;
        return 0;
    }
    if (v < 0 || v >= n_vocab)
        FAIL(OM_ERANGE, "%s = %lld is outside the vocabulary (%d tokens)", key, (long long)v, n_vocab);
    *id = (int32_t)v;
    return 0;
fail:
    return rc;
}

static int load_flag(const om_gguf *g, const char *key, int *flag, char *err, size_t errlen)
{
    int rc = om_gguf_get_bool(g, key, flag);
    if (rc == OM_ENOENT)
        return 0;
    if (rc < 0)
        snprintf(err, errlen, "%s: not a bool", key);
    return rc;
}

static int by_length_desc(const void *a, const void *b, void *ctx)
{
    const om_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->vocab.len[x] != t->vocab.len[y])
        return t->vocab.len[x] > t->vocab.len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int build_special(om_tokenizer *t)
{
    t->special = malloc((size_t)t->vocab.n * sizeof(*t->special));
    if (!t->special)
        return OM_ENOMEM;
    for (int i = 0; i < t->vocab.n; i++) {
        int ty = t->type[i];
        if ((ty == OM_TOKT_CONTROL || ty == OM_TOKT_USER_DEFINED || ty == OM_TOKT_UNKNOWN) &&
            t->vocab.len[i] > 0)
            t->special[t->n_special++] = i;
    }
    qsort_r(t->special, (size_t)t->n_special, sizeof(*t->special), by_length_desc, t);
    return 0;
}

static void set_strip(om_tokenizer *t, const char *text, int on)
{
    int id = om_strtab_find(&t->vocab, text, strlen(text));
    if (id >= 0)
        t->strip[id] = on ? STRIP_RIGHT : 0;
}

/* llama.cpp sets these by model name: Phi-3's special tokens swallow the whitespace
 * after them (its Hugging Face added tokens have rstrip), except <unk>, <s> and
 * <|endoftext|>. */
static int build_strip(om_tokenizer *t, const om_gguf *g)
{
    om_gguf_str name;
    if (om_gguf_get_str(g, "general.name", &name) < 0 || name.n > 256)
        return 0;
    char low[257];
    for (uint64_t i = 0; i < name.n; i++)
        low[i] = (char)(name.p[i] >= 'A' && name.p[i] <= 'Z' ? name.p[i] + 32 : name.p[i]);
    low[name.n] = 0;
    if (!strstr(low, "phi-3") && !strstr(low, "phi3"))
        return 0;
    if (!(t->strip = calloc((size_t)t->vocab.n, 1)))
        return OM_ENOMEM;
    for (int i = 0; i < t->n_special; i++)
        t->strip[t->special[i]] = STRIP_RIGHT;
    set_strip(t, "</s>", 1);
    set_strip(t, "<unk>", 0);
    set_strip(t, "<s>", 0);
    set_strip(t, "<|endoftext|>", 0);
    return 0;
}

static void add_eog(om_tokenizer *t, int32_t id)
{
    if (id < 0 || t->n_eog == OM_TOK_MAX_EOG)
        return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return;
    t->eog[t->n_eog++] = id;
}

static void build_eog(om_tokenizer *t)
{
    static const char *const turn_end[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>",
                                            "<end_of_turn>" };
    add_eog(t, t->sp.eos);
    add_eog(t, t->sp.eot);
    for (size_t i = 0; i < sizeof(turn_end) / sizeof(turn_end[0]); i++) {
        int id = om_strtab_find(&t->vocab, turn_end[i], strlen(turn_end[i]));
        if (id >= 0 && t->type[id] == OM_TOKT_CONTROL) {
            add_eog(t, id);
            if (t->sp.eot < 0 && i < 3)
                t->sp.eot = id;
        }
    }
}

static int load_vocab(om_tokenizer *t, const om_gguf *g, char *err, size_t errlen)
{
    const om_gguf_kv *kv;
    int rc = om_gguf_get_arr(g, "tokenizer.ggml.tokens", &kv);
    if (rc < 0)
        FAIL(rc, "tokenizer.ggml.tokens: %s", rc == OM_ENOENT ? "missing" : "not an array");
    if (kv->arr_n == 0)
        FAIL(OM_EFORMAT, "tokenizer.ggml.tokens: empty");
    if ((rc = load_strings(&t->vocab, kv, "tokenizer.ggml.tokens", OM_TOK_MAX_VOCAB, err, errlen)) < 0)
        return rc;
    int n = t->vocab.n;
    t->score = calloc((size_t)n, sizeof(*t->score));
    t->type = malloc((size_t)n);
    if (!t->score || !t->type)
        FAIL(OM_ENOMEM, "tokenizer: out of memory");
    memset(t->type, OM_TOKT_NORMAL, (size_t)n);
    if (om_gguf_get_arr(g, "tokenizer.ggml.scores", &kv) == 0) {
        if (kv->arr_type != OM_GGUF_F32 || kv->arr_n != (uint64_t)n)
            FAIL(OM_EFORMAT, "tokenizer.ggml.scores: want %d f32 values", n);
        for (int i = 0; i < n; i++)
            om_gguf_arr_f32(kv, (uint64_t)i, &t->score[i]);
    }
    if (om_gguf_get_arr(g, "tokenizer.ggml.token_type", &kv) == 0) {
        if (kv->arr_type != OM_GGUF_I32 || kv->arr_n != (uint64_t)n)
            FAIL(OM_EFORMAT, "tokenizer.ggml.token_type: want %d i32 values", n);
        for (int i = 0; i < n; i++) {
            int32_t ty;
            om_gguf_arr_i32(kv, (uint64_t)i, &ty);
            if (ty < OM_TOKT_NORMAL || ty > OM_TOKT_BYTE)
                FAIL(OM_EFORMAT, "tokenizer.ggml.token_type[%d] = %d is not a token type (1..6)", i, ty);
            t->type[i] = (uint8_t)ty;
        }
    }
    return om_strtab_build(&t->vocab, 0);
fail:
    return rc;
}

static void spm_bytes(om_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char hex[8];
        int n = snprintf(hex, sizeof(hex), "<0x%02X>", b);
        int id = om_strtab_find(&t->vocab, hex, (size_t)n);
        if (id < 0) {
            char c = (char)b;
            id = om_strtab_find(&t->vocab, &c, 1);
        }
        t->byte_tok[b] = id >= 0 ? id : t->sp.unk;
    }
}

int om_tokenizer_from_gguf(om_tokenizer **out, const om_gguf *g, char *err, size_t errlen)
{
    *out = NULL;
    om_tokenizer *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "tokenizer: out of memory");
        return OM_ENOMEM;
    }
    om_gguf_str s;
    int rc = om_gguf_get_str(g, "tokenizer.ggml.model", &s);
    if (rc < 0)
        FAIL(rc, "tokenizer.ggml.model: %s", rc == OM_ENOENT ? "missing" : "not a string");
    if (str_eq(s, "llama"))
        t->model = OM_TOK_SPM;
    else if (str_eq(s, "gpt2"))
        t->model = OM_TOK_BPE;
    else
        FAIL(OM_EUNSUPPORTED, "tokenizer.ggml.model '%.*s' is not supported (llama, gpt2)",
             (int)(s.n > 64 ? 64 : s.n), s.p);
    t->sp = (om_tok_special){ -1, -1, -1, -1, -1, 0, 0, 0 };
    if (t->model == OM_TOK_BPE) {
        rc = om_gguf_get_str(g, "tokenizer.ggml.pre", &s);
        if (rc == OM_ENOENT)
            s = (om_gguf_str){ "default", 7 };
        else if (rc < 0)
            FAIL(rc, "tokenizer.ggml.pre: not a string");
        if (str_eq(s, "default") || str_eq(s, "gpt-2"))
            t->pre = PRE_GPT2;
        else if (str_eq(s, "llama-bpe") || str_eq(s, "llama3")) {
            t->pre = PRE_LLAMA3;
            t->ignore_merges = 1;
            t->sp.add_bos = 1;
        } else if (str_eq(s, "smollm"))
            t->pre = PRE_SMOLLM;
        else
            FAIL(OM_EUNSUPPORTED, "tokenizer.ggml.pre '%.*s' is not supported "
                 "(default, gpt-2, llama-bpe, llama3, smollm)", (int)(s.n > 64 ? 64 : s.n), s.p);
    } else {
        t->sp = (om_tok_special){ 1, 2, 0, -1, -1, 1, 0, 1 };    /* llama.cpp's SPM defaults */
    }
    if ((rc = load_vocab(t, g, err, errlen)) < 0)
        goto fail;
    int n = t->vocab.n;
    if (t->model == OM_TOK_SPM) {
        /* The defaults only stand when the vocabulary is big enough to hold them. */
        if (t->sp.eos >= n) t->sp.eos = -1;
        if (t->sp.bos >= n) t->sp.bos = -1;
    }
    if ((rc = load_id(g, "tokenizer.ggml.bos_token_id", n, &t->sp.bos, err, errlen)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.eos_token_id", n, &t->sp.eos, err, errlen)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.unknown_token_id", n, &t->sp.unk, err, errlen)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.padding_token_id", n, &t->sp.pad, err, errlen)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.eot_token_id", n, &t->sp.eot, err, errlen)) < 0 ||
        (rc = load_flag(g, "tokenizer.ggml.add_bos_token", &t->sp.add_bos, err, errlen)) < 0 ||
        (rc = load_flag(g, "tokenizer.ggml.add_eos_token", &t->sp.add_eos, err, errlen)) < 0 ||
        (rc = load_flag(g, "tokenizer.ggml.add_space_prefix", &t->sp.add_space_prefix, err, errlen)) < 0)
        goto fail;
    if (t->model == OM_TOK_BPE)
        t->sp.add_space_prefix = 0;
    if ((t->sp.add_bos && t->sp.bos < 0) || (t->sp.add_eos && t->sp.eos < 0))
        FAIL(OM_EFORMAT, "tokenizer.ggml.add_%s_token is set but there is no %s token id",
             t->sp.add_bos && t->sp.bos < 0 ? "bos" : "eos", t->sp.add_bos && t->sp.bos < 0 ? "bos" : "eos");
    if (t->model == OM_TOK_BPE) {
        const om_gguf_kv *kv;
        rc = om_gguf_get_arr(g, "tokenizer.ggml.merges", &kv);
        if (rc < 0)
            FAIL(rc, "tokenizer.ggml.merges: %s (required for gpt2)", rc == OM_ENOENT ? "missing" : "not an array");
        if ((rc = load_strings(&t->merges, kv, "tokenizer.ggml.merges", OM_TOK_MAX_MERGES, err, errlen)) < 0 ||
            (rc = om_strtab_build(&t->merges, 1)) < 0)
            goto fail;
    } else {
        spm_bytes(t);
    }
    if ((rc = build_special(t)) < 0 || (rc = build_strip(t, g)) < 0)
        FAIL(rc, "tokenizer: out of memory");
    build_eog(t);
    rc = om_gguf_get_str(g, "tokenizer.chat_template", &s);
    if (rc == 0) {
        if (s.n > OM_TOK_MAX_TEXT)
            FAIL(OM_ERANGE, "tokenizer.chat_template: %llu bytes exceed the limit", (unsigned long long)s.n);
        if (!(t->chat_template = malloc(s.n + 1)))
            FAIL(OM_ENOMEM, "tokenizer: out of memory");
        memcpy(t->chat_template, s.p, s.n);
        t->chat_template[s.n] = 0;
    } else if (rc != OM_ENOENT) {
        FAIL(rc, "tokenizer.chat_template: not a string");
    }
    *out = t;
    return 0;
fail:
    om_tokenizer_close(t);
    return rc;
}

int om_tokenizer_open(om_tokenizer **out, const char *path, char *err, size_t errlen)
{
    om_gguf *g;
    *out = NULL;
    int rc = om_gguf_open(&g, path, NULL, err, errlen);
    if (rc < 0)
        return rc;
    rc = om_tokenizer_from_gguf(out, g, err, errlen);
    om_gguf_close(g);
    return rc;
}

void om_tokenizer_close(om_tokenizer *t)
{
    if (!t)
        return;
    om_strtab_free(&t->vocab);
    om_strtab_free(&t->merges);
    free(t->score);
    free(t->type);
    free(t->strip);
    free(t->special);
    free(t->chat_template);
    free(t);
}

int om_tokenizer_model(const om_tokenizer *t) { return t->model; }
int om_tokenizer_n_vocab(const om_tokenizer *t) { return t->vocab.n; }
const om_tok_special *om_tokenizer_special(const om_tokenizer *t) { return &t->sp; }
const char *om_tokenizer_chat_template(const om_tokenizer *t) { return t->chat_template; }

int om_tokenizer_find(const om_tokenizer *t, const char *text, size_t len)
{
    return om_strtab_find(&t->vocab, text, len);
}

const char *om_token_text(const om_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->vocab.n) {
        *len = 0;
        return NULL;
    }
    *len = t->vocab.len[id];
    return t->vocab.arena + t->vocab.off[id];
}

int om_token_type(const om_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->vocab.n ? t->type[id] : 0;
}

int om_token_is_eog(const om_tokenizer *t, int32_t id)
{
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return 1;
    return 0;
}
