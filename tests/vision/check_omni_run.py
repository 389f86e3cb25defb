#!/usr/bin/python3
"""omni-run's component path (--input/--output/--output-hidden, --image) on the tiny models,
against the same PyTorch goldens as the C tests; hostile inputs must fail with a message.
usage: check_omni_run.py RUNNER MODELS_DIR GOLDEN_DIR"""
import os
import subprocess
import sys
import tempfile

import numpy as np

runner, models, golden = sys.argv[1:4]
tmp = tempfile.mkdtemp()
failures = []
runner_env = dict(os.environ)
if 'OM_RUNNER_LD_PRELOAD' in runner_env:        # sanitizer builds: see tests/vision/CMakeLists.txt
    runner_env['LD_PRELOAD'] = runner_env.pop('OM_RUNNER_LD_PRELOAD')


def run(*args, ok=True):
    p = subprocess.run([runner] + list(args), capture_output=True, text=True, timeout=120, env=runner_env)
    if ok and p.returncode != 0:
        failures.append('%s: exit %d: %s' % (' '.join(args), p.returncode, p.stderr.strip()))
    if not ok and p.returncode == 0:
        failures.append('%s: succeeded, expected a refusal' % ' '.join(args))
    return p


def compare(what, path, ref, tol=1e-4):
    if not os.path.exists(path):
        failures.append('%s: no output' % what)
        return
    got, want = np.load(path), np.load(os.path.join(golden, ref + '.npy'))
    if got.shape != want.shape:
        failures.append('%s: shape %s, golden %s' % (what, got.shape, want.shape))
        return
    d = np.abs(got - want).max()
    print('%-40s shape %-14s max |diff| %.3g' % (what, got.shape, d))
    if not np.all(np.abs(got - want) <= tol + tol * np.abs(want)):
        failures.append('%s: max |diff| %.3g over tolerance %g' % (what, d, tol))


cases = [
    ('clip_vit.gguf', 'clip_pixels', 'clip_embeds', 'clip_hidden'),
    ('blip2.gguf', 'eva_pixels', 'qformer_proj', 'qformer_out'),
    ('blip2_qformer.gguf', 'eva_hidden', 'qformer_proj', 'qformer_out'),
    ('video_qformer.gguf', 'vqformer_frames', 'vqformer_proj', 'vqformer_out'),
    ('bind_vision.gguf', 'bind_in', 'bind_embed', None),
    ('imagebind_vision.gguf', 'clip_pixels', 'ib_embed', 'ib_hidden'),
]
for model, inp, out, hid in cases:
    o, h = os.path.join(tmp, model + '.out.npy'), os.path.join(tmp, model + '.hid.npy')
    args = [os.path.join(models, model), '--input', os.path.join(golden, inp + '.npy'), '--output', o]
    if hid:
        args += ['--output-hidden', h]
    run(*args)
    compare(model + ' output', o, out)
    if hid:
        compare(model + ' hidden', h, hid)

# --image: one picture decoded by FFmpeg, preprocessed from the model's metadata.
png = os.path.join(tmp, 'test.png')
subprocess.run(['ffmpeg', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=80x60', '-frames:v', '1',
                png], check=True, timeout=60)
o = os.path.join(tmp, 'image.npy')
run(os.path.join(models, 'clip_vit.gguf'), '--image', png, '--output', o)
if os.path.exists(o):
    e = np.load(o)
    print('%-40s shape %s' % ('--image embedding', e.shape))
    if e.shape != (1, 48) or not np.all(np.isfinite(e)):
        failures.append('--image: embedding of shape %s' % (e.shape,))
p = run(os.path.join(models, 'blip2.gguf'), '--image', png)
if p.returncode == 0 and not p.stdout.startswith('output [1, 8, 96]'):
    failures.append('blip2 --image summary: %r' % p.stdout)

# Refusals name what was wrong.
for args, needle in [
    ([os.path.join(models, 'clip_vit.gguf'), '--input', os.path.join(golden, 'eva_pixels.npy')], 'expected'),
    ([os.path.join(models, 'video_qformer.gguf'), '--image', png], '--image needs a ViT'),
    ([os.path.join(models, 'bind_vision.gguf'), '--input', os.path.join(golden, 'bind_in.npy'),
      '--output-hidden', o], 'no hidden state'),
    ([os.path.join(models, 'clip_vit.gguf'), '--input', os.path.join(tmp, 'missing.npy')], 'missing.npy'),
    ([os.path.join(models, 'clip_vit.gguf'), '--image', os.path.join(tmp, 'missing.png')], 'missing.png'),
]:
    p = run(*args, ok=False)
    if needle not in p.stderr:
        failures.append('%s: message %r does not mention %r' % (' '.join(args), p.stderr.strip(), needle))

for f in failures:
    print('FAIL: ' + f)
sys.exit(1 if failures else 0)
