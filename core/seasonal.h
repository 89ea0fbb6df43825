/*
 * seasonal.h - how far a value is from what its series did at the same
 * phase of its last few cycles.
 *
 * One-step forecasts (LSTM, ARIMA) follow a daily pattern tick by tick, so a
 * day whose peak is missing, lower, or flat reads to them as a smooth and
 * healthy series. Comparing each value with the same phase one, two and
 * three periods back catches exactly that. The distance is the value minus
 * the closest of those same-phase values (over the cycles and a phase
 * jitter of one tick), so that an anomaly does not come back as an echo one
 * period later (another cycle still matches), and a pattern that drifts by
 * a tick does not read as a change.
 *
 * The distance is divided by its healthy scale (1.4826 times the median of
 * its magnitude over the history, never below `floor`), averaged with
 * weight `rate` per tick (1, the default, keeps each tick's own distance),
 * and taken as a z against its own healthy location and scale over the
 * history (robust.h). A rate below 1 reports a sustained distance, in which
 * noise averages out; on NAB it found fewer anomalies than the point
 * distance (docs/scoring.md).
 *
 * The period is found per series from its history: the highest peak of the
 * autocorrelation after it first drops to zero or below, if that peak reaches
 * min_acf; a series without one has no seasonal term.
 */
#ifndef PRESHIFT_SEASONAL_H
#define PRESHIFT_SEASONAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct ps_seasonal_config {
    uint32_t min_period; /* shortest period looked for (>= 2) */
    uint32_t max_period; /* longest; memory per series is cycles * period + 1 floats */
    uint32_t cycles;     /* same-phase values compared with (1 ..) */
    float min_acf;       /* autocorrelation a period must reach, (0, 1] */
    float rate;          /* weight of a new distance in its EW average, (0, 1] */
    float floor;         /* least healthy scale of the distance */
} ps_seasonal_config;

ps_seasonal_config ps_seasonal_default_config(void);

/*
 * The period of the n values x[0], x[stride], ..., or 0 when there is none
 * (at most n / 2: two full cycles are needed to see one). acf, if not NULL,
 * gets the autocorrelation at that period (0 when none).
 */
uint32_t ps_seasonal_detect(const float *x, size_t n, size_t stride, const ps_seasonal_config *cfg,
                            float *acf);

typedef struct ps_seasonal ps_seasonal;

/* Memory for `series` series, none with a period yet; NULL on a bad
 * configuration or memory. */
ps_seasonal *ps_seasonal_create(size_t series, const ps_seasonal_config *cfg);
void ps_seasonal_free(ps_seasonal *s);

/*
 * Find the period of series id from its history (n values at stride) and
 * keep the last cycles * period values. dist, if not NULL, gets the n values
 * ps_seasonal_step would have returned over the history (0 for the rows
 * before the first cycle is in and for every row of a series without period). 0, PS_EINVAL
 * (id out of range) or PS_ENOMEM; a series without period is not an error.
 */
int ps_seasonal_set_from_history(ps_seasonal *s, size_t id, const float *x, size_t n, size_t stride,
                                 float *dist);

/* The sustained distance (a z, see above) after the new value z of series
 * id, which is then kept; 0 for a series without period. */
float ps_seasonal_step(ps_seasonal *s, size_t id, float z);

uint32_t ps_seasonal_period(const ps_seasonal *s, size_t id);

/* Forget series id: no period, no memory (an evicted processor). */
void ps_seasonal_reset(ps_seasonal *s, size_t id);

/*
 * The state of series id as little-endian bytes (docs/state-file.md): its
 * period, then for a series with one the ring's length, head and fill, the
 * healthy scales and EW average, and the values written so far. Export
 * returns 0, or PS_EINVAL for an id out of range or len < the size.
 */
size_t ps_seasonal_state_size(const ps_seasonal *s, size_t id);
int ps_seasonal_state_export(const ps_seasonal *s, size_t id, uint8_t *buf, size_t len);
/*
 * Check a snapshot against this memory's configuration without changing
 * anything: period within [min_period, max_period], ring length cycles *
 * period + 1, head and fill consistent, scales >= floor, every number
 * finite, no byte left over. 0 or PS_EINVAL with the reason in err.
 */
int ps_seasonal_state_check(const ps_seasonal *s, const uint8_t *buf, size_t len, char *err,
                            size_t errlen);
/* Check, then replace series id's state; PS_EINVAL or PS_ENOMEM leave it unchanged. */
int ps_seasonal_state_import(ps_seasonal *s, size_t id, const uint8_t *buf, size_t len, char *err,
                             size_t errlen);

#endif
