#!/usr/bin/env bats
# Data-parallel training under mpirun (amtl-supernet(1), DISTRIBUTED
# TRAINING): one rank is one process bit for bit; 2, 3 and 8 ranks (past 2
# oversubscribed on 2 cores) give one process's checkpoint up to float
# summation order, dropout and synchronised BatchNorm included, ranks that
# hold no row of a batch too; the linear floor's fit likewise; a killed rank
# ends the job, a stopped one stops them all, and --resume continues on
# another rank count.
bats_require_minimum_version 1.5.0
load helpers

MODEL="--set batch_size=256 --set ops=[Identity,MLP-8,MLP-16] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8]"
SMALL="$MODEL --quiet"
# batches of 4 rows (16000 an epoch of start_long_job's data: 2 s or more of 2
# ranks here), so that a signal sent 0.3 s into the second epoch lands
# mid-epoch on a faster machine too (with 1000 batches of 16 rows, half a
# second an epoch, a fast one had finished all three epochs by then)
LONG="--set ops=[Identity,MLP-8,MLP-16] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8] --set batch_size=4 --set discretize_ops=2 --quiet"

setup_file() {
    export F="$BATS_FILE_TMPDIR"
    # the tests run as root here; Open MPI refuses that unless told
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # no network interfaces to probe on one machine
    export OMPI_MCA_btl=self,vader
    # under check-asan: whole stacks, so that tests/lsan-mpi.supp can tell
    # Open MPI's allocations (whose libraries keep no frame pointers) from ours
    if [ -n "${ASAN_OPTIONS:-}" ]; then
        export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
    fi
    amtl-prep --synthetic --rows 1500 --seed 3 -o "$F/d.amtl"
}

need_mpi() {
    command -v mpirun > /dev/null || skip "mpirun not installed (make deps installs openmpi-bin)"
}

ranks() {
    local n=$1
    shift
    mpirun --oversubscribe -np "$n" "$@"
}

# A 3-epoch search on 2 ranks in the background (its mpirun's pid in JOB),
# once its first checkpoint is written and a little more.
start_long_job() {
    amtl-prep --synthetic --rows 80000 --seed 3 -o "$TMP/long.amtl"
    # the metrics into a file rank 0 writes itself (mpirun's forwarded stdout
    # may lose its last lines when the job is killed)
    mpirun -np 2 amtl-supernet --data "$TMP/long.amtl" $LONG --phase search --epochs 3 \
        --metrics "$TMP/c.m" -o "$TMP/c.ckpt" 2> "$TMP/c.err" &
    JOB=$!
    # (an epoch under AddressSanitizer, make check-asan, takes half a minute)
    local i=0
    while [ ! -e "$TMP/c.ckpt" ] && [ $i -lt 4800 ]; do sleep 0.05; i=$((i + 1)); done
    [ -e "$TMP/c.ckpt" ]
    sleep 0.3
}

@test "the job's collectives on 1 and 3 ranks (oversubscribed)" {
    need_mpi
    local t="$BATS_TEST_DIRNAME/../../${BUILD:-build}/tests/test_comm"
    [ -x "$t" ] || skip "build/tests/test_comm not built"
    run ranks 3 "$t"
    [ "$status" -eq 0 ]
    [ "$(grep -c '^ok ' <<< "$output")" -eq 4 ]
    ! grep -q '^not ok' <<< "$output"
}

@test "mpirun -np 1 (unbound): the same checkpoint and metrics as one process, dropout on" {
    need_mpi
    amtl-supernet --data "$F/d.amtl" $SMALL --phase search --epochs 2 -o "$TMP/one.ckpt" > "$TMP/one.m"
    # unbound: Open MPI binds one rank to one core, and that rank then
    # runs one thread, whose sums round otherwise than two threads'
    mpirun --bind-to none -np 1 amtl-supernet --data "$F/d.amtl" $SMALL --phase search --epochs 2 -o "$TMP/r1.ckpt" > "$TMP/r1.m"
    same_file "$TMP/one.ckpt" "$TMP/r1.ckpt"
    diff -u <(no_seconds "$TMP/one.m") <(no_seconds "$TMP/r1.m")
}

# The tolerance: every tensor within 1e-4 of one process's (relative, or
# absolute below 1).  The ranks sum in another order than one process does,
# and BatchNorm's 1/std amplifies that rounding step by step, as two thread
# counts of one process are amplified (tests/bats/60-device.bats): here,
# after 10 steps of 256 rows or 25 of 8, the worst tensor is about 4e-5 apart.
@test "2 and 3 ranks: one process's checkpoint to summation order, one metrics line per epoch from rank 0" {
    need_mpi
    amtl-supernet --data "$F/d.amtl" $SMALL --phase search --epochs 2 -o "$TMP/one.ckpt" > "$TMP/one.m"
    for n in 2 3; do
        run --separate-stderr ranks $n amtl-supernet --data "$F/d.amtl" $SMALL --phase search --epochs 2 -o "$TMP/r$n.ckpt"
        [ "$status" -eq 0 ]
        [ -z "$stderr" ]
        printf '%s\n' "$output" > "$TMP/r$n.m"
        [ "$(wc -l < "$TMP/r$n.m")" -eq 2 ]
        python3 "$BATS_TEST_DIRNAME/amtlfile.py" close "$TMP/one.ckpt" "$TMP/r$n.ckpt" 1e-4
        close_metrics "$TMP/one.m" "$TMP/r$n.m" 1e-5 1e-5
        ! ls "$TMP" | grep -q '\.tmp'
    done
}

@test "3 and 8 ranks on batches of 8 rows (ranks holding none of a batch's rows), every training key" {
    need_mpi
    amtl-prep --synthetic --rows 250 --seed 3 -o "$TMP/d.amtl"
    local keys="--set batch_size=8 --set tower_layers=[8,4] --set arch_data=val --set clip_grad_norm=1 --set embedding_l2=0.001 --set task_conditions=[task1=task0,task2=task0] --set task_weights=[1,2,0.5,1]"
    for dev in cpu cpu-plain; do
        amtl-supernet --data "$TMP/d.amtl" $SMALL $keys --device $dev --phase search --epochs 1 -o "$TMP/one.ckpt" > /dev/null
        for n in 3 8; do
            ranks $n amtl-supernet --data "$TMP/d.amtl" $SMALL $keys --device $dev --phase search --epochs 1 -o "$TMP/r$n.ckpt" > /dev/null
            python3 "$BATS_TEST_DIRNAME/amtlfile.py" close "$TMP/one.ckpt" "$TMP/r$n.ckpt" 1e-4
        done
    done
}

@test "the bi-level search (arch_data: val) and amtl-train of its export on 3 ranks, amtl-train as one process's" {
    need_mpi
    ranks 3 amtl-supernet --data "$F/d.amtl" $SMALL --set arch_data=val --phase search --epochs 2 --set discretize_ops=4 -o "$TMP/s.ckpt" > "$TMP/s.m"
    [ "$(wc -l < "$TMP/s.m")" -eq 2 ]
    amtl-discretize --export -o "$TMP/s.arch" "$TMP/s.ckpt"
    ranks 3 amtl-train --data "$F/d.amtl" --arch "$TMP/s.arch" --init "$TMP/s.ckpt" $SMALL --epochs 2 -o "$TMP/s.model" > "$TMP/t.m"
    [ "$(wc -l < "$TMP/t.m")" -eq 2 ]
    amtl-train --data "$F/d.amtl" --arch "$TMP/s.arch" --init "$TMP/s.ckpt" $SMALL --epochs 2 -o "$TMP/one.model" > /dev/null
    python3 "$BATS_TEST_DIRNAME/amtlfile.py" close "$TMP/one.model" "$TMP/s.model" 1e-4
    run amtl-eval --data "$F/d.amtl" --model "$TMP/s.model" --split test --json
    [ "$status" -eq 0 ]
    python3 -c 'import json,sys; m = json.loads(sys.argv[1]); assert m["mean_auc"] > 0.6, m' "$output"
}

@test "the linear floor on 2 ranks: the same fit as one process, to summation order" {
    need_mpi
    amtl-discretize --baseline linear --data "$F/d.amtl" -o "$TMP/lin.arch"
    amtl-train --data "$F/d.amtl" --arch "$TMP/lin.arch" --quiet -o "$TMP/one.model" > /dev/null
    ranks 2 amtl-train --data "$F/d.amtl" --arch "$TMP/lin.arch" --quiet -o "$TMP/r2.model" > /dev/null
    a=$(amtl-eval --data "$F/d.amtl" --model "$TMP/one.model" --split val --json)
    b=$(amtl-eval --data "$F/d.amtl" --model "$TMP/r2.model" --split val --json)
    python3 - "$a" "$b" <<'EOF'
import json, sys
a, b = (json.loads(x) for x in sys.argv[1:])
for k in a["tasks"]:
    x, y = a["tasks"][k]["auc"], b["tasks"][k]["auc"]
    assert abs(x - y) <= 1e-4, (k, x, y)
    x, y = a["tasks"][k]["logloss"], b["tasks"][k]["logloss"]
    assert abs(x - y) <= 1e-5, (k, x, y)
EOF
}

# bats test_tags=long
@test "a killed rank ends the job, the last checkpoint intact; --resume continues on 3 ranks, then 1" {
    need_mpi
    start_long_job
    kill -KILL "$(pgrep -P "$JOB" | tail -n 1)"
    local rc=0
    wait "$JOB" || rc=$?
    [ "$rc" -ne 0 ]
    grep -q "exited on signal 9" "$TMP/c.err"
    # no temp file, and the checkpoint is a whole epoch's
    [ "$(ls "$TMP")" = "$(printf 'c.ckpt\nc.err\nc.m\nlong.amtl')" ]
    [ -z "$(tensors "$TMP/c.ckpt" | grep '^train.partial ')" ]
    local done_epochs
    done_epochs=$(wc -l < "$TMP/c.m")
    [ "$done_epochs" -ge 1 ] && [ "$done_epochs" -lt 3 ]
    ranks 3 amtl-supernet --data "$TMP/long.amtl" $LONG --phase search --epochs 3 --resume --metrics "$TMP/c.m" -o "$TMP/c.ckpt"
    [ "$(no_seconds "$TMP/c.m" | grep -o '"epoch":[0-9]*' | tr '\n' ' ')" = '"epoch":0 "epoch":1 "epoch":2 ' ]
    # done: one process resumes to find nothing left to train
    run amtl-supernet --data "$TMP/long.amtl" $LONG --phase search --epochs 3 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 0 ] && [ -z "$output" ]
}

# bats test_tags=long
@test "SIGTERM to the ranks: every rank stops at the same batch, rank 0 writes the part-done epoch, one process resumes it" {
    need_mpi
    start_long_job
    pkill -TERM -P "$JOB"
    local rc=0
    wait "$JOB" || rc=$?
    [ "$rc" -eq 143 ] || { echo "mpirun: exit $rc"; cat "$TMP/c.err"; cat "$TMP/c.m"; false; }
    # both ranks say the same: the same epoch and batch
    [ "$(grep -c '^amtl-supernet: SIGTERM: stopped in epoch ' "$TMP/c.err")" -eq 2 ]
    [ "$(grep '^amtl-supernet: SIGTERM' "$TMP/c.err" | sort -u | wc -l)" -eq 1 ]
    tensors "$TMP/c.ckpt" | grep -q '^train.partial i64 \[9\] '
    amtl-supernet --data "$TMP/long.amtl" $LONG --phase search --epochs 3 --resume --metrics "$TMP/c.m" -o "$TMP/c.ckpt"
    [ "$(no_seconds "$TMP/c.m" | grep -o '"epoch":[0-9]*' | tr '\n' ' ')" = '"epoch":0 "epoch":1 "epoch":2 ' ]
}

@test "several ranks refuse sparse_embedding with a clear error and end the job" {
    need_mpi
    run --separate-stderr ranks 2 amtl-supernet --data "$F/d.amtl" $SMALL --set sparse_embedding=true --phase warmup --epochs 1 -o "$TMP/x.ckpt"
    [ "$status" -ne 0 ]
    grep -q "^amtl-supernet: error: sparse_embedding: true is not supported with several ranks" <<< "$stderr"
    [ ! -e "$TMP/x.ckpt" ]
}

@test "search.mk RANKS=2 runs the training stages under mpirun" {
    need_mpi
    cd "$BATS_TEST_DIRNAME/../.."
    run make -n -f pipelines/search.mk BIN="$AMTL_BIN" CONFIG=configs/demo.yaml DATASET="$F/d.amtl" OUT="$TMP/run" RANKS=2 MPIRUN="mpirun --oversubscribe" BASELINES=mmoe
    [ "$status" -eq 0 ]
    grep -q "mpirun --oversubscribe -np 2 $AMTL_BIN/amtl-supernet " <<< "$output"
    grep -q "mpirun --oversubscribe -np 2 $AMTL_BIN/amtl-train " <<< "$output"
    ! grep -q "mpirun.*amtl-eval\|mpirun.*amtl-discretize" <<< "$output"
}
