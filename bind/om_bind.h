/* om_bind.h: the joint embedding space and the bridge to the LLM. Two parts, either or
 * both read from one GGUF (docs/MODELS_GGUF.md, "bind.*"):
 *   head        ImageBind's per-modality head: LayerNorm -> select one token (the class
 *               token) -> Linear to the joint dimension -> L2-normalise -> times an
 *               optional fixed logit scale (audio x20, IMU x5, ...).
 *   projection  a Linear from an encoder's output width to the LLM embedding width
 *               (NExT-GPT's llama_proj, Video-LLaMA's llama_proj, BLIP-2's
 *               language_projection): its rows are LLM input embeddings.
 * Owns its device weights and staging buffers. Not thread-safe. */
#ifndef OM_BIND_H
#define OM_BIND_H

#include <stddef.h>
#include <stdint.h>

#include "om_gpu.h"

typedef struct om_bind om_bind;

typedef struct om_bind_hparams {
    int   has_head;
    int   n_embd;                /* head input width */
    int   joint_dim;             /* head output width */
    int   token;                 /* which token the head reads (0: class token) */
    float eps;
    float logit_scale;           /* 1 when the modality has none */
    char  modality[16];          /* "vision", "audio", ...; "" when unnamed */
    int   has_proj;
    int   proj_in, llm_width;    /* projection: proj_in -> llm_width */
} om_bind_hparams;

/* max_rows bounds one call's rows (head: items, projection: rows); 0: 256. The buffers
 * for that many rows are made here, so a call never allocates device memory. */
int  om_bind_open(om_bind **out, om_gpu *gpu, const char *path, int max_rows, char *err, size_t errlen);
void om_bind_close(om_bind *b);
const om_bind_hparams *om_bind_get_hparams(const om_bind *b);
const char *om_bind_last_error(const om_bind *b);

/* x: [B, n_tok, n_embd] (n_tok > token) -> out [B, joint_dim], unit length times the scale. */
int  om_bind_head(om_bind *b, const float *x, int B, int n_tok, float *out);
/* x: [n, proj_in] -> out [n, llm_width]. */
int  om_bind_project(om_bind *b, const float *x, int n, float *out);

#endif
