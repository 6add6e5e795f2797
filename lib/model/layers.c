/* layers.c — the CPU forward and backward of every layer in layers.h.
 *
 * Matrix products go through amtl_gemm (OpenBLAS); everything else is a plain
 * loop over contiguous memory, written so that the compiler vectorises it
 * (restrict pointers where the header forbids aliasing, no calls in the inner
 * loops).  Reductions accumulate in double, so their rounding error does not
 * grow with the batch size.
 */
#include "model/layers.h"
#include "kernels.h"

#include <math.h>
#include <string.h>

/* Channel blocks for per-channel reductions over a row-major [B,C] array: the
 * rows are streamed once per block and the block's accumulators stay in L1. */
#define CHAN_BLOCK 256

/* Σ a·b in double with eight independent partial sums: a fixed reassociation
 * (so the result does not depend on the compiler) that gcc vectorises. */
static double dot_f32(const float *restrict a, const float *restrict b, size_t n)
{
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += (double)a[i + j] * (double)b[i + j];
    double s = 0.0;
    for (; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* ---- initialisation ----------------------------------------------------- */

void amtl_linear_init(float *W, float *b, int I, int O, amtl_rng *rng)
{
    float bound = I > 0 ? (float)(1.0 / sqrt((double)I)) : 0.0f;
    size_t nw = (size_t)O * (size_t)I;
    for (size_t i = 0; i < nw; i++)
        W[i] = amtl_rng_uniform_range(rng, -bound, bound);
    if (b)
        for (int o = 0; o < O; o++)
            b[o] = amtl_rng_uniform_range(rng, -bound, bound);
}

void amtl_embedding_init(float *table, int64_t V, int E, amtl_rng *rng)
{
    size_t n = (size_t)V * (size_t)E;
    for (size_t i = 0; i < n; i++)
        table[i] = (float)amtl_rng_normal(rng, 0.0, 1.0);
}

/* ---- Linear --------------------------------------------------------------- */

void amtl_linear_forward(float *out, const float *inp, const float *W, const float *b,
                         int B, int I, int O)
{
    /* out[B,O], inp[B,I], W[O,I], b[O] or NULL */
    float beta = 0.0f;
    if (b) {
        /* Bias first, then the product accumulates onto it: one pass over out. */
        for (int r = 0; r < B; r++)
            memcpy(out + (size_t)r * (size_t)O, b, (size_t)O * sizeof *out);
        beta = 1.0f;
    }
    amtl_gemm(0, 1, B, O, I, 1.0f, inp, I, W, I, beta, out, O);
}

void amtl_linear_backward(float *dinp, float *dW, float *db, const float *dout,
                          const float *inp, const float *W, int B, int I, int O)
{
    /* dinp[B,I] or NULL, dW[O,I], db[O] or NULL, dout[B,O], inp[B,I], W[O,I] */
    if (dinp)
        amtl_gemm(0, 0, B, I, O, 1.0f, dout, O, W, I, 0.0f, dinp, I);
    amtl_gemm(1, 0, O, I, B, 1.0f, dout, O, inp, I, 1.0f, dW, I);
    if (db) {
        for (int o0 = 0; o0 < O; o0 += CHAN_BLOCK) {
            int n = O - o0 < CHAN_BLOCK ? O - o0 : CHAN_BLOCK;
            double acc[CHAN_BLOCK];
            for (int j = 0; j < n; j++)
                acc[j] = 0.0;
            for (int r = 0; r < B; r++) {
                const float *restrict row = dout + (size_t)r * (size_t)O + o0;
                for (int j = 0; j < n; j++)
                    acc[j] += row[j];
            }
            for (int j = 0; j < n; j++)
                db[o0 + j] += (float)acc[j];
        }
    }
}

/* ---- BatchNorm1d ---------------------------------------------------------- */

void amtl_batchnorm_forward_train(float *out, float *mean, float *rstd,
                                  float *running_mean, float *running_var,
                                  const float *inp, const float *gamma,
                                  const float *beta, int B, int C, float momentum,
                                  float eps)
{
    /* out[B,C], mean[C], rstd[C], running_mean[C], running_var[C], inp[B,C],
     * gamma[C], beta[C] */
    amtl_k_bn_train(out, C, mean, rstd, running_mean, running_var, inp, C, gamma, beta, B, C,
                    momentum, eps);
}

void amtl_batchnorm_forward_eval(float *out, const float *inp, const float *gamma,
                                 const float *beta, const float *running_mean,
                                 const float *running_var, int B, int C, float eps)
{
    /* out[B,C], inp[B,C], gamma[C], beta[C], running_mean[C], running_var[C] */
    amtl_k_bn_eval(out, C, inp, C, gamma, beta, running_mean, running_var, B, C, eps);
}

void amtl_batchnorm_backward(float *dinp, float *dgamma, float *dbeta,
                             const float *dout, const float *inp, const float *mean,
                             const float *rstd, const float *gamma, int B, int C)
{
    /* dinp[B,C], dgamma[C], dbeta[C], dout[B,C], inp[B,C], mean[C], rstd[C],
     * gamma[C].  With xhat = (x - mean) rstd:
     *   dx = gamma rstd (dout - mean_b(dout) - xhat mean_b(dout xhat)). */
    amtl_k_bn_back(dinp, C, dgamma, dbeta, dout, C, inp, C, mean, rstd, gamma, B, C);
}

/* ---- elementwise ---------------------------------------------------------- */

void amtl_relu_forward(float *out, const float *inp, size_t n)
{
    /* out[n], inp[n]; in place allowed */
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void amtl_relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    /* dinp[n], dout[n], out[n]; dinp may be dout */
    for (size_t i = 0; i < n; i++)
        dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void amtl_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n,
                          float p, uint64_t seed, uint64_t site)
{
    /* out[n], mask[n], inp[n]; out may be inp */
    if (p <= 0.0f) {
        if (out != inp)
            memmove(out, inp, n * sizeof *out);
        memset(mask, 1, n);
        return;
    }
    amtl_k_dropout(out, mask, inp, n, p, seed, site);
}

void amtl_dropout_backward(float *dinp, const float *dout, const uint8_t *mask,
                           size_t n, float p, int add)
{
    /* dinp[n] (= or +=), dout[n], mask[n]; dinp may be dout */
    if (p <= 0.0f) {
        if (add)
            for (size_t i = 0; i < n; i++)
                dinp[i] += dout[i];
        else if (dinp != dout)
            memmove(dinp, dout, n * sizeof *dinp);
        return;
    }
    float keep = 1.0f - p;
    if (add)
        for (size_t i = 0; i < n; i++)
            dinp[i] += mask[i] ? dout[i] / keep : 0.0f;
    else
        for (size_t i = 0; i < n; i++)
            dinp[i] = mask[i] ? dout[i] / keep : 0.0f;
}

float amtl_sigmoid(float x)
{
    /* exp of a non-positive argument only: no overflow for any x. */
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* ---- embeddings and FM ----------------------------------------------------- */

void amtl_embedding_forward(float *out, const int32_t *ids, const float *table,
                            int B, int E)
{
    /* out[B,E], ids[B], table[V,E] */
    for (int r = 0; r < B; r++)
        memcpy(out + (size_t)r * (size_t)E, table + (size_t)ids[r] * (size_t)E,
               (size_t)E * sizeof *out);
}

void amtl_embedding_backward(float *dtable, const float *dout, const int32_t *ids,
                             int B, int E)
{
    /* dtable[V,E] (+=), dout[B,E], ids[B] */
    for (int r = 0; r < B; r++) {
        float *restrict d = dtable + (size_t)ids[r] * (size_t)E;
        const float *restrict g = dout + (size_t)r * (size_t)E;
        for (int e = 0; e < E; e++)
            d[e] += g[e];
    }
}

void amtl_fm_forward(float *out, const float *x, int B, int F, int E)
{
    /* out[B,E], x[B,F,E] */
    for (int r = 0; r < B; r++) {
        const float *xb = x + (size_t)r * (size_t)F * (size_t)E;
        float *restrict y = out + (size_t)r * (size_t)E;
        for (int e0 = 0; e0 < E; e0 += CHAN_BLOCK) {
            int n = E - e0 < CHAN_BLOCK ? E - e0 : CHAN_BLOCK;
            float s[CHAN_BLOCK], q[CHAN_BLOCK];
            for (int j = 0; j < n; j++)
                s[j] = q[j] = 0.0f;
            for (int f = 0; f < F; f++) {
                const float *restrict xf = xb + (size_t)f * (size_t)E + e0;
                for (int j = 0; j < n; j++) {
                    s[j] += xf[j];
                    q[j] += xf[j] * xf[j];
                }
            }
            for (int j = 0; j < n; j++)
                y[e0 + j] = 0.5f * (s[j] * s[j] - q[j]);
        }
    }
}

void amtl_fm_backward(float *dx, const float *dout, const float *x, int B, int F, int E)
{
    /* dx[B,F,E], dout[B,E], x[B,F,E] */
    for (int r = 0; r < B; r++) {
        const float *xb = x + (size_t)r * (size_t)F * (size_t)E;
        float *dxb = dx + (size_t)r * (size_t)F * (size_t)E;
        const float *restrict dy = dout + (size_t)r * (size_t)E;
        for (int e0 = 0; e0 < E; e0 += CHAN_BLOCK) {
            int n = E - e0 < CHAN_BLOCK ? E - e0 : CHAN_BLOCK;
            float s[CHAN_BLOCK];
            for (int j = 0; j < n; j++)
                s[j] = 0.0f;
            for (int f = 0; f < F; f++) {
                const float *restrict xf = xb + (size_t)f * (size_t)E + e0;
                for (int j = 0; j < n; j++)
                    s[j] += xf[j];
            }
            for (int f = 0; f < F; f++) {
                const float *restrict xf = xb + (size_t)f * (size_t)E + e0;
                float *restrict d = dxb + (size_t)f * (size_t)E + e0;
                for (int j = 0; j < n; j++)
                    d[j] = dy[e0 + j] * (s[j] - xf[j]);
            }
        }
    }
}

/* ---- softmax ---------------------------------------------------------------- */

void amtl_softmax_forward(float *out, const float *inp, int R, int n)
{
    /* out[R,n], inp[R,n]; in place allowed */
    if (n <= 0)
        return;
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * (size_t)n;
        float *y = out + (size_t)r * (size_t)n;
        float mx = x[0];
        for (int j = 1; j < n; j++)
            mx = x[j] > mx ? x[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            y[j] = expf(x[j] - mx);
            sum += y[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < n; j++)
            y[j] *= inv;
    }
}

void amtl_softmax_backward(float *dinp, const float *dout, const float *out, int R, int n)
{
    /* dinp[R,n], dout[R,n], out[R,n]; dinp may be dout */
    for (int r = 0; r < R; r++) {
        const float *dy = dout + (size_t)r * (size_t)n;
        const float *y = out + (size_t)r * (size_t)n;
        float *dx = dinp + (size_t)r * (size_t)n;
        float d = (float)dot_f32(dy, y, (size_t)n);
        for (int j = 0; j < n; j++)
            dx[j] = y[j] * (dy[j] - d);
    }
}

/* ---- the straight-through gate ---------------------------------------------- */

void amtl_gate_forward(float *g, const float *beta, int n, amtl_gate_mode mode,
                       amtl_rng *rng)
{
    /* g[n], beta[n] */
    for (int i = 0; i < n; i++) {
        switch (mode) {
        case AMTL_GATE_SAMPLE:
            g[i] = (float)amtl_rng_bernoulli(rng, amtl_sigmoid(beta[i]));
            break;
        case AMTL_GATE_THRESHOLD:
            g[i] = amtl_sigmoid(beta[i]) > 0.5f ? 1.0f : 0.0f;
            break;
        case AMTL_GATE_ONES:
        default:
            g[i] = 1.0f;
            break;
        }
    }
}

void amtl_gate_backward(float *dbeta, const float *dg, const float *beta, int n)
{
    /* dbeta[n] (+=), dg[n], beta[n] */
    for (int i = 0; i < n; i++) {
        float s = amtl_sigmoid(beta[i]);
        dbeta[i] += dg[i] * s * (1.0f - s);
    }
}

/* ---- loss ----------------------------------------------------------------------- */

/* max(x,0) − x y + log(1 + exp(−|x|)): no overflow, no log of 0. */
static double bce_logit(double x, double y)
{
    return (x > 0.0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
}

double amtl_bce_logits_forward(const float *logit, const float *y, const float *w, int B)
{
    /* logit[B], y[B], w[B] or NULL.  Rows weigh w[b] (0/1 for a mask), so the
     * value is the one whose gradient amtl_bce_logits_backward computes. */
    double sum = 0.0;
    int count = 0;
    for (int b = 0; b < B; b++) {
        if (w && w[b] == 0.0f)
            continue;
        double l = bce_logit(logit[b], y[b]);
        sum += w ? w[b] * l : l;
        count++;
    }
    return count ? sum / count : 0.0;
}

void amtl_bce_logits_backward(float *dlogit, const float *logit, const float *y,
                              const float *w, int B, float scale)
{
    /* dlogit[B], logit[B], y[B], w[B] or NULL */
    int count = 0;
    if (w) {
        for (int b = 0; b < B; b++)
            count += w[b] != 0.0f;
    } else {
        count = B;
    }
    float k = count ? scale / (float)count : 0.0f;
    for (int b = 0; b < B; b++) {
        float wb = w ? w[b] : 1.0f;
        dlogit[b] = wb == 0.0f ? 0.0f : k * wb * (amtl_sigmoid(logit[b]) - y[b]);
    }
}

/* ---- the mixtures ------------------------------------------------------------------ */

void amtl_wsum_forward(float *out, const float *const *xs, const float *w, int P, size_t n)
{
    /* out[n], xs[P][n] (NULL = Zero), w[P] */
    int first = 1;
    for (int k = 0; k < P; k++) {
        const float *restrict x = xs[k];
        if (!x)
            continue;
        float wk = w[k];
        float *restrict y = out;
        if (first)
            for (size_t i = 0; i < n; i++)
                y[i] = wk * x[i];
        else
            for (size_t i = 0; i < n; i++)
                y[i] += wk * x[i];
        first = 0;
    }
    if (first)
        for (size_t i = 0; i < n; i++)
            out[i] = 0.0f;
}

void amtl_wsum_backward(float *const *dxs, float *dw, const float *dout,
                        const float *const *xs, const float *w, int P, size_t n)
{
    /* dxs[P][n] (NULL skipped), dw[P] (+=), dout[n], xs[P][n], w[P] */
    for (int k = 0; k < P; k++) {
        const float *restrict x = xs[k];
        const float *restrict dy = dout;
        if (dxs && dxs[k]) {
            float *restrict dx = dxs[k];
            float wk = w[k];
            for (size_t i = 0; i < n; i++)
                dx[i] = wk * dy[i];
        }
        if (dw && x)
            dw[k] += (float)dot_f32(dy, x, n);
    }
}

void amtl_expert_mix_forward(float *out, const float *const *ys, const float *g,
                             const float *s, int B, int K, int H)
{
    /* out[B,H], ys[K][B,H] (NULL = an expert that is not computed), g[B,K], s[K] */
    for (int r = 0; r < B; r++) {
        float *restrict y = out + (size_t)r * (size_t)H;
        for (int h = 0; h < H; h++)
            y[h] = 0.0f;
        for (int i = 0; i < K; i++) {
            if (!ys[i])
                continue;
            const float *restrict e = ys[i] + (size_t)r * (size_t)H;
            float c = g[(size_t)r * (size_t)K + i] * s[i];
            for (int h = 0; h < H; h++)
                y[h] += c * e[h];
        }
    }
}

void amtl_expert_mix_backward(float *const *dys, float *dg, float *ds, const float *dout,
                              const float *const *ys, const float *g, const float *s,
                              int B, int K, int H)
{
    /* dys[K][B,H] (+=, NULL skipped), dg[B,K] (written), ds[K] (+=), dout[B,H],
     * ys[K][B,H], g[B,K], s[K] */
    for (int i = 0; i < K; i++) {
        const float *yi = ys[i];
        float *dyi = dys ? dys[i] : NULL;
        double dsum = 0.0;
        for (int r = 0; r < B; r++) {
            const float *restrict dy = dout + (size_t)r * (size_t)H;
            float gri = g[(size_t)r * (size_t)K + i];
            double dot = yi ? dot_f32(dy, yi + (size_t)r * (size_t)H, (size_t)H) : 0.0;
            if (dg)
                dg[(size_t)r * (size_t)K + i] = (float)(s[i] * dot);
            dsum += gri * dot;
            if (dyi) {
                float *restrict d = dyi + (size_t)r * (size_t)H;
                float c = gri * s[i];
                for (int h = 0; h < H; h++)
                    d[h] += c * dy[h];
            }
        }
        if (ds)
            ds[i] += (float)dsum;
    }
}
