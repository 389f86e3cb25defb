/* Uploading GGUF tensors with shape/type checks; one owner for all weight buffers. */
#include "om_weights.h"
#include "om_err.h"
#include "om_type.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void om_wset_init(om_wset *w, om_gpu *gpu, const om_gguf *gguf, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->gpu = gpu;
    w->gguf = gguf;
    w->err = err;
    w->errlen = errlen;
}

void om_wset_free(om_wset *w)
{
    for (int i = 0; i < w->n_bufs; i++)
        om_buf_destroy(w->bufs[i]);
    free(w->bufs);
    w->bufs = NULL;
    w->n_bufs = 0;
}

int om_wset_fail(om_wset *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
    return code;
}

static const char *type_name(int type)
{
    const char *n = om_ggml_type_name(type);
    return n ? n : "unknown";
}

static const om_gguf_tensor *find(om_wset *w, const char *name, const int64_t want[4], int *rc)
{
    const om_gguf_tensor *t = om_gguf_find_tensor(w->gguf, name);
    if (!t) {
        *rc = om_wset_fail(w, OM_EFORMAT, "tensor %s is missing", name);
        return NULL;
    }
    for (int i = 0; i < 4; i++)
        if (t->ne[i] != want[i]) {
            *rc = om_wset_fail(w, OM_EFORMAT, "tensor %s has shape [%lld, %lld, %lld, %lld], expected "
                               "[%lld, %lld, %lld, %lld]", name, (long long)t->ne[0], (long long)t->ne[1],
                               (long long)t->ne[2], (long long)t->ne[3], (long long)want[0],
                               (long long)want[1], (long long)want[2], (long long)want[3]);
            return NULL;
        }
    *rc = 0;
    return t;
}

static int upload(om_wset *w, const char *name, const void *data, uint64_t n, om_buf **out)
{
    om_buf **nb = realloc(w->bufs, (size_t)(w->n_bufs + 1) * sizeof *nb);
    if (!nb)
        return om_wset_fail(w, OM_ENOMEM, "out of memory");
    w->bufs = nb;
    int rc = om_buf_create(w->gpu, n, OM_BUF_DEVICE, out);
    if (rc)
        return om_wset_fail(w, rc, "tensor %s (%llu bytes): %s", name, (unsigned long long)n,
                            om_gpu_last_error(w->gpu));
    w->bufs[w->n_bufs++] = *out;
    if ((rc = om_buf_write(*out, 0, data, n)))
        return om_wset_fail(w, rc, "uploading %s: %s", name, om_gpu_last_error(w->gpu));
    w->bytes += n;
    return 0;
}

int om_wset_matrix(om_wset *w, const char *name, int64_t ne0, int64_t ne1, om_tensor *out)
{
    const int64_t want[4] = { ne0, ne1, 1, 1 };
    int rc;
    const om_gguf_tensor *t = find(w, name, want, &rc);
    if (!t)
        return rc;
    if (t->type != OM_TYPE_F32 && t->type != OM_TYPE_F16 && t->type != OM_TYPE_Q8_0 && t->type != OM_TYPE_Q4_0)
        return om_wset_fail(w, OM_EUNSUPPORTED, "tensor %s has type %s; matrices may be f32, f16, q8_0 or q4_0",
                            name, type_name(t->type));
    om_buf *b;
    if ((rc = upload(w, name, t->data, t->nbytes, &b)))
        return rc;
    *out = om_tensor_make(b, 0, t->type, ne0, ne1, 1, 1);
    return 0;
}

int om_wset_conv(om_wset *w, const char *name, const int64_t ne[4], om_tensor *out)
{
    int rc;
    const om_gguf_tensor *t = find(w, name, ne, &rc);
    if (!t)
        return rc;
    if (t->type != OM_TYPE_F32 && t->type != OM_TYPE_F16)
        return om_wset_fail(w, OM_EUNSUPPORTED, "tensor %s has type %s; conv kernels may be f32 or f16",
                            name, type_name(t->type));
    om_buf *b;
    if ((rc = upload(w, name, t->data, t->nbytes, &b)))
        return rc;
    *out = om_tensor_make(b, 0, t->type, ne[0], ne[1], ne[2], ne[3]);
    return 0;
}

int om_wset_f32(om_wset *w, const char *name, int64_t ne0, int64_t ne1, int optional, om_tensor *out)
{
    memset(out, 0, sizeof *out);
    if (optional && !om_gguf_find_tensor(w->gguf, name))
        return OM_ENOENT;
    const int64_t want[4] = { ne0, ne1, 1, 1 };
    int rc;
    const om_gguf_tensor *t = find(w, name, want, &rc);
    if (!t)
        return rc;
    if (!om_type_name(t->type) || t->type == OM_TYPE_I32)
        return om_wset_fail(w, OM_EUNSUPPORTED, "tensor %s has type %s; expected f32, f16, q8_0 or q4_0",
                            name, type_name(t->type));
    int64_t n = ne0 * ne1;
    float *f = malloc((size_t)n * sizeof *f);
    if (!f)
        return om_wset_fail(w, OM_ENOMEM, "out of memory");
    if ((rc = om_dequantize(t->type, t->data, f, n)) < 0) {
        free(f);
        return om_wset_fail(w, rc, "tensor %s: cannot convert from %s", name, type_name(t->type));
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(f[i])) {
            free(f);
            return om_wset_fail(w, OM_EFORMAT, "tensor %s holds a non-finite value at %lld", name, (long long)i);
        }
    om_buf *b;
    rc = upload(w, name, f, (uint64_t)n * sizeof *f, &b);
    free(f);
    if (rc)
        return rc;
    *out = om_tensor_make(b, 0, OM_TYPE_F32, ne0, ne1, 1, 1);
    return 0;
}

int om_wset_key_u32(om_wset *w, const char *key, uint32_t lo, uint32_t hi, int *v)
{
    uint32_t u;
    int rc = om_gguf_get_u32(w->gguf, key, &u);
    if (rc)
        return om_wset_fail(w, OM_EFORMAT, "metadata %s is %s", key, rc == OM_ENOENT ? "missing" : "not an integer");
    if (u < lo || u > hi)
        return om_wset_fail(w, OM_EFORMAT, "metadata %s = %u is outside [%u, %u]", key, u, lo, hi);
    *v = (int)u;
    return 0;
}

int om_wset_key_u32_opt(om_wset *w, const char *key, uint32_t lo, uint32_t hi, int *v)
{
    if (!om_gguf_find_kv(w->gguf, key))
        return 0;
    return om_wset_key_u32(w, key, lo, hi, v);
}

int om_wset_key_f32_opt(om_wset *w, const char *key, float lo, float hi, float *v)
{
    if (!om_gguf_find_kv(w->gguf, key))
        return 0;
    float f;
    if (om_gguf_get_f32(w->gguf, key, &f))
        return om_wset_fail(w, OM_EFORMAT, "metadata %s is not an f32", key);
    if (!(f >= lo && f <= hi))
        return om_wset_fail(w, OM_EFORMAT, "metadata %s = %g is outside [%g, %g]", key, (double)f, (double)lo,
                            (double)hi);
    *v = f;
    return 0;
}

int om_wset_key_is(om_wset *w, const char *key, const char *want)
{
    om_gguf_str s;
    if (om_gguf_get_str(w->gguf, key, &s))
        return 0;
    return s.n == strlen(want) && !memcmp(s.p, want, s.n);
}

int om_fwd_io_create(om_wset *w, uint64_t arena_bytes, uint64_t up_bytes, uint64_t down_bytes, om_fwd_io *io)
{
    int rc;
    if ((rc = om_arena_create(w->gpu, arena_bytes, &io->arena)) ||
        (rc = om_buf_create(w->gpu, up_bytes, OM_BUF_UPLOAD, &io->upload)) ||
        (rc = om_buf_create(w->gpu, down_bytes, OM_BUF_DOWNLOAD, &io->download)))
        return om_wset_fail(w, rc, "activations (%llu bytes) and staging (%llu + %llu bytes): %s",
                            (unsigned long long)arena_bytes, (unsigned long long)up_bytes,
                            (unsigned long long)down_bytes, om_gpu_last_error(w->gpu));
    return 0;
}

void om_fwd_io_free(om_fwd_io *io)
{
    om_buf_destroy(io->upload);
    om_buf_destroy(io->download);
    om_arena_destroy(io->arena);
    *io = (om_fwd_io){ 0 };
}
