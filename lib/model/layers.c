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
#include "elem.h"

#include <math.h>
#include <string.h>

/* Σ a·b in double with eight independent partial sums: a fixed reassociation
 * (so the result does not depend on the compiler) that gcc vectorises. */
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
    return amtl_elem_sigmoid(x);
}

/* ---- softmax ---------------------------------------------------------------- */

void amtl_softmax_forward(float *out, const float *inp, int R, int n)
{
    /* out[R,n], inp[R,n]; in place allowed */
    for (int r = 0; r < R; r++)
        amtl_elem_softmax(out + (size_t)r * (size_t)n, inp + (size_t)r * (size_t)n, n);
}

void amtl_softmax_backward(float *dinp, const float *dout, const float *out, int R, int n)
{
    /* dinp[R,n], dout[R,n], out[R,n]; dinp may be dout */
    for (int r = 0; r < R; r++) {
        size_t o = (size_t)r * (size_t)n;
        amtl_elem_softmax_back(dinp + o, dout + o, out + o, n);
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

double amtl_bce_logits_forward(const float *logit, const float *y, const float *w, int B)
{
    /* logit[B], y[B], w[B] or NULL.  Rows weigh w[b] (0/1 for a mask), so the
     * value is the one whose gradient amtl_bce_logits_backward computes. */
    double sum = 0.0;
    int count = 0;
    for (int b = 0; b < B; b++) {
        if (w && w[b] == 0.0f)
            continue;
        double l = amtl_elem_bce(logit[b], y[b]);
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

