/* tokenizer_impl.h: the om_tokenizer struct and helpers shared by tokenizer*.c.
 * Internal to om_llm. */
#ifndef OM_TOKENIZER_IMPL_H
#define OM_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "om_tokenizer.h"

enum { PRE_GPT2, PRE_LLAMA3, PRE_SMOLLM };

/* Whitespace a special token eats on its left/right when cut out of text. */
enum { STRIP_LEFT = 1, STRIP_RIGHT = 2 };

/* Strings in one arena, found by exact text through an open-addressing hash. */
typedef struct strtab {
    char     *arena;
    uint32_t *off, *len;
    int       n;
    int32_t  *slot;                 /* index or -1; size mask + 1 */
    uint32_t  mask;
} strtab;

/* A growable array of int32 (token ids, or word lengths). */
typedef struct i32vec {
    int32_t *v;
    int      n, cap;
} i32vec;

#define OM_TOK_MAX_EOG 8

struct om_tokenizer {
    int            model;           /* enum om_tok_model */
    int            pre;             /* PRE_* (BPE) */
    int            ignore_merges;   /* a word that is a token is taken whole (llama-3) */
    strtab         vocab;           /* id = index */
    float         *score;
    uint8_t       *type;            /* enum om_tok_type */
    uint8_t       *strip;           /* STRIP_* of special tokens, or NULL */
    strtab         merges;          /* "left right", rank = index; first wins */
    int32_t        byte_tok[256];   /* SPM byte fallback, -1 when none */
    int32_t       *special;         /* control/user-defined/unknown ids, longest text first */
    int            n_special;
    int32_t        eog[OM_TOK_MAX_EOG];
    int            n_eog;
    om_tok_special sp;
    char          *chat_template;
};

int  om_strtab_build(strtab *st, int first_wins);
int  om_strtab_find(const strtab *st, const char *s, size_t n);
void om_strtab_free(strtab *st);

int  om_i32vec_push(i32vec *v, int32_t x);

/* Greedy pair merging shared by SPM and BPE. A symbol is a byte range of the text in a
 * doubly linked list; a merged-away symbol has n == 0. */
typedef struct om_tok_sym { int prev, next; uint32_t off, n; } om_tok_sym;

/* A queued merge; size is the pair's length when queued, so a pair made stale by a later
 * merge of either side is recognized and skipped. */
typedef struct om_tok_bigram { int left, right; double prio; uint32_t size; } om_tok_bigram;

typedef struct om_tok_heap { om_tok_bigram *v; int n, cap; } om_tok_heap;

/* Whether l and r may merge: 1 with *prio set (higher merges first), 0 if not, or < 0. */
typedef int (*om_tok_pair_fn)(void *ctx, const om_tok_sym *l, const om_tok_sym *r,
                              double *prio);

/* One symbol per UTF-8 character of s[0..n) (a truncated tail is one); syms holds n.
 * Returns the number of symbols. */
int om_tok_split_utf8(om_tok_sym *syms, const char *s, size_t n);

/* Merges syms[0..ns) pair by pair, highest prio first and the leftmost on ties, until no
 * adjacent pair may merge. q is the caller's scratch heap, emptied first. */
int om_tok_merge(om_tok_sym *syms, int ns, om_tok_heap *q, om_tok_pair_fn pair, void *ctx);

/* Model passes over one raw-text fragment, appending ids to out. */
int om_tok_spm_fragment(const om_tokenizer *t, const char *text, size_t len, int prefix_space,
                        i32vec *out);
int om_tok_bpe_fragment(const om_tokenizer *t, const char *text, size_t len, i32vec *out);

/* GPT-2 byte decoding: the byte a code point of byte-level BPE text stands for, or -1. */
int om_tok_gpt2_byte(uint32_t cpt);

/* Pre-tokenizer: splits cpts[0..n) into words, appending each word's length in code
 * points to words. */
int om_tok_pretokenize(int pre, const uint32_t *cpts, size_t n, i32vec *words);

#endif
