/* test_gpu: the Vulkan runtime core (om_gpu.h) on whatever device the loader offers
 * (lavapipe in CI): open/close, info, buffers, arenas, pipelines, dispatch, barriers,
 * timestamps, errors. Every test ends with zero validation-layer errors. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "om_err.h"
#include "om_gpu.h"

#define WG 64

typedef struct push {
    uint64_t src, dst;
    uint32_t n;
    float    add;
} push;

static om_gpu *open_gpu(void)
{
    om_gpu_opts o = { .quiet = 1 };
    char err[512];
    om_gpu *gpu = NULL;
    int ret = om_gpu_open(&gpu, &o, err, sizeof err);
    if (ret)
        fprintf(stderr, "om_gpu_open: %s\n", err);
    assert_int_equal(ret, OM_OK);
    assert_non_null(gpu);
    return gpu;
}

static void close_gpu(om_gpu *gpu)
{
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
    om_gpu_close(gpu);
}

/* Tests that point the loader elsewhere put the caller's environment back afterwards: a
 * device run may set VK_DRIVER_FILES or VK_LAYER_PATH itself. */
static char *env_save(const char *key)
{
    const char *v = getenv(key);
    return v ? strdup(v) : NULL;
}

static void env_restore(const char *key, char *saved)
{
    if (saved)
        setenv(key, saved, 1);
    else
        unsetenv(key);
    free(saved);
}

static int setup(void **state)
{
    *state = open_gpu();
    return 0;
}

static int teardown(void **state)
{
    close_gpu(*state);
    return 0;
}

static void test_open_close(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        close_gpu(open_gpu());
}

static void test_bad_device(void **state)
{
    (void)state;
    char err[1024];
    om_gpu *gpu = (om_gpu *)&err;   /* must be reset to NULL */
    om_gpu_opts o = { .device = "no-such-device-xyz", .quiet = 1 };
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_ENODEV);
    assert_null(gpu);
    assert_non_null(strstr(err, "OMNID_DEVICE=no-such-device-xyz matches no Vulkan device"));
    assert_non_null(strstr(err, "0: "));   /* lists the devices there are */

    o.device = "97";
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_ENODEV);
    assert_non_null(strstr(err, "OMNID_DEVICE=97"));

    /* The environment variable is used when opts->device is NULL. */
    setenv("OMNID_DEVICE", "nonexistent", 1);
    o.device = NULL;
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_ENODEV);
    assert_non_null(strstr(err, "OMNID_DEVICE=nonexistent"));
    setenv("OMNID_DEVICE", "0", 1);
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_OK);
    close_gpu(gpu);
    unsetenv("OMNID_DEVICE");

    /* A case-insensitive part of the name picks that device. */
    o.device = NULL;
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_OK);
    char name[256], part[8] = { 0 };
    snprintf(name, sizeof name, "%s", om_gpu_get_info(gpu)->name);
    close_gpu(gpu);
    for (int i = 0; i < 4 && name[1 + i]; i++)
        part[i] = (char)toupper((unsigned char)name[1 + i]);
    o.device = part;
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_OK);
    assert_string_equal(om_gpu_get_info(gpu)->name, name);
    close_gpu(gpu);
    o.device = NULL;

    /* No driver at all: the loader finds no ICD (VK_DRIVER_FILES takes precedence over
     * the older VK_ICD_FILENAMES, so both are pointed nowhere). */
    char *icd = env_save("VK_ICD_FILENAMES"), *drv = env_save("VK_DRIVER_FILES");
    setenv("VK_ICD_FILENAMES", "/nonexistent/omnid-test-icd.json", 1);
    setenv("VK_DRIVER_FILES", "/nonexistent/omnid-test-icd.json", 1);
    int ret = om_gpu_open(&gpu, &o, err, sizeof err);
    env_restore("VK_ICD_FILENAMES", icd);
    env_restore("VK_DRIVER_FILES", drv);
    assert_int_equal(ret, OM_ENODEV);
    assert_null(gpu);
    assert_non_null(strstr(err, "no Vulkan driver found"));
}

static void test_info(void **state)
{
    const om_gpu_info *in = om_gpu_get_info(*state);
    assert_true(strlen(in->name) > 0);
    assert_true(in->kind >= OM_DEV_DISCRETE && in->kind <= OM_DEV_OTHER);
    assert_true(in->subgroup_size >= 1 && in->subgroup_size <= 128);
    assert_int_equal(in->subgroup_size & (in->subgroup_size - 1), 0);
    assert_true(in->max_shared_bytes >= 16384);          /* Vulkan minimum */
    assert_true(in->max_push_bytes >= 128);
    assert_true(in->max_alloc_bytes >= (1u << 30));      /* Vulkan 1.1 minimum */
    assert_true(in->device_local_bytes > 0);
    assert_true(in->max_wg_invocations >= 128);
    for (int i = 0; i < 3; i++)
        assert_true(in->max_groups[i] >= 65535);
    assert_true(in->timestamp_period_ns > 0);
    if (in->kind == OM_DEV_CPU)
        assert_true(in->unified_memory);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 131 + (i >> 9));
}

static void roundtrip(om_gpu *gpu, int usage, int expect_map, uint64_t size)
{
    const uint64_t off = 7, n = size - 20;
    om_buf *b = NULL;
    assert_int_equal(om_buf_create(gpu, size, usage, &b), OM_OK);
    assert_int_equal(om_buf_size(b), size);
    assert_true(om_buf_addr(b) != 0);
    assert_int_equal(om_buf_map(b) != NULL, expect_map);
    uint8_t *src = malloc(size), *dst = malloc(size);
    fill(src, size, (unsigned)usage);
    memset(dst, 0xAB, size);
    assert_int_equal(om_buf_write(b, 0, src, size), OM_OK);
    assert_int_equal(om_buf_read(b, off, dst + off, n), OM_OK);
    assert_memory_equal(dst + off, src + off, n);
    assert_int_equal(dst[off - 1], 0xAB);
    assert_int_equal(dst[off + n], 0xAB);
    /* Out of range, including an offset that would wrap. */
    assert_int_equal(om_buf_write(b, size - 3, src, 4), OM_ERANGE);
    assert_non_null(strstr(om_gpu_last_error(gpu), "outside a buffer"));
    assert_int_equal(om_buf_read(b, UINT64_MAX - 1, dst, 4), OM_ERANGE);
    free(src);
    free(dst);
    om_buf_destroy(b);
}

static void test_buffers(void **state)
{
    om_gpu *gpu = *state;
    const uint64_t size = (1u << 20) + 13;
    roundtrip(gpu, OM_BUF_DEVICE, om_gpu_get_info(gpu)->unified_memory, size);
    roundtrip(gpu, OM_BUF_UPLOAD, 1, size);
    roundtrip(gpu, OM_BUF_DOWNLOAD, 1, size);
    om_buf *b = NULL;
    assert_int_equal(om_buf_create(gpu, 0, OM_BUF_DEVICE, &b), OM_EINVAL);
    assert_int_equal(om_buf_create(gpu, 16, 7, &b), OM_EINVAL);
    assert_null(b);
}

static om_pipe *copy_pipe(om_gpu *gpu);
static int copy(om_cmd *c, om_pipe *p, om_buf *src, om_buf *dst, uint32_t n, float add);

/* A kernel sees what staging wrote, and staging reads what the kernel wrote. */
static void staged_dispatch(om_gpu *gpu)
{
    enum { N = 1000 };
    om_buf *a, *b;
    assert_int_equal(om_buf_create(gpu, N * 4, OM_BUF_DEVICE, &a), OM_OK);
    assert_int_equal(om_buf_create(gpu, N * 4, OM_BUF_DEVICE, &b), OM_OK);
    float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)i * 0.5f;
    assert_int_equal(om_buf_write(a, 0, x, sizeof x), OM_OK);
    om_cmd *c;
    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(copy(c, copy_pipe(gpu), a, b, N, 2.0f), OM_OK);
    assert_int_equal(om_cmd_submit(c), OM_OK);
    assert_int_equal(om_buf_read(b, 0, y, sizeof y), OM_OK);
    for (int i = 0; i < N; i++)
        assert_true(y[i] == x[i] + 2.0f);
    om_buf_destroy(a);
    om_buf_destroy(b);
}

/* The same round trip through the staging buffer: OMNID_UNIFIED=0 turns the direct map off. */
static void test_buffers_staging(void **state)
{
    (void)state;
    setenv("OMNID_UNIFIED", "0", 1);
    om_gpu *gpu = open_gpu();
    unsetenv("OMNID_UNIFIED");
    assert_int_equal(om_gpu_get_info(gpu)->unified_memory, 0);
    roundtrip(gpu, OM_BUF_DEVICE, 0, (1u << 20) + 13);
    roundtrip(gpu, OM_BUF_DEVICE, 0, (40u << 20) + 5);     /* more than one 32 MiB staging chunk */
    staged_dispatch(gpu);
    close_gpu(gpu);
}

static void test_too_large(void **state)
{
    om_gpu *gpu = *state;
    uint64_t max = om_gpu_get_info(gpu)->max_alloc_bytes;
    om_buf *b = NULL;
    assert_int_equal(om_buf_create(gpu, max + 1, OM_BUF_DEVICE, &b), OM_ERANGE);
    assert_null(b);
    char want[64];
    snprintf(want, sizeof want, "%llu", (unsigned long long)(max + 1));
    assert_non_null(strstr(om_gpu_last_error(gpu), want));
    snprintf(want, sizeof want, "maxMemoryAllocationSize %llu", (unsigned long long)max);
    assert_non_null(strstr(om_gpu_last_error(gpu), want));
    om_arena *a = NULL;
    assert_int_equal(om_arena_create(gpu, UINT64_MAX, &a), OM_ERANGE);
    assert_null(a);
}

static void test_arena(void **state)
{
    om_gpu *gpu = *state;
    om_arena *a = NULL;
    om_buf *b[3];
    uint64_t off;
    assert_int_equal(om_arena_create(gpu, 4096, &a), OM_OK);
    assert_int_equal(om_arena_alloc(a, 100, &b[0], &off), OM_OK);
    assert_int_equal(off, 0);
    assert_int_equal(om_buf_size(b[0]), 100);
    assert_int_equal(om_arena_used(a), 256);
    assert_int_equal(om_arena_alloc(a, 3000, &b[1], &off), OM_OK);
    assert_int_equal(om_buf_addr(b[1]) - om_buf_addr(b[0]), 256);
    assert_int_equal(om_buf_addr(b[1]) % 256, 0);
    assert_int_equal(om_arena_used(a), 256 + 3072);
    assert_int_equal(om_arena_alloc(a, 769, &b[2], &off), OM_ERANGE);
    assert_non_null(strstr(om_gpu_last_error(gpu), "769 bytes requested, 768 of 4096 free"));
    assert_int_equal(om_arena_alloc(a, 768, &b[2], &off), OM_OK);
    assert_int_equal(om_arena_used(a), 4096);
    assert_int_equal(om_arena_alloc(a, 1, &b[2], &off), OM_ERANGE);

    /* Views address their own bytes: writes to one leave the neighbours intact. */
    uint8_t x[100], y[3000], z[100];
    memset(x, 1, sizeof x);
    memset(y, 2, sizeof y);
    assert_int_equal(om_buf_write(b[0], 0, x, sizeof x), OM_OK);
    assert_int_equal(om_buf_write(b[1], 0, y, sizeof y), OM_OK);
    assert_int_equal(om_buf_read(b[0], 0, z, sizeof z), OM_OK);
    assert_memory_equal(z, x, sizeof x);
    assert_int_equal(om_buf_write(b[0], 1, x, sizeof x), OM_ERANGE);

    om_arena_reset(a);
    assert_int_equal(om_arena_used(a), 0);
    /* After a reset the whole arena is free again: 16 slots of 256 bytes. */
    for (int i = 0; i < 16; i++) {
        om_buf *v;
        assert_int_equal(om_arena_alloc(a, 1, &v, &off), OM_OK);
        assert_int_equal(om_buf_addr(v) - om_buf_addr(b[0]), 256 * i);
    }
    assert_int_equal(om_arena_alloc(a, 1, &b[2], &off), OM_ERANGE);
    om_arena_reset(a);
    om_arena_destroy(a);

    assert_int_equal(om_arena_create(gpu, 1 << 20, &a), OM_OK);
    for (int i = 0; i < 600; i++) {
        om_buf *v;
        assert_int_equal(om_arena_alloc(a, 256, &v, &off), OM_OK);
        assert_int_equal(om_buf_addr(v) % 256, 0);
    }
    assert_int_equal(om_arena_used(a), 600 * 256);
    om_arena_destroy(a);
}

static om_pipe *copy_pipe(om_gpu *gpu)
{
    uint32_t spec[1] = { WG };
    om_pipe *p = NULL;
    assert_int_equal(om_gpu_pipeline(gpu, "copy_test", spec, 1, sizeof(push), &p), OM_OK);
    assert_non_null(p);
    return p;
}

static int copy(om_cmd *c, om_pipe *p, om_buf *src, om_buf *dst, uint32_t n, float add)
{
    push pc = { om_buf_addr(src), om_buf_addr(dst), n, add };
    return om_cmd_dispatch(c, p, &pc, sizeof pc, (n + WG - 1) / WG, 1, 1, &src, 1, &dst, 1);
}

static void test_dispatch(void **state)
{
    om_gpu *gpu = *state;
    om_pipe *p = copy_pipe(gpu), *p2 = copy_pipe(gpu);
    assert_ptr_equal(p, p2);                    /* cached */
    const uint32_t sizes[] = { 1, WG - 1, WG + 1, 1000, 4097 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint32_t n = sizes[s], cap = n + 16;
        om_buf *src, *dst;
        assert_int_equal(om_buf_create(gpu, cap * 4, OM_BUF_UPLOAD, &src), OM_OK);
        assert_int_equal(om_buf_create(gpu, cap * 4, OM_BUF_DEVICE, &dst), OM_OK);
        float *x = malloc(cap * 4), *y = malloc(cap * 4);
        for (uint32_t i = 0; i < cap; i++)
            x[i] = (float)i * 0.25f - 3.0f;
        for (uint32_t i = 0; i < cap; i++)
            y[i] = -1e30f;
        assert_int_equal(om_buf_write(src, 0, x, cap * 4), OM_OK);
        assert_int_equal(om_buf_write(dst, 0, y, cap * 4), OM_OK);
        om_cmd *c;
        assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
        assert_ptr_equal(om_cmd_gpu(c), gpu);
        assert_int_equal(copy(c, p, src, dst, n, 0.5f), OM_OK);
        assert_int_equal(om_cmd_submit(c), OM_OK);
        assert_int_equal(om_buf_read(dst, 0, y, cap * 4), OM_OK);
        for (uint32_t i = 0; i < n; i++)
            assert_true(y[i] == x[i] + 0.5f);
        for (uint32_t i = n; i < cap; i++)         /* the tail group stops at n */
            assert_true(y[i] == -1e30f);
        free(x);
        free(y);
        om_buf_destroy(src);
        om_buf_destroy(dst);
    }
}

/* a -> b -> c -> d: each step reads what the previous wrote, so each needs a barrier;
 * four copies between disjoint buffers (and disjoint arena views) need none. */
static void test_barriers(void **state)
{
    om_gpu *gpu = *state;
    om_pipe *p = copy_pipe(gpu);
    const uint32_t n = 300;
    om_buf *b[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(om_buf_create(gpu, n * 4, OM_BUF_DEVICE, &b[i]), OM_OK);
    float x[300], y[300];
    for (uint32_t i = 0; i < n; i++)
        x[i] = (float)i;
    assert_int_equal(om_buf_write(b[0], 0, x, sizeof x), OM_OK);

    om_cmd *c;
    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(copy(c, p, b[0], b[1], n, 1.0f), OM_OK);
    assert_int_equal(om_cmd_barriers(c), 0);
    assert_int_equal(copy(c, p, b[1], b[2], n, 2.0f), OM_OK);     /* RAW */
    assert_int_equal(om_cmd_barriers(c), 1);
    assert_int_equal(copy(c, p, b[2], b[3], n, 4.0f), OM_OK);     /* RAW */
    assert_int_equal(om_cmd_barriers(c), 2);
    assert_int_equal(copy(c, p, b[0], b[4], n, 8.0f), OM_OK);     /* reads b0 again: none */
    assert_int_equal(om_cmd_barriers(c), 2);
    assert_int_equal(copy(c, p, b[5], b[2], n, 0.0f), OM_OK);     /* WAR on b2 */
    assert_int_equal(om_cmd_barriers(c), 3);
    assert_int_equal(copy(c, p, b[6], b[2], n, 0.0f), OM_OK);     /* WAW on b2 */
    assert_int_equal(om_cmd_barriers(c), 4);
    /* b3 was written before the last barrier: already visible, nothing to wait for. */
    assert_int_equal(om_cmd_copy(c, b[7], 0, b[3], 0, n * 4), OM_OK);
    assert_int_equal(om_cmd_barriers(c), 4);
    assert_int_equal(copy(c, p, b[7], b[5], n, 16.0f), OM_OK);    /* RAW on the copy's output */
    assert_int_equal(om_cmd_barriers(c), 5);
    assert_int_equal(om_cmd_submit(c), OM_OK);
    assert_int_equal(om_buf_read(b[5], 0, y, sizeof y), OM_OK);
    for (uint32_t i = 0; i < n; i++)
        assert_true(y[i] == x[i] + 23.0f);
    assert_int_equal(om_buf_read(b[4], 0, y, sizeof y), OM_OK);
    for (uint32_t i = 0; i < n; i++)
        assert_true(y[i] == x[i] + 8.0f);

    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(copy(c, p, b[i], b[4 + i], n, 1.0f), OM_OK);
    assert_int_equal(om_cmd_barriers(c), 0);
    assert_int_equal(om_cmd_submit(c), OM_OK);

    om_arena *a;
    om_buf *v[4];
    uint64_t off;
    assert_int_equal(om_arena_create(gpu, 4 * n * 4 + 1024, &a), OM_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(om_arena_alloc(a, n * 4, &v[i], &off), OM_OK);
    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(copy(c, p, b[0], v[0], n, 1.0f), OM_OK);
    assert_int_equal(copy(c, p, b[0], v[1], n, 2.0f), OM_OK);
    assert_int_equal(om_cmd_barriers(c), 0);
    assert_int_equal(copy(c, p, v[0], v[2], n, 3.0f), OM_OK);     /* RAW through the arena */
    assert_int_equal(om_cmd_barriers(c), 1);
    assert_int_equal(om_cmd_submit(c), OM_OK);
    assert_int_equal(om_buf_read(v[2], 0, y, sizeof y), OM_OK);
    for (uint32_t i = 0; i < n; i++)
        assert_true(y[i] == x[i] + 4.0f);
    om_arena_destroy(a);
    for (int i = 0; i < 8; i++)
        om_buf_destroy(b[i]);
}

static void test_timestamps(void **state)
{
    om_gpu *gpu = *state;
    om_pipe *p = copy_pipe(gpu);
    const uint32_t n = 1 << 16;
    om_buf *a, *b;
    assert_int_equal(om_buf_create(gpu, n * 4, OM_BUF_DEVICE, &a), OM_OK);
    assert_int_equal(om_buf_create(gpu, n * 4, OM_BUF_DEVICE, &b), OM_OK);
    om_cmd *c;
    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(om_cmd_timestamp(c, "start"), OM_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(copy(c, p, i % 2 ? b : a, i % 2 ? a : b, n, 1.0f), OM_OK);
        char label[16];
        snprintf(label, sizeof label, "copy%d", i);
        assert_int_equal(om_cmd_timestamp(c, label), OM_OK);
    }
    assert_int_equal(om_cmd_submit(c), OM_OK);
    /* A later submit without timestamps (here a staging-free read) keeps the profile. */
    float f;
    assert_int_equal(om_buf_read(a, 0, &f, 4), OM_OK);
    const char *labels[8];
    double ns[8];
    assert_int_equal(om_gpu_timestamps(gpu, labels, ns, 8), 4);
    assert_string_equal(labels[0], "start");
    assert_string_equal(labels[3], "copy2");
    assert_true(ns[0] == 0.0);
    for (int i = 1; i < 4; i++)
        assert_true(ns[i] >= ns[i - 1]);
    assert_true(ns[3] > 0.0);
    assert_int_equal(om_gpu_timestamps(gpu, labels, ns, 2), 2);
    om_buf_destroy(a);
    om_buf_destroy(b);
}

static void test_pipeline_errors(void **state)
{
    om_gpu *gpu = *state;
    om_pipe *p = NULL;
    assert_int_equal(om_gpu_pipeline(gpu, "no_such_shader", NULL, 0, 16, &p), OM_ENOENT);
    assert_null(p);
    assert_non_null(strstr(om_gpu_last_error(gpu), "no_such_shader"));
    /* A module and a layout that disagree about the texel binding are refused, not
     * handed to the driver (lavapipe crashes on it). */
    assert_int_equal(om_gpu_pipeline(gpu, "matvec_f16_tb", NULL, 0, 16, &p), OM_EINVAL);
    assert_non_null(strstr(om_gpu_last_error(gpu), "om_gpu_pipeline_texel"));
    assert_int_equal(om_gpu_pipeline_texel(gpu, "copy_test", NULL, 0, 16, &p), OM_EINVAL);
    uint32_t big = om_gpu_get_info(gpu)->max_push_bytes + 4;
    assert_int_equal(om_gpu_pipeline(gpu, "copy_test", NULL, 0, big, &p), OM_ERANGE);
    assert_non_null(strstr(om_gpu_last_error(gpu), "maxPushConstantsSize"));
    assert_int_equal(om_gpu_pipeline(gpu, "copy_test", NULL, 0, 6, &p), OM_ERANGE);
    uint32_t many[33] = { WG };
    assert_int_equal(om_gpu_pipeline(gpu, "copy_test", many, 33, sizeof(push), &p), OM_ERANGE);
    assert_int_equal(om_gpu_pipeline(gpu, NULL, NULL, 0, 16, &p), OM_EINVAL);
    /* Different specialization constants are different pipelines. */
    uint32_t s1 = 32, s2 = 64;
    om_pipe *a, *b;
    assert_int_equal(om_gpu_pipeline(gpu, "copy_test", &s1, 1, sizeof(push), &a), OM_OK);
    assert_int_equal(om_gpu_pipeline(gpu, "copy_test", &s2, 1, sizeof(push), &b), OM_OK);
    assert_ptr_not_equal(a, b);
}

static void test_dispatch_errors(void **state)
{
    om_gpu *gpu = *state;
    om_pipe *p = copy_pipe(gpu);
    om_buf *a;
    assert_int_equal(om_buf_create(gpu, 64, OM_BUF_DEVICE, &a), OM_OK);
    push pc = { om_buf_addr(a), om_buf_addr(a), 0, 0 };
    uint32_t too_many = om_gpu_get_info(gpu)->max_groups[1] + 1;
    om_cmd *c;
    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(om_cmd_dispatch(c, p, &pc, sizeof pc, 1, too_many, 1, NULL, 0, &a, 1), OM_ERANGE);
    assert_non_null(strstr(om_gpu_last_error(gpu), "maxComputeWorkGroupCount[1]"));
    /* The first error sticks: later calls and the submit report it. */
    assert_int_equal(om_cmd_dispatch(c, p, &pc, sizeof pc, 1, 1, 1, NULL, 0, &a, 1), OM_ERANGE);
    assert_int_equal(om_cmd_submit(c), OM_ERANGE);

    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(om_cmd_dispatch(c, p, &pc, sizeof pc + 8, 1, 1, 1, NULL, 0, &a, 1), OM_EINVAL);
    om_cmd_abort(c);

    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(om_cmd_copy(c, a, 0, a, 32, 33), OM_ERANGE);
    om_cmd_abort(c);
    assert_int_equal(om_cmd_begin(gpu, &c), OM_OK);
    assert_int_equal(om_cmd_copy(c, a, 0, a, 16, 32), OM_EINVAL);   /* overlapping */
    om_cmd_abort(c);
    om_buf_destroy(a);
}

/* The pipeline cache lands in $XDG_CACHE_HOME/omnid/ at close and a garbage file there is
 * ignored. ctest points XDG_CACHE_HOME into the build tree. */
static void test_pipeline_cache(void **state)
{
    (void)state;
    char dir[] = "/tmp/omnid-pcache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *saved = env_save("XDG_CACHE_HOME");
    setenv("XDG_CACHE_HOME", dir, 1);

    om_gpu *gpu = open_gpu();
    copy_pipe(gpu);
    uint32_t vendor = om_gpu_get_info(gpu)->vendor_id, device = om_gpu_get_info(gpu)->device_id;
    char path[512];
    snprintf(path, sizeof path, "%s/omnid/pipelines-%04x-%04x.bin", dir, vendor, device);
    close_gpu(gpu);
    /* At least the VkPipelineCacheHeaderVersionOne (lavapipe stores nothing more). */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint32_t hdr[4] = { 0 };
    assert_int_equal(fread(hdr, 4, 4, f), 4);
    fclose(f);
    assert_true(hdr[0] >= 32);
    assert_int_equal(hdr[1], 1);           /* VK_PIPELINE_CACHE_HEADER_VERSION_ONE */
    assert_int_equal(hdr[2], vendor);

    gpu = open_gpu();                           /* warm */
    copy_pipe(gpu);
    close_gpu(gpu);

    f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc(i * 7, f);
    fclose(f);
    gpu = open_gpu();                           /* garbage: ignored, rewritten at close */
    copy_pipe(gpu);
    close_gpu(gpu);
    f = fopen(path, "rb");                      /* rewritten with the driver's data */
    assert_non_null(f);
    memset(hdr, 0, sizeof hdr);
    assert_int_equal(fread(hdr, 4, 4, f), 4);
    fclose(f);
    assert_int_equal(hdr[1], 1);
    assert_int_equal(hdr[2], vendor);

    unlink(path);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/omnid", dir);
    rmdir(sub);
    rmdir(dir);
    env_restore("XDG_CACHE_HOME", saved);
}

/* The counter behind every "zero validation errors" assert does count: a pipeline layout
 * whose push range is smaller than the shader's block is a validation error. */
static void test_validation_counts(void **state)
{
    (void)state;
    om_gpu_opts o = { .validation = 1, .quiet = 1 };
    char err[256];
    om_gpu *gpu;
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_OK);
    assert_int_equal(om_gpu_validation_errors(gpu), 0);
    fprintf(stderr, "test_validation_counts: one validation error expected below\n");
    om_pipe *p;
    uint32_t spec = WG;
    om_gpu_pipeline(gpu, "copy_test", &spec, 1, 8, &p);
    assert_true(om_gpu_validation_errors(gpu) > 0);
    om_gpu_close(gpu);
}

/* Validation asked for but the layer is not installed: open says so and goes on. */
static void test_no_layer(void **state)
{
    (void)state;
    char *layers = env_save("VK_LAYER_PATH");
    setenv("VK_LAYER_PATH", "/nonexistent/omnid-test-layers", 1);
    om_gpu_opts o = { .validation = 1, .quiet = 1 };
    char err[256];
    om_gpu *gpu = NULL;
    int ret = om_gpu_open(&gpu, &o, err, sizeof err);
    env_restore("VK_LAYER_PATH", layers);
    assert_int_equal(ret, OM_OK);
    close_gpu(gpu);
}

/* OMNID_WEIGHT_ACCESS picks the weight access style at open; nonsense fails the open. */
static void test_weight_access(void **state)
{
    (void)state;
    const char *old = getenv("OMNID_WEIGHT_ACCESS");
    char saved[64] = "";
    if (old)
        snprintf(saved, sizeof saved, "%s", old);
    unsetenv("OMNID_WEIGHT_ACCESS");
    om_gpu *gpu = open_gpu();
    const om_gpu_info info = *om_gpu_get_info(gpu);
    assert_int_equal(info.weight_access, info.kind == OM_DEV_CPU && info.has_texel ? OM_ACCESS_TEXEL
                                                                                   : OM_ACCESS_BDA);
    close_gpu(gpu);

    setenv("OMNID_WEIGHT_ACCESS", "bda", 1);
    gpu = open_gpu();
    assert_int_equal(om_gpu_get_info(gpu)->weight_access, OM_ACCESS_BDA);
    close_gpu(gpu);

    om_gpu_opts o = { .quiet = 1 };
    char err[512];
    setenv("OMNID_WEIGHT_ACCESS", "texel", 1);
    if (info.has_texel) {
        gpu = open_gpu();
        assert_int_equal(om_gpu_get_info(gpu)->weight_access, OM_ACCESS_TEXEL);
        close_gpu(gpu);
    } else {
        assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_EUNSUPPORTED);
        assert_non_null(strstr(err, "OMNID_WEIGHT_ACCESS=texel"));
    }

    setenv("OMNID_WEIGHT_ACCESS", "ssbo", 1);
    assert_int_equal(om_gpu_open(&gpu, &o, err, sizeof err), OM_EINVAL);
    assert_null(gpu);
    assert_non_null(strstr(err, "OMNID_WEIGHT_ACCESS=ssbo: expected bda or texel"));
    if (old)
        setenv("OMNID_WEIGHT_ACCESS", saved, 1);
    else
        unsetenv("OMNID_WEIGHT_ACCESS");
}

/* The push constants of matvec.comp (struct mm_push in runtime/op_matmul.c). */
typedef struct mv_push {
    uint64_t w, x, y;
    uint32_t K, N, M, w_nb[3], x_nb[3], y_nb[3], B2, r2, r3;
} mv_push;

/* Texel views: their extent, binding refused on a pipeline without the binding, and a
 * texel-read weight still counted as a read by the hazard tracking (a copy into it,
 * then the dispatch: one barrier), with the dispatch's numeric result. */
static void test_texel_views(void **state)
{
    om_gpu *gpu = *state;
    const om_gpu_info *info = om_gpu_get_info(gpu);
    if (!info->has_texel)
        skip();
    assert_true(info->max_texel_elements > 0 && info->texel_align > 0);
    om_buf *w, *src, *x, *y;
    assert_int_equal(om_buf_create(gpu, 100, OM_BUF_DEVICE, &w), 0);
    assert_int_equal(om_buf_create(gpu, 16, OM_BUF_DEVICE, &src), 0);
    assert_int_equal(om_buf_create(gpu, 16, OM_BUF_DEVICE, &x), 0);
    assert_int_equal(om_buf_create(gpu, 4, OM_BUF_DEVICE, &y), 0);
    const float wv[4] = { 1, 2, 3, 4 }, xv[4] = { 0.5f, -1, 2, 0.25f };
    assert_int_equal(om_buf_write(src, 0, wv, 16), 0);
    assert_int_equal(om_buf_write(x, 0, xv, 16), 0);

    const uint32_t spec[2] = { info->subgroup_size, 16 };
    om_pipe *tp, *plain = copy_pipe(gpu);
    assert_int_equal(om_gpu_pipeline_texel(gpu, "matvec_f32_tb", spec, 2, sizeof(mv_push), &tp), 0);
    uint32_t base;
    uint64_t limit;
    om_cmd *c;
    assert_int_equal(om_cmd_begin(gpu, &c), 0);
    assert_int_equal(om_cmd_bind_texels(c, plain, w, OM_TEXEL_RGBA32UI, &base, &limit), OM_EINVAL);
    assert_non_null(strstr(om_gpu_last_error(gpu), "no texel binding"));
    om_cmd_abort(c);

    assert_int_equal(om_cmd_begin(gpu, &c), 0);
    assert_int_equal(om_cmd_bind_texels(c, tp, w, OM_TEXEL_RGBA16F, &base, &limit), 0);
    assert_int_equal(base, 0);
    assert_int_equal(limit, 104);            /* 100 bytes in whole 8-byte texels */
    assert_int_equal(om_cmd_bind_texels(c, tp, w, OM_TEXEL_RGBA32UI, &base, &limit), 0);
    assert_int_equal(base, 0);
    assert_int_equal(limit, 112);
    assert_int_equal(om_cmd_copy(c, w, 0, src, 0, 16), 0);
    const mv_push pc = { .w = base, .x = om_buf_addr(x), .y = om_buf_addr(y), .K = 4, .N = 1,
                         .M = 1, .B2 = 1, .r2 = 1, .r3 = 1 };
    assert_int_equal(om_cmd_dispatch(c, tp, &pc, sizeof pc, 1, 1, 1, &w, 1, &y, 1), 0);
    assert_int_equal(om_cmd_barriers(c), 1);
    assert_int_equal(om_cmd_submit(c), 0);
    float got;
    assert_int_equal(om_buf_read(y, 0, &got, 4), 0);
    assert_true(got == 0.5f - 2 + 6 + 1);

    /* an arena view: the view starts at or before it, limit counts from its byte 0 */
    om_arena *a;
    om_buf *v0, *v1;
    uint64_t off;
    assert_int_equal(om_arena_create(gpu, 4096, &a), 0);
    assert_int_equal(om_arena_alloc(a, 10, &v0, &off), 0);
    assert_int_equal(om_arena_alloc(a, 40, &v1, &off), 0);
    assert_int_equal(om_cmd_begin(gpu, &c), 0);
    assert_int_equal(om_cmd_bind_texels(c, tp, v1, OM_TEXEL_RGBA32UI, &base, &limit), 0);
    assert_int_equal(base, 256 % info->texel_align);
    assert_int_equal(base + limit, (base + 40 + 15) / 16 * 16);
    assert_int_equal(om_cmd_bind_texels(c, tp, v1, OM_TEXEL_FORMATS, &base, &limit), OM_EINVAL);
    om_cmd_abort(c);
    om_arena_reset(a);
    om_arena_destroy(a);
    om_buf_destroy(w);
    om_buf_destroy(src);
    om_buf_destroy(x);
    om_buf_destroy(y);
}

int main(void)
{
    const struct CMUnitTest standalone[] = {
        cmocka_unit_test(test_open_close),
        cmocka_unit_test(test_bad_device),
        cmocka_unit_test(test_buffers_staging),
        cmocka_unit_test(test_pipeline_cache),
        cmocka_unit_test(test_validation_counts),
        cmocka_unit_test(test_no_layer),
        cmocka_unit_test(test_weight_access),
    };
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_barriers),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_pipeline_errors),
        cmocka_unit_test(test_dispatch_errors),
        cmocka_unit_test(test_texel_views),
    };
    int fails = cmocka_run_group_tests_name("gpu_standalone", standalone, NULL, NULL);
    fails += cmocka_run_group_tests_name("gpu_shared", shared, setup, teardown);
    return fails;
}
