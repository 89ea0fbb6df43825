/*
 * baseline.h - the healthy profile of every processor: a robust location and
 * scale per metric, and the interval its heartbeats are expected at.
 *
 * One object holds P processors x K metrics in flat arrays carved from one
 * allocation, so thousands of processors cost one malloc, and the state of a
 * processor is a fixed number of plain values (no pointers) that
 * ps_baseline_export() writes as doubles for a snapshot.
 *
 * The location and scale are those of core/robust.h - median and scaled MAD
 * with its floor - computed over the first `warmup` ticks a processor sends
 * (or over a supplied history), because the trained model saw its inputs
 * normalized exactly that way. After that the baseline may follow slow
 * drift by small robust steps, but only on ticks the caller says were
 * stable: a tick flagged unstable changes nothing, so an incident never
 * becomes the new normal. See docs/baseline.md.
 *
 * A tick goes: ps_baseline_lateness() and ps_baseline_normalize() (read
 * only) -> score -> ps_baseline_observe() with the verdict (learns).
 *
 * Metric values that are not finite count as missing: they are skipped by
 * the warm-up statistics and by drift, and normalize to NaN.
 */
#ifndef PRESHIFT_BASELINE_H
#define PRESHIFT_BASELINE_H

#include <stddef.h>
#include <stdint.h>

/* Failures of baseline functions beyond the PS_E* codes of kernels.h. */
enum {
    PS_BASELINE_ENOTREADY = -30, /* the processor is still warming up */
    PS_BASELINE_EDATA = -31,     /* a snapshot holds values no baseline can have */
};

/* Intervals kept per processor for the median of recent heartbeat intervals. */
#define PS_BASELINE_HB_RING 16
/* Lateness never exceeds this (an interval learned as tiny cannot overflow it). */
#define PS_BASELINE_LATENESS_MAX 1e9

/* What ps_baseline_lateness() found for a timestamp (bits of flags[i]). */
enum {
    PS_HB_FIRST = 1u << 0,     /* no earlier heartbeat: nothing to be late against */
    PS_HB_BACKWARDS = 1u << 1, /* earlier than the previous one (clock reset?) */
    PS_HB_REPEAT = 1u << 2,    /* equal to the previous one (duplicate delivery?) */
    PS_HB_INVALID = 1u << 3,   /* not a finite number */
    PS_HB_DEFAULT = 1u << 4,   /* the expected interval is not learned yet (default or guess) */
    PS_HB_UNKNOWN = 1u << 5,   /* no expected interval at all: lateness 0 */
    PS_HB_RESTART = 1u << 6,   /* after more than hb_restart_intervals: a restart, lateness 0 */
};

typedef struct ps_baseline_config {
    /* Ticks collected per processor before its baseline is set; 0 = never
     * (processors become ready only through ps_baseline_set_from_history). */
    uint32_t warmup;
    /* Drift following after warm-up: per stable tick the location moves at
     * most drift_rate * scale towards the value, and the scale estimators
     * move by a fraction drift_rate. 0 = frozen; at most 0.5. */
    float drift_rate;
    /* A deviation counts at most drift_clip * scale in the mean-absolute-
     * deviation estimator of the scale (> 0). */
    float drift_clip;
    /* Heartbeat interval assumed until hb_min_intervals are learned
     * (caller's time unit); 0 = none: use whatever intervals were seen. */
    double hb_default_interval;
    /* Stable intervals seen before the learned median replaces the default;
     * 1..PS_BASELINE_HB_RING. */
    uint32_t hb_min_intervals;
    /* A heartbeat more than this many expected intervals after the previous
     * one comes from a processor that stopped and started again (it was
     * down, and whoever watches heartbeats has seen it fail): its lateness
     * says nothing of what comes next, so it is 0, and the gap is not
     * learned as an interval. 0 = off (every gap is lateness). */
    double hb_restart_intervals;
} ps_baseline_config;

/* warmup 288, drift_rate 0.005, drift_clip 6, no default interval, 3 intervals, restart
   after 10 intervals. */
ps_baseline_config ps_baseline_default_config(void);

typedef struct ps_baseline ps_baseline;

/* NULL on failure with the reason in err (config out of range, too large, no memory).
 * cfg may be NULL for the defaults. */
ps_baseline *ps_baseline_create(size_t processors, size_t metrics, const ps_baseline_config *cfg,
                                char *err, size_t errlen);
void ps_baseline_free(ps_baseline *b);
size_t ps_baseline_processors(const ps_baseline *b);
size_t ps_baseline_metrics(const ps_baseline *b);
ps_baseline_config ps_baseline_get_config(const ps_baseline *b);

/* 1 if proc has its baseline, 0 if it is warming up or out of range. */
int ps_baseline_ready(const ps_baseline *b, uint32_t proc);
/* Ticks collected so far by a warming processor (warmup once ready). */
uint32_t ps_baseline_warm_count(const ps_baseline *b, uint32_t proc);

/* Copy proc's K locations and scales (either pointer may be NULL). 0, PS_EINVAL or
 * PS_BASELINE_ENOTREADY. */
int ps_baseline_get(const ps_baseline *b, uint32_t proc, float *loc, float *scale);

/*
 * Set proc's baseline from rows x K values (row-major, oldest first) as if
 * they had been its warm-up: the same statistics, bit for bit, for any
 * number of rows > 0. t, if not NULL, holds the rows' timestamps: their
 * last PS_BASELINE_HB_RING increasing intervals seed the expected interval
 * (the last heartbeat time itself is not taken: a history is old). A
 * warming processor stops warming. 0, PS_EINVAL or PS_ENOMEM.
 */
int ps_baseline_set_from_history(ps_baseline *b, uint32_t proc, size_t rows, const float *x,
                                 const double *t);

/*
 * z = (x - loc) / scale for n processors (x, z: n x K row-major; may be the
 * same array). Rows of processors still warming are set to 0 (the level a
 * model reads as "at baseline"). Returns how many rows were not ready
 * (>= 0), or PS_EINVAL (processor out of range, null pointer) before
 * writing anything.
 */
int ps_baseline_normalize(const ps_baseline *b, size_t n, const uint32_t *procs, const float *x,
                          float *z);
/* x = loc + z * scale: a normalized forecast back in the metrics' units. Not-ready rows are
 * set to NaN (there is no unit to return to). Returns as ps_baseline_normalize. */
int ps_baseline_denormalize(const ps_baseline *b, size_t n, const uint32_t *procs, const float *z,
                            float *x);
/* out = r / scale: residuals in the metrics' units (ARIMA's) in normalized units.
 * Not-ready rows are set to 0. Returns as ps_baseline_normalize. */
int ps_baseline_scale_residuals(const ps_baseline *b, size_t n, const uint32_t *procs,
                                const float *r, float *out);

/*
 * Lateness of a heartbeat at t[i] for processor procs[i]:
 *     max(0, (t - previous) / expected - 1)
 * 0 when on time or early, 1 when a whole interval late, 0 again past
 * hb_restart_intervals (a restart: PS_HB_RESTART). expected is the
 * median of the last stable intervals once hb_min_intervals are seen, else
 * the configured default, else the median of the fewer seen; with none,
 * lateness is 0. flags (may be NULL) get PS_HB_* bits; a first, repeated,
 * backwards or invalid timestamp has lateness 0 and its bit set. Reads
 * only. 0 or PS_EINVAL.
 */
int ps_baseline_lateness(const ps_baseline *b, size_t n, const uint32_t *procs, const double *t,
                         float *lateness, uint32_t *flags);
/* The interval proc's heartbeats are expected at now (0 if none); *learned (may be NULL)
 * is 1 when it is the median of at least hb_min_intervals learned intervals. */
double ps_baseline_expected_interval(const ps_baseline *b, uint32_t proc, int *learned);

/*
 * Learn from one tick of n distinct processors: values x (n x K) and
 * heartbeat times t (n; NULL when the caller has none), with the verdict
 * stable[i] (nonzero = stable). For an unstable tick only the previous
 * heartbeat time and the clock-fault counts move (so the next lateness is
 * measured from this heartbeat); nothing is learned, warming included. For a stable tick a warming
 * processor stores the values (its W-th tick sets the baseline and makes it ready), a ready one
 * follows drift if drift_rate > 0, and the interval since the previous heartbeat joins the median
 * (unless it was the first, a repeat, backwards or invalid: those only count in
 * ps_baseline_clock_faults; a backwards time becomes the new previous one, a repeat is ignored).
 * Refused without any change (PS_EINVAL) if a processor is out of range or
 * repeated, or a pointer other than t is NULL. Returns how many processors
 * became ready in this tick (>= 0).
 */
int ps_baseline_observe(ps_baseline *b, size_t n, const uint32_t *procs, const float *x,
                        const double *t, const uint8_t *stable);

/* Backwards and repeated heartbeat times proc has sent (either may be NULL). */
void ps_baseline_clock_faults(const ps_baseline *b, uint32_t proc, uint64_t *backwards,
                              uint64_t *repeats);

/* Forget n processors (a new one takes the slot): back to warm-up, no heartbeat history. */
int ps_baseline_reset(ps_baseline *b, size_t n, const uint32_t *procs);

/*
 * Snapshot of one processor as ps_baseline_state_len() doubles (every stored
 * value is a float, a count below 2^53 or a timestamp, so doubles hold it
 * exactly). The layout, for a reader that needs it:
 *   [0] ready (0/1)   [1] warm count   [2] has previous heartbeat (0/1)
 *   [3] previous heartbeat time   [4] intervals learned   [5] ring head
 *   [6] backwards   [7] repeats
 *   then loc[K], scale[K], mad[K], meanad[K], intervals[PS_BASELINE_HB_RING],
 *   then the warm-up buffer, warmup x K (rows past the warm count, and all
 *   rows once ready, are 0).
 * Import checks every value (PS_BASELINE_EDATA, nothing changed, if one is
 * impossible), so a corrupt snapshot cannot make the baseline divide by zero.
 */
size_t ps_baseline_state_len(const ps_baseline *b);
int ps_baseline_export(const ps_baseline *b, uint32_t proc, double *state);
int ps_baseline_import(ps_baseline *b, uint32_t proc, const double *state);

#endif
