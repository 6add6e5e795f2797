/* layers.c — the host's layer functions of layers.h.
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

/* ---- elementwise ---------------------------------------------------------- */

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

