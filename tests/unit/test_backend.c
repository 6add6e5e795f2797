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
 * short sums).  Where a primitive repeats the arithmetic of a library
 * function (the loss, Adam), it is also checked bit for bit against it.
 */
#include "backendtest.h"

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

/* The CUDA module is loaded on demand: a module that is not there, or a
 * library that is not one, is a reason, not a crash; and the build's own
 * module is found (on a machine without a GPU it then says so itself). */
static void test_cuda_module(void)
{
    const char *why = NULL;
    setenv("AMTL_CUDA_MODULE", "/nonexistent/amtl-cuda.so", 1);
    CHECK(amtl_backend_cuda_new(&why) == NULL);
    CHECKF(why && strstr(why, "the CUDA module cannot be loaded") &&
               strstr(why, "/nonexistent/amtl-cuda.so"), "%s", why ? why : "(null)");
    setenv("AMTL_CUDA_MODULE", "libm.so.6", 1);
    why = NULL;
    CHECK(amtl_backend_cuda_new(&why) == NULL);
    CHECKF(why && strstr(why, "has no amtl_cuda_module_backend_new"), "%s",
           why ? why : "(null)");
    CHECK(amtl_backend_cuda_new(NULL) == NULL);
    unsetenv("AMTL_CUDA_MODULE");
    why = NULL;
    amtl_backend *be = amtl_backend_cuda_new(&why);
#ifdef AMTL_HAVE_CUDA
    CHECKF(be || (why && !strstr(why, "cannot be loaded") && !strstr(why, "no CUDA backend")),
           "%s", why ? why : "(null)");
#else
    CHECK(!be && why && strstr(why, "no CUDA backend"));
#endif
    amtl_backend_free(be);
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
    /* the columns in no order: column c at c·ld in reverse */
    int32_t *ci[13];
    float *cf[13];
    for (int c = 0; c < C; c++) {
        ci[c] = si + (size_t)(C - 1 - c) * ld;
        cf[c] = sf + (size_t)(C - 1 - c) * ld;
    }
    cpu_->take_i32(cpu_, di, ci, rows, B, C);
    cpu_->take_f32(cpu_, df, cf, rows, B, C);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            CHECK(di[(size_t)b * C + c] == si[(size_t)(C - 1 - c) * ld + rows[b]]);
            CHECK(df[(size_t)b * C + c] == sf[(size_t)(C - 1 - c) * ld + rows[b]]);
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
}

/* ================================================================================
 * data-parallel training: rows drawn at their global positions, and
 * synchronised BatchNorm through its hook
 * ================================================================================ */

/* A rank's rows (every third row of a batch of 100, out of order) draw the
 * masks the whole batch draws at those rows. */
static void test_dropout_rows(void)
{
    amtl_rng_seed(&rng_, 310);
    int G = 100, B = 33, C = 13;
    float *xg = fv((size_t)G * C), *yg = fv((size_t)G * C), *x = fv((size_t)B * C);
    float *y = fv((size_t)B * C);
    uint8_t *mg = talloc((size_t)G * C), *m = talloc((size_t)B * C);
    int32_t pos[33];
    fillf(xg, (size_t)G * C, -1, 1);
    for (int b = 0; b < B; b++) {
        pos[b] = (int32_t)((b * 37) % G);
        memcpy(x + (size_t)b * C, xg + (size_t)pos[b] * C, (size_t)C * sizeof(float));
    }
    cpu_->dropout(cpu_, yg, mg, xg, (size_t)G * C, 0.3f, 99, 5);
    test_poison(y, (size_t)B * C);
    cpu_->dropout_rows(cpu_, y, m, x, B, C, pos, 0.3f, 99, 5);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < C; k++) {
            size_t i = (size_t)b * C + k, j = (size_t)pos[b] * C + k;
            CHECKF(m[i] == mg[j] && y[i] == yg[j], "row %d (batch row %d) column %d", b,
                   pos[b], k);
        }
}

/* A hook that stands for a job of two ranks holding the same rows: every
 * sum and the row count doubled. */
static int twice(void *ctx, double *buf, size_t n)
{
    (*(int *)ctx)++;
    for (size_t i = 0; i < n; i++)
        buf[i] *= 2;
    return 0;
}

static int refuse(void *ctx, double *buf, size_t n)
{
    (void)ctx, (void)buf, (void)n;
    return -1;
}

/* Over that job the batch statistics are the rows' own (the mean and the
 * biased variance of a doubled batch are the same numbers), so the output,
 * the input gradient and this rank's dgamma and dbeta equal one process's
 * bit for bit, and only the running variance's unbiasing sees 2B rows. */
static void test_bn_batch_sum(void)
{
    amtl_rng_seed(&rng_, 311);
    int B = 37, C = 13;
    size_t n = (size_t)B * C;
    float *X = fv(n), *dY = fv(n), g[13], be[13];
    fillf(X, n, -2, 2);
    fillf(dY, n, -1, 1);
    fillf(g, 13, 0.5f, 1.5f);
    fillf(be, 13, -0.5f, 0.5f);
    float *Y[2], *dX[2], mean[2][13], rstd[2][13], rm[2][13], rv[2][13], dg[2][13], db[2][13];
    int calls = 0;
    amtl_batch_sum hook = {.fn = twice, .ctx = &calls};
    for (int k = 0; k < 2; k++) {
        Y[k] = fv(n);
        dX[k] = fv(n);
        for (int c = 0; c < C; c++)
            rm[k][c] = 0.1f, rv[k][c] = 0.9f, dg[k][c] = db[k][c] = 0.25f;
        cpu_->set_batch_sum(cpu_, k ? &hook : NULL);
        cpu_->bn_train(cpu_, Y[k], C, mean[k], rstd[k], rm[k], rv[k], X, C, g, be, B, C, BN_MOM,
                       BN_EPS);
        cpu_->bn_back(cpu_, dX[k], C, dg[k], db[k], dY, C, X, C, mean[k], rstd[k], g, B, C);
    }
    cpu_->set_batch_sum(cpu_, NULL);
    CHECKF(calls == 3, "%d calls of the hook: the mean, the variance, the backward's sums", calls);
    CHECK(memcmp(Y[0], Y[1], n * sizeof(float)) == 0);
    CHECK(memcmp(dX[0], dX[1], n * sizeof(float)) == 0);
    for (int c = 0; c < C; c++) {
        CHECK(mean[0][c] == mean[1][c] && rstd[0][c] == rstd[1][c] && rm[0][c] == rm[1][c]);
        CHECK(dg[0][c] == dg[1][c] && db[0][c] == db[1][c]);
        /* (1 - m)·0.9 + m·var·2B/(2B-1) against B/(B-1) */
        double var = 1.0 / ((double)rstd[0][c] * rstd[0][c]) - BN_EPS;
        CHECK_CLOSE(rv[1][c], (1 - BN_MOM) * 0.9 + BN_MOM * var * 2 * B / (2 * B - 1), 1e-5);
        CHECK(rv[0][c] != rv[1][c]);
    }
    /* a failing hook is remembered for the step to report */
    amtl_batch_sum bad = {.fn = refuse};
    cpu_->set_batch_sum(cpu_, &bad);
    cpu_->bn_train(cpu_, Y[0], C, mean[0], rstd[0], rm[0], rv[0], X, C, g, be, B, C, BN_MOM,
                   BN_EPS);
    cpu_->set_batch_sum(cpu_, NULL);
    CHECK(bad.failed == 1);
}

int main(void)
{
    cpu_ = test_cpu_backend();
    TEST(test_memory);
    TEST(test_cuda_absent);
    TEST(test_cuda_module);
    TEST(test_gemm);
    TEST(test_add_axpy_dot);
    TEST(test_take);
    TEST(test_embed);
    TEST(test_bias_relu_colsum_grad);
    TEST(test_dropout);
    TEST(test_dropout_grad);
    TEST(test_bn_train_grad);
    TEST(test_bn_eval);
    TEST(test_dropout_rows);
    TEST(test_bn_batch_sum);
    free(tmem_);
    printf("# %ld gradient elements checked by central differences\n", fd_elements_);
    TEST_MAIN_END();
}
