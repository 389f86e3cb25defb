#!/usr/bin/python3
"""Golden files for runtime/type.c (tests/quant): Q8_0/Q4_0 quantization, dequantization
and IEEE half conversion, computed with numpy.

The quantizers restate llama.cpp's quantize_row_q8_0_ref / quantize_row_q4_0_ref from the
block layouts in MODELS.md section 6.7, in float32 arithmetic step by step as the C code does
it: the scale d is computed in f32 and stored as f16, values are multiplied by the f32
reciprocal 1/d (not divided by d), Q8_0 rounds half away from zero (C roundf, unlike
np.round), Q4_0 keeps the sign of the first element of largest magnitude and truncates
x/d + 8.5 toward zero, capped at 15.

Usage: tools/golden/quant.py [OUTDIR]   (default tests/quant/golden)
"""
import os
import sys

import numpy as np

F32 = np.float32


def round_half_away(x):
    # x is f32; in f64, |x| + 0.5 is exact, so floor gives C's roundf.
    x = x.astype(np.float64)
    return np.where(x < 0, -np.floor(-x + 0.5), np.floor(x + 0.5))


def quantize_q8_0(x):
    blocks = x.reshape(-1, 32)
    d_out = np.zeros(len(blocks), np.float16)
    q_out = np.zeros((len(blocks), 32), np.int32)
    for b, xb in enumerate(blocks):
        amax = np.max(np.abs(xb))
        d = F32(amax / F32(127))
        inv = F32(F32(1) / d) if d != 0 else F32(0)
        q_out[b] = round_half_away((xb * inv).astype(F32))
        d_out[b] = np.float16(d)
    return d_out, q_out


def quantize_q4_0(x):
    blocks = x.reshape(-1, 32)
    d_out = np.zeros(len(blocks), np.float16)
    q_out = np.zeros((len(blocks), 32), np.int32)
    for b, xb in enumerate(blocks):
        amax, vmax = F32(0), F32(0)
        for v in xb:                      # the first of equal magnitudes wins
            if amax < abs(v):
                amax, vmax = abs(v), v
        d = F32(vmax / F32(-8))
        inv = F32(F32(1) / d) if d != 0 else F32(0)
        v = ((xb * inv).astype(F32) + F32(8.5)).astype(F32)
        q_out[b] = np.minimum(15, np.trunc(v)).astype(np.int32)
        d_out[b] = np.float16(d)
    return d_out, q_out


def dequantize(d, q, offset):
    return (d.astype(F32)[:, None] * (q - offset).astype(F32)).astype(F32).reshape(-1)


def quant_inputs():
    rng = np.random.default_rng(20240607)
    blocks = []
    for scale in (1e-3, 0.1, 1.0, 1.0, 3.0, 30.0, 1000.0, 0.02):
        blocks.append(rng.standard_normal(32) * scale)
    blocks.append(rng.uniform(-1, 1, 32))
    blocks.append(np.zeros(32))
    # Q8_0 ties: amax 127 gives d = 1, so k + 0.5 lands exactly between two integers.
    t = np.arange(32) - 15.5
    t[0] = 127.0
    blocks.append(t)
    blocks.append(-t)
    # Q4_0 ties: max -8 gives d = 1; x + 8.5 hits integers and 16 (capped to 15).
    blocks.append(np.concatenate(([-8.0], np.arange(-7.5, 8.0, 0.5)[:31])))
    # Equal magnitudes of both signs: the first decides the sign of d.
    e = rng.uniform(-2, 2, 32)
    e[3], e[20] = 4.0, -4.0
    blocks.append(e)
    e = e.copy()
    e[3], e[20] = -4.0, 4.0
    blocks.append(e)
    # Values whose d underflows to an f16 subnormal, and d that overflows f16.
    blocks.append(rng.standard_normal(32) * 1e-5)
    blocks.append(rng.standard_normal(32) * 3e-8)
    blocks.append(rng.standard_normal(32) * 1e7)
    # A single nonzero element, and one block constant.
    s = np.zeros(32)
    s[17] = -0.3
    blocks.append(s)
    blocks.append(np.full(32, 0.7))
    # Dense near-half grid: x*id lands close to .5 boundaries after f32 rounding.
    blocks.append(np.linspace(-1, 1, 32) * 1.2345678)
    blocks.append(rng.standard_normal(32) * 7.0)
    blocks.append(rng.standard_normal(32) * 0.5 + 2.0)
    blocks.append(rng.standard_normal(32) * 0.25)
    return np.concatenate(blocks).astype(F32)


def bits_f32(u):
    return np.array(u, np.uint32).view(F32)


def fp16_inputs():
    special = bits_f32([
        0x00000000, 0x80000000, 0x3f800000, 0xbf800000,
        0x477fe000,               # 65504, the largest half
        0x477fefff,               # just below the halfway point to 65536: 65504
        0x477ff000,               # exactly halfway: ties to even, overflows to inf
        0x47800000, 0x49742400,   # 65536, 1e6: inf
        0x7f800000, 0xff800000,   # inf
        0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000, 0x7fc02000, 0xffffffff, 0x7f801fff,
        0x33800000,               # 2^-24, the smallest subnormal half
        0x33000000,               # 2^-25, halfway to it: ties to 0
        0x33000001,               # above halfway: 2^-24
        0x32ffffff,               # below 2^-25: 0
        0x33c00000,               # 3*2^-25: tie between 1 and 2 ulps, even is 2
        0x34200000,               # 5*2^-25: tie between 2 and 3, even is 2
        0x38800000,               # 2^-14, the smallest normal half
        0x387fc000,               # largest subnormal half
        0x387fe000,               # halfway between it and 2^-14: rounds up to normal
        0x3f801000,               # 1 + 2^-11: tie, even is 1
        0x3f803000,               # 1 + 3*2^-11: tie, even is 1 + 2^-9
        0x3f801001, 0x3f800fff,   # either side of the tie
        0x00000001, 0x80000001,   # f32 subnormals: 0
        0x7f7fffff, 0xff7fffff,   # FLT_MAX
    ])
    rng = np.random.default_rng(7)
    everything = rng.integers(0, 2**32, 1500, dtype=np.uint64).astype(np.uint32).view(F32)
    in_range = rng.uniform(-70000, 70000, 600).astype(F32)
    small = (rng.standard_normal(600) * 1e-5).astype(F32)
    mantissa_ties = (np.float16(rng.uniform(-100, 100, 300)).astype(F32).view(np.uint32) + 0x1000).view(F32)
    return np.concatenate([special, everything, in_range, small, mantissa_ties])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "quant", "golden")
    os.makedirs(out, exist_ok=True)
    x = quant_inputs()
    # One block's d overflows f16 on purpose (inf, as llama.cpp stores it).
    with np.errstate(invalid="ignore", over="ignore"):
        d8, q8 = quantize_q8_0(x)
        d4, q4 = quantize_q4_0(x)
        files = {
            "quant_x": x,
            "q8_0_d": d8, "q8_0_qs": q8, "q8_0_deq": dequantize(d8, q8, 0),
            "q4_0_d": d4, "q4_0_qs": q4, "q4_0_deq": dequantize(d4, q4, 8),
        }
        f = fp16_inputs()
        files["fp16_in"] = f
        files["fp16_out"] = f.astype(np.float16)
        halves = np.concatenate([np.arange(0, 0x400), np.arange(0x400, 0x10000, 61),
                                 [0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xfe01, 0x7fff, 0x8001, 0x83ff]])
        h = halves.astype(np.uint16).view(np.float16)
        files["h2f_in"] = h
        files["h2f_out"] = h.astype(F32)
    for name, arr in files.items():
        np.save(os.path.join(out, name + ".npy"), arr)
    print(f"wrote {len(files)} files to {out}")


if __name__ == "__main__":
    main()
