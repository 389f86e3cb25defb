"""ShapesWorld models: the Video-LLaMA visual branch, a CLIP text tower, the video head and a
LLaMA LLM, as flat dictionaries of tensors under the public checkpoints' names, so that
export is a name-for-name dump and omnid's converters read them like the released files.

The vision forward functions are the ones the golden tests check omnid against
(tools/golden/vision.py: Blip2VisionModel, Blip2QFormerModel, Video-LLaMA's video Q-Former,
ImageBind's head); what is added here is batching over videos, the CLIP text tower
(HF CLIPTextModelWithProjection) and the LLaMA forward (HF LlamaForCausalLM: rotate_half
RoPE on q/k rows in HF order; the GGUF export permutes them as convert_hf_to_gguf.py does).

Sizes are chosen for training on two CPU cores within the issue's budget (docs/DEMO.md).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'golden'))
sys.path.insert(0, os.path.join(HERE, '..'))
import vision as ref  # noqa: E402  (the PyTorch references omnid's vision tests use)

JOINT = 64
VIT = dict(image_size=64, patch_size=8, hidden_size=96, intermediate_size=384, num_hidden_layers=4,
           num_attention_heads=4, layer_norm_eps=1e-6, hidden_act='gelu')
QF = dict(hidden_size=96, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
          cross_attention_frequency=1, encoder_hidden_size=96, layer_norm_eps=1e-12, hidden_act='gelu')
N_QUERY = 8
VQF = dict(hidden=96, ff=384, layers=2, heads=4, n_query=8, frames=8)
TEXT = dict(hidden_size=96, intermediate_size=384, num_hidden_layers=3, num_attention_heads=4,
            max_position_embeddings=32, hidden_act='quick_gelu', layer_norm_eps=1e-5, projection_dim=JOINT)
LLM = dict(n_embd=224, n_layer=4, n_head=7, n_head_kv=7, n_ff=576, ctx=256, eps=1e-5, rope_base=10000.0)
# The first packs' LLM. Its tensors and llama_proj were drawn from the generator everything else
# draws from; build still draws them there (and drops them), so that every other tensor starts
# where it did and the vision stages' checkpoints are still what this recipe trains.
FIRST_LLM = dict(n_embd=128, n_layer=4, n_head=4, n_head_kv=4, n_ff=384)
# Rows an audio or IMU embedding becomes in the LLM's input (NExT-GPT's input projection, one
# linear map per modality); as many as a video's, so one step packs all three alike.
AV_ROWS = 8
LLM_SEED = 7919                  # the LLM side's generator: seed + LLM_SEED
GRID = VIT['image_size'] // VIT['patch_size']   # patches per side
N_CLASSES = 1 + 6 * 5           # dense labels: background + colour x shape
N_MOTIONS = 7                   # world.MOTIONS; a scene label of 7 means the pair is absent
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Params:
    """Named tensors with their group (the checkpoint file each is exported to)."""

    def __init__(self, gen):
        self.t, self.group, self.gen = {}, {}, gen

    def new(self, group, name, shape, std=None, fill=None):
        if fill is not None:
            x = torch.full(shape, float(fill))
        else:
            x = torch.randn(shape, generator=self.gen) * std
        self.t[name] = x.requires_grad_(True)
        self.group[name] = group

    def linear(self, group, name, n_out, n_in, bias=True, std=None):
        self.new(group, name + '.weight', (n_out, n_in), std if std is not None else 1.0 / math.sqrt(n_in))
        if bias:
            self.new(group, name + '.bias', (n_out,), fill=0.0)

    def norm(self, group, name, n, bias=True):
        self.new(group, name + '.weight', (n,), fill=1.0)
        if bias:
            self.new(group, name + '.bias', (n,), fill=0.0)

    def of(self, *groups):
        return [v for k, v in self.t.items() if self.group[k] in groups]

    def state(self, group):
        return {k: v.detach().clone() for k, v in self.t.items() if self.group[k] == group}

    def load(self, state):
        with torch.no_grad():
            for k, v in state.items():
                self.t[k].copy_(v)


def qformer_params(p, group, pre, names, L, D, F_, W, freq):
    emb_ln, self_name = names
    p.norm(group, pre + emb_ln, D)
    for i in range(L):
        a = '%sencoder.layer.%d.' % (pre, i)
        for part, kv, on in (('attention', D, True), ('crossattention', W, i % freq == 0)):
            if not on:
                continue
            s = a + part + self_name
            p.linear(group, s + 'query', D, D)
            p.linear(group, s + 'key', D, kv)
            p.linear(group, s + 'value', D, kv)
            p.linear(group, a + part + '.output.dense', D, D)
            p.norm(group, a + part + '.output.LayerNorm', D)
        p.linear(group, a + 'intermediate_query.dense', F_, D)
        p.linear(group, a + 'output_query.dense', D, F_)
        p.norm(group, a + 'output_query.LayerNorm', D)


def build(n_vocab, seed):
    """Every trainable tensor, initialised from seed. Groups: blip2 (ViT + Q-Former), clip (text
    tower + both projections), video (video Q-Former + llama_proj), head (video head), llm,
    inproj (the audio and IMU input projections), aux (training-only heads, not exported)."""
    p = Params(torch.Generator().manual_seed(seed))
    D, Fv, P, S = VIT['hidden_size'], VIT['intermediate_size'], VIT['patch_size'], VIT['image_size']
    v = 'vision_model.'
    p.new('blip2', v + 'embeddings.patch_embedding.weight', (D, 3, P, P), 1.0 / math.sqrt(3 * P * P))
    p.new('blip2', v + 'embeddings.patch_embedding.bias', (D,), fill=0.0)
    p.new('blip2', v + 'embeddings.class_embedding', (1, 1, D), 0.02)
    p.new('blip2', v + 'embeddings.position_embedding', (1, (S // P) ** 2 + 1, D), 0.02)
    for i in range(VIT['num_hidden_layers']):
        a = '%sencoder.layers.%d.' % (v, i)
        p.norm('blip2', a + 'layer_norm1', D)
        p.new('blip2', a + 'self_attn.qkv.weight', (3 * D, D), 1.0 / math.sqrt(D))
        p.new('blip2', a + 'self_attn.q_bias', (D,), fill=0.0)
        p.new('blip2', a + 'self_attn.v_bias', (D,), fill=0.0)
        p.linear('blip2', a + 'self_attn.projection', D, D, std=0.5 / math.sqrt(D))
        p.norm('blip2', a + 'layer_norm2', D)
        p.linear('blip2', a + 'mlp.fc1', Fv, D)
        p.linear('blip2', a + 'mlp.fc2', D, Fv, std=0.5 / math.sqrt(Fv))
    p.norm('blip2', v + 'post_layernorm', D)
    Dq = QF['hidden_size']
    p.new('blip2', 'query_tokens', (1, N_QUERY, Dq), 0.5)
    qformer_params(p, 'blip2', 'qformer.', ('layernorm', '.attention.'), QF['num_hidden_layers'], Dq,
                   QF['intermediate_size'], D, QF['cross_attention_frequency'])

    Dt, Ft = TEXT['hidden_size'], TEXT['intermediate_size']
    t = 'text_model.'
    p.new('clip', t + 'embeddings.token_embedding.weight', (n_vocab, Dt), 0.02)
    p.new('clip', t + 'embeddings.position_embedding.weight', (TEXT['max_position_embeddings'], Dt), 0.01)
    for i in range(TEXT['num_hidden_layers']):
        a = '%sencoder.layers.%d.' % (t, i)
        p.norm('clip', a + 'layer_norm1', Dt)
        for n in ('q_proj', 'k_proj', 'v_proj'):
            p.linear('clip', a + 'self_attn.' + n, Dt, Dt)
        p.linear('clip', a + 'self_attn.out_proj', Dt, Dt, std=0.5 / math.sqrt(Dt))
        p.norm('clip', a + 'layer_norm2', Dt)
        p.linear('clip', a + 'mlp.fc1', Ft, Dt)
        p.linear('clip', a + 'mlp.fc2', Dt, Ft, std=0.5 / math.sqrt(Ft))
    p.norm('clip', t + 'final_layer_norm', Dt)
    p.linear('clip', 'text_projection', JOINT, Dt, bias=False)
    p.linear('clip', 'visual_projection', JOINT, D, bias=False)
    p.new('clip', 'logit_scale', (), fill=math.log(1 / 0.07))

    c = VQF
    p.new('video', 'video_query_tokens', (1, c['n_query'], c['hidden']), 0.5)
    # N(0, 1) as Video-LLaMA's nn.Embedding: at 0.1 the frame index was lost among the frame
    # tokens' contents, every video query averaged all frames, and no motion was learnt
    p.new('video', 'video_frame_position_embedding.weight', (c['frames'], c['hidden']), 1.0)
    qformer_params(p, 'video', 'video_Qformer.bert.', ('embeddings.LayerNorm', '.self.'), c['layers'], c['hidden'],
                   c['ff'], Dq, 1)
    Params(p.gen).linear('video', 'llama_proj', FIRST_LLM['n_embd'], c['hidden'])
    p.norm('head', 'modality_heads.vision.0', c['hidden'])
    p.linear('head', 'modality_heads.vision.2', JOINT, c['hidden'], bias=False)
    p.new('aux', 'video_logit_scale', (), fill=math.log(1 / 0.07))

    llm_params(Params(p.gen), n_vocab, FIRST_LLM)

    p.linear('aux', 'dense_head', N_CLASSES, D)
    p.linear('aux', 'scene_head', N_CLASSES - 1, c['n_query'] * c['hidden'])
    p.linear('aux', 'presence_head', N_CLASSES - 1, D)
    p.linear('aux', 'position_head', 2 * GRID, D)
    # last, so that adding it left every other initial value as it was
    p.linear('aux', 'frame_head', (N_CLASSES - 1) * 4, N_QUERY * Dq)
    Dv = c['hidden']
    p.new('aux', 'scene_query', (N_CLASSES - 1, Dv), std=1.0)
    p.linear('aux', 'scene_key', Dv, Dv)
    p.linear('aux', 'scene_value', Dv, Dv)
    p.linear('aux', 'scene_motion', N_MOTIONS, Dv)

    # the LLM side from a generator of its own: its size no longer moves anything else
    p.gen = torch.Generator().manual_seed(seed + LLM_SEED)
    E = LLM['n_embd']
    p.linear('video', 'llama_proj', E, c['hidden'])
    llm_params(p, n_vocab, LLM)
    # unit-norm embeddings in, rows of about the video rows' RMS out
    p.linear('inproj', 'audio_llama_proj', AV_ROWS * E, JOINT, std=1.0)
    p.linear('inproj', 'imu_llama_proj', AV_ROWS * E, JOINT, std=1.0)
    return p


def llm_params(p, n_vocab, cfg):
    E, Fl, L = cfg['n_embd'], cfg['n_ff'], cfg['n_layer']
    kv = E // cfg['n_head'] * cfg['n_head_kv']
    p.new('llm', 'model.embed_tokens.weight', (n_vocab, E), 0.02 * math.sqrt(E) / 4)
    for i in range(L):
        a = 'model.layers.%d.' % i
        p.norm('llm', a + 'input_layernorm', E, bias=False)
        p.linear('llm', a + 'self_attn.q_proj', E, E, bias=False)
        p.linear('llm', a + 'self_attn.k_proj', kv, E, bias=False)
        p.linear('llm', a + 'self_attn.v_proj', kv, E, bias=False)
        p.linear('llm', a + 'self_attn.o_proj', E, E, bias=False, std=0.5 / math.sqrt(E * L))
        p.norm('llm', a + 'post_attention_layernorm', E, bias=False)
        p.linear('llm', a + 'mlp.gate_proj', Fl, E, bias=False)
        p.linear('llm', a + 'mlp.up_proj', Fl, E, bias=False)
        p.linear('llm', a + 'mlp.down_proj', E, Fl, bias=False, std=0.5 / math.sqrt(Fl * L))
    p.norm('llm', 'model.norm', E, bias=False)
    p.linear('llm', 'lm_head', n_vocab, E, bias=False, std=0.02)


# ---------------------------------------------------------------- vision

def normalize_pixels(u8):
    """uint8 [B, S, S, 3] -> CLIP-normalised float [B, 3, S, S] (what om_vit_preprocess does)."""
    x = u8.float().div_(255.0).permute(0, 3, 1, 2)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def vit(w, px):
    """Blip2VisionModel: (pooled [B, D], post-LN tokens [B, 1 + patches, D])."""
    return ref.eva_vision(w, VIT, px)


def qformer_frames(w, feats):
    """BLIP-2 Q-Former over frame features [N, tokens, D] -> [N, N_QUERY, Dq]."""
    q = w['query_tokens'].expand(feats.shape[0], -1, -1)
    return ref.qformer(w, 'qformer.', 'layernorm', '.attention.', QF['num_hidden_layers'], QF['num_attention_heads'],
                       QF['cross_attention_frequency'], QF['layer_norm_eps'], q, feats)


def video_qformer(w, frames):
    """Video-LLaMA over [B, T, N_QUERY, D] frame tokens -> [B, n_query, D] video tokens."""
    B, T, Nq, D = frames.shape
    x = frames + w['video_frame_position_embedding.weight'][:T].view(1, T, 1, D)
    q = w['video_query_tokens'].expand(B, -1, -1)
    return ref.qformer(w, 'video_Qformer.bert.', 'embeddings.LayerNorm', '.self.', VQF['layers'], VQF['heads'], 1,
                       1e-12, q, x.reshape(B, T * Nq, D))


def video_head(w, tokens):
    """ImageBind head over the video tokens (what om_bind_head computes): LN -> token 0 -> Linear -> L2."""
    h = ref.ln(w, 'modality_heads.vision.0', tokens, 1e-6)[:, 0]
    return F.normalize(F.linear(h, w['modality_heads.vision.2.weight']), dim=-1)


def encode_video(w, feats):
    """Cached ViT features [B, T, tokens, D] -> video tokens [B, n_query, D]."""
    B, T = feats.shape[:2]
    fq = qformer_frames(w, feats.reshape(B * T, *feats.shape[2:]))
    return video_qformer(w, fq.view(B, T, *fq.shape[1:]))


def image_embed(w, pooled):
    return F.normalize(F.linear(pooled, w['visual_projection.weight']), dim=-1)


# ---------------------------------------------------------------- CLIP text tower

def text_tower(w, ids, eos):
    """CLIPTextModel with a causal mask over ids [B, L]; returns (last_hidden_state after the
    final LN [B, L, D], the L2-normalised projected state at each row's EOS position eos [B])."""
    B, L = ids.shape
    D, H, eps = TEXT['hidden_size'], TEXT['num_attention_heads'], TEXT['layer_norm_eps']
    t = 'text_model.'
    x = w[t + 'embeddings.token_embedding.weight'][ids] + w[t + 'embeddings.position_embedding.weight'][:L]
    mask = torch.full((L, L), float('-inf')).triu(1)
    for i in range(TEXT['num_hidden_layers']):
        a = '%sencoder.layers.%d.' % (t, i)
        h = ref.ln(w, a + 'layer_norm1', x, eps)
        q = ref.lin(w, a + 'self_attn.q_proj', h).view(B, L, H, -1).transpose(1, 2)
        k = ref.lin(w, a + 'self_attn.k_proj', h).view(B, L, H, -1).transpose(1, 2)
        v = ref.lin(w, a + 'self_attn.v_proj', h).view(B, L, H, -1).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // H) + mask, dim=-1)
        x = x + ref.lin(w, a + 'self_attn.out_proj', (att @ v).transpose(1, 2).reshape(B, L, D))
        h = ref.ln(w, a + 'layer_norm2', x, eps)
        x = x + ref.lin(w, a + 'mlp.fc2', ref.act('quick_gelu', ref.lin(w, a + 'mlp.fc1', h)))
    x = ref.ln(w, t + 'final_layer_norm', x, eps)
    pooled = x[torch.arange(B), eos]
    return x, F.normalize(F.linear(pooled, w['text_projection.weight']), dim=-1)


# ---------------------------------------------------------------- LLaMA

def rope_tables(pos, hd, base):
    """cos, sin of HF's rotate_half RoPE at positions pos [S] (or [B, 1, S] per row)."""
    inv = base ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = pos.float()[..., None] * inv
    return torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)


def rope(x, cos, sin):
    """RoPE on [B, H, S, hd] with rope_tables' cos, sin."""
    x1, x2 = x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def rms(x, g, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def llm_forward(w, emb, hidden=False, pos=None, mask=None, at=None):
    """LlamaForCausalLM on input embeddings [B, S, E]. Causal by default (right padding needs no
    mask since padded positions come after every real one); pos [B, S] and an additive mask
    [B, S, S] lay several sequences in one row instead (stages.lm_loss). Returns logits
    [B, S, V], or [n, V] at the n positions where the bool mask at [B, S] is set (and the
    final-norm hidden states when hidden)."""
    B, S, E = emb.shape
    H, Hkv, eps = LLM['n_head'], LLM['n_head_kv'], LLM['eps']
    hd = E // H
    pos = torch.arange(S) if pos is None else pos[:, None]
    mask = torch.full((S, S), float('-inf')).triu(1) if mask is None else mask[:, None]
    cos, sin = rope_tables(pos, hd, LLM['rope_base'])
    x = emb
    for i in range(LLM['n_layer']):
        a = 'model.layers.%d.' % i
        h = rms(x, w[a + 'input_layernorm.weight'], eps)
        q = F.linear(h, w[a + 'self_attn.q_proj.weight']).view(B, S, H, hd).transpose(1, 2)
        k = F.linear(h, w[a + 'self_attn.k_proj.weight']).view(B, S, Hkv, hd).transpose(1, 2)
        v = F.linear(h, w[a + 'self_attn.v_proj.weight']).view(B, S, Hkv, hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if Hkv != H:
            k, v = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        x = x + F.linear((att @ v).transpose(1, 2).reshape(B, S, E), w[a + 'self_attn.o_proj.weight'])
        h = rms(x, w[a + 'post_attention_layernorm.weight'], eps)
        g = F.silu(F.linear(h, w[a + 'mlp.gate_proj.weight'])) * F.linear(h, w[a + 'mlp.up_proj.weight'])
        x = x + F.linear(g, w[a + 'mlp.down_proj.weight'])
    x = rms(x, w['model.norm.weight'], eps)
    if at is not None:
        x = x[at]
    logits = F.linear(x, w['lm_head.weight'])
    return (logits, x) if hidden else logits


def embed_tokens(w, ids):
    """ids [B, S] with -1 where a video row goes -> token embeddings (rows filled by the caller)."""
    return w['model.embed_tokens.weight'][ids.clamp(min=0)]
