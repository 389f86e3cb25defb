/* broker.c: the broker loop. Clients' requests come in on the front ROUTER, are
 * answered here (health/status/metrics) or queued per stage (bounded: EBUSY when
 * full) and handed to the least loaded, least recently idle worker of that stage
 * on the backend ROUTER. Replies stream back frame by frame without copies. Deadlines,
 * cancellation (the `cancel` op, clients that left), heartbeats, retries and the
 * drain at shutdown are all decided here, on one thread, so no state needs a lock. */
#include "om_daemon_impl.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 256   /* messages per socket per turn, so no socket starves the others */

int om_broker_reply(om_daemon *d, zmq_msg_t *env, int more)
{
    /* ROUTER_MANDATORY + DONTWAIT: a client that left or stopped reading makes the
     * send fail now instead of blocking the broker; its reply is dropped. */
    if (zmq_send(d->front, zmq_msg_data(env), zmq_msg_size(env),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(d->front, d->buf.sb.data, d->buf.sb.size, ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)) < 0) {
        d->metrics.drops_client++;
        return OM_ECANCELED;
    }
    return 0;
}

void om_broker_reply_error(om_daemon *d, zmq_msg_t *env, uint64_t id, uint64_t seq,
                           int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = om_reply_verror(&d->buf, id, seq, code, fmt, ap);
    va_end(ap);
    if (rc == 0)
        om_broker_reply(d, env, 0);
}

static void req_free(breq *r)
{
    om_msg_free(&r->msg);
    free(r);
}

/* Ends a request the broker gives up on: one error reply, metrics, free. */
static void req_fail(om_daemon *d, breq *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void req_fail(om_daemon *d, breq *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (om_reply_verror(&d->buf, r->id, r->nsent, code, fmt, ap) == 0)
        om_broker_reply(d, &r->msg.frames[0], 0);
    va_end(ap);
    om_metrics_observe(&d->metrics, r->slot, om_now_us() - r->t0_us, code);
    req_free(r);
}

static void queue_push(bstage *s, breq *r, int front)
{
    r->next = NULL;
    if (!s->qhead) {
        s->qhead = s->qtail = r;
    } else if (front) {
        r->next = s->qhead;
        s->qhead = r;
    } else {
        s->qtail->next = r;
        s->qtail = r;
    }
    s->qlen++;
}

static breq *queue_pop(bstage *s)
{
    breq *r = s->qhead;
    if (r) {
        s->qhead = r->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->qlen--;
        r->next = NULL;
    }
    return r;
}

static bworker *find_worker(om_daemon *d, const zmq_msg_t *id)
{
    size_t n = zmq_msg_size((zmq_msg_t *)id);
    const void *p = zmq_msg_data((zmq_msg_t *)id);
    for (int i = 0; i < d->nworkers; i++)
        if (d->workers[i].ident_len == n && !memcmp(d->workers[i].ident, p, n))
            return &d->workers[i];
    return NULL;
}

static bworker *find_token(om_daemon *d, const zmq_msg_t *token)
{
    if (zmq_msg_size((zmq_msg_t *)token) != 8)
        return NULL;
    for (int i = 0; i < d->nworkers; i++)
        if (!memcmp(d->workers[i].token, zmq_msg_data((zmq_msg_t *)token), 8))
            return &d->workers[i];
    return NULL;
}

static void remove_worker(om_daemon *d, bworker *w, const char *why);

int om_worker_busy(const bworker *w)
{
    for (int k = 0; k < OM_MAX_PREFETCH; k++)
        if (w->slot[k].req)
            return 1;
    return 0;
}

static bslot *find_slot(bworker *w, uint64_t tag)
{
    for (int k = 0; k < OM_MAX_PREFETCH; k++)
        if (w->slot[k].tag == tag)
            return &w->slot[k];
    return NULL;
}

static int send_request(om_daemon *d, bworker *w, breq *r)
{
    int64_t left = (r->deadline_us - om_now_us()) / 1000;
    uint32_t budget = htole32(left < 1 ? 1 : left > UINT32_MAX ? UINT32_MAX : (uint32_t)left);
    r->tag = ++d->next_tag;
    r->attempts++;
    int rc = zmq_send(d->backend, w->ident, w->ident_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0;
    rc = rc || zmq_send(d->backend, OM_W_REQUEST, 1, ZMQ_SNDMORE) < 0;
    rc = rc || zmq_send(d->backend, &r->tag, 8, ZMQ_SNDMORE) < 0;
    rc = rc || zmq_send(d->backend, &budget, 4, ZMQ_SNDMORE) < 0;
    for (size_t i = 1; !rc && i < r->msg.n; i++) {
        zmq_msg_t c;
        zmq_msg_init(&c);
        zmq_msg_copy(&c, &r->msg.frames[i]);   /* a reference, not the bytes */
        rc = zmq_msg_send(&c, d->backend, i + 1 < r->msg.n ? ZMQ_SNDMORE : 0) < 0;
        zmq_msg_close(&c);
    }
    bslot *s = find_slot(w, 0);
    s->tag = r->tag;
    s->req = r;
    s->cancelled = 0;
    w->outstanding++;
    return rc ? OM_EIO : 0;
}

/* Hands queued requests of stage si to its workers: the least loaded with room
 * (fewer than prefetch requests), least recently idle first. */
static void dispatch(om_daemon *d, int si)
{
    bstage *s = &d->stages[si];
    while (s->qhead) {
        bworker *best = NULL;
        for (int i = 0; i < d->nworkers; i++) {
            bworker *w = &d->workers[i];
            if (w->stage != si || w->outstanding >= s->conf.prefetch)
                continue;
            if (!best || w->outstanding < best->outstanding ||
                (w->outstanding == best->outstanding && w->idle_since_us < best->idle_since_us))
                best = w;
        }
        if (!best)
            return;
        breq *r = queue_pop(s);
        if (send_request(d, best, r))
            remove_worker(d, best, "unreachable");
    }
}

static void remove_worker(om_daemon *d, bworker *w, const char *why)
{
    bstage *s = &d->stages[w->stage];
    breq *held[OM_MAX_PREFETCH];
    int n = 0;
    for (int k = 0; k < OM_MAX_PREFETCH; k++)
        if (w->slot[k].req)
            held[n++] = w->slot[k].req;
    om_log(OM_LOG_WARN, "broker", "worker %s pid %d %s; removed", s->st->name, w->pid, why);
    om_ops_publish_event(d, "worker_down", s->st->name, w->pid);
    int si = w->stage;
    *w = d->workers[--d->nworkers];
    /* Back to the head of the queue: retried once, and only when the client has seen
     * nothing of them yet. */
    while (n--) {
        breq *r = held[n];
        if (r->nsent == 0 && r->attempts < 2 && !d->draining) {
            d->metrics.retries++;
            om_log(OM_LOG_INFO, "broker", "retrying request %llu on another %s worker",
                   (unsigned long long)r->id, s->st->name);
            queue_push(s, r, 1);
        } else {
            req_fail(d, r, OM_EUNAVAILABLE, "the %s worker serving this request %s", s->st->name, why);
        }
    }
    dispatch(d, si);
}

/* ---- cancellation ---- */

/* Where one request of a client is: queued (prev is its predecessor in s's queue)
 * or held by worker w in slot. */
typedef struct found {
    breq    *r, *prev;
    bstage  *s;
    bworker *w;
    bslot   *slot;
} found;

/* Finds request id of the client whose routing identity is ident (any of its
 * requests when any_id): 0 or OM_ENOENT. Requests the broker ended already
 * (deadline, cancel) are not found. */
static int find_request(om_daemon *d, const void *ident, size_t len, uint64_t id, int any_id,
                        found *f)
{
    memset(f, 0, sizeof *f);
    for (int si = 0; si < d->nstages; si++)
        for (breq *r = d->stages[si].qhead, *prev = NULL; r; prev = r, r = r->next)
            if ((any_id || r->id == id) && breq_from(r, ident, len)) {
                *f = (found){ .r = r, .prev = prev, .s = &d->stages[si] };
                return 0;
            }
    for (int i = 0; i < d->nworkers; i++)
        for (int k = 0; k < OM_MAX_PREFETCH; k++) {
            breq *r = d->workers[i].slot[k].req;
            if (r && (any_id || r->id == id) && breq_from(r, ident, len)) {
                *f = (found){ .r = r, .w = &d->workers[i], .slot = &d->workers[i].slot[k] };
                return 0;
            }
        }
    return OM_ENOENT;
}

/* CANCEL goes on the pulse connection: the work thread is inside the stage's
 * handler. A worker whose pulse has not spoken yet (it just started) is told when
 * its first heartbeat comes. */
static void tell_cancel(om_daemon *d, bworker *w, const bslot *s)
{
    if (w->pulse_len &&
        zmq_send(d->backend, w->pulse, w->pulse_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
        zmq_send(d->backend, OM_W_CANCEL, 1, ZMQ_SNDMORE);
        zmq_send(d->backend, &s->tag, 8, 0);
    }
}

/* Ends the request found with ECANCELED at once, like a deadline: a queued one
 * leaves its queue; a running one leaves its slot (the tag stays until the
 * worker's final reply; what it sends meanwhile is dropped) and its worker is told
 * to stop. reply: answer the client (not when it left). */
static void end_request(om_daemon *d, found *f, int reply, const char *why)
{
    breq *r = f->r;
    if (f->slot) {
        f->slot->req = NULL;
        f->slot->cancelled = 1;
        tell_cancel(d, f->w, f->slot);
    } else {
        if (f->prev)
            f->prev->next = r->next;
        else
            f->s->qhead = r->next;
        if (f->s->qtail == r)
            f->s->qtail = f->prev;
        f->s->qlen--;
    }
    if (reply) {
        req_fail(d, r, OM_ECANCELED, "%s", why);
    } else {
        om_metrics_observe(&d->metrics, r->slot, om_now_us() - r->t0_us, OM_ECANCELED);
        req_free(r);
    }
}

/* A reply to this client could not be delivered because its connection is gone
 * (ZeroMQ tells a ROUTER nothing sooner): its other requests are ended too, so
 * their workers stop working for nobody. */
static void cancel_client(om_daemon *d, const void *ident, size_t len)
{
    found f;
    while (find_request(d, ident, len, 0, 1, &f) == 0) {
        om_log(OM_LOG_DEBUG, "broker", "request %llu: client left; cancelled",
               (unsigned long long)f.r->id);
        end_request(d, &f, 0, NULL);
        d->metrics.cancelled_disconnect++;
    }
}

/* `cancel {target_id}`: only the client's own requests, matched by its routing
 * identity. The target ends with ECANCELED, the cancel with `done`. */
static void on_cancel(om_daemon *d, zmq_msg_t *env, const om_req *req, int64_t now)
{
    uint64_t target = 0;
    char err[256];
    found f;
    int rc = om_req_arg_u64(req, "target_id", &target, err, sizeof err);
    if (rc == OM_ENOENT) {
        rc = OM_EINVAL;
        om_broker_reply_error(d, env, req->id, 0, rc, "cancel: args.target_id is required");
    } else if (rc) {
        om_broker_reply_error(d, env, req->id, 0, rc, "cancel: %s", err);
    } else if ((rc = find_request(d, zmq_msg_data(env), zmq_msg_size(env), target, 0, &f))) {
        om_broker_reply_error(d, env, req->id, 0, rc,
                              "cancel: no request %llu of this client is queued or running",
                              (unsigned long long)target);
    } else {
        char why[64];
        snprintf(why, sizeof why, "cancelled by request %llu", (unsigned long long)req->id);
        end_request(d, &f, 1, why);
        d->metrics.cancelled++;
        om_kv_f64 t = { "total_ms", (double)(om_now_us() - now) / 1000.0 };
        if (om_reply_done(&d->buf, req->id, 0, &t, 1, NULL, 0) == 0)
            om_broker_reply(d, env, 0);
    }
    om_metrics_observe(&d->metrics, om_metrics_slot(&d->metrics, "broker", "cancel"),
                       om_now_us() - now, rc);
}

static void on_ready(om_daemon *d, om_msg *m, int64_t now)
{
    if (m->n != 5 || zmq_msg_size(&m->frames[0]) > sizeof d->workers[0].ident ||
        zmq_msg_size(&m->frames[4]) != 8) {
        om_log(OM_LOG_WARN, "broker", "malformed READY from a worker; ignored");
        return;
    }
    char name[32] = "", pid[16] = "";
    om_frame fn = om_msg_frame(m, 2), fp = om_msg_frame(m, 3);
    if (fn.size < sizeof name)
        memcpy(name, fn.data, fn.size);
    if (fp.size < sizeof pid)
        memcpy(pid, fp.data, fp.size);
    int si = -1;
    for (int i = 0; i < d->nstages; i++)
        if (!strcmp(d->stages[i].st->name, name) && d->stages[i].conf.mode != OM_MODE_OFF)
            si = i;
    /* The same worker again on a new connection (it lost the broker for a while). */
    bworker *old = find_token(d, &m->frames[4]);
    if (old && si >= 0)
        remove_worker(d, old, "reconnected");
    if (si < 0 || d->nworkers == OM_MAX_WORKERS || find_worker(d, &m->frames[0])) {
        om_log(OM_LOG_WARN, "broker", "worker for stage '%s' refused (%s)", name,
               si < 0 ? "unknown or disabled stage" : d->nworkers == OM_MAX_WORKERS ? "too many workers"
                                                    : "duplicate READY");
        return;
    }
    bworker *w = &d->workers[d->nworkers++];
    memset(w, 0, sizeof *w);
    w->ident_len = zmq_msg_size(&m->frames[0]);
    memcpy(w->ident, zmq_msg_data(&m->frames[0]), w->ident_len);
    w->stage = si;
    w->pid = atoi(pid);
    memcpy(w->token, zmq_msg_data(&m->frames[4]), 8);
    w->last_seen_us = w->joined_us = w->idle_since_us = now;
    om_log(OM_LOG_INFO, "broker", "worker %s pid %d ready", name, w->pid);
    om_ops_publish_event(d, "worker_up", name, w->pid);
    dispatch(d, si);
}

static void on_reply(om_daemon *d, bworker *w, om_msg *m, int64_t now)
{
    uint64_t tag = 0;
    uint8_t flags = 0;
    if (m->n < 5 || zmq_msg_size(&m->frames[2]) != 8 || zmq_msg_size(&m->frames[3]) != 1) {
        remove_worker(d, w, "sent a malformed reply");
        return;
    }
    memcpy(&tag, zmq_msg_data(&m->frames[2]), 8);
    flags = *(uint8_t *)zmq_msg_data(&m->frames[3]);
    bslot *s = tag ? find_slot(w, tag) : NULL;
    breq *r = s ? s->req : NULL;
    int final = flags & OM_W_FINAL;
    uint8_t gone[256];
    size_t gone_len = 0;
    if (!r) {
        /* Its request ended already: deadline or retried (late), or cancelled (the
         * replies the worker sent before it saw the CANCEL: expected, not counted). */
        if (!s || !s->cancelled)
            d->metrics.drops_late++;
    } else {
        /* ROUTER_MANDATORY reports only on the routing frame: EHOSTUNREACH when the
         * client's connection is gone, EAGAIN when a live client's pipe is full. */
        int ok = zmq_send(d->front, zmq_msg_data(&r->msg.frames[0]), zmq_msg_size(&r->msg.frames[0]),
                          ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0;
        if (!ok && errno == EHOSTUNREACH && zmq_msg_size(&r->msg.frames[0]) <= sizeof gone) {
            gone_len = zmq_msg_size(&r->msg.frames[0]);
            memcpy(gone, zmq_msg_data(&r->msg.frames[0]), gone_len);
        }
        for (size_t i = 4; ok && i < m->n; i++)
            ok = zmq_msg_send(&m->frames[i], d->front, i + 1 < m->n ? ZMQ_SNDMORE : 0) >= 0;
        if (!ok)
            d->metrics.drops_client++;
        r->nsent++;
        if (final) {
            om_metrics_observe(&d->metrics, r->slot, now - r->t0_us,
                               flags & OM_W_ERROR ? OM_EINTERNAL : 0);
            req_free(r);
            s->req = NULL;
        }
    }
    if (final && s) {
        s->tag = 0;
        s->req = NULL;
        s->cancelled = 0;
        if (--w->outstanding == 0)
            w->idle_since_us = now;
        dispatch(d, w->stage);
    }
    if (gone_len)
        cancel_client(d, gone, gone_len);
}

static void on_backend(om_daemon *d)
{
    om_msg m;
    om_msg_init(&m);
    for (int k = 0; k < BATCH; k++) {
        char err[256];
        int rc = om_msg_recv(d->backend, &m, 1, &d->lim_back, 0, err, sizeof err);
        if (rc == OM_ETIMEDOUT || rc == OM_EIO)
            break;
        int64_t now = om_now_us();
        if (rc || m.n < 2 || zmq_msg_size(&m.frames[1]) != 1) {
            om_log(OM_LOG_WARN, "broker", "bad message from a worker: %s", rc ? err : "no command");
            bworker *w = m.n ? find_worker(d, &m.frames[0]) : NULL;
            if (w)
                remove_worker(d, w, "broke the worker protocol");
            continue;
        }
        char cmd = *(char *)zmq_msg_data(&m.frames[1]);
        if (cmd == OM_W_READY[0]) {
            on_ready(d, &m, now);
            continue;
        }
        if (cmd == OM_W_HB[0]) {
            bworker *w = m.n == 3 ? find_token(d, &m.frames[2]) : NULL;
            size_t len = zmq_msg_size(&m.frames[0]);
            if (w && len <= sizeof w->pulse) {
                /* Answered at once: the worker knows the broker is alive and knows it. */
                int fresh = w->pulse_len == 0;
                w->last_seen_us = now;
                w->pulse_len = len;
                memcpy(w->pulse, zmq_msg_data(&m.frames[0]), len);
                if (zmq_send(d->backend, w->pulse, w->pulse_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
                    zmq_send(d->backend, OM_W_HB, 1, ZMQ_DONTWAIT);
                for (int k = 0; fresh && k < OM_MAX_PREFETCH; k++)
                    if (w->slot[k].tag && w->slot[k].cancelled)
                        tell_cancel(d, w, &w->slot[k]);
            }
            continue;   /* an unknown token gets no answer: that worker registers again */
        }
        bworker *w = find_worker(d, &m.frames[0]);
        if (!w)
            continue;
        w->last_seen_us = now;
        if (cmd == OM_W_REPLY[0])
            on_reply(d, w, &m, now);
        else
            remove_worker(d, w, "sent an unknown command");
    }
    om_msg_free(&m);
}

static void on_request(om_daemon *d, om_msg *m, int64_t now)
{
    om_frame body[1024];
    size_t n = om_msg_body(m, body, 1024);
    zmq_msg_t *env = &m->frames[0];
    char err[512];
    om_req req;
    d->metrics.requests++;
    int rc = om_stage_req_decode(&req, body, n, &d->lim_front, d->cfg.test_ops, err, sizeof err);
    if (rc) {
        d->metrics.malformed++;
        om_broker_reply_error(d, env, req.id, 0, rc, "%s", err);
        return;
    }
    if (req.op == OM_OP_CANCEL) {   /* also while draining: it shortens the drain */
        on_cancel(d, env, &req, now);
        goto out;
    }
    if (d->draining) {
        om_broker_reply_error(d, env, req.id, 0, OM_ESHUTDOWN, "omnid is shutting down");
        goto out;
    }
    if (om_ops_answer(d, env, &req, now) == 0)
        goto out;
    const om_stage *st = om_stage_for_op(req.op_name, d->cfg.test_ops);
    int si = -1;
    for (int i = 0; st && i < d->nstages; i++)
        if (d->stages[i].st == st)
            si = i;
    if (si < 0) {
        om_broker_reply_error(d, env, req.id, 0, OM_EUNSUPPORTED,
                              "op '%s' is not served by this daemon", req.op_name);
        goto out;
    }
    bstage *s = &d->stages[si];
    if (s->conf.mode == OM_MODE_OFF) {
        om_broker_reply_error(d, env, req.id, 0, OM_EUNAVAILABLE, "stage %s is off", st->name);
        goto out;
    }
    int slot = om_metrics_slot(&d->metrics, st->name, req.op_name);
    if (s->qlen >= s->conf.queue) {
        om_broker_reply_error(d, env, req.id, 0, OM_EBUSY, "stage %s: queue full (%d requests)",
                              st->name, s->qlen);
        om_metrics_observe(&d->metrics, slot, 0, OM_EBUSY);
        goto out;
    }
    breq *r = calloc(1, sizeof *r);
    if (!r) {
        om_broker_reply_error(d, env, req.id, 0, OM_ENOMEM, "out of memory");
        goto out;
    }
    uint64_t ms = req.deadline_ms ? req.deadline_ms : (uint64_t)d->cfg.deadline_ms;
    if (ms > (uint64_t)d->cfg.deadline_max_ms)
        ms = (uint64_t)d->cfg.deadline_max_ms;
    r->id = req.id;
    r->stage = si;
    r->slot = slot;
    r->t0_us = now;
    r->deadline_us = now + (int64_t)ms * 1000;
    om_req_free(&req);
    r->msg = *m;            /* takes the frames; the caller gets a fresh om_msg */
    om_msg_init(m);
    if (r->deadline_us < d->next_timer_us)
        d->next_timer_us = r->deadline_us;
    queue_push(s, r, 0);
    dispatch(d, si);
    return;
out:
    om_req_free(&req);
}

static void on_front(om_daemon *d)
{
    om_msg m;
    om_msg_init(&m);
    for (int k = 0; k < BATCH; k++) {
        char err[256];
        int rc = om_msg_recv(d->front, &m, 1, &d->lim_front, 0, err, sizeof err);
        if (rc == OM_ETIMEDOUT || rc == OM_EIO)
            break;
        if (rc == 0) {
            on_request(d, &m, om_now_us());
            continue;
        }
        /* Too many frames, too big, no body: answer what we can, keep serving. */
        d->metrics.requests++;
        d->metrics.malformed++;
        uint64_t id = 0;
        om_frame f0 = om_msg_frame(&m, 1);
        if (f0.data)
            om_req_peek_id(f0.data, f0.size, &d->lim_front, &id);
        if (m.n >= 1)
            om_broker_reply_error(d, &m.frames[0], id, 0, rc, "%s", err);
    }
    om_msg_free(&m);
}

/* Deadlines, silent workers, heartbeats, stage processes. */
static void on_timers(om_daemon *d, int64_t now)
{
    int64_t next = now + 1000000;
    for (int si = 0; si < d->nstages; si++) {
        bstage *s = &d->stages[si];
        breq **pp = &s->qhead, *prev = NULL;
        while (*pp) {
            breq *r = *pp;
            if (r->deadline_us <= now) {
                *pp = r->next;
                if (s->qtail == r)
                    s->qtail = prev;
                s->qlen--;
                req_fail(d, r, OM_ETIMEDOUT, "deadline passed while queued for stage %s", s->st->name);
                continue;
            }
            if (r->deadline_us < next)
                next = r->deadline_us;
            prev = r;
            pp = &r->next;
        }
    }
    const int64_t silent_us = (int64_t)d->cfg.heartbeat_ms * 1000 * d->cfg.heartbeat_misses;
    for (int i = 0; i < d->nworkers; i++) {
        bworker *w = &d->workers[i];
        if (now - w->last_seen_us > silent_us) {
            remove_worker(d, w, "missed its heartbeats");
            i = -1;   /* the array changed under us */
            continue;
        }
        for (int k = 0; k < OM_MAX_PREFETCH; k++) {
            breq *r = w->slot[k].req;
            if (r && r->deadline_us <= now) {
                w->slot[k].req = NULL;   /* the tag stays until the worker's final reply */
                req_fail(d, r, OM_ETIMEDOUT, "deadline passed while stage %s worked on it",
                         d->stages[w->stage].st->name);
            } else if (r && r->deadline_us < next) {
                next = r->deadline_us;
            }
        }
    }
    if (d->sup.n && now >= d->next_sup_us) {
        int64_t due = om_supervisor_tick(&d->sup, now, d->cfg.restart_max_ms);
        d->next_sup_us = due < now + 100000 ? due : now + 100000;
        /* A reaped stage process need not wait for its heartbeats to run out. */
        for (int k = 0; k < d->sup.nexited; k++)
            for (int i = 0; i < d->nworkers; i++)
                if (d->workers[i].pid == d->sup.exited[k] && d->workers[i].pid != getpid()) {
                    remove_worker(d, &d->workers[i], "exited");
                    break;
                }
    }
    if (d->sup.n && d->next_sup_us < next)
        next = d->next_sup_us;
    d->next_timer_us = next;
}

static int busy(const om_daemon *d)
{
    for (int i = 0; i < d->nstages; i++)
        if (d->stages[i].qlen)
            return 1;
    for (int i = 0; i < d->nworkers; i++)
        if (om_worker_busy(&d->workers[i]))
            return 1;
    return 0;
}

void om_broker_fail_all(om_daemon *d, int code, const char *why)
{
    for (int si = 0; si < d->nstages; si++) {
        breq *r;
        while ((r = queue_pop(&d->stages[si])))
            req_fail(d, r, code, "%s", why);
    }
    for (int i = 0; i < d->nworkers; i++)
        for (int k = 0; k < OM_MAX_PREFETCH; k++) {
            breq *r = d->workers[i].slot[k].req;
            d->workers[i].slot[k].req = NULL;
            if (r)
                req_fail(d, r, code, "%s", why);
        }
}

int om_daemon_run(om_daemon *d)
{
    int64_t drain_until = 0;
    d->next_timer_us = 0;
    for (;;) {
        int64_t now = om_now_us();
        if (now >= d->next_timer_us)
            on_timers(d, now);
        if (d->draining && (!busy(d) || now >= drain_until))
            break;
        zmq_pollitem_t items[5] = {
            { d->front, 0, ZMQ_POLLIN, 0 },   { d->backend, 0, ZMQ_POLLIN, 0 },
            { d->sensors, 0, ZMQ_POLLIN, 0 }, { d->pub, 0, ZMQ_POLLIN, 0 },
            { NULL, d->stop_pipe[0], ZMQ_POLLIN, 0 },
        };
        int64_t until = d->next_timer_us;
        if (d->draining && drain_until < until)
            until = drain_until;
        long wait = (long)((until - now) / 1000) + 1;
        if (zmq_poll(items, 5, wait < 0 ? 0 : wait) < 0) {
            if (errno == EINTR)
                continue;
            om_log(OM_LOG_ERROR, "broker", "zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        if (items[4].revents & ZMQ_POLLIN) {
            char buf[64];
            if (read(d->stop_pipe[0], buf, sizeof buf) > 0 && !d->draining) {
                d->draining = 1;
                drain_until = om_now_us() + (int64_t)d->cfg.shutdown_ms * 1000;
                om_log(OM_LOG_INFO, "broker", "shutting down: draining in-flight requests (up to %d ms)",
                       d->cfg.shutdown_ms);
            }
        }
        if (items[1].revents & ZMQ_POLLIN)
            on_backend(d);
        if (items[0].revents & ZMQ_POLLIN)
            on_front(d);
        if (items[2].revents & ZMQ_POLLIN)
            om_ops_forward_sensors(d);
        if (items[3].revents & ZMQ_POLLIN)
            om_ops_drain_subscriptions(d);
    }
    om_broker_fail_all(d, OM_ESHUTDOWN, "omnid shut down before this request finished");
    om_log(OM_LOG_INFO, "broker", "stopped after %llu requests",
           (unsigned long long)d->metrics.requests);
    return 0;
}
