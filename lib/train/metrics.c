/* metrics.c — exact ROC AUC (Mann–Whitney, ties as average ranks) and logloss.
 *
 * AUC: sort the counted rows by score, walk the groups of equal scores and
 * count, for each positive, the negatives below it plus half the negatives
 * tied with it.  That count is (sum of positive ranks − P(P+1)/2) with ties
 * given their average rank, i.e. scikit-learn's roc_auc_score; it is kept in
 * integers (twice the count), so the result is exact up to the final
 * division.
 *
 * Paired comparison: two scorings of the same rows differ in AUC by the
 * mean difference of their placements; rows are the independent units, so
 * the difference's variance is the sum of squares of each row's share
 * (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44), summed over the
 * tasks of a mean AUC before squaring: the tasks' correlation (the same
 * rows) is counted, not assumed away.
 */
#include "train/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/tensor.h"

typedef struct {
    float score;
    uint8_t pos;
    int64_t idx; /* the row's index in the caller's arrays */
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

/* The counted rows sorted by score, with their class totals.  Returns 1
 * (nothing allocated) when fewer than two rows count or one class is
 * empty, -1 on allocation failure. */
static int sort_rows(const float *scores, const float *labels, const float *w, int64_t n,
                     scored_row **out, int64_t *m_out, uint64_t *P, uint64_t *N,
                     amtl_status *st)
{
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
    *P = 0;
    for (int64_t i = 0; i < n; i++) {
        if (w && w[i] == 0.0f)
            continue;
        rows[k] = (scored_row){scores[i], labels[i] > 0.5f, i};
        *P += rows[k].pos;
        k++;
    }
    *N = (uint64_t)m - *P;
    if (*P == 0 || *N == 0) {
        amtl_free(rows);
        return 1;
    }
    qsort(rows, (size_t)m, sizeof *rows, cmp_rows);
    *out = rows;
    *m_out = m;
    return 0;
}

/* Walks the groups of equal scores and returns twice the Mann–Whitney U:
 * Σ over positives of (2·negatives below + negatives tied).  With v, sets
 * v[idx] of each row to its placement (DeLong 1988): a positive's share of
 * the negatives below it, a negative's share of the positives above it,
 * ties counting half; the mean placement of either class is the AUC. */
static uint64_t walk_groups(const scored_row *rows, int64_t m, uint64_t P, uint64_t N,
                            double *v)
{
    uint64_t below_p = 0, below_n = 0, twice_u = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        uint64_t gp = 0, gn = 0;
        while (j < m && same_score(rows[j].score, rows[i].score)) {
            gp += rows[j].pos;
            gn += !rows[j].pos;
            j++;
        }
        twice_u += gp * (2 * below_n + gn);
        if (v) {
            double vp = ((double)below_n + 0.5 * (double)gn) / (double)N;
            double vn = ((double)(P - below_p) - 0.5 * (double)gp) / (double)P;
            for (int64_t r = i; r < j; r++)
                v[rows[r].idx] = rows[r].pos ? vp : vn;
        }
        below_p += gp;
        below_n += gn;
        i = j;
    }
    return twice_u;
}

/* One scoring's AUC of one task and, with v, its rows' placements into
 * v[n] (uncounted rows left as they are). */
static int placements(const float *scores, const float *labels, const float *w, int64_t n,
                      double *v, double *auc, uint64_t *P, uint64_t *N, amtl_status *st)
{
    scored_row *rows = NULL;
    int64_t m = 0;
    int r = sort_rows(scores, labels, w, n, &rows, &m, P, N, st);
    if (r)
        return r;
    uint64_t twice_u = walk_groups(rows, m, *P, *N, v);
    amtl_free(rows);
    *auc = (double)twice_u / (2.0 * (double)*P * (double)*N);
    return 0;
}

int amtl_auc(const float *scores, const float *labels, const float *w, int64_t n,
             double *auc, amtl_status *st)
{
    uint64_t P, N;
    *auc = NAN;
    return placements(scores, labels, w, n, NULL, auc, &P, &N, st);
}

int amtl_auc_paired(const float *const *a, const float *const *b,
                    const float *const *labels, const float *const *w, int K, int64_t n,
                    amtl_auc_pair *out, amtl_status *st)
{
    memset(out, 0, sizeof *out);
    out->auc_a = out->auc_b = out->diff = out->se = NAN;
    if (K < 1)
        return 1;
    double *va = amtl_alloc_array((size_t)n, sizeof *va);
    double *vb = amtl_alloc_array((size_t)n, sizeof *vb);
    double *psi = amtl_alloc_array((size_t)n, sizeof *psi);
    int rc = 0;
    if (n > 0 && (!va || !vb || !psi)) {
        rc = amtl_error(st, AMTL_ENOMEM, "out of memory comparing two scorings of %lld rows",
                        (long long)n);
        goto out;
    }
    for (int64_t i = 0; i < n; i++)
        psi[i] = 0.0;
    double sa = 0, sb = 0;
    for (int k = 0; k < K && !rc; k++) {
        uint64_t P, N;
        double ta, tb;
        const float *wk = w ? w[k] : NULL;
        rc = placements(a[k], labels[k], wk, n, va, &ta, &P, &N, st);
        if (!rc)
            rc = placements(b[k], labels[k], wk, n, vb, &tb, &P, &N, st);
        if (rc)
            break;
        sa += ta;
        sb += tb;
        /* Each row's share of this task's AUC difference, centred within
         * its class and scaled so that, for one task, Σ psi² is DeLong's
         * variance of the difference: S_pos/P + S_neg/N with the sample
         * variances of the placement differences. */
        double cp = P > 1 ? 1.0 / sqrt((double)P * (double)(P - 1)) : 0.0;
        double cn = N > 1 ? 1.0 / sqrt((double)N * (double)(N - 1)) : 0.0;
        for (int64_t i = 0; i < n; i++) {
            if (wk && wk[i] == 0.0f)
                continue;
            int pos = labels[k][i] > 0.5f;
            psi[i] += ((va[i] - vb[i]) - (ta - tb)) * (pos ? cp : cn) / K;
        }
    }
    if (rc)
        goto out;
    double var = 0;
    for (int64_t i = 0; i < n; i++)
        var += psi[i] * psi[i];
    out->tasks = K;
    out->auc_a = sa / K;
    out->auc_b = sb / K;
    out->diff = (sa - sb) / K;
    out->se = sqrt(var);
out:
    amtl_free(va);
    amtl_free(vb);
    amtl_free(psi);
    return rc;
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
