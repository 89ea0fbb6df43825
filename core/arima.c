/*
 * arima.c - ARIMA estimation (Hannan-Rissanen, then Gauss-Newton on the
 * conditional sum of squares) and the online bank over the ARMA kernel.
 *
 * Estimation standardizes the differenced window (mean 0, variance 1) so
 * that every regression sees columns of similar size, and accumulates the
 * normal equations row by row instead of building design matrices: memory
 * stays O((p+q)^2) whatever the window's length. The normal equations are
 * solved by a Cholesky factorization that leaves out a regressor whose
 * column is (numerically) a combination of the ones before it, the least-
 * squares answer over the remaining ones; that is what makes constant,
 * near-constant and perfectly periodic windows give finite models.
 *
 * Stationarity and invertibility are checked by the step-down (Schur-Cohn)
 * recursion on the polynomial's partial autocorrelations; a polynomial
 * outside the region is shrunk (coefficient k times s^k, which moves every
 * root outward by 1/s) until it is inside with a small margin. Shrinking
 * keeps the order and stays close to the estimate; Gauss-Newton then
 * re-optimizes from there without leaving the region.
 */
#include "arima.h"
#include "bytes.h"
#include "error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS (1 + 2 * PS_ARMA_MAX_ORDER)
/* Roots must lie outside these radii: strictly inside the stationary /
 * invertible region, so the online filter forgets its start. */
#define AR_MARGIN 1.001
#define MA_MARGIN 1.002
#define SHRINK 0.99
/* A regressor is left out when less than this share of its (squared)
 * norm is not explained by the ones before it. */
#define DROP_TOL 1e-10
/* Relative change of the sum of squares at which Gauss-Newton stops. */
#define REFINE_TOL 1e-10

ps_arima_options ps_arima_default_options(void)
{
    return (ps_arima_options){.refine = 10, .long_ar = 0};
}

/* ---- orders and window lengths ---------------------------------------- */

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

/* Smallest long-AR order the first stage may use. */
static size_t long_ar_min(int p, int q)
{
    return (size_t)(2 * max_int(p, q));
}

/* Shortest differenced window (M) for an ARMA(p, q). Each regression keeps
 * at least twice as many rows as unknowns plus 8; the long AR sees at
 * least four values per coefficient. */
static size_t min_diffed(int p, int q)
{
    size_t cols = (size_t)(1 + p + q);
    if (q == 0) return (size_t)p + 2 * cols + 8;
    size_t k = long_ar_min(p, q);
    size_t a = 4 * k, b = k + (size_t)q + 2 * cols + 8;
    return a > b ? a : b;
}

size_t ps_arima_min_window(int p, int d, int q)
{
    if (p < 0 || q < 0 || d < 0 || p > PS_ARMA_MAX_ORDER || q > PS_ARMA_MAX_ORDER ||
        d > PS_ARIMA_MAX_D)
        return SIZE_MAX;
    return (size_t)d + min_diffed(p, q);
}

/* Long-AR order: floor(ln(M)^2) as Gomez and Maravall suggest (statsmodels'
 * default too), within what the window can support. */
static size_t pick_long_ar(size_t m, int p, int q, int asked)
{
    size_t cols = (size_t)(1 + p + q), lo = long_ar_min(p, q);
    size_t k = asked > 0 ? (size_t)asked : (size_t)floor(log((double)m) * log((double)m));
    size_t cap1 = m / 4, cap2 = m - (size_t)q - 2 * cols - 8;
    if (k > cap1) k = cap1;
    if (k > cap2) k = cap2;
    return k < lo ? lo : k;
}

/* ---- small dense algebra ---------------------------------------------- */

/* Normal equations G beta = b of a least-squares problem, accumulated one
 * row at a time (only the lower triangle of G is kept). */
typedef struct normal_eq {
    int n;
    double g[MAX_COLS][MAX_COLS];
    double b[MAX_COLS];
} normal_eq;

static void ne_init(normal_eq *ne, int n)
{
    memset(ne, 0, sizeof *ne);
    ne->n = n;
}

static void ne_add(normal_eq *ne, const double *x, double y)
{
    for (int i = 0; i < ne->n; i++) {
        for (int j = 0; j <= i; j++)
            ne->g[i][j] += x[i] * x[j];
        ne->b[i] += x[i] * y;
    }
}

/*
 * Solve by Cholesky on the equilibrated system, leaving out (beta = 0) each
 * column whose part not explained by the earlier kept columns is below
 * DROP_TOL of its norm. Returns how many were left out.
 */
static int ne_solve(const normal_eq *ne, double *beta)
{
    int n = ne->n, dropped = 0;
    double s[MAX_COLS], l[MAX_COLS][MAX_COLS], z[MAX_COLS];
    int keep[MAX_COLS];
    for (int i = 0; i < n; i++)
        s[i] = ne->g[i][i] > 0 ? 1.0 / sqrt(ne->g[i][i]) : 0.0;
    for (int j = 0; j < n; j++) {
        double djj = s[j] > 0 ? 1.0 : 0.0;
        for (int k = 0; k < j; k++)
            djj -= l[j][k] * l[j][k];
        keep[j] = djj > DROP_TOL;
        if (!keep[j]) {
            dropped++;
            for (int i = j; i < n; i++)
                l[i][j] = 0;
            continue;
        }
        l[j][j] = sqrt(djj);
        for (int i = j + 1; i < n; i++) {
            double v = ne->g[i][j] * s[i] * s[j];
            for (int k = 0; k < j; k++)
                v -= l[i][k] * l[j][k];
            l[i][j] = v / l[j][j];
        }
    }
    for (int i = 0; i < n; i++) {
        double v = ne->b[i] * s[i];
        for (int k = 0; k < i; k++)
            v -= l[i][k] * z[k];
        z[i] = keep[i] ? v / l[i][i] : 0.0;
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = z[i];
        for (int k = i + 1; k < n; k++)
            v -= l[k][i] * beta[k];
        beta[i] = keep[i] ? v / l[i][i] : 0.0;
    }
    for (int i = 0; i < n; i++)
        beta[i] *= s[i];
    return dropped;
}

/*
 * Whether 1 - a_1 z - .. - a_n z^n has every root outside radius r (> 0):
 * the step-down recursion on a_k r^k, whose partial autocorrelations must
 * all be below 1 in magnitude.
 */
static int roots_outside(const double *a, int n, double r)
{
    double cur[PS_ARMA_MAX_ORDER], next[PS_ARMA_MAX_ORDER];
    double rk = 1;
    for (int k = 0; k < n; k++) {
        rk *= r;
        cur[k] = a[k] * rk;
    }
    for (int m = n; m > 0; m--) {
        double kappa = cur[m - 1];
        if (!(fabs(kappa) < 1)) return 0;
        double den = 1 - kappa * kappa;
        for (int k = 0; k < m - 1; k++)
            next[k] = (cur[k] + kappa * cur[m - 2 - k]) / den;
        memcpy(cur, next, (size_t)(m - 1) * sizeof(double));
    }
    return 1;
}

static int ar_ok(const double *phi, int p)
{
    return roots_outside(phi, p, AR_MARGIN);
}

/* theta(z) = 1 + theta_1 z + ..: the roots of 1 - sum (-theta_k) z^k. */
static int ma_ok(const double *theta, int q)
{
    double neg[PS_ARMA_MAX_ORDER];
    for (int k = 0; k < q; k++)
        neg[k] = -theta[k];
    return roots_outside(neg, q, MA_MARGIN);
}

/* Shrink coefficient k by SHRINK^k until ok; zero them if that never
 * happens (it always does within the cap for finite input). Returns
 * whether anything changed. */
static int shrink_into(double *a, int n, int (*ok)(const double *, int))
{
    if (ok(a, n)) return 0;
    for (int it = 0; it < 2000; it++) {
        double f = 1;
        for (int k = 0; k < n; k++) {
            f *= SHRINK;
            a[k] *= f;
        }
        if (ok(a, n)) return 1;
    }
    for (int k = 0; k < n; k++)
        a[k] = 0;
    return 1;
}

/* ---- estimation -------------------------------------------------------- */

/* beta = [c, phi_1..phi_p, theta_1..theta_q] of the standardized series. */

/*
 * Conditional sum of squares: residuals from t = p on, with earlier
 * residuals taken as 0. With grad, also accumulates the Gauss-Newton normal
 * equations J'J delta = -J'e, where J holds de_t/dbeta (each derivative is
 * the regressor filtered through 1/theta(B), kept for the last q steps).
 */
static double css(const double *z, size_t m, int p, int q, const double *beta, normal_eq *grad)
{
    int cols = 1 + p + q;
    const double *phi = beta + 1, *theta = beta + 1 + p;
    double elag[PS_ARMA_MAX_ORDER] = {0};
    double dlag[PS_ARMA_MAX_ORDER][MAX_COLS];
    memset(dlag, 0, sizeof dlag);
    if (grad) ne_init(grad, cols);
    double sum = 0;
    for (size_t t = (size_t)p; t < m; t++) {
        double f = beta[0];
        for (int i = 0; i < p; i++)
            f += phi[i] * z[t - 1 - (size_t)i];
        for (int j = 0; j < q; j++)
            f += theta[j] * elag[j];
        double e = z[t] - f;
        sum += e * e;
        if (grad) {
            double d[MAX_COLS];
            d[0] = -1;
            for (int i = 0; i < p; i++)
                d[1 + i] = -z[t - 1 - (size_t)i];
            for (int j = 0; j < q; j++)
                d[1 + p + j] = -elag[j];
            for (int j = 0; j < q; j++)
                for (int c = 0; c < cols; c++)
                    d[c] -= theta[j] * dlag[j][c];
            ne_add(grad, d, -e);
            if (q > 0) {
                memmove(dlag[1], dlag[0], (size_t)(q - 1) * sizeof dlag[0]);
                memcpy(dlag[0], d, (size_t)cols * sizeof(double));
            }
        }
        if (q > 0) {
            memmove(elag + 1, elag, (size_t)(q - 1) * sizeof(double));
            elag[0] = e;
        }
    }
    return sum;
}

/* Hannan-Rissanen on the standardized series z (mean 0, variance 1). */
static int hannan_rissanen(const double *z, size_t m, int p, int q, int long_ar, double *beta,
                           unsigned *flags)
{
    int cols = 1 + p + q;
    normal_eq ne;
    ne_init(&ne, cols);
    double x[MAX_COLS];
    if (q == 0) {
        /* Without MA terms the regression is already the CSS estimate. */
        for (size_t t = (size_t)p; t < m; t++) {
            x[0] = 1;
            for (int i = 0; i < p; i++)
                x[1 + i] = z[t - 1 - (size_t)i];
            ne_add(&ne, x, z[t]);
        }
        if (ne_solve(&ne, beta)) *flags |= PS_ARIMA_DROPPED;
        return PS_OK;
    }

    /* Stage 1: long AR by Yule-Walker (Levinson-Durbin), residuals u. */
    size_t k = pick_long_ar(m, p, q, long_ar);
    double *r = malloc((k + 1) * sizeof(double));
    double *a = malloc(k * sizeof(double)), *prev = malloc(k * sizeof(double));
    double *u = malloc(m * sizeof(double));
    if (!r || !a || !prev || !u) {
        free(r);
        free(a);
        free(prev);
        free(u);
        return PS_ENOMEM;
    }
    for (size_t h = 0; h <= k; h++) {
        double acc = 0;
        for (size_t t = h; t < m; t++)
            acc += z[t] * z[t - h];
        r[h] = acc / (double)m;
    }
    double v = r[0];
    size_t order = 0;
    for (size_t j = 0; j < k; j++) {
        double acc = r[j + 1];
        for (size_t i = 0; i < j; i++)
            acc -= a[i] * r[j - i];
        double kappa = v > 0 ? acc / v : 0;
        /* Biased autocovariances keep |kappa| < 1; rounding may not. */
        if (!(fabs(kappa) < 1)) break;
        memcpy(prev, a, j * sizeof(double));
        for (size_t i = 0; i < j; i++)
            a[i] = prev[i] - kappa * prev[j - 1 - i];
        a[j] = kappa;
        v *= 1 - kappa * kappa;
        order = j + 1;
    }
    for (size_t t = k; t < m; t++) {
        double e = z[t];
        for (size_t i = 0; i < order; i++)
            e -= a[i] * z[t - 1 - i];
        u[t] = e;
    }

    /* Stage 2: regress z_t on 1, its p lags and q lagged residuals. */
    for (size_t t = k + (size_t)q; t < m; t++) {
        x[0] = 1;
        for (int i = 0; i < p; i++)
            x[1 + i] = z[t - 1 - (size_t)i];
        for (int j = 0; j < q; j++)
            x[1 + p + j] = u[t - 1 - (size_t)j];
        ne_add(&ne, x, z[t]);
    }
    if (ne_solve(&ne, beta)) *flags |= PS_ARIMA_DROPPED;
    free(r);
    free(a);
    free(prev);
    free(u);
    return PS_OK;
}

static int beta_ok(const double *beta, int p, int q)
{
    for (int i = 0; i < 1 + p + q; i++)
        if (!isfinite(beta[i])) return 0;
    return ar_ok(beta + 1, p) && ma_ok(beta + 1 + p, q);
}

/* Gauss-Newton on the CSS with step halving; never leaves the stationary
 * and invertible region. Returns the number of accepted steps. */
static int refine(const double *z, size_t m, int p, int q, int steps, double *beta, unsigned *flags)
{
    int cols = 1 + p + q, taken = 0;
    normal_eq ne;
    double cur = css(z, m, p, q, beta, &ne);
    for (int it = 0; it < steps; it++) {
        double delta[MAX_COLS], trial[MAX_COLS];
        ne_solve(&ne, delta);
        double alpha = 1, next = cur;
        int accepted = 0;
        for (int half = 0; half < 30; half++, alpha *= 0.5) {
            for (int i = 0; i < cols; i++)
                trial[i] = beta[i] + alpha * delta[i];
            if (!beta_ok(trial, p, q)) continue;
            next = css(z, m, p, q, trial, NULL);
            if (next < cur) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) break;
        memcpy(beta, trial, (size_t)cols * sizeof(double));
        taken++;
        int done = cur - next <= REFINE_TOL * cur;
        cur = css(z, m, p, q, beta, &ne);
        if (done) break;
    }
    if (taken == 0 && steps > 0) *flags |= PS_ARIMA_NO_REFINE;
    return taken;
}

/* w = the d-th difference of y (length n - d), in place into w. */
static void difference(const double *y, size_t n, int d, double *w)
{
    memcpy(w, y, n * sizeof(double));
    for (int k = 0; k < d; k++)
        for (size_t t = 0; t + 1 + (size_t)k < n; t++)
            w[t] = w[t + 1] - w[t];
}

int ps_arima_estimate(const double *y, size_t n, int p, int d, int q, const ps_arima_options *opt,
                      ps_arima_model *m, char *err, size_t errlen)
{
    if (!y || !m) return ps_fail(err, errlen, PS_EINVAL, "ARIMA estimate: NULL series or model");
    if (p < 0 || q < 0 || d < 0 || p > PS_ARMA_MAX_ORDER || q > PS_ARMA_MAX_ORDER ||
        d > PS_ARIMA_MAX_D)
        return ps_fail(err, errlen, PS_EINVAL,
                       "ARIMA order (%d,%d,%d) out of range: p, q in 0..%d, d in 0..%d", p, d, q,
                       PS_ARMA_MAX_ORDER, PS_ARIMA_MAX_D);
    ps_arima_options o = opt ? *opt : ps_arima_default_options();
    if (o.refine < 0 || o.long_ar < 0)
        return ps_fail(err, errlen, PS_EINVAL, "ARIMA options must not be negative");
    size_t need = ps_arima_min_window(p, d, q);
    if (n < need)
        return ps_fail(err, errlen, PS_ARIMA_ESHORT,
                       "a window of %zu values is too short for ARIMA(%d,%d,%d): need %zu", n, p, d,
                       q, need);
    for (size_t t = 0; t < n; t++)
        if (!isfinite(y[t]))
            return ps_fail(err, errlen, PS_ARIMA_EDATA, "value %zu of the window is %g", t, y[t]);
    size_t len = n - (size_t)d;
    if (o.long_ar > 0 && q > 0 && (size_t)o.long_ar > len - (size_t)q - 2 * (size_t)(1 + p + q) - 8)
        return ps_fail(err, errlen, PS_EINVAL, "long AR order %d too large for %zu values",
                       o.long_ar, len);

    double *z = malloc(n * sizeof(double));
    if (!z) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    difference(y, n, d, z);

    memset(m, 0, sizeof *m);
    m->p = p;
    m->d = d;
    m->q = q;
    double mean = 0, var = 0;
    for (size_t t = 0; t < len; t++)
        mean += z[t];
    mean /= (double)len;
    for (size_t t = 0; t < len; t++) {
        z[t] -= mean;
        var += z[t] * z[t];
    }
    var /= (double)len;
    m->mean = mean;
    /* Differences of a constant window are exactly 0; relative noise at
     * rounding level is constant too. */
    if (!(var > 0) || sqrt(var) <= 1e-12 * fabs(mean)) {
        m->c = mean;
        m->flags = PS_ARIMA_CONSTANT;
        free(z);
        return PS_OK;
    }
    double sd = sqrt(var);
    for (size_t t = 0; t < len; t++)
        z[t] /= sd;

    double beta[MAX_COLS] = {0};
    unsigned flags = 0;
    int rc = hannan_rissanen(z, len, p, q, o.long_ar, beta, &flags);
    if (rc) {
        free(z);
        return ps_fail(err, errlen, rc, "out of memory");
    }
    for (int i = 0; i < 1 + p + q; i++)
        if (!isfinite(beta[i])) beta[i] = 0;
    if (shrink_into(beta + 1, p, ar_ok)) flags |= PS_ARIMA_SHRUNK_AR;
    if (shrink_into(beta + 1 + p, q, ma_ok)) flags |= PS_ARIMA_SHRUNK_MA;
    /* Without MA terms the first stage already minimized the CSS. */
    if (q > 0 && o.refine > 0) m->refine_steps = refine(z, len, p, q, o.refine, beta, &flags);
    double sum = css(z, len, p, q, beta, NULL);
    free(z);

    double sphi = 0;
    for (int i = 0; i < p; i++) {
        m->phi[i] = beta[1 + i];
        sphi += beta[1 + i];
    }
    for (int j = 0; j < q; j++)
        m->theta[j] = beta[1 + p + j];
    m->c = sd * beta[0] + mean * (1 - sphi);
    m->sigma2 = var * sum / (double)(len - (size_t)p);
    m->flags = flags;
    return PS_OK;
}

/* ---- filtering ---------------------------------------------------------- */

/* The recursion of one series, in double: what the bank primes the kernel
 * with and what ps_arima_filter reports. */
typedef struct arima_run {
    double wlag[PS_ARMA_MAX_ORDER], elag[PS_ARMA_MAX_ORDER];
    double fw;      /* forecast of the next differenced value */
    double last[2]; /* the last raw values, newest first */
    size_t seen;
} arima_run;

static double arma_forecast(const ps_arima_model *m, const arima_run *r)
{
    double f = m->c;
    for (int i = 0; i < m->p; i++)
        f += m->phi[i] * r->wlag[i];
    for (int j = 0; j < m->q; j++)
        f += m->theta[j] * r->elag[j];
    return f;
}

static void run_init(arima_run *r, const ps_arima_model *m)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < m->p; i++)
        r->wlag[i] = m->mean;
    r->fw = arma_forecast(m, r);
}

/* Add the differencing back: the raw forecast from fw and the last values. */
static double undifference(int d, double fw, const double *last)
{
    switch (d) {
    case 1:
        return fw + last[0];
    case 2:
        return fw + 2 * last[0] - last[1];
    default:
        return fw;
    }
}

static void run_push(arima_run *r, const ps_arima_model *m, double y, double *resid,
                     double *forecast)
{
    int d = m->d;
    if (r->seen < (size_t)d) {
        r->last[1] = r->last[0];
        r->last[0] = y;
        r->seen++;
        *resid = NAN;
        *forecast = r->seen == (size_t)d ? undifference(d, r->fw, r->last) : NAN;
        return;
    }
    double w = d == 0 ? y : d == 1 ? y - r->last[0] : y - 2 * r->last[0] + r->last[1];
    double e = w - r->fw;
    if (m->p > 0) {
        memmove(r->wlag + 1, r->wlag, (size_t)(m->p - 1) * sizeof(double));
        r->wlag[0] = w;
    }
    if (m->q > 0) {
        memmove(r->elag + 1, r->elag, (size_t)(m->q - 1) * sizeof(double));
        r->elag[0] = e;
    }
    r->fw = arma_forecast(m, r);
    r->last[1] = r->last[0];
    r->last[0] = y;
    r->seen++;
    *resid = e;
    *forecast = undifference(d, r->fw, r->last);
}

static int model_valid(const ps_arima_model *m)
{
    if (m->p < 0 || m->q < 0 || m->d < 0 || m->p > PS_ARMA_MAX_ORDER || m->q > PS_ARMA_MAX_ORDER ||
        m->d > PS_ARIMA_MAX_D)
        return 0;
    if (!isfinite(m->c) || !isfinite(m->mean)) return 0;
    for (int i = 0; i < m->p; i++)
        if (!isfinite(m->phi[i])) return 0;
    for (int j = 0; j < m->q; j++)
        if (!isfinite(m->theta[j])) return 0;
    return 1;
}

int ps_arima_filter(const ps_arima_model *m, const double *y, size_t n, double *resid,
                    double *forecast)
{
    if (!m || (n && !y) || !model_valid(m)) return PS_EINVAL;
    for (size_t t = 0; t < n; t++)
        if (!isfinite(y[t])) return PS_ARIMA_EDATA;
    arima_run r;
    run_init(&r, m);
    for (size_t t = 0; t < n; t++) {
        double e, f;
        run_push(&r, m, y[t], &e, &f);
        if (resid) resid[t] = e;
        if (forecast) forecast[t] = f;
    }
    return PS_OK;
}

/* ---- the bank ------------------------------------------------------------ */

/* Per series, on the host: what the kernel does not keep. */
typedef struct bank_series {
    double last[2]; /* last raw values, newest first */
    double mean;    /* the centre of the kernel's values */
    double sigma2;
    unsigned flags;
    int refine_steps;
    int fitted;
} bank_series;

struct ps_arima_bank {
    ps_backend *be;
    ps_arma *arma;
    int p, d, q;
    size_t nseries;
    bank_series *series;
    double *coef;  /* nseries x (1 + p + q): c, phi, theta in double */
    float *w, *fc; /* step scratch, nseries each */
    char err[256];
};

ps_arima_bank *ps_arima_bank_create(ps_backend *be, int p, int d, int q, size_t nseries, char *err,
                                    size_t errlen)
{
    if (!be) {
        ps_fail(err, errlen, PS_EINVAL, "no backend");
        return NULL;
    }
    if (p < 0 || q < 0 || d < 0 || p > PS_ARMA_MAX_ORDER || q > PS_ARMA_MAX_ORDER ||
        d > PS_ARIMA_MAX_D) {
        ps_fail(err, errlen, PS_EINVAL, "ARIMA order (%d,%d,%d) out of range", p, d, q);
        return NULL;
    }
    if (nseries == 0 || nseries > UINT32_MAX) {
        ps_fail(err, errlen, PS_EINVAL, "ARIMA series count %zu out of range", nseries);
        return NULL;
    }
    ps_arima_bank *b = calloc(1, sizeof *b);
    if (!b) {
        ps_fail(err, errlen, PS_ENOMEM, "out of memory");
        return NULL;
    }
    size_t np = (size_t)(1 + p + q);
    b->be = be;
    b->p = p;
    b->d = d;
    b->q = q;
    b->nseries = nseries;
    b->series = calloc(nseries, sizeof *b->series);
    b->coef =
        nseries <= SIZE_MAX / sizeof(double) / np ? calloc(nseries * np, sizeof(double)) : NULL;
    b->w = malloc(nseries * sizeof(float));
    b->fc = malloc(nseries * sizeof(float));
    if (!b->series || !b->coef || !b->w || !b->fc) {
        ps_fail(err, errlen, PS_ENOMEM, "out of memory for %zu ARIMA series", nseries);
        ps_arima_bank_free(b);
        return NULL;
    }
    b->arma = ps_arma_create(be, p, q, nseries);
    if (!b->arma) {
        ps_fail(err, errlen, PS_EDEVICE, "cannot create the ARMA kernel: %s", ps_backend_error(be));
        ps_arima_bank_free(b);
        return NULL;
    }
    return b;
}

void ps_arima_bank_free(ps_arima_bank *b)
{
    if (!b) return;
    ps_arma_free(b->arma);
    free(b->series);
    free(b->coef);
    free(b->w);
    free(b->fc);
    free(b);
}

size_t ps_arima_bank_series(const ps_arima_bank *b)
{
    return b->nseries;
}

const char *ps_arima_bank_error(const ps_arima_bank *b)
{
    return b->err;
}

/* The kernel runs on w - mean: c moves by mean * (1 - sum phi). */
static void kernel_params(const ps_arima_model *m, float *params)
{
    double sphi = 0;
    for (int i = 0; i < m->p; i++) {
        params[1 + i] = (float)m->phi[i];
        sphi += m->phi[i];
    }
    params[0] = (float)(m->c - m->mean * (1 - sphi));
    for (int j = 0; j < m->q; j++)
        params[1 + m->p + j] = (float)m->theta[j];
}

int ps_arima_bank_set_model(ps_arima_bank *b, uint32_t series, const ps_arima_model *m,
                            const float *history, size_t len)
{
    char *err = b->err;
    size_t el = sizeof b->err;
    if (series >= b->nseries)
        return ps_fail(err, el, PS_EINVAL, "series %u out of range (%zu series)", (unsigned)series,
                       b->nseries);
    if (!m || !model_valid(m) || m->p != b->p || m->d != b->d || m->q != b->q)
        return ps_fail(err, el, PS_EINVAL, "model missing, invalid or not ARIMA(%d,%d,%d)", b->p,
                       b->d, b->q);
    if (len < (size_t)b->d || (len && !history))
        return ps_fail(err, el, PS_EINVAL, "priming ARIMA(%d,%d,%d) needs %d values, got %zu", b->p,
                       b->d, b->q, b->d, len);
    arima_run r;
    run_init(&r, m);
    for (size_t t = 0; t < len; t++) {
        if (!isfinite(history[t]))
            return ps_fail(err, el, PS_ARIMA_EDATA, "history value %zu is not finite", t);
        double e, f;
        run_push(&r, m, history[t], &e, &f);
    }

    int p = b->p, q = b->q;
    size_t np = (size_t)(1 + p + q);
    float params[MAX_COLS], state[MAX_COLS];
    kernel_params(m, params);
    for (int i = 0; i < p; i++)
        state[i] = (float)(r.wlag[i] - m->mean);
    for (int j = 0; j < q; j++)
        state[p + j] = (float)r.elag[j];
    state[p + q] = (float)(r.fw - m->mean);
    int rc = ps_arma_set_params(b->arma, 1, &series, params);
    if (!rc) rc = ps_arma_state_set(b->arma, 1, &series, state);
    if (rc) return ps_fail(err, el, rc, "ARMA kernel refused: %s", ps_backend_error(b->be));

    double *coef = b->coef + (size_t)series * np;
    coef[0] = m->c;
    for (int i = 0; i < p; i++)
        coef[1 + i] = m->phi[i];
    for (int j = 0; j < q; j++)
        coef[1 + p + j] = m->theta[j];
    bank_series *s = &b->series[series];
    s->last[0] = r.last[0];
    s->last[1] = r.last[1];
    s->mean = m->mean;
    s->sigma2 = m->sigma2;
    s->flags = m->flags;
    s->refine_steps = m->refine_steps;
    s->fitted = 1;
    return PS_OK;
}

int ps_arima_bank_fit(ps_arima_bank *b, uint32_t series, const float *window, size_t len,
                      const ps_arima_options *opt)
{
    if (series >= b->nseries)
        return ps_fail(b->err, sizeof b->err, PS_EINVAL, "series %u out of range (%zu series)",
                       (unsigned)series, b->nseries);
    if (!window) return ps_fail(b->err, sizeof b->err, PS_EINVAL, "ARIMA fit: NULL window");
    double *y = malloc((len ? len : 1) * sizeof(double));
    if (!y) return ps_fail(b->err, sizeof b->err, PS_ENOMEM, "out of memory");
    for (size_t t = 0; t < len; t++)
        y[t] = window[t];
    ps_arima_model m;
    int rc = ps_arima_estimate(y, len, b->p, b->d, b->q, opt, &m, b->err, sizeof b->err);
    free(y);
    if (rc) return rc;
    return ps_arima_bank_set_model(b, series, &m, window, len);
}

int ps_arima_bank_get_model(const ps_arima_bank *b, uint32_t series, ps_arima_model *m)
{
    if (series >= b->nseries || !b->series[series].fitted || !m) return PS_EINVAL;
    const bank_series *s = &b->series[series];
    size_t np = (size_t)(1 + b->p + b->q);
    const double *coef = b->coef + (size_t)series * np;
    memset(m, 0, sizeof *m);
    m->p = b->p;
    m->d = b->d;
    m->q = b->q;
    m->c = coef[0];
    for (int i = 0; i < b->p; i++)
        m->phi[i] = coef[1 + i];
    for (int j = 0; j < b->q; j++)
        m->theta[j] = coef[1 + b->p + j];
    m->mean = s->mean;
    m->sigma2 = s->sigma2;
    m->flags = s->flags;
    m->refine_steps = s->refine_steps;
    return PS_OK;
}

int ps_arima_bank_step(ps_arima_bank *b, size_t n, const uint32_t *series, const float *y,
                       float *resid, float *forecast)
{
    char *err = b->err;
    size_t el = sizeof b->err;
    if (n == 0) return PS_OK;
    if (!series || !y) return ps_fail(err, el, PS_EINVAL, "ARIMA step: NULL series or values");
    if (n > b->nseries)
        return ps_fail(err, el, PS_EINVAL, "ARIMA step of %zu rows over %zu series", n, b->nseries);
    for (size_t i = 0; i < n; i++) {
        uint32_t s = series[i];
        if (s >= b->nseries)
            return ps_fail(err, el, PS_EINVAL, "series %u out of range (%zu series)", (unsigned)s,
                           b->nseries);
        if (!b->series[s].fitted)
            return ps_fail(err, el, PS_EINVAL, "series %u has no model yet", (unsigned)s);
        if (!isfinite(y[i]))
            return ps_fail(err, el, PS_ARIMA_EDATA, "value for series %u is not finite",
                           (unsigned)s);
        const bank_series *st = &b->series[s];
        double v = y[i];
        double w = b->d == 0 ? v : b->d == 1 ? v - st->last[0] : v - 2 * st->last[0] + st->last[1];
        b->w[i] = (float)(w - st->mean);
    }
    /* The kernel refuses repeated series before it changes anything. */
    int rc = ps_arma_step(b->arma, n, series, b->w, resid, forecast ? b->fc : NULL);
    if (rc) return ps_fail(err, el, rc, "%s", ps_backend_error(b->be));
    for (size_t i = 0; i < n; i++) {
        bank_series *st = &b->series[series[i]];
        st->last[1] = st->last[0];
        st->last[0] = y[i];
        if (forecast)
            forecast[i] = (float)undifference(b->d, (double)b->fc[i] + st->mean, st->last);
    }
    return PS_OK;
}

int ps_arima_bank_reset(ps_arima_bank *b, uint32_t series)
{
    if (series >= b->nseries)
        return ps_fail(b->err, sizeof b->err, PS_EINVAL, "series %u out of range (%zu series)",
                       (unsigned)series, b->nseries);
    float zero[MAX_COLS] = {0};
    int rc = ps_arma_set_params(b->arma, 1, &series, zero);
    if (!rc) rc = ps_arma_state_set(b->arma, 1, &series, zero);
    size_t np = (size_t)(1 + b->p + b->q);
    memset(b->coef + (size_t)series * np, 0, np * sizeof(double));
    b->series[series] = (bank_series){0};
    if (rc)
        return ps_fail(b->err, sizeof b->err, rc, "ARMA kernel refused: %s",
                       ps_backend_error(b->be));
    return PS_OK;
}

/* ---- snapshots ---- */

/* p, d, q, fitted; then coef, mean, sigma2, flags, refine steps, last[2], kernel state. */
static size_t state_bytes(const ps_arima_bank *b, int fitted)
{
    size_t np = (size_t)(1 + b->p + b->q);
    return 4 + (fitted ? np * 8 + 8 + 8 + 4 + 4 + 2 * 8 + np * 4 : 0);
}

size_t ps_arima_bank_state_len(const ps_arima_bank *b, uint32_t series)
{
    return state_bytes(b, series < b->nseries && b->series[series].fitted);
}

int ps_arima_bank_state_export(const ps_arima_bank *b, uint32_t series, uint8_t *buf, size_t len)
{
    if (series >= b->nseries || !buf || len < ps_arima_bank_state_len(b, series)) return PS_EINVAL;
    const bank_series *st = &b->series[series];
    size_t np = (size_t)(1 + b->p + b->q);
    float kstate[MAX_COLS];
    if (st->fitted) {
        /* The bank is logically const; the kernel's getter is not. */
        int rc = ps_arma_state_get(b->arma, 1, &series, kstate);
        if (rc) return rc;
    }
    ps_wcur w = ps_wcur_init(buf, len);
    ps_w_u8(&w, (uint8_t)b->p);
    ps_w_u8(&w, (uint8_t)b->d);
    ps_w_u8(&w, (uint8_t)b->q);
    ps_w_u8(&w, (uint8_t)(st->fitted != 0));
    if (st->fitted) {
        const double *coef = b->coef + (size_t)series * np;
        for (size_t i = 0; i < np; i++)
            ps_w_f64(&w, coef[i]);
        ps_w_f64(&w, st->mean);
        ps_w_f64(&w, st->sigma2);
        ps_w_u32(&w, st->flags);
        ps_w_u32(&w, (uint32_t)st->refine_steps);
        ps_w_f64(&w, st->last[0]);
        ps_w_f64(&w, st->last[1]);
        for (size_t i = 0; i < np; i++)
            ps_w_f32(&w, kstate[i]);
    }
    return w.over ? PS_EINVAL : PS_OK;
}

/* A decoded series: the model, its host-side values and its kernel state. */
typedef struct series_state {
    int fitted;
    ps_arima_model m;
    double last[2];
    float kstate[MAX_COLS];
} series_state;

static int state_decode(const ps_arima_bank *b, const uint8_t *buf, size_t len, series_state *s,
                        char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (!buf && len) return ps_fail(err, errlen, PS_EINVAL, "ARIMA state: NULL buffer");
    ps_rcur r = ps_rcur_init(buf, len);
    int p = ps_r_u8(&r), d = ps_r_u8(&r), q = ps_r_u8(&r), fitted = ps_r_u8(&r);
    if (r.shrt) return ps_fail(err, errlen, PS_EINVAL, "ARIMA state truncated in its header");
    if (p != b->p || d != b->d || q != b->q)
        return ps_fail(err, errlen, PS_EINVAL,
                       "ARIMA state of order (%d,%d,%d), the bank's is "
                       "(%d,%d,%d)",
                       p, d, q, b->p, b->d, b->q);
    if (fitted > 1)
        return ps_fail(err, errlen, PS_EINVAL, "ARIMA state: bad fitted flag %d", fitted);
    if (len != state_bytes(b, fitted))
        return ps_fail(err, errlen, PS_EINVAL,
                       "ARIMA state of %zu bytes, %s ARIMA(%d,%d,%d) needs %zu", len,
                       fitted ? "a fitted" : "an unfitted", p, d, q, state_bytes(b, fitted));
    s->fitted = fitted;
    if (!fitted) return PS_OK;
    ps_arima_model *m = &s->m;
    m->p = p;
    m->d = d;
    m->q = q;
    m->c = ps_r_f64(&r);
    for (int i = 0; i < p; i++)
        m->phi[i] = ps_r_f64(&r);
    for (int j = 0; j < q; j++)
        m->theta[j] = ps_r_f64(&r);
    m->mean = ps_r_f64(&r);
    m->sigma2 = ps_r_f64(&r);
    m->flags = ps_r_u32(&r);
    m->refine_steps = ps_r_i32(&r);
    s->last[0] = ps_r_f64(&r);
    s->last[1] = ps_r_f64(&r);
    for (int i = 0; i < 1 + p + q; i++)
        s->kstate[i] = ps_r_f32(&r);
    if (!model_valid(m) || !(m->sigma2 >= 0) || !isfinite(m->sigma2))
        return ps_fail(err, errlen, PS_EINVAL,
                       "ARIMA state: a coefficient, the mean or sigma2 is not finite");
    if (m->refine_steps < 0 || m->flags >= 1u << 5)
        return ps_fail(err, errlen, PS_EINVAL, "ARIMA state: flags %#x or refine steps %d invalid",
                       m->flags, m->refine_steps);
    if (!isfinite(s->last[0]) || !isfinite(s->last[1]))
        return ps_fail(err, errlen, PS_EINVAL, "ARIMA state: last values %g, %g not finite",
                       s->last[0], s->last[1]);
    for (int i = 0; i < 1 + p + q; i++)
        if (!isfinite(s->kstate[i]))
            return ps_fail(err, errlen, PS_EINVAL, "ARIMA state: kernel state %d is %g", i,
                           (double)s->kstate[i]);
    return PS_OK;
}

int ps_arima_bank_state_check(const ps_arima_bank *b, const uint8_t *buf, size_t len, char *err,
                              size_t errlen)
{
    series_state s;
    return state_decode(b, buf, len, &s, err, errlen);
}

int ps_arima_bank_state_import(ps_arima_bank *b, uint32_t series, const uint8_t *buf, size_t len,
                               char *err, size_t errlen)
{
    if (series >= b->nseries)
        return ps_fail(err, errlen, PS_EINVAL, "series %u out of range (%zu series)",
                       (unsigned)series, b->nseries);
    series_state s;
    int rc = state_decode(b, buf, len, &s, err, errlen);
    if (rc) return rc;
    if (!s.fitted) {
        rc = ps_arima_bank_reset(b, series);
        if (rc) ps_fail(err, errlen, rc, "%s", b->err);
        return rc;
    }
    float params[MAX_COLS];
    kernel_params(&s.m, params);
    rc = ps_arma_set_params(b->arma, 1, &series, params);
    if (!rc) rc = ps_arma_state_set(b->arma, 1, &series, s.kstate);
    if (rc) return ps_fail(err, errlen, rc, "ARMA kernel refused: %s", ps_backend_error(b->be));
    size_t np = (size_t)(1 + b->p + b->q);
    double *coef = b->coef + (size_t)series * np;
    coef[0] = s.m.c;
    for (int i = 0; i < b->p; i++)
        coef[1 + i] = s.m.phi[i];
    for (int j = 0; j < b->q; j++)
        coef[1 + b->p + j] = s.m.theta[j];
    bank_series *st = &b->series[series];
    st->last[0] = s.last[0];
    st->last[1] = s.last[1];
    st->mean = s.m.mean;
    st->sigma2 = s.m.sigma2;
    st->flags = s.m.flags;
    st->refine_steps = s.m.refine_steps;
    st->fitted = 1;
    return PS_OK;
}
