/*
 * forecaster.h - the LSTM forecaster over processors x metrics.
 *
 * One model serves any metric set. A channel-independent model (input 1)
 * runs one kernel row per (processor, metric): slot p*K + k, so a tick of N
 * processors x K metrics is one batched step of N*K rows. A multivariate
 * model (input K) runs one row per processor: slot p. Either way the caller
 * hands in normalized values (row-major N x K) and gets, for each, the
 * forecast of the next normalized value.
 */
#ifndef PRESHIFT_FORECASTER_H
#define PRESHIFT_FORECASTER_H

#include "model.h"

typedef struct ps_forecaster ps_forecaster;

/*
 * NULL on failure with the reason in err: a multivariate model whose input
 * is not `metrics`, too many slots, or the backend's own error.
 */
ps_forecaster *ps_forecaster_create(ps_backend *be, const ps_model *m, size_t processors,
                                    size_t metrics, char *err, size_t errlen);
void ps_forecaster_free(ps_forecaster *f);
size_t ps_forecaster_metrics(const ps_forecaster *f);
int ps_forecaster_is_multivariate(const ps_forecaster *f);

/*
 * One tick for n distinct processors: x and forecast are n x metrics.
 * Inputs are clipped to the model's clip range before the step.
 */
int ps_forecaster_step(ps_forecaster *f, size_t n, const uint32_t *procs, const float *x,
                       float *forecast);
/* Forget the state of n processors (new series, eviction). */
int ps_forecaster_reset(ps_forecaster *f, size_t n, const uint32_t *procs);
/* The backend's last error, for messages. */
const char *ps_forecaster_error(const ps_forecaster *f);

/*
 * The LSTM state of one processor, for snapshots: its K slots (p*K + k) of
 * a channel-independent model one after another, or the one slot p of a
 * multivariate model; each slot is layers x (h, c) x hidden floats
 * (kernels.h). 0, PS_EINVAL for a processor out of range, or the backend's
 * error.
 */
size_t ps_forecaster_state_floats(const ps_forecaster *f);
int ps_forecaster_state_get(const ps_forecaster *f, uint32_t proc, float *state);
int ps_forecaster_state_set(ps_forecaster *f, uint32_t proc, const float *state);

#endif
