#!/usr/bin/env bash
# bench/scale.sh — the tools at growing data sizes: Ali-CCP-shaped synthetic
# rows (amtl-prep --synthetic-kind aliccp: 23 sparse fields, 8 dense, two
# tasks), at 1, 5 and 20 million rows by default.  Per size: amtl-prep of
# an Ali-CCP-shaped CSV of as many rows (bench/aliccp-csv.awk; its making
# not timed), amtl-prep --synthetic, amtl-prep --info, a supernet warm-up (a full epoch at the first size, the
# first STEPS batches above it), an MMoE trained for STEPS batches, and
# amtl-eval of it on the test split; wall seconds and peak resident memory
# (GNU time's maximum RSS) of each, and the dataset file's bytes per row.
# Prints a Markdown table (the README's).  Never run by CI: 20 million rows
# take a 2.7 GB file and some minutes.  `make bench-scale` runs it.
#
# Usage: bench/scale.sh [ROWS...]     environment: STEPS (300), DIR (a temp dir)
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
STEPS=${STEPS:-300}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 5000000 20000000)
command -v /usr/bin/time > /dev/null || { echo "bench/scale.sh: needs GNU time (/usr/bin/time)" >&2; exit 1; }
tmp=${DIR:-$(mktemp -d)}
[ -n "${DIR:-}" ] || trap 'rm -rf "$tmp"' EXIT
# a small model: the point is the data's cost, not the model's
# (wide_init zero: the wide part's logistic-regression fit is not what is
# measured; the baseline's architecture file carries the key to amtl-train;
# a wide part started at zero trains: wide_train joint)
KEYS="--set ops=[Identity,MLP-64,MLP-128] --set batch_size=2048 --set wide_init=zero --set wide_train=joint"
MODEL="$KEYS --quiet"

# runs "$@", appends "seconds maxrss_kb" of it to $tmp/t
timed() {
    /usr/bin/time -f "%e %M" -o "$tmp/t1" "$@"
    cat "$tmp/t1" >> "$tmp/t"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

echo "| rows | CSV | prep of the CSV s | MB | file | bytes/row | --synthetic s | MB | --info s | --info MB | supernet | s | MB | MMoE $STEPS steps s | MB | eval test rows/s | MB |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
first=1
for n in "${SIZES[@]}"; do
    d="$tmp/a$n.amtl"
    : > "$tmp/t"
    awk -v rows="$n" -v seed=1 -f bench/aliccp-csv.awk > "$tmp/a.csv"
    csv_bytes=$(stat -c %s "$tmp/a.csv")
    TMPDIR="$tmp" timed "$BIN"/amtl-prep -o "$tmp/csv.amtl" "$tmp/a.csv"
    rm -f "$tmp/a.csv" "$tmp/csv.amtl"
    timed "$BIN"/amtl-prep --synthetic --synthetic-kind aliccp --rows "$n" --seed 1 -o "$d"
    timed "$BIN"/amtl-prep --info "$d" > /dev/null
    bytes=$(stat -c %s "$d")
    if [ $first -eq 1 ]; then
        what="1 epoch"
        limit=""
    else
        what="$STEPS steps"
        limit="--set epoch_batches=$STEPS"
    fi
    timed "$BIN"/amtl-supernet --data "$d" $MODEL $limit --phase warmup --epochs 1 \
        -o "$tmp/s.ckpt" > /dev/null
    "$BIN"/amtl-discretize --baseline mmoe --data "$d" $KEYS -o "$tmp/m.arch"
    timed "$BIN"/amtl-train --data "$d" --arch "$tmp/m.arch" $MODEL --set epoch_batches="$STEPS" \
        --epochs 1 -o "$tmp/m.model" > /dev/null
    timed "$BIN"/amtl-eval --model "$tmp/m.model" --data "$d" --split test > /dev/null
    test_rows=$("$BIN"/amtl-prep --info "$d" | awk '$1 == "test" && NF == 2 {print $2; exit}')
    mapfile -t r < "$tmp/t"
    read -r cs ck <<< "${r[0]}"
    read -r ps pk <<< "${r[1]}"; read -r is ik <<< "${r[2]}"; read -r ss sk <<< "${r[3]}"
    read -r ts tk <<< "${r[4]}"; read -r es ek <<< "${r[5]}"
    printf "| %s | %s MB | %s | %s | %s MB | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" \
        "$n" "$(mb $((csv_bytes / 1024)))" "$cs" "$(mb "$ck")" \
        "$(mb $((bytes / 1024)))" "$((bytes / n))" "$ps" "$(mb "$pk")" "$is" "$(mb "$ik")" \
        "$what" "$ss" "$(mb "$sk")" "$ts" "$(mb "$tk")" \
        "$(awk -v r="$test_rows" -v s="$es" 'BEGIN { printf "%.0f", r / s }')" "$(mb "$ek")"
    rm -f "$d" "$tmp/s.ckpt" "$tmp/m.model"
    first=0
done
