/* cudatest.h — what the CUDA backend's tests share (test_cuda.c,
 * test_cuda_supernet.c): the two instances, host memory freed between
 * tests, random inputs, and one run of a test body on one backend (the brun
 * helpers).  The conventions are test_cuda.c's. */
#ifndef AMTL_CUDATEST_H
#define AMTL_CUDATEST_H

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

static inline void *halloc(size_t bytes)
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

static inline void hfree_all(void)
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
static inline float *frand(size_t n, float lo, float hi)
{
    float *p = halloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) {
        float v = amtl_rng_uniform_range(&rng, lo, hi);
        p[i] = v != 0.0f ? v : 0.5f * hi;
    }
    return p;
}

static inline float *fcopy(const float *a, size_t n)
{
    float *p = halloc(n * sizeof *p);
    if (p)
        memcpy(p, a, n * sizeof *p);
    return p;
}

/* a copy of a with the window [rows, C] at leading dimension ld poisoned */
static inline float *fpoison_window(const float *a, size_t n, int rows, int C, int ld)
{
    float *p = fcopy(a, n);
    for (int r = 0; p && r < rows; r++)
        test_poison(p + (size_t)r * ld, (size_t)C);
    return p;
}

static inline float *fnan(size_t n)
{
    float *p = halloc(n * sizeof *p);
    if (p)
        test_poison(p, n);
    return p;
}

/* The first index where a and b differ by more than tol·max(1, |a|, |b|)
 * (NaN anywhere differs), or -1. */
static inline long far_index(const float *a, const float *b, size_t n, double tol)
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

static inline brun brun_start(int k)
{
    brun r;
    memset(&r, 0, sizeof r);
    r.be = k ? cuda : cpu;
    return r;
}

/* A backend array of `bytes`, a copy of host when host is not NULL */
static inline void *up(brun *r, const void *host, size_t bytes)
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

static inline void down(brun *r, void *host, const void *d, size_t bytes)
{
    if (!d || r->be->get(r->be, host, d, bytes))
        r->fail = 1;
}

/* 0, or -1 when a copy failed or the backend has an error; frees the run's
 * memory either way */
static inline int brun_end(brun *r)
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

/* The start and end of a CUDA test program's main: the seeded stream and
 * the two instances (why says why CUDA is absent); then the host memory. */
static inline void cudatest_begin(void)
{
    amtl_rng_seed(&rng, 20240531);
    cpu = test_cpu_backend();
    cuda = test_cuda_backend(&why);
    if (!cuda && !why)
        why = "no CUDA backend";
}

static inline void cudatest_end(void)
{
    hfree_all();
    free(hmem);
}

#endif
