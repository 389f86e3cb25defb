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
