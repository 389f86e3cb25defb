#!/bin/sh
# Regenerates the tiny LLaMA golden set: the model (mkllama.py, numpy only) and its
# PyTorch reference outputs (tools/golden/llama_ref.py, needs python3-torch).
#   make_golden.sh [OUTDIR] [all|model|ref]      OUTDIR defaults to tests/llm/golden
# "ref" expects OUTDIR/tiny-llama.gguf to exist.
# Seed 3 is used because its greedy continuation has the widest top-2 logit margin
# (0.37) of seeds 1-8, so a correct GPU forward pass cannot flip a greedy token.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/tests/llm/golden}
STEP=${2:-all}
VOCAB=${OMNID_SHARED_DIR:-$ROOT/../shared}/conformance/tokenizer/ggml-vocab-llama-spm.gguf
mkdir -p "$OUT"
if [ "$STEP" != ref ]; then
    /usr/bin/python3 "$ROOT/tools/mkllama/mkllama.py" --vocab "$VOCAB" --n-vocab 512 \
        --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 --ctx 256 \
        --type q4_0 --embd-type q8_0 --output-type f16 --seed 3 --out "$OUT/tiny-llama.gguf"
fi
if [ "$STEP" != model ]; then
    /usr/bin/python3 "$ROOT/tools/golden/llama_ref.py" "$OUT/tiny-llama.gguf" "$OUT/tiny-llama" \
        --tokens 1,15,300,42,7,511,128,263 --greedy 8
fi
