#!/usr/bin/env bats
# amtl-prep keeps the rows it reads a chunk at a time (full chunks in an
# unlinked temp file in TMPDIR): the same bytes whatever the chunk size, the
# split drawn row by row, memory that does not grow with the rows, and the
# temp file's failures as clear errors.
bats_require_minimum_version 1.5.0
load helpers

P="$FIXTURES/prep"

# Prints the vocab size --info gives for a sparse field.
vocab_of() {
    amtl-prep --info "$1" | awk -v f="$2" '$1 == f && $2 == "sparse" { print $3 }'
}

# A processed CSV of $1 rows (seeded by $3): a unique token per row, two
# low-cardinality fields, the row number as a dense column, a label.
make_csv() {
    python3 - "$1" "$2" "${3:-1}" <<'EOF'
import random, sys
n, path, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
r = random.Random(seed)
with open(path, "w") as f:
    f.write("rowid:token,city:token,device:token,row:float,price:float,click:label\n")
    for i in range(n):
        f.write("r%d,c%d,d%d,%d,%.3f,%d\n" % (i, r.randrange(50), r.randrange(8), i,
                                              r.expovariate(0.1), r.random() < 0.2))
EOF
}

# Peak RSS in KiB of a command (AddressSanitizer's quarantine off: it
# would count the blocks freed meanwhile).
peak_rss() {
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0" python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}

@test "chunks of 1, 7 and 65536 rows give the same file: one file, two files, three, a recipe, the synthetic kinds" {
    make_csv 3000 "$TMP/a.csv"
    head -n 2001 "$TMP/a.csv" > "$TMP/tr.csv"
    { head -n 1 "$TMP/a.csv"; tail -n 1000 "$TMP/a.csv"; } > "$TMP/te.csv"
    local more="--vocab train --set min_id_count=2 --set dense_transform=log-standardize --seed 5"
    local i=0 args
    for args in "$TMP/a.csv" "$more $TMP/a.csv" "$TMP/tr.csv $TMP/te.csv" \
                "$more $TMP/tr.csv $TMP/te.csv" "$P/tiny_train.csv $P/tiny_val.csv $P/tiny_test.csv" \
                "-f userbehavior --set min_count=1 $P/userbehavior.csv" \
                "--synthetic --rows 2000" "--synthetic --synthetic-kind zipf --rows 2000" \
                "--synthetic --synthetic-kind aliccp --tasks 2 --rows 2000"; do
        i=$((i + 1))
        # shellcheck disable=SC2086
        amtl-prep $args -o "$TMP/d.amtl"
        for n in 1 7; do
            # shellcheck disable=SC2086
            AMTL_PREP_CHUNK_ROWS=$n TMPDIR="$TMP" amtl-prep $args -o "$TMP/c$n.amtl"
            cmp "$TMP/d.amtl" "$TMP/c$n.amtl" || { echo "chunks of $n: $args"; false; }
        done
    done
    [ "$i" -eq 9 ]
    # the temp files were unlinked as soon as they were made
    [ -z "$(find "$TMP" -name 'amtl-prep.*')" ]
}

@test "the split: exact sizes, every row once, each split in input order; the seed decides which" {
    make_csv 1000 "$TMP/a.csv"
    AMTL_PREP_CHUNK_ROWS=64 amtl-prep -o "$TMP/s1.amtl" "$TMP/a.csv"
    for s in train val test; do
        python3 "$P/dataset-column.py" "$TMP/s1.amtl" "$s.dense.row" > "$TMP/$s.rows"
        sort -n -c "$TMP/$s.rows"  # input order
    done
    [ "$(wc -l < "$TMP/train.rows")" -eq 800 ]
    [ "$(wc -l < "$TMP/val.rows")" -eq 100 ]
    [ "$(wc -l < "$TMP/test.rows")" -eq 100 ]
    cat "$TMP"/{train,val,test}.rows | sort -n | diff - <(seq 0 999)
    # the same seed the same bytes; another seed another split of the same sizes
    amtl-prep -o "$TMP/s1b.amtl" "$TMP/a.csv"
    cmp "$TMP/s1.amtl" "$TMP/s1b.amtl"
    amtl-prep --seed 7 -o "$TMP/s7.amtl" "$TMP/a.csv"
    python3 "$P/dataset-column.py" "$TMP/s7.amtl" val.dense.row > "$TMP/val7.rows"
    [ "$(wc -l < "$TMP/val7.rows")" -eq 100 ]
    ! cmp -s "$TMP/val.rows" "$TMP/val7.rows"
    # the validation rows are spread over the input, not a block of it
    awk '{ q[int($1 / 250)]++ } END { for (i = 0; i < 4; i++) if (q[i] < 10) exit 1 }' "$TMP/val.rows"
}

@test "memory: 2,000,000 rows prep in the memory of 200,000; a vocabulary costs its tokens" {
    make_csv 200000 "$TMP/small.csv" 2
    make_csv 2000000 "$TMP/large.csv" 3
    # without the rowid field the vocabularies are small: flat
    cut -d , -f 2- "$TMP/small.csv" > "$TMP/small2.csv"
    cut -d , -f 2- "$TMP/large.csv" > "$TMP/large2.csv"
    small=$(TMPDIR="$TMP" peak_rss amtl-prep -o "$TMP/small2.amtl" "$TMP/small2.csv")
    large=$(TMPDIR="$TMP" peak_rss amtl-prep -o "$TMP/large2.amtl" "$TMP/large2.csv")
    echo "# peak RSS: $small KiB for 200000 rows, $large KiB for 2000000 (file $(stat -c %s "$TMP/large2.amtl") bytes)" >&3
    [ "$(amtl-prep --info "$TMP/large2.amtl" | awk '$1 == "train" { print $2; exit }')" -eq 1600000 ]
    [ "$large" -lt $((small + 8192)) ]
    # a token per row, every one kept: 2,000,000 distinct tokens, each with
    # its map entry, counts, final id and line in the vocabulary (about 85
    # bytes, AddressSanitizer's build alike)
    vocab=$(TMPDIR="$TMP" peak_rss amtl-prep --set min_id_count=0 -o "$TMP/large.amtl" "$TMP/large.csv")
    echo "# peak RSS with 2000000 distinct tokens: $vocab KiB" >&3
    [ "$(vocab_of "$TMP/large.amtl" rowid)" -eq 2000001 ]
    [ $(( (vocab - large) * 1024 / 2000000 )) -lt 128 ]
}

@test "a TMPDIR that cannot be written: one error line naming it, exit 1, no output" {
    make_csv 100 "$TMP/a.csv"
    AMTL_PREP_CHUNK_ROWS=10 TMPDIR="$TMP/none" run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/a.csv"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-prep: error: cannot make the temp file of the rows read in '$TMP/none': No such file or directory (TMPDIR names the directory; it needs about the output's size)" ]
    [ ! -e "$TMP/out.amtl" ]
    # an input of one chunk never needs it
    TMPDIR="$TMP/none" amtl-prep -o "$TMP/out.amtl" "$TMP/a.csv"
}

@test "a temp file that cannot grow (file size limit): one error line, exit 1, no output" {
    make_csv 20000 "$TMP/a.csv"
    mkdir "$TMP/spill"
    run --separate-stderr bash -c "ulimit -f 64; AMTL_PREP_CHUNK_ROWS=1000 TMPDIR='$TMP/spill' exec amtl-prep -o '$TMP/out.amtl' '$TMP/a.csv'"
    [ "$status" -eq 1 ]
    [ "$stderr" = "amtl-prep: error: cannot write the temp file of the rows read in '$TMP/spill': File too large (TMPDIR names the directory; it needs about the output's size)" ]
    [ ! -e "$TMP/out.amtl" ]
    [ -z "$(ls -A "$TMP/spill")" ]
}

@test "SIGKILL while the rows are read: nothing left in TMPDIR, no output" {
    make_csv 400000 "$TMP/a.csv"
    mkdir "$TMP/spill"
    AMTL_PREP_CHUNK_ROWS=1000 TMPDIR="$TMP/spill" amtl-prep -o "$TMP/out.amtl" "$TMP/a.csv" &
    local pid=$!
    # killed once it has spilled a chunk or more (the temp file is open)
    for _ in $(seq 100); do
        ls -l "/proc/$pid/fd" 2>/dev/null | grep -q 'amtl-prep\.' && break
        sleep 0.05
    done
    kill -9 "$pid"
    wait "$pid" || true
    [ -z "$(ls -A "$TMP/spill")" ]
    # (a run that finished first has written a whole file)
    [ ! -e "$TMP/out.amtl" ] || amtl-prep --info "$TMP/out.amtl" > /dev/null
}
