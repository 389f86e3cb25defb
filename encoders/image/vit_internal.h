/* vit_internal.h: the om_vit struct shared by loading (vit_model.c), the forward pass
 * (vit_forward.c) and preprocessing (vit_preprocess.c). Not part of the public API. */
#ifndef OM_VIT_INTERNAL_H
#define OM_VIT_INTERNAL_H

#include "om_ops.h"
#include "om_vit.h"
#include "om_weights.h"

typedef struct vit_layer {
    om_tensor ln1_w, ln1_b, ln2_w, ln2_b;
    om_tensor wq, bq, wk, bk, wv, bv, wo, bo;   /* bk.buf == NULL: no key bias (blip2) */
    om_tensor w_up, b_up, w_down, b_down;
} vit_layer;

struct om_vit {
    om_gpu         *gpu;
    om_vit_hparams  hp;
    om_wset         w;
    om_tensor       patch_w, patch_b;           /* patch_b.buf == NULL: no bias (clip) */
    om_tensor       cls, pos;                   /* {D}, {D, n_tok} */
    om_tensor       pre_w, pre_b;               /* clip only */
    om_tensor       post_w, post_b;
    om_tensor       proj;                       /* {D, proj_dim}; buf NULL: none */
    vit_layer      *layers;
    int             max_batch;
    om_fwd_io       io;              /* activations and staging of one forward */
    char            err[512];
};

#endif
