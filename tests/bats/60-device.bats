#!/usr/bin/env bats
# The device step (--device): cpu-backend is the CPU device, the same bytes
# at any thread count; on the plain CPU backend (cpu-plain) it agrees with
# the CPU path, every training key and dropout included, resumes and repeats
# exactly; a missing GPU and an unknown device are clear errors.
bats_require_minimum_version 1.5.0
load helpers

MODEL="--set batch_size=256 --set ops=[Identity,MLP-8,MLP-16] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8]"
SMALL="$MODEL --quiet"
# long epochs (4000 batches of 4 rows) so that a signal lands mid-epoch; the
# test using them is tagged "long" (tests/run-valgrind leaves it out)
LONG="--set ops=[Identity,MLP-8,MLP-16] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8] --set threads=1 --set batch_size=4 --set discretize_ops=2 --quiet"

setup_file() {
    export F="$BATS_FILE_TMPDIR"
    amtl-prep --synthetic --rows 1500 --seed 3 -o "$F/d.amtl"
    amtl-supernet --data "$F/d.amtl" $SMALL --phase search --epochs 1 --set discretize_ops=2 -o "$F/s.ckpt" > /dev/null
    amtl-discretize --export -o "$F/s.arch" "$F/s.ckpt"
    amtl-train --data "$F/d.amtl" --arch "$F/s.arch" $SMALL --epochs 1 -o "$F/s.model" > /dev/null
}

# Runs warm-up (1 epoch), search (2 epochs, 4 MixedOps fixed after each: 12,
# 8, 4 left) and fine-tune (1 epoch) on device $1 with the extra flags $2,
# each from the cpu run's checkpoint of the phase before (run cpu first);
# metrics lines into $TMP/$1.m, the exported architecture's --show into
# $TMP/$1.arch.txt.  Each phase starts from the same weights on both
# devices: rounding-level differences grow over steps where a BatchNorm
# channel barely varies over the batch (its 1/std amplifies them; seen:
# BatchNorm betas 2% apart after one epoch, with the same losses), and
# compounded over three phases they move this near-random tiny model's
# validation AUCs by up to 0.3 — as two thread counts of the same device do.
pipeline() {
    local dev=$1 extra=$2
    amtl-supernet --data "$F/d.amtl" $SMALL $extra --device $dev --phase warmup --epochs 1 -o "$TMP/w.$dev" > "$TMP/$dev.m"
    amtl-supernet --data "$F/d.amtl" $SMALL $extra --device $dev --init "$TMP/w.cpu" --phase search --epochs 2 --set discretize_ops=4 -o "$TMP/s.$dev" >> "$TMP/$dev.m"
    amtl-supernet --data "$F/d.amtl" $SMALL $extra --device $dev --init "$TMP/s.cpu" --phase finetune --epochs 1 -o "$TMP/f.$dev" >> "$TMP/$dev.m"
    amtl-discretize --export -o "$TMP/a.$dev" "$TMP/f.$dev"
    amtl-discretize --show "$TMP/a.$dev" > "$TMP/$dev.arch.txt"
}

no_gpu() {
    if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
        skip "a GPU is present: --device cuda and auto use it"
    fi
}

@test "cpu-plain equals cpu up to rounding: warm-up, search with discretisation, fine-tune" {
    # open gates (reference) and no dropout: the two paths compute the same
    # numbers.  Measured: losses within 2e-5.  AUCs on 150 validation rows
    # move by about 2e-4 when one near-tie pair swaps, hence 1e-3.  In the
    # reference profile: the default wide part's sums (double on the CPU, a
    # float GEMM on a device) and lr round the runs further apart (AUCs 1.4e-3
    # apart); the next test has the defaults.
    for dev in cpu cpu-plain; do
        pipeline $dev "--profile reference --set dropout=0 --set gate_mode=reference"
    done
    [ "$(grep -o '"mixed_ops":[0-9]*' "$TMP/cpu.m" | tr '\n' ' ')" = '"mixed_ops":12 "mixed_ops":8 "mixed_ops":4 "mixed_ops":4 ' ]
    close_metrics "$TMP/cpu.m" "$TMP/cpu-plain.m" 1e-4 1e-3
    diff -u "$TMP/cpu.arch.txt" "$TMP/cpu-plain.arch.txt"
}

@test "cpu-plain equals cpu with sampled gates: training loss, discretisation, architecture" {
    # The default gates (sampled), no dropout: the same draws on both paths.
    # Validation metrics are left out: the towers' Linear bias before
    # BatchNorm has a gradient that is zero but for rounding, which Adam
    # turns into steps of lr whose sign differs between the paths (2e-3
    # apart after 10 steps); the running mean lags it, so validation AUCs
    # differ by up to 5e-3 while every other weight agrees to 1e-5.
    for dev in cpu cpu-plain; do
        pipeline $dev "--set dropout=0"
    done
    close_metrics "$TMP/cpu.m" "$TMP/cpu-plain.m" 1e-4 -
    diff -u "$TMP/cpu.arch.txt" "$TMP/cpu-plain.arch.txt"
}

@test "cpu-plain equals cpu with dropout, arch_data val, clip_grad_norm and sparse_embedding" {
    # Every key works on every device: the same draws (dropout masks are a
    # function of the step's seed and the site), the same steps; training
    # losses within 1e-4, the same discretisation and architecture
    # (validation metrics left out, as in the test above).
    for extra in "--set dropout=0.3" "--set dropout=0 --set arch_data=val" \
                 "--set dropout=0 --set clip_grad_norm=0.01" \
                 "--set dropout=0 --set sparse_embedding=true"; do
        for dev in cpu cpu-plain; do
            pipeline $dev "$extra"
        done
        close_metrics "$TMP/cpu.m" "$TMP/cpu-plain.m" 1e-4 - || { echo "with $extra"; false; }
        diff -u "$TMP/cpu.arch.txt" "$TMP/cpu-plain.arch.txt"
    done
}

@test "amtl-train on an exported architecture and amtl-eval: cpu-plain equals cpu" {
    # The architecture's dropout wins over --set: search without it.  Seed 4
    # gives inputs to every expert and tower: an expert with none sees a
    # constant and, as the towers' bias above, steps on rounding noise.
    amtl-supernet --data "$F/d.amtl" $SMALL --set dropout=0 --set gate_mode=reference --set seed=4 --phase search --epochs 1 --set discretize_ops=2 -o "$TMP/s.ckpt" > /dev/null
    amtl-discretize --export -o "$TMP/s.arch" "$TMP/s.ckpt"
    amtl-discretize --show "$TMP/s.arch" > "$TMP/s.txt"
    [ "$(grep -c none "$TMP/s.txt")" -eq 0 ]
    for dev in cpu cpu-plain; do
        amtl-train --data "$F/d.amtl" --arch "$TMP/s.arch" --init "$TMP/s.ckpt" $SMALL --device $dev --epochs 2 -o "$TMP/m.$dev" > "$TMP/t.$dev"
    done
    # tolerances as in the first test
    close_metrics "$TMP/t.cpu" "$TMP/t.cpu-plain" 1e-4 1e-3
    # scoring one model: the same AUCs, the same loglosses to the digits shown
    for split in test val; do
        amtl-eval --model "$F/s.model" --data "$F/d.amtl" --split $split --json > "$TMP/e.cpu"
        amtl-eval --model "$F/s.model" --data "$F/d.amtl" --split $split --json --device cpu-plain > "$TMP/e.cb"
        python3 - "$TMP/e.cpu" "$TMP/e.cb" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a['tasks'].keys() == b['tasks'].keys() and len(a['tasks']) == 4
assert a['mean_auc'] == b['mean_auc'], (a['mean_auc'], b['mean_auc'])
for t in a['tasks']:
    x, y = a['tasks'][t], b['tasks'][t]
    assert x['auc'] == y['auc'], (t, x['auc'], y['auc'])
    assert abs(x['logloss'] - y['logloss']) <= 1e-6, (t, x['logloss'], y['logloss'])
EOF
    done
}

@test "--device cuda without a GPU: exit 1, one error line, nothing written" {
    no_gpu
    run --separate-stderr amtl-supernet --data "$F/d.amtl" $SMALL --device cuda --phase warmup --epochs 1 -o "$TMP/c.ckpt"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [[ "$stderr" == "amtl-supernet: error: device cuda: "* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    run --separate-stderr amtl-train --data "$F/d.amtl" --arch "$F/s.arch" $SMALL --device cuda --epochs 1 -o "$TMP/m.model"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [[ "$stderr" == "amtl-train: error: device cuda: "* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    run --separate-stderr amtl-eval --model "$F/s.model" --data "$F/d.amtl" --device cuda
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [[ "$stderr" == "amtl-eval: error: device cuda: "* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    [ -z "$(ls -A "$TMP")" ]
    # a checkpoint to resume is left as it was
    cp "$F/s.ckpt" "$TMP/c.ckpt"
    run --separate-stderr amtl-supernet --data "$F/d.amtl" $SMALL --device cuda --phase search --epochs 2 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-supernet: error: device cuda: "* ]]
    cmp "$F/s.ckpt" "$TMP/c.ckpt"
    [ "$(ls -A "$TMP")" = c.ckpt ]
}

@test "--device auto without a GPU is the CPU path" {
    no_gpu
    for dev in cpu auto; do
        amtl-supernet --data "$F/d.amtl" $SMALL --device $dev --phase search --epochs 1 -o "$TMP/s.$dev" > "$TMP/s.$dev.m"
        amtl-train --data "$F/d.amtl" --arch "$F/s.arch" $SMALL --device $dev --epochs 1 -o "$TMP/m.$dev" > "$TMP/m.$dev.m"
        amtl-eval --model "$F/s.model" --data "$F/d.amtl" --device $dev > "$TMP/e.$dev"
    done
    diff -u <(no_seconds "$TMP/s.cpu.m") <(no_seconds "$TMP/s.auto.m")
    diff -u <(no_seconds "$TMP/m.cpu.m") <(no_seconds "$TMP/m.auto.m")
    diff -u <(tensors "$TMP/s.cpu") <(tensors "$TMP/s.auto")
    diff -u <(tensors "$TMP/m.cpu") <(tensors "$TMP/m.auto")
    diff -u "$TMP/e.cpu" "$TMP/e.auto"
}

@test "--device gpu is a usage error in every tool" {
    run --separate-stderr amtl-supernet --data "$F/d.amtl" $SMALL --device gpu --phase warmup --epochs 1 -o "$TMP/c.ckpt"
    [ "$status" -eq 2 ]
    [ "$stderr" = "amtl-supernet: error: key 'device' must be one of cpu, cuda, auto, cpu-backend, cpu-plain; got 'gpu'" ]
    run --separate-stderr amtl-train --data "$F/d.amtl" --arch "$F/s.arch" $SMALL --device gpu --epochs 1 -o "$TMP/m.model"
    [ "$status" -eq 2 ]
    [ "$stderr" = "amtl-train: error: key 'device' must be one of cpu, cuda, auto, cpu-backend, cpu-plain; got 'gpu'" ]
    run --separate-stderr amtl-eval --model "$F/s.model" --data "$F/d.amtl" --device gpu
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [ "$stderr" = "amtl-eval: error: key 'device' must be one of cpu, cuda, auto, cpu-backend, cpu-plain; got 'gpu'" ]
    [ -z "$(ls -A "$TMP")" ]
}

@test "cpu-plain with dropout: 1+1 epochs equal 2, from --init and with --resume" {
    for phase in warmup search finetune; do
        local cb="$SMALL --device cpu-plain --set dropout=0.2 --set discretize_ops=2 --phase $phase"
        amtl-supernet --data "$F/d.amtl" $cb --epochs 2 -o "$TMP/two.ckpt" > "$TMP/two"
        amtl-supernet --data "$F/d.amtl" $cb --epochs 1 -o "$TMP/one.ckpt" > "$TMP/ab"
        cp "$TMP/one.ckpt" "$TMP/c.ckpt"
        amtl-supernet --data "$F/d.amtl" $cb --init "$TMP/one.ckpt" --epochs 1 -o "$TMP/oneone.ckpt" >> "$TMP/ab"
        amtl-supernet --data "$F/d.amtl" $cb --epochs 2 --resume -o "$TMP/c.ckpt" > "$TMP/c"
        diff -u <(no_seconds "$TMP/two") <(no_seconds "$TMP/ab")
        diff -u <(no_seconds "$TMP/two" | tail -n 1) <(no_seconds "$TMP/c")
        # from --init, every tensor but the run's first epoch (train.run)
        diff -u <(tensors "$TMP/two.ckpt" | grep -v '^train.run ') <(tensors "$TMP/oneone.ckpt" | grep -v '^train.run ')
        # with --resume, the very same file but for the seconds
        same_file "$TMP/two.ckpt" "$TMP/c.ckpt"
    done
}

# bats test_tags=long
@test "cpu-plain with dropout: SIGTERM mid-epoch, then --resume, gives the uninterrupted run's file" {
    amtl-prep --synthetic --rows 40000 --seed 3 -o "$TMP/long.amtl"
    local cb="$LONG --device cpu-plain --set dropout=0.2 --phase search --epochs 2"
    amtl-supernet --data "$TMP/long.amtl" $cb -o "$TMP/ref.ckpt" > "$TMP/ref.m"
    # as in 50-reliability.bats: wait for the first epoch's checkpoint, a
    # little more, then stop the run
    amtl-supernet --data "$TMP/long.amtl" $cb -o "$TMP/c.ckpt" > "$TMP/c.m" 2> "$TMP/c.err" &
    local pid=$! i=0 rc=0
    while [ ! -e "$TMP/c.ckpt" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    [ -e "$TMP/c.ckpt" ]
    sleep 0.1
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    [ "$rc" -eq 143 ]
    grep -Eq "^amtl-supernet: SIGTERM: stopped in epoch 1 after [0-9]+ of 8000 batches; checkpoint '$TMP/c.ckpt' written, the same command with --resume continues from it\$" "$TMP/c.err"
    tensors "$TMP/c.ckpt" | grep -q '^train.partial '
    run --separate-stderr amtl-supernet --data "$TMP/long.amtl" $cb --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 0 ]
    printf '%s\n' "$output" >> "$TMP/c.m"
    diff -u <(no_seconds "$TMP/ref.m") <(no_seconds "$TMP/c.m")
    same_file "$TMP/ref.ckpt" "$TMP/c.ckpt"
}

@test "cpu-plain with dropout: the same seed gives the same checkpoint, another seed another" {
    local cb="$SMALL --device cpu-plain --set dropout=0.3 --phase search --epochs 2 --set discretize_ops=2"
    amtl-supernet --data "$F/d.amtl" $cb -o "$TMP/a.ckpt" > /dev/null
    amtl-supernet --data "$F/d.amtl" $cb -o "$TMP/b.ckpt" > /dev/null
    same_file "$TMP/a.ckpt" "$TMP/b.ckpt"
    amtl-supernet --data "$F/d.amtl" $cb --set seed=7 -o "$TMP/c.ckpt" > /dev/null
    if same_file "$TMP/a.ckpt" "$TMP/c.ckpt" > /dev/null; then false; fi
    # the dropout is drawn: without it the weights differ
    amtl-supernet --data "$F/d.amtl" $cb --set dropout=0 -o "$TMP/d.ckpt" > /dev/null
    [ "$(tensors "$TMP/a.ckpt" | grep '^towers.0.mlp_layers.4.weight ')" != "$(tensors "$TMP/d.ckpt" | grep '^towers.0.mlp_layers.4.weight ')" ]
}

@test "cpu and cpu-backend: the same checkpoint bytes with dropout; with deterministic, at 1, 2 and 3 threads" {
    # one step over one CPU backend: the device's two names give the same
    # file (but for the seconds in its history) at a thread count, and with
    # deterministic at any count, in every phase of a search with dropout,
    # sparse_embedding, clipping and the bi-level step, and in amtl-train's
    # fine-tune of its export
    local keys="--set dropout=0.3 --set sparse_embedding=true --set clip_grad_norm=1 --set arch_data=val --set discretize_ops=3"
    for dev in cpu cpu-backend; do
        amtl-supernet --data "$F/d.amtl" $SMALL $keys --device $dev --threads 2 --phase search --epochs 2 -o "$TMP/n.$dev" > /dev/null
        amtl-discretize --export -o "$TMP/na.$dev" "$TMP/n.$dev"
        amtl-train --data "$F/d.amtl" --arch "$TMP/na.$dev" --init "$TMP/n.$dev" $SMALL --set dropout=0.3 --device $dev --threads 2 --epochs 2 -o "$TMP/nm.$dev" > /dev/null
    done
    same_file "$TMP/n.cpu" "$TMP/n.cpu-backend"
    same_file "$TMP/nm.cpu" "$TMP/nm.cpu-backend"
    keys="$keys --set deterministic=true"
    local runs="cpu:1 cpu-backend:2 cpu:3 cpu-backend:1"
    for r in $runs; do
        local dev=${r%:*} t=${r#*:}
        amtl-supernet --data "$F/d.amtl" $SMALL $keys --device $dev --threads $t --phase warmup --epochs 1 -o "$TMP/w.$r" > /dev/null
        amtl-supernet --data "$F/d.amtl" $SMALL $keys --device $dev --threads $t --init "$TMP/w.$r" --phase search --epochs 2 -o "$TMP/s.$r" > /dev/null
        amtl-discretize --export -o "$TMP/a.$r" "$TMP/s.$r"
        amtl-train --data "$F/d.amtl" --arch "$TMP/a.$r" --init "$TMP/s.$r" $SMALL --set dropout=0.3 --set deterministic=true --device $dev --threads $t --epochs 2 -o "$TMP/m.$r" > /dev/null
    done
    for r in $runs; do
        same_file "$TMP/w.cpu:1" "$TMP/w.$r"
        same_file "$TMP/s.cpu:1" "$TMP/s.$r"
        cmp "$TMP/a.cpu:1" "$TMP/a.$r"
        same_file "$TMP/m.cpu:1" "$TMP/m.$r"
    done
    # scoring too: amtl-eval's threads (AMTL_THREADS) change no digit
    AMTL_THREADS=1 amtl-eval --model "$TMP/m.cpu:1" --data "$F/d.amtl" --json > "$TMP/e1"
    AMTL_THREADS=3 amtl-eval --model "$TMP/m.cpu:1" --data "$F/d.amtl" --json > "$TMP/e3"
    grep -q '"mean_auc":0\.[0-9]' "$TMP/e1"
    diff <(sed 's/"seconds":[0-9.]*//' "$TMP/e1") <(sed 's/"seconds":[0-9.]*//' "$TMP/e3")
    # the dropout was drawn: without it the weights differ
    amtl-supernet --data "$F/d.amtl" $SMALL $keys --set dropout=0 --threads 1 --phase warmup --epochs 1 -o "$TMP/nodrop" > /dev/null
    ! same_file "$TMP/w.cpu:1" "$TMP/nodrop" > /dev/null
}

@test "cpu-plain: the same checkpoint bytes at 1 and 3 threads" {
    # (its MixedOps are composed of primitives whose sums do not depend on
    # the thread count: no key needed)
    local cb="$SMALL --device cpu-plain --set dropout=0.2 --phase search --epochs 2 --set discretize_ops=2"
    amtl-supernet --data "$F/d.amtl" $cb --threads 1 -o "$TMP/a.ckpt" > /dev/null
    amtl-supernet --data "$F/d.amtl" $cb --threads 3 -o "$TMP/b.ckpt" > /dev/null
    same_file "$TMP/a.ckpt" "$TMP/b.ckpt"
}

@test "amtl-train on cpu-plain with clip_grad_norm and sparse_embedding equals cpu" {
    # the keys the device step once refused, in a fine-tune from scratch;
    # training losses within 1e-4 (validation metrics as in the tests above)
    amtl-discretize --baseline mmoe --op MLP-8 --data "$F/d.amtl" $MODEL -o "$TMP/m.arch"
    for dev in cpu cpu-plain; do
        amtl-train --data "$F/d.amtl" --arch "$TMP/m.arch" --from-scratch $SMALL --device $dev \
            --set dropout=0 --set clip_grad_norm=0.01 --set sparse_embedding=true --epochs 2 \
            -o "$TMP/m.$dev" > "$TMP/t.$dev"
    done
    close_metrics "$TMP/t.cpu" "$TMP/t.cpu-plain" 1e-4 -
}
