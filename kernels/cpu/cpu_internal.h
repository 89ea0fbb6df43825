/*
 * cpu_internal.h - the CPU backend's private parts: its object, its worker
 * pool and the operations each file of kernels/cpu/ contributes to the
 * backend's table.
 */
#ifndef PRESHIFT_CPU_INTERNAL_H
#define PRESHIFT_CPU_INTERNAL_H

#include "../backend_impl.h"
#include "thread_pool.h"
#include "vecmath.h"

typedef struct cpu_backend {
    ps_backend base;
    const ps_vecmath *vm;
    ps_pool *pool; /* NULL when threads == 1 */
} cpu_backend;

static inline cpu_backend *cpu_of(ps_backend *be)
{
    return (cpu_backend *)be;
}

/* cpu_backend.c: make OpenBLAS single-threaded (our workers split rows). */
void ps_cpu_blas_single_threaded(void);

/* cpu_lstm.c */
ps_lstm *cpu_lstm_create(ps_backend *be, const ps_lstm_shape *shape, const float *params,
                         size_t slots);
void cpu_lstm_free(ps_lstm *lstm);
int cpu_lstm_step(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *x, float *y);
int cpu_lstm_reset(ps_lstm *lstm, size_t n, const uint32_t *slots);
int cpu_lstm_state_get(ps_lstm *lstm, size_t n, const uint32_t *slots, float *state);
int cpu_lstm_state_set(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *state);

/* cpu_arma.c */
ps_arma *cpu_arma_create(ps_backend *be, int p, int q, size_t slots);
void cpu_arma_free(ps_arma *arma);
int cpu_arma_set_params(ps_arma *arma, size_t n, const uint32_t *slots, const float *params);
int cpu_arma_step(ps_arma *arma, size_t n, const uint32_t *slots, const float *w, float *resid,
                  float *forecast);
int cpu_arma_state_get(ps_arma *arma, size_t n, const uint32_t *slots, float *state);
int cpu_arma_state_set(ps_arma *arma, size_t n, const uint32_t *slots, const float *state);

#endif
