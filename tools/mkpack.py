#!/usr/bin/python3
"""mkpack: a tiny random-weight model pack for omnid (numpy only, deterministic from --seed).

  mkpack.py OUT_DIR [--seed S] [--vocab VOCAB.gguf]

writes OUT_DIR/pack.ini and the files it names:
  llm.gguf            LLaMA (tools/mkllama), n_embd = the video projection's output width
  blip2.gguf          EVA ViT + BLIP-2 Q-Former (tools/mkvision shapes)
  video_qformer.gguf  Video-LLaMA video Q-Former + llama_proj (its rows are LLM inputs)
  video_head.gguf     ImageBind-style head over the video tokens (joint space)

The weights are random: answers are gibberish. The pack only proves that the widths chain
(frames -> ViT -> Q-Former -> video Q-Former -> projection -> LLM) and exercises the daemon.
The vocabulary comes from a GGUF's tokenizer.* keys (default: the committed tiny-llama).
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert  # noqa: E402
import mkvision  # noqa: E402

ROOT = os.path.dirname(HERE)
DEFAULT_VOCAB = os.path.join(ROOT, 'tests', 'llm', 'golden', 'tiny-llama.gguf')
FRAMES = mkvision.VQF['frames']
LLM_WIDTH = mkvision.LLM_WIDTH          # the video projection's output width
JOINT = 32

PACK_INI = """# A tiny random-weight pack written by tools/mkpack.py (seed {seed}): answers are gibberish.
[pack]
name = tiny-random
random = yes

[llm]
model = llm.gguf

[video]
vision = blip2.gguf
model = video_qformer.gguf
projection = video_qformer.gguf
head = video_head.gguf
frames = {frames}
placeholder = <video>
"""


def head_ckpt(seed, width):
    g, t = mkvision.Gen(seed), {}
    g.norm(t, 'modality_heads.vision.0', width)
    g.linear(t, 'modality_heads.vision.2', JOINT, width, bias=False)
    return t, {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--vocab', default=DEFAULT_VOCAB)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    s = a.seed * 16
    parts = {
        'blip2': (mkvision.blip2_ckpt(seed=s + 2), 'blip2'),
        'video_qformer': (mkvision.video_qformer_ckpt(seed=s + 3), 'video-qformer'),
        'video_head': (head_ckpt(s + 4, mkvision.VQF['hidden']), 'imagebind-head'),
    }
    with tempfile.TemporaryDirectory(prefix='mkpack-') as tmp:
        for name, ((tensors, config), kind) in parts.items():
            hf = os.path.join(tmp, name)
            mkvision.write_ckpt(hf, tensors, config)
            try:
                convert.convert(kind, hf, os.path.join(a.out, name + '.gguf'), 'f32', heads=4,
                                name='tiny-random-' + name)
            except convert.ConvertError as e:
                print('mkpack: %s: %s' % (name, e), file=sys.stderr)
                return 1
    subprocess.run([sys.executable, os.path.join(HERE, 'mkllama', 'mkllama.py'), '--vocab', a.vocab,
                    '--n-embd', str(LLM_WIDTH), '--n-layer', '2', '--n-head', '4', '--n-head-kv', '2',
                    '--n-ff', '192', '--ctx', '512', '--type', 'f32', '--seed', str(s + 5),
                    '--out', os.path.join(a.out, 'llm.gguf')], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(a.out, 'pack.ini'), 'w') as f:
        f.write(PACK_INI.format(seed=a.seed, frames=FRAMES))
    return 0


if __name__ == '__main__':
    sys.exit(main())
