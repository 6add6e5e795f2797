/* backend.c — the CPU backend of kernels/backend.h: host memory and plain
 * loops over rows (the compiler vectorises across channels), OpenBLAS for
 * the products.  It runs the device step on the CPU (--device cpu, with the
 * fused MixedOp of lib/model/mixed_op.c: be->fused) and is the reference
 * the fused MixedOp and the CUDA backend are tested against (--device
 * cpu-plain, every MixedOp composed of these primitives).  Each
 * primitive is tested against a double-precision reference and finite
 * differences (tests/unit/test_backend*.c); the loss and Adam keep the
 * arithmetic of lib/model/layers.c and lib/train/optim.c; reductions over
 * the batch are in double.  Its memory is the host's: the device step works in the
 * network's own arrays (be->host).
 */
#include "backend.h"
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "train/optim.h"
#include "base/tensor.h"

/* Channels per block of double accumulators (on the stack). */
#define CHAN_BLOCK 256

static int min_int(int a, int b) { return a < b ? a : b; }

/* ---- memory and errors ---------------------------------------------------- */

/* The instance's context: its first error, the batch-sum hook of
 * synchronised BatchNorm (set_batch_sum; NULL: none); its thread pool is
 * be->pool. */
typedef struct {
    char err[128];
    amtl_batch_sum *bsum;
} cpu_ctx;

static void *cpu_alloc(amtl_backend *be, size_t bytes)
{
    cpu_ctx *c = be->ctx;
    void *p = amtl_alloc(bytes);
    if (!p && !c->err[0])
        snprintf(c->err, sizeof c->err, "cannot allocate %zu bytes of host memory", bytes);
    return p;
}

static void cpu_free(amtl_backend *be, void *p)
{
    (void)be;
    amtl_free(p);
}

static int cpu_put(amtl_backend *be, void *dst, const void *src_host, size_t bytes)
{
    (void)be;
    if (bytes)
        memcpy(dst, src_host, bytes);
    return 0;
}

static int cpu_get(amtl_backend *be, void *dst_host, const void *src, size_t bytes)
{
    (void)be;
    if (bytes)
        memcpy(dst_host, src, bytes);
    return 0;
}

static int cpu_zero(amtl_backend *be, void *p, size_t bytes)
{
    (void)be;
    if (bytes)
        memset(p, 0, bytes);
    return 0;
}

static int cpu_sync(amtl_backend *be)
{
    (void)be;
    return 0;
}

static const char *cpu_last_error(amtl_backend *be)
{
    cpu_ctx *c = be->ctx;
    return c->err[0] ? c->err : NULL;
}

/* ---- matrices --------------------------------------------------------------- */

static void cpu_gemm(amtl_backend *be, int tA, int tB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc)
{
    amtl_gemm(be->pool, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

AMTL_KERNEL static void cpu_add(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, int rows, int C)
{
    (void)be;
    /* Y[rows, ldy] (+=), X[rows, ldx] */
    for (int r = 0; r < rows; r++) {
        float *restrict y = Y + (size_t)r * ldy;
        const float *restrict x = X + (size_t)r * ldx;
        for (int c = 0; c < C; c++)
            y[c] += x[c];
    }
}

AMTL_KERNEL static void cpu_axpy(amtl_backend *be, float *y, const float *x, float a, size_t n)
{
    (void)be;
    /* y[n] (+=), x[n] */
    float *restrict yy = y;
    const float *restrict xx = x;
    for (size_t i = 0; i < n; i++)
        yy[i] += a * xx[i];
}

AMTL_KERNEL static void cpu_dot(amtl_backend *be, float *out, const float *x, const float *y, size_t n)
{
    (void)be;
    *out = (float)amtl_k_dot8(x, y, n);
}

/* ---- data --------------------------------------------------------------------- */

AMTL_KERNEL static void cpu_take_i32(amtl_backend *be, int32_t *dst, int32_t *const *cols,
                                     const int32_t *rows, int B, int C)
{
    (void)be;
    /* dst[B,C] row-major; cols[C] columns, rows[B] */
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            dst[(size_t)b * C + c] = cols[c][rows[b]];
}

AMTL_KERNEL static void cpu_take_f32(amtl_backend *be, float *dst, float *const *cols,
                                     const int32_t *rows, int B, int C)
{
    (void)be;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            dst[(size_t)b * C + c] = cols[c][rows[b]];
}

AMTL_KERNEL static void cpu_embed_gather(amtl_backend *be, float *embs, const float *w, const int64_t *tab, const int32_t *ids,
                             int B, int N, int E)
{
    (void)be;
    /* embs[B,N,E], w[...] (field f's table at w + tab[f], rows of E), tab[N],
     * ids[B,N] */
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++) {
            size_t bf = (size_t)b * N + f;
            memcpy(embs + bf * E, w + tab[f] + (int64_t)ids[bf] * E, (size_t)E * sizeof *embs);
        }
}

AMTL_KERNEL static void cpu_embed_scatter(amtl_backend *be, float *g, const int64_t *tab, const int32_t *ids,
                              const float *dembs, int B, int N, int E)
{
    (void)be;
    /* g[...] (+=, laid out as w), tab[N], ids[B,N], dembs[B,N,E]; repeated ids
     * accumulate in row order */
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++) {
            size_t bf = (size_t)b * N + f;
            float *restrict d = g + tab[f] + (int64_t)ids[bf] * E;
            const float *restrict s = dembs + bf * E;
            for (int e = 0; e < E; e++)
                d[e] += s[e];
        }
}

/* ---- elementwise --------------------------------------------------------------- */

AMTL_KERNEL static void cpu_bias_act(amtl_backend *be, float *Y, int ldy, const float *b, int rows, int C, int relu)
{
    (void)be;
    /* Y[rows, ldy], b[C] */
    for (int r = 0; r < rows; r++) {
        float *restrict y = Y + (size_t)r * ldy;
        if (relu)
            for (int c = 0; c < C; c++) {
                float v = y[c] + b[c];
                y[c] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int c = 0; c < C; c++)
                y[c] += b[c];
    }
}

AMTL_KERNEL static void cpu_colsum(amtl_backend *be, float *s, float beta, const float *X, int ldx, int rows, int C)
{
    (void)be;
    /* s[C], X[rows, ldx].  beta == 0 does not read s (as in gemm), so s may
     * start uninitialised. */
    for (int c0 = 0; c0 < C; c0 += CHAN_BLOCK) {
        int n = min_int(C - c0, CHAN_BLOCK);
        double acc[CHAN_BLOCK];
        for (int j = 0; j < n; j++)
            acc[j] = 0.0;
        for (int r = 0; r < rows; r++) {
            const float *restrict x = X + (size_t)r * ldx + c0;
            for (int j = 0; j < n; j++)
                acc[j] += x[j];
        }
        for (int j = 0; j < n; j++)
            s[c0 + j] = beta == 0.0f ? (float)acc[j]
                                     : (float)((double)beta * s[c0 + j] + acc[j]);
    }
}

AMTL_KERNEL static void cpu_relu_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int ld, int rows, int C)
{
    (void)be;
    /* dX, dY, Y [rows, ld]; dX may be dY */
    for (int r = 0; r < rows; r++) {
        float *dx = dX + (size_t)r * ld;
        const float *dy = dY + (size_t)r * ld;
        const float *restrict y = Y + (size_t)r * ld;
        for (int c = 0; c < C; c++)
            dx[c] = y[c] > 0.0f ? dy[c] : 0.0f;
    }
}

static void cpu_dropout(amtl_backend *be, float *Y, uint8_t *mask, const float *X, size_t n, float p,
                        uint64_t seed, uint64_t ctr)
{
    (void)be;
    amtl_dropout_forward(Y, mask, X, n, p, seed, ctr);
}

static void cpu_dropout_rows(amtl_backend *be, float *Y, uint8_t *mask, const float *X, int rows,
                             int C, const int32_t *pos, float p, uint64_t seed, uint64_t ctr)
{
    (void)be;
    if (p <= 0.0f) {
        amtl_dropout_forward(Y, mask, X, (size_t)rows * C, p, seed, ctr);
        return;
    }
    amtl_k_dropout_rows(Y, mask, X, rows, C, pos, p, seed, ctr);
}

static void cpu_dropout_back(amtl_backend *be, float *dX, const float *dY, const uint8_t *mask, size_t n, float p,
                             int add)
{
    (void)be;
    amtl_dropout_backward(dX, dY, mask, n, p, add);
}

/* ---- BatchNorm1d: the arithmetic of amtl_batchnorm_* with leading dimensions -- */

static void cpu_bn_train(amtl_backend *be, float *Y, int ldy, float *mean, float *rstd, float *rmean, float *rvar,
                         const float *X, int ldx, const float *gamma, const float *beta, int rows,
                         int C, float momentum, float eps)
{
    cpu_ctx *c = be->ctx;
    amtl_k_bn_train(Y, ldy, mean, rstd, rmean, rvar, X, ldx, gamma, beta, rows, C, momentum, eps,
                    c->bsum);
}

static void cpu_bn_eval(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, const float *gamma,
                        const float *beta, const float *rmean, const float *rvar, int rows, int C,
                        float eps)
{
    (void)be;
    amtl_k_bn_eval(Y, ldy, X, ldx, gamma, beta, rmean, rvar, rows, C, eps);
}

static void cpu_bn_back(amtl_backend *be, float *dX, int lddx, float *dgamma, float *dbeta, const float *dY, int lddy,
                        const float *X, int ldx, const float *mean, const float *rstd,
                        const float *gamma, int rows, int C)
{
    cpu_ctx *c = be->ctx;
    amtl_k_bn_back(dX, lddx, dgamma, dbeta, dY, lddy, X, ldx, mean, rstd, gamma, rows, C, c->bsum);
}

/* ---- the supernet's own layers ------------------------------------------------- */

AMTL_KERNEL static void cpu_softmax(amtl_backend *be, float *Y, const float *X, int rows, int K)
{
    (void)be;
    amtl_softmax_forward(Y, X, rows, K);
}

AMTL_KERNEL static void cpu_softmax_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int rows, int K)
{
    (void)be;
    amtl_softmax_backward(dX, dY, Y, rows, K);
}

static void cpu_mixfeature(amtl_backend *be, float *x, float *sums, const float *embs, const float *dense,
                           const float *gs, const float *gi, int B, int N, int E, int D)
{
    (void)be;
    amtl_k_mixfeature(x, sums, embs, dense, gs, gi, B, N, E, D);
}

static void cpu_mixfeature_back(amtl_backend *be, float *dembs, float *dgs, float *dgi, const float *dx,
                                const float *embs, const float *sums, const float *gs,
                                const float *gi, int B, int N, int E, int D)
{
    (void)be;
    amtl_k_mixfeature_back(dembs, dgs, dgi, dx, embs, sums, gs, gi, B, N, E, D);
}

AMTL_KERNEL static void cpu_expert_mix(amtl_backend *be, float *out, const float *G, const float *s, const float *Y,
                           size_t ldk, int B, int K, int H)
{
    (void)be;
    /* out[B,H], G[B,K], s[K], Y[K, ldk] (expert i's [B,H] at Y + i·ldk).  An
     * expert with s 0 is not read: it need not have been computed. */
    memset(out, 0, (size_t)B * H * sizeof *out);
    for (int i = 0; i < K; i++) {
        if (s[i] == 0.0f)
            continue;
        const float *y = Y + i * ldk;
        for (int b = 0; b < B; b++) {
            float a = G[(size_t)b * K + i] * s[i];
            const float *restrict yb = y + (size_t)b * H;
            float *restrict ob = out + (size_t)b * H;
            for (int k = 0; k < H; k++)
                ob[k] += a * yb[k];
        }
    }
}

AMTL_KERNEL static void cpu_expert_mix_back(amtl_backend *be, float *dY, float *dG, float *ds, const float *dout,
                                const float *G, const float *s, const float *Y, size_t ldk,
                                uint64_t ran, int B, int K, int H)
{
    (void)be;
    /* dY[K, ldk] (+=), dG[B,K] (=), ds[K] (=), dout[B,H], G[B,K], s[K],
     * Y[K, ldk].  As consumer_backward: ran plays its expert_used. */
    for (int i = 0; i < K; i++) {
        int on = (int)((ran >> i) & 1);
        double dsi = 0.0;
        for (int b = 0; b < B; b++) {
            const float *d = dout + (size_t)b * H;
            float p = 0.0f;
            if (on) {
                const float *y = Y + i * ldk + (size_t)b * H;
                for (int k = 0; k < H; k++)
                    p += d[k] * y[k];
                if (s[i] != 0.0f) {
                    float a = G[(size_t)b * K + i] * s[i];
                    float *restrict dy = dY + i * ldk + (size_t)b * H;
                    for (int k = 0; k < H; k++)
                        dy[k] += a * d[k];
                }
            }
            dG[(size_t)b * K + i] = s[i] * p;
            dsi += (double)G[(size_t)b * K + i] * p;
        }
        ds[i] = (float)dsi;
    }
}

/* BCE with logits, stably: as bce_logit in lib/model/layers.c */
static double bce_logit(double x, double y)
{
    return (x > 0.0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
}

AMTL_KERNEL static void cpu_bce(amtl_backend *be, float *loss, float *dlogits, const float *logits, const float *labels,
                    const int32_t *cond_host, const float *w_host, int B, int T)
{
    (void)be;
    /* loss[T], dlogits[T,B], logits[T,B], labels[B,T], cond_host[T],
     * w_host[T].  The operations of loss_and_grad (lib/train/train.c) through
     * amtl_bce_logits_forward/backward, with the label and mask columns read
     * in place instead of copied out. */
    for (int t = 0; t < T; t++) {
        const float *x = logits + (size_t)t * B;
        float *dx = dlogits + (size_t)t * B;
        int ct = cond_host[t];
        double sum = 0.0;
        int count = 0;
        for (int b = 0; b < B; b++) {
            float m = ct >= 0 ? labels[(size_t)b * T + ct] : 1.0f;
            if (m == 0.0f)
                continue;
            sum += m * bce_logit(x[b], labels[(size_t)b * T + t]);
            count++;
        }
        loss[t] = (float)(count ? sum / count : 0.0);
        float scale = w_host[t] / (float)T;
        float k = count ? scale / (float)count : 0.0f;
        for (int b = 0; b < B; b++) {
            float m = ct >= 0 ? labels[(size_t)b * T + ct] : 1.0f;
            float y = labels[(size_t)b * T + t];
            dx[b] = m == 0.0f ? 0.0f : k * m * (amtl_sigmoid(x[b]) - y);
        }
    }
}

static void cpu_adam(amtl_backend *be, float *w, float *g, float *m, float *v, const amtl_adam_seg *segs,
                     int n_segs, int64_t total, float lr, float beta1, float beta2, float eps,
                     float wd, int64_t step)
{
    (void)be;
    /* w, g: the segments' ranges; m, v [total]; segs[n_segs] */
    (void)total;
    for (int k = 0; k < n_segs; k++) {
        const amtl_adam_seg *sg = &segs[k];
        if (!sg->active)
            continue;
        amtl_adam_update(w + sg->woff, g + sg->woff, m + sg->moff, v + sg->moff, (size_t)sg->n,
                         lr, beta1, beta2, eps, sg->decay ? wd : 0.0f, step);
    }
}

static void cpu_set_batch_sum(amtl_backend *be, amtl_batch_sum *hook)
{
    cpu_ctx *c = be->ctx;
    c->bsum = hook;
}

static void cpu_destroy(amtl_backend *be)
{
    free(be->ctx);
    free(be);
}

static const amtl_backend cpu_table = {
    .name = "cpu",
    .host = 1,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .put = cpu_put,
    .get = cpu_get,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .last_error = cpu_last_error,
    .gemm = cpu_gemm,
    .add = cpu_add,
    .axpy = cpu_axpy,
    .dot = cpu_dot,
    .take_i32 = cpu_take_i32,
    .take_f32 = cpu_take_f32,
    .embed_gather = cpu_embed_gather,
    .embed_scatter = cpu_embed_scatter,
    .bias_act = cpu_bias_act,
    .colsum = cpu_colsum,
    .relu_back = cpu_relu_back,
    .dropout = cpu_dropout,
    .dropout_back = cpu_dropout_back,
    .bn_train = cpu_bn_train,
    .bn_eval = cpu_bn_eval,
    .bn_back = cpu_bn_back,
    .softmax = cpu_softmax,
    .softmax_back = cpu_softmax_back,
    .mixfeature = cpu_mixfeature,
    .mixfeature_back = cpu_mixfeature_back,
    .expert_mix = cpu_expert_mix,
    .expert_mix_back = cpu_expert_mix_back,
    .bce = cpu_bce,
    .adam = cpu_adam,
    .set_batch_sum = cpu_set_batch_sum,
    .dropout_rows = cpu_dropout_rows,
};

amtl_backend *amtl_backend_cpu_new(int fused, struct amtl_pool *pool)
{
    amtl_backend *be = malloc(sizeof *be);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return NULL;
    }
    *be = cpu_table;
    be->ctx = c;
    be->fused = fused != 0;
    be->pool = pool;
    amtl_blas_single();
    return be;
}

void amtl_backend_free(amtl_backend *be)
{
    if (be)
        be->destroy(be);
}
