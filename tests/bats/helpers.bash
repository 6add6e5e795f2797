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
