#!/usr/bin/python3
"""Checks that the committed tiny LLaMA golden set (tests/llm/golden/) regenerates with
tools/mkllama/make_golden.sh:
  check_golden.py model   mkllama rewrites tiny-llama.gguf byte for byte (numpy only)
  check_golden.py ref     llama_ref reproduces the .npy outputs to 1e-5 (needs python3-torch;
                          exits 77, which ctest reports as skipped, when torch is absent)"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
golden = os.path.join(here, 'golden')
make = os.path.join(os.path.dirname(os.path.dirname(here)), 'tools/mkllama/make_golden.sh')

part = sys.argv[1] if len(sys.argv) > 1 else ''
if part not in ('model', 'ref'):
    sys.exit('usage: check_golden.py model|ref')
with tempfile.TemporaryDirectory() as tmp:
    if part == 'model':
        subprocess.run(['sh', make, tmp, 'model'], check=True)
        a = open(os.path.join(tmp, 'tiny-llama.gguf'), 'rb').read()
        b = open(os.path.join(golden, 'tiny-llama.gguf'), 'rb').read()
        if a != b:
            sys.exit('tiny-llama.gguf differs from the committed one (%d vs %d bytes)' % (len(a), len(b)))
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            print('python3-torch is not installed (scripts/install-deps.sh --dev): skipped')
            sys.exit(77)
        shutil.copy(os.path.join(golden, 'tiny-llama.gguf'), tmp)
        subprocess.run(['sh', make, tmp, 'ref'], check=True)
        for p in ('tokens', 'logits', 'hidden', 'greedy'):
            x = np.load(os.path.join(tmp, 'tiny-llama.%s.npy' % p))
            y = np.load(os.path.join(golden, 'tiny-llama.%s.npy' % p))
            if x.shape != y.shape or x.dtype != y.dtype or np.abs(x.astype(np.float64) - y).max() > 1e-5:
                sys.exit('tiny-llama.%s.npy differs from the committed one' % p)
print('golden %s reproduced' % part)
