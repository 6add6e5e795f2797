/* test_metrics.c — AUC on hand-computed cases (ties included) and against a
 * pairwise count; logloss on hand cases and extreme logits. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/metrics.h"
#include "base/rng.h"
#include "test.h"

static double auc_of(const float *s, const float *y, const float *w, int64_t n, int *rc)
{
    amtl_status st = {0};
    double a = -1.0;
    *rc = amtl_auc(s, y, w, n, &a, &st);
    return a;
}

#define CHECK_AUC(s, y, w, n, want)                                           \
    do {                                                                      \
        int auc_rc;                                                           \
        double auc_got = auc_of(s, y, w, n, &auc_rc);                         \
        CHECKF(auc_rc == 0, "rc %d", auc_rc);                                 \
        CHECK_CLOSE(auc_got, want, 1e-12);                                    \
    } while (0)

/* The definition: over every (positive, negative) pair, 1 when the positive
 * scores higher, ½ on a tie. */
static double pairwise_auc(const float *s, const float *y, const float *w, int n)
{
    double num = 0.0, pairs = 0.0;
    for (int i = 0; i < n; i++) {
        if ((w && w[i] == 0.0f) || y[i] != 1.0f)
            continue;
        for (int j = 0; j < n; j++) {
            if ((w && w[j] == 0.0f) || y[j] != 0.0f)
                continue;
            num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
            pairs += 1.0;
        }
    }
    return num / pairs;
}

static void test_auc_perfect_reversed_tied(void)
{
    float s[4] = {0.1f, 0.2f, 0.8f, 0.9f};
    float y[4] = {0, 0, 1, 1}, yr[4] = {1, 1, 0, 0};
    CHECK_AUC(s, y, NULL, 4, 1.0);
    CHECK_AUC(s, yr, NULL, 4, 0.0);
    float t[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    CHECK_AUC(t, y, NULL, 4, 0.5);
    /* ±0 are the same score */
    float z[2] = {-0.0f, 0.0f}, yz[2] = {1, 0};
    CHECK_AUC(z, yz, NULL, 2, 0.5);
}

/* Hand-computed, with ties between a positive and a negative.
 * (a) scores 0.1(−) 0.4(+) 0.4(−) 0.8(+): ranks 1, 2.5, 2.5, 4; positive ranks
 *     sum 6.5, minus P(P+1)/2 = 3 gives 3.5, over P·N = 4: 0.875.
 *     Pairwise: (0.4,0.1) 1, (0.4,0.4) ½, (0.8,0.1) 1, (0.8,0.4) 1 = 3.5/4.
 * (b) scores 0.5(+) 0.5(−) 0.5(−) 0.2(−) 0.9(+): ranks 0.2→1, the three
 *     0.5s → 3, 0.9→5; positive ranks 3 + 5 = 8, minus 3 = 5, over 6: 5/6.
 * (c) scikit-learn's documented example: y 0 0 1 1, scores 0.1 0.4 0.35
 *     0.8: 0.75. */
static void test_auc_hand_ties(void)
{
    float sa[4] = {0.1f, 0.4f, 0.4f, 0.8f}, ya[4] = {0, 1, 0, 1};
    CHECK_AUC(sa, ya, NULL, 4, 0.875);
    float sb[5] = {0.5f, 0.5f, 0.5f, 0.2f, 0.9f}, yb[5] = {1, 0, 0, 0, 1};
    CHECK_AUC(sb, yb, NULL, 5, 5.0 / 6.0);
    float sc[4] = {0.1f, 0.4f, 0.35f, 0.8f}, yc[4] = {0, 0, 1, 1};
    CHECK_AUC(sc, yc, NULL, 4, 0.75);
}

/* Rows with w == 0 do not count.  scores 0.1(+) 0.9(−) 0.5(+) 0.3(−):
 * all rows: pairs (0.1,0.9) 0, (0.1,0.3) 0, (0.5,0.9) 0, (0.5,0.3) 1 → 0.25;
 * with w = 0 0 1 1 only 0.5(+) and 0.3(−) remain → 1. */
static void test_auc_weight_mask(void)
{
    float s[4] = {0.1f, 0.9f, 0.5f, 0.3f}, y[4] = {1, 0, 1, 0};
    float w[4] = {0, 0, 1, 1}, ones[4] = {1, 1, 1, 1}, any[4] = {0.5f, 2, -1, 3};
    CHECK_AUC(s, y, NULL, 4, 0.25);
    CHECK_AUC(s, y, ones, 4, 0.25);
    CHECK_AUC(s, y, w, 4, 1.0);
    /* only w != 0 matters, not its value */
    CHECK_AUC(s, y, any, 4, 0.25);
}

static void test_auc_single_class(void)
{
    amtl_status st = {0};
    double a = 0.0;
    float s[3] = {0.1f, 0.5f, 0.9f}, y1[3] = {1, 1, 1}, y0[3] = {0, 0, 0};
    CHECK(amtl_auc(s, y1, NULL, 3, &a, &st) == 1);
    CHECK(isnan(a));
    a = 0.0;
    CHECK(amtl_auc(s, y0, NULL, 3, &a, &st) == 1);
    CHECK(isnan(a));
    /* both classes present, but the mask leaves one */
    float y[3] = {0, 1, 1}, w[3] = {0, 1, 1}, w0[3] = {0, 0, 0};
    a = 0.0;
    CHECK(amtl_auc(s, y, w, 3, &a, &st) == 1);
    CHECK(isnan(a));
    a = 0.0;
    CHECK(amtl_auc(s, y, w0, 3, &a, &st) == 1);
    CHECK(isnan(a));
    a = 0.0;
    CHECK(amtl_auc(s, y, NULL, 0, &a, &st) == 1);
    CHECK(isnan(a));
    a = 0.0;
    CHECK(amtl_auc(s, y, NULL, 1, &a, &st) == 1);
    CHECK(isnan(a));
}

/* 3000 rows, scores on a coarse grid (many ties), a random mask: the sorted
 * computation equals the pairwise definition; shuffling the rows and an
 * increasing transform of the scores change nothing (one exact in float, so
 * that ties stay ties and nothing new ties). */
static void test_auc_random_vs_pairwise(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 3);
    for (int trial = 0; trial < 4; trial++) {
        enum { N = 3000 };
        static float s[N], y[N], w[N], s2[N], y2[N], w2[N], s3[N];
        int grid = trial == 0 ? 3 : trial == 1 ? 20 : trial == 2 ? 200 : 1 << 24;
        for (int i = 0; i < N; i++) {
            y[i] = (float)amtl_rng_bernoulli(&r, 0.3);
            /* scores carry some signal so the AUC is not ~0.5 */
            s[i] = (float)amtl_rng_below(&r, (uint64_t)grid) / (float)grid + 0.1f * y[i];
            w[i] = amtl_rng_bernoulli(&r, 0.8) ? 1.0f : 0.0f;
        }
        double want = pairwise_auc(s, y, w, N);
        CHECK_AUC(s, y, w, N, want);
        CHECK_AUC(s, y, NULL, N, pairwise_auc(s, y, NULL, N));
        int32_t perm[N];
        amtl_rng_permutation(&r, perm, N);
        for (int i = 0; i < N; i++) {
            s2[i] = s[perm[i]], y2[i] = y[perm[i]], w2[i] = w[perm[i]];
            s3[i] = 0.25f * s[i];
        }
        CHECK_AUC(s2, y2, w2, N, want);
        CHECK_AUC(s3, y, w, N, want);
    }
}

/* A million rows whose labels are independent of the score by construction:
 * every tie group holds as many positives as negatives, so the AUC is 0.5
 * exactly; and a fully separated million gives exactly 1. */
static void test_auc_large_exact(void)
{
    int64_t n = 1 << 20;
    float *s = malloc((size_t)n * sizeof *s), *y = malloc((size_t)n * sizeof *y);
    CHECK(s && y);
    for (int64_t i = 0; i < n; i++) {
        s[i] = (float)(i % 1024) / 1024.0f;
        y[i] = (float)((i / 1024) % 2);
    }
    int rc;
    double a = auc_of(s, y, NULL, n, &rc);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (float)(i % 1024 >= 700);
    }
    double b = auc_of(s, y, NULL, n, &rc);
    free(s);
    free(y);
    CHECK(rc == 0);
    CHECK(a == 0.5);
    CHECK(b == 1.0);
}

/* Logloss from logits: log 2 at 0 whatever the label; σ(log 3) = 3/4 gives
 * log(4/3) for a positive and log 4 for a negative; far logits stay finite:
 * |x| when wrong, e^−|x| when right. */
static void test_logloss(void)
{
    float z[3] = {0, 0, 0}, yz[3] = {0, 1, 0.3f};
    CHECK_CLOSE(amtl_logloss_logits(z, yz, NULL, 3), log(2.0), 1e-12);
    float l3[2] = {(float)log(3.0), (float)log(3.0)}, y3[2] = {1, 0};
    CHECK_CLOSE(amtl_logloss_logits(l3, y3, NULL, 1), log(4.0 / 3.0), 1e-7);
    CHECK_CLOSE(amtl_logloss_logits(l3 + 1, y3 + 1, NULL, 1), log(4.0), 1e-7);
    float big[4] = {100, 100, -1e4f, 1e30f}, yb[4] = {1, 0, 1, 1};
    double l = amtl_logloss_logits(big, yb, NULL, 1);
    CHECK(isfinite(l) && l > 0.0 && fabs(l - exp(-100.0)) < 1e-50);
    CHECK_CLOSE(amtl_logloss_logits(big + 1, yb + 1, NULL, 1), 100.0, 1e-12);
    CHECK_CLOSE(amtl_logloss_logits(big + 2, yb + 2, NULL, 1), 1e4, 1e-12);
    CHECK(amtl_logloss_logits(big + 3, yb + 3, NULL, 1) == 0.0);
    CHECK(isfinite(amtl_logloss_logits(big, yb, NULL, 4)));
    /* the mask, and no counted row at all */
    float s[3] = {0, 50, 0}, y[3] = {1, 0, 0}, w[3] = {1, 0, 1}, w0[3] = {0, 0, 0};
    CHECK_CLOSE(amtl_logloss_logits(s, y, w, 3), log(2.0), 1e-12);
    CHECK(isnan(amtl_logloss_logits(s, y, w0, 3)));
    CHECK(isnan(amtl_logloss_logits(s, y, NULL, 0)));
}

/* The AUC's standard error (Hanley & McNeil): the closed form at two points,
 * its limits, and against the spread of AUCs over 2000 samples of
 * exponential scores (the distribution the approximation is built on:
 * positives Exp(1) scaled by a/(1-a) against negatives Exp(1), whose true AUC
 * is a). */
static void test_auc_se(void)
{
    CHECK_CLOSE(amtl_auc_se(0.9, 50, 50), 0.0321238632, 1e-9);
    CHECK_CLOSE(amtl_auc_se(0.75, 30, 170), 0.0539705024, 1e-9);
    CHECK(amtl_auc_se(0.9, 500, 500) < amtl_auc_se(0.9, 50, 50) / 3.0);
    CHECK(isnan(amtl_auc_se(NAN, 50, 50)));
    CHECK(isnan(amtl_auc_se(0.9, 0, 50)) && isnan(amtl_auc_se(0.9, 50, 0)));
    CHECK(amtl_auc_se(1.0, 10, 10) == 0.0);
    enum { NP = 60, NN = 140, REPS = 2000 };
    const double a = 0.8;
    float scores[NP + NN], labels[NP + NN];
    amtl_rng r;
    amtl_rng_seed(&r, 11);
    double sum = 0, sum2 = 0;
    amtl_status st = {0};
    for (int rep = 0; rep < REPS; rep++) {
        for (int i = 0; i < NP + NN; i++) {
            double e = -log(1.0 - amtl_rng_uniform_double(&r));
            labels[i] = i < NP;
            scores[i] = (float)(i < NP ? e * a / (1.0 - a) : e);
        }
        double auc;
        CHECK(amtl_auc(scores, labels, NULL, NP + NN, &auc, &st) == 0);
        sum += auc;
        sum2 += auc * auc;
    }
    double mean = sum / REPS, sd = sqrt((sum2 - sum * sum / REPS) / (REPS - 1));
    double se = amtl_auc_se(mean, NP, NN);
    CHECKF(fabs(mean - a) < 0.005, "mean AUC %.4f, true %.2f", mean, a);
    CHECKF(fabs(se - sd) < 0.1 * sd, "standard error %.5f against a spread of %.5f", se, sd);
}

/* DeLong's paired variance of AUC(a) − AUC(b) from its definition: each
 * positive's and each negative's placement by pairwise counts, then the
 * sample covariances of the placements, O(P·N). */
static double delong_var(const float *a, const float *b, const float *y, const float *w, int n)
{
    double va[64], vb[64], ta = 0, tb = 0;
    int P = 0, N = 0;
    for (int i = 0; i < n; i++) {
        if (w && w[i] == 0.0f)
            continue;
        int pos = y[i] > 0.5f;
        P += pos;
        N += !pos;
    }
    double sp = 0, sn = 0; /* Σ (da − db − mean)² per class */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            if (w && w[i] == 0.0f)
                continue;
            int pos = y[i] > 0.5f;
            double ca = 0, cb = 0;
            for (int j = 0; j < n; j++) {
                if ((w && w[j] == 0.0f) || (y[j] > 0.5f) == pos)
                    continue;
                /* a positive's share of negatives below it; a negative's of positives above */
                float hi_a = pos ? a[i] : a[j], lo_a = pos ? a[j] : a[i];
                float hi_b = pos ? b[i] : b[j], lo_b = pos ? b[j] : b[i];
                ca += hi_a > lo_a ? 1.0 : hi_a == lo_a ? 0.5 : 0.0;
                cb += hi_b > lo_b ? 1.0 : hi_b == lo_b ? 0.5 : 0.0;
            }
            va[i] = ca / (pos ? N : P);
            vb[i] = cb / (pos ? N : P);
            if (pass == 0 && pos) {
                ta += va[i] / P;
                tb += vb[i] / P;
            } else if (pass == 1) {
                double d = va[i] - vb[i] - (ta - tb);
                *(pos ? &sp : &sn) += d * d;
            }
        }
    }
    return sp / ((double)P * (P - 1)) + sn / ((double)N * (N - 1));
}

/* One task: the difference is the two AUCs' and its variance DeLong's,
 * on random scores with ties and a mask; identical scorings differ by 0
 * with standard error 0; one class or no task has no comparison. */
static void test_auc_paired_delong(void)
{
    enum { N = 64 };
    float a[N], b[N], y[N], w[N];
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    amtl_status st = {0};
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < N; i++) {
            y[i] = amtl_rng_uniform_double(&r) < 0.3;
            a[i] = (float)floor(4 * amtl_rng_uniform_double(&r) + y[i]); /* ties */
            b[i] = (float)amtl_rng_normal(&r, 0.8 * y[i] + 0.5 * a[i], 1.0);
            w[i] = rep % 2 ? amtl_rng_uniform_double(&r) < 0.8 : 1.0f;
        }
        y[0] = 1;
        y[1] = 0;
        w[0] = w[1] = 1;
        const float *pa[1] = {a}, *pb[1] = {b}, *py[1] = {y}, *pw[1] = {w};
        amtl_auc_pair p;
        CHECK(amtl_auc_paired(pa, pb, py, pw, 1, N, &p, &st) == 0);
        int rc;
        double auc_a = auc_of(a, y, w, N, &rc), auc_b = auc_of(b, y, w, N, &rc);
        CHECK(p.tasks == 1);
        CHECK_CLOSE(p.auc_a, auc_a, 1e-12);
        CHECK_CLOSE(p.auc_b, auc_b, 1e-12);
        CHECK_CLOSE(p.diff, auc_a - auc_b, 1e-12);
        double v = delong_var(a, b, y, w, N);
        CHECKF(fabs(p.se * p.se - v) < 1e-12 + 1e-9 * v, "variance %.12g, DeLong %.12g",
               p.se * p.se, v);
        CHECK(p.se > 0);
        CHECK(amtl_auc_paired(pa, pa, py, pw, 1, N, &p, &st) == 0);
        CHECK(p.diff == 0.0 && p.se == 0.0);
    }
    float one[4] = {1, 1, 1, 1}, s4[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    const float *p1[1] = {s4}, *py1[1] = {one};
    amtl_auc_pair p;
    CHECK(amtl_auc_paired(p1, p1, py1, NULL, 1, 4, &p, &st) == 1);
    CHECK(isnan(p.diff) && isnan(p.se));
    CHECK(amtl_auc_paired(p1, p1, py1, NULL, 0, 4, &p, &st) == 1);
}

/* Two tasks on the same rows, two scorings that share most of their signal:
 * over 1500 samples the spread of the mean-AUC difference matches the mean
 * standard error the comparison reports (within 10%), and is well below the
 * unpaired error (the two AUCs' Hanley–McNeil errors added in quadrature). */
static void test_auc_paired_spread(void)
{
    enum { N = 400, REPS = 1500 };
    static float a[2][N], b[2][N], y[2][N];
    amtl_rng r;
    amtl_rng_seed(&r, 17);
    amtl_status st = {0};
    double sum = 0, sum2 = 0, se_sum = 0, unpaired = 0;
    for (int rep = 0; rep < REPS; rep++) {
        for (int i = 0; i < N; i++) {
            double z = amtl_rng_normal(&r, 0, 1), u = amtl_rng_normal(&r, 0, 1);
            double za = z + amtl_rng_normal(&r, 0, 0.4), zb = z + amtl_rng_normal(&r, 0, 0.6);
            y[0][i] = amtl_rng_uniform_double(&r) < 1.0 / (1.0 + exp(-2 * z));
            y[1][i] = amtl_rng_uniform_double(&r) < 1.0 / (1.0 + exp(1.5 - z - u));
            a[0][i] = (float)za;
            b[0][i] = (float)zb;
            a[1][i] = (float)(za + 0.5 * u);
            b[1][i] = (float)(zb + 0.8 * u);
        }
        const float *pa[2] = {a[0], a[1]}, *pb[2] = {b[0], b[1]}, *py[2] = {y[0], y[1]};
        amtl_auc_pair p;
        CHECK(amtl_auc_paired(pa, pb, py, NULL, 2, N, &p, &st) == 0);
        sum += p.diff;
        sum2 += p.diff * p.diff;
        se_sum += p.se;
        double u2 = 0;
        for (int t = 0; t < 2; t++) {
            int64_t np = 0;
            for (int i = 0; i < N; i++)
                np += y[t][i] > 0.5f;
            double sa = amtl_auc_se(p.auc_a, np, N - np), sb = amtl_auc_se(p.auc_b, np, N - np);
            u2 += sa * sa + sb * sb;
        }
        unpaired += sqrt(u2) / 2;
    }
    double sd = sqrt((sum2 - sum * sum / REPS) / (REPS - 1)), se = se_sum / REPS;
    CHECKF(fabs(se - sd) < 0.1 * sd, "paired standard error %.5f against a spread of %.5f",
           se, sd);
    CHECKF(unpaired / REPS > 1.5 * sd, "unpaired error %.5f, spread %.5f", unpaired / REPS, sd);
}

int main(void)
{
    RUN(test_auc_perfect_reversed_tied);
    RUN(test_auc_hand_ties);
    RUN(test_auc_weight_mask);
    RUN(test_auc_single_class);
    RUN(test_auc_random_vs_pairwise);
    RUN(test_auc_large_exact);
    RUN(test_logloss);
    RUN(test_auc_se);
    RUN(test_auc_paired_delong);
    RUN(test_auc_paired_spread);
    TEST_MAIN_END();
}
