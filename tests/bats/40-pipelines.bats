#!/usr/bin/env bats
# The make pipelines: a whole search end to end, what reruns when the config
# changes, a stage killed midway, the shipped configs, plots, sweeps and the
# quality runs (make quality).
# Every run is tiny (a few thousand synthetic rows, a small supernet) and goes
# to a temp dir.  Each test runs tens of tools, minutes under memcheck, and
# tests nothing of them that the other files do not: all are tagged "long",
# which tests/run-valgrind leaves out.
# bats file_tags=long
bats_require_minimum_version 1.5.0
load helpers

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
PIPE="$REPO/pipelines"
# these tests start makes of their own, not parts of one that may run them
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEFILES

# A tiny search: 1 warm-up, 2 search, 1 frozen epoch, fine-tuning to 6.
tiny_config() {
    cat > "$TMP/c.yaml" <<'EOF'
model:
  embedding_dim: 4
  n_experts: 2
  expert_width: 8
  tower_layers: [8]
  ops: [Identity, MLP-8, MLP-16]
train:
  batch_size: 256
search:
  epochs: 6
  warmup_epochs: 1
  full_arch_train_epochs: 2
  discretize_ops: 3
  patience: 2
EOF
}

RUN_ARGS=()
# Runs the search pipeline on the tiny config into $TMP/run (from $TMP, so
# that nothing can land in the source tree); extra make arguments follow.
pipeline() {
    (cd "$TMP" && make --no-print-directory -f "$PIPE/search.mk" CONFIG="$TMP/c.yaml" \
        OUT="$TMP/run" BIN="$AMTL_BIN" ROWS=2000 "${RUN_ARGS[@]}" "$@")
}

# Every file of the run with its mtime, one a line.
snapshot() {
    find "$TMP/run" -maxdepth 1 -type f -printf '%f %T@\n' | sort
}

# The files of snapshot $2 that are new or have another mtime than in $1.
changed() {
    awk 'NR == FNR { t[$1] = $2; next } t[$1] != $2 { print $1 }' "$1" "$2" | sort
}

# Sets the value of a key in the tiny config.
set_key() {
    sed -i "s/^\( *$1:\).*/\1 $2/" "$TMP/c.yaml"
    grep -qF "$1: $2" "$TMP/c.yaml"
}

@test "search.mk: a tiny synthetic search runs end to end, with every baseline and the table" {
    tiny_config
    # (retrain_candidates, off by default, adds the retrained candidates)
    run --separate-stderr pipeline SET=retrain_candidates=true
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    R="$TMP/run"
    for f in data.amtl warmup-1.ckpt search-1.ckpt search-2.ckpt frozen.ckpt arch.amtl arch.txt \
             searched.model searched.eval.json metrics.jsonl results.tsv \
             shared-bottom.model mmoe.model ple.model linear.model \
             single-task-0.model single-task-3.model; do
        [ -s "$R/$f" ] || { echo "missing $f"; false; }
    done
    # the export candidates: one per threshold of export_candidates, each
    # fine-tuned and trained from scratch (retrain_candidates), scored on
    # validation; the best is the searched model
    [ "$(cut -f 1 "$R/candidates.tsv" | tr '\n' ' ')" = "candidate 0.5 0.45 0.55 scratch-0.5 scratch-0.45 scratch-0.55 linear " ]
    [ "$(awk -F '\t' '$7 == "*"' "$R/candidates.tsv" | wc -l)" -eq 1 ]
    # the best by validation AUC of the linear fit and the deep candidates
    # (linear_margin 0: no margin over the linear fit)
    best=$(awk -F '\t' 'NR > 1 && ($1 == "linear" || $4 > 0) && (b == "" || $2 > a) { a = $2; b = $1 } END { print b }' "$R/candidates.tsv")
    [ "$(awk -F '\t' '$7 == "*" { print $1 }' "$R/candidates.tsv")" = "$best" ]
    for t in 0.5 0.45 0.55 scratch-0.5 scratch-0.45 scratch-0.55 linear; do
        grep -q '"split":"val"' "$R/searched-$t.val.json"
        v=$(grep -o '"mean_auc":[0-9.]*' "$R/searched-$t.val.json" | cut -d : -f 2)
        se=$(grep -o '"mean_auc_se":[0-9.]*' "$R/searched-$t.val.json" | cut -d : -f 2)
        if [ $t = linear ]; then
            d=- dse=-
            ! grep -q '"against"' "$R/searched-$t.val.json"
        else
            # each deep candidate compared with the linear fit on the same rows
            grep -q '"against":{"model":"'"$R"'/searched-linear.model","tasks":4,' "$R/searched-$t.val.json"
            d=$(grep -o '"mean_auc_diff":[-0-9.]*' "$R/searched-$t.val.json" | cut -d : -f 2)
            dse=$(grep -o '"diff_se":[0-9.]*' "$R/searched-$t.val.json" | cut -d : -f 2)
        fi
        grep -q "^$t"$'\t'"$v"$'\t'"$se"$'\t'"$d"$'\t'"$dse"$'\t' "$R/candidates.tsv"
    done
    cmp "$R/arch-$best.amtl" "$R/arch.amtl"
    # a retrained candidate: the export's architecture, trained from scratch
    # for `epochs` epochs as the baselines are (the fine-tune starts from the
    # supernet's weights)
    cmp "$R/arch-0.45.amtl" "$R/arch-scratch-0.45.amtl"
    ! cmp -s "$R/searched-0.45.model" "$R/searched-scratch-0.45.model"
    cmp "$R/searched-$best.model" "$R/searched.model"
    cmp "$R/searched-$best.jsonl" "$R/searched.jsonl"
    amtl-discretize --show "$R/arch-0.45.amtl" | grep -q 'of the choice, kept above 0.45)'
    [[ "$output" == *"export candidates (the searched model is the one marked *):"* ]]
    # one metrics line per supernet epoch, the phases in order
    [ "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["phase"] for l in open(sys.argv[1])))' "$R/metrics.jsonl")" \
        = "warmup search search finetune" ]
    # fine-tuning: epochs 6 minus 4 supernet epochs, at most
    [ "$(wc -l < "$R/searched.jsonl")" -le 2 ]
    # the table: a header and one row per model, single-task models in one row
    cut -f 1 "$R/results.tsv" > "$TMP/rows"
    printf '%s\n' model searched shared-bottom mmoe ple single-task linear | diff -u - "$TMP/rows"
    head -n 1 "$R/results.tsv" | grep -q $'^model\ttask0 AUC\ttask1 AUC\ttask2 AUC\ttask3 AUC\tmean AUC\tparams\tsearch s\ttrain s\teval s\twall s\tarch\tmodel$'
    grep -q $'^searched\t.*\t'"$R/arch.amtl"$'\t'"$R/searched.model"'$' "$R/results.tsv"
    [[ "$output" == *"searched model: $R/searched.model"* ]]
    [[ "$output" == *"shared-bottom"* ]]
    # each stage's wall seconds: one file per stage, the sums in the table
    for f in data.amtl warmup-1.ckpt search-2.ckpt frozen.ckpt arch.amtl searched.model \
             searched.eval.json mmoe.arch mmoe.model mmoe.eval.json single-task-3.model; do
        grep -qx '[0-9]*\.[0-9][0-9][0-9]' "$R/wall/$f.seconds" || { echo "wall/$f"; false; }
    done
    # searched: search, train, eval and wall seconds; baselines: no search
    # (scoring the tiny test split takes milliseconds: 0.0 in the table)
    awk -F '\t' 'NR > 1 && $1 == "searched" { exit !($8 > 0 && $9 > 0 && $10 >= 0 && $11 >= $8 + $9 + $10 - 0.2) }' "$R/results.tsv" ||
        { head -n 1 "$R/results.tsv"; grep '^searched' "$R/results.tsv"; grep -H . "$R"/wall/*.seconds; false; }
    [ "$(awk -F '\t' 'NR > 1 && $1 != "searched" && $8 == "-" && $9 >= 0 && $10 >= 0 && $11 >= $9' "$R/results.tsv" | wc -l)" -eq 5 ]
    [[ "$output" == *"wall s per stage: prep "*"; supernet warmup-1 "*", search-1 "*", search-2 "*", frozen "*"; export "* ]]
    # only amtl-eval reads the test split, once per model
    [ "$(grep -c '"split":"test"' "$R"/*.eval.json | awk -F : '{ n += $2 } END { print n }')" -eq 9 ]
    # nothing half-written left behind, nothing made outside the run dir
    [ -z "$(find "$R" -name '*.part' -o -name '*.tmp')" ]
    [ "$(ls "$TMP")" = "$(printf 'c.yaml\nrows\nrun')" ]
}

# A run dir with candidate C's files: its validation AUC $2, its files' bytes
# naming it (so a copy shows which one was taken), and its wall seconds; with
# $4 and $5, its paired difference to the linear fit and that one's error.
fake_candidate() {
    local r="$TMP/run" c=$1 against=
    mkdir -p "$r/wall"
    [ $# -ge 5 ] && against=$(printf ',"against":{"model":"l","tasks":1,"against_mean_auc":0.7,"mean_auc_diff":%s,"diff_se":%s}' "$4" "$5")
    printf '{"model":"m","checksum":"verified","split":"val","rows":9,"mean_auc":%s,"mean_auc_se":%s,"tasks":{},"not_trained":[],"live_weights":%s%s}\n' \
        "$2" "$([ "$2" = null ] && echo null || echo 0.004)" "${3:-10}" "$against" > "$r/searched-$c.val.json"
    echo "arch $c" > "$r/arch-$c.amtl"
    echo "model $c" > "$r/searched-$c.model"
    echo "jsonl $c" > "$r/searched-$c.jsonl"
    echo 1.250 > "$r/wall/arch-$c.amtl.seconds"
    echo 2.500 > "$r/wall/searched-$c.model.seconds"
    echo 0.125 > "$r/wall/searched-$c.val.json.seconds"
}

@test "pick-candidate: the best validation AUC wins, the first of a tie; every candidate's seconds count" {
    R="$TMP/run"
    fake_candidate 0.5 0.7010 100
    fake_candidate 0.45 0.7020 120
    fake_candidate 0.55 0.7020 80
    fake_candidate linear 0.7015 7
    "$PIPE/pick-candidate" "$R" 0.5 0.45 0.55 linear
    printf 'candidate\tval mean AUC\tval SE\tvs linear\tpaired SE\tlive weights\tchosen\n0.5\t0.7010\t0.004\t-\t-\t100\t\n0.45\t0.7020\t0.004\t-\t-\t120\t*\n0.55\t0.7020\t0.004\t-\t-\t80\t\nlinear\t0.7015\t0.004\t-\t-\t7\t\n' |
        diff -u - "$R/candidates.tsv"
    [ "$(cat "$R/arch.amtl" "$R/searched.model" "$R/searched.jsonl")" = "$(printf 'arch 0.45\nmodel 0.45\njsonl 0.45')" ]
    [ "$(cat "$R/wall/arch.amtl.seconds")" = 5.000 ]
    [ "$(cat "$R/wall/searched.model.seconds")" = 10.500 ]
    # the linear fit wins when the deep candidates are worse on validation
    fake_candidate linear 0.7100 7
    "$PIPE/pick-candidate" "$R" 0.5 0.45 0.55 linear
    [ "$(cat "$R/searched.model")" = "model linear" ]
    [ "$(awk -F '\t' '$7 == "*" { print $1 }' "$R/candidates.tsv")" = linear ]
    # no AUC (a validation split with one class): n/a, not chosen over one
    # with an AUC; the first when none has one
    fake_candidate 0.5 null
    fake_candidate 0.45 null
    "$PIPE/pick-candidate" "$R" 0.5 0.45
    [ "$(cat "$R/searched.model")" = "model 0.5" ]
    "$PIPE/pick-candidate" "$R" 0.5 0.45 linear
    [ "$(cat "$R/searched.model")" = "model linear" ]
    grep -q $'^0.45\tn/a\tn/a\t-\t-\t10\t$' "$R/candidates.tsv"
    # a missing file or AUC: an error naming it, nothing changed
    snapshot > "$TMP/before"
    rm "$R/searched-0.55.model"
    run --separate-stderr "$PIPE/pick-candidate" "$R" 0.5 0.55
    [ "$status" -eq 1 ]
    [ "$stderr" = "pick-candidate: error: $R/searched-0.55.model is missing (candidate 0.55)" ]
    echo '{"split":"val","rows":9}' > "$R/searched-0.5.val.json"
    run --separate-stderr "$PIPE/pick-candidate" "$R" 0.5
    [ "$status" -eq 1 ]
    [[ "$stderr" == "pick-candidate: error: $R/searched-0.5.val.json: no mean_auc"* ]]
    snapshot | grep -v '^searched-0\.5\.val\.json \|^searched-0\.55\.model ' > "$TMP/after"
    grep -v '^searched-0\.5\.val\.json \|^searched-0\.55\.model ' "$TMP/before" | diff -u - "$TMP/after"
    [ -z "$(find "$R" -name '*.tmp')" ]
    run "$PIPE/pick-candidate" "$R"
    [ "$status" -eq 2 ]
    run "$PIPE/pick-candidate" --linear-margin x "$R" 0.5
    [ "$status" -eq 2 ]
}

@test "pick-candidate --linear-margin: a deep candidate wins over the linear fit only by that many paired errors" {
    R="$TMP/run"
    fake_candidate 0.5 0.7030 100 0.0015 0.0010
    fake_candidate 0.45 0.7040 120 0.0025 0.0020
    fake_candidate 0.55 0.7025 80 0.0010 0.0004
    fake_candidate linear 0.7015 7
    # margin 2: 0.55 alone is 2.5 errors ahead: it wins though 0.5 and 0.45
    # have better validation AUCs
    "$PIPE/pick-candidate" --linear-margin 2 "$R" 0.5 0.45 0.55 linear
    printf 'candidate\tval mean AUC\tval SE\tvs linear\tpaired SE\tlive weights\tchosen\n0.5\t0.7030\t0.004\t0.0015\t0.0010\t100\t\n0.45\t0.7040\t0.004\t0.0025\t0.0020\t120\t\n0.55\t0.7025\t0.004\t0.0010\t0.0004\t80\t*\nlinear\t0.7015\t0.004\t-\t-\t7\t\n' |
        diff -u - "$R/candidates.tsv"
    [ "$(cat "$R/searched.model")" = "model 0.55" ]
    # margin 1.5: 0.5 competes too (1.5 errors, the bound counts) and wins
    "$PIPE/pick-candidate" --linear-margin 1.5 "$R" 0.5 0.45 0.55 linear
    [ "$(cat "$R/searched.model")" = "model 0.5" ]
    # margin 0: the best validation AUC alone
    "$PIPE/pick-candidate" --linear-margin 0 "$R" 0.5 0.45 0.55 linear
    [ "$(cat "$R/searched.model")" = "model 0.45" ]
    # margin 3: none is far enough ahead: the linear fit stays
    "$PIPE/pick-candidate" --linear-margin 3 "$R" 0.5 0.45 0.55 linear
    [ "$(cat "$R/searched.model")" = "model linear" ]
    [ "$(awk -F '\t' '$7 == "*" { print $1 }' "$R/candidates.tsv")" = linear ]
    # a deep candidate behind the linear fit, or without a comparison (null:
    # no task to compare), never competes
    fake_candidate 0.55 0.7025 80 -0.0010 0.0001
    fake_candidate 0.45 0.7040 120 null null
    "$PIPE/pick-candidate" --linear-margin 0 "$R" 0.5 0.45 0.55 linear
    [ "$(cat "$R/searched.model")" = "model 0.5" ]
    grep -q $'^0.45\t0.7040\t0.004\tn/a\tn/a\t120\t$' "$R/candidates.tsv"
    # without the linear fit among the candidates the margin does nothing
    "$PIPE/pick-candidate" --linear-margin 3 "$R" 0.5 0.45
    [ "$(cat "$R/searched.model")" = "model 0.45" ]
    # a deep candidate scored without --against: an error, nothing written
    snapshot > "$TMP/before"
    fake_candidate 0.5 0.7030 100
    run --separate-stderr "$PIPE/pick-candidate" --linear-margin 2 "$R" 0.5 linear
    [ "$status" -eq 1 ]
    [ "$stderr" = "pick-candidate: error: $R/searched-0.5.val.json: no comparison with the linear fit (amtl-eval --against)" ]
    # (the fake rewrote candidate 0.5's own files; nothing else moved)
    snapshot | grep -v -- '-0\.5\.' > "$TMP/after"
    grep -v -- '-0\.5\.' "$TMP/before" | diff -u - "$TMP/after"
}

@test "search.mk: a choice key (linear_margin) redoes only the choice and what follows it" {
    tiny_config
    echo "  linear_margin: 2" >> "$TMP/c.yaml"
    RUN_ARGS=(BASELINES="linear")
    pipeline > /dev/null
    snapshot > "$TMP/before"
    set_key linear_margin 1000
    pipeline > /dev/null
    snapshot > "$TMP/after"
    changed "$TMP/before" "$TMP/after" | grep -v '^metrics\.jsonl$' > "$TMP/changed"
    printf '%s\n' arch.amtl arch.txt candidates.tsv results.tsv searched.eval.json searched.jsonl \
        searched.model | diff -u - "$TMP/changed"
    # no deep candidate is 1000 paired errors ahead
    [ "$(awk -F '\t' '$7 == "*" { print $1 }' "$TMP/run/candidates.tsv")" = linear ]
    cmp "$TMP/run/linear.model" "$TMP/run/searched.model"
}

@test "search.mk: touching the config without changing a key reruns nothing" {
    tiny_config
    RUN_ARGS=(BASELINES="mmoe linear")
    pipeline > /dev/null
    snapshot > "$TMP/before"
    sleep 1
    touch "$TMP/c.yaml"
    echo "# a comment changes no key" >> "$TMP/c.yaml"
    run pipeline -q "$TMP/run/results.tsv"
    [ "$status" -eq 0 ]
    pipeline > /dev/null
    snapshot > "$TMP/after"
    diff -u "$TMP/before" "$TMP/after"
}

@test "search.mk: a train-only key (patience) reruns only amtl-train and amtl-eval" {
    tiny_config
    RUN_ARGS=(BASELINES="mmoe linear")
    pipeline > /dev/null
    snapshot > "$TMP/before"
    set_key patience 1
    run pipeline -n "$TMP/run/results.tsv"
    [ "$status" -eq 0 ]
    [[ "$output" != *amtl-prep* ]]
    [[ "$output" != *amtl-supernet* ]]
    [[ "$output" != *amtl-discretize* ]]
    [[ "$output" == *amtl-train* ]]
    pipeline > /dev/null
    snapshot > "$TMP/after"
    changed "$TMP/before" "$TMP/after" | grep -v '^metrics\.jsonl$' > "$TMP/changed"
    # the export candidates are fine-tuned again, and chosen again (the
    # choice may change with the training: arch.amtl is the chosen one's)
    printf '%s\n' arch.amtl arch.txt candidates.tsv linear.eval.json linear.jsonl linear.model \
        mmoe.eval.json mmoe.jsonl mmoe.model results.tsv \
        searched-0.45.jsonl searched-0.45.model searched-0.45.val.json \
        searched-0.5.jsonl searched-0.5.model searched-0.5.val.json \
        searched-0.55.jsonl searched-0.55.model searched-0.55.val.json \
        searched-linear.jsonl searched-linear.model searched-linear.val.json \
        searched.eval.json searched.jsonl searched.model | diff -u - "$TMP/changed"
    # the same through an override on the command line
    snapshot > "$TMP/before"
    RUN_ARGS=(BASELINES="mmoe linear" SET="patience=2")
    pipeline > /dev/null
    snapshot > "$TMP/after"
    changed "$TMP/before" "$TMP/after" > "$TMP/changed"
    grep -q '^searched\.model$' "$TMP/changed"
    ! grep -q '\.ckpt$\|\.arch$\|^arch-.*\.amtl$\|^data\.amtl$' "$TMP/changed"
}

@test "search.mk: a model key reruns from the first warm-up epoch, not amtl-prep" {
    tiny_config
    RUN_ARGS=(BASELINES="mmoe")
    pipeline > /dev/null
    snapshot > "$TMP/before"
    set_key expert_width 6
    pipeline > /dev/null
    snapshot > "$TMP/after"
    changed "$TMP/before" "$TMP/after" > "$TMP/changed"
    ! grep -q '^data\.amtl$' "$TMP/changed"
    for f in warmup-1.ckpt search-1.ckpt search-2.ckpt frozen.ckpt arch.amtl searched.model \
             mmoe.arch mmoe.model results.tsv; do
        grep -q "^$f\$" "$TMP/changed" || { echo "$f was not redone"; false; }
    done
}

@test "search.mk: a search key (discretize_ops) keeps the warm-up, a data key redoes amtl-prep" {
    tiny_config
    RUN_ARGS=(BASELINES=)
    pipeline search > /dev/null
    snapshot > "$TMP/before"
    set_key discretize_ops 2
    pipeline search > /dev/null
    snapshot > "$TMP/after"
    changed "$TMP/before" "$TMP/after" > "$TMP/changed"
    ! grep -q '^data\.amtl$\|^warmup-1\.ckpt$' "$TMP/changed"
    grep -q '^search-1\.ckpt$' "$TMP/changed"
    grep -q '^searched\.model$' "$TMP/changed"
    snapshot > "$TMP/before"
    RUN_ARGS=(BASELINES= DATA_SEED=5)
    pipeline search > /dev/null
    snapshot > "$TMP/after"
    changed "$TMP/before" "$TMP/after" | grep -q '^data\.amtl$'
}

@test "search.mk: a stage killed midway leaves no corrupt file, the next make completes the same" {
    command -v setsid > /dev/null && command -v pgrep > /dev/null || skip "setsid or pgrep missing"
    tiny_config
    # epochs long enough to be caught running
    set_key expert_width 48
    set_key ops "[Identity, MLP-64, MLP-128]"
    RUN_ARGS=(BASELINES= ROWS=40000)
    (cd "$TMP" && exec setsid make --no-print-directory -f "$PIPE/search.mk" CONFIG="$TMP/c.yaml" \
        OUT="$TMP/run" BIN="$AMTL_BIN" "${RUN_ARGS[@]}" search) > "$TMP/log" 2>&1 &
    pgid=$!
    for i in $(seq 1 400); do
        pgrep -g "$pgid" -x amtl-supernet > /dev/null && [ -e "$TMP/run/warmup-1.ckpt" ] && break
        sleep 0.05
    done
    sleep 0.3
    caught=0
    pgrep -g "$pgid" -x amtl-supernet > /dev/null && caught=1
    kill -TERM -- "-$pgid" 2> /dev/null || true
    wait "$pgid" || true
    for i in $(seq 1 200); do pgrep -g "$pgid" > /dev/null || break; sleep 0.05; done
    ! pgrep -g "$pgid" > /dev/null
    [ $caught = 1 ] || { cat "$TMP/log"; skip "amtl-supernet was not caught running"; }
    [ ! -e "$TMP/run/searched.model" ]
    # every file under its final name is whole
    amtl-prep --info "$TMP/run/data.amtl" > /dev/null
    for f in "$TMP"/run/*.ckpt; do
        amtl-discretize -k 0 -o "$TMP/check.ckpt" "$f"
    done
    run pipeline search
    [ "$status" -eq 0 ]
    [ -z "$(find "$TMP/run" -name '*.part' -o -name '*.tmp')" ]
    # the same architecture and scores as a run never stopped
    (cd "$TMP" && make --no-print-directory -f "$PIPE/search.mk" CONFIG="$TMP/c.yaml" \
        OUT="$TMP/ref" BIN="$AMTL_BIN" "${RUN_ARGS[@]}" search) > /dev/null
    amtl-discretize --show --format json "$TMP/run/arch.amtl" > "$TMP/a.json"
    amtl-discretize --show --format json "$TMP/ref/arch.amtl" > "$TMP/b.json"
    diff -u "$TMP/b.json" "$TMP/a.json"
    diff -u <(sed 's/"model":"[^"]*",//' "$TMP/ref/searched.eval.json") \
            <(sed 's/"model":"[^"]*",//' "$TMP/run/searched.eval.json")
}

@test "search.mk: a bad config stops make with the file and line, before any stage runs" {
    printf 'model:\n  opz: [Identity]\n' > "$TMP/c.yaml"
    run --separate-stderr pipeline
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"amtl-prep: error: $TMP/c.yaml:2: unknown key 'opz'; did you mean 'ops'?"* ]]
    [[ "$stderr" == *"cannot split $TMP/c.yaml into stage stamps"* ]]
    [ ! -e "$TMP/run/data.amtl" ]
    # a bad value too: the tools validate the whole config
    printf 'model:\n  dropout: 2\n' > "$TMP/c.yaml"
    run --separate-stderr pipeline
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"amtl-prep: error: key 'dropout' must be in [0, 1), got 2"* ]]
    [ ! -e "$TMP/run/data.amtl" ]
    tiny_config
    run --separate-stderr pipeline OUT="$TMP/a=b"
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"holds a space, '=' or ':'"* ]]
}

@test "search.mk: DATA without labels in the config: single-task models from the dataset's labels" {
    tiny_config
    F="$FIXTURES/eval"
    run --separate-stderr pipeline DATA="$F/train.csv $F/test.csv" SET="batch_size=64" \
        BASELINES="single-task linear"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    R="$TMP/run"
    # the labels click and buy, counted by amtl-prep --info
    grep -qx 'DATA_TASKS := 2' "$R/tasks.mk"
    [ -s "$R/single-task-0.model" ] && [ -s "$R/single-task-1.model" ] && [ ! -e "$R/single-task-2.model" ]
    cut -f 1 "$R/results.tsv" | diff -u <(printf '%s\n' model searched single-task linear) -
    head -n 1 "$R/results.tsv" | grep -q $'^model\tclick AUC\tbuy AUC\tmean AUC\tparams\tsearch s\ttrain s\teval s\twall s\t'
    # single-task: both models' AUC, their seconds summed (two tiny fits can
    # take under 0.05 s together on a fast machine: 0.0 in the table)
    awk -F '\t' '$1 == "single-task" { exit !($2 > 0 && $3 > 0 && $7 ~ /^[0-9]+\.[0-9]$/ && $9 ~ /^[0-9]+\.[0-9]$/ && $9 >= $7) }' "$R/results.tsv" ||
        { head -n 1 "$R/results.tsv"; grep '^single-task' "$R/results.tsv"; false; }
    st_train=$(cat "$R/wall/single-task-0.model.seconds" "$R/wall/single-task-1.model.seconds" | awk '{ s += $1 } END { printf "%.1f", s }')
    [ "$(awk -F '\t' '$1 == "single-task" { print $7 }' "$R/results.tsv")" = "$st_train" ]
    [[ "$output" == *"wall s per stage: prep "* ]]
    # done: nothing to redo, tasks.mk included
    run pipeline -q DATA="$F/train.csv $F/test.csv" SET="batch_size=64" BASELINES="single-task linear" \
        "$R/results.tsv"
    [ "$status" -eq 0 ]
}

@test "search.mk: DATASET, a dataset file made already: no prep stage, the tasks from the file" {
    tiny_config
    amtl-prep --synthetic --rows 2000 --tasks 3 --seed 4 -o "$TMP/d.amtl"
    RUN_ARGS=(DATASET="$TMP/d.amtl" BASELINES="single-task")
    run --separate-stderr pipeline
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    R="$TMP/run"
    [ ! -e "$R/data.amtl" ] && [ ! -e "$R/wall/data.amtl.seconds" ]
    [ -s "$R/single-task-2.model" ] && [ ! -e "$R/single-task-3.model" ]
    [ "$(cut -f 1 "$R/results.tsv" | tr '\n' ' ')" = "model searched single-task " ]
    [[ "$output" != *"wall s per stage: prep"* ]]
    [[ "$output" == *"wall s per stage: supernet warmup-1 "* ]]
    # a new dataset file makes every stage stale
    snapshot > "$TMP/before"
    sleep 1
    amtl-prep --synthetic --rows 2000 --tasks 3 --seed 5 -o "$TMP/d.amtl"
    pipeline > /dev/null
    snapshot > "$TMP/after"
    changed "$TMP/before" "$TMP/after" | grep -q '^warmup-1\.ckpt$'
    # DATA and DATASET together: refused
    run --separate-stderr pipeline DATA="$FIXTURES/eval/train.csv"
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"give DATA (amtl-prep's inputs) or DATASET (a dataset file), not both"* ]]
}

# Whether stamp $1 of $TMP/st has the line $2 / no line "$2: ..." (as
# functions: a plain "! cmd" or "a && b" would not fail the test).
has() { grep -qxF -- "$2" "$TMP/st/$1.yaml"; }
lacks() { ! grep -q -- "^$2:" "$TMP/st/$1.yaml"; }

@test "stage-config: the quality keys go to the stages that read them; finetune_epochs sets the fine-tuning" {
    printf '%s\n' 'data: {min_id_count: 2, dense_transform: log-standardize, trim: true}' \
        'model: {wide: true, wide_init: linear}' 'train: {embedding_l2: 1e-6, linear_l2: [0.1, 1], wide_train: frozen}' 'search:' \
        '  epochs: 20' '  arch_sparsity: 0.1' '  early_stop: logloss' '  min_epochs: 3' \
        '  finetune_epochs: 7' '  retrain_candidates: true' > "$TMP/c.yaml"
    run --separate-stderr "$PIPE/stage-config" "$TMP/c.yaml" "$TMP/st"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    has prep 'min_id_count: 2'
    has prep 'dense_transform: log-standardize'
    has prep 'trim: true'
    lacks train min_id_count
    for s in baseline warmup search frozen; do
        has $s 'wide: true'
        has $s 'wide_init: linear'
    done
    lacks finetune wide
    lacks train wide
    for s in warmup search frozen finetune train; do
        has $s 'embedding_l2: 1e-06'
        has $s 'wide_train: frozen'
    done
    lacks baseline wide_train
    has search 'arch_sparsity: 0.1'
    has choose 'retrain_candidates: true'
    lacks frozen retrain_candidates
    has frozen 'arch_sparsity: 0.1'
    lacks warmup arch_sparsity
    lacks train arch_sparsity
    for s in finetune train; do
        has $s 'early_stop: logloss'
        has $s 'min_epochs: 3'
    done
    has train 'linear_l2: [0.1, 1]'
    lacks finetune linear_l2
    lacks warmup linear_l2
    # fine-tuning: finetune_epochs when set, else epochs minus the supernet's
    grep -qx 'FINETUNE_EPOCHS := 7' "$TMP/st/vars.mk"
    has finetune 'finetune_epochs: 7'
    "$PIPE/stage-config" -s finetune_epochs=0 "$TMP/c.yaml" "$TMP/st"
    grep -qx 'FINETUNE_EPOCHS := 14' "$TMP/st/vars.mk"
    has finetune 'finetune_epochs: 14'
}

@test "stage-config: each stamp holds its stage's keys from the tools; a bad config leaves the stamps" {
    cat > "$TMP/c.yaml" <<'EOF'
# sections, a flow mapping, lists over lines and as items, quotes, comments
data:
  format: csv          # a comment
  sparse: ["a b", c,
           d]
  labels:
    - y1
    - "y2"
train: {batch_size: 64, threads: 2, lr: 1e-3}
search:
  patience: 4
  epochs: 10
model:
  expert_width: 16
EOF
    run --separate-stderr "$PIPE/stage-config" -b "$AMTL_BIN" -s patience=5 -s ops=Identity,MLP-8 \
        -d 9 -x 'prep:input: x.csv' -x 'baseline:op: MLP-8' "$TMP/c.yaml" "$TMP/st"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    printf '%s\n' "# keys of the prep stage" "seed: 9" "format: csv" 'sparse: ["a b", c, d]' \
        "dense: []" "labels: [y1, y2]" "crosses: []" 'delimiter: ","' "trim: false" "split: [0.8, 0.1, 0.1]" \
        "vocab: all" "limit: 0" "min_count: 10" "min_id_count: 5" "dense_transform: none" \
        "# input: x.csv" | diff -u - "$TMP/st/prep.yaml"
    # each stamp is what the tools say of the stage, with its extra lines
    for s in baseline warmup search frozen finetune train choose; do
        amtl-prep --config "$TMP/c.yaml" --set patience=5 --set ops=Identity,MLP-8 \
            --dump-stage $s > "$TMP/want"
        if [ $s = baseline ]; then
            echo "# op: MLP-8" >> "$TMP/want"
        fi
        diff -u "$TMP/want" "$TMP/st/$s.yaml"
    done
    has choose 'linear_margin: 0'
    lacks frozen linear_margin
    has train 'batch_size: 64'
    has train 'lr: 0.001'
    has train 'patience: 5'
    has train 'epochs: 10'
    has warmup 'expert_width: 16'
    has warmup 'ops: [Identity, MLP-8]'
    has warmup 'seed: 2022'
    lacks warmup patience
    # 10 epochs: 2 warm-up, 3 search, 1 frozen (the defaults), 4 fine-tuning
    has finetune 'finetune_epochs: 4'
    grep -qx 'FINETUNE_EPOCHS := 4' "$TMP/st/vars.mk"
    grep -qx 'N_LABELS := 2' "$TMP/st/vars.mk"
    [ -z "$(grep -l '^threads:\|^device:' "$TMP"/st/*.yaml)" ]
    # unchanged keys, however written: no stamp is rewritten
    snap() { find "$TMP/st" -type f -printf '%f %T@\n' | sort; }
    snap > "$TMP/s1"
    sleep 1
    sed -i 's/lr: 1e-3/lr: 0.001/' "$TMP/c.yaml"
    "$PIPE/stage-config" -b "$AMTL_BIN" -s patience=5 -s 'ops=[Identity, MLP-8]' -d 9 \
        -x 'prep:input: x.csv' -x 'baseline:op: MLP-8' "$TMP/c.yaml" "$TMP/st"
    snap > "$TMP/s2"
    diff -u "$TMP/s1" "$TMP/s2"
    # a key the tools do not know: the tool's message and status, no stamp touched
    echo "brand_new_key: 1" >> "$TMP/c.yaml"
    run --separate-stderr "$PIPE/stage-config" -b "$AMTL_BIN" "$TMP/c.yaml" "$TMP/st"
    [ "$status" -eq 2 ]
    [ "$stderr" = "amtl-prep: error: $TMP/c.yaml:15: unknown key 'brand_new_key'" ]
    snap > "$TMP/s3"
    diff -u "$TMP/s1" "$TMP/s3"
    # no tools there
    run --separate-stderr "$PIPE/stage-config" -b "$TMP/nobin" "$TMP/c.yaml" "$TMP/st"
    [ "$status" -eq 1 ]
    [ "$stderr" = "stage-config: error: no $TMP/nobin/amtl-prep: build the tools first (make)" ]
}

@test "configs: every shipped config splits without a warning; demo.mk plans the demo" {
    for c in "$REPO"/configs/*.yaml; do
        run --separate-stderr "$PIPE/stage-config" "$c" "$TMP/st"
        [ "$status" -eq 0 ] || { echo "$c: $stderr"; false; }
        [ -z "$stderr" ] || { echo "$c: $stderr"; false; }
    done
    run --separate-stderr make --no-print-directory -f "$PIPE/demo.mk" -C "$REPO" -n \
        OUT="$TMP/demo" BIN="$AMTL_BIN"
    [ "$status" -eq 0 ]
    [ "$(grep -c 'amtl-supernet' <<<"$output")" -eq 6 ]
    [ "$(grep -c -- '--baseline single-task:' <<<"$output")" -eq 4 ]
    [[ "$output" == *"--rows 100000"* ]]
    [[ "$output" == *"--epochs 12"* ]]
    [ ! -e "$TMP/demo/data.amtl" ]
}

@test "configs: the data-set configs run the pipeline on the recipe samples" {
    P="$FIXTURES/prep"
    TINY="batch_size=64 ops=[Identity,MLP-8] embedding_dim=4 n_experts=2 expert_width=8 tower_layers=[8] epochs=4 warmup_epochs=1 full_arch_train_epochs=1"
    specs=("userbehavior|$P/userbehavior.csv|min_count=3|4"
           "ijcai15|$P/ijcai15_user_log.csv $P/ijcai15_user_info.csv|min_count=3|2"
           "kuairand|$P/kuairand_log_random.csv $P/kuairand_user_features.csv $P/kuairand_video_features_basic.csv||7"
           "qb-video|$P/qbvideo.csv|min_count=5|4")
    if [ -d "$SHARED_DATA/ali-ccp" ]; then
        d="$SHARED_DATA/ali-ccp"
        specs+=("ali-ccp|$d/ali_ccp_train_sample.csv $d/ali_ccp_val_sample.csv $d/ali_ccp_test_sample.csv||2")
    fi
    for spec in "${specs[@]}"; do
        IFS='|' read -r name data extra tasks <<<"$spec"
        run --separate-stderr make --no-print-directory -f "$PIPE/search.mk" \
            CONFIG="$REPO/configs/$name.yaml" DATA="$data" OUT="$TMP/$name" BIN="$AMTL_BIN" \
            SET="$TINY $extra" BASELINES="single-task linear"
        [ "$status" -eq 0 ] || { echo "$name: $stderr"; false; }
        [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["tasks"]))' "$TMP/$name/searched.eval.json")" -eq "$tasks" ]
        [ -s "$TMP/$name/single-task-$((tasks - 1)).model" ]
    done
}

@test "plots.mk: training curves and the architecture of a run" {
    command -v gnuplot > /dev/null || skip "gnuplot not installed (Debian package gnuplot-nox)"
    tiny_config
    RUN_ARGS=(BASELINES="mmoe single-task")
    pipeline > /dev/null
    run --separate-stderr make --no-print-directory -f "$PIPE/plots.mk" RUN="$TMP/run" BIN="$AMTL_BIN"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    for p in loss auc entropy models; do
        [ "$(head -c 4 "$TMP/run/plots/$p.png" | tail -c 3)" = PNG ] || { echo "$p.png is not a PNG"; false; }
    done
    if command -v dot > /dev/null; then
        grep -q '<svg' "$TMP/run/plots/arch.svg"
    fi
    [ -z "$(find "$TMP/run/plots" -name '*.tmp')" ]
    # SVG curves as well
    run make --no-print-directory -f "$PIPE/plots.mk" RUN="$TMP/run" BIN="$AMTL_BIN" FORMAT=svg
    [ "$status" -eq 0 ]
    grep -q '<svg' "$TMP/run/plots/auc.svg"
}

@test "plots.mk: without gnuplot or dot it says which package to install and succeeds" {
    tiny_config
    RUN_ARGS=(BASELINES=)
    pipeline search > /dev/null
    run --separate-stderr make --no-print-directory -f "$PIPE/plots.mk" RUN="$TMP/run" BIN="$AMTL_BIN" \
        GNUPLOT= DOT=
    [ "$status" -eq 0 ]
    [[ "$output" == *"install the Debian package gnuplot-nox"* ]]
    [[ "$output" == *"install the Debian package graphviz"* ]]
    [ ! -e "$TMP/run/plots/loss.png" ]
    # no run there: a clear error
    run --separate-stderr make --no-print-directory -f "$PIPE/plots.mk" RUN="$TMP/none" BIN="$AMTL_BIN"
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"no $TMP/none/metrics.jsonl: run the pipeline first"* ]]
}

@test "crosses.sh: every pair of sparse fields by the floor's validation AUC, the data as it is first" {
    E="$FIXTURES/eval"
    run --separate-stderr "$PIPE/crosses.sh" --out "$TMP/cx" --bin "$AMTL_BIN" "$E/train.csv" "$E/test.csv"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    T="$TMP/cx/crosses.tsv"
    head -n 1 "$T" | grep -q $'^cross\tids\tclick\tbuy\tval mean AUC\tgain\tseconds$'
    [ "$(wc -l < "$T")" -eq 5 ]
    [ "$(sed -n 2p "$T" | cut -f 1,2,6)" = $'-\t-\t+0.0000' ]
    # the three pairs, by gain, best first; gain = its mean - the data's
    [ "$(tail -n +3 "$T" | cut -f 1 | sort | tr '\n' ' ')" = "item*colour user*colour user*item " ]
    awk -F '\t' 'NR == 2 { b = $5 } NR > 2 { g = sprintf("%+.4f", $5 - b); if (g != $6) exit 1
                 if (NR > 3 && $6 + 0 > prev + 0) exit 1; prev = $6 }' "$T"
    # a row is what prep with the cross and the floor give on their own
    best=$(sed -n 3p "$T" | cut -f 1)
    amtl-prep --set "crosses=[$best]" -o "$TMP/d.amtl" "$E/train.csv" "$E/test.csv"
    amtl-discretize --baseline linear --data "$TMP/d.amtl" -o "$TMP/l.arch"
    amtl-train --data "$TMP/d.amtl" --arch "$TMP/l.arch" --quiet --metrics "$TMP/l.jsonl" -o "$TMP/l.model" > /dev/null
    want=$(sed 's/.*"val_mean_auc":\([0-9.]*\).*/\1/' "$TMP/l.jsonl")
    [ "$(sed -n 3p "$T" | cut -f 5)" = "$want" ]
    [ "$(sed -n 3p "$T" | cut -f 2)" = "$(amtl-prep --info "$TMP/d.amtl" | awk -v f="$best" '$1 == f && $2 == "sparse" { print $3 }')" ]
    [ -z "$(find "$TMP/cx" -name '*.tmp' -o -name '.rows')" ]
    # a cross the config has already: not tried again, kept in every row
    printf 'data:\n  crosses: ["item*colour"]\n' > "$TMP/c.yaml"
    run --separate-stderr "$PIPE/crosses.sh" --config "$TMP/c.yaml" --fields "colour item" \
        --out "$TMP/cx2" --bin "$AMTL_BIN" "$E/train.csv" "$E/test.csv"
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"colour*item ... in the config already"* ]]
    [ "$(tail -n +2 "$TMP/cx2/crosses.tsv" | cut -f 1 | tr '\n' ' ')" = "- " ]
    # usage errors
    run --separate-stderr "$PIPE/crosses.sh" --out "$TMP/cx3" --bin "$AMTL_BIN"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"crosses.sh: error: no input files"* ]]
    run --separate-stderr "$PIPE/crosses.sh" --fields "user price" --out "$TMP/cx3" --bin "$AMTL_BIN" "$E/train.csv"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--fields: 'price' is not a sparse field of the data (user item colour)"* ]]
}

@test "sweep.sh: seeds x values, one TSV row per run, written whole" {
    tiny_config
    # the searched model a deep one in every run (the linear fit does not
    # depend on the training seed)
    echo "  linear_candidate: false" >> "$TMP/c.yaml"
    run --separate-stderr "$PIPE/sweep.sh" --config "$TMP/c.yaml" --rows 2000 --seeds "1 2" \
        --set gate_mode=sample,reference --out "$TMP/sw" --bin "$AMTL_BIN"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    T="$TMP/sw/sweep.tsv"
    head -n 1 "$T" | grep -q $'^run\tseed\tgate_mode\ttask0 AUC\ttask1 AUC\ttask2 AUC\ttask3 AUC\tmean AUC\tparams\tsearch s\ttrain s\teval s\twall s\tarch\tmodel\tstatus$'
    cut -f 1-3 "$T" | tail -n +2 > "$TMP/rows"
    printf 's1-gate_mode-sample\t1\tsample\ns1-gate_mode-reference\t1\treference\n' > "$TMP/want"
    printf 's2-gate_mode-sample\t2\tsample\ns2-gate_mode-reference\t2\treference\n' >> "$TMP/want"
    diff -u "$TMP/want" "$TMP/rows"
    [ "$(awk -F '\t' 'NR > 1 && $NF == "ok" && $8 > 0 && $8 < 1' "$T" | wc -l)" -eq 4 ]
    # the two seeds differ, the same seed twice does not
    [ "$(cut -f 8 "$T" | tail -n +2 | sort -u | wc -l)" -gt 1 ]
    [ -z "$(find "$TMP/sw" -maxdepth 1 -name '.sweep-rows*' -o -maxdepth 1 -name '*.tmp')" ]
    # checkpoints of the warm-up and search are pruned, the runs stay whole
    [ -z "$(find "$TMP/sw" -name 'warmup-*.ckpt')" ]
    [ -s "$TMP/sw/s2-gate_mode-reference/searched.model" ]
    # rerun: nothing to redo, the same table
    cp "$T" "$TMP/first.tsv"
    run --separate-stderr "$PIPE/sweep.sh" --config "$TMP/c.yaml" --rows 2000 --seeds "1 2" \
        --set gate_mode=sample,reference --out "$TMP/sw" --bin "$AMTL_BIN"
    [ "$status" -eq 0 ]
    diff -u "$TMP/first.tsv" "$T"
}

@test "sweep.sh: a failing run is a row marked failed, exit 1; usage errors exit 2" {
    tiny_config
    run --separate-stderr "$PIPE/sweep.sh" --config "$TMP/c.yaml" --rows 2000 --seeds 1 \
        --set gate_mode=bogus,sample --out "$TMP/sw" --bin "$AMTL_BIN"
    [ "$status" -eq 1 ]
    [ "$(cut -f 1,3 "$TMP/sw/sweep.tsv" | tail -n +2)" = "$(printf 's1-gate_mode-bogus\tbogus\ns1-gate_mode-sample\tsample')" ]
    awk -F '\t' 'NR == 2 { exit !($NF == "failed" && $4 == "n/a" && NF == 16) }' "$TMP/sw/sweep.tsv"
    awk -F '\t' 'NR == 3 { exit !($NF == "ok" && NF == 16) }' "$TMP/sw/sweep.tsv"
    [[ "$stderr" == *"FAILED (see $TMP/sw/s1-gate_mode-bogus.log)"* ]]
    run --separate-stderr "$PIPE/sweep.sh" --no-such-option
    [ "$status" -eq 2 ]
    [[ "$stderr" == "sweep.sh: error: unknown option '--no-such-option'"* ]]
    run --separate-stderr "$PIPE/sweep.sh" --seeds x
    [ "$status" -eq 2 ]
    run --separate-stderr "$PIPE/sweep.sh" --help
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "Usage: pipelines/sweep.sh [options]" ]]
}

# A tiny quality run: the synthetic long-tail data, the tiny config.
quality() {
    (cd "$REPO" && make --no-print-directory -f "$PIPE/quality.mk" DATASETS=zipf CONFIG_zipf="$TMP/c.yaml" \
        OUT="$TMP/q" BIN="$AMTL_BIN" ROWS=2000 "$@")
}

@test "quality.mk: data sets x seeds, every model, one TSV row per model and seed, tables with the floor" {
    tiny_config
    printf 'data:\n  min_id_count: 2\n' >> "$TMP/c.yaml"
    run --separate-stderr quality SEEDS="1 2" BASELINES="mmoe single-task linear"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    Q="$TMP/q"
    # each seed: its own data (amtl-prep --seed) and its own training seed
    ! cmp -s "$Q/zipf/s1/data.amtl" "$Q/zipf/s2/data.amtl"
    grep -q -- '--seed 2 --synthetic --synthetic-kind zipf --rows 2000' "$Q/zipf/s2/prep-args"
    # the training config's data keys go to amtl-prep too
    grep -q -- '--set min_id_count=2 --seed 2' "$Q/zipf/s2/prep-args"
    amtl-prep --info "$Q/zipf/s2/data.amtl" | grep -q '^min_id_count  *2$'
    grep -qx 'seed: 2' "$Q/zipf/s2/stamps/train.yaml"
    grep -qx 'seed: 1' "$Q/zipf/s1/stamps/warmup.yaml"
    [ -s "$Q/zipf/s2/wall/data.amtl.seconds" ]
    # the TSV: a header, 2 seeds x (searched, mmoe, single-task, linear)
    head -n 1 "$Q/quality.tsv" | grep -qx $'dataset\tmodel\tseed\ttask0 AUC\ttask1 AUC\ttask2 AUC\tmean AUC\tparams\tsearch s\ttrain s\teval s\twall s\tprep s\ttest rows'
    tail -n +2 "$Q/quality.tsv" | cut -f 1-3 > "$TMP/rows"
    printf 'zipf\t%s\t1\n' searched mmoe single-task linear > "$TMP/want"
    printf 'zipf\t%s\t2\n' searched mmoe single-task linear >> "$TMP/want"
    diff -u "$TMP/want" "$TMP/rows"
    awk -F '\t' 'NR > 1 && !($7 > 0 && $7 < 1 && $12 > 0 && $14 == 200) { exit 1 }' "$Q/quality.tsv" ||
        { cat "$Q/quality.tsv"; false; }
    # the report: one table per data set, the floor in it, a finding line under it
    M="$Q/quality.md"
    grep -qx '## zipf' "$M"
    grep -qx '| model | task0 | task1 | task2 | mean test AUC | min–max | wall s |' "$M"
    grep -q '^| searched | 0\.[0-9]* | 0\.[0-9]* | 0\.[0-9]* | 0\.[0-9]* ± 0\.[0-9]* | 0\.[0-9]*–0\.[0-9]* | [0-9.]* |$' "$M"
    grep -q '^| linear floor | ' "$M"
    grep -q '^| MMoE | ' "$M" && grep -q '^| single-task | ' "$M"
    grep -q '^\*\*Finding:\*\* below the linear floor\|^Every deep model clears the linear floor' "$M"
    grep -q 'sample standard deviation over the seeds' "$M"
    grep -q '^Not measured: ali-ccp, aliexpress, census-income — .*format tests only' "$M"
    # the searched model against each baseline but single-task, paired on the
    # test rows: each seed's difference is the two models' test AUCs' and the
    # table shows it, and their mean over the seeds
    for s in 1 2; do
        [ -s "$Q/zipf/s$s/searched.vs-mmoe.json" ] && [ -s "$Q/zipf/s$s/searched.vs-linear.json" ]
        [ ! -e "$Q/zipf/s$s/searched.vs-single-task.json" ]
    done
    python3 - "$Q" "$M" <<'EOF'
import json, sys
q, md = sys.argv[1], open(sys.argv[2]).read()
assert "Searched minus each baseline on the same test rows" in md
diffs = []
for s in (1, 2):
    vs = json.load(open("%s/zipf/s%d/searched.vs-mmoe.json" % (q, s)))
    a = json.load(open("%s/zipf/s%d/searched.eval.json" % (q, s)))["mean_auc"]
    b = json.load(open("%s/zipf/s%d/mmoe.eval.json" % (q, s)))["mean_auc"]
    d, se = vs["against"]["mean_auc_diff"], vs["against"]["diff_se"]
    assert abs(vs["mean_auc"] - a) < 1e-6 and abs(vs["against"]["against_mean_auc"] - b) < 1e-6
    assert abs(d - (a - b)) < 2e-6 and se > 0, (d, a - b, se)
    diffs.append((d, se))
row = [l for l in md.splitlines() if l.startswith("| MMoE | %+.4f ± %.4f | " % diffs[0])]
assert len(row) == 1, md
cells = row[0].split(" | ")
assert cells[2] == "%+.4f ± %.4f" % diffs[1], cells
mean = (diffs[0][0] + diffs[1][0]) / 2
se = (diffs[0][1] ** 2 + diffs[1][1] ** 2) ** 0.5 / 2
assert cells[3] == "%+.4f ± %.4f" % (mean, se), (cells, mean, se)
assert not [l for l in md.splitlines() if l.startswith("| single-task | +") or l.startswith("| single-task | -")]
EOF
    [[ "$output" == *"## zipf"* ]]
    # done: a second run redoes nothing and writes the same tables
    cp "$Q/quality.tsv" "$TMP/first.tsv"
    find "$Q/zipf" -type f ! -path '*/config-keys/*' -printf '%p %T@\n' | sort > "$TMP/before"
    run --separate-stderr quality SEEDS="1 2" BASELINES="mmoe single-task linear"
    [ "$status" -eq 0 ]
    find "$Q/zipf" -type f ! -path '*/config-keys/*' -printf '%p %T@\n' | sort > "$TMP/after"
    diff -u "$TMP/before" "$TMP/after"
    diff -u "$TMP/first.tsv" "$Q/quality.tsv"
}

@test "quality.mk VALIDATION=1: the candidates and the baselines trained, nothing scored on test, the choice judged on validation halves" {
    tiny_config
    run --separate-stderr quality SEEDS="1 2" VALIDATION=1
    Q="$TMP/q"
    for s in 1 2; do
        for f in data.amtl candidates.tsv searched-linear.model mmoe.model ple.model shared-bottom.model; do
            [ -s "$Q/zipf/s$s/$f" ] || { echo "no $f in s$s"; false; }
        done
        grep -q '^linear' "$Q/zipf/s$s/candidates.tsv"
        # no model scored on the test split, no single-task model, no report
        [ -z "$(find "$Q/zipf/s$s" -name '*.eval.json' -o -name '*.vs-*.json' -o -name 'results.tsv')" ]
        [ ! -e "$Q/zipf/s$s/single-task-0.model" ]
    done
    [ ! -e "$Q/quality.md" ] && [ ! -e "$Q/quality.tsv" ]
    if python3 -c 'import numpy' 2>/dev/null; then
        [ "$status" -eq 0 ] || { echo "$stderr"; false; }
        [[ "$output" == *"zipf: 2 seeds, 200 random halves each; chosen model's mean AUC on half B minus"* ]]
        grep -q '^Z=0  *[-+]0\.[0-9]* ± 0\.[0-9]* (' <<<"$output"
    else
        # python3-numpy missing: said, after the runs
        [ "$status" -ne 0 ]
        [[ "$stderr" == *"quality: VALIDATION=1 scores with bench/quality/candidate-choice.py, which needs numpy in python3 (Debian's python3-numpy, which make deps installs)"* ]]
    fi
    # a later make quality on the same runs trains only what is left: the
    # single-task models, then scores every model on test
    run --separate-stderr quality SEEDS="1" BASELINES="mmoe linear"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    [[ "$output" != *"choose "* ]] && [[ "$output" != *"train     $Q/zipf/s1/mmoe.model"* ]]
    [ -s "$Q/zipf/s1/searched.eval.json" ] && [ -s "$Q/quality.md" ]
}

@test "quality.mk: a deep model below the floor is a finding line under its table" {
    # one seed, the floor and a model with next to no training
    tiny_config
    run --separate-stderr quality SEEDS=1 BASELINES="mmoe linear" SET="epochs=1 warmup_epochs=0 full_arch_train_epochs=0 lr=1e-6"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    M="$TMP/q/quality.md"
    floor=$(awk -F '\t' '$2 == "linear" { print $7 }' "$TMP/q/quality.tsv")
    below=0
    for m in searched:searched mmoe:MMoE; do
        v=$(awk -F '\t' -v m="${m%%:*}" '$2 == m { print $7 }' "$TMP/q/quality.tsv")
        if awk -v a="$v" -v b="$floor" 'BEGIN { exit !(a < b) }'; then
            below=1
            grep -q "^\*\*Finding:\*\* below the linear floor (mean test AUC $floor): .*${m#*:} $v (below in 1 of 1 seeds)" "$M"
        else
            ! grep -q "^\*\*Finding:\*\* .*${m#*:} $v" "$M"
        fi
    done
    if [ $below = 0 ]; then
        grep -q '^Every deep model clears the linear floor' "$M"
    fi
    grep -q 'Overrides for every run: `epochs=1 warmup_epochs=0 full_arch_train_epochs=0 lr=1e-6`' "$M"
}

@test "quality.mk: the real sets are planned with their configs; the tiny samples and bad settings are refused" {
    need_shared_data
    # make -n: the commands, none run (QUICK: 3000 rows of each input)
    run --separate-stderr make --no-print-directory -C "$REPO" -n -f "$PIPE/quality.mk" QUICK=1 OUT="$TMP/q" \
        BIN="$AMTL_BIN" SHARED="$SHARED_DATA" SEEDS="1 3"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    [[ "$output" == *"bench/quality/tianchi-ecomm.py $SHARED_DATA/tianchi-ecomm $TMP/q/tianchi-ecomm/tianchi-ecomm.csv.tmp"* ]]
    grep -q -- "amtl-prep --config configs/adult.yaml .*--seed 3 --limit 3000 $SHARED_DATA/adult/adult.data.gz $SHARED_DATA/adult/adult.test.gz -o $TMP/q/adult/s3/data.amtl.part" <<<"$output"
    grep -q -- "amtl-prep --config configs/tianchi-ecomm.yaml .*--seed 1 --limit 3000 $TMP/q/tianchi-ecomm/tianchi-ecomm.csv -o" <<<"$output"
    grep -q -- "search.mk .*CONFIG='configs/quality-adult.yaml' DATASET='$TMP/q/adult/s3/data.amtl'" <<<"$output"
    [ ! -e "$TMP/q/adult/s1/data.amtl" ]
    # refused before anything runs
    run --separate-stderr make --no-print-directory -C "$REPO" -f "$PIPE/quality.mk" DATASETS="adult ali-ccp" OUT="$TMP/q2"
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"ali-ccp: samples of at most 100 rows in ../shared/data, format tests only (tests/bats); too small to measure quality"* ]]
    run --separate-stderr make --no-print-directory -C "$REPO" -f "$PIPE/quality.mk" DATASETS=zipf SEEDS="1 x" OUT="$TMP/q2"
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"a seed is a number: SEEDS '1 x'"* ]]
    run --separate-stderr make --no-print-directory -C "$REPO" -f "$PIPE/quality.mk" DATASETS=zipf CONFIG_zipf="$TMP/none.yaml" OUT="$TMP/q2"
    [ "$status" -ne 0 ]
    [[ "$stderr" == *"zipf: $TMP/none.yaml is missing (the training config of make quality)"* ]]
    [ ! -e "$TMP/q2" ]
}
