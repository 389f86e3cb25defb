/* Building frame 0 of requests and replies with msgpack-c's packer. */
#include "om_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "om_err.h"

void om_msgbuf_init(om_msgbuf *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

void om_msgbuf_free(om_msgbuf *b)
{
    msgpack_sbuffer_destroy(&b->sb);
    msgpack_sbuffer_init(&b->sb);
}

int om_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

int om_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    return om_pack_str(pk, key) | om_pack_str(pk, val);
}

int om_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t val)
{
    return om_pack_str(pk, key) | msgpack_pack_uint64(pk, val);
}

int om_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t val)
{
    return om_pack_str(pk, key) | msgpack_pack_int64(pk, val);
}

int om_pack_kv_f64(msgpack_packer *pk, const char *key, double val)
{
    return om_pack_str(pk, key) | msgpack_pack_double(pk, val);
}

int om_pack_kv_bool(msgpack_packer *pk, const char *key, bool val)
{
    return om_pack_str(pk, key) | (val ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
}

int om_pack_kv_frame(msgpack_packer *pk, const char *key, uint32_t frame)
{
    return om_pack_str(pk, key) | msgpack_pack_map(pk, 1) | om_pack_kv_u64(pk, "frame", frame);
}

int om_pack_tensor(msgpack_packer *pk, int dtype, uint32_t ndim, const uint64_t *shape,
                   const void *data, size_t nbytes, uint32_t frame)
{
    const char *name = om_dtype_name(dtype);
    if (!name || ndim > OM_PROTO_MAX_DIMS)
        return OM_EINVAL;
    int r = msgpack_pack_map(pk, 3) | om_pack_kv_str(pk, "dtype", name) | om_pack_str(pk, "shape") |
            msgpack_pack_array(pk, ndim);
    for (uint32_t i = 0; i < ndim; i++)
        r |= msgpack_pack_uint64(pk, shape[i]);
    if (data)
        r |= om_pack_str(pk, "data") | msgpack_pack_bin(pk, nbytes) | msgpack_pack_bin_body(pk, data, nbytes);
    else
        r |= om_pack_kv_u64(pk, "frame", frame);
    return r ? OM_ENOMEM : 0;
}

int om_req_build(om_msgbuf *b, const char *op, uint64_t id, uint64_t deadline_ms, uint32_t n_args)
{
    msgpack_sbuffer_clear(&b->sb);
    msgpack_packer *pk = &b->pk;
    int r = msgpack_pack_map(pk, 3 + (n_args > 0) + (deadline_ms > 0)) |
            om_pack_kv_u64(pk, "v", OM_PROTO_VERSION) | om_pack_kv_str(pk, "op", op) |
            om_pack_kv_u64(pk, "id", id);
    if (deadline_ms > 0)
        r |= om_pack_kv_u64(pk, "deadline_ms", deadline_ms);
    if (n_args > 0)
        r |= om_pack_str(pk, "args") | msgpack_pack_map(pk, n_args);
    return r ? OM_ENOMEM : 0;
}

/* Opens a reply map of `extra` fields after id, seq and type. */
static int reply_head(om_msgbuf *b, uint64_t id, uint64_t seq, const char *type, uint32_t extra)
{
    msgpack_sbuffer_clear(&b->sb);
    return msgpack_pack_map(&b->pk, 3 + extra) | om_pack_kv_u64(&b->pk, "id", id) |
           om_pack_kv_u64(&b->pk, "seq", seq) | om_pack_kv_str(&b->pk, "type", type);
}

int om_reply_token(om_msgbuf *b, uint64_t id, uint64_t seq, const char *text, int64_t token)
{
    int r = reply_head(b, id, seq, "token", 1 + (token >= 0)) | om_pack_kv_str(&b->pk, "text", text);
    if (token >= 0)
        r |= om_pack_kv_i64(&b->pk, "token", token);
    return r ? OM_ENOMEM : 0;
}

int om_reply_progress(om_msgbuf *b, uint64_t id, uint64_t seq, const char *stage, uint64_t current, uint64_t total)
{
    int r = reply_head(b, id, seq, "progress", 3) | om_pack_kv_str(&b->pk, "stage", stage) |
            om_pack_kv_u64(&b->pk, "current", current) | om_pack_kv_u64(&b->pk, "total", total);
    return r ? OM_ENOMEM : 0;
}

int om_reply_result_begin(om_msgbuf *b, uint64_t id, uint64_t seq, uint32_t n_fields)
{
    int r = reply_head(b, id, seq, "result", 1) | om_pack_str(&b->pk, "result") | msgpack_pack_map(&b->pk, n_fields);
    return r ? OM_ENOMEM : 0;
}

int om_reply_embedding(om_msgbuf *b, uint64_t id, uint64_t seq, const char *modality, uint64_t dim)
{
    int r = reply_head(b, id, seq, "embedding", 2) | om_pack_kv_str(&b->pk, "modality", modality) |
            om_pack_str(&b->pk, "tensor");
    if (r)
        return OM_ENOMEM;
    return om_pack_tensor(&b->pk, OM_DTYPE_F32, 1, &dim, NULL, 0, 1);
}

int om_reply_image(om_msgbuf *b, uint64_t id, uint64_t seq, const char *mime, uint32_t width, uint32_t height)
{
    int r = reply_head(b, id, seq, "image", 4) | om_pack_kv_str(&b->pk, "mime", mime) |
            om_pack_kv_u64(&b->pk, "width", width) | om_pack_kv_u64(&b->pk, "height", height) |
            om_pack_kv_u64(&b->pk, "frame", 1);
    return r ? OM_ENOMEM : 0;
}

int om_reply_done(om_msgbuf *b, uint64_t id, uint64_t seq, const om_kv_f64 *timings, size_t n_timings,
                  const om_kv_u64 *usage, size_t n_usage)
{
    if (n_timings > UINT32_MAX || n_usage > UINT32_MAX)
        return OM_EINVAL;
    int r = reply_head(b, id, seq, "done", 2) | om_pack_str(&b->pk, "timings") |
            msgpack_pack_map(&b->pk, (uint32_t)n_timings);
    for (size_t i = 0; i < n_timings; i++)
        r |= om_pack_kv_f64(&b->pk, timings[i].key, timings[i].val);
    r |= om_pack_str(&b->pk, "usage") | msgpack_pack_map(&b->pk, (uint32_t)n_usage);
    for (size_t i = 0; i < n_usage; i++)
        r |= om_pack_kv_u64(&b->pk, usage[i].key, usage[i].val);
    return r ? OM_ENOMEM : 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static int utf8_len(const unsigned char *s, size_t left)
{
    int n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
          : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;
    if (n == 0 || (size_t)n > left)
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 4 && s[0] == 0xf0 && s[1] < 0x90) ||
        (n == 4 && s[0] == 0xf4 && s[1] >= 0x90) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0))
        return 0;
    return n;
}

int om_reply_verror(om_msgbuf *b, uint64_t id, uint64_t seq, int code, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Messages quote client input (paths, URLs); msgpack str must be UTF-8 or
     * strict decoders (Python's msgpack) reject the whole reply. */
    for (size_t i = 0, len = strlen(msg); i < len;) {
        int n = utf8_len((const unsigned char *)msg + i, len - i);
        if (n == 0)
            msg[i++] = '?';
        else
            i += n;
    }
    int r = reply_head(b, id, seq, "error", 2) | om_pack_kv_str(&b->pk, "code", om_errname(code)) |
            om_pack_kv_str(&b->pk, "message", msg);
    return r ? OM_ENOMEM : 0;
}

int om_reply_error(om_msgbuf *b, uint64_t id, uint64_t seq, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = om_reply_verror(b, id, seq, code, fmt, ap);
    va_end(ap);
    return r;
}
