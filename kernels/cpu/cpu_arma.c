/*
 * cpu_arma.c - the batched ARMA(p, q) step on the CPU.
 *
 * Each slot owns two rows of the same padded width (1 + p + q rounded up to
 * a multiple of 8 floats, zeros beyond): its coefficients [c, phi.., theta..]
 * and its history [1, w lags.., e lags..]. With the constant folded in as a
 * history entry of 1, the forecast is a single dot product of two aligned
 * rows with no tail, which the vector table does in one or two registers.
 * The lags are shifted in place rather than kept in a ring: with orders of
 * at most 16 a shift of a few floats is cheaper than rotating the
 * coefficients to match a ring's head, and the dot product stays contiguous.
 *
 * Rows are independent, so a large step is cut into contiguous shares for
 * the worker pool; a small one runs on the calling thread, where waking the
 * pool would cost more than the work.
 */
#include "cpu_internal.h"

#include <stdlib.h>
#include <string.h>

/* Rows per worker below which a step stays on the calling thread. */
#define ARMA_ROWS_PER_WORKER 4096

typedef struct cpu_arma {
    ps_arma base;
    size_t stride; /* floats per slot row, a multiple of 8 */
    float *coef;   /* slots x stride: c, phi_1..phi_p, theta_1..theta_q, zeros */
    float *hist;   /* slots x stride: 1, w lags, e lags (newest first), zeros */
    float *fc;     /* slots: the forecast of each slot's next value */
} cpu_arma;

static cpu_arma *arma_of(ps_arma *a)
{
    return (cpu_arma *)a;
}

/* 32-byte aligned and zeroed, or NULL; count is a multiple of 8 floats. */
static float *alloc_rows(size_t slots, size_t stride)
{
    if (slots > SIZE_MAX / sizeof(float) / stride) return NULL;
    size_t bytes = slots * stride * sizeof(float);
    float *v = aligned_alloc(32, bytes);
    if (v) memset(v, 0, bytes);
    return v;
}

void cpu_arma_free(ps_arma *arma)
{
    if (!arma) return;
    cpu_arma *a = arma_of(arma);
    free(a->coef);
    free(a->hist);
    free(a->fc);
    ps_arma_header_free(&a->base);
    free(a);
}

ps_arma *cpu_arma_create(ps_backend *be, int p, int q, size_t slots)
{
    cpu_arma *a = calloc(1, sizeof *a);
    if (!a || ps_arma_header_init(&a->base, be, p, q, slots) != PS_OK) {
        free(a);
        ps_backend_fail(be, PS_ENOMEM, "out of memory creating ARMA");
        return NULL;
    }
    a->stride = ((size_t)(1 + p + q) + 7) / 8 * 8;
    a->coef = alloc_rows(slots, a->stride);
    a->hist = alloc_rows(slots, a->stride);
    a->fc = calloc(slots, sizeof(float));
    if (!a->coef || !a->hist || !a->fc) {
        cpu_arma_free(&a->base);
        ps_backend_fail(be, PS_ENOMEM, "out of memory for ARMA state of %zu slots", slots);
        return NULL;
    }
    for (size_t s = 0; s < slots; s++)
        a->hist[s * a->stride] = 1.0f;
    return &a->base;
}

int cpu_arma_set_params(ps_arma *arma, size_t n, const uint32_t *slots, const float *params)
{
    cpu_arma *a = arma_of(arma);
    size_t np = (size_t)(1 + arma->p + arma->q);
    for (size_t i = 0; i < n; i++)
        memcpy(a->coef + (size_t)slots[i] * a->stride, params + i * np, np * sizeof(float));
    return PS_OK;
}

typedef struct arma_job {
    cpu_arma *a;
    const ps_vecmath *vm;
    size_t n;
    const uint32_t *slots;
    const float *w;
    float *resid, *forecast;
} arma_job;

static void step_rows(const arma_job *job, size_t lo, size_t hi)
{
    cpu_arma *a = job->a;
    size_t p = (size_t)a->base.p, q = (size_t)a->base.q, stride = a->stride;
    float (*dot)(size_t, const float *, const float *) = job->vm->dot;
    for (size_t i = lo; i < hi; i++) {
        size_t s = job->slots[i];
        float *h = a->hist + s * stride;
        float w = job->w[i];
        float e = w - a->fc[s];
        for (size_t k = p + q; k > p + 1; k--)
            h[k] = h[k - 1];
        if (q) h[1 + p] = e;
        for (size_t k = p; k > 1; k--)
            h[k] = h[k - 1];
        if (p) h[1] = w;
        float f = dot(stride, a->coef + s * stride, h);
        a->fc[s] = f;
        if (job->resid) job->resid[i] = e;
        if (job->forecast) job->forecast[i] = f;
    }
}

static void step_share(void *ctx, int index, int count)
{
    const arma_job *job = ctx;
    size_t lo = job->n * (size_t)index / (size_t)count;
    size_t hi = job->n * ((size_t)index + 1) / (size_t)count;
    step_rows(job, lo, hi);
}

int cpu_arma_step(ps_arma *arma, size_t n, const uint32_t *slots, const float *w, float *resid,
                  float *forecast)
{
    cpu_backend *cpu = cpu_of(arma->be);
    arma_job job = {arma_of(arma), cpu->vm, n, slots, w, resid, forecast};
    if (cpu->pool && n >= (size_t)ps_pool_size(cpu->pool) * ARMA_ROWS_PER_WORKER)
        ps_pool_run(cpu->pool, step_share, &job);
    else
        step_rows(&job, 0, n);
    return PS_OK;
}

int cpu_arma_state_get(ps_arma *arma, size_t n, const uint32_t *slots, float *state)
{
    cpu_arma *a = arma_of(arma);
    size_t pq = (size_t)(arma->p + arma->q);
    for (size_t i = 0; i < n; i++) {
        size_t s = slots[i];
        float *out = state + i * (pq + 1);
        memcpy(out, a->hist + s * a->stride + 1, pq * sizeof(float));
        out[pq] = a->fc[s];
    }
    return PS_OK;
}

int cpu_arma_state_set(ps_arma *arma, size_t n, const uint32_t *slots, const float *state)
{
    cpu_arma *a = arma_of(arma);
    size_t pq = (size_t)(arma->p + arma->q);
    for (size_t i = 0; i < n; i++) {
        size_t s = slots[i];
        const float *in = state + i * (pq + 1);
        memcpy(a->hist + s * a->stride + 1, in, pq * sizeof(float));
        a->fc[s] = in[pq];
    }
    return PS_OK;
}
