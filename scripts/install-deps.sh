#!/bin/sh
# Installs what omnid needs to build, test and run, from Debian 12 packages only.
# Idempotent: packages already present are skipped, so a second run costs a dpkg query.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also what the tests of the ShapesWorld training tools need
#                                    (PyTorch, torchaudio, SentencePiece, PIL): make test
#   scripts/install-deps.sh --dev    the same, for regenerating golden files (tools/golden/) and
#                                    retraining the demo pack (tools/shapesworld/)
set -eu

PKGS="build-essential cmake pkg-config git
  libvulkan-dev glslang-tools spirv-tools mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  libzmq3-dev libmsgpack-dev libcmocka-dev libinih-dev
  libavformat-dev libavcodec-dev libavdevice-dev libavutil-dev libswscale-dev libswresample-dev
  ffmpeg libopenblas-dev
  clang libclang-rt-14-dev
  python3 python3-zmq python3-msgpack python3-numpy"
case "${1:-}" in
  --test|--dev) PKGS="$PKGS python3-torch python3-torchaudio python3-sentencepiece python3-pil" ;;
esac

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
