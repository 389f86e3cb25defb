/* media_fx.c: see media_fx.h. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media_fx.h"

static char fx_dir[256];

int fx_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fx_dir, sizeof(fx_dir), "%s/om_media_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(fx_dir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int fx_teardown(void **state)
{
    return fx_dir[0] ? nftw(fx_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) : 0;
}

const char *fx_path(const char *name)
{
    static char ring[8][512];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, 512, "%s/%s", fx_dir, name);
    return p;
}

int fx_ffmpeg(const char *fmt, ...)
{
    char args[2048], cmd[2300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -hide_banner -y -loglevel error %s", args);
    int st = system(cmd);
    if (st != 0)
        fprintf(stderr, "fx: failed (%d): %s\n", st, cmd);
    return st;
}

uint8_t *fx_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *n = (size_t)size;
    return buf;
}

int fx_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

uint8_t *fx_ref_frame(const char *file, double t, int w, int h, const char *vf)
{
    const char *out = fx_path("ref_frame.rgb");
    char filt[512];
    if (vf && *vf)
        snprintf(filt, sizeof(filt), "-vf '%s'", vf);
    else
        snprintf(filt, sizeof(filt), "-s %dx%d", w, h);
    char ss[64] = "";
    if (t >= 0)
        snprintf(ss, sizeof(ss), "-ss %.6f", t);
    if (fx_ffmpeg("%s -i %s -frames:v 1 %s -f rawvideo -pix_fmt rgb24 %s",
                  ss, file, filt, out) != 0)
        return NULL;
    size_t n = 0;
    uint8_t *buf = fx_read(out, &n);
    if (buf && n != (size_t)w * h * 3) {
        fprintf(stderr, "fx: reference frame has %zu bytes, want %d\n", n, w * h * 3);
        free(buf);
        return NULL;
    }
    return buf;
}

int fx_max_diff(const uint8_t *a, const uint8_t *b, size_t n, double *mean)
{
    int mx = 0;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        sum += d;
        if (d > mx)
            mx = d;
    }
    if (mean)
        *mean = n ? sum / n : 0;
    return mx;
}
