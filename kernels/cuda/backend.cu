/* backend.cu — the CUDA backend of kernels/backend.h: its state and errors,
 * device memory, the reduction scratch and the table.  The primitives live
 * one family a file beside it, sharing the private header cuda_impl.cuh:
 *   matrix.cu        gemm (cuBLAS), add, axpy, dot, the second stage of the
 *                    two-stage reductions;
 *   data.cu          the batch gathers, the embedding gather and scatter;
 *   elementwise.cu   bias and activation, column sums, ReLU backward,
 *                    dropout;
 *   batchnorm.cu     BatchNorm1d: training, evaluation, backward;
 *   supernet_ops.cu  softmax, MixFeature, MixedExpert, and their backwards;
 *   loss.cu          the tasks' BCE;
 *   adam.cu          Adam over the parameter segments.
 * cuBLAS for the products, one kernel (or two) per primitive, everything
 * queued on one stream in order.
 *
 * Parity with the CPU backend (kernels/cpu/backend.c) is the design goal:
 * each kernel keeps the CPU's arithmetic per element (same operations, same
 * order, the files are compiled with --fmad=false because the ISO C build of
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
#include <stdio.h>
#include <string.h>

#include "cuda_impl.cuh"

/* ---- state and errors -------------------------------------------------------- */

amtl_cu_state amtl_cu;

/* the rest of the state, which only this file reads */
static struct {
    int tried;                 /* amtl_backend_cuda ran its initialisation */
    const amtl_backend *be;    /* the table, once usable */
    char why[256];             /* why the backend is unusable */
    double *scratch;           /* partial sums of the two-stage reductions */
    size_t scratch_bytes;
    int failed;                /* an error was recorded */
    char err[512];             /* the first error */
    amtl_backend table;
} g;

void amtl_cu_record(const char *what, const char *detail)
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
    amtl_cu_record(what, cudaGetErrorString(e));
    return -1;
}

int amtl_cu_blas_ok(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    amtl_cu_record(what, cublasGetStatusString(s));
    return -1;
}

/* After every launch: a bad configuration shows here at once; a fault while
 * running shows at the next sync. */
void amtl_cu_launched(const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "kernel %s", kernel);
        amtl_cu_record(what, cudaGetErrorString(e));
    }
}

/* Scratch for at least n doubles, grown (rarely: the first large call) after
 * the queue has drained, since kernels in flight may still read the old one. */
double *amtl_cu_scratch(size_t n)
{
    size_t bytes = n * sizeof(double);
    if (bytes <= g.scratch_bytes)
        return g.scratch;
    if (cu_ok(cudaStreamSynchronize(amtl_cu.stream), "stream synchronisation"))
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
        cu_ok(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, amtl_cu.stream),
              "copy to the device");
    return g.failed ? -1 : 0;
}

static int cu_get(void *dst_host, const void *src, size_t bytes)
{
    if (bytes)
        cu_ok(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, amtl_cu.stream),
              "copy from the device");
    cu_ok(cudaStreamSynchronize(amtl_cu.stream), "stream synchronisation");
    return g.failed ? -1 : 0;
}

static int cu_zero(void *p, size_t bytes)
{
    if (bytes)
        cu_ok(cudaMemsetAsync(p, 0, bytes, amtl_cu.stream), "cudaMemsetAsync");
    return g.failed ? -1 : 0;
}

static int cu_sync(void)
{
    cu_ok(cudaStreamSynchronize(amtl_cu.stream), "stream synchronisation");
    return g.failed ? -1 : 0;
}

static const char *cu_last_error(void)
{
    /* a fault of a kernel still queued shows without waiting for it */
    cudaError_t e = cudaStreamQuery(amtl_cu.stream);
    if (e != cudaErrorNotReady)
        cu_ok(e, "stream query");
    return g.failed ? g.err : NULL;
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
    t->gemm = amtl_cu_gemm;
    t->add = amtl_cu_add;
    t->axpy = amtl_cu_axpy;
    t->dot = amtl_cu_dot;
    t->take_i32 = amtl_cu_take_i32;
    t->take_f32 = amtl_cu_take_f32;
    t->embed_gather = amtl_cu_embed_gather;
    t->embed_scatter = amtl_cu_embed_scatter;
    t->bias_act = amtl_cu_bias_act;
    t->colsum = amtl_cu_colsum;
    t->relu_back = amtl_cu_relu_back;
    t->dropout = amtl_cu_dropout;
    t->dropout_back = amtl_cu_dropout_back;
    t->bn_train = amtl_cu_bn_train;
    t->bn_eval = amtl_cu_bn_eval;
    t->bn_back = amtl_cu_bn_back;
    t->softmax = amtl_cu_softmax;
    t->softmax_back = amtl_cu_softmax_back;
    t->mixfeature = amtl_cu_mixfeature;
    t->mixfeature_back = amtl_cu_mixfeature_back;
    t->expert_mix = amtl_cu_expert_mix;
    t->expert_mix_back = amtl_cu_expert_mix_back;
    t->bce = amtl_cu_bce;
    t->adam = amtl_cu_adam;
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
    if ((e = cudaStreamCreateWithFlags(&amtl_cu.stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(g.why, sizeof g.why, "cannot create a CUDA stream: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    cublasStatus_t s;
    if ((s = cublasCreate(&amtl_cu.blas)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(g.why, sizeof g.why, "cannot create the cuBLAS handle: %s",
                 cublasGetStatusString(s));
        cudaStreamDestroy(amtl_cu.stream);
        return -1;
    }
    /* CUBLAS_DEFAULT_MATH: full float32 (no TF32), for parity with the CPU */
    if ((s = cublasSetStream(amtl_cu.blas, amtl_cu.stream)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasSetMathMode(amtl_cu.blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(g.why, sizeof g.why, "cannot set up the cuBLAS handle: %s",
                 cublasGetStatusString(s));
        cublasDestroy(amtl_cu.blas);
        cudaStreamDestroy(amtl_cu.stream);
        return -1;
    }
    amtl_cu.max_blocks = (unsigned)(sms > 0 ? sms : 1) * 32;
    /* 1 MiB of scratch covers the reductions of the usual shapes */
    void *p = NULL;
    if ((e = cudaMalloc(&p, 1 << 20)) != cudaSuccess) {
        snprintf(g.why, sizeof g.why, "cannot allocate CUDA memory: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        cublasDestroy(amtl_cu.blas);
        cudaStreamDestroy(amtl_cu.stream);
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
