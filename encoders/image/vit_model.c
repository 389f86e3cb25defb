/* Loading a ViT from GGUF: hyper-parameters from clip.vision.*, the variant's tensors
 * (docs/MODELS_GGUF.md), and the buffers one forward of max_batch frames needs. */
#include "vit_internal.h"
#include "om_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K "clip.vision."

static int read_norm_consts(om_vit *v, const char *key, float dflt_lo, float *dst)
{
    const om_gguf_kv *kv;
    if (om_gguf_get_arr(v->w.gguf, key, &kv))
        return om_wset_fail(&v->w, OM_EFORMAT, "metadata %s is missing or not an array", key);
    if (kv->arr_n != 3)
        return om_wset_fail(&v->w, OM_EFORMAT, "metadata %s has %llu values, expected 3", key,
                            (unsigned long long)kv->arr_n);
    for (int i = 0; i < 3; i++)
        if (om_gguf_arr_f32(kv, (uint64_t)i, &dst[i]) || !(dst[i] >= dflt_lo && dst[i] <= 10.0f))
            return om_wset_fail(&v->w, OM_EFORMAT, "metadata %s[%d] is not an f32 in [%g, 10]", key, i,
                                (double)dflt_lo);
    return 0;
}

static int read_hparams(om_vit *v)
{
    om_vit_hparams *hp = &v->hp;
    om_wset *w = &v->w;
    om_gguf_str arch;
    if (om_gguf_get_str(w->gguf, "general.architecture", &arch))
        return om_wset_fail(w, OM_EFORMAT, "general.architecture is missing");
    if (!om_wset_key_is(w, "general.architecture", "clip-vision") && !om_wset_key_is(w, "general.architecture", "blip2") &&
        !om_wset_key_is(w, "general.architecture", "imagebind"))
        return om_wset_fail(w, OM_EUNSUPPORTED, "architecture '%.*s' has no ViT (expected clip-vision, blip2 or "
                            "imagebind)", (int)(arch.n > 64 ? 64 : arch.n), arch.p);
    if (om_wset_key_is(w, K "variant", "clip"))
        hp->variant = OM_VIT_CLIP;
    else if (om_wset_key_is(w, K "variant", "blip2"))
        hp->variant = OM_VIT_BLIP2;
    else
        return om_wset_fail(w, OM_EFORMAT, "metadata " K "variant must be \"clip\" or \"blip2\"");
    int rc;
    if ((rc = om_wset_key_u32(w, K "image_size", 1, 4096, &hp->image_size)) ||
        (rc = om_wset_key_u32(w, K "patch_size", 1, 64, &hp->patch_size)) ||
        (rc = om_wset_key_u32(w, K "embedding_length", 1, 16384, &hp->n_embd)) ||
        (rc = om_wset_key_u32(w, K "feed_forward_length", 1, 65536, &hp->n_ff)) ||
        (rc = om_wset_key_u32(w, K "block_count", 1, 256, &hp->n_layer)) ||
        (rc = om_wset_key_u32(w, K "attention.head_count", 1, 1024, &hp->n_head)) ||
        (rc = om_wset_key_u32_opt(w, K "projection_dim", 1, 65536, &hp->proj_dim)))
        return rc;
    if (hp->image_size % hp->patch_size)
        return om_wset_fail(w, OM_EFORMAT, "patch size %d does not divide image size %d", hp->patch_size,
                            hp->image_size);
    if (hp->n_embd % hp->n_head)
        return om_wset_fail(w, OM_EFORMAT, "%d heads do not divide width %d", hp->n_head, hp->n_embd);
    int g = hp->image_size / hp->patch_size;
    hp->n_patch = g * g;
    hp->n_tok = hp->n_patch + 1;
    if (hp->n_tok > 65535)
        return om_wset_fail(w, OM_ERANGE, "%d tokens per image exceed 65535", hp->n_tok);
    hp->eps = hp->variant == OM_VIT_CLIP ? 1e-5f : 1e-6f;
    if ((rc = om_wset_key_f32_opt(w, K "attention.layer_norm_epsilon", 0.0f, 1.0f, &hp->eps)))
        return rc;
    hp->act = hp->variant == OM_VIT_CLIP ? OM_UNARY_QUICK_GELU : OM_UNARY_GELU_ERF;
    if (om_gguf_find_kv(w->gguf, K "hidden_act")) {
        if (om_wset_key_is(w, K "hidden_act", "quick_gelu"))
            hp->act = OM_UNARY_QUICK_GELU;
        else if (om_wset_key_is(w, K "hidden_act", "gelu"))
            hp->act = OM_UNARY_GELU_ERF;
        else
            return om_wset_fail(w, OM_EUNSUPPORTED, "metadata " K "hidden_act must be quick_gelu or gelu");
    }
    if ((rc = read_norm_consts(v, K "image_mean", -10.0f, hp->mean)) ||
        (rc = read_norm_consts(v, K "image_std", 1e-6f, hp->std)))
        return rc;
    hp->resize = hp->variant == OM_VIT_CLIP ? OM_VIT_RESIZE_CROP : OM_VIT_RESIZE_SQUASH;
    if (om_gguf_find_kv(w->gguf, K "image_resize")) {
        if (om_wset_key_is(w, K "image_resize", "shortest_crop"))
            hp->resize = OM_VIT_RESIZE_CROP;
        else if (om_wset_key_is(w, K "image_resize", "squash"))
            hp->resize = OM_VIT_RESIZE_SQUASH;
        else
            return om_wset_fail(w, OM_EUNSUPPORTED, "metadata " K "image_resize must be shortest_crop or squash");
    }
    if (hp->variant == OM_VIT_BLIP2 && hp->proj_dim)
        return om_wset_fail(w, OM_EFORMAT, "the blip2 ViT has no projection, but " K "projection_dim is set");
    hp->out_dim = hp->proj_dim ? hp->proj_dim : hp->n_embd;
    return 0;
}

static int load_layer(om_vit *v, int i, vit_layer *l)
{
    const om_vit_hparams *hp = &v->hp;
    om_wset *w = &v->w;
    const int64_t D = hp->n_embd, F = hp->n_ff;
    char n[16][64];
    static const char *sfx[16] = { "ln1.weight", "ln1.bias", "attn_q.weight", "attn_q.bias", "attn_k.weight",
                                   "attn_k.bias", "attn_v.weight", "attn_v.bias", "attn_out.weight",
                                   "attn_out.bias", "ln2.weight", "ln2.bias", "ffn_up.weight", "ffn_up.bias",
                                   "ffn_down.weight", "ffn_down.bias" };
    for (int j = 0; j < 16; j++)
        snprintf(n[j], sizeof n[j], "v.blk.%d.%s", i, sfx[j]);
    int rc;
    if ((rc = om_wset_f32(w, n[0], D, 1, 0, &l->ln1_w)) || (rc = om_wset_f32(w, n[1], D, 1, 0, &l->ln1_b)) ||
        (rc = om_wset_matrix(w, n[2], D, D, &l->wq)) || (rc = om_wset_f32(w, n[3], D, 1, 0, &l->bq)) ||
        (rc = om_wset_matrix(w, n[4], D, D, &l->wk)) ||
        (rc = om_wset_matrix(w, n[6], D, D, &l->wv)) || (rc = om_wset_f32(w, n[7], D, 1, 0, &l->bv)) ||
        (rc = om_wset_matrix(w, n[8], D, D, &l->wo)) || (rc = om_wset_f32(w, n[9], D, 1, 0, &l->bo)) ||
        (rc = om_wset_f32(w, n[10], D, 1, 0, &l->ln2_w)) || (rc = om_wset_f32(w, n[11], D, 1, 0, &l->ln2_b)) ||
        (rc = om_wset_matrix(w, n[12], D, F, &l->w_up)) || (rc = om_wset_f32(w, n[13], F, 1, 0, &l->b_up)) ||
        (rc = om_wset_matrix(w, n[14], F, D, &l->w_down)) || (rc = om_wset_f32(w, n[15], D, 1, 0, &l->b_down)))
        return rc;
    /* HF's EVA attention has no key bias (a constant shift of every key would not
     * change the softmax anyway); CLIP's has one. */
    rc = om_wset_f32(w, n[5], D, 1, hp->variant == OM_VIT_BLIP2, &l->bk);
    return rc == OM_ENOENT ? 0 : rc;
}

static int load_weights(om_vit *v)
{
    const om_vit_hparams *hp = &v->hp;
    om_wset *w = &v->w;
    const int64_t D = hp->n_embd, P = hp->patch_size;
    const int64_t kne[4] = { P, P, 3, D };
    int clip = hp->variant == OM_VIT_CLIP, rc;
    if ((rc = om_wset_conv(w, "v.patch_embd.weight", kne, &v->patch_w)) ||
        (rc = om_wset_f32(w, "v.class_embd", D, 1, 0, &v->cls)) ||
        (rc = om_wset_f32(w, "v.position_embd.weight", D, hp->n_tok, 0, &v->pos)) ||
        (rc = om_wset_f32(w, "v.post_ln.weight", D, 1, 0, &v->post_w)) ||
        (rc = om_wset_f32(w, "v.post_ln.bias", D, 1, 0, &v->post_b)))
        return rc;
    if (!clip && (rc = om_wset_f32(w, "v.patch_embd.bias", D, 1, 0, &v->patch_b)))
        return rc;
    if (clip && ((rc = om_wset_f32(w, "v.pre_ln.weight", D, 1, 0, &v->pre_w)) ||
                 (rc = om_wset_f32(w, "v.pre_ln.bias", D, 1, 0, &v->pre_b))))
        return rc;
    if (hp->proj_dim && (rc = om_wset_matrix(w, "v.proj.weight", D, hp->proj_dim, &v->proj)))
        return rc;
    if (!hp->proj_dim && om_gguf_find_tensor(w->gguf, "v.proj.weight"))
        return om_wset_fail(w, OM_EFORMAT, "tensor v.proj.weight is present but " K "projection_dim is not");
    v->layers = calloc((size_t)hp->n_layer, sizeof *v->layers);
    if (!v->layers)
        return om_wset_fail(w, OM_ENOMEM, "out of memory");
    for (int i = 0; i < hp->n_layer; i++)
        if ((rc = load_layer(v, i, &v->layers[i])))
            return rc;
    return 0;
}

/* Bytes of one forward's activations for B frames (vit_forward.c's alloc_act): the
 * per-token tensors plus the attention scores and probabilities of every head. */
static uint64_t arena_bytes(const om_vit_hparams *hp, uint64_t B)
{
    const uint64_t S = (uint64_t)hp->image_size, T = (uint64_t)hp->n_tok, D = (uint64_t)hp->n_embd;
    const uint64_t Tp = (T + 3) & ~(uint64_t)3, H = (uint64_t)hp->n_head;
    uint64_t floats = B * (3 * S * S + (uint64_t)hp->n_patch * D + 9 * T * D + (uint64_t)hp->n_ff * T +
                           2 * D + (uint64_t)hp->out_dim + H * T * (T + Tp) + Tp * D);
    return floats * 4 + 32 * 256;
}

int om_vit_open(om_vit **out, om_gpu *gpu, const char *path, const om_vit_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    om_vit *v = calloc(1, sizeof *v);
    if (!v)
        return OM_ENOMEM;
    v->gpu = gpu;
    v->max_batch = opts && opts->max_batch > 0 ? opts->max_batch : 8;
    if (v->max_batch > 256)
        v->max_batch = 256;
    om_gguf *g = NULL;
    int rc = om_gguf_open(&g, path, NULL, v->err, sizeof v->err);
    om_wset_init(&v->w, gpu, g, v->err, sizeof v->err);
    if (!rc && !(rc = read_hparams(v)) && !(rc = load_weights(v))) {
        const om_vit_hparams *hp = &v->hp;
        uint64_t B = (uint64_t)v->max_batch, S = (uint64_t)hp->image_size;
        uint64_t up = B * 3 * S * S * 4, down = B * ((uint64_t)hp->out_dim + (uint64_t)hp->n_tok * hp->n_embd) * 4;
        rc = om_fwd_io_create(&v->w, arena_bytes(hp, B), up, down, &v->io);
    }
    /* Weights are on the device now: the mapping is not needed any more. */
    om_gguf_close(g);
    v->w.gguf = NULL;
    if (rc) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, v->err[0] ? v->err : om_strerror(rc));
        om_vit_close(v);
        return rc;
    }
    *out = v;
    return 0;
}

void om_vit_close(om_vit *v)
{
    if (!v)
        return;
    om_fwd_io_free(&v->io);
    om_wset_free(&v->w);
    free(v->layers);
    free(v);
}

const om_vit_hparams *om_vit_get_hparams(const om_vit *v) { return &v->hp; }
uint64_t om_vit_weight_bytes(const om_vit *v) { return v->w.bytes; }
const char *om_vit_last_error(const om_vit *v) { return v->err; }

