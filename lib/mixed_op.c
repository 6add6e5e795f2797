/* mixed_op.c — the MixedOp step, fused: the MLP candidates share one dropout
 * mask, so their first Linear layers are a single GEMM over the stacked
 * weight [S, in]; BatchNorm and ReLU run as one pass; the per-candidate second
 * Linear, its bias, ReLU and the weighted sum run as one pass per candidate.
 *
 * The first Linear's bias b1 is not added to A: BatchNorm removes it in
 * training (it only shifts the batch mean), so A + b1 is materialised only in
 * the running mean; evaluation folds it into the per-channel shift.
 * Memory: A is the only [B,S] array kept per MixedOp; the post-ReLU H is
 * recomputed in the backward pass into a shared scratch. */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "supernet_ws.h"

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

static int cand_live(const amtl_mixed_op *m, int k)
{
    return m->chosen < 0 || m->chosen == k;
}

void amtl_mop_forward(const amtl_supernet *net, amtl_workspace *ws, int i,
                      int training, amtl_rng *rng, float *state, int64_t *nbt)
{
    const amtl_mixed_op *m = &net->mops[i];
    amtl_mop_ws *mw = &ws->mop[i];
    const float *w = net->w;
    int B = ws->B, in = m->in, out = m->out;
    int c0, Sc;
    live_candidates(net, m, mw->wts, &c0, &Sc);
    mw->train_bn = training;
    memset(mw->out, 0, (size_t)B * out * sizeof(float));

    const float *xd = mw->x;
    if (Sc > 0 && training && net->dropout > 0) {
        amtl_dropout_forward(mw->xd, mw->mask, mw->x, (size_t)B * in, net->dropout, rng);
        xd = mw->xd;
    }

    if (Sc > 0) {
        float *A = mw->A, *H = ws->H;
        const float *W1 = w + m->w1 + (size_t)c0 * in;
        const float *gam = w + m->gamma + c0, *bet = w + m->beta + c0;
        const float *b1 = w + m->b1 + c0;
        float *sc = ws->chan + 2 * Sc, *sh = ws->chan + 3 * Sc;
        amtl_gemm(0, 1, B, Sc, in, 1.0f, xd, in, W1, in, 0.0f, A, Sc);
        if (training) {
            double *s1 = ws->acc1, *s2 = ws->acc2;
            amtl_k_colsums2(s1, s2, ws->chan, A, B, Sc);
            float *rm = state + m->rm + c0, *rv = state + m->rv + c0;
            for (int c = 0; c < Sc; c++) {
                double mean = s1[c] / B;
                double var = s2[c] / B - mean * mean;
                if (var < 0)
                    var = 0;
                mw->mean[c] = (float)mean;
                mw->rstd[c] = (float)(1.0 / sqrt(var + BN_EPS));
                rm[c] = (1 - BN_MOMENTUM) * rm[c] + BN_MOMENTUM * (float)(mean + b1[c]);
                rv[c] = (1 - BN_MOMENTUM) * rv[c] +
                        BN_MOMENTUM * (float)(var * B / (B > 1 ? B - 1 : 1));
                sc[c] = gam[c] * mw->rstd[c];
                sh[c] = bet[c] - mw->mean[c] * sc[c];
            }
            for (int k = 0; k < m->P; k++)
                if (cand_live(m, k) && net->ops[k].kind == AMTL_OP_MLP)
                    nbt[m->nbt[k]]++;
        } else {
            const float *rm = state + m->rm + c0, *rv = state + m->rv + c0;
            for (int c = 0; c < Sc; c++) {
                double r = 1.0 / sqrt((double)rv[c] + BN_EPS);
                sc[c] = (float)(gam[c] * r);
                sh[c] = (float)(bet[c] + (b1[c] - rm[c]) * gam[c] * r);
            }
        }
        amtl_k_affine_relu(H, A, sc, sh, B, Sc);
        for (int k = 0; k < m->P; k++) {
            if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_MLP)
                continue;
            int h = m->h[k];
            float *Y = mw->Y + (size_t)k * B * out;
            amtl_gemm(0, 1, B, out, h, 1.0f, H + (m->hoff[k] - c0), Sc, w + m->w2[k], h,
                      0.0f, Y, out);
            amtl_k_bias_relu_mix(Y, mw->out, w + m->b2[k], mw->wts[k], B, out);
        }
    }

    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        if (in == out) {
            amtl_k_axpy(mw->out, mw->x, mw->wts[k], (size_t)B * out);
        } else {
            float *Y = mw->Y + (size_t)k * B * out;
            amtl_gemm(0, 1, B, out, in, 1.0f, mw->x, in, w + m->proj[k], in, 0.0f, Y, out);
            amtl_k_axpy(mw->out, Y, mw->wts[k], (size_t)B * out);
        }
    }
}

void amtl_mop_backward(amtl_supernet *net, amtl_workspace *ws, int i)
{
    const amtl_mixed_op *m = &net->mops[i];
    amtl_mop_ws *mw = &ws->mop[i];
    const float *w = net->w;
    float *g = net->g;
    int B = ws->B, in = m->in, out = m->out;
    int c0, Sc;
    float wts[AMTL_MAX_OPS];
    live_candidates(net, m, wts, &c0, &Sc);
    const float *dout = mw->dout;
    size_t nbo = (size_t)B * out;

    /* dL/dw_k, then through the softmax to alpha */
    if (m->chosen < 0) {
        float dw[AMTL_MAX_OPS], da[AMTL_MAX_OPS];
        for (int k = 0; k < m->P; k++) {
            const amtl_op_kind kind = net->ops[k].kind;
            if (kind == AMTL_OP_ZERO)
                dw[k] = 0;
            else if (kind == AMTL_OP_IDENTITY && in == out)
                dw[k] = (float)amtl_k_dot(dout, mw->x, nbo);
            else
                dw[k] = (float)amtl_k_dot(dout, mw->Y + (size_t)k * nbo, nbo);
        }
        amtl_softmax_backward(da, dw, mw->wts, 1, m->P);
        for (int k = 0; k < m->P; k++)
            net->garch[m->alpha + k] += da[k];
    }

    /* identity candidates write dx first; the MLP path adds to it */
    memset(mw->dx, 0, (size_t)B * in * sizeof(float));
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        if (in == out) {
            amtl_k_axpy(mw->dx, dout, wts[k], nbo);
        } else {
            amtl_gemm(1, 0, out, in, B, wts[k], dout, out, mw->x, in, 1.0f, g + m->proj[k], in);
            amtl_gemm(0, 0, B, in, out, wts[k], dout, out, w + m->proj[k], in, 1.0f, mw->dx, in);
        }
    }
    if (Sc == 0)
        return;

    float *A = mw->A, *H = ws->H, *dH = ws->dH, *dR = ws->dR;
    const float *gam = w + m->gamma + c0, *bet = w + m->beta + c0;
    float *k1 = ws->chan, *k2 = k1 + Sc, *k3 = k2 + Sc, *tmp = k3 + Sc;
    /* recompute H = relu(BN(A)) with the saved batch statistics */
    for (int c = 0; c < Sc; c++) {
        k1[c] = gam[c] * mw->rstd[c];
        k2[c] = bet[c] - mw->mean[c] * k1[c];
    }
    amtl_k_affine_relu(H, A, k1, k2, B, Sc);
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_MLP)
            continue;
        int h = m->h[k], hk = m->hoff[k] - c0;
        amtl_k_relu_back_scaled(dR, g + m->b2[k], mw->Y + (size_t)k * nbo, dout, wts[k], B,
                                out, tmp);
        amtl_gemm(1, 0, out, h, B, 1.0f, dR, out, H + hk, Sc, 1.0f, g + m->w2[k], h);
        amtl_gemm(0, 0, B, h, out, 1.0f, dR, out, w + m->w2[k], h, 0.0f, dH + hk, Sc);
    }
    /* ReLU and BatchNorm backward, fused: dZ = dH*(H>0); dA in place of dH */
    double *sd = ws->acc1, *sdx = ws->acc2;
    amtl_k_relu_bn_reduce(dH, sd, sdx, ws->chan, A, H, mw->mean, mw->rstd, B, Sc);
    float *dgam = g + m->gamma + c0, *dbet = g + m->beta + c0, *db1 = g + m->b1 + c0;
    for (int c = 0; c < Sc; c++) {
        dgam[c] += (float)sdx[c];
        dbet[c] += (float)sd[c];
        /* dA = gam*rstd*(dZ - mean(dZ) - xhat*mean(dZ*xhat)) */
        float gr = gam[c] * mw->rstd[c];
        k1[c] = gr;
        k2[c] = (float)(gr * sd[c] / B);
        k3[c] = (float)(gr * sdx[c] / B) * mw->rstd[c];
    }
    double *sA = ws->acc1;  /* db1 = Σ_b dA: zero up to rounding, BN removes b1 */
    amtl_k_bn_back_apply(dH, sA, tmp, A, mw->mean, k1, k2, k3, B, Sc);
    for (int c = 0; c < Sc; c++)
        db1[c] += (float)sA[c];

    const float *xd = mw->xd && mw->train_bn && net->dropout > 0 ? mw->xd : mw->x;
    amtl_gemm(1, 0, Sc, in, B, 1.0f, dH, Sc, xd, in, 1.0f, g + m->w1 + (size_t)c0 * in, in);
    if (xd == mw->x) {
        amtl_gemm(0, 0, B, in, Sc, 1.0f, dH, Sc, w + m->w1 + (size_t)c0 * in, in, 1.0f,
                  mw->dx, in);
    } else {
        float *dxd = ws->dxd;
        amtl_gemm(0, 0, B, in, Sc, 1.0f, dH, Sc, w + m->w1 + (size_t)c0 * in, in, 0.0f,
                  dxd, in);
        amtl_dropout_backward(dxd, dxd, mw->mask, (size_t)B * in, net->dropout);
        amtl_k_axpy(mw->dx, dxd, 1.0f, (size_t)B * in);
    }
}
