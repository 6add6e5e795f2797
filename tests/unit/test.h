/* test.h — the unit-test harness: each test_*.c is one program whose
 * RUN() lines print TAP ("ok N - name" / "not ok N - name"); tests/run
 * counts them together with the Bats results. */
#ifndef AMTL_TEST_H
#define AMTL_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_;
static const char *test_skip_;   /* why the running test was skipped, or NULL */
static int test_count_, test_fail_count_;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stdout, "# %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                   \
            test_failed_ = 1;                                                 \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECKF(cond, ...)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stdout, "# %s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                   \
            fprintf(stdout, __VA_ARGS__);                                     \
            fputc('\n', stdout);                                              \
            test_failed_ = 1;                                                 \
            return;                                                           \
        }                                                                     \
    } while (0)

/* |a-b| <= tol * max(1, |a|, |b|) */
#define CHECK_CLOSE(a, b, tol)                                                \
    do {                                                                      \
        double a_ = (double)(a), b_ = (double)(b);                            \
        double s_ = fmax(1.0, fmax(fabs(a_), fabs(b_)));                      \
        CHECKF(fabs(a_ - b_) <= (tol) * s_, "%s = %.9g, %s = %.9g (tol %g)",  \
               #a, a_, #b, b_, (double)(tol));                                \
    } while (0)

#define CHECK_OK(expr, st)                                                    \
    CHECKF((expr) == 0, "%s", (st)->msg)

/* Ends the running test as skipped (TAP "# SKIP why"): tests/run counts it
 * as skipped, neither passed nor failed. */
#define SKIP(why)                                                             \
    do {                                                                      \
        test_skip_ = (why);                                                   \
        return;                                                               \
    } while (0)

#define RUN(fn)                                                               \
    do {                                                                      \
        test_failed_ = 0;                                                     \
        test_skip_ = NULL;                                                    \
        fn();                                                                 \
        test_count_++;                                                        \
        if (test_failed_)                                                     \
            test_fail_count_++;                                               \
        if (!test_failed_ && test_skip_)                                      \
            printf("ok %d - %s # SKIP %s\n", test_count_, #fn, test_skip_);   \
        else                                                                  \
            printf("%s %d - %s\n", test_failed_ ? "not ok" : "ok",             \
                   test_count_, #fn);                                         \
        fflush(stdout);                                                       \
    } while (0)

#define TEST_MAIN_END()                                                       \
    do {                                                                      \
        printf("1..%d\n", test_count_);                                       \
        return test_fail_count_ ? 1 : 0;                                      \
    } while (0)

/* Fills a buffer with a poison value so unwritten outputs show up. */
static inline void test_poison(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
}

/* A temp directory per test program, removed by the runner's trap. */
static inline const char *test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/amtl-unit-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir))
            dir[0] = '\0';
    }
    return dir;
}

#endif
