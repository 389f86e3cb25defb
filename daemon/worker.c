/* worker.c: a stage worker. The I/O thread owns the DEALER to the broker (READY,
 * heartbeats both ways, reconnect when the broker goes silent) and forwards
 * requests to the handler thread over an inproc PAIR; the handler thread runs the
 * stage and streams replies back the same way. Frames move between sockets with
 * zmq_msg_send, never copied. */
#include "om_daemon_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEADLINE_GRACE_MS 100

struct om_worker {
    void           *ctx;
    char            endpoint[OM_EP_LEN];
    const om_stage *stage;
    om_config       cfg;
    om_proto_limits lim;
    void           *state;
    int             curve;                    /* CURVE client on a tcp backend */
    char            server_public[OM_CURVE_KEY_LEN + 1], secret[OM_CURVE_KEY_LEN + 1];
    void           *pair_io, *pair_handler;   /* the two ends, one per thread */
    pthread_t       io, handler;
    int             io_started, handler_started;
    atomic_int      stopping;
};

struct om_sink {
    om_worker *w;
    zmq_msg_t *req;           /* frame 0 and payloads of the request */
    size_t     nreq;
    zmq_msg_t  tag;
    om_msgbuf  buf;
    uint64_t   seq;
    int64_t    deadline_us;
    char       msg[512];
};

void om_daemon_limits(const om_config *cfg, om_proto_limits *lim, int extra_frames)
{
    om_proto_limits_default(lim);
    lim->max_frames = (uint32_t)(cfg->max_frames + extra_frames);
    lim->max_header_bytes = (uint32_t)cfg->max_header_bytes;
    lim->max_total_bytes = cfg->max_total_bytes + 64 * (uint64_t)extra_frames;
}

/* ---- the sink (handler thread) ---- */

om_msgbuf *om_sink_buf(om_sink *s) { return &s->buf; }
uint64_t   om_sink_seq(const om_sink *s) { return s->seq; }

zmq_msg_t *om_sink_request_frame(om_sink *s, size_t i)
{
    return i < s->nreq ? &s->req[i] : NULL;
}

int om_sink_cancelled(const om_sink *s)
{
    return atomic_load(&s->w->stopping) || om_now_us() >= s->deadline_us;
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
    void *pair = s->w->pair_handler;
    zmq_msg_t tag, hdr;
    uint8_t fl = (uint8_t)flags;
    zmq_msg_init(&tag);
    zmq_msg_copy(&tag, &s->tag);
    int rc = zmq_msg_init_size(&hdr, s->buf.sb.size);
    if (rc) {
        zmq_msg_close(&tag);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&payloads[i]);
        return OM_ENOMEM;
    }
    memcpy(zmq_msg_data(&hdr), s->buf.sb.data, s->buf.sb.size);
    rc = zmq_msg_send(&tag, pair, ZMQ_SNDMORE) < 0;
    rc |= zmq_send(pair, &fl, 1, ZMQ_SNDMORE) < 0;
    rc |= zmq_msg_send(&hdr, pair, n ? ZMQ_SNDMORE : 0) < 0;
    for (size_t i = 0; i < n; i++)
        rc |= zmq_msg_send(&payloads[i], pair, i + 1 < n ? ZMQ_SNDMORE : 0) < 0;
    zmq_msg_close(&tag);
    zmq_msg_close(&hdr);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&payloads[i]);
    s->seq++;
    return rc ? OM_EIO : 0;
}

int om_sink_send(om_sink *s, zmq_msg_t *payloads, size_t n)
{
    return send_reply(s, 0, payloads, n);
}

/* Runs one request: frames are tag, budget_ms, frame 0, payloads. Always ends with
 * exactly one final reply. */
static void run_one(om_worker *w, om_msg *m)
{
    om_sink s = { .w = w };
    char err[512] = "";
    om_msgbuf_init(&s.buf);
    zmq_msg_init(&s.tag);
    zmq_msg_copy(&s.tag, &m->frames[0]);

    uint32_t budget_ms = 0;
    if (zmq_msg_size(&m->frames[1]) == 4)
        memcpy(&budget_ms, zmq_msg_data(&m->frames[1]), 4);
    /* The broker answers ETIMEDOUT at the deadline itself; the stage gives up a
     * little later, so the broker's answer is the one the client sees. */
    s.deadline_us = om_now_us() + ((int64_t)budget_ms + DEADLINE_GRACE_MS) * 1000;
    s.req = &m->frames[2];
    s.nreq = m->n - 2;

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
    else
        rc = w->stage->handle(w->state, &req, &s);

    int brc;
    if (rc == 0) {
        om_kv_f64 t = { "total_ms", (double)(om_now_us() - t0) / 1000.0 };
        brc = om_reply_done(&s.buf, req.id, s.seq, &t, 1, NULL, 0);
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

static void *handler_main(void *arg)
{
    om_worker *w = arg;
    om_proto_limits lim = w->lim;
    lim.max_frames += 2;
    om_msg m;
    om_msg_init(&m);
    for (;;) {
        char err[256];
        int rc = om_msg_recv(w->pair_handler, &m, 0, &lim, -1, err, sizeof err);
        if (rc == OM_EIO)
            break;   /* an inproc PAIR fails only when the context shuts down */
        if (rc == 0 && m.n == 1)
            break;
        if (rc == 0 && m.n >= 3)
            run_one(w, &m);
        else
            om_log(OM_LOG_ERROR, w->stage->name, "bad request from the I/O thread: %s",
                   rc ? err : "too few frames");
    }
    om_msg_free(&m);
    zmq_close(w->pair_handler);
    return NULL;
}

/* ---- the I/O thread ---- */

static void *connect_dealer(om_worker *w)
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
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    zmq_send(d, OM_W_READY, 1, ZMQ_SNDMORE);
    zmq_send(d, w->stage->name, strlen(w->stage->name), ZMQ_SNDMORE);
    zmq_send(d, pid, strlen(pid), 0);
    return d;
}

/* Moves the rest of a multipart message from src to dst without copying. */
static int forward_rest(void *src, void *dst)
{
    int more = 1, rc = 0;
    while (more) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, src, 0) < 0) {
            zmq_msg_close(&f);
            return OM_EIO;
        }
        more = zmq_msg_more(&f);
        if (!rc && zmq_msg_send(&f, dst, more ? ZMQ_SNDMORE : 0) < 0)
            rc = OM_EIO;
        zmq_msg_close(&f);
    }
    return rc;
}

static void *io_main(void *arg)
{
    om_worker *w = arg;
    const int64_t hb_us = (int64_t)w->cfg.heartbeat_ms * 1000;
    const int64_t silent_us = hb_us * w->cfg.heartbeat_misses;
    void *dealer = connect_dealer(w);
    int64_t last_in = om_now_us(), next_hb = last_in + hb_us;

    while (dealer) {
        zmq_pollitem_t items[2] = { { dealer, 0, ZMQ_POLLIN, 0 },
                                    { w->pair_io, 0, ZMQ_POLLIN, 0 } };
        int64_t wait = next_hb - om_now_us();
        int n = zmq_poll(items, 2, wait > 0 ? (long)(wait / 1000) + 1 : 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;   /* ETERM: the context is shutting down */
        if (items[0].revents & ZMQ_POLLIN) {
            zmq_msg_t cmd;
            zmq_msg_init(&cmd);
            if (zmq_msg_recv(&cmd, dealer, 0) < 0) {
                zmq_msg_close(&cmd);
                break;
            }
            last_in = om_now_us();
            int is_req = zmq_msg_size(&cmd) == 1 && *(char *)zmq_msg_data(&cmd) == OM_W_REQUEST[0];
            int more = zmq_msg_more(&cmd);
            zmq_msg_close(&cmd);
            if (more && is_req) {
                if (forward_rest(dealer, w->pair_io))
                    break;
            } else if (more) {
                zmq_msg_t rest;
                zmq_msg_init(&rest);
                while (more && zmq_msg_recv(&rest, dealer, 0) >= 0)
                    more = zmq_msg_more(&rest);
                zmq_msg_close(&rest);
            }
        }
        if (items[1].revents & ZMQ_POLLIN) {
            if (zmq_send(dealer, OM_W_REPLY, 1, ZMQ_SNDMORE) < 0 || forward_rest(w->pair_io, dealer))
                break;
        }
        int64_t now = om_now_us();
        if (now >= next_hb) {
            zmq_send(dealer, OM_W_HB, 1, ZMQ_DONTWAIT);
            next_hb = now + hb_us;
        }
        if (now - last_in > silent_us) {
            om_log(OM_LOG_WARN, w->stage->name, "broker silent for %d ms; reconnecting",
                   (int)((now - last_in) / 1000));
            zmq_close(dealer);
            dealer = connect_dealer(w);
            last_in = now;
        }
    }
    atomic_store(&w->stopping, 1);
    if (dealer)
        zmq_close(dealer);
    zmq_close(w->pair_io);
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
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://omnid-worker-%p", (void *)w);
    w->pair_io = zmq_socket(ctx, ZMQ_PAIR);
    w->pair_handler = zmq_socket(ctx, ZMQ_PAIR);
    int zero = 0;
    if (!w->pair_io || !w->pair_handler || zmq_bind(w->pair_io, ep) ||
        zmq_connect(w->pair_handler, ep)) {
        snprintf(err, errlen, "stage %s: %s", stage->name, zmq_strerror(errno));
        rc = OM_EIO;
        goto fail;
    }
    zmq_setsockopt(w->pair_io, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(w->pair_handler, ZMQ_LINGER, &zero, sizeof zero);

    /* Signals go to the thread that waits for them, never to these. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    w->handler_started = !pthread_create(&w->handler, NULL, handler_main, w);
    w->io_started = w->handler_started && !pthread_create(&w->io, NULL, io_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!w->io_started) {
        snprintf(err, errlen, "stage %s: cannot start threads", stage->name);
        rc = OM_ENOMEM;
        goto fail;
    }
    *out = w;
    return 0;
fail:
    if (w->handler_started) {
        /* A one-frame message tells the handler thread to leave. */
        zmq_send(w->pair_io, "", 0, 0);
        pthread_join(w->handler, NULL);
    } else if (w->pair_handler) {
        zmq_close(w->pair_handler);
    }
    if (w->pair_io)
        zmq_close(w->pair_io);
    if (stage->fini)
        stage->fini(w->state);
    free(w);
    return rc;
}

void om_worker_join(om_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stopping, 1);
    pthread_join(w->io, NULL);
    pthread_join(w->handler, NULL);
    if (w->stage->fini)
        w->stage->fini(w->state);
    free(w);
}
