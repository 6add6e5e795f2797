/* batchnorm.c — BatchNorm1d over the rows of [rows, C] arrays with leading
 * dimensions (kernels.h): the one copy of its arithmetic on the CPU, the
 * CPU backend's (kernels/cpu/backend.c).  Per-channel sums over the rows are in
 * double, channel block by channel block (CHAN_BLOCK accumulators on the
 * stack). */
#include "kernels.h"

#include <math.h>
#include <stddef.h>

/* Channels per block of double accumulators (on the stack). */
#define CHAN_BLOCK 256

static int min_int(int a, int b) { return a < b ? a : b; }

AMTL_KERNEL void amtl_k_bn_train(float *Y, int ldy, float *mean, float *rstd, float *rmean, float *rvar,
                                  const float *X, int ldx, const float *gamma,
                                  const float *beta, int rows, int C, float momentum,
                                  float eps, amtl_batch_sum *hook)
{
    /* Y[rows, ldy], mean[C], rstd[C], rmean[C], rvar[C], X[rows, ldx],
     * gamma[C], beta[C] */
    for (int c0 = 0; c0 < C; c0 += CHAN_BLOCK) {
        int n = min_int(C - c0, CHAN_BLOCK);
        double sum[CHAN_BLOCK + 1], sq[CHAN_BLOCK + 1], mu[CHAN_BLOCK];
        for (int j = 0; j < n; j++)
            sum[j] = sq[j] = 0.0;
        for (int r = 0; r < rows; r++) {
            const float *restrict x = X + (size_t)r * ldx + c0;
            for (int j = 0; j < n; j++)
                sum[j] += x[j];
        }
        double nr = amtl_batch_sum_rows(hook, sum, (size_t)n, rows);
        double unbias = nr > 1 ? nr / (nr - 1) : 1.0;
        for (int j = 0; j < n; j++)
            mu[j] = nr > 0 ? sum[j] / nr : 0.0;
        /* two passes (mean, then squared deviations): no cancellation */
        for (int r = 0; r < rows; r++) {
            const float *restrict x = X + (size_t)r * ldx + c0;
            for (int j = 0; j < n; j++) {
                double d = x[j] - mu[j];
                sq[j] += d * d;
            }
        }
        amtl_batch_sum_rows(hook, sq, (size_t)n, rows);
        for (int j = 0; j < n; j++) {
            int c = c0 + j;
            double var = nr > 0 ? sq[j] / nr : 0.0;
            mean[c] = (float)mu[j];
            rstd[c] = (float)(1.0 / sqrt(var + eps));
            rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mu[j]);
            rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * var * unbias);
        }
    }
    for (int r = 0; r < rows; r++) {
        const float *restrict x = X + (size_t)r * ldx;
        float *restrict y = Y + (size_t)r * ldy;
        for (int c = 0; c < C; c++)
            y[c] = (x[c] - mean[c]) * rstd[c] * gamma[c] + beta[c];
    }
}
AMTL_KERNEL void amtl_k_bn_eval(float *Y, int ldy, const float *X, int ldx,
                                 const float *gamma, const float *beta,
                                 const float *rmean, const float *rvar, int rows, int C,
                                 float eps)
{
    /* Y[rows, ldy], X[rows, ldx], gamma, beta, rmean, rvar [C] */
    for (int c0 = 0; c0 < C; c0 += CHAN_BLOCK) {
        int n = min_int(C - c0, CHAN_BLOCK);
        float scale[CHAN_BLOCK], shift[CHAN_BLOCK];
        for (int j = 0; j < n; j++) {
            int c = c0 + j;
            double s = gamma[c] / sqrt((double)rvar[c] + eps);
            scale[j] = (float)s;
            shift[j] = (float)(beta[c] - rmean[c] * s);
        }
        for (int r = 0; r < rows; r++) {
            const float *restrict x = X + (size_t)r * ldx + c0;
            float *restrict y = Y + (size_t)r * ldy + c0;
            for (int j = 0; j < n; j++)
                y[j] = x[j] * scale[j] + shift[j];
        }
    }
}
AMTL_KERNEL void amtl_k_bn_back(float *dX, int lddx, float *dgamma, float *dbeta,
                                 const float *dY, int lddy, const float *X, int ldx,
                                 const float *mean, const float *rstd, const float *gamma,
                                 int rows, int C, amtl_batch_sum *hook)
{
    /* dX[rows, lddx] (=), dgamma[C] (+=), dbeta[C] (+=), dY[rows, lddy],
     * X[rows, ldx], mean, rstd, gamma [C].  With xh = (x - mean) rstd:
     *   dx = gamma rstd (dy - mean_r(dy) - xh mean_r(dy xh)).
     * dX may be dY (same leading dimension): each element is read before it
     * is written, and the sums are complete before the first write. */
    for (int c0 = 0; c0 < C; c0 += CHAN_BLOCK) {
        int n = min_int(C - c0, CHAN_BLOCK);
        double sd[2 * CHAN_BLOCK + 1], *sdx = sd + n;
        float mu[CHAN_BLOCK], rs[CHAN_BLOCK], k0[CHAN_BLOCK], k1[CHAN_BLOCK], g[CHAN_BLOCK];
        for (int j = 0; j < n; j++) {
            sd[j] = sdx[j] = 0.0;
            mu[j] = mean[c0 + j];
            rs[j] = rstd[c0 + j];
        }
        for (int r = 0; r < rows; r++) {
            const float *restrict x = X + (size_t)r * ldx + c0;
            const float *restrict dy = dY + (size_t)r * lddy + c0;
            for (int j = 0; j < n; j++) {
                float xh = (x[j] - mu[j]) * rs[j];
                sd[j] += dy[j];
                sdx[j] += dy[j] * xh;
            }
        }
        /* this rank's sums are its share of dgamma and dbeta; the input
         * gradient wants the global batch's */
        for (int j = 0; j < n; j++) {
            int c = c0 + j;
            dbeta[c] += (float)sd[j];
            dgamma[c] += (float)sdx[j];
        }
        double nr = amtl_batch_sum_rows(hook, sd, 2 * (size_t)n, rows);
        for (int j = 0; j < n; j++) {
            int c = c0 + j;
            k0[j] = (float)(sd[j] / nr);
            k1[j] = (float)(sdx[j] / nr);
            g[j] = gamma[c] * rs[j];
        }
        for (int r = 0; r < rows; r++) {
            const float *restrict x = X + (size_t)r * ldx + c0;
            const float *dy = dY + (size_t)r * lddy + c0;
            float *dx = dX + (size_t)r * lddx + c0;
            for (int j = 0; j < n; j++) {
                float xh = (x[j] - mu[j]) * rs[j];
                dx[j] = g[j] * (dy[j] - k0[j] - xh * k1[j]);
            }
        }
    }
}
