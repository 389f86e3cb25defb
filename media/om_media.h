/* om_media.h: media sources over FFmpeg. Owns demuxing, decoding, seeking, scaling
 * to packed RGB24 (libswscale), resampling audio to 16 kHz mono float (libswresample),
 * uniform frame sampling for video QA, the limits on everything that comes from
 * outside, and the routing of FFmpeg's log. Knows nothing of models or sockets: the
 * daemon maps om_media_info to its own reply.
 *
 * A source is any URL FFmpeg opens (files, rtsp://, udp://, ...), a V4L2 camera
 * ("/dev/videoN" or "v4l2:/dev/videoN"), a libavfilter source graph ("lavfi:testsrc=
 * size=64x48:rate=25"), or bytes in memory (om_media_open_mem).
 *
 * Errors: every function returns 0 or a negative OM_E* code (om_err.h); the message
 * of the last error (URL, what failed, FFmpeg's av_strerror text, or the limit that
 * was exceeded) is in om_media_last_error(). A source is used by one thread at a
 * time; only om_media_interrupt() may be called from another thread. */
#ifndef OM_MEDIA_H
#define OM_MEDIA_H

#include <stddef.h>
#include <stdint.h>

typedef struct om_media om_media;

#define OM_MEDIA_EOF 1                 /* positive: end of stream, not an error */
#define OM_MEDIA_MAX_STREAMS 16        /* om_media_info lists at most this many */

/* Limits and settings; om_media_opts_default() fills the defaults shown. A field
 * set to 0 (or NULL) also means its default. */
typedef struct om_media_opts {
    double      max_duration_s;        /* 14400 (4 h): known duration, or decoding through */
    int64_t     max_pixels;            /* 8192*8192: width*height of the source and output */
    int         max_frames;            /* 1024: frames one sampling call may return */
    double      max_audio_s;           /* 3600: seconds one audio read may return */
    size_t      max_mem_bytes;         /* 1 GiB: size of an in-memory input */
    int         timeout_ms;            /* 10000: deadline of each open and each read */
    const char *format;                /* force an input format ("mpegts"); NULL: guess */
    const char *av_opts;               /* demuxer/device options "k=v:k=v" (video_size=640x480) */
    const char *protocols;             /* FFmpeg protocol_whitelist ("file,udp,rtp,rtsp,tcp")
                                          for URLs from clients; NULL: all. Memory input
                                          allows none: no nested opens (concat, hls) */
    int         threads;               /* 1: decoder threads (0 keeps 1: the daemon runs
                                          stages in parallel already) */
} om_media_opts;

enum om_media_kind { OM_MEDIA_VIDEO, OM_MEDIA_AUDIO, OM_MEDIA_SUBTITLE, OM_MEDIA_DATA,
                     OM_MEDIA_OTHER };

typedef struct om_media_stream_info {
    int     index;                     /* stream index in the container */
    int     kind;                      /* enum om_media_kind */
    char    codec[32];                 /* FFmpeg codec name: "h264", "vp9", "pcm_s16le" */
    int     width, height;             /* video; 0 otherwise */
    double  fps_avg, fps_r;            /* video avg_frame_rate and r_frame_rate; 0: unknown */
    char    pix_fmt[32];               /* video: "yuv420p"; "" when unknown */
    int     sample_rate, channels;     /* audio; 0 otherwise */
    int64_t frames;                    /* frame count from the container; -1: unknown */
    double  duration_s;                /* stream duration; -1: unknown */
} om_media_stream_info;

typedef struct om_media_info {
    char    format[64];                /* container: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm" */
    double  duration_s;                /* -1: unknown (live streams, some raw formats) */
    int64_t bit_rate;                  /* bits/s; 0: unknown */
    char    title[256];                /* metadata "title"; "" when absent */
    int     n_streams;                 /* streams in the container (may exceed the list) */
    int     n_listed;                  /* entries filled in streams[] */
    int     video_stream, audio_stream;/* index into streams[] of the streams decoded;
                                          -1: none (or not among the streams listed) */
    om_media_stream_info streams[OM_MEDIA_MAX_STREAMS];
} om_media_info;

/* Output geometry of decoded video. width = height = 0 keeps the source size. With
 * crop = 0 the frame is scaled to exactly width x height (aspect not kept); with
 * crop = 1 its shortest side is scaled to fit and the centre is cropped. Bicubic. */
typedef struct om_media_size {
    int width, height;
    int crop;
} om_media_size;

/* One decoded frame; the caller owns rgb (om_media_frame_free). */
typedef struct om_media_frame {
    double   t;                        /* presentation time in seconds from the source start */
    int      width, height;
    uint8_t *rgb;                      /* width*height*3 bytes, packed RGB24, rows top first */
} om_media_frame;

void om_media_opts_default(om_media_opts *opts);

/* Opens a source and finds its streams. opts may be NULL (defaults). On failure
 * *out is NULL and err (if given) holds the message. */
int  om_media_open(om_media **out, const char *url, const om_media_opts *opts,
                   char *err, size_t errlen);
/* Opens size bytes at data as a file (the daemon's uploaded media). The bytes are not
 * copied: they must stay valid until om_media_close. */
int  om_media_open_mem(om_media **out, const void *data, size_t size,
                       const om_media_opts *opts, char *err, size_t errlen);
void om_media_close(om_media *src);
const char *om_media_last_error(const om_media *src);

/* Makes the current blocking call, and every later one, return OM_ECANCELED (the
 * source is then only good for closing). Thread-safe. A blocking open is bounded by
 * timeout_ms instead: its source is not returned before it finishes. */
void om_media_interrupt(om_media *src);

/* Describes the source (cheap: filled at open). */
int  om_media_probe(om_media *src, om_media_info *info);

/* Video frames decoded since open: what seeking saved (tests, daemon metrics). */
int64_t om_media_frames_decoded(const om_media *src);

/* Positions the video stream so the next om_media_read_video returns the frame shown
 * at t seconds (seeks to the keyframe before t and decodes forward). */
int  om_media_seek(om_media *src, double t);

/* Decodes the next video frame to RGB24 at *size (NULL: source size) into *frame.
 * Returns 0, OM_MEDIA_EOF at the end, or an error (OM_ENOENT: no video stream). */
int  om_media_read_video(om_media *src, const om_media_size *size, om_media_frame *frame);
void om_media_frame_free(om_media_frame *frame);

/* Samples up to n frames uniformly over the clip: the frames shown at the centres of
 * n equal time segments, found by seeking to the keyframe before each target and
 * decoding forward (not the whole file). fps_cap > 0 lowers n to duration*fps_cap
 * (at least 1). A frame that serves two targets is returned once, so a 1-frame file
 * gives 1 frame; *n_out <= n. When the duration is unknown the clip is decoded
 * through once instead and frames are picked uniformly by index (bounded by
 * max_duration_s). *frames is an array of *n_out frames, freed with
 * om_media_frames_free. n > max_frames is OM_ERANGE. Afterwards the read position
 * is unspecified: om_media_seek before reading on. Meant for clips, not live streams
 * (those read frames in order with om_media_read_video). */
int  om_media_sample_frames(om_media *src, int n, double fps_cap, const om_media_size *size,
                            om_media_frame **frames, int *n_out);
void om_media_frames_free(om_media_frame *frames, int n);

/* Decodes the audio stream from start_s for dur_s seconds (dur_s <= 0: to the end)
 * to 16 kHz mono float, full scale 1.0 (libswresample's default downmix and filter,
 * as `ffmpeg -ar 16000 -ac 1`). *pcm is malloc'd, the caller frees it. More than
 * max_audio_s seconds is OM_ERANGE; OM_ENOENT when the source has no audio stream.
 * Moves the read position: om_media_seek before reading video again. */
int  om_media_read_audio(om_media *src, double start_s, double dur_s,
                         float **pcm, size_t *n_samples);

#define OM_MEDIA_AUDIO_RATE 16000

/* FFmpeg's log goes to fn (NULL: stderr, prefixed "ffmpeg: ") for messages at or
 * above level, an AV_LOG_* value. The default is AV_LOG_PANIC: damaged input makes
 * FFmpeg log even at AV_LOG_FATAL, and a daemon's log must not fill with it. Errors
 * reach callers anyway: FFmpeg's last error line of a failing call is appended to
 * om_media_last_error(). Process-wide; call before opening sources. */
typedef void (*om_media_log_fn)(void *opaque, int av_level, const char *line);
void om_media_set_log(om_media_log_fn fn, void *opaque, int av_level);

#endif
