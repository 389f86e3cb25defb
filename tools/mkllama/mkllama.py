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
import struct
import sys

import numpy as np

F32 = np.float32

# ggml type ids and llama.cpp "file type" ids
TYPES = {'f32': 0, 'f16': 1, 'q4_0': 2, 'q8_0': 8}
FILE_TYPE = {'f32': 0, 'f16': 1, 'q4_0': 2, 'q8_0': 7}

# GGUF value types
U8, I8, U16, I16, U32, I32, F32T, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32T: '<f',
              BOOL: '<?', U64: '<Q', I64: '<q', F64: '<d'}


# ---------------------------------------------------------------- quantizers (llama.cpp ref)

def round_half_away(x):
    """C roundf: half away from zero (x is f32; exact in f64)."""
    x = x.astype(np.float64)
    return np.where(x < 0, -np.floor(-x + 0.5), np.floor(x + 0.5))


def quantize_q8_0(x):
    """quantize_row_q8_0_ref: d = amax/127 (f32, stored f16), q = roundf(x * (1/d))."""
    b = x.reshape(-1, 32).astype(F32)
    amax = np.max(np.abs(b), axis=1)
    d = (amax / F32(127)).astype(F32)
    inv = np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)
    q = round_half_away((b * inv[:, None]).astype(F32)).astype(np.int8)
    out = np.zeros(len(b), dtype=[('d', '<f2'), ('qs', 'i1', 32)])
    out['d'] = d.astype(np.float16)
    out['qs'] = q
    return out.tobytes()


def quantize_q4_0(x):
    """quantize_row_q4_0_ref: m = the first element of largest |x| (sign kept), d = m/-8,
    q = min(15, (int8)(x * (1/d) + 8.5)); low nibbles hold j < 16, high nibbles j + 16."""
    b = x.reshape(-1, 32).astype(F32)
    idx = np.argmax(np.abs(b), axis=1)                   # first of equal magnitudes
    m = b[np.arange(len(b)), idx]
    d = (m / F32(-8)).astype(F32)
    inv = np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)
    v = ((b * inv[:, None]).astype(F32) + F32(8.5)).astype(F32)
    q = np.minimum(15, np.trunc(v)).astype(np.uint8)
    out = np.zeros(len(b), dtype=[('d', '<f2'), ('qs', 'u1', 16)])
    out['d'] = d.astype(np.float16)
    out['qs'] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def encode_tensor(x, tname):
    if tname == 'f32':
        return x.astype('<f4').tobytes()
    if tname == 'f16':
        return x.astype('<f2').tobytes()
    if x.shape[-1] % 32:
        raise SystemExit('%s needs rows that are multiples of 32 (got %d)' % (tname, x.shape[-1]))
    return quantize_q8_0(x) if tname == 'q8_0' else quantize_q4_0(x)


# ---------------------------------------------------------------- GGUF reading (vocab source)

class Reader:
    def __init__(self, path):
        self.b = open(path, 'rb').read()
        self.o = 0
        if self.b[:4] != b'GGUF':
            raise SystemExit('%s: not a GGUF file' % path)
        self.o = 4
        ver, = self.unpack('<I')
        if ver not in (2, 3):
            raise SystemExit('%s: GGUF version %d not supported' % (path, ver))
        n_tensors, n_kv = self.unpack('<qq')
        self.kv = {}
        for _ in range(n_kv):
            key = self.string()
            t, = self.unpack('<i')
            self.kv[key] = (t, self.value(t))

    def unpack(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n, = self.unpack('<Q')
        s = self.b[self.o:self.o + n]
        self.o += n
        return s.decode('utf-8', errors='surrogateescape')

    def value(self, t):
        if t == STR:
            return self.string()
        if t == ARR:
            at, n = self.unpack('<iQ')
            if at == STR:
                return (at, [self.string() for _ in range(n)])
            fmt = SCALAR_FMT[at]
            size = struct.calcsize(fmt)
            vals = list(struct.unpack_from('<%d%s' % (n, fmt[1]), self.b, self.o))
            self.o += size * n
            return (at, vals)
        v, = self.unpack(SCALAR_FMT[t])
        return v


# ---------------------------------------------------------------- GGUF writing

class Writer:
    ALIGN = 32

    def __init__(self):
        self.kv = []
        self.tensors = []

    def add(self, key, t, v, at=None):
        self.kv.append((key, t, v, at))

    def tensor(self, name, x, tname):
        """x in PyTorch order ([out, in]); GGUF ne is the reverse."""
        self.tensors.append((name, list(reversed(x.shape)), TYPES[tname], encode_tensor(x, tname)))

    @staticmethod
    def s(v):
        b = v.encode('utf-8', errors='surrogateescape')
        return struct.pack('<Q', len(b)) + b

    def val(self, t, v, at):
        if t == STR:
            return self.s(v)
        if t == ARR:
            out = struct.pack('<iQ', at, len(v))
            if at == STR:
                return out + b''.join(self.s(x) for x in v)
            return out + struct.pack('<%d%s' % (len(v), SCALAR_FMT[at][1]), *v)
        return struct.pack(SCALAR_FMT[t], v)

    def write(self, path):
        head = b'GGUF' + struct.pack('<Iqq', 3, len(self.tensors), len(self.kv))
        for key, t, v, at in self.kv:
            head += self.s(key) + struct.pack('<i', t) + self.val(t, v, at)
        off = 0
        infos = b''
        for name, ne, t, data in self.tensors:
            infos += self.s(name) + struct.pack('<I', len(ne)) + struct.pack('<%dq' % len(ne), *ne)
            infos += struct.pack('<iQ', t, off)
            off += (len(data) + self.ALIGN - 1) // self.ALIGN * self.ALIGN
        head += infos
        head += b'\0' * ((-len(head)) % self.ALIGN)
        blob = b''
        for _, _, _, data in self.tensors:
            blob += data + b'\0' * ((-len(data)) % self.ALIGN)
        with open(path, 'wb') as f:
            f.write(head + blob)


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
