/*
 * cuda_internal.h - the CUDA backend's private parts as C sees them: its
 * object and the operations each .cu file contributes to its table.
 *
 * Included by C (cuda_backend.c) and by the .cu files alike, so it names no
 * CUDA type: the stream, the cuBLAS handle and the buffers sit behind the
 * opaque ps_cuda_ctx, whose layout only the .cu files know (cuda_common.cuh).
 * backend_impl.h has no extern "C" of its own, so it is wrapped here: the
 * .cu files must call ps_backend_fail with C linkage.
 */
#ifndef PRESHIFT_CUDA_INTERNAL_H
#define PRESHIFT_CUDA_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../backend_impl.h"

typedef struct ps_cuda_ctx ps_cuda_ctx;

typedef struct cuda_backend {
    ps_backend base;
    ps_cuda_ctx *ctx;
    char isa[16]; /* "sm_90": what ps_backend_isa() returns */
} cuda_backend;

static inline cuda_backend *cuda_of(ps_backend *be)
{
    return (cuda_backend *)be;
}

/*
 * cuda_context.cu: stream, cuBLAS handle and workspace of device 0, plus
 * the knobs read from the environment (see docs/kernels.md). Returns 0, or
 * a negative PS_E* code with the reason written into err.
 */
int ps_cuda_ctx_create(ps_cuda_ctx **out, char *err, size_t errlen);
void ps_cuda_ctx_free(ps_cuda_ctx *ctx);

/* cuda_lstm.cu */
ps_lstm *cuda_lstm_create(ps_backend *be, const ps_lstm_shape *shape, const float *params,
                          size_t slots);
void cuda_lstm_free(ps_lstm *lstm);
int cuda_lstm_step(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *x, float *y);
int cuda_lstm_reset(ps_lstm *lstm, size_t n, const uint32_t *slots);
int cuda_lstm_state_get(ps_lstm *lstm, size_t n, const uint32_t *slots, float *state);
int cuda_lstm_state_set(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *state);

/* cuda_arma.cu */
ps_arma *cuda_arma_create(ps_backend *be, int p, int q, size_t slots);
void cuda_arma_free(ps_arma *arma);
int cuda_arma_set_params(ps_arma *arma, size_t n, const uint32_t *slots, const float *params);
int cuda_arma_step(ps_arma *arma, size_t n, const uint32_t *slots, const float *w, float *resid,
                   float *forecast);
int cuda_arma_state_get(ps_arma *arma, size_t n, const uint32_t *slots, float *state);
int cuda_arma_state_set(ps_arma *arma, size_t n, const uint32_t *slots, const float *state);

#ifdef __cplusplus
}
#endif

#endif
