#!/usr/bin/env bats
# The search tools: CLI basics, a small pipeline end to end, resume, errors.
bats_require_minimum_version 1.5.0
load helpers

small_data() {
    amtl-prep --synthetic --rows 1500 --seed 3 -o "$TMP/d.amtl"
}

MODEL="--set batch_size=256 --set ops=[Identity,MLP-8,MLP-16] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8]"
SMALL="$MODEL --quiet"

@test "every tool: --help exits 0 with usage on stdout" {
    for t in amtl-supernet amtl-discretize amtl-train amtl-eval; do
        run --separate-stderr "$t" --help
        [ "$status" -eq 0 ]
        [[ "$output" == Usage:\ $t* ]]
        [ -z "$stderr" ]
    done
}

@test "every tool: --version" {
    for t in amtl-supernet amtl-discretize amtl-train amtl-eval; do
        run --separate-stderr "$t" --version
        [ "$status" -eq 0 ]
        [[ "$output" == "$t "* ]]
    done
}

@test "every tool: an unknown flag exits 2 with usage on stderr" {
    for t in amtl-supernet amtl-discretize amtl-train amtl-eval; do
        run --separate-stderr "$t" --no-such-flag
        [ "$status" -eq 2 ]
        [ -z "$output" ]
        [[ "$stderr" == *"$t: error: unknown option '--no-such-flag'"* ]]
        [[ "$stderr" == *"Usage: $t"* ]]
    done
}

@test "amtl-supernet: missing required flags is a usage error" {
    run --separate-stderr amtl-supernet --data x
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--data, --phase, --epochs and -o are required"* ]]
}

@test "amtl-supernet: unknown phase and bad config key" {
    small_data
    run --separate-stderr amtl-supernet --data "$TMP/d.amtl" --phase nope --epochs 1 -o "$TMP/c"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"unknown phase 'nope'"* ]]
    run --separate-stderr amtl-supernet --data "$TMP/d.amtl" --phase warmup --epochs 1 --set embeding_dim=4 -o "$TMP/c"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"unknown key 'embeding_dim'"* ]]
    [ ! -e "$TMP/c" ]
}

@test "amtl-supernet: a dataset that is not one is refused, nothing written" {
    printf 'a,b\n1,2\n' > "$TMP/x.csv"
    run --separate-stderr amtl-supernet --data "$TMP/x.csv" --phase warmup --epochs 1 -o "$TMP/c"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-supernet: error: "*"x.csv"* ]]
    [ ! -e "$TMP/c" ]
}

@test "search pipeline: warmup, search, discretize, export, train, eval" {
    small_data
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/w.ckpt" > "$TMP/m1"
    amtl-supernet --data "$TMP/d.amtl" $SMALL --init "$TMP/w.ckpt" --phase search --epochs 1 --set discretize_ops=3 -o "$TMP/s.ckpt" > "$TMP/m2"
    grep -q '"phase":"search"' "$TMP/m2"
    amtl-discretize -k 2 -o "$TMP/k.ckpt" "$TMP/s.ckpt"
    amtl-discretize --export -o "$TMP/a.arch" "$TMP/k.ckpt"
    run --separate-stderr amtl-discretize --show "$TMP/a.arch"
    [ "$status" -eq 0 ]
    [[ "$output" == *"layer 0 expert 0:"* ]]
    run --separate-stderr amtl-discretize --show --format json "$TMP/a.arch"
    [ "$status" -eq 0 ]
    echo "$output" | python3 -m json.tool > /dev/null
    amtl-train --data "$TMP/d.amtl" --arch "$TMP/a.arch" --init "$TMP/k.ckpt" $SMALL --epochs 2 -o "$TMP/m.model" > "$TMP/m3"
    run --separate-stderr amtl-eval --model "$TMP/m.model" --data "$TMP/d.amtl" --json
    [ "$status" -eq 0 ]
    echo "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["tasks"])==4; assert 0 < d["mean_auc"] < 1'
}

@test "amtl-discretize --export --threshold: a lower threshold keeps a superset, recorded in the file" {
    small_data
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/w.ckpt" > /dev/null
    amtl-supernet --data "$TMP/d.amtl" $SMALL --init "$TMP/w.ckpt" --phase search --epochs 2 -o "$TMP/s.ckpt" > /dev/null
    for t in 0.5 0.45 0.2 0.8; do
        amtl-discretize --export --threshold $t -o "$TMP/a$t.arch" "$TMP/s.ckpt"
        amtl-discretize --show --format json "$TMP/a$t.arch" > "$TMP/a$t.json"
    done
    # without --threshold: the checkpoint's select_threshold (0.5), the same file
    amtl-discretize --export -o "$TMP/adef.arch" "$TMP/s.ckpt"
    cmp "$TMP/adef.arch" "$TMP/a0.5.arch"
    # each selection kept at a threshold is kept at every lower one, and a
    # kept selection is above its threshold unless it is a fallback
    python3 - "$TMP" <<'PY'
import json, sys
d = sys.argv[1]
def kept(t):
    a = json.load(open("%s/a%s.json" % (d, t)))
    assert a["select_threshold"] == float(t), a["select_threshold"]
    sel = set()
    for e in a["experts"]:
        for kind in ("single", "interaction"):
            for f in e.get(kind, []):
                sel.add(("f", e["expert"], kind, f["field"]))
                assert f["weight"] >= float(t) - 0.0005 or a["fallbacks"] > 0  # 3 decimals
    for c in a["consumers"]:
        for i in c["inputs"]:
            sel.add(("e", c["kind"], c.get("task", c.get("expert")), i["layer"], i["expert"]))
    return sel
k8, k5, k45, k2 = kept("0.8"), kept("0.5"), kept("0.45"), kept("0.2")
assert k8 <= k5 <= k45 <= k2, "not nested"
assert len(k2) > len(k8), "the thresholds made no difference"
PY
    amtl-discretize --show "$TMP/a0.45.arch" | grep -q '^features of the layer-0 experts (sigmoid(beta) of the choice, kept above 0.45):$'
    amtl-discretize --show "$TMP/a0.5.arch" | grep -q '^features of the layer-0 experts (sigmoid(beta) of the choice):$'
    # bad values, a threshold without --export, a config the checkpoint does not take
    for bad in 0 1 -0.1 x 0.5x ''; do
        run --separate-stderr amtl-discretize --export --threshold "$bad" -o "$TMP/bad.arch" "$TMP/s.ckpt"
        [ "$status" -eq 2 ]
        [[ "$stderr" == "amtl-discretize: error: --threshold wants a number in (0, 1), got '$bad'"* ]]
    done
    run --separate-stderr amtl-discretize -k 1 --threshold 0.4 -o "$TMP/bad.ckpt" "$TMP/s.ckpt"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-discretize: error: --threshold goes with --export"* ]]
    run --separate-stderr amtl-discretize --export --set select_threshold=0.4 -o "$TMP/bad.arch" "$TMP/s.ckpt"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-discretize: error: --config, --set and --profile go with --baseline"* ]]
    run --separate-stderr amtl-discretize --show --profile reference "$TMP/a0.5.arch"
    [ "$status" -eq 2 ]
    [ ! -e "$TMP/bad.arch" ] && [ ! -e "$TMP/bad.ckpt" ]
}

@test "amtl-supernet: recompute_hidden gives the same weights bit for bit" {
    amtl-prep --synthetic --rows 3000 --seed 5 -o "$TMP/d.amtl"
    # batches of 512 rows: four row blocks of the MixedOp each; dropout on
    M="--set batch_size=512 --set ops=[Identity,MLP-8,MLP-16,MLP-32] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8] --quiet"
    for r in false true; do
        amtl-supernet --data "$TMP/d.amtl" $M --set recompute_hidden=$r --phase warmup --epochs 1 -o "$TMP/w$r.ckpt" > /dev/null
        amtl-supernet --data "$TMP/d.amtl" $M --set recompute_hidden=$r --init "$TMP/w$r.ckpt" --phase search --epochs 1 -o "$TMP/s$r.ckpt" > /dev/null
        python3 "$BATS_TEST_DIRNAME/amtlfile.py" tensors "$TMP/s$r.ckpt" > "$TMP/t$r"
    done
    diff -u "$TMP/tfalse" "$TMP/ttrue"
    [ "$(wc -l < "$TMP/ttrue")" -gt 10 ]
}

@test "amtl-supernet: 1+1 epochs from a checkpoint equal 2 epochs in one run" {
    small_data
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 2 -o "$TMP/two.ckpt" > "$TMP/two"
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/one.ckpt" > "$TMP/a"
    amtl-supernet --data "$TMP/d.amtl" $SMALL --init "$TMP/one.ckpt" --phase warmup --epochs 1 -o "$TMP/oneone.ckpt" > "$TMP/b"
    # the same metrics apart from the wall-clock seconds
    sed 's/"seconds":[0-9.]*,//' "$TMP/two" > "$TMP/two.s"
    cat "$TMP/a" "$TMP/b" | sed 's/"seconds":[0-9.]*,//' > "$TMP/ab.s"
    diff -u "$TMP/two.s" "$TMP/ab.s"
}

@test "amtl-supernet: the same seed gives the same architecture" {
    small_data
    for r in 1 2; do
        amtl-supernet --data "$TMP/d.amtl" $SMALL --phase search --epochs 1 --set discretize_ops=2 -o "$TMP/s$r.ckpt" > /dev/null
        amtl-discretize --export -o "$TMP/a$r.arch" "$TMP/s$r.ckpt"
        amtl-discretize --show --format json "$TMP/a$r.arch" > "$TMP/a$r.json"
    done
    diff -u "$TMP/a1.json" "$TMP/a2.json"
}

@test "amtl-discretize: baselines for a dataset, trained and scored" {
    small_data
    for b in shared-bottom mmoe ple linear; do
        amtl-discretize --baseline $b --data "$TMP/d.amtl" $MODEL -o "$TMP/$b.arch"
        amtl-train --data "$TMP/d.amtl" --arch "$TMP/$b.arch" $SMALL --epochs 1 -o "$TMP/$b.model" > /dev/null
        run --separate-stderr amtl-eval --model "$TMP/$b.model" --data "$TMP/d.amtl"
        [ "$status" -eq 0 ]
        [[ "$output" == *"mean"* ]]
    done
}

@test "amtl-discretize --op: one op-name parser; a name amtl-train would refuse is refused here (exit 2)" {
    small_data
    for op in MLP-064 MLP-+64 MLP-65537 MLP- mlp-64 Zero; do
        run --separate-stderr amtl-discretize --baseline mmoe --op "$op" --data "$TMP/d.amtl" $MODEL -o "$TMP/x.arch"
        [ "$status" -eq 2 ]
        [[ "$stderr" == "amtl-discretize: error: "*"$op"* ]]
        [ ! -e "$TMP/x.arch" ]
    done
    # the same names in the config key ops are refused by the same parser
    run --separate-stderr amtl-supernet --data "$TMP/d.amtl" $SMALL --set 'ops=[Identity,MLP-064]' --phase warmup --epochs 1 -o "$TMP/x.ckpt"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"key 'ops' has unknown op 'MLP-064'"* ]]
    amtl-discretize --baseline mmoe --op MLP-64 --data "$TMP/d.amtl" $MODEL -o "$TMP/x.arch"
    amtl-train --data "$TMP/d.amtl" --arch "$TMP/x.arch" $SMALL --epochs 1 -o "$TMP/x.model" > /dev/null
}

@test "amtl-eval: a corrupt model is a clear error" {
    small_data
    head -c 100 "$TMP/d.amtl" > "$TMP/bad.model"
    run --separate-stderr amtl-eval --model "$TMP/bad.model" --data "$TMP/d.amtl"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-eval: error: $TMP/bad.model: "* ]]
}

@test "amtl-supernet: the bi-level arch step (arch_data=val) is deterministic and moves the arch" {
    small_data
    for r in 1 2; do
        amtl-supernet --data "$TMP/d.amtl" $SMALL --phase search --epochs 1 --set arch_data=val \
            --set arch_lr=0.1 --set discretize_ops=0 -o "$TMP/v$r.ckpt" | sed 's/"seconds":[0-9.]*,//' > "$TMP/v$r"
    done
    diff -u "$TMP/v1" "$TMP/v2"
    for r in 1 2; do
        amtl-discretize --export -o "$TMP/v$r.arch" "$TMP/v$r.ckpt"
        amtl-discretize --show --format json "$TMP/v$r.arch" > "$TMP/v$r.json"
    done
    diff -u "$TMP/v1.json" "$TMP/v2.json"
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase search --epochs 1 --set discretize_ops=0 \
        --set arch_lr=0.1 -o "$TMP/t.ckpt" | sed 's/"seconds":[0-9.]*,//' > "$TMP/t"
    # other batches drive the arch params: another entropy than the one-level step
    [ "$(grep -o '"arch_entropy":[0-9.]*' "$TMP/v1")" != "$(grep -o '"arch_entropy":[0-9.]*' "$TMP/t")" ]
    run --separate-stderr amtl-supernet --data "$TMP/d.amtl" $SMALL --phase search --epochs 1 \
        --set arch_data=test -o "$TMP/x.ckpt"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"arch_data"* ]]
}

# The search finds the known structure of the synthetic data (DESIGN.md
# section 10).  Criterion: after warm-up (2 epochs), search (3) and the
# frozen epoch (1), exported, the single-feature selections of the layer-0
# experts keep the informative fields (user_id, item_id, category, city,
# device) at least 0.1 more often than the noise fields (noise_1..3), for
# each of two data seeds.  100000 rows and arch_lr 0.01: at the reference's
# arch_lr 0.001 and 20000 rows the arch params move by ~0.01 in the few
# steps there are and nothing separates.  Measured (seeds 1-4): informative
# 0.55 0.60 0.45 0.45, noise 0.17 0.00 0.25 0.08.  The FM-interaction
# selections are dropped for nearly every field and are not part of it.
# In the reference profile: with the default wide part the per-id effects
# go to the wide part, and the navigator's selections no longer separate
# (seed 1: informative kept 0.30, noise 0.33).
# bats test_tags=long
@test "search: informative fields are kept more often than noise fields" {
    for seed in 1 2; do
        amtl-prep --profile reference --synthetic --rows 100000 --seed $seed -o "$TMP/d$seed"
        o=(--data "$TMP/d$seed" --profile reference --set batch_size=1024 --set arch_lr=0.01
           --set "ops=[Identity,MLP-16,MLP-32,MLP-64,MLP-128]" --set seed=$seed --quiet)
        amtl-supernet "${o[@]}" --phase warmup --epochs 2 -o "$TMP/w$seed" > /dev/null
        amtl-supernet "${o[@]}" --init "$TMP/w$seed" --phase search --epochs 3 -o "$TMP/s$seed" > /dev/null
        amtl-supernet "${o[@]}" --init "$TMP/s$seed" --phase finetune --epochs 1 -o "$TMP/f$seed" > /dev/null
        amtl-discretize --export -o "$TMP/a$seed" "$TMP/f$seed"
        run amtl-discretize --show --format json "$TMP/a$seed"
        [ "$status" -eq 0 ]
        echo "$output" | python3 -c '
import json, sys
a = json.load(sys.stdin)
noise = {"noise_1", "noise_2", "noise_3"}
fields = a["sparse_fields"]
kept = {f: 0 for f in fields}
n = 0
for x in a["experts"]:
    if x["layer"] == 0:
        n += 1
        for s in x["single"]:
            kept[s["field"]] += 1
inf = [f for f in fields if f not in noise]
ki = sum(kept[f] for f in inf) / (n * len(inf))
kn = sum(kept[f] for f in noise) / (n * len(noise))
print("seed %s: informative kept %.2f, noise kept %.2f" % (sys.argv[1], ki, kn))
sys.exit(0 if ki >= kn + 0.1 else 1)' $seed
    done
}

@test "amtl-supernet: --resume on another dataset is refused, the checkpoint untouched" {
    small_data
    amtl-prep --synthetic --rows 1500 --seed 4 -o "$TMP/other.amtl"
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/r.ckpt" > /dev/null
    cp "$TMP/r.ckpt" "$TMP/r.before"
    run --separate-stderr amtl-supernet --data "$TMP/other.amtl" $SMALL --phase warmup --epochs 2 --resume -o "$TMP/r.ckpt"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"was trained on another dataset"*"--resume continues a run on its own data"* ]]
    cmp "$TMP/r.ckpt" "$TMP/r.before"
    # the same data resumes
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 2 --resume -o "$TMP/r.ckpt" > /dev/null
}
