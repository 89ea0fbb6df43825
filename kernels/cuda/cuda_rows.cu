// cuda_rows.cu - whole rows of a device slot table in and out by slot index:
// LSTM reset and state get/set, ARMA parameters and state get/set.
//
// None of this is on the per-tick path, so it favours small, bounded
// staging over speed: a call moves at most ROWS_CHUNK_BYTES at a time and
// syncs after each chunk before reusing the pinned buffers.
#include "cuda_common.cuh"

#include <cstring>

#define ROWS_CHUNK_BYTES ((size_t)16 << 20)
#define ROWS_THREADS 256

__global__ void rows_gather_kernel(size_t n, size_t width, const uint32_t *slots,
                                   const float *table, float *out)
{
    size_t total = n * width;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t / width, j = t - i * width;
        out[t] = table[(size_t)slots[i] * width + j];
    }
}

// in == nullptr zeroes the rows.
__global__ void rows_scatter_kernel(size_t n, size_t width, const uint32_t *slots, const float *in,
                                    float *table)
{
    size_t total = n * width;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t / width, j = t - i * width;
        table[(size_t)slots[i] * width + j] = in ? in[t] : 0.0f;
    }
}

static size_t chunk_rows(size_t width, size_t n)
{
    size_t c = ROWS_CHUNK_BYTES / (width * sizeof(float));
    if (c < 1) c = 1;
    return c < n ? c : n;
}

static int reserve_io(ps_backend *be, ps_rows_io *io, size_t rows, size_t width, int need_rows)
{
    int rc = ps_dev_reserve(be, &io->d_slots, rows * sizeof(uint32_t), nullptr);
    if (!rc) rc = ps_host_reserve(be, &io->h_slots, rows * sizeof(uint32_t), nullptr);
    if (!rc && need_rows)
        rc = ps_dev_reserve(be, &io->d_rows, rows * width * sizeof(float), nullptr);
    if (!rc && need_rows)
        rc = ps_host_reserve(be, &io->h_rows, rows * width * sizeof(float), nullptr);
    return rc;
}

int ps_cuda_rows_get(ps_backend *be, ps_cuda_ctx *ctx, const float *table, size_t width, size_t n,
                     const uint32_t *slots, float *out)
{
    size_t chunk = chunk_rows(width, n);
    ps_rows_io *io = &ctx->io;
    int rc = reserve_io(be, io, chunk, width, 1);
    if (rc) return rc;
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t m = n - c0 < chunk ? n - c0 : chunk;
        size_t bytes = m * width * sizeof(float);
        std::memcpy(io->h_slots.p, slots + c0, m * sizeof(uint32_t));
        PS_CU(be, cudaMemcpyAsync(io->d_slots.p, io->h_slots.p, m * sizeof(uint32_t),
                                  cudaMemcpyHostToDevice, ctx->stream));
        rows_gather_kernel<<<ps_cuda_blocks(m * width, ROWS_THREADS), ROWS_THREADS, 0,
                             ctx->stream>>>(m, width, static_cast<const uint32_t *>(io->d_slots.p),
                                            table, static_cast<float *>(io->d_rows.p));
        PS_CU_LAUNCHED(be, "rows_gather_kernel");
        PS_CU(be, cudaMemcpyAsync(io->h_rows.p, io->d_rows.p, bytes, cudaMemcpyDeviceToHost,
                                  ctx->stream));
        PS_CU(be, cudaStreamSynchronize(ctx->stream));
        std::memcpy(out + c0 * width, io->h_rows.p, bytes);
    }
    return PS_OK;
}

int ps_cuda_rows_set(ps_backend *be, ps_cuda_ctx *ctx, float *table, size_t width, size_t n,
                     const uint32_t *slots, const float *in)
{
    size_t chunk = chunk_rows(width, n);
    ps_rows_io *io = &ctx->io;
    int rc = reserve_io(be, io, chunk, width, in != nullptr);
    if (rc) return rc;
    for (size_t c0 = 0; c0 < n; c0 += chunk) {
        size_t m = n - c0 < chunk ? n - c0 : chunk;
        size_t bytes = m * width * sizeof(float);
        std::memcpy(io->h_slots.p, slots + c0, m * sizeof(uint32_t));
        PS_CU(be, cudaMemcpyAsync(io->d_slots.p, io->h_slots.p, m * sizeof(uint32_t),
                                  cudaMemcpyHostToDevice, ctx->stream));
        const float *src = nullptr;
        if (in) {
            std::memcpy(io->h_rows.p, in + c0 * width, bytes);
            PS_CU(be, cudaMemcpyAsync(io->d_rows.p, io->h_rows.p, bytes, cudaMemcpyHostToDevice,
                                      ctx->stream));
            src = static_cast<const float *>(io->d_rows.p);
        }
        rows_scatter_kernel<<<ps_cuda_blocks(m * width, ROWS_THREADS), ROWS_THREADS, 0,
                              ctx->stream>>>(m, width, static_cast<const uint32_t *>(io->d_slots.p),
                                             src, table);
        PS_CU_LAUNCHED(be, "rows_scatter_kernel");
        // The pinned staging is refilled by the next chunk: wait for this one.
        PS_CU(be, cudaStreamSynchronize(ctx->stream));
    }
    return PS_OK;
}
