/* mixed_op.c — the MixedOp step, fused and split over the thread pool.
 *
 * The MLP candidates share one dropout mask, so their first Linear layers are
 * one GEMM over the stacked weight W1 [S, in] (supernet.h).
 *
 * Threads.  Each phase below is one run of the space's pool (lib/base/pool.h);
 * every product is made inside a task, single-threaded (amtl_gemm(NULL, ..)).
 * The batch is cut into a fixed sequence of row blocks (mixed_op.h) and each
 * task takes a run of whole blocks; per-channel work is cut into fixed
 * pieces the same way.  A block's [rows, S] hidden activations stay in the
 * core's cache from the GEMM that writes them to the GEMM that reads them.
 *
 * Determinism.  Sums over the batch are kept per block and added in block
 * order, and every GEMM sees the same operands whatever the thread count, so
 * the forward, the input gradients and the BatchNorm and arch gradients are
 * the same bit for bit at any thread count.  The weight gradients of W1, W2
 * and the projections are accumulated over the blocks of a group, one
 * [S,in] + [S,out] + projections partial a group, and the groups' partials
 * added in group order: by default a group is a thread's run of blocks
 * (reproducible at a given thread count, a rounding apart between counts);
 * with net->deterministic (config key deterministic) the groups are fixed
 * by the batch size (mixed_op.h, amtl_mop_groups), so every count gives the
 * same bits, for more partials to write and add (measured 3-5% of the step
 * on 2 cores).  Dropout masks come from the counter generator, element by
 * element.
 *
 * BatchNorm through the input's covariance.  With xc = xd - mean(xd) (xd the
 * dropout output) the first Linear's output minus its batch mean is exactly
 * A = xc·W1ᵀ (its bias b1 only shifts the mean), so
 *   batch variance of channel c = W1_c · C · W1_cᵀ / B,   C = xcᵀ·xc [in,in],
 * known before A is computed: the forward normalises each block of A right
 * after its GEMM, with no pass over the whole [B, S] array for statistics.
 * The backward uses the same identities: with dZ the gradient at the
 * BatchNorm output, k1 = gamma*rstd, k2 = k1*Σ_b dZ/B and
 * k3 = k1*rstd²*Σ_b dZ·A/B,
 *   dA   = k1∘dZ - k2 - A∘k3
 *   dxd  = (k1∘dZ)·W1 - k2·W1 - xc·(W1ᵀ diag(k3) W1)
 *   dW1  = (k1∘dZ)ᵀ·xc - k3∘(W1·C)          (Σ_b xc = 0)
 *   db1  = Σ_b dA = 0
 * so the terms that need the batch sums are [in,in]-sized products, and
 * (k1∘dZ) is used block by block while in cache: nothing of size [B, S]
 * besides A is stored, and A is written once and read once.  b1 gets no
 * gradient (it had only rounding noise before) and lives on in the running
 * mean only. */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "base/pool.h"
#include "model/mixed_op.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* Candidates the forward runs: the chosen one, or all with softmax weights. */
static int live_candidates(const amtl_supernet *net, const amtl_mixed_op *m,
                           float *wts, int *c0, int *Sc)
{
    if (m->chosen >= 0) {
        for (int k = 0; k < m->P; k++)
            wts[k] = k == m->chosen ? 1.0f : 0.0f;
        int k = m->chosen;
        if (net->ops[k].kind == AMTL_OP_MLP) {
            *c0 = m->hoff[k];
            *Sc = m->h[k];
        } else {
            *c0 = 0;
            *Sc = 0;
        }
        return 1;
    }
    amtl_softmax_forward(wts, net->arch + m->alpha, 1, m->P);
    *c0 = 0;
    *Sc = m->S;
    return m->P;
}

int amtl_mop_weights(const amtl_supernet *net, int i, float *wts, int *c0, int *Sc)
{
    return live_candidates(net, &net->mops[i], wts, c0, Sc);
}

static int cand_live(const amtl_mixed_op *m, int k)
{
    return m->chosen < 0 || m->chosen == k;
}

static int is_mlp(const amtl_supernet *net, const amtl_mixed_op *m, int k)
{
    return cand_live(m, k) && net->ops[k].kind == AMTL_OP_MLP;
}

static int is_identity(const amtl_supernet *net, const amtl_mixed_op *m, int k)
{
    return cand_live(m, k) && net->ops[k].kind == AMTL_OP_IDENTITY;
}

struct mop_job;
static int mid_pieces(const struct mop_job *j);

/* What the tasks of one MixedOp call share. */
typedef struct mop_job {
    double Bt;            /* rows of the batch the statistics are over: B, or
                             the global batch's (ws->bsum) */
    const float *cov;     /* the Gram matrix the statistics come from */
    const double *bsum;   /* backward: the global BatchNorm sums [sd | sq] */
    const double *bsum_own; /* and this rank's */
    amtl_supernet *net;
    amtl_mop_space *ws;
    const amtl_mixed_op *m;
    amtl_mop_ws *mw;
    int B, in, out, c0, Sc, training;
    int nblk;               /* row blocks of the batch (mixed_op.h) */
    const float *src;       /* [B,in] the MLP candidates' input before centring */
    const float *W1;        /* [Sc,in] the live rows of the stacked weight */
    float *sc;              /* [Sc] the forward's per-channel scale */
    const float *sh;        /* [Sc] and shift */
    const float *k3;        /* [Sc] backward constant (see the top) */
    float *state;           /* running statistics */
} mop_job;

/* Threads of a MixedOp call: the pool's, at most the workspace's and one per
 * unit of work (row block, or group of blocks). */
static int mop_threads(const amtl_mop_space *ws, int nblk)
{
    int n = amtl_pool_size(ws->pool);
    if (n > ws->nthreads)
        n = ws->nthreads;
    if (n > nblk)
        n = nblk;
    return n < 1 ? 1 : n;
}

/* Groups of row blocks the backward sums the weight gradients in: fixed by
 * the batch (deterministic), or one a thread (the threads a call runs on):
 * at most MOP_PARTS_MAX either way. */
#define MOP_PARTS_MAX (AMTL_POOL_MAX > AMTL_MOP_GROUPS ? AMTL_POOL_MAX : AMTL_MOP_GROUPS)
static int grad_groups(const mop_job *j)
{
    return j->net->deterministic ? amtl_mop_groups(j->nblk) : mop_threads(j->ws, j->nblk);
}

/* Channel pieces of the backward's middle phase. */
static int mid_pieces(const mop_job *j)
{
    int np = amtl_pool_pieces(j->Sc, 64), sq = amtl_mop_square_pieces(j->in);
    return np < sq ? np : sq;
}

/* Rows [*r0, *r1) of block k. */
static void block_rows(const mop_job *j, int k, int *r0, int *r1)
{
    amtl_pool_range(j->B, k, j->nblk, r0, r1);
}

/* Group g's partial weight gradients (backward), transposed (these products
 * measured 3-10% faster that way round): Qᵀ [in,Sc] = xcᵀ·(k1∘dZ), then the
 * candidates' W2 gradients transposed and stacked [Sc,out], then projections
 * [out,in] in Y-slot order. */
static float *part_q(const mop_job *j, int g)
{
    return j->ws->part + (size_t)g * j->ws->part_len;
}
static float *part_w2(const mop_job *j, int g)
{
    return part_q(j, g) + (size_t)j->Sc * j->in;
}
static float *part_proj(const mop_job *j, int g, int slot)
{
    return part_w2(j, g) + (size_t)j->Sc * j->out + (size_t)slot * j->out * j->in;
}
/* Block k's sums: sd [Sc], sq [Sc], dw [P]; and its b2 gradients [P,out]. */
static double *blk_acc(const mop_job *j, int k)
{
    return j->ws->blk_acc + (size_t)k * j->ws->blk_stride;
}
static float *blk_b2(const mop_job *j, int k)
{
    return j->ws->blk_b2 + (size_t)k * j->m->P * j->out;
}

/* Projection candidate k's output, MLP candidate k's ReLU mask. */
static float *yk(const mop_job *j, int k)
{
    return j->mw->Y + (size_t)j->mw->pslot[k] * j->ws->Bmax * j->out;
}
static uint8_t *keepk(const mop_job *j, int k)
{
    return j->mw->keep + (size_t)j->mw->kslot[k] * j->ws->Bmax * j->out;
}

/* Pieces of the channels: W1ᵀ [in,Sc] and the stacked W2ᵀ [Sc,out] of the
 * live candidates into the workspace (the GEMMs that read them measured
 * 4-14% faster than with the weights as stored and OpenBLAS's transpose
 * flags). */
static void transpose_weights(const mop_job *j, int t, int n)
{
    const amtl_mixed_op *m = j->m;
    const float *w = j->net->w;
    int in = j->in, out = j->out, Sc = j->Sc, np = amtl_pool_pieces(Sc, 64), p0, p1;
    amtl_pool_range(np, t, n, &p0, &p1);
    for (int p = p0; p < p1; p++) {
        int e0, e1;
        amtl_pool_range(Sc, p, np, &e0, &e1);
        amtl_k_transpose(j->ws->w1t + e0, Sc, j->W1 + (size_t)e0 * in, in, e1 - e0, in);
        for (int k = 0; k < m->P; k++) {
            if (!is_mlp(j->net, m, k))
                continue;
            int hk = m->hoff[k] - j->c0, h = m->h[k];
            int a = e0 > hk ? e0 : hk, b = e1 < hk + h ? e1 : hk + h;
            if (a < b)  /* W2ᵀ rows a..b are columns a-hk.. of W2 [out,h] */
                amtl_k_transpose(j->ws->w2t + (size_t)a * out, out, w + m->w2[k] + (a - hk), h,
                                 out, b - a);
        }
    }
}

static void prep_task(void *arg, int t, int n)
{
    transpose_weights(arg, t, n);
}

/* ---- forward -------------------------------------------------------------- */

/* Fixed row pieces of the batch: xc = src - mu and the piece's Gram
 * matrix xcᵀ·xc into ws->sqpart (added up in piece order by the caller);
 * and the weights transposed. */
static void fwd_center(void *arg, int t, int n)
{
    const mop_job *j = arg;
    transpose_weights(j, t, n);
    int in = j->in, np = amtl_mop_square_pieces(in), p0, p1;
    if (np > j->B)
        np = j->B;
    amtl_pool_range(np, t, n, &p0, &p1);
    for (int p = p0; p < p1; p++) {
        int r0, r1;
        amtl_pool_range(j->B, p, np, &r0, &r1);
        float *xc = j->mw->xc + (size_t)r0 * in;
        amtl_k_sub_row(xc, j->src + (size_t)r0 * in, j->mw->mu, r1 - r0, in);
        amtl_gemm(NULL, 1, 0, in, in, r1 - r0, 1.0f, xc, in, xc, in, 0.0f,
                  j->ws->sqpart + (size_t)p * in * in, in);
    }
}

/* pieces of the channels: the batch statistics of A from the input's mean
 * and covariance, the running statistics, and the forward's scale sc */
static void fwd_stats(void *arg, int t, int n)
{
    const mop_job *j = arg;
    const amtl_mixed_op *m = j->m;
    amtl_mop_ws *mw = j->mw;
    /* the statistics are over the global batch's rows (one process: B) */
    double B = j->Bt;
    int in = j->in, Sc = j->Sc, c0 = j->c0;
    const float *w = j->net->w;
    const float *gam = w + m->gamma + c0, *b1 = w + m->b1 + c0;
    float *rm = j->state + m->rm + c0, *rv = j->state + m->rv + c0;
    float *sc = j->sc;
    int np = amtl_pool_pieces(Sc, 64), p0, p1;
    amtl_pool_range(np, t, n, &p0, &p1);
    for (int p = p0; p < p1; p++) {
        int e0, e1;
        amtl_pool_range(Sc, p, np, &e0, &e1);
        float *W1C = j->ws->wscr + (size_t)e0 * in;
        double *var = j->ws->blk_acc + e0, *mean = var + Sc;
        amtl_gemm(NULL, 0, 0, e1 - e0, in, in, 1.0f, j->W1 + (size_t)e0 * in, in, j->cov, in, 0.0f,
                  W1C, in);
        amtl_k_bn_moments(var, mean, W1C, j->W1 + (size_t)e0 * in, mw->mu, e1 - e0, in);
        for (int c = e0; c < e1; c++) {
            double v = B > 0 ? var[c - e0] / B : 0;
            if (v < 0)
                v = 0;
            mw->rstd[c] = (float)(1.0 / sqrt(v + BN_EPS));
            rm[c] = (1 - BN_MOMENTUM) * rm[c] + BN_MOMENTUM * (float)(mean[c - e0] + b1[c]);
            rv[c] = (1 - BN_MOMENTUM) * rv[c] +
                    BN_MOMENTUM * (float)(v * B / (B > 1 ? B - 1 : 1));
            sc[c] = gam[c] * mw->rstd[c];
        }
    }
}

/* Rows b0..b0+nb of the stacked first Linear's output, x·W1ᵀ [nb, Sc], into
 * dst: the forward's, and the backward's recomputation of A
 * (recompute_hidden), which is the same call and so the same bits. */
static void first_linear(const mop_job *j, const float *x, int b0, int nb, float *dst)
{
    amtl_gemm(NULL, 0, 0, nb, j->Sc, j->in, 1.0f, x + (size_t)b0 * j->in, j->in, j->ws->w1t, j->Sc,
              0.0f, dst, j->Sc);
}

/* blocks: A = xc·W1ᵀ (kept for the backward in training), the hidden
 * H = relu(A*sc + sh) in the thread's scratch, the candidates' second
 * Linear, and the weighted sum into out */
static void fwd_out(void *arg, int t, int n)
{
    const mop_job *j = arg;
    const amtl_supernet *net = j->net;
    const amtl_mixed_op *m = j->m;
    amtl_mop_ws *mw = j->mw;
    float *Hb = j->ws->thr[t].Hb;
    const float *w = net->w;
    int k0, k1, in = j->in, out = j->out, Sc = j->Sc;
    amtl_pool_range(j->nblk, t, n, &k0, &k1);
    for (int kb = k0; kb < k1; kb++) {
        int b0, b1;
        block_rows(j, kb, &b0, &b1);
        int nb = b1 - b0;
        const float *x = mw->x + (size_t)b0 * in;
        float *o = mw->out + (size_t)b0 * out;
        memset(o, 0, (size_t)nb * out * sizeof(float));
        for (int k = 0; k < m->P; k++) {
            if (!is_identity(net, m, k))
                continue;
            if (in == out) {
                amtl_k_axpy(o, x, mw->wts[k], (size_t)nb * out);
            } else {
                float *Y = j->training ? yk(j, k) + (size_t)b0 * out : j->ws->thr[t].dRb;
                amtl_gemm(NULL, 0, 1, nb, out, in, 1.0f, x, in, w + m->proj[k], in, 0.0f, Y, out);
                amtl_k_axpy(o, Y, mw->wts[k], (size_t)nb * out);
            }
        }
        if (Sc == 0)
            continue;
        first_linear(j, j->training ? mw->xc : mw->x, b0, nb, Hb);
        /* candidate by candidate, so that its hidden slice is still in cache
         * for its second Linear */
        for (int k = 0; k < m->P; k++) {
            if (!is_mlp(net, m, k))
                continue;
            int h = m->h[k], hk = m->hoff[k] - j->c0;
            if (j->training && mw->A)
                amtl_k_keep_affine_relu(mw->A + (size_t)b0 * Sc + hk, Hb + hk, j->sc + hk,
                                        j->sh + hk, nb, h, Sc);
            else
                amtl_k_affine_relu(Hb + hk, Hb + hk, j->sc + hk, j->sh + hk, nb, h, Sc);
            float *Y = j->ws->thr[t].dRb;
            amtl_gemm(NULL, 0, 0, nb, out, h, 1.0f, Hb + hk, Sc, j->ws->w2t + (size_t)hk * out, out,
                      0.0f, Y, out);
            amtl_k_bias_relu_mix(Y, o, j->training ? keepk(j, k) + (size_t)b0 * out : NULL,
                                 w + m->b2[k], mw->wts[k], nb, out);
        }
    }
}

void amtl_mop_forward(const amtl_supernet *net, amtl_mop_space *ws, int i,
                      int training, float *state, int64_t *nbt)
{
    const amtl_mixed_op *m = &net->mops[i];
    amtl_mop_ws *mw = &ws->mop[i];
    const float *w = net->w;
    mop_job j = {.net = (amtl_supernet *)net, .ws = ws, .m = m, .mw = mw, .B = ws->B,
                 .in = m->in, .out = m->out, .training = training, .state = state,
                 .nblk = amtl_mop_blocks(ws->B)};
    live_candidates(net, m, mw->wts, &j.c0, &j.Sc);
    int n = mop_threads(ws, j.nblk), in = m->in, Sc = j.Sc, c0 = j.c0, B = ws->B;
    j.W1 = w + m->w1 + (size_t)c0 * in;
    mw->dropped = training && Sc > 0 && net->dropout > 0;
    if (Sc > 0 && training) {
        /* the mask is a function of the step's seed and the site, as on
         * every backend */
        j.src = mw->x;
        if (mw->dropped) {
            if (ws->pos)
                amtl_k_dropout_rows(mw->xc, mw->mask, mw->x, B, in, ws->pos, net->dropout,
                                    ws->drop_seed, amtl_dropout_site_mop(i));
            else
                amtl_dropout_forward(mw->xc, mw->mask, mw->x, (size_t)B * in, net->dropout,
                                     ws->drop_seed, amtl_dropout_site_mop(i));
            j.src = mw->xc;
        }
        /* the mean and the Gram matrix of the input over the batch (a
         * rank's: over the global batch, centred by its mean) */
        double *s = ws->blk_acc;
        memset(s, 0, (size_t)in * sizeof(double));
        amtl_k_colsum_acc(s, ws->thr[0].tmp, j.src, B, in);
        j.Bt = amtl_batch_sum_rows(ws->bsum, s, (size_t)in, B);
        for (int c = 0; c < in; c++)
            mw->mu[c] = j.Bt > 0 ? (float)(s[c] / j.Bt) : 0.0f;
        int np = amtl_mop_square_pieces(in) < B ? amtl_mop_square_pieces(in) : B;
        amtl_pool_run(ws->pool, np > n ? np : n, fwd_center, &j);
        if (np > 0)
            memcpy(mw->cov, ws->sqpart, (size_t)in * in * sizeof(float));
        else
            memset(mw->cov, 0, (size_t)in * in * sizeof(float));
        for (int p = 1; p < np; p++)
            amtl_k_axpy(mw->cov, ws->sqpart + (size_t)p * in * in, 1.0f, (size_t)in * in);
        /* mw->cov stays this rank's: the backward's share of dW1 */
        j.cov = mw->cov;
        if (ws->bsum) {
            size_t nn = (size_t)in * in;
            for (size_t e = 0; e < nn; e++)
                ws->dsum[e] = mw->cov[e];
            amtl_batch_sum_rows(ws->bsum, ws->dsum, nn, B);
            for (size_t e = 0; e < nn; e++)
                ws->gcov[e] = (float)ws->dsum[e];
            j.cov = ws->gcov;
        }
        j.sc = ws->chan;
        j.sh = w + m->beta + c0;
        amtl_pool_run(ws->pool, amtl_pool_pieces(Sc, 64), fwd_stats, &j);
        for (int k = 0; k < m->P; k++)
            if (is_mlp(net, m, k))
                nbt[m->nbt[k]]++;
    } else if (Sc > 0) {
        const float *gam = w + m->gamma + c0, *bet = w + m->beta + c0, *b1 = w + m->b1 + c0;
        const float *rm = state + m->rm + c0, *rv = state + m->rv + c0;
        float *sc = ws->chan, *sh = ws->chan + Sc;
        for (int c = 0; c < Sc; c++) {
            double r = 1.0 / sqrt((double)rv[c] + BN_EPS);
            sc[c] = (float)(gam[c] * r);
            sh[c] = (float)(bet[c] + (b1[c] - rm[c]) * gam[c] * r);
        }
        j.sc = sc;
        j.sh = sh;
        amtl_pool_run(ws->pool, amtl_pool_pieces(Sc, 64), prep_task, &j);
    }
    amtl_pool_run(ws->pool, n, fwd_out, &j);
}

/* ---- backward ------------------------------------------------------------- */

/* blocks: the identity candidates' input gradient (written), the alpha dots,
 * and for the MLP candidates: H again, the second Linear's backward, the
 * ReLU and BatchNorm sums, (k1∘dZ)·W1 into ws->dxd and (k1∘dZ)ᵀ·xc into the
 * thread's Q */
static void bwd_block(const mop_job *j, amtl_thread_ws *th, int g, int kb, float beta)
{
    const amtl_supernet *net = j->net;
    const amtl_mixed_op *m = j->m;
    const amtl_mop_ws *mw = j->mw;
    const amtl_mop_space *ws = j->ws;
    const float *w = net->w;
    int in = j->in, out = j->out, Sc = j->Sc, P = m->P;
    const float *k1c = ws->chan, *bet = w + m->beta + j->c0;
    int b0, b1;
    block_rows(j, kb, &b0, &b1);
    int nb = b1 - b0;
    double *sd = blk_acc(j, kb), *sq = sd + Sc, *dw = sq + Sc;
    memset(sd, 0, (2 * (size_t)Sc + P) * sizeof(double));
    const float *x = mw->x + (size_t)b0 * in, *dout = mw->dout + (size_t)b0 * out;
    float *dx = mw->dx + (size_t)b0 * in;
    size_t nbo = (size_t)nb * out;

    memset(dx, 0, (size_t)nb * in * sizeof(float));
    for (int k = 0; k < P; k++) {
        if (!is_identity(net, m, k))
            continue;
        if (in == out) {
            dw[k] = amtl_k_dot(dout, x, nbo);
            amtl_k_axpy(dx, dout, mw->wts[k], nbo);
        } else {
            dw[k] = amtl_k_dot(dout, yk(j, k) + (size_t)b0 * out, nbo);
            amtl_gemm(NULL, 1, 0, out, in, nb, mw->wts[k], dout, out, x, in, beta,
                      part_proj(j, g, mw->yslot[k]), in);
            amtl_gemm(NULL, 0, 0, nb, in, out, mw->wts[k], dout, out, w + m->proj[k], in, 1.0f,
                      dx, in);
        }
    }
    if (Sc == 0)
        return;

    float *b2p = blk_b2(j, kb);
    memset(b2p, 0, (size_t)P * out * sizeof(float));
    const float *A;
    if (mw->A) {
        A = mw->A + (size_t)b0 * Sc;
    } else {
        /* the forward's product again: the same A bit for bit, from
         * the cache instead of a [B, S] array */
        first_linear(j, mw->xc, b0, nb, th->Ab);
        A = th->Ab;
    }
    /* candidate by candidate: its slices of H, dZ and A stay in cache
     * from the recomputation of H to the BatchNorm sums.  With y its
     * output, relu(H·W2ᵀ + b2), and R = dout∘(y > 0): the weight w
     * scales R's products (the W2 gradient, dZ), and the alpha dot
     * <dout, y> = <R, H·W2ᵀ + b2> = <R·W2, H> + <Σ_b R, b2> comes from
     * the products the backward forms anyway, so that y need not be
     * kept, only its mask */
    for (int k = 0; k < P; k++) {
        if (!is_mlp(net, m, k))
            continue;
        int h = m->h[k], hk = m->hoff[k] - j->c0;
        float wk = mw->wts[k];
        amtl_k_affine_relu(th->Hb + hk, A + hk, k1c + hk, bet + hk, nb, h, Sc);
        amtl_k_relu_back_keep(th->dRb, b2p + (size_t)k * out, &dw[k], th->tmp,
                              keepk(j, k) + (size_t)b0 * out, dout, w + m->b2[k], wk, nb,
                              out);
        amtl_gemm(NULL, 1, 0, h, out, nb, wk, th->Hb + hk, Sc, th->dRb, out, beta,
                  part_w2(j, g) + (size_t)hk * out, out);
        amtl_gemm(NULL, 0, 1, nb, h, out, 1.0f, th->dRb, out, ws->w2t + (size_t)hk * out, out,
                  0.0f, th->dZb + hk, Sc);
        amtl_k_relu_bn_stats(th->dZb + hk, sd + hk, sq + hk, &dw[k], th->tmp, th->Hb + hk,
                             A + hk, k1c + hk, wk, nb, h, Sc);
    }
    amtl_gemm(NULL, 0, 1, nb, in, Sc, 1.0f, th->dZb, Sc, ws->w1t, Sc, 0.0f,
              ws->dxd + (size_t)b0 * in, in);
    amtl_gemm(NULL, 1, 0, in, Sc, nb, 1.0f, mw->xc + (size_t)b0 * in, in, th->dZb, Sc, beta,
              part_q(j, g), Sc);
}

/* The task: its run of whole groups, each group's blocks in order, the
 * first writing the group's partials and the rest adding to them. */
static void bwd_rows(void *arg, int t, int n)
{
    const mop_job *j = arg;
    int G = grad_groups(j), g0, g1;
    amtl_pool_range(G, t, n, &g0, &g1);
    for (int g = g0; g < g1; g++) {
        int kb0, kb1;
        amtl_pool_range(j->nblk, g, G, &kb0, &kb1);
        for (int kb = kb0; kb < kb1; kb++)
            bwd_block(j, &j->ws->thr[t], g, kb, kb == kb0 ? 0.0f : 1.0f);
    }
}

/* Fixed pieces of the channels: the BatchNorm sums of the blocks added up
 * (block order), the gamma and beta gradients, k2 and k3, and the piece's
 * partials of W1ᵀ diag(k3) W1 and of -k2·W1 into ws->sqpart. */
static void bwd_mid(void *arg, int t, int n)
{
    const mop_job *j = arg;
    amtl_supernet *net = j->net;
    const amtl_mixed_op *m = j->m;
    const amtl_mop_ws *mw = j->mw;
    const amtl_mop_space *ws = j->ws;
    double B = j->Bt;
    int in = j->in, Sc = j->Sc, c0 = j->c0, np = mid_pieces(j), p0, p1;
    float *dgam = net->g + m->gamma + c0, *dbet = net->g + m->beta + c0;
    float *k1 = ws->chan, *k2 = k1 + Sc, *k3 = k2 + Sc;
    amtl_pool_range(np, t, n, &p0, &p1);
    for (int p = p0; p < p1; p++) {
        int e0, e1;
        amtl_pool_range(Sc, p, np, &e0, &e1);
        for (int c = e0; c < e1; c++) {
            /* this rank's sums are its share of the gamma and beta
             * gradients; k2 and k3 want the global batch's */
            double sd = j->bsum[c], sq = j->bsum[Sc + c];
            double rs = mw->rstd[c];
            dgam[c] += (float)(rs * j->bsum_own[Sc + c]);
            dbet[c] += (float)j->bsum_own[c];
            k2[c] = (float)(k1[c] * sd / B);
            k3[c] = (float)(k1[c] * rs * rs * sq / B);
        }
        const float *W1 = j->W1 + (size_t)e0 * in;
        float *sk = ws->wscr + (size_t)e0 * in;
        float *mk = ws->sqpart + (size_t)p * ((size_t)in * in + in), *crow = mk + (size_t)in * in;
        amtl_k_scale_rows(sk, W1, k3 + e0, e1 - e0, in);
        amtl_gemm(NULL, 1, 0, in, in, e1 - e0, 1.0f, W1, in, sk, in, 0.0f, mk, in);
        amtl_gemm(NULL, 0, 0, 1, in, e1 - e0, -1.0f, k2 + e0, Sc, W1, in, 0.0f, crow, in);
    }
}

/* Slice [*e0, *e1) of n elements for task t of nt. */
static void slice(size_t n, int t, int nt, size_t *e0, size_t *e1)
{
    *e0 = n * (size_t)t / (size_t)nt;
    *e1 = n * (size_t)(t + 1) / (size_t)nt;
}

/* blocks: the MLP path's input gradient completed and added to dx;
 * channels: dW1; elements: the partial W2, b2 and projection gradients
 * summed into net->g (threads' and blocks' in order) */
static void bwd_final(void *arg, int t, int n)
{
    const mop_job *j = arg;
    amtl_supernet *net = j->net;
    const amtl_mixed_op *m = j->m;
    const amtl_mop_ws *mw = j->mw;
    const amtl_mop_space *ws = j->ws;
    int in = j->in, out = j->out, Sc = j->Sc;
    const float *parts[MOP_PARTS_MAX];
    size_t e0, e1;
    int G = grad_groups(j);
    for (int k = 0; k < m->P; k++) {
        if (!is_identity(net, m, k) || in == out)
            continue;
        slice((size_t)out * in, t, n, &e0, &e1);
        for (int g = 0; g < G; g++)
            parts[g] = part_proj(j, g, mw->yslot[k]) + e0;
        amtl_k_sum_parts(net->g + m->proj[k] + e0, parts, G, e1 - e0);
    }
    if (Sc == 0)
        return;

    int k0, k1;
    amtl_pool_range(j->nblk, t, n, &k0, &k1);
    float scale = mw->dropped ? 1.0f / (1.0f - net->dropout) : 1.0f;
    for (int kb = k0; kb < k1; kb++) {
        int b0, b1;
        block_rows(j, kb, &b0, &b1);
        float *d = ws->dxd + (size_t)b0 * in;
        amtl_gemm(NULL, 0, 0, b1 - b0, in, in, -1.0f, mw->xc + (size_t)b0 * in, in, ws->mk, in,
                  1.0f, d, in);
        amtl_k_dropout_back_add(mw->dx + (size_t)b0 * in, d, ws->crow,
                                mw->dropped ? mw->mask + (size_t)b0 * in : NULL, scale,
                                b1 - b0, in);
    }

    /* dW1 in fixed pieces of its rows: the product's shape, and with it
     * the BLAS's kernel for the rows at its edge, does not depend on n */
    int np = amtl_pool_pieces(Sc, 16), p0, p1;
    amtl_pool_range(np, t, n, &p0, &p1);
    for (int p = p0; p < p1; p++) {
        int c0, c1;
        amtl_pool_range(Sc, p, np, &c0, &c1);
        float *W1C = ws->wscr + (size_t)c0 * in;
        amtl_gemm(NULL, 0, 0, c1 - c0, in, in, 1.0f, j->W1 + (size_t)c0 * in, in, mw->cov, in, 0.0f,
                  W1C, in);
        for (int g = 0; g < G; g++)
            parts[g] = part_q(j, g) + c0;
        amtl_k_w1_grad(net->g + m->w1 + (size_t)(j->c0 + c0) * in, parts, G, Sc, j->k3 + c0,
                       W1C, c1 - c0, in);
    }
    for (int k = 0; k < m->P; k++) {
        if (!is_mlp(net, m, k))
            continue;
        int hk = m->hoff[k] - j->c0, h = m->h[k];
        /* the thread's columns e0..e1 of W2 [out,h]: rows of the parts */
        slice((size_t)h, t, n, &e0, &e1);
        for (int g = 0; g < G; g++)
            parts[g] = part_w2(j, g) + (size_t)(hk + e0) * out;
        amtl_k_sum_parts_t(net->g + m->w2[k] + e0, h, parts, G, out, (int)(e1 - e0), out);
        slice((size_t)out, t, n, &e0, &e1);
        for (int kb = 0; kb < j->nblk; kb++)
            amtl_k_axpy(net->g + m->b2[k] + e0, blk_b2(j, kb) + (size_t)k * out + e0, 1.0f,
                        e1 - e0);
    }
}

void amtl_mop_backward(amtl_supernet *net, amtl_mop_space *ws, int i, float *dots)
{
    const amtl_mixed_op *m = &net->mops[i];
    amtl_mop_ws *mw = &ws->mop[i];
    const float *w = net->w;
    mop_job j = {.net = net, .ws = ws, .m = m, .mw = mw, .B = ws->B, .in = m->in,
                 .out = m->out, .training = 1, .nblk = amtl_mop_blocks(ws->B)};
    float wts[AMTL_MAX_OPS];
    live_candidates(net, m, wts, &j.c0, &j.Sc);
    int n = mop_threads(ws, j.nblk), in = m->in, Sc = j.Sc, c0 = j.c0, P = m->P;
    j.W1 = w + m->w1 + (size_t)c0 * in;
    const float *gam = w + m->gamma + c0;
    float *k1 = ws->chan;
    for (int c = 0; c < Sc; c++)
        k1[c] = gam[c] * mw->rstd[c];
    if (Sc > 0)
        amtl_pool_run(ws->pool, amtl_pool_pieces(Sc, 64), prep_task, &j);
    int G = grad_groups(&j);
    amtl_pool_run(ws->pool, mop_threads(ws, G), bwd_rows, &j);

    /* dL/dw_k = <dout, op_k(x)>, summed in block order (0 where k did not run) */
    for (int k = 0; k < P; k++) {
        double s = 0;
        if (is_mlp(net, m, k) || is_identity(net, m, k))
            for (int kb = 0; kb < j.nblk; kb++)
                s += blk_acc(&j, kb)[2 * Sc + k];
        dots[k] = (float)s;
    }

    if (Sc > 0) {
        /* the blocks' BatchNorm sums added up in block order, this rank's
         * kept, the global batch's through bsum */
        double *own = ws->dsum, *all = own + 2 * (size_t)Sc;
        for (int c = 0; c < Sc; c++) {
            double sd = 0, sq = 0;
            for (int kb = 0; kb < j.nblk; kb++) {
                const double *a = blk_acc(&j, kb);
                sd += a[c];
                sq += a[Sc + c];
            }
            own[c] = sd;
            own[Sc + c] = sq;
        }
        memcpy(all, own, 2 * (size_t)Sc * sizeof(double));
        j.Bt = amtl_batch_sum_rows(ws->bsum, all, 2 * (size_t)Sc, ws->B);
        j.bsum = all;
        j.bsum_own = own;
        int np = mid_pieces(&j);
        amtl_pool_run(ws->pool, np, bwd_mid, &j);
        size_t sz = (size_t)in * in + in;
        memcpy(ws->mk, ws->sqpart, (size_t)in * in * sizeof(float));
        memcpy(ws->crow, ws->sqpart + (size_t)in * in, (size_t)in * sizeof(float));
        for (int p = 1; p < np; p++) {
            amtl_k_axpy(ws->mk, ws->sqpart + p * sz, 1.0f, (size_t)in * in);
            amtl_k_axpy(ws->crow, ws->sqpart + p * sz + (size_t)in * in, 1.0f, (size_t)in);
        }
        j.k3 = k1 + 2 * Sc;
    }
    int proj = 0;
    for (int k = 0; k < P; k++)
        proj |= is_identity(net, m, k) && in != m->out;
    /* a rank without rows has no partial to add (and W1's share of the
     * variance path is 0 with its Gram matrix) */
    if ((Sc > 0 || proj) && j.nblk > 0)
        amtl_pool_run(ws->pool, n, bwd_final, &j);
}
