/* media_internal.h: the om_media source shared by the media/ sources; not installed. */
#ifndef MEDIA_INTERNAL_H
#define MEDIA_INTERNAL_H

#include <stdatomic.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "om_media.h"

/* Consecutive undecodable packets tolerated before a stream counts as corrupt. */
#define MEDIA_MAX_BAD_PACKETS 64

struct om_media {
    om_media_opts    opts;
    char             url[512];          /* as given (cut to fit), for messages */
    char            *open_url;          /* as given, for media_reopen; NULL: memory */
    char             err[1400];        /* url + what + av_strerror + FFmpeg's line */
    om_media_info    info;

    AVFormatContext *fmt;
    AVIOContext     *avio;              /* memory input only; owns its buffer */
    const uint8_t   *mem;
    size_t           mem_size;
    int64_t          mem_pos;

    int64_t          deadline_us;       /* av_gettime_relative() bound of the current call */
    atomic_int       interrupted;

    int              vidx, aidx;        /* container stream indexes; -1: none */
    int64_t          start_us;          /* container start time; 0 when unknown */
    AVPacket        *pkt;
    int              demux_eof;
    int              moved;             /* packets were read: a read from the start must seek */

    /* video */
    AVCodecContext  *vdec;
    int              vdec_eof;          /* decoder drained after the demuxer's end */
    int              bad_packets;
    int64_t          n_decoded;
    AVFrame         *vframe;            /* scratch */
    AVFrame         *held;              /* last frame at or before the target */
    AVFrame         *pending;           /* decoded, not yet returned */
    int              has_pending;
    int              target_active;
    double           target_t;
    int              first_after_seek;
    int              skipped;           /* non-reference frames were dropped since the seek */
    int              no_skip;           /* this target is decoded without dropping any */
    int              seek_retries;
    double           next_synth_t;      /* time for frames without timestamps */
    double           last_t;            /* time of the last decoded frame; -1: none yet */
    struct SwsContext *sws;
    uint8_t         *tmp_rgb;           /* pre-crop scaled image */
    size_t           tmp_cap;

    /* audio */
    AVCodecContext  *adec;
    AVFrame         *aframe;
    int              adec_eof;
    SwrContext      *swr;
};

/* Formats "<url>: <what>[: <FFmpeg message>]" into src->err and returns code. */
int media_fail(om_media *src, int code, int averr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps an AVERROR to an OM_E* code (interrupts to OM_ETIMEDOUT/OM_ECANCELED). */
int media_averr(om_media *src, int averr);
/* Starts the deadline of one blocking call. */
void media_arm(om_media *src);
/* Opens the decoder of stream idx (lazily, on first use). */
int media_open_decoder(om_media *src, int idx, AVCodecContext **out);
/* The video decoder (src->vdec), opened on first use; OM_ENOENT without a video stream. */
int media_open_video(om_media *src);
/* Opens the source again from its start: the rewind of inputs whose demuxer cannot
 * seek (raw streams without timestamps). On failure src->fmt is NULL and every call
 * but om_media_close returns OM_EMEDIA (src->err says why). */
int media_reopen(om_media *src);
/* Seconds from the container start for ts in stream idx's time base. */
double media_ts_to_s(const om_media *src, int idx, int64_t ts);
int64_t media_s_to_ts(const om_media *src, int idx, double t);

/* media_video.c */
int media_read_packet(om_media *src, int idx);      /* 0, OM_MEDIA_EOF or an error */
/* Next frame of stream idx from dec: 0, OM_MEDIA_EOF or an error. Skips undecodable
 * packets up to MEDIA_MAX_BAD_PACKETS in a row. */
int media_decode(om_media *src, AVCodecContext *dec, int idx, int *dec_eof, AVFrame *out);
/* Forgets the decode position of the video stream after another stream moved it. */
void media_video_reset(om_media *src);
int media_next_frame(om_media *src, double *t);    /* next frame into src->vframe */
int media_seek_video(om_media *src, double t);
void media_video_target(om_media *src, double t);
int media_convert(om_media *src, const AVFrame *f, const om_media_size *size,
                  om_media_frame *out);
double media_frame_t(om_media *src, const AVFrame *f);

#endif
