/* test_cross.c — crossed sparse fields (config key `crosses`, data/cross.h):
 * the specs' checks, a row's value, and amtl-prep making the field from a
 * CSV (ids per distinct pair, empty when a part is, the train threshold,
 * meta "crosses") for random rows checked against a plain recount. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "data/cross.h"
#include "data/prep_csv.h"
#include "data/prep_table.h"
#include "format/config.h"
#include "iotest.h"

static const char *const FIELDS[] = {"user", "city", "item"};

static int init_err(const char *spec, int made, const char *want)
{
    amtl_crosses c;
    amtl_status st = {0};
    const char *specs[1] = {spec};
    if (amtl_crosses_init(&c, specs, 1, FIELDS, 3, made, "key 'crosses'", &st) == 0) {
        amtl_crosses_free(&c);
        return 0;
    }
    return strstr(st.msg, want) != NULL;
}

static void test_specs(void)
{
    amtl_crosses c;
    amtl_status st;
    const char *ok[] = {"user*city", "city*user*item"};
    CHECK_OK(amtl_crosses_init(&c, ok, 2, FIELDS, 3, 0, "key 'crosses'", &st), &st);
    CHECK(c.n == 2 && !strcmp(c.x[0].name, "user*city"));
    CHECK(c.x[0].n == 2 && c.x[0].src[0] == 0 && c.x[0].src[1] == 1);
    CHECK(c.x[1].n == 3 && c.x[1].src[0] == 1 && c.x[1].src[1] == 0 && c.x[1].src[2] == 2);
    CHECK(amtl_crosses_has(&c, "user*city") && !amtl_crosses_has(&c, "user"));
    amtl_crosses_free(&c);
    amtl_crosses_free(&c); /* safe twice */

    CHECK(init_err("user", 0, "names one field"));
    CHECK(init_err("user*age", 0, "'age' is not a sparse field"));
    CHECK(init_err("user*", 0, "an empty name"));
    CHECK(init_err("user*city*user", 0, "names 'user' twice"));
    CHECK(init_err("user*city", 1, "is not a sparse field")); /* made: must be a field */

    static const char *const nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    const char *wide[] = {"a*b*c*d*e*f*g*h*i"};
    CHECK(amtl_crosses_init(&c, wide, 1, nine, 9, 0, "key 'crosses'", &st) == -1);
    CHECK(strstr(st.msg, "more than 8 fields") != NULL);
    const char *dup[] = {"user*city", "user*city"};
    CHECK(amtl_crosses_init(&c, dup, 2, FIELDS, 3, 0, "key 'crosses'", &st) == -1);
    CHECK(strstr(st.msg, "listed twice") != NULL);
    const char *reordered[] = {"user*city", "city*user"};
    CHECK(amtl_crosses_init(&c, reordered, 2, FIELDS, 3, 0, "key 'crosses'", &st) == -1);
    CHECK(strstr(st.msg, "'city*user' crosses the fields of 'user*city'") != NULL);
    /* a read field with a cross's name would make two fields of one name */
    const char *clash_fields[] = {"user", "city", "user*city"};
    const char *one[] = {"user*city"};
    CHECK(amtl_crosses_init(&c, one, 1, clash_fields, 3, 0, "key 'crosses'", &st) == -1);
    CHECK(strstr(st.msg, "has the name of a sparse field") != NULL);
    /* a model's fields hold the cross itself; it is not a part of one */
    CHECK_OK(amtl_crosses_init_meta(&c, "user*city", clash_fields, 3, "m", &st), &st);
    CHECK(c.n == 1 && c.x[0].src[0] == 0 && c.x[0].src[1] == 1);
    amtl_crosses_free(&c);
    CHECK(amtl_crosses_init_meta(&c, "user*city\nuser*city*city", clash_fields, 3, "m",
                                 &st) == -1);
    CHECK(amtl_crosses_init_meta(&c, "user*city\n(user*city)*user", clash_fields, 3, "m",
                                 &st) == -1);
    CHECK_OK(amtl_crosses_init_meta(&c, "", FIELDS, 3, "m", &st), &st);
    CHECK(c.n == 0);
    CHECK_OK(amtl_crosses_init_meta(&c, NULL, FIELDS, 3, "m", &st), &st);
    CHECK(c.n == 0);
}

static void test_value(void)
{
    amtl_crosses c;
    amtl_status st;
    const char *specs[] = {"city*user", "user*city*item"};
    CHECK_OK(amtl_crosses_init(&c, specs, 2, FIELDS, 3, 0, "key 'crosses'", &st), &st);
    const char *tok[3] = {"alice", "Paris; FR", "x"};
    size_t len[3] = {5, 9, 1};
    const char *v;
    size_t n;
    CHECK(amtl_cross_value(&c, 0, tok, len, &v, &n) == 0);
    CHECK(n == 15 && !memcmp(v, "Paris; FR\x1f" "alice", 15));
    CHECK(amtl_cross_value(&c, 1, tok, len, &v, &n) == 0);
    CHECK(n == 17 && !memcmp(v, "alice\x1fParis; FR\x1fx", 17));
    len[2] = 0; /* a missing part: the cross is missing */
    CHECK(amtl_cross_value(&c, 1, tok, len, &v, &n) == 0 && n == 0);
    CHECK(amtl_cross_value(&c, 0, tok, len, &v, &n) == 0 && n == 15);
    amtl_crosses_free(&c);
}

/* Random rows through amtl-prep (three files: train, val, test): the cross's
 * ids must number the distinct (user, city) pairs as a field of its own
 * would, with the train-count threshold, and 0 where city is empty. */
static void test_prep(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 7);
    enum { ROWS = 200 };
    static char user[3][ROWS][8], city[3][ROWS][8];
    const char *name[3] = {"cx_train.csv", "cx_val.csv", "cx_test.csv"};
    const char *paths[3];
    for (int s = 0; s < 3; s++) {
        paths[s] = strdup(path_in_tmp(name[s]));
        FILE *fp = fopen(paths[s], "w");
        CHECK(fp != NULL);
        if (!fp)
            return;
        fprintf(fp, "user:token,city:token,price:float,click:label\n");
        for (int i = 0; i < ROWS; i++) {
            snprintf(user[s][i], 8, "u%d", (int)amtl_rng_below(&r, 12));
            int k = (int)amtl_rng_below(&r, 5); /* 0: an empty city */
            if (k)
                snprintf(city[s][i], 8, "c%d", k);
            else
                city[s][i][0] = '\0';
            fprintf(fp, "%s,%s,%.3f,%d\n", user[s][i], city[s][i],
                    amtl_rng_normal(&r, 0, 1), (int)amtl_rng_below(&r, 2));
        }
        fclose(fp);
    }
    amtl_config cfg;
    amtl_status st;
    amtl_prep_table t;
    amtl_file f;
    CHECK_OK(amtl_config_defaults(&cfg, &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "crosses", "[user*city]", &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "min_id_count", "3", &st), &st);
    CHECK_OK(amtl_config_set(&cfg, "vocab", "train", &st), &st);
    CHECK_OK(amtl_prep_read_csv(&t, &cfg, paths, 3, &st), &st);
    CHECK_OK(amtl_prep_table_to_file(&t, &cfg, &f, &st), &st);
    amtl_prep_table_free(&t);
    CHECK(!strcmp(amtl_file_meta(&f, "sparse_fields"), "user\ncity\nuser*city"));
    CHECK(!strcmp(amtl_file_meta(&f, "crosses"), "user*city"));

    /* the plain recount: train counts of each pair; a pair's id is 0 when
     * city is empty or the pair is rarer than 3 in train, and two rows share
     * an id exactly when they hold the same kept pair */
    static char key[3][ROWS][16];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < ROWS; i++)
            snprintf(key[s][i], 16, "%s|%s", user[s][i], city[s][i]);
    const char *split[3] = {"train", "val", "test"};
    int bad = 0;
    for (int s = 0; s < 3; s++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s.sparse.user*city", split[s]);
        const amtl_tensor *col = amtl_file_find(&f, nm);
        CHECK(col != NULL);
        if (!col)
            break;
        const int32_t *id = col->data;
        for (int i = 0; i < ROWS; i++) {
            int count = 0;
            for (int j = 0; j < ROWS; j++)
                count += !strcmp(key[0][j], key[s][i]);
            int kept = city[s][i][0] && count >= 3;
            bad += kept != (id[i] != 0);
            for (int s2 = 0; s2 <= s; s2++)
                for (int j = 0; j < ROWS; j++) {
                    const int32_t *id2 = s2 == s ? id : NULL;
                    if (!id2) {
                        char nm2[64];
                        snprintf(nm2, sizeof nm2, "%s.sparse.user*city", split[s2]);
                        id2 = amtl_file_find(&f, nm2)->data;
                    }
                    if (id[i] && id2[j])
                        bad += (id[i] == id2[j]) != !strcmp(key[s][i], key[s2][j]);
                }
        }
    }
    CHECKF(bad == 0, "%d rows disagree with the recount", bad);
    /* the vocabulary holds the joined values (separator 0x1f) */
    const amtl_tensor *v = amtl_file_find(&f, "vocab.user*city");
    CHECK(v && memchr(v->data, '\x1f', amtl_tensor_nbytes(v)) != NULL);
    amtl_file_free(&f);

    /* the config's errors name the key and the file */
    CHECK_OK(amtl_config_set(&cfg, "crosses", "[user*price]", &st), &st);
    CHECK(amtl_prep_read_csv(&t, &cfg, paths, 3, &st) == -1);
    CHECK(strstr(st.msg, "key 'crosses'") && strstr(st.msg, "'price' is not a sparse field") &&
          strstr(st.msg, "cx_train.csv"));
    amtl_config_free(&cfg);
    for (int s = 0; s < 3; s++)
        free((char *)paths[s]);
}

int main(void)
{
    if (iotest_begin())
        return 1;
    RUN(test_specs);
    RUN(test_value);
    RUN(test_prep);
    iotest_end();
    TEST_MAIN_END();
}
