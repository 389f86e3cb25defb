/* tokenizer_spm.c: SentencePiece-style tokenization of one text fragment, as llama.cpp's
 * llm_tokenizer_spm: spaces become U+2581 (with one more in front when prefix_space),
 * the text is split into UTF-8 characters, and the adjacent pair whose concatenation is
 * the highest-scoring token is merged (leftmost on ties) until no pair is a token.
 * What is left and is not a token is emitted byte by byte as <0xXX> tokens. */
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "tokenizer_impl.h"

typedef struct session {
    const om_tokenizer *t;
    const char *s;
} session;

/* A pair merges when its concatenation is a token; the higher that token's score, the
 * sooner. */
static int token_score(void *ctx, const om_tok_sym *l, const om_tok_sym *r, double *prio)
{
    const session *ss = ctx;
    int id = om_strtab_find(&ss->t->vocab, ss->s + l->off, (size_t)l->n + r->n);
    if (id < 0)
        return 0;
    *prio = ss->t->score[id];
    return 1;
}

/* A final symbol: its token, or its bytes. (llama.cpp's resegment also consults the
 * merge history, but only for texts that are tokens, which are found directly.) */
static int emit(const session *ss, const om_tok_sym *y, i32vec *out)
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
    om_tok_sym *syms = malloc((n + 1) * sizeof(*syms));
    session ss = { t, s };
    om_tok_heap q = { 0 };
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
    int ns = om_tok_split_utf8(syms, s, n);
    rc = om_tok_merge(syms, ns, &q, token_score, &ss);
    for (int i = ns > 0 ? 0 : -1; rc == 0 && i != -1; i = syms[i].next)
        rc = emit(&ss, &syms[i], out);
done:
    free(q.v);
    free(syms);
    free(s);
    return rc;
}
