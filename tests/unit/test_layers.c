/* test_layers.c — the generic layers of layers.h (GEMM, initialisation,
 * dropout, sigmoid) against double-precision references and central finite
 * differences; softmax, the gate and the loss are test_layers_supernet.c,
 * the backend's layers (Linear, BatchNorm, ReLU, ...) test_backend.c.
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
                amtl_gemm(NULL, tA, tB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
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
    amtl_gemm(NULL, 0, 0, M, N, K, 1.0f, A, K, Bm, N, 0.0f, C, N);
    CHECK(all_finite(C, (size_t)M * N));
    /* K = 0: C = beta C; with beta 0, C = 0 even over NaN */
    float *C2 = fv((size_t)M * N);
    fillf(C2, (size_t)M * N, -1, 1);
    float *C20 = fcopy(C2, (size_t)M * N);
    amtl_gemm(NULL, 0, 0, M, N, 0, 1.0f, A, 1, Bm, N, 2.0f, C2, N);
    for (int i = 0; i < M * N; i++)
        CHECK(C2[i] == 2.0f * C20[i]);
    test_poison(C2, (size_t)M * N);
    amtl_gemm(NULL, 0, 0, M, N, 0, 1.0f, A, 1, Bm, N, 0.0f, C2, N);
    for (int i = 0; i < M * N; i++)
        CHECK(C2[i] == 0.0f);
    /* M = 0 or N = 0: nothing happens */
    amtl_gemm(NULL, 0, 0, 0, N, K, 1.0f, A, K, Bm, N, 0.0f, NULL, N);
    amtl_gemm(NULL, 0, 0, M, 0, K, 1.0f, A, K, Bm, 1, 0.0f, NULL, 1);
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
    TEST(test_linear_init);
    TEST(test_embedding_init);
    TEST(test_dropout_grad);
    TEST(test_dropout_stats);
    TEST(test_sigmoid);
    free(tmem_);
    printf("# %ld gradient elements checked by central differences\n", fd_elements_);
    TEST_MAIN_END();
}
