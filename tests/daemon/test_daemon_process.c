/* omnid as real processes: SIGTERM drains and exits 0, a stage process killed
 * mid-request is retried and restarted, stages run as separate processes over
 * tcp (--stage NAME --connect) and share load, and the command line. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "dtest.h"
#include "om_err.h"

static void wait_status(void *c, const char *path, int64_t want, int timeout_ms)
{
    int64_t v = -1;
    for (int64_t until = dt_now_ms() + timeout_ms; dt_now_ms() < until; usleep(20000))
        if ((v = dt_status_u64(c, path)) == want)
            return;
    fail_msg("%s is %lld, want %lld", path, (long long)v, (long long)want);
}

static pid_t spawn_stage(const char *stage, const char *backend)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(dt_omnid_path(), dt_omnid_path(), "--stage", stage, "--connect", backend,
              "--enable-test-ops", "--set", "daemon.heartbeat_ms=200", "--quiet", (char *)NULL);
        _exit(127);
    }
    dt_track(pid);
    return pid;
}

static void test_sigterm_drains_and_exits_0(void **state)
{
    char front[OM_EP_LEN], backend[OM_EP_LEN], ready[OM_PATH_LEN];
    pid_t pid = dt_spawn(NULL, front, backend, ready);
    assert_true(pid > 0);
    void *c = dt_client(front), *late = dt_client(front);
    wait_status(c, "stages.test.workers", 1, 5000);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 600);
    dt_send(c, "sleep", 1, args, n, 0, NULL, 0);
    usleep(100000);
    kill(pid, SIGTERM);
    usleep(100000);
    /* While draining, new requests are refused, not left waiting. */
    dt_result r;
    dt_call(late, "health", 2, NULL, 0, 0, 3000, &r);
    assert_string_equal(r.code, "ESHUTDOWN");
    dt_recv(c, 3000, &r);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_int_equal(dt_wait_exit(pid, 5000), 0);
    zmq_close(c);
    zmq_close(late);
    unlink(ready);
}

static void test_shutdown_bound_fails_long_requests(void **state)
{
    char front[OM_EP_LEN], backend[OM_EP_LEN], ready[OM_PATH_LEN];
    const char *const extra[] = { "--set", "daemon.shutdown_ms=300", NULL };
    pid_t pid = dt_spawn(extra, front, backend, ready);
    assert_true(pid > 0);
    void *c = dt_client(front);
    wait_status(c, "stages.test.workers", 1, 5000);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 20000);
    dt_send(c, "sleep", 1, args, n, 0, NULL, 0);
    usleep(100000);
    int64_t t0 = dt_now_ms();
    kill(pid, SIGTERM);
    dt_result r;
    dt_recv(c, 3000, &r);
    assert_string_equal(r.code, "ESHUTDOWN");
    assert_int_equal(dt_wait_exit(pid, 5000), 0);
    assert_true(dt_now_ms() - t0 < 2500);
    zmq_close(c);
    unlink(ready);
}

static void test_stage_process_killed_mid_request(void **state)
{
    char front[OM_EP_LEN], backend[OM_EP_LEN], ready[OM_PATH_LEN];
    const char *const extra[] = { "--set", "stage.test.mode=process", "--set", "stage.test.workers=2", NULL };
    pid_t pid = dt_spawn(extra, front, backend, ready);
    assert_true(pid > 0);
    void *c = dt_client(front), *q = dt_client(front);
    wait_status(q, "stages.test.workers", 2, 10000);

    /* Killed once: retried on the other worker, answered within the deadline. */
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 800);
    int64_t t0 = dt_now_ms();
    dt_send(c, "sleep", 1, args, n, 6000, NULL, 0);
    usleep(200000);
    int victim = dt_busy_pid(q, "test");
    assert_true(victim > 0 && victim != pid);
    kill(victim, SIGKILL);
    dt_result r;
    dt_recv(c, 6000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_true(r.result_pid > 0 && r.result_pid != victim);
    assert_true(dt_now_ms() - t0 < 6000);
    assert_true(dt_status_u64(q, "metrics.counters.retries") >= 1);
    /* And the stage comes back. */
    wait_status(q, "stages.test.workers", 2, 10000);
    assert_true(dt_status_u64(q, "stages.test.restarts") >= 1);

    /* Killed twice: the second death is answered with an error, never a hang. */
    n = dt_args_u64(args, sizeof args, "ms", 3000);
    dt_send(c, "sleep", 2, args, n, 8000, NULL, 0);
    for (int k = 0; k < 2; k++) {
        int p = -1;
        for (int64_t until = dt_now_ms() + 5000; dt_now_ms() < until && p <= 0; usleep(20000))
            p = dt_busy_pid(q, "test");
        assert_true(p > 0);
        kill(p, SIGKILL);
        usleep(300000);
    }
    dt_recv(c, 8000, &r);
    assert_int_equal(r.id, 2);
    assert_string_equal(r.code, "EUNAVAILABLE");

    kill(pid, SIGTERM);
    assert_int_equal(dt_wait_exit(pid, 5000), 0);
    zmq_close(c);
    zmq_close(q);
    unlink(ready);
}

static void test_remote_stages_over_tcp(void **state)
{
    char front[OM_EP_LEN], backend[OM_EP_LEN], ready[OM_PATH_LEN];
    const char *const extra[] = { "--set", "stage.ingest.mode=remote", "--set", "stage.test.mode=remote", NULL };
    pid_t pid = dt_spawn(extra, front, backend, ready);
    assert_true(pid > 0);
    assert_non_null(strstr(backend, "tcp://"));
    void *c = dt_client(front), *c2 = dt_client(front);
    assert_int_equal(dt_status_u64(c, "stages.ingest.workers"), 0);
    /* Workers joining and leaving are published as omnid.event. */
    char pub[OM_EP_LEN];
    assert_int_equal(dt_ready_value(ready, "pub", pub), 0);
    void *events = zmq_socket(dt_ctx(), ZMQ_SUB);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(events, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(events, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(events, ZMQ_SUBSCRIBE, "omnid.event", 11);
    zmq_connect(events, pub);
    usleep(300000);

    pid_t ingest = spawn_stage("ingest", backend);
    pid_t t1 = spawn_stage("test", backend), t2 = spawn_stage("test", backend);
    wait_status(c, "stages.ingest.workers", 1, 10000);
    wait_status(c, "stages.test.workers", 2, 10000);
    int ups = 0;
    char ev[256];
    for (int k = 0; k < 3; k++) {
        assert_int_equal(zmq_recv(events, ev, sizeof ev, 0), 11);
        int len = zmq_recv(events, ev, sizeof ev - 1, 0);
        assert_true(len > 0);
        ev[len] = 0;
        ups += memmem(ev, (size_t)len, "worker_up", 9) != NULL;
    }
    assert_int_equal(ups, 3);

    char args[128];
    size_t n = dt_args_str(args, sizeof args, "url", "lavfi:testsrc=size=64x48:rate=25");
    dt_result r;
    dt_call(c, "probe", 1, args, n, 0, 10000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);

    /* Two workers of one stage share the load: two 1 s sleeps take ~1 s, not 2. */
    n = dt_args_u64(args, sizeof args, "ms", 1000);
    int64_t t0 = dt_now_ms();
    dt_send(c, "sleep", 2, args, n, 0, NULL, 0);
    dt_send(c2, "sleep", 3, args, n, 0, NULL, 0);
    dt_result r2;
    dt_recv(c, 5000, &r);
    dt_recv(c2, 5000, &r2);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_int_equal(r2.final_type, OM_REPLY_DONE);
    assert_true(r.result_pid == t1 || r.result_pid == t2);
    assert_true(r2.result_pid == t1 || r2.result_pid == t2);
    assert_true(r.result_pid != r2.result_pid);
    assert_true(dt_now_ms() - t0 < 1800);

    kill(ingest, SIGTERM);
    kill(t1, SIGTERM);
    kill(t2, SIGTERM);
    assert_int_equal(dt_wait_exit(ingest, 5000), 0);
    assert_int_equal(dt_wait_exit(t1, 5000), 0);
    assert_int_equal(dt_wait_exit(t2, 5000), 0);
    /* Gone workers are noticed by their missing heartbeats, and published. */
    wait_status(c, "stages.test.workers", 0, 5000);
    int len = zmq_recv(events, ev, sizeof ev, 0);
    assert_int_equal(len, 11);
    len = zmq_recv(events, ev, sizeof ev, 0);
    assert_true(len > 0 && memmem(ev, (size_t)len, "worker_down", 11));
    zmq_close(events);
    kill(pid, SIGTERM);
    assert_int_equal(dt_wait_exit(pid, 5000), 0);
    zmq_close(c);
    zmq_close(c2);
    unlink(ready);
}

/* A free loopback port, for a backend that must keep its address across restarts. */
static int free_port(void)
{
    void *s = zmq_socket(dt_ctx(), ZMQ_ROUTER);
    char ep[64];
    size_t len = sizeof ep;
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_bind(s, "tcp://127.0.0.1:*");
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
    zmq_close(s);
    return atoi(strrchr(ep, ':') + 1);
}

/* omnid restarts on the same backend address: a remote worker notices the silence
 * and registers with the new broker by itself. */
static void test_worker_survives_broker_restart(void **state)
{
    char front[OM_EP_LEN], backend[OM_EP_LEN], ready[OM_PATH_LEN], be[64];
    snprintf(be, sizeof be, "daemon.backend=tcp://127.0.0.1:%d", free_port());
    const char *const extra[] = { "--set", "stage.test.mode=remote", "--set", be, NULL };
    pid_t pid = dt_spawn(extra, front, backend, ready);
    assert_true(pid > 0);
    pid_t worker = spawn_stage("test", backend);
    void *c = dt_client(front);
    wait_status(c, "stages.test.workers", 1, 10000);
    zmq_close(c);
    kill(pid, SIGKILL);
    assert_int_equal(dt_wait_exit(pid, 5000), 128 + SIGKILL);
    unlink(ready);

    pid = dt_spawn(extra, front, backend, ready);
    assert_true(pid > 0);
    c = dt_client(front);
    /* heartbeat_ms=200 x 3 misses: back within a second or two */
    wait_status(c, "stages.test.workers", 1, 5000);
    char args[64];
    dt_result r;
    size_t n = dt_args_u64(args, sizeof args, "ms", 10);
    dt_call(c, "sleep", 1, args, n, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_int_equal(r.result_pid, worker);
    kill(worker, SIGTERM);
    assert_int_equal(dt_wait_exit(worker, 5000), 0);
    kill(pid, SIGTERM);
    assert_int_equal(dt_wait_exit(pid, 5000), 0);
    zmq_close(c);
    unlink(ready);
}

static int run_cli(const char *const *argv, char *out, size_t cap)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        execv(dt_omnid_path(), (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t k;
    while (len + 1 < cap && (k = read(fds[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = 0;
    close(fds[0]);
    return dt_wait_exit(pid, 5000);
}

static void test_command_line(void **state)
{
    char out[8192];
    const char *help[] = { dt_omnid_path(), "--help", NULL };
    assert_int_equal(run_cli(help, out, sizeof out), 0);
    assert_non_null(strstr(out, "--stage NAME --connect EP"));

    const char *bad[] = { dt_omnid_path(), "--set", "daemon.heartbeat_ms=fast", NULL };
    assert_int_equal(run_cli(bad, out, sizeof out), 2);
    assert_non_null(strstr(out, "heartbeat_ms"));

    const char *stage[] = { dt_omnid_path(), "--stage", "nosuch", "--connect", "tcp://127.0.0.1:1", NULL };
    assert_int_equal(run_cli(stage, out, sizeof out), 2);
    assert_non_null(strstr(out, "nosuch"));

    char dir[] = "/tmp/omnid-keys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *keys[] = { dt_omnid_path(), "--gen-keys", dir, NULL };
    assert_int_equal(run_cli(keys, out, sizeof out), 0);
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/secret.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    unlink(path);
    snprintf(path, sizeof path, "%s/public.key", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 41);
    unlink(path);
    rmdir(dir);
}

static int teardown(void **state)
{
    dt_ctx_done();
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sigterm_drains_and_exits_0, dt_reap_all),
        cmocka_unit_test_teardown(test_shutdown_bound_fails_long_requests, dt_reap_all),
        cmocka_unit_test_teardown(test_stage_process_killed_mid_request, dt_reap_all),
        cmocka_unit_test_teardown(test_remote_stages_over_tcp, dt_reap_all),
        cmocka_unit_test_teardown(test_worker_survives_broker_restart, dt_reap_all),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
