#!/usr/bin/python3
"""llama_ref: a PyTorch reference LLaMA (MODELS.md 6.1-6.2) that reads a llama GGUF (as written
by tools/mkllama/mkllama.py: F32/F16/Q8_0/Q4_0 tensors), runs a prompt of token ids and writes

  PREFIX.tokens.npy   int32 [T]            the prompt
  PREFIX.logits.npy   float32 [T, n_vocab] logits of every prompt position
  PREFIX.hidden.npy   float32 [T, n_embd]  final-norm hidden states (input of the output matmul)
  PREFIX.greedy.npy   int32 [K]            greedy continuation (argmax, lowest id on ties)

The math is float64: RMSNorm (x / sqrt(mean(x^2) + eps) * g), NORM RoPE (adjacent pairs, since
GGUF q/k rows are permuted), causal GQA attention (kv head = q head // (n_head / n_head_kv)),
SwiGLU FFN, output = token_embd when output.weight is absent, each RoPE angle divided by its
pair's factor when rope_freqs.weight is present (Llama 3.1+, as ggml_rope_ext). As a self-check,
attention is also computed with the q/k rows un-permuted to Hugging Face order and rotate_half
(NEOX) RoPE; the two must agree, which pins the permutation convention.

Usage: tools/golden/llama_ref.py MODEL.gguf PREFIX --tokens 1,2,3 [--greedy K]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gguf_py import Reader  # noqa: E402

torch.set_num_threads(1)


def rms_norm(x, g, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g


def rope_theta(hd, base, freqs):
    """base^(-2i/hd) / freqs[i] (freqs: rope_freqs factors or None)."""
    theta = base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    return theta if freqs is None else theta / freqs


def rope_norm(x, pos, base, freqs):
    """x [T, H, hd]: rotate adjacent pairs (x[2i], x[2i+1]) by pos * base^(-2i/hd) / freqs[i]."""
    hd = x.shape[-1]
    theta = rope_theta(hd, base, freqs)
    ang = pos[:, None].double() * theta[None, :]                 # [T, hd/2]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def rope_neox(x, pos, base, freqs):
    """rotate_half layout: pairs (x[i], x[i + hd/2])."""
    hd = x.shape[-1]
    theta = rope_theta(hd, base, freqs)
    ang = pos[:, None].double() * theta[None, :]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    x0, x1 = x[..., :hd // 2], x[..., hd // 2:]
    return torch.cat([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1)


def unpermute(w, n_head):
    """Inverse of convert_hf_to_gguf.py's permute: GGUF rows -> HF rotate_half rows."""
    out_dim, in_dim = w.shape
    return w.reshape(n_head, out_dim // n_head // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def attention(q, k, v, n_rep):
    """q [T, H, hd], k/v [T, Hkv, hd]: causal softmax(q k^T / sqrt(hd)) v."""
    T, H, hd = q.shape
    k = k.repeat_interleave(n_rep, dim=1)
    v = v.repeat_interleave(n_rep, dim=1)
    s = torch.einsum('thd,shd->hts', q, k) / np.sqrt(hd)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    s = s.masked_fill(mask, float('-inf'))
    return torch.einsum('hts,shd->thd', torch.softmax(s, dim=-1), v).reshape(T, H * hd)


class Llama:
    def __init__(self, g):
        if g.get('general.architecture') != 'llama':
            raise SystemExit('general.architecture is %r, not llama' % g.get('general.architecture'))
        self.n_layer = g.need('llama.block_count')
        self.n_head = g.need('llama.attention.head_count')
        self.n_head_kv = g.get('llama.attention.head_count_kv', self.n_head)
        self.eps = g.need('llama.attention.layer_norm_rms_epsilon')
        self.base = g.get('llama.rope.freq_base', 10000.0)
        t = lambda n: torch.from_numpy(g.tensor(n).copy())
        self.embd = t('token_embd.weight')
        self.out_norm = t('output_norm.weight')
        self.out = t('output.weight') if g.has('output.weight') else self.embd
        self.freqs = t('rope_freqs.weight').double() if g.has('rope_freqs.weight') else None
        self.layers = []
        for i in range(self.n_layer):
            p = 'blk.%d.' % i
            self.layers.append({k: t(p + k + '.weight') for k in
                                ('attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output',
                                 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down')})
        self.n_embd = self.embd.shape[1]
        self.hd = self.n_embd // self.n_head
        if g.get('llama.rope.dimension_count', self.hd) != self.hd:
            raise SystemExit('partial RoPE (dimension_count != head_dim) is not modelled')
        if self.freqs is not None and self.freqs.shape != (self.hd // 2,):
            raise SystemExit('rope_freqs.weight has shape %s, expected (%d,)' % (tuple(self.freqs.shape), self.hd // 2))
        self.max_check = 0.0

    def forward(self, ids):
        T = len(ids)
        pos = torch.arange(T)
        x = self.embd[torch.tensor(ids)]
        n_rep = self.n_head // self.n_head_kv
        for L in self.layers:
            h = rms_norm(x, L['attn_norm'], self.eps)
            q = (h @ L['attn_q'].T).reshape(T, self.n_head, self.hd)
            k = (h @ L['attn_k'].T).reshape(T, self.n_head_kv, self.hd)
            v = (h @ L['attn_v'].T).reshape(T, self.n_head_kv, self.hd)
            a = attention(rope_norm(q, pos, self.base, self.freqs), rope_norm(k, pos, self.base, self.freqs),
                          v, n_rep)
            # Self-check: HF row order with rotate_half must give the same attention.
            qh = (h @ unpermute(L['attn_q'], self.n_head).T).reshape(T, self.n_head, self.hd)
            kh = (h @ unpermute(L['attn_k'], self.n_head_kv).T).reshape(T, self.n_head_kv, self.hd)
            a2 = attention(rope_neox(qh, pos, self.base, self.freqs), rope_neox(kh, pos, self.base, self.freqs),
                           v, n_rep)
            self.max_check = max(self.max_check, float((a - a2).abs().max()))
            x = x + a @ L['attn_output'].T
            h = rms_norm(x, L['ffn_norm'], self.eps)
            x = x + (torch.nn.functional.silu(h @ L['ffn_gate'].T) * (h @ L['ffn_up'].T)) @ L['ffn_down'].T
        hidden = rms_norm(x, self.out_norm, self.eps)
        return hidden @ self.out.T, hidden


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('model')
    ap.add_argument('prefix')
    ap.add_argument('--tokens', required=True, help='comma-separated prompt token ids')
    ap.add_argument('--greedy', type=int, default=8, help='tokens of greedy continuation')
    a = ap.parse_args()
    g = Reader(a.model)
    m = Llama(g)
    ids = [int(s) for s in a.tokens.split(',')]
    n_vocab = m.embd.shape[0]
    if not ids or min(ids) < 0 or max(ids) >= n_vocab:
        raise SystemExit('token ids must be in [0, %d)' % n_vocab)
    with torch.no_grad():
        logits, hidden = m.forward(ids)
        seq, margins = list(ids), []
        for _ in range(a.greedy):
            last = m.forward(seq)[0][-1]
            top = torch.topk(last, 2)
            margins.append(float(top.values[0] - top.values[1]))
            seq.append(int(torch.argmax(last)))        # first index of the max: lowest id
    if m.max_check > 1e-9:
        raise SystemExit('NORM/NEOX RoPE self-check failed: %g' % m.max_check)
    np.save(a.prefix + '.tokens.npy', np.array(ids, np.int32))
    np.save(a.prefix + '.logits.npy', logits.numpy().astype(np.float32))
    np.save(a.prefix + '.hidden.npy', hidden.numpy().astype(np.float32))
    np.save(a.prefix + '.greedy.npy', np.array(seq[len(ids):], np.int32))
    lg = logits.numpy()
    print('llama_ref: T=%d vocab=%d logits std %.3f, greedy %s, smallest top-2 margin %.4f, '
          'rope self-check %.1e' % (len(ids), n_vocab, lg.std(), seq[len(ids):], min(margins or [0]),
                                    m.max_check), file=sys.stderr)


if __name__ == '__main__':
    main()
