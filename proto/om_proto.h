/* om_proto.h: the omnid wire protocol, shared by the daemon and the clients.
 *
 * Owns: the message limits, the raw msgpack validator that runs before msgpack-c
 * sees any byte from outside, request decoding (frame 0 -> om_req) with typed
 * argument accessors, reply builders, request builders and the reply decoder for
 * clients, tensor encoding, and multipart send/receive over a ZeroMQ socket with
 * the limits applied; sensor topic names, the IMU sensor message and the published
 * embedding. docs/PROTOCOL.md describes every message and field.
 *
 * Shape of a message (ZeroMQ multipart):
 *   request: frame 0 = msgpack map {"v":1,"op":str,"id":uint,"args":map?,"deadline_ms":uint?}
 *            frames 1..n = payloads, referenced from args as {"frame": k}
 *   reply:   frame 0 = msgpack map {"id":uint,"seq":uint,"type":str, ...}, frames 1..n = payloads
 * A ROUTER prepends routing frames (the "envelope"); the receive helper is told how
 * many so that limits apply to the body only and the envelope survives for replies.
 *
 * Ownership: om_req / om_reply_msg own their unpacked msgpack objects (the zone),
 * but strings, bins and payload frames in them point into the frames passed to
 * *_decode (usually an om_msg's), so those frames must outlive them. Every
 * *_init/decode pairs with exactly one *_free, which is safe on a zeroed or
 * already freed struct. */
#ifndef OM_PROTO_H
#define OM_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>
#include <zmq.h>

#define OM_PROTO_VERSION         1
#define OM_PROTO_ENDPOINT_REQ    "tcp://127.0.0.1:5555"  /* ROUTER: requests and replies */
#define OM_PROTO_ENDPOINT_PUB    "tcp://127.0.0.1:5556"  /* XPUB: published streams */
#define OM_PROTO_ENDPOINT_SENSOR "tcp://127.0.0.1:5557"  /* SUB (daemon side): sensor topics */
#define OM_PROTO_MAX_OP          32   /* op names are short identifiers */
#define OM_PROTO_MAX_DIMS        8    /* tensor rank on the wire */

/* ---- limits ---------------------------------------------------------------- */

/* Every size that comes from outside is bounded. Defaults (om_proto_limits_default):
 *   max_frames       16        body frames per message (frame 0 + payloads), envelope excluded
 *   max_total_bytes  256 MiB   sum of body frame sizes
 *   max_header_bytes 1 MiB     frame 0
 *   max_depth        16        nesting of maps/arrays in frame 0 (top-level map = 1)
 *   max_elems        65536     entries of any one map or array
 *   max_str          1 MiB     bytes of any one str/bin/ext inside frame 0 */
typedef struct om_proto_limits {
    uint32_t max_frames;
    uint64_t max_total_bytes;
    uint32_t max_header_bytes;
    uint32_t max_depth;
    uint32_t max_elems;
    uint32_t max_str;
} om_proto_limits;

void om_proto_limits_default(om_proto_limits *lim);

/* Walks raw msgpack bytes without allocating: checks that exactly one object fills
 * buf (truncation and trailing bytes are errors), depth, container counts (against
 * max_elems and against the bytes left, since each element needs at least one byte),
 * str/bin/ext sizes, and that no reserved byte (0xc1) appears. Only after this may
 * msgpack-c unpack the buffer: msgpack-c 4.0 has no limits of its own and would
 * allocate for a declared count before seeing the data (docs/PROTOCOL.md). */
int om_msgpack_validate(const void *buf, size_t len, const om_proto_limits *lim,
                        char *err, size_t errlen);

/* ---- frames and multipart messages ------------------------------------------ */

typedef struct om_frame {
    const void *data;
    size_t      size;
} om_frame;

/* A received multipart message; frames[0..n_envelope) are routing frames. */
typedef struct om_msg {
    zmq_msg_t *frames;
    size_t     n, cap;
    size_t     n_envelope;
    uint64_t   body_bytes;
} om_msg;

void om_msg_init(om_msg *m);
/* Closes every frame and releases the array; m may be reused after om_msg_init. */
void om_msg_free(om_msg *m);
/* Frame i as a view (i counts from the first envelope frame); {NULL,0} if out of range. */
om_frame om_msg_frame(const om_msg *m, size_t i);
/* Body frames (after the envelope) as views in out[0..max); returns how many. */
size_t om_msg_body(const om_msg *m, om_frame *out, size_t max);

/* Receives one multipart message into m (freed first). timeout_ms: -1 blocks,
 * 0 polls. Returns 0; OM_ETIMEDOUT when nothing arrived in time (or a signal
 * interrupted the wait, so a caller can check its stop flag); OM_EPROTO when the
 * message has no body frame after n_envelope routing frames; OM_ERANGE when the body
 * has more than max_frames frames, frame 0 exceeds max_header_bytes, or the body
 * exceeds max_total_bytes: the rest of the message is then received and discarded,
 * and m keeps the envelope plus frame 0 when frame 0 itself is within
 * max_header_bytes, so the caller can still answer (om_req_peek_id); OM_EIO on a
 * ZeroMQ error. err names the limit and the values. */
int om_msg_recv(void *sock, om_msg *m, size_t n_envelope, const om_proto_limits *lim,
                int timeout_ms, char *err, size_t errlen);

/* Sends frames[0..n) as one multipart message (ZeroMQ copies the bytes). flags may
 * hold ZMQ_DONTWAIT. Returns 0, OM_EBUSY (would block), OM_ENOENT (a ROUTER with
 * ZMQ_ROUTER_MANDATORY: that peer is gone), OM_EINVAL (n == 0) or OM_EIO. */
int om_send_frames(void *sock, const om_frame *frames, size_t n, int flags);

/* ---- ops ----------------------------------------------------------------------- */

enum om_op {
    OM_OP_HEALTH = 0,
    OM_OP_STATUS,
    OM_OP_METRICS,
    OM_OP_PROBE,
    OM_OP_ASK,
    OM_OP_CHAT,
    OM_OP_GENERATE,
    OM_OP_EMBED,
    OM_OP_IMAGINE,
    OM_OP_CANCEL,
    OM_OP_COUNT_,
};

/* "health", ...; NULL when out of range. */
const char *om_op_name(int op);
/* OM_OP_* for a name, or OM_EUNSUPPORTED. */
int om_op_from_name(const char *name, size_t len);

/* ---- tensors ------------------------------------------------------------------- */

/* Wire dtypes; the values are om_type.h's ids so they pass to the runtime as is. */
enum om_dtype {
    OM_DTYPE_F32 = 0,
    OM_DTYPE_F16 = 1,
    OM_DTYPE_I32 = 26,
};

/* "f32" / "f16" / "i32", NULL otherwise. */
const char *om_dtype_name(int dtype);
size_t      om_dtype_size(int dtype);   /* bytes per element, 0 if unknown */

/* A tensor as found on the wire: data borrows from the message. */
typedef struct om_tensor_view {
    int         dtype;
    uint32_t    ndim;
    uint64_t    shape[OM_PROTO_MAX_DIMS];
    const void *data;     /* little-endian, row-major; may be unaligned */
    size_t      nbytes;   /* == product(shape) * om_dtype_size(dtype), checked */
} om_tensor_view;

/* ---- requests (daemon side) ----------------------------------------------------- */

typedef struct om_req {
    int            op;                  /* OM_OP_* */
    char           op_name[OM_PROTO_MAX_OP + 1];
    uint64_t       id;
    uint64_t       deadline_ms;         /* relative, from receipt; 0 = none */
    msgpack_object args;                /* a MAP, or NIL when the request has none */
    size_t         n_frames;            /* payload frames (frames 1..n_frames) */
    om_frame      *frames;              /* [0] is frame 0; borrows the bytes */
    msgpack_unpacked unpacked;          /* owns args */
    bool           live;
} om_req;

/* Validates frame 0 (om_msgpack_validate), unpacks it and checks the envelope:
 * a map with "v" == 1, "op" a known op name (unknown -> OM_EUNSUPPORTED naming the
 * op), "id" uint, optional "args" map, optional "deadline_ms" uint, no other keys
 * (OM_EFORMAT naming the key). frames[0] is frame 0, frames[1..n) the payloads;
 * n must be in 1..max_frames. Returns 0 or OM_EFORMAT / OM_ERANGE /
 * OM_EUNSUPPORTED / OM_ENOMEM with err naming the field. On error r->id holds the
 * id when it could be read (else 0) so the caller can answer that request. */
int om_req_decode(om_req *r, const om_frame *frames, size_t n, const om_proto_limits *lim,
                  char *err, size_t errlen);
void om_req_free(om_req *r);

/* Reads "id" from a frame 0 that may be otherwise invalid (after OM_ERANGE from
 * om_msg_recv). Validates first; returns 0, OM_ENOENT or OM_EFORMAT. */
int om_req_peek_id(const void *buf, size_t len, const om_proto_limits *lim, uint64_t *id);

/* Typed access to args. Each returns 0; OM_ENOENT when the key is absent (or args
 * is); OM_EFORMAT on a wrong type or a value out of the type's range; err then says
 * e.g. "args.url: expected str, got uint". Strings are not NUL-terminated: they
 * borrow from r; *len is set. */
int om_req_arg_str(const om_req *r, const char *key, const char **s, size_t *len, char *err, size_t errlen);
int om_req_arg_u64(const om_req *r, const char *key, uint64_t *v, char *err, size_t errlen);
int om_req_arg_i64(const om_req *r, const char *key, int64_t *v, char *err, size_t errlen);
int om_req_arg_f64(const om_req *r, const char *key, double *v, char *err, size_t errlen);   /* ints accepted */
int om_req_arg_bool(const om_req *r, const char *key, bool *v, char *err, size_t errlen);
int om_req_arg_map(const om_req *r, const char *key, const msgpack_object **map, char *err, size_t errlen);
/* args[key] = {"frame": k} with 1 <= k <= n_frames -> the payload frame's bytes. */
int om_req_arg_frame(const om_req *r, const char *key, om_frame *f, char *err, size_t errlen);
/* args[key] = {"dtype","shape", "frame":k | "data":bin}; sizes checked. */
int om_req_arg_tensor(const om_req *r, const char *key, om_tensor_view *t, char *err, size_t errlen);
/* Copies args[key] (str) into dst as a NUL-terminated string; OM_ERANGE if it does not fit. */
int om_req_arg_strcpy(const om_req *r, const char *key, char *dst, size_t dstlen, char *err, size_t errlen);

/* The same accessors on any map (nested args, decoded replies); `path` prefixes the
 * field in error messages ("args.opts"). The returned object borrows from map. */
const msgpack_object *om_map_get(const msgpack_object *map, const char *key);
int om_map_str(const msgpack_object *map, const char *path, const char *key, const char **s, size_t *len, char *err, size_t errlen);
int om_map_u64(const msgpack_object *map, const char *path, const char *key, uint64_t *v, char *err, size_t errlen);
int om_map_i64(const msgpack_object *map, const char *path, const char *key, int64_t *v, char *err, size_t errlen);
int om_map_f64(const msgpack_object *map, const char *path, const char *key, double *v, char *err, size_t errlen);
int om_map_bool(const msgpack_object *map, const char *path, const char *key, bool *v, char *err, size_t errlen);
int om_map_map(const msgpack_object *map, const char *path, const char *key, const msgpack_object **v, char *err, size_t errlen);
/* Tensor object (or {"frame":k}) at map[key]; frames[0..n) as in om_req. */
int om_map_tensor(const msgpack_object *map, const char *path, const char *key,
                  const om_frame *frames, size_t n, om_tensor_view *t, char *err, size_t errlen);

/* ---- building messages ---------------------------------------------------------- */

/* A growing msgpack buffer and its packer; every builder below first clears it, then
 * writes one complete frame 0. Use b->pk to add the fields a *_begin leaves open. */
typedef struct om_msgbuf {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
} om_msgbuf;

void om_msgbuf_init(om_msgbuf *b);
void om_msgbuf_free(om_msgbuf *b);
static inline om_frame om_msgbuf_frame(const om_msgbuf *b) { return (om_frame){ b->sb.data, b->sb.size }; }

/* Small packing helpers (return msgpack-c's 0 / -1, OR-able). */
int om_pack_str(msgpack_packer *pk, const char *s);
int om_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
int om_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t val);
int om_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t val);
int om_pack_kv_f64(msgpack_packer *pk, const char *key, double val);
int om_pack_kv_bool(msgpack_packer *pk, const char *key, bool val);
int om_pack_kv_frame(msgpack_packer *pk, const char *key, uint32_t frame);   /* key: {"frame":k} */
/* {"dtype","shape","frame":k} when data == NULL, else {"dtype","shape","data":bin}. */
int om_pack_tensor(msgpack_packer *pk, int dtype, uint32_t ndim, const uint64_t *shape,
                   const void *data, size_t nbytes, uint32_t frame);

/* Requests (clients). n_args > 0 opens "args" as a map of n_args entries that the
 * caller then packs into b->pk; n_args == 0 omits "args". deadline_ms 0 omits it. */
int om_req_build(om_msgbuf *b, const char *op, uint64_t id, uint64_t deadline_ms, uint32_t n_args);

/* Replies (daemon). Each returns 0 or OM_ENOMEM/OM_EINVAL. */
typedef struct om_kv_f64 { const char *key; double   val; } om_kv_f64;
typedef struct om_kv_u64 { const char *key; uint64_t val; } om_kv_u64;

/* {"type":"token","text":str,"token":int} (token < 0 omits "token"). */
int om_reply_token(om_msgbuf *b, uint64_t id, uint64_t seq, const char *text, int64_t token);
/* {"type":"progress","stage":str,"current":u,"total":u} */
int om_reply_progress(om_msgbuf *b, uint64_t id, uint64_t seq, const char *stage, uint64_t current, uint64_t total);
/* {"type":"result","result":{n_fields entries packed by the caller into b->pk}} */
int om_reply_result_begin(om_msgbuf *b, uint64_t id, uint64_t seq, uint32_t n_fields);
/* {"type":"embedding","modality":str,"tensor":{f32,[dim],"frame":1}}: send the
 * vector as frame 1. */
int om_reply_embedding(om_msgbuf *b, uint64_t id, uint64_t seq, const char *modality, uint64_t dim);
/* {"type":"image","mime":str,"width":u,"height":u,"frame":1}: send the bytes as frame 1. */
int om_reply_image(om_msgbuf *b, uint64_t id, uint64_t seq, const char *mime, uint32_t width, uint32_t height);
/* {"type":"done","timings":{key: ms},"usage":{key: n}} */
int om_reply_done(om_msgbuf *b, uint64_t id, uint64_t seq, const om_kv_f64 *timings, size_t n_timings,
                  const om_kv_u64 *usage, size_t n_usage);
/* {"type":"error","code":om_errname(code),"message":printf(fmt, ...)} */
int om_reply_error(om_msgbuf *b, uint64_t id, uint64_t seq, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int om_reply_verror(om_msgbuf *b, uint64_t id, uint64_t seq, int code, const char *fmt, va_list ap);

/* ---- replies (client side) -------------------------------------------------------- */

enum om_reply_type {
    OM_REPLY_TOKEN = 0,
    OM_REPLY_PROGRESS,
    OM_REPLY_RESULT,
    OM_REPLY_EMBEDDING,
    OM_REPLY_IMAGE,
    OM_REPLY_DONE,
    OM_REPLY_ERROR,
    OM_REPLY_COUNT_,
};

const char *om_reply_type_name(int type);

/* A decoded reply. The typed fields below are filled for the reply's type; all
 * strings borrow from the struct (not NUL-terminated; *_len given). */
typedef struct om_reply_msg {
    uint64_t       id, seq;
    int            type;                 /* OM_REPLY_* */
    msgpack_object body;                 /* the whole frame-0 map */
    size_t         n_frames;             /* payload frames */
    om_frame      *frames;               /* [0] is frame 0; borrows */
    /* token */
    const char    *text;      size_t text_len;
    int64_t        token;                /* -1 when absent */
    /* progress */
    const char    *stage;     size_t stage_len;
    uint64_t       current, total;
    /* result: the map; done: timings and usage maps (NULL when absent) */
    const msgpack_object *result, *timings, *usage;
    /* embedding: tensor; image: bytes in image_data */
    const char    *modality;  size_t modality_len;
    om_tensor_view tensor;
    const char    *mime;      size_t mime_len;
    uint32_t       width, height;
    om_frame       image_data;
    /* error: code is the OM_E* value for code_name (OM_EINTERNAL if unknown) */
    int            code;
    char           code_name[24];
    const char    *message;   size_t message_len;
    msgpack_unpacked unpacked;
    bool           live;
} om_reply_msg;

/* Validates and decodes a reply message (frames as in om_req_decode). Returns 0 or
 * OM_EFORMAT / OM_ERANGE / OM_ENOMEM with err naming the field. An unknown "type"
 * is OM_EUNSUPPORTED so old clients can skip new reply kinds. On error id and seq
 * keep what could be read. */
int  om_reply_decode(om_reply_msg *r, const om_frame *frames, size_t n, const om_proto_limits *lim,
                     char *err, size_t errlen);
void om_reply_msg_free(om_reply_msg *r);
/* True for done and error: the request is over. */
static inline bool om_reply_is_final(const om_reply_msg *r)
{
    return r->type == OM_REPLY_DONE || r->type == OM_REPLY_ERROR;
}

/* OM_E* for a wire code name ("EBUSY" -> OM_EBUSY); OM_EINTERNAL when unknown. */
int om_errcode_from_name(const char *name, size_t len);

/* ---- CURVE on the client side ------------------------------------------------------ */

#define OM_CURVE_KEY_LEN 40   /* z85 text of a 32-byte key */

/* Reads a key file as `omnid --gen-keys` writes it: one 40-character z85 key on the
 * first line that is not blank or a `#` comment. Returns 0, OM_EIO or OM_EFORMAT
 * (err names the file and line). */
int om_curve_read_key(const char *path, char key[OM_CURVE_KEY_LEN + 1], char *err, size_t errlen);
/* Makes sock a CURVE client of the server with that public key, as the keypair
 * whose secret key is given (its public key is derived). Call before connect.
 * Returns 0, OM_EFORMAT (not a key) or OM_EUNSUPPORTED (libzmq without CURVE). */
int om_curve_client(void *sock, const char server_public[OM_CURVE_KEY_LEN + 1],
                    const char client_secret[OM_CURVE_KEY_LEN + 1], char *err, size_t errlen);

/* ---- sensor topics (robots -> omnid) and published streams (omnid -> clients) ---- */

/* A published or sensor message is [topic, frame 0 map, payloads...]. */
#define OM_PROTO_MAX_NAME 64   /* robot names, sensor kinds, frame ids: bytes incl. NUL */

/* Splits "sensor/<robot>/<kind>"; robot and kind are 1..63 of [A-Za-z0-9_.-].
 * Returns 0 or OM_EFORMAT naming what was wrong. */
int om_topic_parse_sensor(const void *topic, size_t len, char robot[OM_PROTO_MAX_NAME],
                          char kind[OM_PROTO_MAX_NAME], char *err, size_t errlen);

/* ROS 2 sensor_msgs/Imu: rad/s, m/s^2, quaternion x y z w, row-major 3x3 covariances.
 * As in ROS, orientation_cov[0] == -1 means no orientation. */
typedef struct om_imu_sample {
    uint64_t stamp_ns;                   /* since the Unix epoch */
    char     frame_id[OM_PROTO_MAX_NAME];
    double   orientation[4];
    double   orientation_cov[9];
    double   angular_velocity[3];
    double   angular_velocity_cov[9];
    double   linear_acceleration[3];
    double   linear_acceleration_cov[9];
} om_imu_sample;

/* Frame 0 of sensor/<robot>/imu (docs/PROTOCOL.md section 7). */
int om_imu_encode(om_msgbuf *b, const om_imu_sample *s);
/* Validates and decodes; header, angular_velocity and linear_acceleration are
 * required, orientation and the covariances optional (absent: no orientation,
 * zero covariance). Values must be finite. OM_EFORMAT / OM_ERANGE name the field. */
int om_imu_decode(const void *buf, size_t len, const om_proto_limits *lim, om_imu_sample *s,
                  char *err, size_t errlen);

/* Frame 0 of omni/<robot>/embedding/<modality>:
 * {"stamp_ns", "modality", "tensor": {f32, [dim], "frame": 1}}; the vector is frame 1. */
int om_pub_embedding(om_msgbuf *b, uint64_t stamp_ns, const char *modality, uint64_t dim);

#endif
