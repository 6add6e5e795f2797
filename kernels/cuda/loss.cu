/* loss.cu — the CUDA backend's loss: binary cross-entropy with logits per
 * task, a block per task, with the conditioning mask and the task weights of
 * the CPU's loss_and_grad. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cuda_impl.cuh"
#include "elem.h"

/* the per-task constants of bce, by value (kernel parameter space) */
typedef struct {
    int32_t cond[AMTL_BACKEND_MAX_T];
    float w[AMTL_BACKEND_MAX_T];
} bce_args;

/* BCE of task t = blockIdx.x over the rows: the counted rows' loss sum
 * (double) and count, then dlogits; as the CPU's loss_and_grad. */
__global__ static void k_bce(float *loss, float *dlogits, const float *logits,
                             const float *labels, bce_args a, int B, int T)
{
    __shared__ double sh[TPB];
    int t = blockIdx.x, ct = a.cond[t];
    const float *x = logits + (size_t)t * B;
    float *dx = dlogits + (size_t)t * B;
    double sum = 0.0, cnt = 0.0;
    for (int b = threadIdx.x; b < B; b += TPB) {
        float m = ct >= 0 ? labels[(size_t)b * T + ct] : 1.0f;
        if (m == 0.0f)
            continue;
        sum += m * amtl_elem_bce(x[b], labels[(size_t)b * T + t]);
        cnt += 1.0;
    }
    sum = block_sum(sum, sh);
    int count = (int)block_sum(cnt, sh);
    if (threadIdx.x == 0)
        loss[t] = (float)(count ? sum / count : 0.0);
    float scale = a.w[t] / (float)T;
    float k = count ? scale / (float)count : 0.0f;
    for (int b = threadIdx.x; b < B; b += TPB) {
        float m = ct >= 0 ? labels[(size_t)b * T + ct] : 1.0f;
        float y = labels[(size_t)b * T + t];
        dx[b] = m == 0.0f ? 0.0f : k * m * (amtl_elem_sigmoid(x[b]) - y);
    }
}

void amtl_cu_bce(amtl_backend *be, float *loss, float *dlogits, const float *logits, const float *labels,
                 const int32_t *cond_host, const float *w_host, int B, int T)
{
    amtl_cu_ctx *cu = CU(be);
    if (T <= 0)
        return;
    if (T > AMTL_BACKEND_MAX_T) {
        char d[96];
        snprintf(d, sizeof d, "%d tasks, more than AMTL_BACKEND_MAX_T (%d)", T,
                 AMTL_BACKEND_MAX_T);
        amtl_cu_record(cu, "bce", d);
        return;
    }
    bce_args a;
    memset(&a, 0, sizeof a);
    memcpy(a.cond, cond_host, (size_t)T * sizeof *cond_host);
    memcpy(a.w, w_host, (size_t)T * sizeof *w_host);
    LAUNCH(k_bce, (unsigned)T, TPB, loss, dlogits, logits, labels, a, B > 0 ? B : 0, T);
}
