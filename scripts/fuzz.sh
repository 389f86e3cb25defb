#!/bin/sh
# Runs every libFuzzer target in BUILD_DIR (executables named fuzz_*) for a bounded time.
#   scripts/fuzz.sh BUILD_DIR            (FUZZ_SECONDS per target, default 60)
# Target fuzz_X is built from tests/<m>/fuzz_X.c and seeded from tests/<m>/corpus/, which
# stays untouched: new inputs go to BUILD_DIR/fuzz/<target>/corpus, crashes to
# BUILD_DIR/fuzz/<target>/ (crash-*, leak-*, timeout-*). Exits 1 if any target failed.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR   (a build configured with -DOMNID_FUZZ=ON, CC=clang)" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}

targets=$(find "$build" -type f -name 'fuzz_*' -perm -u+x | sort)
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz_* executables in $build (configure with -DOMNID_FUZZ=ON)" >&2
  exit 2
fi

failed=""
for t in $targets; do
  name=$(basename "$t")
  source=$(find "$src/tests" -name "$name.c" | head -n 1)
  seeds=""
  [ -n "$source" ] && seeds=$(dirname "$source")/corpus
  work="$build/fuzz/$name"
  mkdir -p "$work/corpus"
  set -- "$work/corpus"
  if [ -n "$seeds" ] && [ -d "$seeds" ]; then
    set -- "$@" "$seeds"
  else
    seeds="none"
  fi
  echo "fuzz.sh: $name for ${seconds}s (seeds: $seeds)"
  if "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$work/" "$@" >"$work/log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done' "$work/log" | tail -n 2
  else
    echo "fuzz.sh: $name FAILED, see $work/log:" >&2
    grep -E 'ERROR|SUMMARY|Test unit written' "$work/log" >&2
    failed="$failed $name"
  fi
done

if [ -n "$failed" ]; then
  echo "fuzz.sh: failed:$failed" >&2
  exit 1
fi
echo "fuzz.sh: all targets ran clean"
