#!/usr/bin/python3
"""Cancellation through the real clients: the Python client's cancel() on a running
sleep, on a stream whose replies keep coming while cancel() waits for its own
answer, and on an id omnid does not hold; `omni ask` interrupted with Ctrl-C
(SIGINT) while its request waits in the llm queue (the stage is `remote` with no
worker, so no model is needed) sends `cancel` and exits 130.

usage: test_daemon_cancel.py OMNID OMNI CLIENTS_PYTHON_DIR"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

OMNID, OMNI, CLIENT_DIR = sys.argv[1:4]
sys.path.insert(0, CLIENT_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import omni_client as oc  # noqa: E402
from omtest import check  # noqa: E402


def stage(c, name):
    return next(s for s in c.status()["stages"] if s["name"] == name)


def wait_for(what, fn, timeout=5.0):
    until = time.time() + timeout
    while time.time() < until:
        if fn():
            return
        time.sleep(0.02)
    raise SystemExit(f"FAIL: timed out waiting for {what}")


def expect_error(gen, code, what):
    try:
        for _ in gen:
            pass
    except oc.OmniError as e:
        check(e.code == code, f"{what}: {e.code} {e}, expected {code}")
        return e
    raise SystemExit(f"FAIL: {what}: no error, expected {code}")


def main():
    tmp = tempfile.mkdtemp(prefix="omnid-cancel-")
    ready = os.path.join(tmp, "ready")
    star = "tcp://127.0.0.1:*"
    proc = subprocess.Popen([OMNID, "--front", star, "--pub", star, "--sensors", star,
                             "--backend", star, "--ready-file", ready, "--enable-test-ops",
                             "--set", "stage.llm.mode=remote", "--quiet"])
    try:
        wait_for("omnid's ready file", lambda: os.path.exists(ready))
        eps = dict(line.strip().split("=", 1) for line in open(ready))
        with oc.Client(eps["front"], timeout=10) as c:
            wait_for("a test worker", lambda: stage(c, "test")["workers"] == 1)

            # A running sleep: ECANCELED at once, and the worker is free again.
            t0 = time.time()
            rid = c.send("sleep", {"ms": 5000})
            wait_for("the sleep to run", lambda: stage(c, "test")["inflight"] == 1)
            done = c.cancel(rid)
            check(done["type"] == "done", f"cancel answered {done}")
            expect_error(c.replies(rid), "ECANCELED", "cancelled sleep")
            check(c.call("sleep", {"ms": 1})["slept_ms"] == 1, "next request served")
            check(time.time() - t0 < 3, f"cancel took {time.time() - t0:.2f} s")

            # A stream: its replies that arrive while cancel() waits are kept for it.
            rid = c.send("stream", {"n": 200, "ms": 10})
            it = c.replies(rid)
            check([next(it).type for _ in range(3)] == ["progress"] * 3, "stream progress")
            c.cancel(rid)
            e = expect_error(it, "ECANCELED", "cancelled stream")
            check("cancelled by request" in str(e), f"message {e}")

            expect_error(c.request("cancel", {"target_id": 12345}), "ENOENT", "unknown id")

            # omni ask, Ctrl-C while queued (the llm stage has no worker).
            cli = subprocess.Popen([OMNI, "-e", eps["front"], "ask", "hello"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            wait_for("omni's request in the queue", lambda: stage(c, "llm")["queued"] == 1)
            cli.send_signal(signal.SIGINT)
            out, err = cli.communicate(timeout=10)
            check(cli.returncode == 130, f"omni exit {cli.returncode}, stderr {err!r}")
            check(b"omnid cancelled the request" in err, f"omni stderr {err!r}")
            check(stage(c, "llm")["queued"] == 0, "the queue is empty again")
            counters = c.metrics()["metrics"]["counters"]
            check(counters["cancelled"] == 3, f"counters {counters}")

        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=10) == 0, "omnid exit 0 after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
