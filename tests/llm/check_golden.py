#!/usr/bin/python3
"""Regenerates the tiny LLaMA golden set into a temporary folder and checks that it matches
the committed one: the GGUF byte for byte (mkllama is deterministic), the reference outputs
to 1e-5 (llama_ref is float64)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run(['sh', os.path.join(root, 'tools/mkllama/make_golden.sh'), tmp], check=True)
    a = open(os.path.join(tmp, 'tiny-llama.gguf'), 'rb').read()
    b = open(os.path.join(here, 'golden/tiny-llama.gguf'), 'rb').read()
    if a != b:
        sys.exit('tiny-llama.gguf differs from the committed one (%d vs %d bytes)' % (len(a), len(b)))
    for part in ('tokens', 'logits', 'hidden', 'greedy'):
        x = np.load(os.path.join(tmp, 'tiny-llama.%s.npy' % part))
        y = np.load(os.path.join(here, 'golden/tiny-llama.%s.npy' % part))
        if x.shape != y.shape or x.dtype != y.dtype or np.abs(x.astype(np.float64) - y).max() > 1e-5:
            sys.exit('tiny-llama.%s.npy differs from the committed one' % part)
print('golden set reproduced')
