/* omni.h: the omni CLI. Owns the command table's contract (one file per command
 * family registers an omni_cmd), the client connection (a DEALER to omnid's front
 * door, request/reply loop with a timeout), and output (human on a TTY or pipe,
 * --json lines for scripts, a progress bar on a TTY).
 *
 * Exit codes: 0 done, 1 the daemon answered with an error, 2 no answer within
 * --timeout, 3 the daemon's reply broke the protocol, 64 bad usage, 130 interrupted
 * (Ctrl-C; the running request was cancelled). */
#ifndef OMNI_H
#define OMNI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "om_proto.h"

enum { OMNI_OK = 0, OMNI_EREPLY = 1, OMNI_ENOANSWER = 2, OMNI_EPROTO = 3, OMNI_EUSAGE = 64,
       OMNI_EINTR = 130 };

#define OMNI_DEFAULT_TIMEOUT_MS 5000

typedef struct omni_ctx {
    const char     *endpoint;
    const char     *server_key;      /* CURVE: file with omnid's public key */
    const char     *client_key;      /* CURVE: file with our secret key */
    int             timeout_ms;      /* for the first reply and between replies */
    uint64_t        deadline_ms;     /* passed to the daemon; 0 = its default */
    bool            json;
    bool            tty;             /* stdout is a terminal */
    bool            bar_shown;       /* a progress bar is on stderr's last line */
    bool            mid_line;        /* streamed text left stdout without a newline */
    om_proto_limits lim;
    void           *zctx, *sock;
} omni_ctx;

typedef struct omni_cmd {
    const char *name;
    const char *args;                /* usage synopsis after the name */
    const char *help;
    int (*run)(omni_ctx *c, int argc, char **argv);   /* argv[0] is the command name */
} omni_cmd;

/* Options every command accepts, before or after its name. Commands put
 * OMNI_COMMON_LONGOPTS in their option table and OMNI_COMMON_SHORTOPTS in their
 * optstring, and hand unknown option characters to omni_common_opt. */
#define OMNI_COMMON_SHORTOPTS "e:t:jh"
#define OMNI_COMMON_LONGOPTS                                   \
    { "endpoint", required_argument, NULL, 'e' },              \
    { "timeout",  required_argument, NULL, 't' },              \
    { "deadline", required_argument, NULL, 'D' },              \
    { "server-key", required_argument, NULL, 'S' },            \
    { "key",      required_argument, NULL, 'K' },              \
    { "json",     no_argument,       NULL, 'j' },              \
    { "help",     no_argument,       NULL, 'h' }
/* Returns 0 when handled, OMNI_EUSAGE on a bad value or an unknown option, and -1
 * for --help. */
int omni_common_opt(omni_ctx *c, int opt, const char *arg);

/* A command's own options: return 0 when handled, else an OMNI_* code. */
typedef int (*omni_opt_fn)(omni_ctx *c, int opt, const char *arg, void *user);
/* Parses argv (argv[0] = command name) with the common options plus the command's
 * (longopts must include OMNI_COMMON_LONGOPTS; own may be NULL). Returns 0 with
 * optind at the first argument, -1 after printing --help (exit 0), or an OMNI_*
 * code after printing the usage. Checks that argc - optind is in [min_args, max_args]. */
int omni_parse(omni_ctx *c, int argc, char **argv, const char *shortopts, const struct option *longopts,
               omni_opt_fn own, void *user, int min_args, int max_args);

/* Connection (conn.c). */
int  omni_connect(omni_ctx *c);
void omni_disconnect(omni_ctx *c);

/* A reply the command wants to handle itself: return OMNI_DEFAULT for the default
 * handling, OMNI_OK when handled (the request goes on unless the reply was final),
 * or another OMNI_* exit code to stop there. */
#define OMNI_DEFAULT (-1)
typedef int (*omni_reply_fn)(omni_ctx *c, const om_reply_msg *r, void *user);

/* Sends the request in req (frame 0) plus payload frames and handles replies with
 * the same id until done or error; returns an OMNI_* exit code. */
int omni_call(omni_ctx *c, const om_msgbuf *req, const om_frame *payload, size_t n_payload,
              uint64_t id, omni_reply_fn fn, void *user);
/* The id for the next request of this process. */
uint64_t omni_next_id(void);
/* From now on Ctrl-C (SIGINT) makes omni_call send `cancel` for its request, wait
 * briefly for omnid's answer and return OMNI_EINTR; a second Ctrl-C kills. */
void omni_catch_sigint(void);

/* Output (output.c). */
void omni_json_object(FILE *f, const msgpack_object *o);
void omni_human_map(FILE *f, const msgpack_object *map, int indent);
void omni_progress(omni_ctx *c, const om_reply_msg *r);
void omni_progress_clear(omni_ctx *c);
/* Default handling of one reply; returns an OMNI_* code, OMNI_OK to continue. */
int  omni_print_reply(omni_ctx *c, const om_reply_msg *r);

/* Media arguments of ask and embed (cmd_vision.c): --video/--image FILE is uploaded as
 * payload frame 1; with --url, the path (made absolute) or URL is sent for omnid to open. */
typedef struct omni_media {
    const char *path;                /* NULL: no media */
    const char *key;                 /* "video" or "image" */
    bool        url;
    long        frames;              /* 0: the daemon's default */
    char        abs[4096];
    char       *data;                /* the uploaded bytes (owned) */
    om_frame    payload;
    size_t      n_payload;
} omni_media;
#define OMNI_MEDIA_LONGOPTS                                    \
    { "video",  required_argument, NULL, 'V' },                \
    { "image",  required_argument, NULL, 'I' },                \
    { "url",    no_argument,       NULL, 'U' },                \
    { "frames", required_argument, NULL, 'F' }
int      omni_media_opt(omni_media *m, int opt, const char *arg);
/* Reads the file to upload (or resolves the path for --url); m->data is then owned. */
int      omni_media_load(omni_ctx *c, omni_media *m);
uint32_t omni_media_n_args(const omni_media *m);
int      omni_media_pack(msgpack_packer *pk, const omni_media *m);
/* Reads a whole regular file of at most max bytes into *buf (caller frees). */
int      omni_read_file(const char *path, uint64_t max, char **buf, size_t *size);

/* Commands (one file each family). */
int omni_cmd_health(omni_ctx *c, int argc, char **argv);
int omni_cmd_status(omni_ctx *c, int argc, char **argv);
int omni_cmd_metrics(omni_ctx *c, int argc, char **argv);
int omni_cmd_probe(omni_ctx *c, int argc, char **argv);
int omni_cmd_ask(omni_ctx *c, int argc, char **argv);
int omni_cmd_generate(omni_ctx *c, int argc, char **argv);
int omni_cmd_chat(omni_ctx *c, int argc, char **argv);
int omni_cmd_embed(omni_ctx *c, int argc, char **argv);

#endif
