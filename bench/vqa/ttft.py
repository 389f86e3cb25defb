#!/usr/bin/python3
"""Time to first token of a video question through omnid, per stage, against a full
single-threaded ffmpeg decode of the same clip measured in the same run.

  ttft.py OMNID PACK_DIR CLIP CLIENTS_PYTHON_DIR [--runs 3] [--frames 8]

Starts omnid on free loopback ports with the pack, asks once to warm up (the first
request may create Vulkan pipelines), then asks --runs questions with max_tokens=1, the
clip uploaded as bytes like `omni ask --video` does. TTFT is measured by the client, from
sending the request to the first token reply; sample_ms, encode_ms, prompt_ms come from
the done reply. Each question is followed by one reference decode, so that both see the
same machine load; ratios are the median of those pairs. Prints a Markdown table."""
import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

QUESTIONS = ["What happens in this clip?", "Which colours do you see?", "Is anything moving?"]


def start_omnid(omnid, pack, tmp):
    ready, log_path = os.path.join(tmp, "omnid.ready"), os.path.join(tmp, "omnid.log")
    log = open(log_path, "w")
    p = subprocess.Popen([omnid, "--quiet", "--ready-file", ready, "--pack", pack,
                          "--front", "tcp://127.0.0.1:*", "--pub", "tcp://127.0.0.1:*",
                          "--sensors", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"],
                         stdout=log, stderr=log)
    # Opening a base pack uploads ~0.5 GB of weights: give it minutes, not seconds.
    deadline = time.monotonic() + 300
    while not (os.path.exists(ready) and "front=" in open(ready).read()):
        if p.poll() is not None:
            raise SystemExit("ttft: omnid exited: " + open(log_path).read())
        if time.monotonic() > deadline:
            p.kill()
            raise SystemExit("ttft: omnid not ready after 300 s: " + open(log_path).read())
        time.sleep(0.05)
    ep = [w.split("=", 1)[1] for w in open(ready).read().split() if w.startswith("front=")][0]
    return p, ep, log_path


def ask_once(client, question, video, frames):
    """(client TTFT ms, done body) of one ask with max_tokens=1."""
    # A base pack on a software GPU can exceed the daemon's default 30 s deadline.
    gen = client.ask(question, video=video, frames=frames, max_tokens=1, temperature=0,
                     deadline_ms=600000, timeout=600)
    t0 = time.perf_counter()
    first = None
    try:
        while True:
            next(gen)
            if first is None:
                first = time.perf_counter()
    except StopIteration as e:
        done = e.value
    if first is None or done is None:
        raise SystemExit("ttft: ask ended without a token or without done")
    return (first - t0) * 1e3, done


def full_decode(clip):
    """(wall ms, CPU ms) of the reference: the whole clip decoded by the CLI on one thread.
    RUSAGE_CHILDREN counts waited-for children only: omnid is still running."""
    def cpu():
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-threads", "1", "-i", clip,
                    "-f", "null", "-"], check=True)
    return (time.perf_counter() - t0) * 1e3, (cpu() - c0) * 1e3


def spread(vals):
    return "%.0f-%.0f" % (min(vals), max(vals))


def report(runs, n_bytes, warm_ms, load):
    def col(vals):
        return statistics.median(vals), spread(vals)

    def stage(key):
        return col([d["timings"][key] for _, d, _ in runs])

    def ratio(vals):
        return "%.3f" % statistics.median(vals), "%.3f-%.3f" % (min(vals), max(vals))

    u = runs[0][1]["usage"]
    ttft = [t for t, _, _ in runs]
    dec = [w for _, _, (w, _) in runs]
    rows = [("sample %d frames (seek + decode + scale)" % u["frames"], *stage("sample_ms")),
            ("encode (ViT, Q-Former, video Q-Former, projection)", *stage("encode_ms")),
            ("prompt (prefill %d positions: %d video rows, %d reused from the KV cache)"
             % (u["prompt_tokens"], u["media_rows"], u["cached_tokens"]), *stage("prompt_ms")),
            ("generate (1 token)", *stage("gen_ms")),
            ("**time to first token** (client, upload included)", *col(ttft)),
            ("reference: `ffmpeg -threads 1 -i clip -f null -` (full decode)", *col(dec)),
            ("reference, CPU time", *col([c for _, _, (_, c) in runs]))]
    print("| stage | ms (median of %d) | min-max |" % len(runs))
    print("|---|---|---|")
    for name, ms, mm in rows:
        print("| %s | %.1f | %s |" % (name, ms, mm))
    print("| TTFT / full decode | %s | %s |" % ratio([t / w for t, w in zip(ttft, dec)]))
    sample = [d["timings"]["sample_ms"] for _, d, _ in runs]
    print("| sample / full decode | %s | %s |" % ratio([s / w for s, w in zip(sample, dec)]))
    print()
    print("clip %.1f MB uploaded; warm-up request (pipeline creation) %.0f ms; load average %.2f before, %.2f after"
          % (n_bytes / 1e6, warm_ms, load[0], load[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("omnid")
    ap.add_argument("pack")
    ap.add_argument("clip")
    ap.add_argument("client_dir")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=8)
    a = ap.parse_args()
    sys.path.insert(0, a.client_dir)
    import omni_client as oc

    video = open(a.clip, "rb").read()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ttft-") as tmp:
        p, ep, log = start_omnid(a.omnid, a.pack, tmp)
        runs = []
        try:
            with oc.Client(ep, timeout=600) as c:
                warm_ms, _ = ask_once(c, "Warm up.", video, a.frames)
                # Each question is paired with a reference decode right after it (omnid
                # idle): the machine is shared, and its load drifts within minutes.
                for i in range(a.runs):
                    ttft, done = ask_once(c, QUESTIONS[i % len(QUESTIONS)], video, a.frames)
                    runs.append((ttft, done, full_decode(a.clip)))
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=60)
        if rc != 0:
            raise SystemExit("ttft: omnid exited %d: %s" % (rc, open(log).read()))
    report(runs, len(video), warm_ms, (load0, os.getloadavg()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
