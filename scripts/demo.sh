#!/bin/sh
# The main job for now: start omnid (embedded default) on free loopback ports,
# wait until it is healthy, ask it for its status and to probe a clip, stop it
# with SIGTERM and check that it exits 0.
#   scripts/demo.sh BUILD_DIR        (default: build)
set -eu

B=${1:-build}
OMNID=$B/daemon/omnid
OMNI=$B/clients/omni/omni
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for x in "$OMNID" "$OMNI"; do
  [ -x "$x" ] || { echo "demo: $x not built (make build)" >&2; exit 1; }
done

TMP=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

CLIP=$ROOT/samples/clip.mp4
if [ ! -f "$CLIP" ]; then
  CLIP=$TMP/clip.mp4
  ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc=size=160x120:rate=10:duration=2 \
    -pix_fmt yuv420p "$CLIP"
fi

# Port * binds free ports; omnid writes the ones it got to the ready file.
"$OMNID" --front 'tcp://127.0.0.1:*' --pub 'tcp://127.0.0.1:*' --sensors 'tcp://127.0.0.1:*' \
  --backend 'tcp://127.0.0.1:*' --ready-file "$TMP/ready" &
PID=$!

i=0
while [ ! -f "$TMP/ready" ]; do
  i=$((i + 1))
  [ $i -le 100 ] || { echo "demo: omnid did not start" >&2; exit 1; }
  kill -0 "$PID" 2>/dev/null || { echo "demo: omnid exited" >&2; PID=; exit 1; }
  sleep 0.1
done
EP=$(sed -n 's/^front=//p' "$TMP/ready")
i=0
until "$OMNI" -e "$EP" -t 1000 health >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -le 20 ] || { echo "demo: omnid is not healthy" >&2; exit 1; }
  sleep 0.1
done
echo "== omnid is serving on $EP"

echo "== omni status"
"$OMNI" -e "$EP" status
echo "== omni probe $(basename "$CLIP")"
"$OMNI" -e "$EP" probe "$CLIP"

echo "== SIGTERM"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ "$rc" -eq 0 ] || { echo "demo: omnid exited with $rc" >&2; exit 1; }
echo "== omnid exited 0"
