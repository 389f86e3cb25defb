/* test_media_sample.c: om_media_sample_frames: uniform targets, the frame shown at each
 * target (checked against the known timestamps and ffmpeg's extraction), seeking
 * instead of decoding everything, fps cap, variable frame rate, a 1-frame file, the
 * decode-through fallback for unknown durations, truncated input. */
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

/* The VFR clip: frames every 0.1 s for 1 s, then every 0.3 s (setpts in the 1/10 s
 * time base of testsrc, so every timestamp is exact). */
#define VFR_FRAMES 30
static double vfr_t(int n) { return n < 10 ? n * 0.1 : 1.0 + (n - 10) * 0.3; }

static int gen(void **state)
{
    if (fx_setup(state) != 0)
        return -1;
    int r = 0;
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=160x120:rate=25:duration=10 -c:v libx264 "
                   "-g 25 -pix_fmt yuv420p %s", fx_path("h264.mp4"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=128x96:rate=10:duration=3 -c:v libvpx-vp9 "
                   "-deadline realtime -cpu-used 8 -g 10 -pix_fmt yuv420p %s",
                   fx_path("vp9.webm"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=10:duration=3 -vf "
                   "\"setpts='if(lt(N,10),N,10+(N-10)*3)'\" -fps_mode vfr "
                   "-c:v libx264 -g 5 -pix_fmt yuv420p %s", fx_path("vfr.mkv"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=25 -frames:v 1 -c:v libx264 %s",
                   fx_path("one.mp4"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=160x120:rate=25:duration=4 -c:v libx264 "
                   "-g 25 -pix_fmt yuv420p -movflags +faststart %s", fx_path("fast.mp4"));
    /* frames at 0, 0.1, 0.2 s then from 5.3 s; 0.1 and 0.2 are non-reference B-frames */
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=10:duration=3 -vf "
                   "\"setpts='if(lt(N,3),N,50+N)'\" -fps_mode vfr -c:v libx264 "
                   "-x264-params bframes=2:b-adapt=0:b-pyramid=none:keyint=100 "
                   "-pix_fmt yuv420p %s", fx_path("gap.mkv"));
    /* no duration anywhere: matroska written to a pipe, a raw H.264 stream */
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=25:duration=4 -c:v libx264 -g 25 "
                   "-pix_fmt yuv420p -f matroska pipe:1 > %s", fx_path("nodur.mkv"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=25:duration=4 -c:v libx264 -g 25 "
                   "-pix_fmt yuv420p %s", fx_path("raw.h264"));
    return r == 0 ? 0 : -1;
}

static om_media *open_ok(const char *url, const om_media_opts *opts)
{
    om_media *src = NULL;
    char err[512] = "";
    int r = om_media_open(&src, url, opts, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "open %s: %s\n", url, err);
    assert_int_equal(r, 0);
    return src;
}

static void test_uniform_h264(void **state)
{
    char file[512];
    snprintf(file, sizeof(file), "%s", fx_path("h264.mp4"));
    om_media *src = open_ok(file, NULL);
    om_media_size size = { 80, 60, 0 };
    om_media_frame *fr = NULL;
    int n = 0;
    assert_int_equal(om_media_sample_frames(src, 8, 0, &size, &fr, &n), 0);
    assert_int_equal(n, 8);
    for (int i = 0; i < n; i++) {
        double target = (i + 0.5) * 10.0 / 8;
        assert_true(fabs(fr[i].t - floor(target * 25 + 1e-9) / 25) < 1e-3);
        assert_int_equal(fr[i].width, 80);
        uint8_t *ref = fx_ref_frame(file, fr[i].t, 80, 60, NULL);
        assert_non_null(ref);
        assert_true(fx_max_diff(fr[i].rgb, ref, 80 * 60 * 3, NULL) <= 1);
        free(ref);
    }
    /* 8 targets in 10 one-second GOPs: at most a GOP per target, not all 250 frames */
    int64_t decoded = om_media_frames_decoded(src);
    print_message("decoded %lld of 250 frames for 8 samples\n", (long long)decoded);
    assert_true(decoded <= 8 * 25);
    assert_true(decoded >= 8);

    /* a second call on the same source gives the same frames */
    om_media_frame *fr2 = NULL;
    int n2 = 0;
    assert_int_equal(om_media_sample_frames(src, 8, 0, &size, &fr2, &n2), 0);
    assert_int_equal(n2, 8);
    for (int i = 0; i < n; i++) {
        assert_true(fr[i].t == fr2[i].t);
        assert_memory_equal(fr[i].rgb, fr2[i].rgb, 80 * 60 * 3);
    }
    om_media_frames_free(fr, n);
    om_media_frames_free(fr2, n2);
    om_media_close(src);
}

static void test_dense_targets_decode_forward(void **state)
{
    /* 40 targets over 100 frames: neighbours share GOPs, so decoding forward between
     * them must keep the total near one pass, not 40 seeks' worth of GOP prefixes. */
    om_media *src = open_ok(fx_path("h264.mp4"), NULL);
    om_media_frame *fr = NULL;
    int n = 0;
    om_media_size size = { 32, 24, 0 };
    assert_int_equal(om_media_sample_frames(src, 40, 0, &size, &fr, &n), 0);
    assert_int_equal(n, 40);
    for (int i = 0; i < n; i++)
        assert_true(fabs(fr[i].t - floor((i + 0.5) * 10.0 / 40 * 25 + 1e-9) / 25) < 1e-3);
    int64_t decoded = om_media_frames_decoded(src);
    print_message("decoded %lld of 250 frames for 40 samples\n", (long long)decoded);
    assert_true(decoded <= 260);
    om_media_frames_free(fr, n);
    om_media_close(src);
}

static void test_fps_cap(void **state)
{
    om_media *src = open_ok(fx_path("h264.mp4"), NULL);
    om_media_frame *fr = NULL;
    int n = 0;
    om_media_size size = { 32, 24, 0 };
    assert_int_equal(om_media_sample_frames(src, 8, 0.5, &size, &fr, &n), 0);
    assert_int_equal(n, 5);                   /* 10 s at <= 0.5 fps */
    for (int i = 0; i < n; i++)
        assert_true(fabs(fr[i].t - (1.0 + 2.0 * i)) < 1e-3);
    om_media_frames_free(fr, n);
    om_media_close(src);
}

static void test_vp9(void **state)
{
    char file[512];
    snprintf(file, sizeof(file), "%s", fx_path("vp9.webm"));
    om_media *src = open_ok(file, NULL);
    om_media_frame *fr = NULL;
    int n = 0;
    assert_int_equal(om_media_sample_frames(src, 5, 0, NULL, &fr, &n), 0);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        assert_true(fabs(fr[i].t - floor((i + 0.5) * 3.0 / 5 * 10 + 1e-9) / 10) < 1e-3);
        uint8_t *ref = fx_ref_frame(file, fr[i].t, 128, 96, NULL);
        assert_non_null(ref);
        assert_true(fx_max_diff(fr[i].rgb, ref, 128 * 96 * 3, NULL) <= 1);
        free(ref);
    }
    om_media_frames_free(fr, n);
    om_media_close(src);
}

static void test_vfr(void **state)
{
    om_media *src = open_ok(fx_path("vfr.mkv"), NULL);
    om_media_info in;
    assert_int_equal(om_media_probe(src, &in), 0);
    assert_true(in.duration_s > vfr_t(VFR_FRAMES - 1));
    const int N = 6;
    om_media_frame *fr = NULL;
    int n = 0;
    assert_int_equal(om_media_sample_frames(src, N, 0, NULL, &fr, &n), 0);
    assert_int_equal(n, N);
    for (int i = 0; i < n; i++) {
        double target = (i + 0.5) * in.duration_s / N;
        int k = 0;
        while (k + 1 < VFR_FRAMES && vfr_t(k + 1) <= target + 1e-9)
            k++;
        if (fabs(fr[i].t - vfr_t(k)) > 1e-3)
            fail_msg("sample %d: t %.3f, want frame %d at %.3f (target %.3f)", i,
                     fr[i].t, k, vfr_t(k), target);
    }
    om_media_frames_free(fr, n);
    om_media_close(src);
}

static void test_gap_after_b_frame(void **state)
{
    /* the frame shown at 4 s is the B-frame at 0.2 s: dropping non-reference frames
     * far before a target must not lose it */
    char file[512];
    snprintf(file, sizeof(file), "%s", fx_path("gap.mkv"));
    om_media *src = open_ok(file, NULL);
    om_media_frame f;
    assert_int_equal(om_media_seek(src, 4.0), 0);
    assert_int_equal(om_media_read_video(src, NULL, &f), 0);
    assert_true(fabs(f.t - 0.2) < 1e-3);
    uint8_t *ref = fx_ref_frame(file, 0.2, 64, 48, NULL);
    assert_non_null(ref);
    assert_true(fx_max_diff(f.rgb, ref, 64 * 48 * 3, NULL) <= 1);
    free(ref);
    om_media_frame_free(&f);
    assert_int_equal(om_media_read_video(src, NULL, &f), 0);
    assert_true(fabs(f.t - 5.3) < 1e-3);
    om_media_frame_free(&f);
    om_media_close(src);
}

static void test_one_frame(void **state)
{
    om_media *src = open_ok(fx_path("one.mp4"), NULL);
    om_media_frame *fr = NULL;
    int n = 0;
    assert_int_equal(om_media_sample_frames(src, 4, 0, NULL, &fr, &n), 0);
    assert_int_equal(n, 1);                   /* one frame serves every target */
    assert_true(fr[0].t < 1e-9);
    assert_int_equal(fr[0].width, 64);
    om_media_frames_free(fr, n);
    om_media_close(src);
}

static void test_unknown_duration(void **state)
{
    /* lavfi: no duration known up front, not seekable: decoded through once */
    om_media *src = open_ok("lavfi:testsrc=size=64x48:rate=10:duration=3", NULL);
    om_media_frame *fr = NULL;
    int n = 0;
    assert_int_equal(om_media_sample_frames(src, 5, 0, NULL, &fr, &n), 0);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        /* uniform by index over 30 frames: sample i lies in segment i, +- one stride */
        assert_true(fr[i].t >= i * 0.6 - 0.4 - 1e-9);
        assert_true(fr[i].t < (i + 1) * 0.6 + 0.4);
        if (i)
            assert_true(fr[i].t > fr[i - 1].t);
    }
    assert_true(fr[0].t < 1e-9);
    assert_true(fr[n - 1].t >= 2.4);
    assert_int_equal(om_media_frames_decoded(src), 30);
    om_media_frames_free(fr, n);
    om_media_close(src);

    /* fewer frames than asked: each once */
    src = open_ok("lavfi:testsrc=size=64x48:rate=10:duration=0.5", NULL);
    assert_int_equal(om_media_sample_frames(src, 8, 0, NULL, &fr, &n), 0);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++)
        assert_true(fabs(fr[i].t - i * 0.1) < 1e-6);
    om_media_frames_free(fr, n);
    om_media_close(src);
}

static void test_no_duration_files(void **state)
{
    const char *names[] = { "nodur.mkv", "raw.h264" };
    for (int k = 0; k < 2; k++) {
        char file[512];
        snprintf(file, sizeof(file), "%s", fx_path(names[k]));
        om_media *src = open_ok(file, NULL);
        om_media_info in;
        assert_int_equal(om_media_probe(src, &in), 0);
        assert_true(in.duration_s < 0);
        om_media_frame *fr = NULL;
        int n = 0;
        assert_int_equal(om_media_sample_frames(src, 4, 0, NULL, &fr, &n), 0);
        assert_int_equal(n, 4);
        assert_int_equal(om_media_frames_decoded(src), 100);   /* decoded through once */
        for (int i = 0; i < n; i++) {
            /* by index over 100 frames at 25 fps: sample i in segment i, +- a stride */
            print_message("%s: sample %d at %.2f s\n", names[k], i, fr[i].t);
            assert_true(fr[i].t >= i * 1.0 - 0.5 && fr[i].t < (i + 1) * 1.0 + 0.5);
            if (i)
                assert_true(fr[i].t > fr[i - 1].t);
        }
        /* the pixels are those of the frame at the reported time (picked by index:
         * the CLI cannot seek in a raw stream either) */
        char vf[64];
        snprintf(vf, sizeof(vf), "select=eq(n\\,%ld)", lround(fr[2].t * 25));
        uint8_t *ref = fx_ref_frame(file, -1, 64, 48, vf);
        assert_non_null(ref);
        assert_true(fx_max_diff(fr[2].rgb, ref, 64 * 48 * 3, NULL) <= 1);
        free(ref);
        /* again on the same source: back to the start, the same frames */
        om_media_frame *fr2 = NULL;
        int n2 = 0;
        int r2 = om_media_sample_frames(src, 4, 0, NULL, &fr2, &n2);
        if (r2) print_message("%s\n", om_media_last_error(src));
        assert_int_equal(r2, 0);
        assert_int_equal(n2, n);
        for (int i = 0; i < n; i++) {
            assert_true(fr2[i].t == fr[i].t);
            assert_memory_equal(fr2[i].rgb, fr[i].rgb, 64 * 48 * 3);
        }
        om_media_frames_free(fr2, n2);
        om_media_frames_free(fr, n);
        if (k == 1) {
            /* a raw stream has no timestamps to seek by: only a rewind works */
            assert_int_equal(om_media_seek(src, 1.0), OM_EUNSUPPORTED);
            assert_non_null(strstr(om_media_last_error(src), "cannot seek"));
            om_media_frame f;
            assert_int_equal(om_media_seek(src, 0), 0);
            assert_int_equal(om_media_read_video(src, NULL, &f), 0);
            assert_true(f.t == 0);
            om_media_frame_free(&f);
        }
        om_media_close(src);
    }
}

static void test_endless_hits_max_duration(void **state)
{
    om_media_opts o;
    om_media_opts_default(&o);
    o.max_duration_s = 2.0;
    om_media *src = open_ok("lavfi:testsrc=size=32x24:rate=100", &o);
    om_media_frame *fr = NULL;
    int n = -1;
    assert_int_equal(om_media_sample_frames(src, 4, 0, NULL, &fr, &n), OM_ERANGE);
    assert_null(fr);
    assert_int_equal(n, 0);
    assert_non_null(strstr(om_media_last_error(src), "max_duration_s"));
    om_media_close(src);
}

static void test_truncated_faststart(void **state)
{
    /* moov first, then 60% of the data: opens, samples stop where the data ends */
    size_t nb = 0;
    uint8_t *bytes = fx_read(fx_path("fast.mp4"), &nb);
    assert_non_null(bytes);
    om_media *src = NULL;
    char err[256];
    assert_int_equal(om_media_open_mem(&src, bytes, nb * 6 / 10, NULL, err, sizeof(err)), 0);
    om_media_frame *fr = NULL;
    int n = 0;
    int r = om_media_sample_frames(src, 8, 0, NULL, &fr, &n);
    assert_int_equal(r, 0);
    print_message("truncated: %d of 8 samples, last at %.2f s\n", n, fr[n - 1].t);
    assert_true(n >= 1 && n < 8);
    for (int i = 1; i < n; i++)
        assert_true(fr[i].t > fr[i - 1].t);
    om_media_frames_free(fr, n);
    om_media_close(src);
    free(bytes);
}

static void test_max_frames(void **state)
{
    om_media_opts o;
    om_media_opts_default(&o);
    o.max_frames = 16;
    om_media *src = open_ok(fx_path("h264.mp4"), &o);
    om_media_frame *fr = NULL;
    int n = 0;
    assert_int_equal(om_media_sample_frames(src, 17, 0, NULL, &fr, &n), OM_ERANGE);
    assert_non_null(strstr(om_media_last_error(src), "max_frames"));
    assert_int_equal(om_media_sample_frames(src, 0, 0, NULL, &fr, &n), OM_EINVAL);
    assert_int_equal(om_media_sample_frames(src, 16, 0, NULL, &fr, &n), 0);
    assert_int_equal(n, 16);
    om_media_frames_free(fr, n);
    om_media_close(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_h264),
        cmocka_unit_test(test_dense_targets_decode_forward),
        cmocka_unit_test(test_fps_cap),
        cmocka_unit_test(test_vp9),
        cmocka_unit_test(test_vfr),
        cmocka_unit_test(test_gap_after_b_frame),
        cmocka_unit_test(test_one_frame),
        cmocka_unit_test(test_unknown_duration),
        cmocka_unit_test(test_no_duration_files),
        cmocka_unit_test(test_endless_hits_max_duration),
        cmocka_unit_test(test_truncated_faststart),
        cmocka_unit_test(test_max_frames),
    };
    return cmocka_run_group_tests(tests, gen, fx_teardown);
}
