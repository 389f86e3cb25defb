#!/usr/bin/python3
"""mkvision: tiny random-weight vision components, written the way real ones are: a fake
Hugging Face checkpoint (config.json + model.safetensors with the public tensor names and
shapes) is generated, then tools/convert.py turns it into the omnid GGUF. numpy only.

  mkvision.py OUT_DIR [--type f32|f16] [--keep-hf]

writes OUT_DIR/{clip_vit,clip_vit_hd15,blip2,blip2_qformer,video_qformer,bind_vision,imagebind_vision}.gguf (and, with
--keep-hf, the fake checkpoints under OUT_DIR/hf/). The same generators feed
tools/golden/vision.py, so the PyTorch reference reads exactly these weights.

Inits make the models sensitive rather than realistic: q/k weights std 0.15 (sharp
attention), norm gains near 1 with visible biases, position embeddings large enough that
dropping them changes every output.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert  # noqa: E402
import safetensors  # noqa: E402

F32 = np.float32

# The tiny shapes every test uses.
CLIP = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            image_size=32, patch_size=8, projection_dim=48, hidden_act='quick_gelu', layer_norm_eps=1e-5)
# Head width 15 (not a multiple of 4): the ViT's fused-attention path.
CLIP_HD15 = dict(CLIP, hidden_size=60, intermediate_size=120, num_hidden_layers=1, projection_dim=24)
EVA = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
           image_size=28, patch_size=7, hidden_act='gelu', layer_norm_eps=1e-6)
QF = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
          cross_attention_frequency=2, encoder_hidden_size=48, layer_norm_eps=1e-12, hidden_act='gelu')
N_QUERY = 8
LLM_WIDTH = 96
VQF = dict(hidden=64, ff=128, layers=2, heads=4, n_query=6, frames=8)
HEAD = dict(width=64, joint=32)


class Gen:
    def __init__(self, seed):
        self.r = np.random.RandomState(seed)

    def n(self, shape, std):
        return (self.r.standard_normal(shape) * std).astype(F32)

    def linear(self, t, name, n_out, n_in, std=None, bias=True):
        t[name + '.weight'] = self.n((n_out, n_in), std if std else 1.0 / np.sqrt(n_in))
        if bias:
            t[name + '.bias'] = self.n((n_out,), 0.05)

    def norm(self, t, name, n):
        t[name + '.weight'] = (1.0 + self.n((n,), 0.1)).astype(F32)
        t[name + '.bias'] = self.n((n,), 0.05)


def clip_vision_ckpt(seed=1, proj=True, cfg=CLIP):
    g, t = Gen(seed), {}
    D, F, P = cfg['hidden_size'], cfg['intermediate_size'], cfg['patch_size']
    T = (cfg['image_size'] // P) ** 2 + 1
    s = 'vision_model.'
    t[s + 'embeddings.patch_embedding.weight'] = g.n((D, 3, P, P), 1.0 / np.sqrt(3 * P * P))
    t[s + 'embeddings.class_embedding'] = g.n((D,), 0.5)
    t[s + 'embeddings.position_embedding.weight'] = g.n((T, D), 0.5)
    g.norm(t, s + 'pre_layrnorm', D)
    for i in range(cfg['num_hidden_layers']):
        a = '%sencoder.layers.%d.' % (s, i)
        g.norm(t, a + 'layer_norm1', D)
        g.linear(t, a + 'self_attn.q_proj', D, D, 0.15)
        g.linear(t, a + 'self_attn.k_proj', D, D, 0.15)
        g.linear(t, a + 'self_attn.v_proj', D, D)
        g.linear(t, a + 'self_attn.out_proj', D, D)
        g.norm(t, a + 'layer_norm2', D)
        g.linear(t, a + 'mlp.fc1', F, D, 2.0 / np.sqrt(D))
        g.linear(t, a + 'mlp.fc2', D, F)
    g.norm(t, s + 'post_layernorm', D)
    config = {'architectures': ['CLIPVisionModelWithProjection' if proj else 'CLIPVisionModel']}
    config.update({k: v for k, v in cfg.items() if proj or k != 'projection_dim'})
    if proj:
        g.linear(t, 'visual_projection', cfg['projection_dim'], D, bias=False)
    return t, config


def blip2_ckpt(seed=2, vc=EVA, qc=QF):
    g, t = Gen(seed), {}
    D, F, P = vc['hidden_size'], vc['intermediate_size'], vc['patch_size']
    T = (vc['image_size'] // P) ** 2 + 1
    s = 'vision_model.'
    t[s + 'embeddings.patch_embedding.weight'] = g.n((D, 3, P, P), 1.0 / np.sqrt(3 * P * P))
    t[s + 'embeddings.patch_embedding.bias'] = g.n((D,), 0.1)
    t[s + 'embeddings.class_embedding'] = g.n((1, 1, D), 0.5)
    t[s + 'embeddings.position_embedding'] = g.n((1, T, D), 0.5)
    for i in range(vc['num_hidden_layers']):
        a = '%sencoder.layers.%d.' % (s, i)
        g.norm(t, a + 'layer_norm1', D)
        qkv = g.n((3 * D, D), 0.15)
        qkv[2 * D:] = g.n((D, D), 1.0 / np.sqrt(D))
        t[a + 'self_attn.qkv.weight'] = qkv
        t[a + 'self_attn.q_bias'] = g.n((D,), 0.05)
        t[a + 'self_attn.v_bias'] = g.n((D,), 0.05)
        g.linear(t, a + 'self_attn.projection', D, D)
        g.norm(t, a + 'layer_norm2', D)
        g.linear(t, a + 'mlp.fc1', F, D, 2.0 / np.sqrt(D))
        g.linear(t, a + 'mlp.fc2', D, F)
    g.norm(t, s + 'post_layernorm', D)
    qformer_layers(g, t, 'qformer.', 'layernorm', '.attention.', qc['hidden_size'], qc['intermediate_size'],
                   qc['num_hidden_layers'], qc['cross_attention_frequency'], qc['encoder_hidden_size'])
    t['query_tokens'] = g.n((1, N_QUERY, qc['hidden_size']), 1.0)
    g.linear(t, 'language_projection', LLM_WIDTH, qc['hidden_size'])
    config = {'architectures': ['Blip2ForConditionalGeneration'], 'num_query_tokens': N_QUERY,
              'vision_config': dict(vc), 'qformer_config': dict(qc),
              'text_config': {'hidden_size': LLM_WIDTH}}
    return t, config


def qformer_layers(g, t, pre, emb_ln, self_name, D, F, L, freq, W):
    g.norm(t, pre + emb_ln, D)
    for i in range(L):
        a = '%sencoder.layer.%d.' % (pre, i)
        parts = [('attention', D)] + ([('crossattention', W)] if i % freq == 0 else [])
        for part, kv_in in parts:
            sa = a + part + self_name
            g.linear(t, sa + 'query', D, D, 0.15)
            g.linear(t, sa + 'key', D, kv_in, 0.15)
            g.linear(t, sa + 'value', D, kv_in)
            g.linear(t, a + part + '.output.dense', D, D)
            g.norm(t, a + part + '.output.LayerNorm', D)
        g.linear(t, a + 'intermediate_query.dense', F, D)
        g.linear(t, a + 'output_query.dense', D, F)
        g.norm(t, a + 'output_query.LayerNorm', D)


def video_qformer_ckpt(seed=3, c=VQF):
    g, t = Gen(seed), {}
    qformer_layers(g, t, 'video_Qformer.bert.', 'embeddings.LayerNorm', '.self.', c['hidden'], c['ff'],
                   c['layers'], 1, c['hidden'])
    t['video_query_tokens'] = g.n((1, c['n_query'], c['hidden']), 1.0)
    t['video_frame_position_embedding.weight'] = g.n((c['frames'], c['hidden']), 1.0)
    g.linear(t, 'llama_proj', LLM_WIDTH, c['hidden'])
    return t, {}


def bind_head_ckpt(seed=4, c=HEAD):
    g, t = Gen(seed), {}
    g.norm(t, 'modality_heads.vision.0', c['width'])
    g.linear(t, 'modality_heads.vision.2', c['joint'], c['width'], bias=False)
    g.linear(t, 'llama_proj', LLM_WIDTH, c['joint'])
    return t, {}


IB = dict(width=64, heads=4, ff=128, layers=2, image=32, patch=8, joint=32)


def imagebind_vision_ckpt(seed=7, c=IB):
    """ImageBind's vision tower names: Conv3d stem over 2 frames, fused in_proj attention."""
    g, t = Gen(seed), {}
    D, F, P = c['width'], c['ff'], c['patch']
    T = (c['image'] // P) ** 2 + 1
    p, tr = 'modality_preprocessors.vision.', 'modality_trunks.vision.'
    t[p + 'cls_token'] = g.n((1, 1, D), 0.5)
    t[p + 'rgbt_stem.proj.1.weight'] = g.n((D, 3, 2, P, P), 1.0 / np.sqrt(6 * P * P))
    t[p + 'pos_embedding_helper.pos_embed'] = g.n((1, T, D), 0.5)
    g.norm(t, tr + 'pre_transformer_layer.0', D)
    for i in range(c['layers']):
        a = '%sblocks.%d.' % (tr, i)
        g.norm(t, a + 'norm_1', D)
        w = g.n((3 * D, D), 0.15)
        w[2 * D:] = g.n((D, D), 1.0 / np.sqrt(D))
        t[a + 'attn.in_proj_weight'] = w
        t[a + 'attn.in_proj_bias'] = g.n((3 * D,), 0.05)
        g.linear(t, a + 'attn.out_proj', D, D)
        g.norm(t, a + 'norm_2', D)
        g.linear(t, a + 'mlp.fc1', F, D, 2.0 / np.sqrt(D))
        g.linear(t, a + 'mlp.fc2', D, F)
    g.norm(t, 'modality_heads.vision.0', D)
    g.linear(t, 'modality_heads.vision.2', c['joint'], D, bias=False)
    g.linear(t, 'llama_proj', LLM_WIDTH, c['joint'])
    return t, {}


# name -> (generator, converter kind)
COMPONENTS = {
    'clip_vit': (clip_vision_ckpt, 'clip-vision'),
    'clip_vit_hd15': (lambda: clip_vision_ckpt(seed=6, cfg=CLIP_HD15), 'clip-vision'),
    'blip2': (blip2_ckpt, 'blip2'),
    'blip2_qformer': (blip2_ckpt, 'blip2-qformer'),
    'video_qformer': (video_qformer_ckpt, 'video-qformer'),
    'bind_vision': (bind_head_ckpt, 'imagebind-head'),
    'imagebind_vision': (imagebind_vision_ckpt, 'imagebind-vision'),
}


def write_ckpt(d, tensors, config):
    os.makedirs(d, exist_ok=True)
    safetensors.save(os.path.join(d, 'model.safetensors'), tensors)
    if config:
        with open(os.path.join(d, 'config.json'), 'w') as f:
            json.dump(config, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('--type', default='f32', choices=['f32', 'f16', 'q8_0', 'q4_0'])
    ap.add_argument('--keep-hf', action='store_true')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, (gen, kind) in COMPONENTS.items():
        hf = os.path.join(a.out, 'hf', name)
        write_ckpt(hf, *gen())
        out = os.path.join(a.out, name + ('' if a.type == 'f32' else '_' + a.type) + '.gguf')
        try:
            convert.convert(kind, hf, out, a.type, heads=4, name='tiny-' + name)
        except convert.ConvertError as e:
            print('mkvision: %s: %s' % (name, e), file=sys.stderr)
            return 1
        if not a.keep_hf:
            for f in os.listdir(hf):
                os.remove(os.path.join(hf, f))
            os.rmdir(hf)
    if not a.keep_hf and os.path.isdir(os.path.join(a.out, 'hf')) and not os.listdir(os.path.join(a.out, 'hf')):
        os.rmdir(os.path.join(a.out, 'hf'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
