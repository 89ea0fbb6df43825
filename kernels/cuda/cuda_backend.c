/*
 * cuda_backend.c - the CUDA backend's entry point and operations table.
 *
 * The work is in the .cu files (cuda_lstm.cu, cuda_arma.cu, cuda_rows.cu,
 * cuda_graph.cu, cuda_context.cu); this file only wires them into the
 * backend interface and names the backend, e.g.
 * "cuda (NVIDIA H200, sm_90, cuBLAS 13)". The CPU-only parameters (isa,
 * threads) do not apply: one host thread drives one stream, so the backend
 * reports 1 thread and the device's architecture as its "vector code".
 */
#include "cuda_device.h"
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>

static void cuda_free(ps_backend *be)
{
    cuda_backend *cb = cuda_of(be);
    ps_cuda_ctx_free(cb->ctx);
    free(cb);
}

static const struct ps_backend_ops cuda_ops = {
    .free = cuda_free,
    .lstm_create = cuda_lstm_create,
    .lstm_free = cuda_lstm_free,
    .lstm_step = cuda_lstm_step,
    .lstm_reset = cuda_lstm_reset,
    .lstm_state_get = cuda_lstm_state_get,
    .lstm_state_set = cuda_lstm_state_set,
    .arma_create = cuda_arma_create,
    .arma_free = cuda_arma_free,
    .arma_set_params = cuda_arma_set_params,
    .arma_step = cuda_arma_step,
    .arma_state_get = cuda_arma_state_get,
    .arma_state_set = cuda_arma_state_set,
};

ps_backend *ps_backend_cuda_init(const ps_backend_params *params, char *err, size_t errlen)
{
    (void)params;
    if (ps_cuda_device_count(err, errlen) <= 0) return NULL;
    cuda_backend *cb = calloc(1, sizeof *cb);
    if (!cb) {
        if (err) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ps_cuda_ctx_create(&cb->ctx, err, errlen) != PS_OK) {
        free(cb);
        return NULL;
    }
    cb->base.ops = &cuda_ops;
    cb->base.kind = PS_BACKEND_CUDA;
    cb->base.threads = 1;
    ps_cuda_device_arch(cb->isa, sizeof cb->isa);
    cb->base.isa = cb->isa;
    char dev[128];
    ps_cuda_device_describe(dev, sizeof dev);
    snprintf(cb->base.name, sizeof cb->base.name, "cuda (%.56s)", dev);
    return &cb->base;
}
