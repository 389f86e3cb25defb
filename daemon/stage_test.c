/* stage_test.c: the `test` stage, registered only with --enable-test-ops
 * (daemon.test_ops): ops the integration tests and benchmarks need to make a
 * worker slow, busy or crash-prone on purpose.
 *   sleep {ms}   sleeps ms (<= 60000) unless cancelled, then result {slept_ms, pid}
 *   echo         result {pid, frames}, and the request's payload frames back,
 *                zero-copy: the cost of the broker and a trivial stage
 *   stream {n, ms}  n `progress` replies ms apart (n * ms <= 60000) unless
 *                cancelled: a long request that keeps talking to its client, as
 *                LLM generation does (how the broker notices a client that left) */
#include "om_daemon_impl.h"

#include <string.h>
#include <unistd.h>

static const char *const test_ops[] = { "sleep", "echo", "stream", NULL };

#define SLEEP_MAX_MS 60000

static int test_sleep(const om_req *req, om_sink *sink)
{
    uint64_t ms = 0;
    char err[256];
    int rc = om_req_arg_u64(req, "ms", &ms, err, sizeof err);
    if (rc)
        return om_sink_fail(sink, rc == OM_ENOENT ? OM_EINVAL : rc, "sleep: %s",
                            rc == OM_ENOENT ? "args.ms is required" : err);
    if (ms > SLEEP_MAX_MS)
        return om_sink_fail(sink, OM_ERANGE, "sleep: args.ms %llu > %d",
                            (unsigned long long)ms, SLEEP_MAX_MS);
    int64_t until = om_now_us() + (int64_t)ms * 1000;
    while (om_now_us() < until) {
        if ((rc = om_sink_cancelled(sink)))
            return om_sink_fail(sink, rc, "sleep: cancelled");
        usleep(5000);
    }
    om_msgbuf *b = om_sink_buf(sink);
    rc = om_reply_result_begin(b, req->id, om_sink_seq(sink), 2) |
         om_pack_kv_u64(&b->pk, "slept_ms", ms) | om_pack_kv_i64(&b->pk, "pid", getpid());
    return rc ? OM_ENOMEM : om_sink_send(sink, NULL, 0);
}

static int test_stream(const om_req *req, om_sink *sink)
{
    uint64_t n = 0, ms = 0;
    char err[256];
    int rc = om_req_arg_u64(req, "n", &n, err, sizeof err);
    if (!rc)
        rc = om_req_arg_u64(req, "ms", &ms, err, sizeof err);
    if (rc)
        return om_sink_fail(sink, rc == OM_ENOENT ? OM_EINVAL : rc, "stream: %s",
                            rc == OM_ENOENT ? "args.n and args.ms are required" : err);
    if (n > SLEEP_MAX_MS || ms > SLEEP_MAX_MS || n * ms > SLEEP_MAX_MS)
        return om_sink_fail(sink, OM_ERANGE, "stream: args.n %llu x args.ms %llu > %d ms",
                            (unsigned long long)n, (unsigned long long)ms, SLEEP_MAX_MS);
    om_msgbuf *b = om_sink_buf(sink);
    for (uint64_t i = 0; i < n; i++) {
        int64_t until = om_now_us() + (int64_t)ms * 1000;
        do {
            if ((rc = om_sink_cancelled(sink)))
                return om_sink_fail(sink, rc, "stream: cancelled after %llu replies",
                                    (unsigned long long)i);
            usleep(2000);
        } while (om_now_us() < until);
        if (om_reply_progress(b, req->id, om_sink_seq(sink), "test", i + 1, n))
            return OM_ENOMEM;
        if ((rc = om_sink_send(sink, NULL, 0)))
            return om_sink_fail(sink, rc, "stream: cannot send reply %llu", (unsigned long long)i);
    }
    return 0;
}

static int test_echo(const om_req *req, om_sink *sink)
{
    zmq_msg_t out[64];
    size_t n = req->n_frames < 64 ? req->n_frames : 64;
    om_msgbuf *b = om_sink_buf(sink);
    int rc = om_reply_result_begin(b, req->id, om_sink_seq(sink), 2) |
             om_pack_kv_i64(&b->pk, "pid", getpid()) | om_pack_kv_u64(&b->pk, "frames", n);
    if (rc)
        return OM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        zmq_msg_init(&out[i]);
        zmq_msg_copy(&out[i], om_sink_request_frame(sink, i + 1));
    }
    return om_sink_send(sink, out, n);
}

static int test_handle(void *state, const om_req *req, om_sink *sink)
{
    if (!strcmp(req->op_name, "sleep"))
        return test_sleep(req, sink);
    if (!strcmp(req->op_name, "stream"))
        return test_stream(req, sink);
    return test_echo(req, sink);
}

const om_stage om_stage_test = {
    .name      = "test",
    .ops       = test_ops,
    .test_only = 1,
    .handle    = test_handle,
};
