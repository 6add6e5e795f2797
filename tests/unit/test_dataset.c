/* test_dataset.c — the dataset file: encoding and layout as amtl-prep writes
 * it, the write -> read round trip, batch gathering, and the reader's
 * validation of damaged files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/config.h"
#include "data/dataset.h"
#include "data/dataset_summary.h"
#include "format/io.h"
#include "data/prep_table.h"
#include "test.h"

/* train: (b,x,0.5,1) (a,y,1.5,0) (b,,2.5,1); val: (c,x,3.5,0); test: (a,z,4.5,1)
 * user tokens first appear b, a (train), c (val). */
static int make_table(amtl_prep_table *t, amtl_status *st)
{
    static const char *const sparse[] = {"user", "item"};
    static const char *const dense[] = {"price"};
    static const char *const labels[] = {"click"};
    static const struct {
        int split;
        const char *user, *item;
        float price;
        int click;
    } rows[] = {
        {AMTL_SPLIT_TRAIN, "b", "x", 0.5f, 1}, {AMTL_SPLIT_TRAIN, "a", "y", 1.5f, 0},
        {AMTL_SPLIT_VAL, "c", "x", 3.5f, 0},   {AMTL_SPLIT_TRAIN, "b", "", 2.5f, 1},
        {AMTL_SPLIT_TEST, "a", "z", 4.5f, 1},
    };
    if (amtl_prep_table_init(t, 2, sparse, 1, dense, 1, labels, st))
        return -1;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t r = amtl_prep_table_add_row(t, rows[i].split, st);
        if (r < 0)
            return -1;
        int32_t u = amtl_prep_table_intern(t, 0, rows[i].user, strlen(rows[i].user), st);
        int32_t it = amtl_prep_table_intern(t, 1, rows[i].item, strlen(rows[i].item), st);
        if (u < 0 || it < 0)
            return -1;
        t->raw[0][r] = u;
        t->raw[1][r] = it;
        t->dense[0][r] = rows[i].price;
        t->labels[0][r] = (uint8_t)rows[i].click;
    }
    return 0;
}

static int make_file(amtl_file *f, const char *vocab, amtl_status *st)
{
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    amtl_prep_table t;
    int rc = -1;
    /* every id kept: the encoding itself is under test (min_id_count: its own test) */
    if (amtl_config_defaults(&cfg, st) || amtl_config_set(&cfg, "vocab", vocab, st) ||
        amtl_config_set(&cfg, "min_id_count", "0", st))
        goto out;
    if (make_table(&t, st))
        goto out;
    rc = amtl_prep_table_to_file(&t, &cfg, f, st);
    amtl_prep_table_free(&t);
out:
    amtl_config_free(&cfg);
    return rc;
}

static amtl_tensor *tensor(amtl_file *f, const char *name)
{
    return (amtl_tensor *)amtl_file_find(f, name);
}

static void test_encoding_all(void)
{
    amtl_file f;
    amtl_status st;
    CHECK_OK(make_file(&f, "all", &st), &st);
    const int32_t *u = tensor(&f, "train.sparse.user")->data;
    const int32_t *it = tensor(&f, "train.sparse.item")->data;
    /* train rows keep their input order; ids by first appearance */
    CHECK(u[0] == 1 && u[1] == 2 && u[2] == 1);
    CHECK(it[0] == 1 && it[1] == 2 && it[2] == 0); /* empty token -> 0 */
    CHECK(((const int32_t *)tensor(&f, "val.sparse.user")->data)[0] == 3);
    CHECK(((const int32_t *)tensor(&f, "test.sparse.user")->data)[0] == 2);
    CHECK(((const int32_t *)tensor(&f, "test.sparse.item")->data)[0] == 3);
    const int32_t *vs = tensor(&f, "vocab_sizes")->data;
    CHECK(vs[0] == 4 && vs[1] == 4);
    const amtl_tensor *blob = tensor(&f, "vocab.user");
    CHECK(blob->dtype == AMTL_U8 && blob->shape[0] == 7);
    CHECK(!memcmp(blob->data, "\nb\na\nc\n", 7));
    CHECK(!strcmp(amtl_file_meta(&f, "sparse_fields"), "user\nitem"));
    CHECK(!strcmp(amtl_file_meta(&f, "rows.train"), "3"));
    CHECK(!strcmp(amtl_file_meta(&f, "rows.val"), "1"));
    CHECK(!strcmp(amtl_file_meta(&f, "vocab_mode"), "all"));
    CHECK(!strncmp(amtl_file_meta(&f, "creator"), "amtl-prep ", 10));
    CHECK(amtl_file_meta(&f, "config") != NULL);
    char hash[32];
    uint64_t h;
    CHECK_OK(amtl_dataset_content_hash(&f, &h, &st), &st);
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)h);
    CHECK(!strcmp(amtl_file_meta(&f, "content_hash"), hash));
    const float *lab = tensor(&f, "train.label.click")->data;
    CHECK(lab[0] == 1 && lab[1] == 0 && lab[2] == 1);
    amtl_file_free(&f);
}

static void test_encoding_train_vocab(void)
{
    amtl_file f;
    amtl_status st;
    CHECK_OK(make_file(&f, "train", &st), &st);
    /* c and z never occur in train: id 0; the vocabulary is train's */
    CHECK(((const int32_t *)tensor(&f, "val.sparse.user")->data)[0] == 0);
    CHECK(((const int32_t *)tensor(&f, "test.sparse.user")->data)[0] == 2);
    CHECK(((const int32_t *)tensor(&f, "test.sparse.item")->data)[0] == 0);
    const int32_t *vs = tensor(&f, "vocab_sizes")->data;
    CHECK(vs[0] == 3 && vs[1] == 3);
    CHECK(!memcmp(tensor(&f, "vocab.user")->data, "\nb\na\n", 5));
    CHECK(!strcmp(amtl_file_meta(&f, "vocab_mode"), "train"));
    amtl_file_free(&f);
}

/* make_file's dataset written to the test's temp dir as `name` (its path
 * into path). */
static int write_file(char *path, size_t cap, const char *name, amtl_status *st)
{
    amtl_file f;
    if (make_file(&f, "all", st))
        return -1;
    snprintf(path, cap, "%s/%s", test_tmpdir(), name);
    int rc = amtl_file_write(&f, path, st);
    amtl_file_free(&f);
    return rc;
}

static void test_round_trip_and_gather(void)
{
    amtl_status st;
    char path[512];
    CHECK_OK(write_file(path, sizeof path, "ds.amtl", &st), &st);

    amtl_dataset ds;
    CHECK_OK(amtl_dataset_read(&ds, path, &st), &st);
    CHECK(ds.N == 2 && ds.D == 1 && ds.T == 1);
    CHECK(!strcmp(ds.sparse_names[1], "item") && !strcmp(ds.dense_names[0], "price"));
    CHECK(ds.vocab[0] == 4 && ds.vocab[1] == 4);
    CHECK(ds.split[0].rows == 3 && ds.split[1].rows == 1 && ds.split[2].rows == 1);
    CHECK(amtl_dataset_sparse_index(&ds, "item") == 1);
    CHECK(amtl_dataset_sparse_index(&ds, "nope") == -1);
    CHECK(amtl_dataset_label_index(&ds, "click") == 0);
    CHECK(amtl_split_parse("val") == 1 && amtl_split_parse("x") == -1);
    CHECK(!strcmp(amtl_split_name(AMTL_SPLIT_TEST), "test"));
    /* the vocabulary stays readable from the file; the columns are the
     * file's own tensors, views of its mapping: nothing was copied */
    CHECK(amtl_file_find(&ds.file, "vocab.item") != NULL);
    CHECK(ds.file.map != NULL && ds.file.map_len > 0);
    const amtl_tensor *col = amtl_file_find(&ds.file, "train.sparse.item");
    CHECK(col && !col->owns && col->data == ds.split[0].sparse[1]);
    CHECK((char *)col->data > (char *)ds.file.map &&
          (char *)col->data < (char *)ds.file.map + ds.file.map_len);
    col = amtl_file_find(&ds.file, "test.label.click");
    CHECK(col && !col->owns && col->data == ds.split[2].labels[0]);

    int32_t ids[2 * 2] = {-1, -1, -1, -1};
    float dense[2], labels[2];
    test_poison(dense, 2);
    test_poison(labels, 2);
    amtl_batch b = {0, ids, dense, labels};
    int32_t rows[2] = {2, 0};
    amtl_dataset_gather(&ds, AMTL_SPLIT_TRAIN, rows, 2, &b);
    CHECK(b.B == 2);
    CHECK(ids[0] == 1 && ids[1] == 0); /* row 2: user b, empty item */
    CHECK(ids[2] == 1 && ids[3] == 1); /* row 0: user b, item x */
    CHECK(dense[0] == 2.5f && dense[1] == 0.5f);
    CHECK(labels[0] == 1 && labels[1] == 1);
    amtl_dataset_free(&ds);
    amtl_dataset_free(&ds); /* safe twice */
}

/* A rank's share of the train split (data-parallel training): rows
 * i % size == rank at i / size, val and test whole, and the shares of every
 * rank together are the split. */
static void test_shards(void)
{
    amtl_status st;
    char path[512];
    CHECK_OK(write_file(path, sizeof path, "shard.amtl", &st), &st);
    amtl_dataset whole, ds;
    CHECK_OK(amtl_dataset_read(&whole, path, &st), &st);
    CHECK(amtl_dataset_train_rows(&whole) == 3 && whole.shard_size == 1);
    for (int size = 1; size <= 4; size++) {
        int64_t seen = 0;
        for (int rank = 0; rank < size; rank++) {
            CHECK_OK(amtl_dataset_read_shard(&ds, path, rank, size, &st), &st);
            const amtl_split *sp = &ds.split[AMTL_SPLIT_TRAIN], *w = &whole.split[AMTL_SPLIT_TRAIN];
            CHECK(amtl_dataset_train_rows(&ds) == 3);
            CHECK(sp->rows == (3 - rank + size - 1) / size);
            for (int64_t l = 0; l < sp->rows; l++) {
                int64_t i = l * size + rank;
                for (int k = 0; k < ds.N; k++)
                    CHECK(sp->sparse[k][l] == w->sparse[k][i]);
                CHECK(sp->dense[0][l] == w->dense[0][i] && sp->labels[0][l] == w->labels[0][i]);
            }
            seen += sp->rows;
            CHECK(ds.split[AMTL_SPLIT_VAL].rows == 1 && ds.split[AMTL_SPLIT_TEST].rows == 1);
            amtl_dataset_free(&ds);
        }
        CHECK(seen == 3);
    }
    CHECK(amtl_dataset_read_shard(&ds, path, 2, 2, &st) == -1);
    CHECKF(strstr(st.msg, "rank 2 of 2") != NULL, "%s", st.msg);
    amtl_dataset_free(&whole);
}

/* What --info shows: from the header, the counts the columns give. */
static void test_summary(void)
{
    amtl_status st;
    char path[512];
    CHECK_OK(write_file(path, sizeof path, "sum.amtl", &st), &st);
    amtl_dataset_summary s;
    amtl_dataset ds;
    CHECK_OK(amtl_dataset_summary_read(&s, path, &st), &st);
    CHECK_OK(amtl_dataset_read(&ds, path, &st), &st);
    CHECK(s.from_header && s.file.n_tensors == 0 && s.file.checksum == AMTL_CHECKSUM_VERIFIED);
    CHECK(s.N == ds.N && s.D == ds.D && s.T == ds.T);
    for (int k = 0; k < ds.N; k++)
        CHECK(s.vocab[k] == ds.vocab[k] && !strcmp(s.sparse[k], ds.sparse_names[k]));
    for (int sp = 0; sp < 3; sp++) {
        const amtl_split *x = &ds.split[sp];
        CHECK(s.rows[sp] == x->rows);
        for (int t = 0; t < ds.T; t++) {
            int64_t pos = 0;
            for (int64_t r = 0; r < x->rows; r++)
                pos += x->labels[t][r] != 0;
            CHECK(s.positives[t * 3 + sp] == pos);
        }
        for (int k = 0; k < ds.N; k++) {
            int64_t z = 0;
            for (int64_t r = 0; r < x->rows; r++)
                z += x->sparse[k][r] == 0;
            CHECK(s.id0[k * 3 + sp] == z);
        }
    }
    /* the train split's one empty item is an id 0 there */
    CHECK(s.id0[1 * 3 + 0] == 1);
    amtl_dataset_summary_free(&s);
    amtl_dataset_free(&ds);
}

static void test_auto_split(void)
{
    static const char *const sparse[] = {"k"};
    static const char *const labels[] = {"y"};
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    amtl_status st;
    CHECK_OK(amtl_config_defaults(&cfg, &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "min_id_count", "0", &st), &st);
    uint64_t hashes[2];
    for (int rep = 0; rep < 2; rep++) {
        amtl_prep_table t;
        CHECK_OK(amtl_prep_table_init(&t, 1, sparse, 0, NULL, 1, labels, &st), &st);
        for (int i = 0; i < 1000; i++) {
            char tok[16];
            int len = snprintf(tok, sizeof tok, "%d", i % 37);
            int64_t r = amtl_prep_table_add_row(&t, AMTL_PREP_AUTO, &st);
            CHECK(r == i);
            t.raw[0][r] = amtl_prep_table_intern(&t, 0, tok, (size_t)len, &st);
            t.labels[0][r] = (uint8_t)(i % 3 == 0);
        }
        amtl_file f;
        int rc = amtl_prep_table_to_file(&t, &cfg, &f, &st);
        amtl_prep_table_free(&t);
        CHECK_OK(rc, &st);
        CHECK(!strcmp(amtl_file_meta(&f, "rows.train"), "800"));
        CHECK(!strcmp(amtl_file_meta(&f, "rows.val"), "100"));
        CHECK(!strcmp(amtl_file_meta(&f, "rows.test"), "100"));
        CHECK_OK(amtl_dataset_content_hash(&f, &hashes[rep], &st), &st);
        amtl_file_free(&f);
    }
    CHECK(hashes[0] == hashes[1]);
    amtl_config_free(&cfg);
}

/* Field "user" for min_id_count 3: in train a occurs 3 times (the threshold:
 * kept), b 2 (one short: dropped), c 4 (kept), d once (dropped); e occurs in
 * val and test only, f in test only. */
static int make_rare_file(amtl_file *f, const char *vocab, const char *min_id_count,
                          amtl_status *st)
{
    static const char *const sparse[] = {"user"};
    static const char *const labels[] = {"y"};
    static const struct {
        int split;
        const char *user;
    } rows[] = {
        {AMTL_SPLIT_TRAIN, "a"}, {AMTL_SPLIT_TRAIN, "b"}, {AMTL_SPLIT_VAL, "a"},
        {AMTL_SPLIT_TRAIN, "c"}, {AMTL_SPLIT_TEST, "d"},  {AMTL_SPLIT_TRAIN, "a"},
        {AMTL_SPLIT_TRAIN, "b"}, {AMTL_SPLIT_VAL, "b"},   {AMTL_SPLIT_TRAIN, "c"},
        {AMTL_SPLIT_TRAIN, "d"}, {AMTL_SPLIT_TEST, "e"},  {AMTL_SPLIT_TRAIN, "a"},
        {AMTL_SPLIT_VAL, "e"},   {AMTL_SPLIT_TRAIN, "c"}, {AMTL_SPLIT_TEST, "f"},
        {AMTL_SPLIT_TRAIN, "c"}, {AMTL_SPLIT_VAL, "c"},   {AMTL_SPLIT_TEST, "a"},
        {AMTL_SPLIT_TRAIN, ""},
    };
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    amtl_prep_table t;
    memset(&t, 0, sizeof t);
    int rc = -1;
    if (amtl_config_defaults(&cfg, st) || amtl_config_set(&cfg, "vocab", vocab, st) ||
        amtl_config_set(&cfg, "min_id_count", min_id_count, st) ||
        amtl_prep_table_init(&t, 1, sparse, 0, NULL, 1, labels, st))
        goto out;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t r = amtl_prep_table_add_row(&t, rows[i].split, st);
        if (r < 0 ||
            (t.raw[0][r] = amtl_prep_table_intern(&t, 0, rows[i].user,
                                                  strlen(rows[i].user), st)) < 0)
            goto out;
    }
    rc = amtl_prep_table_to_file(&t, &cfg, f, st);
out:
    amtl_prep_table_free(&t);
    amtl_config_free(&cfg);
    return rc;
}

/* ids of a split as a string, one digit each */
static void ids_of(amtl_file *f, const char *name, char *out)
{
    const amtl_tensor *t = amtl_file_find(f, name);
    const int32_t *v = t->data;
    int64_t n = t->shape[0];
    for (int64_t i = 0; i < n; i++)
        out[i] = (char)('0' + v[i]);
    out[n] = '\0';
}

static void test_min_id_count(void)
{
    static const char *const vocabs[] = {"all", "train"};
    for (int m = 0; m < 2; m++) {
        amtl_file f;
        amtl_status st;
        char ids[32];
        CHECK_OK(make_rare_file(&f, vocabs[m], "3", &st), &st);
        /* train a b c a b c d a c c "": a = 1, c = 2 (first appearance of
         * the kept), b and d (counts 2 and 1) and the empty token 0 */
        ids_of(&f, "train.sparse.user", ids);
        CHECKF(!strcmp(ids, "10210201220"), "vocab %s: %s", vocabs[m], ids);
        /* val a b e c: b is rare in train, e not in train at all */
        ids_of(&f, "val.sparse.user", ids);
        CHECKF(!strcmp(ids, "1002"), "vocab %s: %s", vocabs[m], ids);
        /* test d e f a */
        ids_of(&f, "test.sparse.user", ids);
        CHECKF(!strcmp(ids, "0001"), "vocab %s: %s", vocabs[m], ids);
        CHECK(((const int32_t *)tensor(&f, "vocab_sizes")->data)[0] == 3);
        CHECK(tensor(&f, "vocab.user")->shape[0] == 5);
        CHECK(!memcmp(tensor(&f, "vocab.user")->data, "\na\nc\n", 5));
        CHECK(!strcmp(amtl_file_meta(&f, "min_id_count"), "3"));
        amtl_file_free(&f);
    }
    /* 2: b (2 in train) is kept too, still not d */
    amtl_file f;
    amtl_status st;
    char ids[32];
    CHECK_OK(make_rare_file(&f, "all", "2", &st), &st);
    ids_of(&f, "train.sparse.user", ids);
    CHECKF(!strcmp(ids, "12312301330"), "%s", ids);
    ids_of(&f, "val.sparse.user", ids);
    CHECKF(!strcmp(ids, "1203"), "%s", ids);
    amtl_file_free(&f);
    /* 0 and 1 keep every id; with vocab all those of val and test too */
    for (int m = 0; m < 2; m++) {
        CHECK_OK(make_rare_file(&f, "all", m ? "1" : "0", &st), &st);
        ids_of(&f, "train.sparse.user", ids);
        CHECKF(!strcmp(ids, "12312341330"), "%s", ids);
        ids_of(&f, "val.sparse.user", ids);
        CHECKF(!strcmp(ids, "1253"), "%s", ids);
        ids_of(&f, "test.sparse.user", ids);
        CHECKF(!strcmp(ids, "4561"), "%s", ids);
        CHECK(((const int32_t *)tensor(&f, "vocab_sizes")->data)[0] == 7);
        amtl_file_free(&f);
    }
}

/* price in train 1, 2, 3, 4 (mean 2.5, standard deviation sqrt(1.25)); val
 * 5, test 0; "flat" is 7 everywhere (deviation 0: kept at 1). */
static int make_dense_file(amtl_file *f, const char *mode, amtl_status *st)
{
    static const char *const dense[] = {"price", "flat"};
    static const char *const labels[] = {"y"};
    static const struct {
        int split;
        float price;
    } rows[] = {{AMTL_SPLIT_TRAIN, 1}, {AMTL_SPLIT_VAL, 5},   {AMTL_SPLIT_TRAIN, 2},
                {AMTL_SPLIT_TEST, 0},  {AMTL_SPLIT_TRAIN, 3}, {AMTL_SPLIT_TRAIN, 4}};
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    amtl_prep_table t;
    memset(&t, 0, sizeof t);
    int rc = -1;
    if (amtl_config_defaults(&cfg, st) || amtl_config_set(&cfg, "min_id_count", "0", st) ||
        amtl_config_set(&cfg, "dense_transform", mode, st) ||
        amtl_prep_table_init(&t, 0, NULL, 2, dense, 1, labels, st))
        goto out;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int64_t r = amtl_prep_table_add_row(&t, rows[i].split, st);
        if (r < 0)
            goto out;
        t.dense[0][r] = rows[i].price;
        t.dense[1][r] = 7;
    }
    rc = amtl_prep_table_to_file(&t, &cfg, f, st);
out:
    amtl_prep_table_free(&t);
    amtl_config_free(&cfg);
    return rc;
}

static void test_dense_transform(void)
{
    amtl_file f;
    amtl_status st;
    CHECK_OK(make_dense_file(&f, "none", &st), &st);
    CHECK(((const float *)tensor(&f, "val.dense.price")->data)[0] == 5);
    CHECK(!strcmp(amtl_file_meta(&f, "dense_transform"), "none"));
    CHECK(amtl_file_meta(&f, "dense_stats") == NULL);
    amtl_file_free(&f);

    CHECK_OK(make_dense_file(&f, "standardize", &st), &st);
    const float *tr = tensor(&f, "train.dense.price")->data;
    double sd = sqrt(1.25);
    for (int i = 0; i < 4; i++)
        CHECK_CLOSE(tr[i], (i + 1 - 2.5) / sd, 1e-6);
    /* val and test by the train statistics */
    CHECK_CLOSE(((const float *)tensor(&f, "val.dense.price")->data)[0], 2.5 / sd, 1e-6);
    CHECK_CLOSE(((const float *)tensor(&f, "test.dense.price")->data)[0], -2.5 / sd, 1e-6);
    CHECK(((const float *)tensor(&f, "val.dense.flat")->data)[0] == 0);
    CHECKF(!strcmp(amtl_file_meta(&f, "dense_stats"), "2.5 1.11803399 price\n7 1 flat\n"),
           "%s", amtl_file_meta(&f, "dense_stats"));
    amtl_file_free(&f);

    CHECK_OK(make_dense_file(&f, "log-standardize", &st), &st);
    double lm = 0, lv = 0;
    for (int i = 1; i <= 4; i++)
        lm += log1p(i) / 4;
    for (int i = 1; i <= 4; i++)
        lv += (log1p(i) - lm) * (log1p(i) - lm) / 4;
    CHECK_CLOSE(((const float *)tensor(&f, "val.dense.price")->data)[0],
                (log1p(5) - lm) / sqrt(lv), 1e-6);
    CHECK_CLOSE(((const float *)tensor(&f, "test.dense.price")->data)[0], -lm / sqrt(lv),
                1e-6);
    CHECK(!strcmp(amtl_file_meta(&f, "dense_transform"), "log-standardize"));
    amtl_file_free(&f);

    CHECK(make_dense_file(&f, "cube", &st) == -1);
    CHECKF(!strcmp(st.msg, "dense_transform must be none, standardize or log-standardize, "
                           "not 'cube'"), "%s", st.msg);
}

/* Re-signs f after a deliberate change so the reader gets past the hash. */
static void rehash(amtl_file *f)
{
    amtl_status st;
    uint64_t h = 0;
    amtl_dataset_content_hash(f, &h, &st);
    amtl_file_set_metaf(f, &st, "content_hash", "%016llx", (unsigned long long)h);
}

/* Builds the test file, lets `damage` change it, and returns the reader's
 * message in msg (empty when it accepted the file). */
static void read_damaged(void (*damage)(amtl_file *), char *msg, size_t cap)
{
    amtl_file f;
    amtl_status st;
    msg[0] = '\0';
    if (make_file(&f, "all", &st)) {
        snprintf(msg, cap, "setup: %.900s", st.msg);
        return;
    }
    damage(&f);
    amtl_dataset ds;
    if (amtl_dataset_from_file(&ds, &f, "d.amtl", &st)) {
        snprintf(msg, cap, "%s", st.msg);
        amtl_file_free(&f);
        return;
    }
    amtl_dataset_free(&ds);
}

static void id_too_big(amtl_file *f)
{
    ((int32_t *)tensor(f, "val.sparse.user")->data)[0] = 4;
    rehash(f);
}
static void label_two(amtl_file *f)
{
    ((float *)tensor(f, "train.label.click")->data)[2] = 2.0f;
    rehash(f);
}
static void dense_nan(amtl_file *f)
{
    ((float *)tensor(f, "test.dense.price")->data)[0] = NAN;
    rehash(f);
}
static void length_mismatch(amtl_file *f)
{
    amtl_status st;
    amtl_file_set_meta(f, "rows.train", "2", &st);
    rehash(f);
}
static void bad_hash(amtl_file *f)
{
    ((float *)tensor(f, "train.dense.price")->data)[0] = 9.0f;
}
static void no_label_column(amtl_file *f)
{
    amtl_status st;
    amtl_file_set_meta(f, "labels", "click\nbuy", &st);
}
static void stray_column(amtl_file *f)
{
    amtl_status st;
    int64_t shape[1] = {3};
    amtl_file_add(f, "train.dense.extra", AMTL_F32, 1, shape, NULL, &st);
    rehash(f);
}
static void wrong_dtype(amtl_file *f)
{
    amtl_status st;
    amtl_file_set_meta(f, "dense_fields", "price\nzz", &st);
    int64_t shape[1] = {3};
    for (int s = 0; s < 3; s++) {
        char name[32];
        snprintf(name, sizeof name, "%s.dense.zz", amtl_split_name(s));
        shape[0] = s == 0 ? 3 : 1;
        amtl_file_add(f, name, AMTL_I32, 1, shape, NULL, &st);
    }
    rehash(f);
}
static void short_vocab(amtl_file *f)
{
    ((int32_t *)tensor(f, "vocab_sizes")->data)[1] = 2;
    rehash(f);
}
static void untouched(amtl_file *f) { (void)f; }

static void test_validation(void)
{
    char msg[1024];
    read_damaged(untouched, msg, sizeof msg);
    CHECKF(msg[0] == '\0', "%s", msg);
    read_damaged(id_too_big, msg, sizeof msg);
    CHECKF(!strcmp(msg, "d.amtl: tensor 'val.sparse.user' row 0: id 4 is outside [0, 4)"),
           "%s", msg);
    read_damaged(label_two, msg, sizeof msg);
    CHECKF(!strcmp(msg, "d.amtl: tensor 'train.label.click' row 2: label 2 is not 0 or 1"),
           "%s", msg);
    read_damaged(dense_nan, msg, sizeof msg);
    CHECKF(!strcmp(msg, "d.amtl: tensor 'test.dense.price' row 0: value nan is not finite"),
           "%s", msg);
    read_damaged(length_mismatch, msg, sizeof msg);
    CHECKF(!strcmp(msg, "d.amtl: tensor 'train.sparse.user' has 3 rows, meta 'rows.train' "
                        "says 2"), "%s", msg);
    read_damaged(bad_hash, msg, sizeof msg);
    CHECKF(strstr(msg, "d.amtl: content hash ") == msg && strstr(msg, "damaged"), "%s", msg);
    read_damaged(no_label_column, msg, sizeof msg);
    CHECKF(!strcmp(msg, "d.amtl: tensor 'train.label.buy' is missing"), "%s", msg);
    read_damaged(stray_column, msg, sizeof msg);
    CHECKF(!strcmp(msg, "d.amtl: tensor 'train.dense.extra' is not a field the meta lists"),
           "%s", msg);
    read_damaged(wrong_dtype, msg, sizeof msg);
    CHECKF(!strcmp(msg, "d.amtl: tensor 'train.dense.zz' is i32, expected f32"), "%s", msg);
    read_damaged(short_vocab, msg, sizeof msg);
    CHECKF(strstr(msg, "d.amtl: tensor 'vocab.item' must hold 2 ") == msg, "%s", msg);
}

static void test_read_errors(void)
{
    amtl_dataset ds;
    amtl_status st;
    CHECK(amtl_dataset_read(&ds, "/nonexistent/d.amtl", &st) == -1);
    CHECKF(strstr(st.msg, "/nonexistent/d.amtl"), "%s", st.msg);
    amtl_dataset_free(&ds);
    amtl_file f;
    amtl_file_init(&f, "model");
    CHECK(amtl_dataset_from_file(&ds, &f, "m.amtl", &st) == -1);
    CHECKF(!strcmp(st.msg, "m.amtl: kind 'model', expected 'dataset'"), "%s", st.msg);
    amtl_file_free(&f);
}

int main(void)
{
    RUN(test_encoding_all);
    RUN(test_encoding_train_vocab);
    RUN(test_round_trip_and_gather);
    RUN(test_shards);
    RUN(test_summary);
    RUN(test_auto_split);
    RUN(test_min_id_count);
    RUN(test_dense_transform);
    RUN(test_validation);
    RUN(test_read_errors);
    TEST_MAIN_END();
}
