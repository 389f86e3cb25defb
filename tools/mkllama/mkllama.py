#!/usr/bin/python3
"""mkllama: writes a tiny random-weight LLaMA GGUF laid out as llama.cpp's converter writes one
(tensor names and metadata keys of MODELS.md 6.4-6.5, GGUF v3 layout of 6.6, Q8_0/Q4_0 blocks
of 6.7 made with llama.cpp's reference quantizers), with a real vocabulary copied from a vocab
GGUF's tokenizer.* keys (optionally truncated to its first N tokens).

Weights are drawn in Hugging Face layout (q_proj/k_proj rows in rotate_half order) and q/k are
permuted per head exactly as convert_hf_to_gguf.py does, so the file uses llama.cpp's NORM RoPE.
Inits are chosen so the model is sensitive (sharp attention, norms near 1), not realistic.

Example (the committed golden model, tests/llm/golden/):
  tools/mkllama/mkllama.py --vocab ../shared/conformance/tokenizer/ggml-vocab-llama-spm.gguf \\
      --n-vocab 512 --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 \\
      --type q4_0 --embd-type q8_0 --output-type f16 --seed 1 --out tiny-llama.gguf
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The quantizers are imported from here by convert.py and vision.py, too.
from gguf_py import (ARR, F32, F32T, FILE_TYPE, STR, TYPES, U32, Reader, Writer,  # noqa: E402,F401
                     quantize_q4_0, quantize_q8_0)


# ---------------------------------------------------------------- the model

def permute_hf_to_gguf(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: rotate_half row order -> adjacent pairs."""
    out_dim, in_dim = w.shape
    return (w.reshape(n_head, 2, out_dim // n_head // 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim))


def copy_vocab(w, path, n_vocab):
    r = Reader(path)
    kv = r.kv
    if 'tokenizer.ggml.tokens' not in kv:
        raise SystemExit('%s has no tokenizer.ggml.tokens' % path)
    total = len(kv['tokenizer.ggml.tokens'][1][1])
    n = total if n_vocab <= 0 else n_vocab
    if n > total:
        raise SystemExit('--n-vocab %d exceeds the vocabulary (%d tokens)' % (n, total))
    model = kv['tokenizer.ggml.model'][1]
    tokens = kv['tokenizer.ggml.tokens'][1][1][:n]
    for key, (t, v) in kv.items():
        if not key.startswith('tokenizer.'):
            continue
        if t == ARR and key != 'tokenizer.ggml.merges':
            at, vals = v
            if len(vals) == total:
                vals = vals[:n]
            w.add(key, ARR, vals, at)
        elif key == 'tokenizer.ggml.merges':
            at, vals = v
            if n < total:
                # A merge survives only if both parts and the result are still tokens.
                keep = set(tokens)
                vals = [m for m in vals if all(p in keep for p in m.split(' ', 1)) and
                        m.replace(' ', '', 1) in keep]
            w.add(key, ARR, vals, at)
        elif key.endswith('_token_id') and v >= n:
            print('mkllama: dropping %s = %d (outside the truncated vocabulary)' % (key, v),
                  file=sys.stderr)
        else:
            w.add(key, t, v)
    return n, model


def llama3_rope_freqs(hd, base, old_ctx, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0):
    """convert_hf_to_gguf.py's Llama 3.1 rope_freqs: 1 for short wavelengths, `factor` for
    long ones, a smooth ramp between. No random draws, so the other tensors are unchanged."""
    freqs = 1.0 / base ** (np.arange(0, hd, 2, dtype=np.float32) / hd)
    low_wavelen, high_wavelen = old_ctx / low_freq_factor, old_ctx / high_freq_factor
    out = []
    for f in freqs:
        wavelen = 2 * np.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=F32)


def build(a):
    if a.n_embd % a.n_head or a.n_head % a.n_head_kv:
        raise SystemExit('n_embd must divide by n_head, and n_head by n_head_kv')
    hd = a.n_embd // a.n_head
    if hd % 2:
        raise SystemExit('head_dim must be even for RoPE')
    rng = np.random.default_rng(a.seed)
    w = Writer()

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(F32)

    w.add('general.architecture', STR, 'llama')
    w.add('general.name', STR, 'omnid-tiny-llama')
    w.add('general.file_type', U32, FILE_TYPE[a.type])
    w.add('general.quantization_version', U32, 2)
    w.add('llama.context_length', U32, a.ctx)
    w.add('llama.embedding_length', U32, a.n_embd)
    w.add('llama.block_count', U32, a.n_layer)
    w.add('llama.feed_forward_length', U32, a.n_ff)
    w.add('llama.attention.head_count', U32, a.n_head)
    w.add('llama.attention.head_count_kv', U32, a.n_head_kv)
    w.add('llama.attention.layer_norm_rms_epsilon', F32T, a.eps)
    w.add('llama.rope.freq_base', F32T, a.rope_base)
    w.add('llama.rope.dimension_count', U32, hd)
    n_vocab, _ = copy_vocab(w, a.vocab, a.n_vocab)
    w.add('llama.vocab_size', U32, n_vocab)

    embd_type = a.embd_type or a.type
    out_type = a.output_type or a.type
    if a.rope_freqs:
        w.tensor('rope_freqs.weight', llama3_rope_freqs(hd, a.rope_base, a.rope_freqs_ctx), 'f32')
    w.tensor('token_embd.weight', normal((n_vocab, a.n_embd), 1.0), embd_type)
    kv_dim = a.n_head_kv * hd
    s_in, s_ff = 1 / np.sqrt(a.n_embd), 1 / np.sqrt(a.n_ff)
    for i in range(a.n_layer):
        p = 'blk.%d.' % i
        w.tensor(p + 'attn_norm.weight', (1 + normal((a.n_embd,), 0.1)), 'f32')
        q = normal((a.n_embd, a.n_embd), a.qk_std)
        k = normal((kv_dim, a.n_embd), a.qk_std)
        w.tensor(p + 'attn_q.weight', permute_hf_to_gguf(q, a.n_head), a.type)
        w.tensor(p + 'attn_k.weight', permute_hf_to_gguf(k, a.n_head_kv), a.type)
        w.tensor(p + 'attn_v.weight', normal((kv_dim, a.n_embd), s_in), a.type)
        w.tensor(p + 'attn_output.weight', normal((a.n_embd, a.n_embd), s_in), a.type)
        w.tensor(p + 'ffn_norm.weight', (1 + normal((a.n_embd,), 0.1)), 'f32')
        w.tensor(p + 'ffn_gate.weight', normal((a.n_ff, a.n_embd), s_in), a.type)
        w.tensor(p + 'ffn_up.weight', normal((a.n_ff, a.n_embd), s_in), a.type)
        w.tensor(p + 'ffn_down.weight', normal((a.n_embd, a.n_ff), s_ff), a.type)
    w.tensor('output_norm.weight', (1 + normal((a.n_embd,), 0.1)), 'f32')
    if not a.tied:
        w.tensor('output.weight', normal((n_vocab, a.n_embd), a.out_std), out_type)
    w.write(a.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--vocab', required=True, help='GGUF whose tokenizer.* keys are copied')
    ap.add_argument('--n-vocab', type=int, default=0, help='keep the first N tokens (0 = all)')
    ap.add_argument('--n-embd', type=int, default=64)
    ap.add_argument('--n-layer', type=int, default=2)
    ap.add_argument('--n-head', type=int, default=4)
    ap.add_argument('--n-head-kv', type=int, default=0, help='0 = n_head (MHA)')
    ap.add_argument('--n-ff', type=int, default=128)
    ap.add_argument('--ctx', type=int, default=256)
    ap.add_argument('--eps', type=float, default=1e-5)
    ap.add_argument('--rope-base', type=float, default=10000.0)
    ap.add_argument('--rope-freqs', action='store_true',
                    help='write Llama 3.1 rope_freqs.weight (per-pair frequency factors in [1, 8])')
    ap.add_argument('--rope-freqs-ctx', type=float, default=32.0,
                    help='original context of the Llama 3.1 ramp (small, so short prompts feel it)')
    ap.add_argument('--type', choices=TYPES, default='f32', help='type of the 2-D weights')
    ap.add_argument('--embd-type', choices=TYPES, help='token_embd type (default --type)')
    ap.add_argument('--output-type', choices=TYPES, help='output.weight type (default --type)')
    ap.add_argument('--tied', action='store_true', help='no output.weight (output = token_embd)')
    ap.add_argument('--qk-std', type=float, default=0.15)
    ap.add_argument('--out-std', type=float, default=0.3)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    if a.n_head_kv == 0:
        a.n_head_kv = a.n_head
    build(a)


if __name__ == '__main__':
    main()
