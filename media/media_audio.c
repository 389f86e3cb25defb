/* media_audio.c: audio decoding resampled to 16 kHz mono float (libswresample). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include "media_internal.h"
#include "om_err.h"

#define MAX_CHANNELS 64
/* Seek this far before the start: codecs with priming (AAC's first packet carries
 * samples to skip) need the packets before it; decoded samples before the start
 * are dropped. */
#define AUDIO_PREROLL_S 0.5

static int setup_swr(om_media *src, const AVFrame *f)
{
    AVChannelLayout in = { 0 }, mono = AV_CHANNEL_LAYOUT_MONO;
    int r = f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || !f->ch_layout.nb_channels
          ? (av_channel_layout_default(&in, f->ch_layout.nb_channels), 0)
          : av_channel_layout_copy(&in, &f->ch_layout);
    if (r >= 0)
        r = swr_alloc_set_opts2(&src->swr, &mono, AV_SAMPLE_FMT_FLT, OM_MEDIA_AUDIO_RATE,
                                &in, f->format, f->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in);
    if (r >= 0)
        r = swr_init(src->swr);
    if (r < 0)
        return media_fail(src, media_averr(src, r), r,
                          "cannot resample %d Hz %d channels to 16 kHz mono",
                          f->sample_rate, f->ch_layout.nb_channels);
    return 0;
}

static int grow(om_media *src, float **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : OM_MEDIA_AUDIO_RATE;
    while (c < need)
        c *= 2;
    float *p = realloc(*buf, c * sizeof(float));
    if (!p)
        return media_fail(src, OM_ENOMEM, 0, "out of memory");
    *buf = p;
    *cap = c;
    return 0;
}

/* Resamples f from sample `skip` on, appending to buf. */
static int convert(om_media *src, const AVFrame *f, int skip, float **buf, size_t *cap,
                   size_t *n)
{
    if (f->ch_layout.nb_channels < 1 || f->ch_layout.nb_channels > MAX_CHANNELS)
        return media_fail(src, OM_EUNSUPPORTED, 0, "%d audio channels (at most %d)",
                          f->ch_layout.nb_channels, MAX_CHANNELS);
    int r = src->swr ? 0 : setup_swr(src, f);
    if (r < 0)
        return r;
    int bps = av_get_bytes_per_sample(f->format);
    const uint8_t *in[MAX_CHANNELS];
    int planes = av_sample_fmt_is_planar(f->format) ? f->ch_layout.nb_channels : 1;
    int step = av_sample_fmt_is_planar(f->format) ? bps : bps * f->ch_layout.nb_channels;
    for (int c = 0; c < planes; c++)
        in[c] = f->extended_data[c] + (size_t)skip * step;
    int want = swr_get_out_samples(src->swr, f->nb_samples - skip);
    r = want < 0 ? want : 0;
    if (r == 0 && (r = grow(src, buf, cap, *n + (size_t)want)) < 0)
        return r;
    uint8_t *out = (uint8_t *)(*buf + *n);
    if (r == 0)
        r = swr_convert(src->swr, &out, want, in, f->nb_samples - skip);
    if (r < 0)
        return media_fail(src, media_averr(src, r), r, "cannot resample audio");
    *n += (size_t)r;
    return 0;
}

static int flush(om_media *src, float **buf, size_t *cap, size_t *n)
{
    if (!src->swr)
        return 0;
    for (;;) {
        int want = swr_get_out_samples(src->swr, 0);
        if (want <= 0)
            return 0;
        int r = grow(src, buf, cap, *n + (size_t)want);
        if (r < 0)
            return r;
        uint8_t *out = (uint8_t *)(*buf + *n);
        r = swr_convert(src->swr, &out, want, NULL, 0);
        if (r < 0)
            return media_fail(src, media_averr(src, r), r, "cannot resample audio");
        if (r == 0)
            return 0;
        *n += (size_t)r;
    }
}

static int position(om_media *src, double start_s)
{
    if (start_s <= 0 && !src->moved)
        return 0;
    media_arm(src);
    int64_t ts = media_s_to_ts(src, src->aidx, start_s - AUDIO_PREROLL_S);
    int r = avformat_seek_file(src->fmt, src->aidx, INT64_MIN, ts, ts, 0);
    if (r < 0)
        return media_fail(src, media_averr(src, r), r, "cannot seek audio to %.3f s", start_s);
    avcodec_flush_buffers(src->adec);
    src->demux_eof = 0;
    src->adec_eof = 0;
    media_video_reset(src);
    return 0;
}

static int decode_range(om_media *src, double start_s, double end_s, size_t limit,
                        float **buf, size_t *cap, size_t *n)
{
    double next_t = start_s;
    for (;;) {
        int r = media_decode(src, src->adec, src->aidx, &src->adec_eof, src->aframe);
        if (r == OM_MEDIA_EOF)
            return 0;
        if (r < 0)
            return r;
        AVFrame *f = src->aframe;
        double t0 = f->best_effort_timestamp != AV_NOPTS_VALUE
                  ? media_ts_to_s(src, src->aidx, f->best_effort_timestamp) : next_t;
        next_t = t0 + (f->sample_rate > 0 ? (double)f->nb_samples / f->sample_rate : 0);
        int skip = 0;
        if (t0 < start_s && f->sample_rate > 0) {
            double s = ceil((start_s - t0) * f->sample_rate - 1e-6);
            skip = s >= f->nb_samples ? f->nb_samples : (int)s;
        }
        if (t0 >= end_s) {
            av_frame_unref(f);
            return 0;
        }
        if (skip < f->nb_samples)
            r = convert(src, f, skip, buf, cap, n);
        av_frame_unref(f);
        if (r < 0)
            return r;
        if (end_s == INFINITY && *n > limit)
            return media_fail(src, OM_ERANGE, 0, "audio longer than max_audio_s %.1f",
                              src->opts.max_audio_s);
        if (end_s < INFINITY && *n >= (size_t)ceil((end_s - start_s) * OM_MEDIA_AUDIO_RATE))
            return 0;
    }
}

int om_media_read_audio(om_media *src, double start_s, double dur_s,
                        float **pcm, size_t *n_samples)
{
    if (!src || !pcm || !n_samples || !isfinite(start_s) || start_s < 0 || !isfinite(dur_s))
        return OM_EINVAL;
    *pcm = NULL;
    *n_samples = 0;
    if (!src->fmt)
        return OM_EMEDIA;
    if (src->aidx < 0)
        return media_fail(src, OM_ENOENT, 0, "no audio stream");
    double max_s = src->opts.max_audio_s;
    if (dur_s > max_s)
        return media_fail(src, OM_ERANGE, 0, "%.1f s of audio exceed max_audio_s %.1f",
                          dur_s, max_s);
    if (dur_s <= 0 && src->info.duration_s - start_s > max_s)
        return media_fail(src, OM_ERANGE, 0, "%.1f s of audio exceed max_audio_s %.1f",
                          src->info.duration_s - start_s, max_s);
    int r = media_open_decoder(src, src->aidx, &src->adec);
    if (r < 0 || (r = position(src, start_s)) < 0)
        return r;
    swr_free(&src->swr);

    double end_s = dur_s > 0 ? start_s + dur_s : INFINITY;
    size_t limit = (size_t)ceil(max_s * OM_MEDIA_AUDIO_RATE);
    float *buf = NULL;
    size_t cap = 0, n = 0;
    r = decode_range(src, start_s, end_s, limit, &buf, &cap, &n);
    if (r == 0)
        r = flush(src, &buf, &cap, &n);
    if (r == 0 && n == 0)
        r = media_fail(src, OM_EMEDIA, 0, "no decodable audio");
    if (r < 0) {
        free(buf);
        return r;
    }
    if (end_s < INFINITY) {
        size_t want = (size_t)llround(dur_s * OM_MEDIA_AUDIO_RATE);
        if (n > want)
            n = want;
    }
    if (n > limit)
        n = limit;
    *pcm = buf;
    *n_samples = n;
    return 0;
}
