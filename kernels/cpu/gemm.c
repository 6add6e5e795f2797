/* gemm.c — the CPU matrix product: row-major sgemm through OpenBLAS.
 *
 * Threading: the project has one threading model, the pools of
 * lib/base/pool.h.  OpenBLAS runs on a single thread and parallel work is
 * split by the callers over their pool: the MixedOp step by batch rows, and
 * a large product called from outside a task by amtl_gemm itself, over the
 * rows (or columns) of C.  OpenBLAS's own threads would otherwise spin
 * between its calls on the cores the pool needs (measured: see
 * bench/supernet.c).  Its thread count is the library's own process-wide
 * setting, not ours: making a CPU backend pins it to one (amtl_blas_single).
 */
#include "model/layers.h"
#include "base/pool.h"

#include <pthread.h>
#include <cblas.h>
/* cblas.h pulls in <complex.h>, whose macro I would clash with a dimension. */
#undef I

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void pin_one(void)
{
    openblas_set_num_threads(1);
}

void amtl_blas_single(void)
{
    pthread_once(&blas_once, pin_one);
}

/* Below this many multiply-adds a product is not worth splitting. */
#define SPLIT_MACS (1 << 21)

static void gemm1(int tA, int tB, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans,
                tB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta,
                C, ldc);
}

typedef struct {
    int tA, tB, M, N, K, lda, ldb, ldc, by_rows, npieces;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

/* Task t computes its run of the fixed pieces of C's rows (or columns), one
 * call per piece, so that C does not depend on the thread count. */
static void gemm_task(void *arg, int t, int n)
{
    const gemm_job *j = arg;
    int p0, p1;
    amtl_pool_range(j->npieces, t, n, &p0, &p1);
    for (int p = p0; p < p1; p++) {
        int r0, r1;
        if (j->by_rows) {
            amtl_pool_range(j->M, p, j->npieces, &r0, &r1);
            const float *A = j->A + (j->tA ? (size_t)r0 : (size_t)r0 * j->lda);
            gemm1(j->tA, j->tB, r1 - r0, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb,
                  j->beta, j->C + (size_t)r0 * j->ldc, j->ldc);
        } else {
            amtl_pool_range(j->N, p, j->npieces, &r0, &r1);
            const float *B = j->B + (j->tB ? (size_t)r0 * j->ldb : (size_t)r0);
            gemm1(j->tA, j->tB, j->M, r1 - r0, j->K, j->alpha, j->A, j->lda, B, j->ldb,
                  j->beta, j->C + r0, j->ldc);
        }
    }
}

void amtl_gemm(amtl_pool *pool, int tA, int tB, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta, float *C,
               int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        /* An empty sum: C = beta * C, with beta == 0 overwriting whatever C held
         * (BLAS semantics; not every BLAS handles K == 0 the same way). */
        for (int i = 0; i < M; i++) {
            float *restrict c = C + (size_t)i * (size_t)ldc;
            if (beta == 0.0f)
                for (int j = 0; j < N; j++)
                    c[j] = 0.0f;
            else
                for (int j = 0; j < N; j++)
                    c[j] *= beta;
        }
        return;
    }
    if (!amtl_pool_in_task() && (double)M * N * K >= SPLIT_MACS) {
        /* the longer side of C, in pieces of at least 32, also on one thread
         * (or without a pool): the same calls give the same C */
        int by_rows = M >= N;
        int np = amtl_pool_pieces(by_rows ? M : N, 32);
        if (np > 1) {
            gemm_job j = {tA, tB, M, N, K, lda, ldb, ldc, by_rows, np, alpha, beta, A, B, C};
            amtl_pool_run(pool, np, gemm_task, &j);
            return;
        }
    }
    gemm1(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
