#!/usr/bin/python3
"""omni_client: a Python client for omnid (pyzmq + msgpack), wire protocol v1.

docs/PROTOCOL.md is the reference. In short: a request is a multipart message whose
frame 0 is a msgpack map {"v": 1, "op", "id", "args"?, "deadline_ms"?} and whose
further frames are payloads referenced from args as {"frame": k}; replies carry the
request's id and a seq, and each request ends with exactly one "done" or "error".

    with Client() as c:
        print(c.health())
        for text, _ in c.ask("What happens in this clip?", video="clip.mp4"):
            print(text, end="", flush=True)
        modality, vec, done = c.embed(video="clip.mp4")

Also here: Subscriber (omnid's published streams) and Publisher (robot sensor
topics), with the ROS 2 sensor_msgs/Imu message as imu_message().
"""

import itertools
import os
import time

import msgpack
import zmq

PROTOCOL_VERSION = 1
ENDPOINT = "tcp://127.0.0.1:5555"         # ROUTER: requests and replies
PUB_ENDPOINT = "tcp://127.0.0.1:5556"     # XPUB: what omnid publishes
SENSOR_ENDPOINT = "tcp://127.0.0.1:5557"  # SUB: what robots publish to omnid

REPLY_TYPES = ("token", "progress", "result", "embedding", "image", "done", "error")
MAX_FRAMES = 16
MAX_TOTAL_BYTES = 256 << 20
MAX_HEADER_BYTES = 1 << 20

_DTYPES = {"f32": "<f4", "f16": "<f2", "i32": "<i4"}


class OmniError(Exception):
    """omnid answered a request with an error reply (code is e.g. "EBUSY")."""

    def __init__(self, code, message, request_id=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class OmniTimeout(OmniError):
    """No reply within the timeout: omnid is not running, not reachable, or stuck."""

    def __init__(self, message, request_id=None):
        super().__init__("ETIMEDOUT", message, request_id)


class OmniProtocolError(OmniError):
    """A reply that breaks the protocol (malformed, over a limit)."""

    def __init__(self, message, request_id=None):
        super().__init__("EPROTO", message, request_id)


class Payload:
    """Bytes to send as a separate frame; in args it becomes {"frame": k}."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = bytes(data)


class Reply:
    """One reply: .type, .id, .seq, the frame-0 map as .body (also via r["key"]),
    and the payload frames as .frames (bytes; .frames[0] is payload frame 1)."""

    __slots__ = ("body", "frames")

    def __init__(self, body, frames):
        self.body = body
        self.frames = frames

    type = property(lambda self: self.body["type"])
    id = property(lambda self: self.body["id"])
    seq = property(lambda self: self.body["seq"])
    final = property(lambda self: self.body["type"] in ("done", "error"))

    def __getitem__(self, key):
        return self.body[key]

    def get(self, key, default=None):
        return self.body.get(key, default)

    def payload(self, ref):
        """Bytes of a {"frame": k} reference, or of an inline bin."""
        if isinstance(ref, (bytes, bytearray)):
            return bytes(ref)
        k = ref["frame"]
        if not 1 <= k <= len(self.frames):
            raise OmniProtocolError(f"frame {k} is not a payload frame (reply has {len(self.frames)})")
        return self.frames[k - 1]

    def tensor(self, key="tensor"):
        """The tensor at body[key] as a numpy array (numpy imported on demand)."""
        import numpy as np
        t = self.body[key]
        data = t["data"] if "data" in t else self.payload(t)
        return decode_tensor(t, data, np)

    def __repr__(self):
        return f"Reply({self.body!r}, frames={len(self.frames)})"


def decode_tensor(t, data, np):
    if t.get("dtype") not in _DTYPES:
        raise OmniProtocolError(f"tensor.dtype: {t.get('dtype')!r} is not f32, f16 or i32")
    shape = tuple(int(d) for d in t["shape"])
    a = np.frombuffer(data, dtype=_DTYPES[t["dtype"]])
    if a.size != int(np.prod(shape, dtype=np.int64)):
        raise OmniProtocolError(f"tensor: {len(data)} bytes do not match shape {shape}")
    return a.reshape(shape)


def encode_args(args):
    """Replaces Payload values and numpy arrays in args (any depth) by frame references;
    returns (args, frames)."""
    frames = []

    def walk(v):
        if isinstance(v, Payload):
            frames.append(v.data)
            return {"frame": len(frames)}
        if type(v).__module__ == "numpy" and hasattr(v, "dtype") and hasattr(v, "shape"):
            name = {"float32": "f32", "float16": "f16", "int32": "i32"}.get(str(v.dtype))
            if name is None:
                raise ValueError(f"numpy dtype {v.dtype} has no wire dtype (f32, f16, i32)")
            frames.append(v.astype(_DTYPES[name], copy=False).tobytes(order="C"))
            return {"dtype": name, "shape": list(v.shape), "frame": len(frames)}
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(args or {}), frames


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(buf):
    """msgpack with the protocol's limits: strict map keys, bounded header."""
    if len(buf) > MAX_HEADER_BYTES:
        raise OmniProtocolError(f"frame 0 has {len(buf)} bytes (limit {MAX_HEADER_BYTES})")
    try:
        return msgpack.unpackb(buf, raw=False, unicode_errors="replace")
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise OmniProtocolError(f"malformed msgpack: {e}") from None


def decode_reply(parts):
    if not parts:
        raise OmniProtocolError("empty message")
    if len(parts) > MAX_FRAMES:
        raise OmniProtocolError(f"reply has {len(parts)} frames (limit {MAX_FRAMES})")
    if sum(len(p) for p in parts) > MAX_TOTAL_BYTES:
        raise OmniProtocolError(f"reply exceeds {MAX_TOTAL_BYTES} bytes")
    body = unpack(parts[0])
    if not isinstance(body, dict):
        raise OmniProtocolError(f"frame 0: expected map, got {type(body).__name__}")
    for key, typ in (("id", int), ("seq", int), ("type", str)):
        if not isinstance(body.get(key), typ) or isinstance(body.get(key), bool):
            raise OmniProtocolError(f"{key}: missing or not {typ.__name__}")
    return Reply(body, list(parts[1:]))


def read_key(key):
    """A z85 CURVE key: given as the 40-character text, or as a file in the format
    `omnid --gen-keys` writes (first line that is not blank or a # comment)."""
    if isinstance(key, bytes):
        key = key.decode()
    if len(key) == 40 and not os.path.exists(key):
        return key.encode()
    with open(key) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                if len(line.split()[0]) != 40:
                    break
                return line.split()[0].encode()
    raise ValueError(f"{key}: expected a 40-character z85 key")


def _curve(sock, server_key, client_key):
    """CURVE client options when keys are given (arguments, else OMNID_SERVER_KEY and
    OMNID_KEY): server_key is omnid's public key, client_key our secret key, whose
    public key must be in omnid's security.allow list."""
    server_key = server_key or os.environ.get("OMNID_SERVER_KEY")
    client_key = client_key or os.environ.get("OMNID_KEY")
    if not server_key and not client_key:
        return
    if not server_key or not client_key:
        raise ValueError("CURVE needs both server_key (omnid's public key) and client_key (our secret key)")
    secret = read_key(client_key)
    sock.curve_serverkey = read_key(server_key)
    sock.curve_secretkey = secret
    sock.curve_publickey = zmq.curve_public(secret)


class Client:
    """A DEALER connection to omnid's front door. Not thread-safe (one per thread).

    timeout: seconds to wait for the first reply and between replies.
    server_key, client_key: CURVE keys (see _curve) when omnid requires CURVE."""

    _ids = itertools.count(1)

    def __init__(self, endpoint=None, timeout=5.0, context=None, server_key=None, client_key=None):
        self.endpoint = endpoint or os.environ.get("OMNID_ENDPOINT") or ENDPOINT
        self.timeout = timeout
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_TOTAL_BYTES)
        try:
            _curve(self.sock, server_key, client_key)
        except Exception:
            self.close()
            raise
        self.sock.connect(self.endpoint)
        # ids distinct across processes so late replies to another run are ignored
        self._base = (os.getpid() << 24) & ((1 << 53) - 1)
        # replies to our other requests in flight, read while waiting for one id
        # (cancel() reads the target's error before its own done)
        self._pending = {}

    def close(self):
        self.sock.close(0)
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def next_id(self):
        return self._base + next(self._ids)

    def send(self, op, args=None, frames=(), deadline_ms=None, request_id=None):
        """Sends one request; returns its id. Payload/numpy values in args become frames."""
        args, extra = encode_args(args)
        rid = self.next_id() if request_id is None else request_id
        head = {"v": PROTOCOL_VERSION, "op": op, "id": rid}
        if args:
            head["args"] = args
        if deadline_ms:
            head["deadline_ms"] = int(deadline_ms)
        parts = [pack(head)] + [bytes(f) for f in frames] + extra
        if len(parts) > MAX_FRAMES:
            raise ValueError(f"{len(parts)} frames (limit {MAX_FRAMES})")
        self.sock.send_multipart(parts)
        self._pending.setdefault(rid, [])
        return rid

    def replies(self, request_id, timeout=None, raise_errors=True):
        """Generator of the replies to request_id, ending after done (or error, which
        raises OmniError when raise_errors). OmniTimeout when omnid stays silent."""
        timeout = self.timeout if timeout is None else timeout
        got_any = False
        backlog = self._pending.setdefault(request_id, [])
        while True:
            if backlog:
                r = backlog.pop(0)
            else:
                if not self.sock.poll(int(timeout * 1000)):
                    what = "went silent for" if got_any else "did not answer within"
                    raise OmniTimeout(f"omnid at {self.endpoint} {what} {timeout:g} s", request_id)
                r = decode_reply(self.sock.recv_multipart())
                if r.type not in REPLY_TYPES:
                    continue    # a newer reply kind
                if r.id != request_id:
                    if r.id in self._pending:
                        self._pending[r.id].append(r)   # ours, read by its own replies()
                    continue    # else a late reply to an earlier run
            got_any = True
            if r.final:
                del self._pending[request_id]
            if r.type == "error" and raise_errors:
                raise OmniError(r.get("code", "EUNKNOWN"), r.get("message", ""), request_id)
            yield r
            if r.final:
                return

    def request(self, op, args=None, frames=(), deadline_ms=None, timeout=None, raise_errors=True):
        """Sends a request and yields its replies (see replies())."""
        rid = self.send(op, args, frames, deadline_ms)
        return self.replies(rid, timeout, raise_errors)

    def call(self, op, args=None, frames=(), deadline_ms=None, timeout=None):
        """Runs a request to the end; returns the last result map (or the done reply's
        body when there was no result)."""
        result = None
        for r in self.request(op, args, frames, deadline_ms, timeout):
            if r.type == "result":
                result = r["result"]
            elif r.type == "done" and result is None:
                result = r.body
        return result

    def health(self, timeout=None):
        return self.call("health", timeout=timeout)

    def status(self, timeout=None):
        return self.call("status", timeout=timeout)

    def metrics(self, timeout=None):
        return self.call("metrics", timeout=timeout)

    def probe(self, url=None, data=None, name=None, timeout=None):
        """Probes a URL/path that omnid opens itself, or media bytes sent as a frame."""
        if (url is None) == (data is None):
            raise ValueError("probe needs exactly one of url= or data=")
        args = {"url": url} if url is not None else {"media": Payload(data)}
        if name:
            args["name"] = name
        return self.call("probe", args, timeout=timeout)

    def stream(self, op, args, deadline_ms=None, timeout=None):
        """Yields (text, token_id) for each streamed token of an llm request; returns
        the done reply's body (timings, usage) as the generator's value."""
        done = None
        for r in self.request(op, args, deadline_ms=deadline_ms, timeout=timeout):
            if r.type == "token":
                yield r.get("text", ""), r.get("token", -1)
            elif r.type == "done":
                done = r.body
        return done

    def generate(self, prompt, deadline_ms=None, timeout=None, **sampling):
        """Raw continuation of prompt; sampling: max_tokens, temperature, top_k, top_p,
        min_p, repeat_penalty, seed, stop (list of strings)."""
        return self.stream("generate", dict(sampling, prompt=prompt), deadline_ms, timeout)

    def ask(self, prompt, system=None, deadline_ms=None, timeout=None, video=None, image=None, url=False,
            frames=None, **sampling):
        """One user turn in the model's chat format. video= or image=: bytes, or a local
        file's path (uploaded), or a URL (omnid opens it; url=True: a path too). frames:
        how many frames to sample (default: the pack's). The media's rows go where the
        pack's placeholder ("<video>") is in prompt, else before it."""
        args = dict(sampling, prompt=prompt)
        if system is not None:
            args["system"] = system
        args.update(_media_args(video, image, url, frames))
        return self.stream("ask", args, deadline_ms, timeout)

    def embed(self, video=None, image=None, url=False, frames=None, deadline_ms=None, timeout=None):
        """The joint-space vector of a video or an image (as for ask); returns
        (modality, numpy float32 vector, done body)."""
        args = _media_args(video, image, url, frames)
        if not args:
            raise ValueError("embed needs video= or image=")
        emb = None
        for r in self.request("embed", args, deadline_ms=deadline_ms, timeout=timeout):
            if r.type == "embedding":
                emb = (r["modality"], r.tensor())
            elif r.type == "done":
                if emb is None:
                    raise OmniProtocolError("embed ended without an embedding", r.id)
                return emb[0], emb[1], r.body
        raise OmniProtocolError("embed ended without done")

    def chat(self, messages, deadline_ms=None, timeout=None, **sampling):
        """messages: [{"role": "system"|"user"|"assistant", "content": str}, ...]."""
        return self.stream("chat", dict(sampling, messages=list(messages)), deadline_ms, timeout)

    def cancel(self, target_id, timeout=None):
        """Cancels our request target_id (queued or running): it ends with an error
        ECANCELED, which its own replies() raises. OmniError ENOENT when omnid holds no
        such request of this client (finished already, or never sent)."""
        return self.call("cancel", {"target_id": int(target_id)}, timeout=timeout)


def _media_args(video, image, url, frames):
    if video is not None and image is not None:
        raise ValueError("give video= or image=, not both")
    key, media = ("video", video) if video is not None else ("image", image)
    if media is None:
        return {}
    if isinstance(media, (bytes, bytearray, memoryview)):
        value = Payload(media)
    elif url or "://" in media:
        # omnid runs elsewhere: a relative path means nothing there
        value = os.path.abspath(media) if "://" not in media and os.path.exists(media) else media
    else:
        with open(media, "rb") as f:
            value = Payload(f.read())
    args = {key: value}
    if frames is not None:
        args["frames"] = int(frames)
    return args


class Subscriber:
    """omnid's published streams (its XPUB): messages are [topic, msgpack map, payloads...]."""

    def __init__(self, topics=("omni/",), endpoint=PUB_ENDPOINT, context=None, server_key=None,
                 client_key=None):
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_TOTAL_BYTES)
        _curve(self.sock, server_key, client_key)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode() if isinstance(t, str) else t)
        self.sock.connect(endpoint)

    def recv(self, timeout=1.0):
        """(topic str, map, payload frames) or None after timeout seconds."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        parts = self.sock.recv_multipart()
        if len(parts) < 2 or len(parts) > MAX_FRAMES + 1:
            raise OmniProtocolError(f"published message has {len(parts)} frames")
        body = unpack(parts[1])
        return parts[0].decode("utf-8", "replace"), body, parts[2:]

    def close(self):
        self.sock.close(0)
        if self._own_ctx:
            self.ctx.term()


class Publisher:
    """Sensor topics to omnid (it binds a SUB on SENSOR_ENDPOINT; robots connect)."""

    def __init__(self, endpoint=SENSOR_ENDPOINT, context=None, server_key=None, client_key=None):
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        _curve(self.sock, server_key, client_key)
        self.sock.connect(endpoint)

    def publish(self, topic, msg, frames=()):
        self.sock.send_multipart([topic.encode(), pack(msg)] + [bytes(f) for f in frames])

    def close(self):
        self.sock.close(0)
        if self._own_ctx:
            self.ctx.term()


def now_ns():
    return time.time_ns()


def imu_message(stamp_ns, frame_id, angular_velocity, linear_acceleration, orientation=None,
                angular_velocity_covariance=None, linear_acceleration_covariance=None,
                orientation_covariance=None):
    """A sensor_msgs/Imu as a map: rad/s, m/s^2, quaternion (x, y, z, w). As in ROS 2,
    a covariance whose first element is -1 means "not provided" (orientation unknown
    when orientation is None); all zeros means "unknown covariance"."""
    def vec3(v):
        return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}

    def cov(c):
        return [0.0] * 9 if c is None else [float(x) for x in c]

    if orientation is None:
        orient, orient_cov = {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}, [-1.0] + [0.0] * 8
    else:
        orient = {k: float(x) for k, x in zip("xyzw", orientation)}
        orient_cov = cov(orientation_covariance)
    return {
        "header": {"stamp_ns": int(stamp_ns), "frame_id": frame_id},
        "orientation": orient,
        "orientation_covariance": orient_cov,
        "angular_velocity": vec3(angular_velocity),
        "angular_velocity_covariance": cov(angular_velocity_covariance),
        "linear_acceleration": vec3(linear_acceleration),
        "linear_acceleration_covariance": cov(linear_acceleration_covariance),
    }
