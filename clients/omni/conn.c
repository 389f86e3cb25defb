/* The client side of one request: a DEALER to the front door, then replies with the
 * request's id until done or error. Replies to other ids (an earlier run's, or a
 * cancelled request's) are skipped. Ctrl-C, once caught, cancels the request. */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "om_err.h"
#include "omni.h"

static int curve(omni_ctx *c)
{
    if (!c->server_key || !*c->server_key || !c->client_key || !*c->client_key) {
        fprintf(stderr, "omni: CURVE needs both --server-key (omnid's public key) and --key "
                        "(your secret key, its public key in omnid's allow list)\n");
        return OMNI_EUSAGE;
    }
    char server[OM_CURVE_KEY_LEN + 1], secret[OM_CURVE_KEY_LEN + 1], err[256];
    if (om_curve_read_key(c->server_key, server, err, sizeof err) ||
        om_curve_read_key(c->client_key, secret, err, sizeof err) ||
        om_curve_client(c->sock, server, secret, err, sizeof err)) {
        fprintf(stderr, "omni: %s\n", err);
        return OMNI_EUSAGE;
    }
    return 0;
}

int omni_connect(omni_ctx *c)
{
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        fprintf(stderr, "omni: zmq_ctx_new: %s\n", zmq_strerror(zmq_errno()));
        return OMNI_ENOANSWER;
    }
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    int linger = 0;
    int64_t maxmsg = (int64_t)c->lim.max_total_bytes;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &c->timeout_ms, sizeof c->timeout_ms) ||
        zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg)) {
        fprintf(stderr, "omni: cannot create a socket: %s\n", zmq_strerror(zmq_errno()));
        omni_disconnect(c);
        return OMNI_ENOANSWER;
    }
    if ((c->server_key && *c->server_key) || (c->client_key && *c->client_key)) {
        int ret = curve(c);
        if (ret) {
            omni_disconnect(c);
            return ret;
        }
    }
    if (zmq_connect(c->sock, c->endpoint)) {
        fprintf(stderr, "omni: cannot use endpoint '%s': %s\n", c->endpoint, zmq_strerror(zmq_errno()));
        omni_disconnect(c);
        return OMNI_EUSAGE;
    }
    return 0;
}

void omni_disconnect(omni_ctx *c)
{
    if (c->sock)
        zmq_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    c->sock = c->zctx = NULL;
}

uint64_t omni_next_id(void)
{
    static uint64_t next;
    if (!next) {
        /* Distinct across runs so a late reply to an earlier run is never taken for ours. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        next = ((uint64_t)ts.tv_sec << 20 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 40) & ((1ull << 53) - 1);
        next += !next;
    }
    return next++;
}

#define CANCEL_WAIT_MS 2000

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

void omni_catch_sigint(void)
{
    /* No SA_RESTART: the signal interrupts zmq_poll, so the reply loop sees it now. */
    struct sigaction sa = { .sa_handler = on_sigint };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* Ctrl-C: without a `cancel`, omnid would go on working for a client that left
 * until its next reply fails to route. Waits up to CANCEL_WAIT_MS for the
 * cancel's answer. */
static int cancel_request(omni_ctx *c, uint64_t target, om_msg *m)
{
    signal(SIGINT, SIG_DFL);   /* a second Ctrl-C does not wait */
    omni_progress_clear(c);
    if (c->mid_line) {
        fputc('\n', stdout);
        c->mid_line = false;
    }
    om_msgbuf b;
    om_msgbuf_init(&b);
    uint64_t id = omni_next_id();
    int rc = om_req_build(&b, "cancel", id, 0, 1);
    rc = rc < 0 ? rc : om_pack_kv_u64(&b.pk, "target_id", target);
    om_frame f = om_msgbuf_frame(&b);
    bool confirmed = false;
    if (!rc && om_send_frames(c->sock, &f, 1, 0) >= 0) {
        char err[256];
        /* The target's last replies and its ECANCELED come first and are skipped. */
        while (om_msg_recv(c->sock, m, 0, &c->lim, CANCEL_WAIT_MS, err, sizeof err) == 0) {
            om_frame body[m->n];
            size_t nb = om_msg_body(m, body, m->n);
            om_reply_msg r;
            if (om_reply_decode(&r, body, nb, &c->lim, err, sizeof err))
                continue;
            bool ours = r.id == id && om_reply_is_final(&r);
            confirmed = ours && r.type == OM_REPLY_DONE;
            om_reply_msg_free(&r);
            if (ours)
                break;
        }
    }
    om_msgbuf_free(&b);
    fprintf(stderr, "omni: interrupted; %s\n",
            confirmed ? "omnid cancelled the request" : "omnid did not confirm the cancel");
    return OMNI_EINTR;
}

int omni_call(omni_ctx *c, const om_msgbuf *req, const om_frame *payload, size_t n_payload,
              uint64_t id, omni_reply_fn fn, void *user)
{
    int ret;
    if (!c->sock && (ret = omni_connect(c)) != 0)
        return ret;
    if (n_payload + 1 > c->lim.max_frames) {
        fprintf(stderr, "omni: %zu payload frames (limit %u)\n", n_payload, c->lim.max_frames - 1);
        return OMNI_EUSAGE;
    }
    om_frame frames[n_payload + 1];
    frames[0] = om_msgbuf_frame(req);
    for (size_t i = 0; i < n_payload; i++)
        frames[1 + i] = payload[i];
    if ((ret = om_send_frames(c->sock, frames, n_payload + 1, 0)) < 0) {
        fprintf(stderr, "omni: cannot send to %s: %s\n", c->endpoint, om_strerror(ret));
        return OMNI_ENOANSWER;
    }

    om_msg m;
    om_msg_init(&m);
    char err[256];
    bool answered = false;
    for (ret = -1; ret < 0;) {
        int rc = om_msg_recv(c->sock, &m, 0, &c->lim, c->timeout_ms, err, sizeof err);
        if (interrupted) {
            ret = cancel_request(c, id, &m);
            break;
        }
        if (rc == OM_ETIMEDOUT) {
            omni_progress_clear(c);
            if (answered)
                fprintf(stderr, "omni: omnid at %s went silent for %d ms\n", c->endpoint, c->timeout_ms);
            else
                fprintf(stderr, "omni: no answer from omnid at %s within %d ms "
                                "(is it running? see --endpoint, OMNID_ENDPOINT, --timeout)\n",
                        c->endpoint, c->timeout_ms);
            ret = OMNI_ENOANSWER;
            break;
        }
        if (rc < 0) {
            omni_progress_clear(c);
            fprintf(stderr, "omni: bad reply from %s: %s\n", c->endpoint, err);
            ret = OMNI_EPROTO;
            break;
        }
        om_frame body[m.n];
        size_t nb = om_msg_body(&m, body, m.n);
        om_reply_msg r;
        rc = om_reply_decode(&r, body, nb, &c->lim, err, sizeof err);
        if (rc == OM_EUNSUPPORTED)
            continue;                      /* a reply kind newer than this client */
        if (rc < 0) {
            omni_progress_clear(c);
            fprintf(stderr, "omni: bad reply from %s: %s\n", c->endpoint, err);
            ret = OMNI_EPROTO;
            break;
        }
        if (r.id == id) {
            answered = true;
            int h = fn ? fn(c, &r, user) : OMNI_DEFAULT;
            if (h == OMNI_DEFAULT)
                h = omni_print_reply(c, &r);
            if (h != OMNI_OK)
                ret = h;
            else if (om_reply_is_final(&r))
                ret = r.type == OM_REPLY_DONE ? OMNI_OK : OMNI_EREPLY;
        }
        om_reply_msg_free(&r);
    }
    om_msg_free(&m);
    return ret;
}
