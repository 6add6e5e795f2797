/* test_backend.c — the CPU backend (kernels/backend.h) against plain
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
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "testbackend.h"
#include "model/layers.h"
#include "train/optim.h"
#include "base/rng.h"
#include "test.h"
#include "testutil.h"

#define TOL_FWD 1e-5
#define SENTINEL 12345.0f

static amtl_backend *cpu_;

static void fill_value(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* A [rows, ld] float matrix whose padding is pad (NaN for inputs, SENTINEL
 * for outputs). */
static float *fmat(int rows, int ld, float pad)
{
    float *m = fv((size_t)rows * ld);
    fill_value(m, (size_t)rows * ld, pad);
    return m;
}

/* The first C columns of d [rows, ld] from packed s [rows, C]. */
static void to_ld(float *d, int ld, const double *s, int rows, int C)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++)
            d[(size_t)r * ld + c] = (float)s[(size_t)r * C + c];
}

/* Packed [rows, C] double copy of the first C columns of s [rows, ld]. */
static double *from_ld(const float *s, int ld, int rows, int C)
{
    double *d = dv((size_t)rows * C);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++)
            d[(size_t)r * C + c] = s[(size_t)r * ld + c];
    return d;
}

/* Σ R ⊙ Y over the first C columns of Y [rows, ld], R packed [rows, C] */
static double dotR_ld(const float *Y, int ld, const double *R, int rows, int C)
{
    double s = 0.0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++)
            s += (double)Y[(size_t)r * ld + c] * R[(size_t)r * C + c];
    return s;
}

/* As close_fd over the first C columns of a [rows, lda], b packed [rows, C]. */
static int close_ld(const float *a, int lda, const double *b, int rows, int C, double tol,
                    const char *what)
{
    for (int r = 0; r < rows; r++)
        if (!close_fd(a + (size_t)r * lda, b + (size_t)r * C, (size_t)C, tol, what)) {
            printf("# (row %d)\n", r);
            return 0;
        }
    return 1;
}

/* The padding columns C..ld of a [rows, ld] still hold SENTINEL. */
static int pad_intact(const float *a, int ld, int rows, int C)
{
    for (int r = 0; r < rows; r++)
        for (int c = C; c < ld; c++)
            if (a[(size_t)r * ld + c] != SENTINEL) {
                printf("# padding (%d,%d) written: %g\n", r, c, (double)a[(size_t)r * ld + c]);
                return 0;
            }
    return 1;
}

/* ---- the finite-difference driver --------------------------------------------- */

/* ================================================================================
 * memory, errors, the table
 * ================================================================================ */

static void test_memory(void)
{
    amtl_backend *b = cpu_;
    CHECK(b && strcmp(b->name, "cpu") == 0);
    CHECK(b->alloc && b->free && b->put && b->get && b->zero && b->sync && b->last_error);
    CHECK(b->gemm && b->add && b->axpy && b->dot && b->take_i32 && b->take_f32);
    CHECK(b->embed_gather && b->embed_scatter && b->bias_act && b->colsum && b->relu_back);
    CHECK(b->dropout && b->dropout_back && b->bn_train && b->bn_eval && b->bn_back);
    CHECK(b->softmax && b->softmax_back && b->mixfeature && b->mixfeature_back);
    CHECK(b->expert_mix && b->expert_mix_back && b->bce && b->adam);
    CHECK(b->last_error(b) == NULL);

    void *z = b->alloc(b, 0);
    CHECK(z != NULL);
    b->free(b, z);
    size_t n = 1001;
    float *host = fv(n), *back = fv(n);
    fillf(host, n, -1, 1);
    float *d = b->alloc(b, n * sizeof(float));
    CHECK(d != NULL);
    CHECK(b->put(b, d, host, n * sizeof(float)) == 0);
    test_poison(back, n);
    CHECK(b->get(b, back, d, n * sizeof(float)) == 0);
    CHECK(memcmp(back, host, n * sizeof(float)) == 0);
    CHECK(b->zero(b, d + 1, (n - 2) * sizeof(float)) == 0);
    CHECK(b->get(b, back, d, n * sizeof(float)) == 0);
    int ok = back[0] == host[0] && back[n - 1] == host[n - 1];
    for (size_t i = 1; i + 1 < n; i++)
        ok &= back[i] == 0.0f;
    b->free(b, d);
    CHECK(ok);
    CHECK(b->put(b, host, host, 0) == 0 && b->get(b, host, host, 0) == 0 && b->zero(b, host, 0) == 0);
    CHECK(b->sync(b) == 0);
    CHECK(b->last_error(b) == NULL);
    b->free(b, NULL);

    /* an allocation that cannot succeed: NULL, and the error is kept */
    CHECK(b->alloc(b, SIZE_MAX) == NULL);
    const char *e = b->last_error(b);
    CHECKF(e && strstr(e, "cannot allocate"), "%s", e ? e : "(null)");
    CHECK(b->sync(b) == 0);
}

static void test_cuda_absent(void)
{
#ifdef AMTL_HAVE_CUDA
    SKIP("this build has the CUDA backend");
#else
    const char *why = NULL;
    CHECK(test_cuda_backend(&why) == NULL);
    CHECKF(why && strstr(why, "no CUDA backend") && strstr(why, "nvcc"), "%s",
           why ? why : "(null)");
    CHECK(test_cuda_backend(NULL) == NULL);
#endif
}

/* ================================================================================
 * matrices
 * ================================================================================ */

static void test_gemm(void)
{
    amtl_rng_seed(&rng_, 301);
    int shapes[][3] = {{37, 13, 11}, {1, 13, 37}, {13, 1, 5}, {23, 29, 1}};
    for (int sh = 0; sh < 4; sh++) {
        for (int tA = 0; tA < 2; tA++) {
            for (int tB = 0; tB < 2; tB++) {
                int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
                int lda = (tA ? M : K) + irand(1, 5);
                int ldb = (tB ? K : N) + irand(1, 5);
                int ldc = N + irand(1, 5);
                int ra = tA ? K : M, rb = tB ? N : K;
                size_t na = (size_t)ra * lda, nb = (size_t)rb * ldb, nc = (size_t)M * ldc;
                float *A = fv(na), *Bm = fv(nb), *C = fmat(M, ldc, SENTINEL);
                fillf(A, na, -1, 1);
                fillf(Bm, nb, -1, 1);
                for (int i = 0; i < M; i++)
                    fillf(C + (size_t)i * ldc, (size_t)N, -1, 1);
                float *C0 = fcopy(C, nc);
                float alpha = 0.75f, beta = -0.5f;
                cpu_->gemm(cpu_, tA, tB, M, N, K, alpha, A, lda, Bm, ldb, beta, C, ldc);
                CHECK(pad_intact(C, ldc, M, N));
                for (int i = 0; i < M; i++) {
                    for (int j = 0; j < N; j++) {
                        double s = 0.0;
                        for (int k = 0; k < K; k++) {
                            double a = tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                            double b = tB ? Bm[(size_t)j * ldb + k] : Bm[(size_t)k * ldb + j];
                            s += a * b;
                        }
                        size_t ic = (size_t)i * ldc + j;
                        double want = alpha * s + beta * (double)C0[ic];
                        CHECKF(fabs(C[ic] - want) <= 1e-5 * fmax(1.0, fabs(want)),
                               "tA %d tB %d M %d N %d K %d (%d,%d): %g vs %g", tA, tB, M, N,
                               K, i, j, (double)C[ic], want);
                    }
                }
            }
        }
    }
}

static void test_add_axpy_dot(void)
{
    amtl_rng_seed(&rng_, 302);
    int rows = 37, C = 13, ldy = 16, ldx = 15;
    float *Y = fmat(rows, ldy, SENTINEL), *X = fmat(rows, ldx, NAN);
    double *xd = dv((size_t)rows * C), *yd = dv((size_t)rows * C);
    fill(xd, (size_t)rows * C, -1, 1);
    fill(yd, (size_t)rows * C, -1, 1);
    to_ld(X, ldx, xd, rows, C);
    to_ld(Y, ldy, yd, rows, C);
    double *want = dv((size_t)rows * C);
    for (int i = 0; i < rows * C; i++)
        want[i] = (double)(float)yd[i] + (double)(float)xd[i];
    cpu_->add(cpu_, Y, ldy, X, ldx, rows, C);
    /* one float addition per element: correctly rounded */
    CHECK(close_ld(Y, ldy, want, rows, C, 1.2e-7, "add"));
    CHECK(pad_intact(Y, ldy, rows, C));

    size_t n = 1003;
    float *x = fv(n), *y = fv(n);
    fillf(x, n, -1, 1);
    fillf(y, n, -1, 1);
    double *w = dv(n);
    for (size_t i = 0; i < n; i++)
        w[i] = (double)y[i] - 0.375 * (double)x[i];
    cpu_->axpy(cpu_, y, x, -0.375f, n);
    CHECK(close_fd(y, w, n, 1.2e-7, "axpy"));

    /* the dot in double: its error is the float32 rounding of the result */
    for (size_t m = 0; m <= n; m += (m < 20 ? 1 : 331)) {
        double s = 0.0;
        for (size_t i = 0; i < m; i++)
            s += (double)x[i] * y[i];
        float out[2] = {NAN, SENTINEL};
        cpu_->dot(cpu_, out, x, y, m);
        CHECKF(fabs(out[0] - s) <= 1e-7 * fmax(1.0, fabs(s)), "n %zu: %.9g vs %.9g", m,
               (double)out[0], s);
        CHECK(out[1] == SENTINEL);
    }
}

/* ================================================================================
 * data
 * ================================================================================ */

static void test_take(void)
{
    amtl_rng_seed(&rng_, 303);
    int nrows = 50, ld = 57, B = 37, C = 13;
    int32_t *si = talloc((size_t)C * ld * sizeof(int32_t));
    float *sf = fv((size_t)C * ld);
    for (size_t i = 0; i < (size_t)C * ld; i++) {
        si[i] = (int32_t)amtl_rng_below(&rng_, 1000000) - 500000;
        sf[i] = (float)urand(-1, 1);
    }
    int32_t *rows = talloc((size_t)B * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        rows[b] = b % 9 == 4 ? rows[b - 1] : irand(0, nrows - 1);   /* some repeats */
    rows[B - 1] = nrows - 1;
    int32_t *di = talloc((size_t)B * C * sizeof(int32_t) + 4);
    float *df = fv((size_t)B * C + 1);
    memset(di, 0x7f, (size_t)B * C * sizeof(int32_t) + 4);
    test_poison(df, (size_t)B * C);
    df[(size_t)B * C] = SENTINEL;
    cpu_->take_i32(cpu_, di, si, ld, rows, B, C);
    cpu_->take_f32(cpu_, df, sf, ld, rows, B, C);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            CHECK(di[(size_t)b * C + c] == si[(size_t)c * ld + rows[b]]);
            CHECK(df[(size_t)b * C + c] == sf[(size_t)c * ld + rows[b]]);
        }
    CHECK(di[(size_t)B * C] == 0x7f7f7f7f && df[(size_t)B * C] == SENTINEL);
}

static void test_embed(void)
{
    amtl_rng_seed(&rng_, 304);
    enum { N = 5 };
    int B = 37, E = 7, V[N] = {3, 11, 1, 6, 20};
    int64_t tab[N];
    int64_t off = 5;   /* the tables sit in a larger buffer, with gaps */
    for (int f = 0; f < N; f++) {
        tab[f] = off;
        off += (int64_t)V[f] * E + 2;
    }
    size_t nw = (size_t)off;
    float *w = fv(nw);
    fillf(w, nw, -1, 1);
    int32_t *ids = talloc((size_t)B * N * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++)
            ids[b * N + f] = b < 4 ? 0 : irand(0, V[f] - 1);   /* id 0 repeated */
    size_t ne = (size_t)B * N * E;
    float *embs = fv(ne);
    test_poison(embs, ne);
    cpu_->embed_gather(cpu_, embs, w, tab, ids, B, N, E);
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++)
            for (int e = 0; e < E; e++)
                CHECK(embs[((size_t)b * N + f) * E + e] ==
                      w[tab[f] + (int64_t)ids[b * N + f] * E + e]);

    float *dembs = fv(ne), *g = fv(nw);
    fillf(dembs, ne, -1, 1);
    fillf(g, nw, -1, 1);
    double *want = dcopyf(g, nw);
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++)
            for (int e = 0; e < E; e++)
                want[tab[f] + (int64_t)ids[b * N + f] * E + e] +=
                    dembs[((size_t)b * N + f) * E + e];
    float *g0 = fcopy(g, nw);
    cpu_->embed_scatter(cpu_, g, tab, ids, dembs, B, N, E);
    /* repeated ids sum up to 37 float terms: ~1e-6 of rounding */
    CHECK(close_fd(g, want, nw, 1e-5, "embed_scatter"));
    /* rows no id selects (and the gaps) are untouched */
    for (size_t i = 0; i < nw; i++)
        if (want[i] == (double)g0[i])
            CHECK(g[i] == g0[i]);
}

/* ================================================================================
 * bias, ReLU, column sums
 * ================================================================================ */

typedef struct {
    int B, C, ld;
    double *x, *b, *R;
    float *Y, *bf;
} relu_ctx;

static double relu_loss(void *p, int lib)
{
    relu_ctx *c = p;
    if (lib) {
        to_ld(c->Y, c->ld, c->x, c->B, c->C);
        tof(c->bf, c->b, (size_t)c->C);
        cpu_->bias_act(cpu_, c->Y, c->ld, c->bf, c->B, c->C, 1);
        return dotR_ld(c->Y, c->ld, c->R, c->B, c->C);
    }
    double s = 0.0;
    for (int r = 0; r < c->B; r++)
        for (int k = 0; k < c->C; k++) {
            double v = c->x[(size_t)r * c->C + k] + c->b[k];
            s += (v > 0.0 ? v : 0.0) * c->R[(size_t)r * c->C + k];
        }
    return s;
}

static void test_bias_relu_colsum_grad(void)
{
    amtl_rng_seed(&rng_, 305);
    relu_ctx c = {.B = 37, .C = 13, .ld = 17};
    size_t n = (size_t)c.B * c.C;
    c.x = dv(n), c.b = dv((size_t)c.C), c.R = dv(n);
    fill(c.b, (size_t)c.C, -0.5, 0.5);
    fill(c.R, n, -1, 1);
    /* x + b at least 0.05 from the kink, far more than either h */
    fill_away(c.x, n, 0.05);
    for (int r = 0; r < c.B; r++)
        for (int k = 0; k < c.C; k++)
            c.x[(size_t)r * c.C + k] -= c.b[k];
    c.Y = fmat(c.B, c.ld, SENTINEL);
    c.bf = fv((size_t)c.C);

    /* identity: Y + b, each element one float addition */
    to_ld(c.Y, c.ld, c.x, c.B, c.C);
    tof(c.bf, c.b, (size_t)c.C);
    double *want = dv(n);
    for (int r = 0; r < c.B; r++)
        for (int k = 0; k < c.C; k++)
            want[(size_t)r * c.C + k] = (double)c.Y[(size_t)r * c.ld + k] + c.bf[k];
    cpu_->bias_act(cpu_, c.Y, c.ld, c.bf, c.B, c.C, 0);
    CHECK(close_ld(c.Y, c.ld, want, c.B, c.C, 1.2e-7, "bias"));
    CHECK(pad_intact(c.Y, c.ld, c.B, c.C));

    /* ReLU forward */
    double lib = relu_loss(&c, 1), ref = relu_loss(&c, 0);
    CHECK_CLOSE(lib, ref, TOL_FWD);
    CHECK(pad_intact(c.Y, c.ld, c.B, c.C));
    for (int r = 0; r < c.B; r++)
        for (int k = 0; k < c.C; k++) {
            double v = c.x[(size_t)r * c.C + k] + c.b[k];
            want[(size_t)r * c.C + k] = v > 0 ? v : 0;
        }
    CHECK(close_ld(c.Y, c.ld, want, c.B, c.C, TOL_FWD, "relu"));

    /* backward: dX = relu_back(R), db = colsum(dX) with beta 0 over NaN */
    float *dY = fmat(c.B, c.ld, NAN), *dX = fmat(c.B, c.ld, SENTINEL);
    to_ld(dY, c.ld, c.R, c.B, c.C);
    for (int r = 0; r < c.B; r++)
        test_poison(dX + (size_t)r * c.ld, (size_t)c.C);
    cpu_->relu_back(cpu_, dX, dY, c.Y, c.ld, c.B, c.C);
    CHECK(pad_intact(dX, c.ld, c.B, c.C));
    float db[14];
    test_poison(db, 13);
    db[13] = SENTINEL;
    cpu_->colsum(cpu_, db, 0.0f, dX, c.ld, c.B, c.C);
    CHECK(db[13] == SENTINEL);
    fd_var vs[2] = {
        {"x", c.x, n, from_ld(dX, c.ld, c.B, c.C)},
        {"b", c.b, (size_t)c.C, dcopyf(db, (size_t)c.C)},
    };
    CHECK(fd_check("bias_relu", relu_loss, &c, vs, 2) == 0);
    relu_loss(&c, 1);   /* the forward of the unperturbed x again */

    /* in place (dX == dY) gives the same */
    float *dZ = fcopy(dY, (size_t)c.B * c.ld);
    cpu_->relu_back(cpu_, dZ, dZ, c.Y, c.ld, c.B, c.C);
    for (int r = 0; r < c.B; r++)
        CHECK(memcmp(dZ + (size_t)r * c.ld, dX + (size_t)r * c.ld, c.C * sizeof(float)) == 0);

    /* colsum with beta: s = beta·s + Σ, in double */
    float s[13];
    fillf(s, 13, -1, 1);
    double ws[13];
    for (int k = 0; k < c.C; k++) {
        ws[k] = 0.5 * s[k];
        for (int r = 0; r < c.B; r++)
            ws[k] += dX[(size_t)r * c.ld + k];
    }
    cpu_->colsum(cpu_, s, 0.5f, dX, c.ld, c.B, c.C);
    CHECK(close_fd(s, ws, 13, 1.2e-7, "colsum beta"));
}

/* ================================================================================
 * dropout
 * ================================================================================ */

typedef struct {
    size_t n;
    float p;
    uint64_t seed, ctr;
    double *x, *R;
    float *xf, *Y;
    uint8_t *mask;
} drop_ctx;

static int ctr_kept(const drop_ctx *c, size_t i)
{
    return amtl_ctr_uniform(c->seed, c->ctr, i) >= c->p;
}

static double drop_loss(void *p, int lib)
{
    drop_ctx *c = p;
    if (lib) {
        tof(c->xf, c->x, c->n);
        test_poison(c->Y, c->n);
        cpu_->dropout(cpu_, c->Y, c->mask, c->xf, c->n, c->p, c->seed, c->ctr);
        double s = 0.0;
        for (size_t i = 0; i < c->n; i++)
            s += (double)c->Y[i] * c->R[i];
        return s;
    }
    double s = 0.0;
    for (size_t i = 0; i < c->n; i++)
        if (ctr_kept(c, i))
            s += c->x[i] / (1.0 - c->p) * c->R[i];
    return s;
}

static void test_dropout(void)
{
    amtl_rng_seed(&rng_, 306);
    size_t n = 200003;
    float *x = fv(n), *Y = fv(n);
    uint8_t *mask = talloc(n), *mask2 = talloc(n);
    fillf(x, n, -1, 1);
    float ps[] = {0.2f, 0.5f, 0.9f};
    for (int t = 0; t < 3; t++) {
        float p = ps[t];
        uint64_t seed = 0x1234567 + (uint64_t)t, ctr = 41;
        test_poison(Y, n);
        memset(mask, 0xAA, n);
        cpu_->dropout(cpu_, Y, mask, x, n, p, seed, ctr);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            int k = amtl_ctr_uniform(seed, ctr, i) >= p;
            CHECKF(mask[i] == k, "p %g element %zu", (double)p, i);
            if (k) {
                kept++;
                CHECK_CLOSE(Y[i], (double)x[i] / (1.0 - p), 1.2e-7);
            } else {
                CHECK(Y[i] == 0.0f);
            }
        }
        /* binomial: within 4 standard deviations of n(1-p) */
        double mu = n * (1.0 - p), sd = sqrt(n * p * (1.0 - p));
        CHECKF(fabs((double)kept - mu) <= 4 * sd, "p %g kept %zu of %zu", (double)p, kept, n);
        /* another draw (ctr) or seed gives another mask */
        cpu_->dropout(cpu_, Y, mask2, x, n, p, seed, ctr + 1);
        CHECK(memcmp(mask, mask2, n) != 0);
        cpu_->dropout(cpu_, Y, mask2, x, n, p, seed + 1, ctr);
        CHECK(memcmp(mask, mask2, n) != 0);
        cpu_->dropout(cpu_, Y, mask2, x, n, p, seed, ctr);
        CHECK(memcmp(mask, mask2, n) == 0);
    }
    /* p = 0 keeps everything unchanged */
    test_poison(Y, n);
    cpu_->dropout(cpu_, Y, mask, x, n, 0.0f, 7, 0);
    for (size_t i = 0; i < n; i++)
        CHECK(mask[i] == 1 && Y[i] == x[i]);
}

static void test_dropout_grad(void)
{
    amtl_rng_seed(&rng_, 307);
    drop_ctx c = {.n = 37 * 13, .p = 0.3f, .seed = 99, .ctr = 5};
    c.x = dv(c.n), c.R = dv(c.n), c.xf = fv(c.n), c.Y = fv(c.n), c.mask = talloc(c.n);
    fill(c.x, c.n, -1, 1);
    fill(c.R, c.n, -1, 1);
    CHECK_CLOSE(drop_loss(&c, 1), drop_loss(&c, 0), TOL_FWD);
    float *dY = fv(c.n), *dX = fv(c.n);
    tof(dY, c.R, c.n);
    test_poison(dX, c.n);
    cpu_->dropout_back(cpu_, dX, dY, c.mask, c.n, c.p, 0);
    fd_var vs[1] = {{"x", c.x, c.n, dcopyf(dX, c.n)}};
    CHECK(fd_check("dropout", drop_loss, &c, vs, 1) == 0);
    /* add: dX += ; in place (dX == dY) */
    float *acc = fv(c.n);
    fillf(acc, c.n, -1, 1);
    float *acc0 = fcopy(acc, c.n);
    cpu_->dropout_back(cpu_, acc, dY, c.mask, c.n, c.p, 1);
    for (size_t i = 0; i < c.n; i++)
        CHECK(acc[i] == acc0[i] + dX[i]);
    float *dZ = fcopy(dY, c.n);
    cpu_->dropout_back(cpu_, dZ, dZ, c.mask, c.n, c.p, 0);
    CHECK(memcmp(dZ, dX, c.n * sizeof(float)) == 0);
}

/* ================================================================================
 * BatchNorm1d
 * ================================================================================ */

#define BN_EPS 1e-5f
#define BN_MOM 0.1f

typedef struct {
    int B, C, ldx, ldy;
    double *x, *gamma, *beta, *R, *rm0, *rv0;
    double *yd, *meand, *vard;
    float *xf, *gf, *bf, *Y, *mean, *rstd, *rm, *rv;
} bn_ctx;

/* var: the biased batch variance */
static void ref_bn_train(double *y, double *mean, double *var, const double *x,
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
            y[(size_t)r * C + c] =
                (x[(size_t)r * C + c] - m) / sqrt(v + (double)BN_EPS) * gamma[c] + beta[c];
    }
}

static double bn_loss(void *p, int lib)
{
    bn_ctx *c = p;
    if (lib) {
        to_ld(c->xf, c->ldx, c->x, c->B, c->C);
        tof(c->gf, c->gamma, (size_t)c->C);
        tof(c->bf, c->beta, (size_t)c->C);
        tof(c->rm, c->rm0, (size_t)c->C);
        tof(c->rv, c->rv0, (size_t)c->C);
        for (int r = 0; r < c->B; r++)
            test_poison(c->Y + (size_t)r * c->ldy, (size_t)c->C);
        test_poison(c->mean, (size_t)c->C);
        test_poison(c->rstd, (size_t)c->C);
        cpu_->bn_train(cpu_, c->Y, c->ldy, c->mean, c->rstd, c->rm, c->rv, c->xf, c->ldx, c->gf, c->bf,
                       c->B, c->C, BN_MOM, BN_EPS);
        return dotR_ld(c->Y, c->ldy, c->R, c->B, c->C);
    }
    ref_bn_train(c->yd, c->meand, c->vard, c->x, c->gamma, c->beta, c->B, c->C);
    return dotRd(c->yd, c->R, (size_t)c->B * c->C);
}

static void test_bn_train_grad(void)
{
    amtl_rng_seed(&rng_, 308);
    bn_ctx c = {.B = 37, .C = 13, .ldx = 16, .ldy = 15};
    int B = c.B, C = c.C, lddy = 17, lddx = 14;
    size_t n = (size_t)B * C;
    c.x = dv(n), c.R = dv(n), c.yd = dv(n);
    c.gamma = dv((size_t)C), c.beta = dv((size_t)C), c.rm0 = dv((size_t)C);
    c.rv0 = dv((size_t)C), c.meand = dv((size_t)C), c.vard = dv((size_t)C);
    fill(c.x, n, -1, 1);
    for (int r = 0; r < B; r++)   /* channels of different means and scales */
        for (int k = 0; k < C; k++)
            c.x[(size_t)r * C + k] = c.x[(size_t)r * C + k] * (0.5 + 0.2 * k) + 0.1 * k;
    fill(c.R, n, -1, 1);
    fill(c.gamma, (size_t)C, 0.5, 1.5);
    fill(c.beta, (size_t)C, -0.5, 0.5);
    fill(c.rm0, (size_t)C, -0.5, 0.5);
    fill(c.rv0, (size_t)C, 0.5, 1.5);
    c.xf = fmat(B, c.ldx, NAN), c.Y = fmat(B, c.ldy, SENTINEL);
    c.gf = fv((size_t)C), c.bf = fv((size_t)C), c.mean = fv((size_t)C);
    c.rstd = fv((size_t)C), c.rm = fv((size_t)C), c.rv = fv((size_t)C);

    bn_loss(&c, 1);
    bn_loss(&c, 0);
    CHECK(close_ld(c.Y, c.ldy, c.yd, B, C, TOL_FWD, "bn Y"));
    CHECK(pad_intact(c.Y, c.ldy, B, C));
    CHECK(close_fd(c.mean, c.meand, (size_t)C, TOL_FWD, "bn mean"));
    double want[13];
    for (int k = 0; k < C; k++)
        want[k] = 1.0 / sqrt(c.vard[k] + (double)BN_EPS);
    CHECK(close_fd(c.rstd, want, (size_t)C, TOL_FWD, "bn rstd"));
    /* running statistics: momentum 0.1, the variance unbiased */
    for (int k = 0; k < C; k++)
        want[k] = 0.9 * c.rm0[k] + 0.1 * c.meand[k];
    CHECK(close_fd(c.rm, want, (size_t)C, TOL_FWD, "running mean"));
    for (int k = 0; k < C; k++)
        want[k] = 0.9 * c.rv0[k] + 0.1 * c.vard[k] * B / (B - 1.0);
    CHECK(close_fd(c.rv, want, (size_t)C, TOL_FWD, "running var"));

    /* the same operations as amtl_batchnorm_forward_train: equal bit for bit */
    float *xp = fv(n), *yp = fv(n), *mp = fv((size_t)C), *sp = fv((size_t)C);
    float *rmp = fv((size_t)C), *rvp = fv((size_t)C);
    tof(xp, c.x, n);
    tof(rmp, c.rm0, (size_t)C);
    tof(rvp, c.rv0, (size_t)C);
    amtl_batchnorm_forward_train(yp, mp, sp, rmp, rvp, xp, c.gf, c.bf, B, C, BN_MOM, BN_EPS);
    for (int r = 0; r < B; r++)
        CHECK(memcmp(yp + (size_t)r * C, c.Y + (size_t)r * c.ldy, C * sizeof(float)) == 0);
    CHECK(memcmp(mp, c.mean, C * sizeof(float)) == 0);
    CHECK(memcmp(sp, c.rstd, C * sizeof(float)) == 0);
    CHECK(memcmp(rmp, c.rm, C * sizeof(float)) == 0);
    CHECK(memcmp(rvp, c.rv, C * sizeof(float)) == 0);

    /* backward */
    float *dY = fmat(B, lddy, NAN), *dX = fmat(B, lddx, SENTINEL);
    to_ld(dY, lddy, c.R, B, C);
    for (int r = 0; r < B; r++)
        test_poison(dX + (size_t)r * lddx, (size_t)C);
    float *dg = fv((size_t)C), *db = fv((size_t)C);
    fillf(dg, (size_t)C, -1, 1);
    fillf(db, (size_t)C, -1, 1);
    float *dg0 = fcopy(dg, (size_t)C), *db0 = fcopy(db, (size_t)C);
    cpu_->bn_back(cpu_, dX, lddx, dg, db, dY, lddy, c.xf, c.ldx, c.mean, c.rstd, c.gf, B, C);
    CHECK(pad_intact(dX, lddx, B, C));
    fd_var vs[3] = {
        {"x", c.x, n, from_ld(dX, lddx, B, C)},
        {"gamma", c.gamma, (size_t)C, ddiff(dg, dg0, (size_t)C)},
        {"beta", c.beta, (size_t)C, ddiff(db, db0, (size_t)C)},
    };
    CHECK(fd_check("bn", bn_loss, &c, vs, 3) == 0);

    /* bit for bit as amtl_batchnorm_backward (the forward's state restored) */
    bn_loss(&c, 1);
    float *dyp = fv(n), *dxp = fv(n), *dgp = fcopy(dg0, (size_t)C), *dbp = fcopy(db0, (size_t)C);
    tof(dyp, c.R, n);
    amtl_batchnorm_backward(dxp, dgp, dbp, dyp, xp, c.mean, c.rstd, c.gf, B, C);
    for (int r = 0; r < B; r++)
        CHECK(memcmp(dxp + (size_t)r * C, dX + (size_t)r * lddx, C * sizeof(float)) == 0);
    CHECK(memcmp(dgp, dg, C * sizeof(float)) == 0 && memcmp(dbp, db, C * sizeof(float)) == 0);

    /* in place: dX == dY at one leading dimension */
    float *dZ = fcopy(dY, (size_t)B * lddy);
    cpu_->bn_back(cpu_, dZ, lddy, dg, db, dZ, lddy, c.xf, c.ldx, c.mean, c.rstd, c.gf, B, C);
    for (int r = 0; r < B; r++)
        CHECK(memcmp(dZ + (size_t)r * lddy, dX + (size_t)r * lddx, C * sizeof(float)) == 0);
}

static void test_bn_eval(void)
{
    amtl_rng_seed(&rng_, 309);
    int B = 37, C = 13, ldx = 19, ldy = 14;
    size_t n = (size_t)B * C;
    double *x = dv(n), g[13], b[13], rm[13], rv[13];
    fill(x, n, -2, 2);
    fill(g, 13, 0.5, 1.5);
    fill(b, 13, -0.5, 0.5);
    fill(rm, 13, -0.5, 0.5);
    fill(rv, 13, 0.2, 2.0);
    float *X = fmat(B, ldx, NAN), *Y = fmat(B, ldy, SENTINEL);
    float gf[13], bf[13], rmf[13], rvf[13];
    to_ld(X, ldx, x, B, C);
    tof(gf, g, 13), tof(bf, b, 13), tof(rmf, rm, 13), tof(rvf, rv, 13);
    for (int r = 0; r < B; r++)
        test_poison(Y + (size_t)r * ldy, (size_t)C);
    cpu_->bn_eval(cpu_, Y, ldy, X, ldx, gf, bf, rmf, rvf, B, C, BN_EPS);
    CHECK(pad_intact(Y, ldy, B, C));
    double *want = dv(n);
    for (int r = 0; r < B; r++)
        for (int k = 0; k < C; k++)
            want[(size_t)r * C + k] = ((double)X[(size_t)r * ldx + k] - rmf[k]) /
                                          sqrt((double)rvf[k] + (double)BN_EPS) * gf[k] +
                                      bf[k];
    CHECK(close_ld(Y, ldy, want, B, C, TOL_FWD, "bn_eval"));
    float *xp = fv(n), *yp = fv(n);
    tof(xp, x, n);
    amtl_batchnorm_forward_eval(yp, xp, gf, bf, rmf, rvf, B, C, BN_EPS);
    for (int r = 0; r < B; r++)
        CHECK(memcmp(yp + (size_t)r * C, Y + (size_t)r * ldy, C * sizeof(float)) == 0);
}

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
    TEST(test_memory);
    TEST(test_cuda_absent);
    TEST(test_gemm);
    TEST(test_add_axpy_dot);
    TEST(test_take);
    TEST(test_embed);
    TEST(test_bias_relu_colsum_grad);
    TEST(test_dropout);
    TEST(test_dropout_grad);
    TEST(test_bn_train_grad);
    TEST(test_bn_eval);
    TEST(test_softmax_grad);
    TEST(test_mixfeature_grad);
    TEST(test_expert_mix_grad);
    TEST(test_bce);
    TEST(test_adam);
    free(tmem_);
    printf("# %ld gradient elements checked by central differences\n", fd_elements_);
    TEST_MAIN_END();
}
