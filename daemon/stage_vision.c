/* stage_vision.c: the vision stage over vqa.h. Op:
 *   embed {video | image: bytes {"frame": k} or a URL string, frames?}
 * Reply: embedding {modality, tensor f32 [joint_dim], frame 1} (unit length: the pack's
 * [video] head), then done with timings (sample_ms, encode_ms) and usage (frames).
 * Each worker owns a device context and the pack's video encoder and head. */
#include "vqa.h"

#include <stdlib.h>
#include <string.h>

static const char *const vision_ops[] = { "embed", NULL };

typedef struct vision_state {
    om_gpu *gpu;
    om_vqa *vqa;
    float  *joint;
    char    why[768];            /* why the stage cannot serve, when vqa is NULL */
} vision_state;

static void vision_fini(void *state)
{
    vision_state *s = state;
    if (!s)
        return;
    om_vqa_close(s->vqa);
    if (s->gpu && om_gpu_validation_errors(s->gpu))
        om_log(OM_LOG_ERROR, "vision", "%d Vulkan validation errors", om_gpu_validation_errors(s->gpu));
    om_gpu_close(s->gpu);
    free(s->joint);
    free(s);
}

static int vision_init(const om_config *cfg, void **state)
{
    vision_state *s = calloc(1, sizeof *s);
    if (!s)
        return OM_ENOMEM;
    *state = s;
    /* Without a pack the stage still runs and answers why: the daemon's other stages
     * stay available. */
    if (!cfg->pack_dir[0]) {
        snprintf(s->why, sizeof s->why, "no model pack is configured: start omnid with --pack DIR "
                 "(or --set pack.dir=DIR); tools/mkpack.py writes a tiny random one");
        return 0;
    }
    om_pack p;
    char err[640];
    int rc = om_pack_load(&p, cfg->pack_dir, err, sizeof err);
    if (rc == 0 && !p.video_head[0]) {
        snprintf(s->why, sizeof s->why, "pack %s has no [video] head: embed is not available", p.dir);
        return 0;
    }
    om_gpu_opts go = { .quiet = om_log_get_level() < OM_LOG_INFO };
    if (!rc)
        rc = om_gpu_open(&s->gpu, &go, err, sizeof err);
    if (!rc)
        rc = om_vqa_open(&s->vqa, s->gpu, cfg, &p, OM_VQA_HEAD, err, sizeof err);
    if (!rc && !(s->joint = malloc(sizeof *s->joint * (size_t)om_vqa_joint_dim(s->vqa))))
        rc = OM_ENOMEM;
    if (rc) {
        om_log(OM_LOG_ERROR, "vision", "%s", err);
        vision_fini(s);
        *state = NULL;
        return rc;
    }
    om_log(OM_LOG_INFO, "vision", "pack %s: %d video tokens -> joint %d", p.dir, om_vqa_n_rows(s->vqa),
           om_vqa_joint_dim(s->vqa));
    return 0;
}

static int vision_handle(void *state, const om_req *req, om_sink *sink)
{
    vision_state *s = state;
    if (!s->vqa)
        return om_sink_fail(sink, OM_ENOENT, "%s", s->why);
    if (!om_vqa_has_media(req))
        return om_sink_fail(sink, OM_EINVAL, "embed: args.video or args.image is required "
                            "(other modalities are not served by this daemon)");
    om_vqa_result r;
    int rc = om_vqa_encode(s->vqa, req, sink, NULL, s->joint, &r);
    if (rc)
        return rc;
    int dim = om_vqa_joint_dim(s->vqa);
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, sizeof *s->joint * (size_t)dim))
        return om_sink_fail(sink, OM_ENOMEM, "out of memory for the embedding");
    memcpy(zmq_msg_data(&m), s->joint, sizeof *s->joint * (size_t)dim);
    om_msgbuf *b = om_sink_buf(sink);
    if ((rc = om_reply_embedding(b, req->id, om_sink_seq(sink), r.modality, (uint64_t)dim))) {
        zmq_msg_close(&m);
        return om_sink_fail(sink, rc, "cannot build the embedding reply");
    }
    if ((rc = om_sink_send(sink, &m, 1)))
        return rc;
    om_kv_f64 t[2] = { { "sample_ms", r.sample_ms }, { "encode_ms", r.encode_ms } };
    om_kv_u64 u[1] = { { "frames", (uint64_t)r.n_frames } };
    return om_sink_set_done(sink, t, 2, u, 1);
}

const om_stage om_stage_vision = {
    .name   = "vision",
    .ops    = vision_ops,
    .init   = vision_init,
    .handle = vision_handle,
    .fini   = vision_fini,
};
