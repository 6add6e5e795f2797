/* mixfeature.c — MixFeature, forward and backward (kernels.h): the one
 * copy of its arithmetic on the CPU, called by the CPU backend
 * (kernels/cpu/backend.c). */
#include "kernels.h"

#include <stddef.h>
#include <string.h>

AMTL_KERNEL void amtl_k_mixfeature(float *x, float *sums, const float *embs, const float *dense,
                                   const float *gs, const float *gi, int B, int N, int E, int D)
{
    /* x[B, N·E+E+D], sums[B,E], embs[B,N,E], dense[B,D], gs[N], gi[N].  Float
     * sums over the fields, a field
     * with gi 0 left out; Σu² is gathered in x's FM slot. */
    size_t ldx = (size_t)N * E + E + D;
    for (int b = 0; b < B; b++) {
        const float *e = embs + (size_t)b * N * E;
        float *xb = x + (size_t)b * ldx, *sb = sums + (size_t)b * E;
        float *fm = xb + (size_t)N * E;
        for (int k = 0; k < E; k++)
            sb[k] = fm[k] = 0.0f;
        for (int f = 0; f < N; f++) {
            const float *ef = e + (size_t)f * E;
            float a = gs[f], c = gi[f];
            for (int k = 0; k < E; k++)
                xb[(size_t)f * E + k] = a * ef[k];
            if (c != 0.0f)
                for (int k = 0; k < E; k++) {
                    float u = c * ef[k];
                    sb[k] += u;
                    fm[k] += u * u;
                }
        }
        for (int k = 0; k < E; k++)
            fm[k] = 0.5f * (sb[k] * sb[k] - fm[k]);
        if (D > 0)
            memcpy(fm + E, dense + (size_t)b * D, (size_t)D * sizeof *x);
    }
}

AMTL_KERNEL void amtl_k_mixfeature_back(float *dembs, float *dgs, float *dgi, const float *dx,
                                        const float *embs, const float *sums, const float *gs,
                                        const float *gi, int B, int N, int E, int D)
{
    /* dembs[B,N,E] (+=), dgs[N], dgi[N] (=), dx[B, N·E+E+D], embs[B,N,E],
     * sums[B,E], gs[N], gi[N].  Per (row, field)
     * partial sums in double, added over the rows in order. */
    size_t ldx = (size_t)N * E + E + D;
    for (int f = 0; f < N; f++) {
        float a = gs[f], c = gi[f];
        double ts = 0.0, ti = 0.0;
        for (int b = 0; b < B; b++) {
            const float *ef = embs + ((size_t)b * N + f) * E;
            float *def = dembs + ((size_t)b * N + f) * E;
            const float *dxb = dx + (size_t)b * ldx, *dxf = dxb + (size_t)f * E;
            const float *dfm = dxb + (size_t)N * E, *sb = sums + (size_t)b * E;
            double ps = 0.0, pi = 0.0;
            for (int k = 0; k < E; k++) {
                ps += (double)dxf[k] * ef[k];
                float du = dfm[k] * (sb[k] - c * ef[k]);
                pi += (double)du * ef[k];
                def[k] += a * dxf[k] + c * du;
            }
            ts += ps;
            ti += pi;
        }
        dgs[f] = (float)ts;
        dgi[f] = (float)ti;
    }
}
