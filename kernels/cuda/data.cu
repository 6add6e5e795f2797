/* data.cu — the CUDA backend's data movement: a batch's rows taken from the
 * split's columns, and the embedding rows gathered for the forward
 * and their gradients scattered back. */
#include <stddef.h>
#include <stdint.h>

#include "cuda_impl.cuh"

/* ---- kernels ---------------------------------------------------------------------- */

/* dst[b,c] = cols[c][rows[b]] */
__global__ static void k_take_i32(int32_t *dst, int32_t *const *cols, const int32_t *rows,
                                  int B, int C)
{
    GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        dst[i] = cols[c][rows[b]];
    }
}

__global__ static void k_take_f32(float *dst, float *const *cols, const int32_t *rows, int B,
                                  int C)
{
    GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        dst[i] = cols[c][rows[b]];
    }
}

/* embs[b,f,e] = w[tab[f] + ids[b,f]·E + e]; i runs over [B,N,E] */
__global__ static void k_embed_gather(float *embs, const float *w, const int64_t *tab,
                                      const int32_t *ids, int B, int N, int E)
{
    GRID_STRIDE(i, (size_t)B * N * E) {
        size_t bf = i / E, e = i % E;
        int f = (int)(bf % N);
        embs[i] = w[tab[f] + (int64_t)ids[bf] * E + (int64_t)e];
    }
}

/* g[tab[f] + ids[b,f]·E + e] += dembs[b,f,e]: atomics, since two rows of a
 * batch may share an id (the sum's order, hence its rounding, varies) */
__global__ static void k_embed_scatter(float *gw, const int64_t *tab, const int32_t *ids,
                                       const float *dembs, int B, int N, int E)
{
    GRID_STRIDE(i, (size_t)B * N * E) {
        size_t bf = i / E, e = i % E;
        int f = (int)(bf % N);
        atomicAdd(gw + tab[f] + (int64_t)ids[bf] * E + (int64_t)e, dembs[i]);
    }
}

/* ---- data ------------------------------------------------------------------------------- */

void amtl_cu_take_i32(amtl_backend *be, int32_t *dst, int32_t *const *cols, const int32_t *rows,
                      int B, int C)
{
    amtl_cu_ctx *cu = CU(be);
    if (B > 0 && C > 0)
        LAUNCH(k_take_i32, blocks_for(cu, (size_t)B * C), TPB, dst, cols, rows, B, C);
}

void amtl_cu_take_f32(amtl_backend *be, float *dst, float *const *cols, const int32_t *rows,
                      int B, int C)
{
    amtl_cu_ctx *cu = CU(be);
    if (B > 0 && C > 0)
        LAUNCH(k_take_f32, blocks_for(cu, (size_t)B * C), TPB, dst, cols, rows, B, C);
}

void amtl_cu_embed_gather(amtl_backend *be, float *embs, const float *w, const int64_t *tab, const int32_t *ids,
                          int B, int N, int E)
{
    amtl_cu_ctx *cu = CU(be);
    if (B > 0 && N > 0 && E > 0)
        LAUNCH(k_embed_gather, blocks_for(cu, (size_t)B * N * E), TPB, embs, w, tab, ids, B, N, E);
}

void amtl_cu_embed_scatter(amtl_backend *be, float *gw, const int64_t *tab, const int32_t *ids,
                           const float *dembs, int B, int N, int E)
{
    amtl_cu_ctx *cu = CU(be);
    if (B > 0 && N > 0 && E > 0)
        LAUNCH(k_embed_scatter, blocks_for(cu, (size_t)B * N * E), TPB, gw, tab, ids, dembs, B, N,
               E);
}
