/* The LLaMA forward pass (MODELS.md §6.1) recorded as one command buffer and submitted
 * once per batch: embeddings -> n_layer x (RMSNorm, one Q|K|V matmul, RoPE, KV cache
 * append, causal GQA attention, output projection, RMSNorm, one gate|up matmul, SwiGLU,
 * down projection) -> final RMSNorm -> logits. Activation tensors come from the arena and
 * are reused by every layer; the recorder's hazard tracking places the barriers. Every
 * dispatch costs lavapipe tens of microseconds whatever its size, hence the stacking. */
#include "llm_internal.h"
#include "om_err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* om_cmd_timestamp's limit per recording; marks outside the layers (start, upload x2,
 * get_rows, rms_norm, matmul output, download); ops per layer. */
enum { PROFILE_MAX_MARKS = 256, PROFILE_FIXED = 7, LAYER_OPS = 12 };

typedef struct fwd_tensors {
    om_tensor ids, pos, x, h, qkv, att, o, gate_up, act, logits;
} fwd_tensors;

static int alloc_all(om_llm *m, int T, int n_out, fwd_tensors *t)
{
    const om_llm_hparams *hp = &m->hp;
    int qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    om_arena *a = m->arena;
    int rc;
    if ((rc = om_tensor_alloc(a, OM_TYPE_I32, T, 1, 1, 1, &t->ids)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_I32, T, 1, 1, 1, &t->pos)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->n_embd, T, 1, 1, &t->x)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->n_embd, T, 1, 1, &t->h)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, qd + 2 * kvd, T, 1, 1, &t->qkv)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->head_dim, hp->n_head, T, 1, &t->att)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->n_embd, T, 1, 1, &t->o)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, 2 * hp->n_ff, T, 1, 1, &t->gate_up)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->n_ff, T, 1, 1, &t->act)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->n_vocab, n_out, 1, 1, &t->logits)))
        return rc;
    return 0;
}

/* Reshapes a contiguous tensor (same element count). */
static om_tensor reshape(const om_tensor *t, int64_t ne0, int64_t ne1, int64_t ne2)
{
    return om_tensor_make(t->buf, t->off, t->type, ne0, ne1, ne2, 1);
}

/* Columns [c0, c0+n) of a 2-D contiguous tensor. */
static om_tensor cols(const om_tensor *t, int64_t c0, int64_t n)
{
    int64_t start[4] = { 0, c0, 0, 0 }, ne[4] = { t->ne[0], n, 1, 1 };
    return om_tensor_view(t, start, ne);
}

/* Heads [h0, h0+nh) of positions [p0, p0+n) of a {head_dim, heads, positions} tensor. */
static om_tensor heads(const om_tensor *t, int64_t h0, int64_t nh, int64_t p0, int64_t n)
{
    int64_t start[4] = { 0, h0, p0, 0 }, ne[4] = { t->ne[0], nh, n, 1 };
    return om_tensor_view(t, start, ne);
}

/* A timestamp after the op just recorded, labelled by op kind, when profiling splits
 * this part of the forward. */
static int mark(om_cmd *c, int on, const char *label)
{
    return on ? om_cmd_timestamp(c, label) : 0;
}

/* Q, K and V come out of one matmul as rows {q heads, k heads, v heads} per position;
 * RoPE rotates Q and K in place (each lane reads its pair before writing it), and the
 * K and V heads, adjacent in that row and in the cache, are appended by one copy. */
static int record_layer(om_llm *m, om_cmd *c, const om_llm_layer *l, fwd_tensors *t, int T, int p)
{
    const om_llm_hparams *hp = &m->hp;
    const int nh = hp->n_head, nkv = hp->n_head_kv;
    int rc;
    om_tensor qkv3 = reshape(&t->qkv, hp->head_dim, nh + 2 * nkv, T);
    om_tensor qk = heads(&qkv3, 0, nh + nkv, 0, T), q = heads(&qkv3, 0, nh, 0, T);
    om_tensor kv_new = heads(&qkv3, nh, 2 * nkv, 0, T);
    om_tensor kv_dst = heads(&l->kv_cache, 0, 2 * nkv, m->n_past, T);
    om_tensor kc = heads(&l->kv_cache, 0, nkv, 0, m->n_past + T);
    om_tensor vc = heads(&l->kv_cache, nkv, nkv, 0, m->n_past + T);
    om_tensor att2 = reshape(&t->att, (int64_t)nh * hp->head_dim, T, 1);
    int64_t ff0[4] = { 0, 0, 0, 0 }, ff1[4] = { hp->n_ff, 0, 0, 0 }, ffne[4] = { hp->n_ff, T, 1, 1 };
    om_tensor gate = om_tensor_view(&t->gate_up, ff0, ffne), up = om_tensor_view(&t->gate_up, ff1, ffne);
    if ((rc = om_op_rms_norm(c, &t->h, &t->x, &l->attn_norm, hp->rms_eps)) || (rc = mark(c, p, "rms_norm")) ||
        (rc = om_op_matmul(c, &t->qkv, &t->h, &l->wqkv)) || (rc = mark(c, p, "matmul qkv")) ||
        (rc = om_op_rope_ext(c, &qk, &qk, &t->pos, m->has_rope_freqs ? &m->rope_freqs : NULL, hp->n_rot,
                             hp->rope_base, hp->rope_freq_scale, OM_ROPE_NORM)) ||
        (rc = mark(c, p, "rope")) ||
        (rc = om_op_copy(c, &kv_dst, &kv_new)) || (rc = mark(c, p, "kv copy")) ||
        (rc = om_op_attention(c, &t->att, &q, &kc, &vc, NULL, 1.0f / sqrtf((float)hp->head_dim), 1)) ||
        (rc = mark(c, p, "attention")) ||
        (rc = om_op_matmul(c, &t->o, &att2, &l->wo)) || (rc = mark(c, p, "matmul o")) ||
        (rc = om_op_add(c, &t->x, &t->x, &t->o)) || (rc = mark(c, p, "add")) ||
        (rc = om_op_rms_norm(c, &t->h, &t->x, &l->ffn_norm, hp->rms_eps)) || (rc = mark(c, p, "rms_norm")) ||
        (rc = om_op_matmul(c, &t->gate_up, &t->h, &l->w_gate_up)) || (rc = mark(c, p, "matmul ffn gate+up")) ||
        (rc = om_op_swiglu(c, &t->act, &gate, &up)) || (rc = mark(c, p, "swiglu")) ||
        (rc = om_op_matmul(c, &t->o, &t->act, &l->w_down)) || (rc = mark(c, p, "matmul ffn down")) ||
        (rc = om_op_add(c, &t->x, &t->x, &t->o)) || (rc = mark(c, p, "add")))
        return rc;
    return 0;
}

/* Host inputs go through the upload buffer: ids, positions, then external rows. */
static int stage_inputs(om_llm *m, om_cmd *c, const int32_t *tokens, int T, const float *embd,
                        fwd_tensors *t, int *n_ext, int p)
{
    int32_t *up = om_buf_map(m->upload);
    if (!up)
        return OM_EINTERNAL;
    int32_t *ids = up, *pos = up + T;
    *n_ext = 0;
    for (int i = 0; i < T; i++) {
        if (tokens[i] >= m->hp.n_vocab)
            return OM_EINVAL;
        ids[i] = tokens[i] < 0 ? 0 : tokens[i];
        pos[i] = m->n_past + i;
        *n_ext += tokens[i] < 0;
    }
    if (*n_ext && !embd)
        return OM_EINVAL;
    uint64_t row = (uint64_t)m->hp.n_embd * sizeof(float);
    if (*n_ext)
        memcpy((char *)up + (uint64_t)T * 8, embd, *n_ext * row);
    int rc;
    if ((rc = om_cmd_copy(c, t->ids.buf, t->ids.off, m->upload, 0, (uint64_t)T * 4)) ||
        (rc = om_cmd_copy(c, t->pos.buf, t->pos.off, m->upload, (uint64_t)T * 4, (uint64_t)T * 4)) ||
        (rc = mark(c, p, "upload")) || (rc = om_op_get_rows(c, &t->x, &m->tok_embd, &t->ids)) ||
        (rc = mark(c, p, "get_rows")))
        return rc;
    for (int i = 0, e = 0; i < T; i++)
        if (tokens[i] < 0) {
            rc = om_cmd_copy(c, t->x.buf, t->x.off + i * row, m->upload, (uint64_t)T * 8 + e++ * row, row);
            if (rc)
                return rc;
        }
    return *n_ext ? mark(c, p, "upload") : 0;
}

int om_llm_forward(om_llm *m, const int32_t *tokens, int T, const float *embd,
                   float *logits, int all_logits, float *hidden)
{
    const om_llm_hparams *hp = &m->hp;
    if (T <= 0 || T > m->n_batch || m->n_past + T > hp->n_ctx)
        return OM_ERANGE;
    int n_out = all_logits ? T : 1;
    fwd_tensors t;
    om_arena_reset(m->arena);
    int rc = alloc_all(m, T, n_out, &t);
    if (rc) {
        snprintf(m->err, sizeof m->err, "activation arena too small for %d positions", T);
        return rc;
    }
    /* Profiling splits every layer into ops while the timestamps fit one recording:
     * PROFILE_FIXED outside the layers, one per op in a split layer, one per other layer. */
    const int p = m->profile;
    const int n_split = p ? (PROFILE_MAX_MARKS - PROFILE_FIXED - hp->n_layer) / (LAYER_OPS - 1) : 0;
    double t0 = llm_now_ms();
    om_cmd *c;
    if ((rc = om_cmd_begin(m->gpu, &c)))
        return rc;
    int n_ext;
    if ((rc = mark(c, p, "start")) || (rc = stage_inputs(m, c, tokens, T, embd, &t, &n_ext, p)))
        goto fail;
    for (int i = 0; i < hp->n_layer; i++)
        if ((rc = record_layer(m, c, &m->layers[i], &t, T, i < n_split)) ||
            (rc = mark(c, p && i >= n_split, "layer (unsplit)")))
            goto fail;
    if ((rc = om_op_rms_norm(c, &t.h, &t.x, &m->output_norm, hp->rms_eps)) || (rc = mark(c, p, "rms_norm")))
        goto fail;
    om_tensor hout = all_logits ? t.h : cols(&t.h, T - 1, 1);
    if (logits && ((rc = om_op_matmul(c, &t.logits, &hout, &m->output)) || (rc = mark(c, p, "matmul output"))))
        goto fail;
    uint64_t lbytes = (uint64_t)n_out * hp->n_vocab * 4, hbytes = (uint64_t)T * hp->n_embd * 4;
    if (logits && (rc = om_cmd_copy(c, m->download, 0, t.logits.buf, t.logits.off, lbytes)))
        goto fail;
    if (hidden && (rc = om_cmd_copy(c, m->download, lbytes, t.h.buf, t.h.off, hbytes)))
        goto fail;
    if ((logits || hidden) && (rc = mark(c, p, "download")))
        goto fail;
    double t1 = llm_now_ms();
    if ((rc = om_cmd_submit(c))) {
        snprintf(m->err, sizeof m->err, "forward: %s", om_gpu_last_error(m->gpu));
        return rc;
    }
    double t2 = llm_now_ms();
    const char *dl = om_buf_map(m->download);
    if (logits)
        memcpy(logits, dl, lbytes);
    if (hidden)
        memcpy(hidden, dl + lbytes, hbytes);
    m->n_past += T;
    m->host = (om_llm_host_times){ .record_ms = t1 - t0, .submit_ms = t2 - t1, .read_ms = llm_now_ms() - t2 };
    return 0;
fail:
    snprintf(m->err, sizeof m->err, "recording the forward: %s", om_gpu_last_error(m->gpu));
    om_cmd_abort(c);
    return rc;
}

int om_llm_eval(om_llm *m, const om_llm_batch *b)
{
    if (!b || b->n <= 0 || !b->tokens)
        return OM_EINVAL;
    if (m->n_past + b->n > m->hp.n_ctx) {
        snprintf(m->err, sizeof m->err, "context overflow: %d cached + %d new > n_ctx %d", m->n_past, b->n,
                 m->hp.n_ctx);
        return OM_ERANGE;
    }
    int ext_total = 0;
    for (int i = 0; i < b->n; i++)
        ext_total += b->tokens[i] < 0;
    if (ext_total > b->n_embd_rows || (ext_total && !b->embd)) {
        snprintf(m->err, sizeof m->err, "batch has %d embedding positions but %d rows", ext_total, b->n_embd_rows);
        return OM_EINVAL;
    }
    const int start = m->n_past;
    const float *embd = b->embd;
    for (int i0 = 0; i0 < b->n; i0 += m->n_batch) {
        int T = b->n - i0 < m->n_batch ? b->n - i0 : m->n_batch;
        int last = i0 + T == b->n;
        float *lg = NULL;
        if (b->logits && b->all_logits)
            lg = b->logits + (size_t)i0 * m->hp.n_vocab;
        else if (b->logits && last)
            lg = b->logits;
        float *hd = b->hidden ? b->hidden + (size_t)i0 * m->hp.n_embd : NULL;
        int rc = om_llm_forward(m, b->tokens + i0, T, embd, lg, b->all_logits, hd);
        if (rc) {
            m->n_past = start;
            return rc;
        }
        for (int i = 0; i < T; i++)
            if (b->tokens[i0 + i] < 0)
                embd += m->hp.n_embd;
    }
    return 0;
}

int om_llm_set_profile(om_llm *m, int on)
{
    if (on && !om_gpu_get_info(m->gpu)->timestamp_period_ns) {
        snprintf(m->err, sizeof m->err, "profiling: the device's queue has no timestamps");
        return OM_EUNSUPPORTED;
    }
    m->profile = on != 0;
    return 0;
}

void om_llm_get_host_times(const om_llm *m, om_llm_host_times *out) { *out = m->host; }
