#!/usr/bin/python3
"""Writes the test data of tests/proto, from the Python client's side of the protocol:
- corpus/: seeds of fuzz_proto (byte 0 = payload frame count 0..3, then frame 0),
  every request and reply shape of docs/PROTOCOL.md and a few hostile headers;
- imu_python.msgpack: a sensor_msgs/Imu map from omni_client.imu_message, which
  test_proto decodes with om_imu_decode (the C side must read what Python writes).
Rerun after protocol changes."""

import os
import struct
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
import omni_client  # noqa: E402

OUT = os.path.join(HERE, "corpus")
IMU = omni_client.imu_message(1764140000123456789, "r1/imu_link", (0.01, -0.02, 0.3), (0.1, 0.0, 9.81),
                              orientation=(0, 0, 0.38268343, 0.92387953),
                              angular_velocity_covariance=[0.001, 0, 0, 0, 0.001, 0, 0, 0, 0.001])


def p(o):
    return msgpack.packb(o, use_bin_type=True)


def req(op, args=None, **kw):
    m = {"v": 1, "op": op, "id": 7, **kw}
    if args is not None:
        m["args"] = args
    return p(m)


def rep(typ, **kw):
    return p({"id": 7, "seq": 0, "type": typ, **kw})


SEEDS = {
    "req_health": (0, req("health")),
    "req_status_deadline": (0, req("status", deadline_ms=2000)),
    "req_metrics": (0, req("metrics")),
    "req_probe_url": (0, req("probe", {"url": "file:///tmp/clip.mp4"})),
    "req_probe_media": (2, req("probe", {"media": {"frame": 2}, "name": "a.mp4"})),
    "req_probe_inline": (0, req("probe", {"media": b"\x00\x00\x00\x18ftyp"})),
    "req_embed_tensor": (3, req("embed", {"query": {"dtype": "f32", "shape": [2, 2], "frame": 3},
                                          "inline": {"dtype": "f16", "shape": [2],
                                                     "data": struct.pack("<2e", 1, -1)}})),
    "req_ask": (0, req("ask", {"question": "what?", "max_tokens": 16, "temperature": 0.7,
                               "stream": True, "offset": -2})),
    "req_cancel": (0, req("cancel", {"target_id": 6})),
    "rep_token": (0, rep("token", text="Hello", token=15043)),
    "rep_progress": (0, rep("progress", stage="unet", current=3, total=20)),
    "rep_result": (0, rep("result", result={"ok": True, "stages": [{"name": "llm"}]})),
    "rep_embedding": (1, p({"id": 7, "seq": 1, "type": "embedding", "modality": "image",
                            "tensor": {"dtype": "f32", "shape": [2], "frame": 1}})),
    "rep_image": (2, rep("image", mime="image/png", width=2, height=2, frame=2)),
    "rep_done": (0, rep("done", timings={"total": 1.5}, usage={"tokens_out": 3})),
    "rep_error": (0, rep("error", code="EBUSY", message="queue llm is full")),
    "bad_unknown_op": (0, req("teleport")),
    "bad_huge_array": (0, b"\xdd\xff\xff\xff\xff\x00"),
    "bad_deep": (0, b"\x91" * 40 + b"\xc0"),
    "bad_trailing": (0, req("health") + b"\x00"),
    "bad_str32": (0, b"\x81\xa2op\xdb\x7f\xff\xff\xff"),
    "imu": (0, p(IMU)),
    "imu_no_orientation": (0, p(omni_client.imu_message(5, "f", (0, 0, 0), (0, 0, 9.81)))),
    "topic_sensor": (0, b"sensor/r1/imu"),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (n, frame0) in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([n]) + frame0)
    with open(os.path.join(HERE, "imu_python.msgpack"), "wb") as f:
        f.write(p(IMU))


if __name__ == "__main__":
    main()
