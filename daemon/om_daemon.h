/* om_daemon.h: the omnid daemon. Owns the broker (front door ROUTER, XPUB streams,
 * SUB sensor bus, backend ROUTER for stage workers), stage workers and their
 * registry, supervision of stage processes, configuration (libinih + --set),
 * CURVE/ZAP security, metrics and logging. Knows nothing of model math: a stage
 * is a small struct (om_stage) that wraps a library call.
 *
 * Threads: the broker runs on the thread that calls om_daemon_run; each embedded
 * worker is a work thread plus a pulse thread; the ZAP handler has its own
 * thread. Only the broker thread touches broker state (no locks). */
#ifndef OM_DAEMON_H
#define OM_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "om_proto.h"

/* ---- logging (log.c) ---- */
enum { OM_LOG_ERROR, OM_LOG_WARN, OM_LOG_INFO, OM_LOG_DEBUG };
void om_log_set_level(int level);
int  om_log_get_level(void);
void om_log(int level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- configuration (config.c) ---- */
#define OM_MAX_STAGES    16
#define OM_MAX_OVERRIDES 64
#define OM_EP_LEN        256
#define OM_PATH_LEN      512

enum om_stage_mode { OM_MODE_THREAD, OM_MODE_PROCESS, OM_MODE_REMOTE, OM_MODE_OFF };

#define OM_MAX_PREFETCH 64

typedef struct om_stage_conf {
    char name[32];
    int  mode;           /* enum om_stage_mode */
    int  workers;        /* threads (thread mode) or processes (process mode) */
    int  queue;          /* requests waiting for a worker; more is EBUSY */
    int  prefetch;       /* requests handed to one worker at once (1: only when idle) */
} om_stage_conf;

typedef struct om_config {
    /* [daemon] endpoints; "tcp://127.0.0.1:*" binds a free port. */
    char front[OM_EP_LEN], pub[OM_EP_LEN], sensors[OM_EP_LEN], backend[OM_EP_LEN];
    int  deadline_ms;        /* a request without one gets this */
    int  deadline_max_ms;    /* cap on what clients ask for */
    int  shutdown_ms;        /* bound on finishing in-flight work at SIGTERM */
    int  linger_ms;          /* ZMQ_LINGER of every socket */
    int  heartbeat_ms;       /* both directions */
    int  heartbeat_misses;   /* a peer silent this many intervals is gone */
    int  restart_max_ms;     /* cap of the restart backoff of stage processes */
    int  test_ops;           /* registers the `test` stage (sleep, echo) */
    char ready_file[OM_PATH_LEN]; /* written with the bound endpoints once serving */

    /* [llm] the llm stage's model; without one the stage answers ENOENT */
    char llm_model[OM_PATH_LEN];
    char llm_chat_format[32];    /* a name for om_chat_from_name; empty: from the model */
    int  llm_ctx;                /* cap on the KV cache length */
    int  llm_max_tokens;         /* cap on a request's max_tokens */

    /* [pack] a model pack directory (pack.c); llm.model, when set, overrides its LLM */
    char pack_dir[OM_PATH_LEN];

    /* [media] what clients may ask ingest to open */
    int  media_local;            /* local paths, devices and lavfi: only for trusted clients */
    char media_protocols[128];   /* FFmpeg protocol allow-list for URLs */

    /* [limits] on what comes from outside */
    int     max_frames;         /* frames of one request, header included */
    size_t  max_header_bytes;   /* frame 0 */
    size_t  max_total_bytes;    /* all frames of one message (also ZMQ_MAXMSGSIZE) */

    /* [hwm] high-water marks in messages, sized from what each socket carries */
    int hwm_front, hwm_backend, hwm_pub, hwm_sensors;

    /* [security] */
    int  curve;                          /* on tcp endpoints */
    char secret_key[OM_PATH_LEN];        /* z85 server secret key file */
    char allow[OM_PATH_LEN];             /* file of z85 client (and worker) public keys */
    char worker_key[OM_PATH_LEN];        /* z85 secret key of stage workers on tcp */
    char server_key[OM_PATH_LEN];        /* omnid's z85 public key, for remote workers
                                            (else derived from secret_key) */

    om_stage_conf stages[OM_MAX_STAGES];
    int nstages;

    /* What the command line set, replayed to stage processes the daemon starts. */
    char config_path[OM_PATH_LEN];
    char *overrides[OM_MAX_OVERRIDES];
    int  noverrides;
} om_config;

/* Defaults for every key, and one om_stage_conf per registered stage. */
void om_config_init(om_config *cfg);
void om_config_free(om_config *cfg);
/* Reads an ini file; an unknown section or key, or a bad value, is an error naming
 * the file, line and key. */
int  om_config_load(om_config *cfg, const char *path, char *err, size_t errlen);
/* "section.key=value" ("stage.ingest.workers=2"); remembered for stage processes. */
int  om_config_set(om_config *cfg, const char *assignment, char *err, size_t errlen);
int  om_config_set_kv(om_config *cfg, const char *section, const char *key,
                      const char *value, char *err, size_t errlen);
om_stage_conf *om_config_stage(om_config *cfg, const char *name);

/* ---- model packs (pack.c) ---- */

/* A model pack: a directory with a manifest pack.ini (libinih) naming the files that
 * work together; paths in it are relative to the directory. Sections and keys:
 *   [pack]  name, random (yes: random weights, answers are gibberish)
 *   [llm]   model, chat_format
 *   [video] vision (ViT + image Q-Former file), model (video Q-Former file),
 *           projection (file with bind.llm_proj: video tokens -> LLM rows), head (file
 *           with bind.head: video tokens -> joint space), frames (1..64, default 8),
 *           placeholder (where the rows go in the prompt, default "<video>") */
#define OM_PACK_MAX_FRAMES 64

typedef struct om_pack {
    char dir[OM_PATH_LEN];
    char name[64];
    int  random;
    char llm_model[OM_PATH_LEN];
    char chat_format[32];
    char video_vision[OM_PATH_LEN], video_model[OM_PATH_LEN];
    char video_projection[OM_PATH_LEN], video_head[OM_PATH_LEN];
    int  video_frames;
    char placeholder[32];
} om_pack;

/* Reads DIR/pack.ini; an unknown section or key, a bad value, or a named file that
 * does not exist is an error naming the file, line and key. */
int  om_pack_load(om_pack *p, const char *dir, char *err, size_t errlen);
/* The pack has a video encoder (vision + model). */
int  om_pack_has_video(const om_pack *p);

/* ---- media access policy (media_policy.c) ---- */

/* FFmpeg's protocol allow-list for client URLs: media.protocols, without "file" when
 * media.local is off. */
void om_media_policy_protocols(const om_config *cfg, char *out, size_t outlen);
/* Whether a client may make the daemon open url: local paths, file: URLs, devices and
 * lavfi graphs (whose movie filter reads files) only when media.local is on. */
int  om_media_policy_url_allowed(int local, const char *url);

/* ---- stages (stages.c) ---- */

/* The reply channel of one request, given to om_stage.handle. */
typedef struct om_sink om_sink;

typedef struct om_stage {
    const char        *name;
    const char *const *ops;      /* op names served, NULL-terminated */
    int                test_only;/* registered only with daemon.test_ops (--enable-test-ops) */
    /* Per worker: each worker has its own state, so handle needs no locks. */
    int  (*init)(const om_config *cfg, void **state);
    /* Streams non-final replies through sink (token, progress, result, ...) and
     * returns 0, after which the worker sends `done`, or an OM_E* code, after
     * which it sends `error` with the message given to om_sink_fail. A handler
     * that runs long polls om_sink_cancelled. */
    int  (*handle)(void *state, const om_req *req, om_sink *sink);
    void (*fini)(void *state);
} om_stage;

int             om_stage_count(void);
const om_stage *om_stage_at(int i);
const om_stage *om_stage_find(const char *name);
/* The stage serving op, NULL if none (test stages only when test_ops). */
const om_stage *om_stage_for_op(const char *op, int test_ops);
/* om_req_decode, plus the test ops (sleep, echo) that the wire protocol does not
 * list, when test_ops. */
int om_stage_req_decode(om_req *r, const om_frame *frames, size_t n,
                        const om_proto_limits *lim, int test_ops, char *err, size_t errlen);

/* Frame 0 of the next reply is built into om_sink_buf with the om_reply_* builders,
 * using the request id and om_sink_seq; om_sink_send sends it with n payload frames,
 * taking ownership of them (zero-copy). */
om_msgbuf  *om_sink_buf(om_sink *s);
uint64_t    om_sink_seq(const om_sink *s);
int         om_sink_send(om_sink *s, zmq_msg_t *payloads, size_t n);
/* Frame i of the request (0 is frame 0), for zmq_msg_copy without copying bytes. */
zmq_msg_t  *om_sink_request_frame(om_sink *s, size_t i);
/* Records the error message sent when handle returns code; returns code. */
int         om_sink_fail(om_sink *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* True once the request's deadline passed or the worker is stopping. */
int         om_sink_cancelled(const om_sink *s);
/* Timings (ms) and usage counts for the final `done` (copied; at most 8 of each);
 * the worker adds total_ms. */
int         om_sink_set_done(om_sink *s, const om_kv_f64 *timings, size_t n_timings,
                             const om_kv_u64 *usage, size_t n_usage);

/* ---- workers (worker.c) ---- */

/* One worker: a work thread (DEALER to the broker backend: READY, requests in,
 * stage->handle, replies out) and a pulse thread (a second DEALER carrying only
 * heartbeats, both ways), so heartbeats flow while a request runs. Stopped by
 * zmq_ctx_shutdown(ctx). */
typedef struct om_worker om_worker;
int  om_worker_start(om_worker **out, void *ctx, const char *endpoint, const om_stage *stage,
                     const om_config *cfg, char *err, size_t errlen);
/* After zmq_ctx_shutdown: joins both threads and frees the worker. */
void om_worker_join(om_worker *w);

/* ---- the daemon (broker.c) ---- */

typedef struct om_daemon om_daemon;

/* Binds every endpoint, starts the ZAP handler (CURVE), embedded workers and stage
 * processes. The config is copied. Stage processes (mode = process) are this
 * executable run with --stage: only omnid itself should use that mode. */
int  om_daemon_open(om_daemon **out, const om_config *cfg, char *err, size_t errlen);
/* The bound endpoint ("front", "pub", "sensors", "backend"), port resolved. */
const char *om_daemon_endpoint(const om_daemon *d, const char *which);
/* Serves until om_daemon_stop, then drains within shutdown_ms. Returns 0. */
int  om_daemon_run(om_daemon *d);
/* Async-signal-safe and thread-safe. */
void om_daemon_stop(om_daemon *d);
void om_daemon_close(om_daemon *d);

/* ---- security (curve.c) ---- */
int om_curve_gen_keys(const char *dir, char *err, size_t errlen);

#endif
