/* bench_media.c: the N-frame sampler against a full decode of the same file.
 *
 * Generates a 60 s 1280x720 25 fps H.264 file (x264 defaults: keyframe every 250
 * frames) with the ffmpeg CLI, then times, in the same run and on one thread each:
 *   reference  ffmpeg -threads 1 -i F -f null -           (decodes all 1500 frames)
 *   om_media   om_media_sample_frames(N) at 224x224 crop  (N = 8, 32)
 *   om_media   every frame read in order at 224x224       (decode + scale cost)
 * and prints frames/s and the ratio to the reference. Times are CPU seconds (this
 * process, or the ffmpeg child), which a machine shared with other jobs disturbs far
 * less than wall time; everything runs on one thread. Median of 3 runs each.
 * Usage: bench_media [file]   (an existing file skips generation; any length) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_util.h"
#include "om_err.h"
#include "om_media.h"

#define REPS 3

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, REPS, sizeof(*v), cmp_d);
    return v[REPS / 2];
}

static int run(const char *cmd)
{
    int st = system(cmd);
    if (st != 0)
        fprintf(stderr, "bench_media: failed (%d): %s\n", st, cmd);
    return st;
}

/* A benchmark without its input has nothing to report: it stops. */
static om_media *open_or_exit(const char *file)
{
    om_media *src = NULL;
    char err[512];
    if (om_media_open(&src, file, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_media: %s\n", err);
        exit(1);
    }
    return src;
}

/* Samples n frames; returns seconds, *decoded the frames decoded. */
static double time_sample(const char *file, int n, int64_t *decoded)
{
    double t0 = om_bench_cpu_s();
    om_media *src = open_or_exit(file);
    om_media_size size = { 224, 224, 1 };
    om_media_frame *fr = NULL;
    int got = 0;
    int r = om_media_sample_frames(src, n, 0, &size, &fr, &got);
    double dt = om_bench_cpu_s() - t0;
    if (r != 0 || got != n) {
        fprintf(stderr, "bench_media: sampling %d: %s (%d frames)\n", n,
                om_media_last_error(src), got);
        exit(1);
    }
    *decoded = om_media_frames_decoded(src);
    om_media_frames_free(fr, got);
    om_media_close(src);
    return dt;
}

static double time_sequential(const char *file, int64_t *frames)
{
    double t0 = om_bench_cpu_s();
    om_media *src = open_or_exit(file);
    om_media_size size = { 224, 224, 1 };
    om_media_frame f;
    int r;
    *frames = 0;
    while ((r = om_media_read_video(src, &size, &f)) == 0) {
        om_media_frame_free(&f);
        ++*frames;
    }
    double dt = om_bench_cpu_s() - t0;
    if (r != OM_MEDIA_EOF) {
        fprintf(stderr, "bench_media: %s\n", om_media_last_error(src));
        exit(1);
    }
    om_media_close(src);
    return dt;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/om_bench_media_XXXXXX", file[512], cmd[1024];
    int generated = argc < 2;
    if (generated) {
        if (!mkdtemp(dir))
            return 1;
        snprintf(file, sizeof(file), "%s/720p60s.mp4", dir);
        snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -loglevel error -y -f lavfi -i "
                 "testsrc2=size=1280x720:rate=25:duration=60 -c:v libx264 -preset veryfast "
                 "-pix_fmt yuv420p %s", file);
        fprintf(stderr, "bench_media: generating %s\n", file);
        if (run(cmd) != 0)
            return 1;
    } else {
        snprintf(file, sizeof(file), "%s", argv[1]);
    }

    om_media *src = open_or_exit(file);
    om_media_info in;
    om_media_probe(src, &in);
    om_media_close(src);
    const om_media_stream_info *v = &in.streams[in.video_stream];

    double ref[REPS], s8[REPS], s32[REPS], seq[REPS];
    int64_t d8 = 0, d32 = 0, nseq = 0;
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -loglevel error -threads 1 -i %s -f null -",
             file);
    for (int i = 0; i < REPS; i++) {
        double t0 = om_bench_rusage_s(RUSAGE_CHILDREN);
        if (run(cmd) != 0)
            return 1;
        ref[i] = om_bench_rusage_s(RUSAGE_CHILDREN) - t0;
        s8[i] = time_sample(file, 8, &d8);
        s32[i] = time_sample(file, 32, &d32);
        seq[i] = time_sequential(file, &nseq);
    }
    double tr = median(ref), t8 = median(s8), t32 = median(s32), ts = median(seq);
    double frames = v->frames > 0 ? (double)v->frames : (double)nseq;

    printf("## media: %s, %dx%d %s, %.1f s, %.0f frames (median of %d, 1 thread)\n",
           generated ? "testsrc2 H.264 x264 veryfast" : file, v->width, v->height,
           v->codec, in.duration_s, frames, REPS);
    printf("| what | CPU s | frames decoded | output frames/s | CPU time vs reference |\n");
    printf("|---|---|---|---|---|\n");
    printf("| reference: ffmpeg -threads 1 -f null (all frames) | %.3f | %.0f | %.1f | 1.00 |\n",
           tr, frames, frames / tr);
    printf("| om_media_sample_frames N=8, 224x224 | %.3f | %lld | %.1f | %.3f (%.1fx faster) |\n",
           t8, (long long)d8, 8 / t8, t8 / tr, tr / t8);
    printf("| om_media_sample_frames N=32, 224x224 | %.3f | %lld | %.1f | %.3f (%.1fx faster) |\n",
           t32, (long long)d32, 32 / t32, t32 / tr, tr / t32);
    printf("| om_media_read_video all frames, 224x224 | %.3f | %lld | %.1f | %.3f |\n",
           ts, (long long)nseq, nseq / ts, ts / tr);

    if (generated) {
        unlink(file);
        rmdir(dir);
    }
    return 0;
}
