/* test_media_corpus.c: every seed in tests/media/corpus opens from memory and decodes
 * (so the seeds stay meaningful), and the fuzz target runs on each seed and on
 * deterministic mutations of it (truncations, byte flips) without a crash, a leak
 * or a sanitizer report. */
#include <dirent.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATIONS 64

static void seed_decodes(const char *name, const uint8_t *data, size_t n)
{
    om_media *src = NULL;
    char err[512] = "";
    int r = om_media_open_mem(&src, data, n, NULL, err, sizeof(err));
    if (r)
        fail_msg("%s: %s", name, err);
    om_media_info in;
    assert_int_equal(om_media_probe(src, &in), 0);
    int decoded = 0;
    if (in.video_stream >= 0) {
        om_media_frame *fr = NULL;
        int nf = 0;
        assert_int_equal(om_media_sample_frames(src, 2, 0, NULL, &fr, &nf), 0);
        decoded += nf;
        om_media_frames_free(fr, nf);
    }
    if (in.audio_stream >= 0) {
        float *pcm = NULL;
        size_t ns = 0;
        assert_int_equal(om_media_read_audio(src, 0, 0, &pcm, &ns), 0);
        decoded += ns > 0;
        free(pcm);
    }
    assert_true(decoded > 0);
    om_media_close(src);
}

static void test_corpus(void **state)
{
    DIR *d = opendir(MEDIA_CORPUS_DIR);
    assert_non_null(d);
    struct dirent *e;
    int seeds = 0;
    uint32_t x = 0x9e3779b9u;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", MEDIA_CORPUS_DIR, e->d_name);
        size_t n = 0;
        uint8_t *data = fx_read(path, &n);
        assert_non_null(data);
        assert_true(n <= 20 * 1024);
        seed_decodes(e->d_name, data, n);
        LLVMFuzzerTestOneInput(data, n);
        uint8_t *m = malloc(n);
        assert_non_null(m);
        for (int k = 0; k < MUTATIONS; k++) {
            memcpy(m, data, n);
            size_t len = n;
            if (k % 3 == 0) {
                len = n * (size_t)(k + 1) / (MUTATIONS + 1);
            } else {
                for (int j = 0; j < 1 + k; j++) {
                    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
                    m[x % n] ^= (uint8_t)(x >> 24) | 1;
                }
            }
            LLVMFuzzerTestOneInput(m, len);
        }
        free(m);
        free(data);
        seeds++;
    }
    closedir(d);
    print_message("%d seeds, %d mutations each\n", seeds, MUTATIONS);
    assert_true(seeds >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
