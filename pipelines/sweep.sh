#!/bin/sh
# sweep.sh — a grid of seeds and config values, one search pipeline per point,
# all results in one TSV (make sweep).
set -u

usage() {
    cat <<'EOF'
Usage: pipelines/sweep.sh [options]
       make sweep [SEEDS="1 2 3"] [SET="KEY=V1,V2 ..."] [CONFIG=FILE] [ROWS=N] [OUT=DIR]
Run the search pipeline (pipelines/search.mk) once for every seed and every
combination of the varied config values, on the synthetic data, and write one
TSV row per run.

Options (each also read from the environment variable in brackets):
  --seeds "S1 S2 ..."   training seeds, config key seed (SEEDS; "1 2 3")
  --set KEY=V1,V2,...   values of a config key; repeatable, the runs are the
                        product of all of them (SET: space-separated; default
                        "gate_mode=sample,reference").  Commas inside [...]
                        belong to one value: ops=[Identity,MLP-16],[MLP-64]
  --config FILE         the config every run starts from (CONFIG; configs/demo.yaml)
  --rows N              rows of the synthetic data (ROWS; 20000)
  --data-seed N         seed of the synthetic data, the same in every run so
                        that only training differs (DATA_SEED; 1)
  --baselines "B ..."   baselines to train in every run as well, e.g.
                        "mmoe linear" (BASELINES; none)
  --out DIR             where the runs and the table go (OUT; results/sweep)
  --bin DIR             where the tools are (BIN; bin)
  --keep                keep the warm-up and search checkpoints of every run
                        (by default they are deleted when the run is done)
  -h, --help            show this help and exit

Each run is OUT/RUN, RUN being "s<seed>" and "-KEY-VALUE" per varied key; a
run already complete is not redone (make decides), so a sweep that stopped
can be restarted, and a larger grid reuses the runs of a smaller one.  The log
of a run is OUT/RUN.log.

Output: OUT/sweep.tsv, rewritten (to a temporary file, then renamed) after
every run, with the columns run, seed, one per varied key, the test AUC of
each task, mean AUC, params, search s and train s (the seconds summed from the
metrics files), arch, model (their files), status (ok or failed).  Values may
not hold spaces.  Exit status: 0 when every run succeeded, 1 when one failed,
2 for a usage error.
EOF
}

die_usage() {
    echo "sweep.sh: error: $1" >&2
    echo "Try 'pipelines/sweep.sh --help'." >&2
    exit 2
}

SEEDS=${SEEDS:-1 2 3}
CONFIG=${CONFIG:-configs/demo.yaml}
ROWS=${ROWS:-20000}
DATA_SEED=${DATA_SEED:-1}
BASELINES=${BASELINES:-}
OUT=${OUT:-results/sweep}
BIN=${BIN:-bin}
keep=0
specs=
set_given=0
while [ $# -gt 0 ]; do
    case $1 in
    -h|--help) usage; exit 0 ;;
    --seeds) [ $# -ge 2 ] || die_usage "--seeds wants a list"; SEEDS=$2; shift ;;
    --set) [ $# -ge 2 ] || die_usage "--set wants KEY=V1,V2"; specs="$specs $2"; set_given=1; shift ;;
    --config) [ $# -ge 2 ] || die_usage "--config wants a file"; CONFIG=$2; shift ;;
    --rows) [ $# -ge 2 ] || die_usage "--rows wants a count"; ROWS=$2; shift ;;
    --data-seed) [ $# -ge 2 ] || die_usage "--data-seed wants a number"; DATA_SEED=$2; shift ;;
    --baselines) [ $# -ge 2 ] || die_usage "--baselines wants a list"; BASELINES=$2; shift ;;
    --out) [ $# -ge 2 ] || die_usage "--out wants a directory"; OUT=$2; shift ;;
    --bin) [ $# -ge 2 ] || die_usage "--bin wants a directory"; BIN=$2; shift ;;
    --keep) keep=1 ;;
    *) die_usage "unknown option '$1'" ;;
    esac
    shift
done
[ $set_given = 1 ] || specs=${SET-gate_mode=sample,reference}
[ -r "$CONFIG" ] || die_usage "cannot read config '$CONFIG'"
[ -n "$SEEDS" ] || die_usage "no seeds"
for s in $SEEDS; do
    case $s in ''|*[!0-9]*) die_usage "a seed is a number, not '$s'" ;; esac
done
case $ROWS in ''|*[!0-9]*) die_usage "--rows wants a count, not '$ROWS'" ;; esac
here=$(cd "$(dirname "$0")" && pwd)
# the runs are separate makes, not part of the one that may have started us
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEFILES

# Splits V1,V2,... at the commas outside brackets, one value a line.
values_of() {
    printf '%s\n' "$1" | awk '{
        d = 0; cur = ""
        for (i = 1; i <= length($0); i++) {
            c = substr($0, i, 1)
            if (c == "[") d++
            else if (c == "]") d--
            if (c == "," && d == 0) { print cur; cur = "" } else cur = cur c
        }
        print cur
    }'
}

# the grid: one line per combination, "KEY=VALUE ..." ("." alone: none)
keys=
combos=.
for spec in $specs; do
    case $spec in
    *=*) ;;
    *) die_usage "--set wants KEY=V1,V2, got '$spec'" ;;
    esac
    key=${spec%%=*}
    [ -n "$key" ] || die_usage "--set wants KEY=V1,V2, got '$spec'"
    case " $keys " in *" $key "*) die_usage "key '$key' is varied twice" ;; esac
    keys="$keys $key"
    vals=$(values_of "${spec#*=}")
    new=
    while IFS= read -r combo; do
        [ "$combo" = . ] && combo=
        for v in $vals; do
            new="${new:+$new
}${combo:+$combo }$key=$v"
        done
    done <<EOF
$combos
EOF
    combos=$new
done
n_runs=$(( $(printf '%s\n' "$combos" | wc -l) * $(echo $SEEDS | wc -w) ))

mkdir -p "$OUT" || exit 1
rows=$(mktemp "$OUT/.sweep-rows.XXXXXX") || exit 1
trap 'rm -f "$rows" "$OUT/sweep.tsv.tmp"' EXIT
trap 'exit 130' INT TERM
header=

# Writes OUT/sweep.tsv from the rows so far: a temporary file, then a rename.
write_table() {
    {
        printf 'run\tseed'
        for k in $keys; do printf '\t%s' "$k"; done
        if [ -n "$header" ]; then printf '\t%s' "$header"; fi
        printf '\tstatus\n'
        cat "$rows"
    } > "$OUT/sweep.tsv.tmp" && mv -f "$OUT/sweep.tsv.tmp" "$OUT/sweep.tsv"
}

failed=0
i=0
for seed in $SEEDS; do
    while IFS= read -r combo; do
        [ "$combo" = . ] && combo=
        i=$((i + 1))
        id=s$seed
        for kv in $combo; do
            # no "=" or ":" (make takes them for assignments and rules)
            v=$(printf '%s' "${kv#*=}" | tr -d '[]' | tr -c 'A-Za-z0-9.+-' '_')
            id="$id-${kv%%=*}-$v"
        done
        run=$OUT/$id
        printf 'sweep: run %d/%d %s ... ' "$i" "$n_runs" "$id" >&2
        start=$(date +%s)
        if make --no-print-directory -f "$here/search.mk" CONFIG="$CONFIG" OUT="$run" BIN="$BIN" \
                ROWS="$ROWS" DATA_SEED="$DATA_SEED" BASELINES="$BASELINES" \
                SET="seed=$seed $combo" search $( [ -n "$BASELINES" ] && echo baselines ) \
                > "$run.log" 2>&1; then
            status=ok
            [ $keep = 1 ] || make --no-print-directory -f "$here/search.mk" CONFIG="$CONFIG" \
                OUT="$run" BIN="$BIN" ROWS="$ROWS" DATA_SEED="$DATA_SEED" BASELINES="$BASELINES" \
                SET="seed=$seed $combo" prune >> "$run.log" 2>&1
            table=$(python3 "$here/table.py" "$run" searched 2>>"$run.log")
        else
            status=failed
            table=
            failed=1
        fi
        if [ -n "$table" ] && [ -z "$header" ]; then
            header=$(printf '%s\n' "$table" | head -n 1 | cut -f 2-)
        fi
        {
            printf '%s\t%s' "$id" "$seed"
            for k in $keys; do
                v=
                for kv in $combo; do
                    [ "${kv%%=*}" = "$k" ] && v=${kv#*=}
                done
                printf '\t%s' "$v"
            done
            if [ -n "$table" ]; then
                printf '\t%s' "$(printf '%s\n' "$table" | sed -n 2p | cut -f 2-)"
            elif [ -n "$header" ]; then
                printf '%s' "$header" | awk -F '\t' '{ for (i = 1; i <= NF; i++) printf "\tn/a" }'
            fi
            printf '\t%s\n' "$status"
        } >> "$rows"
        write_table || exit 1
        if [ $status = ok ]; then
            mean=$(printf '%s\n' "$table" | awk -F '\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "mean AUC") c = i } NR == 2 { print $c }')
            echo "ok (mean AUC $mean, $(( $(date +%s) - start )) s)" >&2
        else
            echo "FAILED (see $run.log)" >&2
        fi
    done <<EOF
$combos
EOF
done
# a run that failed before the first success has n/a columns to fill in now
if [ -n "$header" ] && grep -q '	failed$' "$rows"; then
    ncol=$(printf '%s' "$header" | awk -F '\t' '{ print NF }')
    nkeys=$(echo $keys | wc -w)
    awk -F '\t' -v OFS='\t' -v want=$((3 + nkeys + ncol)) '
        $NF == "failed" && NF < want { s = $NF; NF--; while (NF < want - 1) $(NF + 1) = "n/a"; $(NF + 1) = s }
        { print }' "$rows" > "$rows.fill" && mv -f "$rows.fill" "$rows"
    write_table || exit 1
fi
echo "sweep: $OUT/sweep.tsv ($i runs$( [ $failed = 1 ] && echo ', some failed'))" >&2
exit $failed
