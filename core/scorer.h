/*
 * scorer.h - heartbeats in, Instability Score and PFP out, for many
 * processors at once.
 *
 * Per processor, the first `warmup` ticks are only kept. The tick that
 * completes them sets everything from those rows at once: the baseline
 * (robust location and scale per metric), an ARIMA model per metric, the
 * LSTM state (the rows are replayed through it), the healthy scale of the
 * forecast residuals, their covariance, and the EVT tail of the processor's
 * own healthy scores. From then on every tick is scored online:
 *
 *   z      = (x - loc) / scale                     baseline
 *   f      = w * lstm(z) + (1 - w) * arima(z)      forecasts made at t-1
 *   u      = (z - f) / residual scale              per metric
 *   v      = EW average of z (level_rate), per metric
 *   d      = distance of z from the same phase of the last cycles, per
 *            metric with a period (seasonal.h)
 *   raw    = u' S^-1 u / K + lateness_weight * lateness^2
 *            + level_weight * mean_k ((v - v_loc) / v_scale)^2
 *            + seasonal_weight * mean_k d^2
 *   score  = EW average of raw (smoothing)
 *   PFP    = EVT tail of the healthy scores at score, or the model's
 *            calibration on labelled incidents when it has one
 *
 * and a tick whose tail PFP stays below `unstable_pfp` teaches the baseline, the
 * covariance and the tail; an unstable one teaches nothing.
 */
#ifndef PRESHIFT_SCORER_H
#define PRESHIFT_SCORER_H

#include "evt.h"
#include "model.h"
#include "seasonal.h"

#include <stdint.h>

/*
 * The default seasonal weight: 1 when a processor has one metric, 0 with
 * several. A lone series has nothing but its own past to tell a missing
 * daily peak from a quiet hour; with several metrics their healthy
 * correlation does, and on ASD the term cost event recall (docs/scoring.md).
 */
#define PS_SEASONAL_AUTO (-1.0f)

typedef struct ps_scorer_config {
    size_t processors;
    size_t metrics;
    uint32_t warmup;   /* ticks kept before a processor is scored (>= 16); the
                        * most any processor may be given (ps_scorer_set_warmup) */
    uint32_t burn_in;  /* warm-up ticks that only warm the LSTM state up */
    float lstm_weight; /* w above: 1 = LSTM alone, 0 = ARIMA alone */
    int arima_p, arima_d, arima_q;
    float residual_floor; /* least healthy residual scale, in baseline scales */
    float smoothing;      /* weight of the new raw score in the EW average, (0, 1] */
    float lateness_weight;
    /* Level term: a one-step forecast catches up with a level shift within a
     * few ticks, so the residual alone forgets it; an EW average of z against
     * its healthy spread (set at warm-up, then fixed) keeps scoring while the
     * level stays away. */
    float level_weight; /* weight of the level term in raw, 0 = off */
    float level_rate;   /* weight of the new z in the EW level, (0, 1] */
    /* Seasonal term: distance of z from the same phase of the last cycles
     * (seasonal.h), for the series that have a period. */
    float seasonal_weight; /* 0 = off; PS_SEASONAL_AUTO: 1 for one metric, else 0 */
    ps_seasonal_config seasonal;
    float drift_rate;   /* baseline drift following after warm-up, 0 = frozen */
    float unstable_pfp; /* ticks at or above this PFP teach nothing (0.99999) */
    ps_evt_options evt;
} ps_scorer_config;

ps_scorer_config ps_scorer_default_config(void);

typedef enum ps_proc_state {
    PS_PROC_WARMING = 0, /* still collecting its warm-up ticks: score and PFP are 0 */
    PS_PROC_SCORED = 1,
} ps_proc_state;

typedef struct ps_score {
    float score;        /* smoothed Instability Score (>= 0) */
    double pfp;         /* predictive failure probability in [0, 1] */
    int32_t top_metric; /* metric contributing most to this tick, -1 while warming */
    float top_share;    /* its share of the metric terms (all but lateness) */
    float lateness;     /* of this heartbeat */
    uint8_t state;      /* ps_proc_state */
} ps_score;

typedef struct ps_scorer ps_scorer;

/*
 * NULL with the reason in err for a bad configuration, a model that does not
 * fit the metric count, or memory. The model is copied into the backend; the
 * caller may free it afterwards.
 */
ps_scorer *ps_scorer_create(ps_backend *be, const ps_model *m, const ps_scorer_config *cfg,
                            char *err, size_t errlen);
void ps_scorer_free(ps_scorer *s);
const ps_scorer_config *ps_scorer_config_of(const ps_scorer *s);

/*
 * Give processor proc a shorter warm-up than the configured one (16 ..
 * cfg.warmup, and more than burn_in + 8), before its first tick: each series
 * of a corpus can warm up on its own share of rows. 0 or PS_EINVAL.
 */
int ps_scorer_set_warmup(ps_scorer *s, uint32_t proc, uint32_t warmup);

/*
 * One tick of n distinct processors: x is n x metrics, t their heartbeat
 * times (n; NULL = one tick apart). Every value must be finite. out gets one
 * ps_score per processor. 0, or a negative code with the reason in err: the
 * tick is then refused whole and changes no state, except when setting up
 * the processors whose warm-up this tick completed fails (a device error,
 * memory): the other processors' results stand, and those start their
 * warm-up over.
 */
int ps_scorer_tick(ps_scorer *s, size_t n, const uint32_t *procs, const double *t, const float *x,
                   ps_score *out, char *err, size_t errlen);

/* ---- durable state (docs/state-file.md) --------------------------------- */

#define PS_SCORER_STATE_VERSION 1

/*
 * A hash of everything that decides what a processor's state means: every
 * configuration value but the processor count, and the model's shape,
 * weights, clip, normalization and calibration. A snapshot is restored
 * only into a scorer with the same fingerprint.
 */
uint64_t ps_scorer_fingerprint(const ps_scorer *s);

/* PS_PROC_SCORED once proc has finished its warm-up, else PS_PROC_WARMING. */
ps_proc_state ps_scorer_proc_state(const ps_scorer *s, uint32_t proc);

/*
 * The complete state of one processor as little-endian bytes: a header with
 * the fingerprint, metric count, warm-up and ARIMA order; then the kept
 * rows of a warming processor, or every model of a ready one (baseline,
 * covariance, LSTM and ARIMA state, EVT tail, seasonal memory, forecast,
 * residual scales, levels, smoothed score, clock). A scorer that imports it
 * produces bit-identical outputs to the one that exported it.
 *
 * ps_scorer_state_size() is what export writes (0 for proc out of range);
 * export returns 0, PS_EINVAL (len too short) or the backend's error.
 */
size_t ps_scorer_state_size(const ps_scorer *s, uint32_t proc);
int ps_scorer_state_export(const ps_scorer *s, uint32_t proc, uint8_t *buf, size_t len);

/*
 * Check that buf is a state this scorer can import, changing nothing: the
 * configuration and model (a differing metric count, warm-up or order is
 * named), every length, count, ring head and number. 0, or PS_EINVAL with
 * what was wrong (and where, for a truncated buffer) in err.
 */
int ps_scorer_state_check(const ps_scorer *s, const uint8_t *buf, size_t len, char *err,
                          size_t errlen);

/*
 * Replace proc's state by the one in buf. Everything is checked first
 * (ps_scorer_state_check): a refused state (PS_EINVAL) leaves proc
 * unchanged. Past the checks only memory or the device can fail (PS_ENOMEM,
 * PS_EDEVICE); proc is then forgotten rather than left half restored.
 */
int ps_scorer_state_import(ps_scorer *s, uint32_t proc, const uint8_t *buf, size_t len, char *err,
                           size_t errlen);

/*
 * Make proc a never-seen processor again (eviction): its warm-up rows are
 * freed, its warm-up length is the configured one, and every model of it is
 * reset. 0, PS_EINVAL (out of range) or the backend's error.
 */
int ps_scorer_forget(ps_scorer *s, uint32_t proc);

#endif
