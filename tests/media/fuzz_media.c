/* fuzz_media.c: libFuzzer target (OMNID_FUZZ=ON): fuzz bytes opened as an in-memory
 * file, probed, a few frames decoded and sampled, a second of audio resampled. Also
 * linked into test_media_corpus, which replays the corpus and mutations of it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "om_media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    om_media_opts o;
    om_media_opts_default(&o);
    /* small bounds keep each input fast; the limits themselves are under test */
    o.max_pixels = 1024 * 1024;
    o.max_duration_s = 60;
    o.max_frames = 8;
    o.max_audio_s = 2;
    o.max_mem_bytes = 1 << 20;
    o.timeout_ms = 2000;
    om_media *src = NULL;
    if (om_media_open_mem(&src, data, size, &o, NULL, 0) != 0)
        return 0;
    om_media_info info;
    om_media_probe(src, &info);
    om_media_size sz = { 24, 16, 1 };
    om_media_frame f;
    for (int i = 0; i < 3 && om_media_read_video(src, &sz, &f) == 0; i++)
        om_media_frame_free(&f);
    om_media_frame *fr = NULL;
    int n = 0;
    if (om_media_sample_frames(src, 3, 0, &sz, &fr, &n) == 0)
        om_media_frames_free(fr, n);
    float *pcm = NULL;
    size_t ns = 0;
    if (om_media_read_audio(src, 0, 1.0, &pcm, &ns) == 0)
        free(pcm);
    om_media_close(src);
    return 0;
}
