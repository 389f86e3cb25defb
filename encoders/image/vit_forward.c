/* The ViT forward for a batch of frames, recorded as one command buffer: patch conv ->
 * [class, patches] + positions -> (pre-LN) -> n_layer pre-LN blocks -> post-LN (class
 * token for clip, every token for blip2) -> projection. Matmuls run over all frames'
 * tokens at once. Attention (tokens never attend across frames) is two batched matmuls
 * over frames x heads around a softmax: for hundreds of queries per frame that is about
 * ten times faster on llvmpipe than the fused attention op, which is shaped for the
 * LLM's few queries (measured on base/14, 2 frames, one layer: 956 ms vs 80 ms).
 * The fused op remains the path for head widths that are not a multiple of 4. */
#include "vit_internal.h"
#include "om_err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct vit_act {
    om_tensor pix, conv, emb, x, h, q, k, v, att, o, hn, up, cls, pooled, out;
    om_tensor scores, probs, vt;        /* matmul attention: {T, T, H, B}, {Tp, T, H, B}, {Tp, hd, H, B} */
} vit_act;

/* Keys padded to a multiple of 4: the matmul kernels read rows in 16-byte steps. */
static int64_t padded(int64_t t) { return (t + 3) & ~(int64_t)3; }

static int vit_matmul_attention(const om_vit_hparams *hp) { return (hp->n_embd / hp->n_head) % 4 == 0; }

static int alloc_act(om_vit *m, int B, vit_act *a)
{
    const om_vit_hparams *hp = &m->hp;
    const int64_t S = hp->image_size, D = hp->n_embd, T = hp->n_tok, g = S / hp->patch_size;
    om_arena *ar = m->io.arena;
    int rc;
    if ((rc = om_tensor_alloc(ar, OM_TYPE_F32, S, S, 3, B, &a->pix)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, g, g, D, B, &a->conv)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->emb)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->x)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->h)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->q)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->k)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->v)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->att)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->o)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, T * B, 1, 1, &a->hn)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, hp->n_ff, T * B, 1, 1, &a->up)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, B, 1, 1, &a->cls)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, D, B, 1, 1, &a->pooled)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, hp->out_dim, B, 1, 1, &a->out)))
        return rc;
    if (!vit_matmul_attention(hp))
        return 0;
    const int64_t H = hp->n_head, hd = D / H, Tp = padded(T);
    if ((rc = om_tensor_alloc(ar, OM_TYPE_F32, T, T, H, B, &a->scores)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, Tp, T, H, B, &a->probs)) ||
        (rc = om_tensor_alloc(ar, OM_TYPE_F32, Tp, hd, H, B, &a->vt)))
        return rc;
    return 0;
}

/* y = x·Wᵀ (+ b when b->buf). */
static int linear(om_cmd *c, const om_tensor *y, const om_tensor *x, const om_tensor *w, const om_tensor *b)
{
    int rc = om_op_matmul(c, y, x, w);
    if (!rc && b->buf)
        rc = om_op_add(c, y, y, b);
    return rc;
}

/* Frame f's rows of a {D, T*B} activation as {head_dim, n_head, T}. */
static om_tensor heads_of(const om_tensor *t, const om_vit_hparams *hp, int f)
{
    const int64_t D = hp->n_embd, T = hp->n_tok, hd = D / hp->n_head;
    return om_tensor_make(t->buf, t->off + (uint64_t)f * T * D * 4, OM_TYPE_F32, hd, hp->n_head, T, 1);
}

/* A {D, T*B} activation seen as {head_dim, T, H, B}: head h of token t of frame b. */
static om_tensor by_head(const om_tensor *t, const om_vit_hparams *hp, int B)
{
    const int64_t D = hp->n_embd, T = hp->n_tok, hd = D / hp->n_head;
    om_tensor r = om_tensor_make(t->buf, t->off, OM_TYPE_F32, hd, T, hp->n_head, B);
    r.nb[1] = (uint64_t)D * 4;
    r.nb[2] = (uint64_t)hd * 4;
    r.nb[3] = (uint64_t)T * D * 4;
    return r;
}

/* Columns [T, Tp) of a {Tp, rows, H, B} tensor. */
static om_tensor pad_cols(const om_tensor *t, int64_t T)
{
    const int64_t start[4] = { T, 0, 0, 0 }, ne[4] = { t->ne[0] - T, t->ne[1], t->ne[2], t->ne[3] };
    return om_tensor_view(t, start, ne);
}

/* The key padding of probs and vt must hold zeros (0 * garbage could be NaN): a finite
 * value (the class embedding, checked at load) read with zero strides, times 0. */
static int zero_pads(om_vit *m, om_cmd *c, vit_act *a)
{
    const int64_t T = m->hp.n_tok;
    if (padded(T) == T)
        return 0;
    om_tensor pp = pad_cols(&a->probs, T), vp = pad_cols(&a->vt, T);
    om_tensor z = m->cls;
    int rc;
    for (int i = 0; i < 4; i++)
        z.nb[i] = 0;
    memcpy(z.ne, pp.ne, sizeof z.ne);
    if ((rc = om_op_scale(c, &pp, &z, 0.0f)))
        return rc;
    memcpy(z.ne, vp.ne, sizeof z.ne);
    return om_op_scale(c, &vp, &z, 0.0f);
}

/* att = softmax(Q·Kᵀ·scale)·V for every frame and head at once. */
static int record_attention(om_vit *m, om_cmd *c, vit_act *a, int B)
{
    const om_vit_hparams *hp = &m->hp;
    const int64_t T = hp->n_tok;
    const float scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    om_tensor q = by_head(&a->q, hp, B), k = by_head(&a->k, hp, B), v = by_head(&a->v, hp, B);
    om_tensor att = by_head(&a->att, hp, B);
    const int64_t start[4] = { 0, 0, 0, 0 }, pne[4] = { T, T, hp->n_head, B };
    om_tensor p = om_tensor_view(&a->probs, start, pne);
    const int64_t vne[4] = { T, a->vt.ne[1], hp->n_head, B };
    om_tensor vt = om_tensor_view(&a->vt, start, vne), vsrc = om_tensor_permute(&v, 1, 0, 2, 3);
    int rc;
    if ((rc = om_op_matmul(c, &a->scores, &q, &k)) ||
        (rc = om_op_softmax(c, &p, &a->scores, NULL, scale)) ||
        (rc = om_op_copy(c, &vt, &vsrc)))
        return rc;
    return om_op_matmul(c, &att, &a->probs, &a->vt);
}

static int record_layer(om_vit *m, om_cmd *c, const vit_layer *l, vit_act *a, int B)
{
    const om_vit_hparams *hp = &m->hp;
    const float scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    int rc;
    if ((rc = om_op_layer_norm(c, &a->h, &a->x, &l->ln1_w, &l->ln1_b, hp->eps)) ||
        (rc = linear(c, &a->q, &a->h, &l->wq, &l->bq)) ||
        (rc = linear(c, &a->k, &a->h, &l->wk, &l->bk)) ||
        (rc = linear(c, &a->v, &a->h, &l->wv, &l->bv)))
        return rc;
    if (vit_matmul_attention(hp)) {
        if ((rc = record_attention(m, c, a, B)))
            return rc;
    } else {
        for (int f = 0; f < B; f++) {
            om_tensor q = heads_of(&a->q, hp, f), k = heads_of(&a->k, hp, f), v = heads_of(&a->v, hp, f);
            om_tensor o = heads_of(&a->att, hp, f);
            if ((rc = om_op_attention(c, &o, &q, &k, &v, NULL, scale, 0)))
                return rc;
        }
    }
    if ((rc = linear(c, &a->o, &a->att, &l->wo, &l->bo)) ||
        (rc = om_op_add(c, &a->x, &a->x, &a->o)) ||
        (rc = om_op_layer_norm(c, &a->h, &a->x, &l->ln2_w, &l->ln2_b, hp->eps)) ||
        (rc = linear(c, &a->up, &a->h, &l->w_up, &l->b_up)) ||
        (rc = om_op_unary(c, &a->up, &a->up, hp->act)) ||
        (rc = linear(c, &a->o, &a->up, &l->w_down, &l->b_down)) ||
        (rc = om_op_add(c, &a->x, &a->x, &a->o)))
        return rc;
    return 0;
}

/* emb = [class, patches] + positions, per frame. */
static int record_embed(om_vit *m, om_cmd *c, vit_act *a, int B)
{
    const om_vit_hparams *hp = &m->hp;
    const int64_t D = hp->n_embd, T = hp->n_tok, Np = hp->n_patch;
    int rc;
    const om_tensor *pb = m->patch_b.buf ? &m->patch_b : NULL;
    if ((rc = om_op_conv2d(c, &a->conv, &a->pix, &m->patch_w, pb, hp->patch_size, 0)))
        return rc;
    /* conv {g, g, D, B} read as {Np, D, B} and transposed into tokens 1..Np. */
    om_tensor conv3 = om_tensor_make(a->conv.buf, a->conv.off, OM_TYPE_F32, Np, D, B, 1);
    om_tensor src = om_tensor_permute(&conv3, 1, 0, 2, 3);
    om_tensor emb3 = om_tensor_make(a->emb.buf, a->emb.off, OM_TYPE_F32, D, T, B, 1);
    const int64_t start[4] = { 0, 1, 0, 0 }, ne[4] = { D, Np, B, 1 };
    om_tensor dst = om_tensor_view(&emb3, start, ne);
    if ((rc = om_op_copy(c, &dst, &src)))
        return rc;
    for (int f = 0; f < B; f++)
        if ((rc = om_cmd_copy(c, a->emb.buf, a->emb.off + (uint64_t)f * T * D * 4, m->cls.buf, m->cls.off,
                              (uint64_t)D * 4)))
            return rc;
    return om_op_add(c, &emb3, &emb3, &m->pos);
}

/* Class token of every frame of a {D, T*B} activation, copied to a contiguous {D, B}. */
static int gather_cls(om_cmd *c, const om_vit_hparams *hp, const om_tensor *t, const om_tensor *dst, int B)
{
    om_tensor src = om_tensor_make(t->buf, t->off, OM_TYPE_F32, hp->n_embd, B, 1, 1);
    src.nb[1] = (uint64_t)hp->n_tok * hp->n_embd * 4;
    src.nb[2] = src.nb[3] = src.nb[1] * B;
    return om_op_copy(c, dst, &src);
}

static int record(om_vit *m, om_cmd *c, vit_act *a, int B, const om_tensor **hidden)
{
    const om_vit_hparams *hp = &m->hp;
    int rc;
    if ((rc = om_cmd_copy(c, a->pix.buf, a->pix.off, m->io.upload, 0, om_tensor_nbytes(&a->pix))) ||
        (rc = record_embed(m, c, a, B)))
        return rc;
    if (hp->variant == OM_VIT_CLIP)
        rc = om_op_layer_norm(c, &a->x, &a->emb, &m->pre_w, &m->pre_b, hp->eps);
    else
        rc = om_op_copy(c, &a->x, &a->emb);
    if (rc || (vit_matmul_attention(hp) && (rc = zero_pads(m, c, a))))
        return rc;
    for (int i = 0; i < hp->n_layer; i++)
        if ((rc = record_layer(m, c, &m->layers[i], a, B)))
            return rc;
    if (hp->variant == OM_VIT_CLIP) {
        *hidden = &a->x;
        if ((rc = gather_cls(c, hp, &a->x, &a->cls, B)))
            return rc;
    } else {
        /* BLIP-2's ln_vision over every token; HF's pooler normalises the class token again. */
        *hidden = &a->hn;
        if ((rc = om_op_layer_norm(c, &a->hn, &a->x, &m->post_w, &m->post_b, hp->eps)) ||
            (rc = gather_cls(c, hp, &a->hn, &a->cls, B)))
            return rc;
    }
    if ((rc = om_op_layer_norm(c, &a->pooled, &a->cls, &m->post_w, &m->post_b, hp->eps)))
        return rc;
    if (hp->proj_dim)
        return om_op_matmul(c, &a->out, &a->pooled, &m->proj);
    return om_op_copy(c, &a->out, &a->pooled);
}

static int encode_chunk(om_vit *m, const float *pixels, int B, float *out, float *hidden)
{
    const om_vit_hparams *hp = &m->hp;
    vit_act a;
    om_arena_reset(m->io.arena);
    int rc = alloc_act(m, B, &a);
    if (rc)
        return om_wset_fail(&m->w, rc, "activation arena too small for %d frames", B);
    float *up = om_buf_map(m->io.upload);
    if (!up)
        return om_wset_fail(&m->w, OM_EINTERNAL, "upload buffer is not mappable");
    memcpy(up, pixels, om_tensor_nbytes(&a.pix));
    om_cmd *c;
    if ((rc = om_cmd_begin(m->gpu, &c)))
        return om_wset_fail(&m->w, rc, "%s", om_gpu_last_error(m->gpu));
    const om_tensor *h = NULL;
    uint64_t obytes = (uint64_t)B * hp->out_dim * 4, hbytes = (uint64_t)B * hp->n_tok * hp->n_embd * 4;
    if ((rc = record(m, c, &a, B, &h)) ||
        (out && (rc = om_cmd_copy(c, m->io.download, 0, a.out.buf, a.out.off, obytes))) ||
        (hidden && (rc = om_cmd_copy(c, m->io.download, obytes, h->buf, h->off, hbytes)))) {
        om_wset_fail(&m->w, rc, "recording the ViT forward: %s", om_gpu_last_error(m->gpu));
        om_cmd_abort(c);
        return rc;
    }
    if ((rc = om_cmd_submit(c)))
        return om_wset_fail(&m->w, rc, "ViT forward: %s", om_gpu_last_error(m->gpu));
    const char *dl = om_buf_map(m->io.download);
    if (!dl)
        return om_wset_fail(&m->w, OM_EINTERNAL, "download buffer is not mappable");
    if (out)
        memcpy(out, dl, obytes);
    if (hidden)
        memcpy(hidden, dl + obytes, hbytes);
    return 0;
}

int om_vit_encode(om_vit *m, const float *pixels, int B, float *out, float *hidden)
{
    const om_vit_hparams *hp = &m->hp;
    if (!pixels || B < 1 || B > 4096)
        return om_wset_fail(&m->w, OM_EINVAL, "encode: %d frames (expected 1..4096 and pixels)", B);
    const size_t px = (size_t)3 * hp->image_size * hp->image_size;
    for (int f0 = 0; f0 < B; f0 += m->max_batch) {
        int n = B - f0 < m->max_batch ? B - f0 : m->max_batch;
        int rc = encode_chunk(m, pixels + (size_t)f0 * px, n, out ? out + (size_t)f0 * hp->out_dim : NULL,
                              hidden ? hidden + (size_t)f0 * hp->n_tok * hp->n_embd : NULL);
        if (rc)
            return rc;
    }
    return 0;
}
