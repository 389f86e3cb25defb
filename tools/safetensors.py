"""safetensors: reads and writes the safetensors format with numpy only.

Layout: u64 little-endian header length N, N bytes of JSON
{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian tensor bytes (offsets relative to the end of the header).
The reader checks every size and offset against the file before slicing it, and
refuses anything it does not understand with SafetensorsError naming the tensor.
"""
import json
import struct

import numpy as np

DTYPES = {
    'F64': np.dtype('<f8'), 'F32': np.dtype('<f4'), 'F16': np.dtype('<f2'),
    'I64': np.dtype('<i8'), 'I32': np.dtype('<i4'), 'I16': np.dtype('<i2'), 'I8': np.dtype('i1'),
    'U8': np.dtype('u1'), 'BOOL': np.dtype('?'),
}
MAX_HEADER = 100 << 20      # the format's own limit (100 MB of JSON)


class SafetensorsError(Exception):
    pass


def bf16_to_f32(raw):
    """bfloat16 is the top half of an f32."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def load(path):
    """Returns ({name: np.ndarray}, metadata dict). BF16 tensors come back as f32."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 8:
        raise SafetensorsError('%s: %d bytes, too short for a header length' % (path, len(data)))
    n, = struct.unpack_from('<Q', data, 0)
    if n > MAX_HEADER or 8 + n > len(data):
        raise SafetensorsError('%s: header length %d does not fit the file (%d bytes)' % (path, n, len(data)))
    try:
        header = json.loads(data[8:8 + n].decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError('%s: header is not JSON: %s' % (path, e))
    if not isinstance(header, dict):
        raise SafetensorsError('%s: header is not a JSON object' % path)
    body = memoryview(data)[8 + n:]
    meta = header.pop('__metadata__', {}) or {}
    out = {}
    for name, info in header.items():
        if not isinstance(info, dict):
            raise SafetensorsError('%s: entry %s is not an object' % (path, name))
        dt, shape, offs = info.get('dtype'), info.get('shape'), info.get('data_offsets')
        if dt != 'BF16' and dt not in DTYPES:
            raise SafetensorsError('%s: tensor %s has unsupported dtype %r' % (path, name, dt))
        if (not isinstance(shape, list) or len(shape) > 8 or
                not all(isinstance(d, int) and 0 <= d < (1 << 40) for d in shape)):
            raise SafetensorsError('%s: tensor %s has a bad shape %r' % (path, name, shape))
        if (not isinstance(offs, list) or len(offs) != 2 or
                not all(isinstance(o, int) for o in offs) or not 0 <= offs[0] <= offs[1] <= len(body)):
            raise SafetensorsError('%s: tensor %s has data_offsets %r outside the %d data bytes'
                                   % (path, name, offs, len(body)))
        itemsize = 2 if dt == 'BF16' else DTYPES[dt].itemsize
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offs[1] - offs[0] != count * itemsize:
            raise SafetensorsError('%s: tensor %s: %d bytes for shape %r of %s'
                                   % (path, name, offs[1] - offs[0], shape, dt))
        raw = body[offs[0]:offs[1]]
        if dt == 'BF16':
            arr = bf16_to_f32(np.frombuffer(raw, dtype='<u2'))
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[dt]).copy()
        out[name] = arr.reshape(shape)
    return out, meta


def save(path, tensors, metadata=None):
    """Writes {name: np.ndarray} (f32/f16/int types) in name order."""
    rev = {v: k for k, v in DTYPES.items()}
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = a.dtype.newbyteorder('<') if a.dtype.byteorder == '>' else a.dtype
        key = rev.get(np.dtype(dt))
        if key is None:
            raise SafetensorsError('tensor %s: dtype %s cannot be stored' % (name, a.dtype))
        b = a.astype(dt).tobytes()
        header[name] = {'dtype': key, 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * ((-len(h)) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
