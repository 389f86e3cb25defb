/* media_fx.h: test fixtures for tests/media: a temp directory per test program,
 * media generated into it with the ffmpeg CLI, and raw reference frames/samples
 * extracted by the same CLI. */
#ifndef MEDIA_FX_H
#define MEDIA_FX_H

#include <stddef.h>
#include <stdint.h>

/* Creates the temp directory (cmocka group setup) / removes it (group teardown). */
int fx_setup(void **state);
int fx_teardown(void **state);

/* "<tempdir>/<name>" in a static ring of buffers (valid for a few calls). */
const char *fx_path(const char *name);

/* Runs "ffmpeg -nostdin -y -loglevel error <args>" (args are printf-formatted) and
 * returns its exit status; prints the command when it fails. */
int fx_ffmpeg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a whole file (malloc'd) or returns NULL. */
uint8_t *fx_read(const char *path, size_t *n);
int fx_write(const char *path, const void *data, size_t n);

/* The frame ffmpeg extracts at t seconds (t < 0: no -ss, the first frame vf passes),
 * scaled to w x h rgb24 with the filter chain vf (NULL = plain -s scaling); malloc'd
 * w*h*3 bytes or NULL. */
uint8_t *fx_ref_frame(const char *file, double t, int w, int h, const char *vf);

/* Largest absolute difference of two byte buffers, and the mean one. */
int fx_max_diff(const uint8_t *a, const uint8_t *b, size_t n, double *mean);

#endif
