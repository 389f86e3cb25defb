/* om_vit.h: the image encoder: a ViT read from GGUF (general.architecture "clip-vision",
 * "blip2" or "imagebind"; names and keys in docs/MODELS_GGUF.md), in two variants:
 *   clip   HF CLIPVisionModel(WithProjection): patch conv without bias, class token,
 *          position embeddings, pre-LayerNorm, pre-LN blocks with QuickGELU MLP,
 *          post-LayerNorm on the class token, optional visual projection (no bias).
 *          ImageBind's vision trunk is this variant with GELU and eps 1e-6, its head's
 *          LayerNorm and Linear as post-LN and projection (the file also holds the head
 *          for om_bind_head, which adds the L2 normalisation).
 *   blip2  the EVA ViT of BLIP-2 (HF Blip2VisionModel): patch conv with bias, no pre-LN,
 *          GELU, q/v biases only, post-LayerNorm over all tokens (BLIP-2's ln_vision):
 *          those normalised tokens are the features the Q-Former reads.
 * Owns the device weights and one forward's activations; a batch of frames is one
 * recorded command buffer. Also owns the model's preprocessing (RGB -> normalised pixels).
 * Not thread-safe (one om_gpu per thread). */
#ifndef OM_VIT_H
#define OM_VIT_H

#include <stddef.h>
#include <stdint.h>

#include "om_gpu.h"

typedef struct om_vit om_vit;

enum om_vit_variant { OM_VIT_CLIP, OM_VIT_BLIP2 };
enum om_vit_resize  { OM_VIT_RESIZE_CROP, OM_VIT_RESIZE_SQUASH };

typedef struct om_vit_hparams {
    int   variant;               /* enum om_vit_variant */
    int   image_size, patch_size;
    int   n_embd, n_ff, n_layer, n_head;
    int   n_patch, n_tok;        /* (image/patch)^2 and n_patch + 1 */
    int   proj_dim;              /* visual projection width; 0: none */
    int   out_dim;               /* width of om_vit_encode's out: proj_dim or n_embd */
    int   act;                   /* enum om_unary */
    float eps;
    float mean[3], std[3];       /* of pixel values scaled to [0, 1] */
    int   resize;                /* enum om_vit_resize */
} om_vit_hparams;

typedef struct om_vit_opts {
    int max_batch;               /* frames per forward (default 8); larger calls are split */
} om_vit_opts;

/* Reads the ViT of a GGUF file. On failure *out is NULL and err names what was wrong. */
int  om_vit_open(om_vit **out, om_gpu *gpu, const char *path, const om_vit_opts *opts,
                 char *err, size_t errlen);
void om_vit_close(om_vit *v);
const om_vit_hparams *om_vit_get_hparams(const om_vit *v);
uint64_t om_vit_weight_bytes(const om_vit *v);
const char *om_vit_last_error(const om_vit *v);

/* pixels: [B, 3, S, S] normalised (S = image_size). out: [B, out_dim], the projected
 * embedding (clip with projection) or the pooled class token (post-LN; for blip2 HF's
 * pooler output, post-LN applied again to the normalised class token). hidden: NULL or
 * [B, n_tok, n_embd], the last hidden state (clip: encoder output before post-LN, as
 * HF's last_hidden_state; blip2: after post-LN, the Q-Former's input). Either output
 * may be NULL. B >= 1 and at most 4096 frames per call. */
int  om_vit_encode(om_vit *v, const float *pixels, int B, float *out, float *hidden);

/* One packed RGB24 image (rows of `stride` bytes, top first) -> [3, S, S] normalised:
 * clip resizes the shortest side to S and crops the centre, blip2 resizes both sides
 * to S; bicubic (libswscale); then (x/255 - mean) / std. At most 16384 x 16384 and, for
 * the shortest-side resize, an aspect ratio of at most 64:1 (OM_ERANGE). */
int  om_vit_preprocess(om_vit *v, const uint8_t *rgb, int width, int height, int stride,
                       float *out);

#endif
