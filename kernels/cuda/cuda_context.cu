// cuda_context.cu - one backend's stream, cuBLAS handle and buffers.
//
// Everything a backend queues goes on its own stream, so two backends in one
// process (a test comparing two, a server with two models) never wait on each
// other's work, and the stream is non-blocking so the legacy default stream
// does not serialise it either. cuBLAS gets an explicit workspace: without
// one it may allocate during a graph capture, and each capture would keep
// its own copy.
#include "cuda_common.cuh"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// Steps up to this many rows run as CUDA graphs unless the environment says
// otherwise: below it, launch overhead is a large part of a step.
#define DEFAULT_GRAPH_ROWS 8192
// cuBLAS's recommendation: 32 MiB on Hopper and later, 4 MiB before.
#define WORKSPACE_HOPPER ((size_t)32 << 20)
#define WORKSPACE_OLDER ((size_t)4 << 20)

int ps_cuda_fail(ps_backend *be, cudaError_t rc, const char *what)
{
    (void)cudaGetLastError();
    int code = rc == cudaErrorMemoryAllocation ? PS_ENOMEM : PS_EDEVICE;
    return ps_backend_fail(be, code, "cuda: %s failed: %s (%s)", what, cudaGetErrorString(rc),
                           cudaGetErrorName(rc));
}

int ps_cublas_fail(ps_backend *be, cublasStatus_t st, const char *what)
{
    (void)cudaGetLastError();
    int code = st == CUBLAS_STATUS_ALLOC_FAILED ? PS_ENOMEM : PS_EDEVICE;
    return ps_backend_fail(be, code, "cuBLAS: %s failed: %s (%s)", what, cublasGetStatusString(st),
                           cublasGetStatusName(st));
}

unsigned ps_cuda_blocks(size_t total, unsigned threads)
{
    size_t b = (total + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > ((size_t)1 << 20)) b = (size_t)1 << 20;
    return (unsigned)b;
}

// Geometric growth so that a batch growing a row at a time reallocates a
// logarithmic number of times, not once a step.
static size_t grown(size_t cap, size_t need)
{
    size_t twice = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    return need > twice ? need : twice;
}

// *grew is set before anything is freed, so a caller that caches the old
// address (a graph) forgets it even when the new allocation fails.
int ps_dev_reserve(ps_backend *be, ps_dev_buf *b, size_t bytes, int *grew)
{
    if (bytes <= b->cap) return PS_OK;
    size_t cap = grown(b->cap, bytes);
    if (grew) *grew = 1;
    ps_dev_release(b);
    void *p = nullptr;
    cudaError_t rc = cudaMalloc(&p, cap);
    if (rc != cudaSuccess && cap > bytes) {
        (void)cudaGetLastError();
        cap = bytes;
        rc = cudaMalloc(&p, cap);
    }
    if (rc != cudaSuccess) return ps_cuda_fail(be, rc, "cudaMalloc of a step buffer");
    b->p = p;
    b->cap = cap;
    return PS_OK;
}

int ps_host_reserve(ps_backend *be, ps_host_buf *b, size_t bytes, int *grew)
{
    if (bytes <= b->cap) return PS_OK;
    size_t cap = grown(b->cap, bytes);
    if (grew) *grew = 1;
    ps_host_release(b);
    void *p = nullptr;
    cudaError_t rc = cudaMallocHost(&p, cap);
    if (rc != cudaSuccess && cap > bytes) {
        (void)cudaGetLastError();
        cap = bytes;
        rc = cudaMallocHost(&p, cap);
    }
    if (rc != cudaSuccess) return ps_cuda_fail(be, rc, "cudaMallocHost of a staging buffer");
    b->p = p;
    b->cap = cap;
    return PS_OK;
}

void ps_dev_release(ps_dev_buf *b)
{
    if (b->p) cudaFree(b->p);
    b->p = nullptr;
    b->cap = 0;
}

void ps_host_release(ps_host_buf *b)
{
    if (b->p) cudaFreeHost(b->p);
    b->p = nullptr;
    b->cap = 0;
}

void ps_rows_io_release(ps_rows_io *io)
{
    ps_dev_release(&io->d_slots);
    ps_dev_release(&io->d_rows);
    ps_host_release(&io->h_slots);
    ps_host_release(&io->h_rows);
}

// A size from the environment: 0 and *out = default when unset, -1 when set
// to something that is not a plain decimal number within max.
static int env_size(const char *name, size_t dflt, size_t max, size_t *out)
{
    const char *v = std::getenv(name);
    *out = dflt;
    if (!v || !*v) return 0;
    errno = 0;
    char *end = nullptr;
    unsigned long long x = std::strtoull(v, &end, 10);
    if (errno || *end || v[0] == '-' || x > max) return -1;
    *out = (size_t)x;
    return 0;
}

#define CTX_TRY_CUDA(call)                                                                         \
    do {                                                                                           \
        cudaError_t rc_ = (call);                                                                  \
        if (rc_ != cudaSuccess) {                                                                  \
            if (err)                                                                               \
                std::snprintf(err, errlen, "cuda: %s failed: %s", #call, cudaGetErrorString(rc_)); \
            (void)cudaGetLastError();                                                              \
            ps_cuda_ctx_free(ctx);                                                                 \
            return rc_ == cudaErrorMemoryAllocation ? PS_ENOMEM : PS_EDEVICE;                      \
        }                                                                                          \
    } while (0)

#define CTX_TRY_CUBLAS(call)                                                                       \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            if (err)                                                                               \
                std::snprintf(err, errlen, "cuBLAS: %s failed: %s", #call,                         \
                              cublasGetStatusString(st_));                                         \
            ps_cuda_ctx_free(ctx);                                                                 \
            return st_ == CUBLAS_STATUS_ALLOC_FAILED ? PS_ENOMEM : PS_EDEVICE;                     \
        }                                                                                          \
    } while (0)

extern "C" int ps_cuda_ctx_create(ps_cuda_ctx **out, char *err, size_t errlen)
{
    *out = nullptr;
    ps_cuda_ctx *ctx = static_cast<ps_cuda_ctx *>(std::calloc(1, sizeof *ctx));
    if (!ctx) {
        if (err) std::snprintf(err, errlen, "out of memory");
        return PS_ENOMEM;
    }
    if (env_size("PRESHIFT_CUDA_GRAPH_ROWS", DEFAULT_GRAPH_ROWS, (size_t)1 << 20,
                 &ctx->graph_rows) ||
        env_size("PRESHIFT_CUDA_CHUNK_ROWS", 0, (size_t)1 << 30, &ctx->chunk_rows)) {
        if (err)
            std::snprintf(err, errlen,
                          "PRESHIFT_CUDA_GRAPH_ROWS must be 0..%d and PRESHIFT_CUDA_CHUNK_ROWS "
                          "0..%d (decimal rows)",
                          1 << 20, 1 << 30);
        std::free(ctx);
        return PS_EINVAL;
    }
    ctx->device = 0;
    CTX_TRY_CUDA(cudaSetDevice(ctx->device));
    int major = 0;
    CTX_TRY_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx->device));
    CTX_TRY_CUDA(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    CTX_TRY_CUBLAS(cublasCreate(&ctx->blas));
    // cublasSetStream resets the workspace, so the workspace comes after it.
    CTX_TRY_CUBLAS(cublasSetStream(ctx->blas, ctx->stream));
    // Plain FP32 FMA (no TF32, no reduced-precision tricks) and no atomics,
    // so results are reproducible and match the CPU within 1e-5.
    CTX_TRY_CUBLAS(cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH));
    CTX_TRY_CUBLAS(cublasSetAtomicsMode(ctx->blas, CUBLAS_ATOMICS_NOT_ALLOWED));
    CTX_TRY_CUBLAS(cublasSetPointerMode(ctx->blas, CUBLAS_POINTER_MODE_HOST));
    ctx->workspace_bytes = major >= 9 ? WORKSPACE_HOPPER : WORKSPACE_OLDER;
    CTX_TRY_CUDA(cudaMalloc(&ctx->workspace, ctx->workspace_bytes));
    CTX_TRY_CUBLAS(cublasSetWorkspace(ctx->blas, ctx->workspace, ctx->workspace_bytes));
    *out = ctx;
    return PS_OK;
}

extern "C" void ps_cuda_ctx_free(ps_cuda_ctx *ctx)
{
    if (!ctx) return;
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    ps_rows_io_release(&ctx->io);
    if (ctx->blas) cublasDestroy(ctx->blas);
    if (ctx->workspace) cudaFree(ctx->workspace);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    (void)cudaGetLastError();
    std::free(ctx);
}
