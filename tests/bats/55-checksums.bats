#!/usr/bin/env bats
# Checksums: every kind of file damaged at many places (the header, the
# metadata, every tensor, the end) and every tool that reads that kind
# refusing every copy with the message that names the damaged part; whole
# files reading and saying they verified; version 1 files (no checksum)
# still reading, with one notice each.
bats_require_minimum_version 1.5.0
load helpers

MODEL="--set ops=[Identity,MLP-8] --set embedding_dim=4 --set n_experts=2 --set expert_width=8 --set tower_layers=[8] --set threads=1"
SMALL="$MODEL --set batch_size=256 --quiet"

setup_file() {
    export F="$BATS_FILE_TMPDIR"
    small_files "$F" $SMALL
    # raw rows with the synthetic data's fields, for --predict
    {
        echo user_id,item_id,category,city,device,noise_1,noise_2,noise_3,dense_0,dense_1,dense_2
        for i in $(seq 20); do echo "$i,$((i * 7)),$((i % 5)),3,1,$i,2,$((i % 3)),0.5,-1,$i"; done
    } > "$F/rows.csv"
}

amtlfile() {
    python3 "$BATS_TEST_DIRNAME/amtlfile.py" "$@"
}

# damaged FILE: the damaged copies in $TMP/d/ and their list in $TMP/d.list
damaged() {
    mkdir "$TMP/d"
    amtlfile damage "$1" "$TMP/d" > "$TMP/d.list"
    [ "$(wc -l < "$TMP/d.list")" -ge 10 ]
}

# refuses TOOL ARG...: runs the tool with @IN@ replaced by every damaged
# copy (one mode per tool: every mode reads through the same amtl_file_read); each run must exit 1 with nothing on stdout, no output file, and
# one line on stderr: the error naming the copy and the damaged part
refuses() {
    local tool=$1 k words a n=0
    shift
    while read -r k words; do
        local args=()
        for a in "$@"; do args+=("${a//@IN@/$TMP/d/$k}"); done
        # plain calls: over a thousand of them, Bats' run would double the time
        local status=0 stderr
        stderr=$("$tool" "${args[@]}" 2>&1 > "$TMP/stdout") || status=$?
        if [ "$status" -ne 1 ] || [ -s "$TMP/stdout" ] || [ -e "$TMP/out" ] ||
            [[ "$stderr" != "$tool: error: $TMP/d/$k: $words"* ]] ||
            [[ "$stderr" == *$'\n'* ]]; then
            echo "copy $k (expected \"$words\"): status $status, stderr: $stderr"
            return 1
        fi
        n=$((n + 1))
    done < "$TMP/d.list"
    [ $n -ge 10 ]
}

@test "a damaged dataset: every reader refuses every copy" {
    damaged "$F/small.amtl"
    refuses amtl-prep --info @IN@
    refuses amtl-supernet --data @IN@ $SMALL --phase warmup --epochs 1 -o "$TMP/out"
    refuses amtl-train --data @IN@ --arch "$F/s.arch" $SMALL --epochs 1 -o "$TMP/out"
    refuses amtl-eval --model "$F/s.model" --data @IN@
    refuses amtl-discretize --baseline mmoe --data @IN@ $MODEL -o "$TMP/out"
}

@test "a damaged checkpoint: every reader refuses every copy" {
    damaged "$F/s.ckpt"
    refuses amtl-supernet --data "$F/small.amtl" --init @IN@ $SMALL --phase warmup --epochs 1 -o "$TMP/out"
    refuses amtl-discretize --export -o "$TMP/out" @IN@
    refuses amtl-train --data "$F/small.amtl" --arch "$F/s.arch" --init @IN@ $SMALL --epochs 1 -o "$TMP/out"
}

@test "a damaged architecture: every reader refuses every copy" {
    damaged "$F/s.arch"
    refuses amtl-train --data "$F/small.amtl" --arch @IN@ $SMALL --epochs 1 -o "$TMP/out"
    refuses amtl-discretize --show @IN@
}

@test "a damaged model: every reader refuses every copy" {
    damaged "$F/s.model"
    refuses amtl-eval --model @IN@ --data "$F/small.amtl"
    # --predict scores nothing with a damaged model either
    k=$(grep -m1 "tensor 'towers" "$TMP/d.list" | cut -d' ' -f1)
    run --separate-stderr amtl-eval --model "$TMP/d/$k" --predict "$F/rows.csv"
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [[ "$stderr" == "amtl-eval: error: $TMP/d/$k: damaged file: tensor 'towers"*"' does not match its checksum" ]]
}

@test "the damage list names every tensor of the file" {
    damaged "$F/s.ckpt"
    amtlfile tensors "$F/s.ckpt" | cut -d' ' -f1 | sort > "$TMP/all"
    sed -n "s/^[0-9]* damaged file: tensor '\(.*\)' does not match its checksum$/\1/p" "$TMP/d.list" | sort > "$TMP/hit"
    # every tensor that holds data is hit once
    amtlfile tensors "$F/s.ckpt" | grep -v ' \[0\] \| \[0,' | cut -d' ' -f1 | sort > "$TMP/data"
    diff -u "$TMP/data" "$TMP/hit"
}

@test "whole files of every kind read and say they verified" {
    run --separate-stderr amtl-prep --info "$F/small.amtl"
    [ "$status" -eq 0 ]
    [ "${lines[4]}" = "checksum         verified" ]
    [ -z "$stderr" ]
    run --separate-stderr amtl-discretize --show "$F/s.arch"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = "checksum: verified" ]
    amtl-discretize --show --format json "$F/s.arch" |
        python3 -c 'import json, sys; assert json.load(sys.stdin)["checksum"] == "verified"'
    amtl-discretize --show --format dot "$F/s.arch" | grep -qx '  // checksum: verified'
    run --separate-stderr amtl-eval --model "$F/s.model" --data "$F/small.amtl"
    [ "$status" -eq 0 ]
    [[ "${lines[-1]}" == "(test split, "*" live weights; model checksum verified)" ]]
    [ -z "$stderr" ]
    amtl-eval --model "$F/s.model" --data "$F/small.amtl" --json |
        python3 -c 'import json, sys; assert json.load(sys.stdin)["checksum"] == "verified"'
    run --separate-stderr amtl-eval --model "$F/s.model" --predict "$F/rows.csv"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 20 ]
    amtl-discretize -k 1 -o "$TMP/k.ckpt" "$F/s.ckpt"
    amtl-supernet --data "$F/small.amtl" --init "$TMP/k.ckpt" $SMALL --phase search --epochs 1 -o "$TMP/s2.ckpt" > /dev/null
    amtl-train --data "$F/small.amtl" --arch "$F/s.arch" --init "$F/s.ckpt" $SMALL --epochs 1 -o "$TMP/m.model" > /dev/null
    amtl-discretize --baseline mmoe --data "$F/small.amtl" $MODEL -o "$TMP/mmoe.arch"
}

@test "version 1 files of every kind still read, each with one notice" {
    for f in small.amtl s.ckpt s.arch s.model; do amtlfile v1 "$F/$f" > "$TMP/$f"; done
    notice() {
        echo "$1: notice: $TMP/$2 has no checksum (format version 1, written before files carried one); it is read without that check"
    }
    run --separate-stderr amtl-prep --info "$TMP/small.amtl"
    [ "$status" -eq 0 ]
    [ "${lines[4]}" = "checksum         none (format version 1)" ]
    [ "$stderr" = "$(notice amtl-prep small.amtl)" ]
    # the same rows, fields and rates as the file it came from
    diff -u <(amtl-prep --info "$F/small.amtl" | sed 5d) <(echo "$output" | sed 5d)
    run --separate-stderr amtl-discretize --show "$TMP/s.arch"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = "checksum: none (format version 1)" ]
    [ "$stderr" = "$(notice amtl-discretize s.arch)" ]
    # a checkpoint read twice (its config, then its state) gives one notice
    run --separate-stderr amtl-discretize --export -o "$TMP/new.arch" "$TMP/s.ckpt"
    [ "$status" -eq 0 ]
    [ "$stderr" = "$(notice amtl-discretize s.ckpt)" ]
    cmp "$TMP/new.arch" "$F/s.arch"
    run --separate-stderr amtl-eval --model "$TMP/s.model" --data "$TMP/small.amtl"
    [ "$status" -eq 0 ]
    [[ "${lines[-1]}" == *"; model checksum none (format version 1))" ]]
    [ "$stderr" = "$(notice amtl-eval s.model)
$(notice amtl-eval small.amtl)" ]
    diff -u <(amtl-eval --model "$F/s.model" --data "$F/small.amtl" | sed '$d') <(echo "$output" | sed '$d')
    run --separate-stderr amtl-train --data "$TMP/small.amtl" --arch "$TMP/s.arch" --init "$TMP/s.ckpt" $SMALL --epochs 1 -o "$TMP/m.model"
    [ "$status" -eq 0 ]
    [ "$(echo "$stderr" | grep -c ': notice: ')" -eq 3 ]
    # what a tool writes from them has a checksum again: -k 0 copies a checkpoint
    amtl-discretize -k 0 -o "$TMP/again.ckpt" "$TMP/s.ckpt" 2> /dev/null
    amtl-discretize --export -o "$TMP/again.arch" "$TMP/again.ckpt"
    amtl-discretize --show "$TMP/again.arch" | tail -n 1 | grep -qx 'checksum: verified'
}

@test "a version 1 dataset's content hash still catches damage to its tensors" {
    amtlfile v1 "$F/small.amtl" > "$TMP/old.amtl"
    mkdir "$TMP/d"
    amtlfile damage "$TMP/old.amtl" "$TMP/d" > "$TMP/d.list"
    k=$(grep -m1 "tensor 'train.label" "$TMP/d.list" | cut -d' ' -f1)
    run --separate-stderr amtl-prep --info "$TMP/d/$k"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"amtl-prep: error: $TMP/d/$k: content hash "*" does not match the tensors ("*"): the file is damaged" ]]
}
