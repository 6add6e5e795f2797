/* metrics.c — exact ROC AUC (Mann–Whitney, ties as average ranks) and logloss.
 *
 * AUC: sort the counted rows by score, walk the groups of equal scores and
 * count, for each positive, the negatives below it plus half the negatives
 * tied with it.  That count is (sum of positive ranks − P(P+1)/2) with ties
 * given their average rank, i.e. scikit-learn's roc_auc_score; it is kept in
 * integers (twice the count), so the result is exact up to the final
 * division.
 */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "base/tensor.h"

typedef struct {
    float score;
    uint8_t pos;
} scored_row;

/* Ascending scores; NaN sorts below every number and ties with NaN, so the
 * order is total and qsort is well defined.  Equal scores compare equal:
 * their relative order does not change the result. */
static int cmp_rows(const void *pa, const void *pb)
{
    float a = ((const scored_row *)pa)->score, b = ((const scored_row *)pb)->score;
    int na = isnan(a), nb = isnan(b);
    if (na || nb)
        return nb - na;
    return (a > b) - (a < b);
}

static int same_score(float a, float b)
{
    return a == b || (isnan(a) && isnan(b));
}

int amtl_auc(const float *scores, const float *labels, const float *w, int64_t n,
             double *auc, amtl_status *st)
{
    *auc = NAN;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        m += !w || w[i] != 0.0f;
    if (m < 2)
        return 1;
    scored_row *rows = amtl_alloc_array((size_t)m, sizeof *rows);
    if (!rows)
        return amtl_error(st, AMTL_ENOMEM, "out of memory sorting %lld scores for the AUC",
                          (long long)m);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (w && w[i] == 0.0f)
            continue;
        rows[k].score = scores[i];
        rows[k].pos = labels[i] > 0.5f;
        k++;
    }
    qsort(rows, (size_t)m, sizeof *rows, cmp_rows);

    /* twice_u = Σ over positives of (2·negatives below + negatives tied). */
    uint64_t P = 0, N = 0, twice_u = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        uint64_t gp = 0, gn = 0;
        while (j < m && same_score(rows[j].score, rows[i].score)) {
            gp += rows[j].pos;
            gn += !rows[j].pos;
            j++;
        }
        twice_u += gp * (2 * N + gn);
        P += gp;
        N += gn;
        i = j;
    }
    amtl_free(rows);
    if (P == 0 || N == 0)
        return 1;
    *auc = (double)twice_u / (2.0 * (double)P * (double)N);
    return 0;
}

double amtl_logloss_logits(const float *logits, const float *labels, const float *w,
                           int64_t n)
{
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (w && w[i] == 0.0f)
            continue;
        double x = logits[i], y = labels[i];
        /* max(x,0) − x y + log(1 + exp(−|x|)) */
        sum += (x > 0.0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
        count++;
    }
    return count ? sum / (double)count : NAN;
}

double amtl_auc_se(double auc, int64_t npos, int64_t nneg)
{
    if (isnan(auc) || npos < 1 || nneg < 1)
        return NAN;
    double a = auc, n1 = (double)npos, n2 = (double)nneg;
    double q1 = a / (2.0 - a), q2 = 2.0 * a * a / (1.0 + a);
    double var = (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n2 - 1.0) * (q2 - a * a)) /
                 (n1 * n2);
    return var > 0 ? sqrt(var) : 0.0;
}
