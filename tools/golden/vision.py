#!/usr/bin/python3
"""PyTorch references for the vision components, written from the Hugging Face module
semantics (transformers is not installed): CLIPVisionModelWithProjection, Blip2VisionModel
(EVA ViT), Blip2QFormerModel, Video-LLaMA's video Q-Former branch, and ImageBind's vision
head + NExT-GPT's llama_proj. The weights are the fake HF checkpoints of tools/mkvision.py
(same seeds), read by their public names, so the C side is checked through the converter too.

  vision.py OUT_DIR      writes the goldens (tests/vision/golden/)

Each model is also run with one deliberate mistake (GELU for QuickGELU, cross-attention
frequency off by one, no position embeddings, no frame positions, no post-LN, ...); the
script fails unless every mistake moves the output by far more than the C tests' tolerance,
so the goldens can tell a right implementation from a plausible wrong one.
"""
import math
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import mkvision  # noqa: E402
from mkllama import quantize_q8_0  # noqa: E402  (on sys.path through mkvision -> convert)

torch.set_num_threads(1)
TOL = 1e-4          # the atol and rtol the C tests use for f32 weights


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a)).double()


def lin(w, p, x, bias=True):
    return F.linear(x, w[p + '.weight'], w[p + '.bias'] if bias else None)


def ln(w, p, x, eps):
    return F.layer_norm(x, (x.shape[-1],), w[p + '.weight'], w[p + '.bias'], eps)


def act(name, x):
    if name == 'quick_gelu':
        return x * torch.sigmoid(1.702 * x)
    return F.gelu(x)


def mha(q, k, v, heads):
    """[B, Tq, D], [B, Tk, D] -> [B, Tq, D]; scores scaled by 1/sqrt(head_dim), no mask."""
    B, Tq, D = q.shape
    hd = D // heads
    q = q.view(B, Tq, heads, hd).transpose(1, 2)
    k = k.view(B, -1, heads, hd).transpose(1, 2)
    v = v.view(B, -1, heads, hd).transpose(1, 2)
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
    return (p @ v).transpose(1, 2).reshape(B, Tq, D)


# Matrices the converter writes in --type: Linear weights (not embeddings, norms or conv kernels).
MATRIX = re.compile(r'(q_proj|k_proj|v_proj|out_proj|fc1|fc2|visual_projection|qkv|projection|query|key|value|'
                    r'dense|language_projection|llama_proj)\.weight$')


def as_stored(tensors, wtype):
    """The weights as a --type wtype file holds them (tools/convert.py): matrices in f16, or for
    q8_0 in llama.cpp's blocks where rows are multiples of 32 (dequantized here exactly as the
    kernels do) and f16 otherwise; the patch-conv kernel in f16; everything else f32."""
    out = {}
    for k, v in tensors.items():
        matrix = MATRIX.search(k) and v.ndim == 2
        if wtype == 'q8_0' and matrix and v.shape[-1] % 32 == 0:
            b = np.frombuffer(quantize_q8_0(v), dtype=[('d', '<f2'), ('qs', 'i1', 32)])
            v = (b['d'].astype(np.float32)[:, None] * b['qs'].astype(np.float32)).reshape(v.shape)
        elif matrix or k.endswith('patch_embedding.weight'):
            v = v.astype(np.float16).astype(np.float32)
        out[k] = v
    return out


# ---------------------------------------------------------------- ViTs

def clip_vision(w, cfg, px, bug=None):
    D, H, P = cfg['hidden_size'], cfg['num_attention_heads'], cfg['patch_size']
    eps = cfg['layer_norm_eps']
    s = 'vision_model.'
    B = px.shape[0]
    x = F.conv2d(px, w[s + 'embeddings.patch_embedding.weight'], stride=P).flatten(2).transpose(1, 2)
    x = torch.cat([w[s + 'embeddings.class_embedding'].expand(B, 1, D), x], 1)
    if bug != 'no_pos':
        x = x + w[s + 'embeddings.position_embedding.weight']
    x = ln(w, s + 'pre_layrnorm', x, eps)
    for i in range(cfg['num_hidden_layers']):
        a = '%sencoder.layers.%d.' % (s, i)
        h = ln(w, a + 'layer_norm1', x, eps)
        h = mha(lin(w, a + 'self_attn.q_proj', h), lin(w, a + 'self_attn.k_proj', h),
                lin(w, a + 'self_attn.v_proj', h), H)
        x = x + lin(w, a + 'self_attn.out_proj', h)
        h = ln(w, a + 'layer_norm2', x, eps)
        h = act('gelu' if bug == 'gelu' else cfg['hidden_act'], lin(w, a + 'mlp.fc1', h))
        x = x + lin(w, a + 'mlp.fc2', h)
    last = x
    pooled = ln(w, s + 'post_layernorm', last[:, 0], eps)
    return pooled @ w['visual_projection.weight'].T, last


def eva_vision(w, cfg, px, bug=None):
    """Blip2VisionModel: returns (pooled = post_ln(post_ln(h)[:, 0]), last = post_ln(h))."""
    D, H, P = cfg['hidden_size'], cfg['num_attention_heads'], cfg['patch_size']
    eps = cfg['layer_norm_eps']
    s = 'vision_model.'
    B = px.shape[0]
    x = F.conv2d(px, w[s + 'embeddings.patch_embedding.weight'], w[s + 'embeddings.patch_embedding.bias'],
                 stride=P).flatten(2).transpose(1, 2)
    x = torch.cat([w[s + 'embeddings.class_embedding'].expand(B, 1, D), x], 1)
    x = x + w[s + 'embeddings.position_embedding'][:, :x.shape[1]]
    for i in range(cfg['num_hidden_layers']):
        a = '%sencoder.layers.%d.' % (s, i)
        h = ln(w, a + 'layer_norm1', x, eps)
        zero = torch.zeros_like(w[a + 'self_attn.q_bias'])
        vb = zero if bug == 'no_v_bias' else w[a + 'self_attn.v_bias']
        qkv = F.linear(h, w[a + 'self_attn.qkv.weight'], torch.cat([w[a + 'self_attn.q_bias'], zero, vb]))
        q, k, v = qkv.split(D, dim=-1)
        x = x + lin(w, a + 'self_attn.projection', mha(q, k, v, H))
        h = ln(w, a + 'layer_norm2', x, eps)
        h = act('quick_gelu' if bug == 'quick_gelu' else 'gelu', lin(w, a + 'mlp.fc1', h))
        x = x + lin(w, a + 'mlp.fc2', h)
    last = x if bug == 'no_post_ln' else ln(w, s + 'post_layernorm', x, eps)
    pooled = ln(w, s + 'post_layernorm', last[:, 0], eps)
    return pooled, last


# ---------------------------------------------------------------- Q-Formers

def qformer(w, pre, emb_ln, self_name, L, H, freq, eps, query, enc, bug=None):
    """Blip2QFormerModel on query embeddings [B, Nq, D] with encoder states [B, N, W]
    (masks all ones). BERT post-LN layers; cross-attention when layer % freq == 0."""
    h = ln(w, pre + emb_ln, query, eps)
    if bug == 'freq_off_by_one':
        freq_test = lambda i: i % freq == 1  # noqa: E731
    else:
        freq_test = lambda i: i % freq == 0  # noqa: E731
    for i in range(L):
        a = '%sencoder.layer.%d.' % (pre, i)
        for part, kv, on in (('attention', None, True), ('crossattention', enc, freq_test(i))):
            if not on:
                continue
            src = h if kv is None else kv
            pa = a + part + self_name
            if part == 'crossattention' and bug == 'freq_off_by_one' and pa + 'query.weight' not in w:
                pa = '%sencoder.layer.%d.%s%s' % (pre, i - 1, part, self_name)
                a_out = '%sencoder.layer.%d.%s' % (pre, i - 1, part)
            else:
                a_out = a + part
            o = mha(lin(w, pa + 'query', h), lin(w, pa + 'key', src), lin(w, pa + 'value', src), H)
            h = ln(w, a_out + '.output.LayerNorm', h + lin(w, a_out + '.output.dense', o), eps)
        f = act('quick_gelu' if bug == 'quick_gelu' else 'gelu', lin(w, a + 'intermediate_query.dense', h))
        h = ln(w, a + 'output_query.LayerNorm', h + lin(w, a + 'output_query.dense', f), eps)
    return h


def blip2_qformer(w, config, enc, bug=None):
    qc = config['qformer_config']
    B = enc.shape[0]
    q = w['query_tokens'].expand(B, -1, -1)
    h = qformer(w, 'qformer.', 'layernorm', '.attention.', qc['num_hidden_layers'], qc['num_attention_heads'],
                qc['cross_attention_frequency'], qc['layer_norm_eps'], q, enc, bug)
    return h, lin(w, 'language_projection', h)


def video_qformer(w, frames, bug=None):
    """Video-LLaMA: frame t's query outputs + frame position t, all frames' tokens as one
    sequence, the video Q-Former (cross-attention every layer), llama_proj."""
    c = mkvision.VQF
    Tn, Nq, D = frames.shape
    x = frames
    if bug != 'no_frame_pos':
        x = x + w['video_frame_position_embedding.weight'][:Tn].unsqueeze(1)
    enc = x.reshape(1, Tn * Nq, D)
    h = qformer(w, 'video_Qformer.bert.', 'embeddings.LayerNorm', '.self.', c['layers'], c['heads'], 1, 1e-12,
                w['video_query_tokens'], enc, bug)
    return h, lin(w, 'llama_proj', h)


def imagebind_vision(w, px, bug=None):
    """ImageBind vision: PadIm2Video (repeat to 2 frames) -> Conv3d -> [CLS, patches] + pos ->
    LN(1e-6) -> pre-LN blocks with nn.MultiheadAttention (fused in_proj) and GELU -> head
    (LN -> CLS -> Linear) -> L2 normalise. Returns (embedding, unnormalised, trunk output)."""
    c = mkvision.IB
    p, tr = 'modality_preprocessors.vision.', 'modality_trunks.vision.'
    B, D = px.shape[0], c['width']
    video = px.unsqueeze(2).repeat(1, 1, 2, 1, 1)
    k = w[p + 'rgbt_stem.proj.1.weight']
    if bug == 'one_frame':
        k = torch.cat([k[:, :, :1] * 2, k[:, :, :1] * 0], 2)
    x = F.conv3d(video, k, stride=(2, c['patch'], c['patch'])).flatten(2).transpose(1, 2)
    x = torch.cat([w[p + 'cls_token'].expand(B, 1, D), x], 1) + w[p + 'pos_embedding_helper.pos_embed']
    x = ln(w, tr + 'pre_transformer_layer.0', x, 1e-6)
    for i in range(c['layers']):
        a = '%sblocks.%d.' % (tr, i)
        h = ln(w, a + 'norm_1', x, 1e-6)
        q, kk, v = F.linear(h, w[a + 'attn.in_proj_weight'], w[a + 'attn.in_proj_bias']).split(D, dim=-1)
        x = x + lin(w, a + 'attn.out_proj', mha(q, kk, v, c['heads']))
        h = ln(w, a + 'norm_2', x, 1e-6)
        x = x + lin(w, a + 'mlp.fc2', act('quick_gelu' if bug == 'quick_gelu' else 'gelu', lin(w, a + 'mlp.fc1', h)))
    e = F.linear(ln(w, 'modality_heads.vision.0', x, 1e-6)[:, 0], w['modality_heads.vision.2.weight'])
    return F.normalize(e, dim=-1), e, x


def bind_head(w, x, bug=None):
    """ImageBind vision head: LN(1e-6) -> token 0 -> Linear (no bias) -> L2 normalise."""
    h = ln(w, 'modality_heads.vision.0', x, 1e-6)[:, 1 if bug == 'token1' else 0]
    e = F.linear(h, w['modality_heads.vision.2.weight'])
    if bug != 'no_l2':
        e = F.normalize(e, dim=-1)
    return e, lin(w, 'llama_proj', e)


# ---------------------------------------------------------------- driver

def save(out, name, a):
    np.save(os.path.join(out, name + '.npy'), np.ascontiguousarray(a.detach().numpy() if torch.is_tensor(a) else a,
                                                                      dtype=np.float32))


def check_sensitive(what, good, bad):
    d = (good - bad).abs().max().item()
    scale = good.abs().max().item()
    print('  %-32s max |diff| %.3g (output max %.3g)' % (what, d, scale))
    if d < 10 * TOL * (1.0 + scale):
        raise SystemExit('golden for %s is not sensitive to that mistake' % what)


def main():
    if len(sys.argv) != 2:
        raise SystemExit('usage: vision.py OUT_DIR')
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    r = np.random.RandomState(10)

    tw, tcfg = mkvision.clip_vision_ckpt()
    w = {k: T(v) for k, v in tw.items()}
    S = tcfg['image_size']
    px = T(r.standard_normal((2, 3, S, S)).astype(np.float32))
    emb, last = clip_vision(w, tcfg, px)
    save(out, 'clip_pixels', px)
    save(out, 'clip_embeds', emb)
    save(out, 'clip_hidden', last)
    for bug in ('gelu', 'no_pos'):
        check_sensitive('clip ' + bug, emb, clip_vision(w, tcfg, px, bug)[0])
    for wtype in ('f16', 'q8_0'):
        emb_q, last_q = clip_vision({k: T(v) for k, v in as_stored(tw, wtype).items()}, tcfg, px)
        save(out, 'clip_%s_embeds' % wtype, emb_q)
        save(out, 'clip_%s_hidden' % wtype, last_q)
    ow, ocfg = mkvision.clip_vision_ckpt(seed=6, cfg=mkvision.CLIP_HD15)
    emb, last = clip_vision({k: T(v) for k, v in ow.items()}, ocfg, px)
    save(out, 'clip_hd15_embeds', emb)
    save(out, 'clip_hd15_hidden', last)

    bw, bcfg = mkvision.blip2_ckpt()
    w = {k: T(v) for k, v in bw.items()}
    vc = bcfg['vision_config']
    S = vc['image_size']
    px = T(r.standard_normal((2, 3, S, S)).astype(np.float32))
    pooled, feats = eva_vision(w, vc, px)
    save(out, 'eva_pixels', px)
    save(out, 'eva_pooled', pooled)
    save(out, 'eva_hidden', feats)
    for bug in ('quick_gelu', 'no_v_bias', 'no_post_ln'):
        check_sensitive('eva ' + bug, feats, eva_vision(w, vc, px, bug)[1])

    qh, qproj = blip2_qformer(w, bcfg, feats)
    for wtype in ('f16', 'q8_0'):
        stored = {k: T(v) for k, v in as_stored(bw, wtype).items()}
        save(out, 'qformer_%s_out' % wtype, blip2_qformer(stored, bcfg, feats)[0])
    save(out, 'qformer_out', qh)
    save(out, 'qformer_proj', qproj)
    for bug in ('freq_off_by_one', 'quick_gelu'):
        check_sensitive('qformer ' + bug, qh, blip2_qformer(w, bcfg, feats, bug)[0])

    vw, _ = mkvision.video_qformer_ckpt()
    w = {k: T(v) for k, v in vw.items()}
    frames = T(r.standard_normal((3, mkvision.N_QUERY, mkvision.VQF['hidden'])).astype(np.float32))
    vh, vproj = video_qformer(w, frames)
    save(out, 'vqformer_frames', frames)
    save(out, 'vqformer_out', vh[0])
    save(out, 'vqformer_proj', vproj[0])
    check_sensitive('video qformer no_frame_pos', vh, video_qformer(w, frames, 'no_frame_pos')[0])
    # The whole visual branch (om_videnc): the EVA frames' Q-Former outputs into the video Q-Former.
    save(out, 'videnc_out', video_qformer(w, qh)[0][0])

    hw, _ = mkvision.bind_head_ckpt()
    w = {k: T(v) for k, v in hw.items()}
    x = T(r.standard_normal((2, 5, mkvision.HEAD['width'])).astype(np.float32))
    e, p = bind_head(w, x)
    save(out, 'bind_in', x)
    save(out, 'bind_embed', e)
    save(out, 'bind_proj', p)
    for bug in ('token1', 'no_l2'):
        check_sensitive('bind ' + bug, e, bind_head(w, x, bug)[0])

    # Preprocessing: an RGB image already at the model size (no resampling), as floats 0..255.
    rgb = r.randint(0, 256, size=(tcfg['image_size'], tcfg['image_size'], 3)).astype(np.float32)
    mean, std = np.array(mkvision.convert.CLIP_MEAN), np.array(mkvision.convert.CLIP_STD)
    norm = ((rgb / 255.0 - mean) / std).transpose(2, 0, 1)
    save(out, 'pre_rgb', rgb)
    save(out, 'pre_pixels', norm)

    iw, _ = mkvision.imagebind_vision_ckpt()
    w = {k: T(v) for k, v in iw.items()}
    px = T(np.load(os.path.join(out, 'clip_pixels.npy')))     # the same 32x32 input as CLIP
    e, eu, trunk = imagebind_vision(w, px)
    save(out, 'ib_embed', e)
    save(out, 'ib_proj', eu)
    save(out, 'ib_hidden', trunk)
    for bug in ('one_frame', 'quick_gelu'):
        check_sensitive('imagebind ' + bug, e, imagebind_vision(w, px, bug)[0])


if __name__ == '__main__':
    main()
