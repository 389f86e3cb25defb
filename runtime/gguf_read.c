/* gguf_read.c: the GGUF reader (om_gguf.h). The whole file is one read-only mapping;
 * parsing walks it with a cursor that checks every length against the bytes left
 * before using it, so allocations are bounded by the file size, not by counts. */
#include "om_gguf.h"
#include "om_err.h"
#include "om_type.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32
/* Smallest encodings: a kv is key length + type + a 1-byte value; a tensor info is
 * name length + n_dims + one dim + type + offset. */
#define MIN_KV_BYTES     13
#define MIN_TENSOR_BYTES 32

/* Open-addressing table of indices into kv[] or tensors[] (by key/name), for O(1)
 * lookup and duplicate detection. slot holds index + 1, 0 = empty. */
typedef struct name_map {
    int64_t *slot;
    uint64_t mask;
} name_map;

struct om_gguf {
    const uint8_t *base;
    uint64_t size;
    void *map;                      /* owned mapping (om_gguf_open), NULL for open_mem */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_off;
    int64_t n_kv, n_tensors;
    om_gguf_kv *kv;                 /* kv[i].str_off owned here too */
    om_gguf_tensor *tensors;
    name_map kv_map, tensor_map;
};

typedef struct reader {
    const uint8_t *p;
    uint64_t size, off;
    om_gguf_limits lim;
    char ctx[112];                  /* what is being parsed: "kv[3] 'general.name'" */
    char *err;
    size_t errlen;
} reader;

static const uint8_t scalar_size[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
static const char *const vtype_names[13] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *om_gguf_vtype_name(int vtype)
{
    return vtype >= 0 && vtype < 13 ? vtype_names[vtype] : NULL;
}

static int fail(reader *r, int code, uint64_t at, const char *fmt, ...)
{
    if (!r->errlen)
        return code;
    size_t n = (size_t)snprintf(r->err, r->errlen, "gguf: %s%s", r->ctx, r->ctx[0] ? ": " : "");
    if (n < r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        n += (size_t)vsnprintf(r->err + n, r->errlen - n, fmt, ap);
        va_end(ap);
    }
    if (n < r->errlen)
        snprintf(r->err + n, r->errlen - n, " (at offset %" PRIu64 ")", at);
    return code;
}

/* Copies a name from the file into the error context, printable bytes only: a hostile
 * key must not put escape sequences on the user's terminal. */
static void set_ctx(reader *r, const char *what, int64_t i, const om_gguf_str *name)
{
    size_t k = (size_t)snprintf(r->ctx, sizeof r->ctx, "%s[%" PRId64 "]", what, i);
    if (!name)
        return;
    r->ctx[k++] = ' ';
    r->ctx[k++] = '\'';
    for (uint64_t j = 0; j < name->n && j < 64; j++)
        r->ctx[k++] = name->p[j] >= 0x20 && name->p[j] < 0x7f ? name->p[j] : '?';
    if (name->n > 64)
        for (int j = 0; j < 3; j++)
            r->ctx[k++] = '.';
    r->ctx[k++] = '\'';
    r->ctx[k] = 0;
}

static uint64_t left(const reader *r)
{
    return r->size - r->off;
}

static int need(reader *r, uint64_t n, const char *field)
{
    if (n > left(r))
        return fail(r, OM_EFORMAT, r->off, "%s needs %" PRIu64 " bytes but only %" PRIu64
                    " are left (truncated file?)", field, n, left(r));
    return 0;
}

static int rd_u32(reader *r, uint32_t *v, const char *field)
{
    int rc = need(r, 4, field);
    if (rc)
        return rc;
    memcpy(v, r->p + r->off, 4);
    r->off += 4;
    return 0;
}

static int rd_u64(reader *r, uint64_t *v, const char *field)
{
    int rc = need(r, 8, field);
    if (rc)
        return rc;
    memcpy(v, r->p + r->off, 8);
    r->off += 8;
    return 0;
}

static int rd_str(reader *r, om_gguf_str *s, const char *field)
{
    uint64_t at = r->off, n;
    int rc = rd_u64(r, &n, field);
    if (rc)
        return rc;
    if (n > r->lim.max_string)
        return fail(r, OM_ERANGE, at, "%s length %" PRIu64 " exceeds the limit of %" PRIu64,
                    field, n, r->lim.max_string);
    if (n > left(r))
        return fail(r, OM_EFORMAT, at, "%s length %" PRIu64 " exceeds the %" PRIu64
                    " bytes left", field, n, left(r));
    s->p = (const char *)r->p + r->off;
    s->n = n;
    r->off += n;
    return 0;
}

static uint64_t hash_str(const char *p, uint64_t n)
{
    uint64_t h = 1469598103934665603ull;    /* FNV-1a */
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static const om_gguf_str *name_of(const void *items, size_t stride, int64_t i)
{
    return (const om_gguf_str *)((const char *)items + stride * (size_t)i);
}

static int map_init(name_map *m, int64_t n)
{
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n)
        cap <<= 1;
    m->slot = calloc(cap, sizeof *m->slot);
    m->mask = cap - 1;
    return m->slot ? 0 : OM_ENOMEM;
}

/* Index of the item named (p, n), or -1. Items hold their name as first member. */
static int64_t map_find(const name_map *m, const void *items, size_t stride, const char *p, uint64_t n)
{
    if (!m->slot)
        return -1;
    for (uint64_t h = hash_str(p, n) & m->mask;; h = (h + 1) & m->mask) {
        int64_t i = m->slot[h] - 1;
        if (i < 0)
            return -1;
        const om_gguf_str *s = name_of(items, stride, i);
        if (s->n == n && !memcmp(s->p, p, n))
            return i;
    }
}

/* Adds item i; returns the index of an earlier item of the same name, or -1. */
static int64_t map_add(name_map *m, const void *items, size_t stride, int64_t i)
{
    const om_gguf_str *s = name_of(items, stride, i);
    uint64_t h = hash_str(s->p, s->n) & m->mask;
    for (; m->slot[h]; h = (h + 1) & m->mask) {
        const om_gguf_str *o = name_of(items, stride, m->slot[h] - 1);
        if (o->n == s->n && !memcmp(o->p, s->p, s->n))
            return m->slot[h] - 1;
    }
    m->slot[h] = i + 1;
    return -1;
}

static int read_array(reader *r, om_gguf_kv *kv)
{
    uint64_t at = r->off;
    uint32_t t;
    uint64_t n;
    int rc = rd_u32(r, &t, "array element type");
    if (rc)
        return rc;
    if (t == OM_GGUF_ARRAY)
        return fail(r, OM_EUNSUPPORTED, at, "arrays of arrays are not supported");
    if (t > OM_GGUF_F64)
        return fail(r, OM_EFORMAT, at, "unknown array element type %" PRIu32 " (valid: 0..12)", t);
    at = r->off;
    if ((rc = rd_u64(r, &n, "array count")))
        return rc;
    if (n > r->lim.max_array)
        return fail(r, OM_ERANGE, at, "array count %" PRIu64 " exceeds the limit of %" PRIu64,
                    n, r->lim.max_array);
    kv->arr_type = (int)t;
    kv->arr_n = n;
    kv->data = r->p + r->off;
    if (t != OM_GGUF_STRING) {
        if (n > left(r) / scalar_size[t])
            return fail(r, OM_EFORMAT, at, "array of %" PRIu64 " %s needs more than the %" PRIu64
                        " bytes left", n, vtype_names[t], left(r));
        r->off += n * scalar_size[t];
        return 0;
    }
    if (n > left(r) / 8)
        return fail(r, OM_EFORMAT, at, "array of %" PRIu64 " strings needs more than the %" PRIu64
                    " bytes left", n, left(r));
    uint64_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return fail(r, OM_ENOMEM, at, "out of memory for the index of %" PRIu64 " strings", n);
    kv->str_off = idx;
    const uint64_t first = r->off;
    for (uint64_t i = 0; i < n; i++) {
        om_gguf_str s;
        idx[i] = r->off - first;
        if ((rc = rd_str(r, &s, "array string")))
            return rc;
    }
    return 0;
}

static int read_kv(reader *r, om_gguf_kv *kv)
{
    uint64_t at = r->off;
    uint32_t t;
    int rc = rd_u32(r, &t, "value type");
    if (rc)
        return rc;
    if (t > OM_GGUF_F64)
        return fail(r, OM_EFORMAT, at, "unknown value type %" PRIu32 " (valid: 0..12)", t);
    kv->type = (int)t;
    if (t == OM_GGUF_ARRAY)
        return read_array(r, kv);
    kv->data = r->p + r->off;
    if (t == OM_GGUF_STRING) {
        om_gguf_str s;
        return rd_str(r, &s, "string value");
    }
    if ((rc = need(r, scalar_size[t], "value")))
        return rc;
    r->off += scalar_size[t];
    return 0;
}

static int read_kvs(reader *r, om_gguf *g)
{
    for (int64_t i = 0; i < g->n_kv; i++) {
        om_gguf_kv *kv = &g->kv[i];
        set_ctx(r, "kv", i, NULL);
        uint64_t at = r->off;
        int rc = rd_str(r, &kv->key, "key");
        if (rc)
            return rc;
        set_ctx(r, "kv", i, &kv->key);
        if ((rc = read_kv(r, kv)))
            return rc;
        int64_t dup = map_add(&g->kv_map, g->kv, sizeof *g->kv, i);
        if (dup >= 0)
            return fail(r, OM_EFORMAT, at, "duplicate key (first at kv[%" PRId64 "])", dup);
    }
    r->ctx[0] = 0;
    return 0;
}

static int read_alignment(reader *r, om_gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = map_find(&g->kv_map, g->kv, sizeof *g->kv, "general.alignment", 17);
    if (i < 0)
        return 0;
    const om_gguf_kv *kv = &g->kv[i];
    uint64_t at = (uint64_t)(kv->data - g->base);
    set_ctx(r, "kv", i, &kv->key);
    if (kv->type != OM_GGUF_U32)
        return fail(r, OM_EFORMAT, at, "must be u32, not %s", vtype_names[kv->type]);
    uint32_t a;
    memcpy(&a, kv->data, 4);
    if (a == 0 || (a & (a - 1)))
        return fail(r, OM_EFORMAT, at, "alignment %" PRIu32 " is not a nonzero power of two", a);
    g->alignment = a;
    r->ctx[0] = 0;
    return 0;
}

static int unknown_type(reader *r, uint64_t at, uint32_t type)
{
    char known[320] = "", ours[96] = "";
    for (int t = 0; t < OM_TYPE_COUNT_; t++) {
        if (om_ggml_type_name(t))
            snprintf(known + strlen(known), sizeof known - strlen(known), " %s", om_ggml_type_name(t));
        if (om_type_name(t))
            snprintf(ours + strlen(ours), sizeof ours - strlen(ours), " %s", om_type_name(t));
    }
    return fail(r, OM_EFORMAT, at, "unknown ggml type %" PRIu32 "; known:%s (omnid computes:%s)",
                type, known, ours);
}

static int read_tensor(reader *r, om_gguf *g, om_gguf_tensor *t)
{
    uint32_t n_dims, type;
    uint64_t at = r->off;
    int rc = rd_u32(r, &n_dims, "n_dims");
    if (rc)
        return rc;
    if (n_dims < 1 || n_dims > 4)
        return fail(r, OM_EFORMAT, at, "n_dims %" PRIu32 " (must be 1..4)", n_dims);
    t->n_dims = (int)n_dims;
    int64_t nel = 1;
    for (int j = 0; j < 4; j++) {
        uint64_t ne = 1;
        at = r->off;
        if (j < (int)n_dims && (rc = rd_u64(r, &ne, "dim")))
            return rc;
        if ((int64_t)ne <= 0)
            return fail(r, OM_EFORMAT, at, "ne[%d] = %" PRId64 " (dims must be > 0)", j, (int64_t)ne);
        if ((int64_t)ne > INT64_MAX / nel)
            return fail(r, OM_EFORMAT, at, "element count overflows int64 at ne[%d] = %" PRId64,
                        j, (int64_t)ne);
        nel *= (int64_t)ne;
        t->ne[j] = (int64_t)ne;
    }
    at = r->off;
    if ((rc = rd_u32(r, &type, "type")))
        return rc;
    if (type >= OM_TYPE_COUNT_ || !om_ggml_type_name((int)type))
        return unknown_type(r, at, type);
    t->type = (int)type;
    uint64_t row = om_ggml_row_bytes(t->type, t->ne[0]);
    if (!row)
        return fail(r, OM_EFORMAT, at, "ne[0] = %" PRId64 " is not a whole number of %s blocks,"
                    " or its row size overflows", t->ne[0], om_ggml_type_name(t->type));
    uint64_t rows = (uint64_t)(nel / t->ne[0]);
    if (rows > UINT64_MAX / row)
        return fail(r, OM_EFORMAT, at, "tensor size overflows");
    t->nbytes = row * rows;
    at = r->off;
    if ((rc = rd_u64(r, &t->offset, "offset")))
        return rc;
    if (t->offset % g->alignment)
        return fail(r, OM_EFORMAT, at, "offset %" PRIu64 " is not a multiple of the alignment %"
                    PRIu64, t->offset, g->alignment);
    return 0;
}

static int read_tensors(reader *r, om_gguf *g)
{
    for (int64_t i = 0; i < g->n_tensors; i++) {
        om_gguf_tensor *t = &g->tensors[i];
        set_ctx(r, "tensor", i, NULL);
        uint64_t at = r->off;
        int rc = rd_str(r, &t->name, "name");
        if (rc)
            return rc;
        set_ctx(r, "tensor", i, &t->name);
        if ((rc = read_tensor(r, g, t)))
            return rc;
        int64_t dup = map_add(&g->tensor_map, g->tensors, sizeof *g->tensors, i);
        if (dup >= 0)
            return fail(r, OM_EFORMAT, at, "duplicate tensor name (first at tensor[%" PRId64 "])", dup);
    }
    r->ctx[0] = 0;
    uint64_t pad = (g->alignment - r->off % g->alignment) % g->alignment;
    if (!g->n_tensors) {
        /* llama.cpp's kv-only files (vocabularies) end without the padding. */
        g->data_off = pad > left(r) ? r->size : r->off + pad;
        return 0;
    }
    g->data_off = r->off + pad;
    if (pad > left(r))
        return fail(r, OM_EFORMAT, r->off, "data section (aligned to %" PRIu64 ") starts past the"
                    " end of the file (%" PRIu64 " bytes)", g->alignment, r->size);
    uint64_t data_size = r->size - g->data_off;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        om_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            set_ctx(r, "tensor", i, &t->name);
            return fail(r, OM_EFORMAT, g->data_off, "data at offset %" PRIu64 " + %" PRIu64
                        " bytes runs past the end of the data section (%" PRIu64 " bytes)",
                        t->offset, t->nbytes, data_size);
        }
        t->data = g->base + g->data_off + t->offset;
    }
    return 0;
}

static int read_header(reader *r, om_gguf *g)
{
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    int rc = need(r, 4, "magic");
    if (rc)
        return rc;
    memcpy(&magic, r->p, 4);
    if (memcmp(r->p, "GGUF", 4))
        return fail(r, OM_EFORMAT, 0, "bad magic 0x%08" PRIx32 " (expected \"GGUF\")", magic);
    r->off = 4;
    if ((rc = rd_u32(r, &g->version, "version")))
        return rc;
    if (g->version == 1)
        return fail(r, OM_EUNSUPPORTED, 4, "version 1 is not supported (only 2 and 3)");
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return fail(r, OM_EUNSUPPORTED, 4, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return fail(r, OM_EUNSUPPORTED, 4, "version %" PRIu32 " is not supported (only 2 and 3)",
                    g->version);
    if ((rc = rd_u64(r, &n_tensors, "n_tensors")) || (rc = rd_u64(r, &n_kv, "n_kv")))
        return rc;
    if (n_tensors > r->lim.max_tensors)
        return fail(r, OM_ERANGE, 8, "n_tensors %" PRIu64 " exceeds the limit of %" PRIu64,
                    n_tensors, r->lim.max_tensors);
    if (n_kv > r->lim.max_kv)
        return fail(r, OM_ERANGE, 16, "n_kv %" PRIu64 " exceeds the limit of %" PRIu64,
                    n_kv, r->lim.max_kv);
    if (n_kv > left(r) / MIN_KV_BYTES)
        return fail(r, OM_EFORMAT, 16, "n_kv %" PRIu64 " cannot fit in the %" PRIu64 " bytes left",
                    n_kv, left(r));
    if (n_tensors > (left(r) - n_kv * MIN_KV_BYTES) / MIN_TENSOR_BYTES)
        return fail(r, OM_EFORMAT, 8, "n_tensors %" PRIu64 " cannot fit in the %" PRIu64
                    " bytes left", n_tensors, left(r));
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;
    return 0;
}

static int parse(om_gguf *g, const om_gguf_limits *lim, char *err, size_t errlen)
{
    reader r = { .p = g->base, .size = g->size, .err = err, .errlen = errlen };
    r.lim.max_kv = lim && lim->max_kv ? lim->max_kv : 65536;
    r.lim.max_tensors = lim && lim->max_tensors ? lim->max_tensors : 65536;
    r.lim.max_string = lim && lim->max_string ? lim->max_string : 16u << 20;
    r.lim.max_array = lim && lim->max_array ? lim->max_array : 16u << 20;
    int rc = read_header(&r, g);
    if (rc)
        return rc;
    g->kv = calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors || map_init(&g->kv_map, g->n_kv) || map_init(&g->tensor_map, g->n_tensors))
        return fail(&r, OM_ENOMEM, r.off, "out of memory for %" PRId64 " kvs and %" PRId64 " tensors",
                    g->n_kv, g->n_tensors);
    if ((rc = read_kvs(&r, g)) || (rc = read_alignment(&r, g)) || (rc = read_tensors(&r, g)))
        return rc;
    return 0;
}

int om_gguf_open_mem(om_gguf **out, const void *buf, size_t size, const om_gguf_limits *lim,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = 0;
    om_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "gguf: out of memory");
        return OM_ENOMEM;
    }
    g->base = buf;
    g->size = size;
    int rc = parse(g, lim, err, errlen);
    if (rc) {
        om_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int om_gguf_open(om_gguf **out, const char *path, const om_gguf_limits *lim, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return errno == ENOENT ? OM_ENOENT : OM_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size == 0) {
        snprintf(err, errlen, "%s: not a regular, nonempty file", path);
        close(fd);
        return OM_EIO;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
        return OM_EIO;
    }
    char msg[512];
    int rc = om_gguf_open_mem(out, map, (size_t)st.st_size, lim, msg, sizeof msg);
    if (rc) {
        munmap(map, (size_t)st.st_size);
        snprintf(err, errlen, "%s: %s", path, msg);
        return rc;
    }
    (*out)->map = map;
    return 0;
}

void om_gguf_close(om_gguf *g)
{
    if (!g)
        return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++)
            free((void *)g->kv[i].str_off);
    free(g->kv);
    free(g->tensors);
    free(g->kv_map.slot);
    free(g->tensor_map.slot);
    if (g->map)
        munmap(g->map, (size_t)g->size);
    free(g);
}

uint32_t om_gguf_version(const om_gguf *g)
{
    return g->version;
}

uint64_t om_gguf_alignment(const om_gguf *g)
{
    return g->alignment;
}

uint64_t om_gguf_data_offset(const om_gguf *g)
{
    return g->data_off;
}

int64_t om_gguf_n_kv(const om_gguf *g)
{
    return g->n_kv;
}

int64_t om_gguf_n_tensors(const om_gguf *g)
{
    return g->n_tensors;
}


const om_gguf_kv *om_gguf_kv_at(const om_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const om_gguf_tensor *om_gguf_tensor_at(const om_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const om_gguf_kv *om_gguf_find_kv(const om_gguf *g, const char *key)
{
    int64_t i = map_find(&g->kv_map, g->kv, sizeof *g->kv, key, strlen(key));
    return i < 0 ? NULL : &g->kv[i];
}

const om_gguf_tensor *om_gguf_find_tensor(const om_gguf *g, const char *name)
{
    int64_t i = map_find(&g->tensor_map, g->tensors, sizeof *g->tensors, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i];
}

/* Integer value of element i of a scalar-typed value at p; OM_EFORMAT if not an integer. */
static int int_at(int type, const uint8_t *p, uint64_t i, int64_t *sv, uint64_t *uv, int *is_unsigned)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            uint64_t u64; int64_t i64; } v;
    if (type < 0 || type > OM_GGUF_F64 || !scalar_size[type])
        return OM_EFORMAT;
    memcpy(&v, p + i * scalar_size[type], scalar_size[type]);
    *is_unsigned = 0;
    switch (type) {
    case OM_GGUF_U8:  *sv = v.u8;  return 0;
    case OM_GGUF_I8:  *sv = v.i8;  return 0;
    case OM_GGUF_U16: *sv = v.u16; return 0;
    case OM_GGUF_I16: *sv = v.i16; return 0;
    case OM_GGUF_U32: *sv = v.u32; return 0;
    case OM_GGUF_I32: *sv = v.i32; return 0;
    case OM_GGUF_I64: *sv = v.i64; return 0;
    case OM_GGUF_U64: *uv = v.u64; *is_unsigned = 1; return 0;
    }
    return OM_EFORMAT;
}

/* Element i as an integer in [lo, hi]: OM_EFORMAT for a non-integer type, OM_ERANGE when
 * the value does not fit. */
static int int_in(int type, const uint8_t *p, uint64_t i, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t sv = 0;
    uint64_t uv = 0;
    int is_u, rc = int_at(type, p, i, &sv, &uv, &is_u);
    if (rc)
        return rc;
    if (is_u) {
        if (uv > (uint64_t)hi)
            return OM_ERANGE;
        sv = (int64_t)uv;
    }
    if (sv < lo || sv > hi)
        return OM_ERANGE;
    *out = sv;
    return 0;
}

int om_gguf_get_u32(const om_gguf *g, const char *key, uint32_t *v)
{
    const om_gguf_kv *kv = om_gguf_find_kv(g, key);
    int64_t x;
    if (!kv)
        return OM_ENOENT;
    int rc = int_in(kv->type, kv->data, 0, 0, UINT32_MAX, &x);
    if (!rc)
        *v = (uint32_t)x;
    return rc;
}

int om_gguf_get_i64(const om_gguf *g, const char *key, int64_t *v)
{
    const om_gguf_kv *kv = om_gguf_find_kv(g, key);
    if (!kv)
        return OM_ENOENT;
    return int_in(kv->type, kv->data, 0, INT64_MIN, INT64_MAX, v);
}

int om_gguf_get_f32(const om_gguf *g, const char *key, float *v)
{
    const om_gguf_kv *kv = om_gguf_find_kv(g, key);
    if (!kv)
        return OM_ENOENT;
    if (kv->type == OM_GGUF_F32) {
        memcpy(v, kv->data, 4);
        return 0;
    }
    if (kv->type == OM_GGUF_F64) {
        double d;
        memcpy(&d, kv->data, 8);
        *v = (float)d;
        return 0;
    }
    return OM_EFORMAT;
}

int om_gguf_get_bool(const om_gguf *g, const char *key, int *v)
{
    const om_gguf_kv *kv = om_gguf_find_kv(g, key);
    if (!kv)
        return OM_ENOENT;
    if (kv->type != OM_GGUF_BOOL)
        return OM_EFORMAT;
    *v = kv->data[0] != 0;
    return 0;
}

int om_gguf_get_str(const om_gguf *g, const char *key, om_gguf_str *v)
{
    const om_gguf_kv *kv = om_gguf_find_kv(g, key);
    if (!kv)
        return OM_ENOENT;
    if (kv->type != OM_GGUF_STRING)
        return OM_EFORMAT;
    memcpy(&v->n, kv->data, 8);
    v->p = (const char *)kv->data + 8;
    return 0;
}

int om_gguf_get_arr(const om_gguf *g, const char *key, const om_gguf_kv **kv)
{
    const om_gguf_kv *a = om_gguf_find_kv(g, key);
    if (!a)
        return OM_ENOENT;
    if (a->type != OM_GGUF_ARRAY)
        return OM_EFORMAT;
    *kv = a;
    return 0;
}

int om_gguf_arr_str(const om_gguf_kv *kv, uint64_t i, om_gguf_str *v)
{
    if (kv->type != OM_GGUF_ARRAY || kv->arr_type != OM_GGUF_STRING || !kv->str_off)
        return OM_EFORMAT;
    if (i >= kv->arr_n)
        return OM_ERANGE;
    const uint8_t *p = kv->data + kv->str_off[i];
    memcpy(&v->n, p, 8);
    v->p = (const char *)p + 8;
    return 0;
}

int om_gguf_arr_f32(const om_gguf_kv *kv, uint64_t i, float *v)
{
    if (kv->type != OM_GGUF_ARRAY || kv->arr_type != OM_GGUF_F32)
        return OM_EFORMAT;
    if (i >= kv->arr_n)
        return OM_ERANGE;
    memcpy(v, kv->data + 4 * i, 4);
    return 0;
}

int om_gguf_arr_i32(const om_gguf_kv *kv, uint64_t i, int32_t *v)
{
    int64_t x;
    if (kv->type != OM_GGUF_ARRAY)
        return OM_EFORMAT;
    if (i >= kv->arr_n)
        return OM_ERANGE;
    int rc = int_in(kv->arr_type, kv->data, i, INT32_MIN, INT32_MAX, &x);
    if (!rc)
        *v = (int32_t)x;
    return rc;
}
