#!/usr/bin/python3
"""tools/convert.py on fake Hugging Face checkpoints with the public tensor names and shapes
(tools/mkvision.py's generators): every GGUF tensor is read back with an independent reader
and compared with the checkpoint tensor it must come from; hostile checkpoints and
safetensors files must be refused with a message naming the problem. numpy only."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import convert  # noqa: E402
import mkllama  # noqa: E402  (on sys.path through convert)
import mkvision  # noqa: E402
import safetensors  # noqa: E402


def read_gguf(path):
    """Minimal independent GGUF v3 reader: ({key: value}, {name: np.ndarray in PyTorch order, or
    the raw bytes of a quantized tensor}, {name: ggml type})."""
    b = open(path, 'rb').read()
    assert b[:4] == b'GGUF'
    ver, nt, nkv = struct.unpack_from('<Iqq', b, 4)
    assert ver == 3
    o = 24

    def s():
        nonlocal o
        n, = struct.unpack_from('<Q', b, o)
        o += 8 + n
        return b[o - n:o].decode()

    fmt = {4: '<I', 5: '<i', 6: '<f', 7: '<?'}
    kv = {}
    for _ in range(nkv):
        k = s()
        t, = struct.unpack_from('<i', b, o)
        o += 4
        if t == 8:
            kv[k] = s()
        elif t == 9:
            at, n = struct.unpack_from('<iQ', b, o)
            o += 12
            kv[k] = list(struct.unpack_from('<%d%s' % (n, fmt[at][1]), b, o))
            o += 4 * n
        else:
            kv[k], = struct.unpack_from(fmt[t], b, o)
            o += struct.calcsize(fmt[t])
    infos = []
    for _ in range(nt):
        name = s()
        nd, = struct.unpack_from('<I', b, o)
        ne = struct.unpack_from('<%dq' % nd, b, o + 4)
        t, off = struct.unpack_from('<iQ', b, o + 4 + 8 * nd)
        o += 4 + 8 * nd + 12
        infos.append((name, ne, t, off))
    align = kv.get('general.alignment', 32)
    base = (o + align - 1) // align * align
    tensors, types = {}, {}
    block = {2: (32, 18), 8: (32, 34)}                  # q4_0, q8_0: values and bytes per block
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        types[name] = t
        if t in block:                                  # quantized: the raw blocks
            tensors[name] = b[base + off:base + off + n // block[t][0] * block[t][1]]
            continue
        dt = np.dtype('<f4') if t == 0 else np.dtype('<f2')
        tensors[name] = np.frombuffer(b, dt, n, base + off).astype(np.float32).reshape(tuple(reversed(ne)))
    return kv, tensors, types


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def ckpt(self, gen, name='ck', **kw):
        d = os.path.join(self.tmp, name)
        t, cfg = gen(**kw)
        mkvision.write_ckpt(d, t, cfg)
        return d, t, cfg

    def convert(self, kind, d, wtype='f32', **kw):
        out = os.path.join(self.tmp, kind + '.gguf')
        unused = convert.convert(kind, d, out, wtype, **kw)
        return read_gguf(out), unused

    def same(self, got, want):
        self.assertEqual(got.shape, want.shape)
        np.testing.assert_array_equal(got, want.astype(np.float32))


class ClipVision(Base):
    def test_names_shapes_values(self):
        d, t, cfg = self.ckpt(mkvision.clip_vision_ckpt)
        (kv, g, types), unused = self.convert('clip-vision', d)
        self.assertEqual(unused, [])
        self.assertEqual(kv['general.architecture'], 'clip-vision')
        self.assertEqual(kv['clip.vision.variant'], 'clip')
        self.assertEqual(kv['clip.vision.hidden_act'], 'quick_gelu')
        self.assertEqual(kv['clip.vision.projection_dim'], cfg['projection_dim'])
        self.assertEqual(kv['clip.vision.block_count'], cfg['num_hidden_layers'])
        self.assertEqual(kv['clip.vision.image_resize'], 'shortest_crop')
        np.testing.assert_allclose(kv['clip.vision.image_mean'], convert.CLIP_MEAN, rtol=1e-6)
        s = 'vision_model.'
        self.same(g['v.patch_embd.weight'], t[s + 'embeddings.patch_embedding.weight'])
        self.same(g['v.class_embd'], t[s + 'embeddings.class_embedding'])
        self.same(g['v.position_embd.weight'], t[s + 'embeddings.position_embedding.weight'])
        self.same(g['v.pre_ln.weight'], t[s + 'pre_layrnorm.weight'])
        self.same(g['v.blk.1.attn_k.weight'], t[s + 'encoder.layers.1.self_attn.k_proj.weight'])
        self.same(g['v.blk.1.attn_k.bias'], t[s + 'encoder.layers.1.self_attn.k_proj.bias'])
        self.same(g['v.blk.0.ffn_up.weight'], t[s + 'encoder.layers.0.mlp.fc1.weight'])
        self.same(g['v.blk.0.ffn_down.weight'], t[s + 'encoder.layers.0.mlp.fc2.weight'])
        self.same(g['v.post_ln.bias'], t[s + 'post_layernorm.bias'])
        self.same(g['v.proj.weight'], t['visual_projection.weight'])
        self.assertEqual(len(g), len(t))

    def test_f16_matrices_f32_vectors(self):
        d, t, _ = self.ckpt(mkvision.clip_vision_ckpt)
        (_, g, types), _ = self.convert('clip-vision', d, 'f16')
        self.assertEqual(types['v.blk.0.attn_q.weight'], 1)
        self.assertEqual(types['v.patch_embd.weight'], 1)
        self.assertEqual(types['v.blk.0.attn_q.bias'], 0)
        self.assertEqual(types['v.position_embd.weight'], 0)
        w = t['vision_model.encoder.layers.0.self_attn.q_proj.weight']
        np.testing.assert_array_equal(g['v.blk.0.attn_q.weight'], w.astype(np.float16).astype(np.float32))

    def test_q8_0_matrices(self):
        d, t, _ = self.ckpt(mkvision.clip_vision_ckpt)
        (_, g, types), _ = self.convert('clip-vision', d, 'q8_0')
        w = t['vision_model.encoder.layers.0.mlp.fc1.weight']
        self.assertEqual(types['v.blk.0.ffn_up.weight'], 8)
        self.assertEqual(g['v.blk.0.ffn_up.weight'], mkllama.quantize_q8_0(w))
        self.assertEqual(types['v.patch_embd.weight'], 1)       # 4-D kernels fall back to f16
        self.assertEqual(types['v.blk.0.ffn_up.bias'], 0)

    def test_without_projection_and_nested_config(self):
        d, t, cfg = self.ckpt(mkvision.clip_vision_ckpt, proj=False)
        with open(os.path.join(d, 'config.json'), 'w') as f:
            json.dump({'architectures': ['CLIPModel'], 'vision_config': cfg}, f)
        (kv, g, _), _ = self.convert('clip-vision', d)
        self.assertNotIn('v.proj.weight', g)
        self.assertNotIn('clip.vision.projection_dim', kv)

    def test_preprocessor_config(self):
        d, _, _ = self.ckpt(mkvision.clip_vision_ckpt)
        with open(os.path.join(d, 'preprocessor_config.json'), 'w') as f:
            json.dump({'image_mean': [0.5, 0.5, 0.5], 'image_std': [0.25, 0.25, 0.25]}, f)
        (kv, _, _), _ = self.convert('clip-vision', d)
        self.assertEqual(kv['clip.vision.image_std'], [0.25, 0.25, 0.25])

    def test_bf16_checkpoint(self):
        d, t, _ = self.ckpt(mkvision.clip_vision_ckpt)
        # Rewrite one tensor as BF16 by hand: the top halves of its f32 values.
        path = os.path.join(d, 'model.safetensors')
        name = 'vision_model.post_layernorm.weight'
        w = t[name]
        bf = (w.view(np.uint32) >> 16).astype('<u2')
        st, _ = safetensors.load(path)
        st.pop(name)
        safetensors.save(path, st)
        raw = open(path, 'rb').read()
        n, = struct.unpack_from('<Q', raw, 0)
        hdr = json.loads(raw[8:8 + n])
        end = max(v['data_offsets'][1] for v in hdr.values())
        hdr[name] = {'dtype': 'BF16', 'shape': list(w.shape), 'data_offsets': [end, end + bf.nbytes]}
        h = json.dumps(hdr).encode()
        h += b' ' * ((-len(h)) % 8)
        with open(path, 'wb') as f:
            f.write(struct.pack('<Q', len(h)) + h + raw[8 + n:8 + n + end] + bf.tobytes())
        (_, g, _), _ = self.convert('clip-vision', d)
        np.testing.assert_array_equal(g['v.post_ln.weight'], (bf.astype(np.uint32) << 16).view(np.float32))


class Blip2(Base):
    def test_eva_qformer_projection(self):
        d, t, cfg = self.ckpt(mkvision.blip2_ckpt)
        (kv, g, _), unused = self.convert('blip2', d)
        self.assertEqual(unused, [])
        self.assertEqual(kv['general.architecture'], 'blip2')
        self.assertEqual(kv['clip.vision.variant'], 'blip2')
        self.assertEqual(kv['clip.vision.hidden_act'], 'gelu')
        self.assertEqual(kv['clip.vision.image_resize'], 'squash')
        self.assertEqual(kv['qformer.cross_attention_frequency'], 2)
        self.assertEqual(kv['qformer.query_count'], mkvision.N_QUERY)
        self.assertEqual(kv['qformer.encoder_width'], cfg['vision_config']['hidden_size'])
        self.assertAlmostEqual(kv['qformer.attention.layer_norm_epsilon'], 1e-12, delta=1e-18)
        D = cfg['vision_config']['hidden_size']
        a = 'vision_model.encoder.layers.1.self_attn.'
        self.same(g['v.blk.1.attn_q.weight'], t[a + 'qkv.weight'][:D])
        self.same(g['v.blk.1.attn_k.weight'], t[a + 'qkv.weight'][D:2 * D])
        self.same(g['v.blk.1.attn_v.weight'], t[a + 'qkv.weight'][2 * D:])
        self.same(g['v.blk.1.attn_q.bias'], t[a + 'q_bias'])
        self.same(g['v.blk.1.attn_v.bias'], t[a + 'v_bias'])
        self.assertNotIn('v.blk.1.attn_k.bias', g)
        self.assertNotIn('v.pre_ln.weight', g)
        self.same(g['v.patch_embd.bias'], t['vision_model.embeddings.patch_embedding.bias'])
        self.same(g['v.class_embd'], t['vision_model.embeddings.class_embedding'].reshape(-1))
        self.same(g['q.query_embd'], t['query_tokens'][0])
        self.same(g['q.emb_ln.weight'], t['qformer.layernorm.weight'])
        q = 'qformer.encoder.layer.2.'
        self.same(g['q.blk.2.xattn_k.weight'], t[q + 'crossattention.attention.key.weight'])
        self.same(g['q.blk.2.attn_ln.bias'], t[q + 'attention.output.LayerNorm.bias'])
        self.same(g['q.blk.2.ffn_up.weight'], t[q + 'intermediate_query.dense.weight'])
        self.same(g['q.blk.2.ffn_ln.weight'], t[q + 'output_query.LayerNorm.weight'])
        self.assertNotIn('q.blk.1.xattn_q.weight', g)
        self.same(g['bind.llm_proj.weight'], t['language_projection.weight'])
        self.assertEqual(kv['bind.llm_width'], mkvision.LLM_WIDTH)

    def test_fused_qkv_bias_layout(self):
        d, t, cfg = self.ckpt(mkvision.blip2_ckpt)
        D = cfg['vision_config']['hidden_size']
        a = 'vision_model.encoder.layers.0.self_attn.'
        fused = np.concatenate([t[a + 'q_bias'], np.zeros(D, np.float32), t[a + 'v_bias']])
        for i in range(cfg['vision_config']['num_hidden_layers']):
            p = 'vision_model.encoder.layers.%d.self_attn.' % i
            qb, vb = t.pop(p + 'q_bias'), t.pop(p + 'v_bias')
            t[p + 'qkv.bias'] = np.concatenate([qb, np.zeros(D, np.float32), vb])
        mkvision.write_ckpt(d, t, cfg)
        (_, g, _), _ = self.convert('blip2', d)
        self.same(g['v.blk.0.attn_q.bias'], fused[:D])
        self.same(g['v.blk.0.attn_v.bias'], fused[2 * D:])
        t['vision_model.encoder.layers.0.self_attn.qkv.bias'][D] = 1.0
        mkvision.write_ckpt(d, t, cfg)
        with self.assertRaisesRegex(convert.ConvertError, 'non-zero key part'):
            self.convert('blip2', d)

    def test_qformer_alone(self):
        d, t, _ = self.ckpt(mkvision.blip2_ckpt)
        (kv, g, _), unused = self.convert('blip2-qformer', d)
        self.assertEqual(kv['general.architecture'], 'qformer')
        self.assertFalse(any(n.startswith('v.') for n in g))
        self.assertTrue(all(u.startswith('vision_model.') for u in unused))

    def test_cross_attention_schedule_mismatch(self):
        d, t, cfg = self.ckpt(mkvision.blip2_ckpt)
        q = 'qformer.encoder.layer.1.crossattention.'
        t[q + 'output.dense.weight'] = np.zeros((64, 64), np.float32)
        mkvision.write_ckpt(d, t, cfg)
        with self.assertRaisesRegex(convert.ConvertError, 'layer 1 has cross-attention weights'):
            self.convert('blip2', d)


class VideoAndBind(Base):
    def test_video_qformer(self):
        d, t, _ = self.ckpt(mkvision.video_qformer_ckpt)
        (kv, g, _), unused = self.convert('video-qformer', d, heads=4)
        self.assertEqual(unused, [])
        self.assertEqual(kv['general.architecture'], 'video-qformer')
        self.assertEqual(kv['qformer.cross_attention_frequency'], 1)
        self.assertEqual(kv['qformer.block_count'], mkvision.VQF['layers'])
        self.assertEqual(kv['qformer.frame_count'], mkvision.VQF['frames'])
        self.same(g['q.frame_pos_embd'], t['video_frame_position_embedding.weight'])
        self.same(g['q.blk.1.xattn_v.weight'], t['video_Qformer.bert.encoder.layer.1.crossattention.self.value.weight'])
        self.same(g['q.emb_ln.bias'], t['video_Qformer.bert.embeddings.LayerNorm.bias'])
        self.same(g['bind.llm_proj.bias'], t['llama_proj.bias'])

    def test_video_qformer_bad_heads(self):
        d, _, _ = self.ckpt(mkvision.video_qformer_ckpt)
        with self.assertRaisesRegex(convert.ConvertError, 'heads do not divide'):
            self.convert('video-qformer', d, heads=7)

    def test_imagebind_head(self):
        d, t, _ = self.ckpt(mkvision.bind_head_ckpt)
        (kv, g, _), unused = self.convert('imagebind-head', d)
        self.assertEqual(unused, [])
        self.assertEqual(kv['bind.modality'], 'vision')
        self.assertNotIn('bind.head.logit_scale', kv)
        self.same(g['bind.head.proj.weight'], t['modality_heads.vision.2.weight'])
        self.same(g['bind.head.ln.weight'], t['modality_heads.vision.0.weight'])
        with self.assertRaisesRegex(convert.ConvertError, 'modality_heads.audio.0.weight is missing'):
            self.convert('imagebind-head', d, modality='audio')
        with self.assertRaisesRegex(convert.ConvertError, '--modality must be one of'):
            self.convert('imagebind-head', d, modality='smell')

    def test_imagebind_vision(self):
        d, t, _ = self.ckpt(mkvision.imagebind_vision_ckpt)
        (kv, g, _), unused = self.convert('imagebind-vision', d, heads=4)
        self.assertEqual(unused, [])
        self.assertEqual(kv['general.architecture'], 'imagebind')
        self.assertEqual(kv['clip.vision.hidden_act'], 'gelu')
        self.assertEqual(kv['clip.vision.image_size'], mkvision.IB['image'])
        self.assertAlmostEqual(kv['clip.vision.attention.layer_norm_epsilon'], 1e-6, delta=1e-12)
        k3 = t['modality_preprocessors.vision.rgbt_stem.proj.1.weight']
        self.same(g['v.patch_embd.weight'], k3[:, :, 0] + k3[:, :, 1])
        D = mkvision.IB['width']
        w = t['modality_trunks.vision.blocks.1.attn.in_proj_weight']
        b = t['modality_trunks.vision.blocks.1.attn.in_proj_bias']
        self.same(g['v.blk.1.attn_k.weight'], w[D:2 * D])
        self.same(g['v.blk.1.attn_v.bias'], b[2 * D:])
        self.same(g['v.pre_ln.weight'], t['modality_trunks.vision.pre_transformer_layer.0.weight'])
        self.same(g['v.post_ln.bias'], t['modality_heads.vision.0.bias'])
        self.same(g['bind.head.ln.bias'], t['modality_heads.vision.0.bias'])
        self.same(g['v.proj.weight'], t['modality_heads.vision.2.weight'])
        self.same(g['bind.head.proj.weight'], t['modality_heads.vision.2.weight'])
        self.same(g['bind.llm_proj.weight'], t['llama_proj.weight'])
        with self.assertRaisesRegex(convert.ConvertError, '3 heads do not divide width 64'):
            self.convert('imagebind-vision', d, heads=3)
        t['modality_preprocessors.vision.pos_embedding_helper.pos_embed'] = np.zeros((1, 18, D), np.float32)
        mkvision.write_ckpt(d, t, {})
        with self.assertRaisesRegex(convert.ConvertError, 'not 1 \\+ a square grid'):
            self.convert('imagebind-vision', d, heads=4)

    def test_clip_text(self):
        g0 = mkvision.Gen(5)
        t, D, F, V, P = {}, 32, 64, 100, 16
        s = 'text_model.'
        t[s + 'embeddings.token_embedding.weight'] = g0.n((V, D), 1)
        t[s + 'embeddings.position_embedding.weight'] = g0.n((P, D), 1)
        a = s + 'encoder.layers.0.'
        g0.norm(t, a + 'layer_norm1', D)
        for n in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
            g0.linear(t, a + 'self_attn.' + n, D, D)
        g0.norm(t, a + 'layer_norm2', D)
        g0.linear(t, a + 'mlp.fc1', F, D)
        g0.linear(t, a + 'mlp.fc2', D, F)
        g0.norm(t, s + 'final_layer_norm', D)
        g0.linear(t, 'text_projection', 24, D, bias=False)
        cfg = {'hidden_size': D, 'intermediate_size': F, 'num_hidden_layers': 1, 'num_attention_heads': 2,
               'vocab_size': V, 'max_position_embeddings': P}
        d = os.path.join(self.tmp, 'text')
        mkvision.write_ckpt(d, t, cfg)
        (kv, g, _), unused = self.convert('clip-text', d)
        self.assertEqual(unused, [])
        self.assertEqual(kv['general.architecture'], 'clip-text')
        self.assertEqual(kv['clip.text.projection_dim'], 24)
        self.same(g['t.token_embd.weight'], t[s + 'embeddings.token_embedding.weight'])
        self.same(g['t.post_ln.weight'], t[s + 'final_layer_norm.weight'])


class Hostile(Base):
    def test_missing_and_misshapen_tensors(self):
        d, t, cfg = self.ckpt(mkvision.clip_vision_ckpt)
        name = 'vision_model.encoder.layers.1.mlp.fc2.weight'
        w = t.pop(name)
        mkvision.write_ckpt(d, t, cfg)
        with self.assertRaisesRegex(convert.ConvertError, 'tensor %s is missing' % name):
            self.convert('clip-vision', d)
        t[name] = w.T.copy()
        mkvision.write_ckpt(d, t, cfg)
        with self.assertRaisesRegex(convert.ConvertError, r'%s has shape \[128, 64\], expected \[64, 128\]' % name):
            self.convert('clip-vision', d)

    def test_bad_config(self):
        d, t, cfg = self.ckpt(mkvision.clip_vision_ckpt)
        cfg['patch_size'] = 0
        mkvision.write_ckpt(d, t, cfg)
        with self.assertRaisesRegex(convert.ConvertError, 'patch_size = 0'):
            self.convert('clip-vision', d)
        cfg['patch_size'] = 8
        cfg['hidden_act'] = 'relu'
        mkvision.write_ckpt(d, t, cfg)
        with self.assertRaisesRegex(convert.ConvertError, 'hidden_act'):
            self.convert('clip-vision', d)
        with self.assertRaisesRegex(convert.ConvertError, 'no vision_config'):
            self.convert('blip2', d)

    def test_no_checkpoint(self):
        with self.assertRaisesRegex(convert.ConvertError, 'no \\*.safetensors'):
            self.convert('clip-vision', self.tmp)
        with self.assertRaisesRegex(convert.ConvertError, 'unknown kind'):
            self.convert('resnet', self.tmp)

    def write_raw(self, header_bytes, body=b'', n=None):
        d = os.path.join(self.tmp, 'raw')
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'model.safetensors'), 'wb') as f:
            f.write(struct.pack('<Q', len(header_bytes) if n is None else n) + header_bytes + body)
        return d

    def test_hostile_safetensors(self):
        def hdr(**entry):
            return json.dumps({'a': entry}).encode()
        cases = [
            (b'{', b'', 1 << 40, 'does not fit the file'),
            (b'{not json}', b'', None, 'not JSON'),
            (b'[1, 2]', b'', None, 'not a JSON object'),
            (hdr(dtype='F32', shape=[4], data_offsets=[0, 64]), b'\0' * 16, None, 'outside the 16 data bytes'),
            (hdr(dtype='F32', shape=[5], data_offsets=[0, 16]), b'\0' * 16, None, '16 bytes for shape'),
            (hdr(dtype='C64', shape=[1], data_offsets=[0, 8]), b'\0' * 8, None, 'unsupported dtype'),
            (hdr(dtype='F32', shape=[-1], data_offsets=[0, 0]), b'', None, 'bad shape'),
            (hdr(dtype='F32', shape=[1 << 50], data_offsets=[0, 0]), b'', None, 'bad shape'),
        ]
        for header, body, n, msg in cases:
            d = self.write_raw(header, body, n)
            with self.assertRaisesRegex(convert.ConvertError, msg):
                self.convert('clip-vision', d)
        d = os.path.join(self.tmp, 'short')
        os.makedirs(d)
        open(os.path.join(d, 'x.safetensors'), 'wb').write(b'abc')
        with self.assertRaisesRegex(convert.ConvertError, 'too short'):
            self.convert('clip-vision', d)

    def test_cli_exit_status(self):
        d, t, cfg = self.ckpt(mkvision.clip_vision_ckpt)
        out = os.path.join(self.tmp, 'cli.gguf')
        p = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'convert.py'), '--from', 'clip-vision', d, out],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.getsize(out) > 0)
        p = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'convert.py'), '--from', 'blip2', d, out],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn('convert: blip2: config.json has no vision_config', p.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
