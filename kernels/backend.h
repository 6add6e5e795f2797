/* backend.h — the compute backend of the device step (lib/model/supernet_dev.h):
 * memory and the layer primitives of the supernet, one table of functions
 * per backend.  Two backends implement it:
 *   cpu  (kernels/cpu/backend.c): plain loops and OpenBLAS, host memory;
 *        the reference the CUDA backend is tested against, and the way the
 *        device step itself is tested on a machine without a GPU;
 *   cuda (kernels/cuda/): CUDA kernels and cuBLAS, device memory; one
 *        file per family of primitives, the table in backend.cu; compiled
 *        whenever nvcc is found (AMTL_HAVE_CUDA).
 * The device step (lib/model/supernet_dev.h) is the one supernet step: every
 * device runs it over this table.  On a host backend with `fused` set (the
 * CPU backend of --device cpu) each MixedOp is one fused host kernel
 * (lib/model/mixed_op.c) instead of a composition of the primitives below.
 *
 * Conventions: every primitive takes its backend instance first (be: the
 * table and its context, amtl_backend_*_new); every array argument is
 * backend memory (from alloc) unless named *_host; matrices are row-major with the stated leading dimension;
 * "+=" means the primitive accumulates into its output.  Primitives are
 * asynchronous on the CUDA backend (one stream, in order); an error is
 * sticky and reported by the next sync, get or last_error.  Reductions over
 * the batch may use atomics on CUDA: their results agree with the CPU's to
 * float rounding, not bit for bit.
 */
#ifndef AMTL_BACKEND_H
#define AMTL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "batch_sum.h"
#include "ctr_rng.h"

struct amtl_pool;

#define AMTL_BACKEND_MAX_T 64

/* One Adam segment: w[woff .. woff+n) with moments m, v[moff ..). */
typedef struct {
    int64_t woff, moff, n;
    int32_t decay;      /* 1: weight decay applies */
    int32_t active;     /* 0: skipped */
} amtl_adam_seg;

typedef struct amtl_backend {
    const char *name;   /* "cpu", "cuda" */
    void *ctx;          /* the backend's own state (errors, streams, handles, scratch) */
    /* 1 when backend memory is host memory (the CPU backend): a host array
     * may then be used as backend memory as it is, and the device step works
     * in the host's own weights, gradients, running statistics, Adam moments
     * and split columns instead of copies of them */
    int host;
    /* host backends: 1 when the device step runs each MixedOp as the one
     * fused host kernel of lib/model/mixed_op.c (BatchNorm through the
     * input's covariance, row blocks over the thread pool) instead of
     * composing it from the primitives below; 0 for the plain composition,
     * the oracle the fused kernel and the CUDA backend are tested against */
    int fused;
    /* host backends: the thread pool their work runs on (lib/base/pool.h;
     * borrowed from whoever made the backend; NULL: one thread); NULL on
     * CUDA */
    struct amtl_pool *pool;
    /* releases ctx and the table itself (amtl_backend_free) */
    void (*destroy)(struct amtl_backend *be);

    /* ---- memory and errors ------------------------------------------------ */
    /* NULL on failure (last_error says why); n == 0 returns a valid pointer */
    void *(*alloc)(struct amtl_backend *be, size_t bytes);
    void (*free)(struct amtl_backend *be, void *p);
    int (*put)(struct amtl_backend *be, void *dst, const void *src_host,
               size_t bytes);   /* 0 or -1 */
    int (*get)(struct amtl_backend *be, void *dst_host, const void *src,
               size_t bytes);   /* 0 or -1; waits */
    int (*zero)(struct amtl_backend *be, void *p, size_t bytes);
    int (*sync)(struct amtl_backend *be);                 /* waits for the queue; 0 or -1 */
    const char *(*last_error)(struct amtl_backend *be);   /* the first error since start, or NULL */

    /* ---- matrices ------------------------------------------------------------ */
    /* C = alpha·op(A)·op(B) + beta·C, op(X) = Xᵀ when tX: as amtl_gemm */
    void (*gemm)(struct amtl_backend *be, int tA, int tB, int M, int N, int K, float alpha,
                 const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
    /* Y[r,c] += X[r,c] for r < rows, c < C (leading dimensions ldy, ldx) */
    void (*add)(struct amtl_backend *be, float *Y, int ldy, const float *X, int ldx, int rows,
                int C);
    /* y[i] += a·x[i] */
    void (*axpy)(struct amtl_backend *be, float *y, const float *x, float a, size_t n);
    /* out[slot] = Σ_i x[i]·y[i] (accumulated in double where the backend can) */
    void (*dot)(struct amtl_backend *be, float *out, const float *x, const float *y, size_t n);

    /* ---- data ------------------------------------------------------------------ */
    /* A batch from a split's columns: dst[b,c] = cols[c][rows[b]], b < B,
     * c < C (ids int32; dense and labels float); cols, the table of column
     * pointers, and the columns are in the backend's memory */
    void (*take_i32)(struct amtl_backend *be, int32_t *dst, int32_t *const *cols,
                     const int32_t *rows, int B, int C);
    void (*take_f32)(struct amtl_backend *be, float *dst, float *const *cols,
                     const int32_t *rows, int B, int C);
    /* embs[b,f,:] = w[tab[f] + ids[b,f]·E .. +E) */
    void (*embed_gather)(struct amtl_backend *be, float *embs, const float *w, const int64_t *tab,
                         const int32_t *ids,
                         int B, int N, int E);
    /* g[tab[f] + ids[b,f]·E + e] += dembs[b,f,e] */
    void (*embed_scatter)(struct amtl_backend *be, float *g, const int64_t *tab, const int32_t *ids,
                          const float *dembs, int B, int N, int E);

    /* ---- elementwise ------------------------------------------------------------- */
    /* Y[r,c] = act(Y[r,c] + b[c]); act = ReLU when relu, identity otherwise */
    void (*bias_act)(struct amtl_backend *be, float *Y, int ldy, const float *b, int rows, int C,
                     int relu);
    /* s[c] = beta·s[c] + Σ_r X[r,c] */
    void (*colsum)(struct amtl_backend *be, float *s, float beta, const float *X, int ldx, int rows,
                   int C);
    /* dX[i] = Y[i] > 0 ? dY[i] : 0 (dX == dY allowed), rows at stride ld */
    void (*relu_back)(struct amtl_backend *be, float *dX, const float *dY, const float *Y, int ld,
                      int rows, int C);
    /* Dropout with the counter generator of ctr_rng.h, as layers.h
     * amtl_dropout_forward: element i is kept when amtl_ctr_uniform(seed,
     * ctr, i) >= p (ctr: the site, amtl_dropout_site); Y = kept ? X/(1-p) : 0,
     * mask[i] = kept */
    void (*dropout)(struct amtl_backend *be, float *Y, uint8_t *mask, const float *X, size_t n,
                    float p, uint64_t seed,
                    uint64_t ctr);
    /* dX = mask ? dY/(1-p) : 0 (dX == dY allowed); when add, dX += instead */
    void (*dropout_back)(struct amtl_backend *be, float *dX, const float *dY, const uint8_t *mask,
                         size_t n, float p,
                         int add);

    /* ---- BatchNorm1d over the rows of [rows, C] (eps, momentum as torch) -------- */
    /* Y = gamma·(X-mean)·rstd + beta with batch statistics (biased variance);
     * mean[c], rstd[c] kept for the backward; running mean/var updated with
     * the unbiased variance */
    void (*bn_train)(struct amtl_backend *be, float *Y, int ldy, float *mean, float *rstd,
                     float *rmean, float *rvar,
                     const float *X, int ldx, const float *gamma, const float *beta, int rows,
                     int C, float momentum, float eps);
    void (*bn_eval)(struct amtl_backend *be, float *Y, int ldy, const float *X, int ldx,
                    const float *gamma,
                    const float *beta, const float *rmean, const float *rvar, int rows, int C,
                    float eps);
    /* dX (= instead of +=), dgamma += , dbeta += from dY and the forward's X,
     * mean, rstd */
    void (*bn_back)(struct amtl_backend *be, float *dX, int lddx, float *dgamma, float *dbeta,
                    const float *dY, int lddy,
                    const float *X, int ldx, const float *mean, const float *rstd,
                    const float *gamma, int rows, int C);

    /* ---- the supernet's own layers ------------------------------------------------ */
    /* softmax over each row of [rows, K] (Y == X allowed) */
    void (*softmax)(struct amtl_backend *be, float *Y, const float *X, int rows, int K);
    /* dX = Y ⊙ (dY - Σ_k dY·Y) per row (dX == dY allowed) */
    void (*softmax_back)(struct amtl_backend *be, float *dX, const float *dY, const float *Y,
                         int rows, int K);
    /* MixFeature: x[b, f·E+e] = gs[f]·embs[b,f,e]; with u = gi[f]·embs[b,f,:],
     * sums[b,:] = Σ_f u, x[b, N·E + e] = ½(sums² − Σ_f u²); x[b, N·E+E+d] =
     * dense[b,d]; x has leading dimension ldx = N·E+E+D */
    void (*mixfeature)(struct amtl_backend *be, float *x, float *sums, const float *embs,
                       const float *dense,
                       const float *gs, const float *gi, int B, int N, int E, int D);
    /* its backward: dembs += ; dgs[f] = Σ_b,e dx·embs, dgi[f] = Σ dfm·(sums −
     * gi·e)·e (= instead of +=) */
    void (*mixfeature_back)(struct amtl_backend *be, float *dembs, float *dgs, float *dgi,
                            const float *dx,
                            const float *embs, const float *sums, const float *gs,
                            const float *gi, int B, int N, int E, int D);
    /* MixedExpert: out[b,:] = Σ_{i: s[i] != 0} G[b,i]·s[i]·Y[i][b,:], Y [K,ldk]
     * with each expert's output [B,H] at Y + i·ldk */
    void (*expert_mix)(struct amtl_backend *be, float *out, const float *G, const float *s,
                       const float *Y,
                       size_t ldk, int B, int K, int H);
    /* its backward.  ran (K <= 64): bit i set when Y[i] holds expert i's
     * output; Y[i] of a clear bit is not read.  p[b,i] = <dout_b, Y[i]_b> for
     * every i that ran, s 0 or not (0 where the bit is clear), so that the
     * straight-through gradient ds reaches a gated-off expert (DESIGN.md
     * section 3); dG[b,i] = s[i]·p[b,i], ds[i] = Σ_b G[b,i]·p[b,i] (= instead
     * of +=); dY[i] += G[b,i]·s[i]·dout where the bit is set and s[i] != 0 */
    void (*expert_mix_back)(struct amtl_backend *be, float *dY, float *dG, float *ds,
                            const float *dout,
                            const float *G, const float *s, const float *Y, size_t ldk,
                            uint64_t ran, int B, int K, int H);
    /* Loss, as train.c's: for task t with m[b] = labels[b, cond[t]] when
     * cond[t] >= 0 (1 otherwise) and n_t = #{b: m[b] != 0}:
     * loss[t] = (1/n_t) Σ_{m[b]!=0} m[b]·BCE(logits[t,b], labels[b,t]) and
     * dlogits[t,b] = (w[t]/T)·m[b]·(σ(logit) − y)/n_t (0 where m[b] == 0;
     * everything 0 when n_t == 0); logits, dlogits [T,B]; labels [B,T];
     * cond_host, w_host [T] host arrays, T <= AMTL_BACKEND_MAX_T */
    void (*bce)(struct amtl_backend *be, float *loss, float *dlogits, const float *logits,
                const float *labels,
                const int32_t *cond_host, const float *w_host, int B, int T);
    /* Adam (optim.h) over segments: segs [n_segs] in backend memory */
    void (*adam)(struct amtl_backend *be, float *w, float *g, float *m, float *v,
                 const amtl_adam_seg *segs,
                 int n_segs, int64_t total, float lr, float beta1, float beta2, float eps,
                 float wd, int64_t step);

    /* ---- data-parallel training (lib/dist): NULL where a backend has none --- */
    /* While hook is set (NULL unsets it), bn_train and bn_back take their
     * batch sums through it (batch_sum.h): synchronised BatchNorm over the
     * ranks of the job.  The backend keeps the pointer. */
    void (*set_batch_sum)(struct amtl_backend *be, amtl_batch_sum *hook);
    /* dropout over [rows, C] with element (b, c) drawn at counter pos[b]·C + c
     * (pos [rows], backend memory), so that a rank draws for each of its rows
     * the mask one process draws at that row's position in the batch */
    void (*dropout_rows)(struct amtl_backend *be, float *Y, uint8_t *mask, const float *X,
                         int rows, int C, const int32_t *pos, float p, uint64_t seed,
                         uint64_t ctr);
} amtl_backend;

/* A backend is an instance: its table and its context.  Nothing of a backend
 * is global, so two instances (two threads, two devices) do not share
 * errors, streams or scratch.  Every primitive takes its instance first. */

/* A CPU backend (always built), with the fused MixedOp (fused != 0) or
 * the plain composition of primitives, running on the threads of pool
 * (lib/base/pool.h; borrowed: it must outlive the backend; NULL: one
 * thread); NULL when out of memory. */
amtl_backend *amtl_backend_cpu_new(int fused, struct amtl_pool *pool);
/* A CUDA backend on device 0, or NULL when the build has none or no device
 * can be used; *why (when not NULL) then says why.  Each instance has its
 * own stream, cuBLAS handle and scratch.  The backend is a module of its
 * own, loaded on the first call (kernels/cuda_loader.c), so that a process
 * that never asks for it never maps the CUDA libraries. */
amtl_backend *amtl_backend_cuda_new(const char **why);
/* Releases an instance (be->destroy); safe on NULL. */
void amtl_backend_free(amtl_backend *be);

#endif
