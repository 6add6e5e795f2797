#!/usr/bin/env bats
# The manual pages: they lint clean, every tool has one that names every
# long option of its --help, amtl-config(5) has every key of lib/format/config_keys.c,
# and the EXAMPLES of amtl-supernet(1), amtl-discretize(1) and amtl(7) run
# as written (on tiny synthetic data and a tiny supernet).
bats_require_minimum_version 1.5.0
load helpers

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
MAN="$REPO/man"

# The page source with the roff escapes of names and options undone.
plain() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$1"
}

# The commands of a page's EXAMPLES section: the "$ " lines of its .EX
# blocks, a line ending in \e joined with the next, roff escapes undone.
example_commands() {
    awk '
        /^\.SH / { ex = ($2 == "EXAMPLES"); next }
        !ex { next }
        /^\.EX/ { inex = 1; next }
        /^\.EE/ { inex = 0; next }
        !inex { next }
        {
            if (cont)
                cmd = cmd " " $0
            else if (substr($0, 1, 2) == "$ ")
                cmd = substr($0, 3)
            else
                next
            if (cmd ~ /\\e$/) {
                sub(/\\e$/, "", cmd)
                cont = 1
                next
            }
            cont = 0
            print cmd
        }' "$1" |
        sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\e/\\/g' -e 's/\\&//g'
}

# Runs the examples of a page in a fresh directory (with configs/ at hand),
# every tool wrapped so that it works on small data: the examples' own
# options still run, the wrapper's settings come last and win.
run_examples() {
    local page="$MAN/$1"
    [ -f "$page" ] || { echo "$page is missing"; return 1; }
    example_commands "$page" > "$TMP/examples.sh"
    [ -s "$TMP/examples.sh" ] || { echo "$1: no \$ command in EXAMPLES"; return 1; }
    mkdir "$TMP/run"
    ln -s "$REPO/configs" "$TMP/run/configs"
    {
        cat <<'EOF'
set -e
TINY=(--set batch_size=256 --set 'ops=[Identity, MLP-8, MLP-16]' --set embedding_dim=4
      --set n_experts=2 --set expert_width=8 --set 'tower_layers=[8]')
amtl-prep() {
    case " $* " in
    *" --synthetic "*) command amtl-prep "$@" --rows 1500 ;;
    *) command amtl-prep "$@" ;;
    esac
}
amtl-supernet() { command amtl-supernet "$@" "${TINY[@]}" --quiet; }
# (only --baseline takes a config: the other modes read the checkpoint's)
amtl-discretize() {
    case " $* " in
    *" --baseline "*) command amtl-discretize "$@" "${TINY[@]}" ;;
    *) command amtl-discretize "$@" ;;
    esac
}
amtl-train() { command amtl-train "$@" "${TINY[@]}" --epochs 2 --quiet; }
set -x
EOF
        cat "$TMP/examples.sh"
    } > "$TMP/all.sh"
    cd "$TMP/run"
    run bash "$TMP/all.sh"
    if [ "$status" -ne 0 ]; then
        echo "the examples of $1 failed (status $status):"
        echo "$output" | tail -40
        return 1
    fi
}

@test "man pages: mandoc -T lint -W warning finds nothing" {
    command -v mandoc > /dev/null || skip "mandoc is not installed"
    local bad=0 p
    for p in "$MAN"/*.[157]; do
        run --separate-stderr mandoc -T lint -W warning "$p"
        if [ "$status" -ne 0 ] || [ -n "$output$stderr" ]; then
            echo "$p: status $status"
            echo "$output$stderr"
            bad=1
        fi
    done
    [ "$bad" -eq 0 ]
}

@test "man pages: groff -man -ww -z finds nothing" {
    command -v groff > /dev/null || skip "groff is not installed"
    local bad=0 p
    for p in "$MAN"/*.[157]; do
        run --separate-stderr groff -man -ww -z "$p"
        if [ "$status" -ne 0 ] || [ -n "$output$stderr" ]; then
            echo "$p: status $status"
            echo "$output$stderr"
            bad=1
        fi
    done
    [ "$bad" -eq 0 ]
}

@test "man pages: every tool in bin/ has one" {
    local missing="" t n=0
    for t in "$AMTL_BIN"/amtl-*; do
        [ -x "$t" ] || continue
        n=$((n + 1))
        [ -f "$MAN/$(basename "$t").1" ] || missing="$missing $(basename "$t").1"
    done
    [ "$n" -gt 0 ] || { echo "no tool in $AMTL_BIN"; return 1; }
    [ -z "$missing" ] || { echo "missing in man/:$missing"; return 1; }
}

@test "man pages: every long option of a tool's --help is in its page" {
    local bad="" t name opt
    for t in "$AMTL_BIN"/amtl-*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        # a missing page is the previous test's finding
        [ -f "$MAN/$name.1" ] || continue
        run --separate-stderr "$t" --help
        [ "$status" -eq 0 ]
        for opt in $(printf '%s\n' "$output" | grep -oE '^ +(-[[:alnum:]], )?--[a-z][a-z0-9-]*' |
                     grep -oE -- '--[a-z][a-z0-9-]*$'); do
            plain "$MAN/$name.1" | grep -qE -- "$opt([^a-z0-9-]|\$)" || bad="$bad $name:$opt"
        done
    done
    [ -z "$bad" ] || { echo "not in the man page:$bad"; return 1; }
}

@test "amtl-config(5): every key of lib/format/config_keys.c has an entry" {
    local bad="" k
    local keys
    keys=$(grep -oE '^ *KEY\([a-z_]+,' "$REPO/lib/format/config_keys.c" | grep -oE '[a-z_]+,$' | tr -d ,)
    [ -n "$keys" ]
    for k in $keys; do
        grep -qx "\.B $k" "$MAN/amtl-config.5" || bad="$bad $k"
    done
    [ -z "$bad" ] || { echo "no '.B KEY' entry in amtl-config.5 for:$bad"; return 1; }
}

@test "amtl-supernet(1): the EXAMPLES run" {
    run_examples amtl-supernet.1
}

@test "amtl-discretize(1): the EXAMPLES run" {
    run_examples amtl-discretize.1
}

@test "amtl(7): the EXAMPLES session runs" {
    run_examples amtl.7
}
