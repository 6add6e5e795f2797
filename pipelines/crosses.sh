#!/bin/sh
# crosses.sh — which pairs of sparse fields to cross (config key crosses):
# every pair scored by the linear floor's validation AUC (make crosses).
set -u

usage() {
    cat <<'EOF'
Usage: pipelines/crosses.sh [options] INPUT...
       make crosses CONFIG=FILE DATA="INPUT..." [FIELDS="A B ..."] [OUT=DIR]
Prepare INPUT with the config (amtl-prep), fit the linear floor (the per-task
logistic regression of --baseline linear, its L2 strength chosen on the
validation split), then do the same once for every pair of the data's sparse
fields crossed (crosses: [A*B], on top of the config's own crosses) and write
one TSV row per pair: its validation AUCs and their gain over the data as it
is.  No model is scored on the test split (amtl-prep writes it, nothing
reads it): choose crosses here and score the test split once, with the
model you keep.  The floor's regression is
convex and fast, and a cross adds a weight per pair to it: a pairwise effect
it cannot fit without one shows as a gain.

Options (each also read from the environment variable in brackets):
  --config FILE      amtl-prep's and the linear floor's config (CONFIG; none:
                     the built-in defaults, for a processed CSV)
  --fields "A B ..." cross only these fields, each with each (FIELDS; all the
                     data's sparse fields but crosses)
  --seed N           amtl-prep's split seed and the fit's seed (SEED; the config's)
  --out DIR          where the datasets, models and the table go (OUT; results/crosses)
  --bin DIR          where the tools are (BIN; bin)
  -h, --help         show this help and exit

Output: OUT/crosses.tsv (written to a temporary file, then renamed), the data
as it is first ("-") and then the pairs by gain, best first, with the columns
cross, ids (the cross's vocabulary: its pairs seen often enough in the train
rows, plus the shared row 0), the validation AUC of each task, val mean AUC,
gain (over "-") and seconds.  OUT/A*B/ holds each pair's dataset and model,
OUT/base/ those of the data as it is.  Exit status: 0 when every pair was
scored, 1 when one failed (its row says failed), 2 for a usage error.
EOF
}

die_usage() {
    echo "crosses.sh: error: $1" >&2
    echo "Try 'pipelines/crosses.sh --help'." >&2
    exit 2
}

CONFIG=${CONFIG:-}
FIELDS=${FIELDS:-}
SEED=${SEED:-}
OUT=${OUT:-results/crosses}
BIN=${BIN:-bin}
while [ $# -gt 0 ]; do
    case $1 in
    -h|--help) usage; exit 0 ;;
    --config) [ $# -ge 2 ] || die_usage "--config wants a file"; CONFIG=$2; shift ;;
    --fields) [ $# -ge 2 ] || die_usage "--fields wants a list"; FIELDS=$2; shift ;;
    --seed) [ $# -ge 2 ] || die_usage "--seed wants a number"; SEED=$2; shift ;;
    --out) [ $# -ge 2 ] || die_usage "--out wants a directory"; OUT=$2; shift ;;
    --bin) [ $# -ge 2 ] || die_usage "--bin wants a directory"; BIN=$2; shift ;;
    --) shift; break ;;
    -*) die_usage "unknown option '$1'" ;;
    *) break ;;
    esac
    shift
done
[ $# -ge 1 ] || die_usage "no input files"
[ -n "$CONFIG" ] || CONFIG=/dev/null
[ -r "$CONFIG" ] || die_usage "cannot read config '$CONFIG'"
case $SEED in *[!0-9]*) die_usage "--seed wants a number, not '$SEED'" ;; esac
for f in "$@"; do
    [ -r "$f" ] || die_usage "cannot read input '$f'"
done
for t in amtl-prep amtl-discretize amtl-train; do
    [ -x "$BIN/$t" ] || die_usage "no $BIN/$t: build the tools first (make)"
done

seedarg=${SEED:+--seed $SEED}
setseed=${SEED:+--set seed=$SEED}
# the config's own crosses, as amtl-prep reads them: ["a*b", ...] or []
own=$("$BIN/amtl-prep" --config "$CONFIG" --dump-stage prep | sed -n 's/^crosses: //p') ||
    die_usage "cannot read config '$CONFIG'"
[ -n "$own" ] || own='[]'
# a cross's fields in order, so that a*b and b*a are one
fields_of() {
    printf '%s\n' "$1" | tr '*' '\n' | sort | tr '\n' ' '
}
own_sets=$(printf '%s\n' "$own" | tr -d '[]"' | tr ',' '\n' | while read -r c; do
    [ -n "$c" ] && fields_of "$c" && echo
done)

mkdir -p "$OUT" || exit 1
trap 'rm -f "$OUT/crosses.tsv.tmp" "$OUT/.rows"' EXIT
trap 'exit 130' INT TERM

# Prepares the inputs ($4...) with crosses $2 into $1/data.amtl, fits the
# floor into $1/linear.model; prints "ids<TAB>auc...<TAB>mean<TAB>seconds"
# (ids of field $3, or "-"), or fails with the tools' messages in $1/log.
score() {
    dir=$1 crosses=$2 field=$3
    shift 3
    mkdir -p "$dir" || return 1
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    { "$BIN/amtl-prep" --config "$CONFIG" --set "crosses=$crosses" $seedarg \
          -o "$dir/data.amtl" "$@" &&
      "$BIN/amtl-discretize" --baseline linear --data "$dir/data.amtl" --config "$CONFIG" \
          -o "$dir/linear.arch" &&
      "$BIN/amtl-train" --data "$dir/data.amtl" --arch "$dir/linear.arch" --config "$CONFIG" \
          $setseed --quiet --metrics "$dir/linear.jsonl" -o "$dir/linear.model" &&
      "$BIN/amtl-prep" --info "$dir/data.amtl" > "$dir/info"; } > "$dir/log" 2>&1 || return 1
    ids=-
    [ "$field" = - ] || ids=$(awk -v f="$field" '$1 == f && $2 == "sparse" { print $3 }' "$dir/info")
    # the best epoch's validation AUCs (the fit is one epoch)
    awk -v ids="$ids" -v secs="$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" '
        { line = $0
          m = line; sub(/.*"val_mean_auc":/, "", m); sub(/[,}].*/, "", m)
          if (NR == 1 || m + 0 > best + 0) { best = m; keep = line } }
        END {
          if (NR == 0) exit 1
          out = ids; rest = keep; head = ""
          while (match(rest, /"val_auc\.[^"]*":[-0-9.e]+/)) {
              kv = substr(rest, RSTART + 9, RLENGTH - 9)
              split(kv, p, "\":"); head = head "\t" p[1]; out = out "\t" p[2]
              rest = substr(rest, RSTART + RLENGTH)
          }
          printf "%s\t%s\t%s\n", out, best, secs
          printf "%s\n", head > "/dev/stderr"
        }' "$dir/linear.jsonl" 2> "$dir/tasks"
}

printf 'crosses: the data as it is ... ' >&2
base=$(score "$OUT/base" "$own" - "$@") || {
    echo "FAILED" >&2
    sed 's/^/  /' "$OUT/base/log" >&2
    exit 1
}
tasks=$(cat "$OUT/base/tasks")
base_mean=$(printf '%s\n' "$base" | awk -F '\t' '{ print $(NF - 1) }')
echo "val mean AUC $base_mean" >&2

# the fields to pair: those asked for, else every sparse field but crosses
all=$(awk '$2 == "sparse" && $1 !~ /\*/ { print $1 }' "$OUT/base/info")
if [ -n "$FIELDS" ]; then
    for f in $FIELDS; do
        printf '%s\n' "$all" | grep -qxF -- "$f" ||
            die_usage "--fields: '$f' is not a sparse field of the data ($(echo $all))"
    done
    all=$(printf '%s\n' $FIELDS)
fi
pairs=$(printf '%s\n' "$all" | awk '{ f[NR] = $0 } END { for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++) print f[i] "*" f[j] }')
[ -n "$pairs" ] || die_usage "fewer than two fields to cross"
n=$(printf '%s\n' "$pairs" | wc -l)

: > "$OUT/.rows"
failed=0
i=0
for pair in $pairs; do
    i=$((i + 1))
    printf 'crosses: %d/%d %s ... ' "$i" "$n" "$pair" >&2
    case $own in
    '[]') with="[\"$pair\"]" ;;
    *) with="${own%]}, \"$pair\"]" ;;
    esac
    if printf '%s\n' "$own_sets" | grep -qxF -- "$(fields_of "$pair")"; then
        echo "in the config already" >&2
        continue
    fi
    if row=$(score "$OUT/$pair" "$with" "$pair" "$@"); then
        printf '%s\t%s\n' "$pair" "$row" >> "$OUT/.rows"
        echo "$(printf '%s\n' "$row" | awk -F '\t' -v b="$base_mean" '{ printf "val mean AUC %s (%+.4f)", $(NF - 1), $(NF - 1) - b }')" >&2
    else
        failed=1
        printf '%s\tfailed\n' "$pair" >> "$OUT/.rows"
        echo "FAILED (see $OUT/$pair/log)" >&2
    fi
done

{
    printf 'cross\tids%s\tval mean AUC\tgain\tseconds\n' "$tasks"
    printf '%s\n' "-	$base" | awk -F '\t' -v OFS='\t' '{ s = $NF; $NF = "+0.0000"; print $0, s }'
    grep -v '	failed$' "$OUT/.rows" | awk -F '\t' -v OFS='\t' -v b="$base_mean" '
        { s = $NF; $NF = sprintf("%+.4f", $(NF - 1) - b); print $0, s }' |
        sort -t '	' -k "$(( $(printf '%s' "$tasks" | awk -F '\t' '{ print NF }') + 3 ))" -g -r
    grep '	failed$' "$OUT/.rows" || :
} > "$OUT/crosses.tsv.tmp" && mv -f "$OUT/crosses.tsv.tmp" "$OUT/crosses.tsv" || exit 1
echo "crosses: $OUT/crosses.tsv" >&2
exit $failed
