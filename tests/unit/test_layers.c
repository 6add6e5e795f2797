/* test_layers.c — the generic layers of layers.h (GEMM, initialisation,
 * Linear, BatchNorm, ReLU, dropout, sigmoid) against double-precision
 * references and central finite differences; the supernet's own layers and
 * the loss are test_layers_supernet.c.
 *
 * Each gradient test holds its inputs and parameters as double "masters" and
 * a scalar loss L = Σ out ⊙ R (R random, fixed) that it can evaluate two ways:
 * with a small double-precision reference forward written here, or with the
 * library's float forward.  Then, on several random shapes:
 *   1. the library's float forward matches the double reference (1e-5);
 *   2. the library's float backward matches central differences of the
 *      double reference (h 1e-6, tolerance 1e-4): the differences are exact
 *      to ~1e-9, so the tolerance only absorbs float32 rounding in the
 *      backward itself;
 *   3. the library's float backward matches central differences of the
 *      library's own float forward, at the coarser h 1e-3 and tolerance 1e-2:
 *      float32 outputs carry ~6e-8 relative rounding, which divided by 2h
 *      becomes ~3e-5 per output that moves, plus O(h²) truncation; 1e-2 keeps
 *      clear of that noise and still catches any wrong term (those are O(1)).
 * Outputs and written gradients are poisoned with NaN before each call, and
 * every comparison is written so that NaN fails.  Accumulating gradients
 * start from random values and are checked as increments.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "ctr_rng.h"
#include "base/rng.h"
#include "test.h"
#include "testutil.h"

#define TOL_FWD 1e-5
#define N_SHAPES 6

static double dotRf(const float *o, const double *R, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)o[i] * R[i];
    return s;
}

/* ---- the finite-difference driver --------------------------------------------- */

/* ================================================================================
 * GEMM
 * ================================================================================ */

static void test_gemm_transposes(void)
{
    amtl_rng_seed(&rng_, 11);
    for (int trial = 0; trial < 8; trial++) {
        for (int tA = 0; tA < 2; tA++) {
            for (int tB = 0; tB < 2; tB++) {
                int M = irand(1, 23), N = irand(1, 23), K = irand(1, 23);
                int lda = (tA ? M : K) + irand(1, 5);
                int ldb = (tB ? K : N) + irand(1, 5);
                int ldc = N + irand(1, 5);
                size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb;
                size_t nc = (size_t)M * ldc;
                float *A = fv(na), *Bm = fv(nb), *C = fv(nc);
                fillf(A, na, -1, 1);
                fillf(Bm, nb, -1, 1);
                fillf(C, nc, -1, 1);
                float *C0 = fcopy(C, nc);
                float alpha = 0.75f, beta = -0.5f;
                amtl_gemm(tA, tB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
                for (int i = 0; i < M; i++) {
                    for (int j = 0; j < ldc; j++) {
                        size_t ic = (size_t)i * ldc + j;
                        if (j >= N) {
                            /* padding between rows stays untouched */
                            CHECKF(C[ic] == C0[ic], "tA %d tB %d pad (%d,%d)", tA, tB, i, j);
                            continue;
                        }
                        double s = 0.0;
                        for (int k = 0; k < K; k++) {
                            double a = tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                            double b = tB ? Bm[(size_t)j * ldb + k] : Bm[(size_t)k * ldb + j];
                            s += a * b;
                        }
                        double want = alpha * s + beta * (double)C0[ic];
                        CHECKF(fabs(C[ic] - want) <= 1e-5 * fmax(1.0, fabs(want)),
                               "tA %d tB %d M %d N %d K %d (%d,%d): %g vs %g", tA, tB, M,
                               N, K, i, j, (double)C[ic], want);
                    }
                }
            }
        }
    }
}

static void test_gemm_beta_zero_and_empty(void)
{
    amtl_rng_seed(&rng_, 12);
    int M = 5, N = 7, K = 3;
    float *A = fv((size_t)M * K), *Bm = fv((size_t)K * N), *C = fv((size_t)M * N);
    fillf(A, (size_t)M * K, -1, 1);
    fillf(Bm, (size_t)K * N, -1, 1);
    /* beta 0: C is not read, so NaN in C must not survive */
    test_poison(C, (size_t)M * N);
    amtl_gemm(0, 0, M, N, K, 1.0f, A, K, Bm, N, 0.0f, C, N);
    CHECK(all_finite(C, (size_t)M * N));
    /* K = 0: C = beta C; with beta 0, C = 0 even over NaN */
    float *C2 = fv((size_t)M * N);
    fillf(C2, (size_t)M * N, -1, 1);
    float *C20 = fcopy(C2, (size_t)M * N);
    amtl_gemm(0, 0, M, N, 0, 1.0f, A, 1, Bm, N, 2.0f, C2, N);
    for (int i = 0; i < M * N; i++)
        CHECK(C2[i] == 2.0f * C20[i]);
    test_poison(C2, (size_t)M * N);
    amtl_gemm(0, 0, M, N, 0, 1.0f, A, 1, Bm, N, 0.0f, C2, N);
    for (int i = 0; i < M * N; i++)
        CHECK(C2[i] == 0.0f);
    /* M = 0 or N = 0: nothing happens */
    amtl_gemm(0, 0, 0, N, K, 1.0f, A, K, Bm, N, 0.0f, NULL, N);
    amtl_gemm(0, 0, M, 0, K, 1.0f, A, K, Bm, 1, 0.0f, NULL, 1);
}

static void test_blas_threads(void)
{
    int n1 = amtl_blas_set_threads(1);
    CHECK(n1 == 1);
    int nall = amtl_blas_set_threads(0);
    CHECK(nall >= 1);
}

/* ================================================================================
 * initialisation
 * ================================================================================ */

static void test_linear_init(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 21);
    int I = 50, O = 400;
    size_t n = (size_t)I * O;
    float *W = fv(n), *b = fv((size_t)O);
    amtl_linear_init(W, b, I, O, &r);
    double bound = 1.0 / sqrt((double)I);
    double mn = 1e9, mx = -1e9, sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < n; i++) {
        CHECK(fabs(W[i]) <= bound);
        mn = fmin(mn, W[i]);
        mx = fmax(mx, W[i]);
        sum += W[i];
        sq += (double)W[i] * W[i];
    }
    /* 20000 uniform draws: the extremes come within 0.1% of the bound, the
     * mean's standard error is bound/245, the variance is bound²/3 ± 1%. */
    CHECK(mx > 0.99 * bound && mn < -0.99 * bound);
    CHECK(fabs(sum / n) < 0.02 * bound);
    CHECK_CLOSE(sq / n / (bound * bound), 1.0 / 3.0, 0.02);
    double bmn = 1e9, bmx = -1e9;
    for (int o = 0; o < O; o++) {
        CHECK(fabs(b[o]) <= bound);
        bmn = fmin(bmn, b[o]);
        bmx = fmax(bmx, b[o]);
    }
    CHECK(bmx > 0.9 * bound && bmn < -0.9 * bound);

    /* the same seed gives the same values; b NULL is allowed */
    float *W2 = fv(n);
    amtl_rng_seed(&r, 21);
    amtl_linear_init(W2, NULL, I, O, &r);
    CHECK(memcmp(W, W2, n * sizeof *W) == 0);
    /* a fan-in of 1 gives the bound 1 */
    float w1[64];
    amtl_linear_init(w1, NULL, 1, 64, &r);
    float m1 = 0;
    for (int i = 0; i < 64; i++) {
        CHECK(fabsf(w1[i]) <= 1.0f);
        m1 = fmaxf(m1, fabsf(w1[i]));
    }
    CHECK(m1 > 0.8f);
}

static void test_embedding_init(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 22);
    int64_t V = 12500;
    int E = 16;
    size_t n = (size_t)V * E;
    float *t = fv(n);
    amtl_embedding_init(t, V, E, &r);
    double sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < n; i++) {
        CHECK(isfinite(t[i]));
        sum += t[i];
        sq += (double)t[i] * t[i];
    }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    /* 200000 normals: standard errors 0.0022 (mean) and 0.0016 (std) */
    CHECKF(fabs(mean) < 0.01, "mean %g", mean);
    CHECKF(fabs(sd - 1.0) < 0.01, "std %g", sd);
    float *t2 = fv(n);
    amtl_rng_seed(&r, 22);
    amtl_embedding_init(t2, V, E, &r);
    CHECK(memcmp(t, t2, n * sizeof *t) == 0);
}

/* ================================================================================
 * Linear
 * ================================================================================ */

typedef struct {
    int B, I, O, bias;
    double *x, *W, *b, *R, *outd;
    float *xf, *Wf, *bf, *out;
} lin_ctx;

static void ref_linear(double *out, const double *x, const double *W, const double *b,
                       int B, int I, int O)
{
    for (int r = 0; r < B; r++)
        for (int o = 0; o < O; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < I; i++)
                s += x[(size_t)r * I + i] * W[(size_t)o * I + i];
            out[(size_t)r * O + o] = s;
        }
}

static void lin_sync(lin_ctx *c)
{
    tof(c->xf, c->x, (size_t)c->B * c->I);
    tof(c->Wf, c->W, (size_t)c->O * c->I);
    tof(c->bf, c->b, (size_t)c->O);
}

static double lin_loss(void *p, int lib)
{
    lin_ctx *c = p;
    size_t no = (size_t)c->B * c->O;
    if (lib) {
        lin_sync(c);
        test_poison(c->out, no);
        amtl_linear_forward(c->out, c->xf, c->Wf, c->bias ? c->bf : NULL, c->B, c->I, c->O);
        return dotRf(c->out, c->R, no);
    }
    ref_linear(c->outd, c->x, c->W, c->bias ? c->b : NULL, c->B, c->I, c->O);
    return dotRd(c->outd, c->R, no);
}

static void lin_setup(lin_ctx *c, int B, int I, int O, int bias)
{
    c->B = B, c->I = I, c->O = O, c->bias = bias;
    c->x = dv((size_t)B * I), c->W = dv((size_t)O * I), c->b = dv((size_t)O);
    c->R = dv((size_t)B * O), c->outd = dv((size_t)B * O);
    c->xf = fv((size_t)B * I), c->Wf = fv((size_t)O * I), c->bf = fv((size_t)O);
    c->out = fv((size_t)B * O);
    fill(c->x, (size_t)B * I, -1, 1);
    fill(c->W, (size_t)O * I, -1, 1);
    fill(c->b, (size_t)O, -1, 1);
    fill(c->R, (size_t)B * O, -1, 1);
}

static void test_linear_grad(void)
{
    amtl_rng_seed(&rng_, 31);
    int fixed[][3] = {{1, 1, 1}, {3, 2, 300}, {2, 9, 1}};
    for (int bias = 1; bias >= 0; bias--) {
        for (int t = 0; t < N_SHAPES + 3; t++) {
            int B, I, O;
            if (t < N_SHAPES)
                B = irand(2, 7), I = irand(1, 9), O = irand(1, 9);
            else
                B = fixed[t - N_SHAPES][0], I = fixed[t - N_SHAPES][1],
                O = fixed[t - N_SHAPES][2];
            lin_ctx c;
            lin_setup(&c, B, I, O, bias);
            lin_loss(&c, 1);
            lin_loss(&c, 0);
            CHECK(close_fd(c.out, c.outd, (size_t)B * O, TOL_FWD, "linear out"));

            float *dout = fv((size_t)B * O), *dinp = fv((size_t)B * I);
            float *dW = fv((size_t)O * I), *db = fv((size_t)O);
            tof(dout, c.R, (size_t)B * O);
            test_poison(dinp, (size_t)B * I);
            fillf(dW, (size_t)O * I, -1, 1);
            fillf(db, (size_t)O, -1, 1);
            float *dW0 = fcopy(dW, (size_t)O * I), *db0 = fcopy(db, (size_t)O);
            lin_sync(&c);
            amtl_linear_backward(dinp, dW, bias ? db : NULL, dout, c.xf, c.Wf, B, I, O);
            if (!bias)
                CHECK(memcmp(db, db0, (size_t)O * sizeof *db) == 0);
            fd_var vs[3] = {
                {"inp", c.x, (size_t)B * I, dcopyf(dinp, (size_t)B * I)},
                {"W", c.W, (size_t)O * I, ddiff(dW, dW0, (size_t)O * I)},
                {"b", c.b, (size_t)O, ddiff(db, db0, (size_t)O)},
            };
            CHECKF(fd_check("linear", lin_loss, &c, vs, bias ? 3 : 2) == 0,
                   "B %d I %d O %d bias %d", B, I, O, bias);

            /* dinp NULL: the parameter gradients are the same */
            float *dW2 = fcopy(dW0, (size_t)O * I), *db2 = fcopy(db0, (size_t)O);
            amtl_linear_backward(NULL, dW2, bias ? db2 : NULL, dout, c.xf, c.Wf, B, I, O);
            for (size_t i = 0; i < (size_t)O * I; i++)
                CHECK_CLOSE(dW2[i], dW[i], 1e-6);
            for (int o = 0; o < O; o++)
                CHECK_CLOSE(db2[o], db[o], 1e-6);
        }
    }
}

/* A shape big enough for OpenBLAS's threaded paths, against plain loops. */
static void test_linear_large(void)
{
    amtl_rng_seed(&rng_, 32);
    int B = 67, I = 70, O = 300;
    lin_ctx c;
    lin_setup(&c, B, I, O, 1);
    lin_loss(&c, 1);
    lin_loss(&c, 0);
    CHECK(close_fd(c.out, c.outd, (size_t)B * O, TOL_FWD, "linear out"));
    float *dout = fv((size_t)B * O), *dinp = fv((size_t)B * I);
    float *dW = fv((size_t)O * I), *db = fv((size_t)O);
    tof(dout, c.R, (size_t)B * O);
    test_poison(dinp, (size_t)B * I);
    fillf(dW, (size_t)O * I, -1, 1);
    fillf(db, (size_t)O, -1, 1);
    double *gx = dv((size_t)B * I), *gW = dv((size_t)O * I), *gb = dv((size_t)O);
    for (int r = 0; r < B; r++)
        for (int o = 0; o < O; o++) {
            double d = c.R[(size_t)r * O + o];
            gb[o] += d;
            for (int i = 0; i < I; i++) {
                gx[(size_t)r * I + i] += d * c.W[(size_t)o * I + i];
                gW[(size_t)o * I + i] += d * c.x[(size_t)r * I + i];
            }
        }
    for (size_t i = 0; i < (size_t)O * I; i++)
        gW[i] += dW[i];
    for (int o = 0; o < O; o++)
        gb[o] += db[o];
    amtl_linear_backward(dinp, dW, db, dout, c.xf, c.Wf, B, I, O);
    CHECK(close_fd(dinp, gx, (size_t)B * I, 1e-4, "dinp"));
    CHECK(close_fd(dW, gW, (size_t)O * I, 1e-4, "dW"));
    CHECK(close_fd(db, gb, (size_t)O, 1e-4, "db"));
}

/* ================================================================================
 * BatchNorm1d
 * ================================================================================ */

#define BN_EPS 1e-5f
#define BN_MOM 0.1f

typedef struct {
    int B, C;
    double *x, *gamma, *beta, *R, *outd, *meand, *vard, *rm0, *rv0;
    float *xf, *gf, *bf, *out, *mean, *rstd, *rm, *rv;
} bn_ctx;

/* var: the biased batch variance */
static void ref_bn_train(double *out, double *mean, double *var, const double *x,
                         const double *gamma, const double *beta, int B, int C)
{
    for (int c = 0; c < C; c++) {
        double m = 0.0, v = 0.0;
        for (int r = 0; r < B; r++)
            m += x[(size_t)r * C + c];
        m /= B;
        for (int r = 0; r < B; r++) {
            double d = x[(size_t)r * C + c] - m;
            v += d * d;
        }
        v /= B;
        mean[c] = m;
        var[c] = v;
        for (int r = 0; r < B; r++)
            out[(size_t)r * C + c] =
                (x[(size_t)r * C + c] - m) / sqrt(v + (double)BN_EPS) * gamma[c] + beta[c];
    }
}

static void bn_sync(bn_ctx *c)
{
    tof(c->xf, c->x, (size_t)c->B * c->C);
    tof(c->gf, c->gamma, (size_t)c->C);
    tof(c->bf, c->beta, (size_t)c->C);
    tof(c->rm, c->rm0, (size_t)c->C);
    tof(c->rv, c->rv0, (size_t)c->C);
}

static double bn_loss(void *p, int lib)
{
    bn_ctx *c = p;
    size_t n = (size_t)c->B * c->C;
    if (lib) {
        bn_sync(c);
        test_poison(c->out, n);
        test_poison(c->mean, (size_t)c->C);
        test_poison(c->rstd, (size_t)c->C);
        amtl_batchnorm_forward_train(c->out, c->mean, c->rstd, c->rm, c->rv, c->xf, c->gf,
                                     c->bf, c->B, c->C, BN_MOM, BN_EPS);
        return dotRf(c->out, c->R, n);
    }
    ref_bn_train(c->outd, c->meand, c->vard, c->x, c->gamma, c->beta, c->B, c->C);
    return dotRd(c->outd, c->R, n);
}

static void bn_setup(bn_ctx *c, int B, int C)
{
    size_t n = (size_t)B * C;
    c->B = B, c->C = C;
    c->x = dv(n), c->R = dv(n), c->outd = dv(n);
    c->gamma = dv((size_t)C), c->beta = dv((size_t)C), c->meand = dv((size_t)C);
    c->vard = dv((size_t)C), c->rm0 = dv((size_t)C), c->rv0 = dv((size_t)C);
    c->xf = fv(n), c->out = fv(n);
    c->gf = fv((size_t)C), c->bf = fv((size_t)C), c->mean = fv((size_t)C);
    c->rstd = fv((size_t)C), c->rm = fv((size_t)C), c->rv = fv((size_t)C);
    fill(c->x, n, -1, 1);
    fill(c->R, n, -1, 1);
    fill(c->gamma, (size_t)C, 0.5, 1.5);
    fill(c->beta, (size_t)C, -0.5, 0.5);
    fill(c->rm0, (size_t)C, -0.5, 0.5);
    fill(c->rv0, (size_t)C, 0.5, 1.5);
}

static void test_batchnorm_grad(void)
{
    amtl_rng_seed(&rng_, 41);
    int fixed[][2] = {{2, 1}, {2, 5}, {5, 300}};
    for (int t = 0; t < N_SHAPES + 3; t++) {
        int B, C;
        if (t < N_SHAPES)
            B = irand(2, 7), C = irand(1, 9);
        else
            B = fixed[t - N_SHAPES][0], C = fixed[t - N_SHAPES][1];
        size_t n = (size_t)B * C;
        bn_ctx c;
        bn_setup(&c, B, C);
        bn_loss(&c, 1);
        bn_loss(&c, 0);
        CHECK(close_fd(c.out, c.outd, n, TOL_FWD, "bn out"));
        CHECK(close_fd(c.mean, c.meand, (size_t)C, TOL_FWD, "bn mean"));
        double *want = dv((size_t)C);
        for (int k = 0; k < C; k++)
            want[k] = 1.0 / sqrt(c.vard[k] + (double)BN_EPS);
        CHECK(close_fd(c.rstd, want, (size_t)C, TOL_FWD, "bn rstd"));
        /* running statistics: momentum 0.1, the variance unbiased */
        for (int k = 0; k < C; k++)
            want[k] = 0.9 * c.rm0[k] + 0.1 * c.meand[k];
        CHECK(close_fd(c.rm, want, (size_t)C, TOL_FWD, "running_mean"));
        for (int k = 0; k < C; k++)
            want[k] = 0.9 * c.rv0[k] + 0.1 * c.vard[k] * B / (B - 1.0);
        CHECK(close_fd(c.rv, want, (size_t)C, TOL_FWD, "running_var"));

        float *dout = fv(n), *dinp = fv(n), *dg = fv((size_t)C), *db = fv((size_t)C);
        tof(dout, c.R, n);
        test_poison(dinp, n);
        fillf(dg, (size_t)C, -1, 1);
        fillf(db, (size_t)C, -1, 1);
        float *dg0 = fcopy(dg, (size_t)C), *db0 = fcopy(db, (size_t)C);
        amtl_batchnorm_backward(dinp, dg, db, dout, c.xf, c.mean, c.rstd, c.gf, B, C);
        fd_var vs[3] = {
            {"inp", c.x, n, dcopyf(dinp, n)},
            {"gamma", c.gamma, (size_t)C, ddiff(dg, dg0, (size_t)C)},
            {"beta", c.beta, (size_t)C, ddiff(db, db0, (size_t)C)},
        };
        CHECKF(fd_check("batchnorm", bn_loss, &c, vs, 3) == 0, "B %d C %d", B, C);
    }
}

/* Hand-computed: B 2, one channel, x = {1, 3}, gamma 2, beta 0.5.
 * mean 2, biased variance 1, unbiased 2; out = ±2/sqrt(1 + 1e-5) + 0.5;
 * running_mean 0 -> 0.1·2 = 0.2, running_var 1 -> 0.9 + 0.1·2 = 1.1.
 * Evaluation then uses 0.2 and 1.1: out = (x − 0.2)/sqrt(1.1 + 1e-5)·2 + 0.5. */
static void test_batchnorm_values(void)
{
    float x[2] = {1, 3}, g = 2, b = 0.5f, out[2], mean, rstd, rm = 0, rv = 1;
    test_poison(out, 2);
    amtl_batchnorm_forward_train(out, &mean, &rstd, &rm, &rv, x, &g, &b, 2, 1, BN_MOM,
                                 BN_EPS);
    double s = 1.0 / sqrt(1.0 + 1e-5);
    CHECK_CLOSE(out[0], -2 * s + 0.5, 1e-6);
    CHECK_CLOSE(out[1], 2 * s + 0.5, 1e-6);
    CHECK_CLOSE(mean, 2.0, 1e-7);
    CHECK_CLOSE(rstd, s, 1e-7);
    CHECK_CLOSE(rm, 0.2, 1e-7);
    CHECK_CLOSE(rv, 1.1, 1e-7);

    float ev[2];
    test_poison(ev, 2);
    amtl_batchnorm_forward_eval(ev, x, &g, &b, &rm, &rv, 2, 1, BN_EPS);
    double se = 1.0 / sqrt(1.1 + 1e-5);
    CHECK_CLOSE(ev[0], (1 - 0.2) * se * 2 + 0.5, 1e-6);
    CHECK_CLOSE(ev[1], (3 - 0.2) * se * 2 + 0.5, 1e-6);
    /* training and evaluation differ on the same input */
    CHECK(fabsf(ev[0] - out[0]) > 1.0f);
}

static void test_batchnorm_eval(void)
{
    amtl_rng_seed(&rng_, 42);
    int shapes[][2] = {{1, 3}, {4, 7}, {3, 300}};
    for (int t = 0; t < 3; t++) {
        int B = shapes[t][0], C = shapes[t][1];
        size_t n = (size_t)B * C;
        bn_ctx c;
        bn_setup(&c, B, C);
        bn_sync(&c);
        test_poison(c.out, n);
        amtl_batchnorm_forward_eval(c.out, c.xf, c.gf, c.bf, c.rm, c.rv, B, C, BN_EPS);
        for (int r = 0; r < B; r++)
            for (int k = 0; k < C; k++) {
                size_t i = (size_t)r * C + k;
                c.outd[i] = (c.x[i] - c.rm0[k]) / sqrt(c.rv0[k] + (double)BN_EPS) *
                                c.gamma[k] + c.beta[k];
            }
        CHECK(close_fd(c.out, c.outd, n, TOL_FWD, "bn eval out"));
        /* the running statistics are only read */
        double *rm = dcopyf(c.rm, (size_t)C);
        for (int k = 0; k < C; k++)
            CHECK(rm[k] == (double)(float)c.rm0[k]);
    }
}

/* ================================================================================
 * ReLU
 * ================================================================================ */

typedef struct {
    size_t n;
    double *x, *R;
    float *xf, *out;
} ew_ctx;

static double relu_loss(void *p, int lib)
{
    ew_ctx *c = p;
    if (lib) {
        tof(c->xf, c->x, c->n);
        test_poison(c->out, c->n);
        amtl_relu_forward(c->out, c->xf, c->n);
        return dotRf(c->out, c->R, c->n);
    }
    double s = 0.0;
    for (size_t i = 0; i < c->n; i++)
        s += (c->x[i] > 0 ? c->x[i] : 0.0) * c->R[i];
    return s;
}

static void test_relu_grad(void)
{
    amtl_rng_seed(&rng_, 51);
    for (int t = 0; t < N_SHAPES; t++) {
        ew_ctx c;
        c.n = (size_t)irand(1, 60);
        c.x = dv(c.n), c.R = dv(c.n), c.xf = fv(c.n), c.out = fv(c.n);
        /* |x| >= 0.05 > H_LIB: the differences never straddle the kink */
        fill_away(c.x, c.n, 0.05);
        fill(c.R, c.n, -1, 1);
        relu_loss(&c, 1);
        float *dout = fv(c.n), *dinp = fv(c.n);
        tof(dout, c.R, c.n);
        test_poison(dinp, c.n);
        amtl_relu_backward(dinp, dout, c.out, c.n);
        fd_var vs[1] = {{"inp", c.x, c.n, dcopyf(dinp, c.n)}};
        CHECK(fd_check("relu", relu_loss, &c, vs, 1) == 0);
        /* in place: forward into its input, backward into dout */
        float *io = fcopy(c.xf, c.n);
        amtl_relu_forward(io, io, c.n);
        CHECK(memcmp(io, c.out, c.n * sizeof *io) == 0);
        amtl_relu_backward(dout, dout, c.out, c.n);
        CHECK(memcmp(dout, dinp, c.n * sizeof *io) == 0);
    }
}

/* ================================================================================
 * Dropout
 * ================================================================================ */

typedef struct {
    size_t n;
    float p;
    uint64_t seed;
    double *x, *R;
    float *xf, *out;
    uint8_t *mask;
} drop_ctx;

/* The mask is a function of the seed, so every evaluation reseeds and the
 * loss is a fixed linear function of x; the reference uses the saved mask. */
static double drop_loss(void *p, int lib)
{
    drop_ctx *c = p;
    if (lib) {
        tof(c->xf, c->x, c->n);
        test_poison(c->out, c->n);
        amtl_dropout_forward(c->out, c->mask, c->xf, c->n, c->p, c->seed, 3);
        return dotRf(c->out, c->R, c->n);
    }
    double s = 0.0;
    for (size_t i = 0; i < c->n; i++)
        s += c->x[i] * c->mask[i] / (1.0 - c->p) * c->R[i];
    return s;
}

static void test_dropout_grad(void)
{
    amtl_rng_seed(&rng_, 61);
    float ps[] = {0.0f, 0.2f, 0.5f, 0.7f};
    for (int t = 0; t < 4; t++) {
        drop_ctx c;
        c.n = (size_t)irand(20, 80);
        c.p = ps[t];
        c.seed = 1000 + (uint64_t)t;
        c.x = dv(c.n), c.R = dv(c.n), c.xf = fv(c.n), c.out = fv(c.n);
        c.mask = talloc(c.n);
        fill(c.x, c.n, -1, 1);
        fill(c.R, c.n, -1, 1);
        drop_loss(&c, 1);
        double *want = dv(c.n);
        for (size_t i = 0; i < c.n; i++)
            want[i] = c.x[i] * c.mask[i] / (1.0 - c.p);
        CHECK(close_fd(c.out, want, c.n, TOL_FWD, "dropout out"));
        float *dout = fv(c.n), *dinp = fv(c.n);
        tof(dout, c.R, c.n);
        test_poison(dinp, c.n);
        amtl_dropout_backward(dinp, dout, c.mask, c.n, c.p, 0);
        fd_var vs[1] = {{"inp", c.x, c.n, dcopyf(dinp, c.n)}};
        CHECKF(fd_check("dropout", drop_loss, &c, vs, 1) == 0, "p %g", (double)c.p);
        /* added into a gradient: dinp + the same */
        float *acc = fv(c.n);
        memcpy(acc, dinp, c.n * sizeof *acc);
        amtl_dropout_backward(acc, dout, c.mask, c.n, c.p, 1);
        for (size_t i = 0; i < c.n; i++)
            CHECK(acc[i] == dinp[i] + dinp[i]);
        /* in place, as the model calls it */
        amtl_dropout_backward(dout, dout, c.mask, c.n, c.p, 0);
        CHECK(memcmp(dout, dinp, c.n * sizeof *dout) == 0);
    }
}

static void test_dropout_stats(void)
{
    amtl_rng_seed(&rng_, 62);
    size_t n = 200000;
    float *x = fv(n), *out = fv(n), *out2 = fv(n);
    uint8_t *mask = talloc(n), *mask2 = talloc(n);
    fillf(x, n, -1, 1);
    float ps[] = {0.1f, 0.2f, 0.5f, 0.9f};
    for (int t = 0; t < 4; t++) {
        float p = ps[t];
        test_poison(out, n);
        memset(mask, 0xAA, n);
        amtl_dropout_forward(out, mask, x, n, p, 7, 2);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK(mask[i] == 0 || mask[i] == 1);
            /* the mask is the counter generator's, element by element */
            CHECK(mask[i] == (amtl_ctr_uniform(7, 2, i) >= p));
            if (mask[i]) {
                kept++;
                CHECK(out[i] == x[i] / (1.0f - p));
            } else {
                CHECK(out[i] == 0.0f);
            }
        }
        /* binomial: the standard error of the rate is at most 0.0011 */
        double rate = (double)kept / n;
        CHECKF(fabs(rate - (1.0 - p)) < 0.006, "p %g keep rate %g", (double)p, rate);
        /* the same seed and site give the same mask; another seed or another
         * site another one; in place gives the same output */
        amtl_dropout_forward(out2, mask2, x, n, p, 7, 2);
        CHECK(memcmp(mask, mask2, n) == 0);
        CHECK(memcmp(out, out2, n * sizeof *out) == 0);
        memcpy(out2, x, n * sizeof *x);
        amtl_dropout_forward(out2, mask2, out2, n, p, 7, 2);
        CHECK(memcmp(out, out2, n * sizeof *out) == 0);
        amtl_dropout_forward(out2, mask2, x, n, p, 8, 2);
        CHECK(memcmp(mask, mask2, n) != 0);
        amtl_dropout_forward(out2, mask2, x, n, p, 7, 3);
        CHECK(memcmp(mask, mask2, n) != 0);
    }
    /* p = 0 is the identity with an all-ones mask; the backward copies */
    test_poison(out, n);
    memset(mask, 0, n);
    amtl_dropout_forward(out, mask, x, n, 0.0f, 9, 0);
    CHECK(memcmp(out, x, n * sizeof *x) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK(mask[i] == 1);
    test_poison(out2, n);
    amtl_dropout_backward(out2, x, mask, n, 0.0f, 0);
    CHECK(memcmp(out2, x, n * sizeof *x) == 0);
}

/* ================================================================================
 * sigmoid
 * ================================================================================ */

static void test_sigmoid(void)
{
    float xs[] = {-1e4f, -200.0f, -88.0f, -30.0f, -5.0f, -1.0f, -1e-3f, 0.0f,
                  1e-3f, 1.0f,    5.0f,    30.0f, 88.0f, 200.0f, 1e4f};
    int n = (int)(sizeof xs / sizeof xs[0]);
    for (int i = 0; i < n; i++) {
        float s = amtl_sigmoid(xs[i]);
        double want = 1.0 / (1.0 + exp(-(double)xs[i]));
        CHECKF(isfinite(s) && s >= 0.0f && s <= 1.0f, "sigmoid(%g) = %g", (double)xs[i],
               (double)s);
        /* relative accuracy also in the far negative tail */
        CHECKF(fabs(s - want) <= 1e-6 * want || (want < 1e-38 && s < 1e-37f),
               "sigmoid(%g) = %.9g want %.9g", (double)xs[i], (double)s, want);
        CHECK_CLOSE(amtl_sigmoid(xs[i]) + amtl_sigmoid(-xs[i]), 1.0, 1e-7);
        if (i > 0)
            CHECK(amtl_sigmoid(xs[i]) >= amtl_sigmoid(xs[i - 1]));
    }
    CHECK(amtl_sigmoid(0.0f) == 0.5f);
    CHECK(amtl_sigmoid(-40.0f) > 0.0f);  /* 4e-18, representable */
}

int main(void)
{
    TEST(test_gemm_transposes);
    TEST(test_gemm_beta_zero_and_empty);
    TEST(test_blas_threads);
    TEST(test_linear_init);
    TEST(test_embedding_init);
    TEST(test_linear_grad);
    TEST(test_linear_large);
    TEST(test_batchnorm_grad);
    TEST(test_batchnorm_values);
    TEST(test_batchnorm_eval);
    TEST(test_relu_grad);
    TEST(test_dropout_grad);
    TEST(test_dropout_stats);
    TEST(test_sigmoid);
    free(tmem_);
    printf("# %ld gradient elements checked by central differences\n", fd_elements_);
    TEST_MAIN_END();
}
