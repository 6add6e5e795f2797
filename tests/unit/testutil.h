/* testutil.h — what the layer and backend tests share: memory freed after
 * every test (also when a CHECK returns early), random values and copies
 * from one seeded stream (rng_, seeded by each test), and the finite-
 * difference driver every gradient check goes through. */
#ifndef AMTL_TESTUTIL_H
#define AMTL_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "test.h"

static void **tmem_;
static size_t tmem_n_, tmem_cap_;

static inline void *talloc(size_t bytes)
{
    if (tmem_n_ == tmem_cap_) {
        size_t cap = tmem_cap_ ? 2 * tmem_cap_ : 256;
        void **p = realloc(tmem_, cap * sizeof *p);
        if (!p)
            return NULL;
        tmem_ = p;
        tmem_cap_ = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (p)
        tmem_[tmem_n_++] = p;
    return p;
}

static inline void tfree_all(void)
{
    while (tmem_n_)
        free(tmem_[--tmem_n_]);
}

static inline double *dv(size_t n) { return talloc(n * sizeof(double)); }
static inline float *fv(size_t n) { return talloc(n * sizeof(float)); }

#define TEST(fn)          \
    do {                  \
        RUN(fn);          \
        tfree_all();      \
    } while (0)

static amtl_rng rng_;

static inline double urand(double lo, double hi)
{
    return lo + (hi - lo) * amtl_rng_uniform_double(&rng_);
}

static inline int irand(int lo, int hi) /* inclusive */
{
    return lo + (int)amtl_rng_below(&rng_, (uint64_t)(hi - lo + 1));
}

static inline void fill(double *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = urand(lo, hi);
}

/* Magnitudes in [lo, 1], random signs: away from zero (and from kinks). */
static inline void fill_away(double *x, size_t n, double lo)
{
    for (size_t i = 0; i < n; i++)
        x[i] = urand(lo, 1.0) * (amtl_rng_u64(&rng_) & 1 ? 1.0 : -1.0);
}

static inline void fillf(float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)urand(lo, hi);
}

static inline void tof(float *d, const double *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (float)s[i];
}

static inline double *dcopyf(const float *s, size_t n)
{
    double *d = dv(n);
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
    return d;
}

static inline float *fcopy(const float *s, size_t n)
{
    float *d = fv(n);
    memcpy(d, s, n * sizeof *d);
    return d;
}

/* ---- finite differences ------------------------------------------------ */

#ifndef H_REF
#define H_REF 1e-6    /* step of the double reference */
#define TOL_REF 1e-4  /* its tolerance */
#define H_LIB 1e-3    /* step through the float32 forward */
#define TOL_LIB 1e-2  /* its tolerance: float32 rounding over a step of 1e-3 */
#endif

/* The increment of an accumulating gradient: after − before. */
static inline double *ddiff(const float *after, const float *before, size_t n)
{
    double *d = dv(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (double)after[i] - (double)before[i];
    return d;
}

static inline double dotRd(const double *o, const double *R, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += o[i] * R[i];
    return s;
}

/* |a − b| <= tol · max(1, |b|), false for NaN.  Prints the first mismatch. */
static inline int close_fd(const float *a, const double *b, size_t n, double tol, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= tol * fmax(1.0, fabs(b[i])))) {
            printf("# %s[%zu]: got %.9g, want %.9g\n", what, i, (double)a[i], b[i]);
            return 0;
        }
    }
    return 1;
}

static inline int all_finite(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

typedef double (*loss_fn)(void *ctx, int lib);

typedef struct {
    const char *name;
    double *x;        /* master values, perturbed in place and restored */
    size_t n;
    const double *g;  /* the analytic gradient under test */
} fd_var;

static long fd_elements_;

/* Returns the number of mismatching elements (0 = pass). */
static inline int fd_check(const char *layer, loss_fn loss, void *ctx, const fd_var *vs, int nv)
{
    int bad = 0;
    for (int k = 0; k < nv; k++) {
        for (size_t i = 0; i < vs[k].n; i++) {
            double *x = vs[k].x + i, x0 = *x;
            *x = x0 + H_REF;
            double lp = loss(ctx, 0);
            *x = x0 - H_REF;
            double lm = loss(ctx, 0);
            double fd = (lp - lm) / (2 * H_REF);
            *x = x0 + H_LIB;
            lp = loss(ctx, 1);
            *x = x0 - H_LIB;
            lm = loss(ctx, 1);
            double fd32 = (lp - lm) / (2 * H_LIB);
            *x = x0;
            double g = vs[k].g[i];
            fd_elements_++;
            int ok_ref = fabs(g - fd) <= TOL_REF * fmax(1.0, fabs(fd));
            int ok_lib = fabs(g - fd32) <= TOL_LIB * fmax(1.0, fabs(fd32));
            if (!ok_ref || !ok_lib) {
                if (bad < 5)
                    printf("# %s d%s[%zu]: backward %.9g, fd(ref) %.9g, fd(f32) %.9g\n",
                           layer, vs[k].name, i, g, fd, fd32);
                bad++;
            }
        }
    }
    return bad;
}

#endif
