/* metrics.c: per stage/op counters and latency histograms, owned by the broker
 * thread (no locks), and their msgpack form for the `metrics` op. */
#include "om_daemon_impl.h"

#include <string.h>

static uint64_t bucket_bound_us(int b) { return (uint64_t)OM_HIST_BASE_US << b; }

int om_metrics_slot(om_metrics *m, const char *stage, const char *op)
{
    for (int i = 0; i < m->nslots; i++)
        if (!strcmp(m->slots[i].op, op) && !strcmp(m->slots[i].stage, stage))
            return i;
    if (m->nslots == OM_MAX_METRIC_SLOTS)
        return -1;
    om_metric *s = &m->slots[m->nslots];
    memset(s, 0, sizeof *s);
    snprintf(s->stage, sizeof s->stage, "%s", stage);
    snprintf(s->op, sizeof s->op, "%s", op);
    return m->nslots++;
}

void om_metrics_observe(om_metrics *m, int slot, int64_t us, int code)
{
    if (slot < 0 || slot >= m->nslots)
        return;
    om_metric *s = &m->slots[slot];
    s->count++;
    if (code == OM_EBUSY)
        s->busy++;
    else if (code == OM_ETIMEDOUT)
        s->timeouts++;
    else if (code)
        s->errors++;
    if (us < 0)
        us = 0;
    int b = 0;
    while (b < OM_HIST_BUCKETS - 1 && (uint64_t)us > bucket_bound_us(b))
        b++;
    s->hist[b]++;
    s->sum_us += (uint64_t)us;
}

/* Upper bound of the bucket holding quantile q: histograms give no finer answer. */
static uint64_t quantile_us(const om_metric *s, double q)
{
    if (!s->count)
        return 0;
    uint64_t want = (uint64_t)(q * (double)s->count + 0.999999), seen = 0;
    for (int b = 0; b < OM_HIST_BUCKETS; b++) {
        seen += s->hist[b];
        if (seen >= want)
            return bucket_bound_us(b);
    }
    return bucket_bound_us(OM_HIST_BUCKETS - 1);
}

int om_metrics_pack(const om_metrics *m, msgpack_packer *pk)
{
    int rc = 0;
    rc |= msgpack_pack_map(pk, 2);
    rc |= om_pack_str(pk, "counters");
    rc |= msgpack_pack_map(pk, 9);
    rc |= om_pack_kv_u64(pk, "requests", m->requests);
    rc |= om_pack_kv_u64(pk, "sensor_rejected", m->sensor_rejected);
    rc |= om_pack_kv_u64(pk, "malformed", m->malformed);
    rc |= om_pack_kv_u64(pk, "drops_client", m->drops_client);
    rc |= om_pack_kv_u64(pk, "drops_late", m->drops_late);
    rc |= om_pack_kv_u64(pk, "drops_pub", m->drops_pub);
    rc |= om_pack_kv_u64(pk, "retries", m->retries);
    rc |= om_pack_kv_u64(pk, "cancelled", m->cancelled);
    rc |= om_pack_kv_u64(pk, "cancelled_disconnect", m->cancelled_disconnect);
    rc |= om_pack_str(pk, "ops");
    rc |= msgpack_pack_array(pk, (size_t)m->nslots);
    for (int i = 0; i < m->nslots; i++) {
        const om_metric *s = &m->slots[i];
        rc |= msgpack_pack_map(pk, 10);
        rc |= om_pack_kv_str(pk, "stage", s->stage);
        rc |= om_pack_kv_str(pk, "op", s->op);
        rc |= om_pack_kv_u64(pk, "count", s->count);
        rc |= om_pack_kv_u64(pk, "errors", s->errors);
        rc |= om_pack_kv_u64(pk, "busy", s->busy);
        rc |= om_pack_kv_u64(pk, "timeouts", s->timeouts);
        rc |= om_pack_kv_u64(pk, "mean_us", s->count ? s->sum_us / s->count : 0);
        rc |= om_pack_kv_u64(pk, "p50_us", quantile_us(s, 0.50));
        rc |= om_pack_kv_u64(pk, "p99_us", quantile_us(s, 0.99));
        /* Bucket b counts latencies in (base<<(b-1), base<<b] us; the last one is open. */
        rc |= om_pack_str(pk, "hist");
        rc |= msgpack_pack_array(pk, OM_HIST_BUCKETS);
        for (int b = 0; b < OM_HIST_BUCKETS; b++)
            rc |= msgpack_pack_uint64(pk, s->hist[b]);
    }
    return rc ? OM_ENOMEM : 0;
}
