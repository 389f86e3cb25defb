/* vqa.h: the video path of the daemon, shared by the llm stage (ask with a video or an
 * image) and the vision stage (embed): a request's media (uploaded bytes or a URL, under
 * the media policy) -> uniformly sampled frames (om_media) -> video tokens (om_videnc)
 * -> LLM rows (om_bind_project) and/or a joint-space vector (om_bind_head). Owns the
 * encoder, the bind parts it was asked for and the token buffer; used by one worker. */
#ifndef OM_VQA_H
#define OM_VQA_H

#include "om_daemon_impl.h"
#include "om_gpu.h"

typedef struct om_vqa om_vqa;

enum { OM_VQA_PROJECTION = 1, OM_VQA_HEAD = 2 };

/* Opens the pack's video encoder on gpu, plus its projection and/or head (parts, a mask
 * of OM_VQA_*); each part asked for must be in the pack. */
int  om_vqa_open(om_vqa **out, om_gpu *gpu, const om_config *cfg, const om_pack *p, int parts,
                 char *err, size_t errlen);
void om_vqa_close(om_vqa *v);
/* Rows the encoder makes per clip, and their widths after projection and head. */
int  om_vqa_n_rows(const om_vqa *v);
int  om_vqa_llm_width(const om_vqa *v);
int  om_vqa_joint_dim(const om_vqa *v);

/* Whether the request carries media: args.video or args.image. */
int  om_vqa_has_media(const om_req *req);

typedef struct om_vqa_result {
    const char *modality;        /* "video" or "image" */
    int         n_frames;        /* frames sampled */
    double      sample_ms, encode_ms;
} om_vqa_result;

/* Samples and encodes the request's media (args.video or args.image: bytes as
 * {"frame": k} or a URL string; args.frames: 1..the pack's frames). Then
 * rows [n_rows, llm_width] (OM_VQA_PROJECTION) or joint [joint_dim] (OM_VQA_HEAD) is
 * filled. Failures are reported through om_sink_fail and returned. */
int  om_vqa_encode(om_vqa *v, const om_req *req, om_sink *sink, float *rows, float *joint,
                   om_vqa_result *res);

#endif
