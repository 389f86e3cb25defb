/* vqa.c: request media -> sampled frames -> video tokens -> LLM rows / joint vector. */
#include "vqa.h"
#include "om_bind.h"
#include "om_media.h"
#include "om_videnc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct om_vqa {
    om_videnc *enc;
    om_bind   *proj, *head;
    int        max_frames;       /* the pack's frames */
    int        size, crop;       /* frames are sampled at size x size */
    int        n_rows, width;    /* video tokens */
    int        local;
    char       protocols[128];
    float     *tokens;           /* [n_rows, width] */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void om_vqa_close(om_vqa *v)
{
    if (!v)
        return;
    om_bind_close(v->head);
    om_bind_close(v->proj);
    om_videnc_close(v->enc);
    free(v->tokens);
    free(v);
}

int om_vqa_open(om_vqa **out, om_gpu *gpu, const om_config *cfg, const om_pack *p, int parts,
                char *err, size_t errlen)
{
    *out = NULL;
    if (!om_pack_has_video(p)) {
        snprintf(err, errlen, "pack %s has no video encoder ([video] vision, model)", p->dir);
        return OM_ENOENT;
    }
    if (((parts & OM_VQA_PROJECTION) && !p->video_projection[0]) || ((parts & OM_VQA_HEAD) && !p->video_head[0])) {
        snprintf(err, errlen, "pack %s has no [video] %s", p->dir,
                 (parts & OM_VQA_PROJECTION) && !p->video_projection[0] ? "projection" : "head");
        return OM_ENOENT;
    }
    om_vqa *v = calloc(1, sizeof *v);
    if (!v)
        return OM_ENOMEM;
    v->max_frames = p->video_frames;
    v->local = cfg->media_local;
    om_media_policy_protocols(cfg, v->protocols, sizeof v->protocols);
    int rc = om_videnc_open(&v->enc, gpu, p->video_vision, p->video_model, p->video_frames, err, errlen);
    if (!rc) {
        const om_vit_hparams *vh = om_videnc_vit_hparams(v->enc);
        const om_qformer_hparams *qh = om_videnc_video_hparams(v->enc);
        v->size = vh->image_size;
        v->crop = vh->resize == OM_VIT_RESIZE_CROP;
        v->n_rows = qh->n_query;
        v->width = qh->n_embd;
        if (!(v->tokens = malloc(sizeof *v->tokens * (size_t)v->n_rows * (size_t)v->width)))
            rc = OM_ENOMEM;
    }
    if (!rc && (parts & OM_VQA_PROJECTION)) {
        rc = om_bind_open(&v->proj, gpu, p->video_projection, v->n_rows, err, errlen);
        if (!rc && (!om_bind_get_hparams(v->proj)->has_proj ||
                    om_bind_get_hparams(v->proj)->proj_in != v->width)) {
            snprintf(err, errlen, "%s: no projection from the video tokens' width %d", p->video_projection,
                     v->width);
            rc = OM_EINVAL;
        }
    }
    if (!rc && (parts & OM_VQA_HEAD)) {
        rc = om_bind_open(&v->head, gpu, p->video_head, 1, err, errlen);
        const om_bind_hparams *bh = rc ? NULL : om_bind_get_hparams(v->head);
        if (bh && (!bh->has_head || bh->n_embd != v->width || bh->token >= v->n_rows)) {
            snprintf(err, errlen, "%s: no head over %d video tokens of width %d", p->video_head, v->n_rows,
                     v->width);
            rc = OM_EINVAL;
        }
    }
    if (rc) {
        om_vqa_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

int om_vqa_n_rows(const om_vqa *v) { return v->n_rows; }
int om_vqa_llm_width(const om_vqa *v) { return v->proj ? om_bind_get_hparams(v->proj)->llm_width : 0; }
int om_vqa_joint_dim(const om_vqa *v) { return v->head ? om_bind_get_hparams(v->head)->joint_dim : 0; }

int om_vqa_has_media(const om_req *req)
{
    return req->args.type == MSGPACK_OBJECT_MAP &&
           (om_map_get(&req->args, "video") || om_map_get(&req->args, "image"));
}

/* Opens args.video / args.image: a URL string under the media policy, or bytes. */
static int open_media(om_vqa *v, const om_req *req, const char *key, om_media **src, om_sink *sink)
{
    char err[512] = "", url[2048];
    om_media_opts opts;
    om_media_opts_default(&opts);
    opts.protocols = v->protocols;
    const msgpack_object *o = om_map_get(&req->args, key);
    int rc;
    if (o->type == MSGPACK_OBJECT_STR) {
        if ((rc = om_req_arg_strcpy(req, key, url, sizeof url, err, sizeof err)))
            return om_sink_fail(sink, rc, "%s", err);
        if (!om_media_policy_url_allowed(v->local, url))
            return om_sink_fail(sink, OM_EINVAL, "args.%s: '%.256s': local files, devices and lavfi are not "
                                "allowed (media.local = off)", key, url);
        rc = om_media_open(src, url, &opts, err, sizeof err);
    } else {
        om_frame f;
        if ((rc = om_req_arg_frame(req, key, &f, err, sizeof err)))
            return om_sink_fail(sink, rc, "%s (expected bytes {\"frame\": k} or a URL string)", err);
        rc = om_media_open_mem(src, f.data, f.size, &opts, err, sizeof err);
    }
    return rc ? om_sink_fail(sink, rc, "args.%s: %s", key, err) : 0;
}

int om_vqa_encode(om_vqa *v, const om_req *req, om_sink *sink, float *rows, float *joint, om_vqa_result *res)
{
    char err[256];
    const char *key = om_map_get(&req->args, "video") ? "video" : "image";
    if (om_map_get(&req->args, "video") && om_map_get(&req->args, "image"))
        return om_sink_fail(sink, OM_EINVAL, "args: give video or image, not both");
    int n = !strcmp(key, "image") ? 1 : v->max_frames;
    int64_t i64;
    int rc = om_req_arg_i64(req, "frames", &i64, err, sizeof err);
    if (rc == 0) {
        if (i64 < 1 || i64 > v->max_frames)
            return om_sink_fail(sink, OM_ERANGE, "args.frames = %lld is outside [1, %d]", (long long)i64,
                                v->max_frames);
        if (!strcmp(key, "video"))
            n = (int)i64;
    } else if (rc != OM_ENOENT) {
        return om_sink_fail(sink, rc, "%s", err);
    }
    memset(res, 0, sizeof *res);
    res->modality = key;
    double t0 = now_ms();
    om_media *src = NULL;
    if ((rc = open_media(v, req, key, &src, sink)))
        return rc;
    om_media_frame *frames = NULL;
    int got = 0;
    om_media_size size = { v->size, v->size, v->crop };
    rc = om_media_sample_frames(src, n, 0, &size, &frames, &got);
    if (!rc && got == 0)
        rc = om_sink_fail(sink, OM_EFORMAT, "args.%s: no frame could be decoded", key);
    else if (rc)
        om_sink_fail(sink, rc, "args.%s: %s", key, om_media_last_error(src));
    om_media_close(src);
    if (rc) {
        om_media_frames_free(frames, got);
        return rc;
    }
    res->n_frames = got;
    double t1 = now_ms();
    res->sample_ms = t1 - t0;
    const uint8_t *rgb[OM_PACK_MAX_FRAMES];
    int w[OM_PACK_MAX_FRAMES], h[OM_PACK_MAX_FRAMES], stride[OM_PACK_MAX_FRAMES];
    for (int i = 0; i < got; i++) {
        rgb[i] = frames[i].rgb;
        w[i] = frames[i].width;
        h[i] = frames[i].height;
        stride[i] = frames[i].width * 3;
    }
    rc = om_videnc_encode_rgb(v->enc, rgb, w, h, stride, got, v->tokens);
    om_media_frames_free(frames, got);
    if (rc)
        return om_sink_fail(sink, rc, "video encoder: %s", om_videnc_last_error(v->enc));
    if (rows && (rc = om_bind_project(v->proj, v->tokens, v->n_rows, rows)))
        return om_sink_fail(sink, rc, "projection: %s", om_bind_last_error(v->proj));
    if (joint && (rc = om_bind_head(v->head, v->tokens, 1, v->n_rows, joint)))
        return om_sink_fail(sink, rc, "head: %s", om_bind_last_error(v->head));
    res->encode_ms = now_ms() - t1;
    return 0;
}
