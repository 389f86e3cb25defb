/* Multipart messages over ZeroMQ with the limits applied while receiving:
 * ZMQ_MAXMSGSIZE bounds one frame only, so frame count and total bytes are
 * counted here, and the tail of an oversized message is drained so the next
 * message starts clean. */
#include "om_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_proto_impl.h"

void om_msg_init(om_msg *m)
{
    memset(m, 0, sizeof *m);
}

static void drop_from(om_msg *m, size_t keep)
{
    while (m->n > keep)
        zmq_msg_close(&m->frames[--m->n]);
}

void om_msg_free(om_msg *m)
{
    drop_from(m, 0);
    free(m->frames);
    om_msg_init(m);
}

om_frame om_msg_frame(const om_msg *m, size_t i)
{
    if (i >= m->n)
        return (om_frame){ NULL, 0 };
    zmq_msg_t *f = (zmq_msg_t *)&m->frames[i];   /* zmq's accessors take non-const */
    return (om_frame){ zmq_msg_data(f), zmq_msg_size(f) };
}

size_t om_msg_body(const om_msg *m, om_frame *out, size_t max)
{
    size_t k = 0;
    for (size_t i = m->n_envelope; i < m->n && k < max; i++)
        out[k++] = om_msg_frame(m, i);
    return k;
}

/* Moves a received frame into m, growing the array. */
static int keep(om_msg *m, zmq_msg_t *f)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        zmq_msg_t *nf = realloc(m->frames, cap * sizeof *nf);
        if (!nf)
            return OM_ENOMEM;
        m->frames = nf;
        m->cap = cap;
    }
    zmq_msg_init(&m->frames[m->n]);
    zmq_msg_move(&m->frames[m->n], f);
    m->n++;
    return 0;
}

int om_msg_recv(void *sock, om_msg *m, size_t n_envelope, const om_proto_limits *lim,
                int timeout_ms, char *err, size_t errlen)
{
    om_msg_free(m);
    m->n_envelope = n_envelope;

    zmq_pollitem_t it = { .socket = sock, .events = ZMQ_POLLIN };
    int rc = zmq_poll(&it, 1, timeout_ms);
    if (rc < 0 && errno != EINTR)
        return om_proto_fail(err, errlen, OM_EIO, "zmq_poll: %s", zmq_strerror(errno));
    if (rc <= 0)
        return om_proto_fail(err, errlen, OM_ETIMEDOUT, "no message within %d ms", timeout_ms);

    int ret = 0;
    size_t seen = 0;           /* frames received, envelope included */
    uint64_t body_bytes = 0;
    size_t header_size = 0;
    const char *why = NULL;
    for (bool more = true; more; seen++) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        while ((rc = zmq_msg_recv(&f, sock, 0)) < 0 && errno == EINTR)
            ;
        if (rc < 0) {
            int e = errno;
            zmq_msg_close(&f);
            om_msg_free(m);
            return om_proto_fail(err, errlen, OM_EIO, "zmq_msg_recv: %s", zmq_strerror(e));
        }
        more = zmq_msg_more(&f);
        size_t size = zmq_msg_size(&f);
        bool keep_it = true;
        if (seen >= n_envelope) {
            size_t b = seen - n_envelope;
            body_bytes += size;
            if (b == 0)
                header_size = size;
            if (ret == 0) {
                if (b >= lim->max_frames)
                    ret = OM_ERANGE, why = "frames";
                else if (b == 0 && size > lim->max_header_bytes)
                    ret = OM_ERANGE, why = "header";
                else if (body_bytes > lim->max_total_bytes)
                    ret = OM_ERANGE, why = "bytes";
            }
            keep_it = ret == 0 || (b == 0 && size <= lim->max_header_bytes);
        }
        if (keep_it && ret != OM_ENOMEM && keep(m, &f) < 0)
            ret = OM_ENOMEM;   /* keep draining: the next message must start clean */
        zmq_msg_close(&f);
    }
    m->body_bytes = body_bytes;

    if (ret == OM_ENOMEM) {
        om_msg_free(m);
        return om_proto_fail(err, errlen, OM_ENOMEM, "out of memory receiving %zu frames", seen);
    }
    if (seen <= n_envelope) {
        om_msg_free(m);
        return om_proto_fail(err, errlen, OM_EPROTO, "message has %zu frames, no body after %zu routing frames",
                             seen, n_envelope);
    }
    if (ret == OM_ERANGE) {
        drop_from(m, n_envelope + 1);
        size_t nbody = seen - n_envelope;
        if (why[0] == 'f')
            return om_proto_fail(err, errlen, ret, "message has %zu frames (limit %u)", nbody, lim->max_frames);
        if (why[0] == 'h')
            return om_proto_fail(err, errlen, ret, "frame 0 has %zu bytes (limit %u)",
                                 header_size, lim->max_header_bytes);
        return om_proto_fail(err, errlen, ret, "message has %llu bytes (limit %llu)",
                             (unsigned long long)body_bytes, (unsigned long long)lim->max_total_bytes);
    }
    return 0;
}

int om_send_frames(void *sock, const om_frame *frames, size_t n, int flags)
{
    if (n == 0)
        return OM_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc;
        while ((rc = zmq_send(sock, frames[i].data, frames[i].size,
                              flags | (i + 1 < n ? ZMQ_SNDMORE : 0))) < 0 && errno == EINTR)
            ;
        if (rc < 0) {
            if (errno == EAGAIN)
                return OM_EBUSY;
            if (errno == EHOSTUNREACH)
                return OM_ENOENT;
            return OM_EIO;
        }
    }
    return 0;
}
