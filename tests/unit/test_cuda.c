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
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "testbackend.h"
#include "base/rng.h"
#include "test.h"

#define TOL 1e-4
#define TOL_ADAM 1e-6

static amtl_backend *cpu, *cuda;
static const char *why;
static amtl_rng rng;

/* ---- host memory: freed at the start of the next test --------------------------- */

static void **hmem;
static size_t hmem_n, hmem_cap;

static void *halloc(size_t bytes)
{
    if (hmem_n == hmem_cap) {
        size_t cap = hmem_cap ? 2 * hmem_cap : 256;
        void **p = realloc(hmem, cap * sizeof *p);
        if (!p)
            return NULL;
        hmem = p;
        hmem_cap = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (p)
        hmem[hmem_n++] = p;
    return p;
}

static void hfree_all(void)
{
    for (size_t i = 0; i < hmem_n; i++)
        free(hmem[i]);
    hmem_n = 0;
}

/* Every test starts here: skipped without CUDA, host memory of the last
 * test released. */
#define NEED_CUDA()                                                           \
    do {                                                                      \
        hfree_all();                                                          \
        if (!cuda)                                                            \
            SKIP(why);                                                        \
    } while (0)

/* uniform in [lo, hi), never exactly 0 */
static float *frand(size_t n, float lo, float hi)
{
    float *p = halloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) {
        float v = amtl_rng_uniform_range(&rng, lo, hi);
        p[i] = v != 0.0f ? v : 0.5f * hi;
    }
    return p;
}

static float *fcopy(const float *a, size_t n)
{
    float *p = halloc(n * sizeof *p);
    if (p)
        memcpy(p, a, n * sizeof *p);
    return p;
}

/* a copy of a with the window [rows, C] at leading dimension ld poisoned */
static float *fpoison_window(const float *a, size_t n, int rows, int C, int ld)
{
    float *p = fcopy(a, n);
    for (int r = 0; p && r < rows; r++)
        test_poison(p + (size_t)r * ld, (size_t)C);
    return p;
}

static float *fnan(size_t n)
{
    float *p = halloc(n * sizeof *p);
    if (p)
        test_poison(p, n);
    return p;
}

/* The first index where a and b differ by more than tol·max(1, |a|, |b|)
 * (NaN anywhere differs), or -1. */
static long far_index(const float *a, const float *b, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        double s = fmax(1.0, fmax(fabs(x), fabs(y)));
        if (!(fabs(x - y) <= tol * s))
            return (long)i;
    }
    return -1;
}

/* cpu and gpu (host copies of the two backends' results) agree */
#define CHECK_NEAR(cpu_, gpu_, n, tol)                                        \
    do {                                                                      \
        long i_ = far_index((cpu_), (gpu_), (n), (tol));                      \
        CHECKF(i_ < 0, "%s[%ld]: cpu %.9g, cuda %.9g (tol %g)", #cpu_, i_,    \
               i_ < 0 ? 0.0 : (double)(cpu_)[i_],                             \
               i_ < 0 ? 0.0 : (double)(gpu_)[i_], (double)(tol));             \
    } while (0)

/* ---- one run of a test body on one backend --------------------------------------- */

#define BRUN_MAX 32

/* The backend memory of one run, freed by brun_end */
typedef struct {
    amtl_backend *be;
    void *p[BRUN_MAX];
    int n, fail;
} brun;

static brun brun_start(int k)
{
    brun r;
    memset(&r, 0, sizeof r);
    r.be = k ? cuda : cpu;
    return r;
}

/* A backend array of `bytes`, a copy of host when host is not NULL */
static void *up(brun *r, const void *host, size_t bytes)
{
    void *d = r->n < BRUN_MAX ? r->be->alloc(r->be, bytes) : NULL;
    if (!d) {
        r->fail = 1;
        return NULL;
    }
    r->p[r->n++] = d;
    if (host && r->be->put(r->be, d, host, bytes))
        r->fail = 1;
    return d;
}

static void down(brun *r, void *host, const void *d, size_t bytes)
{
    if (!d || r->be->get(r->be, host, d, bytes))
        r->fail = 1;
}

/* 0, or -1 when a copy failed or the backend has an error; frees the run's
 * memory either way */
static int brun_end(brun *r)
{
    if (r->be->sync(r->be) || r->be->last_error(r->be))
        r->fail = 1;
    for (int i = 0; i < r->n; i++)
        r->be->free(r->be, r->p[i]);
    r->n = 0;
    return r->fail ? -1 : 0;
}

#define CHECK_UP(r) CHECKF(!(r).fail, "%s backend: cannot allocate or copy", (r).be->name)
#define CHECK_END(r)                                                          \
    CHECKF(brun_end(&(r)) == 0, "%s backend: %s", (r).be->name,               \
           (r).be->last_error((r).be) ? (r).be->last_error((r).be) : "a copy failed")

#define FB(n) ((size_t)(n) * sizeof(float))

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
        CHECK_UP(r);
        r.be->take_i32(r.be, ddi, dsi, ld, drows, B, C);
        r.be->take_f32(r.be, ddf, dsf, ld, drows, B, C);
        down(&r, di[k], ddi, nd * sizeof *ddi);
        down(&r, df[k], ddf, FB(nd));
        CHECK_END(r);
    }
    CHECK(memcmp(di[0], di[1], nd * sizeof **di) == 0);
    CHECK(memcmp(df[0], df[1], FB(nd)) == 0);
    for (int b = 0; b < B; b++)
        CHECK(df[0][(size_t)b * C + 5] == sf[5 * ld + rows[b]]);
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
    amtl_rng_seed(&rng, 20240531);
    cpu = test_cpu_backend();
    cuda = test_cuda_backend(&why);
    if (!cuda && !why)
        why = "no CUDA backend";
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
    RUN(test_softmax);
    RUN(test_mixfeature);
    RUN(test_expert_mix);
    RUN(test_bce);
    RUN(test_adam);
    hfree_all();
    free(hmem);
    TEST_MAIN_END();
}
