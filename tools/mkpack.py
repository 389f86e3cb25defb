#!/usr/bin/python3
"""mkpack: a random-weight model pack for omnid (numpy only, deterministic from --seed).

  mkpack.py OUT_DIR [--seed S] [--vocab VOCAB.gguf] [--shape tiny|base]

writes OUT_DIR/pack.ini and the files it names:
  llm.gguf            LLaMA (tools/mkllama), n_embd = the video projection's output width
  blip2.gguf          EVA ViT + BLIP-2 Q-Former (tools/mkvision shapes)
  video_qformer.gguf  Video-LLaMA video Q-Former + llama_proj (its rows are LLM inputs)
  video_head.gguf     ImageBind-style head over the video tokens (joint space)

The weights are random: answers are gibberish. The pack only proves that the widths chain
(frames -> ViT -> Q-Former -> video Q-Former -> projection -> LLM) and exercises the daemon.
The vocabulary comes from a GGUF's tokenizer.* keys (default: the committed tiny-llama).

--shape tiny (default): the tiny mkvision shapes in f32, what the tests use.
--shape base: the shapes of a real pack, for benchmarks (bench/vqa): EVA/CLIP ViT-B/16 at 224,
BLIP-2 Q-Former (768 wide, 12 layers, cross-attention every 2, 32 queries), Video-LLaMA's video
Q-Former (2 layers, 32 queries, 32 frame positions), a 1024-wide joint space and an LLM of
stories110M shape, all in f16. Pass a full vocabulary (--vocab) for the LLM's 32000 rows.
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

# Per shape: the components' configs, the LLM's mkllama dimensions (n_embd = the video
# projection's output width), the weights' type and the video Q-Former's heads.
SHAPES = {
    'tiny': dict(eva=mkvision.EVA, qf=mkvision.QF, n_query=mkvision.N_QUERY, vqf=mkvision.VQF, joint=32,
                 llm=dict(n_embd=mkvision.LLM_WIDTH, n_layer=2, n_head=4, n_head_kv=2, n_ff=192, ctx=512),
                 type='f32', vqf_heads=4),
    'base': dict(eva=dict(mkvision.EVA, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                          num_attention_heads=12, image_size=224, patch_size=16),
                 qf=dict(mkvision.QF, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, encoder_hidden_size=768),
                 n_query=32, vqf=dict(hidden=768, ff=3072, layers=2, heads=12, n_query=32, frames=32), joint=1024,
                 llm=dict(n_embd=768, n_layer=12, n_head=12, n_head_kv=12, n_ff=2048, ctx=1024),
                 type='f16', vqf_heads=12),
}

PACK_INI = """# A {shape} random-weight pack written by tools/mkpack.py (seed {seed}): answers are gibberish.
[pack]
name = {shape}-random
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


def head_ckpt(seed, width, joint):
    g, t = mkvision.Gen(seed), {}
    g.norm(t, 'modality_heads.vision.0', width)
    g.linear(t, 'modality_heads.vision.2', joint, width, bias=False)
    return t, {}


def blip2_ckpt(seed, sh):
    """mkvision's BLIP-2 at the shape's sizes. Its query count and language projection are
    module constants there (tiny), so for other shapes they are drawn again here."""
    t, config = mkvision.blip2_ckpt(seed=seed, vc=sh['eva'], qc=sh['qf'])
    if sh is SHAPES['tiny']:
        return t, config
    g, D, llm = mkvision.Gen(seed + 1000), sh['qf']['hidden_size'], sh['llm']['n_embd']
    t['query_tokens'] = g.n((1, sh['n_query'], D), 1.0)
    g.linear(t, 'language_projection', llm, D)
    config.update(num_query_tokens=sh['n_query'], text_config={'hidden_size': llm})
    return t, config


def video_qformer_ckpt(seed, sh):
    """mkvision's video Q-Former; for other shapes than tiny its llama_proj is drawn again
    at the LLM's width (mkvision's is the tiny LLM's)."""
    t, config = mkvision.video_qformer_ckpt(seed=seed, c=sh['vqf'])
    if sh is not SHAPES['tiny']:
        mkvision.Gen(seed + 1000).linear(t, 'llama_proj', sh['llm']['n_embd'], sh['vqf']['hidden'])
    return t, config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('out')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--vocab', default=DEFAULT_VOCAB)
    ap.add_argument('--shape', default='tiny', choices=sorted(SHAPES))
    a = ap.parse_args()
    sh = SHAPES[a.shape]
    os.makedirs(a.out, exist_ok=True)
    s = a.seed * 16
    # One component at a time: a base checkpoint is ~0.8 GB of float32 before conversion.
    parts = {
        'blip2': (lambda: blip2_ckpt(s + 2, sh), 'blip2'),
        'video_qformer': (lambda: video_qformer_ckpt(s + 3, sh), 'video-qformer'),
        'video_head': (lambda: head_ckpt(s + 4, sh['vqf']['hidden'], sh['joint']), 'imagebind-head'),
    }
    with tempfile.TemporaryDirectory(prefix='mkpack-') as tmp:
        for name, (gen, kind) in parts.items():
            hf = os.path.join(tmp, name)
            mkvision.write_ckpt(hf, *gen())
            try:
                convert.convert(kind, hf, os.path.join(a.out, name + '.gguf'), sh['type'], heads=sh['vqf_heads'],
                                name='%s-random-%s' % (a.shape, name))
            except convert.ConvertError as e:
                print('mkpack: %s: %s' % (name, e), file=sys.stderr)
                return 1
    llm = sh['llm']
    dims = [x for k in ('n_embd', 'n_layer', 'n_head', 'n_head_kv', 'n_ff', 'ctx')
            for x in ('--' + k.replace('_', '-'), str(llm[k]))]
    subprocess.run([sys.executable, os.path.join(HERE, 'mkllama', 'mkllama.py'), '--vocab', a.vocab, *dims,
                    '--type', sh['type'], '--seed', str(s + 5), '--out', os.path.join(a.out, 'llm.gguf')],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(a.out, 'pack.ini'), 'w') as f:
        f.write(PACK_INI.format(shape=a.shape, seed=a.seed, frames=FRAMES))
    return 0


if __name__ == '__main__':
    sys.exit(main())
