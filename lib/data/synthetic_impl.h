/* synthetic_impl.h — the pieces every synthetic kind (synthetic.c,
 * synthetic_aliccp.c) draws its table with; not part of the library's
 * interface.
 */
#ifndef AMTL_SYNTHETIC_IMPL_H
#define AMTL_SYNTHETIC_IMPL_H

#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"
#include "data/prep_table.h"

/* Everything a kind draws comes from one of three forks of the seed. */
typedef struct {
    amtl_rng hidden, rows, labels;
} amtl_synth_rngs;

typedef struct {
    double score;
    uint8_t y;
} amtl_synth_scored;

/* Cumulative Zipf-like weights 1/(rank+1)^s over n values, normalised
 * (s 0: uniform); NULL when out of memory. */
double *amtl_synth_zipf_cdf(int n, double s);
/* A value in [0, n) drawn by its cumulative weights. */
int amtl_synth_draw(amtl_rng *r, const double *cdf, int n);
/* Standardises each task's signal z[k][rows] and scales it by `scale`,
 * finds the intercept that gives rate[k], draws the labels into
 * y[k][rows]; measured and oracle get each task's positive rate and the true
 * logits' AUC (sc: scratch of rows entries; NULL: no AUC, oracle -1). */
void amtl_synth_draw_labels(uint8_t *y, double *z, int64_t rows, int tasks,
                            double scale, const double *rate, amtl_rng *r,
                            amtl_synth_scored *sc, double *measured, double *oracle);
/* The labels y[tasks][rows] into t's rows. */
int amtl_synth_put_labels(amtl_prep_table *t, const uint8_t *y, int tasks, amtl_status *st);
/* Effects of every value of a field on every task, [n][tasks]: sd times a
 * normal part common to the tasks (variance share rho) plus each task's own;
 * NULL when out of memory. */
float *amtl_synth_effects(amtl_rng *r, int n, int tasks, double sd, double rho);
/* ROC AUC of scores against labels (sorts v); -1 with a single class. */
double amtl_synth_auc(amtl_synth_scored *v, int64_t n);
/* The meta synthetic.positive_rates and synthetic.oracle_auc (buf: 4096). */
int amtl_synth_rates_meta(amtl_prep_table *t, int tasks, const double *target,
                          const double *measured, const double *oracle, char *buf,
                          amtl_status *st);
/* The table of a kind: rows and tasks checked, labels task0..; and its
 * generators. */
int amtl_synth_table(amtl_prep_table *t, int64_t rows, int tasks, int N,
                     const char *const *sparse, int D, const char *const *dense,
                     uint64_t seed, amtl_synth_rngs *r, amtl_status *st);
/* The table's source line: what made it, and how. */
int amtl_synth_source(amtl_prep_table *t, const char *what, int64_t rows, int tasks,
                      uint64_t seed, amtl_status *st);
/* One row: the ids v[N] as decimal tokens, dense[D]. */
int amtl_synth_row(amtl_prep_table *t, const int *v, int N, const float *dense, int D,
                   amtl_status *st);

#endif
