#!/usr/bin/env bats
# amtl-prep --synthetic --synthetic-kind zipf: long-tailed ids whose per-id
# effects carry most of the signal (the real-data failure of issue 14 in CI
# sizes): its shape, positive rates, the long tail, the recorded structure,
# determinism, and the flag's usage errors.
bats_require_minimum_version 1.5.0
load helpers

COLUMN="$FIXTURES/prep/dataset-column.py"

# rows of train, val and test
rows_of() {
    amtl-prep --info "$1" | awk '$1 == "train" || $1 == "val" || $1 == "test" { printf "%s ", $2 } END { print "" }' |
        sed 's/ $//'
}

# The ids of a sparse field over every split, one a line.
ids_of() {
    for s in train val test; do
        python3 "$COLUMN" "$1" "$s.sparse.$2"
    done
}

@test "zipf: fields, tasks, 80/10/10 split and positive rates near 15/8/5 %" {
    run --separate-stderr amtl-prep --synthetic --synthetic-kind zipf --rows 20000 --seed 3 -o "$TMP/z.amtl"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "$(rows_of "$TMP/z.amtl")" = "16000 2000 2000" ]
    run amtl-prep --info "$TMP/z.amtl"
    [ "$status" -eq 0 ]
    [ "$(awk '$1 == "source" { $1 = ""; print substr($0, 2) }' <<<"$output")" = "synthetic kind=zipf rows=20000 tasks=3 seed=3" ]
    awk '$2 == "sparse" { print $1 }' <<<"$output" > "$TMP/sparse"
    printf '%s\n' user_id item_id shop_id age category city noise_id | diff -u - "$TMP/sparse"
    [ "$(awk '$2 == "dense"' <<<"$output" | wc -l)" -eq 2 ]
    [ "$(awk '$2 == "label" { printf "%s ", $1 }' <<<"$output")" = "task0 task1 task2 " ]
    # train positive rates within 1.5 points of the targets (16000 rows: sd < 0.3 points)
    awk '$1 ~ /^task[0-2]$/ && NF == 4 { t[$1] = $2 }
         END { exit !(t["task0"] > .135 && t["task0"] < .165 && t["task1"] > .065 && t["task1"] < .095 &&
                      t["task2"] > .035 && t["task2"] < .065) }' <<<"$output"
    # --tasks: up to 8 tasks, each with a rare positive rate
    amtl-prep --synthetic --synthetic-kind zipf --rows 5000 --tasks 8 -o "$TMP/z8.amtl"
    run amtl-prep --info "$TMP/z8.amtl"
    [ "$(awk '$2 == "label"' <<<"$output" | wc -l)" -eq 8 ]
    [ "$(awk '$1 ~ /^task[0-7]$/ && NF == 4 && $2 > 0.01 && $2 < 0.2' <<<"$output" | wc -l)" -eq 8 ]
}

@test "zipf: a long tail: most ids of the high-cardinality fields are rare, many seen once" {
    # every id kept (the default min_id_count folds the tail into row 0)
    amtl-prep --synthetic --synthetic-kind zipf --rows 20000 --seed 3 --set min_id_count=0 -o "$TMP/z.amtl"
    for f in user_id item_id shop_id; do
        ids_of "$TMP/z.amtl" "$f" | sort | uniq -c | awk '{ print $1 }' > "$TMP/counts"
        # values, values seen once, rows of the most frequent value
        read -r n once top < <(awk '{ n++; if ($1 == 1) once++; if ($1 > top) top = $1 }
                                    END { print n, once, top }' "$TMP/counts")
        echo "$f: $n values, $once seen once, the most frequent in $top rows"
        [ "$n" -ge 1000 ]
        # the tail: at least a third of the values seen once ...
        [ $((once * 3)) -ge "$n" ]
        # ... and the head: the most frequent value in 100 times the mean's rows or more
        [ $((top * n)) -ge $((100 * 20000)) ]
        # the metadata count the same: "field values seen once"
        python3 "$COLUMN" "$TMP/z.amtl" meta synthetic.id_counts | grep -qx "$f [0-9]* $n $once"
    done
    # the low-cardinality fields are small
    [ "$(ids_of "$TMP/z.amtl" age | sort -u | wc -l)" -le 8 ]
    [ "$(ids_of "$TMP/z.amtl" category | sort -u | wc -l)" -le 30 ]
}

@test "zipf: the structure is in the meta: fields, related tasks, id signal share, oracle AUC" {
    amtl-prep --synthetic --synthetic-kind zipf --rows 20000 --seed 3 -o "$TMP/z.amtl"
    meta() { python3 "$COLUMN" "$TMP/z.amtl" meta "$1"; }
    [ "$(meta synthetic.kind)" = zipf ]
    [ "$(meta synthetic.task_fields | head -n 1)" = "task0 user_id item_id shop_id age category city dense_0" ]
    [ "$(meta synthetic.noise_fields)" = "$(printf 'noise_id\ndense_1')" ]
    [ "$(meta synthetic.related_tasks)" = "task0 task1 task2" ]
    # the ids carry most of the signal
    [ "$(meta synthetic.id_signal_share | awk '$2 > 0.7 && $2 < 1' | wc -l)" -eq 3 ]
    # positive rates: target and measured over all rows
    meta synthetic.positive_rates | awk '{ d = $2 - $3; if (d < 0) d = -d; if (d > 0.02) exit 1 }'
    [ "$(meta synthetic.positive_rates | cut -d ' ' -f 1,2)" = "$(printf 'task0 0.1500\ntask1 0.0800\ntask2 0.0500')" ]
    # the true logits' AUC: well above chance, below 1
    [ "$(meta synthetic.oracle_auc | awk '$2 > 0.7 && $2 < 0.95' | wc -l)" -eq 3 ]
}

@test "zipf: deterministic: same seed, same bytes; another seed differs; the latent kind is the default" {
    amtl-prep --synthetic --synthetic-kind zipf --rows 3000 --seed 11 -o "$TMP/a.amtl"
    amtl-prep --synthetic --synthetic-kind zipf --rows 3000 --seed 11 -o - > "$TMP/b.amtl"
    amtl-prep --synthetic --synthetic-kind zipf --rows 3000 --seed 12 -o "$TMP/c.amtl"
    cmp "$TMP/a.amtl" "$TMP/b.amtl"
    ! cmp -s "$TMP/a.amtl" "$TMP/c.amtl"
    # the seed from the config, as for every tool
    printf 'train:\n  seed: 11\n' > "$TMP/c.yaml"
    amtl-prep --config "$TMP/c.yaml" --synthetic --synthetic-kind zipf --rows 3000 -o "$TMP/d.amtl"
    cmp "$TMP/a.amtl" "$TMP/d.amtl"
    amtl-prep --synthetic --rows 3000 --seed 11 -o "$TMP/l1.amtl"
    amtl-prep --synthetic --synthetic-kind latent --rows 3000 --seed 11 -o "$TMP/l2.amtl"
    cmp "$TMP/l1.amtl" "$TMP/l2.amtl"
    ! cmp -s "$TMP/a.amtl" "$TMP/l1.amtl"
}

@test "zipf: usage errors exit 2 and write nothing" {
    run --separate-stderr amtl-prep --synthetic --synthetic-kind gamma -o "$TMP/z.amtl"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: --synthetic-kind is latent, zipf or aliccp, not 'gamma'"* ]]
    run --separate-stderr amtl-prep --synthetic-kind zipf -o "$TMP/z.amtl"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: --synthetic-kind goes with --synthetic"* ]]
    run --separate-stderr amtl-prep --synthetic --synthetic-kind zipf --tasks 9 -o "$TMP/z.amtl"
    [ "$status" -eq 2 ]
    run --separate-stderr amtl-prep --synthetic --synthetic-kind zipf -o "$TMP/z.amtl" extra.csv
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: --synthetic takes no input files"* ]]
    [ ! -e "$TMP/z.amtl" ]
}

@test "aliccp: Ali-CCP's shape (23 sparse fields, 8 dense, click and purchase), a purchase only on a click, seeded" {
    amtl-prep --synthetic --synthetic-kind aliccp --rows 20000 --seed 4 -o "$TMP/a.amtl"
    amtl-prep --synthetic --synthetic-kind aliccp --rows 20000 --seed 4 -o "$TMP/b.amtl"
    cmp "$TMP/a.amtl" "$TMP/b.amtl"
    run amtl-prep --info "$TMP/a.amtl"
    [ "$status" -eq 0 ]
    [ "$(grep -c ' sparse ' <<< "$output")" -eq 23 ]
    [ "$(grep -c ' dense ' <<< "$output")" -eq 8 ]
    grep -Eq '^101 +sparse ' <<< "$output"
    grep -Eq '^D853 +dense ' <<< "$output"
    # rates: click about 4%, purchase below it
    read -r _ c _ <<< "$(grep -E '^click +0\.' <<< "$output")"
    read -r _ p _ <<< "$(grep -E '^purchase +0\.' <<< "$output")"
    python3 -c "import sys; c, p = float('$c'), float('$p'); sys.exit(not (0.03 < c < 0.05 and 0 < p < c))"
    # every purchase is on a clicked row
    local col=tests/fixtures/prep/dataset-column.py
    for s in train val test; do
        paste <(python3 $col "$TMP/a.amtl" $s.label.click) <(python3 $col "$TMP/a.amtl" $s.label.purchase) \
            > "$TMP/cp"
        [ "$(awk '$2 > $1' "$TMP/cp" | wc -l)" -eq 0 ]
        [ "$(awk '$2 == 1' "$TMP/cp" | wc -l)" -gt 0 ]
    done
    run --separate-stderr amtl-prep --synthetic --synthetic-kind aliccp --tasks 3 -o "$TMP/x.amtl"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: --synthetic-kind aliccp has 2 tasks (click, purchase), not 3"* ]]
    [ ! -e "$TMP/x.amtl" ]
}
