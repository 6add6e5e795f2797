/* layers.h — the host's layer functions: the matrix product, initialisation,
 * dropout, softmax, the straight-through gate and the loss, used by the
 * step's host side (gates, mixing weights, architecture gradients), the CPU
 * backend and the fused MixedOp.  The layers of the step itself (Linear,
 * BatchNorm, ReLU, MixFeature, the mixtures) are the backend's primitives
 * (kernels/backend.h), each written once per backend.
 *
 * Conventions (llm.c style): outputs first, then saved activations, then
 * inputs, then parameters, then sizes.  Every pointer has its shape in a
 * comment.  Parameter gradients accumulate (+=); activation gradients are
 * written (=) unless a comment says they accumulate.  Matrices are row-major;
 * a Linear weight is [O, I] as in PyTorch.
 */
#ifndef AMTL_LAYERS_H
#define AMTL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"

/* ---- GEMM (OpenBLAS) ---------------------------------------------------- */

struct amtl_pool;
/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major; op = transpose when
 * tA/tB.  A large product called from outside a task is split over pool's
 * threads (NULL: one thread) in pieces that do not depend on their count. */
void amtl_gemm(struct amtl_pool *pool, int tA, int tB, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta, float *C,
               int ldc);
/* OpenBLAS on one thread from now on (its count is the library's process-wide
 * setting; the pools do the threading): done once, by every CPU backend. */
void amtl_blas_single(void);

/* ---- initialisation (PyTorch defaults) ---------------------------------- */

/* W[O,I] and b[O] uniform in ±1/sqrt(I); b may be NULL. */
void amtl_linear_init(float *W, float *b, int I, int O, amtl_rng *rng);
/* table[V,E] ~ N(0,1) */
void amtl_embedding_init(float *table, int64_t V, int E, amtl_rng *rng);

/* ---- elementwise ---------------------------------------------------------- */

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

#endif
