/* metrics.h — ROC AUC and logloss per task. */
#ifndef AMTL_METRICS_H
#define AMTL_METRICS_H

#include <stdint.h>

#include "base/error.h"

/* Exact ROC AUC of scores against 0/1 labels, ties as average ranks (the
 * value of scikit-learn's roc_auc_score).  Only rows with w[i] != 0 count
 * (w NULL = all).  Returns 0 and sets *auc; returns 1 when the rows hold a
 * single class (no AUC: *auc is left NaN); -1 on allocation failure. */
int amtl_auc(const float *scores, const float *labels, const float *w, int64_t n,
             double *auc, amtl_status *st);

/* Mean binary log loss of logits against labels over the counted rows,
 * computed from the logits (stable); NaN when no row counts. */
double amtl_logloss_logits(const float *logits, const float *labels, const float *w,
                           int64_t n);

/* The standard error of an AUC estimated from npos positive and nneg
 * negative rows (Hanley & McNeil 1982, Radiology 143: the exponential
 * approximation Q1 = A/(2-A), Q2 = 2A²/(1+A)); NaN when auc is NaN or a
 * class is empty. */
double amtl_auc_se(double auc, int64_t npos, int64_t nneg);

/* Two scorings of the same rows compared on K tasks. */
typedef struct {
    int tasks;          /* K */
    double auc_a, auc_b; /* mean AUC over the K tasks of each scoring */
    double diff;        /* auc_a − auc_b */
    double se;          /* the paired standard error of diff */
} amtl_auc_pair;

/* Paired comparison of scorings a[k] and b[k] (k < K, each [n]) against
 * labels[k] over the rows where w[k] != 0 (w NULL or w[k] NULL = all): the
 * difference of the mean AUCs and its standard error by DeLong's placements
 * (for one task, exactly DeLong's paired variance; over several, the rows'
 * shares are summed across tasks first, so the correlation between tasks on
 * the same rows is counted).  Returns 1 when a task's rows hold one class
 * or fewer than two rows (out NaN), -1 on allocation failure. */
int amtl_auc_paired(const float *const *a, const float *const *b,
                    const float *const *labels, const float *const *w, int K, int64_t n,
                    amtl_auc_pair *out, amtl_status *st);

#endif
