/* matrix.cu — the CUDA backend's products and sums: gemm through cuBLAS (a
 * kernel when K is 0), add, axpy, dot, and the second stage of the two-stage
 * reductions, which dot and the supernet's backwards (supernet_ops.cu)
 * share. */
#include <stddef.h>

#include "cuda_impl.cuh"

/* ---- kernels ---------------------------------------------------------------------- */

/* out[i] = Σ_p part[i·nparts + p] for i < nout, in order: the second stage
 * of the two-stage reductions. */
__global__ static void k_sum_parts(float *out, const double *part, int nout, int nparts)
{
    GRID_STRIDE(i, (size_t)nout) {
        const double *p = part + i * (size_t)nparts;
        double s = 0.0;
        for (int k = 0; k < nparts; k++)
            s += p[k];
        out[i] = (float)s;
    }
}

/* C[r,c] = beta·C[r,c] for r < M, c < N (beta 0 does not read C): gemm with
 * K == 0, which cuBLAS's leading-dimension checks would refuse. */
__global__ static void k_scale(float *C, int ldc, float beta, int M, int N)
{
    GRID_STRIDE(i, (size_t)M * N) {
        size_t r = i / N, c = i % N;
        float *p = C + r * ldc + c;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

/* Y[r,c] += X[r,c] */
__global__ static void k_add(float *Y, int ldy, const float *X, int ldx, int rows, int C)
{
    GRID_STRIDE(i, (size_t)rows * C) {
        size_t r = i / C, c = i % C;
        Y[r * ldy + c] += X[r * ldx + c];
    }
}

/* y[i] += a·x[i] */
__global__ static void k_axpy(float *y, const float *x, float a, size_t n)
{
    GRID_STRIDE(i, n)
        y[i] += a * x[i];
}

/* part[block] = this block's share of Σ x·y (double); k_sum_parts adds them */
__global__ static void k_dot(double *part, const float *x, const float *y, size_t n)
{
    __shared__ double sh[TPB];
    double s = 0.0;
    GRID_STRIDE(i, n)
        s += (double)x[i] * (double)y[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

/* ---- matrices ------------------------------------------------------------------------ */

/* Row-major C[M,N] = α·op(A)·op(B) + β·C is column-major Cᵀ = α·op(B)ᵀ·op(A)ᵀ
 * + β·Cᵀ, and a row-major matrix with leading dimension ld is its transpose
 * in column-major with the same ld: so B and A swap places, M and N swap,
 * and the transpose flags stay as given. */
void amtl_cu_gemm(amtl_backend *be, int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    amtl_cu_ctx *cu = CU(be);
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        LAUNCH(k_scale, blocks_for(cu, (size_t)M * N), TPB, C, ldc, beta, M, N);
        return;
    }
    amtl_cu_blas_ok(cu, cublasSgemm(cu->blas, tB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                tA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda,
                                &beta, C, ldc),
                    "cublasSgemm");
}

void amtl_cu_add(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, int rows, int C)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows > 0 && C > 0)
        LAUNCH(k_add, blocks_for(cu, (size_t)rows * C), TPB, Y, ldy, X, ldx, rows, C);
}

void amtl_cu_axpy(amtl_backend *be, float *y, const float *x, float a, size_t n)
{
    amtl_cu_ctx *cu = CU(be);
    if (n)
        LAUNCH(k_axpy, blocks_for(cu, n), TPB, y, x, a, n);
}

void amtl_cu_dot(amtl_backend *be, float *out, const float *x, const float *y, size_t n)
{
    amtl_cu_ctx *cu = CU(be);
    /* *out is written (n == 0 gives 0) */
    unsigned nb = n ? blocks_for(cu, n) : 1;
    if (nb > 1024)
        nb = 1024;
    double *part = amtl_cu_scratch(cu, nb);
    if (!part)
        return;
    LAUNCH(k_dot, nb, TPB, part, x, y, n);
    LAUNCH(k_sum_parts, 1, 32, out, part, 1, (int)nb);
}

void amtl_cu_sum_parts(amtl_backend *be, float *out, const double *part, int nout, int nparts)
{
    amtl_cu_ctx *cu = CU(be);
    LAUNCH(k_sum_parts, blocks_for(cu, (size_t)nout), TPB, out, part, nout, nparts);
}
