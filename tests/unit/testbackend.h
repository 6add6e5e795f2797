/* testbackend.h — the backend instances of a test program: the plain CPU,
 * the fused CPU and the CUDA instance (amtl_backend_*_new), each made at
 * first use and released at exit, so that every test shares them as the
 * tools share theirs; the CPU ones run on the test pool, of AMTL_THREADS
 * threads (2 when it is not set), which test_set_threads remakes. */
#ifndef AMTL_TESTBACKEND_H
#define AMTL_TESTBACKEND_H

#include <stdlib.h>

#include "backend.h"
#include "base/pool.h"

static amtl_backend *test_cpu_be_, *test_fused_be_, *test_cuda_be_;
static amtl_pool *test_pool_;
static int test_threads_;
static const char *test_cuda_why_;
static int test_cuda_tried_, test_backends_registered_;

static void test_backends_free_(void)
{
    amtl_backend_free(test_cpu_be_);
    amtl_backend_free(test_fused_be_);
    amtl_backend_free(test_cuda_be_);
    amtl_pool_free(test_pool_);
    test_cpu_be_ = test_fused_be_ = test_cuda_be_ = NULL;
    test_pool_ = NULL;
}

static inline void test_backends_at_exit_(void)
{
    if (!test_backends_registered_) {
        test_backends_registered_ = 1;
        atexit(test_backends_free_);
    }
}

/* The pool the CPU instances run on. */
static inline amtl_pool *test_pool(void)
{
    if (!test_pool_) {
        test_backends_at_exit_();
        if (!test_threads_) {
            const char *env = getenv("AMTL_THREADS");
            test_threads_ = env && *env ? atoi(env) : 2;
        }
        test_pool_ = amtl_pool_new(test_threads_);
    }
    return test_pool_;
}

/* The CPU instances and their pool made anew with n threads (0: a core
 * each); returns the count in force. */
static inline int test_set_threads(int n)
{
    amtl_backend_free(test_cpu_be_);
    amtl_backend_free(test_fused_be_);
    amtl_pool_free(test_pool_);
    test_cpu_be_ = test_fused_be_ = NULL;
    test_pool_ = NULL;
    test_threads_ = n > 0 ? n : amtl_pool_cores();
    return amtl_pool_size(test_pool());
}

static inline amtl_backend *test_cpu_backend(void)
{
    if (!test_cpu_be_) {
        test_backends_at_exit_();
        test_cpu_be_ = amtl_backend_cpu_new(0, test_pool());
    }
    return test_cpu_be_;
}

/* The CPU instance with the fused MixedOp (backend.h fused). */
static inline amtl_backend *test_fused_backend(void)
{
    if (!test_fused_be_) {
        test_backends_at_exit_();
        test_fused_be_ = amtl_backend_cpu_new(1, test_pool());
    }
    return test_fused_be_;
}

/* The CUDA instance, or NULL with *why set (no GPU, or no CUDA build). */
static inline amtl_backend *test_cuda_backend(const char **why)
{
    if (!test_cuda_tried_) {
        test_backends_at_exit_();
        test_cuda_tried_ = 1;
        test_cuda_be_ = amtl_backend_cuda_new(&test_cuda_why_);
    }
    if (why)
        *why = test_cuda_be_ ? NULL : test_cuda_why_;
    return test_cuda_be_;
}

#endif
