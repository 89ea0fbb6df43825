/*
 * residual_cov.c - per-processor residual second moments, shrinkage and a
 * Cholesky factor (see residual_cov.h and docs/baseline.md).
 *
 * A processor's state is one row of doubles in one allocation: a few
 * scalars and three packed lower triangles (the moments and the factor),
 * so a snapshot is a copy of the row. Moments are running means updated in
 * place (x += eta (w - x)) rather than sums, so nothing grows without bound
 * under exponential forgetting and a restore cannot overflow them.
 *
 * The shrinkage intensity needs the variance of each moment estimate;
 * keeping the mean of (r_i r_j)^2 beside the mean of r_i r_j gives it in
 * one pass, and the sum of squared weights turns it into the variance of a
 * weighted mean, so the same formula serves the plain and the forgetting
 * phase.
 */
#include "residual_cov.h"
#include "kernels/kernels.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Residual components beyond this are not learned: a "stable" tick with one is a caller's
 * bug, and it keeps fourth powers far from overflow. */
#define LEARN_LIMIT 1e6
#define HEAD 6
#define MAX_SAMPLES 9007199254740992.0 /* 2^53: counts stay exact in a double */

enum { H_READY, H_SAMPLES, H_SUMSQ, H_SINCE, H_SHRINK, H_DIAG };

struct ps_rescov {
    size_t procs, metrics, tri, stride;
    ps_rescov_config cfg;
    double *state; /* procs x stride */
    uint8_t *mark; /* procs: scratch for the duplicate check */
};

ps_rescov_config ps_rescov_default_config(void)
{
    ps_rescov_config c;
    c.min_samples = 128;
    c.rate = 1.0f / 2048.0f;
    c.shrink = -1.0f;
    c.shrink_min = 0.001f;
    c.var_floor = 0.01f;
    c.refactor_every = 16;
    return c;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* Packed lower triangle, row by row: element (i, j), j <= i. */
static size_t tri_at(size_t i, size_t j)
{
    return i * (i + 1) / 2 + j;
}

static double *m1_of(const ps_rescov *c, size_t p)
{
    return c->state + p * c->stride + HEAD;
}

static double *m2_of(const ps_rescov *c, size_t p)
{
    return m1_of(c, p) + c->tri;
}

static double *chol_of(const ps_rescov *c, size_t p)
{
    return m1_of(c, p) + 2 * c->tri;
}

static void clear_proc(ps_rescov *c, size_t p)
{
    double *s = c->state + p * c->stride;
    memset(s, 0, c->stride * sizeof *s);
    s[H_SHRINK] = NAN;
    double *l = chol_of(c, p);
    for (size_t i = 0; i < c->metrics; i++)
        l[tri_at(i, i)] = 1.0;
}

ps_rescov *ps_rescov_create(size_t processors, size_t metrics, const ps_rescov_config *cfg,
                            char *err, size_t errlen)
{
    ps_rescov_config k = cfg ? *cfg : ps_rescov_default_config();
    if (processors == 0 || metrics == 0 || metrics > PS_RESCOV_MAX_METRICS) {
        set_err(err, errlen, "need at least one processor and 1..PS_RESCOV_MAX_METRICS metrics");
        return NULL;
    }
    if ((uint64_t)processors > (uint64_t)UINT32_MAX + 1) {
        set_err(err, errlen, "processor slots are 32-bit");
        return NULL;
    }
    if (k.min_samples < 1 || k.refactor_every < 1) {
        set_err(err, errlen, "min_samples and refactor_every must be >= 1");
        return NULL;
    }
    if (!(k.rate >= 0.0f && k.rate <= 1.0f)) {
        set_err(err, errlen, "rate must be in [0, 1]");
        return NULL;
    }
    if (!(k.shrink <= 1.0f) || !(k.shrink_min > 0.0f && k.shrink_min <= 1.0f)) {
        set_err(err, errlen, "shrink must be <= 1 and shrink_min in (0, 1]");
        return NULL;
    }
    if (!(k.var_floor >= 1e-12f && k.var_floor <= 1e12f)) {
        set_err(err, errlen, "var_floor must be in [1e-12, 1e12]");
        return NULL;
    }
    size_t tri = metrics * (metrics + 1) / 2, stride = HEAD + 3 * tri;
    if (processors > SIZE_MAX / sizeof(double) / stride) {
        set_err(err, errlen, "processors x metrics is too large");
        return NULL;
    }
    ps_rescov *c = calloc(1, sizeof *c);
    double *state = malloc(processors * stride * sizeof *state);
    uint8_t *mark = calloc(processors, 1);
    if (!c || !state || !mark) {
        free(c);
        free(state);
        free(mark);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    c->procs = processors;
    c->metrics = metrics;
    c->tri = tri;
    c->stride = stride;
    c->cfg = k;
    c->state = state;
    c->mark = mark;
    for (size_t p = 0; p < processors; p++)
        clear_proc(c, p);
    return c;
}

void ps_rescov_free(ps_rescov *c)
{
    if (!c) return;
    free(c->state);
    free(c->mark);
    free(c);
}

size_t ps_rescov_metrics(const ps_rescov *c)
{
    return c ? c->metrics : 0;
}

int ps_rescov_info_get(const ps_rescov *c, uint32_t proc, ps_rescov_info *info)
{
    if (!c || proc >= c->procs || !info) return PS_EINVAL;
    const double *s = c->state + (size_t)proc * c->stride;
    info->ready = s[H_READY] != 0;
    info->diagonal = s[H_DIAG] != 0;
    info->samples = s[H_SAMPLES];
    info->shrinkage = s[H_SHRINK];
    return PS_OK;
}

int ps_rescov_ready(const ps_rescov *c, uint32_t proc)
{
    return c && proc < c->procs && c->state[(size_t)proc * c->stride + H_READY] != 0;
}

/* ---- learning ---- */

static int learnable(const float *r, size_t K)
{
    for (size_t i = 0; i < K; i++)
        if (!(fabsf(r[i]) <= (float)LEARN_LIMIT)) return 0;
    return 1;
}

static void learn(ps_rescov *c, size_t p, const float *r)
{
    double *s = c->state + p * c->stride, *m1 = m1_of(c, p), *m2 = m2_of(c, p);
    double n = s[H_SAMPLES] + 1.0;
    double eta = 1.0 / n;
    if (eta < c->cfg.rate) eta = c->cfg.rate;
    for (size_t i = 0; i < c->metrics; i++) {
        double ri = r[i];
        for (size_t j = 0; j <= i; j++) {
            size_t t = tri_at(i, j);
            double w = ri * r[j];
            m1[t] += eta * (w - m1[t]);
            m2[t] += eta * (w * w - m2[t]);
        }
    }
    /* The weights of a running mean: each old one shrinks by (1 - eta), the new one is eta. */
    s[H_SUMSQ] = (1.0 - eta) * (1.0 - eta) * s[H_SUMSQ] + eta * eta;
    if (n <= MAX_SAMPLES) s[H_SAMPLES] = n;
    s[H_SINCE] += 1.0;
}

/*
 * Shrinkage intensity of Schafer & Strimmer's target D: the summed variance
 * of the off-diagonal estimates over their summed squares. With the weights
 * of a running mean, the variance of one estimate is q/(1-q) times the
 * spread of the products (q = sum of squared weights; 1/n for a plain mean,
 * where it is the usual unbiased n/(n-1) correction divided by n).
 */
static double estimate_shrinkage(const ps_rescov *c, size_t p)
{
    const double *s = c->state + p * c->stride, *m1 = m1_of(c, p), *m2 = m2_of(c, p);
    double q = s[H_SUMSQ];
    if (!(q < 1.0)) return 1.0;
    double num = 0.0, den = 0.0;
    for (size_t i = 1; i < c->metrics; i++)
        for (size_t j = 0; j < i; j++) {
            size_t t = tri_at(i, j);
            double spread = m2[t] - m1[t] * m1[t];
            if (spread > 0) num += spread;
            den += m1[t] * m1[t];
        }
    num *= q / (1.0 - q);
    if (!(den > 0)) return 1.0;
    double lambda = num / den;
    return lambda < 1.0 ? lambda : 1.0;
}

/*
 * Build the shrunk, floored covariance in the factor's place and factor it.
 * The diagonal is floored first and the off-diagonal scaled by (1 - lambda):
 * since |m1_ij| <= sqrt(m1_ii m1_jj), the correlation matrix of the result
 * is (1 - lambda) R' + (a diagonal >= lambda) with R' positive semidefinite,
 * so its eigenvalues are >= lambda >= shrink_min and Cholesky succeeds in
 * exact arithmetic; the diagonal fallback is for rounding pathologies only.
 */
static void factor(ps_rescov *c, size_t p)
{
    size_t K = c->metrics;
    double *s = c->state + p * c->stride, *m1 = m1_of(c, p), *l = chol_of(c, p);
    double lambda = c->cfg.shrink >= 0 ? c->cfg.shrink : estimate_shrinkage(c, p);
    if (lambda < c->cfg.shrink_min) lambda = c->cfg.shrink_min;
    double fl = c->cfg.var_floor;
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j <= i; j++) {
            size_t t = tri_at(i, j);
            if (i == j)
                l[t] = m1[t] > fl ? m1[t] : fl;
            else
                l[t] = (1.0 - lambda) * m1[t];
        }
    int ok = 1;
    for (size_t j = 0; j < K && ok; j++) {
        double *lj = l + tri_at(j, 0);
        double d = lj[j];
        for (size_t k = 0; k < j; k++)
            d -= lj[k] * lj[k];
        if (!(d > 0 && isfinite(d))) {
            ok = 0;
            break;
        }
        lj[j] = sqrt(d);
        for (size_t i = j + 1; i < K; i++) {
            double *li = l + tri_at(i, 0);
            double v = li[j];
            for (size_t k = 0; k < j; k++)
                v -= li[k] * lj[k];
            li[j] = v / lj[j];
        }
    }
    if (!ok) {
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j <= i; j++) {
                size_t t = tri_at(i, j);
                l[t] = i == j ? sqrt(m1[t] > fl ? m1[t] : fl) : 0.0;
            }
    }
    s[H_DIAG] = ok ? 0.0 : 1.0;
    s[H_SHRINK] = lambda;
    s[H_SINCE] = 0.0;
    s[H_READY] = 1.0;
}

/* 1 if every processor is in range and none repeats. Leaves mark clear. */
static int distinct_in_range(ps_rescov *c, size_t n, const uint32_t *procs)
{
    size_t i;
    int ok = 1;
    for (i = 0; i < n; i++) {
        if (procs[i] >= c->procs || c->mark[procs[i]]) {
            ok = 0;
            break;
        }
        c->mark[procs[i]] = 1;
    }
    for (size_t j = 0; j < i; j++)
        c->mark[procs[j]] = 0;
    return ok;
}

int ps_rescov_update(ps_rescov *c, size_t n, const uint32_t *procs, const float *r,
                     const uint8_t *stable)
{
    if (!c || (n && (!procs || !r || !stable))) return PS_EINVAL;
    if (!distinct_in_range(c, n, procs)) return PS_EINVAL;
    size_t K = c->metrics;
    int became = 0;
    for (size_t i = 0; i < n; i++) {
        const float *row = r + i * K;
        size_t p = procs[i];
        if (!stable[i] || !learnable(row, K)) continue;
        learn(c, p, row);
        double *s = c->state + p * c->stride;
        if (s[H_READY] != 0) {
            if (s[H_SINCE] >= c->cfg.refactor_every) factor(c, p);
        } else if (s[H_SAMPLES] >= c->cfg.min_samples) {
            factor(c, p);
            if (became < INT_MAX) became++;
        }
    }
    return became;
}

int ps_rescov_set_from_history(ps_rescov *c, uint32_t proc, size_t rows, const float *r)
{
    if (!c || proc >= c->procs || (rows && !r)) return PS_EINVAL;
    size_t K = c->metrics, used = 0;
    for (size_t i = 0; i < rows; i++)
        used += (size_t)learnable(r + i * K, K);
    if (used == 0) return PS_EINVAL;
    clear_proc(c, proc);
    for (size_t i = 0; i < rows; i++)
        if (learnable(r + i * K, K)) learn(c, proc, r + i * K);
    factor(c, proc);
    return PS_OK;
}

int ps_rescov_reset(ps_rescov *c, size_t n, const uint32_t *procs)
{
    if (!c || (n && !procs)) return PS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (procs[i] >= c->procs) return PS_EINVAL;
    for (size_t i = 0; i < n; i++)
        clear_proc(c, procs[i]);
    return PS_OK;
}

/* ---- scoring ---- */

static float to_float(double v)
{
    if (v > FLT_MAX) return INFINITY;
    if (v < -FLT_MAX) return -INFINITY;
    return (float)v;
}

int ps_rescov_mahalanobis(const ps_rescov *c, uint32_t proc, const float *r, double *d2,
                          float *contrib)
{
    if (d2) *d2 = NAN;
    int bad = !c || proc >= c->procs || !r || !d2;
    size_t K = bad ? 0 : c->metrics;
    for (size_t i = 0; i < K && !bad; i++)
        bad = !isfinite(r[i]);
    if (bad) {
        if (contrib && c)
            for (size_t i = 0; i < c->metrics; i++)
                contrib[i] = NAN;
        return PS_EINVAL;
    }
    const double *s = c->state + (size_t)proc * c->stride;
    double sum = 0.0;
    if (s[H_READY] == 0) {
        for (size_t i = 0; i < K; i++) {
            double v = (double)r[i] * r[i];
            sum += v;
            if (contrib) contrib[i] = to_float(v);
        }
        *d2 = sum;
        return PS_OK;
    }
    const double *l = chol_of(c, proc);
    double y[PS_RESCOV_MAX_METRICS];
    /* L y = r, so |y|^2 = r' (L L')^-1 r. */
    for (size_t i = 0; i < K; i++) {
        const double *li = l + tri_at(i, 0);
        double v = r[i];
        for (size_t k = 0; k < i; k++)
            v -= li[k] * y[k];
        y[i] = v / li[i];
        sum += y[i] * y[i];
    }
    *d2 = sum;
    if (contrib) {
        /* L' u = y gives u = S^-1 r; r_i u_i splits d2 by metric. y is overwritten by u. */
        for (size_t i = K; i-- > 0;) {
            double v = y[i];
            for (size_t k = i + 1; k < K; k++)
                v -= l[tri_at(k, i)] * y[k];
            y[i] = v / l[tri_at(i, i)];
        }
        for (size_t i = 0; i < K; i++)
            contrib[i] = to_float((double)r[i] * y[i]);
    }
    return PS_OK;
}

int ps_rescov_get(const ps_rescov *c, uint32_t proc, double *cov)
{
    if (!c || proc >= c->procs || !cov) return PS_EINVAL;
    size_t K = c->metrics;
    const double *l = chol_of(c, proc);
    int ready = c->state[(size_t)proc * c->stride + H_READY] != 0;
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j <= i; j++) {
            double v = 0.0;
            if (ready)
                for (size_t k = 0; k <= j; k++)
                    v += l[tri_at(i, k)] * l[tri_at(j, k)];
            else
                v = i == j;
            cov[i * K + j] = v;
            cov[j * K + i] = v;
        }
    return PS_OK;
}

/* ---- snapshots ---- */

size_t ps_rescov_state_len(const ps_rescov *c)
{
    return c ? c->stride : 0;
}

int ps_rescov_export(const ps_rescov *c, uint32_t proc, double *state)
{
    if (!c || proc >= c->procs || !state) return PS_EINVAL;
    memcpy(state, c->state + (size_t)proc * c->stride, c->stride * sizeof *state);
    return PS_OK;
}

static int is_count(double v, double max)
{
    return v >= 0 && v <= max && v == floor(v);
}

int ps_rescov_import(ps_rescov *c, uint32_t proc, const double *state)
{
    if (!c || proc >= c->procs || !state) return PS_EINVAL;
    const double *s = state;
    size_t K = c->metrics, T = c->tri;
    int ready = s[H_READY] == 1.0;
    if (!(ready || s[H_READY] == 0.0) || !is_count(s[H_SAMPLES], MAX_SAMPLES) ||
        !is_count(s[H_SINCE], MAX_SAMPLES) || !(s[H_DIAG] == 0.0 || s[H_DIAG] == 1.0))
        return PS_EINVAL;
    /* The weights of a mean of n >= 1 values have squares summing to within (0, 1]. */
    if (s[H_SAMPLES] > 0 ? !(s[H_SUMSQ] > 0 && s[H_SUMSQ] <= 1.0) : s[H_SUMSQ] != 0.0)
        return PS_EINVAL;
    if (ready ? !(s[H_SHRINK] >= 0 && s[H_SHRINK] <= 1.0) : !isnan(s[H_SHRINK])) return PS_EINVAL;
    if (ready && s[H_SAMPLES] < 1) return PS_EINVAL;
    const double *m1 = s + HEAD, *m2 = m1 + T, *l = m2 + T;
    double lim = LEARN_LIMIT * LEARN_LIMIT;
    double min_pivot = ready ? sqrt((double)c->cfg.shrink_min * c->cfg.var_floor) : 0.0;
    for (size_t i = 0; i < K; i++)
        for (size_t j = 0; j <= i; j++) {
            size_t t = tri_at(i, j);
            if (!(fabs(m1[t]) <= lim) || !(m2[t] >= 0 && m2[t] <= lim * lim)) return PS_EINVAL;
            if (i == j && !(m1[t] >= 0)) return PS_EINVAL;
            /* Every pivot is at least sqrt(shrink_min * var_floor) (the smallest eigenvalue
             * of the matrix factored); half that leaves room for rounding. */
            if (!isfinite(l[t]) || (i == j && !(l[t] >= 0.5 * min_pivot))) return PS_EINVAL;
        }
    memcpy(c->state + (size_t)proc * c->stride, state, c->stride * sizeof *state);
    return PS_OK;
}
