/* test_media_audio.c: om_media_read_audio (16 kHz mono float) against the ffmpeg CLI's
 * "-ar 16000 -ac 1 -f f32le" output of the same files; ranges; jfk.wav. */
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
    /* two different tones per channel so a wrong downmix shows */
    r |= fx_ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=44100:duration=2 -f lavfi "
                   "-i sine=frequency=1000:sample_rate=44100:duration=2 -filter_complex "
                   "'[0][1]amerge=inputs=2' -c:a pcm_s16le %s", fx_path("stereo.wav"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=25:duration=2 -f lavfi "
                   "-i sine=frequency=300:sample_rate=48000:duration=2 -c:v libx264 "
                   "-pix_fmt yuv420p -c:a aac -ac 2 -shortest %s", fx_path("av.mp4"));
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=25:duration=1 -c:v libx264 %s",
                   fx_path("silent.mp4"));
    return r == 0 ? 0 : -1;
}

/* The CLI's 16 kHz mono f32le of file. */
static float *reference(const char *file, size_t *n)
{
    char out[512];
    snprintf(out, sizeof(out), "%s", fx_path("ref.f32"));
    assert_int_equal(fx_ffmpeg("-i %s -vn -ar 16000 -ac 1 -f f32le %s", file, out), 0);
    size_t nb = 0;
    float *ref = (float *)fx_read(out, &nb);
    assert_non_null(ref);
    *n = nb / sizeof(float);
    return ref;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void read_all(const char *file, float **pcm, size_t *n)
{
    om_media *src = NULL;
    char err[512] = "";
    int r = om_media_open(&src, file, NULL, err, sizeof(err));
    if (r)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(r, 0);
    assert_int_equal(om_media_read_audio(src, 0, 0, pcm, n), 0);
    om_media_close(src);
}

static void compare_whole(const char *file, double tol)
{
    float *pcm = NULL, *ref;
    size_t n = 0, nref = 0;
    read_all(file, &pcm, &n);
    ref = reference(file, &nref);
    double d = max_abs_diff(pcm, ref, n < nref ? n : nref);
    print_message("%s: %zu samples (ffmpeg %zu), max diff %.2e\n", file, n, nref, d);
    assert_true(n == nref);
    assert_true(d <= tol);
    double rms = 0;
    for (size_t i = 0; i < n; i++)
        rms += (double)pcm[i] * pcm[i];
    assert_true(sqrt(rms / n) > 0.05);        /* not silence */
    free(pcm);
    free(ref);
}

static void test_stereo_wav(void **state)
{
    compare_whole(fx_path("stereo.wav"), 1e-6);
}

static void test_aac_in_mp4(void **state)
{
    compare_whole(fx_path("av.mp4"), 1e-5);
}

static void test_range(void **state)
{
    char file[512];
    snprintf(file, sizeof(file), "%s", fx_path("stereo.wav"));
    size_t nref = 0;
    float *ref = reference(file, &nref);
    om_media *src = NULL;
    assert_int_equal(om_media_open(&src, file, NULL, NULL, 0), 0);
    float *pcm = NULL;
    size_t n = 0;
    assert_int_equal(om_media_read_audio(src, 0.5, 1.0, &pcm, &n), 0);
    assert_int_equal(n, 16000);
    /* the resampler restarts at 0.5 s: its first filter length differs, the rest not */
    double d = max_abs_diff(pcm + 64, ref + 8000 + 64, 16000 - 64);
    print_message("range 0.5+1.0 s: max diff %.2e\n", d);
    assert_true(d < 1e-4);
    free(pcm);
    /* to the end from 1.5 s */
    assert_int_equal(om_media_read_audio(src, 1.5, 0, &pcm, &n), 0);
    assert_true(n >= 7990 && n <= 8010);
    free(pcm);
    om_media_close(src);
    free(ref);
}

static void test_jfk(void **state)
{
    const char *path = OMNID_CONFORMANCE_DIR "/audio/jfk.wav";
    size_t nb = 0;
    uint8_t *wav = fx_read(path, &nb);
    if (!wav) {
        print_message("jfk.wav not found at %s\n", path);
        skip();
    }
    float *pcm = NULL;
    size_t n = 0;
    read_all(path, &pcm, &n);
    assert_int_equal(n, 176000);              /* README: 11.0 s of 16 kHz mono */
    /* 16 kHz mono s16 needs no resampling: exactly the samples / 32768 */
    size_t off = 12, data = 0;
    while (off + 8 <= nb && !data) {
        uint32_t len = wav[off + 4] | wav[off + 5] << 8 | wav[off + 6] << 16 |
                       (uint32_t)wav[off + 7] << 24;
        if (!memcmp(wav + off, "data", 4))
            data = off + 8;
        off += 8 + len + (len & 1);
    }
    assert_true(data > 0 && data + n * 2 <= nb);
    for (size_t i = 0; i < n; i++) {
        int16_t s = (int16_t)(wav[data + 2 * i] | wav[data + 2 * i + 1] << 8);
        if (pcm[i] != s / 32768.0f)
            fail_msg("sample %zu: %f, want %f", i, pcm[i], s / 32768.0f);
    }
    size_t nref = 0;
    float *ref = reference(path, &nref);
    assert_int_equal(nref, n);
    assert_true(max_abs_diff(pcm, ref, n) == 0);
    free(ref);
    free(pcm);
    free(wav);
}

static void test_no_audio_and_limits(void **state)
{
    om_media *src = NULL;
    float *pcm = NULL;
    size_t n = 7;
    assert_int_equal(om_media_open(&src, fx_path("silent.mp4"), NULL, NULL, 0), 0);
    assert_int_equal(om_media_read_audio(src, 0, 0, &pcm, &n), OM_ENOENT);
    assert_null(pcm);
    assert_int_equal(n, 0);
    assert_non_null(strstr(om_media_last_error(src), "no audio stream"));
    om_media_close(src);

    om_media_opts o;
    om_media_opts_default(&o);
    o.max_audio_s = 1.0;
    assert_int_equal(om_media_open(&src, fx_path("stereo.wav"), &o, NULL, 0), 0);
    assert_int_equal(om_media_read_audio(src, 0, 0, &pcm, &n), OM_ERANGE);
    assert_non_null(strstr(om_media_last_error(src), "max_audio_s"));
    assert_int_equal(om_media_read_audio(src, 0, 1.5, &pcm, &n), OM_ERANGE);
    assert_int_equal(om_media_read_audio(src, 0, -1.0 / 0.0, &pcm, &n), OM_EINVAL);
    assert_int_equal(om_media_read_audio(src, -1, 0.5, &pcm, &n), OM_EINVAL);
    assert_int_equal(om_media_read_audio(src, 1.2, 0, &pcm, &n), 0);
    assert_true(n >= 12790 && n <= 12810);
    free(pcm);
    om_media_close(src);
}

static void test_audio_after_video(void **state)
{
    om_media *src = NULL;
    assert_int_equal(om_media_open(&src, fx_path("av.mp4"), NULL, NULL, 0), 0);
    om_media_frame f;
    assert_int_equal(om_media_read_video(src, NULL, &f), 0);
    om_media_frame_free(&f);
    float *pcm = NULL, *ref;
    size_t n = 0, nref = 0;
    assert_int_equal(om_media_read_audio(src, 0, 0, &pcm, &n), 0);
    ref = reference(fx_path("av.mp4"), &nref);
    print_message("after video: %zu samples (ffmpeg %zu), max diff %.2e\n", n, nref,
                  max_abs_diff(pcm, ref, n < nref ? n : nref));
    assert_true(n == nref);
    assert_true(max_abs_diff(pcm, ref, n) <= 1e-5);
    /* and video again after a seek */
    assert_int_equal(om_media_seek(src, 1.0), 0);
    assert_int_equal(om_media_read_video(src, NULL, &f), 0);
    assert_true(fabs(f.t - 1.0) < 1e-3);
    om_media_frame_free(&f);
    free(pcm);
    free(ref);
    om_media_close(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stereo_wav),
        cmocka_unit_test(test_aac_in_mp4),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_jfk),
        cmocka_unit_test(test_no_audio_and_limits),
        cmocka_unit_test(test_audio_after_video),
    };
    return cmocka_run_group_tests(tests, gen, fx_teardown);
}
