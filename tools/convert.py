#!/usr/bin/python3
"""convert: Hugging Face vision checkpoints (config.json + *.safetensors) -> omnid GGUF.

  convert.py --from KIND SRC_DIR OUT.gguf [--type f32|f16]

KIND:
  clip-vision     CLIPVisionModel / CLIPVisionModelWithProjection / CLIPModel (vision tower)
  clip-text       CLIPTextModel(WithProjection) / CLIPModel text tower (weights kept for later)
  blip2           Blip2 (EVA ViT-g vision + Q-Former + language_projection), one file
  blip2-qformer   the Blip2 Q-Former alone (+ query tokens, language_projection)
  video-qformer   Video-LLaMA's visual branch (video_Qformer.bert.*, video_query_tokens,
                  video_frame_position_embedding, llama_proj) stored as safetensors
  imagebind-head  an ImageBind modality head (+ NExT-GPT llama_proj when present); --modality
  imagebind-vision  ImageBind's vision trunk + head (+ llama_proj) as a ViT + bind head; --heads

Tensor names and metadata keys are documented in docs/MODELS_GGUF.md. Matrices go out in
--type; norms, biases, embeddings and tokens stay f32 (what the C side computes with).
Anything missing or of the wrong shape stops the conversion with a message naming it.
"""
import argparse
import glob
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'mkllama'))
import safetensors  # noqa: E402
from mkllama import quantize_q4_0, quantize_q8_0  # noqa: E402  llama.cpp's reference quantizers

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

GGML = {'f32': 0, 'f16': 1, 'q4_0': 2, 'q8_0': 8}
QUANT = {'q8_0': quantize_q8_0, 'q4_0': quantize_q4_0}
U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------- GGUF writer (v3)

class Gguf:
    ALIGN = 32

    def __init__(self, arch, name):
        self.kv = []
        self.tensors = []
        self.names = set()
        self.str('general.architecture', arch)
        self.str('general.name', name)
        self.u32('general.alignment', self.ALIGN)

    def u32(self, k, v):
        self.kv.append((k, U32, struct.pack('<I', int(v))))

    def f32(self, k, v):
        self.kv.append((k, F32, struct.pack('<f', float(v))))

    def bool(self, k, v):
        self.kv.append((k, BOOL, struct.pack('<?', bool(v))))

    def str(self, k, v):
        self.kv.append((k, STR, self.s(v)))

    def f32_arr(self, k, v):
        self.kv.append((k, ARR, struct.pack('<iQ', F32, len(v)) + struct.pack('<%df' % len(v), *v)))

    @staticmethod
    def s(v):
        b = v.encode('utf-8')
        return struct.pack('<Q', len(b)) + b

    def tensor(self, name, x, tname='f32'):
        """x in PyTorch order; GGUF ne is the reverse. Quantized types need rows of a
        multiple of 32 values; other rows (and conv kernels, 4-D) fall back to f16."""
        if name in self.names:
            raise ConvertError('tensor %s written twice' % name)
        self.names.add(name)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if tname in QUANT and (x.ndim != 2 or x.shape[-1] % 32):
            tname = 'f16'
        if tname in QUANT:
            data = QUANT[tname](x)
        else:
            data = x.astype('<f2' if tname == 'f16' else '<f4').tobytes()
        self.tensors.append((name, list(reversed(x.shape)) or [1], GGML[tname], data))

    def write(self, path):
        head = b'GGUF' + struct.pack('<Iqq', 3, len(self.tensors), len(self.kv))
        for k, t, v in self.kv:
            head += self.s(k) + struct.pack('<i', t) + v
        off = 0
        for name, ne, t, data in self.tensors:
            head += self.s(name) + struct.pack('<I', len(ne)) + struct.pack('<%dq' % len(ne), *ne)
            head += struct.pack('<iQ', t, off)
            off += (len(data) + self.ALIGN - 1) // self.ALIGN * self.ALIGN
        head += b'\0' * ((-len(head)) % self.ALIGN)
        with open(path, 'wb') as f:
            f.write(head)
            for _, _, _, data in self.tensors:
                f.write(data + b'\0' * ((-len(data)) % self.ALIGN))


# ---------------------------------------------------------------- checkpoint access

def read_json(path):
    """A JSON object from path, {} when the file does not exist."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            v = json.load(f)
    except ValueError as e:
        raise ConvertError('%s: %s' % (path, e))
    if not isinstance(v, dict):
        raise ConvertError('%s is not a JSON object' % path)
    return v


class Ckpt:
    def __init__(self, src):
        files = sorted(glob.glob(os.path.join(src, '*.safetensors')))
        if not files:
            raise ConvertError('%s: no *.safetensors file' % src)
        self.t = {}
        for f in files:
            try:
                t, _ = safetensors.load(f)
            except safetensors.SafetensorsError as e:
                raise ConvertError(str(e))
            self.t.update(t)
        self.used = set()
        self.config = read_json(os.path.join(src, 'config.json'))
        self.pre = read_json(os.path.join(src, 'preprocessor_config.json'))

    def has(self, name):
        return name in self.t

    def get(self, name, shape):
        if name not in self.t:
            raise ConvertError('tensor %s is missing from the checkpoint' % name)
        a = self.t[name]
        if list(a.shape) != list(shape):
            raise ConvertError('tensor %s has shape %s, expected %s' % (name, list(a.shape), list(shape)))
        self.used.add(name)
        return a.astype(np.float32)


def cfg_int(cfg, key, what, lo=1, hi=1 << 20):
    v = cfg.get(key)
    if not isinstance(v, int) or not lo <= v <= hi:
        raise ConvertError('%s: config %s = %r is missing or out of [%d, %d]' % (what, key, v, lo, hi))
    return v


def linear(g, ck, src, dst, n_out, n_in, wtype, bias=True):
    g.tensor(dst + '.weight', ck.get(src + '.weight', [n_out, n_in]), wtype)
    if bias:
        g.tensor(dst + '.bias', ck.get(src + '.bias', [n_out]))


def norm(g, ck, src, dst, n):
    g.tensor(dst + '.weight', ck.get(src + '.weight', [n]))
    g.tensor(dst + '.bias', ck.get(src + '.bias', [n]))


# ---------------------------------------------------------------- vision towers

# Hugging Face config defaults: config.json files leave out keys that equal them.
CLIP_VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            image_size=224, patch_size=32, hidden_act='quick_gelu', layer_norm_eps=1e-5)
BLIP2_VISION_DEFAULTS = dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
                             image_size=224, patch_size=14, hidden_act='gelu', layer_norm_eps=1e-6)
QFORMER_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                        cross_attention_frequency=2, encoder_hidden_size=1408, layer_norm_eps=1e-12,
                        hidden_act='gelu')


def with_defaults(cfg, defaults):
    out = dict(defaults)
    out.update(cfg)
    return out


def vision_hparams(vc, what):
    hp = {k: cfg_int(vc, k, what) for k in ('hidden_size', 'intermediate_size', 'num_hidden_layers',
                                            'num_attention_heads', 'image_size', 'patch_size')}
    if hp['hidden_size'] % hp['num_attention_heads'] or hp['image_size'] % hp['patch_size']:
        raise ConvertError('%s: heads/patch do not divide width/image size' % what)
    return hp


def write_vision_keys(g, hp, variant, act, eps, mean, std, resize):
    p = 'clip.vision.'
    g.str(p + 'variant', variant)
    g.u32(p + 'image_size', hp['image_size'])
    g.u32(p + 'patch_size', hp['patch_size'])
    g.u32(p + 'embedding_length', hp['hidden_size'])
    g.u32(p + 'feed_forward_length', hp['intermediate_size'])
    g.u32(p + 'block_count', hp['num_hidden_layers'])
    g.u32(p + 'attention.head_count', hp['num_attention_heads'])
    g.f32(p + 'attention.layer_norm_epsilon', eps)
    g.str(p + 'hidden_act', act)
    g.f32_arr(p + 'image_mean', mean)
    g.f32_arr(p + 'image_std', std)
    g.str(p + 'image_resize', resize)


def convert_clip_vision(ck, g, wtype):
    cfg = with_defaults(ck.config.get('vision_config', ck.config), CLIP_VISION_DEFAULTS)
    hp = vision_hparams(cfg, 'clip-vision')
    act = cfg.get('hidden_act', 'quick_gelu')
    if act not in ('quick_gelu', 'gelu'):
        raise ConvertError('clip-vision: hidden_act %r is not supported (quick_gelu, gelu)' % act)
    D, F, P = hp['hidden_size'], hp['intermediate_size'], hp['patch_size']
    T = (hp['image_size'] // P) ** 2 + 1
    has_proj = ck.has('visual_projection.weight')
    write_vision_keys(g, hp, 'clip', act, cfg.get('layer_norm_eps', 1e-5),
                      ck.pre.get('image_mean', CLIP_MEAN), ck.pre.get('image_std', CLIP_STD), 'shortest_crop')
    s = 'vision_model.'
    g.tensor('v.patch_embd.weight', ck.get(s + 'embeddings.patch_embedding.weight', [D, 3, P, P]), wtype)
    g.tensor('v.class_embd', ck.get(s + 'embeddings.class_embedding', [D]))
    g.tensor('v.position_embd.weight', ck.get(s + 'embeddings.position_embedding.weight', [T, D]))
    norm(g, ck, s + 'pre_layrnorm', 'v.pre_ln', D)
    for i in range(hp['num_hidden_layers']):
        a, b = '%sencoder.layers.%d.' % (s, i), 'v.blk.%d.' % i
        norm(g, ck, a + 'layer_norm1', b + 'ln1', D)
        for hf, om in (('q_proj', 'attn_q'), ('k_proj', 'attn_k'), ('v_proj', 'attn_v'), ('out_proj', 'attn_out')):
            linear(g, ck, a + 'self_attn.' + hf, b + om, D, D, wtype)
        norm(g, ck, a + 'layer_norm2', b + 'ln2', D)
        linear(g, ck, a + 'mlp.fc1', b + 'ffn_up', F, D, wtype)
        linear(g, ck, a + 'mlp.fc2', b + 'ffn_down', D, F, wtype)
    norm(g, ck, s + 'post_layernorm', 'v.post_ln', D)
    if has_proj:
        E = ck.t['visual_projection.weight'].shape[0]
        g.u32('clip.vision.projection_dim', E)
        g.tensor('v.proj.weight', ck.get('visual_projection.weight', [E, D]), wtype)


def convert_eva_vision(ck, g, wtype):
    """The BLIP-2 EVA ViT (HF Blip2VisionModel): fused qkv without k bias, GELU, post-LN on all tokens."""
    cfg = ck.config.get('vision_config')
    if not isinstance(cfg, dict):
        raise ConvertError('blip2: config.json has no vision_config')
    cfg = with_defaults(cfg, BLIP2_VISION_DEFAULTS)
    hp = vision_hparams(cfg, 'blip2 vision')
    act = cfg.get('hidden_act', 'gelu')
    if act != 'gelu':
        raise ConvertError('blip2 vision: hidden_act %r is not supported (gelu)' % act)
    D, F, P = hp['hidden_size'], hp['intermediate_size'], hp['patch_size']
    T = (hp['image_size'] // P) ** 2 + 1
    write_vision_keys(g, hp, 'blip2', act, cfg.get('layer_norm_eps', 1e-6),
                      ck.pre.get('image_mean', CLIP_MEAN), ck.pre.get('image_std', CLIP_STD), 'squash')
    s = 'vision_model.'
    g.tensor('v.patch_embd.weight', ck.get(s + 'embeddings.patch_embedding.weight', [D, 3, P, P]), wtype)
    g.tensor('v.patch_embd.bias', ck.get(s + 'embeddings.patch_embedding.bias', [D]))
    g.tensor('v.class_embd', ck.get(s + 'embeddings.class_embedding', [1, 1, D]).reshape(D))
    g.tensor('v.position_embd.weight', ck.get(s + 'embeddings.position_embedding', [1, T, D]).reshape(T, D))
    for i in range(hp['num_hidden_layers']):
        a, b = '%sencoder.layers.%d.' % (s, i), 'v.blk.%d.' % i
        norm(g, ck, a + 'layer_norm1', b + 'ln1', D)
        qkv = ck.get(a + 'self_attn.qkv.weight', [3 * D, D])
        if ck.has(a + 'self_attn.q_bias'):
            qb, vb = ck.get(a + 'self_attn.q_bias', [D]), ck.get(a + 'self_attn.v_bias', [D])
        else:
            fused = ck.get(a + 'self_attn.qkv.bias', [3 * D])
            if np.any(fused[D:2 * D] != 0):
                raise ConvertError('%sself_attn.qkv.bias has a non-zero key part' % a)
            qb, vb = fused[:D], fused[2 * D:]
        g.tensor(b + 'attn_q.weight', qkv[:D], wtype)
        g.tensor(b + 'attn_q.bias', qb)
        g.tensor(b + 'attn_k.weight', qkv[D:2 * D], wtype)
        g.tensor(b + 'attn_v.weight', qkv[2 * D:], wtype)
        g.tensor(b + 'attn_v.bias', vb)
        linear(g, ck, a + 'self_attn.projection', b + 'attn_out', D, D, wtype)
        norm(g, ck, a + 'layer_norm2', b + 'ln2', D)
        linear(g, ck, a + 'mlp.fc1', b + 'ffn_up', F, D, wtype)
        linear(g, ck, a + 'mlp.fc2', b + 'ffn_down', D, F, wtype)
    norm(g, ck, s + 'post_layernorm', 'v.post_ln', D)


def convert_clip_text(ck, g, wtype):
    cfg = ck.config.get('text_config', ck.config)
    hp = {k: cfg_int(cfg, k, 'clip-text') for k in ('hidden_size', 'intermediate_size', 'num_hidden_layers',
                                                    'num_attention_heads', 'vocab_size',
                                                    'max_position_embeddings')}
    D, F = hp['hidden_size'], hp['intermediate_size']
    p = 'clip.text.'
    g.u32(p + 'embedding_length', D)
    g.u32(p + 'feed_forward_length', F)
    g.u32(p + 'block_count', hp['num_hidden_layers'])
    g.u32(p + 'attention.head_count', hp['num_attention_heads'])
    g.u32(p + 'context_length', hp['max_position_embeddings'])
    g.f32(p + 'attention.layer_norm_epsilon', cfg.get('layer_norm_eps', 1e-5))
    g.str(p + 'hidden_act', cfg.get('hidden_act', 'quick_gelu'))
    s = 'text_model.'
    g.tensor('t.token_embd.weight', ck.get(s + 'embeddings.token_embedding.weight', [hp['vocab_size'], D]), wtype)
    g.tensor('t.position_embd.weight',
             ck.get(s + 'embeddings.position_embedding.weight', [hp['max_position_embeddings'], D]))
    for i in range(hp['num_hidden_layers']):
        a, b = '%sencoder.layers.%d.' % (s, i), 't.blk.%d.' % i
        norm(g, ck, a + 'layer_norm1', b + 'ln1', D)
        for hf, om in (('q_proj', 'attn_q'), ('k_proj', 'attn_k'), ('v_proj', 'attn_v'), ('out_proj', 'attn_out')):
            linear(g, ck, a + 'self_attn.' + hf, b + om, D, D, wtype)
        norm(g, ck, a + 'layer_norm2', b + 'ln2', D)
        linear(g, ck, a + 'mlp.fc1', b + 'ffn_up', F, D, wtype)
        linear(g, ck, a + 'mlp.fc2', b + 'ffn_down', D, F, wtype)
    norm(g, ck, s + 'final_layer_norm', 't.post_ln', D)
    if ck.has('text_projection.weight'):
        E = ck.t['text_projection.weight'].shape[0]
        g.u32(p + 'projection_dim', E)
        g.tensor('t.proj.weight', ck.get('text_projection.weight', [E, D]), wtype)


# ---------------------------------------------------------------- Q-Formers

def write_qformer(ck, g, wtype, pre, names, hp, n_query, queries, frame_pos=None):
    """BERT-style post-LN layers; names maps our parts to the checkpoint's sub-names."""
    D, F, L, W = hp['hidden'], hp['ff'], hp['layers'], hp['encoder_width']
    p = 'qformer.'
    g.u32(p + 'embedding_length', D)
    g.u32(p + 'feed_forward_length', F)
    g.u32(p + 'block_count', L)
    g.u32(p + 'attention.head_count', hp['heads'])
    g.f32(p + 'attention.layer_norm_epsilon', hp['eps'])
    g.u32(p + 'cross_attention_frequency', hp['cross_freq'])
    g.u32(p + 'encoder_width', W)
    g.u32(p + 'query_count', n_query)
    g.str(p + 'hidden_act', 'gelu')
    g.tensor('q.query_embd', ck.get(queries, [1, n_query, D]).reshape(n_query, D))
    norm(g, ck, pre + names['emb_ln'], 'q.emb_ln', D)
    for i in range(L):
        a, b = '%sencoder.layer.%d.' % (pre, i), 'q.blk.%d.' % i
        for part, om, kv_in in (('attention', 'attn', D), ('crossattention', 'xattn', W)):
            if part == 'crossattention' and i % hp['cross_freq']:
                if ck.has(a + part + '.output.dense.weight'):
                    raise ConvertError('layer %d has cross-attention weights but cross_attention_frequency is %d'
                                       % (i, hp['cross_freq']))
                continue
            sa = a + part + names['self']
            linear(g, ck, sa + 'query', b + om + '_q', D, D, wtype)
            linear(g, ck, sa + 'key', b + om + '_k', D, kv_in, wtype)
            linear(g, ck, sa + 'value', b + om + '_v', D, kv_in, wtype)
            linear(g, ck, a + part + '.output.dense', b + om + '_out', D, D, wtype)
            norm(g, ck, a + part + '.output.LayerNorm', b + om + '_ln', D)
        linear(g, ck, a + 'intermediate_query.dense', b + 'ffn_up', F, D, wtype)
        linear(g, ck, a + 'output_query.dense', b + 'ffn_down', D, F, wtype)
        norm(g, ck, a + 'output_query.LayerNorm', b + 'ffn_ln', D)
    if frame_pos:
        n = ck.t[frame_pos].shape[0] if ck.has(frame_pos) else 0
        g.u32(p + 'frame_count', n)
        g.tensor('q.frame_pos_embd', ck.get(frame_pos, [n, D]))


def write_llm_proj(ck, g, wtype, name, d_in):
    if not ck.has(name + '.weight'):
        return
    n_out = ck.t[name + '.weight'].shape[0]
    g.u32('bind.llm_width', n_out)
    linear(g, ck, name, 'bind.llm_proj', n_out, d_in, wtype)


def blip2_qformer_hparams(ck):
    qc = ck.config.get('qformer_config')
    if not isinstance(qc, dict):
        raise ConvertError('blip2: config.json has no qformer_config')
    qc = with_defaults(qc, QFORMER_DEFAULTS)
    hp = {'hidden': cfg_int(qc, 'hidden_size', 'qformer'), 'ff': cfg_int(qc, 'intermediate_size', 'qformer'),
          'layers': cfg_int(qc, 'num_hidden_layers', 'qformer'),
          'heads': cfg_int(qc, 'num_attention_heads', 'qformer'),
          'cross_freq': cfg_int(qc, 'cross_attention_frequency', 'qformer'),
          'encoder_width': cfg_int(qc, 'encoder_hidden_size', 'qformer'),
          'eps': qc.get('layer_norm_eps', 1e-12)}
    if qc.get('hidden_act', 'gelu') != 'gelu':
        raise ConvertError('qformer: hidden_act %r is not supported (gelu)' % qc.get('hidden_act'))
    if hp['hidden'] % hp['heads']:
        raise ConvertError('qformer: %d heads do not divide hidden_size %d' % (hp['heads'], hp['hidden']))
    return hp, cfg_int(with_defaults(ck.config, {'num_query_tokens': 32}), 'num_query_tokens', 'blip2')


BLIP2_NAMES = {'emb_ln': 'layernorm', 'self': '.attention.'}
VL_NAMES = {'emb_ln': 'embeddings.LayerNorm', 'self': '.self.'}


def convert_blip2_qformer(ck, g, wtype):
    hp, nq = blip2_qformer_hparams(ck)
    write_qformer(ck, g, wtype, 'qformer.', BLIP2_NAMES, hp, nq, 'query_tokens')
    write_llm_proj(ck, g, wtype, 'language_projection', hp['hidden'])


def convert_blip2(ck, g, wtype):
    convert_eva_vision(ck, g, wtype)
    convert_blip2_qformer(ck, g, wtype)


def convert_video_qformer(ck, g, wtype, heads):
    pre = 'video_Qformer.bert.'
    if not ck.has('video_query_tokens'):
        raise ConvertError('tensor video_query_tokens is missing from the checkpoint')
    _, nq, D = ck.t['video_query_tokens'].shape
    L = 0
    while ck.has('%sencoder.layer.%d.attention.output.dense.weight' % (pre, L)):
        L += 1
    if L == 0:
        raise ConvertError('no %sencoder.layer.N tensors' % pre)
    up = '%sencoder.layer.0.intermediate_query.dense.weight' % pre
    key = '%sencoder.layer.0.crossattention.self.key.weight' % pre
    if not ck.has(up) or not ck.has(key):
        raise ConvertError('tensor %s or %s is missing from the checkpoint' % (up, key))
    if D % heads:
        raise ConvertError('video-qformer: %d heads do not divide width %d' % (heads, D))
    hp = {'hidden': D, 'ff': ck.t[up].shape[0], 'layers': L, 'heads': heads, 'cross_freq': 1,
          'encoder_width': ck.t[key].shape[1], 'eps': 1e-12}
    write_qformer(ck, g, wtype, pre, VL_NAMES, hp, nq, 'video_query_tokens', 'video_frame_position_embedding.weight')
    write_llm_proj(ck, g, wtype, 'llama_proj', D)


# ---------------------------------------------------------------- ImageBind head

HEAD_LINEAR = {'vision': 2, 'audio': 2, 'depth': 2, 'thermal': 2, 'imu': 3}
HEAD_SCALE = {'vision': None, 'audio': 20.0, 'depth': 5.0, 'thermal': 10.0, 'imu': 5.0}


def convert_imagebind_head(ck, g, wtype, modality):
    if modality not in HEAD_LINEAR:
        raise ConvertError('imagebind-head: --modality must be one of %s' % ', '.join(sorted(HEAD_LINEAR)))
    h = 'modality_heads.%s.' % modality
    if not ck.has(h + '0.weight'):
        raise ConvertError('tensor %s0.weight is missing from the checkpoint' % h)
    D = ck.t[h + '0.weight'].shape[0]
    lin = '%s%d.weight' % (h, HEAD_LINEAR[modality])
    if not ck.has(lin):
        raise ConvertError('tensor %s is missing from the checkpoint' % lin)
    E = ck.t[lin].shape[0]
    g.str('bind.modality', modality)
    g.u32('bind.embedding_length', D)
    g.u32('bind.joint_dim', E)
    g.u32('bind.head.token', 0)
    g.f32('bind.head.layer_norm_epsilon', 1e-6)
    scale = HEAD_SCALE[modality]
    post = 'modality_postprocessors.%s.1.log_logit_scale' % modality
    if ck.has(post):
        scale = float(np.exp(ck.get(post, list(ck.t[post].shape)).reshape(-1)[0]))
    if scale is not None:
        g.f32('bind.head.logit_scale', scale)
    norm(g, ck, h + '0', 'bind.head.ln', D)
    g.tensor('bind.head.proj.weight', ck.get(lin, [E, D]), wtype)
    write_llm_proj(ck, g, wtype, 'llama_proj', E)


def convert_imagebind_vision(ck, g, wtype, heads):
    """ImageBind's vision trunk (imagebind_huge.pth saved as safetensors) as a clip-variant ViT:
    the Conv3d stem over an image repeated to 2 frames is a Conv2d with the two time slices of the
    kernel summed; MultiheadAttention's fused in_proj is split into q, k, v; the head's LayerNorm
    and Linear become post_ln and proj, and the head is written once more as bind.head.* so that
    om_bind_head on the ViT's hidden state gives the L2-normalised joint embedding."""
    p, t = 'modality_preprocessors.vision.', 'modality_trunks.vision.'
    for name in (p + 'cls_token', p + 'rgbt_stem.proj.1.weight', p + 'pos_embedding_helper.pos_embed'):
        if not ck.has(name):
            raise ConvertError('tensor %s is missing from the checkpoint' % name)
    D = ck.t[p + 'cls_token'].shape[-1]
    kshape = ck.t[p + 'rgbt_stem.proj.1.weight'].shape
    if len(kshape) != 5 or kshape[0] != D or kshape[1] != 3 or kshape[2] != 2 or kshape[3] != kshape[4]:
        raise ConvertError('tensor %srgbt_stem.proj.1.weight has shape %s, expected [%d, 3, 2, P, P]'
                           % (p, list(kshape), D))
    P, T = kshape[3], ck.t[p + 'pos_embedding_helper.pos_embed'].shape[1]
    side = int(round((T - 1) ** 0.5))
    if side * side != T - 1:
        raise ConvertError('position embedding of %d tokens is not 1 + a square grid' % T)
    L = 0
    while ck.has('%sblocks.%d.attn.in_proj_weight' % (t, L)):
        L += 1
    fc1 = '%sblocks.0.mlp.fc1.weight' % t
    if L == 0 or not ck.has(fc1):
        raise ConvertError('no %sblocks.N tensors' % t)
    if D % heads:
        raise ConvertError('imagebind-vision: %d heads do not divide width %d' % (heads, D))
    F = ck.t[fc1].shape[0]
    E = ck.t['modality_heads.vision.2.weight'].shape[0] if ck.has('modality_heads.vision.2.weight') else 0
    if not E:
        raise ConvertError('tensor modality_heads.vision.2.weight is missing from the checkpoint')
    hp = {'hidden_size': D, 'intermediate_size': F, 'num_hidden_layers': L, 'num_attention_heads': heads,
          'image_size': side * P, 'patch_size': P}
    write_vision_keys(g, hp, 'clip', 'gelu', 1e-6, CLIP_MEAN, CLIP_STD, 'shortest_crop')
    g.u32('clip.vision.projection_dim', E)
    k3 = ck.get(p + 'rgbt_stem.proj.1.weight', [D, 3, 2, P, P])
    g.tensor('v.patch_embd.weight', k3[:, :, 0] + k3[:, :, 1], wtype)
    g.tensor('v.class_embd', ck.get(p + 'cls_token', [1, 1, D]).reshape(D))
    g.tensor('v.position_embd.weight', ck.get(p + 'pos_embedding_helper.pos_embed', [1, T, D]).reshape(T, D))
    norm(g, ck, t + 'pre_transformer_layer.0', 'v.pre_ln', D)
    for i in range(L):
        a, b = '%sblocks.%d.' % (t, i), 'v.blk.%d.' % i
        norm(g, ck, a + 'norm_1', b + 'ln1', D)
        w, bias = ck.get(a + 'attn.in_proj_weight', [3 * D, D]), ck.get(a + 'attn.in_proj_bias', [3 * D])
        for j, om in enumerate(('attn_q', 'attn_k', 'attn_v')):
            g.tensor(b + om + '.weight', w[j * D:(j + 1) * D], wtype)
            g.tensor(b + om + '.bias', bias[j * D:(j + 1) * D])
        linear(g, ck, a + 'attn.out_proj', b + 'attn_out', D, D, wtype)
        norm(g, ck, a + 'norm_2', b + 'ln2', D)
        linear(g, ck, a + 'mlp.fc1', b + 'ffn_up', F, D, wtype)
        linear(g, ck, a + 'mlp.fc2', b + 'ffn_down', D, F, wtype)
    norm(g, ck, 'modality_heads.vision.0', 'v.post_ln', D)
    g.tensor('v.proj.weight', ck.get('modality_heads.vision.2.weight', [E, D]), wtype)
    convert_imagebind_head(ck, g, wtype, 'vision')


# ---------------------------------------------------------------- driver

ARCH = {'clip-vision': 'clip-vision', 'clip-text': 'clip-text', 'blip2': 'blip2',
        'blip2-qformer': 'qformer', 'video-qformer': 'video-qformer', 'imagebind-head': 'bind',
        'imagebind-vision': 'imagebind'}


def convert(kind, src, out, wtype='f32', modality='vision', heads=12, name=None):
    if kind not in ARCH:
        raise ConvertError('unknown kind %r (one of %s)' % (kind, ', '.join(ARCH)))
    ck = Ckpt(src)
    g = Gguf(ARCH[kind], name or os.path.basename(os.path.normpath(src)))
    if kind == 'clip-vision':
        convert_clip_vision(ck, g, wtype)
    elif kind == 'clip-text':
        convert_clip_text(ck, g, wtype)
    elif kind == 'blip2':
        convert_blip2(ck, g, wtype)
    elif kind == 'blip2-qformer':
        convert_blip2_qformer(ck, g, wtype)
    elif kind == 'video-qformer':
        convert_video_qformer(ck, g, wtype, heads)
    elif kind == 'imagebind-vision':
        convert_imagebind_vision(ck, g, wtype, heads)
    else:
        convert_imagebind_head(ck, g, wtype, modality)
    g.write(out)
    return sorted(set(ck.t) - ck.used)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--from', dest='kind', required=True, choices=sorted(ARCH))
    ap.add_argument('src')
    ap.add_argument('out')
    ap.add_argument('--type', default='f16', choices=sorted(GGML),
                    help='type of the matrices (default f16; q8_0/q4_0 where rows are multiples of 32, else f16)')
    ap.add_argument('--modality', default='vision', help='imagebind-head: which head')
    ap.add_argument('--heads', type=int, default=12,
                    help='video-qformer, imagebind-vision: attention heads (not in the checkpoint; '
                         'Video-LLaMA 12, imagebind_huge 16)')
    ap.add_argument('--name', help='general.name (default: the source folder name)')
    a = ap.parse_args()
    try:
        unused = convert(a.kind, a.src, a.out, a.type, a.modality, a.heads, a.name)
    except (ConvertError, OSError, ValueError) as e:
        print('convert: %s' % e, file=sys.stderr)
        return 1
    if unused:
        print('convert: %d checkpoint tensors not used (e.g. %s)' % (len(unused), unused[0]), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
