#!/usr/bin/env bats
# amtl-train and amtl-eval: searched and baseline models side by side, early
# stopping, metrics against the predictions, --predict in pipelines, errors.
bats_require_minimum_version 1.5.0
load helpers

MODEL="--set batch_size=64 --set ops=[Identity,MLP-8,MLP-16] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8]"
SMALL="$MODEL --quiet"
EVAL="$FIXTURES/eval"

# The fixture CSVs as a dataset: the test split is test.csv, in its order.
fixture_data() {
    # every id kept: the tests read ids and their values
    amtl-prep --set min_id_count=0 -o "$TMP/f.amtl" "$EVAL/train.csv" "$EVAL/test.csv"
}

# An MMoE trained on it; extra arguments go to amtl-train.
fixture_model() {
    fixture_data
    amtl-discretize --baseline mmoe --data "$TMP/f.amtl" $MODEL -o "$TMP/mmoe.arch"
    amtl-train --data "$TMP/f.amtl" --arch "$TMP/mmoe.arch" $SMALL --set lr=0.01 "$@" \
        -o "$TMP/m.model" > "$TMP/train.jsonl"
}

synthetic_data() {
    amtl-prep --synthetic --rows 1500 --seed 3 -o "$TMP/d.amtl"
}

@test "amtl-train: missing and conflicting flags are usage errors" {
    run --separate-stderr amtl-train --data x
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"amtl-train: error: --data, --arch and -o are required"* ]]
    run --separate-stderr amtl-train --data x --arch y --init z --from-scratch -o m
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--init and --from-scratch exclude each other"* ]]
    run --separate-stderr amtl-train --data x --arch y --patience 0 -o m
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--patience wants a positive count, got '0'"* ]]
    [ -z "$output" ]
}

@test "amtl-eval: missing and conflicting flags are usage errors" {
    run --separate-stderr amtl-eval --data x
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"amtl-eval: error: --model is required"* ]]
    run --separate-stderr amtl-eval --model m
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--data or --predict is required"* ]]
    run --separate-stderr amtl-eval --model m --data d --predict
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--predict excludes --data, --split, --json, --scores, --device and --against"* ]]
    run --separate-stderr amtl-eval --model m --data d --header
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--header and --delimiter go with --predict"* ]]
    run --separate-stderr amtl-eval --model m --predict --delimiter ab
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--delimiter wants one character or 'tab', got 'ab'"* ]]
    run --separate-stderr amtl-eval --model - --predict
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"the model and the rows cannot both come from stdin"* ]]
    run --separate-stderr amtl-eval --model m --predict a.csv b.csv
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"unexpected argument 'b.csv'"* ]]
    run --separate-stderr amtl-eval --model m --data d --scores --json
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--scores excludes --json and --against"* ]]
    run --separate-stderr amtl-eval --model m --predict --scores
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--predict excludes"*"--scores"* ]]
    run --separate-stderr amtl-eval --model m --data d --split nope
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"unknown split 'nope' (train, val or test)"* ]]
    [ -z "$output" ]
}

@test "searched model and baselines trained and scored side by side" {
    synthetic_data
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/w.ckpt" > /dev/null
    amtl-supernet --data "$TMP/d.amtl" $SMALL --init "$TMP/w.ckpt" --phase search --epochs 1 \
        --set discretize_ops=3 -o "$TMP/s.ckpt" > /dev/null
    amtl-discretize --export -o "$TMP/searched.arch" "$TMP/s.ckpt"
    models="searched"
    for b in shared-bottom mmoe ple linear single-task:task0 single-task:task1 \
             single-task:task2 single-task:task3; do
        n=${b/:/-}
        amtl-discretize --baseline "$b" --data "$TMP/d.amtl" $MODEL -o "$TMP/$n.arch"
        models="$models $n"
    done
    for n in $models; do
        init=""
        [ "$n" = searched ] && init="--init $TMP/s.ckpt"
        amtl-train --data "$TMP/d.amtl" --arch "$TMP/$n.arch" $init $SMALL --epochs 2 \
            -o "$TMP/$n.model" > /dev/null
        run --separate-stderr amtl-eval --model "$TMP/$n.model" --data "$TMP/d.amtl" --json
        [ "$status" -eq 0 ]
        [ -z "$stderr" ]
        echo "$n $output" >> "$TMP/all"
    done
    python3 - "$TMP/all" <<'EOF'
import json, sys
labels = ["task0", "task1", "task2", "task3"]
seen = []
for line in open(sys.argv[1]):
    name, js = line.split(" ", 1)
    d = json.loads(js)
    assert d["split"] == "test" and d["rows"] == 150, d
    assert d["live_weights"] > 0, d
    if name.startswith("single-task-"):
        task = name[len("single-task-"):]
        assert list(d["tasks"]) == [task], (name, d["tasks"])
        assert d["not_trained"] == [t for t in labels if t != task], (name, d)
        assert d["mean_auc"] == d["tasks"][task]["auc"], (name, d)
    else:
        assert list(d["tasks"]) == labels and d["not_trained"] == [], (name, d)
    ses = []
    for t, m in d["tasks"].items():
        assert 0 < m["auc"] < 1 and m["logloss"] > 0 and m["rows"] == 150, (name, t, m)
        # Hanley and McNeil's standard error from the counts
        a, n1 = m["auc"], m["positives"]
        n2 = m["rows"] - n1
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        se = ((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)) ** 0.5
        assert 0 < n1 < 150 and abs(m["auc_se"] - se) < 2e-6, (name, t, m, se)
        ses.append(m["auc_se"])
    assert 0 < d["mean_auc"] < 1, (name, d)
    assert abs(d["mean_auc_se"] - sum(x * x for x in ses) ** 0.5 / len(ses)) < 2e-6, (name, d)
    seen.append(name)
assert len(seen) == 9, seen
EOF
    # the table of a single-task model lists its task and names the others
    run --separate-stderr amtl-eval --model "$TMP/single-task-task2.model" --data "$TMP/d.amtl"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "task "*"AUC"*"logloss"*"rows" ]]
    [[ "${lines[1]}" == "task2 "* ]]
    [[ "${lines[2]}" == "mean "* ]]
    [ "${lines[3]}" = "not trained: task0, task1, task3" ]
    [[ "${lines[4]}" == "(test split, 150 rows, "*" live weights; model checksum verified)" ]]
}

@test "amtl-train: the linear floor is a fitted logistic regression that amtl-eval scores" {
    amtl-prep --synthetic --rows 2000 --seed 3 -o "$TMP/d.amtl"
    amtl-discretize --baseline linear --data "$TMP/d.amtl" -o "$TMP/lin.arch"
    run --separate-stderr amtl-train --data "$TMP/d.amtl" --arch "$TMP/lin.arch" \
        --set 'linear_l2=[1e-2, 1e-3, 1e-4]' --set task_conditions=[task1=task0] \
        --metrics "$TMP/m.jsonl" -o "$TMP/lin.model"
    [ "$status" -eq 0 ] || { echo "$stderr"; false; }
    [ -z "$output" ]
    # one progress line per task: the strength chosen, iterations, loss, val AUC
    [ "${#stderr_lines[@]}" -eq 4 ]
    re='^linear: task[0-3]: l2 (0.01|0.001|0.0001) \(best of [1-3] tried\), [0-9]+ iterations, train loss 0\.[0-9]+, .*val AUC 0\.[0-9]+, '
    for t in 0 1 2 3; do
        [[ "${stderr_lines[$t]}" =~ $re ]] && [[ "${stderr_lines[$t]}" == "linear: task$t: "* ]]
    done
    run --separate-stderr amtl-eval --model "$TMP/lin.model" --data "$TMP/d.amtl" --split val --json
    [ "$status" -eq 0 ] && [ -z "$stderr" ]
    echo "$output" > "$TMP/val.json"
    # the metrics line holds the model's val AUCs, as amtl-eval computes them
    python3 - "$TMP/m.jsonl" "$TMP/val.json" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 1 and lines[0]["phase"] == "linear" and lines[0]["epoch"] == 0, lines
v = json.load(open(sys.argv[2]))
assert v["tasks"]["task1"]["condition"] == "task0", v
for t in ["task0", "task1", "task2", "task3"]:
    got, want = v["tasks"][t]["auc"], lines[0]["val_auc." + t]
    assert 0.5 < got < 1 and abs(got - want) < 1e-6, (t, got, want)
EOF
    # a task of weight 0 is not trained; --quiet says nothing
    run --separate-stderr amtl-train --data "$TMP/d.amtl" --arch "$TMP/lin.arch" --quiet \
        --set task_weights=[0,1,0,0] --set 'linear_l2=[1e-3]' -o "$TMP/one.model"
    [ "$status" -eq 0 ] && [ -z "$stderr" ]
    run --separate-stderr amtl-eval --model "$TMP/one.model" --data "$TMP/d.amtl" --json
    [ "$status" -eq 0 ]
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert list(d["tasks"]) == ["task1"] and d["not_trained"] == ["task0", "task2", "task3"], d' "$output"
}

@test "amtl-train: early stopping stops where the rule says; the model holds the best epoch" {
    fixture_model --epochs 8 --patience 1 --set task_conditions=[buy=click]
    amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --split val --json > "$TMP/val.json"
    python3 - "$TMP/train.jsonl" "$TMP/val.json" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
tasks = ["click", "buy"]
best, best_e, bad, stop = None, -1, 0, None
for e, d in enumerate(lines):
    auc = [d["val_auc." + t] for t in tasks]
    if best is None:
        better = True
    else:
        rel = [(a - b) / a for a, b in zip(auc, best) if a is not None and b is not None and a != 0]
        better = bool(rel) and sum(rel) / len(rel) > 0
    if better:
        best, best_e, bad = auc, e, 0
    else:
        bad += 1
    if bad >= 1:
        stop = e
        break
# it ran until the first epoch without improvement, or to the last epoch
assert stop == len(lines) - 1 or (stop is None and len(lines) == 8), (stop, len(lines))
v = json.load(open(sys.argv[2]))
for t, want in zip(tasks, best):
    got = v["tasks"][t]["auc"]
    assert abs(got - want) < 1e-6, (t, got, want, best_e)
assert v["tasks"]["buy"]["condition"] == "click"
EOF
}

@test "amtl-eval: the AUCs equal those of its own predictions (conditioned task too)" {
    fixture_model --epochs 2 --set task_conditions=[buy=click]
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --json
    [ "$status" -eq 0 ]
    echo "$output" > "$TMP/test.json"
    amtl-eval --model "$TMP/m.model" --predict "$EVAL/test.csv" > "$TMP/p.tsv"
    # Probabilities are printed with 6 decimals: two that round alike become a
    # tie, moving an AUC by 0.5 / (positives x negatives) per such pair.
    python3 - "$EVAL/test.csv" "$TMP/p.tsv" "$TMP/test.json" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split(",") for l in open(sys.argv[1])][1:]
preds = [[float(x) for x in l.split("\t")] for l in open(sys.argv[2])]
d = json.load(open(sys.argv[3]))
assert len(rows) == len(preds) == d["rows"] == 200

def auc(scores, labels):
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    return (sum(r for r, y in zip(ranks, labels) if y) - pos * (pos + 1) / 2) / (pos * neg)

click = [int(r[4]) for r in rows]
buy = [int(r[5]) for r in rows]
got = {
    "click": auc([p[0] for p in preds], click),
    "buy": auc([p[1] for p, c in zip(preds, click) if c], [b for b, c in zip(buy, click) if c]),
    "buy_all": auc([p[1] for p in preds], buy),
}
want = {"click": d["tasks"]["click"]["auc"], "buy": d["tasks"]["buy"]["auc"],
        "buy_all": d["tasks"]["buy"]["auc_all"]}
for k in got:
    assert abs(got[k] - want[k]) < 5e-4, (k, got[k], want[k])
assert d["tasks"]["buy"]["rows"] == sum(click)
assert d["tasks"]["buy"]["positives"] == sum(b for b, c in zip(buy, click) if c)
assert d["tasks"]["click"]["rows"] == 200 and "auc_all" not in d["tasks"]["click"]
assert d["tasks"]["click"]["positives"] == sum(click)
EOF
    # the table shows the conditioned task's two AUCs
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl"
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == *"AUC(all)"*"counted where" ]]
    [[ "${lines[2]}" == "buy "*"click = 1" ]]
}

@test "amtl-eval --scores: each row's labels and the probabilities --predict gives, in the split's order" {
    fixture_model --epochs 2 --set task_conditions=[buy=click]
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --scores
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "row	click.label	click.p	buy.label	buy.p" ]
    [ "${#lines[@]}" -eq 201 ]
    echo "$output" > "$TMP/s.tsv"
    amtl-eval --model "$TMP/m.model" --predict "$EVAL/test.csv" > "$TMP/p.tsv"
    # the test split is test.csv in its order: the same labels, the same
    # probabilities to the last printed digit; buy counts where click = 1
    python3 - "$EVAL/test.csv" "$TMP/p.tsv" "$TMP/s.tsv" <<'EOF'
import sys
rows = [l.rstrip("\n").split(",") for l in open(sys.argv[1])][1:]
preds = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
scores = [l.rstrip("\n").split("\t") for l in open(sys.argv[3])][1:]
assert len(rows) == len(preds) == len(scores) == 200
for i, (r, p, s) in enumerate(zip(rows, preds, scores)):
    assert s[0] == str(i), (i, s)
    assert s[1] == r[4] and s[2] == p[0], (i, r, p, s)
    assert s[3] == (r[5] if r[4] == "1" else "-") and s[4] == p[1], (i, r, p, s)
assert len({s[2] for s in scores}) > 100   # the scores vary, not one constant
EOF
    # the validation split: as many lines as its rows, the AUC from them the metrics'
    amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --split val --json > "$TMP/val.json"
    amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --split val --scores > "$TMP/v.tsv"
    python3 - "$TMP/v.tsv" "$TMP/val.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[2]))
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
assert len(lines) == d["rows"] > 0
y = [int(l[1]) for l in lines]
p = [float(l[2]) for l in lines]
pos = [a for a, b in zip(p, y) if b]
neg = [a for a, b in zip(p, y) if not b]
auc = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))
assert abs(auc - d["tasks"]["click"]["auc"]) < 5e-4, (auc, d["tasks"]["click"]["auc"])
EOF
}

@test "amtl-eval --predict: a crossed field (crosses) is made from the raw row's columns as amtl-prep made it" {
    amtl-prep --set min_id_count=0 --set 'crosses=[user*colour]' -o "$TMP/f.amtl" \
        "$EVAL/train.csv" "$EVAL/test.csv"
    amtl-prep --info "$TMP/f.amtl" > "$TMP/info"
    grep -q 'user\*colour' "$TMP/info"
    amtl-discretize --baseline mmoe --data "$TMP/f.amtl" $MODEL -o "$TMP/mmoe.arch"
    amtl-train --data "$TMP/f.amtl" --arch "$TMP/mmoe.arch" $SMALL --set lr=0.01 --epochs 2 \
        -o "$TMP/m.model" > /dev/null
    amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --scores > "$TMP/s.tsv"
    # test.csv has no column user*colour: the model makes it
    amtl-eval --model "$TMP/m.model" --predict "$EVAL/test.csv" > "$TMP/p.tsv"
    python3 - "$TMP/p.tsv" "$TMP/s.tsv" <<'EOF'
import sys
preds = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
scores = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])][1:]
assert len(preds) == len(scores) == 200
for i, (p, s) in enumerate(zip(preds, scores)):
    assert s[2] == p[0] and s[4] == p[1], (i, p, s)
EOF
    # the same rows with another colour: other crossed ids, other scores
    sed '2,$s/,green,/,red,/' "$EVAL/test.csv" > "$TMP/red.csv"
    amtl-eval --model "$TMP/m.model" --predict "$TMP/red.csv" > "$TMP/r.tsv"
    ! cmp -s "$TMP/p.tsv" "$TMP/r.tsv"
    # crosses of a field that is not there, or on generated data: clear errors
    run --separate-stderr amtl-prep --set 'crosses=[user*price]' -o "$TMP/g.amtl" "$EVAL/train.csv"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"key 'crosses': 'user*price': 'price' is not a sparse field"* ]]
    run --separate-stderr amtl-prep --synthetic --rows 100 --set 'crosses=[a*b]' -o "$TMP/g.amtl"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"key 'crosses' applies to the csv and processed formats, not to --synthetic"* ]]
    [ ! -e "$TMP/g.amtl" ]
}

@test "amtl-eval --against: the paired difference and its DeLong error, from the two models' own predictions" {
    fixture_model --epochs 2 --set task_conditions=[buy=click]
    amtl-discretize --baseline linear --data "$TMP/f.amtl" -o "$TMP/lin.arch"
    amtl-train --data "$TMP/f.amtl" --arch "$TMP/lin.arch" --quiet --set task_conditions=[buy=click] \
        -o "$TMP/lin.model"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --json \
        --against "$TMP/lin.model"
    [ "$status" -eq 0 ] && [ -z "$stderr" ]
    echo "$output" > "$TMP/ab.json"
    amtl-eval --model "$TMP/lin.model" --data "$TMP/f.amtl" --json > "$TMP/b.json"
    amtl-eval --model "$TMP/lin.model" --data "$TMP/f.amtl" --json --against "$TMP/m.model" > "$TMP/ba.json"
    amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --json --against "$TMP/m.model" > "$TMP/aa.json"
    amtl-eval --model "$TMP/m.model" --predict "$EVAL/test.csv" > "$TMP/pa.tsv"
    amtl-eval --model "$TMP/lin.model" --predict "$EVAL/test.csv" > "$TMP/pb.tsv"
    # DeLong from the definition (pairwise placements) on the printed
    # probabilities; their 6 decimals may tie two rows, hence the tolerances
    python3 - "$EVAL/test.csv" "$TMP"/{pa.tsv,pb.tsv,ab.json,b.json,ba.json,aa.json} <<'EOF'
import json, sys
rows = [l.rstrip("\n").split(",") for l in open(sys.argv[1])][1:]
pa = [[float(x) for x in l.split("\t")] for l in open(sys.argv[2])]
pb = [[float(x) for x in l.split("\t")] for l in open(sys.argv[3])]
ab, b, ba, aa = (json.load(open(f)) for f in sys.argv[4:8])
click = [int(r[4]) for r in rows]
buy = [int(r[5]) for r in rows]
# task: (label, counted rows); buy counts where click = 1
tasks = [(click, [1] * len(rows)), (buy, click)]
psi = [0.0] * len(rows)
diff = 0.0
for t, (y, w) in enumerate(tasks):
    idx = [i for i in range(len(rows)) if w[i]]
    pos = [i for i in idx if y[i]]
    neg = [i for i in idx if not y[i]]
    def place(s, i, other, sign):
        return sum(1.0 if sign * (s[i] - s[j]) > 0 else 0.5 if s[i] == s[j] else 0.0
                   for j in other) / len(other)
    sa, sb = [p[t] for p in pa], [p[t] for p in pb]
    da = {i: place(sa, i, neg, 1) - place(sb, i, neg, 1) for i in pos}
    da.update({i: place(sa, i, pos, -1) - place(sb, i, pos, -1) for i in neg})
    d = sum(da[i] for i in pos) / len(pos)
    diff += d / len(tasks)
    for cls in (pos, neg):
        c = 1 / (len(cls) * (len(cls) - 1)) ** 0.5
        for i in cls:
            psi[i] += (da[i] - d) * c / len(tasks)
se = sum(x * x for x in psi) ** 0.5
g = ab["against"]
assert g["tasks"] == 2 and g["model"].endswith("lin.model"), g
assert g["against_mean_auc"] == b["mean_auc"], (g, b)
assert abs(g["mean_auc_diff"] - (ab["mean_auc"] - b["mean_auc"])) < 2e-6, (g, ab, b)
assert abs(g["mean_auc_diff"] - diff) < 1e-3, (g, diff)
assert 0 < g["diff_se"] and abs(g["diff_se"] - se) < 0.02 * se, (g, se)
# swapped: the opposite difference, the same error; a model against itself: 0
r = ba["against"]
assert abs(r["mean_auc_diff"] + g["mean_auc_diff"]) < 2e-6 and abs(r["diff_se"] - g["diff_se"]) < 2e-6, (r, g)
assert aa["against"]["mean_auc_diff"] == 0 and aa["against"]["diff_se"] == 0, aa
EOF
    # the table: the same numbers in a last line
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --against "$TMP/lin.model"
    [ "$status" -eq 0 ]
    d=$(python3 -c 'import json,sys; g = json.load(open(sys.argv[1]))["against"]; print("%.5f, difference %+.5f, paired standard error %.5f" % (g["against_mean_auc"], g["mean_auc_diff"], g["diff_se"]))' "$TMP/ab.json")
    [[ "${lines[-1]}" == "against $TMP/lin.model: mean AUC $d ("[-+]*" standard errors)" ]]
    # models that count a task differently are refused, naming the task
    amtl-train --data "$TMP/f.amtl" --arch "$TMP/lin.arch" --quiet -o "$TMP/lin2.model"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/f.amtl" --against "$TMP/lin2.model"
    [ "$status" -eq 1 ] && [ -z "$output" ]
    [ "$stderr" = "amtl-eval: error: the models count task 1 ('buy') differently (one trains it and the other not, or their task_conditions differ)" ]
    # usage: not with --predict; not both from stdin
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict --against "$TMP/lin.model"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--predict excludes --data, --split, --json, --scores, --device and --against"* ]]
    run --separate-stderr amtl-eval --model - --data "$TMP/f.amtl" --against -
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"the model and --against cannot both come from stdin"* ]]
}

@test "amtl-eval --predict: streams through a pipe, from a file or stdin alike" {
    fixture_model --epochs 1
    run --separate-stderr bash -c "cat '$EVAL/test.csv' | amtl-eval --model '$TMP/m.model' --predict - | head -n 3"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    for l in "${lines[@]}"; do
        [[ "$l" =~ ^0\.[0-9]{6}$'\t'0\.[0-9]{6}$ ]]
    done
    amtl-eval --model "$TMP/m.model" --predict < "$EVAL/test.csv" > "$TMP/a"
    amtl-eval --model "$TMP/m.model" --predict "$EVAL/test.csv" > "$TMP/b"
    [ "$(wc -l < "$TMP/a")" -eq 200 ]
    diff -u "$TMP/a" "$TMP/b"
    # tab-separated input, and a header line of task names
    tr ',' '\t' < "$EVAL/test.csv" | amtl-eval --model "$TMP/m.model" --predict --delimiter tab > "$TMP/c"
    diff -u "$TMP/a" "$TMP/c"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict --header "$EVAL/test.csv"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$(printf 'click\tbuy')" ]
    [ "${#lines[@]}" -eq 201 ]
    [ -z "$stderr" ]
}

# Feeds amtl-eval --predict (model $1) a header and $2 rows, test.csv's 200
# rows over and over, through a pipe; checks that the lines out are $3 (the
# predictions of test.csv) over and over, and prints amtl-eval's peak
# resident memory in KiB.  Under AddressSanitizer (make check-asan) its
# quarantine would count the blocks freed meanwhile (OpenBLAS allocates and
# frees a small buffer in every small GEMM), so it is turned off.
predict_rss() {
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0" \
        python3 - "$EVAL/test.csv" "$1" "$2" "$3" "$TMP/rss.out" <<'EOF'
import resource, subprocess, sys
csv, model, n, one, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
lines = open(csv, "rb").read().splitlines(True)
block = b"".join(lines[1:])
with open(out, "wb") as fo:
    p = subprocess.Popen(["amtl-eval", "--model", model, "--predict", "-"],
                         stdin=subprocess.PIPE, stdout=fo)
    p.stdin.write(lines[0])
    for _ in range(n // (len(lines) - 1)):
        p.stdin.write(block)
    p.stdin.close()
    if p.wait():
        sys.exit("amtl-eval exited %d" % p.returncode)
want = open(one, "rb").read()
with open(out, "rb") as fi:
    for _ in range(n // (len(lines) - 1)):
        if fi.read(len(want)) != want:
            sys.exit("the predictions are not those of test.csv")
    if fi.read(1):
        sys.exit("more lines than rows")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
EOF
}

# a million rows: minutes under memcheck (tests/run-valgrind leaves it out)
# bats test_tags=long
@test "amtl-eval --predict: memory stays flat while the input grows tenfold, whatever the model's batch_size" {
    fixture_model --epochs 1
    amtl-eval --model "$TMP/m.model" --predict "$EVAL/test.csv" > "$TMP/one.tsv"
    local small large wide
    small=$(predict_rss "$TMP/m.model" 100000 "$TMP/one.tsv")
    large=$(predict_rss "$TMP/m.model" 1000000 "$TMP/one.tsv")
    # a million rows are 25 MB of CSV in and 16 MB of predictions out:
    # holding either would show
    echo "# peak RSS: $small KiB for 100000 rows, $large KiB for 1000000" >&3
    [ $((large - small)) -lt 4096 ]
    # trained with batches of 100000 rows, it still scores 4096 at a time
    amtl-train --data "$TMP/f.amtl" --arch "$TMP/mmoe.arch" $SMALL --set batch_size=100000 \
        --set lr=0.01 --epochs 1 -o "$TMP/wide.model" > /dev/null
    amtl-eval --model "$TMP/wide.model" --predict "$EVAL/test.csv" > "$TMP/wide.tsv"
    wide=$(predict_rss "$TMP/wide.model" 100000 "$TMP/wide.tsv")
    echo "# peak RSS: $wide KiB with batch_size 100000" >&3
    [ $((wide - small)) -lt 4096 ]
}

@test "amtl-eval --predict: plain column names, any order; unseen values score as empty ones" {
    fixture_model --epochs 1
    printf 'note,price,colour,item,user\nx,0.5,red,i3,u1\nx,0.5,red,i3,nobody\nx,0.5,red,i3,\nx,0.5,red,i3,u2\n' > "$TMP/rows.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict "$TMP/rows.csv"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 4 ]
    [ "${lines[1]}" = "${lines[2]}" ]
    [ "${lines[0]}" != "${lines[1]}" ]
    # the same row with typed column names scores the same
    printf 'user:token,item:token,colour:token,price:float\nu1,i3,red,0.5\n' > "$TMP/typed.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict "$TMP/typed.csv"
    [ "$status" -eq 0 ]
    [ "$output" = "$(head -n 1 < <(amtl-eval --model "$TMP/m.model" --predict "$TMP/rows.csv"))" ]
}

@test "amtl-eval --predict: bad rows and headers name the line and column, exit 1" {
    fixture_model --epochs 1
    printf 'user,item,colour,price,click,buy\nu1,i1,red,0.5,1,0\nu1,i1,red,cheap,1,0\n' > "$TMP/r1.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict "$TMP/r1.csv"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-eval: error: $TMP/r1.csv:3:4: 'cheap' is not a number (column 'price')" ]
    printf 'user,item,colour,price,click,buy\nu1,i1,red,0.5\n' > "$TMP/r2.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict - < "$TMP/r2.csv"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-eval: error: <stdin>:2:5: expected 6 fields (as the header), found 4" ]
    printf 'user,colour,price\nu1,red,0.5\n' > "$TMP/r3.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict "$TMP/r3.csv"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-eval: error: $TMP/r3.csv:1: no column for the model's sparse field 'item'" ]
    [ -z "$output" ]
    printf 'user,item,colour,price,price\nu1,i1,red,0.5,1\n' > "$TMP/r4.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict "$TMP/r4.csv"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"r4.csv:1:5: column 'price' repeats field 'price' of column 4" ]]
    : > "$TMP/empty.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict "$TMP/empty.csv"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"empty.csv: no header line (the columns must be named)" ]]
    run --separate-stderr amtl-eval --model "$TMP/m.model" --predict "$TMP/nope.csv"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"cannot open '$TMP/nope.csv': No such file or directory" ]]
}

@test "amtl-eval: a model that does not match the dataset is refused" {
    fixture_model --epochs 1
    synthetic_data
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/d.amtl"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [[ "$stderr" == "amtl-eval: error: $TMP/m.model: does not match dataset '$TMP/d.amtl': sparse fields [user,item,colour] in the model, [user_id,item_id,"* ]]
    # the same fields, prepared apart: the ids mean other values
    amtl-prep --seed 9 --set min_id_count=0 -o "$TMP/other.amtl" "$EVAL/train.csv"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/other.amtl"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"does not match dataset '$TMP/other.amtl': field 'user' numbers other values"* ]]
    # and an architecture for other fields is refused by amtl-train
    amtl-discretize --baseline mmoe --data "$TMP/d.amtl" $MODEL -o "$TMP/synth.arch"
    run --separate-stderr amtl-train --data "$TMP/f.amtl" --arch "$TMP/synth.arch" $SMALL -o "$TMP/x.model"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"synth.arch: sparse field 1 is 'user_id' in the architecture but 'user' in the data"* ]]
    [ ! -e "$TMP/x.model" ]
}

@test "amtl-eval: corrupt or wrong-kind model files are clear errors" {
    fixture_model --epochs 1
    head -c 300 "$TMP/m.model" > "$TMP/bad.model"
    for mode in "--data $TMP/f.amtl" "--predict $EVAL/test.csv"; do
        run --separate-stderr amtl-eval --model "$TMP/bad.model" $mode
        [ "$status" -eq 1 ]
        [ -z "$output" ]
        [[ "$stderr" == "amtl-eval: error: $TMP/bad.model: "* ]]
        run --separate-stderr amtl-eval --model "$TMP/f.amtl" $mode
        [ "$status" -eq 1 ]
        [ "$stderr" = "amtl-eval: error: $TMP/f.amtl: expected a file of kind \"model\", got \"dataset\"" ]
    done
    # the model may come from stdin when the rows do not
    run --separate-stderr amtl-eval --model - --data "$TMP/f.amtl" --json < "$TMP/m.model"
    [ "$status" -eq 0 ]
    [[ "$output" == '{"model":"<stdin>","checksum":"verified","split":"test"'* ]]
}

@test "man pages: amtl-train(1) and amtl-eval(1) lint clean" {
    command -v mandoc > /dev/null || skip "mandoc not installed"
    command -v groff > /dev/null || skip "groff not installed"
    for m in amtl-train amtl-eval; do
        f="$BATS_TEST_DIRNAME/../../man/$m.1"
        run --separate-stderr mandoc -T lint -W warning "$f"
        [ -z "$output$stderr" ]
        run --separate-stderr groff -man -ww -z "$f"
        [ -z "$output$stderr" ]
    done
}

@test "amtl-train wide_train frozen: the wide part stays the fitted regression, the rest trains; frozen from zero is refused" {
    fixture_data
    amtl-discretize --baseline mmoe --data "$TMP/f.amtl" $MODEL -o "$TMP/mmoe.arch"
    for n in 1 3; do
        for mode in frozen joint; do
            amtl-train --data "$TMP/f.amtl" --arch "$TMP/mmoe.arch" $SMALL --set lr=0.01 \
                --set wide_train=$mode --epochs $n --patience 9 \
                -o "$TMP/$mode$n.model" > /dev/null
            tensors "$TMP/$mode$n.model" | grep '^wide\.' > "$TMP/$mode$n.wide"
            tensors "$TMP/$mode$n.model" | grep -v '^wide\.' | grep 'weight' > "$TMP/$mode$n.deep"
        done
    done
    [ -s "$TMP/frozen1.wide" ]
    # frozen: the same wide tables after 1 and 3 epochs, and the deep part moves;
    # joint: the wide tables move too
    cmp "$TMP/frozen1.wide" "$TMP/frozen3.wide"
    ! cmp -s "$TMP/joint1.wide" "$TMP/joint3.wide"
    ! cmp -s "$TMP/frozen1.deep" "$TMP/frozen3.deep"
    grep -q '^wide_train: frozen$' <(amtl-train --data "$TMP/f.amtl" --arch "$TMP/mmoe.arch" \
        --set wide_train=frozen --dump-config)
    run --separate-stderr amtl-train --data "$TMP/f.amtl" --arch "$TMP/mmoe.arch" $SMALL \
        --set wide_train=frozen --set wide_init=zero -o "$TMP/z.model"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-train: error: "*"wide_train"*"wide_init zero"* ]]
    [ ! -e "$TMP/z.model" ]
}
