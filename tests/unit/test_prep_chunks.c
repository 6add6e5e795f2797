/* test_prep_chunks.c — amtl-prep's table kept a chunk at a time: the same
 * dataset bytes whatever the chunk size (1 row, a few, the default), the
 * split drawn by sequential sampling (exact sizes, every assignment equally
 * likely, input order kept), labels put after the rows, and a temp file
 * that cannot be made as a clear error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/rng.h"
#include "data/dataset.h"
#include "data/prep_table.h"
#include "format/config.h"
#include "format/io.h"
#include "test.h"

static void chunk_rows(const char *n)
{
    if (n)
        setenv("AMTL_PREP_CHUNK_ROWS", n, 1);
    else
        unsetenv("AMTL_PREP_CHUNK_ROWS");
}

/* 300 rows of random data: tokens with repeats and empty ones, heavy-tailed
 * dense values, labels; the marks a mix of drawn (both kinds) and fixed. */
static int make_random_table(amtl_prep_table *t, uint64_t seed, amtl_status *st)
{
    static const char *const sparse[] = {"user", "item", "city"};
    static const char *const dense[] = {"price", "age"};
    static const char *const labels[] = {"click", "buy"};
    if (amtl_prep_table_init(t, 3, sparse, 2, dense, 2, labels, st))
        return -1;
    amtl_rng r;
    amtl_rng_seed(&r, seed);
    static const int card[3] = {40, 120, 5};
    for (int i = 0; i < 300; i++) {
        int mark = i < 150 ? AMTL_PREP_AUTO
                   : i < 250 ? AMTL_PREP_AUTO_TRAINVAL
                             : (int)amtl_rng_below(&r, 3);
        int64_t row = amtl_prep_table_add_row(t, mark, st);
        if (row < 0)
            return -1;
        for (int f = 0; f < 3; f++) {
            char tok[16];
            int len = amtl_rng_below(&r, 10) == 0
                          ? 0 /* an empty token: id 0 */
                          : snprintf(tok, sizeof tok, "v%d",
                                     (int)amtl_rng_below(&r, (uint64_t)card[f]));
            int32_t id = amtl_prep_table_intern(t, f, tok, (size_t)len, st);
            if (id < 0)
                return -1;
            t->raw[f][row] = id;
        }
        t->dense[0][row] = (float)(amtl_rng_normal(&r, 0, 1) * 1000.0);
        t->dense[1][row] = (float)amtl_rng_below(&r, 90);
        t->labels[0][row] = (uint8_t)amtl_rng_bernoulli(&r, 0.3);
        t->labels[1][row] = (uint8_t)(t->labels[0][row] && amtl_rng_bernoulli(&r, 0.4));
    }
    return 0;
}

static int encode_table(const char *vocab, const char *min_id_count, const char *dense,
                        void **buf, size_t *len, amtl_status *st)
{
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    amtl_prep_table t;
    amtl_file f;
    int rc = -1;
    if (amtl_config_defaults(&cfg, st) || amtl_config_set(&cfg, "vocab", vocab, st) ||
        amtl_config_set(&cfg, "min_id_count", min_id_count, st) ||
        amtl_config_set(&cfg, "dense_transform", dense, st) ||
        amtl_config_set(&cfg, "seed", "11", st))
        goto out;
    if (make_random_table(&t, 5, st) == 0 && amtl_prep_table_to_file(&t, &cfg, &f, st) == 0) {
        rc = amtl_file_encode(&f, buf, len, st);
        amtl_file_free(&f);
    }
    amtl_prep_table_free(&t);
out:
    amtl_config_free(&cfg);
    return rc;
}

static void test_same_bytes_whatever_the_chunk(void)
{
    static const char *const settings[][3] = {
        {"all", "0", "none"},           {"train", "0", "standardize"},
        {"all", "3", "log-standardize"}, {"train", "2", "none"},
    };
    static const char *const chunks[] = {"1", "3", "64", "299", "300", NULL};
    amtl_status st;
    for (size_t s = 0; s < sizeof settings / sizeof settings[0]; s++) {
        void *ref = NULL;
        size_t ref_len = 0;
        chunk_rows(NULL); /* the default: the 300 rows in one chunk, no temp file */
        CHECK_OK(encode_table(settings[s][0], settings[s][1], settings[s][2], &ref, &ref_len,
                              &st),
                 &st);
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            void *buf = NULL;
            size_t len = 0;
            chunk_rows(chunks[c]);
            int rc = encode_table(settings[s][0], settings[s][1], settings[s][2], &buf, &len,
                                  &st);
            int same = rc == 0 && len == ref_len && !memcmp(buf, ref, len);
            free(buf);
            if (!same)
                free(ref);
            CHECK_OK(rc, &st);
            CHECKF(same, "vocab %s, min_id_count %s, %s: chunks of %s rows give other bytes",
                   settings[s][0], settings[s][1], settings[s][2],
                   chunks[c] ? chunks[c] : "the default");
        }
        free(ref);
    }
    chunk_rows(NULL);
}

/* 5 rows split 0.6 / 0.2 / 0.2 under 4000 seeds: always 3, 1 and 1 rows,
 * each in input order, and every row in train 60 % of the time, in val and
 * test 20 % each (a binomial deviation of 0.6 % at most; 4 % allowed). */
static void test_split_draw(void)
{
    enum { ROWS = 5, SEEDS = 4000 };
    static const char *const dense[] = {"row"};
    static const char *const labels[] = {"y"};
    amtl_status st;
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    CHECK_OK(amtl_config_defaults(&cfg, &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "split", "[0.6, 0.2, 0.2]", &st), &st);
    int in[3][ROWS] = {{0}};
    chunk_rows("2");
    for (int seed = 1; seed <= SEEDS; seed++) {
        char sb[16];
        snprintf(sb, sizeof sb, "%d", seed);
        CHECK_OK(amtl_config_set(&cfg, "seed", sb, &st), &st);
        amtl_prep_table t;
        CHECK_OK(amtl_prep_table_init(&t, 0, NULL, 1, dense, 1, labels, &st), &st);
        for (int i = 0; i < ROWS; i++) {
            int64_t r = amtl_prep_table_add_row(&t, AMTL_PREP_AUTO, &st);
            CHECK_OK(r < 0, &st);
            t.dense[0][r] = (float)i;
        }
        amtl_file f;
        int rc = amtl_prep_table_to_file(&t, &cfg, &f, &st);
        amtl_prep_table_free(&t);
        CHECK_OK(rc, &st);
        static const char *const names[3] = {"train.dense.row", "val.dense.row",
                                             "test.dense.row"};
        static const int64_t want[3] = {3, 1, 1};
        for (int s = 0; s < 3; s++) {
            const amtl_tensor *c = amtl_file_find(&f, names[s]);
            CHECK(c && c->shape[0] == want[s]);
            const float *x = c->data;
            for (int64_t i = 0; i < c->shape[0]; i++) {
                CHECK(i == 0 || x[i] > x[i - 1]); /* input order */
                in[s][(int)x[i]]++;
            }
        }
        amtl_file_free(&f);
    }
    chunk_rows(NULL);
    amtl_config_free(&cfg);
    static const double p[3] = {0.6, 0.2, 0.2};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < ROWS; i++)
            CHECKF(fabs(in[s][i] / (double)SEEDS - p[s]) < 0.04,
                   "row %d in split %d %d times of %d", i, s, in[s][i], SEEDS);
}

/* Labels put once every row is in (what the synthetic generators do) land
 * on their rows, across chunks. */
static void test_put_labels(void)
{
    static const char *const dense[] = {"row"};
    static const char *const labels[] = {"a", "b"};
    amtl_status st;
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    CHECK_OK(amtl_config_defaults(&cfg, &st), &st);
    chunk_rows("3");
    amtl_prep_table t;
    CHECK_OK(amtl_prep_table_init(&t, 0, NULL, 1, dense, 2, labels, &st), &st);
    uint8_t y[2][10];
    for (int i = 0; i < 10; i++) {
        int64_t r = amtl_prep_table_add_row(&t, AMTL_SPLIT_TRAIN, &st);
        CHECK_OK(r < 0, &st);
        t.dense[0][r] = (float)i;
        y[0][i] = (uint8_t)(i % 3 == 1);
        y[1][i] = (uint8_t)(i % 4 == 0);
    }
    chunk_rows(NULL);
    CHECK(t.spilled == 3 && t.fill == 1);
    int rc = amtl_prep_table_put_labels(&t, 0, y[0], &st);
    if (rc == 0)
        rc = amtl_prep_table_put_labels(&t, 1, y[1], &st);
    amtl_file f;
    if (rc == 0)
        rc = amtl_prep_table_to_file(&t, &cfg, &f, &st);
    amtl_prep_table_free(&t);
    amtl_config_free(&cfg);
    CHECK_OK(rc, &st);
    const float *a = amtl_file_find(&f, "train.label.a")->data;
    const float *b = amtl_file_find(&f, "train.label.b")->data;
    const float *x = amtl_file_find(&f, "train.dense.row")->data;
    int ok = 1;
    for (int i = 0; i < 10; i++)
        ok &= x[i] == (float)i && a[i] == (float)y[0][i] && b[i] == (float)y[1][i];
    amtl_file_free(&f);
    CHECK(ok);
}

/* A temp file that cannot be made: the row that needs it fails, with the
 * directory and what to do in the message. */
static void test_spill_error(void)
{
    static const char *const dense[] = {"x"};
    amtl_status st;
    const char *old = getenv("TMPDIR");
    char *keep = old ? strdup(old) : NULL;
    setenv("TMPDIR", "/nonexistent/amtl-spill", 1);
    chunk_rows("2");
    amtl_prep_table t;
    int rc = amtl_prep_table_init(&t, 0, NULL, 1, dense, 0, NULL, &st);
    int64_t r[3] = {0, 0, 0};
    for (int i = 0; rc == 0 && i < 3; i++)
        r[i] = amtl_prep_table_add_row(&t, AMTL_SPLIT_TRAIN, &st);
    amtl_prep_table_free(&t);
    chunk_rows(NULL);
    if (keep)
        setenv("TMPDIR", keep, 1);
    else
        unsetenv("TMPDIR");
    free(keep);
    CHECK_OK(rc, &st);
    CHECK(r[0] == 0 && r[1] == 1 && r[2] == -1);
    CHECKF(strstr(st.msg, "'/nonexistent/amtl-spill'") && strstr(st.msg, "TMPDIR"), "%s",
           st.msg);
}

int main(void)
{
    RUN(test_same_bytes_whatever_the_chunk);
    RUN(test_split_draw);
    RUN(test_put_labels);
    RUN(test_spill_error);
    TEST_MAIN_END();
}
