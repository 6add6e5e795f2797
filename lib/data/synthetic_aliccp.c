/* synthetic_aliccp.c — kind "aliccp": rows of the shape of Ali-CCP, the
 * Alibaba click and conversion log (about 85 million rows in its full
 * release), for measuring the tools at scale.
 *
 * 23 sparse fields named by Ali-CCP's feature ids, with about its
 * cardinalities (user 101, item 205, shop 207, brand 216 in the hundreds of
 * thousands; gender, age and the like a handful), drawn with Zipf-like
 * frequencies; 8 dense fields; two tasks, click and purchase, a purchase
 * only on a clicked row as in the real log.  Each task's logit is a sum of
 * per-value effects of a few fields (related between the tasks) and a small
 * dense effect, so the labels can be learned; the positive rates are about
 * 4% (click) and 2% (purchase, some 40% of the clicks).  Not a model of Ali-CCP's signal: its
 * shape, for memory and speed at 1 to 85 million rows.
 */
#include "data/synthetic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synthetic_impl.h"

enum { NA_SPARSE = 23, NA_DENSE = 8, NA_TASKS = 2 };

/* name, cardinality, Zipf exponent (0 = uniform) and effect scale */
static const struct {
    const char *name;
    int n;
    double s, sd;
} acard[NA_SPARSE] = {
    {"101", 240000, 1.05, 0.8}, {"121", 98, 1.0, 0.1},      {"122", 14, 0.8, 0.1},
    {"124", 3, 0.0, 0.1},       {"125", 8, 0.5, 0.1},       {"126", 4, 0.5, 0.0},
    {"127", 4, 0.5, 0.0},       {"128", 3, 0.5, 0.0},       {"129", 5, 0.5, 0.0},
    {"205", 470000, 1.1, 0.8},  {"206", 7000, 1.0, 0.4},    {"207", 260000, 1.1, 0.5},
    {"210", 80000, 1.1, 0.0},   {"216", 110000, 1.1, 0.4},  {"508", 6000, 1.0, 0.0},
    {"509", 85000, 1.1, 0.0},   {"702", 90000, 1.1, 0.0},   {"853", 55000, 1.1, 0.0},
    {"301", 4, 0.5, 0.2},       {"109_14", 6000, 1.0, 0.0}, {"110_14", 300000, 1.1, 0.0},
    {"127_14", 300000, 1.1, 0.0}, {"150_14", 60000, 1.1, 0.0},
};

static const char *const adense_names[NA_DENSE] = {"D109_14", "D110_14", "D127_14",
                                                   "D150_14", "D508",    "D509",
                                                   "D702",    "D853"};
static const char *const alabel_names[NA_TASKS] = {"click", "purchase"};

/* rates drawn over every row: click 4%; purchase 25% before it is kept on
 * clicked rows only (the tasks' effects are related), about 2% of all rows
 * then */
static const double arate[NA_TASKS] = {0.04, 0.25};
#define ARHO 0.6   /* share of an effect's variance common to the tasks */
#define ADENSE 0.2 /* effect of D109_14 */
#define ASCALE 1.5 /* logit = intercept + ASCALE * standardised signal */

/* The labels task0, task1 of amtl_synth_table renamed click and purchase. */
static int name_labels(amtl_prep_table *t, amtl_status *st)
{
    for (int k = 0; k < NA_TASKS; k++) {
        char *n = strdup(alabel_names[k]);
        if (!n)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        free(t->label_names[k]);
        t->label_names[k] = n;
    }
    return 0;
}

int amtl_prep_synthetic_aliccp(amtl_prep_table *t, int64_t rows, int tasks, uint64_t seed,
                               amtl_status *st)
{
    if (tasks != NA_TASKS)
        return amtl_error(st, AMTL_EUSAGE,
                          "--synthetic-kind aliccp has %d tasks (click, purchase), not %d",
                          NA_TASKS, tasks);
    const char *names[NA_SPARSE];
    for (int f = 0; f < NA_SPARSE; f++)
        names[f] = acard[f].name;
    amtl_synth_rngs r;
    if (amtl_synth_table(t, rows, NA_TASKS, NA_SPARSE, names, NA_DENSE, adense_names, seed, &r,
                         st))
        return -1;
    float *eff[NA_SPARSE] = {0};
    double *cdf[NA_SPARSE] = {0}, *z = NULL;
    uint8_t *y = NULL;
    int rc = -1;
    if (name_labels(t, st))
        goto out;
    for (int f = 0; f < NA_SPARSE; f++)
        if ((acard[f].sd > 0 &&
             !(eff[f] = amtl_synth_effects(&r.hidden, acard[f].n, NA_TASKS, acard[f].sd, ARHO))) ||
            !(cdf[f] = amtl_synth_zipf_cdf(acard[f].n, acard[f].s))) {
            amtl_error(st, AMTL_ENOMEM, "out of memory");
            goto out;
        }
    z = malloc(sizeof *z * (size_t)rows * NA_TASKS);
    y = malloc((size_t)rows * NA_TASKS);
    if (!z || !y) {
        amtl_error(st, AMTL_ENOMEM, "out of memory for %lld synthetic rows", (long long)rows);
        goto out;
    }
    for (int64_t i = 0; i < rows; i++) {
        int v[NA_SPARSE];
        for (int f = 0; f < NA_SPARSE; f++)
            v[f] = amtl_synth_draw(&r.rows, cdf[f], acard[f].n);
        float dense[NA_DENSE];
        for (int d = 0; d < NA_DENSE; d++)
            dense[d] = (float)amtl_rng_normal(&r.rows, 0.0, 1.0);
        if (amtl_synth_row(t, v, NA_SPARSE, dense, NA_DENSE, st))
            goto out;
        for (int k = 0; k < NA_TASKS; k++) {
            double s = ADENSE * dense[0];
            for (int f = 0; f < NA_SPARSE; f++)
                if (eff[f])
                    s += eff[f][(size_t)v[f] * NA_TASKS + (size_t)k];
            z[(size_t)k * (size_t)rows + (size_t)i] = s;
        }
    }
    double measured[NA_TASKS], oracle[NA_TASKS];
    /* no oracle AUC: its sort would cost 16 bytes a row more than the data */
    amtl_synth_draw_labels(y, z, rows, NA_TASKS, ASCALE, arate, &r.labels, NULL, measured,
                           oracle);
    /* a purchase only on a clicked row */
    int64_t bought = 0;
    uint8_t *click = y, *buy = y + rows;
    for (int64_t i = 0; i < rows; i++) {
        buy[i] &= click[i];
        bought += buy[i];
    }
    measured[1] = (double)bought / (double)rows;
    if (amtl_synth_put_labels(t, y, NA_TASKS, st))
        goto out;
    char buf[4096];
    if (amtl_prep_table_set_meta(t, "synthetic.kind", "aliccp", st) ||
        amtl_prep_table_set_meta(t, "synthetic.shape",
                                 "Ali-CCP: 23 sparse fields, 8 dense, click and purchase",
                                 st) ||
        amtl_synth_rates_meta(t, NA_TASKS, arate, measured, oracle, buf, st) ||
        amtl_synth_source(t, "synthetic kind=aliccp", rows, NA_TASKS, seed, st))
        goto out;
    rc = 0;
out:
    for (int f = 0; f < NA_SPARSE; f++) {
        free(eff[f]);
        free(cdf[f]);
    }
    free(z);
    free(y);
    if (rc)
        amtl_prep_table_free(t);
    return rc;
}
