/* test_layers_supernet.c — the supernet's host layers of layers.h (softmax,
 * the straight-through gate) and the loss, against double-precision
 * references and central finite differences; the generic layers are
 * test_layers.c, the step's layers on a backend (MixFeature, the MixedExpert
 * mixture, ...) test_backend_supernet.c.
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


/* ================================================================================
 * softmax
 * ================================================================================ */

typedef struct {
    int R, n;
    double *x, *Rw, *outd;
    float *xf, *out;
} sm_ctx;

static double sm_loss(void *p, int lib)
{
    sm_ctx *c = p;
    size_t m = (size_t)c->R * c->n;
    if (lib) {
        tof(c->xf, c->x, m);
        test_poison(c->out, m);
        amtl_softmax_forward(c->out, c->xf, c->R, c->n);
        return dotRf(c->out, c->Rw, m);
    }
    for (int r = 0; r < c->R; r++) {
        const double *x = c->x + (size_t)r * c->n;
        double z = 0.0;
        for (int j = 0; j < c->n; j++)
            z += exp(x[j]);
        for (int j = 0; j < c->n; j++)
            c->outd[(size_t)r * c->n + j] = exp(x[j]) / z;
    }
    return dotRd(c->outd, c->Rw, m);
}

static void test_softmax_grad(void)
{
    amtl_rng_seed(&rng_, 91);
    for (int t = 0; t < N_SHAPES + 1; t++) {
        sm_ctx c;
        c.R = irand(1, 7), c.n = t < N_SHAPES ? irand(2, 9) : 1;
        size_t m = (size_t)c.R * c.n;
        c.x = dv(m), c.Rw = dv(m), c.outd = dv(m), c.xf = fv(m), c.out = fv(m);
        fill(c.x, m, -3, 3);
        fill(c.Rw, m, -1, 1);
        sm_loss(&c, 1);
        sm_loss(&c, 0);
        CHECK(close_fd(c.out, c.outd, m, TOL_FWD, "softmax out"));
        float *dout = fv(m), *dinp = fv(m);
        tof(dout, c.Rw, m);
        test_poison(dinp, m);
        amtl_softmax_backward(dinp, dout, c.out, c.R, c.n);
        fd_var vs[1] = {{"inp", c.x, m, dcopyf(dinp, m)}};
        CHECKF(fd_check("softmax", sm_loss, &c, vs, 1) == 0, "R %d n %d", c.R, c.n);
        /* in place */
        float *io = fcopy(c.xf, m);
        amtl_softmax_forward(io, io, c.R, c.n);
        CHECK(memcmp(io, c.out, m * sizeof *io) == 0);
    }
}

static void test_softmax_stable(void)
{
    /* the largest value is not always first: the row maximum must be found */
    float x[12] = {-1000, 1000, 1000, -1e4f, -1e4f, -1e4f, 0, -88, 88, 1, 1, 1}, y[12];
    test_poison(y, 12);
    amtl_softmax_forward(y, x, 4, 3);
    CHECK(all_finite(y, 12));
    CHECK(y[0] == 0.0f);
    CHECK_CLOSE(y[1], 0.5, 1e-7);
    CHECK_CLOSE(y[2], 0.5, 1e-7);
    for (int j = 3; j < 6; j++)
        CHECK_CLOSE(y[j], 1.0 / 3.0, 1e-7);
    CHECK_CLOSE(y[8], 1.0, 1e-7);
    for (int j = 9; j < 12; j++)
        CHECK_CLOSE(y[j], 1.0 / 3.0, 1e-7);
    for (int r = 0; r < 4; r++)
        CHECK_CLOSE(y[3 * r] + y[3 * r + 1] + y[3 * r + 2], 1.0, 1e-6);
}

/* ================================================================================
 * the straight-through gate
 * ================================================================================ */

typedef struct {
    int n;
    double *beta, *R;
} gate_ctx;

/* The gate's forward is a step (ones, samples or a threshold), so its true
 * derivative is 0.  The straight-through estimator is the derivative of the
 * loss with the gate replaced by its probability p = σ(beta): with dL/dg = R,
 * dL/dbeta = R σ'(beta), i.e. the derivative of Σ σ(beta) R. */
static double gate_loss(void *p, int lib)
{
    gate_ctx *c = p;
    double s = 0.0;
    for (int i = 0; i < c->n; i++)
        s += (lib ? (double)amtl_sigmoid((float)c->beta[i]) : 1.0 / (1.0 + exp(-c->beta[i]))) *
             c->R[i];
    return s;
}

static void test_gate_grad(void)
{
    amtl_rng_seed(&rng_, 101);
    for (int t = 0; t < N_SHAPES; t++) {
        gate_ctx c;
        c.n = irand(1, 12);
        c.beta = dv((size_t)c.n), c.R = dv((size_t)c.n);
        fill(c.beta, (size_t)c.n, -3, 3);
        fill(c.R, (size_t)c.n, -1, 1);
        float *bf = fv((size_t)c.n), *dg = fv((size_t)c.n), *db = fv((size_t)c.n);
        tof(bf, c.beta, (size_t)c.n);
        tof(dg, c.R, (size_t)c.n);
        fillf(db, (size_t)c.n, -1, 1);
        float *db0 = fcopy(db, (size_t)c.n);
        amtl_gate_backward(db, dg, bf, c.n);
        fd_var vs[1] = {{"beta", c.beta, (size_t)c.n, ddiff(db, db0, (size_t)c.n)}};
        CHECK(fd_check("gate", gate_loss, &c, vs, 1) == 0);
    }
}

static void test_gate_forward(void)
{
    float beta[6] = {-2.0f, -1e-3f, 0.0f, 1e-3f, 2.0f, 40.0f}, g[6];
    test_poison(g, 6);
    amtl_gate_forward(g, beta, 6, AMTL_GATE_ONES, NULL);
    for (int i = 0; i < 6; i++)
        CHECK(g[i] == 1.0f);
    test_poison(g, 6);
    amtl_gate_forward(g, beta, 6, AMTL_GATE_THRESHOLD, NULL);
    float want[6] = {0, 0, 0, 1, 1, 1};  /* σ(0) = 0.5 is not > 0.5 */
    for (int i = 0; i < 6; i++)
        CHECKF(g[i] == want[i], "threshold g[%d] = %g", i, (double)g[i]);

    /* samples: 0/1 with frequency σ(beta), reproducible from the seed */
    enum { DRAWS = 20000 };
    float sb[3] = {-2.0f, 0.0f, 1.5f}, sg[3];
    int ones[3] = {0, 0, 0};
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    for (int d = 0; d < DRAWS; d++) {
        test_poison(sg, 3);
        amtl_gate_forward(sg, sb, 3, AMTL_GATE_SAMPLE, &r);
        for (int i = 0; i < 3; i++) {
            CHECK(sg[i] == 0.0f || sg[i] == 1.0f);
            ones[i] += sg[i] == 1.0f;
        }
    }
    for (int i = 0; i < 3; i++) {
        double p = 1.0 / (1.0 + exp(-(double)sb[i]));
        /* standard error <= 0.0036 */
        CHECKF(fabs((double)ones[i] / DRAWS - p) < 0.015, "beta %g: rate %g vs %g",
               (double)sb[i], (double)ones[i] / DRAWS, p);
    }
    float a[16], b[16], bb[16];
    for (int i = 0; i < 16; i++)
        bb[i] = (float)(i - 8) * 0.25f;
    amtl_rng_seed(&r, 6);
    amtl_gate_forward(a, bb, 16, AMTL_GATE_SAMPLE, &r);
    amtl_rng_seed(&r, 6);
    amtl_gate_forward(b, bb, 16, AMTL_GATE_SAMPLE, &r);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

/* ================================================================================
 * BCE with logits
 * ================================================================================ */

typedef struct {
    int B;
    double *logit;
    float *y, *w, *lf;
    float scale;
} bce_ctx;

/* The textbook form −(y log σ + (1−y) log(1−σ)), fine in double for the
 * moderate logits used here; rows weigh w (a 0/1 mask in the model). */
static double bce_loss(void *p, int lib)
{
    bce_ctx *c = p;
    if (lib) {
        tof(c->lf, c->logit, (size_t)c->B);
        return c->scale * amtl_bce_logits_forward(c->lf, c->y, c->w, c->B);
    }
    double s = 0.0;
    int count = 0;
    for (int b = 0; b < c->B; b++) {
        double w = c->w ? c->w[b] : 1.0;
        if (w == 0.0)
            continue;
        double sg = 1.0 / (1.0 + exp(-c->logit[b]));
        s += w * -(c->y[b] * log(sg) + (1.0 - c->y[b]) * log(1.0 - sg));
        count++;
    }
    return count ? c->scale * s / count : 0.0;
}

static void test_bce_grad(void)
{
    amtl_rng_seed(&rng_, 111);
    /* mode 0: no mask, scale 1; 1: a 0/1 mask, scale 0.37; 2: non-binary
     * weights, scale 2 (forward and backward must still agree) */
    for (int mode = 0; mode < 3; mode++) {
        for (int t = 0; t < N_SHAPES; t++) {
            bce_ctx c;
            c.B = irand(1, 12);
            c.logit = dv((size_t)c.B);
            c.y = fv((size_t)c.B), c.lf = fv((size_t)c.B);
            c.w = mode ? fv((size_t)c.B) : NULL;
            c.scale = mode == 0 ? 1.0f : mode == 1 ? 0.37f : 2.0f;
            fill(c.logit, (size_t)c.B, -4, 4);
            for (int b = 0; b < c.B; b++) {
                c.y[b] = (float)(amtl_rng_u64(&rng_) & 1);
                if (c.w)
                    c.w[b] = mode == 1 ? (float)(b % 3 != 1) : (b % 3 == 1 ? 0.0f : (float)urand(0.5, 2.5));
            }
            double fwd32 = bce_loss(&c, 1), fwd64 = bce_loss(&c, 0);
            CHECK_CLOSE(fwd32, fwd64, TOL_FWD);
            float *dl = fv((size_t)c.B);
            test_poison(dl, (size_t)c.B);
            amtl_bce_logits_backward(dl, c.lf, c.y, c.w, c.B, c.scale);
            for (int b = 0; b < c.B; b++)
                if (c.w && c.w[b] == 0.0f)
                    CHECK(dl[b] == 0.0f);
            fd_var vs[1] = {{"logit", c.logit, (size_t)c.B, dcopyf(dl, (size_t)c.B)}};
            CHECKF(fd_check("bce", bce_loss, &c, vs, 1) == 0, "mode %d B %d", mode, c.B);
        }
    }
}

static void test_bce_values(void)
{
    /* logit 0: log 2 whatever the label */
    float z[2] = {0, 0}, y01[2] = {0, 1};
    CHECK_CLOSE(amtl_bce_logits_forward(z, y01, NULL, 2), log(2.0), 1e-12);
    /* log(3) with label 1: σ = 3/4, loss log(4/3); label 0: log 4 */
    float l3[2] = {(float)log(3.0), (float)log(3.0)};
    float y10[2] = {1, 0};
    CHECK_CLOSE(amtl_bce_logits_forward(l3, y10, NULL, 2),
                0.5 * (log(4.0 / 3.0) + log(4.0)), 1e-7);
    /* far logits stay finite and exact: |x| when wrong, ~e^-|x| when right */
    float big[4] = {100, -100, 100, 1e4f}, yb[4] = {0, 1, 1, 0};
    double lb = amtl_bce_logits_forward(big, yb, NULL, 4);
    CHECK(isfinite(lb));
    CHECK_CLOSE(lb, (100.0 + 100.0 + exp(-100.0) + 1e4) / 4, 1e-12);
    float d[4];
    test_poison(d, 4);
    amtl_bce_logits_backward(d, big, yb, NULL, 4, 1.0f);
    CHECK_CLOSE(d[0], 0.25, 1e-7);
    CHECK_CLOSE(d[1], -0.25, 1e-7);
    CHECK(fabsf(d[2]) < 1e-30f);
    CHECK_CLOSE(d[3], 0.25, 1e-7);
    /* the mask: rows with w == 0 do not count, also in the mean's divisor */
    float l[3] = {0, 5, 0}, yl[3] = {1, 0, 0}, w[3] = {1, 0, 1};
    CHECK_CLOSE(amtl_bce_logits_forward(l, yl, w, 3), log(2.0), 1e-12);
    test_poison(d, 3);
    amtl_bce_logits_backward(d, l, yl, w, 3, 1.0f);
    CHECK_CLOSE(d[0], -0.25, 1e-7);
    CHECK(d[1] == 0.0f);
    CHECK_CLOSE(d[2], 0.25, 1e-7);
    /* no row counts: 0 and a zero gradient */
    float w0[3] = {0, 0, 0};
    CHECK(amtl_bce_logits_forward(l, yl, w0, 3) == 0.0);
    test_poison(d, 3);
    amtl_bce_logits_backward(d, l, yl, w0, 3, 1.0f);
    for (int i = 0; i < 3; i++)
        CHECK(d[i] == 0.0f);
}

int main(void)
{
    TEST(test_softmax_grad);
    TEST(test_softmax_stable);
    TEST(test_gate_grad);
    TEST(test_gate_forward);
    TEST(test_bce_grad);
    TEST(test_bce_values);
    free(tmem_);
    printf("# %ld gradient elements checked by central differences\n", fd_elements_);
    TEST_MAIN_END();
}
