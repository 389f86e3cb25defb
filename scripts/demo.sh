#!/bin/sh
# The main job: start omnid (embedded default) on free loopback ports with a model
# pack, wait until it is healthy, ask it for its status, to probe a clip, questions
# about the clip and its embedding, stop it with SIGTERM and check that it exits 0.
#   scripts/demo.sh BUILD_DIR [PACK_DIR]   (default: build; without PACK_DIR the trained
#       ShapesWorld pack in packs/shapesworld answers about samples/shapes.mp4, or, if
#       that pack is missing, a tiny random-weight pack is written into BUILD_DIR)
set -eu

B=${1:-build}
PACK=${2:-}
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

# The trained pack (docs/DEMO.md) and a clip it has never seen, with the answers the
# clip's scene implies; without it, a tiny random-weight pack shows the path.
RANDOM_PACK=
QUESTIONS=
if [ -z "$PACK" ] && [ -f "$ROOT/packs/shapesworld/pack.ini" ]; then
  PACK=$ROOT/packs/shapesworld
  CLIP=$ROOT/samples/shapes.mp4
  QUESTIONS=$ROOT/samples/shapes.questions
fi
if [ -z "$PACK" ]; then
  PACK=$B/demo-pack
  if /usr/bin/python3 "$ROOT/tools/mkpack.py" "$PACK" >/dev/null; then
    RANDOM_PACK=1
  else
    echo "demo: tools/mkpack.py failed (needs /usr/bin/python3 with numpy): no model pack" >&2
    PACK=
  fi
fi

# Port * binds free ports; omnid writes the ones it got to the ready file. A sanitizer
# build's test passes omnid's LD_PRELOAD (ASan first, lavapipe kept mapped) as
# OMNID_LD_PRELOAD, so that the tools this script runs are not preloaded.
env ${OMNID_LD_PRELOAD:+LD_PRELOAD="$OMNID_LD_PRELOAD"} "$OMNID" ${PACK:+--pack "$PACK"} --front 'tcp://127.0.0.1:*' --pub 'tcp://127.0.0.1:*' --sensors 'tcp://127.0.0.1:*' \
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

if [ -n "$PACK" ]; then
  if [ -n "$RANDOM_PACK" ]; then
    echo "== NOTE: $PACK is a RANDOM-WEIGHT pack (tools/mkpack.py): the answer below is"
    echo "   gibberish; it shows the path clip -> frames -> ViT -> Q-Formers -> LLM, not a model"
  fi
  if [ -n "$QUESTIONS" ]; then
    TAB=$(printf '\t')
    while IFS="$TAB" read -r q want; do
      echo "== omni ask --video $(basename "$CLIP") \"$q\"   (the scene says: $want)"
      "$OMNI" -e "$EP" ask --video "$CLIP" -n 32 --temp 0 "$q" </dev/null
    done < "$QUESTIONS"
  else
    echo "== omni ask --video $(basename "$CLIP") \"What happens in this clip?\""
    "$OMNI" -e "$EP" ask --video "$CLIP" -n 24 --seed 1 "What happens in this clip?"
  fi
  echo "== omni embed --video $(basename "$CLIP")"
  "$OMNI" -e "$EP" embed --video "$CLIP"
fi

echo "== SIGTERM"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ "$rc" -eq 0 ] || { echo "demo: omnid exited with $rc" >&2; exit 1; }
echo "== omnid exited 0"
