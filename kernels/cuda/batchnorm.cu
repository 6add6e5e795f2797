/* batchnorm.cu — the CUDA backend's BatchNorm1d over the rows of [rows, C]:
 * the training forward (batch statistics, running updates), the evaluation
 * forward (running statistics) and the backward, each a block per chunk of
 * CW channels. */
#include <math.h>
#include <stddef.h>

#include "cuda_impl.cuh"

/* ---- kernels ---------------------------------------------------------------------- */

/* BatchNorm training forward; block (CW, RL) per CW channels, three passes
 * over its columns: mean, squared deviations (two passes: no
 * cancellation), normalisation.  The statistics and running updates in
 * double, as the CPU. */
__global__ static void k_bn_train(float *Y, int ldy, float *mean, float *rstd, float *rmean,
                                  float *rvar, const float *X, int ldx, const float *gamma,
                                  const float *beta, int rows, int C, float momentum, float eps)
{
    __shared__ double sh[RL][CW];
    int c = blockIdx.x * CW + threadIdx.x;
    int ok = c < C;
    double acc = 0.0;
    if (ok)
        for (int r = threadIdx.y; r < rows; r += RL)
            acc += X[(size_t)r * ldx + c];
    double mu = lanes_sum(acc, sh) / rows;
    acc = 0.0;
    if (ok)
        for (int r = threadIdx.y; r < rows; r += RL) {
            double d = X[(size_t)r * ldx + c] - mu;
            acc += d * d;
        }
    double var = lanes_sum(acc, sh) / rows;
    if (!ok)
        return;   /* no barrier follows */
    float mf = (float)mu, rs = (float)(1.0 / sqrt(var + eps));
    if (threadIdx.y == 0) {
        double unbias = rows > 1 ? (double)rows / (double)(rows - 1) : 1.0;
        mean[c] = mf;
        rstd[c] = rs;
        rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mu);
        rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * var * unbias);
    }
    float ga = gamma[c], be = beta[c];
    for (int r = threadIdx.y; r < rows; r += RL)
        Y[(size_t)r * ldy + c] = (X[(size_t)r * ldx + c] - mf) * rs * ga + be;
}

/* BatchNorm evaluation: Y = X·scale + shift per channel, scale and shift in
 * double as the CPU; block (CW, RL), grid (channel chunks, row chunks) */
__global__ static void k_bn_eval(float *Y, int ldy, const float *X, int ldx, const float *gamma,
                                 const float *beta, const float *rmean, const float *rvar,
                                 int rows, int C, float eps)
{
    int c = blockIdx.x * CW + threadIdx.x;
    if (c >= C)
        return;
    double s = gamma[c] / sqrt((double)rvar[c] + eps);
    float scale = (float)s, shift = (float)(beta[c] - rmean[c] * s);
    for (int r = blockIdx.y * RL + threadIdx.y; r < rows; r += RL * gridDim.y)
        Y[(size_t)r * ldy + c] = X[(size_t)r * ldx + c] * scale + shift;
}

/* BatchNorm backward; block (CW, RL) per CW channels: the sums Σdy and
 * Σdy·xh (double), dbeta/dgamma +=, then dX.  dX may be dY (same leading
 * dimension): the sums are complete before the first write, and each
 * element is read by the thread that writes it. */
__global__ static void k_bn_back(float *dX, int lddx, float *dgamma, float *dbeta,
                                 const float *dY, int lddy, const float *X, int ldx,
                                 const float *mean, const float *rstd, const float *gamma,
                                 int rows, int C)
{
    __shared__ double sh[RL][CW];
    int c = blockIdx.x * CW + threadIdx.x;
    int ok = c < C;
    float mu = ok ? mean[c] : 0.0f, rs = ok ? rstd[c] : 0.0f;
    double sd = 0.0, sdx = 0.0;
    if (ok)
        for (int r = threadIdx.y; r < rows; r += RL) {
            float xh = (X[(size_t)r * ldx + c] - mu) * rs;
            float dy = dY[(size_t)r * lddy + c];
            sd += dy;
            sdx += dy * xh;
        }
    sd = lanes_sum(sd, sh);
    sdx = lanes_sum(sdx, sh);
    if (!ok)
        return;   /* no barrier follows */
    if (threadIdx.y == 0) {
        dbeta[c] += (float)sd;
        dgamma[c] += (float)sdx;
    }
    float k0 = (float)(sd / rows), k1 = (float)(sdx / rows), gr = gamma[c] * rs;
    for (int r = threadIdx.y; r < rows; r += RL) {
        float xh = (X[(size_t)r * ldx + c] - mu) * rs;
        float dy = dY[(size_t)r * lddy + c];
        dX[(size_t)r * lddx + c] = gr * (dy - k0 - xh * k1);
    }
}

/* ---- BatchNorm1d ------------------------------------------------------------------------------ */

void amtl_cu_bn_train(amtl_backend *be, float *Y, int ldy, float *mean, float *rstd, float *rmean, float *rvar,
                      const float *X, int ldx, const float *gamma, const float *beta, int rows,
                      int C, float momentum, float eps)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows > 0 && C > 0)
        LAUNCH(k_bn_train, (C + CW - 1) / CW, dim3(CW, RL), Y, ldy, mean, rstd, rmean, rvar, X,
               ldx, gamma, beta, rows, C, momentum, eps);
}

void amtl_cu_bn_eval(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, const float *gamma,
                     const float *beta, const float *rmean, const float *rvar, int rows, int C,
                     float eps)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows <= 0 || C <= 0)
        return;
    unsigned gy = (unsigned)((rows + RL - 1) / RL);
    if (gy > 64)
        gy = 64;
    LAUNCH(k_bn_eval, dim3((C + CW - 1) / CW, gy), dim3(CW, RL), Y, ldy, X, ldx, gamma, beta,
           rmean, rvar, rows, C, eps);
}

void amtl_cu_bn_back(amtl_backend *be, float *dX, int lddx, float *dgamma, float *dbeta, const float *dY, int lddy,
                     const float *X, int ldx, const float *mean, const float *rstd,
                     const float *gamma, int rows, int C)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows > 0 && C > 0)
        LAUNCH(k_bn_back, (C + CW - 1) / CW, dim3(CW, RL), dX, lddx, dgamma, dbeta, dY, lddy, X,
               ldx, mean, rstd, gamma, rows, C);
}
