/* om_qformer.h: the Q-Former: learned query tokens that read encoder features through
 * cross-attention (HF Blip2QFormerModel semantics: embedding LayerNorm on the queries,
 * BERT post-LN layers, self-attention, cross-attention every cross_attention_frequency
 * layers starting at layer 0, the queries' GELU FFN). Read from GGUF with architecture
 * "qformer", "blip2" or "video-qformer" (docs/MODELS_GGUF.md).
 *
 * The video Q-Former of Video-LLaMA is the same model plus frame position embeddings:
 * om_qformer_encode_video adds row t to every token of frame t and lets the queries
 * attend over all frames' tokens as one sequence -> M video tokens.
 * Owns its device weights and one forward's activations. Not thread-safe. */
#ifndef OM_QFORMER_H
#define OM_QFORMER_H

#include <stddef.h>
#include <stdint.h>

#include "om_gpu.h"

typedef struct om_qformer om_qformer;

typedef struct om_qformer_hparams {
    int   n_embd, n_ff, n_layer, n_head;
    int   n_query;               /* learned query tokens */
    int   encoder_width;         /* width of the features cross-attention reads */
    int   cross_freq;            /* layer i cross-attends when i % cross_freq == 0 */
    int   n_frames;              /* frame position rows (video Q-Former); 0: none */
    float eps;
} om_qformer_hparams;

typedef struct om_qformer_opts {
    int max_batch;               /* items per forward (default 8); larger calls are split */
    int max_tokens;              /* encoder tokens per forward, all items together (default
                                    4096, at most 65535): bounds one item's (one video's) tokens */
} om_qformer_opts;

int  om_qformer_open(om_qformer **out, om_gpu *gpu, const char *path, const om_qformer_opts *opts,
                     char *err, size_t errlen);
void om_qformer_close(om_qformer *q);
const om_qformer_hparams *om_qformer_get_hparams(const om_qformer *q);
const char *om_qformer_last_error(const om_qformer *q);

/* enc: [B, n_tok, encoder_width] features of B items; query: NULL for the learned query
 * tokens, or [n_query, n_embd] query embeddings used for every item. out: [B, n_query,
 * n_embd], the last hidden state. */
int  om_qformer_encode(om_qformer *q, const float *enc, int B, int n_tok, const float *query, float *out);

/* One video: frames [n_frames, n_tok, encoder_width] (per-frame Q-Former outputs), at
 * most hparams.n_frames frames. out: [n_query, n_embd]. OM_EUNSUPPORTED when the file
 * has no frame position embeddings. */
int  om_qformer_encode_video(om_qformer *q, const float *frames, int n_frames, int n_tok, float *out);

#endif
