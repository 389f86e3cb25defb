#!/usr/bin/python3
"""clients/python: omni_client and the robot bridge example against a fake omnid
(tests/proto/fake_omnid.py) on loopback; no daemon needed."""

import io
import os
import sys
import tempfile
import time
import types
import unittest

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python", "examples"))

import fake_omnid  # noqa: E402
import omni_client as oc  # noqa: E402
import robot_bridge  # noqa: E402


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.fake = fake_omnid.FakeOmnid()
        self.fake.start()
        self.client = oc.Client(self.fake.endpoint, timeout=5.0)

    def tearDown(self):
        self.client.close()
        self.fake.stop()

    def test_request_frame0_is_protocol_v1(self):
        self.assertEqual(self.client.health()["status"], "ok")
        req, frames = self.fake.requests[-1]
        self.assertEqual(set(req), {"v", "op", "id"})
        self.assertEqual((req["v"], req["op"]), (1, "health"))
        self.assertEqual(frames, [])

    def test_status_metrics(self):
        st = self.client.status()
        self.assertEqual(st["stages"][0]["name"], "ingest")
        self.assertEqual(self.client.metrics()["requests"], 2)

    def test_probe_url_and_upload(self):
        self.assertEqual(self.client.probe(url="file:///data/a.mp4")["url"], "file:///data/a.mp4")
        data = b"\x00\x00\x00\x18ftypmp42" + bytes(1000)
        res = self.client.probe(data=data, name="a.mp4")
        self.assertEqual((res["bytes"], res["name"], res["magic"]), (len(data), "a.mp4", "00000018"))
        req, frames = self.fake.requests[-1]
        self.assertEqual(req["args"]["media"], {"frame": 1})
        self.assertEqual(frames, [data])
        with self.assertRaises(ValueError):
            self.client.probe()

    def test_stream_order_and_deadline(self):
        replies = list(self.client.request("ask", {"question": "hi?"}, deadline_ms=1500))
        self.assertEqual([r.type for r in replies],
                         ["progress", "progress", "token", "token", "token", "done"])
        self.assertEqual([r.seq for r in replies], list(range(6)))
        self.assertEqual("".join(r["text"] for r in replies if r.type == "token"), "Hello, robot")
        self.assertTrue(replies[-1].final)
        self.assertEqual(replies[-1]["usage"], {"tokens_out": 3})
        self.assertEqual(self.fake.requests[-1][0]["deadline_ms"], 1500)

    def test_tensors_both_ways(self):
        import numpy as np
        vec = np.arange(6, dtype=np.float32).reshape(2, 3)
        rs = list(self.client.request("embed", {"text": "a cat", "query": vec,
                                                "opts": {"raw": oc.Payload(b"xyz")}}))
        req, frames = self.fake.requests[-1]
        self.assertEqual(req["args"]["query"], {"dtype": "f32", "shape": [2, 3], "frame": 1})
        self.assertEqual(req["args"]["opts"]["raw"], {"frame": 2})
        self.assertEqual(frames[0], vec.tobytes())
        self.assertEqual(frames[1], b"xyz")
        emb = rs[0].tensor()
        np.testing.assert_array_equal(emb, np.array([0.5, -0.5, 0.5, -0.5], dtype=np.float32))
        with self.assertRaises(ValueError):
            oc.encode_args({"x": np.zeros(2, dtype=np.float64)})

    def test_error_reply_raises_with_code(self):
        with self.assertRaises(oc.OmniError) as cm:
            self.client.call("teleport")
        self.assertEqual(cm.exception.code, "EUNSUPPORTED")
        self.assertIn("teleport", cm.exception.message)
        rs = list(self.client.request("probe", {}, raise_errors=False))
        self.assertEqual((rs[-1].type, rs[-1]["code"]), ("error", "EINVAL"))

    def test_timeout(self):
        t0 = time.monotonic()
        with self.assertRaises(oc.OmniTimeout) as cm:
            self.client.call("sleep", timeout=0.2)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(cm.exception.code, "ETIMEDOUT")

    def test_no_daemon(self):
        with oc.Client("tcp://127.0.0.1:1", timeout=0.2) as c:
            with self.assertRaises(oc.OmniTimeout) as cm:
                c.health()
            self.assertIn("did not answer", str(cm.exception))

    def test_malformed_reply(self):
        with self.assertRaises(oc.OmniProtocolError):
            self.client.call("garbage", timeout=2)

    def test_stale_replies_are_skipped(self):
        rid = self.client.send("health")
        rid2 = self.client.send("status")
        rs = list(self.client.replies(rid2))
        self.assertEqual(rs[0]["result"]["state"], "ready")
        self.assertNotEqual(rid, rid2)

    def test_decode_reply_limits(self):
        ok = msgpack.packb({"id": 1, "seq": 0, "type": "done"})
        self.assertEqual(oc.decode_reply([ok]).type, "done")
        bad = [
            [],
            [ok] * (oc.MAX_FRAMES + 1),
            [ok + b"\x00"],                                         # trailing bytes
            [ok[:-1]],                                              # truncated
            [b"\xdd\xff\xff\xff\xff"],                              # huge declared array
            [msgpack.packb([1, 2])],                                # not a map
            [msgpack.packb({"id": "1", "seq": 0, "type": "done"})],  # wrong type
            [msgpack.packb({"id": 1, "type": "done"})],             # missing seq
            [b"\x91" * 2000 + b"\xc0"],                             # deep nesting
        ]
        for parts in bad:
            with self.assertRaises(oc.OmniProtocolError, msg=repr(parts)[:60]):
                oc.decode_reply(parts)
        r = oc.Reply({"tensor": {"dtype": "f32", "shape": [3], "data": b"\x00" * 8}}, [])
        with self.assertRaises(oc.OmniProtocolError):
            r.tensor()


class CurveTest(unittest.TestCase):
    def test_curve_keys(self):
        server_pub, server_sec = zmq.curve_keypair()
        client_pub, client_sec = zmq.curve_keypair()
        other_pub, _ = zmq.curve_keypair()
        fake = fake_omnid.FakeOmnid(curve_secret=server_sec)
        fake.start()
        try:
            with tempfile.TemporaryDirectory() as d:
                key_file = os.path.join(d, "secret.key")
                with open(key_file, "w") as f:
                    f.write("# client key\n\n" + client_sec.decode() + "\n")
                with oc.Client(fake.endpoint, timeout=5, server_key=server_pub, client_key=key_file) as c:
                    self.assertEqual(c.health()["status"], "ok")
                for kw in ({}, {"server_key": other_pub, "client_key": client_sec}):
                    with oc.Client(fake.endpoint, timeout=0.3, **kw) as c:
                        with self.assertRaises(oc.OmniTimeout):
                            c.health()
                with self.assertRaises(ValueError):
                    oc.Client(fake.endpoint, server_key=server_pub)
                bad = os.path.join(d, "bad.key")
                with open(bad, "w") as f:
                    f.write("short\n")
                with self.assertRaises(ValueError):
                    oc.read_key(bad)
        finally:
            fake.stop()


class RobotTest(unittest.TestCase):
    def test_imu_message_fields(self):
        m = oc.imu_message(123456789, "r1/imu_link", (0, 0, 0.3), (0, 0, 9.81))
        self.assertEqual(m["header"], {"stamp_ns": 123456789, "frame_id": "r1/imu_link"})
        self.assertEqual(m["angular_velocity"], {"x": 0.0, "y": 0.0, "z": 0.3})
        self.assertEqual(m["orientation_covariance"][0], -1.0)  # ROS: orientation not provided
        self.assertEqual(len(m["linear_acceleration_covariance"]), 9)
        m2 = oc.imu_message(1, "f", (0, 0, 0), (0, 0, 0), orientation=(0, 0, 0.7071, 0.7071))
        self.assertEqual(m2["orientation"]["w"], 0.7071)
        self.assertEqual(m2["orientation_covariance"], [0.0] * 9)

    def test_robot_bridge_against_fake(self):
        fake = fake_omnid.FakeOmnid()
        fake.start()
        try:
            args = types.SimpleNamespace(robot="r7", endpoint=fake.endpoint,
                                         pub_endpoint=fake.pub_endpoint,
                                         sensor_endpoint=fake.sensor_endpoint, rate=50.0,
                                         seconds=0.5, question="turning?", timeout=5.0,
                                         server_key=None, key=None)
            out = io.StringIO()
            s = robot_bridge.run(args, out)
        finally:
            fake.stop()
        self.assertIsNone(s["error"])
        self.assertEqual(s["answer"], "Hello, robot")
        self.assertGreater(s["sent"], 10)
        self.assertIn("omni/r7/", fake.subscriptions)
        topics = {t for t, _ in fake.sensor_msgs}
        self.assertEqual(topics, {"sensor/r7/imu"})
        stamps = [m["header"]["stamp_ns"] for _, m in fake.sensor_msgs]
        self.assertEqual(stamps, sorted(stamps))
        self.assertGreater(stamps[0], 1_600_000_000 * 10**9)   # ns since the epoch
        self.assertAlmostEqual(fake.sensor_msgs[0][1]["angular_velocity"]["z"], 0.3)
        self.assertGreater(s["received"].get("omni/r7/embedding/imu", 0), 0)
        req = fake.requests[-1][0]
        self.assertEqual((req["op"], req["args"]["robot"]), ("ask", "r7"))
        self.assertIn("A: Hello, robot", out.getvalue())


if __name__ == "__main__":
    unittest.main(verbosity=2)
