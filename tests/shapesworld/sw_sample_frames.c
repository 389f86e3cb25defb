/* sw_sample_frames.c: what omnid's decoder makes of a video, for the ShapesWorld test.
 *
 * Usage: sw_sample_frames FILE N SIZE OUT.rgb
 * Samples N frames with om_media_sample_frames (as the daemon does: no fps cap; SIZE 0
 * keeps the source size, else squashed to SIZE x SIZE, bicubic), prints each frame's
 * time in seconds on its own line and writes the frames, RGB24, one after the other to
 * OUT.rgb. */
#include <stdio.h>
#include <stdlib.h>

#include "om_media.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: sw_sample_frames FILE N SIZE OUT.rgb\n");
        return 64;
    }
    om_media *src = NULL;
    char err[512] = "";
    if (om_media_open(&src, argv[1], NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "sw_sample_frames: %s\n", err);
        return 1;
    }
    int size = atoi(argv[3]);
    om_media_size sz = { size, size, 0 };
    om_media_frame *fr = NULL;
    int n = 0;
    if (om_media_sample_frames(src, atoi(argv[2]), 0, &sz, &fr, &n) != 0) {
        fprintf(stderr, "sw_sample_frames: %s\n", om_media_last_error(src));
        om_media_close(src);
        return 1;
    }
    FILE *out = fopen(argv[4], "wb");
    int rc = out ? 0 : 1;
    for (int i = 0; i < n && !rc; i++) {
        printf("%.6f\n", fr[i].t);
        size_t bytes = (size_t)fr[i].width * fr[i].height * 3;
        rc = fwrite(fr[i].rgb, 1, bytes, out) != bytes;
    }
    if (out && fclose(out) != 0)
        rc = 1;
    if (rc)
        fprintf(stderr, "sw_sample_frames: cannot write %s\n", argv[4]);
    om_media_frames_free(fr, n);
    om_media_close(src);
    return rc;
}
