/* kernels.h — the fused elementwise kernels of the MixedOp step.  The CPU
 * versions (kernels/cpu/fused.c) are built with -O3 for the host's vector
 * units; every loop walks rows of a row-major [B, S] array so the compiler
 * vectorises across channels.  Per-channel sums are accumulated in float over
 * blocks of AMTL_K_BLOCK rows and then in double. */
#ifndef AMTL_KERNELS_H
#define AMTL_KERNELS_H

#include <stddef.h>

#define AMTL_K_BLOCK 32

/* s1[c] = Σ_b A[b,c], s2[c] = Σ_b A[b,c]² (double); tmp [2*S] floats. */
void amtl_k_colsums2(double *s1, double *s2, float *tmp, const float *A, int B, int S);
/* H[b,c] = max(A[b,c]*sc[c] + sh[c], 0) */
void amtl_k_affine_relu(float *H, const float *A, const float *sc, const float *sh, int B,
                        int S);
/* Y[b,c] = max(Y[b,c] + bias[c], 0); out[b,c] += w * Y[b,c] */
void amtl_k_bias_relu_mix(float *Y, float *out, const float *bias, float w, int B, int O);
/* R[b,c] = Y[b,c] > 0 ? w*D[b,c] : 0; db[c] += Σ_b R[b,c] */
void amtl_k_relu_back_scaled(float *R, float *db, const float *Y, const float *D, float w,
                             int B, int O, float *tmp);
/* dZ = dH*(H>0) in place; sd[c] = Σ dZ, sdx[c] = Σ dZ*(A-mean)*rstd (double) */
void amtl_k_relu_bn_reduce(float *dH, double *sd, double *sdx, float *tmp, const float *A,
                           const float *H, const float *mean, const float *rstd, int B,
                           int S);
/* dH = k1*dH - k2 - (A-mean)*k3 in place; sA[c] = Σ_b of the result (double) */
void amtl_k_bn_back_apply(float *dH, double *sA, float *tmp, const float *A,
                          const float *mean, const float *k1, const float *k2,
                          const float *k3, int B, int S);
/* Σ a[i]*b[i] in double over float blocks */
double amtl_k_dot(const float *a, const float *b, size_t n);
/* y[i] += w * x[i] */
void amtl_k_axpy(float *y, const float *x, float w, size_t n);

#endif
