#!/usr/bin/env bats
# Reliability: stops and kills that resume exactly, non-finite training,
# corrupt inputs for every reader, full disks, unwritable and vanished paths.
bats_require_minimum_version 1.5.0
load helpers

MODEL="--set ops=[Identity,MLP-8,MLP-16] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8] --set threads=1"
SMALL="$MODEL --set batch_size=256 --quiet"
# long epochs (8000 batches of 4 rows) so that a signal lands mid-epoch; the
# tests using them are tagged "long" (tests/run-valgrind leaves them out)
LONG="$MODEL --set batch_size=4 --set discretize_ops=2 --quiet"

setup_file() {
    export F="$BATS_FILE_TMPDIR"
    small_files "$F" $SMALL
}

# The long data and the uninterrupted 3-epoch search run on it, made once.
reference_run() {
    [ -e "$F/long.amtl" ] || amtl-prep --synthetic --rows 40000 --seed 3 -o "$F/long.amtl"
    if [ ! -e "$F/ref.ckpt" ]; then
        amtl-supernet --data "$F/long.amtl" $LONG --phase search --epochs 3 -o "$F/ref.tmp" > "$F/ref.m"
        mv "$F/ref.tmp" "$F/ref.ckpt"
    fi
}

# Starts the long run in the background, waits for its first checkpoint and
# a little more, then sends signal $1; the run's status lands in $TMP/rc.
interrupt_long_run() {
    amtl-supernet --data "$F/long.amtl" $LONG --phase search --epochs 3 -o "$TMP/c.ckpt" \
        > "$TMP/c.m" 2> "$TMP/c.err" &
    local pid=$! i=0
    while [ ! -e "$TMP/c.ckpt" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    [ -e "$TMP/c.ckpt" ]
    sleep 0.4
    kill -"$1" "$pid"
    local rc=0
    wait "$pid" || rc=$?
    echo "$rc" > "$TMP/rc"
}

resume_equals_reference() {
    run --separate-stderr amtl-supernet --data "$F/long.amtl" $LONG --phase search --epochs 3 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 0 ]
    printf '%s\n' "$output" >> "$TMP/c.m"
    # the last epoch's metrics and every tensor equal the uninterrupted run's
    diff -u <(no_seconds "$F/ref.m" | tail -n 1) <(no_seconds "$TMP/c.m" | tail -n 1)
    diff -u <(tensors "$F/ref.ckpt") <(tensors "$TMP/c.ckpt")
}

# bats test_tags=long
@test "SIGKILL mid-epoch, then --resume: the same metrics and tensors as an uninterrupted run" {
    reference_run
    interrupt_long_run KILL
    [ "$(cat "$TMP/rc")" -eq 137 ]
    # the checkpoint on disk is a complete one (written at the end of an epoch)
    [ -z "$(tensors "$TMP/c.ckpt" | grep '^train.partial ')" ]
    resume_equals_reference
    # every epoch's metrics line appears once, in order
    diff -u <(no_seconds "$F/ref.m") <(no_seconds "$TMP/c.m")
}

# bats test_tags=long
@test "SIGTERM mid-epoch: a checkpoint of the part-done epoch, exit 143, and --resume equals an uninterrupted run" {
    reference_run
    interrupt_long_run TERM
    [ "$(cat "$TMP/rc")" -eq 143 ]
    [ "$(wc -l < "$TMP/c.err")" -eq 1 ]
    grep -Eq "^amtl-supernet: SIGTERM: stopped in epoch [0-9]+ after [0-9]+ of 8000 batches; checkpoint '$TMP/c.ckpt' written, the same command with --resume continues from it\$" "$TMP/c.err"
    tensors "$TMP/c.ckpt" | grep -q '^train.partial i64 \[9\] '
    # a part-done search epoch does not continue as another phase
    cp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    run --separate-stderr amtl-supernet --data "$F/long.amtl" $LONG --phase warmup --epochs 3 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-supernet: error: epoch "*" was stopped part-way in the search phase and cannot continue as warmup" ]]
    cmp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    resume_equals_reference
}

# bats test_tags=long
@test "SIGINT mid-epoch: exit 130 and --resume continues" {
    reference_run
    interrupt_long_run INT
    [ "$(cat "$TMP/rc")" -eq 130 ]
    grep -q "^amtl-supernet: SIGINT: stopped in epoch " "$TMP/c.err"
    resume_equals_reference
}

# bats test_tags=long
@test "shuffle_window and epoch_batches: SIGTERM mid-epoch, then --resume equals an uninterrupted run" {
    reference_run
    local W="$LONG --set shuffle_window=3000 --set epoch_batches=5000"
    amtl-supernet --data "$F/long.amtl" $W --phase warmup --epochs 2 -o "$TMP/w.ckpt" > "$TMP/w.m"
    # an epoch is 5000 batches of the 8000, and another order than the full shuffle's
    amtl-supernet --data "$F/long.amtl" $LONG --set epoch_batches=5000 --phase warmup --epochs 2 \
        -o "$TMP/full.ckpt" > "$TMP/full.m"
    ! diff -q <(tensors "$TMP/w.ckpt") <(tensors "$TMP/full.ckpt")
    amtl-supernet --data "$F/long.amtl" $W --phase warmup --epochs 2 -o "$TMP/c.ckpt" \
        > "$TMP/c.m" 2> "$TMP/c.err" &
    local pid=$! i=0
    while [ ! -e "$TMP/c.ckpt" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.4
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 143 ]
    grep -Eq "stopped in epoch [0-9]+ after [0-9]+ of 5000 batches" "$TMP/c.err"
    run --separate-stderr amtl-supernet --data "$F/long.amtl" $W --phase warmup --epochs 2 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 0 ]
    printf '%s\n' "$output" >> "$TMP/c.m"
    diff -u <(no_seconds "$TMP/w.m" | tail -n 1) <(no_seconds "$TMP/c.m" | tail -n 1)
    diff -u <(tensors "$TMP/w.ckpt") <(tensors "$TMP/c.ckpt")
}

# bats test_tags=long
@test "amtl-train: SIGTERM and SIGINT stop at a batch boundary, exit 143 and 130, no model and no temp file" {
    [ -e "$F/long.amtl" ] || amtl-prep --synthetic --rows 40000 --seed 3 -o "$F/long.amtl"
    for sig in TERM INT; do
        mkdir -p "$TMP/$sig"
        amtl-train --data "$F/long.amtl" --arch "$F/s.arch" $LONG --epochs 50 \
            --metrics "$TMP/$sig/m" -o "$TMP/$sig/model" 2> "$TMP/$sig/err" &
        local pid=$!
        # a stop during the first epoch's batches
        sleep 0.5
        kill -"$sig" "$pid"
        local rc=0
        wait "$pid" || rc=$?
        [ "$rc" -eq $([ $sig = TERM ] && echo 143 || echo 130) ]
        [ "$(wc -l < "$TMP/$sig/err")" -eq 1 ]
        grep -Eq "^amtl-train: SIG$sig: stopped in epoch [0-9]+ after [0-9]+ of [0-9]+ batches" "$TMP/$sig/err"
        [ ! -e "$TMP/$sig/model" ]
        [ -z "$(ls "$TMP/$sig" | grep -v '^err$' | grep -v '^m$')" ]
    done
}

# The temp files of writes to the output $1 in its directory (none: empty).
temps() {
    ls -A "${1%/*}" | grep -F ".${1##*/}.tmp." || true
}

# A disk that hangs after the bytes are written: an LD_PRELOAD library whose
# fsync never returns (tests/bats/stall_fsync.c), built once.
stall_lib() {
    [ -e "$F/stall_fsync.so" ] ||
        ${CC:-cc} -shared -fPIC -o "$F/stall_fsync.so" "$BATS_TEST_DIRNAME/stall_fsync.c" ||
        skip "cannot build tests/bats/stall_fsync.c (no C compiler)"
}

# Runs the command after $1 in the background on that disk and waits until
# the temp file of its output $1 appears; the writer then stays between its
# write and its rename until killed.  Its pid lands in $stalled.
start_stalled() {
    local out=$1 i=0
    shift
    LD_PRELOAD="$F/stall_fsync.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
        "$@" > /dev/null 2>&1 3>&- &
    stalled=$!
    while [ -z "$(temps "$out")" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
    [ -n "$(temps "$out")" ]
}

# helpers.bash's teardown, and a stalled writer that a failed test left
teardown() {
    [ -z "${stalled:-}" ] || kill -KILL "$stalled" 2> /dev/null || true
    rm -rf "$TMP"
}

kill_stalled() {
    kill -KILL "$stalled"
    local rc=0
    wait "$stalled" || rc=$?
    [ "$rc" -eq 137 ]
}

@test "SIGKILL in the middle of writing a checkpoint: the old one intact, the temp file gone with the next write" {
    stall_lib
    amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/c.ckpt" > /dev/null
    cp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    start_stalled "$TMP/c.ckpt" amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup \
        --epochs 2 --resume -o "$TMP/c.ckpt"
    kill_stalled
    # what the kill leaves: the old checkpoint, and the killed writer's temp
    # file, named for the target and the writer's pid
    cmp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    [[ "$(temps "$TMP/c.ckpt")" =~ ^\.c\.ckpt\.tmp\.$stalled\.[A-Za-z0-9]{6}$ ]]
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 2 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 0 ]
    [ -z "$(temps "$TMP/c.ckpt")" ]
    [ "$(ls -A "$TMP" | tr '\n' ' ')" = "c.ckpt keep.ckpt " ]
    ! cmp -s "$TMP/c.ckpt" "$TMP/keep.ckpt"
    amtl-discretize --export -o "$TMP/c.arch" "$TMP/c.ckpt"
}

@test "a running writer's temp file stays: other outputs in its directory, and its own target, written meanwhile" {
    stall_lib
    amtl-prep --synthetic --rows 300 --seed 1 -o "$TMP/a.amtl"
    cp "$TMP/a.amtl" "$TMP/keep.amtl"
    start_stalled "$TMP/a.amtl" amtl-prep --synthetic --rows 300 --seed 2 -o "$TMP/a.amtl"
    local left
    left=$(temps "$TMP/a.amtl")
    # another output in the same directory, then the same target
    amtl-prep --synthetic --rows 300 --seed 3 -o "$TMP/b.amtl"
    [ "$(temps "$TMP/a.amtl")" = "$left" ]
    amtl-prep --synthetic --rows 300 --seed 4 -o "$TMP/a.amtl"
    [ "$(temps "$TMP/a.amtl")" = "$left" ]
    ! cmp -s "$TMP/a.amtl" "$TMP/keep.amtl"
    cp "$TMP/a.amtl" "$TMP/keep.amtl"
    # once its writer is killed, the next write to the target removes it;
    # a kill leaves the target as it was
    kill_stalled
    [ "$(temps "$TMP/a.amtl")" = "$left" ]
    cmp "$TMP/a.amtl" "$TMP/keep.amtl"
    amtl-prep --synthetic --rows 300 --seed 5 -o "$TMP/b.amtl"
    [ "$(temps "$TMP/a.amtl")" = "$left" ]
    amtl-prep --synthetic --rows 300 --seed 6 -o "$TMP/a.amtl"
    [ -z "$(temps "$TMP/a.amtl")" ]
    [ "$(ls -A "$TMP" | tr '\n' ' ')" = "a.amtl b.amtl keep.amtl " ]
}

@test "--resume: --epochs counts from the run's start; a finished run is not redone" {
    amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 2 -o "$TMP/two.ckpt" > "$TMP/two"
    amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/c.ckpt" > "$TMP/c"
    # the same command with --epochs 2 --resume trains the one epoch missing
    amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 2 --resume -o "$TMP/c.ckpt" >> "$TMP/c"
    diff -u <(no_seconds "$TMP/two") <(no_seconds "$TMP/c")
    diff -u <(tensors "$TMP/two.ckpt") <(tensors "$TMP/c.ckpt")
    # rerunning it changes nothing
    cp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 2 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    cmp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    # from --init, the run starts at the init's epoch: 2 more epochs, to epoch 3
    amtl-supernet --data "$F/small.amtl" $SMALL --init "$TMP/c.ckpt" --phase warmup --epochs 2 --resume -o "$TMP/d.ckpt" > "$TMP/d"
    [ "$(no_seconds "$TMP/d" | grep -o '"epoch":[0-9]*' | tr '\n' ' ')" = '"epoch":2 "epoch":3 ' ]
}

@test "a non-finite loss stops training naming epoch and batch; nothing is written" {
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --set lr=1e38 --phase warmup --epochs 2 -o "$TMP/n.ckpt"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: non-finite loss in epoch 0, batch 1" ]
    [ ! -e "$TMP/n.ckpt" ]
    # resuming a good checkpoint into a blow-up leaves the good one as it was
    amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/n.ckpt" > /dev/null
    cp "$TMP/n.ckpt" "$TMP/keep.ckpt"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --set lr=1e38 --phase warmup --epochs 2 --resume -o "$TMP/n.ckpt"
    [ "$status" -eq 1 ]
    # (the loss, or already the gradient of the first blown-up batch)
    [[ "$stderr" =~ ^"amtl-supernet: error: non-finite "(loss|gradient)" in epoch 1, batch 1"$ ]]
    cmp "$TMP/n.ckpt" "$TMP/keep.ckpt"
}

@test "weights that overflow in the last step of an epoch are never saved" {
    # one batch per epoch: the step itself overflows, and no loss sees it
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $MODEL --quiet --set batch_size=2048 --set lr=1e38 --phase warmup --epochs 1 -o "$TMP/n.ckpt"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-supernet: error: non-finite weights in epoch 0 after batch 0 (tensor '"*"')" ]]
    [ ! -e "$TMP/n.ckpt" ]
    run --separate-stderr amtl-train --data "$F/small.amtl" --arch "$F/s.arch" $MODEL --quiet --set batch_size=2048 --set lr=1e38 --epochs 1 -o "$TMP/n.model"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-train: error: non-finite "* ]]
    [ ! -e "$TMP/n.model" ]
}

# corrupt inputs: $1 = a good file, writes $TMP/empty, $TMP/garbage,
# $TMP/truncated
corrupt_set() {
    : > "$TMP/empty"
    printf 'this is not an amtl file\n' > "$TMP/garbage"
    head -c $(( $(stat -c %s "$1") / 2 )) "$1" > "$TMP/truncated"
}

# runs "$@" with @IN@ replaced by each corrupt file; expects exit 1, the tool's
# error line naming the file, and no output file $TMP/out
check_corrupt() {
    local tool=$1 f
    shift
    for f in empty garbage truncated; do
        local args=() a
        for a in "$@"; do args+=("${a//@IN@/$TMP/$f}"); done
        run --separate-stderr "$tool" "${args[@]}"
        [ "$status" -eq 1 ]
        case $f in
            empty) [ "$stderr" = "$tool: error: $TMP/empty: empty file, not an amtl file" ] ;;
            garbage) [ "$stderr" = "$tool: error: $TMP/garbage: not an amtl file (it does not start with a msgpack map)" ] ;;
            truncated) [ "$stderr" = "$tool: error: $TMP/truncated: damaged file: it does not end with its checksum (truncated, damaged at the end, or written without one)" ] ;;
        esac
        [ ! -e "$TMP/out" ]
    done
}

@test "corrupt dataset: empty, garbage, truncated, wrong kind" {
    corrupt_set "$F/small.amtl"
    check_corrupt amtl-supernet --data @IN@ $SMALL --phase warmup --epochs 1 -o "$TMP/out"
    check_corrupt amtl-train --data @IN@ --arch "$F/s.arch" $SMALL --epochs 1 -o "$TMP/out"
    check_corrupt amtl-eval --model "$F/s.model" --data @IN@
    run --separate-stderr amtl-supernet --data "$F/s.ckpt" $SMALL --phase warmup --epochs 1 -o "$TMP/out"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: $F/s.ckpt: expected a file of kind \"dataset\", got \"checkpoint\"" ]
    [ ! -e "$TMP/out" ]
}

@test "corrupt checkpoint: empty, garbage, truncated, wrong kind" {
    corrupt_set "$F/s.ckpt"
    check_corrupt amtl-supernet --data "$F/small.amtl" --init @IN@ $SMALL --phase warmup --epochs 1 -o "$TMP/out"
    check_corrupt amtl-discretize -k 1 -o "$TMP/out" @IN@
    check_corrupt amtl-train --data "$F/small.amtl" --arch "$F/s.arch" --init @IN@ $SMALL --epochs 1 -o "$TMP/out"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" --init "$F/small.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/out"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: $F/small.amtl: a dataset file, expected a checkpoint or a model" ]
    run --separate-stderr amtl-discretize -k 1 -o "$TMP/out" "$F/s.arch"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-discretize: error: $F/s.arch: expected a file of kind \"checkpoint\", got \"architecture\"" ]
    [ ! -e "$TMP/out" ]
    # --resume from a corrupt output checkpoint refuses and leaves it alone
    cp "$TMP/truncated" "$TMP/c.ckpt"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 1 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-supernet: error: $TMP/c.ckpt: damaged file: it does not end with its checksum "* ]]
    cmp "$TMP/c.ckpt" "$TMP/truncated"
}

@test "corrupt architecture: empty, garbage, truncated, wrong kind" {
    corrupt_set "$F/s.arch"
    check_corrupt amtl-train --data "$F/small.amtl" --arch @IN@ $SMALL --epochs 1 -o "$TMP/out"
    check_corrupt amtl-discretize --show @IN@
    run --separate-stderr amtl-train --data "$F/small.amtl" --arch "$F/s.ckpt" $SMALL --epochs 1 -o "$TMP/out"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-train: error: $F/s.ckpt: expected a file of kind \"architecture\", got \"checkpoint\"" ]
    [ ! -e "$TMP/out" ]
}

@test "corrupt model: empty, garbage, truncated, wrong kind" {
    corrupt_set "$F/s.model"
    check_corrupt amtl-eval --model @IN@ --data "$F/small.amtl"
    run --separate-stderr amtl-eval --model "$F/s.arch" --data "$F/small.amtl"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-eval: error: $F/s.arch: expected a file of kind \"model\", got \"architecture\"" ]
}

@test "corrupt CSV and YAML inputs: empty, garbage, truncated, wrong kind" {
    printf '' > "$TMP/empty.csv"
    printf 'a,b\x01\x02,c\n' > "$TMP/garbage.csv"
    head -c 150 "$FIXTURES/prep/tiny.csv" > "$TMP/truncated.csv"
    run --separate-stderr amtl-prep -o "$TMP/out" "$TMP/empty.csv"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-prep: error: $TMP/empty.csv:1:1: empty file" ]
    run --separate-stderr amtl-prep -o "$TMP/out" "$TMP/garbage.csv"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-prep: error: $TMP/garbage.csv:1:2: control byte 0x01: not a text file" ]
    run --separate-stderr amtl-prep -o "$TMP/out" "$TMP/truncated.csv"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-prep: error: $TMP/truncated.csv:8:4: expected 5 fields (as the header), found 3" ]
    run --separate-stderr amtl-prep -o "$TMP/out" "$F/small.amtl"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-prep: error: $F/small.amtl:1:1: control byte 0x02: not a text file" ]
    [ ! -e "$TMP/out" ]

    printf 'model:\n  embedding_dim: [4\n' > "$TMP/truncated.yaml"
    printf '\x85\x01garbage: : :\n' > "$TMP/garbage.yaml"
    run --separate-stderr amtl-supernet --config "$TMP/truncated.yaml" --data "$F/small.amtl" --phase warmup --epochs 1 -o "$TMP/out"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-supernet: error: $TMP/truncated.yaml:3: YAML syntax error: "* ]]
    run --separate-stderr amtl-supernet --config "$TMP/garbage.yaml" --data "$F/small.amtl" --phase warmup --epochs 1 -o "$TMP/out"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-supernet: error: $TMP/garbage.yaml:1: YAML syntax error: "* ]]
    run --separate-stderr amtl-supernet --config "$F/small.amtl" --data "$F/small.amtl" --phase warmup --epochs 1 -o "$TMP/out"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-supernet: error: $F/small.amtl:1: YAML syntax error: "* ]]
    [ ! -e "$TMP/out" ]
}

@test "full disk by the file-size limit: a clear error, the previous checkpoint intact" {
    amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/c.ckpt" > /dev/null
    cp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    # 8 KiB: the dataset still reads, the checkpoint cannot be written
    run --separate-stderr bash -c "ulimit -f 8; exec amtl-supernet --data '$F/small.amtl' $SMALL --phase warmup --epochs 2 --resume -o '$TMP/c.ckpt'"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: cannot write '$TMP/c.ckpt': File too large" ]
    cmp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    [ -z "$(ls "$TMP" | grep tmp)" ]
    run --separate-stderr bash -c "ulimit -f 8; exec amtl-train --data '$F/small.amtl' --arch '$F/s.arch' $SMALL --epochs 1 -o '$TMP/m.model'"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-train: error: cannot write '$TMP/m.model': File too large" ]
    [ -z "$(ls "$TMP" | grep model)" ]
}

@test "full disk on a small tmpfs: a clear error, the previous checkpoint intact" {
    mkdir "$TMP/mnt"
    local size=$(( $(stat -c %s "$F/s.ckpt") * 3 / 2 ))
    mount -t tmpfs -o size=$size tmpfs "$TMP/mnt" 2> /dev/null || skip "cannot mount a tmpfs here"
    cp "$F/s.ckpt" "$TMP/mnt/c.ckpt"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --phase search --epochs 2 --resume -o "$TMP/mnt/c.ckpt"
    local out=$output err=$stderr rc=$status
    cmp "$F/s.ckpt" "$TMP/mnt/c.ckpt" || { umount "$TMP/mnt"; false; }
    local left
    left=$(ls -A "$TMP/mnt" | tr '\n' ' ')
    umount "$TMP/mnt"
    [ "$rc" -eq 1 ]
    [ "$err" = "amtl-supernet: error: cannot write '$TMP/mnt/c.ckpt': No space left on device" ]
    [ "$left" = "c.ckpt " ]
}

@test "full disk on a tiny tmpfs: amtl-prep says so and leaves nothing" {
    mkdir "$TMP/mnt"
    mount -t tmpfs -o size=16k tmpfs "$TMP/mnt" 2> /dev/null || skip "cannot mount a tmpfs here"
    run --separate-stderr amtl-prep --synthetic --rows 1500 -o "$TMP/mnt/d.amtl"
    local left
    left=$(ls -A "$TMP/mnt")
    umount "$TMP/mnt"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-prep: error: cannot write '$TMP/mnt/d.amtl': No space left on device" ]
    [ -z "$left" ]
}

@test "an unwritable output directory: a clear error, nothing written" {
    : > "$TMP/file"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/file/c.ckpt"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: cannot write '$TMP/file/c.ckpt': cannot create a temp file in '$TMP/file': Not a directory" ]
    mkdir "$TMP/ro"
    mount -t tmpfs -o ro tmpfs "$TMP/ro" 2> /dev/null || skip "cannot mount a read-only tmpfs here"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/ro/c.ckpt"
    umount "$TMP/ro"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: cannot write '$TMP/ro/c.ckpt': cannot create a temp file in '$TMP/ro': Read-only file system" ]
}

@test "a read-only input is only read; a vanished input is a clear error, the output intact" {
    cp "$F/small.amtl" "$TMP/d.amtl"
    chmod 0444 "$TMP/d.amtl"
    amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 1 -o "$TMP/c.ckpt" > /dev/null
    cmp "$TMP/d.amtl" "$F/small.amtl"
    cp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    rm -f "$TMP/d.amtl"
    run --separate-stderr amtl-supernet --data "$TMP/d.amtl" $SMALL --phase warmup --epochs 2 --resume -o "$TMP/c.ckpt"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: cannot open '$TMP/d.amtl': No such file or directory" ]
    cmp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    run --separate-stderr amtl-supernet --data "$F/small.amtl" --init "$TMP/gone.ckpt" $SMALL --phase warmup --epochs 1 -o "$TMP/c.ckpt"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-supernet: error: cannot open '$TMP/gone.ckpt': No such file or directory" ]
    cmp "$TMP/c.ckpt" "$TMP/keep.ckpt"
    run --separate-stderr amtl-prep -o "$TMP/out" "$TMP/gone.csv"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-prep: error: "*"$TMP/gone.csv"*"No such file or directory" ]]
    run --separate-stderr amtl-eval --model "$TMP/gone.model" --data "$F/small.amtl"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-eval: error: cannot open '$TMP/gone.model': No such file or directory" ]
}
