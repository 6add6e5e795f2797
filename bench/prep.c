/* bench/prep.c — rows per second of amtl-prep's CSV conversion: a processed
 * CSV and a UserBehavior log, generated into a temp directory, read and
 * encoded into a dataset in memory.
 *   build/bench/prep [ROWS]   (default 2000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/config.h"
#include "data/prep_csv.h"
#include "data/prep_table.h"
#include "data/recipes.h"
#include "base/progress.h"
#include "base/rng.h"

static int write_processed(const char *path, long rows)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    amtl_rng r;
    amtl_rng_seed(&r, 1);
    fputs("user:token,item:token,city:token,price:float,age:float,click:label,buy:label\n",
          fp);
    for (long i = 0; i < rows; i++)
        fprintf(fp, "u%llu,i%llu,c%llu,%.4f,%.3f,%d,%d\n",
                (unsigned long long)amtl_rng_below(&r, 1000000),
                (unsigned long long)amtl_rng_below(&r, 200000),
                (unsigned long long)amtl_rng_below(&r, 300), amtl_rng_uniform(&r),
                amtl_rng_uniform(&r), amtl_rng_bernoulli(&r, 0.3),
                amtl_rng_bernoulli(&r, 0.05));
    return fclose(fp);
}

static int write_userbehavior(const char *path, long rows)
{
    static const char *const b[] = {"pv", "pv", "pv", "pv", "cart", "fav", "buy"};
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    amtl_rng r;
    amtl_rng_seed(&r, 2);
    for (long i = 0; i < rows; i++) {
        unsigned long long item = amtl_rng_below(&r, 50000);
        fprintf(fp, "%llu,%llu,%llu,%s,%ld\n",
                (unsigned long long)amtl_rng_below(&r, 20000), item, item % 900,
                b[amtl_rng_below(&r, 7)], 1511544070L + i);
    }
    return fclose(fp);
}

typedef int (*reader)(amtl_prep_table *, const amtl_config *, const char *const *, int,
                      amtl_status *);

static int run(const char *name, reader rd, const char *path, long rows,
               amtl_config *cfg)
{
    amtl_status st;
    amtl_prep_table t;
    amtl_file f;
    const char *inputs[1] = {path};
    double t0 = amtl_now();
    if (rd(&t, cfg, inputs, 1, &st)) {
        fprintf(stderr, "bench prep: %s\n", st.msg);
        return -1;
    }
    double t1 = amtl_now();
    int rc = amtl_prep_table_to_file(&t, cfg, &f, &st);
    amtl_prep_table_free(&t);
    double t2 = amtl_now();
    if (rc) {
        fprintf(stderr, "bench prep: %s\n", st.msg);
        return -1;
    }
    amtl_file_free(&f);
    printf("prep %-13s %9ld lines  read %6.2f s  %9.0f lines/s  encode %5.2f s\n", name,
           rows, t1 - t0, (double)rows / (t1 - t0), t2 - t1);
    return 0;
}

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 2000000;
    char dir[] = "/tmp/amtl-bench-prep-XXXXXX";
    if (rows < 1 || !mkdtemp(dir))
        return 1;
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "%s/processed.csv", dir);
    snprintf(p2, sizeof p2, "%s/userbehavior.csv", dir);
    amtl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    amtl_status st;
    int rc = 1;
    if (amtl_config_defaults(&cfg, &st) || write_processed(p1, rows) ||
        write_userbehavior(p2, rows))
        goto out;
    if (run("processed", amtl_prep_read_csv, p1, rows, &cfg) ||
        amtl_config_set(&cfg, "format", "userbehavior", &st) ||
        run("userbehavior", amtl_prep_read_recipe, p2, rows, &cfg))
        goto out;
    rc = 0;
out:
    amtl_config_free(&cfg);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    return rc;
}
