#!/usr/bin/env bash
# search-quality.sh — what the search finds on the synthetic data with known
# structure, for a grid of settings: the fraction of (layer-0 expert, field)
# selections kept for informative fields and for pure-noise fields (single
# and FM-interaction selections apart), and the test AUC of the searched
# architecture after fine-tuning; the demo's settings by default.  A
# benchmark, not a test: it takes minutes.
#
#   bench/search-quality.sh [--seeds "1 2"] [--rows 100000] [--set k=v]... [VARIANT...]
#   VARIANT is a comma-separated list of k=v overrides, e.g. gate_mode=reference
#   (default variants: gate_mode=sample gate_mode=reference).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
seeds="1 2" rows=100000 common=() variants=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --set) common+=(--set "$2"); shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) variants+=("$1"); shift ;;
    esac
done
[ ${#variants[@]} -gt 0 ] || variants=(gate_mode=sample gate_mode=reference)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the demo's settings (configs/demo.yaml); --set overrides them
small=(--set batch_size=1024 --set arch_lr=0.01 --set "ops=[Identity,MLP-16,MLP-32,MLP-64,MLP-128]" --quiet)
printf 'variant\tseed\tsingle_informative\tsingle_noise\tinter_informative\tinter_noise\tsearched_test_auc\tseconds\n'
for v in "${variants[@]}"; do
    sets=()
    IFS=, read -ra kvs <<< "$v"
    for kv in "${kvs[@]}"; do sets+=(--set "$kv"); done
    for s in $seeds; do
        d=$tmp/$s.data
        [ -e "$d" ] || "$BIN"/amtl-prep --synthetic --rows "$rows" --seed "$s" -o "$d"
        t0=$(date +%s.%N)
        o=(--data "$d" "${small[@]}" "${common[@]}" "${sets[@]}" --set seed="$s")
        "$BIN"/amtl-supernet "${o[@]}" --phase warmup --epochs 2 -o "$tmp/w" > /dev/null
        "$BIN"/amtl-supernet "${o[@]}" --init "$tmp/w" --phase search --epochs 3 -o "$tmp/s" > /dev/null
        "$BIN"/amtl-supernet "${o[@]}" --init "$tmp/s" --phase finetune --epochs 1 -o "$tmp/f" > /dev/null
        "$BIN"/amtl-discretize --export -o "$tmp/a" "$tmp/f"
        "$BIN"/amtl-train "${o[@]}" --arch "$tmp/a" --init "$tmp/f" --set lr=0.003 --epochs 40 -o "$tmp/m" > /dev/null
        t1=$(date +%s.%N)
        "$BIN"/amtl-discretize --show --format json "$tmp/a" > "$tmp/a.json"
        "$BIN"/amtl-eval --model "$tmp/m" --data "$d" --json > "$tmp/e.json"
        python3 - "$tmp/a.json" "$tmp/e.json" "$v" "$s" "$t0" "$t1" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); e = json.load(open(sys.argv[2]))
noise = {"noise_1", "noise_2", "noise_3"}
fields = a["sparse_fields"]
inf = [f for f in fields if f not in noise]
out = [sys.argv[3], sys.argv[4]]
for part in ("single", "interaction"):
    kept = {f: 0 for f in fields}
    n0 = 0
    for x in a["experts"]:
        if x["layer"] != 0:
            continue
        n0 += 1
        for sel in x[part]:
            kept[sel["field"]] += 1
    frac = lambda fs: sum(kept[f] for f in fs) / float(n0 * len(fs))
    out += ["%.3f" % frac(inf), "%.3f" % frac([f for f in fields if f in noise])]
out += ["%.4f" % e["mean_auc"], "%.0f" % (float(sys.argv[6]) - float(sys.argv[5]))]
print("\t".join(out))
PY
    done
done
