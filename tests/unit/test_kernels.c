/* test_kernels.c — the fused MixedOp kernels (kernels.h) against plain
 * loops written here in double precision.
 *
 * Inputs are random and non-zero (ReLU masks get both signs); outputs that a
 * kernel writes are poisoned with NaN first, so an element it forgets fails
 * every comparison; accumulators start from random values and are checked as
 * increments.  Sizes are odd on purpose: rows not a multiple of the kernels'
 * 32-row blocks, channels not a multiple of the vector width.  Tolerances:
 * float results of a few operations per element match to 1e-6 relative;
 * sums over up to a few hundred rows accumulated in float blocks match the
 * double sums to 1e-5 of the sum of magnitudes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "base/rng.h"
#include "test.h"

static amtl_rng rng_;

static float *fv(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = amtl_rng_uniform_range(&rng_, -1.0f, 1.0f);
    return p;
}

static double *dv(size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = amtl_rng_uniform_range(&rng_, -1.0f, 1.0f);
    return p;
}

static float *fcopy(const float *x, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

static double *dcopy(const double *x, size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

/* |got - want| <= tol * scale, NaN failing */
static int close_to(double got, double want, double tol, double scale)
{
    return fabs(got - want) <= tol * fmax(1.0, scale);
}

static const int shapes[][2] = {{1, 1}, {7, 5}, {33, 17}, {65, 64}, {130, 129}, {257, 31},
                                {40, 600}};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static void test_colsum_acc(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], C = shapes[s][1];
        float *X = fv((size_t)R * C), *tmp = fv((size_t)C);
        double *acc = dv((size_t)C), *acc0 = dcopy(acc, (size_t)C);
        amtl_k_colsum_acc(acc, tmp, X, R, C);
        for (int c = 0; c < C; c++) {
            double want = 0, mag = 0;
            for (int b = 0; b < R; b++) {
                want += X[(size_t)b * C + c];
                mag += fabs(X[(size_t)b * C + c]);
            }
            CHECKF(close_to(acc[c] - acc0[c], want, 1e-5, mag), "R %d C %d c %d", R, C, c);
        }
        free(X), free(tmp), free(acc), free(acc0);
    }
}

static void test_sub_row_and_scale_rows(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], C = shapes[s][1];
        float *X = fv((size_t)R * C), *v = fv((size_t)C), *sr = fv((size_t)R);
        float *Y = fv((size_t)R * C), *Z = fv((size_t)R * C), *X0 = fcopy(X, (size_t)R * C);
        test_poison(Y, (size_t)R * C);
        test_poison(Z, (size_t)R * C);
        amtl_k_sub_row(Y, X, v, R, C);
        amtl_k_scale_rows(Z, X, sr, R, C);
        for (size_t i = 0; i < (size_t)R * C; i++) {
            CHECK(Y[i] == X[i] - v[i % C]);
            CHECK(Z[i] == sr[i / C] * X[i]);
        }
        amtl_k_sub_row(X, X, v, R, C);  /* in place */
        for (size_t i = 0; i < (size_t)R * C; i++)
            CHECK(X[i] == X0[i] - v[i % C]);
        free(X), free(v), free(sr), free(Y), free(Z), free(X0);
    }
}

static void test_affine_relu(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], C = shapes[s][1], ld = C + 3;
        size_t n = (size_t)R * ld;
        float *A = fv(n), *sc = fv((size_t)C), *sh = fv((size_t)C);
        float *H = fv(n), *H0 = fcopy(H, n), *K = fv(n), *K0 = fcopy(K, n);
        for (size_t i = 0; i < n; i++)
            if ((int)(i % ld) < C)
                H[i] = K[i] = NAN;
        amtl_k_affine_relu(H, A, sc, sh, R, C, ld);
        int pos = 0;
        for (size_t i = 0; i < n; i++) {
            int c = (int)(i % ld);
            if (c >= C) {  /* the padding between rows is not touched */
                CHECK(H[i] == H0[i]);
                continue;
            }
            double v = (double)A[i] * sc[c] + sh[c];
            double want = v > 0 ? v : 0;
            CHECKF(close_to(H[i], want, 1e-6, fabs(v)), "R %d C %d i %zu", R, C, i);
            pos += H[i] > 0;
        }
        CHECK(R * C < 8 || (pos > 0 && pos < R * C));
        /* keep: K <- A's values kept, normalised in place; A gets the old K */
        float *Ak = fv(n), *Ak0 = fcopy(Ak, n);
        for (size_t i = 0; i < n; i++)
            if ((int)(i % ld) < C)
                K[i] = A[i];
        amtl_k_keep_affine_relu(Ak, K, sc, sh, R, C, ld);
        for (size_t i = 0; i < n; i++) {
            int c = (int)(i % ld);
            CHECK(Ak[i] == (c < C ? A[i] : Ak0[i]));
            CHECK(K[i] == (c < C ? H[i] : K0[i]));
        }
        amtl_k_affine_relu(A, A, sc, sh, R, C, ld);  /* in place */
        for (size_t i = 0; i < n; i++)
            CHECK((int)(i % ld) >= C || A[i] == H[i]);
        free(A), free(sc), free(sh), free(H), free(H0), free(K), free(K0), free(Ak), free(Ak0);
    }
}

static void test_bias_relu_mix(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], O = shapes[s][1];
        size_t n = (size_t)R * O;
        float *Y = fv(n), *out = fv(n), *bias = fv((size_t)O), w = 0.37f;
        float *Y0 = fcopy(Y, n), *out0 = fcopy(out, n);
        float *Yk = fcopy(Y, n), *outk = fcopy(out, n);
        uint8_t *keep = malloc(n);
        memset(keep, 7, n);
        amtl_k_bias_relu_mix(Y, out, NULL, bias, w, R, O);
        amtl_k_bias_relu_mix(Yk, outk, keep, bias, w, R, O);
        int pos = 0;
        for (size_t i = 0; i < n; i++) {
            double v = (double)Y0[i] + bias[i % O];
            v = v > 0 ? v : 0;
            CHECKF(close_to(Y[i], v, 1e-6, 1), "i %zu", i);
            CHECKF(close_to(out[i], out0[i] + w * v, 1e-6, 1), "i %zu", i);
            /* the mask changes nothing else */
            CHECK(Yk[i] == Y[i] && outk[i] == out[i]);
            CHECK(keep[i] == (Y[i] > 0));
            pos += keep[i];
        }
        CHECK(n < 8 || (pos > 0 && pos < (int)n));
        free(Y), free(out), free(bias), free(Y0), free(out0), free(Yk), free(outk), free(keep);
    }
}

static void test_relu_back_keep(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], O = shapes[s][1];
        size_t n = (size_t)R * O;
        float *Y = fv(n), *D = fv(n), *Rr = fv(n), *db = fv((size_t)O), *tmp = fv((size_t)O);
        float *bias = fv((size_t)O), *db0 = fcopy(db, (size_t)O), w = -0.61f;
        uint8_t *keep = malloc(n);
        for (size_t i = 0; i < n; i++)
            keep[i] = Y[i] > 0;
        double dot = 0.25, mag = 0, want_dot = 0;
        test_poison(Rr, n);
        amtl_k_relu_back_keep(Rr, db, &dot, tmp, keep, D, bias, w, R, O);
        for (size_t i = 0; i < n; i++) {
            double r = Y[i] > 0 ? (double)D[i] : 0.0;
            CHECKF(close_to(Rr[i], r, 1e-6, 1), "i %zu", i);
        }
        for (int c = 0; c < O; c++) {
            double want = 0, m = 0;
            for (int b = 0; b < R; b++) {
                size_t i = (size_t)b * O + c;
                double r = Y[i] > 0 ? (double)D[i] : 0.0;
                want += r;
                m += fabs(r);
            }
            want_dot += want * bias[c];
            mag += m * fabs(bias[c]);
            CHECKF(close_to((double)db[c] - db0[c], w * want, 1e-5, fabs(w) * m + fabs(db0[c])),
                   "c %d", c);
        }
        CHECKF(close_to(dot - 0.25, want_dot, 1e-5, mag), "R %d O %d", R, O);
        free(Y), free(D), free(Rr), free(db), free(tmp), free(bias), free(db0), free(keep);
    }
}

static void test_relu_bn_stats(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], S = shapes[s][1], ld = S + 5;
        size_t n = (size_t)R * ld;
        float *dZ = fv(n), *H = fv(n), *A = fv(n), *k1 = fv((size_t)S), *tmp = fv(3 * (size_t)S);
        double *sd = dv((size_t)S), *sq = dv((size_t)S);
        double *sd0 = dcopy(sd, (size_t)S), *sq0 = dcopy(sq, (size_t)S);
        float *dZ0 = fcopy(dZ, n), w = 0.83f;
        double dot = -0.5, want_dot = 0, mdot = 0;
        amtl_k_relu_bn_stats(dZ, sd, sq, &dot, tmp, H, A, k1, w, R, S, ld);
        for (size_t i = 0; i < n; i++) {
            int c = (int)(i % ld);
            if (c >= S) {
                CHECK(dZ[i] == dZ0[i]);
                continue;
            }
            double v = H[i] > 0 ? (double)w * dZ0[i] : 0.0;
            CHECKF(close_to(dZ[i], k1[c] * v, 1e-6, 1), "i %zu", i);
            want_dot += (double)dZ0[i] * H[i];
            mdot += fabs((double)dZ0[i] * H[i]);
        }
        CHECKF(close_to(dot + 0.5, want_dot, 1e-5, mdot), "R %d S %d", R, S);
        for (int c = 0; c < S; c++) {
            double a = 0, b = 0, ma = 0, mb = 0;
            for (int r = 0; r < R; r++) {
                size_t i = (size_t)r * ld + c;
                double v = H[i] > 0 ? (double)w * dZ0[i] : 0.0;
                a += v;
                b += v * A[i];
                ma += fabs(v);
                mb += fabs(v * A[i]);
            }
            CHECKF(close_to(sd[c] - sd0[c], a, 1e-5, ma), "R %d S %d c %d", R, S, c);
            CHECKF(close_to(sq[c] - sq0[c], b, 1e-5, mb), "R %d S %d c %d", R, S, c);
        }
        free(dZ), free(H), free(A), free(k1), free(tmp), free(sd), free(sq), free(sd0),
            free(sq0), free(dZ0);
    }
}

static void test_dropout_back_add(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], C = shapes[s][1];
        size_t n = (size_t)R * C;
        float *dx = fv(n), *D = fv(n), *crow = fv((size_t)C), *dx0 = fcopy(dx, n);
        uint8_t *mask = malloc(n);
        for (size_t i = 0; i < n; i++)
            mask[i] = (uint8_t)(amtl_rng_uniform(&rng_) < 0.7f);
        float scale = 1.25f;
        amtl_k_dropout_back_add(dx, D, crow, mask, scale, R, C);
        for (size_t i = 0; i < n; i++) {
            double want = dx0[i] + (mask[i] ? scale * ((double)D[i] + crow[i % C]) : 0.0);
            CHECKF(close_to(dx[i], want, 1e-6, 1), "i %zu", i);
        }
        memcpy(dx, dx0, n * sizeof *dx);
        amtl_k_dropout_back_add(dx, D, crow, NULL, 1.0f, R, C);
        for (size_t i = 0; i < n; i++)
            CHECKF(close_to(dx[i], dx0[i] + (double)D[i] + crow[i % C], 1e-6, 1), "i %zu", i);
        free(dx), free(D), free(crow), free(dx0), free(mask);
    }
}

static void test_transpose(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], C = shapes[s][1], lds = C + 3, ldd = R + 2;
        float *S = fv((size_t)R * lds), *D = fv((size_t)C * ldd), *D0 = fcopy(D, (size_t)C * ldd);
        test_poison(D, (size_t)C * ldd);
        for (int c = 0; c < C; c++)
            for (int r = R; r < ldd; r++)
                D[(size_t)c * ldd + r] = D0[(size_t)c * ldd + r];
        amtl_k_transpose(D, ldd, S, lds, R, C);
        for (int c = 0; c < C; c++)
            for (int r = 0; r < ldd; r++) {
                size_t i = (size_t)c * ldd + r;
                /* the padding past R is not touched */
                CHECKF(D[i] == (r < R ? S[(size_t)r * lds + c] : D0[i]), "R %d C %d (%d,%d)", R,
                       C, c, r);
            }
        free(S), free(D), free(D0);
    }
}

static void test_w1_grad_and_sum_parts(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], C = shapes[s][1], ldp = R + 5;
        size_t n = (size_t)R * C, np = (size_t)C * ldp;
        const float *parts[3];
        float *p0 = fv(np), *p1 = fv(np), *p2 = fv(np);
        parts[0] = p0, parts[1] = p1, parts[2] = p2;
        float *G = fv(n), *W = fv(n), *k3 = fv((size_t)R), *G0 = fcopy(G, n);
        /* G [R,C] += Σ parts [C,ldp] transposed - k3 W */
        amtl_k_w1_grad(G, parts, 3, ldp, k3, W, R, C);
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) {
                size_t i = (size_t)r * C + c, q = (size_t)c * ldp + r;
                double want = G0[i] + (double)p0[q] + p1[q] + p2[q] - (double)k3[r] * W[i];
                CHECKF(close_to(G[i], want, 1e-6, 4), "R %d C %d (%d,%d)", R, C, r, c);
            }
        /* G2 [C, ldg] += Σ Q [R, ldq] transposed; the padding untouched */
        int ldg = R + 1, ldq = C + 2;
        size_t ng = (size_t)C * ldg, nq = (size_t)R * ldq;
        float *q0 = fv(nq), *q1 = fv(nq), *G2 = fv(ng), *G20 = fcopy(G2, ng);
        const float *qs[2] = {q0, q1};
        amtl_k_sum_parts_t(G2, ldg, qs, 2, ldq, R, C);
        for (int c = 0; c < C; c++)
            for (int r = 0; r < ldg; r++) {
                size_t i = (size_t)c * ldg + r, q = (size_t)r * ldq + c;
                double want = r < R ? G20[i] + (double)q0[q] + q1[q] : G20[i];
                CHECKF(close_to(G2[i], want, 1e-6, 3), "R %d C %d (%d,%d)", R, C, c, r);
            }
        ng = nq < ng ? nq : ng;
        memcpy(G2, G20, ng * sizeof *G2);
        amtl_k_sum_parts(G2, qs, 2, ng);
        for (size_t i = 0; i < ng; i++)
            CHECKF(close_to(G2[i], G20[i] + (double)q0[i] + q1[i], 1e-6, 3), "i %zu", i);
        free(p0), free(p1), free(p2), free(G), free(W), free(k3), free(G0);
        free(q0), free(q1), free(G2), free(G20);
    }
}

static void test_bn_moments(void)
{
    for (int s = 0; s < N_SHAPES; s++) {
        int R = shapes[s][0], C = shapes[s][1];
        float *WC = fv((size_t)R * C), *W = fv((size_t)R * C), *mu = fv((size_t)C);
        double *var = dv((size_t)R), *mean = dv((size_t)R);
        amtl_k_bn_moments(var, mean, WC, W, mu, R, C);
        for (int r = 0; r < R; r++) {
            double v = 0, m = 0;
            for (int c = 0; c < C; c++) {
                v += (double)WC[(size_t)r * C + c] * W[(size_t)r * C + c];
                m += (double)W[(size_t)r * C + c] * mu[c];
            }
            /* double sums of float products, in another order */
            CHECKF(close_to(var[r], v, 1e-12, C) && close_to(mean[r], m, 1e-12, C), "r %d", r);
        }
        free(WC), free(W), free(mu), free(var), free(mean);
    }
}

static void test_dot_axpy_scale(void)
{
    size_t ns[] = {0, 1, 15, 16, 17, 1023, 1024, 1025, 5000};
    for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
        size_t n = ns[s];
        float *a = fv(n), *b = fv(n), *y = fv(n), *y0 = fcopy(y, n), *z = fv(n);
        double want = 0, mag = 0;
        for (size_t i = 0; i < n; i++) {
            want += (double)a[i] * b[i];
            mag += fabs((double)a[i] * b[i]);
        }
        CHECKF(close_to(amtl_k_dot(a, b, n), want, 1e-5, mag), "n %zu", n);
        amtl_k_axpy(y, a, 0.3f, n);
        test_poison(z, n);
        amtl_k_scale(z, a, -2.5f, n);
        for (size_t i = 0; i < n; i++) {
            CHECK(close_to(y[i], y0[i] + 0.3 * a[i], 1e-6, 1));
            CHECK(z[i] == -2.5f * a[i]);
        }
        free(a), free(b), free(y), free(y0), free(z);
    }
}

int main(void)
{
    amtl_rng_seed(&rng_, 2024);
    RUN(test_colsum_acc);
    RUN(test_sub_row_and_scale_rows);
    RUN(test_affine_relu);
    RUN(test_bias_relu_mix);
    RUN(test_relu_back_keep);
    RUN(test_relu_bn_stats);
    RUN(test_dropout_back_add);
    RUN(test_transpose);
    RUN(test_w1_grad_and_sum_parts);
    RUN(test_bn_moments);
    RUN(test_dot_axpy_scale);
    TEST_MAIN_END();
}
