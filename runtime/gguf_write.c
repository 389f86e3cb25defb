/* gguf_write.c: the GGUF writer (om_gguf.h), version 3. Values are serialized when set;
 * tensors are laid out at write time, each at an aligned offset in the data section,
 * and the file is streamed (header, kvs, tensor infos, padding, data) or built in memory. */
#include "om_gguf.h"
#include "om_err.h"
#include "om_type.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGML_MAX_NAME 64            /* llama.cpp rejects longer tensor names */

static const uint8_t scalar_size[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

typedef struct wkv {
    char *key;
    int type;
    uint8_t *val;                   /* the encoded value, as it follows the type field */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    int type, n_dims;
    int64_t ne[4];
    uint64_t nbytes, offset;
    void *data;
} wtensor;

struct om_gguf_writer {
    uint32_t alignment;
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

/* Where the bytes go: a FILE, or a buffer sized beforehand. */
typedef struct sink {
    FILE *f;
    uint8_t *buf;
    size_t len;
    int failed;
} sink;

static void put(sink *s, const void *p, size_t n)
{
    if (s->f) {
        if (n && fwrite(p, 1, n, s->f) != n)
            s->failed = 1;
    } else if (n) {
        memcpy(s->buf + s->len, p, n);
    }
    s->len += n;
}

static void put_zeros(sink *s, size_t n)
{
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        put(s, zeros, k);
        n -= k;
    }
}

static void put_u32(sink *s, uint32_t v) { put(s, &v, 4); }
static void put_u64(sink *s, uint64_t v) { put(s, &v, 8); }

static void put_str(sink *s, const char *p)
{
    size_t n = strlen(p);
    put_u64(s, n);
    put(s, p, n);
}

int om_gguf_writer_open(om_gguf_writer **out, uint32_t alignment)
{
    *out = NULL;
    if (!alignment)
        alignment = GGUF_DEFAULT_ALIGNMENT;
    if (alignment & (alignment - 1))
        return OM_EINVAL;
    om_gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return OM_ENOMEM;
    w->alignment = alignment;
    /* Readers assume 32 when the key is absent; any other value must be stated. */
    if (alignment != GGUF_DEFAULT_ALIGNMENT) {
        int rc = om_gguf_set_u32(w, "general.alignment", alignment);
        if (rc) {
            om_gguf_writer_free(w);
            return rc;
        }
    }
    *out = w;
    return 0;
}

void om_gguf_writer_free(om_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* Appends key with its encoded value; takes ownership of val (freed on failure). */
static int add_kv(om_gguf_writer *w, const char *key, int type, uint8_t *val, size_t len)
{
    int rc = OM_EINVAL;
    if (!key || !key[0])
        goto fail;
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key))
            goto fail;
    rc = OM_ENOMEM;
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv)
            goto fail;
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k)
        goto fail;
    w->kv[w->n_kv++] = (wkv){ k, type, val, len };
    return 0;
fail:
    free(val);
    return rc;
}

int om_gguf_set_val(om_gguf_writer *w, const char *key, int type, const void *v)
{
    if (type < 0 || type > OM_GGUF_F64 || !scalar_size[type])
        return OM_EINVAL;
    uint8_t *val = malloc(scalar_size[type]);
    if (!val)
        return OM_ENOMEM;
    memcpy(val, v, scalar_size[type]);
    return add_kv(w, key, type, val, scalar_size[type]);
}

int om_gguf_set_u32(om_gguf_writer *w, const char *key, uint32_t v)
{
    return om_gguf_set_val(w, key, OM_GGUF_U32, &v);
}

int om_gguf_set_i32(om_gguf_writer *w, const char *key, int32_t v)
{
    return om_gguf_set_val(w, key, OM_GGUF_I32, &v);
}

int om_gguf_set_u64(om_gguf_writer *w, const char *key, uint64_t v)
{
    return om_gguf_set_val(w, key, OM_GGUF_U64, &v);
}

int om_gguf_set_f32(om_gguf_writer *w, const char *key, float v)
{
    return om_gguf_set_val(w, key, OM_GGUF_F32, &v);
}

int om_gguf_set_bool(om_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return om_gguf_set_val(w, key, OM_GGUF_BOOL, &b);
}

int om_gguf_set_str(om_gguf_writer *w, const char *key, const char *v)
{
    size_t n = strlen(v);
    uint8_t *val = malloc(8 + n);
    if (!val)
        return OM_ENOMEM;
    sink s = { .buf = val };
    put_str(&s, v);
    return add_kv(w, key, OM_GGUF_STRING, val, s.len);
}

int om_gguf_set_arr(om_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n)
{
    if (elem_type < 0 || elem_type > OM_GGUF_F64 || !scalar_size[elem_type])
        return OM_EINVAL;
    if (n > (SIZE_MAX - 12) / scalar_size[elem_type])
        return OM_ERANGE;
    size_t len = 12 + (size_t)n * scalar_size[elem_type];
    uint8_t *val = malloc(len);
    if (!val)
        return OM_ENOMEM;
    sink s = { .buf = val };
    put_u32(&s, (uint32_t)elem_type);
    put_u64(&s, n);
    put(&s, data, (size_t)n * scalar_size[elem_type]);
    return add_kv(w, key, OM_GGUF_ARRAY, val, len);
}

int om_gguf_set_arr_str(om_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    size_t len = 12;
    for (uint64_t i = 0; i < n; i++) {
        size_t k = strlen(v[i]);
        if (k > SIZE_MAX - 8 - len)
            return OM_ERANGE;
        len += 8 + k;
    }
    uint8_t *val = malloc(len);
    if (!val)
        return OM_ENOMEM;
    sink s = { .buf = val };
    put_u32(&s, OM_GGUF_STRING);
    put_u64(&s, n);
    for (uint64_t i = 0; i < n; i++)
        put_str(&s, v[i]);
    return add_kv(w, key, OM_GGUF_ARRAY, val, len);
}

int om_gguf_add_tensor(om_gguf_writer *w, const char *name, int type, int n_dims,
                       const int64_t *ne, const void *data)
{
    size_t nl = name ? strlen(name) : 0;
    if (!nl || nl >= GGML_MAX_NAME || n_dims < 1 || n_dims > 4 || !om_ggml_type_name(type))
        return OM_EINVAL;
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return OM_EINVAL;
    wtensor t = { .type = type, .n_dims = n_dims, .ne = { 1, 1, 1, 1 } };
    uint64_t rows = 1;
    for (int j = 0; j < n_dims; j++) {
        if (ne[j] <= 0)
            return OM_EINVAL;
        t.ne[j] = ne[j];
        if (j && (uint64_t)ne[j] > UINT64_MAX / rows)
            return OM_ERANGE;
        rows *= j ? (uint64_t)ne[j] : 1;
    }
    uint64_t row = om_ggml_row_bytes(type, ne[0]);
    if (!row)
        return OM_EINVAL;
    if (rows > SIZE_MAX / row)
        return OM_ERANGE;
    t.nbytes = row * rows;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return OM_ENOMEM;
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    t.data = malloc((size_t)t.nbytes);
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        return OM_ENOMEM;
    }
    memcpy(t.data, data, (size_t)t.nbytes);
    w->t[w->n_t++] = t;
    return 0;
}

static uint64_t pad_to(uint64_t off, uint64_t align)
{
    return (align - off % align) % align;
}

/* Lays tensors out and returns the file size. */
static uint64_t layout(om_gguf_writer *w)
{
    uint64_t off = 24;
    for (size_t i = 0; i < w->n_kv; i++)
        off += 8 + strlen(w->kv[i].key) + 4 + w->kv[i].len;
    for (size_t i = 0; i < w->n_t; i++)
        off += 8 + strlen(w->t[i].name) + 4 + 8 * (uint64_t)w->t[i].n_dims + 4 + 8;
    off += pad_to(off, w->alignment);
    uint64_t data = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = data;
        data += w->t[i].nbytes + pad_to(w->t[i].nbytes, w->alignment);
    }
    return off + data;
}

static void emit(const om_gguf_writer *w, sink *s)
{
    put(s, "GGUF", 4);
    put_u32(s, 3);
    put_u64(s, w->n_t);
    put_u64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(s, w->kv[i].key);
        put_u32(s, (uint32_t)w->kv[i].type);
        put(s, w->kv[i].val, w->kv[i].len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(s, t->name);
        put_u32(s, (uint32_t)t->n_dims);
        for (int j = 0; j < t->n_dims; j++)
            put_u64(s, (uint64_t)t->ne[j]);
        put_u32(s, (uint32_t)t->type);
        put_u64(s, t->offset);
    }
    put_zeros(s, pad_to(s->len, w->alignment));
    for (size_t i = 0; i < w->n_t; i++) {
        put(s, w->t[i].data, w->t[i].nbytes);
        put_zeros(s, pad_to(w->t[i].nbytes, w->alignment));
    }
}

int om_gguf_write_mem(om_gguf_writer *w, void **buf, size_t *size)
{
    uint64_t n = layout(w);
    sink s = { .buf = malloc(n) };
    if (!s.buf)
        return OM_ENOMEM;
    emit(w, &s);
    *buf = s.buf;
    *size = s.len;
    return 0;
}

int om_gguf_write_file(om_gguf_writer *w, const char *path)
{
    layout(w);
    sink s = { .f = fopen(path, "wb") };
    if (!s.f)
        return OM_EIO;
    emit(w, &s);
    if (fclose(s.f))
        s.failed = 1;
    if (s.failed) {
        remove(path);
        return OM_EIO;
    }
    return 0;
}
