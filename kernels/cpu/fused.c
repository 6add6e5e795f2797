/* fused.c — CPU versions of the fused MixedOp kernels (kernels.h). */
#include "kernels.h"

#include <string.h>

void amtl_k_colsums2(double *s1, double *s2, float *tmp, const float *A, int B, int S)
{
    float *restrict t1 = tmp, *restrict t2 = tmp + S;
    for (int c = 0; c < S; c++)
        s1[c] = s2[c] = 0;
    for (int b0 = 0; b0 < B; b0 += AMTL_K_BLOCK) {
        int b1 = b0 + AMTL_K_BLOCK < B ? b0 + AMTL_K_BLOCK : B;
        memset(t1, 0, (size_t)S * sizeof(float));
        memset(t2, 0, (size_t)S * sizeof(float));
        for (int b = b0; b < b1; b++) {
            const float *restrict a = A + (size_t)b * S;
            for (int c = 0; c < S; c++) {
                t1[c] += a[c];
                t2[c] += a[c] * a[c];
            }
        }
        for (int c = 0; c < S; c++) {
            s1[c] += t1[c];
            s2[c] += t2[c];
        }
    }
}

void amtl_k_affine_relu(float *H, const float *A, const float *sc, const float *sh, int B,
                        int S)
{
    const float *restrict p = sc, *restrict q = sh;
    for (int b = 0; b < B; b++) {
        const float *restrict a = A + (size_t)b * S;
        float *restrict h = H + (size_t)b * S;
        for (int c = 0; c < S; c++) {
            float v = a[c] * p[c] + q[c];
            h[c] = v > 0.0f ? v : 0.0f;
        }
    }
}

void amtl_k_bias_relu_mix(float *Y, float *out, const float *bias, float w, int B, int O)
{
    const float *restrict bb = bias;
    for (int b = 0; b < B; b++) {
        float *restrict y = Y + (size_t)b * O;
        float *restrict o = out + (size_t)b * O;
        for (int c = 0; c < O; c++) {
            float v = y[c] + bb[c];
            v = v > 0.0f ? v : 0.0f;
            y[c] = v;
            o[c] += w * v;
        }
    }
}

void amtl_k_relu_back_scaled(float *R, float *db, const float *Y, const float *D, float w,
                             int B, int O, float *tmp)
{
    float *restrict t = tmp;
    memset(t, 0, (size_t)O * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *restrict y = Y + (size_t)b * O, *restrict d = D + (size_t)b * O;
        float *restrict r = R + (size_t)b * O;
        for (int c = 0; c < O; c++) {
            float v = y[c] > 0.0f ? w * d[c] : 0.0f;
            r[c] = v;
            t[c] += v;
        }
    }
    for (int c = 0; c < O; c++)
        db[c] += t[c];
}

void amtl_k_relu_bn_reduce(float *dH, double *sd, double *sdx, float *tmp, const float *A,
                           const float *H, const float *mean, const float *rstd, int B,
                           int S)
{
    float *restrict t1 = tmp, *restrict t2 = tmp + S;
    const float *restrict mu = mean, *restrict rs = rstd;
    for (int c = 0; c < S; c++)
        sd[c] = sdx[c] = 0;
    for (int b0 = 0; b0 < B; b0 += AMTL_K_BLOCK) {
        int b1 = b0 + AMTL_K_BLOCK < B ? b0 + AMTL_K_BLOCK : B;
        memset(t1, 0, (size_t)S * sizeof(float));
        memset(t2, 0, (size_t)S * sizeof(float));
        for (int b = b0; b < b1; b++) {
            const float *restrict a = A + (size_t)b * S, *restrict h = H + (size_t)b * S;
            float *restrict d = dH + (size_t)b * S;
            for (int c = 0; c < S; c++) {
                float dz = h[c] > 0.0f ? d[c] : 0.0f;
                d[c] = dz;
                t1[c] += dz;
                t2[c] += dz * ((a[c] - mu[c]) * rs[c]);
            }
        }
        for (int c = 0; c < S; c++) {
            sd[c] += t1[c];
            sdx[c] += t2[c];
        }
    }
}

void amtl_k_bn_back_apply(float *dH, double *sA, float *tmp, const float *A,
                          const float *mean, const float *k1, const float *k2,
                          const float *k3, int B, int S)
{
    float *restrict t = tmp;
    const float *restrict mu = mean, *restrict q1 = k1, *restrict q2 = k2, *restrict q3 = k3;
    for (int c = 0; c < S; c++)
        sA[c] = 0;
    for (int b0 = 0; b0 < B; b0 += AMTL_K_BLOCK) {
        int b1 = b0 + AMTL_K_BLOCK < B ? b0 + AMTL_K_BLOCK : B;
        memset(t, 0, (size_t)S * sizeof(float));
        for (int b = b0; b < b1; b++) {
            const float *restrict a = A + (size_t)b * S;
            float *restrict d = dH + (size_t)b * S;
            for (int c = 0; c < S; c++) {
                float v = q1[c] * d[c] - q2[c] - (a[c] - mu[c]) * q3[c];
                d[c] = v;
                t[c] += v;
            }
        }
        for (int c = 0; c < S; c++)
            sA[c] += t[c];
    }
}

double amtl_k_dot(const float *a, const float *b, size_t n)
{
    /* 16 independent float lanes (vectorised without reassociation), summed
     * into double every 1024 elements */
    double s = 0;
    size_t i = 0;
    while (i + 16 <= n) {
        float acc[16] = {0};
        size_t end = i + 1024 <= n ? i + 1024 : n - (n - i) % 16;
        for (; i < end; i += 16)
            for (int k = 0; k < 16; k++)
                acc[k] += a[i + k] * b[i + k];
        for (int k = 0; k < 16; k++)
            s += acc[k];
    }
    for (; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

void amtl_k_axpy(float *y, const float *x, float w, size_t n)
{
    float *restrict yy = y;
    const float *restrict xx = x;
    for (size_t i = 0; i < n; i++)
        yy[i] += w * xx[i];
}
