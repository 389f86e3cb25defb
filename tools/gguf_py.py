"""gguf_py: GGUF reading and writing for the Python tools (mkllama, llama_ref, convert):
the value-type constants, llama.cpp's reference Q8_0/Q4_0 quantizers, a reader that
dequantizes tensors to float64 and a GGUF v3 writer (MODELS.md 6.6-6.7). numpy only.
"""
import struct

import numpy as np

F32 = np.float32

# ggml type ids and llama.cpp "file type" ids
TYPES = {'f32': 0, 'f16': 1, 'q4_0': 2, 'q8_0': 8}
FILE_TYPE = {'f32': 0, 'f16': 1, 'q4_0': 2, 'q8_0': 7}
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34)}      # type -> (values, bytes) per block

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


def dequantize(raw, t):
    """Flat float64 values of raw bytes of ggml type t (f32, f16, q4_0, q8_0)."""
    if t == 0:
        return np.frombuffer(raw, '<f4').astype(np.float64)
    if t == 1:
        return np.frombuffer(raw, '<f2').astype(np.float64)
    if t == 8:
        blk = np.frombuffer(raw, dtype=[('d', '<f2'), ('qs', 'i1', 32)])
        return (blk['d'].astype(np.float64)[:, None] * blk['qs'].astype(np.float64)).reshape(-1)
    blk = np.frombuffer(raw, dtype=[('d', '<f2'), ('qs', 'u1', 16)])
    lo = (blk['qs'] & 15).astype(np.float64) - 8
    hi = (blk['qs'] >> 4).astype(np.float64) - 8
    return (blk['d'].astype(np.float64)[:, None] * np.concatenate([lo, hi], axis=1)).reshape(-1)


# ---------------------------------------------------------------- reading

class Reader:
    """GGUF v2/v3: kv maps key -> (type, value), an array's value being (item type, list);
    strings keep undecodable bytes (surrogateescape) so they are written back unchanged."""

    def __init__(self, path):
        self.path = path
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
        self.info = {}
        for _ in range(n_tensors):
            name = self.string()
            nd, = self.unpack('<I')
            ne = self.unpack('<%dq' % nd)
            t, off = self.unpack('<iQ')
            self.info[name] = (ne, t, off)
        align = self.get('general.alignment', 32)
        self.data = (self.o + align - 1) // align * align

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
            vals = list(struct.unpack_from('<%d%s' % (n, fmt[1]), self.b, self.o))
            self.o += struct.calcsize(fmt) * n
            return (at, vals)
        v, = self.unpack(SCALAR_FMT[t])
        return v

    def get(self, key, default=None):
        """The value of key (an array's list), or default."""
        if key not in self.kv:
            return default
        t, v = self.kv[key]
        return v[1] if t == ARR else v

    def need(self, key):
        """The value of key, which must be there."""
        if key not in self.kv:
            raise SystemExit('%s: missing key %s' % (self.path, key))
        return self.get(key)

    def has(self, name):
        return name in self.info

    def tensor(self, name):
        """PyTorch-order float64 array (ne reversed)."""
        ne, t, off = self.info[name]
        if t not in BLOCK:
            raise SystemExit('%s: ggml type %d not supported (f32, f16, q4_0, q8_0)' % (name, t))
        vals, size = BLOCK[t]
        n = int(np.prod(ne))
        raw = self.b[self.data + off:self.data + off + n // vals * size]
        return dequantize(raw, t).reshape(tuple(reversed(ne)))


# ---------------------------------------------------------------- writing

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
