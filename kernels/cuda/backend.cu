/* backend.cu — the CUDA backend of kernels/backend.h: device memory, cuBLAS
 * for the products, one kernel (or two) per primitive, everything queued on
 * one stream in order.
 *
 * Parity with the CPU backend (kernels/cpu/backend.c) is the design goal:
 * each kernel keeps the CPU's arithmetic per element (same operations, same
 * order, the file is compiled with --fmad=false because the ISO C build of
 * the CPU code does not contract a·b+c either) and the reductions over the
 * batch accumulate in double, so results differ from the CPU's only by the
 * order of the double sums and by cuBLAS's float accumulation order.
 *
 * Kernel shapes:
 *   elementwise      grid-stride loops over the elements (size_t index);
 *   per-channel      a block per chunk of CW columns: threadIdx.x is the
 *   reductions       column (reads coalesced along a row), threadIdx.y a
 *                    lane of rows, lanes summed through shared memory; the
 *                    block owns its columns, so it can normalise them after
 *                    the statistics without a second launch;
 *   per-field and    a grid of (output, chunk) blocks writing double partial
 *   per-expert sums  sums to a scratch buffer, then a small kernel adding
 *                    each output's partials in a fixed order (deterministic,
 *                    no atomics);
 *   embed_scatter    atomicAdd (repeated ids in a batch collide).
 *
 * Errors: the first failure of a CUDA or cuBLAS call or of a kernel launch
 * is kept as text (sticky); sync, get, put and zero then return -1.  The
 * backend is initialised once, on the first amtl_backend_cuda call (not
 * thread-safe: the program makes that call before starting threads).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}

#define TPB 256          /* threads per block of the 1-D kernels (a power of 2) */
#define CW 32            /* columns per block of the per-channel reductions */
#define RL 16            /* row lanes per block of the per-channel reductions */
#define WARPS (TPB / 32)

/* ---- state and errors -------------------------------------------------------- */

static struct {
    int tried;                 /* amtl_backend_cuda ran its initialisation */
    const amtl_backend *be;    /* the table, once usable */
    char why[256];             /* why the backend is unusable */
    cudaStream_t stream;
    cublasHandle_t blas;
    unsigned max_blocks;       /* grid cap of the grid-stride kernels */
    double *scratch;           /* partial sums of the two-stage reductions */
    size_t scratch_bytes;
    int failed;                /* an error was recorded */
    char err[512];             /* the first error */
    amtl_backend table;
} g;

static void record(const char *what, const char *detail)
{
    if (g.failed)
        return;
    g.failed = 1;
    snprintf(g.err, sizeof g.err, "cuda: %s: %s", what, detail);
}

/* 0, or -1 with the error recorded.  A non-sticky error (an allocation that
 * failed) is also cleared from the runtime, so that the next launch check
 * does not report it a second time under another name. */
static int cu_ok(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return 0;
    (void)cudaGetLastError();
    record(what, cudaGetErrorString(e));
    return -1;
}

static int blas_ok(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    record(what, cublasGetStatusString(s));
    return -1;
}

/* After every launch: a bad configuration shows here at once; a fault while
 * running shows at the next sync. */
static void launched(const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "kernel %s", kernel);
        record(what, cudaGetErrorString(e));
    }
}

#define LAUNCH(kernel, grid, block, ...)                                      \
    do {                                                                      \
        kernel<<<(grid), (block), 0, g.stream>>>(__VA_ARGS__);                \
        launched(#kernel);                                                    \
    } while (0)

/* Blocks for a grid-stride loop over n elements. */
static unsigned blocks_for(size_t n)
{
    size_t b = (n + TPB - 1) / TPB;
    return (unsigned)(b < g.max_blocks ? b : g.max_blocks);
}

/* Scratch for at least n doubles, grown (rarely: the first large call) after
 * the queue has drained, since kernels in flight may still read the old one. */
static double *scratch(size_t n)
{
    size_t bytes = n * sizeof(double);
    if (bytes <= g.scratch_bytes)
        return g.scratch;
    if (cu_ok(cudaStreamSynchronize(g.stream), "stream synchronisation"))
        return NULL;
    cudaFree(g.scratch);
    g.scratch = NULL;
    g.scratch_bytes = 0;
    void *p = NULL;
    if (cu_ok(cudaMalloc(&p, bytes), "cudaMalloc of the reduction scratch"))
        return NULL;
    g.scratch = (double *)p;
    g.scratch_bytes = bytes;
    return g.scratch;
}

#define GRID_STRIDE(i, n)                                                     \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);   \
         i += (size_t)blockDim.x * gridDim.x)

/* ---- device helpers ------------------------------------------------------------ */

/* Σ of v over a 1-D block of TPB threads, returned to every thread; sh is
 * TPB doubles of shared memory.  Tree order: deterministic. */
__device__ static double block_sum(double v, double *sh)
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
__device__ static double lanes_sum(double v, double (*sh)[CW])
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

/* Σ of v over a warp, in lane 0 */
__device__ static double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* as amtl_sigmoid: exp of a non-positive argument only */
__device__ static float sigmoid_f(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* as bce_logit of lib/model/layers.c */
__device__ static double bce_logit(double x, double y)
{
    return (x > 0.0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
}

/* ---- kernels ---------------------------------------------------------------------- */

/* out[i] = Σ_p part[i·nparts + p] for i < nout, in order: the second stage
 * of the two-stage reductions. */
__global__ static void k_sum_parts(float *out, const double *part, int nout, int nparts)
{
    GRID_STRIDE(i, (size_t)nout) {
        const double *p = part + i * (size_t)nparts;
        double s = 0.0;
        for (int k = 0; k < nparts; k++)
            s += p[k];
        out[i] = (float)s;
    }
}

/* C[r,c] = beta·C[r,c] for r < M, c < N (beta 0 does not read C): gemm with
 * K == 0, which cuBLAS's leading-dimension checks would refuse. */
__global__ static void k_scale(float *C, int ldc, float beta, int M, int N)
{
    GRID_STRIDE(i, (size_t)M * N) {
        size_t r = i / N, c = i % N;
        float *p = C + r * ldc + c;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

/* Y[r,c] += X[r,c] */
__global__ static void k_add(float *Y, int ldy, const float *X, int ldx, int rows, int C)
{
    GRID_STRIDE(i, (size_t)rows * C) {
        size_t r = i / C, c = i % C;
        Y[r * ldy + c] += X[r * ldx + c];
    }
}

/* y[i] += a·x[i] */
__global__ static void k_axpy(float *y, const float *x, float a, size_t n)
{
    GRID_STRIDE(i, n)
        y[i] += a * x[i];
}

/* part[block] = this block's share of Σ x·y (double); k_sum_parts adds them */
__global__ static void k_dot(double *part, const float *x, const float *y, size_t n)
{
    __shared__ double sh[TPB];
    double s = 0.0;
    GRID_STRIDE(i, n)
        s += (double)x[i] * (double)y[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

/* dst[b,c] = src[c·ld + rows[b]] */
__global__ static void k_take_i32(int32_t *dst, const int32_t *src, int64_t ld,
                                  const int32_t *rows, int B, int C)
{
    GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        dst[i] = src[(int64_t)c * ld + rows[b]];
    }
}

__global__ static void k_take_f32(float *dst, const float *src, int64_t ld, const int32_t *rows,
                                  int B, int C)
{
    GRID_STRIDE(i, (size_t)B * C) {
        size_t b = i / C, c = i % C;
        dst[i] = src[(int64_t)c * ld + rows[b]];
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

/* Y[r,c] = act(Y[r,c] + b[c]) */
__global__ static void k_bias_act(float *Y, int ldy, const float *b, int rows, int C, int relu)
{
    GRID_STRIDE(i, (size_t)rows * C) {
        size_t r = i / C, c = i % C;
        float *p = Y + r * ldy + c;
        float v = *p + b[c];
        *p = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

/* s[c] = beta·s[c] + Σ_r X[r,c]; block (CW, RL) per CW columns, beta 0
 * does not read s (as the CPU backend) */
__global__ static void k_colsum(float *s, float beta, const float *X, int ldx, int rows, int C)
{
    __shared__ double sh[RL][CW];
    int c = blockIdx.x * CW + threadIdx.x;
    double acc = 0.0;
    if (c < C)
        for (int r = threadIdx.y; r < rows; r += RL)
            acc += X[(size_t)r * ldx + c];
    acc = lanes_sum(acc, sh);
    if (c < C && threadIdx.y == 0)
        s[c] = beta == 0.0f ? (float)acc : (float)((double)beta * s[c] + acc);
}

/* dX = Y > 0 ? dY : 0 (dX may be dY: each thread reads its element first) */
__global__ static void k_relu_back(float *dX, const float *dY, const float *Y, int ld, int rows,
                                   int C)
{
    GRID_STRIDE(i, (size_t)rows * C) {
        size_t j = i / C * ld + i % C;
        dX[j] = Y[j] > 0.0f ? dY[j] : 0.0f;
    }
}

/* element i kept when amtl_ctr_uniform(seed, ctr, i) >= p: the CPU's draw */
__global__ static void k_dropout(float *Y, uint8_t *mask, const float *X, size_t n, float p,
                                 uint64_t seed, uint64_t ctr)
{
    float keep = 1.0f - p;
    GRID_STRIDE(i, n) {
        int kept = amtl_ctr_uniform(seed, ctr, i) >= p;
        mask[i] = (uint8_t)kept;
        Y[i] = kept ? X[i] / keep : 0.0f;
    }
}

/* dX (= or +=) mask ? dY/(1-p) : 0 (dX may be dY) */
__global__ static void k_dropout_back(float *dX, const float *dY, const uint8_t *mask, size_t n,
                                      float p, int add)
{
    float keep = 1.0f - p;
    GRID_STRIDE(i, n) {
        float v = mask[i] ? dY[i] / keep : 0.0f;
        dX[i] = add ? dX[i] + v : v;
    }
}

/* BatchNorm training forward; block (CW, RL) per CW channels, three passes
 * over its columns: mean, squared deviations (two passes: no
 * cancellation), normalisation.  The statistics and running updates in
 * double, as the CPU. */
__global__ static void k_bn_train(float *Y, int ldy, float *mean, float *rstd, float *rmean,
                                  float *rvar, const float *X, int ldx, const float *gamma,
                                  const float *beta, int rows, int C, float momentum, float eps)
{
    __shared__ double sh[RL][CW];
    int c = blockIdx.x * CW + threadIdx.x;
    int ok = c < C;
    double acc = 0.0;
    if (ok)
        for (int r = threadIdx.y; r < rows; r += RL)
            acc += X[(size_t)r * ldx + c];
    double mu = lanes_sum(acc, sh) / rows;
    acc = 0.0;
    if (ok)
        for (int r = threadIdx.y; r < rows; r += RL) {
            double d = X[(size_t)r * ldx + c] - mu;
            acc += d * d;
        }
    double var = lanes_sum(acc, sh) / rows;
    if (!ok)
        return;   /* no barrier follows */
    float mf = (float)mu, rs = (float)(1.0 / sqrt(var + eps));
    if (threadIdx.y == 0) {
        double unbias = rows > 1 ? (double)rows / (double)(rows - 1) : 1.0;
        mean[c] = mf;
        rstd[c] = rs;
        rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * mu);
        rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * var * unbias);
    }
    float ga = gamma[c], be = beta[c];
    for (int r = threadIdx.y; r < rows; r += RL)
        Y[(size_t)r * ldy + c] = (X[(size_t)r * ldx + c] - mf) * rs * ga + be;
}

/* BatchNorm evaluation: Y = X·scale + shift per channel, scale and shift in
 * double as the CPU; block (CW, RL), grid (channel chunks, row chunks) */
__global__ static void k_bn_eval(float *Y, int ldy, const float *X, int ldx, const float *gamma,
                                 const float *beta, const float *rmean, const float *rvar,
                                 int rows, int C, float eps)
{
    int c = blockIdx.x * CW + threadIdx.x;
    if (c >= C)
        return;
    double s = gamma[c] / sqrt((double)rvar[c] + eps);
    float scale = (float)s, shift = (float)(beta[c] - rmean[c] * s);
    for (int r = blockIdx.y * RL + threadIdx.y; r < rows; r += RL * gridDim.y)
        Y[(size_t)r * ldy + c] = X[(size_t)r * ldx + c] * scale + shift;
}

/* BatchNorm backward; block (CW, RL) per CW channels: the sums Σdy and
 * Σdy·xh (double), dbeta/dgamma +=, then dX.  dX may be dY (same leading
 * dimension): the sums are complete before the first write, and each
 * element is read by the thread that writes it. */
__global__ static void k_bn_back(float *dX, int lddx, float *dgamma, float *dbeta,
                                 const float *dY, int lddy, const float *X, int ldx,
                                 const float *mean, const float *rstd, const float *gamma,
                                 int rows, int C)
{
    __shared__ double sh[RL][CW];
    int c = blockIdx.x * CW + threadIdx.x;
    int ok = c < C;
    float mu = ok ? mean[c] : 0.0f, rs = ok ? rstd[c] : 0.0f;
    double sd = 0.0, sdx = 0.0;
    if (ok)
        for (int r = threadIdx.y; r < rows; r += RL) {
            float xh = (X[(size_t)r * ldx + c] - mu) * rs;
            float dy = dY[(size_t)r * lddy + c];
            sd += dy;
            sdx += dy * xh;
        }
    sd = lanes_sum(sd, sh);
    sdx = lanes_sum(sdx, sh);
    if (!ok)
        return;   /* no barrier follows */
    if (threadIdx.y == 0) {
        dbeta[c] += (float)sd;
        dgamma[c] += (float)sdx;
    }
    float k0 = (float)(sd / rows), k1 = (float)(sdx / rows), gr = gamma[c] * rs;
    for (int r = threadIdx.y; r < rows; r += RL) {
        float xh = (X[(size_t)r * ldx + c] - mu) * rs;
        float dy = dY[(size_t)r * lddy + c];
        dX[(size_t)r * lddx + c] = gr * (dy - k0 - xh * k1);
    }
}

/* Softmax of each row of [rows, K], one thread per row (K is small: the
 * experts of a layer); as amtl_softmax_forward.  Y may be X. */
__global__ static void k_softmax(float *Y, const float *X, int rows, int K)
{
    GRID_STRIDE(r, (size_t)rows) {
        const float *x = X + r * K;
        float *y = Y + r * K;
        float mx = x[0];
        for (int j = 1; j < K; j++)
            mx = x[j] > mx ? x[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < K; j++) {
            y[j] = expf(x[j] - mx);
            sum += y[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < K; j++)
            y[j] *= inv;
    }
}

/* dX = Y ⊙ (dY − Σ dY·Y) per row, one thread per row; dX may be dY */
__global__ static void k_softmax_back(float *dX, const float *dY, const float *Y, int rows, int K)
{
    GRID_STRIDE(r, (size_t)rows) {
        const float *dy = dY + r * K, *y = Y + r * K;
        float *dx = dX + r * K;
        double d = 0.0;
        for (int j = 0; j < K; j++)
            d += (double)dy[j] * (double)y[j];
        float df = (float)d;
        for (int j = 0; j < K; j++)
            dx[j] = y[j] * (dy[j] - df);
    }
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
        sum += m * bce_logit(x[b], labels[(size_t)b * T + t]);
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
        dx[b] = m == 0.0f ? 0.0f : k * m * (sigmoid_f(x[b]) - y);
    }
}

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

/* ---- memory and errors ----------------------------------------------------------- */

static void *cu_alloc(size_t bytes)
{
    void *p = NULL;
    char what[96];
    snprintf(what, sizeof what, "cudaMalloc of %zu bytes", bytes);
    /* one byte for n == 0: cudaMalloc would give NULL, which means failure here */
    if (cu_ok(cudaMalloc(&p, bytes ? bytes : 1), what))
        return NULL;
    return p;
}

static void cu_free(void *p)
{
    if (p)
        cu_ok(cudaFree(p), "cudaFree");
}

static int cu_put(void *dst, const void *src_host, size_t bytes)
{
    /* from pageable memory the call returns once src_host has been staged,
     * so the caller may reuse it at once */
    if (bytes)
        cu_ok(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, g.stream),
              "copy to the device");
    return g.failed ? -1 : 0;
}

static int cu_get(void *dst_host, const void *src, size_t bytes)
{
    if (bytes)
        cu_ok(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, g.stream),
              "copy from the device");
    cu_ok(cudaStreamSynchronize(g.stream), "stream synchronisation");
    return g.failed ? -1 : 0;
}

static int cu_zero(void *p, size_t bytes)
{
    if (bytes)
        cu_ok(cudaMemsetAsync(p, 0, bytes, g.stream), "cudaMemsetAsync");
    return g.failed ? -1 : 0;
}

static int cu_sync(void)
{
    cu_ok(cudaStreamSynchronize(g.stream), "stream synchronisation");
    return g.failed ? -1 : 0;
}

static const char *cu_last_error(void)
{
    /* a fault of a kernel still queued shows without waiting for it */
    cudaError_t e = cudaStreamQuery(g.stream);
    if (e != cudaErrorNotReady)
        cu_ok(e, "stream query");
    return g.failed ? g.err : NULL;
}

/* ---- matrices ------------------------------------------------------------------------ */

/* Row-major C[M,N] = α·op(A)·op(B) + β·C is column-major Cᵀ = α·op(B)ᵀ·op(A)ᵀ
 * + β·Cᵀ, and a row-major matrix with leading dimension ld is its transpose
 * in column-major with the same ld: so B and A swap places, M and N swap,
 * and the transpose flags stay as given. */
static void cu_gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        LAUNCH(k_scale, blocks_for((size_t)M * N), TPB, C, ldc, beta, M, N);
        return;
    }
    blas_ok(cublasSgemm(g.blas, tB ? CUBLAS_OP_T : CUBLAS_OP_N, tA ? CUBLAS_OP_T : CUBLAS_OP_N,
                        N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc),
            "cublasSgemm");
}

static void cu_add(float *Y, int ldy, const float *X, int ldx, int rows, int C)
{
    if (rows > 0 && C > 0)
        LAUNCH(k_add, blocks_for((size_t)rows * C), TPB, Y, ldy, X, ldx, rows, C);
}

static void cu_axpy(float *y, const float *x, float a, size_t n)
{
    if (n)
        LAUNCH(k_axpy, blocks_for(n), TPB, y, x, a, n);
}

static void cu_dot(float *out, const float *x, const float *y, size_t n)
{
    /* *out is written (n == 0 gives 0) */
    unsigned nb = n ? blocks_for(n) : 1;
    if (nb > 1024)
        nb = 1024;
    double *part = scratch(nb);
    if (!part)
        return;
    LAUNCH(k_dot, nb, TPB, part, x, y, n);
    LAUNCH(k_sum_parts, 1, 32, out, part, 1, (int)nb);
}

/* ---- data ------------------------------------------------------------------------------- */

static void cu_take_i32(int32_t *dst, const int32_t *src, int64_t ld, const int32_t *rows, int B,
                        int C)
{
    if (B > 0 && C > 0)
        LAUNCH(k_take_i32, blocks_for((size_t)B * C), TPB, dst, src, ld, rows, B, C);
}

static void cu_take_f32(float *dst, const float *src, int64_t ld, const int32_t *rows, int B,
                        int C)
{
    if (B > 0 && C > 0)
        LAUNCH(k_take_f32, blocks_for((size_t)B * C), TPB, dst, src, ld, rows, B, C);
}

static void cu_embed_gather(float *embs, const float *w, const int64_t *tab, const int32_t *ids,
                            int B, int N, int E)
{
    if (B > 0 && N > 0 && E > 0)
        LAUNCH(k_embed_gather, blocks_for((size_t)B * N * E), TPB, embs, w, tab, ids, B, N, E);
}

static void cu_embed_scatter(float *gw, const int64_t *tab, const int32_t *ids,
                             const float *dembs, int B, int N, int E)
{
    if (B > 0 && N > 0 && E > 0)
        LAUNCH(k_embed_scatter, blocks_for((size_t)B * N * E), TPB, gw, tab, ids, dembs, B, N,
               E);
}

/* ---- elementwise ---------------------------------------------------------------------------- */

static void cu_bias_act(float *Y, int ldy, const float *b, int rows, int C, int relu)
{
    if (rows > 0 && C > 0)
        LAUNCH(k_bias_act, blocks_for((size_t)rows * C), TPB, Y, ldy, b, rows, C, relu);
}

static void cu_colsum(float *s, float beta, const float *X, int ldx, int rows, int C)
{
    if (C > 0)
        LAUNCH(k_colsum, (C + CW - 1) / CW, dim3(CW, RL), s, beta, X, ldx, rows > 0 ? rows : 0,
               C);
}

static void cu_relu_back(float *dX, const float *dY, const float *Y, int ld, int rows, int C)
{
    if (rows > 0 && C > 0)
        LAUNCH(k_relu_back, blocks_for((size_t)rows * C), TPB, dX, dY, Y, ld, rows, C);
}

static void cu_dropout(float *Y, uint8_t *mask, const float *X, size_t n, float p, uint64_t seed,
                       uint64_t ctr)
{
    if (n)
        LAUNCH(k_dropout, blocks_for(n), TPB, Y, mask, X, n, p, seed, ctr);
}

static void cu_dropout_back(float *dX, const float *dY, const uint8_t *mask, size_t n, float p,
                            int add)
{
    if (n)
        LAUNCH(k_dropout_back, blocks_for(n), TPB, dX, dY, mask, n, p, add);
}

/* ---- BatchNorm1d ------------------------------------------------------------------------------ */

static void cu_bn_train(float *Y, int ldy, float *mean, float *rstd, float *rmean, float *rvar,
                        const float *X, int ldx, const float *gamma, const float *beta, int rows,
                        int C, float momentum, float eps)
{
    if (rows > 0 && C > 0)
        LAUNCH(k_bn_train, (C + CW - 1) / CW, dim3(CW, RL), Y, ldy, mean, rstd, rmean, rvar, X,
               ldx, gamma, beta, rows, C, momentum, eps);
}

static void cu_bn_eval(float *Y, int ldy, const float *X, int ldx, const float *gamma,
                       const float *beta, const float *rmean, const float *rvar, int rows, int C,
                       float eps)
{
    if (rows <= 0 || C <= 0)
        return;
    unsigned gy = (unsigned)((rows + RL - 1) / RL);
    if (gy > 64)
        gy = 64;
    LAUNCH(k_bn_eval, dim3((C + CW - 1) / CW, gy), dim3(CW, RL), Y, ldy, X, ldx, gamma, beta,
           rmean, rvar, rows, C, eps);
}

static void cu_bn_back(float *dX, int lddx, float *dgamma, float *dbeta, const float *dY, int lddy,
                       const float *X, int ldx, const float *mean, const float *rstd,
                       const float *gamma, int rows, int C)
{
    if (rows > 0 && C > 0)
        LAUNCH(k_bn_back, (C + CW - 1) / CW, dim3(CW, RL), dX, lddx, dgamma, dbeta, dY, lddy, X,
               ldx, mean, rstd, gamma, rows, C);
}

/* ---- the supernet's own layers -------------------------------------------------------------- */

static void cu_softmax(float *Y, const float *X, int rows, int K)
{
    if (rows > 0 && K > 0)
        LAUNCH(k_softmax, blocks_for((size_t)rows), TPB, Y, X, rows, K);
}

static void cu_softmax_back(float *dX, const float *dY, const float *Y, int rows, int K)
{
    if (rows > 0 && K > 0)
        LAUNCH(k_softmax_back, blocks_for((size_t)rows), TPB, dX, dY, Y, rows, K);
}

static void cu_mixfeature(float *x, float *sums, const float *embs, const float *dense,
                          const float *gs, const float *gi, int B, int N, int E, int D)
{
    if (B > 0 && E + D > 0)
        LAUNCH(k_mixfeature, blocks_for((size_t)B * (E + D)), TPB, x, sums, embs, dense, gs, gi,
               B, N, E, D);
}

static void cu_mixfeature_back(float *dembs, float *dgs, float *dgi, const float *dx,
                               const float *embs, const float *sums, const float *gs,
                               const float *gi, int B, int N, int E, int D)
{
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
    double *part = scratch(2 * (size_t)N * nch);
    if (!part)
        return;
    LAUNCH(k_mixfeature_back, dim3((unsigned)N, (unsigned)nch), TPB, dembs, part, dx, embs, sums,
           gs, gi, B > 0 ? B : 0, N, E > 0 ? E : 0, D, per);
    LAUNCH(k_sum_parts, blocks_for((size_t)N), TPB, dgs, part, N, (int)nch);
    LAUNCH(k_sum_parts, blocks_for((size_t)N), TPB, dgi, part + (size_t)N * nch, N, (int)nch);
}

static void cu_expert_mix(float *out, const float *G, const float *s, const float *Y, size_t ldk,
                          int B, int K, int H)
{
    if (B > 0 && H > 0)
        LAUNCH(k_expert_mix, blocks_for((size_t)B * H), TPB, out, G, s, Y, ldk, B, K, H);
}

static void cu_expert_mix_back(float *dY, float *dG, float *ds, const float *dout, const float *G,
                               const float *s, const float *Y, size_t ldk, uint64_t ran, int B,
                               int K, int H)
{
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
    double *part = scratch((size_t)K * nch);
    if (!part)
        return;
    LAUNCH(k_expert_mix_back, dim3((unsigned)K, (unsigned)nch), TPB, dY, dG, part, dout, G, s, Y,
           ldk, ran, Bn, K, H > 0 ? H : 0, per);
    LAUNCH(k_sum_parts, blocks_for((size_t)K), TPB, ds, part, K, nch);
}

static void cu_bce(float *loss, float *dlogits, const float *logits, const float *labels,
                   const int32_t *cond_host, const float *w_host, int B, int T)
{
    if (T <= 0)
        return;
    if (T > AMTL_BACKEND_MAX_T) {
        char d[96];
        snprintf(d, sizeof d, "%d tasks, more than AMTL_BACKEND_MAX_T (%d)", T,
                 AMTL_BACKEND_MAX_T);
        record("bce", d);
        return;
    }
    bce_args a;
    memset(&a, 0, sizeof a);
    memcpy(a.cond, cond_host, (size_t)T * sizeof *cond_host);
    memcpy(a.w, w_host, (size_t)T * sizeof *w_host);
    LAUNCH(k_bce, (unsigned)T, TPB, loss, dlogits, logits, labels, a, B > 0 ? B : 0, T);
}

static void cu_adam(float *w, float *gw, float *m, float *v, const amtl_adam_seg *segs,
                    int n_segs, int64_t total, float lr, float beta1, float beta2, float eps,
                    float wd, int64_t step)
{
    if (n_segs <= 0 || total <= 0)
        return;
    /* the step constants of amtl_adam_update, on the host in double */
    double bc1 = 1.0 - pow((double)beta1, (double)step);
    double bc2 = 1.0 - pow((double)beta2, (double)step);
    float step_size = (float)((double)lr / bc1);
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    LAUNCH(k_adam, blocks_for((size_t)total), TPB, w, gw, m, v, segs, n_segs, total, step_size,
           inv_sqrt_bc2, beta1, 1.0f - beta1, beta2, 1.0f - beta2, eps, wd);
}

/* ---- the table ------------------------------------------------------------------------------- */

static void fill_table(amtl_backend *t)
{
    memset(t, 0, sizeof *t);
    t->name = "cuda";
    t->alloc = cu_alloc;
    t->free = cu_free;
    t->put = cu_put;
    t->get = cu_get;
    t->zero = cu_zero;
    t->sync = cu_sync;
    t->last_error = cu_last_error;
    t->gemm = cu_gemm;
    t->add = cu_add;
    t->axpy = cu_axpy;
    t->dot = cu_dot;
    t->take_i32 = cu_take_i32;
    t->take_f32 = cu_take_f32;
    t->embed_gather = cu_embed_gather;
    t->embed_scatter = cu_embed_scatter;
    t->bias_act = cu_bias_act;
    t->colsum = cu_colsum;
    t->relu_back = cu_relu_back;
    t->dropout = cu_dropout;
    t->dropout_back = cu_dropout_back;
    t->bn_train = cu_bn_train;
    t->bn_eval = cu_bn_eval;
    t->bn_back = cu_bn_back;
    t->softmax = cu_softmax;
    t->softmax_back = cu_softmax_back;
    t->mixfeature = cu_mixfeature;
    t->mixfeature_back = cu_mixfeature_back;
    t->expert_mix = cu_expert_mix;
    t->expert_mix_back = cu_expert_mix_back;
    t->bce = cu_bce;
    t->adam = cu_adam;
}

/* 0, or -1 with g.why set; what was created is released on failure */
static int init(void)
{
    int n = 0, sms = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(g.why, sizeof g.why, "no CUDA device: %s",
                 e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        (void)cudaGetLastError();
        return -1;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0)) != cudaSuccess) {
        snprintf(g.why, sizeof g.why, "cannot use CUDA device 0: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    if ((e = cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(g.why, sizeof g.why, "cannot create a CUDA stream: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    cublasStatus_t s;
    if ((s = cublasCreate(&g.blas)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(g.why, sizeof g.why, "cannot create the cuBLAS handle: %s",
                 cublasGetStatusString(s));
        cudaStreamDestroy(g.stream);
        return -1;
    }
    /* CUBLAS_DEFAULT_MATH: full float32 (no TF32), for parity with the CPU */
    if ((s = cublasSetStream(g.blas, g.stream)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasSetMathMode(g.blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(g.why, sizeof g.why, "cannot set up the cuBLAS handle: %s",
                 cublasGetStatusString(s));
        cublasDestroy(g.blas);
        cudaStreamDestroy(g.stream);
        return -1;
    }
    g.max_blocks = (unsigned)(sms > 0 ? sms : 1) * 32;
    /* 1 MiB of scratch covers the reductions of the usual shapes */
    void *p = NULL;
    if ((e = cudaMalloc(&p, 1 << 20)) != cudaSuccess) {
        snprintf(g.why, sizeof g.why, "cannot allocate CUDA memory: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        cublasDestroy(g.blas);
        cudaStreamDestroy(g.stream);
        return -1;
    }
    g.scratch = (double *)p;
    g.scratch_bytes = 1 << 20;
    fill_table(&g.table);
    return 0;
}

extern "C" const amtl_backend *amtl_backend_cuda(const char **why)
{
    if (!g.tried) {
        g.tried = 1;
        if (init() == 0)
            g.be = &g.table;
    }
    if (why)
        *why = g.be ? NULL : g.why;
    return g.be;
}
