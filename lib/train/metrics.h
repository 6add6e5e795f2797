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

#endif
