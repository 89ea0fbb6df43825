/*
 * backend_impl.h - what a backend implements; private to kernels/.
 *
 * The public functions in backend.c check their arguments (sizes, slot
 * ranges, repeated slots) and then call these, so a backend may assume its
 * inputs are valid. Each backend object starts with the common header
 * (struct ps_lstm, struct ps_arma) and extends it.
 */
#ifndef PRESHIFT_BACKEND_IMPL_H
#define PRESHIFT_BACKEND_IMPL_H

#include "kernels.h"

#include <stdarg.h>

struct ps_backend_ops {
    void (*free)(ps_backend *be);

    ps_lstm *(*lstm_create)(ps_backend *be, const ps_lstm_shape *shape, const float *params,
                            size_t slots);
    void (*lstm_free)(ps_lstm *lstm);
    int (*lstm_step)(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *x, float *y);
    int (*lstm_reset)(ps_lstm *lstm, size_t n, const uint32_t *slots);
    int (*lstm_state_get)(ps_lstm *lstm, size_t n, const uint32_t *slots, float *state);
    int (*lstm_state_set)(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *state);

    ps_arma *(*arma_create)(ps_backend *be, int p, int q, size_t slots);
    void (*arma_free)(ps_arma *arma);
    int (*arma_set_params)(ps_arma *arma, size_t n, const uint32_t *slots, const float *params);
    int (*arma_step)(ps_arma *arma, size_t n, const uint32_t *slots, const float *w, float *resid,
                     float *forecast);
    int (*arma_state_get)(ps_arma *arma, size_t n, const uint32_t *slots, float *state);
    int (*arma_state_set)(ps_arma *arma, size_t n, const uint32_t *slots, const float *state);
};

struct ps_backend {
    const struct ps_backend_ops *ops;
    ps_backend_kind kind;
    int threads;
    const char *isa;
    char name[64];
    char err[256];
};

struct ps_lstm {
    ps_backend *be;
    ps_lstm_shape shape;
    size_t slots;
    uint8_t *seen; /* one byte a slot: finds a slot repeated within one call */
};

struct ps_arma {
    ps_backend *be;
    int p, q;
    size_t slots;
    uint8_t *seen;
};

/* Record a failure on be (printf-style) and return code. */
int ps_backend_fail(ps_backend *be, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill the common header; 0 or PS_ENOMEM. Release with ps_*_header_free. */
int ps_lstm_header_init(ps_lstm *lstm, ps_backend *be, const ps_lstm_shape *shape, size_t slots);
void ps_lstm_header_free(ps_lstm *lstm);
int ps_arma_header_init(ps_arma *arma, ps_backend *be, int p, int q, size_t slots);
void ps_arma_header_free(ps_arma *arma);

/* Constructors, one per backend compiled in. */
ps_backend *ps_backend_cpu_init(const ps_backend_params *params, char *err, size_t errlen);
#ifdef PRESHIFT_HAVE_CUDA
ps_backend *ps_backend_cuda_init(const ps_backend_params *params, char *err, size_t errlen);
#endif

#endif
