/* media_video.c: video decoding, seeking to a time, and conversion to RGB24. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/pixdesc.h>

#include "media_internal.h"
#include "om_err.h"

/* Non-reference frames this far before a target are not decoded (see skippable). */
#define SKIP_MARGIN_S 0.5

/* Seek-back steps when a demuxer lands after the target (imprecise seeking). */
static const double reseek_back_s[] = { 1.0, 4.0, 16.0 };

int media_read_packet(om_media *src, int idx)
{
    for (;;) {
        media_arm(src);
        int r = av_read_frame(src->fmt, src->pkt);
        if (r == AVERROR_EOF)
            return OM_MEDIA_EOF;
        if (r < 0)
            return media_fail(src, media_averr(src, r), r, "cannot read packet");
        src->moved = 1;
        if (src->pkt->stream_index == idx)
            return 0;
        av_packet_unref(src->pkt);
    }
}

static int bad_packet(om_media *src, int r, const char *what)
{
    if (r == AVERROR_EXIT || r == AVERROR(ENOMEM))
        return media_fail(src, media_averr(src, r), r, "%s", what);
    if (++src->bad_packets > MEDIA_MAX_BAD_PACKETS)
        return media_fail(src, OM_EMEDIA, r, "%s: %d undecodable packets in a row",
                          what, src->bad_packets);
    return 0;
}

/* Frames well before the target are only decoded for their references: the
 * decoder may drop non-reference ones (B-frames mostly), which no later frame needs.
 * One of them could still be the frame shown at the target when nothing follows it
 * within the margin (a gap in a VFR stream); find_target then decodes again without
 * skipping. */
static double skip_margin(const om_media *src)
{
    AVRational fps = av_guess_frame_rate(src->fmt, src->fmt->streams[src->vidx], NULL);
    double margin = fps.num > 0 && fps.den > 0 ? 4 * av_q2d(av_inv_q(fps)) : 0;
    return margin < SKIP_MARGIN_S ? SKIP_MARGIN_S : margin;
}

static int skippable(om_media *src, const AVPacket *pkt)
{
    if (!src->target_active || src->no_skip || pkt->pts == AV_NOPTS_VALUE ||
        media_ts_to_s(src, src->vidx, pkt->pts) >= src->target_t - skip_margin(src))
        return 0;
    src->skipped = 1;
    return 1;
}

int media_decode(om_media *src, AVCodecContext *dec, int idx, int *dec_eof, AVFrame *out)
{
    for (;;) {
        int r = avcodec_receive_frame(dec, out);
        if (r == 0) {
            src->bad_packets = 0;
            return 0;
        }
        if (r == AVERROR_EOF)
            return OM_MEDIA_EOF;
        if (r != AVERROR(EAGAIN)) {
            if ((r = bad_packet(src, r, "cannot decode")) < 0)
                return r;
            continue;
        }
        if (src->demux_eof) {
            if (*dec_eof)
                return OM_MEDIA_EOF;
            *dec_eof = 1;
            avcodec_send_packet(dec, NULL);
            continue;
        }
        r = media_read_packet(src, idx);
        if (r == OM_MEDIA_EOF) {
            src->demux_eof = 1;
            continue;
        }
        if (r < 0)
            return r;
        if (dec == src->vdec)
            dec->skip_frame = skippable(src, src->pkt) ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
        r = avcodec_send_packet(dec, src->pkt);
        av_packet_unref(src->pkt);
        if (r < 0 && r != AVERROR(EAGAIN) && (r = bad_packet(src, r, "cannot decode")) < 0)
            return r;
    }
}

static int decode_video(om_media *src, AVFrame *out)
{
    int r = media_decode(src, src->vdec, src->vidx, &src->vdec_eof, out);
    if (r == 0 && (int64_t)out->width * out->height > src->opts.max_pixels) {
        av_frame_unref(out);
        return media_fail(src, OM_ERANGE, 0, "frame %dx%d exceeds max_pixels %lld",
                          out->width, out->height, (long long)src->opts.max_pixels);
    }
    if (r == 0)
        src->n_decoded++;
    return r;
}

int64_t om_media_frames_decoded(const om_media *src)
{
    return src ? src->n_decoded : 0;
}

double media_frame_t(om_media *src, const AVFrame *f)
{
    double t;
    if (f->best_effort_timestamp != AV_NOPTS_VALUE)
        t = media_ts_to_s(src, src->vidx, f->best_effort_timestamp);
    else
        t = src->next_synth_t;
    AVRational fps = av_guess_frame_rate(src->fmt, src->fmt->streams[src->vidx], NULL);
    src->next_synth_t = t + (fps.num > 0 && fps.den > 0 ? av_q2d(av_inv_q(fps)) : 0.04);
    return t;
}

int media_seek_video(om_media *src, double t)
{
    int64_t ts = media_s_to_ts(src, src->vidx, t < 0 ? 0 : t);
    media_arm(src);
    int r = av_seek_frame(src->fmt, src->vidx, ts, AVSEEK_FLAG_BACKWARD);
    if (r < 0 && t <= 0 && src->fmt->pb && (src->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL)) {
        if ((r = media_reopen(src)) == 0)
            r = media_open_decoder(src, src->vidx, &src->vdec);
    }
    else if (r == AVERROR(EPERM) || r == AVERROR(ENOSYS))
        return media_fail(src, OM_EUNSUPPORTED, r, "cannot seek to %.3f s (%s cannot seek)",
                          t, src->fmt->iformat->name);
    else if (r < 0)
        return media_fail(src, media_averr(src, r), r, "cannot seek to %.3f s", t);
    if (r < 0)
        return r;
    src->demux_eof = 0;
    src->bad_packets = 0;
    media_video_reset(src);
    src->first_after_seek = 1;
    src->skipped = 0;
    src->next_synth_t = t;
    return 0;
}

void media_video_reset(om_media *src)
{
    if (src->vdec)
        avcodec_flush_buffers(src->vdec);
    src->vdec_eof = 0;
    src->has_pending = 0;
    av_frame_unref(src->pending);
    src->target_active = 0;
    src->first_after_seek = 0;
    src->last_t = -1.0;
}

void media_video_target(om_media *src, double t)
{
    src->target_active = 1;
    src->target_t = t;
}

int om_media_seek(om_media *src, double t)
{
    if (!src || !isfinite(t) || t < 0)
        return OM_EINVAL;
    if (!src->fmt)
        return OM_EMEDIA;
    int r = media_open_video(src);
    if (r < 0)
        return r;
    src->seek_retries = 0;
    if ((r = media_seek_video(src, t)) < 0)
        return r;
    media_video_target(src, t);
    return 0;
}

/* The next frame in decode order: the one held back by the last read, else a new one. */
static int next_decoded(om_media *src, AVFrame *f, double *t)
{
    if (src->has_pending) {
        av_frame_move_ref(f, src->pending);
        src->has_pending = 0;
        *t = src->last_t;
        return 0;
    }
    int r = decode_video(src, f);
    if (r == 0)
        *t = src->last_t = media_frame_t(src, f);
    return r;
}

/* Leaves in src->vframe the frame shown at src->target_t: the last frame at or before
 * it, or the first frame when the target precedes the stream. */
static int find_target(om_media *src, double *t_out)
{
    int have_held = 0;
    double held_t = 0, t = 0;
    for (;;) {
        int r = next_decoded(src, src->vframe, &t);
        if (r == OM_MEDIA_EOF && have_held)
            break;
        if (r != 0)
            return r;
        int first = src->first_after_seek;
        src->first_after_seek = 0;
        if (t <= src->target_t + 1e-6) {
            av_frame_unref(src->held);
            av_frame_move_ref(src->held, src->vframe);
            held_t = t;
            have_held = 1;
            continue;
        }
        if (!have_held && first && src->target_t > 0 &&
            src->seek_retries < (int)(sizeof(reseek_back_s) / sizeof(reseek_back_s[0]))) {
            double back = src->target_t - reseek_back_s[src->seek_retries++];
            av_frame_unref(src->vframe);
            if ((r = media_seek_video(src, back < 0 ? 0 : back)) < 0)
                return r;
            src->target_active = 1;
            if (back <= 0)
                src->seek_retries = (int)(sizeof(reseek_back_s) / sizeof(reseek_back_s[0]));
            continue;
        }
        if (!have_held) {
            *t_out = t;
            return 0;
        }
        if (src->skipped && held_t < src->target_t - skip_margin(src)) {
            av_frame_unref(src->vframe);
            av_frame_unref(src->held);
            have_held = 0;
            src->no_skip = 1;
            if ((r = media_seek_video(src, src->target_t)) < 0)
                return r;
            src->target_active = 1;
            continue;
        }
        av_frame_move_ref(src->pending, src->vframe);
        src->has_pending = 1;
        src->last_t = t;
        break;
    }
    av_frame_move_ref(src->vframe, src->held);
    *t_out = held_t;
    return 0;
}

int media_next_frame(om_media *src, double *t)
{
    return next_decoded(src, src->vframe, t);
}

#define SWS_TAIL 64

int media_convert(om_media *src, const AVFrame *f, const om_media_size *size,
                  om_media_frame *out)
{
    int W = size ? size->width : 0, H = size ? size->height : 0;
    if (W < 0 || H < 0 || (W == 0) != (H == 0))
        return media_fail(src, OM_EINVAL, 0, "bad output size %dx%d", W, H);
    if (W == 0) {
        W = f->width;
        H = f->height;
    }
    if ((int64_t)W * H > src->opts.max_pixels)
        return media_fail(src, OM_ERANGE, 0, "output %dx%d exceeds max_pixels %lld",
                          W, H, (long long)src->opts.max_pixels);
    if (f->width <= 0 || f->height <= 0 || !av_pix_fmt_desc_get(f->format))
        return media_fail(src, OM_EMEDIA, 0, "decoder returned a frame without geometry");
    int sw = W, sh = H;
    if (size && size->crop) {
        double s = fmax((double)W / f->width, (double)H / f->height);
        double dw = fmax(W, round(f->width * s)), dh = fmax(H, round(f->height * s));
        if (dw * dh > (double)src->opts.max_pixels)
            return media_fail(src, OM_ERANGE, 0, "%dx%d scaled to %.0fx%.0f before the crop "
                              "exceeds max_pixels %lld", f->width, f->height, dw, dh,
                              (long long)src->opts.max_pixels);
        sw = (int)dw;
        sh = (int)dh;
    }
    src->sws = sws_getCachedContext(src->sws, f->width, f->height, f->format, sw, sh,
                                    AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    if (!src->sws)
        return media_fail(src, OM_EUNSUPPORTED, 0, "cannot convert %s %dx%d to rgb24 %dx%d",
                          av_get_pix_fmt_name(f->format), f->width, f->height, sw, sh);
    /* swscale's unscaled converters (yuv420p -> rgb24 at the same size, widths not a
     * multiple of 16) store whole SIMD words past the end of the last row. */
    uint8_t *rgb = malloc((size_t)W * H * 3 + SWS_TAIL);
    if (!rgb)
        return media_fail(src, OM_ENOMEM, 0, "out of memory");
    uint8_t *dst = rgb;
    if (sw != W || sh != H) {
        size_t need = (size_t)sw * sh * 3 + SWS_TAIL;
        if (need > src->tmp_cap) {
            uint8_t *p = realloc(src->tmp_rgb, need);
            if (!p) {
                free(rgb);
                return media_fail(src, OM_ENOMEM, 0, "out of memory");
            }
            src->tmp_rgb = p;
            src->tmp_cap = need;
        }
        dst = src->tmp_rgb;
    }
    int dst_stride[4] = { sw * 3, 0, 0, 0 };
    uint8_t *dst_data[4] = { dst, NULL, NULL, NULL };
    sws_scale(src->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
              dst_data, dst_stride);
    if (dst != rgb) {
        int x0 = (sw - W) / 2, y0 = (sh - H) / 2;
        for (int y = 0; y < H; y++)
            memcpy(rgb + (size_t)y * W * 3, dst + ((size_t)(y0 + y) * sw + x0) * 3,
                   (size_t)W * 3);
    }
    out->rgb = rgb;
    out->width = W;
    out->height = H;
    return 0;
}

int om_media_read_video(om_media *src, const om_media_size *size, om_media_frame *frame)
{
    if (!src || !frame)
        return OM_EINVAL;
    memset(frame, 0, sizeof(*frame));
    if (!src->fmt)
        return OM_EMEDIA;
    int r = media_open_video(src);
    if (r < 0)
        return r;
    double t = 0;
    if (src->target_active) {
        r = find_target(src, &t);
        src->target_active = 0;
        src->no_skip = 0;
        src->skipped = 0;
    } else {
        r = next_decoded(src, src->vframe, &t);
    }
    if (r != 0)
        return r;
    r = media_convert(src, src->vframe, size, frame);
    av_frame_unref(src->vframe);
    frame->t = t;
    return r;
}

void om_media_frame_free(om_media_frame *frame)
{
    if (!frame)
        return;
    free(frame->rgb);
    memset(frame, 0, sizeof(*frame));
}
