/* om_llm.h: a LLaMA-family LLM from a llama.cpp GGUF file, computed on Vulkan.
 * Owns the model's weights on the device (in the file's own types), the KV cache,
 * the activation arena and the tokenizer read from the file's metadata.
 *
 * Lifecycle: om_llm_open -> (om_llm_eval | om_llm_generate)* -> om_llm_close.
 * One om_llm is used by one thread at a time. */
#ifndef OM_LLM_H
#define OM_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "om_gpu.h"
#include "om_sampler.h"

typedef struct om_llm om_llm;
struct om_tokenizer;

typedef struct om_llm_hparams {
    int   n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
    int   n_ctx_train;           /* llama.context_length */
    int   n_ctx;                 /* the KV cache's length: min(n_ctx_train, opts.n_ctx_max) */
    int   tied_output;           /* output = token_embd (no output.weight) */
    int   ftype;                 /* dominant weight type of the matrices (enum om_type) */
    float rms_eps, rope_base, rope_freq_scale;
} om_llm_hparams;

typedef struct om_llm_opts {
    int n_ctx_max;               /* cap on the KV cache length; 0 = 4096 */
    int n_batch;                 /* tokens per forward in prefill; 0 = 256 */
} om_llm_opts;

/* Loads path onto gpu (which must outlive the model). Refuses architectures other
 * than llama and tensor types other than F32/F16/Q8_0/Q4_0, naming what is supported. */
int  om_llm_open(om_llm **out, om_gpu *gpu, const char *path, const om_llm_opts *opts,
                 char *err, size_t errlen);
void om_llm_close(om_llm *m);
const om_llm_hparams *om_llm_get_hparams(const om_llm *m);
const struct om_tokenizer *om_llm_get_tokenizer(const om_llm *m);
/* Bytes of weights resident on the device (for roofline figures). */
uint64_t om_llm_weight_bytes(const om_llm *m);
/* Bytes of weights one decode step reads: all of them but the token embedding table, of
 * which it gathers one row (unless the table is also the output matrix). */
uint64_t om_llm_decode_weight_bytes(const om_llm *m);

/* A batch for one forward: n positions appended after the cached ones. Position i
 * takes token tokens[i], or, when tokens[i] < 0, the next row of embd (n_embd floats:
 * the multimodal hook that inserts encoder outputs at a placeholder). */
typedef struct om_llm_batch {
    const int32_t *tokens;
    int            n;
    const float   *embd;         /* rows for tokens[i] < 0, in order; may be NULL */
    int            n_embd_rows;
    float         *logits;       /* out: n_vocab per returned position, or NULL */
    int            all_logits;   /* 1: logits of every position; 0: of the last only */
    float         *hidden;       /* out: final-norm hidden state (n_embd) per position, or NULL */
} om_llm_batch;

/* Runs the batch (split into n_batch chunks), appending to the KV cache. Returns
 * OM_ERANGE, with the cache untouched, when it would overflow n_ctx. */
int  om_llm_eval(om_llm *m, const om_llm_batch *b);
/* Positions in the KV cache. */
int  om_llm_n_past(const om_llm *m);
/* Forgets cached positions from n on (0 = everything). */
int  om_llm_truncate(om_llm *m, int n);

/* ---- generation ---- */
enum om_llm_stop_reason { OM_LLM_STOP_EOG, OM_LLM_STOP_MAX_TOKENS, OM_LLM_STOP_STRING,
                          OM_LLM_STOP_CANCELED, OM_LLM_STOP_CTX_FULL };

typedef struct om_llm_gen {
    om_sampler_params sampling;          /* includes max_tokens and seed */
    const char *const *stop;             /* stop strings (<= OM_STOP_MAX), may be NULL */
    int n_stop;
    /* Called for each generated token with the text now safe to show (may be empty
     * while a stop string or a UTF-8 sequence is undecided). Non-zero cancels. */
    int (*on_token)(void *user, int32_t token, const char *text, size_t n);
    void *user;
    /* Signal tokens (NExT-GPT's [IMG0]...): each time one is generated, the final-norm
     * hidden state at its position is stored in signal_hidden (n_embd floats each, room
     * for max_signal), for the output projector of an image decoder. */
    const int32_t *signal_tokens;
    int n_signal_tokens;
    float *signal_hidden;
    int max_signal;
} om_llm_gen;

typedef struct om_llm_stats {
    int    n_prompt, n_gen;
    double prompt_ms, gen_ms;            /* wall time of prefill, of decoding */
    int    stop_reason;                  /* enum om_llm_stop_reason */
    int    n_signal;                     /* hidden states stored in signal_hidden */
} om_llm_stats;

/* Appends the prompt (tokens and embedding rows as in om_llm_batch) to the cache and
 * samples until end-of-generation, max_tokens, a stop string, cancellation, or a full
 * context. stats may be NULL. */
int  om_llm_generate(om_llm *m, const int32_t *prompt, int n_prompt, const float *embd, int n_embd_rows,
                     const om_llm_gen *g, om_llm_stats *stats);

const char *om_llm_last_error(const om_llm *m);

/* ---- profiling ---- */
/* Host-side milliseconds of the last forward: recording the command buffer, submit
 * through the fence wait (includes the device time), copying logits/hidden out. */
typedef struct om_llm_host_times {
    double record_ms, submit_ms, read_ms;
} om_llm_host_times;

/* On: every forward writes a GPU timestamp after each op, labelled by op kind
 * ("start", "rms_norm", "matmul q", ..., "download"; om_gpu_timestamps after the eval
 * reads them). Layers beyond what one recording's timestamps hold get one
 * "layer (unsplit)" mark each. Off (the default) records no timestamps.
 * OM_EUNSUPPORTED when the queue has no timestamps. */
int  om_llm_set_profile(om_llm *m, int on);
void om_llm_get_host_times(const om_llm *m, om_llm_host_times *out);

#endif
