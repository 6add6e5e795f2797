#!/usr/bin/env bash
# bench/distributed.sh — data-parallel training's throughput on this
# machine (1 process, then 1, 2 ranks under mpirun) and the cost model for
# many machines (amtl-supernet(1), DISTRIBUTED TRAINING).  Never run by CI.
#
# Usage: bench/distributed.sh [ROWS] [EXTRA amtl-supernet OPTIONS...]
#   ROWS   synthetic rows (default 100000; 80% are train rows)
#
# samples/s: train rows over the epoch's seconds, the best of two warm-up
# epochs (each rank's threads: the cores shared out among the ranks).  The
# cost model takes the all-reduced buffer S (4 bytes per weight, arch param
# and running statistic) and the one-process step time t1 = B / samples/s:
# N ranks of machines like this one take t1/N of compute and a ring
# all-reduce moves 2(N-1)/N·S bytes per rank per step, so communication
# dominates beyond N = B·BW / (2·S·samples/s) at link bandwidth BW.
set -eu
cd "$(dirname "$0")/.."
ROWS=${1:-100000}
shift || true
BIN=${BIN:-bin}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
command -v mpirun > /dev/null || { echo "bench/distributed.sh: mpirun not installed (make deps)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BIN"/amtl-prep --synthetic --rows "$ROWS" --seed 1 -o "$tmp/d.amtl"
train=$("$BIN"/amtl-prep --info "$tmp/d.amtl" | awk '$1 == "train" {print $2; exit}')
B=$("$BIN"/amtl-supernet --dump-config "$@" | awk -F': *' '$1 == "batch_size" {print $2}')

# the best epoch's samples/s of a run: $1 label, the launcher after it
run() {
    local label=$1
    shift
    "$@" "$BIN"/amtl-supernet --data "$tmp/d.amtl" --phase warmup --epochs 2 --quiet \
        $EXTRA -o "$tmp/$label.ckpt" > "$tmp/$label.m"
    python3 - "$tmp/$label.m" "$train" <<'PY'
import json, sys
secs = min(json.loads(l)["seconds"] for l in open(sys.argv[1]))
print("%.1f" % (int(sys.argv[2]) / secs))
PY
}
EXTRA="$*"
one=$(run one env)
# Open MPI binds 1 or 2 ranks to a core each: one rank unbound keeps both
r1=$(run r1 mpirun --bind-to none -np 1)
r2=$(run r2 mpirun -np 2)
# the all-reduced floats: weights, arch params, running statistics
S=$(python3 tests/bats/amtlfile.py tensors "$tmp/one.ckpt" | python3 -c '
import sys, re
n = 0
for line in sys.stdin:
    name, dtype, shape = line.split()[0], line.split()[1], re.findall(r"\d+", line.split("[")[1].split("]")[0])
    if name in ("optim.weights.m", "optim.arch.m") or name.endswith("running_mean") or name.endswith("running_var"):
        p = 1
        for s in shape:
            p *= int(s)
        n += p
print(n * 4)')
printf 'data-parallel training, %s train rows, batch %s, %s cores\n' "$train" "$B" "$(nproc)"
printf '  %-40s %10s\n' "samples/s, one process" "$one"
printf '  %-40s %10s\n' "samples/s, mpirun --bind-to none -np 1" "$r1"
printf '  %-40s %10s\n' "samples/s, mpirun -np 2" "$r2"
python3 - "$one" "$r2" "$B" "$S" <<'PY'
import sys
one, r2, B, S = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t1 = B / one
print("  %-40s %10.2f" % ("2 ranks over one process", r2 / one))
print("  %-40s %10.1f" % ("all-reduced MB per step (S)", S / 1e6))
print("  %-40s %10.1f" % ("step ms, one process (t1)", 1e3 * t1))
for gbit in (25, 100):
    bw = gbit * 1e9 / 8
    n = B * bw / (2 * S * one)
    print("  %-40s %10.1f" % ("ranks where comm = compute, %d Gbit/s" % gbit, n))
    for N in (2, 8, 32):
        comp = t1 / N
        comm = 2 * (N - 1) / N * S / bw
        print("    N=%-3d compute %7.2f ms, all-reduce %7.2f ms" % (N, 1e3 * comp, 1e3 * comm))
PY
