/* dtest.c: see dtest.h. */
#include "dtest.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OMNID_PATH
#error "OMNID_PATH must name the omnid binary"
#endif

static void *g_ctx;

int64_t dt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *dt_omnid_path(void) { return OMNID_PATH; }

void *dt_ctx(void)
{
    if (!g_ctx)
        g_ctx = zmq_ctx_new();
    return g_ctx;
}

void dt_ctx_done(void)
{
    if (g_ctx)
        zmq_ctx_shutdown(g_ctx);
}

void dt_config(om_config *cfg)
{
    char err[256];
    om_config_init(cfg);
    om_log_set_level(getenv("DT_VERBOSE") ? OM_LOG_DEBUG : OM_LOG_WARN);
    static const char *const sets[] = {
        "daemon.front=tcp://127.0.0.1:*", "daemon.pub=tcp://127.0.0.1:*",
        "daemon.sensors=tcp://127.0.0.1:*", "daemon.backend=tcp://127.0.0.1:*",
        "daemon.test_ops=on", "daemon.heartbeat_ms=200", "daemon.linger_ms=0",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (om_config_set(cfg, sets[i], err, sizeof err))
            abort();
}

struct dt_daemon {
    om_daemon *d;
    pthread_t  thread;
};

static void *run(void *arg)
{
    om_daemon_run(((dt_daemon *)arg)->d);
    return NULL;
}

dt_daemon *dt_daemon_start(const om_config *cfg)
{
    char err[512];
    dt_daemon *t = calloc(1, sizeof *t);
    if (!t || om_daemon_open(&t->d, cfg, err, sizeof err)) {
        fprintf(stderr, "dt_daemon_start: %s\n", err);
        free(t);
        return NULL;
    }
    pthread_create(&t->thread, NULL, run, t);
    return t;
}

const char *dt_endpoint(dt_daemon *t, const char *which) { return om_daemon_endpoint(t->d, which); }

void dt_daemon_stop(dt_daemon *t)
{
    if (!t)
        return;
    om_daemon_stop(t->d);
    pthread_join(t->thread, NULL);
    om_daemon_close(t->d);
    free(t);
}

void *dt_client(const char *endpoint)
{
    void *s = zmq_socket(dt_ctx(), ZMQ_DEALER);
    int zero = 0, sndtimeo = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    /* A refused handshake (CURVE) leaves no peer: a send must not block for ever. */
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    zmq_connect(s, endpoint);
    return s;
}

int dt_send(void *sock, const char *op, uint64_t id, const char *args_mp, size_t args_len,
            uint64_t deadline_ms, const void *payload, size_t payload_len)
{
    om_msgbuf b;
    om_msgbuf_init(&b);
    int rc = om_req_build(&b, op, id, deadline_ms, 0);
    /* om_req_build writes a complete map without args; with args, rebuild by hand
     * so the test controls the exact bytes. */
    if (args_mp) {
        msgpack_sbuffer_clear(&b.sb);
        int n = 4 + (deadline_ms != 0);
        rc = msgpack_pack_map(&b.pk, (size_t)n) | om_pack_kv_u64(&b.pk, "v", 1) |
             om_pack_kv_str(&b.pk, "op", op) | om_pack_kv_u64(&b.pk, "id", id) |
             om_pack_str(&b.pk, "args");
        msgpack_sbuffer_write(&b.sb, args_mp, args_len);
        if (deadline_ms)
            rc |= om_pack_kv_u64(&b.pk, "deadline_ms", deadline_ms);
    }
    if (!rc)
        rc = zmq_send(sock, b.sb.data, b.sb.size, payload ? ZMQ_SNDMORE : 0) < 0;
    if (!rc && payload)
        rc = zmq_send(sock, payload, payload_len, 0) < 0;
    om_msgbuf_free(&b);
    return rc;
}

int dt_send_raw(void *sock, const void *const *frames, const size_t *sizes, int n)
{
    for (int i = 0; i < n; i++)
        if (zmq_send(sock, frames[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    return 0;
}

void dt_recv(void *sock, int timeout_ms, dt_result *r)
{
    om_proto_limits lim;
    om_proto_limits_default(&lim);
    memset(r, 0, sizeof *r);
    r->final_type = -1;
    r->result_pid = -1;
    r->seq_ok = true;
    om_msg m;
    om_msg_init(&m);
    while (r->final_type < 0) {
        char err[256];
        if (om_msg_recv(sock, &m, 0, &lim, timeout_ms, err, sizeof err))
            break;
        om_frame fr[32];
        size_t n = om_msg_body(&m, fr, 32);
        om_reply_msg rep;
        if (om_reply_decode(&rep, fr, n, &lim, err, sizeof err)) {
            fprintf(stderr, "dt_recv: undecodable reply: %s\n", err);
            r->final_type = -2;
            break;
        }
        if (rep.seq != (uint64_t)r->n)
            r->seq_ok = false;
        if (r->n < DT_MAX_REPLIES)
            r->types[r->n] = rep.type;
        r->n++;
        r->id = rep.id;
        for (size_t i = 1; i < n; i++)
            r->payload_bytes += fr[i].size;
        if (rep.type == OM_REPLY_RESULT && rep.result) {
            const msgpack_object *pid = om_map_get(rep.result, "pid");
            if (pid && pid->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                r->result_pid = (int64_t)pid->via.u64;
        }
        if (rep.type == OM_REPLY_ERROR) {
            snprintf(r->code, sizeof r->code, "%s", rep.code_name);
            snprintf(r->message, sizeof r->message, "%.*s", (int)rep.message_len, rep.message);
        }
        if (om_reply_is_final(&rep))
            r->final_type = rep.type;
        om_reply_msg_free(&rep);
    }
    om_msg_free(&m);
}

void dt_call(void *sock, const char *op, uint64_t id, const char *args_mp, size_t args_len,
             uint64_t deadline_ms, int timeout_ms, dt_result *r)
{
    dt_send(sock, op, id, args_mp, args_len, deadline_ms, NULL, 0);
    dt_recv(sock, timeout_ms, r);
}

static size_t pack_args(char *buf, size_t cap, const char *key, const char *s, uint64_t v)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    if (s)
        om_pack_kv_str(&pk, key, s);
    else
        om_pack_kv_u64(&pk, key, v);
    size_t n = sb.size <= cap ? sb.size : 0;
    memcpy(buf, sb.data, n);
    msgpack_sbuffer_destroy(&sb);
    return n;
}

size_t dt_args_u64(char *buf, size_t cap, const char *key, uint64_t v)
{
    return pack_args(buf, cap, key, NULL, v);
}

size_t dt_args_str(char *buf, size_t cap, const char *key, const char *v)
{
    return pack_args(buf, cap, key, v, 0);
}

/* Walks "a.b.c": maps by key; an array of maps by the element whose "name" is b. */
static const msgpack_object *walk(const msgpack_object *o, const char *path)
{
    char part[64];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        path += n + (path[n] == '.');
        if (o->type == MSGPACK_OBJECT_MAP) {
            o = om_map_get(o, part);
        } else if (o->type == MSGPACK_OBJECT_ARRAY) {
            const msgpack_object *hit = NULL;
            for (uint32_t i = 0; i < o->via.array.size; i++) {
                const msgpack_object *nm = om_map_get(&o->via.array.ptr[i], "name");
                if (nm && nm->type == MSGPACK_OBJECT_STR && nm->via.str.size == strlen(part) &&
                    !memcmp(nm->via.str.ptr, part, nm->via.str.size))
                    hit = &o->via.array.ptr[i];
            }
            o = hit;
        } else {
            o = NULL;
        }
    }
    return o;
}

/* Sends `status` or `metrics` and calls fn on the result map. */
static void with_result(void *sock, const char *op, void (*fn)(const msgpack_object *, void *),
                        void *user)
{
    om_proto_limits lim;
    om_proto_limits_default(&lim);
    static uint64_t id = 1u << 30;
    if (dt_send(sock, op, ++id, NULL, 0, 0, NULL, 0))
        return;
    om_msg m;
    om_msg_init(&m);
    for (int k = 0; k < 2; k++) {
        char err[256];
        if (om_msg_recv(sock, &m, 0, &lim, 5000, err, sizeof err))
            break;
        om_frame fr[4];
        size_t n = om_msg_body(&m, fr, 4);
        om_reply_msg rep;
        if (om_reply_decode(&rep, fr, n, &lim, err, sizeof err))
            break;
        if (rep.type == OM_REPLY_RESULT && rep.result)
            fn(rep.result, user);
        int final = om_reply_is_final(&rep);
        om_reply_msg_free(&rep);
        if (final)
            break;
    }
    om_msg_free(&m);
}

struct path_query {
    const char *path;
    int64_t     v;
};

static void get_path(const msgpack_object *res, void *user)
{
    struct path_query *q = user;
    const msgpack_object *o = walk(res, q->path);
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        q->v = (int64_t)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_BOOLEAN)
        q->v = o->via.boolean;
}

int64_t dt_status_u64(void *sock, const char *path)
{
    struct path_query q = { path, -1 };
    with_result(sock, !strncmp(path, "metrics.", 8) ? "metrics" : "status", get_path, &q);
    return q.v;
}

struct busy_query {
    const char *stage;
    int         pid;
};

static void get_busy(const msgpack_object *res, void *user)
{
    struct busy_query *q = user;
    const msgpack_object *ws = om_map_get(res, "workers");
    for (uint32_t i = 0; ws && ws->type == MSGPACK_OBJECT_ARRAY && i < ws->via.array.size; i++) {
        const msgpack_object *w = &ws->via.array.ptr[i];
        const msgpack_object *st = om_map_get(w, "stage"), *busy = om_map_get(w, "busy"),
                             *pid = om_map_get(w, "pid");
        if (st && busy && pid && st->type == MSGPACK_OBJECT_STR &&
            st->via.str.size == strlen(q->stage) && !memcmp(st->via.str.ptr, q->stage, st->via.str.size) &&
            busy->type == MSGPACK_OBJECT_BOOLEAN && busy->via.boolean &&
            pid->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            q->pid = (int)pid->via.u64;
    }
}

int dt_busy_pid(void *sock, const char *stage)
{
    struct busy_query q = { stage, -1 };
    with_result(sock, "status", get_busy, &q);
    return q.pid;
}

static int read_ready(const char *path, char *front, char *backend)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "front=", 6) && front)
            got |= 1, snprintf(front, OM_EP_LEN, "%.200s", line + 6);
        if (!strncmp(line, "backend=", 8) && backend)
            got |= 2, snprintf(backend, OM_EP_LEN, "%.200s", line + 8);
    }
    fclose(f);
    return got ? 0 : -1;
}

static pid_t tracked[64];
static int ntracked;

void dt_track(pid_t pid)
{
    if (pid > 0 && ntracked < 64)
        tracked[ntracked++] = pid;
}

int dt_reap_all(void **state)
{
    for (int i = 0; i < ntracked; i++) {
        int status;
        if (waitpid(tracked[i], &status, WNOHANG) == 0) {
            kill(tracked[i], SIGKILL);
            waitpid(tracked[i], &status, 0);
        }
    }
    ntracked = 0;
    return 0;
}

int dt_ready_value(const char *readyfile, const char *key, char *out)
{
    FILE *f = fopen(readyfile, "r");
    if (!f)
        return -1;
    char line[512];
    int rc = -1;
    size_t k = strlen(key);
    while (rc && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, key, k) && line[k] == '=') {
            snprintf(out, OM_EP_LEN, "%.200s", line + k + 1);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

pid_t dt_spawn(const char *const *extra, char *front, char *backend, char *readyfile)
{
    static int seq;
    snprintf(readyfile, OM_PATH_LEN, "/tmp/omnid-test-%d-%d.ready", (int)getpid(), ++seq);
    unlink(readyfile);
    const char *argv[64] = { OMNID_PATH, "--front", "tcp://127.0.0.1:*", "--pub", "tcp://127.0.0.1:*",
                             "--sensors", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
                             "--ready-file", readyfile, "--enable-test-ops",
                             "--set", "daemon.heartbeat_ms=200", "--quiet" };
    int n = 15;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    dt_track(pid);
    for (int64_t until = dt_now_ms() + 10000; dt_now_ms() < until; usleep(20000))
        if (read_ready(readyfile, front, backend) == 0)
            return pid;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int dt_wait_exit(pid_t pid, int timeout_ms)
{
    int status;
    for (int64_t until = dt_now_ms() + timeout_ms; dt_now_ms() < until; usleep(10000))
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}
