/* Requests: decoding frame 0, typed access to args, tensors on the wire. */
#include "om_proto.h"

#include <stdlib.h>
#include <string.h>

#include "om_err.h"
#include "om_proto_impl.h"

static const char *const op_names[OM_OP_COUNT_] = {
    [OM_OP_HEALTH] = "health",   [OM_OP_STATUS] = "status", [OM_OP_METRICS] = "metrics",
    [OM_OP_PROBE] = "probe",     [OM_OP_ASK] = "ask",       [OM_OP_CHAT] = "chat",
    [OM_OP_GENERATE] = "generate", [OM_OP_EMBED] = "embed", [OM_OP_IMAGINE] = "imagine",
    [OM_OP_CANCEL] = "cancel",
};

const char *om_op_name(int op)
{
    return op >= 0 && op < OM_OP_COUNT_ ? op_names[op] : NULL;
}

int om_proto_name_index(const char *const *names, int count, const char *name, size_t len)
{
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return i;
    return -1;
}

int om_op_from_name(const char *name, size_t len)
{
    int op = om_proto_name_index(op_names, OM_OP_COUNT_, name, len);
    return op < 0 ? OM_EUNSUPPORTED : op;
}

const char *om_dtype_name(int dtype)
{
    switch (dtype) {
    case OM_DTYPE_F32: return "f32";
    case OM_DTYPE_F16: return "f16";
    case OM_DTYPE_I32: return "i32";
    }
    return NULL;
}

size_t om_dtype_size(int dtype)
{
    switch (dtype) {
    case OM_DTYPE_F32: return 4;
    case OM_DTYPE_F16: return 2;
    case OM_DTYPE_I32: return 4;
    }
    return 0;
}

/* Outside bytes go into error messages: keep them printable and short. */
static const char *printable(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < buflen; i++)
        buf[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (len > 0 && k < len && buflen > 4)
        memcpy(buf + k, "...", 3), k += 3;
    buf[k] = 0;
    return buf;
}

static bool key_is(const msgpack_object *k, const char *key)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
           memcmp(k->via.str.ptr, key, k->via.str.size) == 0;
}

const msgpack_object *om_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

/* Finds map[key] or fails with OM_ENOENT naming path.key. */
static int lookup(const msgpack_object *map, const char *path, const char *key,
                  const msgpack_object **o, char *err, size_t errlen)
{
    *o = om_map_get(map, key);
    if (!*o)
        return om_proto_fail(err, errlen, OM_ENOENT, "%s%s%s: missing", path ? path : "",
                             path && *path ? "." : "", key);
    return 0;
}

static int wrong(const char *path, const char *key, const char *want, const msgpack_object *o,
                 char *err, size_t errlen)
{
    return om_proto_fail(err, errlen, OM_EFORMAT, "%s%s%s: expected %s, got %s", path ? path : "",
                         path && *path ? "." : "", key, want, om_proto_typename(o));
}

/* Finds map[key] of the given type, or fails naming path.key and what it is instead. */
static int lookup_as(const msgpack_object *map, const char *path, const char *key,
                     msgpack_object_type type, const char *want, const msgpack_object **o,
                     char *err, size_t errlen)
{
    int ret = lookup(map, path, key, o, err, errlen);
    if (ret < 0)
        return ret;
    if ((*o)->type != type)
        return wrong(path, key, want, *o, err, errlen);
    return 0;
}

int om_map_str(const msgpack_object *map, const char *path, const char *key, const char **s,
               size_t *len, char *err, size_t errlen)
{
    const msgpack_object *o;
    int ret = lookup_as(map, path, key, MSGPACK_OBJECT_STR, "str", &o, err, errlen);
    if (ret < 0)
        return ret;
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return 0;
}

int om_map_u64(const msgpack_object *map, const char *path, const char *key, uint64_t *v,
               char *err, size_t errlen)
{
    const msgpack_object *o;
    int ret = lookup_as(map, path, key, MSGPACK_OBJECT_POSITIVE_INTEGER, "uint", &o, err, errlen);
    if (ret < 0)
        return ret;
    *v = o->via.u64;
    return 0;
}

int om_map_i64(const msgpack_object *map, const char *path, const char *key, int64_t *v,
               char *err, size_t errlen)
{
    const msgpack_object *o;
    int ret = lookup(map, path, key, &o, err, errlen);
    if (ret < 0)
        return ret;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *v = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *v = (int64_t)o->via.u64;
    else
        return wrong(path, key, "int64", o, err, errlen);
    return 0;
}

int om_map_f64(const msgpack_object *map, const char *path, const char *key, double *v,
               char *err, size_t errlen)
{
    const msgpack_object *o;
    int ret = lookup(map, path, key, &o, err, errlen);
    if (ret < 0)
        return ret;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          *v = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *v = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *v = (double)o->via.i64; return 0;
    default:                              return wrong(path, key, "number", o, err, errlen);
    }
}

int om_map_bool(const msgpack_object *map, const char *path, const char *key, bool *v,
                char *err, size_t errlen)
{
    const msgpack_object *o;
    int ret = lookup_as(map, path, key, MSGPACK_OBJECT_BOOLEAN, "bool", &o, err, errlen);
    if (ret < 0)
        return ret;
    *v = o->via.boolean;
    return 0;
}

int om_map_map(const msgpack_object *map, const char *path, const char *key,
               const msgpack_object **v, char *err, size_t errlen)
{
    const msgpack_object *o;
    int ret = lookup_as(map, path, key, MSGPACK_OBJECT_MAP, "map", &o, err, errlen);
    if (ret < 0)
        return ret;
    *v = o;
    return 0;
}

/* o is {"frame": k} with 1 <= k < n, or a bin holding the bytes inline. */
static int frame_ref(const msgpack_object *o, const char *path, const char *key,
                     const om_frame *frames, size_t n, om_frame *f, char *err, size_t errlen)
{
    if (o->type == MSGPACK_OBJECT_BIN) {
        *f = (om_frame){ o->via.bin.ptr, o->via.bin.size };
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_MAP)
        return wrong(path, key, "{\"frame\": k} or bin", o, err, errlen);
    const msgpack_object *k = om_map_get(o, "frame");
    if (!k || k->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return om_proto_fail(err, errlen, OM_EFORMAT, "%s%s%s.frame: expected uint", path ? path : "",
                             path && *path ? "." : "", key);
    if (k->via.u64 < 1 || k->via.u64 >= n)
        return om_proto_fail(err, errlen, OM_EFORMAT, "%s%s%s.frame: %llu is not a payload frame (message has %zu)",
                             path ? path : "", path && *path ? "." : "", key,
                             (unsigned long long)k->via.u64, n ? n - 1 : 0);
    *f = frames[k->via.u64];
    return 0;
}

int om_map_tensor(const msgpack_object *map, const char *path, const char *key,
                  const om_frame *frames, size_t n, om_tensor_view *t, char *err, size_t errlen)
{
    const msgpack_object *o, *v;
    int ret = om_map_map(map, path, key, &o, err, errlen);
    if (ret < 0)
        return ret;
    char sub[128];
    snprintf(sub, sizeof sub, "%s%s%s", path ? path : "", path && *path ? "." : "", key);

    const char *dt;
    size_t dtlen;
    if ((ret = om_map_str(o, sub, "dtype", &dt, &dtlen, err, errlen)) < 0)
        return ret;
    memset(t, 0, sizeof *t);
    t->dtype = -1;
    static const int dtypes[] = { OM_DTYPE_F32, OM_DTYPE_F16, OM_DTYPE_I32 };
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strlen(om_dtype_name(dtypes[i])) == dtlen && memcmp(om_dtype_name(dtypes[i]), dt, dtlen) == 0)
            t->dtype = dtypes[i];
    if (t->dtype < 0) {
        char pb[40];
        return om_proto_fail(err, errlen, OM_EUNSUPPORTED, "%s.dtype: '%s' is not f32, f16 or i32", sub,
                             printable(dt, dtlen, pb, sizeof pb));
    }
    if ((ret = lookup_as(o, sub, "shape", MSGPACK_OBJECT_ARRAY, "array", &v, err, errlen)) < 0)
        return ret;
    if (v->via.array.size > OM_PROTO_MAX_DIMS)
        return om_proto_fail(err, errlen, OM_ERANGE, "%s.shape: %u dims (limit %d)", sub,
                             v->via.array.size, OM_PROTO_MAX_DIMS);
    uint64_t elems = 1;
    t->ndim = v->via.array.size;
    for (uint32_t i = 0; i < t->ndim; i++) {
        const msgpack_object *d = &v->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return om_proto_fail(err, errlen, OM_EFORMAT, "%s.shape[%u]: expected uint, got %s", sub, i,
                                 om_proto_typename(d));
        t->shape[i] = d->via.u64;
        if (d->via.u64 && elems > SIZE_MAX / 8 / d->via.u64)
            return om_proto_fail(err, errlen, OM_ERANGE, "%s.shape: element count overflows", sub);
        elems *= d->via.u64;
    }
    t->nbytes = (size_t)elems * om_dtype_size(t->dtype);

    const msgpack_object *data = om_map_get(o, "data"), *fr = om_map_get(o, "frame");
    om_frame f;
    if (data && fr)
        return om_proto_fail(err, errlen, OM_EFORMAT, "%s: both data and frame given", sub);
    if (data) {
        if (data->type != MSGPACK_OBJECT_BIN)
            return wrong(sub, "data", "bin", data, err, errlen);
        f = (om_frame){ data->via.bin.ptr, data->via.bin.size };
    } else if ((ret = frame_ref(o, path, key, frames, n, &f, err, errlen)) < 0) {
        return ret;
    }
    if (f.size != t->nbytes)
        return om_proto_fail(err, errlen, OM_EFORMAT, "%s: %zu data bytes for %zu expected from dtype and shape",
                             sub, f.size, t->nbytes);
    t->data = f.data;
    return 0;
}

void om_req_free(om_req *r)
{
    if (r->live)
        msgpack_unpacked_destroy(&r->unpacked);
    free(r->frames);
    uint64_t id = r->id;
    memset(r, 0, sizeof *r);
    r->id = id;
    r->args.type = MSGPACK_OBJECT_NIL;
}

static int cmp_key(const void *a, const void *b)
{
    const msgpack_object *x = *(const msgpack_object *const *)a, *y = *(const msgpack_object *const *)b;
    uint32_t n = x->via.str.size < y->via.str.size ? x->via.str.size : y->via.str.size;
    int c = n ? memcmp(x->via.str.ptr, y->via.str.ptr, n) : 0;
    return c ? c : (x->via.str.size > y->via.str.size) - (x->via.str.size < y->via.str.size);
}

/* Keys of a map must be distinct strings: parsers disagree on which duplicate wins. */
static int check_keys(const msgpack_object *map, const char *path, char *err, size_t errlen)
{
    uint32_t n = map->via.map.size;
    if (n < 2)
        return n == 1 && map->via.map.ptr[0].key.type != MSGPACK_OBJECT_STR
            ? om_proto_fail(err, errlen, OM_EFORMAT, "%s: keys must be str, got %s", path,
                            om_proto_typename(&map->via.map.ptr[0].key))
            : 0;
    const msgpack_object **keys = malloc(n * sizeof *keys);
    if (!keys)
        return om_proto_fail(err, errlen, OM_ENOMEM, "out of memory");
    int ret = 0;
    for (uint32_t i = 0; i < n && ret == 0; i++) {
        keys[i] = &map->via.map.ptr[i].key;
        if (keys[i]->type != MSGPACK_OBJECT_STR)
            ret = om_proto_fail(err, errlen, OM_EFORMAT, "%s: keys must be str, got %s", path,
                                om_proto_typename(keys[i]));
    }
    if (ret == 0) {
        qsort(keys, n, sizeof *keys, cmp_key);
        for (uint32_t i = 1; i < n && ret == 0; i++)
            if (cmp_key(&keys[i - 1], &keys[i]) == 0) {
                char pb[40];
                ret = om_proto_fail(err, errlen, OM_EFORMAT, "%s: duplicate key '%s'", path,
                                    printable(keys[i]->via.str.ptr, keys[i]->via.str.size, pb, sizeof pb));
            }
    }
    free(keys);
    return ret;
}

int om_proto_decode_head(msgpack_unpacked *u, bool *live, const om_frame *frames, size_t n,
                         const om_proto_limits *lim, const msgpack_object **root, char *err,
                         size_t errlen)
{
    if (n == 0)
        return om_proto_fail(err, errlen, OM_EFORMAT, "message has no frames");
    if (n > lim->max_frames)
        return om_proto_fail(err, errlen, OM_ERANGE, "message has %zu frames (limit %u)", n, lim->max_frames);
    if (frames[0].size > lim->max_header_bytes)
        return om_proto_fail(err, errlen, OM_ERANGE, "frame 0 has %zu bytes (limit %u)", frames[0].size,
                             lim->max_header_bytes);
    int ret = om_proto_unpack(u, frames[0].data, frames[0].size, lim, err, errlen);
    *live = true;
    if (ret < 0)
        return ret;
    *root = &u->data;
    if ((*root)->type != MSGPACK_OBJECT_MAP)
        return om_proto_fail(err, errlen, OM_EFORMAT, "frame 0: expected map, got %s", om_proto_typename(*root));
    return 0;
}

int om_proto_copy_frames(om_frame **out, const om_frame *frames, size_t n, char *err,
                         size_t errlen)
{
    *out = malloc(n * sizeof **out);
    if (!*out)
        return om_proto_fail(err, errlen, OM_ENOMEM, "out of memory");
    memcpy(*out, frames, n * sizeof *frames);
    return 0;
}

static int decode(om_req *r, const om_frame *frames, size_t n, const om_proto_limits *lim,
                  char *err, size_t errlen)
{
    const msgpack_object *root;
    int ret = om_proto_decode_head(&r->unpacked, &r->live, frames, n, lim, &root, err, errlen);
    if (ret < 0)
        return ret;
    if ((ret = check_keys(root, "frame 0", err, errlen)) < 0)
        return ret;
    const msgpack_object *id = om_map_get(root, "id");
    if (id && id->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        r->id = id->via.u64;

    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        if (!key_is(k, "v") && !key_is(k, "op") && !key_is(k, "id") && !key_is(k, "args") &&
            !key_is(k, "deadline_ms")) {
            char pb[40];
            return om_proto_fail(err, errlen, OM_EFORMAT, "unknown field '%s'",
                                 printable(k->via.str.ptr, k->via.str.size, pb, sizeof pb));
        }
    }
    uint64_t v;
    if ((ret = om_map_u64(root, "", "v", &v, err, errlen)) < 0)
        return ret == OM_ENOENT ? OM_EFORMAT : ret;
    if (v != OM_PROTO_VERSION)
        return om_proto_fail(err, errlen, OM_EUNSUPPORTED, "v: version %llu not supported (this is %d)",
                             (unsigned long long)v, OM_PROTO_VERSION);
    if ((ret = om_map_u64(root, "", "id", &r->id, err, errlen)) < 0)
        return ret == OM_ENOENT ? OM_EFORMAT : ret;
    const char *op;
    size_t oplen;
    if ((ret = om_map_str(root, "", "op", &op, &oplen, err, errlen)) < 0)
        return ret == OM_ENOENT ? OM_EFORMAT : ret;
    r->op = om_op_from_name(op, oplen);
    if (r->op < 0) {
        char pb[40];
        return om_proto_fail(err, errlen, OM_EUNSUPPORTED, "op: unknown op '%s'", printable(op, oplen, pb, sizeof pb));
    }
    memcpy(r->op_name, op, oplen);
    r->op_name[oplen] = 0;
    if (om_map_get(root, "deadline_ms") &&
        (ret = om_map_u64(root, "", "deadline_ms", &r->deadline_ms, err, errlen)) < 0)
        return ret;
    const msgpack_object *args = om_map_get(root, "args");
    if (args && args->type != MSGPACK_OBJECT_NIL) {
        if (args->type != MSGPACK_OBJECT_MAP)
            return wrong("", "args", "map", args, err, errlen);
        if ((ret = check_keys(args, "args", err, errlen)) < 0)
            return ret;
        r->args = *args;
    }
    if ((ret = om_proto_copy_frames(&r->frames, frames, n, err, errlen)) < 0)
        return ret;
    r->n_frames = n - 1;
    return 0;
}

int om_req_decode(om_req *r, const om_frame *frames, size_t n, const om_proto_limits *lim,
                  char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->args.type = MSGPACK_OBJECT_NIL;
    int ret = decode(r, frames, n, lim, err, errlen);
    if (ret < 0)
        om_req_free(r);
    return ret;
}

int om_req_peek_id(const void *buf, size_t len, const om_proto_limits *lim, uint64_t *id)
{
    msgpack_unpacked u;
    int ret = om_proto_unpack(&u, buf, len, lim, NULL, 0);
    if (ret == 0) {
        const msgpack_object *o = om_map_get(&u.data, "id");
        ret = !o ? OM_ENOENT : o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ? OM_EFORMAT : 0;
        if (ret == 0)
            *id = o->via.u64;
    }
    msgpack_unpacked_destroy(&u);
    return ret;
}

int om_req_arg_str(const om_req *r, const char *key, const char **s, size_t *len, char *err, size_t errlen)
{
    return om_map_str(&r->args, "args", key, s, len, err, errlen);
}

int om_req_arg_u64(const om_req *r, const char *key, uint64_t *v, char *err, size_t errlen)
{
    return om_map_u64(&r->args, "args", key, v, err, errlen);
}

int om_req_arg_i64(const om_req *r, const char *key, int64_t *v, char *err, size_t errlen)
{
    return om_map_i64(&r->args, "args", key, v, err, errlen);
}

int om_req_arg_f64(const om_req *r, const char *key, double *v, char *err, size_t errlen)
{
    return om_map_f64(&r->args, "args", key, v, err, errlen);
}

int om_req_arg_bool(const om_req *r, const char *key, bool *v, char *err, size_t errlen)
{
    return om_map_bool(&r->args, "args", key, v, err, errlen);
}

int om_req_arg_map(const om_req *r, const char *key, const msgpack_object **map, char *err, size_t errlen)
{
    return om_map_map(&r->args, "args", key, map, err, errlen);
}

int om_req_arg_frame(const om_req *r, const char *key, om_frame *f, char *err, size_t errlen)
{
    const msgpack_object *o;
    int ret = lookup(&r->args, "args", key, &o, err, errlen);
    if (ret < 0)
        return ret;
    return frame_ref(o, "args", key, r->frames, r->n_frames + 1, f, err, errlen);
}

int om_req_arg_tensor(const om_req *r, const char *key, om_tensor_view *t, char *err, size_t errlen)
{
    return om_map_tensor(&r->args, "args", key, r->frames, r->n_frames + 1, t, err, errlen);
}

int om_req_arg_strcpy(const om_req *r, const char *key, char *dst, size_t dstlen, char *err, size_t errlen)
{
    const char *s;
    size_t len;
    int ret = om_req_arg_str(r, key, &s, &len, err, errlen);
    if (ret < 0)
        return ret;
    if (len >= dstlen)
        return om_proto_fail(err, errlen, OM_ERANGE, "args.%s: %zu bytes (limit %zu)", key, len,
                             dstlen ? dstlen - 1 : 0);
    if (memchr(s, 0, len))
        return om_proto_fail(err, errlen, OM_EFORMAT, "args.%s: contains a NUL byte", key);
    memcpy(dst, s, len);
    dst[len] = 0;
    return 0;
}
