"""Helpers shared by the Python integration tests (tests/*/test_*.py)."""
import os
import sys


def split_preload():
    """Sanitizer builds preload ASan and lavapipe (OM_VULKAN_TEST_ENV) for our
    executables; the interpreter and ffmpeg are not ours to leak-check. Re-executes the
    test without the preload and returns the environment that gives it back to omnid,
    omni and omni-run (None outside sanitizer builds)."""
    pre = os.environ.pop("OM_TEST_PRELOAD", None)
    if pre is None and "LD_PRELOAD" in os.environ:
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        env["OM_TEST_PRELOAD"] = os.environ["LD_PRELOAD"]
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    return dict(os.environ, LD_PRELOAD=pre) if pre else None


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def start_omnid(omnid, tmp, name, *extra, env=None):
    """Starts omnid on free loopback ports; returns (process, front endpoint, log path)."""
    import subprocess
    import time
    ready = os.path.join(tmp, name + ".ready")
    log = open(os.path.join(tmp, name + ".log"), "w")
    p = subprocess.Popen([omnid, "--ready-file", ready,
                          "--front", "tcp://127.0.0.1:*", "--pub", "tcp://127.0.0.1:*",
                          "--sensors", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
                          *extra], stdout=log, stderr=log, env=env)
    for _ in range(600):
        if os.path.exists(ready) and "front=" in open(ready).read():
            break
        if p.poll() is not None:
            raise SystemExit(f"FAIL: omnid exited: {open(log.name).read()}")
        time.sleep(0.05)
    ep = [l.split("=", 1)[1] for l in open(ready).read().split() if l.startswith("front=")][0]
    return p, ep, log.name


def stop_omnid(p, log):
    """SIGTERM; checks exit 0 and that the daemon's log has no Vulkan validation errors."""
    import signal
    p.send_signal(signal.SIGTERM)
    check(p.wait(timeout=30) == 0, "omnid exits 0 on SIGTERM")
    check("validation errors" not in open(log).read(), "no Vulkan validation errors in the daemon's log")


def collect(gen):
    """Drains an llm reply generator (omni_client.Client.stream): (text, token ids, done body)."""
    text, ids = [], []
    try:
        while True:
            t, i = next(gen)
            text.append(t)
            if i >= 0:
                ids.append(i)
    except StopIteration as e:
        return "".join(text), ids, e.value
