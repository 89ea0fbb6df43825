/*
 * evt.h - extreme value theory for the PFP: a generalized Pareto tail fitted
 * above a high threshold of a processor's own healthy scores (peaks over
 * threshold, as in SPOT: Siffer et al., KDD 2017, "Anomaly Detection in
 * Streams with Extreme Value Theory"), and the monotone map from a score's
 * tail probability to a PFP. docs/pfp.md says what a PFP means.
 *
 * Why EVT: a PFP must mean the same on every processor, whatever the scale
 * and shape of its score. Only the tail of the healthy score distribution
 * matters for alarms, and the Pickands-Balkema-de Haan theorem says that
 * above a high threshold t the excesses of almost any distribution are
 * close to a generalized Pareto distribution (GPD):
 *
 *     P(S - t > y | S > t) = (1 + xi y / sigma)^(-1/xi)    (exp(-y/sigma) at xi = 0)
 *
 * so two numbers fitted per processor extrapolate its tail beyond what its
 * history has seen, where an empirical quantile would have no data.
 *
 * Why a bounded state: there is one model per processor, thousands of them,
 * snapshotted to disk, so nothing grows with time. A model keeps the last
 * `window` healthy scores (for the body of the distribution, below t), the
 * last `max_excess` excesses over t (for the GPD fit) and two all-time
 * counters (for P(S > t)); capacities are fixed at init. The threshold t is
 * fixed at init, as in SPOT: drift of the scores' level is the baseline's
 * job upstream; to move t, initialize a new model from a fresh batch.
 *
 * Everything here is deterministic, allocates only in ps_evt_init (and
 * whatever the C library's qsort does), and returns 0 or a negative PS_E*
 * code of kernels.h.
 */
#ifndef PRESHIFT_EVT_H
#define PRESHIFT_EVT_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdint.h>

/* ---- the generalized Pareto fit ------------------------------------------ */

/* What the fit had to do (bits of ps_evt_gpd.flags). */
enum {
    PS_EVT_GPD_DEGENERATE = 1u << 0,  /* no positive excess: xi = 0, sigma = the floor */
    PS_EVT_GPD_EXPONENTIAL = 1u << 1, /* too few for the MLE (or xi pinned to 0): exponential */
    PS_EVT_GPD_XI_AT_MIN = 1u << 2,   /* the likelihood's maximum is at xi_min */
    PS_EVT_GPD_XI_AT_MAX = 1u << 3,   /* ... or at xi_max */
    PS_EVT_GPD_SIGMA_FLOOR = 1u << 4, /* sigma was raised to sigma_floor */
};

typedef struct ps_evt_gpd {
    double xi;      /* shape; 0 = exponential tail, < 0 = bounded at sigma / -xi */
    double sigma;   /* scale, > 0 */
    double loglik;  /* log-likelihood at (xi, sigma); 0 for a degenerate fit */
    size_t n;       /* excesses the fit saw */
    unsigned flags; /* PS_EVT_GPD_* */
} ps_evt_gpd;

typedef struct ps_evt_gpd_options {
    /*
     * The shape is searched in [xi_min, xi_max], with -0.9 <= xi_min <= 0 <=
     * xi_max <= 10 (so the exponential is always a candidate). The MLE is
     * regular only for xi > -1/2 and the likelihood is unbounded below -1.
     */
    double xi_min, xi_max;
    size_t min_mle;     /* fewer excesses than this: exponential (mean excess) */
    double sigma_floor; /* smallest sigma returned, >= 0 */
} ps_evt_gpd_options;

/* xi in [-0.5, 2], min_mle 20, sigma_floor 0: what a NULL options pointer means. */
ps_evt_gpd_options ps_evt_gpd_default_options(void);

/*
 * Maximum-likelihood GPD fit to the excesses y[0..n-1] (each finite, >= 0).
 * 0; or PS_EINVAL (bad options, y NULL with n > 0, a negative or non-finite
 * excess), leaving *g zeroed but for sigma = 1. n = 0 or all excesses zero
 * is not an error: it gives the degenerate fit. opt may be NULL.
 */
int ps_evt_gpd_fit(const double *y, size_t n, const ps_evt_gpd_options *opt, ps_evt_gpd *g);

/* log P(Y > y) under g: 0 for y <= 0, -inf beyond a bounded tail's end. */
double ps_evt_gpd_log_survival(const ps_evt_gpd *g, double y);

/* The excess y >= 0 with log P(Y > y) = log_p (log_p <= 0; -inf gives the end). */
double ps_evt_gpd_quantile(const ps_evt_gpd *g, double log_p);

/* ---- the PFP map --------------------------------------------------------- */

/*
 * Where the PFP stops being exactly (1 - p)^h and starts to compress: above
 * 1 - PS_EVT_PFP_EXACT the remaining interval is shared out logarithmically,
 * so ever rarer scores still get distinct PFPs below 1 (docs/pfp.md).
 */
#define PS_EVT_PFP_EXACT 1e-6

/*
 * The PFP of a score whose healthy tail probability is p = exp(log_tail),
 * over a horizon of h ticks (h > 0; anything else is taken as 1):
 *
 *     r = 1 - (1 - p)^h    the chance that h healthy ticks reach the score
 *     PFP = 1 - r                               when r >= PS_EVT_PFP_EXACT
 *     PFP = 1 - E / (1 + ln(E / r)),  E = PS_EVT_PFP_EXACT,   when r < E
 *
 * Non-decreasing as log_tail decreases, continuous, in [0, 1]; 1 only for
 * log_tail = -inf (or so far out that 1 - PFP rounds away). NaN gives NaN.
 */
double ps_evt_pfp_map(double log_tail, double horizon);

/* The inverse: the log tail probability at which the PFP equals pfp (in [0, 1]). */
double ps_evt_pfp_map_inverse(double pfp, double horizon);

/* ---- the peaks-over-threshold model of one processor --------------------- */

#define PS_EVT_KNOTS 32 /* knots of the body (scores below t) */

/*
 * A bounded fitted tail (xi < 0) is followed only until its hazard rate
 * reaches this multiple of its value at t, then continues exponentially
 * with that hazard, so no finite score has probability 0 (evt.c says why).
 */
#define PS_EVT_HAZARD_CAP 10.0

typedef struct ps_evt_options {
    double level;         /* the threshold t is this empirical quantile (0.98) */
    size_t min_tail;      /* at least min(min_tail, n / 4) calibration scores above t (20) */
    uint32_t window;      /* recent healthy scores kept for the body (512) */
    uint32_t max_excess;  /* recent excesses kept for the GPD fit (256) */
    uint32_t refit_every; /* healthy updates between refreshes of the body (64) */
    double horizon;       /* ticks, for the PFP map (1) */
    /* sigma >= floor_abs + floor_rel |t| (1e-3, 1e-2: robust.h's floor) */
    double floor_abs, floor_rel;
    /*
     * xi in [0, 1], min_mle 20 (sigma_floor is set from the floors above).
     * xi >= 0 by default: with tens to hundreds of excesses a negative xi is
     * as often noise as a short tail, and a lighter tail than the truth
     * means false alarms; docs/pfp.md gives the cost, measured.
     */
    ps_evt_gpd_options gpd;
} ps_evt_options;

ps_evt_options ps_evt_default_options(void);

/*
 * One processor's model. The fields are public so that a snapshot can write
 * them: everything but `scratch` is state. Rings hold their items at
 * [0, len) with the oldest at `head` once full.
 */
typedef struct ps_evt {
    ps_evt_options opt;
    double threshold; /* t */
    ps_evt_gpd gpd;   /* of the excesses over t */
    uint64_t n_obs;   /* healthy scores learned, calibration included */
    uint64_t n_exc;   /* of which above t */

    float *window; /* opt.window recent healthy scores */
    uint32_t window_len, window_head;
    double *excess; /* opt.max_excess recent excesses over t */
    uint32_t excess_len, excess_head;
    uint32_t since_refresh; /* healthy updates since the body was refreshed */

    /*
     * The body: knot_s ascending, knot_c the survival of the scores at or
     * below t at knot_s (1 down to 0). Between knots the log of
     * P(S > s) = phi + (1 - phi) c is linear in s.
     */
    double knot_s[PS_EVT_KNOTS];
    double knot_c[PS_EVT_KNOTS];

    float *scratch; /* opt.window floats for sorting; not state */
} ps_evt;

/*
 * Initialize from a calibration batch x[0..n-1] of healthy scores
 * (non-finite values are skipped). t is the empirical `level` quantile,
 * lowered if needed so that min(min_tail, n / 4) scores lie above it (with
 * few excesses the tail fit is noise); the GPD is fitted on the excesses. 0;
 * PS_EINVAL (bad options, no finite score) or PS_ENOMEM, with a reason in
 * err (if not NULL), and *e left freeable. opt may be NULL.
 */
int ps_evt_init(ps_evt *e, const double *x, size_t n, const ps_evt_options *opt, char *err,
                size_t errlen);
void ps_evt_free(ps_evt *e);

/*
 * Learn one score (SPOT's update): counted, kept in the window, and, above
 * t, kept as an excess and the GPD refitted: from the last fit, by Newton's
 * method on the profile likelihood (two or three passes over the
 * excesses), with ps_evt_gpd_fit as the fallback and on every 32nd excess;
 * the two agree to about 1e-7 in xi and sigma. With `unstable` set nothing
 * changes at all: a tick the caller judged unstable (as SPOT, any tick above
 * the alarm level) must not teach the model what healthy looks like. 0, or
 * PS_EINVAL (NULL, or a non-finite score: ignored).
 */
int ps_evt_update(ps_evt *e, double score, int unstable);

/* P(S > t) as the model estimates it: (n_exc + 1) / (n_obs + 1), never 0. */
double ps_evt_exceed_prob(const ps_evt *e);

/*
 * log P(S > s) for a healthy score S: the body below t, the GPD above (with
 * the hazard cap when xi < 0); non-increasing in s, continuous at t, finite
 * for finite s.
 */
double ps_evt_log_tail(const ps_evt *e, double s);
double ps_evt_tail(const ps_evt *e, double s);

/* The PFP of score s: ps_evt_pfp_map(ps_evt_log_tail(e, s), opt.horizon). */
double ps_evt_pfp(const ps_evt *e, double s);

/*
 * The risk level z_q: the smallest score whose tail probability is at most
 * q (SPOT's alarm threshold). q >= 1 gives the smallest body score, q <= 0
 * +inf. The _log form takes log q, for levels below the smallest double.
 */
double ps_evt_risk_level(const ps_evt *e, double q);
double ps_evt_risk_level_log(const ps_evt *e, double log_q);

/* The score at which the PFP reaches pfp: an alarm threshold in score units. */
double ps_evt_pfp_threshold(const ps_evt *e, double pfp);

/* ---- snapshots ------------------------------------------------------------ */

/*
 * The state of one model as little-endian bytes (docs/state-file.md): the
 * threshold, the fit, the counters, both rings in storage order and the
 * knots; a model never initialized (or whose init failed) is one byte.
 * The options are not written: the importer passes its own, and the
 * capacities in the bytes must equal theirs.
 */
size_t ps_evt_state_size(const ps_evt *e);
/* 0, or PS_EINVAL when len < ps_evt_state_size(e). */
int ps_evt_state_export(const ps_evt *e, uint8_t *buf, size_t len);
/*
 * Replace *e by the model in buf (its old buffers are freed). Every value
 * is checked first: counts within the capacities, ring heads inside their
 * rings, finite numbers, sigma > 0, knots ordered, excesses >= 0, nothing
 * left over. PS_EINVAL with the reason in err, or PS_ENOMEM; *e is then
 * unchanged. *e must be freeable (zeroed or initialized).
 */
int ps_evt_state_import(ps_evt *e, const ps_evt_options *opt, const uint8_t *buf, size_t len,
                        char *err, size_t errlen);

#endif
