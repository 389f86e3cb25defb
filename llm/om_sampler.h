/* om_sampler.h: choosing the next token from logits, and stop strings.
 *
 * The sampler owns its scratch (n_vocab candidates), the recent-token window for the
 * repetition penalty and its PRNG state. The chain, in llama.cpp's default order:
 *   repetition penalty (CTRL-style, over the last repeat_last_n accepted tokens, each
 *   token once: logit > 0 ? logit / penalty : logit * penalty)
 *   -> greedy (temperature <= 0: argmax, lowest id on ties; the rest is skipped)
 *   -> top-k -> top-p (smallest prefix of the sorted softmax reaching p) -> min-p
 *   (keep p_i >= min_p * p_max) -> temperature (logits / T) -> softmax -> draw.
 * The PRNG is xoshiro256** (Blackman & Vigna) seeded through splitmix64: the same seed
 * and the same logits give the same tokens on every platform. NaN logits count as -inf.
 *
 * The stopper (om_stop) watches detokenized text for stop strings across token
 * boundaries: text that could still be the start of a stop string, or an incomplete
 * UTF-8 sequence, is held back until it is decided. */
#ifndef OM_SAMPLER_H
#define OM_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct om_sampler_params {
    float    temperature;           /* <= 0: greedy */
    int      top_k;                 /* <= 0: off */
    float    top_p;                 /* >= 1: off */
    float    min_p;                 /* <= 0: off */
    float    repeat_penalty;        /* 1: off; must be > 0 */
    int      repeat_last_n;         /* window of accepted tokens, 0..OM_SAMPLER_MAX_WINDOW */
    int      max_tokens;            /* om_sampler_accept reports the limit; <= 0: none */
    uint64_t seed;
} om_sampler_params;

#define OM_SAMPLER_MAX_WINDOW 65536

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.0, last_n 64. */
om_sampler_params om_sampler_default_params(void);

typedef struct om_sampler om_sampler;

/* OM_EINVAL for a parameter out of range (n_vocab 1..2^22, penalty <= 0, NaN). */
int  om_sampler_open(om_sampler **out, const om_sampler_params *p, int n_vocab);
void om_sampler_close(om_sampler *s);
/* Forgets accepted tokens and reseeds. */
void om_sampler_reset(om_sampler *s);

/* The distribution the chain leaves: up to max candidates (ids, probs), most probable
 * first; returns their count. Does not advance the PRNG. */
int  om_sampler_dist(om_sampler *s, const float *logits, int32_t *ids, float *probs, int max);
/* Runs the chain and draws one token into *token. */
int  om_sampler_sample(om_sampler *s, const float *logits, int32_t *token);
/* Records a generated token (for the penalty window and max_tokens). Returns 1 when
 * max_tokens have now been accepted, else 0; OM_EINVAL for an id outside the vocabulary. */
int  om_sampler_accept(om_sampler *s, int32_t token);

/* ---- stop strings ---- */
typedef struct om_stop om_stop;

#define OM_STOP_MAX      16         /* stop strings */
#define OM_STOP_MAX_LEN  256        /* bytes each */

int  om_stop_open(om_stop **out, const char *const *stops, int n);
void om_stop_close(om_stop *s);
/* Adds a token's text. Writes to out the bytes now safe to show (at most
 * n + OM_STOP_MAX_LEN + 3 bytes; out_size must allow that), sets *n_out, and returns 1
 * when a stop string has appeared (the text before it is emitted, the rest dropped;
 * later calls emit nothing), else 0. */
int  om_stop_feed(om_stop *s, const char *text, size_t n, char *out, size_t out_size, size_t *n_out);
/* End of generation without a stop: the held-back bytes (< OM_STOP_MAX_LEN + 3). */
size_t om_stop_flush(om_stop *s, char *out, size_t out_size);

#endif
