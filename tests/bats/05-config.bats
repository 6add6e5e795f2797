#!/usr/bin/env bats
# The configuration as every tool reads it: the queries --dump-config,
# --dump-stage, --dump-schedule and --dump-overrides (amtl-config(5),
# QUERIES), which the pipelines use instead of reading YAML themselves.
bats_require_minimum_version 1.5.0
load helpers

TOOLS="amtl-prep amtl-supernet amtl-discretize amtl-train amtl-eval"

# Whether $output has the line $1 / no line matching the regex $1 (as
# functions: a plain "! cmd" or "a && b" would not fail the test).
has() { grep -qxF -- "$1" <<<"$output"; }
lacks() { ! grep -q -- "$1" <<<"$output"; }

config() {
    cat > "$TMP/c.yaml" <<'EOF'
# quotes, a flow mapping, lists as items, comments
data:
  format: csv          # a comment
  sparse: ["a b", c]
  labels:
    - y1
    - "y2"
train: {batch_size: 64, lr: 1e-3, threads: 2}
search:
  epochs: 10
  patience: 4
model:
  ops: [Identity, MLP-8]
EOF
}

@test "every tool: --dump-config prints the defaults as YAML that reads back the same" {
    run --separate-stderr amtl-prep --dump-config
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    [ "${lines[0]}" = "# amtl configuration" ]
    has 'embedding_dim: 16'
    has 'split: [0.8, 0.1, 0.1]'
    printf '%s\n' "$output" > "$TMP/defaults.yaml"
    # the same from every tool, and without the options a tool needs to run
    for t in $TOOLS; do
        "$t" --dump-config | diff -u "$TMP/defaults.yaml" -
    done
    amtl-train --config "$TMP/defaults.yaml" --dump-config | diff -u "$TMP/defaults.yaml" -
}

@test "--dump-config: the file, --set, the options that stand for keys and --profile, later winning" {
    config
    run --separate-stderr amtl-supernet --config "$TMP/c.yaml" --set lr=0.5 --seed 7 --threads 3 \
        --profile reference --dump-config
    [ "$status" -eq 0 ]
    has 'lr: 0.5'
    has 'seed: 7'
    has 'threads: 3'
    has 'batch_size: 64'      # the file over the profile
    has 'expert_n_layers: 3'  # the profile over the defaults
    has 'sparse: ["a b", c]'
    has 'labels: [y1, y2]'
    run amtl-prep --config "$TMP/c.yaml" -f processed --vocab train --split 0.5,0.25,0.25 --dump-config
    [ "$status" -eq 0 ]
    has 'format: processed'
    has 'vocab: train'
    has 'split: [0.5, 0.25, 0.25]'
}

@test "--dump-stage: the keys a stage reads, resolved, in a stable form" {
    config
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --dump-stage prep
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    printf '%s\n' "# keys of the prep stage" "seed: 2022" "format: csv" 'sparse: ["a b", c]' \
        "dense: []" "labels: [y1, y2]" "crosses: []" 'delimiter: ","' "trim: false" "split: [0.8, 0.1, 0.1]" \
        "vocab: all" "limit: 0" "min_count: 10" "min_id_count: 5" "dense_transform: none" |
        diff -u - <(printf '%s\n' "$output")
    # the same values written otherwise give the same text
    printf 'train:\n  lr: 0.001\n' > "$TMP/d.yaml"
    diff -u <(amtl-train --config "$TMP/c.yaml" --dump-stage train | grep '^lr:') \
            <(amtl-train --config "$TMP/d.yaml" --dump-stage train | grep '^lr:')
    run amtl-train --config "$TMP/c.yaml" --dump-stage train
    has 'epochs: 10'
    has 'patience: 4'
    lacks '^threads:\|^ops:\|^finetune_epochs:'
    # the searched model's fine-tuning: 10 - 2 warm-up - 3 search - 1 frozen
    run amtl-train --config "$TMP/c.yaml" --dump-stage finetune
    has 'finetune_epochs: 4'
    lacks '^epochs:'
    run amtl-supernet --config "$TMP/c.yaml" --set discretize_ops=2 --dump-stage search
    has 'discretize_ops: 2'
    has 'ops: [Identity, MLP-8]'
    run amtl-supernet --config "$TMP/c.yaml" --dump-stage warmup
    lacks '^discretize_ops:'
}

@test "--dump-schedule: the epochs of a search as make variables; no fine-tuning left warns" {
    config
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --dump-schedule
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    printf '%s\n' "# the schedule of a search and the labels the configuration names" \
        "WARMUP_EPOCHS := 2" "SEARCH_EPOCHS := 3" "FINETUNE_EPOCHS := 4" "EPOCHS := 10" \
        "N_LABELS := 2" "EXPORT_THRESHOLDS := 0.5 0.45 0.55" "RETRAIN_CANDIDATES := 0" \
        "LINEAR_CANDIDATE := 1" \
        "LINEAR_MARGIN := 0" | diff -u - <(printf '%s\n' "$output")
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set linear_margin=1.5 --dump-schedule
    has 'LINEAR_MARGIN := 1.5'
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set retrain_candidates=true --dump-schedule
    has 'RETRAIN_CANDIDATES := 1'
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set linear_margin=-1 --dump-schedule
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"linear_margin"*"must be >= 0, got -1"* ]]
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set finetune_epochs=7 --dump-schedule
    has 'FINETUNE_EPOCHS := 7'
    # the export thresholds: export_candidates as written back (%g), else
    # select_threshold alone (the reference profile's single export)
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set 'export_candidates=[0.4, 0.55]' --dump-schedule
    has 'EXPORT_THRESHOLDS := 0.4 0.55'
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set export_candidates= --set select_threshold=0.3 --dump-schedule
    has 'EXPORT_THRESHOLDS := 0.3'
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --profile reference --dump-schedule
    has 'EXPORT_THRESHOLDS := 0.5'
    has 'RETRAIN_CANDIDATES := 0'
    has 'LINEAR_CANDIDATE := 0'
    for bad in 'export_candidates=[0.5, 1]' 'export_candidates=[0.5, 0.5]' 'export_candidates=0'; do
        run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set "$bad" --dump-schedule
        [ "$status" -eq 2 ]
        [[ "$stderr" == *"export_candidates"* ]]
    done
    run --separate-stderr amtl-prep --config "$TMP/c.yaml" --set epochs=4 --dump-schedule
    [ "$status" -eq 0 ]
    has 'FINETUNE_EPOCHS := 0'
    [ "$stderr" = "amtl-prep: warning: epochs 4 leave no fine-tuning after 2 warm-up, 3 search and 1 frozen epochs" ]
}

@test "--dump-overrides: the keys given, as KEY=VALUE lines that --set takes back" {
    config
    run --separate-stderr amtl-prep --dump-overrides
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    run --separate-stderr amtl-train --config "$TMP/c.yaml" --set seed=5 --dump-overrides
    [ "$status" -eq 0 ]
    printf '%s\n' "ops=[Identity, MLP-8]" "batch_size=64" "lr=0.001" "seed=5" "threads=2" \
        "epochs=10" "patience=4" "format=csv" 'sparse=["a b", c]' "labels=[y1, y2]" |
        diff -u - <(printf '%s\n' "$output")
    args=()
    while IFS= read -r kv; do
        args+=(--set "$kv")
    done <<<"$output"
    diff -u <(amtl-train --config "$TMP/c.yaml" --set seed=5 --dump-config) \
            <(amtl-train "${args[@]}" --dump-config)
    run amtl-eval --profile reference --dump-overrides
    has 'batch_size=2048'
}

@test "the queries: a bad config or option exits 2, an unreadable one 1, nothing on stdout" {
    printf 'model:\n  opz: [Identity]\n' > "$TMP/bad.yaml"
    run --separate-stderr amtl-supernet --config "$TMP/bad.yaml" --dump-stage warmup
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [ "$stderr" = "amtl-supernet: error: $TMP/bad.yaml:2: unknown key 'opz'; did you mean 'ops'?" ]
    run --separate-stderr amtl-train --set dropout=2 --dump-config
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [ "$stderr" = "amtl-train: error: key 'dropout' must be in [0, 1), got 2" ]
    run --separate-stderr amtl-prep --dump-stage export
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [ "${stderr%%$'\n'*}" = "amtl-prep: error: --dump-stage: unknown stage 'export' (expected prep, baseline, warmup, search, frozen, finetune, train or choose)" ]
    run --separate-stderr amtl-discretize --dump-config --dump-schedule
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-discretize: error: --dump-config, --dump-stage, --dump-schedule and --dump-overrides exclude each other"* ]]
    run --separate-stderr amtl-eval --profile fast --dump-config
    [ "$status" -eq 2 ]
    [ "$stderr" = "amtl-eval: error: unknown profile 'fast' (expected default or reference)" ]
    run --separate-stderr amtl-prep --config "$TMP/none.yaml" --dump-overrides
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = "amtl-prep: error: cannot open '$TMP/none.yaml': No such file or directory" ]
    run --separate-stderr amtl-prep --dump-stage
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: option '--dump-stage' needs an argument"* ]]
}
