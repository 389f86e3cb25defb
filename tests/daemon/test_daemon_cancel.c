/* Cancellation: the `cancel` op on running and queued requests, its refusals
 * (unknown id, another client's request), over a stage process, and a client that
 * leaves mid-request (its worker is freed on the next streamed reply). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dtest.h"
#include "om_err.h"

static dt_daemon *start(void)
{
    om_config cfg;
    dt_config(&cfg);
    dt_daemon *d = dt_daemon_start(&cfg);
    om_config_free(&cfg);
    assert_non_null(d);
    return d;
}

static void wait_status(void *c, const char *path, int64_t want, int timeout_ms)
{
    for (int64_t until = dt_now_ms() + timeout_ms; dt_now_ms() < until; usleep(10000))
        if (dt_status_u64(c, path) == want)
            return;
    fail_msg("%s never became %lld", path, (long long)want);
}

static size_t args_stream(char *buf, size_t cap, uint64_t n, uint64_t ms)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    om_pack_kv_u64(&pk, "n", n);
    om_pack_kv_u64(&pk, "ms", ms);
    size_t len = sb.size <= cap ? sb.size : 0;
    memcpy(buf, sb.data, len);
    msgpack_sbuffer_destroy(&sb);
    return len;
}

/* Sends `cancel {target_id}` as request id; the broker answers the target first. */
static void send_cancel(void *c, uint64_t id, uint64_t target)
{
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "target_id", target);
    assert_int_equal(dt_send(c, "cancel", id, args, n, 0, NULL, 0), 0);
}

static void expect_cancelled(void *c, uint64_t target, uint64_t cancel_id)
{
    dt_result r;
    dt_recv(c, 3000, &r);
    assert_int_equal(r.id, target);
    assert_int_equal(r.final_type, OM_REPLY_ERROR);
    assert_string_equal(r.code, "ECANCELED");
    assert_true(r.seq_ok);
    dt_recv(c, 3000, &r);
    assert_int_equal(r.id, cancel_id);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
}

/* The worker is free: a 1 ms sleep is served at once, not after the cancelled one. */
static int64_t next_request_ms(void *c, uint64_t id, int64_t *pid)
{
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 1);
    int64_t t0 = dt_now_ms();
    dt_result r;
    dt_call(c, "sleep", id, args, n, 0, 8000, &r);
    assert_int_equal(r.id, id);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    if (pid)
        *pid = r.result_pid;
    return dt_now_ms() - t0;
}

static void test_cancel_running(void **state)
{
    dt_daemon *d = start();
    void *c = dt_client(dt_endpoint(d, "front"));
    wait_status(c, "stages.test.workers", 1, 5000);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 5000);
    int64_t t0 = dt_now_ms();
    dt_send(c, "sleep", 10, args, n, 0, NULL, 0);
    wait_status(c, "stages.test.inflight", 1, 2000);
    send_cancel(c, 11, 10);
    expect_cancelled(c, 10, 11);
    assert_true(dt_now_ms() - t0 < 2000);
    /* Only a worker that really stopped serves this before the 5 s are over. */
    assert_true(next_request_ms(c, 12, NULL) < 1500);
    assert_true(dt_now_ms() - t0 < 4000);
    assert_int_equal(dt_status_u64(c, "metrics.counters.cancelled"), 1);

    /* A streaming request: replies so far, then ECANCELED with the next seq. */
    char sargs[64];
    n = args_stream(sargs, sizeof sargs, 200, 20);
    dt_send(c, "stream", 13, sargs, n, 0, NULL, 0);
    usleep(150000);
    send_cancel(c, 14, 13);
    dt_result r;
    dt_recv(c, 3000, &r);
    assert_int_equal(r.id, 13);
    assert_true(r.n >= 2);
    assert_int_equal(r.types[0], OM_REPLY_PROGRESS);
    assert_int_equal(r.final_type, OM_REPLY_ERROR);
    assert_string_equal(r.code, "ECANCELED");
    assert_true(r.seq_ok);
    dt_recv(c, 3000, &r);
    assert_int_equal(r.id, 14);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_true(next_request_ms(c, 15, NULL) < 1500);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_cancel_queued(void **state)
{
    dt_daemon *d = start();
    void *c = dt_client(dt_endpoint(d, "front"));
    wait_status(c, "stages.test.workers", 1, 5000);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 3000);
    dt_send(c, "sleep", 20, args, n, 0, NULL, 0);
    dt_send(c, "sleep", 21, args, n, 0, NULL, 0);
    wait_status(c, "stages.test.queued", 1, 2000);
    send_cancel(c, 22, 21);
    expect_cancelled(c, 21, 22);
    assert_int_equal(dt_status_u64(c, "stages.test.queued"), 0);
    assert_int_equal(dt_status_u64(c, "stages.test.inflight"), 1);
    send_cancel(c, 23, 20);
    expect_cancelled(c, 20, 23);
    assert_int_equal(dt_status_u64(c, "metrics.counters.cancelled"), 2);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_cancel_refused(void **state)
{
    dt_daemon *d = start();
    void *c = dt_client(dt_endpoint(d, "front"));
    void *other = dt_client(dt_endpoint(d, "front"));
    wait_status(c, "stages.test.workers", 1, 5000);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 500);
    dt_send(c, "sleep", 30, args, n, 0, NULL, 0);
    wait_status(c, "stages.test.inflight", 1, 2000);

    /* Same id, another client: not its request. */
    dt_result r;
    send_cancel(other, 31, 30);
    dt_recv(other, 3000, &r);
    assert_int_equal(r.id, 31);
    assert_string_equal(r.code, "ENOENT");
    assert_non_null(strstr(r.message, "30"));

    send_cancel(c, 32, 999);
    dt_recv(c, 3000, &r);
    assert_int_equal(r.id, 32);
    assert_string_equal(r.code, "ENOENT");
    assert_non_null(strstr(r.message, "999"));

    dt_call(c, "cancel", 33, NULL, 0, 0, 3000, &r);
    assert_int_equal(r.id, 33);
    assert_string_equal(r.code, "EINVAL");
    assert_non_null(strstr(r.message, "target_id"));

    /* The target was left alone. */
    dt_recv(c, 3000, &r);
    assert_int_equal(r.id, 30);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    /* Finished: nothing left to cancel. */
    send_cancel(c, 34, 30);
    dt_recv(c, 3000, &r);
    assert_string_equal(r.code, "ENOENT");
    assert_int_equal(dt_status_u64(c, "metrics.counters.cancelled"), 0);
    zmq_close(other);
    zmq_close(c);
    dt_daemon_stop(d);
}

/* ZeroMQ does not tell the broker that a client left: it learns it when a reply
 * to it cannot be routed (ROUTER_MANDATORY: EHOSTUNREACH). A streaming request's
 * next reply does that; the worker is told to stop and serves the next client, and
 * the client's queued request goes too. */
static void test_client_leaves_mid_stream(void **state)
{
    dt_daemon *d = start();
    void *c = dt_client(dt_endpoint(d, "front"));
    void *gone = dt_client(dt_endpoint(d, "front"));
    wait_status(c, "stages.test.workers", 1, 5000);
    char args[64];
    size_t n = args_stream(args, sizeof args, 100, 50);
    int64_t t0 = dt_now_ms();
    dt_send(gone, "stream", 40, args, n, 0, NULL, 0);
    char sleep_args[64];
    size_t sn = dt_args_u64(sleep_args, sizeof sleep_args, "ms", 3000);
    dt_send(gone, "sleep", 42, sleep_args, sn, 0, NULL, 0);   /* queued behind it */
    zmq_pollitem_t it = { gone, 0, ZMQ_POLLIN, 0 };
    assert_int_equal(zmq_poll(&it, 1, 3000), 1);   /* the first progress came */
    assert_int_equal(dt_status_u64(c, "stages.test.queued"), 1);
    zmq_close(gone);
    assert_true(next_request_ms(c, 41, NULL) < 1500);
    assert_true(dt_now_ms() - t0 < 3000);   /* the stream alone takes 5 s */
    assert_int_equal(dt_status_u64(c, "metrics.counters.cancelled_disconnect"), 2);
    assert_int_equal(dt_status_u64(c, "stages.test.queued"), 0);
    assert_int_equal(dt_status_u64(c, "stages.test.inflight"), 0);
    assert_true(dt_status_u64(c, "metrics.counters.drops_client") >= 1);
    zmq_close(c);
    dt_daemon_stop(d);
}

/* The same over tcp to a stage process: the CANCEL frame reaches its pulse thread,
 * and the same process serves the next request. */
static void test_cancel_stage_process(void **state)
{
    char front[OM_EP_LEN], backend[OM_EP_LEN], ready[OM_PATH_LEN];
    const char *const extra[] = { "--set", "stage.test.mode=process", NULL };
    pid_t pid = dt_spawn(extra, front, backend, ready);
    assert_true(pid > 0);
    void *c = dt_client(front);
    wait_status(c, "stages.test.workers", 1, 10000);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 5000);
    int64_t t0 = dt_now_ms();
    dt_send(c, "sleep", 50, args, n, 0, NULL, 0);
    wait_status(c, "stages.test.inflight", 1, 2000);
    int worker = dt_busy_pid(c, "test");
    assert_true(worker > 0 && worker != pid);
    send_cancel(c, 51, 50);
    expect_cancelled(c, 50, 51);
    int64_t served_by = -1;
    assert_true(next_request_ms(c, 52, &served_by) < 1500);
    assert_true(dt_now_ms() - t0 < 4000);
    assert_int_equal(served_by, worker);
    kill(pid, SIGTERM);
    assert_int_equal(dt_wait_exit(pid, 5000), 0);
    zmq_close(c);
    unlink(ready);
}

static int teardown(void **state)
{
    dt_ctx_done();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_cancel_refused),
        cmocka_unit_test(test_client_leaves_mid_stream),
        cmocka_unit_test_teardown(test_cancel_stage_process, dt_reap_all),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
