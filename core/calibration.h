/*
 * calibration.h - the monotone map from an instability score to a
 * probability of failure, fitted on labelled incidents, and the reliability
 * table that says how well a set of probabilities is calibrated.
 *
 * A calibration is a plain value (no pointers, fixed size) so that it can
 * sit inside ps_model, be copied with =, and be written to and read from the
 * model file's PFPC section without any allocation; that is why the
 * isotonic form has a fixed cap on its breakpoints. The all-zero value is
 * "no calibration". Two forms, chosen by the user:
 *
 *  - Platt (1999): p = 1 / (1 + exp(a*s + b)), two numbers, smooth, right
 *    when the log-odds of failure are roughly linear in the score. It is
 *    fitted by Newton's method on the log-loss with Platt's smoothed targets,
 *    in the numerically stable form of Lin, Lin & Weng (2007), and
 *    constrained to a <= 0 so that a higher score never means a lower
 *    probability.
 *  - Isotonic (Zadrozny & Elkan 2002; Niculescu-Mizil & Caruana 2005): the
 *    pool-adjacent-violators fit, any monotone shape, needs more incidents.
 *
 * docs/calibration.md says when to use which and what the figures mean.
 */
#ifndef PRESHIFT_CALIBRATION_H
#define PRESHIFT_CALIBRATION_H

#include <stddef.h>
#include <stdint.h>

/* The most breakpoints an isotonic calibration holds (4 KiB in a model file). */
#define PS_CALIB_MAX_BREAKPOINTS 256
/* Fewer scored points than this, or fewer distinct scores than 2, cannot be fitted. */
#define PS_CALIB_MIN_POINTS 2

/* Failures of the fitting functions beyond kernels.h's PS_EINVAL and PS_ENOMEM. */
enum {
    PS_CALIB_ESHORT = -40, /* fewer than PS_CALIB_MIN_POINTS points or distinct scores */
    PS_CALIB_ENOPOS = -41, /* no label is 1: nothing to learn failures from */
    PS_CALIB_ENONEG = -42, /* no label is 0: nothing to learn health from */
    PS_CALIB_EDATA = -43,  /* a score or probability is not finite, or a label not 0 or 1 */
    PS_CALIB_EFIT = -44,   /* the Platt fit did not converge or overflowed */
};

typedef enum ps_calibration_kind {
    PS_CALIB_NONE = 0,
    PS_CALIB_PLATT = 1,
    PS_CALIB_ISOTONIC = 2,
} ps_calibration_kind;

typedef struct ps_calibration {
    ps_calibration_kind kind;
    /* Platt: p = 1 / (1 + exp(a*s + b)), a <= 0. Zero for the other kinds. */
    double a, b;
    /*
     * Isotonic: count breakpoints (score[i], prob[i]), scores strictly
     * increasing, probabilities non-decreasing in [0, 1]; linear between
     * them, constant beyond the first and the last. Zero for the other kinds.
     */
    uint32_t count;
    double score[PS_CALIB_MAX_BREAKPOINTS];
    double prob[PS_CALIB_MAX_BREAKPOINTS];
    /* What it was fitted on; informational, kept so a model file says so. */
    uint64_t samples;
    uint64_t positives;
} ps_calibration;

/* What a fit did, for the command to report; every fit fills it if not NULL. */
typedef struct ps_calibration_fit_info {
    size_t points;    /* pairs fitted */
    size_t positives; /* of which labelled 1 */
    size_t distinct;  /* distinct scores */
    /* Platt */
    int iterations;  /* Newton steps */
    int constrained; /* 1: the scores ranked failures no higher than health, a held at 0 */
    double se_a;     /* asymptotic standard errors of a and b (0 when constrained) */
    double se_b;
    /* isotonic */
    size_t levels;      /* PAVA levels (blocks) before the breakpoint cap */
    size_t levels_kept; /* levels after merging to fit the cap */
    double max_shift;   /* largest change of a fitted value the merging caused */
    /* both: mean log-loss of the labels under the result (probabilities kept off 0 and 1 by
     * 1e-15 so one confident miss does not make it infinite) */
    double log_loss;
} ps_calibration_fit_info;

/*
 * Fit a Platt calibration to n pairs (score[i], label[i]), label 0 or 1.
 * 0 on success (c then holds it), otherwise PS_EINVAL (null pointer),
 * PS_CALIB_ESHORT, PS_CALIB_ENOPOS, PS_CALIB_ENONEG, PS_CALIB_EDATA,
 * PS_CALIB_EFIT or PS_ENOMEM, c zeroed, and err (if not NULL) says why.
 * info may be NULL.
 */
int ps_calibration_fit_platt(ps_calibration *c, const double *score, const uint8_t *label, size_t n,
                             ps_calibration_fit_info *info, char *err, size_t errlen);

/*
 * Fit an isotonic calibration: pairs with equal scores are pooled into one
 * point weighted by their count, PAVA gives the monotone least-squares fit,
 * and adjacent levels are then merged (the pair whose merging adds least to
 * the squared error first) until at most max_breakpoints remain; 0 means
 * PS_CALIB_MAX_BREAKPOINTS, otherwise 2..PS_CALIB_MAX_BREAKPOINTS. Returns
 * and errors as ps_calibration_fit_platt, apart from PS_CALIB_EFIT.
 */
int ps_calibration_fit_isotonic(ps_calibration *c, const double *score, const uint8_t *label,
                                size_t n, size_t max_breakpoints, ps_calibration_fit_info *info,
                                char *err, size_t errlen);

/*
 * The probability for a score, in [0, 1] and non-decreasing in the score
 * for any calibration that ps_calibration_check accepts (Platt uses
 * min(a, 0), so even a hand-made positive a cannot invert it). NaN for
 * PS_CALIB_NONE and for a NaN score; +-infinity gives the limits.
 */
double ps_calibration_apply(const ps_calibration *c, double score);

/*
 * 0 if c is usable and can go into a model file: a known kind; Platt a and
 * b finite with a <= 0; isotonic 1..PS_CALIB_MAX_BREAKPOINTS breakpoints,
 * scores finite, strictly increasing and spanning a finite range,
 * probabilities in [0, 1] and non-decreasing; positives <= samples.
 * Otherwise PS_EINVAL and err (if not NULL) says what is wrong. PS_CALIB_NONE
 * is always accepted, whatever the other fields hold.
 */
int ps_calibration_check(const ps_calibration *c, char *err, size_t errlen);

/*
 * The weighted least-squares non-decreasing fit of y[0..n-1] (pool adjacent
 * violators): out[i] for each y[i]. w may be NULL (all weights 1), else each
 * w[i] finite and > 0. out may alias y. 0, PS_EINVAL (null pointer, a
 * non-finite y or a bad weight) or PS_ENOMEM.
 */
int ps_pava(const double *y, const double *w, size_t n, double *out);

typedef struct ps_reliability_bin {
    double lo, hi;    /* predicted probabilities p with lo <= p < hi (the last bin: <= 1) */
    size_t count;     /* points in the bin */
    size_t positives; /* of which labelled 1 */
    double predicted; /* mean predicted probability; 0 when count is 0 */
    double observed;  /* positives / count; 0 when count is 0 */
} ps_reliability_bin;

typedef struct ps_reliability_summary {
    size_t points, positives;
    double brier;           /* mean (p - label)^2 */
    double brier_reference; /* the same for always predicting the base rate: r(1 - r) */
    double ece;             /* expected calibration error: sum of count/n |predicted - observed| */
} ps_reliability_summary;

/*
 * The reliability table of n predicted probabilities prob[i] against
 * labels label[i]: nbins equal-width bins over [0, 1] (bin floor(p*nbins),
 * p = 1 in the last), and the Brier score. sum may be NULL. 0, PS_EINVAL
 * (null pointer, n = 0 or nbins = 0) or PS_CALIB_EDATA (a probability
 * outside [0, 1] or not finite, a label not 0 or 1), with err (if not NULL).
 */
int ps_reliability(const double *prob, const uint8_t *label, size_t n, ps_reliability_bin *bins,
                   size_t nbins, ps_reliability_summary *sum, char *err, size_t errlen);

/* A short description of the codes above (and of PS_OK, PS_EINVAL, PS_ENOMEM). */
const char *ps_calibration_strerror(int code);

#endif
