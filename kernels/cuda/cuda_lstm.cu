// cuda_lstm.cu - the batched LSTM step on the device.
//
// What lives on the device for the whole life of the object: the flat
// parameter vector exactly as kernels.h lays it out, and every slot's state
// (slots x layers*2*H floats, per layer h then c: the API's own layout, so
// state get/set are plain row gathers). A step moves only the slot indices
// and x in and y out, through pinned staging, all queued on the backend's
// one stream with one sync at the end.
//
// Per layer, over the whole batch: a gather kernel builds A = [x_l, h_l]
// (rows x (in_l + H), row-major) from x or the layer below's new h and the
// slots' old h; one cuBLAS sgemm gives G = A * W_l; one fused kernel adds
// the bias, applies the gate nonlinearities and writes the new c and h back
// into the slots' state. The head is a small kernel (one thread per output)
// reading the last layer's h from the state.
//
// cuBLAS is column-major. A row-major matrix is the column-major view of
// its transpose, so the row-major G (m x 4H) = A (m x k) * W (k x 4H) is
// computed as the column-major G^T = W^T * A^T with no transposes:
// sgemm(N, N, 4H, m, k, W, ld 4H, A, ld k, G, ld 4H).
//
// Precise libm expf/tanhf (no --use_fast_math) and cuBLAS's default FP32
// math (no TF32) keep results within 1e-5 of the CPU backend.
//
// Large steps go in chunks of rows so that A and G stay within a scratch
// budget; small ones are replayed as CUDA graphs (cuda_graph.cu).
#include "cuda_graph.cuh"

#include <cstdlib>
#include <cstring>

// A and G of one chunk together stay under this.
#define SCRATCH_BYTES ((size_t)512 << 20)
#define THREADS 256

struct cuda_lstm {
    ps_lstm base;
    ps_cuda_ctx *ctx;
    size_t sf;       // state floats per slot
    size_t kmax;     // widest [x_l, h_l] row
    size_t chunk;    // rows per gemm
    float *d_params; // the flat vector of kernels.h
    float *d_state;  // slots x sf
    ps_dev_buf d_slots, d_x, d_y, d_a, d_g;
    ps_host_buf h_slots, h_x, h_y;
    ps_graph_cache graphs;
    size_t rows; // of the step being queued, padded to its bucket
};

static cuda_lstm *lstm_of(ps_lstm *l)
{
    return reinterpret_cast<cuda_lstm *>(l);
}

__device__ static inline float sigmoidf(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

// A = [x_l, h_l] for m rows: layer 0 takes x (m x in_l), a higher layer the
// h its lower layer has just written into the state.
__global__ void lstm_gather_kernel(size_t m, int in_l, int hidden, size_t sf, int layer,
                                   const uint32_t *slots, const float *x, const float *state,
                                   float *a)
{
    size_t k = (size_t)in_l + (size_t)hidden, total = m * k;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t / k, col = t - i * k;
        uint32_t s = slots[i];
        if (s == PS_CUDA_NO_SLOT) {
            a[t] = 0.0f;
            continue;
        }
        const float *st = state + (size_t)s * sf;
        float v;
        if (col >= (size_t)in_l)
            v = st[(size_t)layer * 2 * hidden + (col - in_l)];
        else if (layer == 0)
            v = x[i * (size_t)in_l + col];
        else
            v = st[(size_t)(layer - 1) * 2 * hidden + col];
        a[t] = v;
    }
}

// One thread per (row, unit): bias, the four gates (i, f, g, o), the cell
// update, written back into the slot's state.
__global__ void lstm_gates_kernel(size_t m, int hidden, size_t sf, int layer, const uint32_t *slots,
                                  const float *g, const float *bias, float *state)
{
    size_t h = (size_t)hidden, total = m * h;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t / h, j = t - i * h;
        uint32_t s = slots[i];
        if (s == PS_CUDA_NO_SLOT) continue;
        const float *gr = g + i * 4 * h;
        float ig = sigmoidf(gr[j] + bias[j]);
        float fg = sigmoidf(gr[h + j] + bias[h + j]);
        float gg = tanhf(gr[2 * h + j] + bias[2 * h + j]);
        float og = sigmoidf(gr[3 * h + j] + bias[3 * h + j]);
        float *st = state + (size_t)s * sf + (size_t)layer * 2 * h;
        float c = fg * st[h + j] + ig * gg;
        st[h + j] = c;
        st[j] = og * tanhf(c);
    }
}

// y = h_last * W_y + b_y, one thread per (row, output).
__global__ void lstm_head_kernel(size_t m, int hidden, int out, size_t sf, int layers,
                                 const uint32_t *slots, const float *state, const float *wy,
                                 const float *by, float *y)
{
    size_t o_n = (size_t)out, total = m * o_n;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t / o_n, o = t - i * o_n;
        uint32_t s = slots[i];
        if (s == PS_CUDA_NO_SLOT) continue;
        const float *h = state + (size_t)s * sf + (size_t)(layers - 1) * 2 * hidden;
        float acc = 0.0f;
        for (int k = 0; k < hidden; k++)
            acc = fmaf(h[k], wy[(size_t)k * o_n + o], acc);
        y[t] = acc + by[o];
    }
}

// Queues one step of L->rows rows whose slots and x are staged in h_slots
// and h_x; y lands in h_y once the stream has run. Captured as a graph for
// small steps, so: no allocation, no sync, no host work that must repeat.
static int lstm_enqueue(void *arg)
{
    cuda_lstm *L = static_cast<cuda_lstm *>(arg);
    ps_backend *be = L->base.be;
    ps_cuda_ctx *ctx = L->ctx;
    const ps_lstm_shape *s = &L->base.shape;
    const int hidden = s->hidden, layers = s->layers;
    const size_t in = (size_t)s->input, out = (size_t)s->output, g4 = 4 * (size_t)hidden;
    const size_t rows = L->rows;
    static const float one = 1.0f, zero = 0.0f;

    uint32_t *d_slots = static_cast<uint32_t *>(L->d_slots.p);
    float *d_x = static_cast<float *>(L->d_x.p), *d_y = static_cast<float *>(L->d_y.p);
    float *d_a = static_cast<float *>(L->d_a.p), *d_g = static_cast<float *>(L->d_g.p);
    PS_CU(be, cudaMemcpyAsync(d_slots, L->h_slots.p, rows * sizeof(uint32_t),
                              cudaMemcpyHostToDevice, ctx->stream));
    PS_CU(be, cudaMemcpyAsync(d_x, L->h_x.p, rows * in * sizeof(float), cudaMemcpyHostToDevice,
                              ctx->stream));

    const float *wy = L->d_params + ps_lstm_head_offset(s);
    const float *by = wy + (size_t)hidden * out;
    for (size_t c0 = 0; c0 < rows; c0 += L->chunk) {
        size_t m = rows - c0 < L->chunk ? rows - c0 : L->chunk;
        const uint32_t *sl = d_slots + c0;
        for (int l = 0; l < layers; l++) {
            int in_l = l == 0 ? s->input : hidden;
            int k = in_l + hidden;
            const float *w = L->d_params + ps_lstm_weight_offset(s, l);
            const float *b = L->d_params + ps_lstm_bias_offset(s, l);
            lstm_gather_kernel<<<ps_cuda_blocks(m * (size_t)k, THREADS), THREADS, 0, ctx->stream>>>(
                m, in_l, hidden, L->sf, l, sl, d_x + c0 * in, L->d_state, d_a);
            PS_CU_LAUNCHED(be, "lstm_gather_kernel");
            PS_CUBLAS(be, cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)g4, (int)m, k, &one,
                                      w, (int)g4, d_a, k, &zero, d_g, (int)g4));
            lstm_gates_kernel<<<ps_cuda_blocks(m * (size_t)hidden, THREADS), THREADS, 0,
                                ctx->stream>>>(m, hidden, L->sf, l, sl, d_g, b, L->d_state);
            PS_CU_LAUNCHED(be, "lstm_gates_kernel");
        }
        lstm_head_kernel<<<ps_cuda_blocks(m * out, THREADS), THREADS, 0, ctx->stream>>>(
            m, hidden, s->output, L->sf, layers, sl, L->d_state, wy, by, d_y + c0 * out);
        PS_CU_LAUNCHED(be, "lstm_head_kernel");
    }
    PS_CU(be, cudaMemcpyAsync(L->h_y.p, d_y, rows * out * sizeof(float), cudaMemcpyDeviceToHost,
                              ctx->stream));
    return PS_OK;
}

// Room for a step of rows rows. Any buffer that moves invalidates the
// graphs, which captured its old address.
static int reserve_step(cuda_lstm *L, size_t rows)
{
    ps_backend *be = L->base.be;
    const ps_lstm_shape *s = &L->base.shape;
    size_t in = (size_t)s->input, out = (size_t)s->output, g4 = 4 * (size_t)s->hidden;
    size_t chunk = rows < L->chunk ? rows : L->chunk;
    int grew = 0;
    int rc = ps_dev_reserve(be, &L->d_slots, rows * sizeof(uint32_t), &grew);
    if (!rc) rc = ps_dev_reserve(be, &L->d_x, rows * in * sizeof(float), &grew);
    if (!rc) rc = ps_dev_reserve(be, &L->d_y, rows * out * sizeof(float), &grew);
    if (!rc) rc = ps_dev_reserve(be, &L->d_a, chunk * L->kmax * sizeof(float), &grew);
    if (!rc) rc = ps_dev_reserve(be, &L->d_g, chunk * g4 * sizeof(float), &grew);
    if (!rc) rc = ps_host_reserve(be, &L->h_slots, rows * sizeof(uint32_t), &grew);
    if (!rc) rc = ps_host_reserve(be, &L->h_x, rows * in * sizeof(float), &grew);
    if (!rc) rc = ps_host_reserve(be, &L->h_y, rows * out * sizeof(float), &grew);
    if (grew) ps_graph_cache_clear(&L->graphs);
    return rc;
}

extern "C" int cuda_lstm_step(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *x,
                              float *y)
{
    cuda_lstm *L = lstm_of(lstm);
    ps_backend *be = lstm->be;
    ps_cuda_ctx *ctx = L->ctx;
    size_t in = (size_t)lstm->shape.input, out = (size_t)lstm->shape.output;

    size_t rows = n;
    int bucket = ps_graph_bucket(n, ctx->graph_rows, &rows);
    int rc = reserve_step(L, rows);
    if (rc) return rc;

    uint32_t *hs = static_cast<uint32_t *>(L->h_slots.p);
    float *hx = static_cast<float *>(L->h_x.p);
    std::memcpy(hs, slots, n * sizeof(uint32_t));
    for (size_t i = n; i < rows; i++)
        hs[i] = PS_CUDA_NO_SLOT;
    std::memcpy(hx, x, n * in * sizeof(float));
    if (rows > n) std::memset(hx + n * in, 0, (rows - n) * in * sizeof(float));

    L->rows = rows;
    rc = bucket >= 0 ? ps_graph_run(be, ctx->stream, &L->graphs, bucket, lstm_enqueue, L)
                     : lstm_enqueue(L);
    if (rc) {
        // Let whatever was queued finish before the caller may free or
        // reuse anything; its error (if any) is already the one reported.
        cudaStreamSynchronize(ctx->stream);
        (void)cudaGetLastError();
        return rc;
    }
    PS_CU(be, cudaStreamSynchronize(ctx->stream));
    std::memcpy(y, L->h_y.p, n * out * sizeof(float));
    return PS_OK;
}

extern "C" void cuda_lstm_free(ps_lstm *lstm)
{
    if (!lstm) return;
    cuda_lstm *L = lstm_of(lstm);
    if (L->ctx) cudaStreamSynchronize(L->ctx->stream);
    ps_graph_cache_clear(&L->graphs);
    ps_dev_release(&L->d_slots);
    ps_dev_release(&L->d_x);
    ps_dev_release(&L->d_y);
    ps_dev_release(&L->d_a);
    ps_dev_release(&L->d_g);
    ps_host_release(&L->h_slots);
    ps_host_release(&L->h_x);
    ps_host_release(&L->h_y);
    if (L->d_params) cudaFree(L->d_params);
    if (L->d_state) cudaFree(L->d_state);
    (void)cudaGetLastError();
    ps_lstm_header_free(&L->base);
    std::free(L);
}

static size_t pick_chunk(const ps_cuda_ctx *ctx, const ps_lstm_shape *s, size_t kmax)
{
    if (ctx->chunk_rows) return ctx->chunk_rows;
    size_t c = SCRATCH_BYTES / ((kmax + 4 * (size_t)s->hidden) * sizeof(float));
    if (c > ((size_t)1 << 30)) c = (size_t)1 << 30; // cuBLAS takes int sizes
    if (c > 256) c &= ~(size_t)255;
    return c ? c : 1;
}

static int upload(cuda_lstm *L, const float *params)
{
    ps_backend *be = L->base.be;
    ps_cuda_ctx *ctx = L->ctx;
    size_t np = ps_lstm_param_count(&L->base.shape);
    if (L->base.slots > SIZE_MAX / sizeof(float) / L->sf)
        return ps_backend_fail(be, PS_ENOMEM, "LSTM state of %zu slots does not fit in memory",
                               L->base.slots);
    size_t state_bytes = L->base.slots * L->sf * sizeof(float);
    PS_CU(be, cudaMalloc(&L->d_params, np * sizeof(float)));
    PS_CU(be, cudaMalloc(&L->d_state, state_bytes));
    PS_CU(be, cudaMemcpyAsync(L->d_params, params, np * sizeof(float), cudaMemcpyHostToDevice,
                              ctx->stream));
    PS_CU(be, cudaMemsetAsync(L->d_state, 0, state_bytes, ctx->stream));
    PS_CU(be, cudaStreamSynchronize(ctx->stream));
    return PS_OK;
}

extern "C" ps_lstm *cuda_lstm_create(ps_backend *be, const ps_lstm_shape *shape,
                                     const float *params, size_t slots)
{
    cuda_lstm *L = static_cast<cuda_lstm *>(std::calloc(1, sizeof *L));
    if (!L || ps_lstm_header_init(&L->base, be, shape, slots) != PS_OK) {
        std::free(L);
        ps_backend_fail(be, PS_ENOMEM, "out of memory creating LSTM");
        return nullptr;
    }
    L->ctx = cuda_of(be)->ctx;
    L->sf = ps_lstm_state_floats(shape);
    size_t widest_in = (size_t)(shape->input > shape->hidden ? shape->input : shape->hidden);
    L->kmax = widest_in + (size_t)shape->hidden;
    L->chunk = pick_chunk(L->ctx, shape, L->kmax);
    if (upload(L, params) != PS_OK) {
        cuda_lstm_free(&L->base);
        return nullptr;
    }
    return &L->base;
}

extern "C" int cuda_lstm_reset(ps_lstm *lstm, size_t n, const uint32_t *slots)
{
    cuda_lstm *L = lstm_of(lstm);
    return ps_cuda_rows_set(lstm->be, L->ctx, L->d_state, L->sf, n, slots, nullptr);
}

extern "C" int cuda_lstm_state_get(ps_lstm *lstm, size_t n, const uint32_t *slots, float *state)
{
    cuda_lstm *L = lstm_of(lstm);
    return ps_cuda_rows_get(lstm->be, L->ctx, L->d_state, L->sf, n, slots, state);
}

extern "C" int cuda_lstm_state_set(ps_lstm *lstm, size_t n, const uint32_t *slots,
                                   const float *state)
{
    cuda_lstm *L = lstm_of(lstm);
    return ps_cuda_rows_set(lstm->be, L->ctx, L->d_state, L->sf, n, slots, state);
}
