/* media.c: opening and closing sources (URLs, devices, lavfi graphs, memory),
 * deadlines, error messages, probe, and the routing of FFmpeg's log. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavdevice/avdevice.h>
#include <libavutil/dict.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libavutil/time.h>

#include "media_internal.h"
#include "om_err.h"

#define AVIO_BUF_BYTES 32768

/* ---- FFmpeg log ---- */

static om_media_log_fn log_fn;
static void           *log_opaque;
static pthread_once_t  av_once = PTHREAD_ONCE_INIT;

/* FFmpeg's last error-level line on this thread: its own words for a failure
 * ("moov atom not found", "Protocol 'file' not on whitelist"), added to our message.
 * A source is used by one thread at a time and FFmpeg logs from the calling thread. */
static _Thread_local char av_last_error[256];

static void av_log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_ERROR && level > av_log_get_level())
        return;
    char line[1024];
    int prefix = 1;
    va_list vl2;
    va_copy(vl2, vl);
    av_log_format_line(avcl, level, fmt, vl2, line, sizeof(line), &prefix);
    va_end(vl2);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (n == 0)
        return;
    if (level <= AV_LOG_ERROR) {
        prefix = 0;
        av_log_format_line(NULL, level, fmt, vl, av_last_error, sizeof(av_last_error),
                           &prefix);
        size_t m = strlen(av_last_error);
        while (m > 0 && (av_last_error[m - 1] == '\n' || av_last_error[m - 1] == ' '))
            av_last_error[--m] = '\0';
    }
    if (level > av_log_get_level())
        return;
    if (log_fn)
        log_fn(log_opaque, level, line);
    else
        fprintf(stderr, "ffmpeg: %s\n", line);
}

static void av_init_once(void)
{
    avdevice_register_all();
    av_log_set_level(AV_LOG_PANIC);
    av_log_set_callback(av_log_cb);
}

void om_media_set_log(om_media_log_fn fn, void *opaque, int av_level)
{
    pthread_once(&av_once, av_init_once);
    log_fn = fn;
    log_opaque = opaque;
    av_log_set_level(av_level);
}

/* ---- errors and deadlines ---- */

int media_averr(om_media *src, int averr)
{
    if (averr == AVERROR_EXIT)
        return atomic_load(&src->interrupted) ? OM_ECANCELED : OM_ETIMEDOUT;
    switch (averr) {
    case AVERROR(ENOMEM):           return OM_ENOMEM;
    case AVERROR(ENOENT):           return OM_ENOENT;
    case AVERROR(ETIMEDOUT):        return OM_ETIMEDOUT;
    case AVERROR(ENODEV):
    case AVERROR(ENXIO):            return OM_ENODEV;
    case AVERROR(EACCES):
    case AVERROR(EIO):              return OM_EIO;
    case AVERROR_DECODER_NOT_FOUND:
    case AVERROR_DEMUXER_NOT_FOUND:
    case AVERROR_PROTOCOL_NOT_FOUND:
    case AVERROR_PATCHWELCOME:      return OM_EUNSUPPORTED;
    default:                        return OM_EMEDIA;
    }
}

int media_fail(om_media *src, int code, int averr, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (averr == AVERROR_EXIT) {
        snprintf(src->err, sizeof(src->err), "%s: %s: %s", src->url, what,
                 atomic_load(&src->interrupted) ? "interrupted"
                 : "timed out (timeout_ms)");
    } else if (averr < 0) {
        char averrs[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(averr, averrs, sizeof(averrs));
        if (av_last_error[0])
            snprintf(src->err, sizeof(src->err), "%s: %s: %s (%s)", src->url, what, averrs,
                     av_last_error);
        else
            snprintf(src->err, sizeof(src->err), "%s: %s: %s", src->url, what, averrs);
    } else {
        snprintf(src->err, sizeof(src->err), "%s: %s", src->url, what);
    }
    return code;
}

void media_arm(om_media *src)
{
    av_last_error[0] = '\0';
    src->deadline_us = av_gettime_relative() + (int64_t)src->opts.timeout_ms * 1000;
}

static int interrupt_cb(void *opaque)
{
    om_media *src = opaque;
    if (atomic_load(&src->interrupted))
        return 1;
    return src->deadline_us > 0 && av_gettime_relative() > src->deadline_us;
}

void om_media_interrupt(om_media *src)
{
    if (src)
        atomic_store(&src->interrupted, 1);
}

const char *om_media_last_error(const om_media *src)
{
    return src ? src->err : "no source";
}

/* ---- time ---- */

double media_ts_to_s(const om_media *src, int idx, int64_t ts)
{
    AVRational tb = src->fmt->streams[idx]->time_base;
    return ts * av_q2d(tb) - src->start_us / 1e6;
}

int64_t media_s_to_ts(const om_media *src, int idx, double t)
{
    AVRational tb = src->fmt->streams[idx]->time_base;
    return av_rescale_q(src->start_us + (int64_t)(t * 1e6), AV_TIME_BASE_Q, tb);
}

/* ---- options ---- */

void om_media_opts_default(om_media_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_duration_s = 14400.0;
    o->max_pixels = (int64_t)8192 * 8192;
    o->max_frames = 1024;
    o->max_audio_s = 3600.0;
    o->max_mem_bytes = (size_t)1 << 30;
    o->timeout_ms = 10000;
    o->threads = 1;
}

static void opts_resolve(om_media_opts *o, const om_media_opts *in)
{
    om_media_opts d;
    om_media_opts_default(&d);
    *o = in ? *in : d;
    if (o->max_duration_s <= 0) o->max_duration_s = d.max_duration_s;
    if (o->max_pixels <= 0)     o->max_pixels = d.max_pixels;
    if (o->max_frames <= 0)     o->max_frames = d.max_frames;
    if (o->max_audio_s <= 0)    o->max_audio_s = d.max_audio_s;
    if (o->max_mem_bytes == 0)  o->max_mem_bytes = d.max_mem_bytes;
    if (o->timeout_ms <= 0)     o->timeout_ms = d.timeout_ms;
    if (o->threads <= 0)        o->threads = d.threads;
}

/* ---- memory input ---- */

static int mem_read(void *opaque, uint8_t *buf, int size)
{
    om_media *src = opaque;
    int64_t left = (int64_t)src->mem_size - src->mem_pos;
    if (left <= 0)
        return AVERROR_EOF;
    int n = left < size ? (int)left : size;
    memcpy(buf, src->mem + src->mem_pos, (size_t)n);
    src->mem_pos += n;
    return n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
    om_media *src = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)src->mem_size;
    case SEEK_SET:    base = 0; break;
    case SEEK_CUR:    base = src->mem_pos; break;
    case SEEK_END:    base = (int64_t)src->mem_size; break;
    default:          return AVERROR(EINVAL);
    }
    if (offset > INT64_MAX - base || base + offset < 0 ||
        base + offset > (int64_t)src->mem_size)
        return AVERROR(EINVAL);
    src->mem_pos = base + offset;
    return src->mem_pos;
}

/* ---- probe ---- */

static int stream_kind(enum AVMediaType t)
{
    switch (t) {
    case AVMEDIA_TYPE_VIDEO:    return OM_MEDIA_VIDEO;
    case AVMEDIA_TYPE_AUDIO:    return OM_MEDIA_AUDIO;
    case AVMEDIA_TYPE_SUBTITLE: return OM_MEDIA_SUBTITLE;
    case AVMEDIA_TYPE_DATA:     return OM_MEDIA_DATA;
    default:                    return OM_MEDIA_OTHER;
    }
}

static void fill_info(om_media *src)
{
    AVFormatContext *fmt = src->fmt;
    om_media_info *in = &src->info;
    memset(in, 0, sizeof(*in));
    snprintf(in->format, sizeof(in->format), "%s", fmt->iformat->name);
    in->duration_s = fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0
                   ? fmt->duration / (double)AV_TIME_BASE : -1.0;
    in->bit_rate = fmt->bit_rate > 0 ? fmt->bit_rate : 0;
    AVDictionaryEntry *title = av_dict_get(fmt->metadata, "title", NULL, 0);
    if (title)
        snprintf(in->title, sizeof(in->title), "%s", title->value);
    in->n_streams = (int)fmt->nb_streams;
    in->video_stream = in->audio_stream = -1;
    for (unsigned i = 0; i < fmt->nb_streams && in->n_listed < OM_MEDIA_MAX_STREAMS; i++) {
        const AVStream *st = fmt->streams[i];
        const AVCodecParameters *par = st->codecpar;
        om_media_stream_info *s = &in->streams[in->n_listed];
        s->index = (int)i;
        s->kind = stream_kind(par->codec_type);
        snprintf(s->codec, sizeof(s->codec), "%s", avcodec_get_name(par->codec_id));
        s->frames = st->nb_frames > 0 ? st->nb_frames : -1;
        s->duration_s = st->duration != AV_NOPTS_VALUE && st->duration > 0
                      ? st->duration * av_q2d(st->time_base) : -1.0;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
            s->width = par->width;
            s->height = par->height;
            s->fps_avg = st->avg_frame_rate.den ? av_q2d(st->avg_frame_rate) : 0.0;
            s->fps_r = st->r_frame_rate.den ? av_q2d(st->r_frame_rate) : 0.0;
            const char *pf = av_get_pix_fmt_name(par->format);
            snprintf(s->pix_fmt, sizeof(s->pix_fmt), "%s", pf ? pf : "");
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
            s->sample_rate = par->sample_rate;
            s->channels = par->ch_layout.nb_channels;
        }
        if ((int)i == src->vidx) in->video_stream = in->n_listed;
        if ((int)i == src->aidx) in->audio_stream = in->n_listed;
        in->n_listed++;
    }
}

int om_media_probe(om_media *src, om_media_info *info)
{
    if (!src || !info)
        return OM_EINVAL;
    *info = src->info;
    return 0;
}

/* ---- open / close ---- */

/* "v4l2:X" and "/dev/video*" name V4L2 devices, "lavfi:G" a filter graph source. */
static const char *split_url(const char *url, const char **format)
{
    if (!strncmp(url, "v4l2:", 5)) {
        *format = "video4linux2";
        return url + 5;
    }
    if (!strncmp(url, "/dev/video", 10)) {
        *format = "video4linux2";
        return url;
    }
    if (!strncmp(url, "lavfi:", 6)) {
        *format = "lavfi";
        return url + 6;
    }
    return url;
}

static int check_limits(om_media *src)
{
    const om_media_info *in = &src->info;
    if (in->duration_s > src->opts.max_duration_s)
        return media_fail(src, OM_ERANGE, 0, "duration %.1f s exceeds max_duration_s %.1f",
                          in->duration_s, src->opts.max_duration_s);
    if (src->vidx >= 0) {
        const AVCodecParameters *par = src->fmt->streams[src->vidx]->codecpar;
        if ((int64_t)par->width * par->height > src->opts.max_pixels)
            return media_fail(src, OM_ERANGE, 0, "video %dx%d exceeds max_pixels %lld",
                              par->width, par->height, (long long)src->opts.max_pixels);
    }
    return 0;
}

static int open_common(om_media *src, const char *url)
{
    const char *format = src->opts.format;
    const char *path = split_url(url, &format);
    const AVInputFormat *ifmt = NULL;
    if (format && !(ifmt = av_find_input_format(format)))
        return media_fail(src, OM_EUNSUPPORTED, 0, "unknown input format '%s'", format);

    AVDictionary *dict = NULL;
    int r = 0;
    if (src->opts.av_opts && (r = av_dict_parse_string(&dict, src->opts.av_opts,
                                                       "=", ":", 0)) < 0) {
        av_dict_free(&dict);
        return media_fail(src, OM_EINVAL, r, "bad av_opts '%s'", src->opts.av_opts);
    }
    /* Uploaded bytes must not make a demuxer (concat, hls, ...) open other URLs: with
     * no protocol allowed, nested opens fail; the source itself needs none. */
    const char *protocols = src->avio ? "none" : src->opts.protocols;
    if (protocols && (r = av_dict_set(&dict, "protocol_whitelist", protocols, 0)) < 0) {
        av_dict_free(&dict);
        return media_fail(src, OM_ENOMEM, r, "out of memory");
    }
    src->fmt->interrupt_callback.callback = interrupt_cb;
    src->fmt->interrupt_callback.opaque = src;
    media_arm(src);
    r = avformat_open_input(&src->fmt, path, ifmt, &dict);
    if (r < 0) {
        av_dict_free(&dict);
        int code = media_averr(src, r);
        if (ifmt && !strncmp(ifmt->name, "video4linux2", 12) && code == OM_ENOENT)
            code = OM_ENODEV;
        return media_fail(src, code, r, "cannot open");
    }
    /* what no layer took is a typo or an option of another format: say so, as the CLI */
    const AVDictionaryEntry *left = av_dict_get(dict, "", NULL, AV_DICT_IGNORE_SUFFIX);
    if (left) {
        r = media_fail(src, OM_EINVAL, 0, "av_opts: option '%s' not known to %s",
                       left->key, src->fmt->iformat->name);
        av_dict_free(&dict);
        return r;
    }
    av_dict_free(&dict);
    media_arm(src);
    if ((r = avformat_find_stream_info(src->fmt, NULL)) < 0)
        return media_fail(src, media_averr(src, r), r, "cannot read stream info");

    src->vidx = av_find_best_stream(src->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    src->aidx = av_find_best_stream(src->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (src->vidx < 0) src->vidx = -1;
    if (src->aidx < 0) src->aidx = -1;
    src->start_us = src->fmt->start_time != AV_NOPTS_VALUE ? src->fmt->start_time : 0;
    fill_info(src);
    return check_limits(src);
}

static int alloc_source(om_media **out, const char *label, const om_media_opts *opts)
{
    pthread_once(&av_once, av_init_once);
    av_last_error[0] = '\0';
    om_media *src = calloc(1, sizeof(*src));
    if (!src)
        return OM_ENOMEM;
    opts_resolve(&src->opts, opts);
    snprintf(src->url, sizeof(src->url), "%s", label);
    atomic_init(&src->interrupted, 0);
    src->vidx = src->aidx = -1;
    src->last_t = -1.0;
    src->fmt = avformat_alloc_context();
    src->pkt = av_packet_alloc();
    src->vframe = av_frame_alloc();
    src->held = av_frame_alloc();
    src->pending = av_frame_alloc();
    src->aframe = av_frame_alloc();
    *out = src;
    if (!src->fmt || !src->pkt || !src->vframe || !src->held || !src->pending || !src->aframe)
        return media_fail(src, OM_ENOMEM, 0, "out of memory");
    return 0;
}

static int finish_open(om_media **out, om_media *src, int r, char *err, size_t errlen)
{
    if (r < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s", src && src->err[0] ? src->err : om_strerror(r));
        om_media_close(src);
        *out = NULL;
        return r;
    }
    src->err[0] = '\0';
    *out = src;
    return 0;
}

int om_media_open(om_media **out, const char *url, const om_media_opts *opts,
                  char *err, size_t errlen)
{
    if (!out || !url) {
        if (err && errlen) snprintf(err, errlen, "om_media_open: NULL argument");
        return OM_EINVAL;
    }
    om_media *src = NULL;
    int r = alloc_source(&src, url, opts);
    if (r == 0 && !(src->open_url = strdup(url)))
        r = media_fail(src, OM_ENOMEM, 0, "out of memory");
    if (r == 0)
        r = open_common(src, url);
    return finish_open(out, src, r, err, errlen);
}

int om_media_open_mem(om_media **out, const void *data, size_t size,
                      const om_media_opts *opts, char *err, size_t errlen)
{
    if (!out || (!data && size)) {
        if (err && errlen) snprintf(err, errlen, "om_media_open_mem: NULL argument");
        return OM_EINVAL;
    }
    om_media *src = NULL;
    int r = alloc_source(&src, "<memory>", opts);
    if (r == 0 && size > src->opts.max_mem_bytes)
        r = media_fail(src, OM_ERANGE, 0, "%zu bytes exceed max_mem_bytes %zu",
                       size, src->opts.max_mem_bytes);
    if (r == 0 && size == 0)
        r = media_fail(src, OM_EMEDIA, 0, "empty input");
    if (r == 0) {
        src->mem = data;
        src->mem_size = size;
        uint8_t *buf = av_malloc(AVIO_BUF_BYTES);
        src->avio = buf ? avio_alloc_context(buf, AVIO_BUF_BYTES, 0, src, mem_read, NULL,
                                             mem_seek) : NULL;
        if (!src->avio) {
            av_free(buf);
            r = media_fail(src, OM_ENOMEM, 0, "out of memory");
        } else {
            src->fmt->pb = src->avio;
            src->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
            r = open_common(src, "");
        }
    }
    return finish_open(out, src, r, err, errlen);
}

int media_reopen(om_media *src)
{
    avcodec_free_context(&src->vdec);
    avcodec_free_context(&src->adec);
    avformat_close_input(&src->fmt);
    if (!(src->fmt = avformat_alloc_context()))
        return media_fail(src, OM_ENOMEM, 0, "out of memory");
    if (src->avio) {
        int64_t r = avio_seek(src->avio, 0, SEEK_SET);
        if (r < 0)
            return media_fail(src, OM_EIO, (int)r, "cannot rewind");
        src->fmt->pb = src->avio;
        src->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    }
    src->demux_eof = 0;
    src->moved = 0;
    src->bad_packets = 0;
    media_video_reset(src);
    return open_common(src, src->open_url ? src->open_url : "");
}

void om_media_close(om_media *src)
{
    if (!src)
        return;
    free(src->open_url);
    avcodec_free_context(&src->vdec);
    avcodec_free_context(&src->adec);
    avformat_close_input(&src->fmt);
    if (src->avio) {
        av_freep(&src->avio->buffer);
        avio_context_free(&src->avio);
    }
    av_packet_free(&src->pkt);
    av_frame_free(&src->vframe);
    av_frame_free(&src->held);
    av_frame_free(&src->pending);
    av_frame_free(&src->aframe);
    sws_freeContext(src->sws);
    swr_free(&src->swr);
    free(src->tmp_rgb);
    free(src);
}

int media_open_decoder(om_media *src, int idx, AVCodecContext **out)
{
    if (*out)
        return 0;
    const AVCodecParameters *par = src->fmt->streams[idx]->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        return media_fail(src, OM_EUNSUPPORTED, 0, "no decoder for codec '%s' (stream %d)",
                          avcodec_get_name(par->codec_id), idx);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c)
        return media_fail(src, OM_ENOMEM, 0, "out of memory");
    int r = avcodec_parameters_to_context(c, par);
    if (r >= 0) {
        c->thread_count = src->opts.threads;
        c->pkt_timebase = src->fmt->streams[idx]->time_base;
        r = avcodec_open2(c, codec, NULL);
    }
    if (r < 0) {
        avcodec_free_context(&c);
        return media_fail(src, media_averr(src, r), r, "cannot open decoder '%s'",
                          codec->name);
    }
    *out = c;
    return 0;
}

int media_open_video(om_media *src)
{
    if (src->vidx < 0)
        return media_fail(src, OM_ENOENT, 0, "no video stream");
    return media_open_decoder(src, src->vidx, &src->vdec);
}
