/* om_daemon_impl.h: what the daemon's files share and nobody else uses: the
 * broker <-> worker frames, metrics, the ZAP handler, the stage-process
 * supervisor, and time helpers. */
#ifndef OM_DAEMON_IMPL_H
#define OM_DAEMON_IMPL_H

#include "om_daemon.h"
#include "om_err.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* Broker <-> worker frames (after the ROUTER's identity frame on the broker side).
 * A worker has two connections: work (READY, requests, replies) and pulse
 * (heartbeats only, so they flow while the work thread runs a long request); the
 * token, random per worker, pairs them.
 *   work:  worker -> broker  READY   "R" stage-name pid token(8)
 *                            REPLY   "P" tag(8) flags(1) frame0 payloads...  flags: OM_W_FINAL|OM_W_ERROR
 *          broker -> worker  REQUEST "Q" tag(8) budget_ms(4) frame0 payloads...
 *   pulse: worker -> broker  HB      "H" token(8)      every heartbeat_ms
 *          broker -> worker  HB      "H"               the answer, if it knows the token
 *          broker -> worker  CANCEL  "C" tag(8)        stop the request with this tag
 * tag is the broker's number for one attempt of one request, opaque to the worker;
 * a reply whose tag the broker no longer waits for (deadline passed, cancelled,
 * retried elsewhere) is dropped. budget_ms is little-endian (workers may be other
 * hosts). CANCEL travels on the pulse connection because the work thread is inside
 * the stage's handler while the request runs; the pulse thread sets a flag that
 * om_sink_cancelled reads. */
#define OM_W_READY   "R"
#define OM_W_HB      "H"
#define OM_W_CANCEL  "C"
#define OM_W_REPLY   "P"
#define OM_W_REQUEST "Q"
#define OM_W_FINAL   1
#define OM_W_ERROR   2          /* with FINAL: the final reply is an error */

#define OM_BACKEND_INPROC "inproc://omnid-backend"

static inline int64_t om_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Limits of broker <-> worker messages: the client's limits plus our own frames. */
void om_daemon_limits(const om_config *cfg, om_proto_limits *lim, int extra_frames);

/* ---- metrics.c ---- */
#define OM_HIST_BUCKETS     20
#define OM_HIST_BASE_US     16          /* bucket 0: <= 16 us; 19: > 4.2 s */
#define OM_MAX_METRIC_SLOTS 64

typedef struct om_metric {
    char     stage[32], op[OM_PROTO_MAX_OP + 1];
    uint64_t count, errors, busy, timeouts, sum_us;
    uint64_t hist[OM_HIST_BUCKETS];
} om_metric;

typedef struct om_metrics {
    uint64_t  requests, malformed, drops_client, drops_late, drops_pub, retries, sensor_rejected;
    uint64_t  cancelled;              /* ended by a `cancel` request */
    uint64_t  cancelled_disconnect;   /* ended because their client left */
    om_metric slots[OM_MAX_METRIC_SLOTS];
    int       nslots;
} om_metrics;

int  om_metrics_slot(om_metrics *m, const char *stage, const char *op);
void om_metrics_observe(om_metrics *m, int slot, int64_t us, int code);
int  om_metrics_pack(const om_metrics *m, msgpack_packer *pk);

/* ---- curve.c ---- */
#define OM_Z85_KEY 40

typedef struct om_zap {
    void     *sock;
    pthread_t thread;
    int       running;
    uint8_t  *allow;       /* nallow binary 32-byte keys */
    int       nallow;
} om_zap;

int  om_zap_start(om_zap *z, void *ctx, const char *allow_path, char *err, size_t errlen);
/* After zmq_ctx_shutdown. */
void om_zap_join(om_zap *z);
int  om_curve_load_secret(const char *path, char secret[OM_Z85_KEY + 1],
                          char public[OM_Z85_KEY + 1], char *err, size_t errlen);
int  om_curve_server(void *sock, const char secret[OM_Z85_KEY + 1]);

/* ---- supervisor.c: stage processes (mode = process) ---- */
#define OM_MAX_CHILDREN 64

typedef struct om_child {
    char    stage[32];
    pid_t   pid;            /* 0: not running */
    int64_t started_us, restart_at_us;
    int     backoff_ms;
    int     restarts;
} om_child;

typedef struct om_supervisor {
    om_child children[OM_MAX_CHILDREN];
    int      n;
    pid_t    exited[OM_MAX_CHILDREN];   /* reaped by the last tick: their workers are gone */
    int      nexited;
    char   **argv_base;     /* argv for the stage processes, stage name filled per child */
    int      argc_base;
} om_supervisor;

int  om_supervisor_init(om_supervisor *s, const om_config *cfg, const char *backend,
                        char *err, size_t errlen);
/* Reaps exited children and starts the ones due; returns the next time (us) it
 * needs to run, or INT64_MAX. */
int64_t om_supervisor_tick(om_supervisor *s, int64_t now_us, int max_backoff_ms);
/* SIGTERM, wait up to bound_ms, then SIGKILL; frees. */
void om_supervisor_stop(om_supervisor *s, int bound_ms);

/* ---- the broker's state (daemon.c opens/closes, broker.c runs, ops.c answers) ---- */

typedef struct breq {               /* one client request the broker owns */
    struct breq *next;              /* stage queue link */
    om_msg       msg;               /* client envelope + body frames, kept for a retry */
    uint64_t     id, tag;           /* client's id; tag of the current attempt */
    int          stage, slot;       /* index in stages[], metrics slot */
    int64_t      t0_us, deadline_us;
    int          attempts;
    uint64_t     nsent;             /* replies forwarded, the seq of the next one */
} breq;

/* The client's routing identity of r (frame 0 of its envelope). */
static inline int breq_from(const breq *r, const void *ident, size_t len)
{
    zmq_msg_t *env = (zmq_msg_t *)&r->msg.frames[0];
    return zmq_msg_size(env) == len && !memcmp(zmq_msg_data(env), ident, len);
}

/* One request handed to a worker: tag stays set until the worker's final reply,
 * req is NULL once the broker ended the request itself (deadline, cancel): a late
 * reply is then due and dropped. cancelled: the worker is to be told to stop it
 * (again once its pulse connection is known, if it was not yet). */
typedef struct bslot {
    uint64_t tag;
    breq    *req;
    int      cancelled;
} bslot;

typedef struct bworker {
    uint8_t  ident[256];            /* work connection */
    size_t   ident_len;
    uint8_t  pulse[256];            /* pulse connection, once its first HB came */
    size_t   pulse_len;
    uint8_t  token[8];
    int      stage, pid;
    int64_t  last_seen_us, joined_us, idle_since_us;
    int      outstanding;           /* slots with a tag */
    bslot    slot[OM_MAX_PREFETCH];
} bworker;

typedef struct bstage {
    const om_stage *st;
    om_stage_conf   conf;
    breq           *qhead, *qtail;
    int             qlen;
} bstage;

#define OM_MAX_WORKERS 256
#define OM_MAX_EMBEDDED 128

/* True while w holds a request the broker still waits for. */
int om_worker_busy(const bworker *w);

struct om_daemon {
    om_config        cfg;
    void            *ctx;
    void            *front, *backend, *pub, *sensors;
    char             ep_front[OM_EP_LEN], ep_pub[OM_EP_LEN], ep_sensors[OM_EP_LEN],
                     ep_backend[OM_EP_LEN];
    int              stop_pipe[2];
    om_zap           zap;
    om_supervisor    sup;
    om_worker       *embedded[OM_MAX_EMBEDDED];
    int              nembedded;
    bstage           stages[OM_MAX_STAGES];
    int              nstages;
    bworker          workers[OM_MAX_WORKERS];
    int              nworkers;
    om_metrics       metrics;
    int              slot_broker[3];          /* health, status, metrics */
    om_proto_limits  lim_front, lim_back;
    uint64_t         next_tag;
    int64_t          t0_us, next_timer_us, next_sup_us;
    om_msgbuf        buf;
    int              draining;
};

/* broker.c */
void om_broker_reply_error(om_daemon *d, zmq_msg_t *env, uint64_t id, uint64_t seq,
                           int code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Sends frame 0 in d->buf to the client; 0 or OM_ECANCELED (client gone/slow: dropped). */
int  om_broker_reply(om_daemon *d, zmq_msg_t *env, int more);
void om_broker_fail_all(om_daemon *d, int code, const char *why);

/* ops.c: ops the broker answers itself, and the published streams */
int  om_ops_answer(om_daemon *d, zmq_msg_t *env, const om_req *req, int64_t t0_us);
void om_ops_publish_event(om_daemon *d, const char *event, const char *stage, int pid);
void om_ops_forward_sensors(om_daemon *d);
void om_ops_drain_subscriptions(om_daemon *d);

#endif
