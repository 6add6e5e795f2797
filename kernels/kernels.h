/* kernels.h — the fused elementwise kernels of the MixedOp step.  The CPU
 * versions (kernels/cpu/fused.c) are built with -O3 for the host's vector
 * units; every loop walks rows of a row-major [rows, C] array so the compiler
 * vectorises across channels.  Per-channel sums are accumulated in float over
 * blocks of AMTL_K_BLOCK rows and then in double.
 *
 * The MixedOp calls them on a block of rows of one thread's share of the
 * batch, so the "+=" accumulators below are that thread's partial sums; the
 * caller combines the threads' partials in a fixed order.  tmp arguments are
 * scratch of the stated size.  Plain versions of each are in
 * tests/unit/test_kernels.c. */
#ifndef AMTL_KERNELS_H
#define AMTL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "batch_sum.h"

#define AMTL_K_BLOCK 32

/* A kernel compiled for the baseline and again for AVX2 and x86-64-v4
 * (AVX-512 F, BW, DQ and VL: DQ's 64-bit multiply vectorises the dropout's
 * counter generator), the clone chosen when the program loads by the CPU's
 * features (GCC's target_clones, an ifunc resolved with
 * __builtin_cpu_supports), so that one binary is portable and still
 * vectorises for the machine it runs on.  AMTL_NO_CLONES (or another
 * compiler) leaves the baseline only. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(AMTL_NO_CLONES)
#define AMTL_KERNEL __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define AMTL_KERNEL
#endif
/* A helper of kernels, inlined into each clone (and so vectorised for it). */
#if defined(__GNUC__)
#define AMTL_KERNEL_HELPER static inline __attribute__((always_inline))
#else
#define AMTL_KERNEL_HELPER static inline
#endif

/* Σ a[i]*b[i] in double on 8 independent lanes (the compiler vectorises
 * the lanes; it may not reorder one running sum), the tail, then the lanes
 * in order: the CPU backend's dot and the fused kernels' row products. */
AMTL_KERNEL_HELPER double amtl_k_dot8(const float *restrict a, const float *restrict b,
                                      size_t n)
{
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            lane[k] += (double)a[i + k] * b[i + k];
    double s = 0;
    for (; i < n; i++)
        s += (double)a[i] * b[i];
    for (int k = 0; k < 8; k++)
        s += lane[k];
    return s;
}

/* s[c] += Σ_b X[b,c] (double); tmp [C] */
void amtl_k_colsum_acc(double *s, float *tmp, const float *X, int rows, int C);
/* Y[b,c] = X[b,c] - v[c] (Y == X allowed) */
void amtl_k_sub_row(float *Y, const float *X, const float *v, int rows, int C);
/* Y[r,c] = s[r] * X[r,c]: rows of X scaled */
void amtl_k_scale_rows(float *Y, const float *X, const float *s, int rows, int C);
/* H[b,c] = max(A[b,c]*sc[c] + sh[c], 0) (H == A allowed); rows of H and A
 * at stride ld >= C */
void amtl_k_affine_relu(float *H, const float *A, const float *sc, const float *sh, int rows,
                        int C, int ld);
/* A[b,c] = H[b,c], then H[b,c] = max(H[b,c]*sc[c] + sh[c], 0): a block of
 * pre-activations kept in A (written past the caches: A is read back only
 * in the backward pass) and normalised in place; rows at stride ld >= C */
void amtl_k_keep_affine_relu(float *A, float *H, const float *sc, const float *sh, int rows,
                             int C, int ld);
/* Y[b,c] = max(Y[b,c] + bias[c], 0); out[b,c] += w * Y[b,c]; with keep
 * (not NULL), keep[b,c] = Y[b,c] > 0: the ReLU's mask for the backward */
void amtl_k_bias_relu_mix(float *Y, float *out, uint8_t *keep, const float *bias, float w,
                          int rows, int O);
/* The ReLU backward of an MLP candidate's output from its mask:
 * R[b,c] = keep[b,c] ? D[b,c] : 0;  t[c] = Σ_b R[b,c] (float);
 * db[c] += w*t[c];  *dot += Σ_c t[c]*bias[c] (double); tmp [O] */
void amtl_k_relu_back_keep(float *R, float *db, double *dot, float *tmp, const uint8_t *keep,
                           const float *D, const float *bias, float w, int rows, int O);
/* The ReLU and BatchNorm backward reductions over a block, with A centred:
 * *dot += Σ_b,c dZ*H (double, dZ as given);  v = H > 0 ? w*dZ : 0;
 * sd[c] += Σ_b v;  sq[c] += Σ_b v*A (double);  dZ = k1[c]*v (in place);
 * rows at stride ld >= S; tmp [3*min(S, 256)] */
void amtl_k_relu_bn_stats(float *dZ, double *sd, double *sq, double *dot, float *tmp,
                          const float *H, const float *A, const float *k1, float w, int rows,
                          int S, int ld);
/* dx[b,c] += m ? scale*(D[b,c] + crow[c]) : 0 with m = mask[b,c], or m = 1
 * when mask is NULL */
void amtl_k_dropout_back_add(float *dx, const float *D, const float *crow,
                             const uint8_t *mask, float scale, int rows, int C);
/* D[c,r] = S[r,c] for r < rows, c < cols (leading dimensions lds, ldd) */
void amtl_k_transpose(float *D, int ldd, const float *S, int lds, int rows, int cols);
/* G[r,c] += Σ_p parts[p][c,r] - k3[r]*W[r,c] for r < rows, c < C, with G and
 * W [rows,C] and each part [C, ldp]: first the k3 term, then the parts' sum
 * (added in order p = 0..) */
void amtl_k_w1_grad(float *G, const float *const *parts, int nparts, int ldp,
                    const float *k3, const float *W, int rows, int C);
/* g[i] += Σ_p parts[p][i], the parts added in order p = 0.. and then to g */
void amtl_k_sum_parts(float *g, const float *const *parts, int nparts, size_t n);
/* G[c,r] += Σ_p parts[p][r,c] for r < rows, c < cols, G [cols, ldg], parts
 * [rows, ldp], the parts added in order p = 0.. and then to G */
void amtl_k_sum_parts_t(float *G, int ldg, const float *const *parts, int nparts, int ldp,
                        int rows, int cols);
/* Per row r < rows of [rows,C] arrays, in double: var[r] = Σ_c WC[r,c]*W[r,c]
 * and mean[r] = Σ_c W[r,c]*mu[c] (BatchNorm statistics through the input's
 * covariance, mixed_op.c) */
void amtl_k_bn_moments(double *var, double *mean, const float *WC, const float *W,
                       const float *mu, int rows, int C);
/* Σ a[i]*b[i] in double over float blocks */
double amtl_k_dot(const float *a, const float *b, size_t n);
/* BatchNorm1d over the rows of [rows, C] (eps and momentum as torch), the
 * one copy of its arithmetic (batchnorm.c; backend.h states the semantics):
 * training with batch statistics (biased variance; running statistics
 * updated with the unbiased one), evaluation with the running ones, and the
 * backward (dX =, dgamma and dbeta +=; dX may be dY at the same leading
 * dimension).  With a hook (batch_sum.h; NULL: none) the statistics and the
 * backward's sums are the global batch's (synchronised BatchNorm); dgamma
 * and dbeta still get this rank's own sums, summed with the other
 * gradients. */
void amtl_k_bn_train(float *Y, int ldy, float *mean, float *rstd, float *rmean, float *rvar,
                     const float *X, int ldx, const float *gamma, const float *beta,
                     int rows, int C, float momentum, float eps, amtl_batch_sum *hook);
void amtl_k_bn_eval(float *Y, int ldy, const float *X, int ldx, const float *gamma,
                    const float *beta, const float *rmean, const float *rvar, int rows, int C,
                    float eps);
void amtl_k_bn_back(float *dX, int lddx, float *dgamma, float *dbeta, const float *dY,
                    int lddy, const float *X, int ldx, const float *mean, const float *rstd,
                    const float *gamma, int rows, int C, amtl_batch_sum *hook);
/* MixFeature (mixfeature.c; backend.h states the semantics): x[b, f·E+e] =
 * gs[f]·embs[b,f,e]; with u = gi[f]·embs[b,f,:] (a field with gi 0 left
 * out), sums[b,:] = Σ_f u, x[b, N·E+e] = ½(sums² − Σ_f u²), x[b, N·E+E+d] =
 * dense[b,d]; x's leading dimension N·E+E+D.  The backward adds into dembs
 * and writes dgs, dgi (per-field sums in double over the rows in order). */
void amtl_k_mixfeature(float *x, float *sums, const float *embs, const float *dense,
                       const float *gs, const float *gi, int B, int N, int E, int D);
void amtl_k_mixfeature_back(float *dembs, float *dgs, float *dgi, const float *dx,
                            const float *embs, const float *sums, const float *gs,
                            const float *gi, int B, int N, int E, int D);
/* Dropout with the counter generator (ctr_rng.h; layers.h
 * amtl_dropout_forward, which calls it for p > 0): mask[i] = kept =
 * amtl_ctr_uniform(seed, site, i) >= p, out[i] = kept ? inp[i]/(1-p) : 0
 * (out may be inp) */
void amtl_k_dropout(float *out, uint8_t *mask, const float *inp, size_t n, float p,
                    uint64_t seed, uint64_t site);
/* The same over [rows, C] with row b drawn where row pos[b] of the whole
 * batch is: element (b, c) at counter pos[b]·C + c.  A rank of a
 * data-parallel job holds some rows of the global batch; with their
 * positions its masks are those one process draws for the same rows. */
void amtl_k_dropout_rows(float *out, uint8_t *mask, const float *inp, int rows, int C,
                         const int32_t *pos, float p, uint64_t seed, uint64_t site);
/* y[i] += w * x[i] */
void amtl_k_axpy(float *y, const float *x, float w, size_t n);
/* y[i] = w * x[i] */
void amtl_k_scale(float *y, const float *x, float w, size_t n);

#endif
