/* cuda_impl.cuh — what the files of the CUDA backend share, private to
 * kernels/cuda/: the launch shapes, the state the op files read, the error
 * record and the reduction scratch (both kept by backend.cu), the launch and
 * loop macros, the block reductions, and the host side of every primitive
 * (defined in its family's file, put in the table by backend.cu).
 *
 * Kernels stay static in the file that launches them and the device helpers
 * here are inlined into each file that uses them, so no relocatable device
 * code is needed.
 */
#ifndef AMTL_CUDA_IMPL_CUH
#define AMTL_CUDA_IMPL_CUH

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}

#define TPB 256          /* threads per block of the 1-D kernels (a power of 2) */
#define CW 32            /* columns per block of the per-channel reductions */
#define RL 16            /* row lanes per block of the per-channel reductions */
#define WARPS (TPB / 32)

/* ---- an instance's state and errors (backend.cu) -------------------------------------------- */

/* An instance's context (amtl_backend.ctx): its stream, cuBLAS handle,
 * reduction scratch and first error.  Every wrapper starts with
 * `amtl_cu_ctx *cu = CU(be);`, which LAUNCH and blocks_for use. */
typedef struct {
    cudaStream_t stream;
    cublasHandle_t blas;
    unsigned max_blocks;       /* grid cap of the grid-stride kernels */
    double *scratch;           /* partial sums of the two-stage reductions */
    size_t scratch_bytes;
    int failed;                /* an error was recorded */
    char err[512];             /* the first error */
} amtl_cu_ctx;

#define CU(be) ((amtl_cu_ctx *)(be)->ctx)

/* keeps the first error as "cuda: what: detail" (sticky) */
void amtl_cu_record(amtl_cu_ctx *cu, const char *what, const char *detail);
/* 0, or -1 with the error recorded */
int amtl_cu_blas_ok(amtl_cu_ctx *cu, cublasStatus_t s, const char *what);
/* records a failed launch of kernel (LAUNCH calls it) */
void amtl_cu_launched(amtl_cu_ctx *cu, const char *kernel);
/* scratch for at least n doubles, or NULL with the error recorded */
double *amtl_cu_scratch(amtl_cu_ctx *cu, size_t n);

#define LAUNCH(kernel, grid, block, ...)                                      \
    do {                                                                      \
        kernel<<<(grid), (block), 0, cu->stream>>>(__VA_ARGS__);              \
        amtl_cu_launched(cu, #kernel);                                        \
    } while (0)

/* Blocks for a grid-stride loop over n elements. */
static inline unsigned blocks_for(const amtl_cu_ctx *cu, size_t n)
{
    size_t b = (n + TPB - 1) / TPB;
    return (unsigned)(b < cu->max_blocks ? b : cu->max_blocks);
}

#define GRID_STRIDE(i, n)                                                     \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);   \
         i += (size_t)blockDim.x * gridDim.x)

/* ---- device helpers ------------------------------------------------------------ */

/* Σ of v over a 1-D block of TPB threads, returned to every thread; sh is
 * TPB doubles of shared memory.  Tree order: deterministic. */
static __device__ __forceinline__ double block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = TPB / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* Σ of v over the RL row lanes of a (CW, RL) block, per column, returned to
 * every thread of the column; sh is [RL][CW] doubles of shared memory. */
static __device__ __forceinline__ double lanes_sum(double v, double (*sh)[CW])
{
    sh[threadIdx.y][threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.y == 0) {
        double s = 0.0;
        for (int l = 0; l < RL; l++)
            s += sh[l][threadIdx.x];
        sh[0][threadIdx.x] = s;
    }
    __syncthreads();
    double r = sh[0][threadIdx.x];
    __syncthreads();
    return r;
}

/* ---- the primitives, by file ---------------------------------------------------- */

/* matrix.cu */
void amtl_cu_gemm(amtl_backend *be, int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
void amtl_cu_add(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, int rows, int C);
void amtl_cu_axpy(amtl_backend *be, float *y, const float *x, float a, size_t n);
void amtl_cu_dot(amtl_backend *be, float *out, const float *x, const float *y, size_t n);
/* out[i] = Σ_p part[i·nparts + p] for i < nout (nout > 0): the second stage
 * of the two-stage reductions, part from amtl_cu_scratch */
void amtl_cu_sum_parts(amtl_backend *be, float *out, const double *part, int nout, int nparts);

/* data.cu */
void amtl_cu_take_i32(amtl_backend *be, int32_t *dst, int32_t *const *cols, const int32_t *rows,
                      int B, int C);
void amtl_cu_take_f32(amtl_backend *be, float *dst, float *const *cols, const int32_t *rows,
                      int B, int C);
void amtl_cu_embed_gather(amtl_backend *be, float *embs, const float *w, const int64_t *tab, const int32_t *ids,
                          int B, int N, int E);
void amtl_cu_embed_scatter(amtl_backend *be, float *gw, const int64_t *tab, const int32_t *ids,
                           const float *dembs, int B, int N, int E);

/* elementwise.cu */
void amtl_cu_bias_act(amtl_backend *be, float *Y, int ldy, const float *b, int rows, int C, int relu);
void amtl_cu_colsum(amtl_backend *be, float *s, float beta, const float *X, int ldx, int rows, int C);
void amtl_cu_relu_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int ld, int rows, int C);
void amtl_cu_dropout(amtl_backend *be, float *Y, uint8_t *mask, const float *X, size_t n, float p, uint64_t seed,
                     uint64_t ctr);
void amtl_cu_dropout_back(amtl_backend *be, float *dX, const float *dY, const uint8_t *mask, size_t n, float p,
                          int add);

/* batchnorm.cu */
void amtl_cu_bn_train(amtl_backend *be, float *Y, int ldy, float *mean, float *rstd, float *rmean, float *rvar,
                      const float *X, int ldx, const float *gamma, const float *beta, int rows,
                      int C, float momentum, float eps);
void amtl_cu_bn_eval(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, const float *gamma,
                     const float *beta, const float *rmean, const float *rvar, int rows, int C,
                     float eps);
void amtl_cu_bn_back(amtl_backend *be, float *dX, int lddx, float *dgamma, float *dbeta, const float *dY, int lddy,
                     const float *X, int ldx, const float *mean, const float *rstd,
                     const float *gamma, int rows, int C);

/* supernet_ops.cu */
void amtl_cu_softmax(amtl_backend *be, float *Y, const float *X, int rows, int K);
void amtl_cu_softmax_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int rows, int K);
void amtl_cu_mixfeature(amtl_backend *be, float *x, float *sums, const float *embs, const float *dense,
                        const float *gs, const float *gi, int B, int N, int E, int D);
void amtl_cu_mixfeature_back(amtl_backend *be, float *dembs, float *dgs, float *dgi, const float *dx,
                             const float *embs, const float *sums, const float *gs,
                             const float *gi, int B, int N, int E, int D);
void amtl_cu_expert_mix(amtl_backend *be, float *out, const float *G, const float *s, const float *Y, size_t ldk,
                        int B, int K, int H);
void amtl_cu_expert_mix_back(amtl_backend *be, float *dY, float *dG, float *ds, const float *dout, const float *G,
                             const float *s, const float *Y, size_t ldk, uint64_t ran, int B,
                             int K, int H);

/* loss.cu */
void amtl_cu_bce(amtl_backend *be, float *loss, float *dlogits, const float *logits, const float *labels,
                 const int32_t *cond_host, const float *w_host, int B, int T);

/* adam.cu */
void amtl_cu_adam(amtl_backend *be, float *w, float *gw, float *m, float *v, const amtl_adam_seg *segs,
                  int n_segs, int64_t total, float lr, float beta1, float beta2, float eps,
                  float wd, int64_t step);

#endif
