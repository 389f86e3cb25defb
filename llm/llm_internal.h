/* llm_internal.h: the om_llm struct shared by loading (model.c) and the forward pass
 * (forward.c). Not part of the public API. */
#ifndef OM_LLM_INTERNAL_H
#define OM_LLM_INTERNAL_H

#include "om_gguf.h"
#include "om_llm.h"
#include "om_ops.h"

#include <time.h>

/* Matrices read by the same input are stacked (rows of one after the other's) so one
 * matmul dispatch computes them all; K and V share a cache so one copy appends both. */
typedef struct om_llm_layer {
    om_tensor attn_norm, wqkv, wo;       /* wqkv: {n_embd, q_dim + 2 kv_dim}, Q rows, K, V */
    om_tensor ffn_norm, w_gate_up, w_down;   /* w_gate_up: {n_embd, 2 n_ff}, gate rows, up */
    om_tensor kv_cache;                  /* F16 {head_dim, 2 n_head_kv, n_ctx}: K heads, V heads */
} om_llm_layer;

struct om_llm {
    om_gpu          *gpu;
    om_gguf         *gguf;               /* open while loading only */
    om_llm_hparams   hp;
    int              n_batch;
    om_tensor        tok_embd, output_norm, output;
    om_tensor        rope_freqs;         /* F32 {n_rot/2} (Llama 3.1+), valid when has_rope_freqs */
    int              has_rope_freqs;
    om_llm_layer    *layers;
    om_buf         **bufs;               /* every weight/cache buffer, owned */
    int              n_bufs;
    uint64_t         weight_bytes;
    om_arena        *arena;              /* activations of one forward */
    om_buf          *upload;             /* ids, positions, external embedding rows */
    om_buf          *download;           /* logits and hidden states */
    uint64_t         upload_bytes, download_bytes;
    struct om_tokenizer *tok;
    int              n_past;
    int              profile;            /* om_llm_set_profile */
    om_llm_host_times host;              /* of the last forward */
    char             err[512];
};

/* Records and submits one forward of n <= n_batch positions (forward.c). */
int om_llm_forward(om_llm *m, const int32_t *tokens, int n, const float *embd,
                   float *logits, int all_logits, float *hidden);

static inline double llm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif
