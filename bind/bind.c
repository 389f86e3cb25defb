/* Bind heads and the LLM input projection: loading (bind.* keys and tensors) and the two
 * small forwards, each one recorded command buffer. */
#include "om_bind.h"
#include "om_err.h"
#include "om_ops.h"
#include "om_weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 65536

struct om_bind {
    om_gpu          *gpu;
    om_bind_hparams  hp;
    om_wset          w;
    om_tensor        ln_w, ln_b, head_w, head_b;   /* head_b.buf NULL: no bias */
    om_tensor        proj_w, proj_b;
    int              max_rows;
    om_fwd_io        io;                             /* one call's activations and staging */
    char             err[512];
};

static int load_head(om_bind *m)
{
    om_bind_hparams *hp = &m->hp;
    om_wset *w = &m->w;
    const om_gguf_tensor *t = om_gguf_find_tensor(w->gguf, "bind.head.proj.weight");
    if (!t)
        return 0;
    int rc;
    if ((rc = om_wset_key_u32(w, "bind.embedding_length", 1, 65536, &hp->n_embd)) ||
        (rc = om_wset_key_u32(w, "bind.joint_dim", 1, 65536, &hp->joint_dim)) ||
        (rc = om_wset_key_u32_opt(w, "bind.head.token", 0, MAX_TOKENS - 1, &hp->token)) ||
        (rc = om_wset_key_f32_opt(w, "bind.head.layer_norm_epsilon", 0.0f, 1.0f, &hp->eps)) ||
        (rc = om_wset_key_f32_opt(w, "bind.head.logit_scale", 1e-6f, 1e6f, &hp->logit_scale)) ||
        (rc = om_wset_f32(w, "bind.head.ln.weight", hp->n_embd, 1, 0, &m->ln_w)) ||
        (rc = om_wset_f32(w, "bind.head.ln.bias", hp->n_embd, 1, 0, &m->ln_b)) ||
        (rc = om_wset_matrix(w, "bind.head.proj.weight", hp->n_embd, hp->joint_dim, &m->head_w)))
        return rc;
    rc = om_wset_f32(w, "bind.head.proj.bias", hp->joint_dim, 1, 1, &m->head_b);
    if (rc && rc != OM_ENOENT)
        return rc;
    om_gguf_str s;
    if (!om_gguf_get_str(w->gguf, "bind.modality", &s))
        snprintf(hp->modality, sizeof hp->modality, "%.*s", (int)(s.n < 15 ? s.n : 15), s.p);
    hp->has_head = 1;
    return 0;
}

static int load_proj(om_bind *m)
{
    om_bind_hparams *hp = &m->hp;
    om_wset *w = &m->w;
    const om_gguf_tensor *t = om_gguf_find_tensor(w->gguf, "bind.llm_proj.weight");
    if (!t)
        return 0;
    if (t->ne[0] < 1 || t->ne[0] > 65536 || t->ne[1] < 1 || t->ne[1] > 65536)
        return om_wset_fail(w, OM_EFORMAT, "tensor bind.llm_proj.weight is %lld x %lld, outside 1..65536",
                            (long long)t->ne[0], (long long)t->ne[1]);
    hp->proj_in = (int)t->ne[0];
    hp->llm_width = (int)t->ne[1];
    int rc;
    if ((rc = om_wset_matrix(w, "bind.llm_proj.weight", hp->proj_in, hp->llm_width, &m->proj_w)) ||
        (rc = om_wset_f32(w, "bind.llm_proj.bias", hp->llm_width, 1, 0, &m->proj_b)))
        return rc;
    hp->has_proj = 1;
    return 0;
}

int om_bind_open(om_bind **out, om_gpu *gpu, const char *path, int max_rows, char *err, size_t errlen)
{
    *out = NULL;
    om_bind *m = calloc(1, sizeof *m);
    if (!m)
        return OM_ENOMEM;
    m->gpu = gpu;
    m->max_rows = max_rows > 0 && max_rows <= 65536 ? max_rows : 256;
    m->hp.eps = 1e-6f;
    m->hp.logit_scale = 1.0f;
    om_gguf *g = NULL;
    int rc = om_gguf_open(&g, path, NULL, m->err, sizeof m->err);
    om_wset_init(&m->w, gpu, g, m->err, sizeof m->err);
    if (!rc && !(rc = load_head(m)) && !(rc = load_proj(m)) && !m->hp.has_head && !m->hp.has_proj)
        rc = om_wset_fail(&m->w, OM_EFORMAT, "no bind head (bind.head.proj.weight) and no LLM projection "
                          "(bind.llm_proj.weight)");
    if (!rc) {
        const om_bind_hparams *hp = &m->hp;
        uint64_t R = (uint64_t)m->max_rows, wmax = 1;
        const int dims[4] = { hp->n_embd, hp->joint_dim, hp->proj_in, hp->llm_width };
        for (int i = 0; i < 4; i++)
            wmax = (uint64_t)dims[i] > wmax ? (uint64_t)dims[i] : wmax;
        /* The head reads one token per item: only that row is uploaded. A call holds at
         * most five row sets (input, normalised, projected, unit, output). */
        rc = om_fwd_io_create(&m->w, 5 * R * wmax * 4 + 8 * 256, R * wmax * 4, R * wmax * 4, &m->io);
    }
    om_gguf_close(g);
    m->w.gguf = NULL;
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, m->err[0] ? m->err : om_strerror(rc));
        om_bind_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

void om_bind_close(om_bind *m)
{
    if (!m)
        return;
    om_fwd_io_free(&m->io);
    om_wset_free(&m->w);
    free(m);
}

const om_bind_hparams *om_bind_get_hparams(const om_bind *m) { return &m->hp; }
const char *om_bind_last_error(const om_bind *m) { return m->err; }

/* Runs `rec` on n rows uploaded from x (in_w wide) and downloads n x out_w. */
typedef int (*bind_rec)(om_bind *m, om_cmd *c, const om_tensor *in, const om_tensor *out, om_arena *a);

static int run(om_bind *m, const float *x, int n, int in_w, int out_w, bind_rec rec, float *out)
{
    const uint64_t ib = (uint64_t)n * in_w * 4, ob = (uint64_t)n * out_w * 4;
    om_cmd *c = NULL;
    om_tensor tin, tout;
    om_arena_reset(m->io.arena);
    int rc;
    if ((rc = om_tensor_alloc(m->io.arena, OM_TYPE_F32, in_w, n, 1, 1, &tin)) ||
        (rc = om_tensor_alloc(m->io.arena, OM_TYPE_F32, out_w, n, 1, 1, &tout)))
        return om_wset_fail(&m->w, rc, "activations of %d rows", n);
    char *up = om_buf_map(m->io.upload);
    const char *dl = om_buf_map(m->io.download);
    if (!up || !dl)
        return om_wset_fail(&m->w, OM_EINTERNAL, "staging buffers are not mappable");
    memcpy(up, x, ib);
    if ((rc = om_cmd_begin(m->gpu, &c)))
        return om_wset_fail(&m->w, rc, "%s", om_gpu_last_error(m->gpu));
    if ((rc = om_cmd_copy(c, tin.buf, tin.off, m->io.upload, 0, ib)) || (rc = rec(m, c, &tin, &tout, m->io.arena)) ||
        (rc = om_cmd_copy(c, m->io.download, 0, tout.buf, tout.off, ob))) {
        om_wset_fail(&m->w, rc, "recording: %s", om_gpu_last_error(m->gpu));
        om_cmd_abort(c);
        return rc;
    }
    if ((rc = om_cmd_submit(c)))
        return om_wset_fail(&m->w, rc, "bind forward: %s", om_gpu_last_error(m->gpu));
    memcpy(out, dl, ob);
    return 0;
}

static int rec_head(om_bind *m, om_cmd *c, const om_tensor *in, const om_tensor *out, om_arena *a)
{
    const om_bind_hparams *hp = &m->hp;
    om_tensor h, e, u;
    int rc;
    if ((rc = om_tensor_alloc(a, OM_TYPE_F32, hp->n_embd, in->ne[1], 1, 1, &h)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->joint_dim, in->ne[1], 1, 1, &e)) ||
        (rc = om_tensor_alloc(a, OM_TYPE_F32, hp->joint_dim, in->ne[1], 1, 1, &u)) ||
        (rc = om_op_layer_norm(c, &h, in, &m->ln_w, &m->ln_b, hp->eps)) ||
        (rc = om_op_matmul(c, &e, &h, &m->head_w)) ||
        (m->head_b.buf && (rc = om_op_add(c, &e, &e, &m->head_b))))
        return rc;
    /* L2 normalisation as an RMS norm: x / sqrt(mean(x²)) = sqrt(n) · x / |x|, so the
     * scale folds in 1/sqrt(n). The tiny eps keeps a zero vector at zero, like
     * F.normalize's clamp, without moving any real embedding. */
    if ((rc = om_op_rms_norm(c, &u, &e, NULL, 1e-30f)))
        return rc;
    return om_op_scale(c, out, &u, hp->logit_scale / sqrtf((float)hp->joint_dim));
}

static int rec_proj(om_bind *m, om_cmd *c, const om_tensor *in, const om_tensor *out, om_arena *a)
{
    int rc = om_op_matmul(c, out, in, &m->proj_w);
    return rc ? rc : om_op_add(c, out, out, &m->proj_b);
}

int om_bind_head(om_bind *m, const float *x, int B, int n_tok, float *out)
{
    const om_bind_hparams *hp = &m->hp;
    if (!hp->has_head)
        return om_wset_fail(&m->w, OM_EUNSUPPORTED, "this file has no bind head");
    if (!x || !out || B < 1 || B > m->max_rows || n_tok <= hp->token || n_tok > MAX_TOKENS)
        return om_wset_fail(&m->w, OM_EINVAL, "head: %d items of %d tokens (expected 1..%d items of more than %d "
                            "tokens)", B, n_tok, m->max_rows, hp->token);
    /* LayerNorm is per token, so selecting the token first gives the same result. */
    float *rows = malloc((size_t)B * hp->n_embd * sizeof *rows);
    if (!rows)
        return om_wset_fail(&m->w, OM_ENOMEM, "out of memory");
    for (int b = 0; b < B; b++)
        memcpy(rows + (size_t)b * hp->n_embd, x + ((size_t)b * n_tok + hp->token) * hp->n_embd,
               (size_t)hp->n_embd * sizeof *rows);
    int rc = run(m, rows, B, hp->n_embd, hp->joint_dim, rec_head, out);
    free(rows);
    return rc;
}

int om_bind_project(om_bind *m, const float *x, int n, float *out)
{
    const om_bind_hparams *hp = &m->hp;
    if (!hp->has_proj)
        return om_wset_fail(&m->w, OM_EUNSUPPORTED, "this file has no LLM projection");
    if (!x || !out || n < 1 || n > m->max_rows)
        return om_wset_fail(&m->w, OM_EINVAL, "project: %d rows (expected 1..%d)", n, m->max_rows);
    return run(m, x, n, hp->proj_in, hp->llm_width, rec_proj, out);
}
