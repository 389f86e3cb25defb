#!/usr/bin/python3
"""Video QA and embeddings through omnid, driven by the real clients, on a tiny random pack
(tools/mkpack.py): `ask` with an uploaded or daemon-opened video or image streams an
answer whose done carries sample/encode/prompt/gen timings; the media's rows change the
answer; a seeded answer repeats; `embed` gives a unit vector equal to the library chain run
by omni-run on the same pixels; a corrupt, truncated, video-less or undecodable file gets a
clear error while the daemon keeps serving; the CLI's ask/embed; no Vulkan validation
errors in the daemon's log.

usage: test_daemon_vqa.py OMNID OMNI OMNI_RUN PACK_DIR CLIENTS_PYTHON_DIR"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

OMNID, OMNI, OMNI_RUN, PACK, CLIENT_DIR = sys.argv[1:6]

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from omtest import check, collect, split_preload, start_omnid, stop_omnid  # noqa: E402

OURS_ENV = split_preload()
sys.path.insert(0, CLIENT_DIR)
import omni_client as oc  # noqa: E402

TOL = 1e-4


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_media(d):
    """The clips of the test, made by ffmpeg: name -> path."""
    m = {k: os.path.join(d, v) for k, v in dict(
        h264="h264.mp4", vp9="vp9.webm", vfr="vfr.mkv", one="one.mp4", png="pic.png", tiny="tiny.mp4",
        audio="audio.m4a", trunc="trunc.mp4", garbage="garbage.mp4", undecodable="a64.nut").items()}
    src = "testsrc=size=96x64:rate=10:duration=2"
    ffmpeg("-f", "lavfi", "-i", src, "-c:v", "libx264", "-pix_fmt", "yuv420p", m["h264"])
    ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=96x64:rate=10", "-t", "2", "-c:v", "libvpx-vp9",
           "-deadline", "realtime", "-b:v", "200k", m["vp9"])
    # Variable frame rate: bursts of 3 frames out of every 10, timestamps kept.
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=3", "-vf",
           "select='lt(mod(n\\,10)\\,3)'", "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", m["vfr"])
    ffmpeg("-f", "lavfi", "-i", "smptebars=size=96x64:rate=10", "-frames:v", "1", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", m["one"])
    # At the ViT's size (28): no scaling anywhere, so omni-run sees the daemon's pixels.
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=28x28", "-frames:v", "1", m["png"])
    ffmpeg("-f", "lavfi", "-i", "rgbtestsrc=size=28x28", "-frames:v", "1", "-c:v", "libx264rgb", m["tiny"])
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", m["audio"])
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x200:rate=5:duration=1", "-c:v", "a64multi", m["undecodable"])
    data = open(m["h264"], "rb").read()
    open(m["trunc"], "wb").write(data[:len(data) * 2 // 5])
    open(m["garbage"], "wb").write(np.random.RandomState(3).bytes(4000))
    return m


def start(tmp, name, *extra):
    return start_omnid(OMNID, tmp, name, *extra, env=OURS_ENV)


stop = stop_omnid


def refused(fn, what):
    try:
        fn()
    except oc.OmniError as e:
        print(f"   {what} -> {e.code}: {e.message}")
        return e
    check(False, f"{what} is refused")


def omni_run_embed(tmp, path):
    """The library chain without the daemon, one component at a time: ViT + Q-Former
    (blip2), video Q-Former, head."""
    q = os.path.join(tmp, "q.npy")
    v = os.path.join(tmp, "v.npy")
    e = os.path.join(tmp, "e.npy")
    subprocess.run([OMNI_RUN, os.path.join(PACK, "blip2.gguf"), "--image", path, "--output-hidden", q],
                   check=True, capture_output=True, env=OURS_ENV)
    subprocess.run([OMNI_RUN, os.path.join(PACK, "video_qformer.gguf"), "--input", q, "--output-hidden", v],
                   check=True, capture_output=True, env=OURS_ENV)
    np.save(v, np.load(v)[None])
    subprocess.run([OMNI_RUN, os.path.join(PACK, "video_head.gguf"), "--input", v, "--output", e],
                   check=True, capture_output=True, env=OURS_ENV)
    return np.load(e)[0]


def main():
    tmp = tempfile.mkdtemp(prefix="omnid-vqa-")
    m = make_media(tmp)
    p, ep, log = start(tmp, "vqa", "--pack", PACK)
    try:
        c = oc.Client(ep, timeout=120)
        answers = {}
        for name in ("h264", "vp9", "vfr", "one", "png"):
            kw = {"image": m[name]} if name == "png" else {"video": m[name]}
            text, ids, done = collect(c.ask("What happens in this clip?", max_tokens=8, temperature=0, **kw))
            answers[name] = ids
            t, u = done["timings"], done["usage"]
            check(len(ids) == 8 and u["media_rows"] == 6 and
                  all(k in t for k in ("sample_ms", "encode_ms", "prompt_ms", "gen_ms")),
                  f"ask about {os.path.basename(m[name])}: 8 tokens, 6 media rows, {u['frames']} frames, "
                  f"sample {t['sample_ms']:.1f} ms, encode {t['encode_ms']:.1f} ms")
        check(answers["one"] and collect(c.ask("x", video=m["one"], max_tokens=1))[2]["usage"]["frames"] == 1,
              "a 1-frame file gives 1 frame")
        check(collect(c.ask("x", video=m["vfr"], max_tokens=1, frames=5))[2]["usage"]["frames"] == 5,
              "args.frames picks how many frames")
        check(answers["h264"] != answers["vp9"] and answers["h264"] != answers["one"],
              "different clips give different answers (the rows reach the LLM)")
        # The placeholder in the prompt: rows there rather than before the text.
        at = collect(c.ask("Describe <video> briefly", video=m["h264"], max_tokens=8, temperature=0))[1]
        check(at != answers["h264"], "a placeholder in the prompt moves the rows")
        a = collect(c.ask("What?", video=m["vp9"], max_tokens=10, temperature=0.9, seed=7))[1]
        b = collect(c.ask("What?", video=m["vp9"], max_tokens=10, temperature=0.9, seed=7))[1]
        check(a == b, "same seed, same answer")
        url = collect(c.ask("What happens in this clip?", video=m["h264"], url=True, max_tokens=8,
                            temperature=0))[1]
        check(url == answers["h264"], "a path omnid opens itself gives the uploaded file's answer")

        # Bad media: a clear error naming the argument and FFmpeg's reason; the daemon serves on.
        for name, words in [("garbage", "cannot open"), ("trunc", "moov"), ("audio", "video"),
                            ("undecodable", "codec")]:
            e = refused(lambda: collect(c.ask("What?", video=m[name], max_tokens=4)), name)
            check(e.message.startswith("args.video:") and words.lower() in e.message.lower(),
                  f"{name}: {e.code} names args.video and says '{words}'")
            check(oc.Client(ep, timeout=10).health()["status"] == "ok", "the daemon keeps serving")
            e = refused(lambda: c.embed(video=m[name]), f"embed {name}")
            check(e.message.startswith("args.video:"), f"embed {name}: {e.code}")
        for args, code, field in [({"prompt": "x", "video": m["h264"], "frames": 0}, "ERANGE", "frames"),
                                  ({"prompt": "x", "video": m["h264"], "frames": 99}, "ERANGE", "frames"),
                                  ({"prompt": "x", "video": 5}, "EFORMAT", "video"),
                                  ({"prompt": "x", "video": m["h264"], "image": m["png"]}, "EINVAL", "video")]:
            e = refused(lambda: collect(c.stream("ask", args)), str(args))
            check(e.code == code and field in e.message, f"{args} -> {e.code} naming {field}")
        e = refused(lambda: collect(c.stream("generate", {"prompt": "x", "video": m["h264"]})), "generate+video")
        check(e.code == "EINVAL" and "only ask" in e.message, "only ask takes media")
        check(len(collect(c.ask("Hi", video=m["h264"], max_tokens=2))[1]) == 2, "the stage serves on")

        # Embeddings: unit length, upload == path, equal to the library chain on the same pixels.
        mod, vec, done = c.embed(video=m["h264"])
        check(mod == "video" and vec.shape == (32,) and abs(np.linalg.norm(vec) - 1) < TOL,
              f"embed: a unit vector of 32 ({done['timings']['encode_ms']:.1f} ms to encode)")
        _, vec_url, _ = c.embed(video=m["h264"], url=True)
        check(np.abs(vec - vec_url).max() < 1e-6, "embed: upload and path give the same vector")
        check(np.abs(vec - c.embed(video=m["vp9"])[1]).max() > 0.05, "embed: another clip, another vector")
        for name, key in (("png", "image"), ("tiny", "video")):
            mod, got, _ = c.embed(**{key: m[name]})
            want = omni_run_embed(tmp, m[name])
            err = np.abs(got - want).max()
            check(mod == key and err < TOL, f"embed {name} equals omni-run's chain (max diff {err:.2e})")
        e = refused(lambda: c.call("embed", {}), "embed without media")
        check(e.code == "EINVAL", "embed needs video or image")

        # The CLI.
        cli = subprocess.run([OMNI, "-e", ep, "ask", "--video", m["h264"], "-n", "8", "--temp", "0",
                              "What happens in this clip?"], capture_output=True, env=OURS_ENV)
        check(cli.returncode == 0 and cli.stdout.strip(), "omni ask --video streams an answer")
        url_cli = subprocess.run([OMNI, "-e", ep, "ask", "--video", "file://" + m["h264"], "-n", "8", "--temp",
                                  "0", "What happens in this clip?"], capture_output=True, env=OURS_ENV)
        check(url_cli.returncode == 0 and url_cli.stdout == cli.stdout, "omni ask --video URL: omnid opens it")
        npy = os.path.join(tmp, "cli.npy")
        cli = subprocess.run([OMNI, "-e", ep, "embed", "--video", m["h264"], "--out", npy],
                             capture_output=True, env=OURS_ENV)
        check(cli.returncode == 0 and b"dim 32" in cli.stdout and np.abs(np.load(npy) - vec).max() < 1e-6,
              "omni embed prints the dimension and writes the .npy")
        cli = subprocess.run([OMNI, "-e", ep, "-j", "embed", "--url", "--image", m["png"]],
                             capture_output=True, env=OURS_ENV)
        j = json.loads(cli.stdout.splitlines()[0])
        check(cli.returncode == 0 and j["dim"] == 32 and len(j["vector"]) == 32, "omni embed --json: the vector")
        cli = subprocess.run([OMNI, "-e", ep, "ask", "--video", m["garbage"], "x"],
                             capture_output=True, env=OURS_ENV)
        check(cli.returncode == 1 and b"args.video" in cli.stderr,
              "omni ask on a bad file exits 1 with the reason")
    finally:
        stop(p, log)

    # media.local = off (a daemon exposed on a network): paths and file: URLs are refused,
    # uploads still work.
    p, ep, log = start(tmp, "remote", "--pack", PACK, "--set", "media.local=off")
    try:
        c = oc.Client(ep, timeout=120)
        for target in (m["h264"], "file://" + m["h264"]):
            e = refused(lambda: collect(c.ask("x", video=target, url=True, max_tokens=2)), f"remote {target}")
            check(e.code == "EINVAL" and "media.local" in e.message, f"media.local=off refuses {target[:7]}...")
        e = refused(lambda: c.embed(image="lavfi:testsrc", url=True), "remote lavfi")
        check(e.code == "EINVAL", "media.local=off refuses lavfi graphs")
        check(c.embed(video=m["h264"])[1].shape == (32,), "media.local=off still takes uploads")
    finally:
        stop(p, log)

    # Without a pack: text-only daemon; embed and ask with media say how to configure one.
    p, ep, log = start(tmp, "nopack")
    try:
        c = oc.Client(ep, timeout=10)
        e = refused(lambda: c.embed(video=m["h264"]), "embed without a pack")
        check(e.code == "ENOENT" and "--pack" in e.message, "embed without a pack names --pack")
    finally:
        stop(p, log)

    # A broken manifest stops omnid at start, naming the file, line and key.
    bad = os.path.join(tmp, "badpack")
    os.makedirs(bad)
    for f in os.listdir(PACK):
        if f.endswith(".gguf"):
            os.symlink(os.path.join(PACK, f), os.path.join(bad, f))
    for line, words in (("frames = 0", "video.frames"), ("head = missing.gguf", "missing.gguf"),
                        ("colour = red", "video.colour")):
        ini = open(os.path.join(PACK, "pack.ini")).read().replace("frames = 8", line)
        open(os.path.join(bad, "pack.ini"), "w").write(ini)
        r = subprocess.run([OMNID, "--pack", bad, "--front", "tcp://127.0.0.1:*", "--pub", "tcp://127.0.0.1:*",
                            "--sensors", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"],
                           capture_output=True, timeout=60, env=OURS_ENV)
        check(r.returncode != 0 and b"pack.ini:" in r.stderr and words.encode() in r.stderr,
              f"pack.ini with '{line}': omnid refuses to start naming {words}")
    print("test_daemon_vqa: all checks passed")


if __name__ == "__main__":
    main()
