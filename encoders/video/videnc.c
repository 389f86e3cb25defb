/* Video-LLaMA's visual branch: frames -> ViT -> Q-Former -> video Q-Former (om_videnc.h). */
#include "om_videnc.h"
#include "om_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct om_videnc {
    om_vit     *vit;
    om_qformer *qf, *vqf;
    int         max_frames;
    float      *pixels;              /* [max_frames, 3, S, S] */
    float      *feats;               /* [max_frames, n_tok, vit width] */
    float      *tokens;              /* [max_frames, n_query, qformer width] */
    char        err[512];
};

static int fail(om_videnc *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
    return code;
}

/* The models must chain: ViT width = Q-Former encoder width, Q-Former width = video encoder width. */
static int check_chain(om_videnc *e)
{
    const om_vit_hparams *v = om_vit_get_hparams(e->vit);
    const om_qformer_hparams *q = om_qformer_get_hparams(e->qf), *vq = om_qformer_get_hparams(e->vqf);
    if (v->variant != OM_VIT_BLIP2)
        return fail(e, OM_EFORMAT, "the ViT is not the blip2 variant (its features must be post-LN tokens)");
    if (q->encoder_width != v->n_embd)
        return fail(e, OM_EFORMAT, "Q-Former reads width %d but the ViT gives %d", q->encoder_width, v->n_embd);
    if (vq->encoder_width != q->n_embd)
        return fail(e, OM_EFORMAT, "video Q-Former reads width %d but the Q-Former gives %d", vq->encoder_width,
                    q->n_embd);
    if (!vq->n_frames)
        return fail(e, OM_EFORMAT, "the video Q-Former has no frame position embeddings");
    return 0;
}

int om_videnc_open(om_videnc **out, om_gpu *gpu, const char *blip2_path, const char *video_path, int max_frames,
                   char *err, size_t errlen)
{
    *out = NULL;
    om_videnc *e = calloc(1, sizeof *e);
    if (!e)
        return OM_ENOMEM;
    int rc;
    if (!(rc = om_vit_open(&e->vit, gpu, blip2_path, NULL, e->err, sizeof e->err)) &&
        !(rc = om_qformer_open(&e->qf, gpu, blip2_path, NULL, e->err, sizeof e->err)) &&
        !(rc = om_qformer_open(&e->vqf, gpu, video_path, NULL, e->err, sizeof e->err)) &&
        !(rc = check_chain(e))) {
        const om_vit_hparams *v = om_vit_get_hparams(e->vit);
        const om_qformer_hparams *q = om_qformer_get_hparams(e->qf);
        int nf = om_qformer_get_hparams(e->vqf)->n_frames;
        e->max_frames = max_frames > 0 && max_frames < nf ? max_frames : nf;
        size_t F = (size_t)e->max_frames, S = (size_t)v->image_size;
        e->pixels = malloc(F * 3 * S * S * sizeof *e->pixels);
        e->feats = malloc(F * v->n_tok * v->n_embd * sizeof *e->feats);
        e->tokens = malloc(F * q->n_query * q->n_embd * sizeof *e->tokens);
        if (!e->pixels || !e->feats || !e->tokens)
            rc = fail(e, OM_ENOMEM, "out of memory for %d frames", e->max_frames);
    }
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s", e->err[0] ? e->err : om_strerror(rc));
        om_videnc_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

void om_videnc_close(om_videnc *e)
{
    if (!e)
        return;
    om_vit_close(e->vit);
    om_qformer_close(e->qf);
    om_qformer_close(e->vqf);
    free(e->pixels);
    free(e->feats);
    free(e->tokens);
    free(e);
}

const char *om_videnc_last_error(const om_videnc *e) { return e->err; }
const om_vit_hparams *om_videnc_vit_hparams(const om_videnc *e) { return om_vit_get_hparams(e->vit); }
const om_qformer_hparams *om_videnc_video_hparams(const om_videnc *e) { return om_qformer_get_hparams(e->vqf); }

int om_videnc_encode_pixels(om_videnc *e, const float *pixels, int n, float *out)
{
    if (!pixels || !out || n < 1 || n > e->max_frames)
        return fail(e, OM_EINVAL, "%d frames (expected 1..%d)", n, e->max_frames);
    const om_vit_hparams *v = om_vit_get_hparams(e->vit);
    const om_qformer_hparams *q = om_qformer_get_hparams(e->qf);
    int rc = om_vit_encode(e->vit, pixels, n, NULL, e->feats);
    if (rc)
        return fail(e, rc, "ViT: %s", om_vit_last_error(e->vit));
    if ((rc = om_qformer_encode(e->qf, e->feats, n, v->n_tok, NULL, e->tokens)))
        return fail(e, rc, "Q-Former: %s", om_qformer_last_error(e->qf));
    if ((rc = om_qformer_encode_video(e->vqf, e->tokens, n, q->n_query, out)))
        return fail(e, rc, "video Q-Former: %s", om_qformer_last_error(e->vqf));
    return 0;
}

int om_videnc_encode_rgb(om_videnc *e, const uint8_t *const *rgb, const int *w, const int *h, const int *stride,
                         int n, float *out)
{
    if (!rgb || !w || !h || !stride || n < 1 || n > e->max_frames)
        return fail(e, OM_EINVAL, "%d frames (expected 1..%d)", n, e->max_frames);
    const size_t S = (size_t)om_vit_get_hparams(e->vit)->image_size;
    for (int i = 0; i < n; i++) {
        int rc = om_vit_preprocess(e->vit, rgb[i], w[i], h[i], stride[i], e->pixels + (size_t)i * 3 * S * S);
        if (rc)
            return fail(e, rc, "frame %d: %s", i, om_vit_last_error(e->vit));
    }
    return om_videnc_encode_pixels(e, e->pixels, n, out);
}
