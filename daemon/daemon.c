/* daemon.c: opening and closing the daemon: the ZeroMQ context and sockets, the
 * ZAP handler, embedded workers and stage processes, in an order that lets each
 * part find what it needs (ZAP before CURVE binds, the backend before workers). */
#define _GNU_SOURCE
#include "om_daemon_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is_tcp(const char *ep) { return !strncmp(ep, "tcp://", 6); }

static void *open_socket(om_daemon *d, int type, int hwm, int64_t maxmsg)
{
    void *s = zmq_socket(d->ctx, type);
    if (!s)
        return NULL;
    int linger = d->cfg.linger_ms, one = 1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (maxmsg > 0)
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (type == ZMQ_ROUTER)
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (type == ZMQ_XPUB)
        zmq_setsockopt(s, ZMQ_XPUB_NODROP, &one, sizeof one);
    if (type == ZMQ_SUB)
        zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    return s;
}

static int bind_ep(om_daemon *d, void *s, const char *ep, const char *secret, char *out,
                   char *err, size_t errlen)
{
    if (secret && is_tcp(ep) && om_curve_server(s, secret)) {
        snprintf(err, errlen, "%s: cannot enable CURVE: %s", ep, zmq_strerror(errno));
        return OM_EIO;
    }
    if (zmq_bind(s, ep)) {
        snprintf(err, errlen, "bind %s: %s", ep, zmq_strerror(errno));
        return OM_EIO;
    }
    size_t len = OM_EP_LEN;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, out, &len))
        snprintf(out, OM_EP_LEN, "%s", ep);
    return 0;
}

static int write_ready_file(const om_daemon *d, char *err, size_t errlen)
{
    char tmp[OM_PATH_LEN + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", d->cfg.ready_file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return OM_EIO;
    }
    fprintf(f, "front=%s\npub=%s\nsensors=%s\nbackend=%s\npid=%d\n", d->ep_front, d->ep_pub,
            d->ep_sensors, d->ep_backend, (int)getpid());
    /* Renamed into place so a reader never sees half a file. */
    if (fclose(f) || rename(tmp, d->cfg.ready_file)) {
        snprintf(err, errlen, "%s: %s", d->cfg.ready_file, strerror(errno));
        return OM_EIO;
    }
    return 0;
}

static int setup_stages(om_daemon *d, char *err, size_t errlen)
{
    for (int i = 0; i < om_stage_count(); i++) {
        const om_stage *st = om_stage_at(i);
        if (st->test_only && !d->cfg.test_ops)
            continue;
        om_stage_conf *sc = om_config_stage(&d->cfg, st->name);
        if (!sc) {
            snprintf(err, errlen, "too many stages");
            return OM_ERANGE;
        }
        bstage *b = &d->stages[d->nstages++];
        b->st = st;
        b->conf = *sc;
        for (const char *const *op = st->ops; *op; op++)
            om_metrics_slot(&d->metrics, st->name, *op);
    }
    for (int i = 0; i < d->cfg.nstages; i++) {
        const om_stage *st = om_stage_find(d->cfg.stages[i].name);
        if (st && st->test_only && !d->cfg.test_ops && d->cfg.stages[i].mode != OM_MODE_OFF) {
            snprintf(err, errlen, "stage %s needs --enable-test-ops", st->name);
            return OM_EINVAL;
        }
    }
    return 0;
}

static int start_workers(om_daemon *d, char *err, size_t errlen)
{
    for (int si = 0; si < d->nstages; si++) {
        const bstage *s = &d->stages[si];
        if (s->conf.mode != OM_MODE_THREAD)
            continue;
        for (int k = 0; k < s->conf.workers; k++) {
            if (d->nembedded == OM_MAX_EMBEDDED) {
                snprintf(err, errlen, "more than %d embedded workers", OM_MAX_EMBEDDED);
                return OM_ERANGE;
            }
            int rc = om_worker_start(&d->embedded[d->nembedded], d->ctx, OM_BACKEND_INPROC, s->st,
                                     &d->cfg, err, errlen);
            if (rc)
                return rc;
            d->nembedded++;
        }
    }
    return 0;
}

int om_daemon_open(om_daemon **out, const om_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    om_daemon *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return OM_ENOMEM;
    }
    d->cfg = *cfg;
    d->stop_pipe[0] = d->stop_pipe[1] = -1;
    d->t0_us = om_now_us();
    om_msgbuf_init(&d->buf);
    om_daemon_limits(cfg, &d->lim_front, 0);
    om_daemon_limits(cfg, &d->lim_back, 4);
    d->slot_broker[0] = om_metrics_slot(&d->metrics, "broker", "health");
    d->slot_broker[1] = om_metrics_slot(&d->metrics, "broker", "status");
    d->slot_broker[2] = om_metrics_slot(&d->metrics, "broker", "metrics");

    char secret[OM_Z85_KEY + 1], public[OM_Z85_KEY + 1];
    int rc = setup_stages(d, err, errlen);
    if (!rc && pipe2(d->stop_pipe, O_NONBLOCK | O_CLOEXEC)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        rc = OM_EIO;
    }
    if (!rc && !(d->ctx = zmq_ctx_new())) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        rc = OM_EIO;
    }
    if (!rc && cfg->curve) {
        if (!cfg->secret_key[0] || !cfg->allow[0]) {
            snprintf(err, errlen, "security.curve = on needs security.secret_key and security.allow");
            rc = OM_EINVAL;
        }
        if (!rc)
            rc = om_curve_load_secret(cfg->secret_key, secret, public, err, errlen);
        if (!rc)
            rc = om_zap_start(&d->zap, d->ctx, cfg->allow, err, errlen);
        if (!rc)
            om_log(OM_LOG_INFO, "daemon", "CURVE server public key %s", public);
    }
    const char *key = cfg->curve ? secret : NULL;
    int64_t maxmsg = (int64_t)d->lim_front.max_total_bytes;
    if (!rc) {
        d->front = open_socket(d, ZMQ_ROUTER, cfg->hwm_front, maxmsg);
        d->backend = open_socket(d, ZMQ_ROUTER, cfg->hwm_backend, (int64_t)d->lim_back.max_total_bytes);
        d->pub = open_socket(d, ZMQ_XPUB, cfg->hwm_pub, 0);
        d->sensors = open_socket(d, ZMQ_SUB, cfg->hwm_sensors, maxmsg);
        if (!d->front || !d->backend || !d->pub || !d->sensors) {
            snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
            rc = OM_EIO;
        }
    }
    if (!rc)
        rc = bind_ep(d, d->front, cfg->front, key, d->ep_front, err, errlen);
    if (!rc)
        rc = bind_ep(d, d->pub, cfg->pub, key, d->ep_pub, err, errlen);
    if (!rc)
        rc = bind_ep(d, d->sensors, cfg->sensors, key, d->ep_sensors, err, errlen);
    if (!rc)
        rc = bind_ep(d, d->backend, OM_BACKEND_INPROC, NULL, d->ep_backend, err, errlen);
    if (!rc && cfg->backend[0] && strcmp(cfg->backend, "off"))
        rc = bind_ep(d, d->backend, cfg->backend, key, d->ep_backend, err, errlen);
    if (!rc)
        rc = start_workers(d, err, errlen);
    if (!rc)
        rc = om_supervisor_init(&d->sup, &d->cfg, d->ep_backend, err, errlen);
    if (!rc && d->sup.n && !is_tcp(d->ep_backend)) {
        snprintf(err, errlen, "stage processes need a tcp daemon.backend endpoint");
        rc = OM_EINVAL;
    }
    if (!rc && d->sup.n && cfg->curve && !cfg->worker_key[0]) {
        snprintf(err, errlen, "stage processes of a CURVE daemon need security.worker_key");
        rc = OM_EINVAL;
    }
    /* The overrides belong to the caller's config; the supervisor has its copies. */
    d->cfg.noverrides = 0;
    if (!rc && d->cfg.ready_file[0])
        rc = write_ready_file(d, err, errlen);
    if (rc) {
        om_daemon_close(d);
        return rc;
    }
    om_log(OM_LOG_INFO, "daemon", "serving on %s (pub %s, sensors %s, backend %s)", d->ep_front,
           d->ep_pub, d->ep_sensors, d->ep_backend);
    *out = d;
    return 0;
}

const char *om_daemon_endpoint(const om_daemon *d, const char *which)
{
    if (!strcmp(which, "front"))
        return d->ep_front;
    if (!strcmp(which, "pub"))
        return d->ep_pub;
    if (!strcmp(which, "sensors"))
        return d->ep_sensors;
    if (!strcmp(which, "backend"))
        return d->ep_backend;
    return NULL;
}

void om_daemon_stop(om_daemon *d)
{
    ssize_t n = write(d->stop_pipe[1], "x", 1);
    (void)n;
}

void om_daemon_close(om_daemon *d)
{
    if (!d)
        return;
    om_broker_fail_all(d, OM_ESHUTDOWN, "omnid shut down before this request finished");
    if (d->sup.argv_base)
        om_supervisor_stop(&d->sup, d->cfg.shutdown_ms < 2000 ? d->cfg.shutdown_ms : 2000);
    void *socks[4] = { d->front, d->backend, d->pub, d->sensors };
    for (int i = 0; i < 4; i++)
        if (socks[i])
            zmq_close(socks[i]);
    if (d->ctx) {
        /* Wakes every thread blocked in ZeroMQ with ETERM: workers and ZAP leave. */
        zmq_ctx_shutdown(d->ctx);
        for (int i = 0; i < d->nembedded; i++)
            om_worker_join(d->embedded[i]);
        om_zap_join(&d->zap);
        zmq_ctx_term(d->ctx);
    }
    for (int i = 0; i < 2; i++)
        if (d->stop_pipe[i] >= 0)
            close(d->stop_pipe[i]);
    om_msgbuf_free(&d->buf);
    free(d);
}
