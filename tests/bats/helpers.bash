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

# ---- comparing runs (50-reliability, 60-device, 65-distributed) ----------

# Name, dtype, shape and a digest of every tensor of an amtl file, in file
# order; the wall-clock seconds column of "history" is zeroed first.
tensors() {
    python3 "$BATS_TEST_DIRNAME/amtlfile.py" tensors "$1"
}

# cmp of two amtl files but for the wall-clock seconds in their history
same_file() {
    cmp <(python3 "$BATS_TEST_DIRNAME/amtlfile.py" zero-seconds "$1") <(python3 "$BATS_TEST_DIRNAME/amtlfile.py" zero-seconds "$2")
}

# Metrics lines without the wall-clock seconds.
no_seconds() {
    sed 's/"seconds":[0-9.]*,//' "$@"
}

# Two files of metrics lines, line by line: the same keys, epoch, phase and
# mixed_ops; losses and arch_entropy within $3, AUCs within $4 ("-" leaves
# the validation metrics out).
close_metrics() {
    python3 - "$@" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
tol_loss = float(sys.argv[3])
tol_auc = None if sys.argv[4] == '-' else float(sys.argv[4])
assert len(a) == len(b) > 0, 'lines: %d and %d' % (len(a), len(b))
for x, y in zip(a, b):
    assert x.keys() == y.keys(), (sorted(x), sorted(y))
    for k in x:
        if k == 'seconds':
            continue
        if k in ('epoch', 'phase', 'mixed_ops'):
            assert x[k] == y[k], (x['epoch'], k, x[k], y[k])
            continue
        if k.startswith('val_'):
            if tol_auc is None:
                continue
            tol = tol_auc if 'auc' in k else tol_loss
        else:
            tol = tol_loss
        assert abs(x[k] - y[k]) <= tol, 'epoch %d %s: %r and %r' % (x['epoch'], k, x[k], y[k])
EOF
}
