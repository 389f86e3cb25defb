/* test_media_errors.c: hostile and broken input, limits, devices, network deadlines,
 * interruption, argument checks and the FFmpeg log hook. Every failure must be a
 * clear code with a message naming the URL or the limit; nothing may crash or hang. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libavutil/log.h>

#include "media_fx.h"
#include "om_err.h"
#include "om_media.h"

extern char **environ;

static int gen(void **state)
{
    if (fx_setup(state) != 0)
        return -1;
    int r = 0;
    r |= fx_ffmpeg("-f lavfi -i testsrc=size=160x120:rate=25:duration=4 -c:v libx264 -g 25 "
                   "-pix_fmt yuv420p %s", fx_path("h264.mp4"));
    r |= fx_ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=8000:duration=1 %s",
                   fx_path("sine.wav"));
    return r == 0 ? 0 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Opens url expecting code; err must contain want (when given). */
static void open_fails(const char *url, const om_media_opts *o, int code, const char *want)
{
    om_media *src = (om_media *)1;
    char err[512] = "";
    int r = om_media_open(&src, url, o, err, sizeof(err));
    print_message("%s -> %s: %s\n", url, om_errname(r), err);
    assert_int_equal(r, code);
    assert_null(src);
    if (want)
        assert_non_null(strstr(err, want));
}

static void test_missing_file(void **state)
{
    open_fails(fx_path("nope.mp4"), NULL, OM_ENOENT, "nope.mp4: cannot open: No such file");
}

static void test_truncated(void **state)
{
    /* moov at the end: the first half has no index at all */
    size_t nb = 0;
    uint8_t *bytes = fx_read(fx_path("h264.mp4"), &nb);
    assert_non_null(bytes);
    assert_int_equal(fx_write(fx_path("half.mp4"), bytes, nb / 2), 0);
    open_fails(fx_path("half.mp4"), NULL, OM_EMEDIA, "Invalid data found");
    om_media *src = NULL;
    char err[256];
    assert_int_equal(om_media_open_mem(&src, bytes, nb / 2, NULL, err, sizeof(err)),
                     OM_EMEDIA);
    assert_non_null(strstr(err, "<memory>"));
    free(bytes);
}

static void test_corrupt(void **state)
{
    uint8_t junk[8192];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    assert_int_equal(fx_write(fx_path("junk.mp4"), junk, sizeof(junk)), 0);
    open_fails(fx_path("junk.mp4"), NULL, OM_EMEDIA, "junk.mp4: ");
    om_media *src = NULL;
    assert_int_equal(om_media_open_mem(&src, junk, sizeof(junk), NULL, NULL, 0), OM_EMEDIA);
    assert_null(src);
}

static void test_damaged_payload(void **state)
{
    /* garbage over a stretch of frame data: those packets are skipped, not fatal */
    size_t nb = 0;
    uint8_t *bytes = fx_read(fx_path("h264.mp4"), &nb);
    assert_non_null(bytes);
    for (size_t i = nb / 5; i < nb / 5 + 3000 && i < nb; i++)
        bytes[i] = (uint8_t)(i * 131);
    om_media *src = NULL;
    assert_int_equal(om_media_open_mem(&src, bytes, nb, NULL, NULL, 0), 0);
    om_media_frame *fr = NULL;
    int n = 0;
    assert_int_equal(om_media_sample_frames(src, 8, 0, NULL, &fr, &n), 0);
    assert_true(n >= 1);
    om_media_frames_free(fr, n);
    om_media_close(src);
    free(bytes);
}

static void test_no_nested_opens(void **state)
{
    /* an uploaded ffconcat list naming a file beside it must not open that file */
    const char *list = "ffconcat version 1.0\nfile h264.mp4\n";
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", fx_path(""));
    assert_int_equal(chdir(dir), 0);
    om_media *src = NULL;
    char err[256] = "";
    int r = om_media_open_mem(&src, list, strlen(list), NULL, err, sizeof(err));
    print_message("ffconcat in memory: %s: %s\n", om_errname(r), err);
    assert_int_equal(r, OM_EMEDIA);
    assert_null(src);

    /* a URL source limited to some protocols */
    om_media_opts o;
    om_media_opts_default(&o);
    o.protocols = "udp";
    r = om_media_open(&src, "h264.mp4", &o, err, sizeof(err));
    print_message("file with protocols=udp: %s: %s\n", om_errname(r), err);
    assert_int_equal(r, OM_EMEDIA);
    o.protocols = "file";
    assert_int_equal(om_media_open(&src, "h264.mp4", &o, err, sizeof(err)), 0);
    om_media_close(src);
    assert_int_equal(chdir(cwd), 0);
}

static void test_unsupported_codec(void **state)
{
    /* a WAVE format tag no decoder knows */
    size_t nb = 0;
    uint8_t *bytes = fx_read(fx_path("sine.wav"), &nb);
    assert_non_null(bytes);
    bytes[20] = 0x34;
    bytes[21] = 0x12;
    om_media *src = NULL;
    assert_int_equal(om_media_open_mem(&src, bytes, nb, NULL, NULL, 0), 0);
    om_media_info in;
    assert_int_equal(om_media_probe(src, &in), 0);
    assert_int_equal(in.n_streams, 1);
    float *pcm = NULL;
    size_t n = 0;
    int r = om_media_read_audio(src, 0, 0, &pcm, &n);
    print_message("tag 0x1234: %s: %s\n", om_errname(r), om_media_last_error(src));
    assert_int_equal(r, OM_EUNSUPPORTED);
    assert_null(pcm);
    assert_non_null(strstr(om_media_last_error(src), "no decoder"));
    om_media_close(src);
    free(bytes);
}

static void test_missing_device(void **state)
{
    open_fails("/dev/video99", NULL, OM_ENODEV, "/dev/video99");
    open_fails("v4l2:/dev/video98", NULL, OM_ENODEV, "cannot open");
}

static void test_bad_arguments(void **state)
{
    om_media *src = NULL;
    char err[256];
    assert_int_equal(om_media_open(&src, NULL, NULL, err, sizeof(err)), OM_EINVAL);
    assert_int_equal(om_media_open(NULL, "x", NULL, NULL, 0), OM_EINVAL);
    assert_int_equal(om_media_open_mem(&src, NULL, 10, NULL, NULL, 0), OM_EINVAL);
    assert_int_equal(om_media_open_mem(&src, "", 0, NULL, err, sizeof(err)), OM_EMEDIA);
    assert_non_null(strstr(err, "empty input"));
    om_media_opts o;
    om_media_opts_default(&o);
    o.format = "no_such_format";
    open_fails(fx_path("h264.mp4"), &o, OM_EUNSUPPORTED, "no_such_format");
    om_media_opts_default(&o);
    o.av_opts = "video_size";
    open_fails(fx_path("h264.mp4"), &o, OM_EINVAL, "av_opts");
    o.av_opts = "video_size=64x48";           /* a V4L2 option: mp4 takes none of it */
    open_fails(fx_path("h264.mp4"), &o, OM_EINVAL, "option 'video_size' not known to mov");
    open_fails("nosuchproto://x", NULL, OM_EUNSUPPORTED, "Protocol not found");
    assert_int_equal(om_media_probe(NULL, NULL), OM_EINVAL);
    assert_int_equal(om_media_seek(NULL, 0), OM_EINVAL);
    om_media_close(NULL);
}

static void test_limits(void **state)
{
    om_media_opts o;
    om_media_opts_default(&o);
    o.max_pixels = 100 * 100;
    open_fails(fx_path("h264.mp4"), &o, OM_ERANGE, "160x120 exceeds max_pixels 10000");

    om_media_opts_default(&o);
    o.max_duration_s = 3.0;
    open_fails(fx_path("h264.mp4"), &o, OM_ERANGE, "max_duration_s");

    om_media_opts_default(&o);
    o.max_mem_bytes = 1000;
    size_t nb = 0;
    uint8_t *bytes = fx_read(fx_path("h264.mp4"), &nb);
    assert_non_null(bytes);
    om_media *src = NULL;
    char err[256];
    assert_int_equal(om_media_open_mem(&src, bytes, nb, &o, err, sizeof(err)), OM_ERANGE);
    assert_non_null(strstr(err, "max_mem_bytes 1000"));

    /* output size is bounded too */
    om_media_opts_default(&o);
    o.max_pixels = 200 * 200;
    assert_int_equal(om_media_open_mem(&src, bytes, nb, &o, NULL, 0), 0);
    om_media_size big = { 400, 400, 0 };
    om_media_frame f;
    assert_int_equal(om_media_read_video(src, &big, &f), OM_ERANGE);
    assert_null(f.rgb);
    assert_non_null(strstr(om_media_last_error(src), "output 400x400 exceeds max_pixels"));
    /* and the scaled image a crop is cut from: 160x120 -> 8x200 needs 267x200 first */
    om_media_size thin = { 8, 200, 1 };
    assert_int_equal(om_media_read_video(src, &thin, &f), OM_ERANGE);
    assert_non_null(strstr(om_media_last_error(src), "267x200 before the crop"));
    om_media_close(src);
    free(bytes);
}

static int free_port(void)
{
    return 20000 + (int)(getpid() % 20000);
}

static void test_udp_timeout(void **state)
{
    om_media_opts o;
    om_media_opts_default(&o);
    o.timeout_ms = 300;
    o.format = "mpegts";
    char url[64];
    snprintf(url, sizeof(url), "udp://127.0.0.1:%d", free_port());
    double t0 = now_s();
    open_fails(url, &o, OM_ETIMEDOUT, "timed out (timeout_ms)");
    double dt = now_s() - t0;
    print_message("udp open gave up after %.2f s\n", dt);
    assert_true(dt < 3.0);
}

static pid_t spawn_sender(int port, double seconds)
{
    char input[128], out[128];
    snprintf(input, sizeof(input), "testsrc=size=64x48:rate=25:duration=%g", seconds);
    snprintf(out, sizeof(out), "udp://127.0.0.1:%d?pkt_size=1316", port);
    char *argv[] = { "ffmpeg", "-nostdin", "-loglevel", "quiet", "-re", "-f", "lavfi",
                     "-i", input, "-c:v", "mpeg2video", "-g", "5", "-f", "mpegts", out, NULL };
    pid_t pid = 0;
    assert_int_equal(posix_spawnp(&pid, "ffmpeg", NULL, NULL, argv, environ), 0);
    return pid;
}

static void *interrupt_later(void *arg)
{
    usleep(300 * 1000);
    om_media_interrupt(arg);
    return NULL;
}

static void test_udp_stream_and_interrupt(void **state)
{
    int port = free_port() + 1;
    pid_t pid = spawn_sender(port, 10.0);  /* killed once read from */
    om_media_opts o;
    om_media_opts_default(&o);
    o.timeout_ms = 8000;
    o.format = "mpegts";
    char url[64];
    snprintf(url, sizeof(url), "udp://127.0.0.1:%d", port);
    om_media *src = NULL;
    char err[256] = "";
    int r = om_media_open(&src, url, &o, err, sizeof(err));
    if (r)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(r, 0);
    om_media_info in;
    assert_int_equal(om_media_probe(src, &in), 0);
    assert_string_equal(in.streams[in.video_stream].codec, "mpeg2video");
    om_media_frame f;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(om_media_read_video(src, NULL, &f), 0);
        assert_int_equal(f.width, 64);
        assert_int_equal(f.height, 48);
        om_media_frame_free(&f);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    /* the sender is gone: a read blocks until another thread interrupts it */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, interrupt_later, src), 0);
    double t0 = now_s();
    do {
        r = om_media_read_video(src, NULL, &f);
        om_media_frame_free(&f);
    } while (r == 0);
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    print_message("read interrupted after %.2f s: %s\n", dt, om_media_last_error(src));
    assert_int_equal(r, OM_ECANCELED);
    assert_true(dt < 3.0);
    om_media_close(src);
}

static void test_rtsp(void **state)
{
    /* we listen (rtsp_flags=listen through av_opts), the CLI pushes a stream to us */
    int port = free_port() + 2;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sleep 0.3; exec ffmpeg -nostdin -loglevel quiet -re -f lavfi "
             "-i testsrc=size=64x48:rate=25:duration=10 -c:v mpeg2video -g 5 -f rtsp "
             "rtsp://127.0.0.1:%d/live", port);
    char *argv[] = { "sh", "-c", cmd, NULL };
    pid_t pid = 0;
    assert_int_equal(posix_spawnp(&pid, "sh", NULL, NULL, argv, environ), 0);
    om_media_opts o;
    om_media_opts_default(&o);
    o.av_opts = "rtsp_flags=listen";
    o.timeout_ms = 5000;
    char url[64];
    snprintf(url, sizeof(url), "rtsp://127.0.0.1:%d/live", port);
    om_media *src = NULL;
    char err[256] = "";
    int r = om_media_open(&src, url, &o, err, sizeof(err));
    if (r)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(r, 0);
    om_media_info in;
    assert_int_equal(om_media_probe(src, &in), 0);
    assert_string_equal(in.format, "rtsp");
    assert_string_equal(in.streams[in.video_stream].codec, "mpeg2video");
    om_media_frame f;
    double prev = -1e9;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(om_media_read_video(src, NULL, &f), 0);
        assert_int_equal(f.width, 64);
        assert_true(f.t > prev);
        prev = f.t;
        om_media_frame_free(&f);
    }
    om_media_close(src);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static int log_lines;
static void count_log(void *opaque, int level, const char *line)
{
    (*(int *)opaque)++;
    assert_true(level <= AV_LOG_ERROR);
    assert_true(line[0] != '\0');
}

static void test_log_hook(void **state)
{
    /* the mov demuxer logs "moov atom not found" at error level */
    om_media_set_log(count_log, &log_lines, AV_LOG_ERROR);
    open_fails(fx_path("half.mp4"), NULL, OM_EMEDIA, NULL);
    om_media_set_log(NULL, NULL, AV_LOG_PANIC);
    print_message("ffmpeg logged %d error lines\n", log_lines);
    assert_true(log_lines > 0);
    int before = log_lines;
    open_fails(fx_path("half.mp4"), NULL, OM_EMEDIA, NULL);
    assert_int_equal(log_lines, before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_damaged_payload),
        cmocka_unit_test(test_no_nested_opens),
        cmocka_unit_test(test_unsupported_codec),
        cmocka_unit_test(test_missing_device),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_udp_timeout),
        cmocka_unit_test(test_udp_stream_and_interrupt),
        cmocka_unit_test(test_rtsp),
        cmocka_unit_test(test_log_hook),
    };
    return cmocka_run_group_tests(tests, gen, fx_teardown);
}
