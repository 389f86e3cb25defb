#!/bin/sh
# Video QA time to first token, per stage, with a full single-threaded decode of the same
# clip as the reference measured in the same run (bench/vqa/ttft.py). The base-shape
# random pack (tools/mkpack.py --shape base) and the 60 s 1280x720 25 fps h264 clip are cached
# under BUILD_DIR/bench-models.
#   bench/vqa/run.sh BUILD_DIR
set -eu
build=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
vocab="$root/../shared/conformance/tokenizer/ggml-vocab-llama-spm.gguf"
models="$build/bench-models"
pack="$models/vqa-base"
clip="$models/vqa-720p-60s.mp4"
mkdir -p "$models"
if [ ! -f "$pack/pack.ini" ]; then
  rm -rf "$pack.tmp"
  /usr/bin/python3 "$root/tools/mkpack.py" "$pack.tmp" --shape base --vocab "$vocab"
  rm -rf "$pack"
  mv "$pack.tmp" "$pack"
fi
if [ ! -f "$clip" ]; then
  # The same content and encoder settings as bench/media's file: testsrc2 changes all
  # over the frame, x264 keeps its default 250-frame (10 s) keyframe interval, so each
  # sampled frame costs the decode from the keyframe before it.
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=25:duration=60 \
      -c:v libx264 -preset veryfast -pix_fmt yuv420p "$clip.tmp.mp4"
  mv "$clip.tmp.mp4" "$clip"
fi
/usr/bin/python3 "$root/bench/vqa/ttft.py" "$build/daemon/omnid" "$pack" "$clip" "$root/clients/python" \
    --runs 3 --frames 8
