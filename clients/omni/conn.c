/* The client side of one request: a DEALER to the front door, then replies with the
 * request's id until done or error. Replies to other ids (an earlier run's, or a
 * cancelled request's) are skipped. */
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
