/*
 * residual_cov.h - the healthy covariance of each processor's normalized
 * residual vector, for the Mahalanobis term of the Instability Score.
 *
 * A residual that breaks the metrics' usual co-movement (CPU up while
 * requests fall) is more alarming than one of the same size that follows
 * it; r' S^-1 r measures exactly that. Per processor, not shared: which
 * metrics move together depends on what a processor runs, and K = 19 costs
 * about 4.6 KB of state per processor (three packed triangles of doubles),
 * so thousands of processors fit in tens of megabytes and one allocation.
 *
 * S is the second moment of the residuals about zero (a forecaster's bias is
 * part of how large its residuals usually are), learned from stable ticks
 * only, as a plain mean over the first vectors and an exponentially
 * weighted one after. It is shrunk toward its diagonal with the intensity
 * of Schafer and Strimmer's "target D" (Ledoit-Wolf for that target), never
 * less than shrink_min, and every variance is floored at var_floor. Those
 * two bounds are the numerical safety: the correlation matrix that is
 * inverted has every eigenvalue >= shrink_min, so a constant, quantized or
 * duplicated metric can never make it singular. The matrix is kept as its
 * Cholesky factor; if factoring still fails, the diagonal is used.
 * See docs/baseline.md.
 */
#ifndef PRESHIFT_RESIDUAL_COV_H
#define PRESHIFT_RESIDUAL_COV_H

#include <stddef.h>
#include <stdint.h>

/* The widest residual vector (keeps scratch on the stack; 256 x 256 per processor is
 * already more state than a scoring server should hold). */
#define PS_RESCOV_MAX_METRICS 256

typedef struct ps_rescov_config {
    /* Stable vectors learned before a processor's covariance is first used (>= 1). */
    uint32_t min_samples;
    /* Weight of a new vector once 1/n falls below it (exponential forgetting
     * with an effective memory of about 2 / rate vectors); 0 = plain mean forever. */
    float rate;
    /* Shrinkage toward the diagonal in [0, 1]; negative = estimated from the data. */
    float shrink;
    /* Least shrinkage, in (0, 1]: the smallest eigenvalue of the correlation used. */
    float shrink_min;
    /* Least variance of a normalized residual (> 0). */
    float var_floor;
    /* Learned vectors between refactorizations once ready (>= 1). */
    uint32_t refactor_every;
} ps_rescov_config;

/* min_samples 128, rate 1/2048, shrink estimated, shrink_min 0.001, var_floor 0.01,
 * refactor every 16. */
ps_rescov_config ps_rescov_default_config(void);

typedef struct ps_rescov ps_rescov;

/* NULL on failure with the reason in err; cfg may be NULL for the defaults. */
ps_rescov *ps_rescov_create(size_t processors, size_t metrics, const ps_rescov_config *cfg,
                            char *err, size_t errlen);
void ps_rescov_free(ps_rescov *c);
size_t ps_rescov_metrics(const ps_rescov *c);

typedef struct ps_rescov_info {
    int ready;        /* the learned covariance is in use (else the identity) */
    int diagonal;     /* factoring failed and the diagonal is in use */
    double samples;   /* stable vectors learned */
    double shrinkage; /* intensity in use; NaN before ready */
} ps_rescov_info;

int ps_rescov_info_get(const ps_rescov *c, uint32_t proc, ps_rescov_info *info);
int ps_rescov_ready(const ps_rescov *c, uint32_t proc);

/*
 * Learn from one tick: r holds n normalized residual vectors (n x K), and
 * only rows with stable[i] nonzero and every component finite are learned.
 * Refused without any change (PS_EINVAL) if a processor is out of range or
 * repeated, or a pointer is NULL. Returns how many processors became ready.
 */
int ps_rescov_update(ps_rescov *c, size_t n, const uint32_t *procs, const float *r,
                     const uint8_t *stable);

/*
 * Replace proc's covariance by the one learned from rows x K residuals
 * (rows with a non-finite component are skipped) and factor it at once:
 * ready whatever min_samples says, since the shrinkage accounts for a short
 * history. PS_EINVAL if no row is usable.
 */
int ps_rescov_set_from_history(ps_rescov *c, uint32_t proc, size_t rows, const float *r);

/*
 * d2 = r' S^-1 r for proc's residual vector r (K floats); the identity
 * stands in for S before the processor is ready, so d2 is then |r|^2.
 * contrib (K floats, may be NULL) gets r_i (S^-1 r)_i: they sum to d2, and
 * the largest names the metric that contributes most (a component can be
 * negative when its residual is explained by a correlated one). 0, or
 * PS_EINVAL (with *d2 = NaN and contrib NaN) for a bad argument or a
 * non-finite residual.
 */
int ps_rescov_mahalanobis(const ps_rescov *c, uint32_t proc, const float *r, double *d2,
                          float *contrib);

/* The covariance in use (shrunk, floored; K x K row-major): L L'. */
int ps_rescov_get(const ps_rescov *c, uint32_t proc, double *cov);

/* Forget n processors: nothing learned, identity in use. */
int ps_rescov_reset(ps_rescov *c, size_t n, const uint32_t *procs);

/*
 * Snapshot of one processor as ps_rescov_state_len() doubles: [0] ready,
 * [1] samples, [2] sum of squared weights, [3] vectors since the last
 * factorization, [4] shrinkage in use, [5] diagonal fallback, then the
 * packed lower triangles (row by row, T = K(K+1)/2 each) of the mean of
 * r_i r_j, the mean of (r_i r_j)^2 and the Cholesky factor. Import checks
 * every value (PS_EINVAL, nothing changed, when one is impossible: a factor
 * with a diagonal that is not positive, a weight outside (0, 1], ...), so a
 * corrupt snapshot cannot make the distance divide by zero.
 */
size_t ps_rescov_state_len(const ps_rescov *c);
int ps_rescov_export(const ps_rescov *c, uint32_t proc, double *state);
int ps_rescov_import(ps_rescov *c, uint32_t proc, const double *state);

#endif
