/* Loading a llama-architecture GGUF onto the device: hyper-parameters from the
 * metadata, every matrix uploaded in the file's own type, the KV cache and the
 * buffers one forward needs, sized once here so a forward never allocates. */
#include "llm_internal.h"
#include "om_err.h"
#include "om_tokenizer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_err(om_llm *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return code;
}

static int get_u32_req(om_llm *m, const char *key, int *v)
{
    uint32_t u;
    int rc = om_gguf_get_u32(m->gguf, key, &u);
    if (rc)
        return set_err(m, rc == OM_ENOENT ? OM_EFORMAT : rc, "missing or malformed metadata key %s", key);
    if (u == 0 || u > (1u << 24))
        return set_err(m, OM_EFORMAT, "metadata %s = %u is out of range", key, u);
    *v = (int)u;
    return 0;
}

static int track_buf(om_llm *m, om_buf *b)
{
    om_buf **nb = realloc(m->bufs, (size_t)(m->n_bufs + 1) * sizeof *nb);
    if (!nb) {
        om_buf_destroy(b);
        return OM_ENOMEM;
    }
    m->bufs = nb;
    m->bufs[m->n_bufs++] = b;
    return 0;
}

/* Finds tensor `name` and checks it has the expected shape (ne1 = 1 for vectors) and a
 * supported type. */
static int find_tensor(om_llm *m, const char *name, int64_t ne0, int64_t ne1, int optional,
                       const om_gguf_tensor **out)
{
    const om_gguf_tensor *t = om_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (optional)
            return OM_ENOENT;
        return set_err(m, OM_EFORMAT, "tensor %s is missing", name);
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return set_err(m, OM_EFORMAT, "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                       name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], (long long)ne0, (long long)ne1);
    if (t->type != OM_TYPE_F32 && t->type != OM_TYPE_F16 && t->type != OM_TYPE_Q8_0 && t->type != OM_TYPE_Q4_0)
        return set_err(m, OM_EUNSUPPORTED, "tensor %s has type %s (ggml type %d); supported: f32, f16, q8_0, q4_0",
                       name, om_ggml_type_name(t->type) ? om_ggml_type_name(t->type) : "unknown", t->type);
    if (ne1 > 1 && ne0 == 1)
        return set_err(m, OM_EFORMAT, "tensor %s is degenerate", name);
    *out = t;
    return 0;
}

/* Uploads n tensors {ne0, ne1[i]} of one type as a single matrix {ne0, sum ne1}, rows
 * of names[0] first (one tensor when n == 1). */
static int load_stacked(om_llm *m, const char *const *names, const int64_t *ne1, int n, int64_t ne0,
                        int optional, om_tensor *out)
{
    const om_gguf_tensor *t[3] = { 0 };
    uint64_t nbytes = 0;
    int64_t rows = 0;
    int rc;
    for (int i = 0; i < n; i++) {
        if ((rc = find_tensor(m, names[i], ne0, ne1[i], optional, &t[i])))
            return rc;
        if (t[i]->type != t[0]->type)
            return set_err(m, OM_EUNSUPPORTED, "tensors %s (%s) and %s (%s) must have one type",
                           names[0], om_ggml_type_name(t[0]->type), names[i], om_ggml_type_name(t[i]->type));
        nbytes += t[i]->nbytes;
        rows += ne1[i];
    }
    /* Quantized kernels read whole aligned 8-byte words: the buffer extends past the
     * tensor's last block to the next 16-byte boundary. */
    om_buf *b;
    if ((rc = om_buf_create(m->gpu, (nbytes + 15) & ~(uint64_t)15, OM_BUF_DEVICE, &b)))
        return set_err(m, rc, "tensor %s (%llu bytes): %s", names[0], (unsigned long long)nbytes,
                       om_gpu_last_error(m->gpu));
    if ((rc = track_buf(m, b)))
        return set_err(m, rc, "out of memory");
    for (uint64_t i = 0, off = 0; i < (uint64_t)n; off += t[i++]->nbytes)
        if ((rc = om_buf_write(b, off, t[i]->data, t[i]->nbytes)))
            return set_err(m, rc, "uploading %s: %s", names[i], om_gpu_last_error(m->gpu));
    *out = om_tensor_make(b, 0, t[0]->type, ne0, rows, 1, 1);
    m->weight_bytes += nbytes;
    return 0;
}

static int load_tensor(om_llm *m, const char *name, int64_t ne0, int64_t ne1, int optional, om_tensor *out)
{
    return load_stacked(m, &name, &ne1, 1, ne0, optional, out);
}

static int read_hparams(om_llm *m, const om_llm_opts *opts)
{
    om_llm_hparams *hp = &m->hp;
    om_gguf_str arch;
    if (om_gguf_get_str(m->gguf, "general.architecture", &arch))
        return set_err(m, OM_EFORMAT, "general.architecture is missing");
    if (arch.n != 5 || memcmp(arch.p, "llama", 5))
        return set_err(m, OM_EUNSUPPORTED, "unsupported architecture '%.*s' (supported: llama)",
                       (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    int rc;
    if ((rc = get_u32_req(m, "llama.embedding_length", &hp->n_embd)) ||
        (rc = get_u32_req(m, "llama.block_count", &hp->n_layer)) ||
        (rc = get_u32_req(m, "llama.feed_forward_length", &hp->n_ff)) ||
        (rc = get_u32_req(m, "llama.attention.head_count", &hp->n_head)) ||
        (rc = get_u32_req(m, "llama.context_length", &hp->n_ctx_train)))
        return rc;
    hp->n_head_kv = hp->n_head;
    uint32_t u;
    if (!om_gguf_get_u32(m->gguf, "llama.attention.head_count_kv", &u))
        hp->n_head_kv = (int)u;
    if (hp->n_head_kv <= 0 || hp->n_head % hp->n_head_kv || hp->n_embd % hp->n_head)
        return set_err(m, OM_EFORMAT, "head counts %d/%d do not divide n_embd %d", hp->n_head,
                       hp->n_head_kv, hp->n_embd);
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->n_rot = hp->head_dim;
    if (!om_gguf_get_u32(m->gguf, "llama.rope.dimension_count", &u))
        hp->n_rot = (int)u;
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return set_err(m, OM_EFORMAT, "rope.dimension_count %d does not fit head_dim %d", hp->n_rot, hp->head_dim);
    hp->rms_eps = 1e-5f;
    om_gguf_get_f32(m->gguf, "llama.attention.layer_norm_rms_epsilon", &hp->rms_eps);
    hp->rope_base = 10000.0f;
    om_gguf_get_f32(m->gguf, "llama.rope.freq_base", &hp->rope_base);
    hp->rope_freq_scale = 1.0f;
    om_gguf_str st;
    float factor;
    if (!om_gguf_get_str(m->gguf, "llama.rope.scaling.type", &st)) {
        if (st.n == 6 && !memcmp(st.p, "linear", 6)) {
            if (!om_gguf_get_f32(m->gguf, "llama.rope.scaling.factor", &factor) && factor > 0)
                hp->rope_freq_scale = 1.0f / factor;
        } else if (!(st.n == 4 && !memcmp(st.p, "none", 4))) {
            return set_err(m, OM_EUNSUPPORTED, "rope scaling '%.*s' is not supported (supported: none, linear)",
                           (int)(st.n > 32 ? 32 : st.n), st.p);
        }
    } else if (!om_gguf_get_f32(m->gguf, "llama.rope.scale_linear", &factor) && factor > 0) {
        hp->rope_freq_scale = 1.0f / factor;
    }
    int cap = opts && opts->n_ctx_max > 0 ? opts->n_ctx_max : 4096;
    hp->n_ctx = hp->n_ctx_train < cap ? hp->n_ctx_train : cap;
    m->n_batch = opts && opts->n_batch > 0 ? opts->n_batch : 256;
    if (m->n_batch > hp->n_ctx)
        m->n_batch = hp->n_ctx;
    return 0;
}

/* Llama 3.1+ per-pair frequency factors (optional): F32, as the rope op reads them, and
 * finite positive, since each divides an angle. */
static int load_rope_freqs(om_llm *m)
{
    const char *name = "rope_freqs.weight";
    const om_gguf_tensor *t = om_gguf_find_tensor(m->gguf, name);
    if (!t)
        return 0;
    if (t->type != OM_TYPE_F32)
        return set_err(m, OM_EUNSUPPORTED, "tensor %s has type %s (ggml type %d), expected f32", name,
                       om_ggml_type_name(t->type) ? om_ggml_type_name(t->type) : "unknown", t->type);
    int rc = load_tensor(m, name, m->hp.n_rot / 2, 1, 0, &m->rope_freqs);
    if (rc)
        return rc;
    for (int i = 0; i < m->hp.n_rot / 2; i++) {
        float f;
        memcpy(&f, (const char *)t->data + 4 * (size_t)i, sizeof f);
        if (!(f > 0.0f) || !isfinite(f))
            return set_err(m, OM_EFORMAT, "tensor %s[%d] = %g; frequency factors must be finite and > 0",
                           name, i, (double)f);
    }
    m->has_rope_freqs = 1;
    return 0;
}

static int load_weights(om_llm *m)
{
    om_llm_hparams *hp = &m->hp;
    const om_gguf_tensor *te = om_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te)
        return set_err(m, OM_EFORMAT, "tensor token_embd.weight is missing");
    hp->n_vocab = (int)te->ne[1];
    if (te->ne[1] <= 0 || te->ne[1] > (1 << 22))
        return set_err(m, OM_EFORMAT, "vocabulary size %lld is out of range", (long long)te->ne[1]);
    int rc;
    if ((rc = load_tensor(m, "token_embd.weight", hp->n_embd, hp->n_vocab, 0, &m->tok_embd)) ||
        (rc = load_tensor(m, "output_norm.weight", hp->n_embd, 1, 0, &m->output_norm)))
        return rc;
    if ((rc = load_rope_freqs(m)))
        return rc;
    rc = load_tensor(m, "output.weight", hp->n_embd, hp->n_vocab, 1, &m->output);
    if (rc == OM_ENOENT) {
        m->output = m->tok_embd;
        hp->tied_output = 1;
    } else if (rc) {
        return rc;
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return set_err(m, OM_ENOMEM, "out of memory");
    int qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    for (int i = 0; i < hp->n_layer; i++) {
        om_llm_layer *l = &m->layers[i];
        char n[9][64];
        static const char *suffix[9] = { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                         "ffn_norm", "ffn_gate", "ffn_up", "ffn_down" };
        for (int j = 0; j < 9; j++)
            snprintf(n[j], sizeof n[j], "blk.%d.%s.weight", i, suffix[j]);
        const char *qkv[3] = { n[1], n[2], n[3] }, *gate_up[2] = { n[6], n[7] };
        const int64_t qkv_rows[3] = { qd, kvd, kvd }, ff_rows[2] = { hp->n_ff, hp->n_ff };
        if ((rc = load_tensor(m, n[0], hp->n_embd, 1, 0, &l->attn_norm)) ||
            (rc = load_stacked(m, qkv, qkv_rows, 3, hp->n_embd, 0, &l->wqkv)) ||
            (rc = load_tensor(m, n[4], qd, hp->n_embd, 0, &l->wo)) ||
            (rc = load_tensor(m, n[5], hp->n_embd, 1, 0, &l->ffn_norm)) ||
            (rc = load_stacked(m, gate_up, ff_rows, 2, hp->n_embd, 0, &l->w_gate_up)) ||
            (rc = load_tensor(m, n[8], hp->n_ff, hp->n_embd, 0, &l->w_down)))
            return rc;
    }
    hp->ftype = m->layers[0].wqkv.type;
    return 0;
}

static int alloc_state(om_llm *m)
{
    om_llm_hparams *hp = &m->hp;
    uint64_t kv_bytes = (uint64_t)hp->head_dim * hp->n_head_kv * 2 * hp->n_ctx * 2;
    int rc;
    for (int i = 0; i < hp->n_layer; i++) {
        om_buf *b;
        if ((rc = om_buf_create(m->gpu, kv_bytes, OM_BUF_DEVICE, &b)) || (rc = track_buf(m, b)))
            return set_err(m, rc, "KV cache (%llu bytes per layer): %s", (unsigned long long)kv_bytes,
                           om_gpu_last_error(m->gpu));
        m->layers[i].kv_cache = om_tensor_make(b, 0, OM_TYPE_F16, hp->head_dim, 2 * hp->n_head_kv, hp->n_ctx, 1);
    }
    /* One forward's activations: x, h, qkv, att, o (n_embd-ish each), gate_up (2 n_ff),
     * act (n_ff), logits of every position; 256-byte aligned each. */
    uint64_t T = (uint64_t)m->n_batch, f = 4;
    uint64_t qd = (uint64_t)hp->n_head * hp->head_dim, kvd = (uint64_t)hp->n_head_kv * hp->head_dim;
    uint64_t need = T * f * (3 * (uint64_t)hp->n_embd + 2 * qd + 2 * kvd + 3 * (uint64_t)hp->n_ff +
                             (uint64_t)hp->n_vocab) + T * 8 + 20 * 256;
    if ((rc = om_arena_create(m->gpu, need, &m->arena)))
        return set_err(m, rc, "activation arena (%llu bytes): %s", (unsigned long long)need,
                       om_gpu_last_error(m->gpu));
    m->upload_bytes = T * 8 + T * hp->n_embd * f;
    m->download_bytes = T * f * ((uint64_t)hp->n_vocab + hp->n_embd);
    if ((rc = om_buf_create(m->gpu, m->upload_bytes, OM_BUF_UPLOAD, &m->upload)) ||
        (rc = om_buf_create(m->gpu, m->download_bytes, OM_BUF_DOWNLOAD, &m->download)))
        return set_err(m, rc, "staging buffers: %s", om_gpu_last_error(m->gpu));
    return 0;
}

int om_llm_open(om_llm **out, om_gpu *gpu, const char *path, const om_llm_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    om_llm *m = calloc(1, sizeof *m);
    if (!m)
        return OM_ENOMEM;
    m->gpu = gpu;
    int rc = om_gguf_open(&m->gguf, path, NULL, m->err, sizeof m->err);
    if (!rc && !(rc = read_hparams(m, opts)) && !(rc = load_weights(m)) && !(rc = alloc_state(m))) {
        rc = om_tokenizer_from_gguf(&m->tok, m->gguf, m->err, sizeof m->err);
        if (!rc && om_tokenizer_n_vocab(m->tok) != m->hp.n_vocab)
            rc = set_err(m, OM_EFORMAT, "tokenizer has %d tokens but token_embd has %d rows",
                         om_tokenizer_n_vocab(m->tok), m->hp.n_vocab);
    }
    /* Weights and vocabulary are copies now: the mapping is not needed any more. */
    om_gguf_close(m->gguf);
    m->gguf = NULL;
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, m->err[0] ? m->err : om_strerror(rc));
        om_llm_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void om_llm_close(om_llm *m)
{
    if (!m)
        return;
    om_tokenizer_close(m->tok);
    om_buf_destroy(m->upload);
    om_buf_destroy(m->download);
    om_arena_destroy(m->arena);
    for (int i = 0; i < m->n_bufs; i++)
        om_buf_destroy(m->bufs[i]);
    free(m->bufs);
    free(m->layers);
    om_gguf_close(m->gguf);
    free(m);
}

const om_llm_hparams *om_llm_get_hparams(const om_llm *m) { return &m->hp; }
const struct om_tokenizer *om_llm_get_tokenizer(const om_llm *m) { return m->tok; }
uint64_t om_llm_weight_bytes(const om_llm *m) { return m->weight_bytes; }

uint64_t om_llm_decode_weight_bytes(const om_llm *m)
{
    return m->hp.tied_output ? m->weight_bytes : m->weight_bytes - om_tensor_nbytes(&m->tok_embd);
}
int om_llm_n_past(const om_llm *m) { return m->n_past; }
const char *om_llm_last_error(const om_llm *m) { return m->err; }

int om_llm_truncate(om_llm *m, int n)
{
    if (n < 0 || n > m->n_past)
        return OM_EINVAL;
    m->n_past = n;
    return 0;
}
