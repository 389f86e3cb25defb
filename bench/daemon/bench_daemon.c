/* bench_daemon: round trips through omnid's broker against raw ZeroMQ measured in
 * the same run. Both sides are a DEALER client over tcp loopback; the reference
 * is a ROUTER that echoes each message back (zero-copy) with its own ZeroMQ
 * context, as the daemon has; the daemon is the real
 * broker with the test stage (thread workers, inproc backend).
 *   small: `health` (answered by the broker) and `echo` with 64 B (broker + stage)
 *   large: `echo` with an 8 MiB payload frame (broker + stage + back)
 * Latency is one request at a time (p50/p99); throughput keeps `window` requests
 * in flight. A broker request gets two replies (result, done); the echo one. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "om_daemon.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the reference: a ROUTER echo on its own thread ---- */

typedef struct echo_srv {
    void *ctx, *sock;
    char  ep[256];
    pthread_t thread;
} echo_srv;

static void *echo_main(void *arg)
{
    echo_srv *e = arg;
    for (;;) {
        int more = 1;
        while (more) {
            zmq_msg_t f;
            zmq_msg_init(&f);
            if (zmq_msg_recv(&f, e->sock, 0) < 0) {
                zmq_msg_close(&f);
                zmq_close(e->sock);
                return NULL;
            }
            more = zmq_msg_more(&f);
            zmq_msg_send(&f, e->sock, more ? ZMQ_SNDMORE : 0);
            zmq_msg_close(&f);
        }
    }
}

static int echo_start(echo_srv *e, void *ctx)
{
    e->ctx = ctx;
    e->sock = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    size_t len = sizeof e->ep;
    zmq_setsockopt(e->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(e->sock, "tcp://127.0.0.1:*") ||
        zmq_getsockopt(e->sock, ZMQ_LAST_ENDPOINT, e->ep, &len))
        return -1;
    return pthread_create(&e->thread, NULL, echo_main, e);
}

/* ---- the client side ---- */

typedef struct run {
    void       *sock;
    int         replies;       /* messages per request */
    const char *op;            /* NULL: raw frame */
    size_t      payload;
    char       *data;
    om_msgbuf   hdr;
} run;

static void send_one(run *r, uint64_t id)
{
    if (r->op) {
        om_req_build(&r->hdr, r->op, id, 0, r->payload ? 1 : 0);
        if (r->payload)
            om_pack_kv_frame(&r->hdr.pk, "data", 1);
    } else {
        msgpack_sbuffer_clear(&r->hdr.sb);
        msgpack_pack_uint64(&r->hdr.pk, id);
    }
    zmq_send(r->sock, r->hdr.sb.data, r->hdr.sb.size, r->payload ? ZMQ_SNDMORE : 0);
    if (r->payload) {
        /* The payload is sent by reference: ZeroMQ does not copy it in. */
        zmq_msg_t m;
        zmq_msg_init_data(&m, r->data, r->payload, NULL, NULL);
        zmq_msg_send(&m, r->sock, 0);
    }
}

static size_t recv_one(run *r)
{
    size_t bytes = 0;
    int more = 1;
    while (more) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        zmq_msg_recv(&f, r->sock, 0);
        bytes += zmq_msg_size(&f);
        more = zmq_msg_more(&f);
        zmq_msg_close(&f);
    }
    return bytes;
}

static void roundtrip(run *r, uint64_t id)
{
    send_one(r, id);
    for (int k = 0; k < r->replies; k++)
        recv_one(r);
}

typedef struct result {
    double p50_us, p99_us, rps, mbps;
} result;

static result measure(run *r, int n_lat, int n_tp, int window)
{
    result res = { 0 };
    int64_t *lat = malloc((size_t)n_lat * sizeof *lat);
    for (int i = 0; i < 20 && i < n_lat; i++)
        roundtrip(r, (uint64_t)i);   /* warm up connections and allocators */
    for (int i = 0; i < n_lat; i++) {
        int64_t t0 = om_bench_now_ns();
        roundtrip(r, (uint64_t)i);
        lat[i] = om_bench_now_ns() - t0;
    }
    qsort(lat, (size_t)n_lat, sizeof *lat, cmp_i64);
    res.p50_us = (double)lat[n_lat / 2] / 1e3;
    res.p99_us = (double)lat[(n_lat * 99) / 100] / 1e3;
    free(lat);

    int64_t t0 = om_bench_now_ns();
    int sent = 0, done = 0;
    while (done < n_tp) {
        while (sent < n_tp && sent - done < window)
            send_one(r, (uint64_t)sent++);
        for (int k = 0; k < r->replies; k++)
            recv_one(r);
        done++;
    }
    double s = (double)(om_bench_now_ns() - t0) / 1e9;
    res.rps = n_tp / s;
    res.mbps = (double)n_tp * (double)r->payload * 2 / s / (1 << 20);
    return res;
}

static void row(const char *name, result ref, result got, int large)
{
    if (large)
        printf("| %-28s | %9.0f | %9.0f | %8.1f | %8.1f | %6.0f%% |\n", name, got.p50_us, got.p99_us,
               got.mbps, ref.mbps, 100.0 * got.mbps / ref.mbps);
    else
        printf("| %-28s | %9.1f | %9.1f | %8.0f | %8.0f | %6.0f%% |\n", name, got.p50_us, got.p99_us,
               got.rps, ref.rps, 100.0 * got.rps / ref.rps);
}

static void *run_broker(void *d)
{
    om_daemon_run(d);
    return NULL;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    int n_small = quick ? 500 : 5000, n_large = quick ? 10 : 60;
    size_t big = (size_t)8 << 20;
    char err[512];
    om_log_set_level(OM_LOG_WARN);

    om_config cfg;
    om_config_init(&cfg);
    static const char *const sets[] = {
        "daemon.front=tcp://127.0.0.1:*", "daemon.pub=tcp://127.0.0.1:*",
        "daemon.sensors=tcp://127.0.0.1:*", "daemon.backend=off", "daemon.test_ops=on",
        "stage.test.workers=2", "stage.ingest.mode=off", "stage.test.queue=256",
        "stage.test.prefetch=16",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (om_config_set(&cfg, sets[i], err, sizeof err)) {
            fprintf(stderr, "bench_daemon: %s\n", err);
            return 1;
        }
    om_daemon *d;
    if (om_daemon_open(&d, &cfg, err, sizeof err)) {
        fprintf(stderr, "bench_daemon: %s\n", err);
        return 1;
    }
    pthread_t broker;
    pthread_create(&broker, NULL, run_broker, d);

    /* The echo server gets its own context (own I/O thread), as the daemon has. */
    void *ctx = zmq_ctx_new(), *ectx = zmq_ctx_new();
    echo_srv e;
    if (echo_start(&e, ectx)) {
        fprintf(stderr, "bench_daemon: echo server failed\n");
        return 1;
    }
    char *data = malloc(big);
    memset(data, 0x5a, big);
    run raw = { .replies = 1, .data = data }, brk = { .replies = 2, .data = data };
    raw.sock = zmq_socket(ctx, ZMQ_DEALER);
    brk.sock = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(raw.sock, e.ep);
    zmq_connect(brk.sock, om_daemon_endpoint(d, "front"));
    om_msgbuf_init(&raw.hdr);
    om_msgbuf_init(&brk.hdr);

    printf("| %-28s | %9s | %9s | %8s | %8s | %7s |\n", "small requests", "p50 us", "p99 us",
           "req/s", "raw req/s", "of raw");
    printf("|------------------------------|-----------|-----------|----------|----------|---------|\n");
    result ref = measure(&raw, n_small, n_small * 4, 64);
    row("raw DEALER/ROUTER echo", ref, ref, 0);
    brk.op = "health";
    row("omnid health (broker)", ref, measure(&brk, n_small, n_small * 4, 64), 0);
    brk.op = "echo";
    brk.payload = raw.payload = 64;
    ref = measure(&raw, n_small, n_small * 4, 64);
    row("raw echo, 64 B frame", ref, ref, 0);
    row("omnid echo, 64 B (stage)", ref, measure(&brk, n_small, n_small * 4, 64), 0);

    printf("\n| %-28s | %9s | %9s | %8s | %8s | %7s |\n", "8 MiB payloads", "p50 us", "p99 us",
           "MiB/s", "raw MiB/s", "of raw");
    printf("|------------------------------|-----------|-----------|----------|----------|---------|\n");
    brk.payload = raw.payload = big;
    ref = measure(&raw, n_large, n_large, 4);
    row("raw echo, 8 MiB", ref, ref, 1);
    row("omnid echo, 8 MiB (stage)", ref, measure(&brk, n_large, n_large, 4), 1);
    printf("\n(MiB/s counts both directions; one warm-up of 20 round trips per row)\n");

    zmq_close(raw.sock);
    zmq_close(brk.sock);
    om_msgbuf_free(&raw.hdr);
    om_msgbuf_free(&brk.hdr);
    zmq_ctx_shutdown(ectx);
    pthread_join(e.thread, NULL);
    zmq_ctx_term(ectx);
    zmq_ctx_term(ctx);
    om_daemon_stop(d);
    pthread_join(broker, NULL);
    om_daemon_close(d);
    om_config_free(&cfg);
    free(data);
    return 0;
}
