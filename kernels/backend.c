/*
 * backend.c - the public kernel functions: check, then dispatch.
 *
 * Every check that does not depend on the backend lives here once, so that a
 * backend only does arithmetic. Repeated slots within one call are refused:
 * the seen[] byte map of the object marks each slot of the call and is
 * cleared again before returning, which costs two passes over the slot list
 * (nothing next to the arithmetic of a step).
 */
#include "backend_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ps_backend_fail(ps_backend *be, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->err, sizeof be->err, fmt, ap);
    va_end(ap);
    return code;
}

ps_backend_kind ps_backend_default_kind(void)
{
#ifdef PRESHIFT_BACKEND_CUDA
    return PS_BACKEND_CUDA;
#else
    return PS_BACKEND_CPU;
#endif
}

const char *ps_isa_name(ps_isa isa)
{
    switch (isa) {
    case PS_ISA_AUTO:
        return "auto";
    case PS_ISA_PORTABLE:
        return "portable";
    case PS_ISA_AVX2:
        return "avx2";
    case PS_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}

ps_backend *ps_backend_init(const ps_backend_params *params, char *err, size_t errlen)
{
    ps_backend_params p = {0};
    if (params) p = *params;
    if (p.threads < 0) {
        if (err) snprintf(err, errlen, "threads must be 0 (auto) or positive, not %d", p.threads);
        return NULL;
    }
    if (p.kind == PS_BACKEND_DEFAULT) p.kind = ps_backend_default_kind();
    switch (p.kind) {
    case PS_BACKEND_CPU:
        return ps_backend_cpu_init(&p, err, errlen);
    case PS_BACKEND_CUDA:
#ifdef PRESHIFT_HAVE_CUDA
        return ps_backend_cuda_init(&p, err, errlen);
#else
        if (err)
            snprintf(err, errlen,
                     "this build has no CUDA backend (build with -DPRESHIFT_BACKEND=cuda)");
        return NULL;
#endif
    default:
        if (err) snprintf(err, errlen, "unknown backend kind %d", (int)p.kind);
        return NULL;
    }
}

void ps_backend_free(ps_backend *be)
{
    if (be) be->ops->free(be);
}

const char *ps_backend_name(const ps_backend *be)
{
    return be->name;
}

const char *ps_backend_isa(const ps_backend *be)
{
    return be->isa;
}

int ps_backend_threads(const ps_backend *be)
{
    return be->threads;
}

const char *ps_backend_error(const ps_backend *be)
{
    return be->err;
}

/* ---- LSTM ---------------------------------------------------------------- */

int ps_lstm_shape_check(const ps_lstm_shape *s)
{
    if (!s) return PS_EINVAL;
    if (s->input < 1 || s->input > PS_LSTM_MAX_INPUT) return PS_EINVAL;
    if (s->output < 1 || s->output > PS_LSTM_MAX_INPUT) return PS_EINVAL;
    if (s->hidden < 1 || s->hidden > PS_LSTM_MAX_HIDDEN) return PS_EINVAL;
    if (s->layers < 1 || s->layers > PS_LSTM_MAX_LAYERS) return PS_EINVAL;
    return PS_OK;
}

static size_t layer_floats(const ps_lstm_shape *s, int l)
{
    size_t in = l == 0 ? (size_t)s->input : (size_t)s->hidden;
    size_t g = 4 * (size_t)s->hidden;
    return (in + (size_t)s->hidden) * g + g;
}

size_t ps_lstm_weight_offset(const ps_lstm_shape *s, int layer)
{
    size_t off = 0;
    for (int l = 0; l < layer; l++)
        off += layer_floats(s, l);
    return off;
}

size_t ps_lstm_bias_offset(const ps_lstm_shape *s, int layer)
{
    return ps_lstm_weight_offset(s, layer) + layer_floats(s, layer) - 4 * (size_t)s->hidden;
}

size_t ps_lstm_head_offset(const ps_lstm_shape *s)
{
    return ps_lstm_weight_offset(s, s->layers);
}

size_t ps_lstm_param_count(const ps_lstm_shape *s)
{
    return ps_lstm_head_offset(s) + ((size_t)s->hidden + 1) * (size_t)s->output;
}

size_t ps_lstm_state_floats(const ps_lstm_shape *s)
{
    return (size_t)s->layers * 2 * (size_t)s->hidden;
}

int ps_lstm_header_init(ps_lstm *lstm, ps_backend *be, const ps_lstm_shape *shape, size_t slots)
{
    lstm->be = be;
    lstm->shape = *shape;
    lstm->slots = slots;
    lstm->seen = calloc(slots ? slots : 1, 1);
    return lstm->seen ? PS_OK : PS_ENOMEM;
}

void ps_lstm_header_free(ps_lstm *lstm)
{
    free(lstm->seen);
    lstm->seen = NULL;
}

/* 0 if every slot is < limit and none repeats; otherwise records why. */
static int check_slots(ps_backend *be, uint8_t *seen, size_t limit, size_t n, const uint32_t *slots)
{
    if (n == 0) return PS_OK;
    if (!slots) return ps_backend_fail(be, PS_EINVAL, "slot list is NULL");
    int rc = PS_OK;
    size_t i = 0;
    for (; i < n; i++) {
        if (slots[i] >= limit) {
            rc = ps_backend_fail(be, PS_EINVAL, "slot %u out of range (%zu slots)",
                                 (unsigned)slots[i], limit);
            break;
        }
        if (seen[slots[i]]) {
            rc = ps_backend_fail(be, PS_EINVAL, "slot %u appears twice in one call",
                                 (unsigned)slots[i]);
            break;
        }
        seen[slots[i]] = 1;
    }
    for (size_t j = 0; j < i; j++)
        seen[slots[j]] = 0;
    return rc;
}

ps_lstm *ps_lstm_create(ps_backend *be, const ps_lstm_shape *shape, const float *params,
                        size_t slots)
{
    if (!be) return NULL;
    if (ps_lstm_shape_check(shape) != PS_OK) {
        ps_backend_fail(be, PS_EINVAL, "LSTM shape out of range");
        return NULL;
    }
    if (!params) {
        ps_backend_fail(be, PS_EINVAL, "LSTM parameters are NULL");
        return NULL;
    }
    if (slots == 0 || slots > UINT32_MAX) {
        ps_backend_fail(be, PS_EINVAL, "LSTM slot count %zu out of range", slots);
        return NULL;
    }
    return be->ops->lstm_create(be, shape, params, slots);
}

void ps_lstm_free(ps_lstm *lstm)
{
    if (lstm) lstm->be->ops->lstm_free(lstm);
}

size_t ps_lstm_slots(const ps_lstm *lstm)
{
    return lstm->slots;
}

int ps_lstm_step(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *x, float *y)
{
    if (!lstm) return PS_EINVAL;
    if (n == 0) return PS_OK;
    if (!x || !y) return ps_backend_fail(lstm->be, PS_EINVAL, "LSTM step: NULL input or output");
    int rc = check_slots(lstm->be, lstm->seen, lstm->slots, n, slots);
    if (rc) return rc;
    return lstm->be->ops->lstm_step(lstm, n, slots, x, y);
}

int ps_lstm_reset(ps_lstm *lstm, size_t n, const uint32_t *slots)
{
    if (!lstm) return PS_EINVAL;
    int rc = check_slots(lstm->be, lstm->seen, lstm->slots, n, slots);
    if (rc || n == 0) return rc;
    return lstm->be->ops->lstm_reset(lstm, n, slots);
}

int ps_lstm_state_get(ps_lstm *lstm, size_t n, const uint32_t *slots, float *state)
{
    if (!lstm) return PS_EINVAL;
    if (n && !state) return ps_backend_fail(lstm->be, PS_EINVAL, "LSTM state buffer is NULL");
    int rc = check_slots(lstm->be, lstm->seen, lstm->slots, n, slots);
    if (rc || n == 0) return rc;
    return lstm->be->ops->lstm_state_get(lstm, n, slots, state);
}

int ps_lstm_state_set(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *state)
{
    if (!lstm) return PS_EINVAL;
    if (n && !state) return ps_backend_fail(lstm->be, PS_EINVAL, "LSTM state buffer is NULL");
    int rc = check_slots(lstm->be, lstm->seen, lstm->slots, n, slots);
    if (rc || n == 0) return rc;
    return lstm->be->ops->lstm_state_set(lstm, n, slots, state);
}

/* ---- ARMA ---------------------------------------------------------------- */

int ps_arma_header_init(ps_arma *arma, ps_backend *be, int p, int q, size_t slots)
{
    arma->be = be;
    arma->p = p;
    arma->q = q;
    arma->slots = slots;
    arma->seen = calloc(slots ? slots : 1, 1);
    return arma->seen ? PS_OK : PS_ENOMEM;
}

void ps_arma_header_free(ps_arma *arma)
{
    free(arma->seen);
    arma->seen = NULL;
}

ps_arma *ps_arma_create(ps_backend *be, int p, int q, size_t slots)
{
    if (!be) return NULL;
    if (p < 0 || q < 0 || p > PS_ARMA_MAX_ORDER || q > PS_ARMA_MAX_ORDER) {
        ps_backend_fail(be, PS_EINVAL, "ARMA orders p=%d q=%d out of range 0..%d", p, q,
                        PS_ARMA_MAX_ORDER);
        return NULL;
    }
    if (slots == 0 || slots > UINT32_MAX) {
        ps_backend_fail(be, PS_EINVAL, "ARMA slot count %zu out of range", slots);
        return NULL;
    }
    return be->ops->arma_create(be, p, q, slots);
}

void ps_arma_free(ps_arma *arma)
{
    if (arma) arma->be->ops->arma_free(arma);
}

size_t ps_arma_slots(const ps_arma *arma)
{
    return arma->slots;
}

int ps_arma_set_params(ps_arma *arma, size_t n, const uint32_t *slots, const float *params)
{
    if (!arma) return PS_EINVAL;
    if (n && !params) return ps_backend_fail(arma->be, PS_EINVAL, "ARMA parameters are NULL");
    int rc = check_slots(arma->be, arma->seen, arma->slots, n, slots);
    if (rc || n == 0) return rc;
    return arma->be->ops->arma_set_params(arma, n, slots, params);
}

int ps_arma_step(ps_arma *arma, size_t n, const uint32_t *slots, const float *w, float *resid,
                 float *forecast)
{
    if (!arma) return PS_EINVAL;
    if (n && !w) return ps_backend_fail(arma->be, PS_EINVAL, "ARMA step: NULL input");
    int rc = check_slots(arma->be, arma->seen, arma->slots, n, slots);
    if (rc || n == 0) return rc;
    return arma->be->ops->arma_step(arma, n, slots, w, resid, forecast);
}

int ps_arma_state_get(ps_arma *arma, size_t n, const uint32_t *slots, float *state)
{
    if (!arma) return PS_EINVAL;
    if (n && !state) return ps_backend_fail(arma->be, PS_EINVAL, "ARMA state buffer is NULL");
    int rc = check_slots(arma->be, arma->seen, arma->slots, n, slots);
    if (rc || n == 0) return rc;
    return arma->be->ops->arma_state_get(arma, n, slots, state);
}

int ps_arma_state_set(ps_arma *arma, size_t n, const uint32_t *slots, const float *state)
{
    if (!arma) return PS_EINVAL;
    if (n && !state) return ps_backend_fail(arma->be, PS_EINVAL, "ARMA state buffer is NULL");
    int rc = check_slots(arma->be, arma->seen, arma->slots, n, slots);
    if (rc || n == 0) return rc;
    return arma->be->ops->arma_state_set(arma, n, slots, state);
}
