// cuda_common.cuh - what the backend's .cu files share: the context behind
// ps_cuda_ctx, growable device and pinned buffers, error reporting that names
// the failed call, and the row gather/scatter used by reset and state I/O.
#ifndef PRESHIFT_CUDA_COMMON_CUH
#define PRESHIFT_CUDA_COMMON_CUH

#include "cuda_internal.h"

#include <cstddef>
#include <cstdint>
#include <cublas_v2.h>
#include <cuda_runtime.h>

// A row whose slot is this takes part in a padded graph launch but reads
// and writes no state; no real slot can be it (slot counts are at most
// UINT32_MAX, so the largest index is UINT32_MAX - 1).
#define PS_CUDA_NO_SLOT 0xffffffffu

// Growable device buffer (bytes). Growing frees the old one, so nothing may
// still be queued on it: every operation ends with a stream sync.
struct ps_dev_buf {
    void *p;
    size_t cap;
};

// Growable pinned host buffer: copies from it are truly asynchronous and
// can be captured in a graph (pageable memory can be neither).
struct ps_host_buf {
    void *p;
    size_t cap;
};

// Staging for the operations that move whole rows of a slot table
// (reset, state get/set, ARMA parameters), which are not on the hot path.
struct ps_rows_io {
    ps_dev_buf d_slots, d_rows;
    ps_host_buf h_slots, h_rows;
};

struct ps_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *workspace; // cuBLAS's, set explicitly so graph capture never allocates
    size_t workspace_bytes;
    size_t graph_rows; // steps of at most this many rows run as graphs; 0: never
    size_t chunk_rows; // rows per gemm chunk; 0: from the scratch budget
    ps_rows_io io;
};

// Record a failed CUDA call on be and return PS_ENOMEM or PS_EDEVICE. Clears
// the runtime's last error, so that a later launch check does not pick up
// this one again.
int ps_cuda_fail(ps_backend *be, cudaError_t rc, const char *what);
int ps_cublas_fail(ps_backend *be, cublasStatus_t st, const char *what);

#define PS_CU(be, call)                                                                            \
    do {                                                                                           \
        cudaError_t ps_rc_ = (call);                                                               \
        if (ps_rc_ != cudaSuccess) return ps_cuda_fail((be), ps_rc_, #call);                       \
    } while (0)

// After a <<<>>> launch: the launch itself reports errors only here.
#define PS_CU_LAUNCHED(be, name)                                                                   \
    do {                                                                                           \
        cudaError_t ps_rc_ = cudaGetLastError();                                                   \
        if (ps_rc_ != cudaSuccess) return ps_cuda_fail((be), ps_rc_, "launch of " name);           \
    } while (0)

#define PS_CUBLAS(be, call)                                                                        \
    do {                                                                                           \
        cublasStatus_t ps_st_ = (call);                                                            \
        if (ps_st_ != CUBLAS_STATUS_SUCCESS) return ps_cublas_fail((be), ps_st_, #call);           \
    } while (0)

// Grow b to at least bytes; *grew (if not NULL) is set when the address
// changed, which invalidates any graph that captured the old one.
int ps_dev_reserve(ps_backend *be, ps_dev_buf *b, size_t bytes, int *grew);
int ps_host_reserve(ps_backend *be, ps_host_buf *b, size_t bytes, int *grew);
void ps_dev_release(ps_dev_buf *b);
void ps_host_release(ps_host_buf *b);
void ps_rows_io_release(ps_rows_io *io);

// Blocks for a grid-stride loop over total items: enough to fill any
// device, few enough to stay far below the grid limit.
unsigned ps_cuda_blocks(size_t total, unsigned threads);

// A slot table is slots x width floats on the device. rows_get copies the
// rows of n slots out into out (n x width, row i from slots[i]); rows_set
// copies in (n x width) into them, or zeroes them when in is NULL. Both are
// complete (synced) when they return; large calls go in chunks so that the
// staging stays small.
int ps_cuda_rows_get(ps_backend *be, ps_cuda_ctx *ctx, const float *table, size_t width, size_t n,
                     const uint32_t *slots, float *out);
int ps_cuda_rows_set(ps_backend *be, ps_cuda_ctx *ctx, float *table, size_t width, size_t n,
                     const uint32_t *slots, const float *in);

#endif
