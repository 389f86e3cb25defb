/* The token loop: prefill the prompt, then sample, stream and decode one token at a
 * time. Text reaches the caller only once it can no longer be part of a stop string. */
#include "llm_internal.h"
#include "om_err.h"
#include "om_tokenizer.h"

#include <stdio.h>
#include <stdlib.h>

/* Piece of a token, held back by the stopper as needed; returns 1 on a stop string. */
static int emit(om_llm *m, om_stop *stop, int32_t tok, const om_llm_gen *g, char *piece, size_t piece_size,
                char *out, size_t out_size, int *cancel)
{
    int n = om_token_to_piece(m->tok, tok, 0, piece, piece_size);
    if (n < 0 || (size_t)n > piece_size)
        n = 0;
    size_t n_out = 0;
    int stopped = om_stop_feed(stop, piece, (size_t)n, out, out_size, &n_out);
    if (g->on_token && g->on_token(g->user, tok, out, n_out))
        *cancel = 1;
    return stopped == 1;
}

static int is_signal(const om_llm_gen *g, int32_t tok)
{
    for (int i = 0; i < g->n_signal_tokens; i++)
        if (g->signal_tokens[i] == tok)
            return 1;
    return 0;
}

int om_llm_generate(om_llm *m, const int32_t *prompt, int n_prompt, const float *embd, int n_embd_rows,
                    const om_llm_gen *g, om_llm_stats *stats)
{
    om_llm_stats st = { .n_prompt = n_prompt };
    const int n_vocab = m->hp.n_vocab;
    enum { PIECE = 256 };
    const size_t out_size = PIECE + OM_STOP_MAX_LEN + 4;
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    char *piece = malloc(PIECE), *out = malloc(out_size);
    om_sampler *smp = NULL;
    om_stop *stop = NULL;
    int rc = OM_ENOMEM;
    if (!logits || !piece || !out)
        goto done;
    if ((rc = om_sampler_open(&smp, &g->sampling, n_vocab)) ||
        (rc = om_stop_open(&stop, g->stop, g->n_stop))) {
        snprintf(m->err, sizeof m->err, "invalid sampling parameters or stop strings");
        goto done;
    }
    double t0 = llm_now_ms();
    om_llm_batch b = { .tokens = prompt, .n = n_prompt, .embd = embd, .n_embd_rows = n_embd_rows,
                       .logits = logits };
    if ((rc = om_llm_eval(m, &b)))
        goto done;
    st.prompt_ms = llm_now_ms() - t0;
    t0 = llm_now_ms();
    int cancel = 0;
    for (;;) {
        int32_t tok;
        if ((rc = om_sampler_sample(smp, logits, &tok)))
            goto done;
        if (om_token_is_eog(m->tok, tok)) {
            st.stop_reason = OM_LLM_STOP_EOG;
            break;
        }
        st.n_gen++;
        int at_max = om_sampler_accept(smp, tok), reason = -1;
        if (emit(m, stop, tok, g, piece, PIECE, out, out_size, &cancel))
            reason = OM_LLM_STOP_STRING;
        else if (cancel)
            reason = OM_LLM_STOP_CANCELED;
        else if (at_max == 1)
            reason = OM_LLM_STOP_MAX_TOKENS;
        if (m->n_past >= m->hp.n_ctx) {
            st.stop_reason = reason >= 0 ? reason : OM_LLM_STOP_CTX_FULL;
            break;
        }
        /* A signal token's hidden state is that of its own position: it comes out of
         * the forward that feeds the token back in, so that forward runs even when
         * generation ends here. */
        float *hid = NULL;
        if (g->signal_hidden && st.n_signal < g->max_signal && is_signal(g, tok))
            hid = g->signal_hidden + (size_t)st.n_signal++ * m->hp.n_embd;
        if (reason < 0 || hid) {
            om_llm_batch nb = { .tokens = &tok, .n = 1, .logits = logits, .hidden = hid };
            if ((rc = om_llm_eval(m, &nb)))
                goto done;
        }
        if (reason >= 0) {
            st.stop_reason = reason;
            break;
        }
    }
    if (st.stop_reason != OM_LLM_STOP_STRING && st.stop_reason != OM_LLM_STOP_CANCELED) {
        size_t n = om_stop_flush(stop, out, out_size);
        if (n && g->on_token)
            g->on_token(g->user, -1, out, n);
    }
    st.gen_ms = llm_now_ms() - t0;
    rc = 0;
done:
    if (stats)
        *stats = st;
    om_stop_close(stop);
    om_sampler_close(smp);
    free(out);
    free(piece);
    free(logits);
    return rc;
}
