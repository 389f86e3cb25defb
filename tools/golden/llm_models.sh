#!/bin/sh
# Regenerates tests/llm_model/golden/: for each tiny model of tests/llm_model/models.sh,
# PyTorch (tools/golden/llama_ref.py) computes the logits of every prompt position, the
# final hidden states and a greedy continuation. Needs python3-torch (install-deps.sh --dev).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$root/tests/llm_model/models.sh" "$tmp"
prompt=1,379,295,417,281,272,430,50,99,200,311,12
for m in "$tmp"/*.gguf; do
  name=$(basename "$m" .gguf)
  /usr/bin/python3 "$root/tools/golden/llama_ref.py" "$m" "$root/tests/llm_model/golden/$name" \
      --tokens $prompt --greedy 8
  [ "$name" = mha_f32 ] || rm -f "$root/tests/llm_model/golden/$name.hidden.npy"
done
