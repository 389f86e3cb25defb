/* om_weights.h: model weights from an open GGUF onto the device, shared by the vision
 * encoders, the Q-Formers and the bind heads. Owns every buffer it uploads (one release
 * path: om_wset_free) and the checks on what the file says: each tensor's presence,
 * shape and type and each hyper-parameter's range, with messages naming the tensor or
 * key. Matrices keep their file type (F32, F16, Q8_0, Q4_0: the kernels dequantize);
 * vectors and embeddings become F32 (what norms, adds and copies compute with). */
#ifndef OM_WEIGHTS_H
#define OM_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "om_gguf.h"
#include "om_ops.h"

typedef struct om_wset {
    om_gpu        *gpu;
    const om_gguf *gguf;
    om_buf       **bufs;
    int            n_bufs;
    uint64_t       bytes;          /* uploaded so far */
    char          *err;            /* message buffer of the owning model */
    size_t         errlen;
} om_wset;

void om_wset_init(om_wset *w, om_gpu *gpu, const om_gguf *gguf, char *err, size_t errlen);
void om_wset_free(om_wset *w);
/* Formats the message into w->err and returns code. */
int  om_wset_fail(om_wset *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A matrix {ne0, ne1} (ne0 contiguous) in its file type. */
int om_wset_matrix(om_wset *w, const char *name, int64_t ne0, int64_t ne1, om_tensor *out);
/* A conv kernel {kw, kh, cin, cout}, F32 or F16. */
int om_wset_conv(om_wset *w, const char *name, const int64_t ne[4], om_tensor *out);
/* A tensor of ne0*ne1 values (a file shape of {ne0, ne1}, or of {ne0} when ne1 == 1),
 * converted to F32. optional: OM_ENOENT without a message when absent, out->buf NULL. */
int om_wset_f32(om_wset *w, const char *name, int64_t ne0, int64_t ne1, int optional, om_tensor *out);

/* What one forward of a model needs besides its weights: the activation arena and the
 * host staging buffers, sized once at open (a forward never allocates). */
typedef struct om_fwd_io {
    om_arena *arena;
    om_buf   *upload, *download;
} om_fwd_io;

/* Creates all three; on failure the message names what and the sizes, and whatever was
 * created is left for om_fwd_io_free. */
int  om_fwd_io_create(om_wset *w, uint64_t arena_bytes, uint64_t up_bytes, uint64_t down_bytes,
                      om_fwd_io *io);
void om_fwd_io_free(om_fwd_io *io);

/* Hyper-parameters. Required keys: absent is OM_EFORMAT naming the key. */
int om_wset_key_u32(om_wset *w, const char *key, uint32_t lo, uint32_t hi, int *v);
/* Optional: *v keeps its value when absent; a present value out of [lo, hi] is an error. */
int om_wset_key_u32_opt(om_wset *w, const char *key, uint32_t lo, uint32_t hi, int *v);
int om_wset_key_f32_opt(om_wset *w, const char *key, float lo, float hi, float *v);
/* String key compared with `want`: 1 equal, 0 different or absent. */
int om_wset_key_is(om_wset *w, const char *key, const char *want);

#endif
