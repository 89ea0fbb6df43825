// cuda_arma.cu - the batched ARMA(p, q) step on the device.
//
// Coefficients (slots x (1+p+q): c, phi, theta) and state (slots x
// (p+q+1): w lags newest first, e lags newest first, forecast) stay on the
// device in the API's own layouts, so set_params and state get/set are
// plain row scatters and gathers. A step moves the slot indices and w in
// and the residuals and forecasts out (only those asked for), one sync.
//
// One thread per row: p + q + 1 <= 33 floats of state each, so a row's
// shift and dot product are a handful of cached loads; the step is bound by
// moving rows, not arithmetic. No graphs here: a step is two copies in, one
// kernel and at most two copies out, little to save.
#include "cuda_common.cuh"

#include <cstdlib>
#include <cstring>

#define THREADS 256

struct cuda_arma {
    ps_arma base;
    ps_cuda_ctx *ctx;
    size_t width;  // 1 + p + q: floats per row of coef and of state alike
    float *d_coef; // slots x width
    float *d_state;
    ps_dev_buf d_slots, d_w, d_r, d_f;
    ps_host_buf h_slots, h_w, h_r, h_f;
};

static cuda_arma *arma_of(ps_arma *a)
{
    return reinterpret_cast<cuda_arma *>(a);
}

// Exactly the order of kernels.h: e = w - forecast; shift the lags in;
// forecast = c + sum phi_k w_{t+1-k} + sum theta_j e_{t+1-j}.
__global__ void arma_step_kernel(size_t n, int p, int q, const uint32_t *slots, const float *w,
                                 const float *coef, float *state, float *resid, float *forecast)
{
    size_t width = (size_t)(1 + p + q);
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t s = slots[i];
        float *st = state + s * width;
        const float *c = coef + s * width;
        float wi = w[i];
        float e = wi - st[p + q];
        for (int k = p - 1; k > 0; k--)
            st[k] = st[k - 1];
        if (p > 0) st[0] = wi;
        for (int k = q - 1; k > 0; k--)
            st[p + k] = st[p + k - 1];
        if (q > 0) st[p] = e;
        float f = c[0];
        for (int k = 0; k < p; k++)
            f = fmaf(c[1 + k], st[k], f);
        for (int j = 0; j < q; j++)
            f = fmaf(c[1 + p + j], st[p + j], f);
        st[p + q] = f;
        resid[i] = e;
        forecast[i] = f;
    }
}

extern "C" void cuda_arma_free(ps_arma *arma)
{
    if (!arma) return;
    cuda_arma *a = arma_of(arma);
    if (a->ctx) cudaStreamSynchronize(a->ctx->stream);
    ps_dev_release(&a->d_slots);
    ps_dev_release(&a->d_w);
    ps_dev_release(&a->d_r);
    ps_dev_release(&a->d_f);
    ps_host_release(&a->h_slots);
    ps_host_release(&a->h_w);
    ps_host_release(&a->h_r);
    ps_host_release(&a->h_f);
    if (a->d_coef) cudaFree(a->d_coef);
    if (a->d_state) cudaFree(a->d_state);
    (void)cudaGetLastError();
    ps_arma_header_free(&a->base);
    std::free(a);
}

static int upload(cuda_arma *a)
{
    ps_backend *be = a->base.be;
    size_t bytes = a->base.slots * a->width * sizeof(float);
    PS_CU(be, cudaMalloc(&a->d_coef, bytes));
    PS_CU(be, cudaMalloc(&a->d_state, bytes));
    PS_CU(be, cudaMemsetAsync(a->d_coef, 0, bytes, a->ctx->stream));
    PS_CU(be, cudaMemsetAsync(a->d_state, 0, bytes, a->ctx->stream));
    PS_CU(be, cudaStreamSynchronize(a->ctx->stream));
    return PS_OK;
}

extern "C" ps_arma *cuda_arma_create(ps_backend *be, int p, int q, size_t slots)
{
    cuda_arma *a = static_cast<cuda_arma *>(std::calloc(1, sizeof *a));
    if (!a || ps_arma_header_init(&a->base, be, p, q, slots) != PS_OK) {
        std::free(a);
        ps_backend_fail(be, PS_ENOMEM, "out of memory creating ARMA");
        return nullptr;
    }
    a->ctx = cuda_of(be)->ctx;
    a->width = (size_t)(1 + p + q);
    if (upload(a) != PS_OK) {
        cuda_arma_free(&a->base);
        return nullptr;
    }
    return &a->base;
}

static int reserve_step(cuda_arma *a, size_t n)
{
    ps_backend *be = a->base.be;
    size_t fb = n * sizeof(float);
    int rc = ps_dev_reserve(be, &a->d_slots, n * sizeof(uint32_t), nullptr);
    if (!rc) rc = ps_dev_reserve(be, &a->d_w, fb, nullptr);
    if (!rc) rc = ps_dev_reserve(be, &a->d_r, fb, nullptr);
    if (!rc) rc = ps_dev_reserve(be, &a->d_f, fb, nullptr);
    if (!rc) rc = ps_host_reserve(be, &a->h_slots, n * sizeof(uint32_t), nullptr);
    if (!rc) rc = ps_host_reserve(be, &a->h_w, fb, nullptr);
    if (!rc) rc = ps_host_reserve(be, &a->h_r, fb, nullptr);
    if (!rc) rc = ps_host_reserve(be, &a->h_f, fb, nullptr);
    return rc;
}

static int enqueue_step(cuda_arma *a, size_t n, int want_r, int want_f)
{
    ps_backend *be = a->base.be;
    cudaStream_t st = a->ctx->stream;
    size_t fb = n * sizeof(float);
    PS_CU(be, cudaMemcpyAsync(a->d_slots.p, a->h_slots.p, n * sizeof(uint32_t),
                              cudaMemcpyHostToDevice, st));
    PS_CU(be, cudaMemcpyAsync(a->d_w.p, a->h_w.p, fb, cudaMemcpyHostToDevice, st));
    arma_step_kernel<<<ps_cuda_blocks(n, THREADS), THREADS, 0, st>>>(
        n, a->base.p, a->base.q, static_cast<const uint32_t *>(a->d_slots.p),
        static_cast<const float *>(a->d_w.p), a->d_coef, a->d_state, static_cast<float *>(a->d_r.p),
        static_cast<float *>(a->d_f.p));
    PS_CU_LAUNCHED(be, "arma_step_kernel");
    if (want_r) PS_CU(be, cudaMemcpyAsync(a->h_r.p, a->d_r.p, fb, cudaMemcpyDeviceToHost, st));
    if (want_f) PS_CU(be, cudaMemcpyAsync(a->h_f.p, a->d_f.p, fb, cudaMemcpyDeviceToHost, st));
    return PS_OK;
}

extern "C" int cuda_arma_step(ps_arma *arma, size_t n, const uint32_t *slots, const float *w,
                              float *resid, float *forecast)
{
    cuda_arma *a = arma_of(arma);
    int rc = reserve_step(a, n);
    if (rc) return rc;
    std::memcpy(a->h_slots.p, slots, n * sizeof(uint32_t));
    std::memcpy(a->h_w.p, w, n * sizeof(float));
    rc = enqueue_step(a, n, resid != nullptr, forecast != nullptr);
    if (rc) {
        cudaStreamSynchronize(a->ctx->stream);
        (void)cudaGetLastError();
        return rc;
    }
    PS_CU(arma->be, cudaStreamSynchronize(a->ctx->stream));
    if (resid) std::memcpy(resid, a->h_r.p, n * sizeof(float));
    if (forecast) std::memcpy(forecast, a->h_f.p, n * sizeof(float));
    return PS_OK;
}

extern "C" int cuda_arma_set_params(ps_arma *arma, size_t n, const uint32_t *slots,
                                    const float *params)
{
    cuda_arma *a = arma_of(arma);
    return ps_cuda_rows_set(arma->be, a->ctx, a->d_coef, a->width, n, slots, params);
}

extern "C" int cuda_arma_state_get(ps_arma *arma, size_t n, const uint32_t *slots, float *state)
{
    cuda_arma *a = arma_of(arma);
    return ps_cuda_rows_get(arma->be, a->ctx, a->d_state, a->width, n, slots, state);
}

extern "C" int cuda_arma_state_set(ps_arma *arma, size_t n, const uint32_t *slots,
                                   const float *state)
{
    cuda_arma *a = arma_of(arma);
    return ps_cuda_rows_set(arma->be, a->ctx, a->d_state, a->width, n, slots, state);
}
