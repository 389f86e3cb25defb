#!/usr/bin/python3
"""The committed ShapesWorld pack through omnid against PyTorch on the pack's own checkpoints.

  test_pack.py OMNID OMNI_RUN PACK_DIR SOURCE_DIR

- the prompt token ids omnid computes (omni-run --tokenize on llm.gguf) equal the ids the
  training code fed the LLM (tools/shapesworld/vocab.py), for every question template;
- on held-out clips written at test time (mp4, the training mix of renderers and H.264), omnid's
  greedy answers through the daemon equal PyTorch's answers from the pack's hf/ checkpoints, and
  its video embeddings are within 1e-3 of PyTorch's;
- on samples/shapes.mp4 (the README demo's clip) omnid's answers are printed next to the answers
  the clip's scene implies, and the count of right ones must match PyTorch's.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

OMNID, OMNI_RUN, PACK, SRC = sys.argv[1:5]
sys.path.insert(0, os.path.join(SRC, 'tools', 'shapesworld'))
sys.path.insert(0, os.path.join(SRC, 'tests'))
from omtest import split_preload  # noqa: E402

OURS_ENV = split_preload()
import eval as sw_eval  # noqa: E402
import evalset  # noqa: E402
import export  # noqa: E402
import vocab  # noqa: E402
import world  # noqa: E402

torch.set_num_threads(2)
N_CLIPS = 3


def check_tokens(sp):
    rng = np.random.default_rng(5)
    texts = set()
    for i in range(40):
        for q in world.questions(world.sample_scene(rng), rng):
            texts.add(q['q'])
    texts |= {'Draw a red circle.', 'Describe the video.'}
    for t in sorted(texts):
        want = vocab.prompt_ids(sp, t)
        out = subprocess.run([OMNI_RUN, os.path.join(PACK, 'llm.gguf'), '-p', '[INST] %s [/INST]' % t,
                              '--tokenize'], capture_output=True, text=True, check=True, env=OURS_ENV).stdout
        got = [int(x) for x in out.replace(',', ' ').split()]
        assert got == want, '%r: omnid %s, training %s' % (t, got, want)
    print('tokens: %d prompts tokenized identically' % len(texts))


def main():
    p, sp = export.load_pack(PACK)
    check_tokens(sp)
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, 'clips'))
        items = [evalset.make_item('heldout', 900_000 + i, 0, os.path.join(d, 'clips', '%04d.mp4' % i))
                 for i in range(N_CLIPS)]
        t = sw_eval.torch_eval(p.t, sp, d, items)
        o = sw_eval.omnid_eval(OMNID, PACK, d, items, t['answers'], t['video_emb'], OURS_ENV)
    print('held-out: %d questions, omnid = PyTorch on %.3f, embeddings max |diff| %.2g' %
          (o['n_questions'], o['agreement_with_pytorch'], o['embedding_max_abs_diff']))
    assert o['agreement_with_pytorch'] == 1.0
    assert o['embedding_max_abs_diff'] < 1e-3
    assert o['omnid_exit'] == 0, 'omnid exited with %d after SIGTERM' % o['omnid_exit']

    sample = os.path.join(SRC, 'samples', 'shapes.mp4')
    with open(os.path.join(SRC, 'samples', 'shapes.questions')) as f:
        qa = [line.rstrip('\n').split('\t') for line in f if line.strip()]
    item = {'file': sample, 'caption': qa[0][1], 'questions': [{'type': 'x', 'q': q, 'a': a} for q, a in qa]}
    t = sw_eval.torch_eval(p.t, sp, '/', [item])
    o = sw_eval.omnid_eval(OMNID, PACK, '/', [item], t['answers'], t['video_emb'], OURS_ENV)
    for (q, a), got in zip(qa, t['answers']):
        print('  %-40s %-30s (scene: %s)' % (q, got, a))
    assert o['agreement_with_pytorch'] == 1.0
    assert o['omnid_exit'] == 0, 'omnid exited with %d after SIGTERM' % o['omnid_exit']
    return 0


if __name__ == '__main__':
    sys.exit(main())
