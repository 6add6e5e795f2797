/* test_cuda.c — the CUDA backend (kernels/cuda/) against the CPU
 * backend (kernels/cpu/backend.c), primitive by primitive.
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

/* ---- memory ----------------------------------------------------------------------------- */

static void test_memory(void)
{
    NEED_CUDA();
    CHECKF(cuda->last_error(cuda) == NULL, "%s", cuda->last_error(cuda));
    CHECK(strcmp(cuda->name, "cuda") == 0);
    void *z = cuda->alloc(cuda, 0);
    CHECK(z != NULL);
    cuda->free(cuda, z);
    size_t n = 1001;
    float *a = frand(n, -1, 1), *b = fnan(n), *c = fnan(n);
    float *d = cuda->alloc(cuda, FB(n));
    CHECK(d != NULL);
    CHECK(cuda->put(cuda, d, a, FB(n)) == 0);
    CHECK(cuda->get(cuda, b, d, FB(n)) == 0);
    CHECK(memcmp(a, b, FB(n)) == 0);
    CHECK(cuda->zero(cuda, d, FB(n)) == 0);
    CHECK(cuda->get(cuda, c, d, FB(n)) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK(c[i] == 0.0f);
    CHECK(cuda->put(cuda, d, a, 0) == 0 && cuda->get(cuda, b, d, 0) == 0 && cuda->zero(cuda, d, 0) == 0);
    cuda->free(cuda, d);
    cuda->free(cuda, NULL);
    CHECK(cuda->sync(cuda) == 0);
    CHECKF(cuda->last_error(cuda) == NULL, "%s", cuda->last_error(cuda));
    const char *w = "unset";
    CHECK(test_cuda_backend(&w) == cuda && w == NULL);
}

/* ---- matrices ----------------------------------------------------------------------------- */

static void gemm_case(int tA, int tB, int M, int N, int K, float alpha, float beta)
{
    int ra = tA ? K : M, ca = tA ? M : K, rb = tB ? N : K, cb = tB ? K : N;
    int lda = ca + 3, ldb = cb + 5, ldc = N + 2;
    float *A = frand((size_t)ra * lda, -1, 1), *B = frand((size_t)rb * ldb, -1, 1);
    size_t nc = (size_t)M * ldc;
    float *C0 = frand(nc, -1, 1);
    float *out[2];
    for (int k = 0; k < 2; k++) {
        /* beta 0 must not read C: its window starts as NaN */
        out[k] = beta == 0.0f ? fpoison_window(C0, nc, M, N, ldc) : fcopy(C0, nc);
        brun r = brun_start(k);
        float *dA = up(&r, A, FB((size_t)ra * lda)), *dB = up(&r, B, FB((size_t)rb * ldb));
        float *dC = up(&r, out[k], FB(nc));
        CHECK_UP(r);
        r.be->gemm(r.be, tA, tB, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
        down(&r, out[k], dC, FB(nc));
        CHECK_END(r);
    }
    CHECKF(far_index(out[0], out[1], nc, TOL) < 0, "gemm tA %d tB %d M %d N %d K %d beta %g",
           tA, tB, M, N, K, (double)beta);
}

static void test_gemm(void)
{
    NEED_CUDA();
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++) {
            gemm_case(tA, tB, 37, 29, 53, 0.7f, 0.0f);
            gemm_case(tA, tB, 37, 29, 53, 1.0f, 0.3f);
            gemm_case(tA, tB, 1, 5, 3, 1.0f, 1.0f);
        }
    gemm_case(0, 1, 301, 257, 511, 1.0f, 1.0f);
    gemm_case(1, 0, 67, 129, 1001, 1.0f, 0.0f);
}

static void test_add_axpy(void)
{
    NEED_CUDA();
    int rows = 37, C = 29, ldy = 41, ldx = 33;
    size_t ny = (size_t)rows * ldy, nx = (size_t)rows * ldx, n = 10007;
    float *X = frand(nx, -1, 1), *Y0 = frand(ny, -1, 1);
    float *x = frand(n, -1, 1), *y0 = frand(n, -1, 1);
    float *Y[2], *y[2];
    for (int k = 0; k < 2; k++) {
        Y[k] = fcopy(Y0, ny);
        y[k] = fcopy(y0, n);
        brun r = brun_start(k);
        float *dX = up(&r, X, FB(nx)), *dY = up(&r, Y0, FB(ny));
        float *dx = up(&r, x, FB(n)), *dy = up(&r, y0, FB(n));
        CHECK_UP(r);
        r.be->add(r.be, dY, ldy, dX, ldx, rows, C);
        r.be->axpy(r.be, dy, dx, -0.37f, n);
        down(&r, Y[k], dY, FB(ny));
        down(&r, y[k], dy, FB(n));
        CHECK_END(r);
    }
    CHECK_NEAR(Y[0], Y[1], ny, TOL);
    CHECK_NEAR(y[0], y[1], n, TOL);
}

static void test_dot(void)
{
    NEED_CUDA();
    size_t sizes[] = {0, 1, 5, 1000, 100003, 3000017};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        float *x = frand(n ? n : 1, -1, 1), *y = frand(n ? n : 1, -1, 1);
        float out[2][3];
        for (int k = 0; k < 2; k++) {
            test_poison(out[k], 3);
            brun r = brun_start(k);
            float *dx = up(&r, x, FB(n)), *dy = up(&r, y, FB(n)), *dout = up(&r, out[k], FB(3));
            CHECK_UP(r);
            r.be->dot(r.be, dout + 1, dx, dy, n);   /* one slot of a small array */
            down(&r, out[k], dout, FB(3));
            CHECK_END(r);
            CHECK(isnan(out[k][0]) && isnan(out[k][2]));
        }
        CHECKF(far_index(out[0] + 1, out[1] + 1, 1, TOL) < 0, "dot n %zu: cpu %.9g cuda %.9g", n,
               (double)out[0][1], (double)out[1][1]);
    }
}

/* ---- data ----------------------------------------------------------------------------------- */

static void test_take(void)
{
    NEED_CUDA();
    int B = 77, C = 13;
    int64_t ld = 1003;
    size_t ns = (size_t)C * ld, nd = (size_t)B * C;
    int32_t *si = halloc(ns * sizeof *si), *rows = halloc((size_t)B * sizeof *rows);
    float *sf = frand(ns, -5, 5);
    CHECK(si && rows && sf);
    for (size_t i = 0; i < ns; i++)
        si[i] = (int32_t)amtl_rng_below(&rng, 1u << 30);
    for (int b = 0; b < B; b++)
        rows[b] = (int32_t)amtl_rng_below(&rng, (uint64_t)ld);
    int32_t *di[2];
    float *df[2];
    for (int k = 0; k < 2; k++) {
        di[k] = halloc(nd * sizeof **di);
        df[k] = fnan(nd);
        CHECK(di[k] && df[k]);
        brun r = brun_start(k);
        int32_t *dsi = up(&r, si, ns * sizeof *si), *drows = up(&r, rows, (size_t)B * sizeof *rows);
        float *dsf = up(&r, sf, FB(ns));
        int32_t *ddi = up(&r, NULL, nd * sizeof *ddi);
        float *ddf = up(&r, df[k], FB(nd));
        /* the column tables, in the backend's memory, columns in reverse */
        int32_t *ti[13];
        float *tf[13];
        for (int c = 0; c < C; c++) {
            ti[c] = dsi + (size_t)(C - 1 - c) * ld;
            tf[c] = dsf + (size_t)(C - 1 - c) * ld;
        }
        int32_t **dti = up(&r, ti, sizeof ti);
        float **dtf = up(&r, tf, sizeof tf);
        CHECK_UP(r);
        r.be->take_i32(r.be, ddi, dti, drows, B, C);
        r.be->take_f32(r.be, ddf, dtf, drows, B, C);
        down(&r, di[k], ddi, nd * sizeof *ddi);
        down(&r, df[k], ddf, FB(nd));
        CHECK_END(r);
    }
    CHECK(memcmp(di[0], di[1], nd * sizeof **di) == 0);
    CHECK(memcmp(df[0], df[1], FB(nd)) == 0);
    for (int b = 0; b < B; b++)
        CHECK(df[0][(size_t)b * C + 5] == sf[(C - 1 - 5) * ld + rows[b]]);
}

static void test_embed(void)
{
    NEED_CUDA();
    enum { N = 5 };
    int B = 611, E = 7, V[N] = {3, 11, 1, 40, 6};
    int64_t tab[N], nw = 2;   /* a gap before the first table */
    for (int f = 0; f < N; f++) {
        tab[f] = nw;
        nw += (int64_t)V[f] * E + 1;   /* and a gap after each */
    }
    size_t ne = (size_t)B * N * E;
    int32_t *ids = halloc((size_t)B * N * sizeof *ids);
    CHECK(ids);
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++)
            ids[(size_t)b * N + f] = (int32_t)amtl_rng_below(&rng, (uint64_t)V[f]);
    float *w = frand((size_t)nw, -1, 1), *g0 = frand((size_t)nw, -1, 1),
          *dembs = frand(ne, -1, 1);
    float *embs[2], *g[2];
    for (int k = 0; k < 2; k++) {
        embs[k] = fnan(ne);
        g[k] = fcopy(g0, (size_t)nw);
        brun r = brun_start(k);
        float *dw = up(&r, w, FB(nw)), *dg = up(&r, g0, FB(nw));
        float *de = up(&r, embs[k], FB(ne)), *dd = up(&r, dembs, FB(ne));
        int64_t *dtab = up(&r, tab, sizeof tab);
        int32_t *dids = up(&r, ids, (size_t)B * N * sizeof *ids);
        CHECK_UP(r);
        r.be->embed_gather(r.be, de, dw, dtab, dids, B, N, E);
        r.be->embed_scatter(r.be, dg, dtab, dids, dd, B, N, E);
        down(&r, embs[k], de, FB(ne));
        down(&r, g[k], dg, FB(nw));
        CHECK_END(r);
    }
    CHECK(memcmp(embs[0], embs[1], FB(ne)) == 0);
    /* repeated ids: the atomics add in another order */
    CHECK_NEAR(g[0], g[1], (size_t)nw, TOL);
}

/* ---- elementwise ----------------------------------------------------------------------------- */

static void test_bias_act(void)
{
    NEED_CUDA();
    int rows = 45, C = 37, ldy = 40;
    size_t n = (size_t)rows * ldy;
    float *Y0 = frand(n, -1, 1), *b = frand((size_t)C, -0.5f, 0.5f);
    for (int relu = 0; relu < 2; relu++) {
        float *Y[2];
        for (int k = 0; k < 2; k++) {
            Y[k] = fcopy(Y0, n);
            brun r = brun_start(k);
            float *dY = up(&r, Y0, FB(n)), *db = up(&r, b, FB(C));
            CHECK_UP(r);
            r.be->bias_act(r.be, dY, ldy, db, rows, C, relu);
            down(&r, Y[k], dY, FB(n));
            CHECK_END(r);
        }
        CHECK_NEAR(Y[0], Y[1], n, TOL);
    }
}

static void test_colsum(void)
{
    NEED_CUDA();
    int shapes[][3] = {{1, 70, 75}, {1000, 70, 75}, {333, 1, 3}, {7, 33, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], C = shapes[s][1], ldx = shapes[s][2];
        size_t n = (size_t)rows * ldx;
        float *X = frand(n, -1, 1), *s0 = frand((size_t)C, -1, 1);
        for (int bi = 0; bi < 2; bi++) {
            float beta = bi ? 0.5f : 0.0f;
            float *out[2];
            for (int k = 0; k < 2; k++) {
                /* beta 0 does not read s */
                out[k] = beta == 0.0f ? fnan((size_t)C) : fcopy(s0, (size_t)C);
                brun r = brun_start(k);
                float *dX = up(&r, X, FB(n)), *ds = up(&r, out[k], FB(C));
                CHECK_UP(r);
                r.be->colsum(r.be, ds, beta, dX, ldx, rows, C);
                down(&r, out[k], ds, FB(C));
                CHECK_END(r);
            }
            CHECK_NEAR(out[0], out[1], (size_t)C, TOL);
        }
    }
}

static void test_relu_back(void)
{
    NEED_CUDA();
    int rows = 33, C = 19, ld = 23;
    size_t n = (size_t)rows * ld;
    float *Y = frand(n, -1, 1), *dY = frand(n, -1, 1), *dX0 = frand(n, -1, 1);
    for (int inplace = 0; inplace < 2; inplace++) {
        float *out[2];
        for (int k = 0; k < 2; k++) {
            out[k] = inplace ? fcopy(dY, n) : fpoison_window(dX0, n, rows, C, ld);
            brun r = brun_start(k);
            float *dy = up(&r, dY, FB(n)), *y = up(&r, Y, FB(n));
            float *dx = inplace ? dy : up(&r, out[k], FB(n));
            CHECK_UP(r);
            r.be->relu_back(r.be, dx, dy, y, ld, rows, C);
            down(&r, out[k], dx, FB(n));
            CHECK_END(r);
        }
        CHECK_NEAR(out[0], out[1], n, TOL);
    }
}

static void test_dropout(void)
{
    NEED_CUDA();
    size_t n = 100001;
    float ps[] = {0.0f, 0.3f, 0.9f};
    float *X = frand(n, -1, 1), *dY = frand(n, -1, 1), *dX0 = frand(n, -1, 1);
    for (size_t pi = 0; pi < sizeof ps / sizeof *ps; pi++) {
        float p = ps[pi];
        float *Y[2], *dX[2], *dXa[2], *dXi[2];
        uint8_t *mask[2];
        for (int k = 0; k < 2; k++) {
            Y[k] = fnan(n);
            dX[k] = fnan(n);
            dXa[k] = fcopy(dX0, n);
            dXi[k] = fcopy(dY, n);
            mask[k] = halloc(n);
            CHECK(mask[k]);
            memset(mask[k], 7, n);
            brun r = brun_start(k);
            float *dx = up(&r, X, FB(n)), *dy = up(&r, Y[k], FB(n));
            uint8_t *dm = up(&r, mask[k], n);
            float *ddY = up(&r, dY, FB(n)), *ddX = up(&r, dX[k], FB(n));
            float *ddXa = up(&r, dX0, FB(n)), *ddXi = up(&r, dY, FB(n));
            CHECK_UP(r);
            r.be->dropout(r.be, dy, dm, dx, n, p, 0x1234567890abcdefULL, 17);
            r.be->dropout_back(r.be, ddX, ddY, dm, n, p, 0);
            r.be->dropout_back(r.be, ddXa, ddY, dm, n, p, 1);
            r.be->dropout_back(r.be, ddXi, ddXi, dm, n, p, 0);   /* dX == dY */
            down(&r, Y[k], dy, FB(n));
            down(&r, mask[k], dm, n);
            down(&r, dX[k], ddX, FB(n));
            down(&r, dXa[k], ddXa, FB(n));
            down(&r, dXi[k], ddXi, FB(n));
            CHECK_END(r);
        }
        CHECKF(memcmp(mask[0], mask[1], n) == 0, "dropout masks differ at p %g", (double)p);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
            kept += mask[0][i];
        /* the keep rate is 1-p within 5 standard deviations */
        double sd = sqrt((double)n * p * (1.0 - p));
        CHECKF(fabs((double)kept - (double)n * (1.0 - p)) <= 5.0 * sd + 1.0, "kept %zu of %zu",
               kept, n);
        CHECK_NEAR(Y[0], Y[1], n, TOL);
        CHECK_NEAR(dX[0], dX[1], n, TOL);
        CHECK_NEAR(dXa[0], dXa[1], n, TOL);
        CHECK_NEAR(dXi[0], dXi[1], n, TOL);
    }
}

/* ---- BatchNorm1d -------------------------------------------------------------------------------- */

static void bn_train_case(int rows, int C, int ldx, int ldy)
{
    size_t nx = (size_t)rows * ldx, ny = (size_t)rows * ldy;
    float *X = frand(nx, -2, 3), *Y0 = frand(ny, -1, 1);
    float *gamma = frand((size_t)C, 0.5f, 1.5f), *beta = frand((size_t)C, -0.5f, 0.5f);
    float *rm0 = frand((size_t)C, -1, 1), *rv0 = frand((size_t)C, 0.5f, 2);
    float *Y[2], *mean[2], *rstd[2], *rm[2], *rv[2];
    for (int k = 0; k < 2; k++) {
        Y[k] = fpoison_window(Y0, ny, rows, C, ldy);
        mean[k] = fnan((size_t)C);
        rstd[k] = fnan((size_t)C);
        rm[k] = fcopy(rm0, (size_t)C);
        rv[k] = fcopy(rv0, (size_t)C);
        brun r = brun_start(k);
        float *dX = up(&r, X, FB(nx)), *dY = up(&r, Y[k], FB(ny));
        float *dmean = up(&r, mean[k], FB(C)), *drstd = up(&r, rstd[k], FB(C));
        float *drm = up(&r, rm0, FB(C)), *drv = up(&r, rv0, FB(C));
        float *dg = up(&r, gamma, FB(C)), *db = up(&r, beta, FB(C));
        CHECK_UP(r);
        r.be->bn_train(r.be, dY, ldy, dmean, drstd, drm, drv, dX, ldx, dg, db, rows, C, 0.1f, 1e-5f);
        down(&r, Y[k], dY, FB(ny));
        down(&r, mean[k], dmean, FB(C));
        down(&r, rstd[k], drstd, FB(C));
        down(&r, rm[k], drm, FB(C));
        down(&r, rv[k], drv, FB(C));
        CHECK_END(r);
    }
    CHECK_NEAR(Y[0], Y[1], ny, TOL);
    CHECK_NEAR(mean[0], mean[1], (size_t)C, TOL);
    CHECK_NEAR(rstd[0], rstd[1], (size_t)C, TOL);
    CHECK_NEAR(rm[0], rm[1], (size_t)C, TOL);
    CHECK_NEAR(rv[0], rv[1], (size_t)C, TOL);
}

static void test_bn_train(void)
{
    NEED_CUDA();
    bn_train_case(300, 45, 50, 47);
    bn_train_case(7, 33, 33, 40);
    bn_train_case(2, 1, 4, 3);
    bn_train_case(4099, 65, 65, 65);
}

static void test_bn_eval(void)
{
    NEED_CUDA();
    int shapes[][4] = {{300, 45, 50, 47}, {5, 33, 40, 33}, {2000, 3, 3, 7}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], C = shapes[s][1], ldx = shapes[s][2], ldy = shapes[s][3];
        size_t nx = (size_t)rows * ldx, ny = (size_t)rows * ldy;
        float *X = frand(nx, -2, 3), *Y0 = frand(ny, -1, 1);
        float *gamma = frand((size_t)C, 0.5f, 1.5f), *beta = frand((size_t)C, -0.5f, 0.5f);
        float *rm = frand((size_t)C, -1, 1), *rv = frand((size_t)C, 0.5f, 2);
        float *Y[2];
        for (int k = 0; k < 2; k++) {
            Y[k] = fpoison_window(Y0, ny, rows, C, ldy);
            brun r = brun_start(k);
            float *dX = up(&r, X, FB(nx)), *dY = up(&r, Y[k], FB(ny));
            float *dg = up(&r, gamma, FB(C)), *db = up(&r, beta, FB(C));
            float *drm = up(&r, rm, FB(C)), *drv = up(&r, rv, FB(C));
            CHECK_UP(r);
            r.be->bn_eval(r.be, dY, ldy, dX, ldx, dg, db, drm, drv, rows, C, 1e-5f);
            down(&r, Y[k], dY, FB(ny));
            CHECK_END(r);
        }
        CHECK_NEAR(Y[0], Y[1], ny, TOL);
    }
}

static void bn_back_case(int rows, int C, int lddx, int lddy, int ldx, int inplace)
{
    if (inplace)
        lddx = lddy;
    size_t ndx = (size_t)rows * lddx, ndy = (size_t)rows * lddy, nx = (size_t)rows * ldx;
    float *X = frand(nx, -2, 3), *dY = frand(ndy, -1, 1), *dX0 = frand(ndx, -1, 1);
    float *mean = frand((size_t)C, -0.5f, 1), *rstd = frand((size_t)C, 0.5f, 2);
    float *gamma = frand((size_t)C, 0.5f, 1.5f);
    float *dg0 = frand((size_t)C, -1, 1), *db0 = frand((size_t)C, -1, 1);
    float *dX[2], *dg[2], *db[2];
    for (int k = 0; k < 2; k++) {
        dX[k] = inplace ? fcopy(dY, ndy) : fpoison_window(dX0, ndx, rows, C, lddx);
        dg[k] = fcopy(dg0, (size_t)C);
        db[k] = fcopy(db0, (size_t)C);
        brun r = brun_start(k);
        float *ddY = up(&r, dY, FB(ndy)), *dx = up(&r, X, FB(nx));
        float *ddX = inplace ? ddY : up(&r, dX[k], FB(ndx));
        float *dmean = up(&r, mean, FB(C)), *drstd = up(&r, rstd, FB(C));
        float *dgam = up(&r, gamma, FB(C)), *ddg = up(&r, dg0, FB(C)), *ddb = up(&r, db0, FB(C));
        CHECK_UP(r);
        r.be->bn_back(r.be, ddX, lddx, ddg, ddb, ddY, lddy, dx, ldx, dmean, drstd, dgam, rows, C);
        down(&r, dX[k], ddX, FB(ndx));
        down(&r, dg[k], ddg, FB(C));
        down(&r, db[k], ddb, FB(C));
        CHECK_END(r);
    }
    CHECK_NEAR(dX[0], dX[1], ndx, TOL);
    CHECK_NEAR(dg[0], dg[1], (size_t)C, TOL);
    CHECK_NEAR(db[0], db[1], (size_t)C, TOL);
}

static void test_bn_back(void)
{
    NEED_CUDA();
    bn_back_case(300, 45, 47, 50, 49, 0);
    bn_back_case(300, 45, 47, 50, 49, 1);
    bn_back_case(7, 33, 33, 34, 35, 0);
    bn_back_case(3001, 65, 65, 65, 66, 0);
}

int main(void)
{
    cudatest_begin();
    RUN(test_memory);
    RUN(test_gemm);
    RUN(test_add_axpy);
    RUN(test_dot);
    RUN(test_take);
    RUN(test_embed);
    RUN(test_bias_act);
    RUN(test_colsum);
    RUN(test_relu_back);
    RUN(test_dropout);
    RUN(test_bn_train);
    RUN(test_bn_eval);
    RUN(test_bn_back);
    cudatest_end();
    TEST_MAIN_END();
}
