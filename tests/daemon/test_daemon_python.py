#!/usr/bin/python3
"""omnid driven by the real Python client (clients/python/omni_client.py), with
CURVE on: allowed client served (health, status, probe by path and by upload,
test ops from 8 threads at once), a client without keys refused, sensor topics
republished to a subscriber, SIGTERM -> exit 0.

usage: test_daemon_python.py OMNID SAMPLES_DIR CLIENTS_PYTHON_DIR"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

OMNID, SAMPLES, CLIENT_DIR = sys.argv[1:4]
sys.path.insert(0, CLIENT_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import omni_client as oc  # noqa: E402
from omtest import check  # noqa: E402


def gen_keys(d):
    os.makedirs(d)
    subprocess.run([OMNID, "--gen-keys", d], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(d, "public.key"), os.path.join(d, "secret.key")


def main():
    tmp = tempfile.mkdtemp(prefix="omnid-py-")
    srv_pub, srv_sec = gen_keys(os.path.join(tmp, "server"))
    cli_pub, cli_sec = gen_keys(os.path.join(tmp, "client"))
    allow = os.path.join(tmp, "allow")
    with open(cli_pub) as f, open(allow, "w") as out:
        out.write("# the test client\n" + f.read())
    ready = os.path.join(tmp, "ready")
    star = "tcp://127.0.0.1:*"
    proc = subprocess.Popen([OMNID, "--front", star, "--pub", star, "--sensors", star,
                             "--backend", star, "--ready-file", ready, "--enable-test-ops",
                             "--set", "security.curve=on", "--set", f"security.secret_key={srv_sec}",
                             "--set", f"security.allow={allow}", "--set", "stage.test.workers=4",
                             "--quiet"])
    try:
        for _ in range(100):
            if os.path.exists(ready):
                break
            time.sleep(0.1)
        eps = dict(line.strip().split("=", 1) for line in open(ready))
        keys = dict(server_key=srv_pub, client_key=cli_sec)

        with oc.Client(eps["front"], timeout=10, **keys) as c:
            check(c.health()["status"] == "ok", "health")
            st = c.status()
            check({"ingest", "llm", "test"} <= {s["name"] for s in st["stages"]}, f"stages {st['stages']}")
            clip = os.path.join(SAMPLES, "clip.mp4")
            info = c.probe(url=clip)
            check(info["streams"][0]["codec"] == "h264" and info["streams"][0]["width"] == 160,
                  f"probe by path {info}")
            info = c.probe(data=open(clip, "rb").read(), name="clip.mp4")
            check(info["n_streams"] == 2, f"probe by upload {info}")
            try:
                c.call("sleep", {"ms": 2000}, deadline_ms=100)
                check(False, "deadline not enforced")
            except oc.OmniError as e:
                check(e.code == "ETIMEDOUT", f"deadline gave {e.code}")

        # Without keys the handshake is refused: no answer, a clear timeout.
        with oc.Client(eps["front"], timeout=1) as bad:
            try:
                bad.health()
                check(False, "client without keys was served")
            except oc.OmniTimeout:
                pass

        # 8 threads x 25 requests through the test stage: each answered once.
        errors = []

        def worker(k):
            try:
                with oc.Client(eps["front"], timeout=10, **keys) as c:
                    for i in range(25):
                        r = c.call("echo", {}, frames=[b"%d-%d" % (k, i)])
                        if r["frames"] != 1:
                            errors.append(f"echo {k}/{i}: {r}")
            except Exception as e:  # reported below, the thread must not die silently
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not errors, f"concurrent echo: {errors[:3]}")

        # Sensor topics come back on the XPUB, CURVE on both.
        sub = oc.Subscriber(topics=("sensor/",), endpoint=eps["pub"], **keys)
        pub = oc.Publisher(endpoint=eps["sensors"], **keys)
        msg = oc.imu_message(oc.now_ns(), "r1/imu_link", (0, 0, 0.3), (0.1, 0, 9.81))
        got = None
        for _ in range(50):    # until the subscription and connection are up
            pub.publish("sensor/r1/imu", msg)
            got = sub.recv(timeout=0.1)
            if got:
                break
        check(got and got[0] == "sensor/r1/imu" and got[1]["linear_acceleration"]["z"] == 9.81,
              f"sensor topic {got}")
        sub.close()
        pub.close()

        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=10) == 0, "exit status after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


main()
