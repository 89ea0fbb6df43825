/*
 * calibration.c - Platt and isotonic calibration of scores into
 * probabilities, and the reliability table (calibration.h).
 *
 * Platt works on standardized scores, z = (s - mean) / sd, and converts the
 * coefficients back at the end: Newton's method then sees a Hessian of order
 * 1 whatever the scale of the scores, and the starting point of Lin, Lin &
 * Weng (a = 0, b = the log prior odds) is a good one. The targets are
 * Platt's (N+ + 1)/(N+ + 2) and 1/(N- + 2) rather than 1 and 0, which keeps
 * the optimum finite even when the scores separate the labels perfectly,
 * as they often will with a handful of incidents.
 *
 * Isotonic pools equal scores first, so the fit does not depend on the order
 * in which tied points arrive, keeps integer sums of labels per block so
 * every level is an exactly rounded fraction (levels stay monotone after
 * rounding), and meets the breakpoint cap by merging adjacent levels, which
 * keeps the result an isotonic fit in its own right (each level is still
 * the observed frequency of its points) instead of thinning a curve.
 * Between levels it interpolates linearly rather than stepping: at the
 * fitted scores it equals the PAVA solution, and between them it does not
 * jump at an arbitrary point of a gap where there was no data.
 */
#include "calibration.h"
#include "error.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Platt's Newton iterations: Lin, Lin & Weng's limits, gradient relative to n. */
enum { PLATT_MAX_ITER = 100 };
static const double platt_min_step = 1e-10;
static const double platt_grad_tol = 1e-9;  /* converged: |gradient| <= this * n */
static const double platt_grad_ok = 1e-6;   /* still accepted when the line search stalls */
static const double log_loss_floor = 1e-15; /* probabilities kept this far from 0 and 1 */

static const char *nonfinite_name(double v)
{
    if (isnan(v)) return "nan";
    return v > 0 ? "inf" : "-inf";
}

/* ---- checking ---- */

int ps_calibration_check(const ps_calibration *c, char *err, size_t errlen)
{
    const int E = PS_EINVAL;
    if (err && errlen) err[0] = '\0';
    if (!c) return ps_fail(err, errlen, E, "no calibration");
    switch (c->kind) {
    case PS_CALIB_NONE:
        return PS_OK;
    case PS_CALIB_PLATT:
        if (!isfinite(c->a))
            return ps_fail(err, errlen, E, "Platt coefficient a is not finite (%s)",
                           nonfinite_name(c->a));
        if (!isfinite(c->b))
            return ps_fail(err, errlen, E, "Platt coefficient b is not finite (%s)",
                           nonfinite_name(c->b));
        if (c->a > 0)
            return ps_fail(
                err, errlen, E,
                "Platt coefficient a = %g is positive (a higher score would mean a lower "
                "probability)",
                c->a);
        break;
    case PS_CALIB_ISOTONIC: {
        uint32_t n = c->count;
        if (n < 1 || n > PS_CALIB_MAX_BREAKPOINTS)
            return ps_fail(err, errlen, E,
                           "isotonic calibration has %lu breakpoints, 1..%d allowed",
                           (unsigned long)n, PS_CALIB_MAX_BREAKPOINTS);
        for (uint32_t i = 0; i < n; i++) {
            double s = c->score[i], p = c->prob[i];
            if (!isfinite(s))
                return ps_fail(err, errlen, E,
                               "calibration breakpoint %lu: score is not finite (%s)",
                               (unsigned long)i, nonfinite_name(s));
            if (!isfinite(p))
                return ps_fail(err, errlen, E,
                               "calibration breakpoint %lu: probability is not finite (%s)",
                               (unsigned long)i, nonfinite_name(p));
            if (p < 0 || p > 1)
                return ps_fail(err, errlen, E,
                               "calibration breakpoint %lu: probability %g is outside [0, 1]",
                               (unsigned long)i, p);
            if (i > 0 && !(s > c->score[i - 1]))
                return ps_fail(err, errlen, E,
                               "calibration breakpoint %lu: score %g is not above the previous "
                               "one's %g",
                               (unsigned long)i, s, c->score[i - 1]);
            if (i > 0 && p < c->prob[i - 1])
                return ps_fail(err, errlen, E,
                               "calibration breakpoint %lu: probability %g is below the previous "
                               "one's %g",
                               (unsigned long)i, p, c->prob[i - 1]);
        }
        /* interpolation divides by score differences; they must not overflow */
        if (!isfinite(c->score[n - 1] - c->score[0]))
            return ps_fail(err, errlen, E,
                           "calibration breakpoints span a range too wide for a double (%g to %g)",
                           c->score[0], c->score[n - 1]);
        break;
    }
    default:
        return ps_fail(err, errlen, E, "unknown calibration kind %d", (int)c->kind);
    }
    if (c->positives > c->samples)
        return ps_fail(err, errlen, E, "calibration counts %llu positives among %llu samples",
                       (unsigned long long)c->positives, (unsigned long long)c->samples);
    return PS_OK;
}

/* ---- applying ---- */

static double apply_isotonic(const ps_calibration *c, double s)
{
    size_t n = c->count < PS_CALIB_MAX_BREAKPOINTS ? c->count : PS_CALIB_MAX_BREAKPOINTS;
    if (n == 0) return NAN;
    if (!(s > c->score[0])) return c->prob[0];
    if (s >= c->score[n - 1]) return c->prob[n - 1];
    size_t lo = 0, hi = n - 1; /* score[lo] <= s < score[hi] throughout */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->score[mid] <= s)
            lo = mid;
        else
            hi = mid;
    }
    double p0 = c->prob[lo], p1 = c->prob[hi];
    double t = (s - c->score[lo]) / (c->score[hi] - c->score[lo]);
    double p = p0 + t * (p1 - p0);
    /* rounding could step just past an end of the segment and break monotonicity there */
    if (p < p0) p = p0;
    if (p > p1) p = p1;
    return p;
}

double ps_calibration_apply(const ps_calibration *c, double score)
{
    if (!c || isnan(score)) return NAN;
    double p;
    switch (c->kind) {
    case PS_CALIB_PLATT: {
        double a = c->a < 0 ? c->a : 0.0;
        double f = a == 0 ? c->b : a * score + c->b;
        /* each step is monotone under rounding, and exp overflowing gives 0, the limit */
        p = 1.0 / (1.0 + exp(f));
        break;
    }
    case PS_CALIB_ISOTONIC:
        p = apply_isotonic(c, score);
        break;
    default:
        return NAN;
    }
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    return p;
}

/* ---- input ---- */

typedef struct pairs_stats {
    size_t positives;
    double lo, hi; /* smallest and largest score */
} pairs_stats;

static int check_pairs(const double *score, const uint8_t *label, size_t n, pairs_stats *st,
                       char *err, size_t errlen)
{
    if (n && (!score || !label)) return ps_fail(err, errlen, PS_EINVAL, "no scores or labels");
    if (n < PS_CALIB_MIN_POINTS)
        return ps_fail(err, errlen, PS_CALIB_ESHORT, "%zu labelled point(s), at least %d needed", n,
                       PS_CALIB_MIN_POINTS);
    size_t pos = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(score[i]))
            return ps_fail(err, errlen, PS_CALIB_EDATA, "score %zu is not finite (%s)", i,
                           nonfinite_name(score[i]));
        if (label[i] > 1)
            return ps_fail(err, errlen, PS_CALIB_EDATA, "label %zu is %u (must be 0 or 1)", i,
                           (unsigned)label[i]);
        pos += label[i];
        if (score[i] < lo) lo = score[i];
        if (score[i] > hi) hi = score[i];
    }
    if (pos == 0)
        return ps_fail(err, errlen, PS_CALIB_ENOPOS,
                       "no label is 1 among %zu points: a calibration needs failures to learn from",
                       n);
    if (pos == n)
        return ps_fail(err, errlen, PS_CALIB_ENONEG,
                       "all %zu labels are 1: a calibration needs healthy points to learn from", n);
    if (lo == hi)
        return ps_fail(err, errlen, PS_CALIB_ESHORT,
                       "all %zu scores are equal (%g): at least 2 distinct scores needed", n, lo);
    if (!isfinite(hi - lo))
        return ps_fail(err, errlen, PS_CALIB_EDATA,
                       "scores span a range too wide for a double (%g to %g)", lo, hi);
    st->positives = pos;
    st->lo = lo;
    st->hi = hi;
    return PS_OK;
}

static double mean_log_loss(const ps_calibration *c, const double *score, const uint8_t *label,
                            size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double p = ps_calibration_apply(c, score[i]);
        if (p < log_loss_floor) p = log_loss_floor;
        if (p > 1 - log_loss_floor) p = 1 - log_loss_floor;
        sum -= label[i] ? log(p) : log1p(-p);
    }
    return sum / (double)n;
}

static void begin(ps_calibration *c, ps_calibration_fit_info *info, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (c) memset(c, 0, sizeof *c);
    if (info) memset(info, 0, sizeof *info);
}

/* ---- Platt ---- */

/* The log-loss of targets t under f = a z + b, in a form that never overflows. */
static double platt_loss(const double *z, const uint8_t *label, size_t n, double a, double b,
                         double t1, double t0)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double f = a * z[i] + b, t = label[i] ? t1 : t0;
        if (f >= 0)
            sum += t * f + log1p(exp(-f));
        else
            sum += (t - 1) * f + log1p(exp(f));
    }
    return sum;
}

/* Gradient g and Hessian (h11, h21, h22) of platt_loss in (a, b). */
static void platt_derivatives(const double *z, const uint8_t *label, size_t n, double a, double b,
                              double t1, double t0, double g[2], double h[3])
{
    g[0] = g[1] = h[0] = h[1] = h[2] = 0;
    for (size_t i = 0; i < n; i++) {
        double f = a * z[i] + b, t = label[i] ? t1 : t0, p, q;
        /* p = 1 / (1 + exp(f)), q = 1 - p, each without cancellation */
        if (f >= 0) {
            double e = exp(-f);
            p = e / (1 + e);
            q = 1 / (1 + e);
        } else {
            double e = exp(f);
            p = 1 / (1 + e);
            q = e / (1 + e);
        }
        double d1 = t - p, d2 = p * q;
        g[0] += z[i] * d1;
        g[1] += d1;
        h[0] += z[i] * z[i] * d2;
        h[1] += z[i] * d2;
        h[2] += d2;
    }
}

int ps_calibration_fit_platt(ps_calibration *c, const double *score, const uint8_t *label, size_t n,
                             ps_calibration_fit_info *info, char *err, size_t errlen)
{
    begin(c, info, err, errlen);
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no calibration to fit");
    pairs_stats st;
    int rc = check_pairs(score, label, n, &st, err, errlen);
    if (rc) return rc;
    size_t npos = st.positives, nneg = n - npos;

    /* u in [-1/2, 1/2] first, so that neither the mean nor the spread can overflow */
    double mid = st.lo / 2 + st.hi / 2, range = st.hi - st.lo;
    double *z = malloc(n * sizeof *z);
    if (!z) return ps_fail(err, errlen, PS_ENOMEM, "out of memory for %zu scores", n);
    double mu = 0, var = 0;
    for (size_t i = 0; i < n; i++) {
        z[i] = (score[i] - mid) / range;
        mu += z[i];
    }
    mu /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += (z[i] - mu) * (z[i] - mu);
    double sd = sqrt(var / (double)n);
    for (size_t i = 0; i < n; i++)
        z[i] = (z[i] - mu) / sd;

    double dn = (double)n;
    double t1 = ((double)npos + 1) / ((double)npos + 2), t0 = 1 / ((double)nneg + 2);
    double a = 0, b = log(((double)nneg + 1) / ((double)npos + 1));
    double fval = platt_loss(z, label, n, a, b, t1, t0);
    double g[2] = {0, 0}, h[3] = {0, 0, 0};
    const double sigma = 1e-12 * dn; /* keeps the Hessian invertible, as in LLW */
    int it = 0;
    for (; it < PLATT_MAX_ITER; it++) {
        platt_derivatives(z, label, n, a, b, t1, t0, g, h);
        if (fabs(g[0]) <= platt_grad_tol * dn && fabs(g[1]) <= platt_grad_tol * dn) break;
        double h11 = h[0] + sigma, h21 = h[1], h22 = h[2] + sigma;
        double det = h11 * h22 - h21 * h21;
        double da = -(h22 * g[0] - h21 * g[1]) / det;
        double db = -(-h21 * g[0] + h11 * g[1]) / det;
        double gd = g[0] * da + g[1] * db;
        double step = 1;
        while (step >= platt_min_step) {
            double na = a + step * da, nb = b + step * db;
            double nf = platt_loss(z, label, n, na, nb, t1, t0);
            if (nf < fval + 1e-4 * step * gd) {
                a = na;
                b = nb;
                fval = nf;
                break;
            }
            step /= 2;
        }
        /* no descent left at this precision: judged below by the gradient */
        if (step < platt_min_step) break;
    }
    platt_derivatives(z, label, n, a, b, t1, t0, g, h);
    free(z);
    if (!(fabs(g[0]) <= platt_grad_ok * dn && fabs(g[1]) <= platt_grad_ok * dn))
        return ps_fail(err, errlen, PS_CALIB_EFIT,
                       "Platt fit did not converge after %d Newton steps (gradient %g, %g)", it,
                       g[0], g[1]);

    /* back to raw scores: z = (s - mid) / (range sd) - mu / sd */
    double k = a / sd / range;
    double shift = mu / sd + mid / sd / range;
    double ra = k, rb = b - a * shift;
    if (!isfinite(ra) || !isfinite(rb))
        return ps_fail(err, errlen, PS_CALIB_EFIT,
                       "Platt coefficients overflow on the raw scores (range %g to %g)", st.lo,
                       st.hi);
    int constrained = 0;
    if (ra >= 0) {
        /* the constrained optimum of a convex loss lies on the boundary a = 0, where the best b
         * gives every score the mean target */
        double tbar = ((double)npos * t1 + (double)nneg * t0) / dn;
        ra = 0;
        rb = log((1 - tbar) / tbar);
        constrained = 1;
    }
    c->kind = PS_CALIB_PLATT;
    c->a = ra;
    c->b = rb;
    c->samples = n;
    c->positives = npos;
    if (info) {
        info->points = n;
        info->positives = npos;
        info->iterations = it;
        info->constrained = constrained;
        if (!constrained) {
            /* the inverse Hessian at the optimum, carried through the change of variables */
            double det = h[0] * h[2] - h[1] * h[1];
            double va = h[2] / det, vb = h[0] / det, cab = -h[1] / det;
            info->se_a = sqrt(va) / sd / range;
            info->se_b = sqrt(fmax(0, vb + shift * shift * va - 2 * shift * cab));
        }
        info->log_loss = mean_log_loss(c, score, label, n);
    }
    return PS_OK;
}

/* ---- PAVA ---- */

/*
 * Pools the points (weighted sum ysum[i] of values, weight w[i]) into blocks
 * of non-decreasing level sum[k] / wt[k], starting at index first[k];
 * returns the block count. Sums rather than means are pooled so that labels
 * stay exact integer counts. Equal neighbours are pooled too: it changes no
 * fitted value and leaves fewer breakpoints. The stack is kept strictly
 * increasing, so one pass suffices.
 */
static size_t pava_blocks(const double *ysum, const double *w, size_t n, double *sum, double *wt,
                          size_t *first)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double ww = w[i], s = ysum[i];
        size_t f = i;
        while (k > 0 && sum[k - 1] / wt[k - 1] >= s / ww) {
            k--;
            s += sum[k];
            ww += wt[k];
            f = first[k];
        }
        sum[k] = s;
        wt[k] = ww;
        first[k] = f;
        k++;
    }
    return k;
}

int ps_pava(const double *y, const double *w, size_t n, double *out)
{
    if (n == 0) return PS_OK;
    if (!y || !out) return PS_EINVAL;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double ww = w ? w[i] : 1.0;
        if (!isfinite(y[i]) || !isfinite(ww) || !(ww > 0)) return PS_EINVAL;
        total += ww * fabs(y[i]) + ww;
    }
    if (!isfinite(total)) return PS_EINVAL; /* block sums could overflow */
    double *ys = malloc(n * sizeof *ys), *ws = malloc(n * sizeof *ws);
    double *sum = malloc(n * sizeof *sum), *wt = malloc(n * sizeof *wt);
    size_t *first = malloc(n * sizeof *first);
    int rc = PS_ENOMEM;
    if (ys && ws && sum && wt && first) {
        for (size_t i = 0; i < n; i++) {
            ws[i] = w ? w[i] : 1.0;
            ys[i] = ws[i] * y[i];
        }
        size_t k = pava_blocks(ys, ws, n, sum, wt, first);
        for (size_t b = 0; b < k; b++) {
            size_t end = b + 1 < k ? first[b + 1] : n;
            double v = sum[b] / wt[b];
            for (size_t i = first[b]; i < end; i++)
                out[i] = v;
        }
        rc = PS_OK;
    }
    free(ys);
    free(ws);
    free(sum);
    free(wt);
    free(first);
    return rc;
}

/* ---- isotonic ---- */

typedef struct scored {
    double s;
    uint8_t y;
} scored;

static int scored_cmp(const void *pa, const void *pb)
{
    double a = ((const scored *)pa)->s, b = ((const scored *)pb)->s;
    return (a > b) - (a < b);
}

/* A candidate merge of adjacent levels, valid while neither has changed since. */
typedef struct merge {
    double cost; /* increase of the weighted squared error */
    size_t left, right;
    size_t vleft, vright;
} merge;

static int merge_before(const merge *x, const merge *y)
{
    if (x->cost != y->cost) return x->cost < y->cost;
    return x->left < y->left; /* ties broken by position: the same input, the same result */
}

static void heap_push(merge *h, size_t *n, merge m)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_before(&m, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = m;
}

static merge heap_pop(merge *h, size_t *n)
{
    merge top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const merge *best = &last;
        if (l < *n && merge_before(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && merge_before(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0) h[i] = last;
    return top;
}

/* Levels of the isotonic fit, as a list that merging shortens. */
typedef struct levels {
    double *lo, *hi;  /* score range of each level */
    double *sum, *wt; /* labels and points in it */
    size_t *next, *prev, *version;
    unsigned char *alive;
    merge *heap;
    size_t heap_n;
} levels;

static double merge_cost(const levels *L, size_t i, size_t j)
{
    double vi = L->sum[i] / L->wt[i], vj = L->sum[j] / L->wt[j];
    return L->wt[i] * L->wt[j] / (L->wt[i] + L->wt[j]) * (vi - vj) * (vi - vj);
}

static void push_pair(levels *L, size_t i, size_t j)
{
    merge m = {merge_cost(L, i, j), i, j, L->version[i], L->version[j]};
    heap_push(L->heap, &L->heap_n, m);
}

static size_t level_breakpoints(const levels *L, size_t i)
{
    return L->hi[i] > L->lo[i] ? 2 : 1;
}

/* Merges adjacent levels, cheapest first, until at most cap breakpoints remain. */
static size_t merge_to_cap(levels *L, size_t k, size_t cap)
{
    size_t bp = 0, kept = k;
    for (size_t i = 0; i < k; i++)
        bp += level_breakpoints(L, i);
    for (size_t i = 0; i + 1 < k; i++)
        push_pair(L, i, i + 1);
    while (bp > cap && L->heap_n > 0) {
        merge m = heap_pop(L->heap, &L->heap_n);
        size_t i = m.left, j = m.right;
        if (!L->alive[i] || !L->alive[j] || L->version[i] != m.vleft || L->version[j] != m.vright)
            continue;
        bp -= level_breakpoints(L, i) + level_breakpoints(L, j);
        L->hi[i] = L->hi[j];
        L->sum[i] += L->sum[j];
        L->wt[i] += L->wt[j];
        L->version[i]++;
        L->alive[j] = 0;
        L->next[i] = L->next[j];
        if (L->next[i] < k) L->prev[L->next[i]] = i;
        bp += level_breakpoints(L, i);
        kept--;
        if (L->prev[i] < k) push_pair(L, L->prev[i], i);
        if (L->next[i] < k) push_pair(L, i, L->next[i]);
    }
    return kept;
}

static void free_levels(levels *L)
{
    free(L->lo);
    free(L->hi);
    free(L->sum);
    free(L->wt);
    free(L->next);
    free(L->prev);
    free(L->version);
    free(L->alive);
    free(L->heap);
}

static int alloc_levels(levels *L, size_t k)
{
    memset(L, 0, sizeof *L);
    L->lo = malloc(k * sizeof *L->lo);
    L->hi = malloc(k * sizeof *L->hi);
    L->sum = malloc(k * sizeof *L->sum);
    L->wt = malloc(k * sizeof *L->wt);
    L->next = malloc(k * sizeof *L->next);
    L->prev = malloc(k * sizeof *L->prev);
    L->version = calloc(k, sizeof *L->version);
    L->alive = malloc(k);
    /* k - 1 pairs at first, at most two more per merge, fewer than k merges */
    L->heap = malloc(3 * k * sizeof *L->heap);
    if (!L->lo || !L->hi || !L->sum || !L->wt || !L->next || !L->prev || !L->version || !L->alive ||
        !L->heap) {
        free_levels(L);
        memset(L, 0, sizeof *L);
        return PS_ENOMEM;
    }
    return PS_OK;
}

int ps_calibration_fit_isotonic(ps_calibration *c, const double *score, const uint8_t *label,
                                size_t n, size_t max_breakpoints, ps_calibration_fit_info *info,
                                char *err, size_t errlen)
{
    begin(c, info, err, errlen);
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no calibration to fit");
    if (max_breakpoints == 0) max_breakpoints = PS_CALIB_MAX_BREAKPOINTS;
    if (max_breakpoints < 2 || max_breakpoints > PS_CALIB_MAX_BREAKPOINTS)
        return ps_fail(err, errlen, PS_EINVAL, "breakpoint cap %zu out of range 2..%d",
                       max_breakpoints, PS_CALIB_MAX_BREAKPOINTS);
    pairs_stats st;
    int rc = check_pairs(score, label, n, &st, err, errlen);
    if (rc) return rc;

    scored *sv = malloc(n * sizeof *sv);
    double *gs = malloc(n * sizeof *gs), *gy = malloc(n * sizeof *gy), *gw = malloc(n * sizeof *gw);
    double *bsum = malloc(n * sizeof *bsum), *bwt = malloc(n * sizeof *bwt);
    size_t *bfirst = malloc(n * sizeof *bfirst);
    levels L = {0};
    rc = PS_ENOMEM;
    if (!sv || !gs || !gy || !gw || !bsum || !bwt || !bfirst) goto out;
    for (size_t i = 0; i < n; i++) {
        sv[i].s = score[i];
        sv[i].y = label[i];
    }
    qsort(sv, n, sizeof *sv, scored_cmp);

    /* pool ties: one point per distinct score, weighted by how many there are */
    size_t g = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double pos = 0;
        while (j < n && sv[j].s == sv[i].s)
            pos += sv[j++].y;
        gs[g] = sv[i].s;
        gw[g] = (double)(j - i);
        gy[g] = pos; /* a count: the sums PAVA pools are exact */
        g++;
        i = j;
    }
    size_t k = pava_blocks(gy, gw, g, bsum, bwt, bfirst);
    if (alloc_levels(&L, k)) goto out;
    for (size_t b = 0; b < k; b++) {
        size_t end = b + 1 < k ? bfirst[b + 1] : g;
        L.lo[b] = gs[bfirst[b]];
        L.hi[b] = gs[end - 1];
        L.sum[b] = bsum[b];
        L.wt[b] = bwt[b];
        L.next[b] = b + 1; /* k = none */
        L.prev[b] = b == 0 ? k : b - 1;
        L.alive[b] = 1;
        bsum[b] /= bwt[b]; /* the level before merging, for max_shift */
    }
    size_t kept = merge_to_cap(&L, k, max_breakpoints);

    uint32_t nb = 0;
    double shift = 0;
    for (size_t b = 0; b < k; b = L.next[b]) {
        double v = L.sum[b] / L.wt[b];
        for (size_t o = b; o < L.next[b]; o++)
            shift = fmax(shift, fabs(v - bsum[o]));
        c->score[nb] = L.lo[b];
        c->prob[nb++] = v;
        if (L.hi[b] > L.lo[b]) {
            c->score[nb] = L.hi[b];
            c->prob[nb++] = v;
        }
    }
    c->kind = PS_CALIB_ISOTONIC;
    c->count = nb;
    c->samples = n;
    c->positives = st.positives;
    if (info) {
        info->points = n;
        info->positives = st.positives;
        info->distinct = g;
        info->levels = k;
        info->levels_kept = kept;
        info->max_shift = shift;
        info->log_loss = mean_log_loss(c, score, label, n);
    }
    rc = PS_OK;
out:
    if (rc == PS_ENOMEM) {
        memset(c, 0, sizeof *c);
        ps_fail(err, errlen, rc, "out of memory for %zu points", n);
    }
    free(sv);
    free(gs);
    free(gy);
    free(gw);
    free(bsum);
    free(bwt);
    free(bfirst);
    free_levels(&L);
    return rc;
}

/* ---- reliability ---- */

int ps_reliability(const double *prob, const uint8_t *label, size_t n, ps_reliability_bin *bins,
                   size_t nbins, ps_reliability_summary *sum, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (sum) memset(sum, 0, sizeof *sum);
    if (!prob || !label || !bins)
        return ps_fail(err, errlen, PS_EINVAL, "no probabilities, labels or bins");
    if (n == 0) return ps_fail(err, errlen, PS_EINVAL, "no points");
    if (nbins == 0) return ps_fail(err, errlen, PS_EINVAL, "no bins");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(prob[i]) || prob[i] < 0 || prob[i] > 1)
            return ps_fail(err, errlen, PS_CALIB_EDATA, "probability %zu is %g (must be in [0, 1])",
                           i, prob[i]);
        if (label[i] > 1)
            return ps_fail(err, errlen, PS_CALIB_EDATA, "label %zu is %u (must be 0 or 1)", i,
                           (unsigned)label[i]);
    }
    double db = (double)nbins;
    for (size_t k = 0; k < nbins; k++) {
        bins[k].lo = (double)k / db;
        bins[k].hi = (double)(k + 1) / db;
        bins[k].count = bins[k].positives = 0;
        bins[k].predicted = bins[k].observed = 0;
    }
    double brier = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        double p = prob[i], x = p * db;
        size_t k = x >= db ? nbins - 1 : (size_t)x; /* p = 1 belongs to the last bin */
        bins[k].count++;
        bins[k].positives += label[i];
        bins[k].predicted += p;
        pos += label[i];
        brier += (p - label[i]) * (p - label[i]);
    }
    double ece = 0;
    for (size_t k = 0; k < nbins; k++) {
        if (bins[k].count == 0) continue;
        double cnt = (double)bins[k].count;
        bins[k].predicted /= cnt;
        bins[k].observed = (double)bins[k].positives / cnt;
        ece += cnt * fabs(bins[k].predicted - bins[k].observed);
    }
    if (sum) {
        double r = (double)pos / (double)n;
        sum->points = n;
        sum->positives = pos;
        sum->brier = brier / (double)n;
        sum->brier_reference = r * (1 - r);
        sum->ece = ece / (double)n;
    }
    return PS_OK;
}

const char *ps_calibration_strerror(int code)
{
    switch (code) {
    case PS_OK:
        return "success";
    case PS_EINVAL:
        return "invalid argument or calibration";
    case PS_ENOMEM:
        return "out of memory";
    case PS_CALIB_ESHORT:
        return "too few labelled points or distinct scores";
    case PS_CALIB_ENOPOS:
        return "no positive labels (failures)";
    case PS_CALIB_ENONEG:
        return "no negative labels (healthy points)";
    case PS_CALIB_EDATA:
        return "a score, probability or label is invalid";
    case PS_CALIB_EFIT:
        return "the Platt fit did not converge";
    default:
        return "unknown error";
    }
}
