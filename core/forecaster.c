/*
 * forecaster.c - maps processors and metrics onto kernel slots.
 *
 * The only work here is building the slot list and the clipped input of a
 * tick; both live in buffers sized once at create, so a tick allocates
 * nothing.
 */
#include "forecaster.h"

#include <stdio.h>
#include <stdlib.h>

struct ps_forecaster {
    ps_backend *be;
    ps_lstm *lstm;
    size_t processors, metrics;
    int multivariate;
    float clip;
    size_t state_floats; /* of one kernel slot */
    uint32_t *slots;     /* rows of the current tick */
    float *x;            /* clipped inputs of the current tick */
};

ps_forecaster *ps_forecaster_create(ps_backend *be, const ps_model *m, size_t processors,
                                    size_t metrics, char *err, size_t errlen)
{
    const ps_lstm_shape *s = &m->shape;
    int multivariate = s->input > 1 || s->output > 1;
    if (metrics == 0 || processors == 0) {
        snprintf(err, errlen, "need at least one processor and one metric");
        return NULL;
    }
    if (multivariate && ((size_t)s->input != metrics || (size_t)s->output != metrics)) {
        snprintf(err, errlen,
                 "the model is multivariate for %d metrics (output %d), the data has %zu", s->input,
                 s->output, metrics);
        return NULL;
    }
    size_t rows = multivariate ? processors : processors * metrics;
    if (processors > UINT32_MAX / metrics) {
        snprintf(err, errlen, "%zu processors x %zu metrics is too many slots", processors,
                 metrics);
        return NULL;
    }
    ps_forecaster *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->be = be;
    f->processors = processors;
    f->metrics = metrics;
    f->multivariate = multivariate;
    f->clip = m->clip;
    f->state_floats = ps_lstm_state_floats(s);
    f->slots = malloc(rows * sizeof *f->slots);
    f->x = malloc(processors * metrics * sizeof *f->x);
    f->lstm = f->slots && f->x ? ps_lstm_create(be, s, m->params, rows) : NULL;
    if (!f->lstm) {
        snprintf(err, errlen, "cannot create the LSTM for %zu slots: %s", rows,
                 f->slots && f->x ? ps_backend_error(be) : "out of memory");
        ps_forecaster_free(f);
        return NULL;
    }
    return f;
}

void ps_forecaster_free(ps_forecaster *f)
{
    if (!f) return;
    ps_lstm_free(f->lstm);
    free(f->slots);
    free(f->x);
    free(f);
}

size_t ps_forecaster_metrics(const ps_forecaster *f)
{
    return f->metrics;
}

int ps_forecaster_is_multivariate(const ps_forecaster *f)
{
    return f->multivariate;
}

const char *ps_forecaster_error(const ps_forecaster *f)
{
    return ps_backend_error(f->be);
}

/* Fill f->slots for n processors; PS_EINVAL if one is out of range. */
static int map_slots(ps_forecaster *f, size_t n, const uint32_t *procs, size_t *rows)
{
    size_t k = f->metrics;
    for (size_t i = 0; i < n; i++)
        if (procs[i] >= f->processors) return PS_EINVAL;
    if (f->multivariate) {
        for (size_t i = 0; i < n; i++)
            f->slots[i] = procs[i];
        *rows = n;
    } else {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < k; j++)
                f->slots[i * k + j] = (uint32_t)(procs[i] * k + j);
        *rows = n * k;
    }
    return PS_OK;
}

int ps_forecaster_step(ps_forecaster *f, size_t n, const uint32_t *procs, const float *x,
                       float *forecast)
{
    if (n > f->processors) return PS_EINVAL;
    size_t rows;
    if (map_slots(f, n, procs, &rows)) return PS_EINVAL;
    const float *in = x;
    if (f->clip > 0) {
        float c = f->clip;
        for (size_t i = 0; i < n * f->metrics; i++)
            f->x[i] = x[i] > c ? c : x[i] < -c ? -c : x[i];
        in = f->x;
    }
    return ps_lstm_step(f->lstm, rows, f->slots, in, forecast);
}

int ps_forecaster_reset(ps_forecaster *f, size_t n, const uint32_t *procs)
{
    if (n > f->processors) return PS_EINVAL;
    size_t rows;
    if (map_slots(f, n, procs, &rows)) return PS_EINVAL;
    return ps_lstm_reset(f->lstm, rows, f->slots);
}

size_t ps_forecaster_state_floats(const ps_forecaster *f)
{
    return (f->multivariate ? 1 : f->metrics) * f->state_floats;
}

/* The processor's slots, in the order its state is laid out. */
static size_t proc_slots(const ps_forecaster *f, uint32_t proc, uint32_t *slots)
{
    if (f->multivariate) {
        slots[0] = proc;
        return 1;
    }
    for (size_t k = 0; k < f->metrics; k++)
        slots[k] = (uint32_t)(proc * f->metrics + k);
    return f->metrics;
}

int ps_forecaster_state_get(const ps_forecaster *f, uint32_t proc, float *state)
{
    if (proc >= f->processors || !state) return PS_EINVAL;
    /* A step's slot list is scratch between ticks; the forecaster is
     * logically const here, the kernel's getter is not. */
    size_t n = proc_slots(f, proc, f->slots);
    return ps_lstm_state_get(f->lstm, n, f->slots, state);
}

int ps_forecaster_state_set(ps_forecaster *f, uint32_t proc, const float *state)
{
    if (proc >= f->processors || !state) return PS_EINVAL;
    size_t n = proc_slots(f, proc, f->slots);
    return ps_lstm_state_set(f->lstm, n, f->slots, state);
}
