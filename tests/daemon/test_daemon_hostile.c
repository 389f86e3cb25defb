/* Hostile requests: each gets an `error` naming what was wrong, while another
 * client keeps being served by the same daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dtest.h"
#include "om_err.h"

static dt_daemon *g_d;
static void *g_bad, *g_good;

static int setup(void **state)
{
    om_config cfg;
    char err[256];
    dt_config(&cfg);
    if (om_config_set(&cfg, "limits.max_total_bytes=65536", err, sizeof err))
        return -1;
    g_d = dt_daemon_start(&cfg);
    om_config_free(&cfg);
    if (!g_d)
        return -1;
    g_bad = dt_client(dt_endpoint(g_d, "front"));
    g_good = dt_client(dt_endpoint(g_d, "front"));
    return 0;
}

static int teardown(void **state)
{
    zmq_close(g_bad);
    zmq_close(g_good);
    dt_daemon_stop(g_d);
    dt_ctx_done();
    return 0;
}

/* Sends frames from the bad client, expects one error with code and a message
 * containing `what`, then checks the good client is still answered. */
static void expect_error(const void *const *frames, const size_t *sizes, int n, const char *code,
                         const char *what)
{
    static uint64_t good_id = 1000;
    dt_result r;
    assert_int_equal(dt_send_raw(g_bad, frames, sizes, n), 0);
    dt_recv(g_bad, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_ERROR);
    assert_int_equal(r.n, 1);
    if (getenv("DT_VERBOSE"))
        fprintf(stderr, "%s: %s\n", r.code, r.message);
    if (strcmp(r.code, code) || !strstr(r.message, what))
        fail_msg("expected %s containing '%s', got %s '%s'", code, what, r.code, r.message);
    dt_call(g_good, "health", ++good_id, NULL, 0, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_int_equal(r.id, good_id);
}

static size_t pack_request(char *out, size_t cap, const char *op, int id_as_str)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    om_pack_kv_u64(&pk, "v", 1);
    om_pack_kv_str(&pk, "op", op);
    if (id_as_str)
        om_pack_kv_str(&pk, "id", "seven");
    else
        om_pack_kv_u64(&pk, "id", 7);
    size_t n = sb.size < cap ? sb.size : cap;
    memcpy(out, sb.data, n);
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static void test_truncated(void **state)
{
    char buf[128];
    size_t n = pack_request(buf, sizeof buf, "health", 0);
    const void *f[] = { buf };
    size_t s[] = { n - 3 };
    expect_error(f, s, 1, "EFORMAT", "truncated");
}

static void test_wrong_types(void **state)
{
    char buf[128];
    size_t n = pack_request(buf, sizeof buf, "health", 1);
    const void *f[] = { buf };
    size_t s[] = { n };
    expect_error(f, s, 1, "EFORMAT", "id");
    /* Frame 0 not a map at all. */
    const void *f2[] = { "\x93\x01\x02\x03" };
    size_t s2[] = { 4 };
    expect_error(f2, s2, 1, "EFORMAT", "map");
}

static void test_huge_declared_size(void **state)
{
    /* {"v":1,"op": str32 of 4 GiB - 1 bytes} with 3 bytes present. */
    const char buf[] = "\x83\xa1v\x01\xa2op\xdb\xff\xff\xff\xff" "abc";
    const void *f[] = { buf };
    size_t s[] = { sizeof buf - 1 };
    expect_error(f, s, 1, "ERANGE", "4294967295 bytes");
    /* An array claiming 2^32-1 elements. */
    const char arr[] = "\x81\xa4" "args" "\xdd\xff\xff\xff\xff\x01";
    const void *f2[] = { arr };
    size_t s2[] = { sizeof arr - 1 };
    expect_error(f2, s2, 1, "ERANGE", "4294967295 entries");
}

static void test_deep_nesting(void **state)
{
    char buf[512];
    size_t n = pack_request(buf, sizeof buf, "health", 0);
    buf[0] = (char)0x84;   /* one more entry: "args" */
    memcpy(buf + n, "\xa4" "args" "\x81\xa1x", 8);
    n += 8;
    for (int i = 0; i < 200; i++)
        buf[n++] = (char)0x91;   /* [[[[...]]]] */
    buf[n++] = (char)0xc0;
    const void *f[] = { buf };
    size_t s[] = { n };
    expect_error(f, s, 1, "ERANGE", "nesting");
}

static void test_trailing_bytes(void **state)
{
    char buf[128];
    size_t n = pack_request(buf, sizeof buf, "health", 0);
    buf[n++] = (char)0xc0;
    const void *f[] = { buf };
    size_t s[] = { n };
    expect_error(f, s, 1, "EFORMAT", "trailing");
}

static void test_too_many_frames(void **state)
{
    char buf[128];
    size_t n = pack_request(buf, sizeof buf, "health", 0);
    const void *f[40];
    size_t s[40];
    f[0] = buf;
    s[0] = n;
    for (int i = 1; i < 40; i++) {
        f[i] = "x";
        s[i] = 1;
    }
    expect_error(f, s, 40, "ERANGE", "frames");
}

static void test_too_many_bytes(void **state)
{
    static char big[30000];
    char buf[128];
    size_t n = pack_request(buf, sizeof buf, "health", 0);
    const void *f[] = { buf, big, big, big };
    size_t s[] = { n, sizeof big, sizeof big, sizeof big };
    expect_error(f, s, 4, "ERANGE", "bytes (limit 65536)");
}

static void test_empty_and_garbage(void **state)
{
    const void *f[] = { "" };
    size_t s[] = { 0 };
    expect_error(f, s, 1, "EFORMAT", "empty");
    const void *f2[] = { "\xc1\xc1\xc1" };
    size_t s2[] = { 3 };
    expect_error(f2, s2, 1, "EFORMAT", "0xc1");
}

static void test_unknown_field_and_version(void **state)
{
    const char extra[] = "\x84\xa1v\x01\xa2op\xa6health\xa2id\x07\xa3zzz\x01";
    const void *f[] = { extra };
    size_t s[] = { sizeof extra - 1 };
    expect_error(f, s, 1, "EFORMAT", "zzz");
    const char v2[] = "\x83\xa1v\x02\xa2op\xa6health\xa2id\x07";
    const void *f2[] = { v2 };
    size_t s2[] = { sizeof v2 - 1 };
    expect_error(f2, s2, 1, "EUNSUPPORTED", "version");
}

static void test_id_kept_in_errors(void **state)
{
    /* Bad args but a readable id: the error carries that id. */
    const char bad[] = "\x84\xa1v\x01\xa2op\xa5sleep\xa2id\x2a\xa4" "args" "\x81\xa2ms\xa3" "abc";
    const void *f[] = { bad };
    size_t s[] = { sizeof bad - 1 };
    dt_result r;
    dt_send_raw(g_bad, f, s, 1);
    dt_recv(g_bad, 5000, &r);
    assert_int_equal(r.id, 42);
    assert_string_equal(r.code, "EFORMAT");
    assert_non_null(strstr(r.message, "args.ms"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_huge_declared_size),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_too_many_frames),
        cmocka_unit_test(test_too_many_bytes),
        cmocka_unit_test(test_empty_and_garbage),
        cmocka_unit_test(test_unknown_field_and_version),
        cmocka_unit_test(test_id_kept_in_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
