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
        amtl_gemm(0, 1, B, Sc, in, 1.0f, xd, in, W1, in, 0.0f, A, Sc);
        if (training) {
            double *s1 = ws->acc1, *s2 = ws->acc2;
            memset(s1, 0, (size_t)Sc * sizeof *s1);
            memset(s2, 0, (size_t)Sc * sizeof *s2);
            for (int b = 0; b < B; b++) {
                const float *a = A + (size_t)b * Sc;
                for (int c = 0; c < Sc; c++) {
                    s1[c] += a[c];
                    s2[c] += (double)a[c] * a[c];
                }
            }
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
            }
            for (int k = 0; k < m->P; k++)
                if (cand_live(m, k) && net->ops[k].kind == AMTL_OP_MLP)
                    nbt[m->nbt[k]]++;
            /* scale/shift per channel: H = relu(A*sc + sh) */
            for (int c = 0; c < Sc; c++) {
                ws->acc1[c] = gam[c] * mw->rstd[c];
                ws->acc2[c] = bet[c] - mw->mean[c] * gam[c] * mw->rstd[c];
            }
        } else {
            const float *rm = state + m->rm + c0, *rv = state + m->rv + c0;
            for (int c = 0; c < Sc; c++) {
                double r = 1.0 / sqrt((double)rv[c] + BN_EPS);
                ws->acc1[c] = gam[c] * r;
                ws->acc2[c] = bet[c] + (b1[c] - rm[c]) * gam[c] * r;
            }
        }
        {
            float *sc = ws->chan, *sh = ws->chan + Sc;
            for (int c = 0; c < Sc; c++) {
                sc[c] = (float)ws->acc1[c];
                sh[c] = (float)ws->acc2[c];
            }
            for (int b = 0; b < B; b++) {
                const float *a = A + (size_t)b * Sc;
                float *hh = H + (size_t)b * Sc;
                for (int c = 0; c < Sc; c++) {
                    float v = a[c] * sc[c] + sh[c];
                    hh[c] = v > 0 ? v : 0;
                }
            }
        }
        for (int k = 0; k < m->P; k++) {
            if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_MLP)
                continue;
            int h = m->h[k];
            float *Y = mw->Y + (size_t)k * B * out;
            const float *b2 = w + m->b2[k];
            float wk = mw->wts[k];
            amtl_gemm(0, 1, B, out, h, 1.0f, H + (m->hoff[k] - c0), Sc, w + m->w2[k], h,
                      0.0f, Y, out);
            for (int b = 0; b < B; b++) {
                float *y = Y + (size_t)b * out, *o = mw->out + (size_t)b * out;
                for (int c = 0; c < out; c++) {
                    float v = y[c] + b2[c];
                    v = v > 0 ? v : 0;
                    y[c] = v;
                    o[c] += wk * v;
                }
            }
        }
    }

    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        float wk = mw->wts[k];
        if (in == out) {
            size_t n = (size_t)B * out;
            for (size_t e = 0; e < n; e++)
                mw->out[e] += wk * mw->x[e];
        } else {
            float *Y = mw->Y + (size_t)k * B * out;
            amtl_gemm(0, 1, B, out, in, 1.0f, mw->x, in, w + m->proj[k], in, 0.0f, Y, out);
            size_t n = (size_t)B * out;
            for (size_t e = 0; e < n; e++)
                mw->out[e] += wk * Y[e];
        }
    }
}

/* Σ_e a[e] b[e] in double */
static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t e = 0; e < n; e++)
        s += (double)a[e] * b[e];
    return s;
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
        float dw[AMTL_MAX_OPS];
        for (int k = 0; k < m->P; k++) {
            const amtl_op_kind kind = net->ops[k].kind;
            if (kind == AMTL_OP_ZERO)
                dw[k] = 0;
            else if (kind == AMTL_OP_IDENTITY && in == out)
                dw[k] = (float)dot(dout, mw->x, nbo);
            else
                dw[k] = (float)dot(dout, mw->Y + (size_t)k * nbo, nbo);
        }
        float da[AMTL_MAX_OPS];
        amtl_softmax_backward(da, dw, mw->wts, 1, m->P);
        for (int k = 0; k < m->P; k++)
            net->garch[m->alpha + k] += da[k];
    }

    /* identity candidates write dx first; the MLP path adds to it */
    memset(mw->dx, 0, (size_t)B * in * sizeof(float));
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        float wk = wts[k];
        if (in == out) {
            for (size_t e = 0; e < nbo; e++)
                mw->dx[e] += wk * dout[e];
        } else {
            amtl_gemm(1, 0, out, in, B, wk, dout, out, mw->x, in, 1.0f, g + m->proj[k], in);
            amtl_gemm(0, 0, B, in, out, wk, dout, out, w + m->proj[k], in, 1.0f, mw->dx, in);
        }
    }
    if (Sc == 0)
        return;

    float *A = mw->A, *H = ws->H, *dH = ws->dH, *dR = ws->dR;
    const float *gam = w + m->gamma + c0, *bet = w + m->beta + c0;
    /* recompute H = relu(BN(A)) with the saved batch statistics */
    for (int b = 0; b < B; b++) {
        const float *a = A + (size_t)b * Sc;
        float *hh = H + (size_t)b * Sc;
        for (int c = 0; c < Sc; c++) {
            float v = (a[c] - mw->mean[c]) * mw->rstd[c] * gam[c] + bet[c];
            hh[c] = v > 0 ? v : 0;
        }
    }
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_MLP)
            continue;
        int h = m->h[k], hk = m->hoff[k] - c0;
        const float *Y = mw->Y + (size_t)k * nbo;
        float wk = wts[k];
        float *db2 = g + m->b2[k];
        for (int b = 0; b < B; b++) {
            const float *y = Y + (size_t)b * out, *d = dout + (size_t)b * out;
            float *r = dR + (size_t)b * out;
            for (int c = 0; c < out; c++) {
                float v = y[c] > 0 ? wk * d[c] : 0.0f;
                r[c] = v;
                db2[c] += v;
            }
        }
        amtl_gemm(1, 0, out, h, B, 1.0f, dR, out, H + hk, Sc, 1.0f, g + m->w2[k], h);
        amtl_gemm(0, 0, B, h, out, 1.0f, dR, out, w + m->w2[k], h, 0.0f, dH + hk, Sc);
    }
    /* ReLU and BatchNorm backward, fused: dZ = dH*(H>0); dA in place of dH */
    double *sd = ws->acc1, *sdx = ws->acc2;
    memset(sd, 0, (size_t)Sc * sizeof *sd);
    memset(sdx, 0, (size_t)Sc * sizeof *sdx);
    for (int b = 0; b < B; b++) {
        const float *a = A + (size_t)b * Sc, *hh = H + (size_t)b * Sc;
        float *d = dH + (size_t)b * Sc;
        for (int c = 0; c < Sc; c++) {
            float dz = hh[c] > 0 ? d[c] : 0.0f;
            d[c] = dz;
            sd[c] += dz;
            sdx[c] += (double)dz * ((a[c] - mw->mean[c]) * mw->rstd[c]);
        }
    }
    float *dgam = g + m->gamma + c0, *dbet = g + m->beta + c0, *db1 = g + m->b1 + c0;
    float *k1 = ws->chan, *k2 = k1 + Sc, *k3 = k2 + Sc; /* per-channel coefficients */
    for (int c = 0; c < Sc; c++) {
        dgam[c] += (float)sdx[c];
        dbet[c] += (float)sd[c];
        /* dA = gam*rstd*(dZ - mean(dZ) - xhat*mean(dZ*xhat)) */
        float gr = gam[c] * mw->rstd[c];
        k1[c] = gr;
        k2[c] = (float)(gr * sd[c] / B);
        k3[c] = (float)(gr * sdx[c] / B) * mw->rstd[c];
    }
    double *sA = ws->acc1;  /* reuse for db1 = Σ_b dA */
    memset(sA, 0, (size_t)Sc * sizeof *sA);
    for (int b = 0; b < B; b++) {
        const float *a = A + (size_t)b * Sc;
        float *d = dH + (size_t)b * Sc;
        for (int c = 0; c < Sc; c++) {
            float v = k1[c] * d[c] - k2[c] - (a[c] - mw->mean[c]) * k3[c];
            d[c] = v;
            sA[c] += v;
        }
    }
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
        float scale = 1.0f / (1.0f - net->dropout);
        size_t n = (size_t)B * in;
        for (size_t e = 0; e < n; e++)
            mw->dx[e] += mw->mask[e] ? dxd[e] * scale : 0.0f;
    }
}
