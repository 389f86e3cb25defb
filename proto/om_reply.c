/* Replies on the client side: validating and decoding frame 0 by type. */
#include "om_proto.h"

#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_proto_impl.h"

static const char *const type_names[OM_REPLY_COUNT_] = {
    [OM_REPLY_TOKEN] = "token", [OM_REPLY_PROGRESS] = "progress", [OM_REPLY_RESULT] = "result",
    [OM_REPLY_EMBEDDING] = "embedding", [OM_REPLY_IMAGE] = "image", [OM_REPLY_DONE] = "done",
    [OM_REPLY_ERROR] = "error",
};

const char *om_reply_type_name(int type)
{
    return type >= 0 && type < OM_REPLY_COUNT_ ? type_names[type] : NULL;
}

int om_errcode_from_name(const char *name, size_t len)
{
    for (int code = OM_ENOMEM; code >= OM_EINTERNAL; code--) {
        const char *n = om_errname(code);
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return code;
    }
    return OM_EINTERNAL;
}

void om_reply_msg_free(om_reply_msg *r)
{
    if (r->live)
        msgpack_unpacked_destroy(&r->unpacked);
    free(r->frames);
    memset(r, 0, sizeof *r);
}

/* An optional map field: absent is fine, another type is not. */
static int opt_map(const msgpack_object *root, const char *key, const msgpack_object **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    if (!om_map_get(root, key))
        return 0;
    return om_map_map(root, "", key, out, err, errlen);
}

static int decode_body(om_reply_msg *r, const msgpack_object *root, char *err, size_t errlen)
{
    size_t n = r->n_frames + 1;
    int ret = 0;
    switch (r->type) {
    case OM_REPLY_TOKEN:
        r->token = -1;
        if ((ret = om_map_str(root, "", "text", &r->text, &r->text_len, err, errlen)) < 0)
            return ret;
        if (om_map_get(root, "token"))
            ret = om_map_i64(root, "", "token", &r->token, err, errlen);
        return ret;
    case OM_REPLY_PROGRESS:
        if ((ret = om_map_str(root, "", "stage", &r->stage, &r->stage_len, err, errlen)) < 0 ||
            (ret = om_map_u64(root, "", "current", &r->current, err, errlen)) < 0 ||
            (ret = om_map_u64(root, "", "total", &r->total, err, errlen)) < 0)
            return ret;
        return 0;
    case OM_REPLY_RESULT:
        return om_map_map(root, "", "result", &r->result, err, errlen);
    case OM_REPLY_EMBEDDING:
        if ((ret = om_map_str(root, "", "modality", &r->modality, &r->modality_len, err, errlen)) < 0)
            return ret;
        return om_map_tensor(root, "", "tensor", r->frames, n, &r->tensor, err, errlen);
    case OM_REPLY_IMAGE: {
        uint64_t w, h, k;
        if ((ret = om_map_str(root, "", "mime", &r->mime, &r->mime_len, err, errlen)) < 0 ||
            (ret = om_map_u64(root, "", "width", &w, err, errlen)) < 0 ||
            (ret = om_map_u64(root, "", "height", &h, err, errlen)) < 0 ||
            (ret = om_map_u64(root, "", "frame", &k, err, errlen)) < 0)
            return ret;
        if (w > UINT32_MAX || h > UINT32_MAX)
            return om_proto_fail(err, errlen, OM_ERANGE, "image: %llux%llu is too large",
                                 (unsigned long long)w, (unsigned long long)h);
        if (k < 1 || k >= n)
            return om_proto_fail(err, errlen, OM_EFORMAT, "frame: %llu is not a payload frame (message has %zu)",
                                 (unsigned long long)k, n - 1);
        r->width = (uint32_t)w;
        r->height = (uint32_t)h;
        r->image_data = r->frames[k];
        return 0;
    }
    case OM_REPLY_DONE:
        if ((ret = opt_map(root, "timings", &r->timings, err, errlen)) < 0)
            return ret;
        return opt_map(root, "usage", &r->usage, err, errlen);
    case OM_REPLY_ERROR: {
        const char *code;
        size_t len;
        if ((ret = om_map_str(root, "", "code", &code, &len, err, errlen)) < 0 ||
            (ret = om_map_str(root, "", "message", &r->message, &r->message_len, err, errlen)) < 0)
            return ret;
        r->code = om_errcode_from_name(code, len);
        size_t k = len < sizeof r->code_name - 1 ? len : sizeof r->code_name - 1;
        for (size_t i = 0; i < k; i++)
            r->code_name[i] = code[i] >= 0x20 && code[i] < 0x7f ? code[i] : '?';
        r->code_name[k] = 0;
        return 0;
    }
    }
    return om_proto_fail(err, errlen, OM_EINTERNAL, "reply type %d", r->type);
}

static int decode(om_reply_msg *r, const om_frame *frames, size_t n, const om_proto_limits *lim,
                  char *err, size_t errlen)
{
    const msgpack_object *root;
    int ret = om_proto_decode_head(&r->unpacked, &r->live, frames, n, lim, &root, err, errlen);
    if (ret < 0)
        return ret;
    r->body = *root;
    if ((ret = om_proto_copy_frames(&r->frames, frames, n, err, errlen)) < 0)
        return ret;
    r->n_frames = n - 1;

    const char *type;
    size_t tlen;
    if ((ret = om_map_u64(root, "", "id", &r->id, err, errlen)) < 0 ||
        (ret = om_map_u64(root, "", "seq", &r->seq, err, errlen)) < 0 ||
        (ret = om_map_str(root, "", "type", &type, &tlen, err, errlen)) < 0)
        return ret == OM_ENOENT ? OM_EFORMAT : ret;
    r->type = om_proto_name_index(type_names, OM_REPLY_COUNT_, type, tlen);
    if (r->type < 0)
        return om_proto_fail(err, errlen, OM_EUNSUPPORTED, "type: unknown reply type");
    ret = decode_body(r, root, err, errlen);
    return ret == OM_ENOENT ? OM_EFORMAT : ret;
}

int om_reply_decode(om_reply_msg *r, const om_frame *frames, size_t n, const om_proto_limits *lim,
                    char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int ret = decode(r, frames, n, lim, err, errlen);
    if (ret < 0) {
        uint64_t id = r->id, seq = r->seq;
        int type = r->type;
        om_reply_msg_free(r);
        r->id = id, r->seq = seq, r->type = type;
    }
    return ret;
}
