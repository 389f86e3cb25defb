#!/bin/bash
# device_check.sh: omnid's Vulkan tests (validation layer on) and benchmarks on a lent GPU
# machine that has a driver but none of our build's Debian libraries. Run from the repo root:
#   bench/gpu/device_check.sh OUT_DIR [SECONDS]
# It needs two carried folders, made on the build machine:
#   .gl        the Vulkan loader's .deb files (libvulkan1 and the glvnd libraries)
#   .gpucarry  bin/    stripped test and bench binaries of a Release build (build-gpu)
#              lib/    gzipped libraries the device lacks: cmocka, OpenBLAS (+ libgfortran,
#                      libquadmath) and the Khronos validation layer
#              layer/  the validation layer's manifest
#              models/ llm/ (tests/llm_model/models.sh) and vision/ (tools/mkvision.py)
#              ggml-vocab-llama-spm.gguf, for the stories110M-shaped bench models
# The tests find their goldens at compile-time paths under /work/main: a link there points
# to this tree. Every result is written to OUT_DIR as it is produced, so a run cut short
# still reports what ran; no step starts once SECONDS (default 150) have passed.
set -u
out=${1:?usage: device_check.sh OUT_DIR [SECONDS]}
budget=${2:-150}
start=$SECONDS
root=$PWD
carry=$root/.gpucarry
work=/tmp/omgpu
lib=$work/lib
mkdir -p "$out" "$work/t" "$work/models" "$lib"

left() { echo $((budget - (SECONDS - start))); }

# step LIMIT LOG CMD...: CMD under a timeout of LIMIT or the time left, whichever is less.
step() {
    local lim=$1 log=$2 rc t0=$SECONDS
    shift 2
    [ "$(left)" -lt "$lim" ] && lim=$(left)
    if [ "$lim" -lt 5 ]; then
        echo "== SKIPPED (out of time): $*" | tee -a "$log"
        return
    fi
    echo "== $* (timeout ${lim}s)" >>"$log"
    timeout -k 2 "$lim" "$@" >>"$log" 2>&1
    rc=$?
    echo "== rc $rc in $((SECONDS - t0)) s" >>"$log"
    echo "$(basename "$1") ${*:2}: rc $rc in $((SECONDS - t0)) s"
}

dev=$out/device.txt
{
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    for f in "$carry"/lib/*.gz; do gunzip -c "$f" >"$lib/$(basename "$f" .gz)"; done
    mkdir -p "$work/share/vulkan/explicit_layer.d"
    sed "s|\"library_path\": \"[^\"]*\"|\"library_path\": \"$lib/libVkLayer_khronos_validation.so\"|" \
        "$carry/layer/VkLayer_khronos_validation.json" \
        >"$work/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json"
    [ -e /work/main ] || { mkdir -p /work && ln -s "$root" /work/main; }
    echo "tree: $root; /work/main -> $(readlink -f /work/main)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
} >"$dev" 2>&1

# The bench models (numpy only, as bench/llm/run.sh writes them) while the tests run.
for t in f16 q4_0; do
    python3 tools/mkllama/mkllama.py --vocab "$carry/ggml-vocab-llama-spm.gguf" \
        --n-embd 768 --n-layer 12 --n-head 12 --n-ff 2048 --ctx 1024 --type $t --seed 1 \
        --out "$work/models/s110-$t.gguf" >"$work/mk-$t.log" 2>&1 &
    mk_pids="${mk_pids:-} $!"
done

# The loader finds the layer through XDG_DATA_HOME (one of its default paths), and
# VK_DRIVER_FILES is set only where the driver's manifest is off the default paths:
# test_gpu sets and then unsets VK_LAYER_PATH (test_no_layer) and VK_ICD_FILENAMES
# (test_bad_device), and VK_DRIVER_FILES would override the latter.
export LD_LIBRARY_PATH=$lib XDG_DATA_HOME=$work/share
icd=
for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && [ -z "$icd" ] && icd=$f
done
if [ -z "$icd" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    export VK_DRIVER_FILES=$icd
fi
echo "Vulkan ICD: ${icd:-none found} (VK_DRIVER_FILES ${VK_DRIVER_FILES:-unset}); layer: $XDG_DATA_HOME" >>"$dev"

# Tests: all at once (each its own pipeline cache), validation on, as ctest runs them.
tests="test_gpu test_ops_elementwise test_ops_norm test_ops_rope test_ops_attention test_ops_conv
       test_ops_layout test_ops_matmul test_quant test_llm_model test_bind"
t_pids=
for t in $tests; do
    (
        export OMNID_VALIDATION=1 XDG_CACHE_HOME=$work/cache/$t
        case $t in
            test_llm_model) export OM_TEST_MODELS=$carry/models/llm OM_TEST_GOLDEN=$root/tests/llm_model/golden ;;
            test_bind) export OM_TEST_MODELS=$carry/models/vision OM_TEST_GOLDEN=$root/tests/vision/golden ;;
        esac
        t0=$SECONDS
        timeout -k 2 45 "$carry/bin/$t" >"$work/t/$t.log" 2>&1
        echo "$? $((SECONDS - t0))" >"$work/t/$t.rc"
    ) &
    t_pids="$t_pids $!"
done
# shellcheck disable=SC2086
wait $t_pids
sum=$out/tests_summary.txt
# val.err/val.warn: messages of the validation layer (or of the loader, through it);
# no-layer: opens that ran without the layer (test_gpu's test_no_layer does so on purpose).
printf '%-22s %4s %5s %-44s %7s %8s %8s\n' test rc sec cmocka val.err val.warn no-layer >"$sum"
for t in $tests; do
    log=$work/t/$t.log
    read -r rc sec <"$work/t/$t.rc"
    res=$(grep -E '^\[  (PASSED|FAILED)  \]' "$log" | tr -s ' ' | tr '\n' ' ')
    printf '%-22s %4s %5s %-44s %7s %8s %8s\n' "$t" "$rc" "$sec" "${res:-none}" \
        "$(grep -c 'omnid: validation error' "$log")" "$(grep -c 'omnid: validation warning' "$log")" \
        "$(grep -c 'validation requested but' "$log")" >>"$sum"
    { echo "=============== $t (rc $rc, $sec s)"; cat "$log"; } >>"$out/tests.log"
done
cat "$sum"

# Benchmarks: one at a time, no validation, most wanted first.
step 40 "$out/bench_ops.txt" "$carry/bin/bench_ops" 2048
# shellcheck disable=SC2086
wait $mk_pids
cat "$work"/mk-*.log >>"$dev"
step 25 "$out/bench_llm.txt" "$carry/bin/bench_llm" "$work/models/s110-f16.gguf" --prompt 512 --gen 128 --profile
step 20 "$out/bench_ops_all.txt" "$carry/bin/bench_ops_all" copy
step 25 "$out/bench_vision.txt" "$carry/bin/bench_vision" --batch 8 --iters 3 --md
# The driver's own shader disk cache would make "cold" pipeline creation warm.
step 15 "$out/bench_gpu.txt" env __GL_SHADER_DISK_CACHE=0 "$carry/bin/bench_gpu" 500
step 15 "$out/bench_llm.txt" "$carry/bin/bench_llm" "$work/models/s110-q4_0.gguf" --prompt 512 --gen 128
echo "total $((SECONDS - start)) s"
