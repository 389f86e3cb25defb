#!/usr/bin/python3
"""The llm stage through omnid, driven by the real clients: generate/ask/chat stream
tokens and end in done with usage; greedy output through the daemon equals omni-run's
(the library without the daemon); a chat turn that repeats the history reuses the KV
cache; bad arguments get errors naming the field while other clients are served; a
deadline ends a long generation with ETIMEDOUT and the stage keeps serving; a daemon
without a model answers ENOENT saying how to configure one.

usage: test_daemon_llm.py OMNID OMNI OMNI_RUN MODEL.gguf CLIENTS_PYTHON_DIR"""
import os
import subprocess
import sys
import tempfile
import threading
import time

OMNID, OMNI, OMNI_RUN, MODEL, CLIENT_DIR = sys.argv[1:6]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from omtest import check, collect, split_preload, start_omnid, stop_omnid  # noqa: E402

OURS_ENV = split_preload()
sys.path.insert(0, CLIENT_DIR)
import omni_client as oc  # noqa: E402


def main():
    tmp = tempfile.mkdtemp(prefix="omnid-llm-")
    p, ep, log = start_omnid(OMNID, tmp, "llm", "--quiet", "--set", "llm.model=" + MODEL, "--set", "llm.ctx=256",
                             env=OURS_ENV)
    try:
        c = oc.Client(ep, timeout=60)
        text, ids, done = collect(c.generate("Hello world", max_tokens=8, temperature=0))
        check(len(ids) == 8, "generate streams 8 tokens")
        check(done["usage"]["generated_tokens"] == 8 and done["usage"]["prompt_tokens"] > 0,
              "done carries usage")
        check("prompt_ms" in done["timings"] and "gen_ms" in done["timings"], "done carries timings")

        # The same greedy continuation from the library, without the daemon.
        lib = subprocess.run([OMNI_RUN, MODEL, "-p", "Hello world", "-n", "8", "--temp", "0"],
                             capture_output=True, check=True, env=OURS_ENV).stdout
        check(lib.rstrip(b"\n") == text.encode("utf-8", "surrogateescape").rstrip(b"\n")
              or lib.decode("utf-8", "replace").rstrip("\n") == text.rstrip("\n"),
              "daemon and omni-run give the same greedy text")

        # Sampling with a seed is reproducible.
        a = collect(c.generate("Once", max_tokens=10, temperature=0.9, seed=7))[1]
        b = collect(c.generate("Once", max_tokens=10, temperature=0.9, seed=7))[1]
        check(a == b, "same seed, same tokens")

        # Chat: the second turn repeats the first, so its prompt comes from the cache.
        msgs = [{"role": "user", "content": "hi there"}]
        t1, _, d1 = collect(c.chat(msgs, max_tokens=4, temperature=0))
        msgs += [{"role": "assistant", "content": t1}, {"role": "user", "content": "and then?"}]
        _, _, d2 = collect(c.chat(msgs, max_tokens=4, temperature=0))
        check(d2["usage"]["cached_tokens"] > 0, "a chat turn reuses the cached history "
              f"({d2['usage']['cached_tokens']} of {d2['usage']['prompt_tokens']} tokens)")
        check(collect(c.ask("What?", system="Be brief.", max_tokens=3))[2]["usage"]["generated_tokens"] <= 3,
              "ask with a system prompt")

        # Bad arguments: an error naming the field; a second client is served meanwhile.
        for args, code, field in [({"prompt": "x", "temperature": 500}, "ERANGE", "temperature"),
                                  ({"prompt": 5}, "EFORMAT", "prompt"),
                                  ({}, "EINVAL", "prompt"),
                                  ({"prompt": "x", "max_tokens": 10 ** 9}, "ERANGE", "max_tokens"),
                                  ({"prompt": "x", "stop": "no"}, "EFORMAT", "stop")]:
            try:
                collect(c.stream("generate", args))
                check(False, f"{args} is refused")
            except oc.OmniError as e:
                check(e.code == code and field in e.message, f"{args} -> {e.code}: {e.message}")
            check(oc.Client(ep, timeout=10).health()["status"] == "ok", "another client is served")
        try:
            collect(c.chat([{"role": "robot", "content": "x"}], max_tokens=2))
            check(False, "an unknown role is refused")
        except oc.OmniError as e:
            check(e.code == "EINVAL", f"unknown role -> {e.code}: {e.message}")

        # A deadline ends a long generation; the stage serves the next request.
        t0 = time.time()
        try:
            collect(c.generate("Tell me", max_tokens=240, temperature=0, deadline_ms=60))
            check(False, "a 60 ms deadline ends a long generation")
        except oc.OmniError as e:
            check(e.code == "ETIMEDOUT", f"deadline -> {e.code} after {time.time() - t0:.2f} s")
        check(len(collect(c.generate("Hi", max_tokens=2, temperature=0))[1]) == 2,
              "the stage serves the next request")

        # While one client generates, health answers at once.
        res = {}
        th = threading.Thread(target=lambda: res.update(r=collect(
            oc.Client(ep, timeout=60).generate("Long", max_tokens=100, temperature=0))))
        th.start()
        time.sleep(0.05)
        t0 = time.time()
        c2 = oc.Client(ep, timeout=10)
        check(c2.health()["status"] == "ok" and time.time() - t0 < 2, "health during a generation")
        th.join()
        check(len(res["r"][1]) > 0, "the concurrent generation finished")

        # The CLI: streamed text on stdout, exit 0.
        cli = subprocess.run([OMNI, "-e", ep, "generate", "Hello world", "-n", "8", "--temp", "0"],
                             capture_output=True, env=OURS_ENV)
        check(cli.returncode == 0 and cli.stdout.rstrip(b"\n") == lib.rstrip(b"\n"),
              "omni generate prints the same text")
        cli = subprocess.run([OMNI, "-e", ep, "chat", "-n", "3"], input=b"hello\n/reset\nbye\n",
                             capture_output=True, env=OURS_ENV)
        check(cli.returncode == 0 and cli.stdout.count(b"\n") >= 2, "omni chat answers each line")
    finally:
        stop_omnid(p, log)

    # No model configured: the daemon runs, the llm ops say how to configure one.
    p, ep, log = start_omnid(OMNID, tmp, "nomodel", "--quiet", env=OURS_ENV)
    try:
        c = oc.Client(ep, timeout=10)
        check(c.health()["status"] == "ok", "a daemon without a model is healthy")
        try:
            collect(c.generate("x"))
            check(False, "generate without a model is refused")
        except oc.OmniError as e:
            check(e.code == "ENOENT" and "llm.model" in e.message, f"no model -> {e.code}: {e.message}")
    finally:
        stop_omnid(p, log)
    print("test_daemon_llm: all checks passed")


if __name__ == "__main__":
    main()
