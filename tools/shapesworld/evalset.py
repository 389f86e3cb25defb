"""Writes a ShapesWorld evaluation set: mp4 clips plus one JSON line per clip.

    python3 evalset.py OUT_DIR --split heldout|foreign --n N [--seed S] [--threads K]

OUT_DIR/clips/NNNN.mp4 and OUT_DIR/items.jsonl ({"file", "params", "scene", "caption",
"questions"}). heldout: the training distribution (world.clip_params) on seeds training never
draws; foreign: the geq renderer (geq.py) on canvases training never uses. Item i depends
only on (seed, split, i), so any prefix of a set is the smaller set.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import world  # noqa: E402
from geq import render_geq  # noqa: E402


def make_item(split, i, seed, path, threads=1):
    """Renders item i of split to path; returns its record (file name relative to OUT_DIR)."""
    rng = world.split_rng(split, i, seed)
    scene = world.sample_scene(rng)
    p = world.clip_params(rng, split)
    if p['renderer'] == 'geq':
        render_geq(scene, p['W'], p['H'], path, p['crf'], threads)
    else:
        clip = world.render_clip(scene, p['W'], p['H'], p['renderer'], p['aa'])
        world.write_video(path, clip, crf=p['crf'])
    return {'file': os.path.join('clips', os.path.basename(path)), 'params': p,
            'scene': scene, 'caption': world.caption(scene),
            'questions': world.questions(scene, rng)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('out_dir')
    ap.add_argument('--split', choices=['heldout', 'foreign'], required=True)
    ap.add_argument('--n', type=int, required=True)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args(argv)
    clips = os.path.join(args.out_dir, 'clips')
    os.makedirs(clips, exist_ok=True)
    with open(os.path.join(args.out_dir, 'items.jsonl'), 'w') as f:
        for i in range(args.n):
            item = make_item(args.split, i, args.seed, os.path.join(clips, f'{i:04d}.mp4'),
                             args.threads)
            f.write(json.dumps(item) + '\n')


if __name__ == '__main__':
    main()
