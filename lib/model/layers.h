/* layers.h — every layer the supernet is made of, forward and backward, CPU.
 *
 * Conventions (llm.c style): outputs first, then saved activations, then
 * inputs, then parameters, then sizes.  Every pointer has its shape in a
 * comment.  Parameter gradients accumulate (+=); activation gradients are
 * written (=) unless a comment says they accumulate.  Matrices are row-major;
 * a Linear weight is [O, I] as in PyTorch.  These are the plain reference
 * versions the fast paths are tested against.
 */
#ifndef AMTL_LAYERS_H
#define AMTL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"

/* ---- GEMM (OpenBLAS) ---------------------------------------------------- */

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major; op = transpose when tA/tB. */
void amtl_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* Sets the BLAS thread count (0 = all cores); returns the count in force. */
int amtl_blas_set_threads(int n);

/* ---- initialisation (PyTorch defaults) ---------------------------------- */

/* W[O,I] and b[O] uniform in ±1/sqrt(I); b may be NULL. */
void amtl_linear_init(float *W, float *b, int I, int O, amtl_rng *rng);
/* table[V,E] ~ N(0,1) */
void amtl_embedding_init(float *table, int64_t V, int E, amtl_rng *rng);

/* ---- Linear --------------------------------------------------------------- */

/* out[B,O] = inp[B,I] · W[O,I]ᵀ + b[O]; b may be NULL (no bias). */
void amtl_linear_forward(float *out, const float *inp, const float *W, const float *b,
                         int B, int I, int O);
/* dinp[B,I] = dout[B,O] · W (skipped when dinp is NULL);
 * dW[O,I] += doutᵀ · inp; db[O] += Σ_b dout (skipped when db is NULL). */
void amtl_linear_backward(float *dinp, float *dW, float *db, const float *dout,
                          const float *inp, const float *W, int B, int I, int O);

/* ---- BatchNorm1d ---------------------------------------------------------- */

/* Training: batch statistics.  out[B,C]; saved mean[C], rstd[C] = 1/sqrt(var+eps)
 * with the biased variance; running_mean/var[C] updated with momentum, the
 * running variance unbiased (B/(B-1)).  B must be > 1. */
void amtl_batchnorm_forward_train(float *out, float *mean, float *rstd,
                                  float *running_mean, float *running_var,
                                  const float *inp, const float *gamma,
                                  const float *beta, int B, int C, float momentum,
                                  float eps);
/* Evaluation: running statistics. */
void amtl_batchnorm_forward_eval(float *out, const float *inp, const float *gamma,
                                 const float *beta, const float *running_mean,
                                 const float *running_var, int B, int C, float eps);
/* dinp[B,C] written; dgamma[C], dbeta[C] accumulate.  Uses the saved mean/rstd. */
void amtl_batchnorm_backward(float *dinp, float *dgamma, float *dbeta,
                             const float *dout, const float *inp, const float *mean,
                             const float *rstd, const float *gamma, int B, int C);

/* ---- elementwise ---------------------------------------------------------- */

void amtl_relu_forward(float *out, const float *inp, size_t n);
/* dinp = dout where out > 0 (out is the forward output; in-place allowed). */
void amtl_relu_backward(float *dinp, const float *dout, const float *out, size_t n);

/* Training dropout with the counter generator (kernels/ctr_rng.h): element
 * i is kept when amtl_ctr_uniform(seed, site, i) >= p, so the mask is a pure
 * function of (seed, site, i) and every backend draws the same one;
 * mask[i] = kept, out[i] = kept ? inp[i] / (1-p) : 0.  p == 0 copies and
 * sets every mask byte to 1.  The sites of the supernet: amtl_dropout_site. */
void amtl_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n,
                          float p, uint64_t seed, uint64_t site);
/* dinp = mask ? dout / (1-p) : 0, written (add = 0) or added (add = 1). */
void amtl_dropout_backward(float *dinp, const float *dout, const uint8_t *mask,
                           size_t n, float p, int add);

float amtl_sigmoid(float x);  /* stable for large |x| */

/* ---- embeddings and FM ----------------------------------------------------- */

/* out[B,E] = table[ids[b]] (table [V,E]); ids must be in [0, V). */
void amtl_embedding_forward(float *out, const int32_t *ids, const float *table,
                            int B, int E);
/* dtable[V,E] += scatter of dout[B,E]; repeated ids accumulate. */
void amtl_embedding_backward(float *dtable, const float *dout, const int32_t *ids,
                             int B, int E);

/* FM second order over x[B,F,E]: out[B,E] = ½((Σ_f x_f)² − Σ_f x_f²). */
void amtl_fm_forward(float *out, const float *x, int B, int F, int E);
/* dx[B,F,E] = dout[B,E] · (Σ_g x_g − x_f)  (written) */
void amtl_fm_backward(float *dx, const float *dout, const float *x, int B, int F, int E);

/* ---- softmax ---------------------------------------------------------------- */

/* Row-wise softmax: out[R,n] from inp[R,n]; in-place allowed. */
void amtl_softmax_forward(float *out, const float *inp, int R, int n);
/* dinp[R,n] = out ⊙ (dout − Σ_j dout_j out_j) (written). */
void amtl_softmax_backward(float *dinp, const float *dout, const float *out, int R, int n);

/* ---- the straight-through gate (DESIGN.md section 3) -------------------------- */

typedef enum {
    AMTL_GATE_ONES = 0,      /* warm-up, and the reference's behaviour */
    AMTL_GATE_SAMPLE = 1,    /* Bernoulli(sigmoid(beta)) in training */
    AMTL_GATE_THRESHOLD = 2  /* sigmoid(beta) > 0.5 (evaluation) */
} amtl_gate_mode;

/* g[n] = Gate(sigmoid(beta[n])) */
void amtl_gate_forward(float *g, const float *beta, int n, amtl_gate_mode mode,
                       amtl_rng *rng);
/* Straight through: dL/dp = dL/dg, so dbeta[n] += dg · σ(beta)(1 − σ(beta)). */
void amtl_gate_backward(float *dbeta, const float *dg, const float *beta, int n);

/* ---- loss ----------------------------------------------------------------------- */

/* Mean over the rows where w[b] != 0 (w NULL = all rows) of
 * BCE-with-logits(logit[b], y[b]), computed stably; returns 0 when no row counts. */
double amtl_bce_logits_forward(const float *logit, const float *y, const float *w, int B);
/* dlogit[b] = scale · w[b] · (σ(logit) − y) / (number of counted rows) (written). */
void amtl_bce_logits_backward(float *dlogit, const float *logit, const float *y,
                              const float *w, int B, float scale);

/* ---- the mixtures of MixedOp and MixedExpert --------------------------------------- */

/* MixedOp: out[n] = Σ_k w[k] · xs[k][n]; xs[k] NULL means a Zero op. */
void amtl_wsum_forward(float *out, const float *const *xs, const float *w, int P, size_t n);
/* dxs[k][n] = w[k] · dout (written; skipped for NULL); dw[k] += Σ_n dout · xs[k]. */
void amtl_wsum_backward(float *const *dxs, float *dw, const float *dout,
                        const float *const *xs, const float *w, int P, size_t n);

/* MixedExpert: out[B,H] = Σ_i g[B,i] · s[i] · ys[i][B,H], i < K. */
void amtl_expert_mix_forward(float *out, const float *const *ys, const float *g,
                             const float *s, int B, int K, int H);
/* dys[i][B,H] += g·s·dout (accumulate: an expert feeds several consumers; NULL
 * skips); dg[B,K] = s_i · <dout_b, ys[i]_b> (written); ds[K] += Σ_b g·<dout_b, ys[i]_b>. */
void amtl_expert_mix_backward(float *const *dys, float *dg, float *ds, const float *dout,
                              const float *const *ys, const float *g, const float *s,
                              int B, int K, int H);

#endif
