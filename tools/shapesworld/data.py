"""The training set, as the models see it: clips rendered by world.py with the training mix of
renderers, canvases, anti-aliasing and H.264 (world.clip_params), decoded and squashed to the
ViT's input size by ffmpeg's swscale exactly as omnid does, sampled to 8 frames by omnid's
rule; plus the text-to-image images and the texts the vocabulary is trained on.

Everything is a pure function of (seed, index): chunks are rendered by worker processes and
written once; a rerun reuses what exists.
"""
import json
import multiprocessing as mp
import os

import numpy as np

import world

SIZE = 64
CHUNK = 2000                    # clips per worker task: ffmpeg streams batch clips of one canvas/T/crf


def _crf_bucket(crf):
    # one ffmpeg stream per (canvas, T, crf): 3 levels spanning the training range keep streams long
    return None if crf is None else min((20, 27, 34), key=lambda c: abs(c - crf))


def render_chunk(args, split='train'):
    """Clips [lo, hi) of a split (train or heldout) -> (frames uint8 [n, 8, S, S, 3], records)."""
    lo, hi, seed = args
    clips, recs = [], []
    for i in range(lo, hi):
        rng = world.split_rng(split, i, seed)
        scene = world.sample_scene(rng)
        prm = world.clip_params(rng, split)
        prm['crf'] = _crf_bucket(prm['crf'])
        clips.append(world.render_clip(scene, prm['W'], prm['H'], prm['renderer'], prm['aa']))
        recs.append({'i': i, 'scene': scene, 'params': prm})
    out = [None] * len(clips)
    for crf in sorted({r['params']['crf'] for r in recs}, key=lambda c: -1 if c is None else c):
        idx = [k for k, r in enumerate(recs) if r['params']['crf'] == crf]
        for k, c in zip(idx, world.resize_clips([clips[k] for k in idx], SIZE, crf)):
            out[k] = world.sample_frames(c)
    return np.stack(out), recs


def t2i_chunk(args):
    lo, hi, seed = args
    imgs, recs = [], []
    for i in range(lo, hi):
        rng = world.split_rng('train', 1_000_000 + i, seed)
        prompt, cap, scene = world.t2i_sample(rng)
        renderer = 'raster' if rng.random() < 0.5 else 'pil'
        imgs.append(world.render_clip(scene, SIZE, SIZE, renderer, True)[0])
        recs.append({'prompt': prompt, 'caption': cap, 'scene': scene})
    return np.stack(imgs), recs


def _run(fn, n, seed, threads):
    jobs = [(lo, min(n, lo + CHUNK), seed) for lo in range(0, n, CHUNK)]
    if threads > 1:
        with mp.get_context('fork').Pool(threads) as pool:
            parts = pool.map(fn, jobs)
    else:
        parts = [fn(j) for j in jobs]
    return np.concatenate([p[0] for p in parts]), [r for p in parts for r in p[1]]


def build(d, n_clips, n_t2i, seed, threads):
    """Writes d/frames.npy, d/clips.json, d/t2i.npy, d/t2i.json (skipped when present)."""
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(os.path.join(d, 'clips.json')):
        frames, recs = _run(render_chunk, n_clips, seed, threads)
        np.save(os.path.join(d, 'frames.npy'), frames)
        with open(os.path.join(d, 'clips.json'), 'w') as f:
            json.dump(recs, f)
    if not os.path.exists(os.path.join(d, 't2i.json')):
        imgs, recs = _run(t2i_chunk, n_t2i, seed, threads)
        np.save(os.path.join(d, 't2i.npy'), imgs)
        with open(os.path.join(d, 't2i.json'), 'w') as f:
            json.dump(recs, f)


def load(d):
    with open(os.path.join(d, 'clips.json')) as f:
        clips = json.load(f)
    with open(os.path.join(d, 't2i.json')) as f:
        t2i = json.load(f)
    return np.load(os.path.join(d, 'frames.npy'), mmap_mode='r'), clips, np.load(os.path.join(d, 't2i.npy')), t2i


def frame_texts(rec, k):
    """Caption and dense labels of sampled frame k of a clip record."""
    scene, prm = rec['scene'], rec['params']
    t = world.sample_indices(scene['n_frames'])[k]
    return (world.frame_caption(scene, t, prm['W'], prm['H']),
            world.dense_labels(scene, t, 8, prm['W'], prm['H']))


def corpus(clips, t2i, extra, seed):
    """Every kind of text the models read or write, for the vocabulary."""
    rng = np.random.default_rng(seed)
    out = list(extra)
    for rec in clips[:4000]:
        out.append(world.caption(rec['scene']))
        out.append(frame_texts(rec, int(rng.integers(8)))[0])
        for q in world.questions(rec['scene'], rng):
            out += [q['q'], q['a']]
    out += [r['prompt'] for r in t2i[:2000]] + [r['caption'] for r in t2i[:2000]]
    return out
