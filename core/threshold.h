/*
 * threshold.h - the adaptive PFP threshold of each processor class: it
 * learns from how shifts ended and rises when moving is expensive
 * (docs/policy.md, "Adaptive thresholds").
 *
 * A threshold is kept as log-odds, z = ln(T / (1 - T)), because it lives
 * anywhere in [0.5, 0.9999]: a step of 0.1 in log-odds moves 0.5 to 0.525
 * but 0.999 only to 0.9991, so one step size is sensible near 1 and near
 * 0.5 alike, where a step in probability would be either nothing or
 * everything.
 *
 * Per class: a base z, moved by outcomes, and exponentially weighted rates
 * of each outcome. Shared by all classes: an environmental offset e from
 * the cluster's load and the network's congestion. The effective threshold
 * is sigmoid(clamp(z + e, logit(min), logit(max))).
 *
 *   averted      z -= step_down, but only while the averted rate is at
 *                least lower_when_averted_rate (consistently successful)
 *   unnecessary  z += step_unnecessary
 *   disruptive   z += step_disruptive
 *   missed       z -= step_missed (a failure no shift preceded)
 *
 *   e = min(env_max, load_gain * max(0, L - load_level)
 *                    + congestion_gain * max(0, ln(C)))
 *
 * L and C are exponentially weighted means of the mean utilization of the
 * alive processors and of observed / expected transfer time. A threshold
 * is a plain value: no allocation, copyable, up to PS_THRESHOLD_MAX_CLASSES
 * classes.
 */
#ifndef PRESHIFT_THRESHOLD_H
#define PRESHIFT_THRESHOLD_H

#include <stddef.h>
#include <stdint.h>

#define PS_THRESHOLD_MAX_CLASSES 64

typedef enum ps_outcome {
    PS_OUTCOME_AVERTED = 0,     /* the source failed within the horizon: the shift saved work */
    PS_OUTCOME_UNNECESSARY = 1, /* it did not fail */
    PS_OUTCOME_DISRUPTIVE = 2,  /* the transfer failed or overloaded its target */
    PS_OUTCOME_MISSED = 3,      /* a processor failed with no shift before it */
    PS_OUTCOME_COUNT = 4,
} ps_outcome;

/* Why a threshold changed: an outcome (same values as ps_outcome) or the environment. */
typedef enum ps_threshold_cause {
    PS_CAUSE_AVERTED = PS_OUTCOME_AVERTED,
    PS_CAUSE_UNNECESSARY = PS_OUTCOME_UNNECESSARY,
    PS_CAUSE_DISRUPTIVE = PS_OUTCOME_DISRUPTIVE,
    PS_CAUSE_MISSED = PS_OUTCOME_MISSED,
    PS_CAUSE_ENVIRONMENT = 4,
} ps_threshold_cause;

typedef struct ps_threshold_config {
    double initial, min, max;       /* PFP, 0 < min <= initial <= max < 1 (0.9, 0.5, 0.9999) */
    double step_down;               /* log-odds, on averted (0.10) */
    double step_unnecessary;        /* log-odds (0.10) */
    double step_disruptive;         /* log-odds (0.25) */
    double step_missed;             /* log-odds (0.10) */
    double rate_alpha;              /* weight of the newest outcome in the rates (0.2) */
    double lower_when_averted_rate; /* averted lowers only at this rate or above (0.5) */
    double load_level;              /* mean utilization above which the threshold rises (0.7) */
    double load_gain;               /* log-odds per unit of utilization above it (4) */
    double congestion_gain;         /* log-odds per unit of ln(observed/expected) (1) */
    double env_max;                 /* cap on the environmental offset, log-odds (2) */
    double env_alpha;               /* weight of the newest environment sample (0.3) */
    double history_min_change;      /* environment changes smaller than this, log-odds,
                                       accumulate before they are recorded (0.01) */
} ps_threshold_config;

typedef struct ps_threshold_class {
    double base;                      /* z, log-odds, within [logit(min), logit(max)] */
    double rate[PS_OUTCOME_COUNT];    /* exponentially weighted, sum <= 1 */
    uint64_t count[PS_OUTCOME_COUNT]; /* outcomes seen */
    double recorded;                  /* effective log-odds at the last history record */
} ps_threshold_class;

typedef struct ps_thresholds {
    ps_threshold_config cfg;
    uint32_t n_classes;
    double zmin, zmax; /* the bounds in log-odds */
    double load;       /* smoothed mean utilization, [0, 1] */
    double congestion; /* smoothed observed / expected transfer time, > 0 (1 = as expected) */
    double env_offset; /* e, log-odds, in [0, env_max] */
    ps_threshold_class cls[PS_THRESHOLD_MAX_CLASSES];
} ps_thresholds;

/* One history entry: for the store and /metrics. */
typedef struct ps_threshold_change {
    int64_t time; /* the caller's clock: tick or timestamp */
    uint32_t cls;
    ps_threshold_cause cause;
    double old_threshold, new_threshold; /* effective, PFP */
    double old_base, new_base;           /* log-odds */
    double env_offset;                   /* log-odds, after the change */
    double load, congestion;             /* the environment after the change */
    double rate[PS_OUTCOME_COUNT];       /* the class's rates after the change */
} ps_threshold_change;

ps_threshold_config ps_threshold_default_config(void);
int ps_threshold_config_check(const ps_threshold_config *cfg, char *err, size_t errlen);

/* Every class at cfg->initial, no environmental offset. 0 or PS_EINVAL. */
int ps_thresholds_init(ps_thresholds *th, const ps_threshold_config *cfg, uint32_t n_classes,
                       char *err, size_t errlen);

/* The effective threshold of class cls (PFP), and all of them into out[n_classes]. */
double ps_thresholds_effective(const ps_thresholds *th, uint32_t cls);
void ps_thresholds_fill(const ps_thresholds *th, double *out);

/*
 * Learn from one outcome of class cls. Returns 1 and fills *rec (if not
 * NULL) when the threshold moved, 0 when it did not (the rates still
 * learn), PS_EINVAL for a bad class or outcome.
 */
int ps_thresholds_outcome(ps_thresholds *th, uint32_t cls, ps_outcome outcome, int64_t time,
                          ps_threshold_change *rec);

/*
 * One environment sample: mean_util in [0, 1] (ps_cluster_mean_utilization),
 * transfer_ratio = observed / expected transfer time over the period, or a
 * value <= 0 or NaN when no transfer finished (congestion then keeps its
 * value). Writes one record per class whose effective threshold has moved
 * by history_min_change or more since its last record, up to cap; returns
 * how many (PS_EINVAL for a bad mean_util).
 */
int ps_thresholds_environment(ps_thresholds *th, double mean_util, double transfer_ratio,
                              int64_t time, ps_threshold_change *out, size_t cap);

const char *ps_threshold_cause_name(ps_threshold_cause c);

#endif
