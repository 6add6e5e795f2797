/* backendtest.h — what the CPU backend's tests share (test_backend.c,
 * test_backend_supernet.c): the instance under test, matrices with a
 * leading dimension larger than their width and the checks of their
 * padding.  The conventions are test_backend.c's. */
#ifndef AMTL_BACKENDTEST_H
#define AMTL_BACKENDTEST_H

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

/* the CPU instance under test (set by each main) */
static amtl_backend *cpu_;

static inline void fill_value(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* A [rows, ld] float matrix whose padding is pad (NaN for inputs, SENTINEL
 * for outputs). */
static inline float *fmat(int rows, int ld, float pad)
{
    float *m = fv((size_t)rows * ld);
    fill_value(m, (size_t)rows * ld, pad);
    return m;
}

/* The first C columns of d [rows, ld] from packed s [rows, C]. */
static inline void to_ld(float *d, int ld, const double *s, int rows, int C)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++)
            d[(size_t)r * ld + c] = (float)s[(size_t)r * C + c];
}

/* Packed [rows, C] double copy of the first C columns of s [rows, ld]. */
static inline double *from_ld(const float *s, int ld, int rows, int C)
{
    double *d = dv((size_t)rows * C);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++)
            d[(size_t)r * C + c] = s[(size_t)r * ld + c];
    return d;
}

/* Σ R ⊙ Y over the first C columns of Y [rows, ld], R packed [rows, C] */
static inline double dotR_ld(const float *Y, int ld, const double *R, int rows, int C)
{
    double s = 0.0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++)
            s += (double)Y[(size_t)r * ld + c] * R[(size_t)r * C + c];
    return s;
}

/* As close_fd over the first C columns of a [rows, lda], b packed [rows, C]. */
static inline int close_ld(const float *a, int lda, const double *b, int rows, int C, double tol,
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
static inline int pad_intact(const float *a, int ld, int rows, int C)
{
    for (int r = 0; r < rows; r++)
        for (int c = C; c < ld; c++)
            if (a[(size_t)r * ld + c] != SENTINEL) {
                printf("# padding (%d,%d) written: %g\n", r, c, (double)a[(size_t)r * ld + c]);
                return 0;
            }
    return 1;
}

#endif
