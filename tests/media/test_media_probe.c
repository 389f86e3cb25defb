/* test_media_probe.c: om_media_open/probe on files the ffmpeg CLI generates, on lavfi
 * URLs, in-memory bytes and the jfk.wav conformance sample; probe fields checked
 * against the generation parameters. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "media_fx.h"
#include "om_err.h"
#include "om_media.h"

static int gen(void **state)
{
    if (fx_setup(state) != 0)
        return -1;
    int r = 0;
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=160x120:rate=25:duration=4 -c:v libx264 -g 25 "
                   "-pix_fmt yuv420p -metadata title='omnid test' %s", fx_path("h264.mp4"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=128x96:rate=10:duration=3 -c:v libvpx-vp9 "
                   "-deadline realtime -cpu-used 8 -g 10 -pix_fmt yuv420p %s",
                   fx_path("vp9.webm"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=96x64:rate=15:duration=2 -c:v mjpeg -q:v 3 "
                   "-pix_fmt yuvj422p %s", fx_path("mjpeg.avi"));
    r |= fx_ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=44100:duration=2 -ac 2 %s",
                   fx_path("sine.wav"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=25 -frames:v 1 -c:v libx264 %s",
                   fx_path("one.mp4"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=160x120:rate=25:duration=2 -f lavfi "
                   "-i sine=frequency=300:sample_rate=48000:duration=2 -c:v libx264 "
                   "-pix_fmt yuv420p -c:a aac -ac 1 -shortest %s", fx_path("av.mp4"));
    return r == 0 ? 0 : -1;
}

static om_media *open_ok(const char *url, om_media_info *info)
{
    om_media *src = NULL;
    char err[512] = "";
    int r = om_media_open(&src, url, NULL, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "open %s: %s\n", url, err);
    assert_int_equal(r, 0);
    assert_non_null(src);
    assert_int_equal(om_media_probe(src, info), 0);
    return src;
}

static const om_media_stream_info *video(const om_media_info *in)
{
    assert_true(in->video_stream >= 0);
    return &in->streams[in->video_stream];
}

static void test_h264_mp4(void **state)
{
    om_media_info in;
    om_media *src = open_ok(fx_path("h264.mp4"), &in);
    assert_string_equal(in.format, "mov,mp4,m4a,3gp,3g2,mj2");
    assert_string_equal(in.title, "omnid test");
    assert_true(fabs(in.duration_s - 4.0) < 0.05);
    assert_true(in.bit_rate > 0);
    assert_int_equal(in.n_streams, 1);
    assert_int_equal(in.audio_stream, -1);
    const om_media_stream_info *v = video(&in);
    assert_int_equal(v->kind, OM_MEDIA_VIDEO);
    assert_string_equal(v->codec, "h264");
    assert_int_equal(v->width, 160);
    assert_int_equal(v->height, 120);
    assert_true(fabs(v->fps_avg - 25.0) < 1e-9);
    assert_true(fabs(v->fps_r - 25.0) < 1e-9);
    assert_string_equal(v->pix_fmt, "yuv420p");
    assert_int_equal(v->frames, 100);
    assert_true(fabs(v->duration_s - 4.0) < 0.05);
    om_media_close(src);
}

static void test_vp9_webm(void **state)
{
    om_media_info in;
    om_media *src = open_ok(fx_path("vp9.webm"), &in);
    assert_string_equal(in.format, "matroska,webm");
    assert_true(fabs(in.duration_s - 3.0) < 0.05);
    const om_media_stream_info *v = video(&in);
    assert_string_equal(v->codec, "vp9");
    assert_int_equal(v->width, 128);
    assert_int_equal(v->height, 96);
    assert_true(fabs(v->fps_r - 10.0) < 1e-9);
    assert_string_equal(v->pix_fmt, "yuv420p");
    assert_int_equal(v->frames, -1);     /* matroska stores no frame count */
    assert_string_equal(in.title, "");
    om_media_close(src);
}

static void test_mjpeg_avi(void **state)
{
    om_media_info in;
    om_media *src = open_ok(fx_path("mjpeg.avi"), &in);
    assert_string_equal(in.format, "avi");
    assert_true(fabs(in.duration_s - 2.0) < 0.05);
    const om_media_stream_info *v = video(&in);
    assert_string_equal(v->codec, "mjpeg");
    assert_int_equal(v->width, 96);
    assert_int_equal(v->height, 64);
    assert_true(fabs(v->fps_avg - 15.0) < 1e-9);
    assert_string_equal(v->pix_fmt, "yuvj422p");
    assert_int_equal(v->frames, 30);
    om_media_close(src);
}

static void test_wav_no_video(void **state)
{
    om_media_info in;
    om_media *src = open_ok(fx_path("sine.wav"), &in);
    assert_string_equal(in.format, "wav");
    assert_true(fabs(in.duration_s - 2.0) < 0.01);
    /* the container rate counts the header too: file bits / duration */
    assert_true(llabs(in.bit_rate - 44100 * 2 * 16) < 1000);
    assert_int_equal(in.video_stream, -1);
    assert_int_equal(in.audio_stream, 0);
    const om_media_stream_info *a = &in.streams[0];
    assert_int_equal(a->kind, OM_MEDIA_AUDIO);
    assert_string_equal(a->codec, "pcm_s16le");
    assert_int_equal(a->sample_rate, 44100);
    assert_int_equal(a->channels, 2);
    assert_int_equal(a->width, 0);

    om_media_frame f;
    assert_int_equal(om_media_read_video(src, NULL, &f), OM_ENOENT);
    assert_non_null(strstr(om_media_last_error(src), "no video stream"));
    assert_non_null(strstr(om_media_last_error(src), "sine.wav"));
    om_media_frame *fr = NULL;
    int n = -1;
    assert_int_equal(om_media_sample_frames(src, 4, 0, NULL, &fr, &n), OM_ENOENT);
    assert_null(fr);
    assert_int_equal(n, 0);
    om_media_close(src);
}

static void test_audio_video_mp4(void **state)
{
    om_media_info in;
    om_media *src = open_ok(fx_path("av.mp4"), &in);
    assert_int_equal(in.n_streams, 2);
    assert_int_equal(in.n_listed, 2);
    const om_media_stream_info *v = video(&in);
    assert_string_equal(v->codec, "h264");
    assert_true(in.audio_stream >= 0);
    const om_media_stream_info *a = &in.streams[in.audio_stream];
    assert_string_equal(a->codec, "aac");
    assert_int_equal(a->sample_rate, 48000);
    assert_int_equal(a->channels, 1);
    assert_true(fabs(in.duration_s - 2.0) < 0.1);
    om_media_close(src);
}

static void test_one_frame(void **state)
{
    om_media_info in;
    om_media *src = open_ok(fx_path("one.mp4"), &in);
    const om_media_stream_info *v = video(&in);
    assert_int_equal(v->frames, 1);
    assert_int_equal(v->width, 64);
    assert_string_equal(v->pix_fmt, "yuv444p");
    assert_true(fabs(in.duration_s - 0.04) < 1e-6);
    om_media_close(src);
}

static void test_lavfi_url(void **state)
{
    om_media_info in;
    om_media *src = open_ok("lavfi:testsrc=size=64x48:rate=30", &in);
    assert_string_equal(in.format, "lavfi");
    assert_true(in.duration_s < 0);          /* an endless source */
    const om_media_stream_info *v = video(&in);
    assert_string_equal(v->codec, "rawvideo");
    assert_int_equal(v->width, 64);
    assert_int_equal(v->height, 48);
    assert_true(fabs(v->fps_r - 30.0) < 1e-9);
    om_media_close(src);
}

static void test_memory(void **state)
{
    size_t n = 0;
    uint8_t *bytes = fx_read(fx_path("vp9.webm"), &n);
    assert_non_null(bytes);
    om_media *src = NULL;
    char err[256];
    assert_int_equal(om_media_open_mem(&src, bytes, n, NULL, err, sizeof(err)), 0);
    om_media_info in;
    assert_int_equal(om_media_probe(src, &in), 0);
    assert_string_equal(in.format, "matroska,webm");
    assert_true(fabs(in.duration_s - 3.0) < 0.05);
    assert_string_equal(video(&in)->codec, "vp9");
    assert_int_equal(video(&in)->width, 128);
    om_media_close(src);
    free(bytes);
}

static void test_jfk(void **state)
{
    const char *path = OMNID_CONFORMANCE_DIR "/audio/jfk.wav";
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_message("jfk.wav not found at %s\n", path);
        skip();
    }
    fclose(f);
    om_media_info in;
    om_media *src = open_ok(path, &in);
    assert_string_equal(in.format, "wav");
    assert_int_equal(in.video_stream, -1);
    const om_media_stream_info *a = &in.streams[in.audio_stream];
    assert_string_equal(a->codec, "pcm_s16le");
    assert_int_equal(a->sample_rate, 16000);
    assert_int_equal(a->channels, 1);
    assert_true(fabs(in.duration_s - 11.0) < 1e-3);
    assert_true(llabs(in.bit_rate - 256000) < 100);
    om_media_close(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_mp4),
        cmocka_unit_test(test_vp9_webm),
        cmocka_unit_test(test_mjpeg_avi),
        cmocka_unit_test(test_wav_no_video),
        cmocka_unit_test(test_audio_video_mp4),
        cmocka_unit_test(test_one_frame),
        cmocka_unit_test(test_lavfi_url),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_jfk),
    };
    return cmocka_run_group_tests(tests, gen, fx_teardown);
}
