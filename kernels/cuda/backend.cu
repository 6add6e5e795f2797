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
 * is kept as text (sticky) in the instance's context; sync, get, put and
 * zero then return -1.  Each instance (amtl_backend_cuda_new, through the
 * module entry amtl_cuda_module_backend_new) has its own
 * stream, cuBLAS handle, scratch and error: nothing is global.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_impl.cuh"

/* ---- errors and scratch ------------------------------------------------------ */

void amtl_cu_record(amtl_cu_ctx *cu, const char *what, const char *detail)
{
    if (cu->failed)
        return;
    cu->failed = 1;
    snprintf(cu->err, sizeof cu->err, "cuda: %s: %s", what, detail);
}

/* 0, or -1 with the error recorded.  A non-sticky error (an allocation that
 * failed) is also cleared from the runtime, so that the next launch check
 * does not report it a second time under another name. */
static int cu_ok(amtl_cu_ctx *cu, cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return 0;
    (void)cudaGetLastError();
    amtl_cu_record(cu, what, cudaGetErrorString(e));
    return -1;
}

int amtl_cu_blas_ok(amtl_cu_ctx *cu, cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    amtl_cu_record(cu, what, cublasGetStatusString(s));
    return -1;
}

/* After every launch: a bad configuration shows here at once; a fault while
 * running shows at the next sync. */
void amtl_cu_launched(amtl_cu_ctx *cu, const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "kernel %s", kernel);
        amtl_cu_record(cu, what, cudaGetErrorString(e));
    }
}

/* Scratch for at least n doubles, grown (rarely: the first large call) after
 * the queue has drained, since kernels in flight may still read the old one. */
double *amtl_cu_scratch(amtl_cu_ctx *cu, size_t n)
{
    size_t bytes = n * sizeof(double);
    if (bytes <= cu->scratch_bytes)
        return cu->scratch;
    if (cu_ok(cu, cudaStreamSynchronize(cu->stream), "stream synchronisation"))
        return NULL;
    cudaFree(cu->scratch);
    cu->scratch = NULL;
    cu->scratch_bytes = 0;
    void *p = NULL;
    if (cu_ok(cu, cudaMalloc(&p, bytes), "cudaMalloc of the reduction scratch"))
        return NULL;
    cu->scratch = (double *)p;
    cu->scratch_bytes = bytes;
    return cu->scratch;
}

/* ---- memory and errors ----------------------------------------------------------- */

static void *cu_alloc(amtl_backend *be, size_t bytes)
{
    void *p = NULL;
    char what[96];
    snprintf(what, sizeof what, "cudaMalloc of %zu bytes", bytes);
    /* one byte for n == 0: cudaMalloc would give NULL, which means failure here */
    if (cu_ok(CU(be), cudaMalloc(&p, bytes ? bytes : 1), what))
        return NULL;
    return p;
}

static void cu_free(amtl_backend *be, void *p)
{
    if (p)
        cu_ok(CU(be), cudaFree(p), "cudaFree");
}

static int cu_put(amtl_backend *be, void *dst, const void *src_host, size_t bytes)
{
    amtl_cu_ctx *cu = CU(be);
    /* from pageable memory the call returns once src_host has been staged,
     * so the caller may reuse it at once */
    if (bytes)
        cu_ok(cu, cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, cu->stream),
              "copy to the device");
    return cu->failed ? -1 : 0;
}

static int cu_get(amtl_backend *be, void *dst_host, const void *src, size_t bytes)
{
    amtl_cu_ctx *cu = CU(be);
    if (bytes)
        cu_ok(cu, cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, cu->stream),
              "copy from the device");
    cu_ok(cu, cudaStreamSynchronize(cu->stream), "stream synchronisation");
    return cu->failed ? -1 : 0;
}

static int cu_zero(amtl_backend *be, void *p, size_t bytes)
{
    amtl_cu_ctx *cu = CU(be);
    if (bytes)
        cu_ok(cu, cudaMemsetAsync(p, 0, bytes, cu->stream), "cudaMemsetAsync");
    return cu->failed ? -1 : 0;
}

static int cu_sync(amtl_backend *be)
{
    amtl_cu_ctx *cu = CU(be);
    cu_ok(cu, cudaStreamSynchronize(cu->stream), "stream synchronisation");
    return cu->failed ? -1 : 0;
}

static const char *cu_last_error(amtl_backend *be)
{
    amtl_cu_ctx *cu = CU(be);
    /* a fault of a kernel still queued shows without waiting for it */
    cudaError_t e = cudaStreamQuery(cu->stream);
    if (e != cudaErrorNotReady)
        cu_ok(cu, e, "stream query");
    return cu->failed ? cu->err : NULL;
}

/* ---- the table and the instances ------------------------------------------------------------------------------- */

static void cu_destroy(amtl_backend *be)
{
    amtl_cu_ctx *cu = CU(be);
    if (cu) {
        if (cu->stream)
            cudaStreamSynchronize(cu->stream);
        cudaFree(cu->scratch);
        if (cu->blas)
            cublasDestroy(cu->blas);
        if (cu->stream)
            cudaStreamDestroy(cu->stream);
        free(cu);
    }
    free(be);
}

static void fill_table(amtl_backend *t)
{
    memset(t, 0, sizeof *t);
    t->name = "cuda";
    t->host = 0;
    t->fused = 0;
    t->pool = NULL;
    t->destroy = cu_destroy;
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

/* why an instance could not be made, for the caller of amtl_backend_cuda_new
 * (per thread: the text outlives the call) */
static thread_local char why_buf[256];

/* Sets up cu on device 0: 0, or -1 with why_buf set (what was created is
 * left in cu for cu_destroy). */
static int init(amtl_cu_ctx *cu)
{
    int n = 0, sms = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(why_buf, sizeof why_buf, "no CUDA device: %s",
                 e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        (void)cudaGetLastError();
        return -1;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess ||
        (e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0)) != cudaSuccess) {
        snprintf(why_buf, sizeof why_buf, "cannot use CUDA device 0: %s", cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    if ((e = cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        cu->stream = NULL;
        snprintf(why_buf, sizeof why_buf, "cannot create a CUDA stream: %s",
                 cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    cublasStatus_t st;
    if ((st = cublasCreate(&cu->blas)) != CUBLAS_STATUS_SUCCESS) {
        cu->blas = NULL;
        snprintf(why_buf, sizeof why_buf, "cannot create the cuBLAS handle: %s",
                 cublasGetStatusString(st));
        return -1;
    }
    /* CUBLAS_DEFAULT_MATH: full float32 (no TF32), for parity with the CPU */
    if ((st = cublasSetStream(cu->blas, cu->stream)) != CUBLAS_STATUS_SUCCESS ||
        (st = cublasSetMathMode(cu->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        snprintf(why_buf, sizeof why_buf, "cannot set up the cuBLAS handle: %s",
                 cublasGetStatusString(st));
        return -1;
    }
    cu->max_blocks = (unsigned)(sms > 0 ? sms : 1) * 32;
    /* 1 MiB of scratch covers the reductions of the usual shapes */
    void *p = NULL;
    if ((e = cudaMalloc(&p, 1 << 20)) != cudaSuccess) {
        snprintf(why_buf, sizeof why_buf, "cannot allocate CUDA memory: %s",
                 cudaGetErrorString(e));
        (void)cudaGetLastError();
        return -1;
    }
    cu->scratch = (double *)p;
    cu->scratch_bytes = 1 << 20;
    return 0;
}

extern "C" amtl_backend *amtl_cuda_module_backend_new(const char **why)
{
    amtl_backend *be = (amtl_backend *)malloc(sizeof *be);
    amtl_cu_ctx *cu = (amtl_cu_ctx *)calloc(1, sizeof *cu);
    if (!be || !cu) {
        free(be);
        free(cu);
        if (why)
            *why = "out of memory";
        return NULL;
    }
    fill_table(be);
    be->ctx = cu;
    if (init(cu)) {
        cu_destroy(be);
        if (why)
            *why = why_buf;
        return NULL;
    }
    if (why)
        *why = NULL;
    return be;
}
