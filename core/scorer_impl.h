/*
 * scorer_impl.h - the scorer's insides, shared by scorer.c (the pipeline)
 * and scorer_state.c (snapshots of one processor), and by nothing else.
 */
#ifndef PRESHIFT_SCORER_IMPL_H
#define PRESHIFT_SCORER_IMPL_H

#include "arima.h"
#include "baseline.h"
#include "calibration.h"
#include "forecaster.h"
#include "residual_cov.h"
#include "scorer.h"
#include "seasonal.h"

#include <stdint.h>

struct ps_scorer {
    ps_scorer_config cfg;
    ps_backend *be;
    ps_baseline *baseline; /* warm-up 0: set from the kept rows */
    ps_rescov *cov;
    ps_forecaster *lstm;        /* NULL when lstm_weight == 0 */
    ps_arima_bank *arima;       /* NULL when lstm_weight == 1 */
    ps_seasonal *seasonal;      /* NULL when seasonal_weight == 0 */
    ps_evt *evt;                /* one per processor, initialized when it becomes ready */
    ps_calibration calibration; /* the model's, if any: it then maps score to PFP */
    uint64_t fingerprint;       /* of the configuration and model, for snapshots */

    /* Warm-up rows, allocated at a processor's first tick and freed when it
     * activates: a server with many processors holds rows only for those
     * still warming up. */
    float **warm_x;     /* P: warm_len x K kept rows, or NULL */
    double **warm_t;    /* P: their times */
    uint32_t *warm_n;   /* P: rows kept */
    uint32_t *warm_len; /* P: rows to keep */
    uint8_t *ready;     /* P */
    double *clock;      /* P: tick counter when the caller gives no times */
    float *forecast;    /* P x K: combined forecast of the next z */
    float *res_scale;   /* P x K: healthy scale of the forecast residual */
    double *smooth;     /* P: EW score */
    float *level;       /* P x K: EW average of z */
    float *level_loc;   /* P x K: its healthy location over the warm-up */
    float *level_scale; /* P x K: its healthy scale over the warm-up */

    /* Per-tick scratch, sized for all processors at once. */
    uint8_t *seen;
    uint32_t *ids, *series;
    float *x, *z, *res, *fl, *fa, *next, *contrib, *late, *seas;
    uint8_t *stable;
    double *times;
};

/*
 * A hash of everything that decides what a processor's state means and how
 * it evolves: every configuration value but the processor count, the
 * model's shape, weights, clip, normalization and calibration.
 */
uint64_t ps_scorer_fingerprint_compute(const ps_scorer_config *cfg, const ps_model *m);

#endif
