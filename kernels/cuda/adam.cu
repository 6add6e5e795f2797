/* adam.cu — the CUDA backend's optimiser: amtl_adam_update over the
 * segments amtl_adam lays out, one thread per moment element. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_impl.cuh"
#include "elem.h"

/* Adam over the moment index j < total: the segment holding j is found by
 * binary search on moff (segments ascending in moff, not overlapping, as
 * amtl_adam lays them out); j in no segment, or in an inactive one, is left
 * alone.  The update of amtl_adam_update, element by element. */
__global__ static void k_adam(float *w, const float *gw, float *m, float *v,
                              const amtl_adam_seg *segs, int n_segs, int64_t total,
                              amtl_adam_k ak, float wd)
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
        w[wi] = amtl_elem_adam(w[wi], gw[wi], &m[j], &v[j], ak, sg.decay ? wd : 0.0f);
    }
}

void amtl_cu_adam(amtl_backend *be, float *w, float *gw, float *m, float *v, const amtl_adam_seg *segs,
                  int n_segs, int64_t total, float lr, float beta1, float beta2, float eps,
                  float wd, int64_t step)
{
    amtl_cu_ctx *cu = CU(be);
    if (n_segs <= 0 || total <= 0)
        return;
    /* the step constants of amtl_adam_update, on the host */
    amtl_adam_k k = amtl_adam_consts(lr, beta1, beta2, eps, (long long)step);
    LAUNCH(k_adam, blocks_for(cu, (size_t)total), TPB, w, gw, m, v, segs, n_segs, total, k, wd);
}
