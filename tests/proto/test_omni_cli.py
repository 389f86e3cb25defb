#!/usr/bin/python3
"""clients/omni: the omni CLI (C, om_proto) against the fake omnid (Python), so the
C encoder and decoder are checked against an independent implementation.
usage: test_omni_cli.py PATH_TO_OMNI"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fake_omnid  # noqa: E402

OMNI = None


class OmniCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = fake_omnid.FakeOmnid()
        cls.fake.start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def omni(self, *args, env=None, timeout=20):
        e = dict(os.environ)
        e.pop("OMNID_ENDPOINT", None)
        e.update(env or {})
        p = subprocess.run([OMNI, *args], capture_output=True, text=True, env=e, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def test_health_human(self):
        rc, out, err = self.omni("-e", self.fake.endpoint, "health")
        self.assertEqual(rc, 0, err)
        self.assertIn(f"omnid at {self.fake.endpoint}: ok", out)
        self.assertIn("version: fake-1", out)
        self.fake.draining = True
        try:
            rc, out, err = self.omni("-e", self.fake.endpoint, "health")
        finally:
            self.fake.draining = False
        self.assertEqual(rc, 1)
        self.assertIn("NOT ok", out)
        self.assertIn("status: draining", out)

    def test_status_json_lines(self):
        rc, out, err = self.omni("status", "--json", "--endpoint", self.fake.endpoint)
        self.assertEqual(rc, 0, err)
        lines = [json.loads(x) for x in out.splitlines()]
        self.assertEqual([x["type"] for x in lines], ["result", "done"])
        self.assertEqual(lines[0]["result"]["stages"][0]["name"], "ingest")
        self.assertEqual(lines[1]["timings"]["total"], 1.5)
        self.assertEqual(lines[0]["id"], lines[1]["id"])
        req = self.fake.requests[-1][0]
        self.assertEqual((req["v"], req["op"], req["id"]), (1, "status", lines[0]["id"]))
        self.assertNotIn("args", req)

    def test_endpoint_from_environment(self):
        rc, out, err = self.omni("metrics", env={"OMNID_ENDPOINT": self.fake.endpoint})
        self.assertEqual(rc, 0, err)
        self.assertIn("requests:", out)

    def test_deadline_is_sent(self):
        rc, _, err = self.omni("-e", self.fake.endpoint, "--deadline", "750", "status")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.fake.requests[-1][0]["deadline_ms"], 750)

    def test_probe_upload_and_paths(self):
        with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
            data = b"\x00\x00\x00\x18ftypisom" + os.urandom(3000)
            f.write(data)
            f.flush()
            rc, out, err = self.omni("probe", f.name, "--upload", "-e", self.fake.endpoint, "--json")
            self.assertEqual(rc, 0, err)
            req, frames = self.fake.requests[-1]
            self.assertEqual(req["args"]["media"], {"frame": 1})
            self.assertEqual(req["args"]["name"], os.path.basename(f.name))
            self.assertEqual(frames, [data])
            self.assertEqual(json.loads(out.splitlines()[0])["result"]["bytes"], len(data))

            rel = os.path.relpath(f.name)
            rc, out, err = self.omni("-e", self.fake.endpoint, "probe", rel)
            self.assertEqual(rc, 0, err)
            self.assertEqual(self.fake.requests[-1][0]["args"], {"url": os.path.realpath(f.name)})
            self.assertIn("codec: h264", out)

        rc, out, _ = self.omni("-e", self.fake.endpoint, "probe", "rtsp://cam.local/stream1")
        self.assertEqual(rc, 0)
        self.assertEqual(self.fake.requests[-1][0]["args"], {"url": "rtsp://cam.local/stream1"})

    def test_error_reply_exit_1(self):
        rc, out, err = self.omni("-e", self.fake.endpoint, "probe", "fail:nothing")
        self.assertEqual(rc, 1)
        self.assertIn("ENOENT: probe: cannot open 'fail:nothing'", err)

    def test_malformed_reply_exit_3(self):
        rc, _, err = self.omni("-e", self.fake.endpoint, "probe", "garbage:x")
        self.assertEqual(rc, 3)
        self.assertIn("result: missing", err)

    def test_no_daemon_exit_2(self):
        rc, out, err = self.omni("-e", "tcp://127.0.0.1:1", "--timeout", "200", "health")
        self.assertEqual(rc, 2)
        self.assertIn("no answer from omnid at tcp://127.0.0.1:1 within 200 ms", err)
        rc, _, err = self.omni("-e", self.fake.endpoint, "-t", "300", "probe", "slow:x")
        self.assertEqual(rc, 2)
        self.assertIn("went silent", err)

    def test_progress_bar_on_a_tty_only(self):
        import pty
        master, slave = pty.openpty()
        try:
            p = subprocess.run([OMNI, "-e", self.fake.endpoint, "probe", "steps:x"], stdout=slave,
                               stderr=slave, timeout=20)
            os.close(slave)
            slave = None
            out = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:            # EIO: the child side is closed
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)
        self.assertEqual(p.returncode, 0)
        text = out.decode()
        self.assertIn("decode [##########" + "." * 20 + "] 1/3", text)
        self.assertIn("decode [" + "#" * 30 + "] 3/3", text)
        self.assertIn("\r\x1b[K", text)           # the bar is erased before the result
        self.assertIn("url: steps:x", text)
        rc, out, err = self.omni("-e", self.fake.endpoint, "probe", "steps:x")
        self.assertEqual(rc, 0)
        self.assertNotIn("[#", out + err)         # not a terminal: no bar
        rc, out, _ = self.omni("-e", self.fake.endpoint, "--json", "probe", "steps:x")
        self.assertEqual([json.loads(x)["type"] for x in out.splitlines()],
                         ["progress"] * 3 + ["result", "done"])

    def test_curve(self):
        import zmq
        server_pub, server_sec = zmq.curve_keypair()
        _, client_sec = zmq.curve_keypair()
        other_pub, _ = zmq.curve_keypair()
        fake = fake_omnid.FakeOmnid(curve_secret=server_sec)
        fake.start()
        try:
            with tempfile.TemporaryDirectory() as d:
                def key(name, text):
                    path = os.path.join(d, name)
                    with open(path, "w") as f:
                        f.write(text)
                    return path
                spub = key("server.key", "# omnid\n" + server_pub.decode() + "\n")
                csec = key("secret.key", client_sec.decode() + "\n")
                wrong = key("wrong.key", other_pub.decode() + "\n")
                rc, out, err = self.omni("-e", fake.endpoint, "--server-key", spub, "--key", csec, "health")
                self.assertEqual(rc, 0, err)
                rc, _, err = self.omni("status", "-e", fake.endpoint,
                                       env={"OMNID_SERVER_KEY": spub, "OMNID_KEY": csec})
                self.assertEqual(rc, 0, err)
                rc, _, err = self.omni("-e", fake.endpoint, "-t", "300", "health")
                self.assertEqual(rc, 2)                   # no CURVE: no connection
                rc, _, err = self.omni("-e", fake.endpoint, "-t", "300", "--server-key", wrong,
                                       "--key", csec, "health")
                self.assertEqual(rc, 2)
                rc, _, err = self.omni("-e", fake.endpoint, "--server-key", spub, "health")
                self.assertEqual(rc, 64)
                self.assertIn("needs both", err)
                rc, _, err = self.omni("-e", fake.endpoint, "--server-key", key("bad", "abc\n"),
                                       "--key", csec, "health")
                self.assertEqual(rc, 64)
                self.assertIn("bad:1: expected a 40-character z85 key", err)
        finally:
            fake.stop()

    def test_usage_exit_64(self):
        for args in (["bogus"], [], ["status", "extra"], ["probe"], ["-t", "abc", "status"],
                     ["probe", "--upload", "http://x/y"], ["probe", "--upload", "/nonexistent/file"],
                     ["-e", "not an endpoint", "status"]):
            rc, _, err = self.omni(*args)
            self.assertEqual(rc, 64, f"{args}: {err}")
        rc, out, _ = self.omni("probe", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: omni probe", out)


if __name__ == "__main__":
    OMNI = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
