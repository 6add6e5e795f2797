/* test_backend_supernet.c — the CPU backend's primitives of the supernet's
 * own layers, the loss and Adam (softmax, MixFeature, MixedExpert, BCE, Adam);
 * the memory, data, elementwise and BatchNorm primitives are test_backend.c,
 * whose conventions these follow.  As there: the CPU backend (kernels/backend.h) against plain
 * references written here in double, and every backward against central
 * finite differences of a random linear functional L = Σ R ⊙ out of its
 * forward.
 *
 * Shapes are odd (B 37, C 13, ...) and every primitive that takes a leading
 * dimension gets one larger than its width: the padding of inputs holds NaN
 * (so reading it fails) and the padding of outputs a sentinel that must
 * survive.  Outputs are poisoned with NaN before each call and every
 * comparison fails on NaN.  Accumulating outputs start from random values
 * and are checked as increments.
 *
 * Finite differences, as in test_layers.c: each backward is compared with
 *   1. central differences of the double reference forward (h 1e-6,
 *      tolerance 1e-4): those are exact to ~1e-9, so the tolerance only
 *      absorbs the float32 rounding of the backward itself (sums of ~40
 *      terms of order 1 carry ~1e-6 relative error);
 *   2. central differences of the backend's own float forward (h 1e-3,
 *      tolerance 1e-2): float32 outputs carry ~6e-8 relative rounding, which
 *      divided by 2h is ~3e-5 per output that moves, over a few hundred
 *      outputs, plus O(h²) truncation; 1e-2 stays clear of that noise and
 *      still catches any wrong term (those are O(1)).
 * Forwards are checked against the references at 1e-5 (float32 rounding of
 * short sums).  Where a primitive repeats the arithmetic of a library layer
 * (BatchNorm, the loss, Adam), it is also checked bit for bit against that
 * layer.
 */
#include "backendtest.h"

/* ================================================================================
 * softmax
 * ================================================================================ */

typedef struct {
    int rows, K;
    double *x, *R;
    float *xf, *Y;
} sm_ctx;

static void ref_softmax(double *y, const double *x, int K)
{
    double mx = x[0], s = 0.0;
    for (int k = 1; k < K; k++)
        mx = fmax(mx, x[k]);
    for (int k = 0; k < K; k++)
        s += exp(x[k] - mx);
    for (int k = 0; k < K; k++)
        y[k] = exp(x[k] - mx) / s;
}

static double sm_loss(void *p, int lib)
{
    sm_ctx *c = p;
    size_t n = (size_t)c->rows * c->K;
    if (lib) {
        tof(c->xf, c->x, n);
        test_poison(c->Y, n);
        cpu_->softmax(cpu_, c->Y, c->xf, c->rows, c->K);
        return dotR_ld(c->Y, c->K, c->R, c->rows, c->K);
    }
    double s = 0.0, y[16];
    for (int r = 0; r < c->rows; r++) {
        ref_softmax(y, c->x + (size_t)r * c->K, c->K);
        for (int k = 0; k < c->K; k++)
            s += y[k] * c->R[(size_t)r * c->K + k];
    }
    return s;
}

static void test_softmax_grad(void)
{
    amtl_rng_seed(&rng_, 310);
    sm_ctx c = {.rows = 37, .K = 5};
    size_t n = (size_t)c.rows * c.K;
    c.x = dv(n), c.R = dv(n), c.xf = fv(n), c.Y = fv(n);
    fill(c.x, n, -3, 3);
    fill(c.R, n, -1, 1);
    sm_loss(&c, 1);
    double y[16];
    for (int r = 0; r < c.rows; r++) {
        ref_softmax(y, c.x + (size_t)r * c.K, c.K);
        CHECK(close_fd(c.Y + (size_t)r * c.K, y, (size_t)c.K, TOL_FWD, "softmax"));
    }
    /* in place (Y == X) */
    float *Z = fcopy(c.xf, n);
    cpu_->softmax(cpu_, Z, Z, c.rows, c.K);
    CHECK(memcmp(Z, c.Y, n * sizeof(float)) == 0);

    float *dY = fv(n), *dX = fv(n);
    tof(dY, c.R, n);
    test_poison(dX, n);
    cpu_->softmax_back(cpu_, dX, dY, c.Y, c.rows, c.K);
    fd_var vs[1] = {{"x", c.x, n, dcopyf(dX, n)}};
    CHECK(fd_check("softmax", sm_loss, &c, vs, 1) == 0);
    sm_loss(&c, 1);   /* the forward of the unperturbed x again */
    float *dZ = fcopy(dY, n);
    cpu_->softmax_back(cpu_, dZ, dZ, c.Y, c.rows, c.K);
    CHECK(memcmp(dZ, dX, n * sizeof(float)) == 0);
}

/* ================================================================================
 * MixFeature
 * ================================================================================ */

typedef struct {
    int B, N, E, D;
    double *embs, *dense, *gs, *gi, *R;   /* R [B, ldx] */
    double *xd, *sumsd;
    float *ef, *df, *gsf, *gif, *x, *sums;
} mf_ctx;

static int mf_ldx(const mf_ctx *c) { return c->N * c->E + c->E + c->D; }

static void ref_mixfeature(mf_ctx *c)
{
    int N = c->N, E = c->E, D = c->D, ldx = mf_ldx(c);
    for (int b = 0; b < c->B; b++) {
        const double *e = c->embs + (size_t)b * N * E;
        double *x = c->xd + (size_t)b * ldx, *s = c->sumsd + (size_t)b * E;
        for (int k = 0; k < E; k++) {
            double sq = 0.0;
            s[k] = 0.0;
            for (int f = 0; f < N; f++) {
                double u = c->gi[f] * e[f * E + k];
                s[k] += u;
                sq += u * u;
                x[f * E + k] = c->gs[f] * e[f * E + k];
            }
            x[N * E + k] = 0.5 * (s[k] * s[k] - sq);
        }
        for (int d = 0; d < D; d++)
            x[N * E + E + d] = c->dense[(size_t)b * D + d];
    }
}

static double mf_loss(void *p, int lib)
{
    mf_ctx *c = p;
    size_t nx = (size_t)c->B * mf_ldx(c);
    if (lib) {
        tof(c->ef, c->embs, (size_t)c->B * c->N * c->E);
        tof(c->df, c->dense, (size_t)c->B * c->D);
        tof(c->gsf, c->gs, (size_t)c->N);
        tof(c->gif, c->gi, (size_t)c->N);
        test_poison(c->x, nx);
        test_poison(c->sums, (size_t)c->B * c->E);
        cpu_->mixfeature(cpu_, c->x, c->sums, c->ef, c->df, c->gsf, c->gif, c->B, c->N, c->E, c->D);
        return dotR_ld(c->x, (int)nx, c->R, 1, (int)nx);
    }
    ref_mixfeature(c);
    return dotRd(c->xd, c->R, nx);
}

static void test_mixfeature_grad(void)
{
    amtl_rng_seed(&rng_, 311);
    mf_ctx c = {.B = 37, .N = 5, .E = 7, .D = 3};
    int ldx = mf_ldx(&c);
    size_t ne = (size_t)c.B * c.N * c.E, nx = (size_t)c.B * ldx;
    c.embs = dv(ne), c.dense = dv((size_t)c.B * c.D), c.gs = dv((size_t)c.N);
    c.gi = dv((size_t)c.N), c.R = dv(nx), c.xd = dv(nx), c.sumsd = dv((size_t)c.B * c.E);
    fill(c.embs, ne, -1, 1);
    fill(c.dense, (size_t)c.B * c.D, -1, 1);
    fill(c.gs, (size_t)c.N, 0.2, 1.2);
    fill(c.gi, (size_t)c.N, 0.2, 1.2);
    c.gs[1] = 0.0;   /* a field off in the single part */
    c.gi[3] = 0.0;   /* and one off in the FM part */
    fill(c.R, nx, -1, 1);
    c.ef = fv(ne), c.df = fv((size_t)c.B * c.D), c.gsf = fv((size_t)c.N);
    c.gif = fv((size_t)c.N), c.x = fv(nx), c.sums = fv((size_t)c.B * c.E);

    CHECK_CLOSE(mf_loss(&c, 1), mf_loss(&c, 0), TOL_FWD);
    CHECK(close_fd(c.x, c.xd, nx, TOL_FWD, "mixfeature x"));
    CHECK(close_fd(c.sums, c.sumsd, (size_t)c.B * c.E, TOL_FWD, "mixfeature sums"));

    float *dx = fv(nx), *dembs = fv(ne), *dgs = fv((size_t)c.N), *dgi = fv((size_t)c.N);
    tof(dx, c.R, nx);
    fillf(dembs, ne, -1, 1);
    float *dembs0 = fcopy(dembs, ne);
    test_poison(dgs, (size_t)c.N);
    test_poison(dgi, (size_t)c.N);
    cpu_->mixfeature_back(cpu_, dembs, dgs, dgi, dx, c.ef, c.sums, c.gsf, c.gif, c.B, c.N, c.E, c.D);
    fd_var vs[3] = {
        {"embs", c.embs, ne, ddiff(dembs, dembs0, ne)},
        {"gs", c.gs, (size_t)c.N, dcopyf(dgs, (size_t)c.N)},
        {"gi", c.gi, (size_t)c.N, dcopyf(dgi, (size_t)c.N)},
    };
    CHECK(fd_check("mixfeature", mf_loss, &c, vs, 3) == 0);
}

/* ================================================================================
 * MixedExpert
 * ================================================================================ */

#define EM_K 5
#define EM_OFF 1    /* gate 0, but it ran: straight-through ds, no dY */
#define EM_SKIP 3   /* gate 0 and it did not run: its output is not computed */
#define EM_RAN (((uint64_t)1 << EM_K) - 1 - ((uint64_t)1 << EM_SKIP))

typedef struct {
    int B, K, H;
    size_t ldk;
    double *G, *s, *Y[EM_K], *R;
    float *Gf, *sf, *Yf, *out;
} em_ctx;

static double em_loss(void *p, int lib)
{
    em_ctx *c = p;
    size_t nh = (size_t)c->B * c->H;
    if (lib) {
        tof(c->Gf, c->G, (size_t)c->B * c->K);
        tof(c->sf, c->s, (size_t)c->K);
        for (int i = 0; i < c->K; i++)
            if ((EM_RAN >> i) & 1)
                tof(c->Yf + i * c->ldk, c->Y[i], nh);
        test_poison(c->out, nh);
        cpu_->expert_mix(cpu_, c->out, c->Gf, c->sf, c->Yf, c->ldk, c->B, c->K, c->H);
        return dotR_ld(c->out, (int)nh, c->R, 1, (int)nh);
    }
    double tot = 0.0;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++) {
            double o = 0.0;
            for (int i = 0; i < c->K; i++)
                if (c->s[i] != 0.0)
                    o += c->G[(size_t)b * c->K + i] * c->s[i] * c->Y[i][(size_t)b * c->H + h];
            tot += o * c->R[(size_t)b * c->H + h];
        }
    return tot;
}

static void test_expert_mix_grad(void)
{
    amtl_rng_seed(&rng_, 312);
    em_ctx c = {.B = 37, .K = EM_K, .H = 9};
    size_t nh = (size_t)c.B * c.H, ng = (size_t)c.B * c.K;
    c.ldk = nh + 7;
    c.G = dv(ng), c.s = dv((size_t)c.K), c.R = dv(nh);
    fill(c.G, ng, 0.05, 1);
    fill(c.R, nh, -1, 1);
    double sv[EM_K] = {1.0, 0.0, 0.6, 0.0, -0.8};
    memcpy(c.s, sv, sizeof sv);
    for (int i = 0; i < c.K; i++) {
        c.Y[i] = dv(nh);
        fill(c.Y[i], nh, -1, 1);
    }
    c.Gf = fv(ng), c.sf = fv((size_t)c.K), c.out = fv(nh);
    /* the padding between experts and the expert that did not run hold NaN */
    c.Yf = fv(c.K * c.ldk);
    test_poison(c.Yf, c.K * c.ldk);
    CHECK_CLOSE(em_loss(&c, 1), em_loss(&c, 0), TOL_FWD);
    CHECK(all_finite(c.out, nh));

    float *dout = fv(nh), *dY = fv(c.K * c.ldk), *dG = fv(ng), *ds = fv((size_t)c.K);
    tof(dout, c.R, nh);
    test_poison(dY, c.K * c.ldk);
    for (int i = 0; i < c.K; i++)
        if (i != EM_SKIP)
            fillf(dY + i * c.ldk, nh, -1, 1);
    float *dY0 = fcopy(dY, c.K * c.ldk);
    test_poison(dG, ng);
    test_poison(ds, (size_t)c.K);
    cpu_->expert_mix_back(cpu_, dY, dG, ds, dout, c.Gf, c.sf, c.Yf, c.ldk, EM_RAN, c.B, c.K, c.H);
    CHECK(all_finite(dG, ng) && all_finite(ds, (size_t)c.K));
    /* s 0 but ran: ds = Σ G·p (the finite differences below), dG 0, dY
     * untouched */
    CHECK(ds[EM_OFF] != 0.0f);
    for (int b = 0; b < c.B; b++)
        CHECK(dG[(size_t)b * c.K + EM_OFF] == 0.0f);
    CHECK(memcmp(dY + EM_OFF * c.ldk, dY0 + EM_OFF * c.ldk, nh * sizeof *dY) == 0);
    /* did not run: p 0, so dG and ds 0, and its dY untouched */
    CHECK(ds[EM_SKIP] == 0.0f);
    for (int b = 0; b < c.B; b++)
        CHECK(dG[(size_t)b * c.K + EM_SKIP] == 0.0f);
    for (size_t i = 0; i < c.ldk; i++)
        CHECK(isnan(dY[EM_SKIP * c.ldk + i]));
    for (int i = 0; i < c.K; i++)
        for (size_t k = nh; k < c.ldk; k++)
            CHECK(isnan(dY[i * c.ldk + k]));

    /* s of an expert that ran is a free variable, 0 or not: the loss is
     * linear in it, so ds at 0 is its true derivative (straight through);
     * the one that did not run cannot move (its output is NaN) */
    double *dsd = dcopyf(ds, (size_t)c.K);
    fd_var vs[1 + 2 * EM_K];
    int nv = 0;
    vs[nv++] = (fd_var){"G", c.G, ng, dcopyf(dG, ng)};
    for (int i = 0; i < c.K; i++) {
        if (i == EM_SKIP)
            continue;
        vs[nv++] = (fd_var){"s[i]", c.s + i, 1, dsd + i};
        vs[nv++] = (fd_var){"Y[i]", c.Y[i], nh, ddiff(dY + i * c.ldk, dY0 + i * c.ldk, nh)};
    }
    CHECK(fd_check("expert_mix", em_loss, &c, vs, nv) == 0);
}

/* ================================================================================
 * loss and optimiser
 * ================================================================================ */

static void test_bce(void)
{
    amtl_rng_seed(&rng_, 313);
    enum { T = 5 };
    int B = 37;
    /* tasks 1, 3, 4 conditioned on a label; task 3's condition (column 2)
     * is never 1, so it counts no row */
    int32_t cond[T] = {-1, 0, -1, 2, 1};
    float w[T] = {1.0f, 0.5f, 2.0f, 1.5f, 0.25f};
    float *logits = fv((size_t)T * B), *labels = fv((size_t)B * T);
    fillf(logits, (size_t)T * B, -6, 6);
    logits[3] = 40.0f, logits[4] = -40.0f;   /* saturated, still finite */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            labels[(size_t)b * T + t] = t == 2 ? 0.0f : (float)(amtl_rng_u64(&rng_) & 1);
    float loss[T + 1], *dl = fv((size_t)T * B);
    test_poison(loss, T);
    loss[T] = SENTINEL;
    test_poison(dl, (size_t)T * B);
    cpu_->bce(cpu_, loss, dl, logits, labels, cond, w, B, T);
    CHECK(loss[T] == SENTINEL);

    /* exactly loss_and_grad of lib/train/train.c */
    float ycol[37], mcol[37], want[37];
    for (int t = 0; t < T; t++) {
        for (int r = 0; r < B; r++) {
            ycol[r] = labels[(size_t)r * T + t];
            mcol[r] = cond[t] >= 0 ? labels[(size_t)r * T + cond[t]] : 1.0f;
        }
        const float *m = cond[t] >= 0 ? mcol : NULL;
        double lt = amtl_bce_logits_forward(logits + (size_t)t * B, ycol, m, B);
        CHECKF(loss[t] == (float)lt, "task %d: %.9g vs %.9g", t, (double)loss[t], lt);
        amtl_bce_logits_backward(want, logits + (size_t)t * B, ycol, m, B, w[t] / (float)T);
        CHECKF(memcmp(want, dl + (size_t)t * B, sizeof want) == 0, "task %d dlogits", t);

        /* and the formula of backend.h, in double */
        double sum = 0.0;
        int nt = 0;
        for (int r = 0; r < B; r++)
            if (mcol[r] != 0.0f)
                nt++;
        for (int r = 0; r < B; r++) {
            double x = logits[(size_t)t * B + r], y = ycol[r];
            double sig = 1.0 / (1.0 + exp(-x));
            double d = mcol[r] == 0.0f || nt == 0 ? 0.0 : w[t] / T * mcol[r] * (sig - y) / nt;
            if (mcol[r] != 0.0f)
                sum += mcol[r] * (fmax(x, 0.0) - x * y + log1p(exp(-fabs(x))));
            CHECK_CLOSE(dl[(size_t)t * B + r], d, 1e-6);
        }
        CHECK_CLOSE(loss[t], nt ? sum / nt : 0.0, 1e-6);
        if (t == 3) {
            CHECK(nt == 0 && loss[t] == 0.0f);
            for (int r = 0; r < B; r++)
                CHECK(dl[(size_t)t * B + r] == 0.0f);
        }
    }
}

static void test_adam(void)
{
    amtl_rng_seed(&rng_, 314);
    size_t nw = 100, total = 75;
    /* w[5..35) and w[40..65) active, one with decay; w[70..90) inactive */
    amtl_adam_seg segs[3] = {
        {.woff = 5, .moff = 0, .n = 30, .decay = 1, .active = 1},
        {.woff = 40, .moff = 30, .n = 25, .decay = 0, .active = 1},
        {.woff = 70, .moff = 55, .n = 20, .decay = 1, .active = 0},
    };
    float *w = fv(nw), *g = fv(nw), *m = fv(total), *v = fv(total);
    fillf(w, nw, -1, 1);
    float *w0 = fcopy(w, nw), *mw = fcopy(w, nw), *mm = fv(total), *mv = fv(total);
    float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
    for (int64_t step = 1; step <= 4; step++) {
        fillf(g, nw, -1, 1);
        float *g0 = fcopy(g, nw);
        cpu_->adam(cpu_, w, g, m, v, segs, 3, (int64_t)total, lr, b1, b2, eps, wd, step);
        CHECK(memcmp(g, g0, nw * sizeof(float)) == 0);   /* gradients not modified */
        for (int k = 0; k < 2; k++)
            amtl_adam_update(mw + segs[k].woff, g + segs[k].woff, mm + segs[k].moff,
                             mv + segs[k].moff, (size_t)segs[k].n, lr, b1, b2, eps,
                             segs[k].decay ? wd : 0.0f, step);
        CHECK(memcmp(w, mw, nw * sizeof(float)) == 0);
        CHECK(memcmp(m, mm, total * sizeof(float)) == 0);
        CHECK(memcmp(v, mv, total * sizeof(float)) == 0);
    }
    /* the inactive segment and the words outside every segment never move */
    for (size_t i = 0; i < nw; i++) {
        int in_active = (i >= 5 && i < 35) || (i >= 40 && i < 65);
        if (in_active)
            CHECK(w[i] != w0[i]);
        else
            CHECK(w[i] == w0[i]);
    }
    for (size_t i = 55; i < total; i++)
        CHECK(m[i] == 0.0f && v[i] == 0.0f);
}

int main(void)
{
    cpu_ = test_cpu_backend();
    TEST(test_softmax_grad);
    TEST(test_mixfeature_grad);
    TEST(test_expert_mix_grad);
    TEST(test_bce);
    TEST(test_adam);
    free(tmem_);
    printf("# %ld gradient elements checked by central differences\n", fd_elements_);
    TEST_MAIN_END();
}
