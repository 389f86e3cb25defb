/* media_sample.c: N frames uniformly over a clip, for video QA. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media_internal.h"
#include "om_err.h"

/* Without a seek index, targets closer than this are reached by decoding forward. */
#define FORWARD_WITHOUT_INDEX_S 1.0

void om_media_frames_free(om_media_frame *frames, int n)
{
    if (!frames)
        return;
    for (int i = 0; i < n; i++)
        om_media_frame_free(&frames[i]);
    free(frames);
}

static int capped(int n, double dur, double fps_cap)
{
    if (fps_cap > 0) {
        double cap = floor(dur * fps_cap);
        if (cap < 1) cap = 1;
        if (cap < n) n = (int)cap;
    }
    return n;
}

/* Decoding forward from cur (the last decoded frame) reaches t no later than a seek
 * would: the keyframe before t is not after cur. */
static int forward_ok(om_media *src, double cur, double t)
{
    if (cur < 0 || cur > t)
        return 0;
    AVStream *st = src->fmt->streams[src->vidx];
    int i = av_index_search_timestamp(st, media_s_to_ts(src, src->vidx, t),
                                      AVSEEK_FLAG_BACKWARD);
    const AVIndexEntry *e = i >= 0 ? avformat_index_get_entry(st, i) : NULL;
    if (!e)
        return t - cur <= FORWARD_WITHOUT_INDEX_S;
    return media_ts_to_s(src, src->vidx, e->timestamp) <= cur;
}

static int sample_seek(om_media *src, int n, double dur, const om_media_size *size,
                       om_media_frame *out, int *n_out)
{
    int cnt = 0;
    double last_out = -1.0;
    for (int i = 0; i < n; i++) {
        double t = (i + 0.5) * dur / n;
        /* The frame shown at t is the one returned last: the next one starts later. */
        if (cnt > 0 && last_out <= t && src->has_pending && src->last_t > t)
            continue;
        int r = 0;
        if (!forward_ok(src, src->last_t, t)) {
            src->seek_retries = 0;
            r = media_seek_video(src, t);
        }
        if (r == 0)
            media_video_target(src, t);
        om_media_frame f;
        if (r == 0)
            r = om_media_read_video(src, size, &f);
        if (r == OM_MEDIA_EOF)
            break;
        if (r < 0) {
            *n_out = cnt;
            return r;
        }
        if (cnt > 0 && f.t == last_out) {
            om_media_frame_free(&f);
            continue;
        }
        out[cnt++] = f;
        last_out = f.t;
    }
    *n_out = cnt;
    return 0;
}

/* Duration unknown or input not seekable: decode through once, keeping every
 * stride-th frame in 2n slots and doubling the stride when they fill, then pick n
 * uniformly by index. Memory stays 2n frames whatever the length. */
static int sample_through(om_media *src, int n, double fps_cap, const om_media_size *size,
                          om_media_frame *out, int *n_out)
{
    int cap = 2 * n, cnt = 0, r = 0;
    om_media_frame *kept = calloc((size_t)cap, sizeof(*kept));
    if (!kept)
        return media_fail(src, OM_ENOMEM, 0, "out of memory");
    int64_t idx = 0, stride = 1;
    double first = -1, t = 0, last = 0;
    for (;; idx++) {
        r = media_next_frame(src, &t);
        if (r == OM_MEDIA_EOF) {
            r = 0;
            break;
        }
        if (r < 0)
            break;
        if (first < 0)
            first = t;
        last = t;
        if (t - first > src->opts.max_duration_s) {
            av_frame_unref(src->vframe);
            r = media_fail(src, OM_ERANGE, 0, "stream longer than max_duration_s %.1f",
                           src->opts.max_duration_s);
            break;
        }
        if (idx % stride == 0) {
            r = media_convert(src, src->vframe, size, &kept[cnt]);
            if (r < 0) {
                av_frame_unref(src->vframe);
                break;
            }
            kept[cnt++].t = t;
            if (cnt == cap) {
                for (int k = 0; k < cap / 2; k++) {
                    om_media_frame_free(&kept[2 * k + 1]);
                    kept[k] = kept[2 * k];
                }
                cnt = cap / 2;
                stride *= 2;
            }
        }
        av_frame_unref(src->vframe);
    }
    int m = 0;
    if (r == 0 && cnt > 0) {
        double dur = last - first + (idx > 1 ? (last - first) / (double)(idx - 1) : 0);
        int want = capped(n, dur, fps_cap);
        int prev = -1;
        for (int k = 0; k < want; k++) {
            int j = (int)((k + 0.5) * cnt / want);
            if (j == prev)
                continue;
            out[m++] = kept[j];
            memset(&kept[j], 0, sizeof(kept[j]));
            prev = j;
        }
    }
    om_media_frames_free(kept, cnt);
    *n_out = m;
    return r;
}

int om_media_sample_frames(om_media *src, int n, double fps_cap, const om_media_size *size,
                           om_media_frame **frames, int *n_out)
{
    if (!src || !frames || !n_out || n < 1 || !(fps_cap >= 0))
        return OM_EINVAL;
    *frames = NULL;
    *n_out = 0;
    if (!src->fmt)
        return OM_EMEDIA;
    if (n > src->opts.max_frames)
        return media_fail(src, OM_ERANGE, 0, "%d frames exceed max_frames %d",
                          n, src->opts.max_frames);
    int r = media_open_video(src);
    if (r < 0)
        return r;

    /* A duration guessed from the bit rate can be far off: targets need a real one. */
    const AVStream *st = src->fmt->streams[src->vidx];
    double dur = -1;
    if (src->fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE) {
        dur = src->info.duration_s;
        if (dur <= 0 && st->duration != AV_NOPTS_VALUE && st->duration > 0)
            dur = st->duration * av_q2d(st->time_base);
    }
    int seekable = src->fmt->pb && (src->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL);
    src->target_active = 0;

    om_media_frame *out = calloc((size_t)n, sizeof(*out));
    if (!out)
        return media_fail(src, OM_ENOMEM, 0, "out of memory");
    int m = 0;
    if (dur > 0 && seekable) {
        r = sample_seek(src, capped(n, dur, fps_cap), dur, size, out, &m);
    } else {
        if (src->moved && seekable)
            r = media_seek_video(src, 0);
        if (r == 0)
            r = sample_through(src, n, fps_cap, size, out, &m);
    }
    if (r < 0) {
        om_media_frames_free(out, m);
        return r;
    }
    if (m == 0) {
        free(out);
        return media_fail(src, OM_EMEDIA, 0, "no decodable video frame");
    }
    *frames = out;
    *n_out = m;
    return 0;
}
