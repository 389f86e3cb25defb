"""Export: trained tensors -> Hugging Face-layout checkpoints (safetensors + config.json under
the public names) -> omnid's own converter (tools/convert.py) -> the pack's GGUF files, and the
LLM straight to a llama.cpp-layout GGUF (convert_hf_to_gguf.py's names, q/k permutation and
tokenizer keys). The HF folders are kept in the pack's hf/ so anyone can re-run the conversion.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'mkllama'))
import convert  # noqa: E402
import mkvision  # noqa: E402
import safetensors  # noqa: E402
from gguf_py import F32T, FILE_TYPE, STR, U32, Writer  # noqa: E402
from mkllama import permute_hf_to_gguf  # noqa: E402

import models  # noqa: E402
import vocab  # noqa: E402

PACK_INI = """# ShapesWorld: the demo pack trained by tools/shapesworld/train.py (docs/DEMO.md).
[pack]
name = shapesworld

[llm]
model = llm.gguf
chat_format = llama2

[video]
vision = blip2.gguf
model = video_qformer.gguf
projection = video_qformer.gguf
head = video_head.gguf
frames = {frames}
placeholder = <video>
"""


def np32(state):
    return {k: v.detach().cpu().float().numpy() for k, v in state.items()}


def write_hf(d, tensors, config, pre=None):
    mkvision.write_ckpt(d, tensors, config)
    if pre:
        with open(os.path.join(d, 'preprocessor_config.json'), 'w') as f:
            json.dump(pre, f, indent=1, sort_keys=True)


def write_llm(path, w, sp, name='shapesworld-llm'):
    """LLaMA GGUF as llama.cpp's converter writes it (f32: the model is small, and f32 keeps
    omnid's answers identical to PyTorch's)."""
    c = models.LLM
    E, H, Hkv = c['n_embd'], c['n_head'], c['n_head_kv']
    g = Writer()
    g.add('general.architecture', STR, 'llama')
    g.add('general.name', STR, name)
    g.add('general.file_type', U32, FILE_TYPE['f32'])
    g.add('llama.context_length', U32, c['ctx'])
    g.add('llama.embedding_length', U32, E)
    g.add('llama.block_count', U32, c['n_layer'])
    g.add('llama.feed_forward_length', U32, c['n_ff'])
    g.add('llama.attention.head_count', U32, H)
    g.add('llama.attention.head_count_kv', U32, Hkv)
    g.add('llama.attention.layer_norm_rms_epsilon', F32T, c['eps'])
    g.add('llama.rope.freq_base', F32T, c['rope_base'])
    g.add('llama.rope.dimension_count', U32, E // H)
    n_vocab = vocab.gguf_keys(g, sp)
    g.add('llama.vocab_size', U32, n_vocab)
    g.tensor('token_embd.weight', w['model.embed_tokens.weight'], 'f32')
    for i in range(c['n_layer']):
        a, b = 'model.layers.%d.' % i, 'blk.%d.' % i
        g.tensor(b + 'attn_norm.weight', w[a + 'input_layernorm.weight'], 'f32')
        g.tensor(b + 'attn_q.weight', permute_hf_to_gguf(w[a + 'self_attn.q_proj.weight'], H), 'f32')
        g.tensor(b + 'attn_k.weight', permute_hf_to_gguf(w[a + 'self_attn.k_proj.weight'], Hkv), 'f32')
        g.tensor(b + 'attn_v.weight', w[a + 'self_attn.v_proj.weight'], 'f32')
        g.tensor(b + 'attn_output.weight', w[a + 'self_attn.o_proj.weight'], 'f32')
        g.tensor(b + 'ffn_norm.weight', w[a + 'post_attention_layernorm.weight'], 'f32')
        g.tensor(b + 'ffn_gate.weight', w[a + 'mlp.gate_proj.weight'], 'f32')
        g.tensor(b + 'ffn_up.weight', w[a + 'mlp.up_proj.weight'], 'f32')
        g.tensor(b + 'ffn_down.weight', w[a + 'mlp.down_proj.weight'], 'f32')
    g.tensor('output_norm.weight', w['model.norm.weight'], 'f32')
    g.tensor('output.weight', w['lm_head.weight'], 'f32')
    g.write(path)


def export(p, sp, sp_path, out, wtype='f32'):
    """Writes the pack (GGUFs + pack.ini + hf/ checkpoints + tokenizer.model) into out."""
    hf = os.path.join(out, 'hf')
    pre = {'image_mean': list(models.CLIP_MEAN), 'image_std': list(models.CLIP_STD)}
    blip2 = np32(p.state('blip2'))
    write_hf(os.path.join(hf, 'blip2'), blip2,
             {'model_type': 'blip-2', 'num_query_tokens': models.N_QUERY, 'vision_config': models.VIT,
              'qformer_config': models.QF}, pre)
    video = np32(p.state('video'))
    write_hf(os.path.join(hf, 'video_qformer'), video,
             {'model_type': 'video-llama-video-qformer', 'num_attention_heads': models.VQF['heads'],
              'num_query_tokens': models.VQF['n_query'], 'max_frame_pos': models.VQF['frames']})
    write_hf(os.path.join(hf, 'video_head'), np32(p.state('head')),
             {'model_type': 'imagebind-head', 'modality': 'vision', 'joint_dim': models.JOINT})
    clip = np32(p.state('clip'))
    clip.pop('logit_scale')
    text_cfg = dict(models.TEXT, vocab_size=sp.get_piece_size(), bos_token_id=vocab.BOS,
                    eos_token_id=vocab.EOS, pad_token_id=0)
    write_hf(os.path.join(hf, 'clip_text'), {k: v for k, v in clip.items() if k != 'visual_projection.weight'},
             dict(text_cfg, model_type='clip_text_model'))
    write_hf(os.path.join(hf, 'clip_visual_projection'), {'visual_projection.weight': clip['visual_projection.weight']},
             {'model_type': 'clip-visual-projection', 'projection_dim': models.JOINT})
    heads = models.VQF['heads']
    for kind, src, dst in (('blip2', 'blip2', 'blip2.gguf'), ('video-qformer', 'video_qformer', 'video_qformer.gguf'),
                           ('imagebind-head', 'video_head', 'video_head.gguf'),
                           ('clip-text', 'clip_text', 'clip_text.gguf')):
        unused = convert.convert(kind, os.path.join(hf, src), os.path.join(out, dst), wtype, heads=heads,
                                 name='shapesworld-' + src)
        if unused:
            raise SystemExit('export: %s: tensors the converter did not use: %s' % (src, unused))
    llm = np32(p.state('llm'))
    c = models.LLM
    write_hf(os.path.join(hf, 'llm'), llm,
             {'model_type': 'llama', 'architectures': ['LlamaForCausalLM'], 'hidden_size': c['n_embd'],
              'num_hidden_layers': c['n_layer'], 'num_attention_heads': c['n_head'],
              'num_key_value_heads': c['n_head_kv'], 'intermediate_size': c['n_ff'],
              'max_position_embeddings': c['ctx'], 'rms_norm_eps': c['eps'], 'rope_theta': c['rope_base'],
              'vocab_size': sp.get_piece_size(), 'tie_word_embeddings': False, 'hidden_act': 'silu',
              'bos_token_id': vocab.BOS, 'eos_token_id': vocab.EOS})
    write_llm(os.path.join(out, 'llm.gguf'), llm, sp)
    # NExT-GPT's input projections: omnid has no audio or IMU stage to feed them yet
    write_hf(os.path.join(hf, 'input_projection'), np32(p.state('inproj')),
             {'model_type': 'nextgpt-input-projection', 'joint_dim': models.JOINT, 'rows': models.AV_ROWS,
              'hidden_size': c['n_embd'], 'modalities': ['audio', 'imu']})
    with open(sp_path, 'rb') as f, open(os.path.join(out, 'tokenizer.model'), 'wb') as g:
        g.write(f.read())
    with open(os.path.join(out, 'pack.ini'), 'w') as f:
        f.write(PACK_INI.format(frames=models.VQF['frames']))


def sizes(out):
    total = 0
    for root, _, files in os.walk(out):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


HF_PARTS = ('blip2', 'video_qformer', 'video_head', 'clip_text', 'clip_visual_projection', 'llm', 'input_projection')


def load_pack(pack, seed=0):
    """The PyTorch models of an exported pack, from its hf/ checkpoints: (Params, vocab)."""
    import torch
    sp = vocab.load(os.path.join(pack, 'tokenizer.model'))
    p = models.build(sp.get_piece_size(), seed)
    state = {}
    for part in HF_PARTS:
        t, _ = safetensors.load(os.path.join(pack, 'hf', part, 'model.safetensors'))
        state.update({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in t.items()})
    missing = sorted(k for k, g in p.group.items() if g not in ('aux',) and k not in state and k != 'logit_scale')
    if missing:
        raise ValueError('%s: tensors missing from hf/: %s' % (pack, missing[:5]))
    p.load({k: v for k, v in state.items() if k in p.t})
    return p, sp
