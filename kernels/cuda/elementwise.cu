/* elementwise.cu — the CUDA backend's elementwise layers: bias and
 * activation, the column sums of the bias gradient, the ReLU backward, and
 * dropout with the counter generator of ctr_rng.h (the CPU's draw). */
#include <stddef.h>
#include <stdint.h>

#include "cuda_impl.cuh"

/* ---- kernels ---------------------------------------------------------------------- */

/* Y[r,c] = act(Y[r,c] + b[c]) */
__global__ static void k_bias_act(float *Y, int ldy, const float *b, int rows, int C, int relu)
{
    GRID_STRIDE(i, (size_t)rows * C) {
        size_t r = i / C, c = i % C;
        float *p = Y + r * ldy + c;
        float v = *p + b[c];
        *p = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

/* s[c] = beta·s[c] + Σ_r X[r,c]; block (CW, RL) per CW columns, beta 0
 * does not read s (as the CPU backend) */
__global__ static void k_colsum(float *s, float beta, const float *X, int ldx, int rows, int C)
{
    __shared__ double sh[RL][CW];
    int c = blockIdx.x * CW + threadIdx.x;
    double acc = 0.0;
    if (c < C)
        for (int r = threadIdx.y; r < rows; r += RL)
            acc += X[(size_t)r * ldx + c];
    acc = lanes_sum(acc, sh);
    if (c < C && threadIdx.y == 0)
        s[c] = beta == 0.0f ? (float)acc : (float)((double)beta * s[c] + acc);
}

/* dX = Y > 0 ? dY : 0 (dX may be dY: each thread reads its element first) */
__global__ static void k_relu_back(float *dX, const float *dY, const float *Y, int ld, int rows,
                                   int C)
{
    GRID_STRIDE(i, (size_t)rows * C) {
        size_t j = i / C * ld + i % C;
        dX[j] = Y[j] > 0.0f ? dY[j] : 0.0f;
    }
}

/* element i kept when amtl_ctr_uniform(seed, ctr, i) >= p: the CPU's draw */
__global__ static void k_dropout(float *Y, uint8_t *mask, const float *X, size_t n, float p,
                                 uint64_t seed, uint64_t ctr)
{
    float keep = 1.0f - p;
    GRID_STRIDE(i, n) {
        int kept = amtl_ctr_uniform(seed, ctr, i) >= p;
        mask[i] = (uint8_t)kept;
        Y[i] = kept ? X[i] / keep : 0.0f;
    }
}

/* dX (= or +=) mask ? dY/(1-p) : 0 (dX may be dY) */
__global__ static void k_dropout_back(float *dX, const float *dY, const uint8_t *mask, size_t n,
                                      float p, int add)
{
    float keep = 1.0f - p;
    GRID_STRIDE(i, n) {
        float v = mask[i] ? dY[i] / keep : 0.0f;
        dX[i] = add ? dX[i] + v : v;
    }
}

/* ---- elementwise ---------------------------------------------------------------------------- */

void amtl_cu_bias_act(amtl_backend *be, float *Y, int ldy, const float *b, int rows, int C, int relu)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows > 0 && C > 0)
        LAUNCH(k_bias_act, blocks_for(cu, (size_t)rows * C), TPB, Y, ldy, b, rows, C, relu);
}

void amtl_cu_colsum(amtl_backend *be, float *s, float beta, const float *X, int ldx, int rows, int C)
{
    amtl_cu_ctx *cu = CU(be);
    if (C > 0)
        LAUNCH(k_colsum, (C + CW - 1) / CW, dim3(CW, RL), s, beta, X, ldx, rows > 0 ? rows : 0,
               C);
}

void amtl_cu_relu_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int ld, int rows, int C)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows > 0 && C > 0)
        LAUNCH(k_relu_back, blocks_for(cu, (size_t)rows * C), TPB, dX, dY, Y, ld, rows, C);
}

void amtl_cu_dropout(amtl_backend *be, float *Y, uint8_t *mask, const float *X, size_t n, float p, uint64_t seed,
                     uint64_t ctr)
{
    amtl_cu_ctx *cu = CU(be);
    if (n)
        LAUNCH(k_dropout, blocks_for(cu, n), TPB, Y, mask, X, n, p, seed, ctr);
}

void amtl_cu_dropout_back(amtl_backend *be, float *dX, const float *dY, const uint8_t *mask, size_t n, float p,
                          int add)
{
    amtl_cu_ctx *cu = CU(be);
    if (n)
        LAUNCH(k_dropout_back, blocks_for(cu, n), TPB, dX, dY, mask, n, p, add);
}
