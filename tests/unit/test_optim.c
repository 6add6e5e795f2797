/* test_optim.c — Adam against hand-computed steps and an independent
 * double-precision implementation; segments, weight decay, inactive segments,
 * and saving/restoring the state. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/optim.h"
#include "base/rng.h"
#include "test.h"

static amtl_rng rng_;

static void fillf(float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * amtl_rng_uniform_double(&rng_));
}

/* torch.optim.Adam's update in double, from the definition:
 *   g' = g + wd p;  m = b1 m + (1−b1) g';  v = b2 v + (1−b2) g'²;
 *   p -= lr (m / (1−b1^t)) / (sqrt(v / (1−b2^t)) + eps). */
static void ref_adam(double *p, const float *g, double *m, double *v, size_t n, double lr,
                     double b1, double b2, double eps, double wd, int t)
{
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

/* Step 1 by hand: m = (1−b1) g and v = (1−b2) g², so mhat = g, vhat = g² and
 * the update is lr · g / (|g| + eps).
 *   p = 1,    g = 0.5,   lr 0.1: 1 − 0.1·0.5/(0.5 + 1e-8)  = 0.900000002
 *   p = −2,   g = −0.25:         −2 + 0.1·0.25/(0.25+1e-8) = −1.900000004
 *   p = 0.5,  g = 1e-8:  eps is as large as |g|: 0.5 − 0.1·1e-8/2e-8 = 0.45
 * With weight decay 0.1 on p = 1, g = 0.5: g' = 0.6, 1 − 0.1·0.6/(0.6+1e-8).
 * Step 2 by hand, lr 0.01, p = 0, g1 = 1 then g2 = −1, no decay:
 *   p1 = −0.01/(1 + 1e-8) = −0.0099999999
 *   m2 = 0.9·0.1 − 0.1 = −0.01,  v2 = 0.999·0.001 + 0.001 = 0.001999
 *   mhat = −0.01/0.19 = −0.0526315789,  vhat = 0.001999/0.001999 = 1
 *   p2 = p1 + 0.01·0.0526315789/(1 + 1e-8) = −0.00947368411 */
static void test_adam_hand(void)
{
    amtl_status st = {0};
    amtl_adam o;
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.5f, -0.25f, 1e-8f};
    amtl_adam_init(&o, 0.1f, 0.0f);
    CHECK(o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f && o.step == 0);
    CHECK(amtl_adam_add(&o, p, g, 3, 1, &st) == 0);
    CHECK_OK(amtl_adam_finalize(&o, &st), &st);
    amtl_adam_step(&o);
    CHECK(o.step == 1);
    CHECK_CLOSE(p[0], 0.900000002, 1e-7);
    CHECK_CLOSE(p[1], -1.900000004, 1e-7);
    CHECK_CLOSE(p[2], 0.45, 1e-6);
    CHECK_CLOSE(o.m[0], 0.05, 1e-7);
    CHECK_CLOSE(o.v[0], 0.001 * 0.25, 1e-6);
    amtl_adam_free(&o);

    float pd[1] = {1.0f}, gd[1] = {0.5f};
    amtl_adam_init(&o, 0.1f, 0.1f);
    CHECK(amtl_adam_add(&o, pd, gd, 1, 1, &st) == 0);
    CHECK_OK(amtl_adam_finalize(&o, &st), &st);
    amtl_adam_step(&o);
    CHECK_CLOSE(pd[0], 1.0 - 0.1 * 0.6 / (0.6 + 1e-8), 1e-7);
    CHECK_CLOSE(o.m[0], 0.1 * 0.6, 1e-7);
    CHECK(gd[0] == 0.5f);  /* the decay term is not written into the gradient */
    amtl_adam_free(&o);

    float p2[1] = {0.0f}, g2[1] = {1.0f};
    amtl_adam_init(&o, 0.01f, 0.0f);
    CHECK(amtl_adam_add(&o, p2, g2, 1, 0, &st) == 0);
    CHECK_OK(amtl_adam_finalize(&o, &st), &st);
    amtl_adam_step(&o);
    CHECK_CLOSE(p2[0], -0.0099999999, 1e-9);
    g2[0] = -1.0f;
    amtl_adam_step(&o);
    CHECK(o.step == 2);
    CHECK_CLOSE(o.m[0], -0.01, 1e-7);
    CHECK_CLOSE(o.v[0], 0.001999, 1e-7);
    CHECK_CLOSE(p2[0], -0.00947368411, 1e-8);
    amtl_adam_free(&o);
}

/* Three segments: decay on, decay off, inactive; ten steps of random
 * gradients against ref_adam.  Float parameters round by ~6e-8 per step,
 * which bounds the drift from the double reference over ten steps. */
static void test_adam_vs_reference(void)
{
    amtl_rng_seed(&rng_, 7);
    amtl_status st = {0};
    enum { NA = 7, NB = 5, NC = 4, STEPS = 10 };
    float pa[NA], ga[NA], pb[NB], gb[NB], pc[NC], gc[NC];
    fillf(pa, NA, -2, 2);
    fillf(pb, NB, -2, 2);
    fillf(pc, NC, -2, 2);
    fillf(gc, NC, -1, 1);
    float pa0[NA], pc0[NC], gc0[NC], gas[STEPS][NA];
    memcpy(pa0, pa, sizeof pa);
    memcpy(pc0, pc, sizeof pc);
    memcpy(gc0, gc, sizeof gc);
    double ra[NA], rb[NB], ma[NA] = {0}, va[NA] = {0}, mb[NB] = {0}, vb[NB] = {0};
    for (int i = 0; i < NA; i++)
        ra[i] = pa[i];
    for (int i = 0; i < NB; i++)
        rb[i] = pb[i];

    float lr = 0.01f, wd = 0.05f;
    amtl_adam o;
    amtl_adam_init(&o, lr, wd);
    CHECK(amtl_adam_add(&o, pa, ga, NA, 1, &st) == 0);
    CHECK(amtl_adam_add(&o, pb, gb, NB, 0, &st) == 1);
    CHECK(amtl_adam_add(&o, pc, gc, NC, 1, &st) == 2);
    CHECK_OK(amtl_adam_finalize(&o, &st), &st);
    CHECK(o.total == NA + NB + NC);
    CHECK(o.segs[0].offset == 0 && o.segs[1].offset == NA && o.segs[2].offset == NA + NB);
    o.segs[2].active = 0;

    for (int t = 1; t <= STEPS; t++) {
        fillf(ga, NA, -1, 1);
        fillf(gb, NB, -1, 1);
        if (t == 3)
            ga[0] = 0.0f, gb[0] = 0.0f;  /* a zero gradient: decay alone moves pa[0] */
        memcpy(gas[t - 1], ga, sizeof ga);
        amtl_adam_step(&o);
        CHECK(o.step == t);
        CHECK(memcmp(ga, gas[t - 1], sizeof ga) == 0);
        ref_adam(ra, ga, ma, va, NA, lr, o.beta1, o.beta2, o.eps, wd, t);
        ref_adam(rb, gb, mb, vb, NB, lr, o.beta1, o.beta2, o.eps, 0.0, t);
        for (int i = 0; i < NA; i++) {
            CHECKF(fabs(pa[i] - ra[i]) <= 1e-6, "t %d pa[%d] %.9g vs %.9g", t, i,
                   (double)pa[i], ra[i]);
            CHECK_CLOSE(o.m[i], ma[i], 1e-6);
            CHECK_CLOSE(o.v[i], va[i], 1e-6);
        }
        for (int i = 0; i < NB; i++) {
            CHECKF(fabs(pb[i] - rb[i]) <= 1e-6, "t %d pb[%d] %.9g vs %.9g", t, i,
                   (double)pb[i], rb[i]);
            CHECK_CLOSE(o.m[NA + i], mb[i], 1e-6);
            CHECK_CLOSE(o.v[NA + i], vb[i], 1e-6);
        }
    }
    /* the inactive segment: parameters, gradient and moments untouched */
    CHECK(memcmp(pc, pc0, sizeof pc) == 0);
    CHECK(memcmp(gc, gc0, sizeof gc) == 0);
    for (int i = 0; i < NC; i++)
        CHECK(o.m[NA + NB + i] == 0.0f && o.v[NA + NB + i] == 0.0f);

    /* decay really acts on segment A: without it the result differs */
    double rnd[NA], mnd[NA] = {0}, vnd[NA] = {0};
    for (int i = 0; i < NA; i++)
        rnd[i] = pa0[i];
    for (int t = 1; t <= STEPS; t++)
        ref_adam(rnd, gas[t - 1], mnd, vnd, NA, lr, o.beta1, o.beta2, o.eps, 0.0, t);
    double diff = 0.0;
    for (int i = 0; i < NA; i++)
        diff = fmax(diff, fabs(rnd[i] - ra[i]));
    CHECKF(diff > 1e-4, "weight decay changed nothing (%g)", diff);
    amtl_adam_free(&o);
}

/* The exposed update with a later step and non-zero moments. */
static void test_adam_update_direct(void)
{
    amtl_rng_seed(&rng_, 8);
    enum { N = 33 };
    float p[N], g[N], m[N], v[N];
    double rp[N], rm[N], rv[N];
    fillf(p, N, -1, 1);
    fillf(g, N, -1, 1);
    fillf(m, N, -0.1, 0.1);
    fillf(v, N, 0.0, 0.01);
    for (int i = 0; i < N; i++)
        rp[i] = p[i], rm[i] = m[i], rv[i] = v[i];
    float b1 = 0.8f, b2 = 0.99f, eps = 1e-6f, wd = 0.01f, lr = 0.003f;
    int64_t step = 57;
    amtl_adam_update(p, g, m, v, N, lr, b1, b2, eps, wd, step);
    ref_adam(rp, g, rm, rv, N, lr, b1, b2, eps, wd, (int)step);
    for (int i = 0; i < N; i++) {
        CHECK_CLOSE(p[i], rp[i], 1e-7);
        CHECK_CLOSE(m[i], rm[i], 1e-6);
        CHECK_CLOSE(v[i], rv[i], 1e-6);
    }
    /* a very late step: the bias corrections tend to 1 without underflow */
    float q[1] = {1.0f}, gq[1] = {0.5f}, mq[1] = {0.5f}, vq[1] = {0.25f};
    amtl_adam_update(q, gq, mq, vq, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1000000);
    CHECK_CLOSE(q[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-7);
}

/* Copy (step, m, v, parameters) out, restore into a fresh optimizer, and the
 * continuation is bit-for-bit the same. */
static void test_adam_resume(void)
{
    amtl_rng_seed(&rng_, 9);
    amtl_status st = {0};
    enum { N1 = 6, N2 = 3, STEPS = 4 };
    float p1[N1], g1[N1], p2[N2], g2[N2];
    float grads[2 * STEPS][N1 + N2];
    for (int s = 0; s < 2 * STEPS; s++)
        fillf(grads[s], N1 + N2, -1, 1);
    fillf(p1, N1, -1, 1);
    fillf(p2, N2, -1, 1);

    amtl_adam a;
    amtl_adam_init(&a, 0.02f, 0.01f);
    CHECK(amtl_adam_add(&a, p1, g1, N1, 1, &st) == 0);
    CHECK(amtl_adam_add(&a, p2, g2, N2, 0, &st) == 1);
    CHECK_OK(amtl_adam_finalize(&a, &st), &st);
    for (int s = 0; s < STEPS; s++) {
        memcpy(g1, grads[s], sizeof g1);
        memcpy(g2, grads[s] + N1, sizeof g2);
        amtl_adam_step(&a);
    }
    int64_t saved_step = a.step;
    float sm[N1 + N2], sv[N1 + N2], sp1[N1], sp2[N2];
    memcpy(sm, a.m, sizeof sm);
    memcpy(sv, a.v, sizeof sv);
    memcpy(sp1, p1, sizeof sp1);
    memcpy(sp2, p2, sizeof sp2);
    for (int s = STEPS; s < 2 * STEPS; s++) {
        memcpy(g1, grads[s], sizeof g1);
        memcpy(g2, grads[s] + N1, sizeof g2);
        amtl_adam_step(&a);
    }

    float q1[N1], h1[N1], q2[N2], h2[N2];
    memcpy(q1, sp1, sizeof q1);
    memcpy(q2, sp2, sizeof q2);
    amtl_adam b;
    amtl_adam_init(&b, 0.02f, 0.01f);
    CHECK(amtl_adam_add(&b, q1, h1, N1, 1, &st) == 0);
    CHECK(amtl_adam_add(&b, q2, h2, N2, 0, &st) == 1);
    CHECK_OK(amtl_adam_finalize(&b, &st), &st);
    b.step = saved_step;
    memcpy(b.m, sm, sizeof sm);
    memcpy(b.v, sv, sizeof sv);
    for (int s = STEPS; s < 2 * STEPS; s++) {
        memcpy(h1, grads[s], sizeof h1);
        memcpy(h2, grads[s] + N1, sizeof h2);
        amtl_adam_step(&b);
    }
    CHECK(b.step == a.step && a.step == 2 * STEPS);
    CHECK(memcmp(q1, p1, sizeof q1) == 0);
    CHECK(memcmp(q2, p2, sizeof q2) == 0);
    CHECK(memcmp(a.m, b.m, (N1 + N2) * sizeof(float)) == 0);
    CHECK(memcmp(a.v, b.v, (N1 + N2) * sizeof(float)) == 0);

    /* restoring the wrong step is visible: the bias correction differs */
    float r1[N1], k1[N1], r2[N2], k2[N2];
    memcpy(r1, sp1, sizeof r1);
    memcpy(r2, sp2, sizeof r2);
    amtl_adam c;
    amtl_adam_init(&c, 0.02f, 0.01f);
    CHECK(amtl_adam_add(&c, r1, k1, N1, 1, &st) == 0);
    CHECK(amtl_adam_add(&c, r2, k2, N2, 0, &st) == 1);
    CHECK_OK(amtl_adam_finalize(&c, &st), &st);
    memcpy(c.m, sm, sizeof sm);
    memcpy(c.v, sv, sizeof sv);
    memcpy(k1, grads[STEPS], sizeof k1);
    memcpy(k2, grads[STEPS] + N1, sizeof k2);
    amtl_adam_step(&c);
    CHECK(memcmp(r1, sp1, sizeof r1) != 0);
    amtl_adam_free(&a);
    amtl_adam_free(&b);
    amtl_adam_free(&c);
}

/* Registration: offsets, growth past the first allocation, a zero-length
 * segment, errors, and free on zeroed and freed structs. */
static void test_adam_registration(void)
{
    amtl_status st = {0};
    amtl_adam o;
    amtl_adam_init(&o, 1e-3f, 1e-5f);
    enum { NS = 40 };
    static float p[NS][3], g[NS][3];
    size_t off = 0;
    for (int k = 0; k < NS; k++) {
        size_t n = (size_t)(k % 4);  /* includes zero-length segments */
        CHECK(amtl_adam_add(&o, p[k], g[k], n, k & 1, &st) == k);
        CHECK(o.segs[k].offset == off && o.segs[k].n == n);
        CHECK(o.segs[k].decay == (k & 1) && o.segs[k].active == 1);
        off += n;
    }
    CHECK(o.n_segs == NS && o.total == off);
    CHECK_OK(amtl_adam_finalize(&o, &st), &st);
    for (size_t i = 0; i < o.total; i++)
        CHECK(o.m[i] == 0.0f && o.v[i] == 0.0f);
    amtl_status_clear(&st);
    CHECK(amtl_adam_add(&o, p[0], g[0], 1, 1, &st) == -1);
    CHECK(st.code == AMTL_EDATA && st.msg[0]);
    CHECK(amtl_adam_finalize(&o, &st) == -1);
    amtl_adam_step(&o);  /* zero gradients everywhere: parameters stay 0 */
    for (int k = 0; k < NS; k++)
        for (int i = 0; i < 3; i++)
            CHECK(p[k][i] == 0.0f);
    amtl_adam_free(&o);
    CHECK(o.m == NULL && o.segs == NULL && o.n_segs == 0);
    amtl_adam_free(&o);
    amtl_adam z;
    memset(&z, 0, sizeof z);
    amtl_adam_free(&z);

    /* an optimizer with no segment at all */
    amtl_adam e;
    amtl_adam_init(&e, 1e-3f, 0.0f);
    CHECK_OK(amtl_adam_finalize(&e, &st), &st);
    amtl_adam_step(&e);
    CHECK(e.step == 1);
    amtl_adam_free(&e);
}

/* Lazy Adam (sparse_embedding): a table's listed rows step exactly as
 * amtl_adam_update with the shared step count, its other rows keep weights
 * and moments bit for bit, a dense segment steps as amtl_adam_step does, and
 * an inactive segment is left alone. */
static void test_adam_lazy(void)
{
    enum { W = 3, ROWS = 7, ND = 5 };
    amtl_rng_seed(&rng_, 77);
    float tab[ROWS * W], gt[ROWS * W], dense[ND], gd[ND], off[2] = {1, 2}, goff[2] = {3, 4};
    float tab0[ROWS * W], dense_ref[ND], gd_ref[ND], mref[ND] = {0}, vref[ND] = {0};
    float mt[ROWS * W] = {0}, vt[ROWS * W] = {0}, tref[ROWS * W];
    fillf(tab, ROWS * W, -1, 1);
    fillf(dense, ND, -1, 1);
    memcpy(tab0, tab, sizeof tab);
    memcpy(tref, tab, sizeof tab);
    memcpy(dense_ref, dense, sizeof dense);
    amtl_adam o;
    amtl_status st;
    amtl_adam_init(&o, 0.05f, 0.01f);
    CHECK(amtl_adam_add(&o, tab, gt, ROWS * W, 1, &st) == 0);
    CHECK(amtl_adam_add(&o, dense, gd, ND, 1, &st) == 1);
    CHECK(amtl_adam_add(&o, off, goff, 2, 0, &st) == 2);
    CHECK_OK(amtl_adam_finalize(&o, &st), &st);
    o.segs[2].active = 0;
    const int32_t r1[] = {1, 4}, r2[] = {4, 6};
    for (int step = 1; step <= 2; step++) {
        const int32_t *rl = step == 1 ? r1 : r2;
        fillf(gt, ROWS * W, -1, 1);
        fillf(gd, ND, -1, 1);
        memcpy(gd_ref, gd, sizeof gd);
        const int32_t *rows[3] = {rl, NULL, NULL};
        int n_rows[3] = {2, 0, 0};
        amtl_adam_step_lazy(&o, rows, n_rows, W);
        CHECK(o.step == step);
        for (int i = 0; i < 2; i++)
            amtl_adam_update(tref + rl[i] * W, gt + rl[i] * W, mt + rl[i] * W, vt + rl[i] * W,
                             W, 0.05f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
        amtl_adam_update(dense_ref, gd_ref, mref, vref, ND, 0.05f, 0.9f, 0.999f, 1e-8f, 0.01f,
                         step);
    }
    CHECK(memcmp(tab, tref, sizeof tab) == 0);
    CHECK(memcmp(o.m, mt, sizeof mt) == 0 && memcmp(o.v, vt, sizeof vt) == 0);
    CHECK(memcmp(dense, dense_ref, sizeof dense) == 0);
    CHECK(memcmp(o.m + ROWS * W, mref, sizeof mref) == 0);
    for (int r = 0; r < ROWS; r++)  /* rows 0, 2, 3, 5 never listed: untouched */
        if (r != 1 && r != 4 && r != 6)
            CHECK(memcmp(tab + r * W, tab0 + r * W, W * sizeof(float)) == 0 &&
                  o.m[r * W] == 0 && o.v[r * W] == 0);
    CHECK(memcmp(tab + W, tab0 + W, W * sizeof(float)) != 0);
    CHECK(off[0] == 1 && off[1] == 2);
    amtl_adam_free(&o);
}

int main(void)
{
    RUN(test_adam_hand);
    RUN(test_adam_vs_reference);
    RUN(test_adam_update_direct);
    RUN(test_adam_resume);
    RUN(test_adam_registration);
    RUN(test_adam_lazy);
    TEST_MAIN_END();
}
