/* test_cuda_supernet.c — the CUDA backend's primitives of the supernet's own
 * layers, the loss and Adam against the CPU backend's, as test_cuda.c does
 * for the memory, data, elementwise and BatchNorm primitives.
 *
 * Each test makes random, non-zero host inputs with odd shapes (leading
 * dimensions larger than the rows, sizes that cross the kernels' block and
 * chunk boundaries), runs the same body on both backends (copy in, call,
 * copy out: the brun helpers) and compares.  Written outputs are poisoned
 * with NaN before the call, and NaN fails every comparison; the gaps
 * between rows (leading dimension > columns) hold finite values that both
 * backends must leave alone, so whole buffers are compared.
 *
 * Tolerances: 1e-4 relative (scaled by max(1, |a|, |b|) as CHECK_CLOSE)
 * for float32 results: the CUDA backend adds its double partial sums in
 * another order, cuBLAS accumulates the products in another order than
 * OpenBLAS, and atomics reorder the embedding scatter.  Dropout masks and
 * the gathers must be identical; Adam, element by element the same
 * arithmetic, agrees to 1e-6.
 *
 * Without a usable GPU (or without CUDA in the build) every test is
 * skipped with amtl_backend_cuda_new's reason.
 */
#include "cudatest.h"

/* ---- the supernet's own layers ------------------------------------------------------------------ */

static void test_softmax(void)
{
    NEED_CUDA();
    int shapes[][2] = {{101, 5}, {1, 1}, {2049, 8}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], K = shapes[s][1];
        size_t n = (size_t)rows * K;
        float *X = frand(n, -4, 4), *dY = frand(n, -1, 1);
        float *Y[2], *Yi[2], *dX[2], *dXi[2];
        for (int k = 0; k < 2; k++) {
            Y[k] = fnan(n);
            Yi[k] = fnan(n);
            dX[k] = fnan(n);
            dXi[k] = fnan(n);
            brun r = brun_start(k);
            float *dx = up(&r, X, FB(n)), *dy = up(&r, Y[k], FB(n)), *dxi = up(&r, X, FB(n));
            float *ddy = up(&r, dY, FB(n)), *ddx = up(&r, dX[k], FB(n)), *ddxi = up(&r, dY, FB(n));
            CHECK_UP(r);
            r.be->softmax(r.be, dy, dx, rows, K);
            r.be->softmax(r.be, dxi, dxi, rows, K);   /* Y == X */
            r.be->softmax_back(r.be, ddx, ddy, dy, rows, K);
            r.be->softmax_back(r.be, ddxi, ddxi, dy, rows, K);   /* dX == dY */
            down(&r, Y[k], dy, FB(n));
            down(&r, Yi[k], dxi, FB(n));
            down(&r, dX[k], ddx, FB(n));
            down(&r, dXi[k], ddxi, FB(n));
            CHECK_END(r);
        }
        CHECK_NEAR(Y[0], Y[1], n, TOL);
        CHECK_NEAR(Yi[0], Yi[1], n, TOL);
        CHECK_NEAR(dX[0], dX[1], n, TOL);
        CHECK_NEAR(dXi[0], dXi[1], n, TOL);
    }
}

static void mixfeature_case(int B, int N, int E, int D)
{
    int ldx = N * E + E + D;
    size_t nx = (size_t)B * ldx, ne = (size_t)B * N * E, ns = (size_t)B * E;
    float *embs = frand(ne, -1, 1), *dense = frand((size_t)B * D + 1, -1, 1);
    float *gs = frand((size_t)N, 0, 1), *gi = frand((size_t)N, 0, 1);
    gs[N / 2] = 0.0f;   /* a field left out of x, and one out of the FM */
    gi[N - 1] = 0.0f;
    float *dx = frand(nx, -1, 1), *dembs0 = frand(ne, -1, 1);
    float *x[2], *sums[2], *dembs[2], *dgs[2], *dgi[2];
    for (int k = 0; k < 2; k++) {
        x[k] = fnan(nx);
        sums[k] = fnan(ns);
        dembs[k] = fcopy(dembs0, ne);
        dgs[k] = fnan((size_t)N);
        dgi[k] = fnan((size_t)N);
        brun r = brun_start(k);
        float *dX = up(&r, x[k], FB(nx)), *dS = up(&r, sums[k], FB(ns));
        float *dE = up(&r, embs, FB(ne)), *dD = up(&r, dense, FB((size_t)B * D + 1));
        float *dgs_ = up(&r, gs, FB(N)), *dgi_ = up(&r, gi, FB(N));
        float *ddx = up(&r, dx, FB(nx)), *ddE = up(&r, dembs0, FB(ne));
        float *ddgs = up(&r, dgs[k], FB(N)), *ddgi = up(&r, dgi[k], FB(N));
        CHECK_UP(r);
        r.be->mixfeature(r.be, dX, dS, dE, dD, dgs_, dgi_, B, N, E, D);
        /* the backward from the forward's sums, as the device step uses it */
        r.be->mixfeature_back(r.be, ddE, ddgs, ddgi, ddx, dE, dS, dgs_, dgi_, B, N, E, D);
        down(&r, x[k], dX, FB(nx));
        down(&r, sums[k], dS, FB(ns));
        down(&r, dembs[k], ddE, FB(ne));
        down(&r, dgs[k], ddgs, FB(N));
        down(&r, dgi[k], ddgi, FB(N));
        CHECK_END(r);
    }
    CHECK_NEAR(x[0], x[1], nx, TOL);
    CHECK_NEAR(sums[0], sums[1], ns, TOL);
    CHECK_NEAR(dembs[0], dembs[1], ne, TOL);
    CHECK_NEAR(dgs[0], dgs[1], (size_t)N, TOL);
    CHECK_NEAR(dgi[0], dgi[1], (size_t)N, TOL);
}

static void test_mixfeature(void)
{
    NEED_CUDA();
    mixfeature_case(37, 6, 9, 4);
    mixfeature_case(1, 1, 1, 0);
    mixfeature_case(3001, 7, 16, 13);   /* several chunks per field backward */
    mixfeature_case(20, 3, 5, 0);
}

/* zero: an expert with s 0 that ran (-1: none); skip: one with s 0 that did
 * not run (-1: none) */
static void expert_mix_case(int B, int K, int H, int zero, int skip)
{
    size_t ldk = (size_t)B * H + 11, ny = (size_t)K * ldk, no = (size_t)B * H;
    size_t ng = (size_t)B * K;
    float *G = frand(ng, 0, 1), *s = frand((size_t)K, 0, 1);
    float *Y = frand(ny, -1, 1), *dout = frand(no, -1, 1), *dY0 = frand(ny, -1, 1);
    uint64_t ran = K < 64 ? ((uint64_t)1 << K) - 1 : ~(uint64_t)0;
    if (zero >= 0)
        s[zero] = 0.0f;   /* its p and ds still computed (straight through) */
    if (skip >= 0) {
        /* an expert that did not run is not read: NaN in its Y must not
         * reach any output */
        s[skip] = 0.0f;
        ran &= ~((uint64_t)1 << skip);
        test_poison(Y + (size_t)skip * ldk, (size_t)B * H);
    }
    float *out[2], *dY[2], *dG[2], *ds[2];
    for (int k = 0; k < 2; k++) {
        out[k] = fnan(no);
        dY[k] = fcopy(dY0, ny);
        dG[k] = fnan(ng);
        ds[k] = fnan((size_t)K);
        brun r = brun_start(k);
        float *dout_ = up(&r, out[k], FB(no)), *dG_ = up(&r, G, FB(ng)), *ds_ = up(&r, s, FB(K));
        float *dY_ = up(&r, Y, FB(ny)), *ddout = up(&r, dout, FB(no));
        float *ddY = up(&r, dY0, FB(ny)), *ddG = up(&r, dG[k], FB(ng));
        float *dds = up(&r, ds[k], FB(K));
        CHECK_UP(r);
        r.be->expert_mix(r.be, dout_, dG_, ds_, dY_, ldk, B, K, H);
        r.be->expert_mix_back(r.be, ddY, ddG, dds, ddout, dG_, ds_, dY_, ldk, ran, B, K, H);
        down(&r, out[k], dout_, FB(no));
        down(&r, dY[k], ddY, FB(ny));
        down(&r, dG[k], ddG, FB(ng));
        down(&r, ds[k], dds, FB(K));
        CHECK_END(r);
    }
    CHECK_NEAR(out[0], out[1], no, TOL);
    CHECK_NEAR(dY[0], dY[1], ny, TOL);
    CHECK_NEAR(dG[0], dG[1], ng, TOL);
    CHECK_NEAR(ds[0], ds[1], (size_t)K, TOL);
    if (zero >= 0)
        CHECK(ds[0][zero] != 0.0f && ds[1][zero] != 0.0f);
    if (skip >= 0)
        CHECK(ds[0][skip] == 0.0f && ds[1][skip] == 0.0f);
}

static void test_expert_mix(void)
{
    NEED_CUDA();
    expert_mix_case(53, 5, 37, 2, 4);
    expert_mix_case(300, 4, 33, -1, -1);
    expert_mix_case(1, 1, 1, -1, -1);
    expert_mix_case(1, 1, 1, 0, -1);
    expert_mix_case(4099, 8, 64, 7, 1);   /* many row chunks per expert */
}

static void test_bce(void)
{
    NEED_CUDA();
    enum { T = 5 };
    int B = 203;
    /* task 1 counts the rows with label 3, which is all zeros: n_t = 0 */
    int32_t cond[T] = {-1, 3, -1, 0, 4};
    float w[T] = {1.0f, 0.5f, 2.0f, 1.5f, 0.25f};
    size_t nl = (size_t)B * T, nd = (size_t)T * B;
    float *labels = halloc(nl * sizeof *labels), *logits = frand(nd, -6, 6);
    CHECK(labels);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            labels[(size_t)b * T + t] = t == 3 ? 0.0f : (float)amtl_rng_below(&rng, 2);
    /* a condition column with weights other than 0/1 */
    for (int b = 0; b < B; b++)
        if (labels[(size_t)b * T + 4] != 0.0f)
            labels[(size_t)b * T + 4] = 0.5f + 0.5f * amtl_rng_uniform(&rng);
    float *loss[2], *dl[2];
    for (int k = 0; k < 2; k++) {
        loss[k] = fnan(T);
        dl[k] = fnan(nd);
        brun r = brun_start(k);
        float *dloss = up(&r, loss[k], FB(T)), *ddl = up(&r, dl[k], FB(nd));
        float *dlog = up(&r, logits, FB(nd)), *dlab = up(&r, labels, FB(nl));
        CHECK_UP(r);
        r.be->bce(r.be, dloss, ddl, dlog, dlab, cond, w, B, T);
        down(&r, loss[k], dloss, FB(T));
        down(&r, dl[k], ddl, FB(nd));
        CHECK_END(r);
    }
    CHECK_NEAR(loss[0], loss[1], (size_t)T, TOL);
    CHECK_NEAR(dl[0], dl[1], nd, TOL);
    CHECK(loss[0][1] == 0.0f && dl[0][B] == 0.0f && dl[1][B + 7] == 0.0f);
}

static void adam_case(int n_segs, int64_t maxn, int64_t step)
{
    amtl_adam_seg *segs = halloc((size_t)n_segs * sizeof *segs);
    CHECK(segs);
    int64_t woff = 3, moff = 0;
    for (int k = 0; k < n_segs; k++) {
        int64_t n = k == 2 ? 0 : 1 + (int64_t)amtl_rng_below(&rng, (uint64_t)maxn);
        segs[k] = (amtl_adam_seg){woff, moff, n, k % 3 != 1, k % 4 != 3};
        woff += n + (k % 2);   /* gaps in w, none in m and v */
        moff += n;
    }
    size_t nw = (size_t)woff + 5, nm = (size_t)moff;
    float *w0 = frand(nw, -1, 1), *g = frand(nw, -1, 1);
    float *m0 = frand(nm, -0.1f, 0.1f), *v0 = frand(nm, 0.0f, 0.01f);
    float *w[2], *m[2], *v[2], *gout[2];
    for (int k = 0; k < 2; k++) {
        w[k] = fcopy(w0, nw);
        m[k] = fcopy(m0, nm);
        v[k] = fcopy(v0, nm);
        gout[k] = fnan(nw);
        brun r = brun_start(k);
        float *dw = up(&r, w0, FB(nw)), *dg = up(&r, g, FB(nw));
        float *dm = up(&r, m0, FB(nm)), *dv = up(&r, v0, FB(nm));
        amtl_adam_seg *dsegs = up(&r, segs, (size_t)n_segs * sizeof *segs);
        CHECK_UP(r);
        /* two steps: the moments the first writes feed the second */
        r.be->adam(r.be, dw, dg, dm, dv, dsegs, n_segs, moff, 1e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f, step);
        r.be->adam(r.be, dw, dg, dm, dv, dsegs, n_segs, moff, 1e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f,
                   step + 1);
        down(&r, w[k], dw, FB(nw));
        down(&r, m[k], dm, FB(nm));
        down(&r, v[k], dv, FB(nm));
        down(&r, gout[k], dg, FB(nw));
        CHECK_END(r);
    }
    CHECK_NEAR(w[0], w[1], nw, TOL_ADAM);
    CHECK_NEAR(m[0], m[1], nm, TOL_ADAM);
    CHECK_NEAR(v[0], v[1], nm, TOL_ADAM);
    CHECK(memcmp(gout[0], g, FB(nw)) == 0 && memcmp(gout[1], g, FB(nw)) == 0);
    /* an inactive segment is left alone */
    CHECK(n_segs < 4 || memcmp(w[1] + segs[3].woff, w0 + segs[3].woff, FB(segs[3].n)) == 0);
}

static void test_adam(void)
{
    NEED_CUDA();
    adam_case(5, 100, 1);
    adam_case(40, 5000, 3);
    adam_case(300, 50, 1000);
    adam_case(1, 1, 7);
}

int main(void)
{
    cudatest_begin();
    RUN(test_softmax);
    RUN(test_mixfeature);
    RUN(test_expert_mix);
    RUN(test_bce);
    RUN(test_adam);
    cudatest_end();
    TEST_MAIN_END();
}
