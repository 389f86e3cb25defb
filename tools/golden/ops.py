#!/usr/bin/python3
"""Golden files for tests/ops: random inputs and PyTorch (float64) outputs, stored as
.npy in ggml order reversed (numpy shape (ne3, ne2, ne1, ne0) without the leading 1s).

usage: tools/golden/ops.py [OUT_DIR]   (default tests/ops/golden)

Inputs are picked so that errors show: gains near 1 with an offset mean for norms,
sharp attention (score spread of several units, so softmax is peaked), positions up
to ~200 for RoPE, -inf entries in masks.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ops", "golden")
rng = np.random.default_rng(20261126)


def save(name, a):
    a = np.ascontiguousarray(a)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    np.save(os.path.join(OUT, name + ".npy"), a)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def elementwise():
    a = randn(2, 5, 67)                      # ggml {67, 5, 2}
    b = randn(2, 1, 67)                      # {67, 1, 2}: broadcast over ne1
    save("add_a", a); save("add_b", b)
    save("add_out", (t64(a) + t64(b)).numpy())
    m = randn(1, 5, 1)                       # {1, 5, 1}: broadcast over ne0, ne2
    save("mul_b", m)
    save("mul_out", (t64(a) * t64(m)).numpy())
    save("scale_out", (t64(a) * 0.37).numpy())
    # a permuted (1, 0, 2, 3): ggml {5, 67, 2}, numpy a.transpose(0, 2, 1); plus b {5, 1, 1}
    bp = randn(1, 1, 5)
    save("addp_b", bp)
    save("addp_out", (t64(a).permute(0, 2, 1) + t64(bp)).numpy())

    x = np.linspace(-7.0, 7.0, 401).astype(np.float32) + randn(401, scale=0.01)
    save("unary_x", x)
    xt = t64(x)
    save("gelu_out", F.gelu(xt, approximate="none").numpy())
    save("gelu_tanh_out", F.gelu(xt, approximate="tanh").numpy())
    save("quick_gelu_out", (xt * torch.sigmoid(1.702 * xt)).numpy())
    save("silu_out", F.silu(xt).numpy())

    g, u = randn(2, 300, scale=2.0), randn(2, 300)
    save("swiglu_g", g); save("swiglu_u", u)
    save("swiglu_out", (F.silu(t64(g)) * t64(u)).numpy())


def norms():
    x = randn(3, 257) + 1.5                  # {257, 3}, offset mean
    w = 1.0 + randn(257, scale=0.1)
    b = randn(257, scale=0.1)
    save("norm_x", x); save("norm_w", w); save("norm_b", b)
    xt = t64(x)
    rms = xt / torch.sqrt((xt * xt).mean(-1, keepdim=True) + 1e-5)
    save("rms_norm_out", (rms * t64(w)).numpy())
    save("rms_norm_now_out", rms.numpy())
    save("layer_norm_out", F.layer_norm(xt, (257,), t64(w), t64(b), 1e-5).numpy())
    save("layer_norm_nowb_out", F.layer_norm(xt, (257,), None, None, 1e-5).numpy())

    gx = randn(2, 12, 7, 6) * 2.0 + 0.5      # {W 6, H 7, C 12, N 2}
    gw = 1.0 + randn(12, scale=0.1)
    gb = randn(12, scale=0.1)
    save("group_norm_x", gx); save("group_norm_w", gw); save("group_norm_b", gb)
    save("group_norm_out", F.group_norm(t64(gx), 4, t64(gw), t64(gb), 1e-5).numpy())

    sx = randn(2, 4, 77, scale=2.0)          # {77, 4, 2}
    mask = randn(4, 77)                      # {77, 4}
    mask[:, 70:] = -np.inf
    mask[2, :40] = -np.inf
    save("softmax_x", sx); save("softmax_mask", mask)
    save("softmax_out", F.softmax(t64(sx) * 0.7 + t64(mask), dim=-1).numpy())
    save("softmax_nomask_out", F.softmax(t64(sx) * 0.7, dim=-1).numpy())


def rope_ref(x, pos, n_rot, base, fscale, neox, factors=None):
    """llama.cpp's rope (MODELS.md 6.2) on numpy x of shape (T, n_head, hd), float64;
    factors (rope_freqs, n_rot/2) divide each pair's angle, as ggml_rope_ext does."""
    y = x.astype(np.float64).copy()
    i = np.arange(n_rot // 2)
    theta = pos[:, None].astype(np.float64) * fscale * base ** (-2.0 * i / n_rot)  # (T, n_rot/2)
    if factors is not None:
        theta = theta / factors.astype(np.float64)[None, :]
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    if neox:
        a, b = x[..., i], x[..., i + n_rot // 2]
        y[..., i], y[..., i + n_rot // 2] = a * c - b * s, a * s + b * c
    else:
        a, b = x[..., 2 * i], x[..., 2 * i + 1]
        y[..., 2 * i], y[..., 2 * i + 1] = a * c - b * s, a * s + b * c
    return y


def rope():
    x = randn(7, 2, 64)                      # {hd 64, n_head 2, T 7}
    pos = rng.integers(0, 200, size=7).astype(np.int32)
    save("rope_x", x); save("rope_pos", pos)
    save("rope_norm_out", rope_ref(x, pos, 64, 10000.0, 1.0, False))
    save("rope_neox_out", rope_ref(x, pos, 32, 10000.0, 0.5, True))   # partial n_rot


def rope_factors():
    """Frequency factors in [1, 8] (Llama 3.1's range), from their own generator so the
    draws of every other case stay as they were."""
    r = np.random.default_rng(31)
    x = r.standard_normal((7, 2, 64)).astype(np.float32)
    pos = r.integers(0, 200, size=7).astype(np.int32)
    ff64 = r.uniform(1.0, 8.0, size=32).astype(np.float32)
    ff16 = r.uniform(1.0, 8.0, size=16).astype(np.float32)
    save("ropef_x", x); save("ropef_pos", pos)
    save("ropef_ff64", ff64); save("ropef_ff16", ff16)
    save("ropef_norm_out", rope_ref(x, pos, 64, 500000.0, 1.0, False, ff64))
    save("ropef_neox_out", rope_ref(x, pos, 32, 10000.0, 0.5, True, ff16))


def attention_ref(q, k, v, scale, causal, mask):
    """softmax(q·kᵀ·scale + mask)·v per head, GQA by head // (n_head / n_kv); q (Tq, H, hd)."""
    q, k, v = t64(q), t64(k), t64(v)
    tq, nh, _ = q.shape
    tk, nkv, _ = k.shape
    rep = nh // nkv
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    s = torch.einsum("ihd,jhd->hij", q, k) * scale         # (H, Tq, Tk)
    if mask is not None:
        s = s + t64(mask)[None]
    if causal:
        i = torch.arange(tq)[:, None]
        j = torch.arange(tk)[None, :]
        s = s.masked_fill(j > i + (tk - tq), float("-inf"))
    p = F.softmax(s, dim=-1)
    peak = p.max(-1).values.mean().item()
    return torch.einsum("hij,jhd->ihd", p, v).numpy(), peak


def attention():
    peaks = {}
    # causal with KV offset (Tk - Tq = 14), GQA 8:2
    q, k, v = randn(5, 8, 32, scale=1.7), randn(19, 2, 32, scale=1.7), randn(19, 2, 32)
    out, peaks["causal"] = attention_ref(q, k, v, 1 / math.sqrt(32), True, None)
    save("attn_causal_q", q); save("attn_causal_k", k); save("attn_causal_v", v)
    save("attn_causal_out", out)
    # cross-attention Tq=5, Tk=37, GQA 4:2, head_dim_v != head_dim, additive mask with -inf
    q, k, v = randn(5, 4, 32, scale=1.8), randn(37, 2, 32, scale=1.8), randn(37, 2, 24)
    mask = randn(5, 37)
    mask[:, 30:] = -np.inf
    mask[1, :10] = -np.inf
    out, peaks["cross"] = attention_ref(q, k, v, 1 / math.sqrt(32), False, mask)
    save("attn_cross_q", q); save("attn_cross_k", k); save("attn_cross_v", v)
    save("attn_cross_mask", mask); save("attn_cross_out", out)
    # decode: Tq = 1 over a long F16 KV cache, GQA 4:1, causal (sees every key)
    q = randn(1, 4, 32, scale=1.8)
    k = randn(160, 1, 32, scale=1.8).astype(np.float16)
    v = randn(160, 1, 32).astype(np.float16)
    out, peaks["decode_f16"] = attention_ref(q, k.astype(np.float32), v.astype(np.float32),
                                            1 / math.sqrt(32), True, None)
    save("attn_dec_q", q); save("attn_dec_k", k); save("attn_dec_v", v)
    save("attn_dec_out", out)
    # F16 prefill: causal Tq = Tk = 16, GQA 4:2, head_dim 40
    q = randn(16, 4, 40, scale=1.6)
    k = randn(16, 2, 40, scale=1.6).astype(np.float16)
    v = randn(16, 2, 40).astype(np.float16)
    out, peaks["prefill_f16"] = attention_ref(q, k.astype(np.float32), v.astype(np.float32),
                                             1 / math.sqrt(40), True, None)
    save("attn_pre_q", q); save("attn_pre_k", k); save("attn_pre_v", v)
    save("attn_pre_out", out)
    return peaks


def attention_gqa_decode():
    """TinyLlama's GQA 32:4 at decode over an F16 cache of 300 keys: 3 causal queries
    (Tk - Tq = 297), from their own generator so the draws of every other case stay as
    they were. Returns the mean peak probability."""
    r = np.random.default_rng(32)
    q = (r.standard_normal((3, 32, 32)) * 2.2).astype(np.float32)
    k = (r.standard_normal((300, 4, 32)) * 2.2).astype(np.float16)
    v = r.standard_normal((300, 4, 32)).astype(np.float16)
    out, peak = attention_ref(q, k.astype(np.float32), v.astype(np.float32),
                              1 / math.sqrt(32), True, None)
    save("attn_gqa_q", q); save("attn_gqa_k", k); save("attn_gqa_v", v)
    save("attn_gqa_out", out)
    return peak


def conv():
    x = randn(2, 5, 7, 13)                   # {W 13, H 7, Cin 5, N 2}
    w = randn(11, 5, 3, 3, scale=0.3)        # {3, 3, 5, 11}: more than one 8-channel block
    b = randn(11)
    save("conv_x", x); save("conv_w", w); save("conv_b", b)
    save("conv3_out", F.conv2d(t64(x), t64(w), t64(b), stride=1, padding=1).numpy())
    w16 = randn(6, 5, 3, 3, scale=0.3).astype(np.float16)
    save("conv_w16", w16)
    save("conv3s2_out", F.conv2d(t64(x[:1]), t64(w16.astype(np.float32)), None,
                                 stride=2, padding=1).numpy())
    px = randn(1, 3, 28, 28)                 # {28, 28, 3, 1}: 2x2 patches of 14x14
    pw = randn(8, 3, 14, 14, scale=0.05).astype(np.float16)
    pb = randn(8)
    save("patch_x", px); save("patch_w", pw); save("patch_b", pb)
    save("patch_out", F.conv2d(t64(px), t64(pw.astype(np.float32)), t64(pb), stride=14).numpy())


def layout():
    x = randn(2, 4, 3, 5)                    # {5, 3, 4, 2}
    save("up_x", x)
    save("up_out", F.interpolate(t64(x), scale_factor=2, mode="nearest").numpy())
    a, b = randn(2, 3, 7), randn(2, 4, 7)    # {7, 3, 2} ++ {7, 4, 2} along dim 1
    save("cat_a", a); save("cat_b", b)
    save("cat1_out", torch.cat([t64(a), t64(b)], dim=1).numpy())
    c = randn(2, 3, 5)                       # {5, 3, 2} ++ a {7, 3, 2} along dim 0
    save("cat_c", c)
    save("cat0_out", torch.cat([t64(c), t64(a)], dim=2).numpy())
    # copy: F32 {7, 5, 3} permuted (1, 2, 0, 3) -> {5, 3, 7} -> contiguous F16
    s = randn(3, 5, 7)
    save("cpy_src", s)
    save("cpy_perm_f16_out", s.transpose(2, 0, 1).astype(np.float16))
    # copy: F16 {16, 6} slice start {3, 1} size {9, 4} -> F32
    h = randn(6, 16).astype(np.float16)
    save("cpy_h", h)
    save("cpy_slice_out", h[1:5, 3:12].astype(np.float32))


def reductions():
    x = randn(2, 4, 123) + 0.25              # {123, 4, 2}
    save("mean_x", x)
    save("mean_out", t64(x).mean(-1, keepdim=True).numpy())
    ax = randn(5, 200)
    ax[2, 10] = ax[2, 150] = ax[2].max() + 1.0   # tie: the first index wins
    ax[4, 199] = ax[4].max() + 0.5               # maximum in the last slot
    save("argmax_x", ax)
    save("argmax_out", torch.argmax(torch.from_numpy(ax), dim=-1).numpy().astype(np.int32))


def main():
    os.makedirs(OUT, exist_ok=True)
    elementwise()
    norms()
    rope()
    peaks = attention()
    conv()
    layout()
    reductions()
    rope_factors()
    peaks["gqa_decode_f16"] = attention_gqa_decode()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("attention mean peak probability:",
          ", ".join("%s %.2f" % kv for kv in peaks.items()))
    print("wrote %d files, %d bytes, to %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
