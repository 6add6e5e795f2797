#!/usr/bin/env bats
# amtl-prep: every input format, the synthetic generator, --info, and one
# exact message per kind of bad input.
bats_require_minimum_version 1.5.0
load helpers

P="$FIXTURES/prep"

# Prints "train val test" row counts of a dataset.
rows_of() {
    amtl-prep --info "$1" | awk '$1 == "train" || $1 == "val" || $1 == "test" { if (n++ < 3) printf "%s%s", (n > 1 ? " " : ""), $2 } END { print "" }'
}

# Prints the vocab size --info gives for a sparse field.
vocab_of() {
    amtl-prep --info "$1" | awk -v f="$2" '$1 == f && $2 == "sparse" { print $3 }'
}

# Prints a tensor of a dataset on one line ("1 0 2"), or with "meta KEY" a
# meta value.
col_of() {
    python3 "$P/dataset-column.py" "$@" | tr '\n' ' ' | sed 's/^ //; s/ $//'
}

# Asserts the last command failed with status $1, printed exactly the line
# $2 on stderr and nothing on stdout, and left no output (nor temp) file.
fails_with() {
    [ "$status" -eq "$1" ] || { echo "status $status, expected $1; stderr: $stderr"; return 1; }
    [ "$stderr" = "$2" ] || { echo "stderr: '$stderr'"; echo "wanted: '$2'"; return 1; }
    [ -z "$output" ]
    [ ! -e "$TMP/out.amtl" ]
    ! ls -a "$TMP" | grep -q 'out\.amtl\.tmp'
}

# ---- the command line ------------------------------------------------------

@test "--help prints the usage on stdout and exits 0" {
    run --separate-stderr amtl-prep --help
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == "Usage: amtl-prep [options] -o OUT INPUT..." ]]
    [[ "$output" == *"--synthetic"* ]]
    [[ "$output" == *"--info FILE"* ]]
    [ -z "$stderr" ]
}

@test "--version prints the name and version" {
    run --separate-stderr amtl-prep --version
    [ "$status" -eq 0 ]
    [[ "$output" =~ ^amtl-prep\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "an unknown flag is a usage error: exit 2, usage on stderr" {
    run --separate-stderr amtl-prep --bogus -o "$TMP/out.amtl" "$P/tiny.csv"
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [[ "$stderr" == "amtl-prep: error: unknown option '--bogus'"* ]]
    [[ "$stderr" == *"Usage: amtl-prep"* ]]
    [ ! -e "$TMP/out.amtl" ]
}

@test "usage errors: no -o, no input, stray --rows, bad --tasks, wrong input count" {
    run --separate-stderr amtl-prep "$P/tiny.csv"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: no output file (-o OUT)"* ]]
    run --separate-stderr amtl-prep -o "$TMP/out.amtl"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: no input files (or --synthetic)"* ]]
    run --separate-stderr amtl-prep --rows 10 -o "$TMP/out.amtl" "$P/tiny.csv"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: --rows and --tasks go with --synthetic"* ]]
    run --separate-stderr amtl-prep --synthetic --tasks 9 -o "$TMP/out.amtl"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: --tasks needs a number from 1 to 8, not '9'"* ]]
    run --separate-stderr amtl-prep -f kuairand -o "$TMP/out.amtl" "$P/tiny.csv"
    fails_with 2 "amtl-prep: error: format kuairand takes 3 input files (log_random, user_features, video_features_basic), not 1"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$P/tiny.csv" "$P/tiny.csv" "$P/tiny.csv" "$P/tiny.csv"
    fails_with 2 "amtl-prep: error: a processed CSV takes one, two (train, test) or three (train, val, test) input files, not 4"
}

@test "a bad config value is a usage error" {
    run --separate-stderr amtl-prep --vocab sometimes -o "$TMP/out.amtl" "$P/tiny.csv"
    [ "$status" -eq 2 ]
    [[ "$stderr" == "amtl-prep: error: "*vocab* ]]
    [ ! -e "$TMP/out.amtl" ]
}

# ---- processed and plain CSV -------------------------------------------------

@test "processed CSV, one file: split 80/10/10 by a seeded permutation" {
    # every id kept (min_id_count 0): the encoding is under test
    run --separate-stderr amtl-prep --set min_id_count=0 -o "$TMP/out.amtl" "$P/tiny.csv"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    [ "$(rows_of "$TMP/out.amtl")" = "8 1 1" ]
    [ "$(vocab_of "$TMP/out.amtl" user)" = 7 ]
    [ "$(vocab_of "$TMP/out.amtl" item)" = 6 ]
}

@test "processed CSV, three files taken as train, val, test (CRLF and quotes in one)" {
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$P/tiny_train.csv" "$P/tiny_val.csv" "$P/tiny_test.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl")" = "6 2 2" ]
}

@test "--info prints splits, fields and positive rates as an aligned table" {
    amtl-prep --set min_id_count=0 -o "$TMP/out.amtl" "$P/tiny_train.csv" "$P/tiny_val.csv" "$P/tiny_test.csv"
    run --separate-stderr amtl-prep --info "$TMP/out.amtl"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    diff -u "$P/tiny-info.txt" <(printf '%s\n' "$output")
}

@test "--info reads the header and the checksum through the file: its memory does not grow with the rows" {
    amtl-prep --synthetic --rows 400000 --seed 3 -o "$TMP/big.amtl"
    local bytes kb
    bytes=$(stat -c %s "$TMP/big.amtl")
    [ "$bytes" -gt 20000000 ]
    kb=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' amtl-prep --info "$TMP/big.amtl")
    [ "$kb" -lt 16384 ]
    run --separate-stderr amtl-prep --info "$TMP/big.amtl"
    [ "${lines[4]}" = "checksum         verified" ]
    [[ "$output" == *"train  320000"* ]]
}

@test "--vocab train: ids unseen in train become 0 in val" {
    run --separate-stderr amtl-prep --vocab train --set min_id_count=0 -o "$TMP/out.amtl" "$P/tiny_train.csv" "$P/tiny_val.csv" "$P/tiny_test.csv"
    [ "$status" -eq 0 ]
    run --separate-stderr amtl-prep --info "$TMP/out.amtl"
    [ "$status" -eq 0 ]
    [[ "$output" == *"vocab            train"* ]]
    [ "$(vocab_of "$TMP/out.amtl" user)" = 5 ]
    [ "$(vocab_of "$TMP/out.amtl" item)" = 4 ]
    # the "id 0" table: one val row each has an unseen user (u9) / item (i9)
    [[ "$output" == *"user       0      1      0"* ]]
    [[ "$output" == *"item       0      1      0"* ]]
}

@test "--limit reads at most N rows" {
    run --separate-stderr amtl-prep --limit 5 -o "$TMP/out.amtl" "$P/tiny.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl")" = "4 1 0" ]
}

@test "--split and --seed change the split; the same seed gives the same bytes" {
    amtl-prep --split 0.5,0.3,0.2 -o "$TMP/a.amtl" "$P/tiny.csv"
    [ "$(rows_of "$TMP/a.amtl")" = "5 3 2" ]
    amtl-prep --seed 7 -o "$TMP/b.amtl" "$P/tiny.csv"
    amtl-prep --seed 7 -o "$TMP/c.amtl" "$P/tiny.csv"
    cmp "$TMP/b.amtl" "$TMP/c.amtl"
}

@test "plain CSV with the columns in a config (delimiter ';', quoted fields)" {
    run --separate-stderr amtl-prep -c "$P/plain.yaml" --set min_id_count=0 -o "$TMP/out.amtl" "$P/plain.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl")" = "8 1 1" ]
    [ "$(vocab_of "$TMP/out.amtl" user)" = 8 ]
    [ "$(vocab_of "$TMP/out.amtl" city)" = 6 ]
    run amtl-prep --info "$TMP/out.amtl"
    [[ "$output" == *"age    dense       -"* ]]
    [[ "$output" != *"note"* ]]
}

# ---- a user's own CSV: trimmed values, labels from values, a test file ------

@test "plain CSV with ', ' separators, labels from values and a separate test file" {
    run --separate-stderr amtl-prep -c "$P/people.yaml" -o "$TMP/out.amtl" "$P/people.csv" "$P/people_test.csv"
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    run --separate-stderr amtl-prep --info "$TMP/out.amtl"
    diff -u "$P/people-info.txt" <(printf '%s\n' "$output")
    # rich is 1 on ">50K" (train file) and ">50K." (test file), single on
    # status "Never-married"; status itself is no field
    [ "$(col_of "$TMP/out.amtl" test.label.rich)" = "0 1 0 1" ]
    [ "$(col_of "$TMP/out.amtl" test.label.single)" = "1 0 1 0" ]
    [[ "$output" != *status* ]]
    # values lose the blanks around them; a quoted one keeps its comma; "?"
    # is a value of its own
    [ "$(col_of "$TMP/out.amtl" vocab.city)" = "Paris Lyon Berlin Rome Paris, FR Oslo" ]
    [[ "$(col_of "$TMP/out.amtl" vocab.job)" == *"?"* ]]
}

@test "labels from values: the exact syntax's errors" {
    run --separate-stderr amtl-prep -c "$P/people.yaml" --set 'labels=[rich=income==>50k]' -o "$TMP/out.amtl" "$P/people.csv"
    fails_with 1 "amtl-prep: error: label 'rich': no row has 'income' equal to '>50k' (values compare exactly; several are written a|b)"
    run --separate-stderr amtl-prep -c "$P/people.yaml" --set 'labels=[rich=income==>50K|]' -o "$TMP/out.amtl" "$P/people.csv"
    fails_with 2 "amtl-prep: error: key 'labels': 'rich=income==>50K|' has an empty value (want column, or task=column==value|value...)"
    run --separate-stderr amtl-prep -c "$P/people.yaml" --set 'labels=[=income==>50K]' -o "$TMP/out.amtl" "$P/people.csv"
    fails_with 2 "amtl-prep: error: key 'labels': '=income==>50K' has an empty task name (want column, or task=column==value|value...)"
    run --separate-stderr amtl-prep -c "$P/people.yaml" --set 'sparse=[job, status]' -o "$TMP/out.amtl" "$P/people.csv"
    fails_with 2 "amtl-prep: error: key 'labels': label 'single' comes from column 'status', which is a feature too (in 'sparse')"
    run --separate-stderr amtl-prep -c "$P/people.yaml" --set 'labels=[x=state==y]' -o "$TMP/out.amtl" "$P/people.csv"
    fails_with 1 "amtl-prep: error: $P/people.csv:1:1: no column 'state' (labels) in the header"
    run --separate-stderr amtl-prep -c "$P/people.yaml" --set 'labels=[age=income==>50K]' -o "$TMP/out.amtl" "$P/people.csv"
    fails_with 2 "amtl-prep: error: key 'labels': label 'age' has the name of another field"
    # without trim the header names keep their leading space
    run --separate-stderr amtl-prep -c "$P/people.yaml" --set trim=false -o "$TMP/out.amtl" "$P/people.csv"
    fails_with 1 "amtl-prep: error: $P/people.csv:1:1: no column 'job' (sparse) in the header"
}

@test "gzip input is read as it is: a .gz file or a pipe, the same dataset" {
    gzip -c "$P/people.csv" > "$TMP/people.csv.gz"
    amtl-prep -c "$P/people.yaml" -o "$TMP/a.amtl" "$P/people.csv" "$P/people_test.csv"
    amtl-prep -c "$P/people.yaml" -o "$TMP/b.amtl" "$TMP/people.csv.gz" "$P/people_test.csv"
    amtl-prep -c "$P/people.yaml" -o "$TMP/c.amtl" <(cat "$TMP/people.csv.gz") "$P/people_test.csv"
    h=$(col_of "$TMP/a.amtl" meta content_hash)
    [ "$(col_of "$TMP/b.amtl" meta content_hash)" = "$h" ]
    [ "$(col_of "$TMP/c.amtl" meta content_hash)" = "$h" ]
    head -c 100 "$TMP/people.csv.gz" > "$TMP/cut.csv.gz"
    run --separate-stderr amtl-prep -c "$P/people.yaml" -o "$TMP/out.amtl" "$TMP/cut.csv.gz"
    fails_with 1 "amtl-prep: error: cannot read '$TMP/cut.csv.gz': truncated gzip data"
}

@test "min_id_count: ids rarer in the train rows are 0 in every split" {
    run --separate-stderr amtl-prep --set min_id_count=2 -o "$TMP/out.amtl" "$P/tiny_train.csv" "$P/tiny_val.csv" "$P/tiny_test.csv"
    [ "$status" -eq 0 ]
    run amtl-prep --info "$TMP/out.amtl"
    [[ "$output" == *"min_id_count     2"* ]]
    # train users u1 u2 u1 u3 u2 u4: u1, u2 (twice, the threshold) keep an id,
    # u3, u4 (once) do not, nor u9 (val only); items i1 i2 i3 twice each
    [ "$(vocab_of "$TMP/out.amtl" user)" = 3 ]
    [ "$(vocab_of "$TMP/out.amtl" item)" = 4 ]
    [ "$(col_of "$TMP/out.amtl" train.sparse.user)" = "1 2 1 0 2 0" ]
    [ "$(col_of "$TMP/out.amtl" val.sparse.user)" = "1 0" ]
    [ "$(col_of "$TMP/out.amtl" test.sparse.user)" = "0 2" ]
    [[ "$output" == *"user       2      1      1"* ]]
    [[ "$output" == *"item       0      1      0"* ]]
    # 3: no user is that frequent; 1 keeps every id, as 0 does
    amtl-prep --set min_id_count=3 -o "$TMP/b.amtl" "$P/tiny_train.csv" "$P/tiny_val.csv" "$P/tiny_test.csv"
    [ "$(vocab_of "$TMP/b.amtl" user)" = 1 ]
    amtl-prep --set min_id_count=1 -o "$TMP/c.amtl" "$P/tiny_train.csv" "$P/tiny_val.csv" "$P/tiny_test.csv"
    [ "$(vocab_of "$TMP/c.amtl" user)" = 6 ]
    # any format: the synthetic data's noise field loses its rare ids
    amtl-prep --synthetic --rows 2000 --set min_id_count=0 -o "$TMP/s0.amtl"
    amtl-prep --synthetic --rows 2000 --set min_id_count=3 -o "$TMP/s3.amtl"
    [ "$(vocab_of "$TMP/s3.amtl" noise_3)" -lt "$(vocab_of "$TMP/s0.amtl" noise_3)" ]
}

@test "dense_transform: standardize and log-standardize by the train rows" {
    three=("$P/tiny_train.csv" "$P/tiny_val.csv" "$P/tiny_test.csv")
    # none (the default) keeps the values
    amtl-prep -o "$TMP/n.amtl" "${three[@]}"
    [ "$(col_of "$TMP/n.amtl" val.dense.price)" = "1.25 0.5" ]
    [ "$(col_of "$TMP/n.amtl" meta dense_transform)" = "none" ]
    # train prices 0.5 1.5 2 0.25 3 0.75: mean 4/3, deviation 0.9538
    amtl-prep --set dense_transform=standardize -o "$TMP/s.amtl" "${three[@]}"
    [ "$(col_of "$TMP/s.amtl" meta dense_stats)" = "1.33333333 0.953793595 price" ]
    [ "$(col_of "$TMP/s.amtl" train.dense.price)" = "-0.873704 0.174741 0.698963 -1.13582 1.74741 -0.611593" ]
    [ "$(col_of "$TMP/s.amtl" val.dense.price)" = "-0.0873704 -0.873704" ]
    [ "$(col_of "$TMP/s.amtl" test.dense.price)" = "1.22319 -0.349482" ]
    amtl-prep --set dense_transform=log-standardize -o "$TMP/l.amtl" "${three[@]}"
    [ "$(col_of "$TMP/l.amtl" meta dense_stats)" = "0.764903638 0.405226088 price" ]
    [ "$(col_of "$TMP/l.amtl" test.dense.price)" = "1.20392 -0.177078" ]
    run amtl-prep --info "$TMP/l.amtl"
    [[ "$output" == *"dense_transform  log-standardize"* ]]
    run --separate-stderr amtl-prep --set dense_transform=cube -o "$TMP/out.amtl" "${three[@]}"
    fails_with 2 "amtl-prep: error: key 'dense_transform' must be one of none, standardize, log-standardize; got 'cube'"
}

# ---- the real samples in shared/data ---------------------------------------

@test "Ali-CCP sample: three files with configs/ali-ccp.yaml" {
    need_shared_data
    d="$SHARED_DATA/ali-ccp"
    run --separate-stderr amtl-prep -c "$BATS_TEST_DIRNAME/../../configs/ali-ccp.yaml" -o "$TMP/out.amtl" \
        "$d/ali_ccp_train_sample.csv" "$d/ali_ccp_val_sample.csv" "$d/ali_ccp_test_sample.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl")" = "100 50 50" ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 23 ]
    [ "$(grep -c ' dense ' <<<"$output")" -eq 8 ]
    [[ "$output" == *"click     label"* ]]
    [[ "$output" == *"purchase  label"* ]]
}

@test "AliExpress sample: train and test files with configs/aliexpress.yaml" {
    need_shared_data
    d="$SHARED_DATA/aliexpress"
    run --separate-stderr amtl-prep -c "$BATS_TEST_DIRNAME/../../configs/aliexpress.yaml" -o "$TMP/out.amtl" \
        "$d/aliexpress_train_sample.csv" "$d/aliexpress_test_sample.csv"
    [ "$status" -eq 0 ]
    # the train file is split 0.8 : 0.1 into train and val
    [ "$(rows_of "$TMP/out.amtl")" = "89 11 20" ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 16 ]
    [ "$(grep -c ' dense ' <<<"$output")" -eq 63 ]
    [[ "$output" =~ conversion\ +label ]]
}

@test "Census-Income sample: three files with configs/census-income.yaml" {
    need_shared_data
    d="$SHARED_DATA/census-income"
    run --separate-stderr amtl-prep -c "$BATS_TEST_DIRNAME/../../configs/census-income.yaml" -o "$TMP/out.amtl" \
        "$d/census_income_train_sample.csv" "$d/census_income_val_sample.csv" "$d/census_income_test_sample.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl")" = "80 20 20" ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 32 ]
    [ "$(grep -c ' dense ' <<<"$output")" -eq 7 ]
    [[ "$output" =~ marital\ status\ +label ]]
    [[ "$output" =~ class\ of\ worker\ +sparse ]]
}

@test "Adult as it comes: configs/adult.yaml on adult.data.gz and adult.test.gz" {
    need_shared_data
    d="$SHARED_DATA/adult"
    [ -f "$d/adult.data.gz" ] || skip "no adult/ in shared/data"
    run --separate-stderr amtl-prep -c "$BATS_TEST_DIRNAME/../../configs/adult.yaml" -o "$TMP/out.amtl" \
        "$d/adult.data.gz" "$d/adult.test.gz"
    [ "$status" -eq 0 ]
    # adult.data (32,560 rows) split 9 : 1, adult.test (16,281) as the test split
    [ "$(rows_of "$TMP/out.amtl")" = "29304 3256 16281" ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 7 ]
    [ "$(grep -c ' dense ' <<<"$output")" -eq 6 ]
    [[ "$output" != *marital-status* ]]
    [[ "$output" == *"income         0.2425  0.2254  0.2362"* ]]
    [[ "$output" == *"never_married  0.3268  0.3394  0.3338"* ]]
    # over all of adult.data the data README's 24.08 % and 32.81 %
    for l in income never_married; do
        rate=$( { python3 "$P/dataset-column.py" "$TMP/out.amtl" train.label.$l
                  python3 "$P/dataset-column.py" "$TMP/out.amtl" val.label.$l; } |
                awk '{ s += $1 } END { printf "%d %.4f", NR, s / NR }')
        [ "$rate" = "32560 $([ $l = income ] && echo 0.2408 || echo 0.3281)" ]
    done
}

@test "Tianchi EComm: bench/quality/tianchi-ecomm.py and configs/tianchi-ecomm.yaml" {
    need_shared_data
    d="$SHARED_DATA/tianchi-ecomm"
    [ -f "$d/ecomm_edge_train.txt.gz" ] || skip "no tianchi-ecomm/ in shared/data"
    q="$BATS_TEST_DIRNAME/../../bench/quality/tianchi-ecomm.py"
    run --separate-stderr python3 "$q" "$d" "$TMP/t.csv"
    [ "$status" -eq 0 ]
    # the data README's row count and positive rates
    [ "$stderr" = "tianchi-ecomm.py: 47924 rows; positive rates collect 0.1106 cart 0.2865 buy 0.1383" ]
    [ "$(wc -l < "$TMP/t.csv")" -eq 47925 ]
    run --separate-stderr amtl-prep -c "$BATS_TEST_DIRNAME/../../configs/tianchi-ecomm.yaml" -o "$TMP/out.amtl" "$TMP/t.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl")" = "38339 4792 4793" ]
    run amtl-prep --info "$TMP/out.amtl"
    # nine fields and the config's cross of user and category
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 10 ]
    grep -q '^user_id\*cate_id  *sparse ' <<<"$output"
    [ "$(grep -c ' dense ' <<<"$output")" -eq 2 ]
    [ "$(grep -c ' label ' <<<"$output")" -eq 3 ]
    run --separate-stderr python3 "$q" --with-click "$d" -
    [[ "$stderr" == *"rows; positive rates click 0.9699 collect"* ]]
}

# ---- raw recipes on small fixtures (figures from make-fixtures.py) -----------

@test "userbehavior: groups by (user,item,category), drops rare buyers and items" {
    run --separate-stderr amtl-prep -f userbehavior --set min_count=3 --set min_id_count=0 -o "$TMP/out.amtl" "$P/userbehavior.csv"
    [ "$status" -eq 0 ]
    # 240 lines, 94 groups, 48 left after the buy-count filter
    [ "$(rows_of "$TMP/out.amtl"  | awk '{ print $1 + $2 + $3 }')" -eq 48 ]
    [ "$(vocab_of "$TMP/out.amtl" user_id)" = 7 ]
    [ "$(vocab_of "$TMP/out.amtl" item_id)" = 9 ]
    run amtl-prep --info "$TMP/out.amtl"
    for l in click buy cart favourite; do [[ "$output" == *"$l"*"label"* ]]; done
    # the default min_count (10) keeps a single group
    amtl-prep -f userbehavior -o "$TMP/b.amtl" "$P/userbehavior.csv"
    [ "$(rows_of "$TMP/b.amtl")" = "1 0 0" ]
}

@test "ijcai15: user_log joined with user_info, purchase and favourite labels" {
    run --separate-stderr amtl-prep -f ijcai15 --set min_count=3 --set min_id_count=0 -o "$TMP/out.amtl" \
        "$P/ijcai15_user_log.csv" "$P/ijcai15_user_info.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl"  | awk '{ print $1 + $2 + $3 }')" -eq 33 ]
    [ "$(vocab_of "$TMP/out.amtl" user_id)" = 6 ]
    [ "$(vocab_of "$TMP/out.amtl" item_id)" = 8 ]
    [ "$(vocab_of "$TMP/out.amtl" brand_id)" = 6 ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 7 ]
    [[ "$output" == *"purchase   label"* ]]
    [[ "$output" == *"favourite  label"* ]]
}

@test "ijcai15: a user's first user_info line wins, even with empty values" {
    printf 'user_id,age_range,gender\n1,,\n1,5,1\n2,3,0\n2,4,1\n' > "$TMP/info.csv"
    { echo 'user_id,item_id,cat_id,seller_id,brand_id,time_stamp,action_type'
      for u in 1 2; do for i in 7 8; do echo "$u,$i,1,1,1,0101,2"; done; done; } > "$TMP/log.csv"
    amtl-prep -f ijcai15 --set min_count=1 --set min_id_count=0 -o "$TMP/out.amtl" \
        "$TMP/log.csv" "$TMP/info.csv"
    # user 1: id 0 for both; user 2: 3 and 0
    [ "$(col_of "$TMP/out.amtl" vocab.age_range)" = "3" ]
    [ "$(col_of "$TMP/out.amtl" vocab.gender)" = "0" ]
}

@test "kuairand: log_random joined with user and video features, 34 fields, 7 labels" {
    run --separate-stderr amtl-prep -f kuairand -o "$TMP/out.amtl" "$P/kuairand_log_random.csv" \
        "$P/kuairand_user_features.csv" "$P/kuairand_video_features_basic.csv"
    [ "$status" -eq 0 ]
    # 150 log rows; rows with a missing label, a user or video without
    # features, or a missing feature value are dropped
    [ "$(rows_of "$TMP/out.amtl"  | awk '{ print $1 + $2 + $3 }')" -eq 109 ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 34 ]
    [ "$(grep -c ' label ' <<<"$output")" -eq 7 ]
    # quoted ranges such as "(0,10]" are one token each
    [ "$(vocab_of "$TMP/out.amtl" follow_user_num_range)" -le 5 ]
}

@test "qb-video: drops users and items with few clicks" {
    run --separate-stderr amtl-prep -f qb-video --set min_count=5 -o "$TMP/out.amtl" "$P/qbvideo.csv"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl"  | awk '{ print $1 + $2 + $3 }')" -eq 192 ]
    [ "$(vocab_of "$TMP/out.amtl" user_id)" = 8 ]
    [ "$(vocab_of "$TMP/out.amtl" item_id)" = 9 ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 6 ]
    [ "$(grep -c ' label ' <<<"$output")" -eq 4 ]
}

@test "raw recipes: each fixture gives the recorded dataset (tensors and vocabularies)" {
    # content_hash covers every tensor, vocabularies included; recipes.txt
    # was recorded when the split became the row-by-row draw (the rows'
    # encoding unchanged since the recipes shared one reader)
    local out="$TMP/recipes.txt" more="--vocab train --set min_id_count=2 --seed 3"
    rec() { # rec NAME FLAGS INPUTS...
        local name=$1 flags=$2; shift 2
        amtl-prep $flags -o "$TMP/r.amtl" "$@"
        printf '%s %s %s/%s/%s\n' "$name" "$(col_of "$TMP/r.amtl" meta content_hash)" \
            "$(col_of "$TMP/r.amtl" meta rows.train)" "$(col_of "$TMP/r.amtl" meta rows.val)" \
            "$(col_of "$TMP/r.amtl" meta rows.test)" >> "$out"
    }
    local ij=("$P/ijcai15_user_log.csv" "$P/ijcai15_user_info.csv")
    local kr=("$P/kuairand_log_random.csv" "$P/kuairand_user_features.csv"
              "$P/kuairand_video_features_basic.csv")
    rec userbehavior "-f userbehavior --set min_count=3" "$P/userbehavior.csv"
    rec userbehavior-more "-f userbehavior --set min_count=1 --limit 200 $more" "$P/userbehavior.csv"
    rec ijcai15 "-f ijcai15 --set min_count=3" "${ij[@]}"
    rec ijcai15-more "-f ijcai15 --set min_count=1 --limit 150 $more" "${ij[@]}"
    rec kuairand "-f kuairand" "${kr[@]}"
    rec kuairand-more "-f kuairand --limit 100 $more" "${kr[@]}"
    rec qb-video "-f qb-video --set min_count=5" "$P/qbvideo.csv"
    rec qb-video-more "-f qb-video --set min_count=1 --limit 200 $more" "$P/qbvideo.csv"
    diff -u "$P/recipes.txt" "$out"
}

# ---- synthetic data ------------------------------------------------------------

@test "--synthetic: fields, tasks and positive rates near 60/10/5/5 %" {
    run --separate-stderr amtl-prep --synthetic --rows 20000 -o "$TMP/out.amtl"
    [ "$status" -eq 0 ]
    [ "$(rows_of "$TMP/out.amtl")" = "16000 2000 2000" ]
    run amtl-prep --info "$TMP/out.amtl"
    [ "$(grep -c ' sparse ' <<<"$output")" -eq 8 ]
    [ "$(grep -c ' dense ' <<<"$output")" -eq 3 ]
    [ "$(grep -c ' label ' <<<"$output")" -eq 4 ]
    # train positive rates within 2 points of the targets
    awk '$1 ~ /^task[0-3]$/ && NF == 4 { t[$1] = $2 }
         END { exit !(t["task0"] > .58 && t["task0"] < .62 && t["task1"] > .08 && t["task1"] < .12 &&
                      t["task2"] > .03 && t["task2"] < .07 && t["task3"] > .03 && t["task3"] < .07) }' <<<"$output"
    # the hidden structure is recorded in the meta
    grep -aq 'synthetic.task_fields' "$TMP/out.amtl"
    grep -aq 'task0 user_id item_id category dense_0' "$TMP/out.amtl"
    grep -aq 'synthetic.related_tasks' "$TMP/out.amtl"
}

@test "--synthetic is deterministic: same seed, same bytes; another seed differs" {
    amtl-prep --synthetic --rows 3000 --seed 11 -o "$TMP/a.amtl"
    amtl-prep --synthetic --rows 3000 --seed 11 -o "$TMP/b.amtl"
    amtl-prep --synthetic --rows 3000 --seed 12 -o "$TMP/c.amtl"
    cmp "$TMP/a.amtl" "$TMP/b.amtl"
    ! cmp -s "$TMP/a.amtl" "$TMP/c.amtl"
}

@test "--synthetic --tasks 2 and -o - to a pipe" {
    amtl-prep --synthetic --rows 500 --tasks 2 -o "$TMP/a.amtl"
    amtl-prep --synthetic --rows 500 --tasks 2 -o - > "$TMP/b.amtl"
    cmp "$TMP/a.amtl" "$TMP/b.amtl"
    run amtl-prep --info "$TMP/a.amtl"
    [ "$(grep -c ' label ' <<<"$output")" -eq 2 ]
}

@test "the man page's synthetic example runs" {
    cd "$TMP"
    run --separate-stderr amtl-prep --synthetic --tasks 6 --seed 1 -o synth.amtl
    [ "$status" -eq 0 ]
    run amtl-prep --info synth.amtl
    [ "$(grep -c ' label ' <<<"$output")" -eq 6 ]
}

# ---- bad input: one line FILE:LINE:COL, exit 1, no output ----------------------

@test "bad input: an unterminated quote" {
    printf 'x:token,y:label\n1,0\n"abc,1\n' > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/bad.csv"
    fails_with 1 "amtl-prep: error: $TMP/bad.csv:3:1: unterminated quoted field"
}

@test "bad input: a row with the wrong number of fields" {
    printf 'x:token,p:float,y:label\n1,0.5,0\n2,0.5\n' > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/bad.csv"
    fails_with 1 "amtl-prep: error: $TMP/bad.csv:3:3: expected 3 fields (as the header), found 2"
}

@test "bad input: a value that is not a number" {
    printf 'x:token,p:float,y:label\n1,0.5,0\n2,abc,1\n' > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/bad.csv"
    fails_with 1 "amtl-prep: error: $TMP/bad.csv:3:2: 'abc' is not a number (column 'p')"
}

@test "bad input: an empty file" {
    : > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/bad.csv"
    fails_with 1 "amtl-prep: error: $TMP/bad.csv:1:1: empty file"
}

@test "bad input: no label column" {
    printf 'x:token,p:float\n1,0.5\n' > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/bad.csv"
    fails_with 1 "amtl-prep: error: $TMP/bad.csv:1:1: no label column (name:label) in the header"
    printf 'user;city;age;note\nal;x;3;y\n' > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -c "$P/plain.yaml" -o "$TMP/out.amtl" "$TMP/bad.csv"
    fails_with 1 "amtl-prep: error: $TMP/bad.csv:1:1: no column 'click' (labels) in the header"
}

@test "bad input: a binary file" {
    printf '\x93\x00\x01MSGPACK\xff\n' > "$TMP/bad.bin"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/bad.bin"
    fails_with 1 "amtl-prep: error: $TMP/bad.bin:1:1: control byte 0x00: not a text file"
}

@test "bad input: a missing or unreadable path" {
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/missing.csv"
    fails_with 1 "amtl-prep: error: cannot open '$TMP/missing.csv': No such file or directory"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP"
    fails_with 1 "amtl-prep: error: cannot read '$TMP': Is a directory"
}

@test "bad input: a label that is not 0 or 1" {
    printf 'x:token,y:label\n1,0\n2,2\n' > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$TMP/bad.csv"
    fails_with 1 "amtl-prep: error: $TMP/bad.csv:3:2: label 'y' is '2', expected 0 or 1"
}

@test "bad input: an error in the second of three files names that file" {
    printf 'user:token,item:token,price:float,click:label,buy:label\nu1,i1,x,1,0\n' > "$TMP/val.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$P/tiny_train.csv" "$TMP/val.csv" "$P/tiny_test.csv"
    fails_with 1 "amtl-prep: error: $TMP/val.csv:2:3: 'x' is not a number (column 'price')"
}

@test "bad input: a later file whose header lacks a column of the first" {
    printf 'item:token,price:float,click:label,buy:label\ni1,0.5,1,0\n' > "$TMP/test.csv"
    run --separate-stderr amtl-prep -o "$TMP/out.amtl" "$P/tiny_train.csv" "$TMP/test.csv"
    fails_with 1 "amtl-prep: error: $TMP/test.csv:1:1: no column 'user:token' in the header"
}

@test "bad input in a recipe: an unknown behavior" {
    printf '1,2,3,pv,100\n1,2,3,like,101\n' > "$TMP/ub.csv"
    run --separate-stderr amtl-prep -f userbehavior -o "$TMP/out.amtl" "$TMP/ub.csv"
    fails_with 1 "amtl-prep: error: $TMP/ub.csv:2:4: unknown behavior 'like' (pv, buy, cart or fav)"
}

@test "a failed run keeps an existing output file as it was" {
    amtl-prep -o "$TMP/keep.amtl" "$P/tiny.csv"
    cp "$TMP/keep.amtl" "$TMP/orig.amtl"
    printf 'x:token,y:label\n1,7\n' > "$TMP/bad.csv"
    run --separate-stderr amtl-prep -o "$TMP/keep.amtl" "$TMP/bad.csv"
    [ "$status" -eq 1 ]
    cmp "$TMP/keep.amtl" "$TMP/orig.amtl"
}

@test "--info on something that is not a dataset fails with exit 1" {
    run --separate-stderr amtl-prep --info "$P/tiny.csv"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "amtl-prep: error: "*"tiny.csv"* ]]
    [ -z "$output" ]
}
