#!/usr/bin/python3
"""Golden files for om_op_matmul and om_op_get_rows (tests/ops_matmul).

Weights are quantized with llama.cpp's reference quantizers as restated in numpy by
tools/golden/quant.py, and stored as the exact bytes the device reads (llama.cpp's block
layouts, MODELS.md section 6.7), packed little-endian into int32 words (.npy has no byte
type we read). The expected outputs are computed by torch in float64 from the dequantized
weights: y = x @ W.T, batched over dims 2 and 3 with W broadcast, and W[ids] for get_rows.

Files per case NAME: NAME_x.npy (f32), NAME_w.npy (f32 | f16 | packed i32 bytes),
NAME_y.npy (f32, torch's result); get_rows: gr_TYPE_ids.npy (i32), gr_TYPE_y.npy.

Usage: tools/golden/ops_matmul.py [OUTDIR]   (default tests/ops_matmul/golden)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quant import quantize_q4_0, quantize_q8_0  # noqa: E402  (llama.cpp's reference quantizers)

torch.set_num_threads(1)

# name, weight type, K, N, M, (B2, B3), (W2, W3): x {K, M, B2, B3}, w {K, N, W2, W3}
CASES = [
    ("mm_f32",    "f32",  96,  37, 17, (1, 1), (1, 1)),
    ("mm_f16",    "f16",  64,  37, 70, (1, 1), (1, 1)),
    ("mm_q8_0",   "q8_0", 544, 37, 5,  (1, 1), (1, 1)),
    ("mm_q4_0",   "q4_0", 96,  300, 3,  (1, 1), (1, 1)),
    ("mv_f32",    "f32",  160, 21, 1,  (1, 1), (1, 1)),
    ("mv_f16",    "f16",  32,  300, 1, (1, 1), (1, 1)),
    ("mv_q8_0",   "q8_0", 64,  300, 1, (1, 1), (1, 1)),
    ("mv_q4_0",   "q4_0", 544, 37,  1, (1, 1), (1, 1)),
    ("bmm_f16",   "f16",  64,  37, 3,  (4, 3), (2, 1)),
    ("bmv_q4_0",  "q4_0", 96,  37, 1,  (4, 3), (2, 3)),
    # rows past 1024 values: op_mm_tiles' other matvec shape on llvmpipe (last, so the
    # random draws of the cases above stay the same)
    ("mvl_f16",   "f16",  1088, 37, 1, (1, 1), (1, 1)),
]


def quantize(kind, w):
    """Returns (bytes the device reads, dequantized weights) for w of shape (rows, K)."""
    if kind == "f32":
        return w.astype(np.float32).tobytes(), w.astype(np.float32)
    if kind == "f16":
        h = w.astype(np.float16)
        return h.tobytes(), h.astype(np.float32)
    qfn, offset, qdt = ((quantize_q8_0, 0, np.int8) if kind == "q8_0" else
                        (quantize_q4_0, 8, np.uint8))
    d, q = qfn(w.reshape(-1).astype(np.float32))
    deq = (d.astype(np.float32)[:, None] * (q - offset).astype(np.float32)).reshape(w.shape)
    out = bytearray()
    for db, qb in zip(d, q):
        out += db.tobytes()
        if kind == "q8_0":
            out += qb.astype(qdt).tobytes()
        else:                         # byte j: value j in the low nibble, j + 16 in the high
            out += (qb[:16] | (qb[16:] << 4)).astype(qdt).tobytes()
    return bytes(out), deq


def save(out, name, arr):
    np.save(os.path.join(out, name + ".npy"), arr)


def save_weights(out, name, kind, raw, shape):
    if kind == "f32":
        save(out, name, np.frombuffer(raw, np.float32).reshape(shape))
    elif kind == "f16":
        save(out, name, np.frombuffer(raw, np.float16).reshape(shape))
    else:
        pad = (-len(raw)) % 4
        save(out, name, np.frombuffer(raw + b"\0" * pad, "<i4").copy())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ops_matmul", "golden")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20241126)
    for name, kind, K, N, M, (B2, B3), (W2, W3) in CASES:
        # Row gains near 1 with spread and a few large weights per row: outputs vary
        # strongly per row, so a wrong row, block or scale shows.
        w = rng.standard_normal((W3, W2, N, K)).astype(np.float32) * 0.15
        w *= rng.uniform(0.5, 1.5, (W3, W2, N, 1)).astype(np.float32)
        w[..., ::7] *= 4.0
        raw, deq = quantize(kind, w.reshape(-1, K))
        deq = deq.reshape(W3, W2, N, K)
        x = rng.standard_normal((B3, B2, M, K)).astype(np.float32)
        xt = torch.from_numpy(x).double()
        wt = torch.from_numpy(deq).double()
        wt = wt.repeat_interleave(B3 // W3, dim=0).repeat_interleave(B2 // W2, dim=1)
        y = torch.matmul(xt, wt.transpose(-1, -2)).float().numpy()
        save(out, name + "_x", x)
        save_weights(out, name + "_w", kind, raw, (W3, W2, N, K))
        save(out, name + "_y", y)

    # get_rows on the table of each mm_* case (K x 37)
    for name, kind, K, N, M, _, _ in CASES[:4]:
        w = np.load(os.path.join(out, name + "_w.npy"))
        ids = np.array([3, 0, N - 1, 3, 17, 1, N - 2], np.int32)  # repeats, first and last
        if kind in ("f32", "f16"):
            table = torch.from_numpy(w.astype(np.float32).reshape(N, K))
        else:
            raw = w.astype("<i4").tobytes()
            bb = 34 if kind == "q8_0" else 18
            table = torch.from_numpy(dequantize_bytes(kind, raw[:N * K // 32 * bb], N, K))
        y = torch.nn.functional.embedding(torch.from_numpy(ids).long(), table.double()).float()
        save(out, "gr_" + kind + "_ids", ids)
        save(out, "gr_" + kind + "_y", y.numpy())


def dequantize_bytes(kind, raw, N, K):
    """Reads llama.cpp blocks back (an independent decoder of the packing above)."""
    bb = 34 if kind == "q8_0" else 18
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, bb)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    if kind == "q8_0":
        q = blocks[:, 2:].view(np.int8).astype(np.float32)
    else:
        qs = blocks[:, 2:]
        q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (d * q).reshape(N, K)


if __name__ == "__main__":
    main()
