/* The broker in-process on free loopback ports, driven over zmq + om_proto:
 * round trips of health/status/metrics/probe, unknown ops, EBUSY, ETIMEDOUT,
 * late replies, clients that leave, the sensor bus and XPUB drops. */
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

static dt_daemon *start(const char *const *sets)
{
    om_config cfg;
    char err[256];
    dt_config(&cfg);
    for (int i = 0; sets && sets[i]; i++)
        assert_int_equal(om_config_set(&cfg, sets[i], err, sizeof err), 0);
    dt_daemon *d = dt_daemon_start(&cfg);
    om_config_free(&cfg);
    assert_non_null(d);
    return d;
}

/* Workers register asynchronously: wait until the stage has n of them. */
static void wait_workers(void *c, const char *stage, int n)
{
    char path[64];
    snprintf(path, sizeof path, "stages.%s.workers", stage);
    for (int64_t until = dt_now_ms() + 5000; dt_now_ms() < until; usleep(10000))
        if (dt_status_u64(c, path) == n)
            return;
    fail_msg("stage %s never had %d workers", stage, n);
}

static void test_round_trips(void **state)
{
    dt_daemon *d = start(NULL);
    void *c = dt_client(dt_endpoint(d, "front"));
    dt_result r;

    dt_call(c, "health", 1, NULL, 0, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.types[0], OM_REPLY_RESULT);
    assert_int_equal(r.id, 1);
    assert_true(r.seq_ok);

    wait_workers(c, "ingest", 1);
    wait_workers(c, "test", 1);
    assert_int_equal(dt_status_u64(c, "stages.ingest.queue_max"), 64);
    assert_int_equal(dt_status_u64(c, "draining"), 0);

    char args[512];
    size_t n = dt_args_str(args, sizeof args, "url", "lavfi:testsrc=size=64x48:rate=25");
    dt_call(c, "probe", 2, args, n, 0, 10000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    assert_int_equal(r.types[0], OM_REPLY_RESULT);
    assert_true(r.seq_ok);

    /* The file's bytes as a payload frame, as `omni probe --upload` sends it. */
    FILE *f = fopen(SAMPLES_DIR "/clip.mp4", "rb");
    assert_non_null(f);
    static char clip[200000];
    size_t clip_len = fread(clip, 1, sizeof clip, f);
    fclose(f);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    om_pack_kv_frame(&pk, "media", 1);
    dt_send(c, "probe", 3, sb.data, sb.size, 0, clip, clip_len);
    msgpack_sbuffer_destroy(&sb);
    dt_recv(c, 10000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);

    /* A file that is not media: the stage's error, naming probe. */
    n = dt_args_str(args, sizeof args, "url", "/nonexistent/clip.mp4");
    dt_call(c, "probe", 4, args, n, 0, 10000, &r);
    assert_int_equal(r.final_type, OM_REPLY_ERROR);
    assert_non_null(strstr(r.message, "probe"));
    dt_call(c, "probe", 5, NULL, 0, 0, 10000, &r);
    assert_string_equal(r.code, "EINVAL");
    assert_non_null(strstr(r.message, "args.url"));

    assert_true(dt_status_u64(c, "metrics.counters.requests") >= 7);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_unknown_and_unserved_ops(void **state)
{
    dt_daemon *d = start((const char *const[]){ "stage.ingest.mode=off", NULL });
    void *c = dt_client(dt_endpoint(d, "front"));
    dt_result r;
    dt_call(c, "frobnicate", 1, NULL, 0, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_ERROR);
    assert_string_equal(r.code, "EUNSUPPORTED");
    assert_non_null(strstr(r.message, "frobnicate"));
    /* A known op no stage of this daemon serves yet. */
    dt_call(c, "imagine", 2, NULL, 0, 0, 5000, &r);
    assert_string_equal(r.code, "EUNSUPPORTED");
    assert_non_null(strstr(r.message, "imagine"));
    /* A stage that is off answers at once. */
    char args[64];
    size_t n = dt_args_str(args, sizeof args, "url", "lavfi:testsrc");
    int64_t t0 = dt_now_ms();
    dt_call(c, "probe", 3, args, n, 0, 5000, &r);
    assert_string_equal(r.code, "EUNAVAILABLE");
    assert_true(dt_now_ms() - t0 < 1000);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_queue_full_is_ebusy(void **state)
{
    dt_daemon *d = start((const char *const[]){ "stage.test.queue=2", NULL });
    void *c = dt_client(dt_endpoint(d, "front"));
    wait_workers(c, "test", 1);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 800);
    /* One running, two queued, the fourth does not fit. */
    for (int i = 1; i <= 3; i++)
        dt_send(c, "sleep", (uint64_t)i, args, n, 0, NULL, 0);
    usleep(100000);
    int64_t t0 = dt_now_ms();
    dt_result r;
    dt_send(c, "sleep", 4, args, n, 0, NULL, 0);
    dt_recv(c, 5000, &r);
    assert_int_equal(r.id, 4);
    assert_string_equal(r.code, "EBUSY");
    assert_true(dt_now_ms() - t0 < 600);
    for (int i = 1; i <= 3; i++) {
        dt_recv(c, 5000, &r);
        assert_int_equal(r.final_type, OM_REPLY_DONE);
    }
    assert_int_equal(dt_status_u64(c, "queued"), 0);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_deadline_and_late_reply(void **state)
{
    dt_daemon *d = start((const char *const[]){ "daemon.deadline_max_ms=800", NULL });
    void *c = dt_client(dt_endpoint(d, "front"));
    wait_workers(c, "test", 1);
    char args[64];
    dt_result r;
    size_t n = dt_args_u64(args, sizeof args, "ms", 3000);
    int64_t t0 = dt_now_ms();
    dt_call(c, "sleep", 1, args, n, 200, 5000, &r);
    int64_t took = dt_now_ms() - t0;
    assert_string_equal(r.code, "ETIMEDOUT");
    assert_true(took >= 190 && took < 1000);

    /* Beyond deadline_max_ms the cap applies: 3 s asked, 0.8 s given. */
    t0 = dt_now_ms();
    dt_call(c, "sleep", 2, args, n, 60000, 5000, &r);
    took = dt_now_ms() - t0;
    assert_string_equal(r.code, "ETIMEDOUT");
    assert_true(took >= 750 && took < 2000);

    /* Queued behind a busy worker: the deadline runs out in the queue. */
    n = dt_args_u64(args, sizeof args, "ms", 500);
    dt_send(c, "sleep", 3, args, n, 0, NULL, 0);
    dt_call(c, "sleep", 4, args, n, 100, 5000, &r);
    assert_int_equal(r.id, 4);
    assert_string_equal(r.code, "ETIMEDOUT");
    assert_non_null(strstr(r.message, "queued"));
    dt_recv(c, 5000, &r);
    assert_int_equal(r.id, 3);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    /* The worker's own answers to 1 and 2 came after the broker's: dropped. */
    assert_true(dt_status_u64(c, "metrics.counters.drops_late") >= 1);
    assert_true(dt_status_u64(c, "metrics.counters.drops_late") <= 2);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_client_that_leaves(void **state)
{
    dt_daemon *d = start(NULL);
    void *c = dt_client(dt_endpoint(d, "front"));
    void *gone = dt_client(dt_endpoint(d, "front"));
    wait_workers(c, "test", 1);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 200);
    dt_send(gone, "sleep", 1, args, n, 0, NULL, 0);
    usleep(50000);
    zmq_close(gone);
    usleep(400000);
    assert_true(dt_status_u64(c, "metrics.counters.drops_client") >= 1);
    dt_result r;
    dt_call(c, "health", 2, NULL, 0, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_sensor_bus_and_pub_drops(void **state)
{
    dt_daemon *d = start((const char *const[]){ "hwm.pub=4", NULL });
    void *c = dt_client(dt_endpoint(d, "front"));
    void *sub = zmq_socket(dt_ctx(), ZMQ_SUB);
    void *sensor = zmq_socket(dt_ctx(), ZMQ_PUB);
    int zero = 0, one_k = 1000;
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sensor, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sensor, ZMQ_SNDHWM, &one_k, sizeof one_k);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "sensor/", 7);
    zmq_connect(sub, dt_endpoint(d, "pub"));
    zmq_connect(sensor, dt_endpoint(d, "sensors"));
    usleep(300000);   /* subscriptions travel asynchronously */

    /* Malformed ones are dropped and counted: bad topic, no map, not msgpack. */
    zmq_send(sensor, "sensor/r1", 9, ZMQ_SNDMORE);
    zmq_send(sensor, "\x80", 1, 0);
    zmq_send(sensor, "sensor/r1/imu", 13, 0);
    zmq_send(sensor, "sensor/r1/imu", 13, ZMQ_SNDMORE);
    zmq_send(sensor, "\xc1", 1, 0);
    zmq_send(sensor, "sensor/r1/imu", 13, ZMQ_SNDMORE);
    zmq_send(sensor, "\x91\x01", 2, 0);
    zmq_send(sensor, "sensor/r1/imu", 13, ZMQ_SNDMORE);
    zmq_send(sensor, "\x81\xa1x\x01", 4, 0);
    char buf[32];
    int timeout = 3000;
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(zmq_recv(sub, buf, sizeof buf, 0), 13);
    assert_memory_equal(buf, "sensor/r1/imu", 13);
    assert_int_equal(zmq_recv(sub, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "\x81\xa1x\x01", 4);
    assert_int_equal(dt_status_u64(c, "metrics.counters.sensor_rejected"), 4);
    assert_int_equal(dt_status_u64(c, "drops.pub"), 0);

    /* A subscriber that stops reading: the XPUB drops and counts, never blocks. */
    for (int i = 0; i < 500; i++) {
        zmq_send(sensor, "sensor/r1/imu", 13, ZMQ_SNDMORE);
        zmq_send(sensor, "\x81\xa1x\x01", 4, 0);
    }
    int64_t drops = 0;
    for (int64_t until = dt_now_ms() + 3000; dt_now_ms() < until && drops == 0; usleep(20000))
        drops = dt_status_u64(c, "drops.pub");
    assert_true(drops > 0);
    dt_result r;
    dt_call(c, "health", 1, NULL, 0, 0, 5000, &r);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    zmq_close(sub);
    zmq_close(sensor);
    zmq_close(c);
    dt_daemon_stop(d);
}

static void test_shutdown_answers_inflight(void **state)
{
    dt_daemon *d = start(NULL);
    void *c = dt_client(dt_endpoint(d, "front"));
    wait_workers(c, "test", 1);
    char args[64];
    size_t n = dt_args_u64(args, sizeof args, "ms", 300);
    dt_send(c, "sleep", 1, args, n, 0, NULL, 0);
    usleep(50000);
    dt_result r;
    /* Stopping drains: the sleep finishes (well within shutdown_ms) and is answered. */
    dt_daemon_stop(d);
    dt_recv(c, 2000, &r);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.final_type, OM_REPLY_DONE);
    zmq_close(c);
}

static int teardown(void **state)
{
    dt_ctx_done();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_unknown_and_unserved_ops),
        cmocka_unit_test(test_queue_full_is_ebusy),
        cmocka_unit_test(test_deadline_and_late_reply),
        cmocka_unit_test(test_client_that_leaves),
        cmocka_unit_test(test_sensor_bus_and_pub_drops),
        cmocka_unit_test(test_shutdown_answers_inflight),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
