# helpers.bash — shared by every Bats file: binaries from the build tree,
# a temp dir per test, the real data samples when present.
AMTL_BIN=${AMTL_BIN:-$(cd "$BATS_TEST_DIRNAME/../../bin" 2>/dev/null && pwd)}
PATH="$AMTL_BIN:$PATH"
FIXTURES="$BATS_TEST_DIRNAME/../fixtures"
SHARED_DATA=${AMTL_SHARED_DATA:-$(cd "$BATS_TEST_DIRNAME/../../.." 2>/dev/null && pwd)/shared/data}

setup() {
    TMP=$(mktemp -d "${BATS_TMPDIR:-/tmp}/amtl-bats-XXXXXX")
}

teardown() {
    rm -rf "$TMP"
}

need_shared_data() {
    [ -d "$SHARED_DATA" ] || skip "shared/data not present (a user's clone does not have it)"
}

# small_files DIR OPTION...: a small synthetic dataset and what a search
# makes of it, with the model options given: DIR/small.amtl, DIR/s.ckpt (one
# search epoch), DIR/s.arch, DIR/s.model (one epoch)
small_files() {
    local d=$1
    shift
    amtl-prep --synthetic --rows 1500 --seed 3 -o "$d/small.amtl"
    amtl-supernet --data "$d/small.amtl" "$@" --phase search --epochs 1 -o "$d/s.ckpt" > /dev/null
    amtl-discretize --export -o "$d/s.arch" "$d/s.ckpt"
    amtl-train --data "$d/small.amtl" --arch "$d/s.arch" "$@" --epochs 1 -o "$d/s.model" > /dev/null
}
