/* CURVE on the front door: a client whose key is in the allow-list is served,
 * an unknown key and a plain client get nothing (the ZAP handler refuses the
 * handshake), and the daemon keeps serving the allowed one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "dtest.h"
#include "om_err.h"

static void read_key(const char *dir, const char *name, char out[41])
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, 41, f));
    fclose(f);
    assert_int_equal(strlen(out), 40);
}

static void make_keys(char *dir, char pub[41], char sec[41])
{
    char err[256];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(om_curve_gen_keys(dir, err, sizeof err), 0);
    read_key(dir, "public.key", pub);
    read_key(dir, "secret.key", sec);
}

static void remove_keys(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/public.key", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/secret.key", dir);
    unlink(path);
    rmdir(dir);
}

static void *curve_client(const char *ep, const char *server_pub, const char *pub, const char *sec)
{
    void *s = zmq_socket(dt_ctx(), ZMQ_DEALER);
    int zero = 0, sndtimeo = 1000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    if (server_pub) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
    zmq_connect(s, ep);
    return s;
}

static void test_allow_list(void **state)
{
    char sdir[] = "/tmp/omnid-srv-XXXXXX", adir[] = "/tmp/omnid-cla-XXXXXX",
         bdir[] = "/tmp/omnid-clb-XXXXXX";
    char spub[41], ssec[41], apub[41], asec[41], bpub[41], bsec[41];
    make_keys(sdir, spub, ssec);
    make_keys(adir, apub, asec);
    make_keys(bdir, bpub, bsec);

    char allow[256], kv[512], err[256];
    snprintf(allow, sizeof allow, "%s/allow", sdir);
    FILE *f = fopen(allow, "w");
    assert_non_null(f);
    fprintf(f, "# clients allowed to use omnid\n%s\n", apub);
    fclose(f);

    om_config cfg;
    dt_config(&cfg);
    assert_int_equal(om_config_set(&cfg, "security.curve=on", err, sizeof err), 0);
    snprintf(kv, sizeof kv, "security.secret_key=%s/secret.key", sdir);
    assert_int_equal(om_config_set(&cfg, kv, err, sizeof err), 0);
    snprintf(kv, sizeof kv, "security.allow=%s", allow);
    assert_int_equal(om_config_set(&cfg, kv, err, sizeof err), 0);
    dt_daemon *d = dt_daemon_start(&cfg);
    om_config_free(&cfg);
    assert_non_null(d);

    void *a = curve_client(dt_endpoint(d, "front"), spub, apub, asec);
    void *b = curve_client(dt_endpoint(d, "front"), spub, bpub, bsec);
    void *plain = curve_client(dt_endpoint(d, "front"), NULL, NULL, NULL);
    dt_result r;
    dt_call(a, "health", 1, NULL, 0, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    dt_call(b, "health", 2, NULL, 0, 0, 1000, &r);
    assert_int_equal(r.n, 0);
    dt_call(plain, "health", 3, NULL, 0, 0, 1000, &r);
    assert_int_equal(r.n, 0);
    dt_call(a, "status", 4, NULL, 0, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    /* Refused clients never reached the broker. */
    assert_int_equal(dt_status_u64(a, "requests"), 3);

    zmq_close(a);
    zmq_close(b);
    zmq_close(plain);
    dt_daemon_stop(d);
    unlink(allow);
    remove_keys(sdir);
    remove_keys(adir);
    remove_keys(bdir);
}

static pid_t spawn_worker(const char *backend, const char *worker_dir, const char *server_dir)
{
    char wk[300], sk[300];
    snprintf(wk, sizeof wk, "security.worker_key=%s/secret.key", worker_dir);
    snprintf(sk, sizeof sk, "security.server_key=%s/public.key", server_dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl(dt_omnid_path(), dt_omnid_path(), "--stage", "test", "--connect", backend,
              "--enable-test-ops", "--set", "daemon.heartbeat_ms=200", "--set", "security.curve=on",
              "--set", wk, "--set", sk, "--quiet", (char *)NULL);
        _exit(127);
    }
    dt_track(pid);
    return pid;
}

/* The backend's tcp endpoint is CURVE too: a stage process with an allowed worker
 * key joins and serves, one with another key is refused. */
static void test_remote_worker_keys(void **state)
{
    char sdir[] = "/tmp/omnid-srv-XXXXXX", adir[] = "/tmp/omnid-cla-XXXXXX",
         wdir[] = "/tmp/omnid-wok-XXXXXX", xdir[] = "/tmp/omnid-wbad-XXXXXX";
    char spub[41], ssec[41], apub[41], asec[41], wpub[41], wsec[41], xpub[41], xsec[41];
    make_keys(sdir, spub, ssec);
    make_keys(adir, apub, asec);
    make_keys(wdir, wpub, wsec);
    make_keys(xdir, xpub, xsec);
    char allow[256], kv[512], err[256];
    snprintf(allow, sizeof allow, "%s/allow", sdir);
    FILE *f = fopen(allow, "w");
    assert_non_null(f);
    fprintf(f, "%s\n%s\n", apub, wpub);
    fclose(f);

    om_config cfg;
    dt_config(&cfg);
    assert_int_equal(om_config_set(&cfg, "security.curve=on", err, sizeof err), 0);
    assert_int_equal(om_config_set(&cfg, "stage.test.mode=remote", err, sizeof err), 0);
    snprintf(kv, sizeof kv, "security.secret_key=%s/secret.key", sdir);
    assert_int_equal(om_config_set(&cfg, kv, err, sizeof err), 0);
    snprintf(kv, sizeof kv, "security.allow=%s", allow);
    assert_int_equal(om_config_set(&cfg, kv, err, sizeof err), 0);
    dt_daemon *d = dt_daemon_start(&cfg);
    om_config_free(&cfg);
    assert_non_null(d);
    void *a = curve_client(dt_endpoint(d, "front"), spub, apub, asec);

    pid_t good = spawn_worker(dt_endpoint(d, "backend"), wdir, sdir);
    pid_t bad = spawn_worker(dt_endpoint(d, "backend"), xdir, sdir);
    int64_t n = -1;
    for (int64_t until = dt_now_ms() + 10000; dt_now_ms() < until && n != 1; usleep(20000))
        n = dt_status_u64(a, "stages.test.workers");
    assert_int_equal(n, 1);
    char args[64];
    dt_result r;
    size_t len = dt_args_u64(args, sizeof args, "ms", 10);
    dt_call(a, "sleep", 1, args, len, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_int_equal(r.result_pid, good);
    usleep(500000);
    assert_int_equal(dt_status_u64(a, "stages.test.workers"), 1);

    kill(good, SIGTERM);
    kill(bad, SIGTERM);
    assert_int_equal(dt_wait_exit(good, 5000), 0);
    assert_int_equal(dt_wait_exit(bad, 5000), 0);
    zmq_close(a);
    dt_daemon_stop(d);
    unlink(allow);
    remove_keys(sdir);
    remove_keys(adir);
    remove_keys(wdir);
    remove_keys(xdir);
}

static void test_bad_key_files(void **state)
{
    om_config cfg;
    char err[512];
    om_daemon *d;
    dt_config(&cfg);
    assert_int_equal(om_config_set(&cfg, "security.curve=on", err, sizeof err), 0);
    assert_int_equal(om_daemon_open(&d, &cfg, err, sizeof err), OM_EINVAL);
    assert_non_null(strstr(err, "secret_key"));

    char path[] = "/tmp/omnid-badkey-XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, "not a key\n", 10), 10);
    close(fd);
    char kv[256];
    snprintf(kv, sizeof kv, "security.secret_key=%s", path);
    assert_int_equal(om_config_set(&cfg, kv, err, sizeof err), 0);
    snprintf(kv, sizeof kv, "security.allow=%s", path);
    assert_int_equal(om_config_set(&cfg, kv, err, sizeof err), 0);
    assert_int_equal(om_daemon_open(&d, &cfg, err, sizeof err), OM_EFORMAT);
    assert_non_null(strstr(err, path));
    unlink(path);
    om_config_free(&cfg);
}

static int teardown(void **state)
{
    dt_ctx_done();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test_teardown(test_remote_worker_keys, dt_reap_all),
        cmocka_unit_test(test_bad_key_files),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
