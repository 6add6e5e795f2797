#!/usr/bin/env bash
# bench/gpu-check.sh — the checks that need a GPU, as one script for a device
# machine (no network; the Debian packages and the CUDA toolkit installed):
#   build    make -j16: tools, unit tests and benchmarks, with the CUDA backend
#   cuda     $BUILD/tests/test_cuda and test_cuda_supernet: every primitive
#            of the CUDA backend against the CPU backend; a skipped test is a
#            failure here (it means no usable GPU or no CUDA in the build)
#   cudastep $BUILD/tests/test_supernet_cuda: whole training steps on CUDA
#            against the CPU backend, over the sweep of shapes (same rules)
#   device   $BUILD/bench/device --device cuda, the device benchmark (a
#            missing GPU is a failure here); its samples/s and fraction of
#            the cuBLAS ceiling go into the table
# then a table of the stages.  Each stage has its own time limit; the total,
# with each stage's 10 s to die after its limit, stays under 8 minutes.  Exit
# status 0 when every stage that ran passed.
# Usage: bench/gpu-check.sh  (from anywhere; BUILD, BIN, JOBS override)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=${BIN:-bin}
JOBS=${JOBS:-16}
T_BUILD=240 T_CUDA=60 T_DEVICE=90

log=$(mktemp -d)
rows=()
failed=0

row() {  # stage result seconds note
    rows+=("$(printf '%-8s %-7s %5s  %s' "$1" "$2" "$3" "$4")")
    [ "$2" = ok ] || [ "$2" = absent ] || failed=1
}

finish() {
    echo
    echo "== gpu-check summary"
    printf '%-8s %-7s %5s  %s\n' stage result secs note
    local r
    for r in "${rows[@]}"; do
        echo "$r"
    done
    rm -rf "$log"
}
trap finish EXIT

# run LOGNAME LIMIT CMD...: CMD under a time limit, its output into
# $log/LOGNAME; sets rc (124: over the limit) and secs
run() {
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    rc=0
    timeout --kill-after=10 "$limit" "$@" > "$log/$name" 2>&1 || rc=$?
    secs=$((SECONDS - t0))
}

limit_note() {  # rc limit
    if [ "$1" = 124 ] || [ "$1" = 137 ]; then echo "over its ${2}s limit"; else echo "exit status $1"; fi
}

# ---- the machine ------------------------------------------------------------
gpu="no nvidia-smi"
if command -v nvidia-smi > /dev/null; then
    gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 |
          head -1) || true
fi
nvcc=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)
echo "== gpu: $gpu"
if [ -z "$nvcc" ]; then
    echo "gpu-check: nvcc not found (PATH, /usr/local/cuda/bin): the build would have no CUDA backend" >&2
    row build FAIL 0 "nvcc not found"
    exit 1
fi
echo "== nvcc: $("$nvcc" --version | tail -1)"

# ---- build --------------------------------------------------------------------
benches=()
for b in bench/*.c; do
    [ -f "$b" ] || continue
    n=${b#bench/}
    benches+=("$BUILD/bench/${n%.c}")
done
echo "== build: make -j$JOBS (tools, unit tests, ${#benches[@]} benchmarks)"
run build "$T_BUILD" make -j"$JOBS" BUILD="$BUILD" BIN="$BIN" NVCC="$nvcc" all unit-tests "${benches[@]}"
if [ $rc != 0 ]; then
    tail -40 "$log/build"
    row build FAIL "$secs" "$(limit_note $rc $T_BUILD)"
    exit 1
fi
if ! grep -q -- '-DAMTL_HAVE_CUDA=1' "$log/build" && [ ! -f "$BUILD/kernels/cuda/backend.o" ]; then
    row build FAIL "$secs" "built without the CUDA backend"
    exit 1
fi
nwarn=$(grep -c 'warning:' "$log/build" || true)
row build ok "$secs" "$nwarn warnings"

# ---- the CUDA backend against the CPU backend -----------------------------------
# test_cuda: every primitive; test_supernet_cuda: whole training steps on the
# sweep of shapes (tower depths, expert layers, dense fields, ops, gate modes)
cuda_stage() {  # stage program
    echo "== $1: $BUILD/tests/$2"
    run "$1" "$T_CUDA" "$BUILD/tests/$2"
    cat "$log/$1"
    npass=$(grep -c '^ok ' "$log/$1" || true)
    nskip=$(grep -c '^ok .*# SKIP' "$log/$1" || true)
    nfail=$(grep -c '^not ok ' "$log/$1" || true)
    if [ "$nskip" -gt 0 ]; then
        echo "gpu-check: $2 skipped $nskip tests: $(grep -m1 -o '# SKIP.*' "$log/$1")" >&2
        row "$1" FAIL "$secs" "$nskip skipped: no usable GPU"
    elif [ $rc != 0 ] || [ "$nfail" -gt 0 ] || [ "$npass" = 0 ]; then
        row "$1" FAIL "$secs" "$nfail of $((npass + nfail)) failed, $(limit_note $rc $T_CUDA)"
    else
        row "$1" ok "$secs" "$npass passed"
    fi
}
cuda_stage cuda test_cuda
cuda_stage cudaops test_cuda_supernet
cuda_stage cudastep test_supernet_cuda

# ---- the device benchmark ---------------------------------------------------------
if [ ! -f bench/device.c ]; then
    echo "gpu-check: bench/device.c does not exist yet: no device benchmark" >&2
    row device absent 0 "bench/device.c not written yet"
elif [ ! -x "$BUILD/bench/device" ]; then
    row device FAIL 0 "$BUILD/bench/device was not built"
else
    echo "== device: $BUILD/bench/device --device cuda"
    run device "$T_DEVICE" "$BUILD/bench/device" --device cuda
    cat "$log/device"
    sps=$(awk '$1 == "samples/s" { print $2; exit }' "$log/device")
    frac=$(awk '/^ *fraction of ceiling/ { print $NF; exit }' "$log/device")
    if [ $rc != 0 ]; then
        row device FAIL "$secs" "$(limit_note $rc $T_DEVICE)"
    elif [ -z "$sps" ] || [ -z "$frac" ]; then
        row device FAIL "$secs" "no samples/s or fraction of ceiling in its table"
    else
        row device ok "$secs" "$sps samples/s, $frac of the cuBLAS ceiling"
    fi
fi

exit $failed
