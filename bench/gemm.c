/* gemm.c — throughput of the supernet's matrix products at batch 2048, next to
 * OpenBLAS's square sgemm on the same machine and thread count.
 *
 * The search is matrix-multiply bound (DESIGN.md section 8), and most of its
 * products are thin: one side is the expert width H = 64.  This table shows
 * how far below the square-GEMM ceiling those shapes run, which bounds what
 * any fusion of the MixedOp can gain.
 *
 * Usage: gemm [--threads N] [--quick]      (AMTL_THREADS=N works too;
 *        0 or unset = every core)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/layers.h"
#include "base/pool.h"
#include "base/rng.h"
#include "base/tensor.h"

typedef struct {
    const char *what;
    int tA, tB, M, N, K;
} shape;

/* Batch 2048, input width 64, H 64, the default candidates' Σh = 2032. */
static const shape supernet_shapes[] = {
    {"fwd MLP first Linear, all candidates fused", 0, 1, 2048, 2032, 64},
    {"fwd MLP-1024 first Linear", 0, 1, 2048, 1024, 64},
    {"fwd MLP-1024 second Linear", 0, 1, 2048, 64, 1024},
    {"fwd MLP-256 second Linear", 0, 1, 2048, 64, 256},
    {"fwd MLP-16 second Linear", 0, 1, 2048, 64, 16},
    {"fwd tower / Identity Linear(64,64)", 0, 1, 2048, 64, 64},
    {"fwd expert gate Linear(64,4)", 0, 1, 2048, 4, 64},
    {"bwd fused first Linear dW = dout^T x", 1, 0, 2032, 64, 2048},
    {"bwd fused first Linear dinp = dout W", 0, 0, 2048, 64, 2032},
    {"bwd MLP-1024 second Linear dW", 1, 0, 64, 1024, 2048},
    {"bwd MLP-1024 second Linear dinp", 0, 0, 2048, 1024, 64},
    {"bwd Linear(64,64) dW", 1, 0, 64, 64, 2048},
};

/* The threads the products run on. */
static amtl_pool *pool_;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *random_matrix(size_t n, amtl_rng *r)
{
    float *p = amtl_alloc_array(n, sizeof *p);
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = amtl_rng_uniform_range(r, -1.0f, 1.0f);
    return p;
}

/* Best time of several calls after a warm-up call: at least 3 and until
 * min_s has passed, at most 200.  Returns seconds, or -1 when out of memory. */
static double time_gemm(const shape *s, double min_s, amtl_rng *r)
{
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    float *A = random_matrix(na, r), *B = random_matrix(nb, r), *C = random_matrix(nc, r);
    double best = -1.0;
    if (A && B && C) {
        int lda = s->tA ? s->M : s->K, ldb = s->tB ? s->K : s->N;
        amtl_gemm(pool_, s->tA, s->tB, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
        double start = now();
        for (int rep = 0; rep < 200; rep++) {
            double t0 = now();
            amtl_gemm(pool_, s->tA, s->tB, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
            double t = now() - t0;
            if (best < 0 || t < best)
                best = t;
            if (rep >= 2 && now() - start >= min_s)
                break;
        }
    }
    amtl_free(A);
    amtl_free(B);
    amtl_free(C);
    return best;
}

static double gflops(const shape *s, double t)
{
    return 2.0 * s->M * (double)s->N * s->K / t * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gemm [--threads N] [--quick]\n"
               "  --threads N  BLAS threads (default AMTL_THREADS, else every core)\n"
               "  --quick      squares up to 2048 only, shorter timing\n");
}

int main(int argc, char **argv)
{
    int threads = 0, quick = 0;
    const char *env = getenv("AMTL_THREADS");
    if (env && *env)
        threads = atoi(env);
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--threads") || !strcmp(argv[i], "-t")) && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strncmp(argv[i], "--threads=", 10)) {
            threads = atoi(argv[i] + 10);
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "gemm: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    amtl_blas_single();
    pool_ = amtl_pool_new(threads);
    if (!pool_) {
        fprintf(stderr, "gemm: out of memory\n");
        return 1;
    }
    int used = amtl_pool_size(pool_);
    amtl_rng r;
    amtl_rng_seed(&r, 1);
    double min_s = quick ? 0.1 : 0.4;

    printf("sgemm throughput, OpenBLAS, %d thread%s, row-major, best of >= 3 after a warm-up\n\n",
           used, used == 1 ? "" : "s");

    int sq_sizes[] = {1024, 2048, 4096};
    int n_sq = quick ? 2 : 3;
    double ceiling = 0.0;
    printf("%-44s %2s %5s %5s %5s %9s %8s\n", "square reference", "op", "M", "N", "K",
           "best ms", "GFLOP/s");
    for (int i = 0; i < n_sq; i++) {
        int n = sq_sizes[i];
        shape s = {"square", 0, 0, n, n, n};
        double t = time_gemm(&s, min_s, &r);
        if (t < 0) {
            fprintf(stderr, "gemm: out of memory at %d x %d\n", n, n);
            return 1;
        }
        double g = gflops(&s, t);
        if (g > ceiling)
            ceiling = g;
        char name[64];
        snprintf(name, sizeof name, "square %d", n);
        printf("%-44s %2s %5d %5d %5d %9.3f %8.1f\n", name, "NN", n, n, n, t * 1e3, g);
    }
    printf("\nceiling (best square): %.1f GFLOP/s\n\n", ceiling);

    printf("%-44s %2s %5s %5s %5s %9s %8s %8s\n", "supernet shape (batch 2048)", "op", "M",
           "N", "K", "best ms", "GFLOP/s", "ceiling");
    size_t ns = sizeof supernet_shapes / sizeof supernet_shapes[0];
    for (size_t i = 0; i < ns; i++) {
        const shape *s = &supernet_shapes[i];
        double t = time_gemm(s, min_s, &r);
        if (t < 0) {
            fprintf(stderr, "gemm: out of memory for '%s'\n", s->what);
            return 1;
        }
        double g = gflops(s, t);
        char op[3] = {s->tA ? 'T' : 'N', s->tB ? 'T' : 'N', 0};
        printf("%-44s %2s %5d %5d %5d %9.3f %8.1f %7.0f%%\n", s->what, op, s->M, s->N, s->K,
               t * 1e3, g, 100.0 * g / ceiling);
    }
    amtl_pool_free(pool_);
    return 0;
}
