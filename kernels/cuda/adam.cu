/* adam.cu — the CUDA backend's optimiser: amtl_adam_update over the
 * segments amtl_adam lays out, one thread per moment element. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_impl.cuh"

/* Adam over the moment index j < total: the segment holding j is found by
 * binary search on moff (segments ascending in moff, not overlapping, as
 * amtl_adam lays them out); j in no segment, or in an inactive one, is left
 * alone.  The update of amtl_adam_update, element by element. */
__global__ static void k_adam(float *w, const float *gw, float *m, float *v,
                              const amtl_adam_seg *segs, int n_segs, int64_t total,
                              float step_size, float inv_sqrt_bc2, float b1, float c1, float b2,
                              float c2, float eps, float wd)
{
    GRID_STRIDE(j, (size_t)total) {
        int lo = 0, hi = n_segs - 1, k = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >> 1;
            if (segs[mid].moff <= (int64_t)j) {
                k = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (k < 0)
            continue;
        amtl_adam_seg sg = segs[k];
        if (!sg.active || (int64_t)j >= sg.moff + sg.n)
            continue;
        size_t wi = (size_t)(sg.woff + ((int64_t)j - sg.moff));
        float wdk = sg.decay ? wd : 0.0f;
        float p = w[wi];
        float gi = gw[wi] + wdk * p;
        float mi = b1 * m[j] + c1 * gi;
        float vi = b2 * v[j] + c2 * gi * gi;
        m[j] = mi;
        v[j] = vi;
        w[wi] = p - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

void amtl_cu_adam(amtl_backend *be, float *w, float *gw, float *m, float *v, const amtl_adam_seg *segs,
                  int n_segs, int64_t total, float lr, float beta1, float beta2, float eps,
                  float wd, int64_t step)
{
    amtl_cu_ctx *cu = CU(be);
    if (n_segs <= 0 || total <= 0)
        return;
    /* the step constants of amtl_adam_update, on the host in double */
    double bc1 = 1.0 - pow((double)beta1, (double)step);
    double bc2 = 1.0 - pow((double)beta2, (double)step);
    float step_size = (float)((double)lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    LAUNCH(k_adam, blocks_for(cu, (size_t)total), TPB, w, gw, m, v, segs, n_segs, total, step_size,
           inv_sqrt_bc2, beta1, 1.0f - beta1, beta2, 1.0f - beta2, eps, wd);
}
