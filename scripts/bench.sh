#!/bin/sh
# Every benchmark, each printing its table with the reference measured in the same run.
# Usage: scripts/bench.sh BUILD_DIR   (make bench). Results go in docs/PERFORMANCE.md.
set -eu
build=$1
run() {
  echo
  echo "== $*"
  "$@"
}
run "$build/bench/gpu/bench_gpu"
run "$build/bench/ops/bench_ops"
[ -x "$build/bench/ops_all/bench_ops_all" ] && run "$build/bench/ops_all/bench_ops_all"
[ -x "$build/bench/daemon/bench_daemon" ] && run "$build/bench/daemon/bench_daemon"
run "$build/bench/media/bench_media"
run sh bench/llm/run.sh "$build" "${OMNID_BENCH_LLM_SHAPES:-s110}"
run sh bench/vqa/run.sh "$build"
