/* llm_internal.h: the om_llm struct shared by loading (model.c) and the forward pass
 * (forward.c). Not part of the public API. */
#ifndef OM_LLM_INTERNAL_H
#define OM_LLM_INTERNAL_H

#include "om_gguf.h"
#include "om_llm.h"
#include "om_ops.h"

typedef struct om_llm_layer {
    om_tensor attn_norm, wq, wk, wv, wo;
    om_tensor ffn_norm, w_gate, w_up, w_down;
    om_tensor k_cache, v_cache;          /* F16 {head_dim, n_head_kv, n_ctx} */
} om_llm_layer;

struct om_llm {
    om_gpu          *gpu;
    om_gguf         *gguf;               /* open while loading only */
    om_llm_hparams   hp;
    int              n_batch;
    om_tensor        tok_embd, output_norm, output;
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
    char             err[512];
};

/* Records and submits one forward of n <= n_batch positions (forward.c). */
int om_llm_forward(om_llm *m, const int32_t *tokens, int n, const float *embd,
                   float *logits, int all_logits, float *hidden);

#endif
