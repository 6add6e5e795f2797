/* elem.h — the element and row arithmetic of the supernet's layers, written
 * once for the CPU (lib/model/layers.c, lib/train/optim.c) and the CUDA
 * backend (kernels/cuda/): the sigmoid, binary cross-entropy with logits, a
 * softmax row and its backward, and one Adam element.  The CUDA kernels
 * call these per element or row, so the two backends differ only in how
 * their reductions over the batch are ordered.  Included by C and CUDA
 * sources. */
#ifndef AMTL_ELEM_H
#define AMTL_ELEM_H

#include <math.h>

#include "hd.h"

/* exp of a non-positive argument only: no overflow for any x */
AMTL_HD float amtl_elem_sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* max(x,0) − x y + log(1 + exp(−|x|)): no overflow, no log of 0 */
AMTL_HD double amtl_elem_bce(double x, double y)
{
    return (x > 0.0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
}

/* y = softmax(x) over n values, the sum in double (y == x allowed) */
AMTL_HD void amtl_elem_softmax(float *y, const float *x, int n)
{
    if (n <= 0)
        return;
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

/* dx = y ⊙ (dy − Σ dy·y) over n values, the sum in double, in order
 * (dx == dy allowed) */
AMTL_HD void amtl_elem_softmax_back(float *dx, const float *dy, const float *y, int n)
{
    double d = 0.0;
    for (int j = 0; j < n; j++)
        d += (double)dy[j] * (double)y[j];
    float df = (float)d;
    for (int j = 0; j < n; j++)
        dx[j] = y[j] * (dy[j] - df);
}

/* The constants of one Adam step (optim.h): the bias corrections' powers in
 * double (0.999^t in float drifts by ~1e-4 relative after a few thousand
 * steps), made once per step on the host. */
typedef struct {
    float step_size, inv_sqrt_bc2, b1, c1, b2, c2, eps;
} amtl_adam_k;

AMTL_HD amtl_adam_k amtl_adam_consts(float lr, float beta1, float beta2, float eps,
                                     long long step)
{
    double bc1 = 1.0 - pow((double)beta1, (double)step);
    double bc2 = 1.0 - pow((double)beta2, (double)step);
    amtl_adam_k k;
    k.step_size = (float)((double)lr / bc1);
    k.inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    k.b1 = beta1;
    k.c1 = 1.0f - beta1;
    k.b2 = beta2;
    k.c2 = 1.0f - beta2;
    k.eps = eps;
    return k;
}

/* One Adam element: weight p with gradient g (plus the decay wd·p) and its
 * moments m, v; the new weight is returned, the moments written */
AMTL_HD float amtl_elem_adam(float p, float g, float *m, float *v, amtl_adam_k k, float wd)
{
    float gi = g + wd * p;
    float mi = k.b1 * *m + k.c1 * gi;
    float vi = k.b2 * *v + k.c2 * gi * gi;
    *m = mi;
    *v = vi;
    return p - k.step_size * mi / (sqrtf(vi) * k.inv_sqrt_bc2 + k.eps);
}

#endif
