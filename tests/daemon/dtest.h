/* dtest.h: what the daemon tests share: a client over zmq + om_proto, an
 * in-process daemon on free loopback ports, and an omnid child process. */
#ifndef DTEST_H
#define DTEST_H

#include <stdbool.h>
#include <sys/types.h>

#include "om_daemon.h"

#define DT_MAX_REPLIES 16

/* Replies of one request, each frame 0 decoded. */
typedef struct dt_result {
    int      n;                       /* replies received */
    int      final_type;              /* OM_REPLY_DONE / OM_REPLY_ERROR; -1: none in time */
    char     code[24];                /* error code name */
    char     message[256];
    uint64_t id;
    int      types[DT_MAX_REPLIES];
    size_t   payload_bytes;           /* all payload frames of all replies */
    int64_t  result_pid;              /* result.pid when present, else -1 */
    bool     seq_ok;                  /* seq went 0, 1, 2, ... */
} dt_result;

/* A config for tests: every endpoint on a free loopback port, test ops on. */
void dt_config(om_config *cfg);

/* An om_daemon running om_daemon_run on its own thread. */
typedef struct dt_daemon dt_daemon;
dt_daemon  *dt_daemon_start(const om_config *cfg);
const char *dt_endpoint(dt_daemon *d, const char *which);
void        dt_daemon_stop(dt_daemon *d);

void *dt_ctx(void);
/* Shuts the client context down without waiting for sockets a failed test left
 * open (zmq_ctx_term would hang on them). */
void  dt_ctx_done(void);
void *dt_client(const char *endpoint);     /* a DEALER, linger 0 */

/* Sends {v,op,id,args?,deadline_ms?}; args_mp is a packed msgpack map (or NULL). */
int  dt_send(void *sock, const char *op, uint64_t id, const char *args_mp, size_t args_len,
             uint64_t deadline_ms, const void *payload, size_t payload_len);
/* Sends raw frames as they are. */
int  dt_send_raw(void *sock, const void *const *frames, const size_t *sizes, int n);
/* Receives replies until a final one or timeout_ms without any. */
void dt_recv(void *sock, int timeout_ms, dt_result *r);
/* dt_send + dt_recv. */
void dt_call(void *sock, const char *op, uint64_t id, const char *args_mp, size_t args_len,
             uint64_t deadline_ms, int timeout_ms, dt_result *r);
/* args {"key": u64} packed. */
size_t dt_args_u64(char *buf, size_t cap, const char *key, uint64_t v);
size_t dt_args_str(char *buf, size_t cap, const char *key, const char *v);

/* Reads a top-level result field of `status`/`metrics` via a fresh request. */
int64_t dt_status_u64(void *sock, const char *path);   /* "inflight", "stages.test.workers", "counters.drops_late" */

/* pid of a busy worker of stage (from status), or -1. */
int dt_busy_pid(void *sock, const char *stage);

/* omnid as a child process; returns its pid and the front/backend endpoints read
 * from its ready file. extra: NULL-terminated arguments. */
pid_t dt_spawn(const char *const *extra, char *front, char *backend, char *readyfile);
int   dt_wait_exit(pid_t pid, int timeout_ms);     /* exit status, or -1 (killed then) */
/* A key of a ready file ("pub", ...) into out (OM_EP_LEN); 0 or -1. */
int   dt_ready_value(const char *readyfile, const char *key, char *out);
/* Remembers a child for dt_reap_all (dt_spawn does it itself). */
void  dt_track(pid_t pid);
/* Kills and reaps every tracked child still running: a failed test must not leave
 * omnid processes behind. */
int   dt_reap_all(void **state);
const char *dt_omnid_path(void);
int64_t dt_now_ms(void);

#endif
