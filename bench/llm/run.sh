#!/bin/sh
# LLM benchmark table: random-weight models of stories110M and TinyLlama-1.1B shape
# (tools/mkllama/mkllama.py, cached under BUILD/bench-models) in F16, Q8_0 and Q4_0.
#   bench/llm/run.sh BUILD_DIR [SHAPES] [TYPES]
#   SHAPES: "s110 tinyllama" (default s110), TYPES: "f16 q8_0 q4_0" (default)
set -eu
build=$1
shapes=${2:-s110}
types=${3:-"f16 q8_0 q4_0"}
root=$(cd "$(dirname "$0")/../.." && pwd)
vocab="$root/../shared/conformance/tokenizer/ggml-vocab-llama-spm.gguf"
models="$build/bench-models"
mkdir -p "$models"
echo "| model | weights | size | prefill 512 (tok/s) | decode 128 (tok/s) | weights streamed | memcpy | roofline |"
echo "|---|---|---|---|---|---|---|---|"
for shape in $shapes; do
  case $shape in
    s110)      dims="--n-embd 768 --n-layer 12 --n-head 12 --n-ff 2048 --ctx 1024" ;;
    tinyllama) dims="--n-embd 2048 --n-layer 22 --n-head 32 --n-head-kv 4 --n-ff 5632 --ctx 2048" ;;
    *) echo "unknown shape $shape" >&2; exit 2 ;;
  esac
  for t in $types; do
    f="$models/$shape-$t.gguf"
    if [ ! -f "$f" ]; then
      # shellcheck disable=SC2086
      /usr/bin/python3 "$root/tools/mkllama/mkllama.py" --vocab "$vocab" $dims --type "$t" \
          --seed 1 --out "$f.tmp" >/dev/null && mv "$f.tmp" "$f"
    fi
    "$build/bench/llm/bench_llm" "$f" --md | sed "s|$models/||"
  done
done
