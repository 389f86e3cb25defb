/* worker.c: a stage worker. Two threads, two connections to the broker backend:
 * the work thread owns the work DEALER (READY, requests in, replies out) and runs
 * the stage; the pulse thread owns a second DEALER that only carries heartbeats
 * both ways, so a worker busy with a long request still shows it is alive, and
 * asks the work thread to reconnect when the broker goes silent, and takes the
 * broker's CANCEL frames, which om_sink_cancelled reads while the stage runs. Both
 * connections carry the worker's token, which is how the broker pairs them.
 * Payload frames are sent with zmq_msg_send, never copied. */
#include "om_daemon_impl.h"

#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEADLINE_GRACE_MS 100
/* Tags of cancelled requests, a ring written by the pulse thread alone: a CANCEL
 * can only name the running request or one of the prefetch-1 (< 64) waiting
 * behind it, so older entries are never needed. */
#define CANCEL_RING 64

struct om_worker {
    void           *ctx;
    char            endpoint[OM_EP_LEN];
    const om_stage *stage;
    om_config       cfg;
    om_proto_limits lim;
    void           *state;
    int             curve;                    /* CURVE client on a tcp backend */
    char            server_public[OM_CURVE_KEY_LEN + 1], secret[OM_CURVE_KEY_LEN + 1];
    uint8_t         token[8];
    pthread_t       work, pulse;
    int             work_started;
    atomic_int      stopping;
    atomic_int      reconnect;                /* pulse -> work: the broker went silent */
    _Atomic uint64_t cancelled[CANCEL_RING];  /* pulse -> work: tags to stop (0: none) */
    unsigned        ncancelled;               /* pulse thread only */
};

struct om_sink {
    om_worker *w;
    void      *sock;          /* the work DEALER */
    zmq_msg_t *req;           /* frame 0 and payloads of the request */
    size_t     nreq;
    zmq_msg_t  tag;
    uint64_t   tag_value;     /* what a CANCEL names */
    om_msgbuf  buf;
    uint64_t   seq;
    int64_t    deadline_us;
    char       msg[512];
    om_kv_f64  timings[9];    /* [0] is total_ms, set at the end */
    om_kv_u64  usage[8];
    size_t     n_timings, n_usage;
};

void om_daemon_limits(const om_config *cfg, om_proto_limits *lim, int extra_frames)
{
    om_proto_limits_default(lim);
    lim->max_frames = (uint32_t)(cfg->max_frames + extra_frames);
    lim->max_header_bytes = (uint32_t)cfg->max_header_bytes;
    lim->max_total_bytes = cfg->max_total_bytes + 64 * (uint64_t)extra_frames;
}

/* ---- the sink (work thread) ---- */

om_msgbuf *om_sink_buf(om_sink *s) { return &s->buf; }
uint64_t   om_sink_seq(const om_sink *s) { return s->seq; }

zmq_msg_t *om_sink_request_frame(om_sink *s, size_t i)
{
    return i < s->nreq ? &s->req[i] : NULL;
}

/* Nonzero when the request should stop: OM_ECANCELED (a CANCEL from the broker, or
 * the worker is stopping) or OM_ETIMEDOUT (its deadline passed). */
int om_sink_cancelled(const om_sink *s)
{
    if (atomic_load(&s->w->stopping))
        return OM_ECANCELED;
    for (int i = 0; s->tag_value && i < CANCEL_RING; i++)
        if (atomic_load_explicit(&s->w->cancelled[i], memory_order_relaxed) == s->tag_value)
            return OM_ECANCELED;
    return om_now_us() >= s->deadline_us ? OM_ETIMEDOUT : 0;
}

int om_sink_set_done(om_sink *s, const om_kv_f64 *timings, size_t n_timings,
                     const om_kv_u64 *usage, size_t n_usage)
{
    if (n_timings > 8 || n_usage > 8)
        return OM_ERANGE;
    memcpy(s->timings + 1, timings, n_timings * sizeof *timings);
    memcpy(s->usage, usage, n_usage * sizeof *usage);
    s->n_timings = n_timings;
    s->n_usage = n_usage;
    return 0;
}

int om_sink_fail(om_sink *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    va_end(ap);
    return code;
}

static int send_reply(om_sink *s, int flags, zmq_msg_t *payloads, size_t n)
{
    zmq_msg_t tag;
    uint8_t fl = (uint8_t)flags;
    zmq_msg_init(&tag);
    zmq_msg_copy(&tag, &s->tag);
    int rc = zmq_send(s->sock, OM_W_REPLY, 1, ZMQ_SNDMORE) < 0;
    rc = rc || zmq_msg_send(&tag, s->sock, ZMQ_SNDMORE) < 0;
    rc = rc || zmq_send(s->sock, &fl, 1, ZMQ_SNDMORE) < 0;
    rc = rc || zmq_send(s->sock, s->buf.sb.data, s->buf.sb.size, n ? ZMQ_SNDMORE : 0) < 0;
    for (size_t i = 0; i < n; i++) {
        rc = rc || zmq_msg_send(&payloads[i], s->sock, i + 1 < n ? ZMQ_SNDMORE : 0) < 0;
        zmq_msg_close(&payloads[i]);
    }
    zmq_msg_close(&tag);
    s->seq++;
    return rc ? OM_EIO : 0;
}

int om_sink_send(om_sink *s, zmq_msg_t *payloads, size_t n)
{
    return send_reply(s, 0, payloads, n);
}

/* Runs one request: frames are "Q", tag, budget_ms, frame 0, payloads. Always ends
 * with exactly one final reply. */
static void run_one(om_worker *w, void *sock, om_msg *m)
{
    om_sink s = { .w = w, .sock = sock };
    char err[512] = "";
    om_msgbuf_init(&s.buf);
    zmq_msg_init(&s.tag);
    zmq_msg_copy(&s.tag, &m->frames[1]);
    if (zmq_msg_size(&m->frames[1]) == 8)
        memcpy(&s.tag_value, zmq_msg_data(&m->frames[1]), 8);

    uint32_t budget_ms = 0;
    if (zmq_msg_size(&m->frames[2]) == 4)
        memcpy(&budget_ms, zmq_msg_data(&m->frames[2]), 4);
    budget_ms = le32toh(budget_ms);
    /* The broker answers ETIMEDOUT at the deadline itself; the stage gives up a
     * little later, so the broker's answer is the one the client sees. */
    s.deadline_us = om_now_us() + ((int64_t)budget_ms + DEADLINE_GRACE_MS) * 1000;
    s.req = &m->frames[3];
    s.nreq = m->n - 3;

    om_frame views[1024];
    size_t n = s.nreq < 1024 ? s.nreq : 1024;
    for (size_t i = 0; i < n; i++)
        views[i] = (om_frame){ zmq_msg_data(&s.req[i]), zmq_msg_size(&s.req[i]) };

    int64_t t0 = om_now_us();
    om_req req;
    int rc = om_stage_req_decode(&req, views, n, &w->lim, w->cfg.test_ops, err, sizeof err);
    if (rc)
        snprintf(s.msg, sizeof s.msg, "%s", err);
    else if (!om_stage_for_op(req.op_name, w->cfg.test_ops) ||
             strcmp(om_stage_for_op(req.op_name, w->cfg.test_ops)->name, w->stage->name))
        rc = om_sink_fail(&s, OM_EUNSUPPORTED, "stage %s does not serve op '%s'",
                          w->stage->name, req.op_name);
    else if ((rc = om_sink_cancelled(&s)))   /* while it waited behind another */
        om_sink_fail(&s, rc, rc == OM_ETIMEDOUT ? "deadline passed before it started"
                                                : "cancelled before it started");
    else
        rc = w->stage->handle(w->state, &req, &s);

    int brc;
    if (rc == 0) {
        s.timings[0] = (om_kv_f64){ "total_ms", (double)(om_now_us() - t0) / 1000.0 };
        brc = om_reply_done(&s.buf, req.id, s.seq, s.timings, 1 + s.n_timings, s.usage, s.n_usage);
    } else {
        brc = om_reply_error(&s.buf, req.id, s.seq, rc, "%s", s.msg[0] ? s.msg : om_strerror(rc));
    }
    /* At shutdown the context is gone and the broker answers for us. */
    if ((brc || send_reply(&s, OM_W_FINAL | (rc ? OM_W_ERROR : 0), NULL, 0)) &&
        !atomic_load(&w->stopping))
        om_log(OM_LOG_ERROR, w->stage->name, "cannot send the final reply of request %llu",
               (unsigned long long)req.id);
    om_req_free(&req);
    om_msgbuf_free(&s.buf);
    zmq_msg_close(&s.tag);
}

static void *open_dealer(om_worker *w)
{
    void *d = zmq_socket(w->ctx, ZMQ_DEALER);
    if (!d)
        return NULL;
    int linger = w->cfg.linger_ms, hwm = w->cfg.hwm_backend;
    int64_t maxmsg = (int64_t)w->lim.max_total_bytes;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    char err[256];
    if (w->curve && om_curve_client(d, w->server_public, w->secret, err, sizeof err)) {
        om_log(OM_LOG_ERROR, w->stage->name, "%s", err);
        zmq_close(d);
        return NULL;
    }
    if (zmq_connect(d, w->endpoint)) {
        om_log(OM_LOG_ERROR, w->stage->name, "connect %s: %s", w->endpoint, zmq_strerror(errno));
        zmq_close(d);
        return NULL;
    }
    return d;
}

static void *connect_work(om_worker *w)
{
    void *d = open_dealer(w);
    if (d) {
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        zmq_send(d, OM_W_READY, 1, ZMQ_SNDMORE);
        zmq_send(d, w->stage->name, strlen(w->stage->name), ZMQ_SNDMORE);
        zmq_send(d, pid, strlen(pid), ZMQ_SNDMORE);
        zmq_send(d, w->token, sizeof w->token, 0);
    }
    return d;
}

static void *work_main(void *arg)
{
    om_worker *w = arg;
    om_proto_limits lim = w->lim;
    lim.max_frames += 3;
    lim.max_total_bytes += 64;
    om_msg m;
    om_msg_init(&m);
    void *dealer = connect_work(w);
    while (dealer && !atomic_load(&w->stopping)) {
        char err[256];
        int rc = om_msg_recv(dealer, &m, 0, &lim, w->cfg.heartbeat_ms, err, sizeof err);
        if (rc == OM_EIO)
            break;   /* ETERM: the context is shutting down */
        if (rc == 0 && m.n >= 4 && zmq_msg_size(&m.frames[0]) == 1 &&
            *(char *)zmq_msg_data(&m.frames[0]) == OM_W_REQUEST[0])
            run_one(w, dealer, &m);
        else if (rc != OM_ETIMEDOUT)
            om_log(OM_LOG_WARN, w->stage->name, "bad message from the broker: %s",
                   rc ? err : "not a request");
        if (atomic_exchange(&w->reconnect, 0)) {
            zmq_close(dealer);
            dealer = connect_work(w);
        }
    }
    atomic_store(&w->stopping, 1);
    om_msg_free(&m);
    if (dealer)
        zmq_close(dealer);
    return NULL;
}

/* One message on the pulse connection: "H" (the broker is alive) or "C" tag,
 * whose tag goes into the ring. 0, or -1 when there was none. */
static int pulse_recv(om_worker *w, void *pulse)
{
    zmq_msg_t cmd, tag;
    zmq_msg_init(&cmd);
    zmq_msg_init(&tag);
    if (zmq_msg_recv(&cmd, pulse, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&cmd);
        zmq_msg_close(&tag);
        return -1;
    }
    int more = zmq_msg_more(&cmd);
    if (more && zmq_msg_recv(&tag, pulse, 0) >= 0) {
        more = zmq_msg_more(&tag);
        if (!more && zmq_msg_size(&cmd) == 1 && *(char *)zmq_msg_data(&cmd) == OM_W_CANCEL[0] &&
            zmq_msg_size(&tag) == 8) {
            uint64_t t;
            memcpy(&t, zmq_msg_data(&tag), 8);
            atomic_store(&w->cancelled[w->ncancelled++ % CANCEL_RING], t);
        }
    }
    while (more && zmq_msg_recv(&tag, pulse, 0) >= 0)   /* not ours: skipped whole */
        more = zmq_msg_more(&tag);
    zmq_msg_close(&cmd);
    zmq_msg_close(&tag);
    return 0;
}

/* Heartbeats: "H" token out every heartbeat_ms, the broker answers each when it
 * knows the token; silence for heartbeat_misses intervals (the broker died, or a
 * new one does not know us) reconnects both connections. */
static void *pulse_main(void *arg)
{
    om_worker *w = arg;
    const int64_t hb_us = (int64_t)w->cfg.heartbeat_ms * 1000;
    const int64_t silent_us = hb_us * w->cfg.heartbeat_misses;
    void *pulse = open_dealer(w);
    int64_t last_in = om_now_us(), next_hb = last_in;
    while (pulse && !atomic_load(&w->stopping)) {
        int64_t now = om_now_us();
        if (now >= next_hb) {
            zmq_send(pulse, OM_W_HB, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(pulse, w->token, sizeof w->token, ZMQ_DONTWAIT);
            next_hb = now + hb_us;
        }
        if (now - last_in > silent_us) {
            om_log(OM_LOG_WARN, w->stage->name, "broker silent for %d ms; reconnecting",
                   (int)((now - last_in) / 1000));
            atomic_store(&w->reconnect, 1);
            for (int i = 0; i < CANCEL_RING; i++)   /* a new broker numbers tags anew */
                atomic_store(&w->cancelled[i], 0);
            zmq_close(pulse);
            pulse = open_dealer(w);
            last_in = now;
            continue;
        }
        zmq_pollitem_t it = { pulse, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll(&it, 1, (long)((next_hb - now) / 1000) + 1);
        if (n < 0 && errno != EINTR)
            break;   /* ETERM */
        while (n > 0 && pulse_recv(w, pulse) == 0)
            last_in = om_now_us();
    }
    if (pulse)
        zmq_close(pulse);
    return NULL;
}

/* A worker on a tcp backend of a CURVE daemon is a CURVE client: its secret key
 * (security.worker_key, whose public key is in the allow-list) and omnid's public
 * key (security.server_key, or derived from security.secret_key on the same host). */
static int load_curve(om_worker *w, char *err, size_t errlen)
{
    if (!w->cfg.curve || strncmp(w->endpoint, "tcp://", 6))
        return 0;
    if (!w->cfg.worker_key[0]) {
        snprintf(err, errlen, "security.curve = on needs security.worker_key for workers on tcp");
        return OM_EINVAL;
    }
    int rc = om_curve_read_key(w->cfg.worker_key, w->secret, err, errlen);
    if (!rc && w->cfg.server_key[0]) {
        rc = om_curve_read_key(w->cfg.server_key, w->server_public, err, errlen);
    } else if (!rc) {
        char secret[OM_CURVE_KEY_LEN + 1];
        rc = om_curve_load_secret(w->cfg.secret_key, secret, w->server_public, err, errlen);
    }
    w->curve = rc == 0;
    return rc;
}

int om_worker_start(om_worker **out, void *ctx, const char *endpoint, const om_stage *stage,
                    const om_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    om_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return OM_ENOMEM;
    }
    w->ctx = ctx;
    w->stage = stage;
    w->cfg = *cfg;
    w->cfg.noverrides = 0;   /* the overrides stay owned by the caller's config */
    snprintf(w->endpoint, sizeof w->endpoint, "%s", endpoint);
    om_daemon_limits(cfg, &w->lim, 0);
    /* Unique per worker and per run: pid, address, time. */
    uint64_t token = ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)w ^ (uint64_t)om_now_us();
    memcpy(w->token, &token, sizeof token);
    int rc = load_curve(w, err, errlen);
    if (rc) {
        free(w);
        return rc;
    }
    rc = stage->init ? stage->init(cfg, &w->state) : 0;
    if (rc) {
        snprintf(err, errlen, "stage %s: init failed: %s", stage->name, om_strerror(rc));
        free(w);
        return rc;
    }
    /* Signals go to the thread that waits for them, never to these. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    w->work_started = !pthread_create(&w->work, NULL, work_main, w);
    int pulse_started = w->work_started && !pthread_create(&w->pulse, NULL, pulse_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!pulse_started) {
        /* The work thread checks stopping at least every heartbeat_ms. */
        atomic_store(&w->stopping, 1);
        if (w->work_started)
            pthread_join(w->work, NULL);
        if (stage->fini)
            stage->fini(w->state);
        free(w);
        snprintf(err, errlen, "stage %s: cannot start threads", stage->name);
        return OM_ENOMEM;
    }
    *out = w;
    return 0;
}

void om_worker_join(om_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stopping, 1);
    pthread_join(w->work, NULL);
    pthread_join(w->pulse, NULL);
    if (w->stage->fini)
        w->stage->fini(w->state);
    free(w);
}
