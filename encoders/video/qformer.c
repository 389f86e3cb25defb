/* Q-Former loading (qformer.* keys, q.* tensors) and its forward, recorded as one
 * command buffer per batch: queries -> LN -> n_layer x (self-attention, [cross-
 * attention], FFN), each sub-layer BERT post-LN: h = LN(h + Dense(sub(h))). */
#include "om_qformer.h"
#include "om_err.h"
#include "om_ops.h"
#include "om_weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K "qformer."

typedef struct qf_attn {
    om_tensor wq, bq, wk, bk, wv, bv, wo, bo, ln_w, ln_b;
} qf_attn;

typedef struct qf_layer {
    qf_attn   self, cross;           /* cross.wq.buf == NULL: no cross-attention */
    om_tensor w_up, b_up, w_down, b_down, ln_w, ln_b;
} qf_layer;

struct om_qformer {
    om_gpu             *gpu;
    om_qformer_hparams  hp;
    om_wset             w;
    om_tensor           query, emb_w, emb_b, frame_pos;
    qf_layer           *layers;
    int                 max_batch, max_tokens;
    om_fwd_io           io;
    char                err[512];
};

typedef struct qf_act {
    om_tensor enc, kx, vx, h0, h, q, k, v, att, o, up;
} qf_act;

static int read_hparams(om_qformer *m)
{
    om_qformer_hparams *hp = &m->hp;
    om_wset *w = &m->w;
    om_gguf_str arch;
    if (om_gguf_get_str(w->gguf, "general.architecture", &arch))
        return om_wset_fail(w, OM_EFORMAT, "general.architecture is missing");
    if (!om_wset_key_is(w, "general.architecture", "qformer") && !om_wset_key_is(w, "general.architecture", "blip2") &&
        !om_wset_key_is(w, "general.architecture", "video-qformer"))
        return om_wset_fail(w, OM_EUNSUPPORTED, "architecture '%.*s' has no Q-Former (expected qformer, blip2 or "
                            "video-qformer)", (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    int rc;
    if ((rc = om_wset_key_u32(w, K "embedding_length", 1, 16384, &hp->n_embd)) ||
        (rc = om_wset_key_u32(w, K "feed_forward_length", 1, 65536, &hp->n_ff)) ||
        (rc = om_wset_key_u32(w, K "block_count", 1, 256, &hp->n_layer)) ||
        (rc = om_wset_key_u32(w, K "attention.head_count", 1, 1024, &hp->n_head)) ||
        (rc = om_wset_key_u32(w, K "query_count", 1, 4096, &hp->n_query)) ||
        (rc = om_wset_key_u32(w, K "encoder_width", 1, 16384, &hp->encoder_width)) ||
        (rc = om_wset_key_u32(w, K "cross_attention_frequency", 1, 256, &hp->cross_freq)) ||
        (rc = om_wset_key_u32_opt(w, K "frame_count", 0, 4096, &hp->n_frames)))
        return rc;
    if (hp->n_embd % hp->n_head)
        return om_wset_fail(w, OM_EFORMAT, "%d heads do not divide width %d", hp->n_head, hp->n_embd);
    hp->eps = 1e-12f;
    if ((rc = om_wset_key_f32_opt(w, K "attention.layer_norm_epsilon", 0.0f, 1.0f, &hp->eps)))
        return rc;
    if (om_gguf_find_kv(w->gguf, K "hidden_act") && !om_wset_key_is(w, K "hidden_act", "gelu"))
        return om_wset_fail(w, OM_EUNSUPPORTED, "metadata " K "hidden_act must be gelu");
    return 0;
}

static int load_attn(om_qformer *m, int i, const char *p, int64_t kv_in, qf_attn *a)
{
    om_wset *w = &m->w;
    const int64_t D = m->hp.n_embd;
    char n[10][64];
    static const char *sfx[10] = { "q.weight", "q.bias", "k.weight", "k.bias", "v.weight", "v.bias",
                                   "out.weight", "out.bias", "ln.weight", "ln.bias" };
    for (int j = 0; j < 10; j++)
        snprintf(n[j], sizeof n[j], "q.blk.%d.%s_%s", i, p, sfx[j]);
    int rc;
    if ((rc = om_wset_matrix(w, n[0], D, D, &a->wq)) || (rc = om_wset_f32(w, n[1], D, 1, 0, &a->bq)) ||
        (rc = om_wset_matrix(w, n[2], kv_in, D, &a->wk)) || (rc = om_wset_f32(w, n[3], D, 1, 0, &a->bk)) ||
        (rc = om_wset_matrix(w, n[4], kv_in, D, &a->wv)) || (rc = om_wset_f32(w, n[5], D, 1, 0, &a->bv)) ||
        (rc = om_wset_matrix(w, n[6], D, D, &a->wo)) || (rc = om_wset_f32(w, n[7], D, 1, 0, &a->bo)) ||
        (rc = om_wset_f32(w, n[8], D, 1, 0, &a->ln_w)) || (rc = om_wset_f32(w, n[9], D, 1, 0, &a->ln_b)))
        return rc;
    return 0;
}

static int load_weights(om_qformer *m)
{
    const om_qformer_hparams *hp = &m->hp;
    om_wset *w = &m->w;
    const int64_t D = hp->n_embd, F = hp->n_ff;
    int rc;
    if ((rc = om_wset_f32(w, "q.query_embd", D, hp->n_query, 0, &m->query)) ||
        (rc = om_wset_f32(w, "q.emb_ln.weight", D, 1, 0, &m->emb_w)) ||
        (rc = om_wset_f32(w, "q.emb_ln.bias", D, 1, 0, &m->emb_b)))
        return rc;
    if (hp->n_frames && (rc = om_wset_f32(w, "q.frame_pos_embd", hp->encoder_width, hp->n_frames, 0, &m->frame_pos)))
        return rc;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return om_wset_fail(w, OM_ENOMEM, "out of memory");
    for (int i = 0; i < hp->n_layer; i++) {
        qf_layer *l = &m->layers[i];
        char n[6][64], x[64];
        static const char *sfx[6] = { "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias",
                                      "ffn_ln.weight", "ffn_ln.bias" };
        for (int j = 0; j < 6; j++)
            snprintf(n[j], sizeof n[j], "q.blk.%d.%s", i, sfx[j]);
        if ((rc = load_attn(m, i, "attn", D, &l->self)) ||
            (rc = om_wset_matrix(w, n[0], D, F, &l->w_up)) || (rc = om_wset_f32(w, n[1], F, 1, 0, &l->b_up)) ||
            (rc = om_wset_matrix(w, n[2], F, D, &l->w_down)) || (rc = om_wset_f32(w, n[3], D, 1, 0, &l->b_down)) ||
            (rc = om_wset_f32(w, n[4], D, 1, 0, &l->ln_w)) || (rc = om_wset_f32(w, n[5], D, 1, 0, &l->ln_b)))
            return rc;
        snprintf(x, sizeof x, "q.blk.%d.xattn_q.weight", i);
        if (i % hp->cross_freq == 0) {
            if ((rc = load_attn(m, i, "xattn", hp->encoder_width, &l->cross)))
                return rc;
        } else if (om_gguf_find_tensor(w->gguf, x)) {
            /* A file whose frequency disagrees with its tensors would silently skip them. */
            return om_wset_fail(w, OM_EFORMAT, "tensor %s is present but layer %d does not cross-attend with "
                                K "cross_attention_frequency %d", x, i, hp->cross_freq);
        }
    }
    return 0;
}

/* B items, N encoder tokens over all items: forward()'s tensors. */
static uint64_t arena_bytes(const om_qformer_hparams *hp, uint64_t B, uint64_t N)
{
    const uint64_t D = (uint64_t)hp->n_embd, Q = (uint64_t)hp->n_query;
    return 4 * (((uint64_t)hp->encoder_width + 2 * D) * N + B * (7 * D * Q + (uint64_t)hp->n_ff * Q)) + 16 * 256;
}

int om_qformer_open(om_qformer **out, om_gpu *gpu, const char *path, const om_qformer_opts *opts, char *err,
                    size_t errlen)
{
    *out = NULL;
    om_qformer *m = calloc(1, sizeof *m);
    if (!m)
        return OM_ENOMEM;
    m->gpu = gpu;
    m->max_batch = opts && opts->max_batch > 0 ? opts->max_batch : 8;
    m->max_batch = m->max_batch > 256 ? 256 : m->max_batch;
    m->max_tokens = opts && opts->max_tokens > 0 ? opts->max_tokens : 4096;
    m->max_tokens = m->max_tokens > 65535 ? 65535 : m->max_tokens;
    om_gguf *g = NULL;
    int rc = om_gguf_open(&g, path, NULL, m->err, sizeof m->err);
    om_wset_init(&m->w, gpu, g, m->err, sizeof m->err);
    if (!rc && !(rc = read_hparams(m)) && !(rc = load_weights(m))) {
        const om_qformer_hparams *hp = &m->hp;
        uint64_t B = (uint64_t)m->max_batch, N = (uint64_t)m->max_tokens;
        uint64_t up = 4 * (N * hp->encoder_width + (uint64_t)hp->n_query * hp->n_embd);
        uint64_t down = 4 * B * hp->n_query * hp->n_embd;
        rc = om_fwd_io_create(&m->w, arena_bytes(hp, B, N), up, down, &m->io);
    }
    om_gguf_close(g);
    m->w.gguf = NULL;
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, m->err[0] ? m->err : om_strerror(rc));
        om_qformer_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void om_qformer_close(om_qformer *m)
{
    if (!m)
        return;
    om_fwd_io_free(&m->io);
    om_wset_free(&m->w);
    free(m->layers);
    free(m);
}

const om_qformer_hparams *om_qformer_get_hparams(const om_qformer *m) { return &m->hp; }
const char *om_qformer_last_error(const om_qformer *m) { return m->err; }

/* ---- forward ---- */

static int linear(om_cmd *c, const om_tensor *y, const om_tensor *x, const om_tensor *w, const om_tensor *b)
{
    int rc = om_op_matmul(c, y, x, w);
    return rc ? rc : om_op_add(c, y, y, b);
}

/* Item i's rows of a {D, T*B} activation as {head_dim, n_head, T}. */
static om_tensor heads_of(const om_tensor *t, const om_qformer_hparams *hp, int i, int64_t T)
{
    const int64_t D = hp->n_embd, hd = D / hp->n_head;
    return om_tensor_make(t->buf, t->off + (uint64_t)i * T * D * 4, OM_TYPE_F32, hd, hp->n_head, T, 1);
}

/* h = LN(h + Dense(Attn(q = h, k/v = src))); src has Tk tokens per item. */
static int record_attn(om_qformer *m, om_cmd *c, const qf_attn *a, qf_act *t, const om_tensor *src,
                       const om_tensor *k, const om_tensor *v, int64_t Tk, int B)
{
    const om_qformer_hparams *hp = &m->hp;
    const float scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    int rc;
    if ((rc = linear(c, &t->q, &t->h, &a->wq, &a->bq)) || (rc = linear(c, k, src, &a->wk, &a->bk)) ||
        (rc = linear(c, v, src, &a->wv, &a->bv)))
        return rc;
    for (int i = 0; i < B; i++) {
        om_tensor qh = heads_of(&t->q, hp, i, hp->n_query), oh = heads_of(&t->att, hp, i, hp->n_query);
        om_tensor kh = heads_of(k, hp, i, Tk), vh = heads_of(v, hp, i, Tk);
        if ((rc = om_op_attention(c, &oh, &qh, &kh, &vh, NULL, scale, 0)))
            return rc;
    }
    if ((rc = linear(c, &t->o, &t->att, &a->wo, &a->bo)) || (rc = om_op_add(c, &t->o, &t->o, &t->h)))
        return rc;
    return om_op_layer_norm(c, &t->h, &t->o, &a->ln_w, &a->ln_b, hp->eps);
}

static int record(om_qformer *m, om_cmd *c, qf_act *t, int B, int64_t N, int custom_query, int video)
{
    const om_qformer_hparams *hp = &m->hp;
    const uint64_t qbytes = (uint64_t)hp->n_query * hp->n_embd * 4;
    const uint64_t ebytes = om_tensor_nbytes(&t->enc);
    int rc;
    if ((rc = om_cmd_copy(c, t->enc.buf, t->enc.off, m->io.upload, 0, ebytes)))
        return rc;
    if (video) {
        /* enc {W, n_tok, T} + frame_pos rows {W, 1, T}: row t over every token of frame t. */
        const int64_t nt = N / video;
        om_tensor e3 = om_tensor_make(t->enc.buf, t->enc.off, OM_TYPE_F32, hp->encoder_width, nt, video, 1);
        om_tensor fp = om_tensor_make(m->frame_pos.buf, m->frame_pos.off, OM_TYPE_F32, hp->encoder_width, 1, video, 1);
        if ((rc = om_op_add(c, &e3, &e3, &fp)))
            return rc;
    }
    for (int i = 0; i < B; i++) {
        if (custom_query)
            rc = om_cmd_copy(c, t->h0.buf, t->h0.off + i * qbytes, m->io.upload, ebytes, qbytes);
        else
            rc = om_cmd_copy(c, t->h0.buf, t->h0.off + i * qbytes, m->query.buf, m->query.off, qbytes);
        if (rc)
            return rc;
    }
    if ((rc = om_op_layer_norm(c, &t->h, &t->h0, &m->emb_w, &m->emb_b, hp->eps)))
        return rc;
    for (int l = 0; l < hp->n_layer; l++) {
        const qf_layer *L = &m->layers[l];
        if ((rc = record_attn(m, c, &L->self, t, &t->h, &t->k, &t->v, hp->n_query, B)))
            return rc;
        if (L->cross.wq.buf && (rc = record_attn(m, c, &L->cross, t, &t->enc, &t->kx, &t->vx, N, B)))
            return rc;
        if ((rc = linear(c, &t->up, &t->h, &L->w_up, &L->b_up)) ||
            (rc = om_op_unary(c, &t->up, &t->up, OM_UNARY_GELU_ERF)) ||
            (rc = linear(c, &t->o, &t->up, &L->w_down, &L->b_down)) ||
            (rc = om_op_add(c, &t->o, &t->o, &t->h)) ||
            (rc = om_op_layer_norm(c, &t->h, &t->o, &L->ln_w, &L->ln_b, hp->eps)))
            return rc;
    }
    return om_cmd_copy(c, m->io.download, 0, t->h.buf, t->h.off, (uint64_t)B * qbytes);
}

static int forward(om_qformer *m, const float *enc, int B, int64_t N, const float *query, int video, float *out)
{
    const om_qformer_hparams *hp = &m->hp;
    const int64_t D = hp->n_embd, Q = hp->n_query;
    om_arena *ar = m->io.arena;
    qf_act t;
    om_arena_reset(ar);
    int rc;
    if ((rc = om_tensor_alloc(ar, OM_TYPE_F32, hp->encoder_width, N * B, 1, 1, &t.enc)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, N * B, 1, 1, &t.kx)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, N * B, 1, 1, &t.vx)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, Q * B, 1, 1, &t.h0)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, Q * B, 1, 1, &t.h)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, Q * B, 1, 1, &t.q)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, Q * B, 1, 1, &t.k)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, Q * B, 1, 1, &t.v)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, Q * B, 1, 1, &t.att)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, Q * B, 1, 1, &t.o)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, hp->n_ff, Q * B, 1, 1, &t.up)))
        return om_wset_fail(&m->w, rc, "activation arena too small for %d items of %lld tokens", B, (long long)N);
    char *up = om_buf_map(m->io.upload);
    const char *dl = om_buf_map(m->io.download);
    if (!up || !dl)
        return om_wset_fail(&m->w, OM_EINTERNAL, "staging buffers are not mappable");
    memcpy(up, enc, om_tensor_nbytes(&t.enc));
    if (query)
        memcpy(up + om_tensor_nbytes(&t.enc), query, (size_t)Q * D * 4);
    om_cmd *c;
    if ((rc = om_cmd_begin(m->gpu, &c)))
        return om_wset_fail(&m->w, rc, "%s", om_gpu_last_error(m->gpu));
    if ((rc = record(m, c, &t, B, N, query != NULL, video))) {
        om_wset_fail(&m->w, rc, "recording the Q-Former forward: %s", om_gpu_last_error(m->gpu));
        om_cmd_abort(c);
        return rc;
    }
    if ((rc = om_cmd_submit(c)))
        return om_wset_fail(&m->w, rc, "Q-Former forward: %s", om_gpu_last_error(m->gpu));
    memcpy(out, dl, (size_t)B * Q * D * 4);
    return 0;
}

int om_qformer_encode(om_qformer *m, const float *enc, int B, int n_tok, const float *query, float *out)
{
    const om_qformer_hparams *hp = &m->hp;
    if (!enc || !out || B < 1 || B > 65536 || n_tok < 1 || n_tok > m->max_tokens)
        return om_wset_fail(&m->w, OM_EINVAL, "encode: %d items of %d tokens (expected 1..65536 items of 1..%d)",
                            B, n_tok, m->max_tokens);
    const size_t in = (size_t)n_tok * hp->encoder_width, o = (size_t)hp->n_query * hp->n_embd;
    const int fit = m->max_tokens / n_tok, chunk = fit < m->max_batch ? fit : m->max_batch;
    for (int i0 = 0; i0 < B; i0 += chunk) {
        int n = B - i0 < chunk ? B - i0 : chunk;
        int rc = forward(m, enc + i0 * in, n, n_tok, query, 0, out + i0 * o);
        if (rc)
            return rc;
    }
    return 0;
}

int om_qformer_encode_video(om_qformer *m, const float *frames, int n_frames, int n_tok, float *out)
{
    const om_qformer_hparams *hp = &m->hp;
    if (!hp->n_frames)
        return om_wset_fail(&m->w, OM_EUNSUPPORTED, "this Q-Former has no frame position embeddings");
    if (!frames || !out || n_frames < 1 || n_frames > hp->n_frames || n_tok < 1 ||
        (int64_t)n_frames * n_tok > m->max_tokens)
        return om_wset_fail(&m->w, OM_EINVAL, "video: %d frames of %d tokens (expected 1..%d frames, at most %d "
                            "tokens in all)", n_frames, n_tok, hp->n_frames, m->max_tokens);
    return forward(m, frames, 1, (int64_t)n_frames * n_tok, NULL, n_frames, out);
}
