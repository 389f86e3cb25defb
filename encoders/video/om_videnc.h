/* om_videnc.h: the visual branch of Video-LLaMA in one object, for "Video QA over files":
 * sampled RGB frames -> preprocessing -> EVA ViT (one batch) -> BLIP-2 Q-Former per frame
 * -> video Q-Former with frame positions -> n_query video tokens. The LLM input rows are
 * then om_bind_project() of those tokens (the video file's llama_proj).
 * Owns the three models it opens (ViT and Q-Former from a blip2 file, the video Q-Former
 * from a video-qformer file) and the host buffers between them. Not thread-safe. */
#ifndef OM_VIDENC_H
#define OM_VIDENC_H

#include <stddef.h>
#include <stdint.h>

#include "om_gpu.h"
#include "om_qformer.h"
#include "om_vit.h"

typedef struct om_videnc om_videnc;

/* max_frames: 0 means the video Q-Former's frame_count. */
int  om_videnc_open(om_videnc **out, om_gpu *gpu, const char *blip2_path, const char *video_path,
                    int max_frames, char *err, size_t errlen);
void om_videnc_close(om_videnc *e);
const char *om_videnc_last_error(const om_videnc *e);
const om_vit_hparams *om_videnc_vit_hparams(const om_videnc *e);
const om_qformer_hparams *om_videnc_video_hparams(const om_videnc *e);

/* n RGB24 frames (frame i: w[i] x h[i], rows of stride[i] bytes) -> out [n_query, n_embd]
 * of the video Q-Former. 1 <= n <= max_frames. */
int  om_videnc_encode_rgb(om_videnc *e, const uint8_t *const *rgb, const int *w, const int *h,
                          const int *stride, int n, float *out);
/* The same from normalised pixels [n, 3, S, S] (frames already preprocessed). */
int  om_videnc_encode_pixels(om_videnc *e, const float *pixels, int n, float *out);

#endif
