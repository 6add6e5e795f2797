/* gemm.c — the CPU matrix product: row-major sgemm through OpenBLAS.
 *
 * Every matrix product of the CPU backend goes through amtl_gemm, so the
 * project has one threading model: OpenBLAS's own threads.
 */
#include "layers.h"

#include <cblas.h>
/* cblas.h pulls in <complex.h>, whose macro I would clash with a dimension. */
#undef I

void amtl_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc)
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
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans,
                tB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta,
                C, ldc);
}

int amtl_blas_set_threads(int n)
{
    if (n <= 0)
        n = openblas_get_num_procs();
    if (n < 1)
        n = 1;
    openblas_set_num_threads(n);
    return openblas_get_num_threads();
}
