/* stage_ingest.c: the ingest stage over om_media. Ops: probe (container and
 * streams of a URL, or of media bytes sent as a payload frame). */
#include "om_daemon_impl.h"
#include "om_media.h"

#include <stdlib.h>
#include <string.h>

static const char *const ingest_ops[] = { "probe", NULL };

typedef struct ingest_state {
    int  local;                  /* media.local */
    char protocols[128];         /* media.protocols */
} ingest_state;

static int ingest_init(const om_config *cfg, void **state)
{
    ingest_state *s = calloc(1, sizeof *s);
    if (!s)
        return OM_ENOMEM;
    s->local = cfg->media_local;
    om_media_policy_protocols(cfg, s->protocols, sizeof s->protocols);
    *state = s;
    return 0;
}

static void ingest_fini(void *state) { free(state); }

static const char *kind_name(int kind)
{
    static const char *const names[] = { "video", "audio", "subtitle", "data", "other" };
    return kind >= 0 && kind <= OM_MEDIA_OTHER ? names[kind] : "other";
}

static int pack_info(msgpack_packer *pk, const om_media_info *in)
{
    int rc = 0;
    rc |= om_pack_kv_str(pk, "format", in->format);
    rc |= om_pack_kv_f64(pk, "duration_s", in->duration_s);
    rc |= om_pack_kv_i64(pk, "bit_rate", in->bit_rate);
    rc |= om_pack_kv_str(pk, "title", in->title);
    rc |= om_pack_kv_i64(pk, "n_streams", in->n_streams);
    rc |= om_pack_str(pk, "streams");
    rc |= msgpack_pack_array(pk, (size_t)in->n_listed);
    for (int i = 0; i < in->n_listed; i++) {
        const om_media_stream_info *s = &in->streams[i];
        rc |= msgpack_pack_map(pk, 12);
        rc |= om_pack_kv_i64(pk, "index", s->index);
        rc |= om_pack_kv_str(pk, "kind", kind_name(s->kind));
        rc |= om_pack_kv_str(pk, "codec", s->codec);
        rc |= om_pack_kv_i64(pk, "width", s->width);
        rc |= om_pack_kv_i64(pk, "height", s->height);
        rc |= om_pack_kv_f64(pk, "fps", s->fps_avg);
        rc |= om_pack_kv_str(pk, "pix_fmt", s->pix_fmt);
        rc |= om_pack_kv_i64(pk, "sample_rate", s->sample_rate);
        rc |= om_pack_kv_i64(pk, "channels", s->channels);
        rc |= om_pack_kv_i64(pk, "frames", s->frames);
        rc |= om_pack_kv_f64(pk, "duration_s", s->duration_s);
        rc |= om_pack_kv_bool(pk, "decoded", i == in->video_stream || i == in->audio_stream);
    }
    return rc ? OM_ENOMEM : 0;
}

/* args: {"url": str} or {"media": {"frame": k}} (the file's bytes). */
static int ingest_handle(void *state, const om_req *req, om_sink *sink)
{
    const ingest_state *st = state;
    char url[2048], err[512] = "";
    om_frame media;
    om_media *src = NULL;
    om_media_opts opts;
    om_media_opts_default(&opts);
    opts.protocols = st->protocols;
    int rc = om_req_arg_frame(req, "media", &media, err, sizeof err);
    if (rc == 0)
        rc = om_media_open_mem(&src, media.data, media.size, &opts, err, sizeof err);
    else if (rc == OM_ENOENT &&
             (rc = om_req_arg_strcpy(req, "url", url, sizeof url, err, sizeof err)) == 0)
        rc = om_media_policy_url_allowed(st->local, url) ? om_media_open(&src, url, &opts, err, sizeof err)
                                  : (snprintf(err, sizeof err, "'%.256s': local files, devices and lavfi are "
                                              "not allowed (media.local = off)", url), OM_EINVAL);
    else if (rc == OM_ENOENT)
        return om_sink_fail(sink, OM_EINVAL, "probe: args.url or args.media is required");
    if (rc)
        return om_sink_fail(sink, rc, "probe: %s", err);

    om_media_info info;
    rc = om_media_probe(src, &info);
    if (rc == 0) {
        om_msgbuf *b = om_sink_buf(sink);
        rc = om_reply_result_begin(b, req->id, om_sink_seq(sink), 6);
        if (rc == 0)
            rc = pack_info(&b->pk, &info);
        if (rc == 0)
            rc = om_sink_send(sink, NULL, 0);
    } else {
        om_sink_fail(sink, rc, "probe: %s", om_media_last_error(src));
    }
    om_media_close(src);
    return rc;
}

const om_stage om_stage_ingest = {
    .name   = "ingest",
    .ops    = ingest_ops,
    .init   = ingest_init,
    .handle = ingest_handle,
    .fini   = ingest_fini,
};
