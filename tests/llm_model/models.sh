#!/bin/sh
# The tiny LLaMA variants the model tests use, written by tools/mkllama/mkllama.py (numpy
# only, deterministic from the seed). Usage: models.sh OUT_DIR
# Each line: name, then mkllama options.
set -eu
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
vocab="$root/../shared/conformance/tokenizer/ggml-vocab-llama-spm.gguf"
mkdir -p "$out"
common="--vocab $vocab --n-vocab 512 --n-embd 64 --n-layer 2 --n-ff 128 --ctx 256"
while read -r name opts; do
  [ -n "$name" ] || continue
  # shellcheck disable=SC2086
  /usr/bin/python3 "$root/tools/mkllama/mkllama.py" $common $opts --out "$out/$name.gguf" >/dev/null
done <<'LIST'
mha_f32  --n-head 4 --n-head-kv 4 --type f32 --seed 23
gqa_f16  --n-head 4 --n-head-kv 2 --type f16 --seed 12
gqa_q8_0 --n-head 4 --n-head-kv 2 --type q8_0 --output-type f16 --seed 13
gqa_q4_0 --n-head 8 --n-head-kv 2 --type q4_0 --tied --seed 14
gqa_f16_rf --n-head 4 --n-head-kv 2 --type f16 --rope-freqs --seed 15
LIST
