/* ops.c: what the broker answers itself (health, status, metrics) and the
 * published streams: events on the XPUB, the sensor bus forwarded to it. */
#include "om_daemon_impl.h"

#include <errno.h>
#include <string.h>

static int pack_status(om_daemon *d, msgpack_packer *pk, int64_t now)
{
    int rc = 0, inflight = 0, queued = 0;
    for (int i = 0; i < d->nworkers; i++)
        for (int k = 0; k < OM_MAX_PREFETCH; k++)
            inflight += d->workers[i].slot[k].req != NULL;
    for (int i = 0; i < d->nstages; i++)
        queued += d->stages[i].qlen;
    rc |= om_pack_kv_u64(pk, "uptime_ms", (uint64_t)(now - d->t0_us) / 1000);
    rc |= om_pack_kv_bool(pk, "draining", d->draining);
    rc |= om_pack_kv_u64(pk, "requests", d->metrics.requests);
    rc |= om_pack_kv_u64(pk, "inflight", (uint64_t)inflight);
    rc |= om_pack_kv_u64(pk, "queued", (uint64_t)queued);
    rc |= om_pack_str(pk, "endpoints");
    rc |= msgpack_pack_map(pk, 4);
    rc |= om_pack_kv_str(pk, "front", d->ep_front);
    rc |= om_pack_kv_str(pk, "pub", d->ep_pub);
    rc |= om_pack_kv_str(pk, "sensors", d->ep_sensors);
    rc |= om_pack_kv_str(pk, "backend", d->ep_backend);
    rc |= om_pack_str(pk, "drops");
    rc |= msgpack_pack_map(pk, 3);
    rc |= om_pack_kv_u64(pk, "client", d->metrics.drops_client);
    rc |= om_pack_kv_u64(pk, "late", d->metrics.drops_late);
    rc |= om_pack_kv_u64(pk, "pub", d->metrics.drops_pub);

    static const char *const modes[] = { "thread", "process", "remote", "off" };
    rc |= om_pack_str(pk, "stages");
    rc |= msgpack_pack_array(pk, (size_t)d->nstages);
    for (int si = 0; si < d->nstages; si++) {
        const bstage *s = &d->stages[si];
        int workers = 0, idle = 0, busy = 0, restarts = 0;
        for (int i = 0; i < d->nworkers; i++) {
            if (d->workers[i].stage != si)
                continue;
            workers++;
            idle += !d->workers[i].outstanding;
            for (int k = 0; k < OM_MAX_PREFETCH; k++)
                busy += d->workers[i].slot[k].req != NULL;
        }
        for (int i = 0; i < d->sup.n; i++)
            if (!strcmp(d->sup.children[i].stage, s->st->name))
                restarts += d->sup.children[i].restarts;
        rc |= msgpack_pack_map(pk, 10);
        rc |= om_pack_kv_str(pk, "name", s->st->name);
        rc |= om_pack_kv_str(pk, "mode", modes[s->conf.mode]);
        rc |= om_pack_kv_u64(pk, "workers", (uint64_t)workers);
        rc |= om_pack_kv_u64(pk, "idle", (uint64_t)idle);
        rc |= om_pack_kv_u64(pk, "inflight", (uint64_t)busy);
        rc |= om_pack_kv_u64(pk, "queued", (uint64_t)s->qlen);
        rc |= om_pack_kv_u64(pk, "queue_max", (uint64_t)s->conf.queue);
        rc |= om_pack_kv_u64(pk, "prefetch", (uint64_t)s->conf.prefetch);
        rc |= om_pack_kv_u64(pk, "restarts", (uint64_t)restarts);
        rc |= om_pack_str(pk, "ops");
        int nops = 0;
        while (s->st->ops[nops])
            nops++;
        rc |= msgpack_pack_array(pk, (size_t)nops);
        for (int k = 0; k < nops; k++)
            rc |= om_pack_str(pk, s->st->ops[k]);
    }
    rc |= om_pack_str(pk, "workers");
    rc |= msgpack_pack_array(pk, (size_t)d->nworkers);
    for (int i = 0; i < d->nworkers; i++) {
        const bworker *w = &d->workers[i];
        rc |= msgpack_pack_map(pk, 4);
        rc |= om_pack_kv_str(pk, "stage", d->stages[w->stage].st->name);
        rc |= om_pack_kv_i64(pk, "pid", w->pid);
        rc |= om_pack_kv_bool(pk, "busy", om_worker_busy(w));
        rc |= om_pack_kv_u64(pk, "age_ms", (uint64_t)(now - w->joined_us) / 1000);
    }
    return rc;
}

int om_ops_answer(om_daemon *d, zmq_msg_t *env, const om_req *req, int64_t t0_us)
{
    static const char *const names[] = { "health", "status", "metrics" };
    int k = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(req->op_name, names[i]))
            k = i;
    if (k < 0)
        return OM_ENOENT;
    int64_t now = om_now_us();
    msgpack_packer *pk = &d->buf.pk;
    int rc;
    if (k == 0) {
        rc = om_reply_result_begin(&d->buf, req->id, 0, 3) | om_pack_kv_str(pk, "status", "ok") |
             om_pack_kv_str(pk, "version", "0.1.0") |
             om_pack_kv_u64(pk, "uptime_ms", (uint64_t)(now - d->t0_us) / 1000);
    } else if (k == 1) {
        rc = om_reply_result_begin(&d->buf, req->id, 0, 9) | pack_status(d, pk, now);
    } else {
        rc = om_reply_result_begin(&d->buf, req->id, 0, 1) | om_pack_str(pk, "metrics") |
             om_metrics_pack(&d->metrics, pk);
    }
    if (rc) {
        om_broker_reply_error(d, env, req->id, 0, OM_ENOMEM, "out of memory");
    } else if (om_broker_reply(d, env, 0) == 0) {
        om_kv_f64 t = { "total_ms", (double)(om_now_us() - t0_us) / 1000.0 };
        if (om_reply_done(&d->buf, req->id, 1, &t, 1, NULL, 0) == 0)
            om_broker_reply(d, env, 0);
    }
    om_metrics_observe(&d->metrics, d->slot_broker[k], om_now_us() - t0_us, rc ? OM_ENOMEM : 0);
    return 0;
}

/* Topic "omnid.event", then {"event","stage","pid"}. XPUB_NODROP makes a full
 * subscriber queue visible as EAGAIN: the message is dropped and counted. */
void om_ops_publish_event(om_daemon *d, const char *event, const char *stage, int pid)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, 3) | om_pack_kv_str(&pk, "event", event) |
             om_pack_kv_str(&pk, "stage", stage) | om_pack_kv_i64(&pk, "pid", pid);
    if (rc == 0 && (zmq_send(d->pub, "omnid.event", 11, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                    zmq_send(d->pub, sb.data, sb.size, ZMQ_DONTWAIT) < 0))
        d->metrics.drops_pub++;
    msgpack_sbuffer_destroy(&sb);
}

/* The first byte of a validated msgpack object: fixmap, map16 or map32. */
static int is_map(const uint8_t *p, size_t n)
{
    return n && ((p[0] & 0xf0) == 0x80 || p[0] == 0xde || p[0] == 0xdf);
}

/* Sensor messages ([topic, map, payloads...]) are checked (topic
 * "sensor/<robot>/<kind>", a valid msgpack map) and republished as they are: the
 * XPUB is the one place stages and clients subscribe to. Latest data wins: a full
 * queue drops, never blocks. A publisher has no reply channel, so a rejected
 * message is counted and logged (the first as a warning, the rest as debug). */
void om_ops_forward_sensors(om_daemon *d)
{
    om_msg m;
    om_msg_init(&m);
    for (int k = 0; k < 256; k++) {
        char err[256], robot[OM_PROTO_MAX_NAME], kind[OM_PROTO_MAX_NAME];
        int rc = om_msg_recv(d->sensors, &m, 0, &d->lim_front, 0, err, sizeof err);
        if (rc == OM_ETIMEDOUT || rc == OM_EIO)
            break;
        om_frame topic = om_msg_frame(&m, 0), body = om_msg_frame(&m, 1);
        if (!rc && m.n < 2) {
            snprintf(err, sizeof err, "no map frame after the topic");
            rc = OM_EFORMAT;
        }
        if (!rc)
            rc = om_topic_parse_sensor(topic.data, topic.size, robot, kind, err, sizeof err);
        if (!rc)
            rc = om_msgpack_validate(body.data, body.size, &d->lim_front, err, sizeof err);
        if (!rc && !is_map(body.data, body.size)) {
            snprintf(err, sizeof err, "frame 1 is not a map");
            rc = OM_EFORMAT;
        }
        if (rc) {
            om_log(d->metrics.sensor_rejected++ ? OM_LOG_DEBUG : OM_LOG_WARN, "broker",
                   "sensor message rejected: %s", err);
            continue;
        }
        int ok = 1;
        for (size_t i = 0; ok && i < m.n; i++)
            ok = zmq_msg_send(&m.frames[i], d->pub, ZMQ_DONTWAIT | (i + 1 < m.n ? ZMQ_SNDMORE : 0)) >= 0;
        if (!ok)
            d->metrics.drops_pub++;
    }
    om_msg_free(&m);
}

void om_ops_drain_subscriptions(om_daemon *d)
{
    for (int k = 0; k < 256; k++) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        int rc = zmq_msg_recv(&f, d->pub, ZMQ_DONTWAIT);
        if (rc > 0)
            om_log(OM_LOG_DEBUG, "broker", "%s '%.*s'",
                   *(uint8_t *)zmq_msg_data(&f) ? "subscribe" : "unsubscribe",
                   (int)zmq_msg_size(&f) - 1, (char *)zmq_msg_data(&f) + 1);
        zmq_msg_close(&f);
        if (rc < 0)
            return;
    }
}
