/* supernet_ops.cu — the CUDA backend's layers of the supernet itself: the
 * softmax of the expert weights, MixFeature (gated fields and the FM slot)
 * and MixedExpert (the weighted sum of the experts' outputs), each with its
 * backward; the backwards' per-field and per-expert sums go through the
 * two-stage reduction (amtl_cu_scratch, amtl_cu_sum_parts). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda_impl.cuh"
#include "elem.h"

/* Σ of v over a warp, in lane 0 */
__device__ static double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* ---- kernels ---------------------------------------------------------------------- */

/* Softmax of each row of [rows, K], one thread per row (K is small: the
 * experts of a layer); as amtl_softmax_forward.  Y may be X. */
__global__ static void k_softmax(float *Y, const float *X, int rows, int K)
{
    GRID_STRIDE(r, (size_t)rows)
        amtl_elem_softmax(Y + r * K, X + r * K, K);
}

/* Its backward, one thread per row (dX may be dY). */
__global__ static void k_softmax_back(float *dX, const float *dY, const float *Y, int rows, int K)
{
    GRID_STRIDE(r, (size_t)rows)
        amtl_elem_softmax_back(dX + r * K, dY + r * K, Y + r * K, K);
}

/* MixFeature forward, one thread per (b, j), j < E + D: j < E makes the
 * gated fields' column e and the FM slot (float sums over the fields in
 * order, a field with gi 0 left out: mix_feature_forward's arithmetic);
 * j >= E copies a dense value. */
__global__ static void k_mixfeature(float *x, float *sums, const float *embs, const float *dense,
                                    const float *gs, const float *gi, int B, int N, int E, int D)
{
    size_t ldx = (size_t)N * E + E + D, w = (size_t)E + D;
    GRID_STRIDE(i, (size_t)B * w) {
        size_t b = i / w, j = i % w;
        float *xb = x + b * ldx;
        if (j < (size_t)E) {
            const float *eb = embs + b * N * E + j;
            float s = 0.0f, q = 0.0f;
            for (int f = 0; f < N; f++) {
                float v = eb[(size_t)f * E], c = gi[f];
                xb[(size_t)f * E + j] = gs[f] * v;
                if (c != 0.0f) {
                    float u = c * v;
                    s += u;
                    q += u * u;
                }
            }
            sums[b * E + j] = s;
            xb[(size_t)N * E + j] = 0.5f * (s * s - q);
        } else {
            size_t d = j - E;
            xb[(size_t)N * E + E + d] = dense[b * D + d];
        }
    }
}

/* MixFeature backward: block (f, chunk) over the (b, e) pairs of field f in
 * its chunk; dembs += (each element once), and the chunk's Σ dx·e and
 * Σ du·e in double into part[f·nch + chunk] and part[(N + f)·nch + chunk]. */
__global__ static void k_mixfeature_back(float *dembs, double *part, const float *dx,
                                         const float *embs, const float *sums, const float *gs,
                                         const float *gi, int B, int N, int E, int D, size_t per)
{
    __shared__ double sh[TPB];
    int f = blockIdx.x, nch = gridDim.y;
    size_t ldx = (size_t)N * E + E + D, total = (size_t)B * E;
    size_t j0 = blockIdx.y * per, j1 = j0 + per < total ? j0 + per : total;
    float a = gs[f], c = gi[f];
    double ps = 0.0, pi = 0.0;
    for (size_t j = j0 + threadIdx.x; j < j1; j += TPB) {
        size_t b = j / E, e = j % E;
        size_t o = (b * N + f) * E + e;
        const float *dxb = dx + b * ldx;
        float dxf = dxb[(size_t)f * E + e], dfm = dxb[(size_t)N * E + e], ef = embs[o];
        ps += (double)dxf * ef;
        float du = dfm * (sums[b * E + e] - c * ef);
        pi += (double)du * ef;
        dembs[o] += a * dxf + c * du;
    }
    ps = block_sum(ps, sh);
    pi = block_sum(pi, sh);
    if (threadIdx.x == 0) {
        part[(size_t)f * nch + blockIdx.y] = ps;
        part[(size_t)(N + f) * nch + blockIdx.y] = pi;
    }
}

/* MixedExpert forward, one thread per (b, h): float sum over the experts in
 * order; an expert with s 0 is not read */
__global__ static void k_expert_mix(float *out, const float *G, const float *s, const float *Y,
                                    size_t ldk, int B, int K, int H)
{
    GRID_STRIDE(i, (size_t)B * H) {
        size_t b = i / H;
        float acc = 0.0f;
        for (int k = 0; k < K; k++) {
            float sk = s[k];
            if (sk == 0.0f)
                continue;
            float a = G[b * K + k] * sk;
            acc += a * Y[k * ldk + i];
        }
        out[i] = acc;
    }
}

/* MixedExpert backward: block (i, chunk of rows), a warp per row: lanes
 * over H compute p = <dout_b, Y[i]_b> (double) and dY[i] += G·s·dout; lane 0
 * writes dG and adds G·p to the warp's share of ds[i]; the block's share
 * goes to part[i·nch + chunk].  s[i] and bit i of ran are uniform over the
 * block, so the warp shuffles never diverge; an expert whose bit is clear is
 * not read, one with s 0 gets p but no dY. */
__global__ static void k_expert_mix_back(float *dY, float *dG, double *part, const float *dout,
                                         const float *G, const float *s, const float *Y,
                                         size_t ldk, uint64_t ran, int B, int K, int H, int per)
{
    __shared__ double sh[WARPS];
    int i = blockIdx.x, nch = gridDim.y;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float si = s[i];
    int on = (int)((ran >> i) & 1);
    int b0 = blockIdx.y * per, b1 = b0 + per < B ? b0 + per : B;
    double acc = 0.0;
    for (int b = b0 + warp; b < b1; b += WARPS) {
        const float *d = dout + (size_t)b * H;
        float gbi = G[(size_t)b * K + i];
        float p = 0.0f;
        if (on) {
            const float *y = Y + i * ldk + (size_t)b * H;
            float *dy = dY + i * ldk + (size_t)b * H;
            float a = gbi * si;
            double pp = 0.0;
            for (int h = lane; h < H; h += 32) {
                pp += (double)d[h] * (double)y[h];
                if (si != 0.0f)
                    dy[h] += a * d[h];
            }
            p = (float)warp_sum(pp);
        }
        if (lane == 0) {
            dG[(size_t)b * K + i] = si * p;
            acc += (double)gbi * p;
        }
    }
    if (lane == 0)
        sh[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < WARPS; w++)
            t += sh[w];
        part[(size_t)i * nch + blockIdx.y] = t;
    }
}

/* ---- the supernet's own layers -------------------------------------------------------------- */

void amtl_cu_softmax(amtl_backend *be, float *Y, const float *X, int rows, int K)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows > 0 && K > 0)
        LAUNCH(k_softmax, blocks_for(cu, (size_t)rows), TPB, Y, X, rows, K);
}

void amtl_cu_softmax_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int rows, int K)
{
    amtl_cu_ctx *cu = CU(be);
    if (rows > 0 && K > 0)
        LAUNCH(k_softmax_back, blocks_for(cu, (size_t)rows), TPB, dX, dY, Y, rows, K);
}

void amtl_cu_mixfeature(amtl_backend *be, float *x, float *sums, const float *embs, const float *dense,
                        const float *gs, const float *gi, int B, int N, int E, int D)
{
    amtl_cu_ctx *cu = CU(be);
    if (B > 0 && E + D > 0)
        LAUNCH(k_mixfeature, blocks_for(cu, (size_t)B * (E + D)), TPB, x, sums, embs, dense, gs, gi,
               B, N, E, D);
}

void amtl_cu_mixfeature_back(amtl_backend *be, float *dembs, float *dgs, float *dgi, const float *dx,
                             const float *embs, const float *sums, const float *gs,
                             const float *gi, int B, int N, int E, int D)
{
    amtl_cu_ctx *cu = CU(be);
    if (N <= 0)
        return;
    /* chunks of at least 8 elements per thread, at most 64 per field */
    size_t total = (size_t)(B > 0 ? B : 0) * (E > 0 ? E : 0);
    size_t nch = (total + 8 * TPB - 1) / (8 * TPB);
    if (nch < 1)
        nch = 1;
    if (nch > 64)
        nch = 64;
    size_t per = (total + nch - 1) / nch;
    double *part = amtl_cu_scratch(cu, 2 * (size_t)N * nch);
    if (!part)
        return;
    LAUNCH(k_mixfeature_back, dim3((unsigned)N, (unsigned)nch), TPB, dembs, part, dx, embs, sums,
           gs, gi, B > 0 ? B : 0, N, E > 0 ? E : 0, D, per);
    amtl_cu_sum_parts(be, dgs, part, N, (int)nch);
    amtl_cu_sum_parts(be, dgi, part + (size_t)N * nch, N, (int)nch);
}

void amtl_cu_expert_mix(amtl_backend *be, float *out, const float *G, const float *s, const float *Y, size_t ldk,
                        int B, int K, int H)
{
    amtl_cu_ctx *cu = CU(be);
    if (B > 0 && H > 0)
        LAUNCH(k_expert_mix, blocks_for(cu, (size_t)B * H), TPB, out, G, s, Y, ldk, B, K, H);
}

void amtl_cu_expert_mix_back(amtl_backend *be, float *dY, float *dG, float *ds, const float *dout, const float *G,
                             const float *s, const float *Y, size_t ldk, uint64_t ran, int B,
                             int K, int H)
{
    amtl_cu_ctx *cu = CU(be);
    if (K <= 0)
        return;
    /* chunks of 64 rows (8 per warp), at most 256 per expert */
    int Bn = B > 0 ? B : 0;
    int nch = (Bn + 63) / 64;
    if (nch < 1)
        nch = 1;
    if (nch > 256)
        nch = 256;
    int per = (Bn + nch - 1) / nch;
    double *part = amtl_cu_scratch(cu, (size_t)K * nch);
    if (!part)
        return;
    LAUNCH(k_expert_mix_back, dim3((unsigned)K, (unsigned)nch), TPB, dY, dG, part, dout, G, s, Y,
           ldk, ran, Bn, K, H > 0 ? H : 0, per);
    amtl_cu_sum_parts(be, ds, part, K, nch);
}
