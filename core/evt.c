/*
 * evt.c - the GPD fit, the peaks-over-threshold model and the PFP map (see
 * evt.h for the model and docs/pfp.md for what it means).
 *
 * The fit is Grimshaw's reduction (Grimshaw 1993, "Computing maximum
 * likelihood estimates for the generalized Pareto distribution",
 * Technometrics 35(2)): with theta = xi / sigma, the likelihood maximized
 * over xi for a fixed theta has xi(theta) = mean(log(1 + theta y)) in
 * closed form, leaving a one-dimensional profile
 *
 *     l*(theta) = -n log sigma - sum log(1 + theta y) - n,   sigma = xi(theta) / theta
 *
 * (l* -> -n (log mean + 1), the exponential, as theta -> 0). Grimshaw solves
 * l*'(theta) = 0 and checks every root, as SPOT does; here l* itself is
 * maximized, which needs no derivative and cannot pick a minimum: a
 * geometric grid over the whole feasible range (either side of the
 * exponential, which is always a grid point), then a bracketed golden-section
 * search around the best grid point. xi(theta) is increasing, so the shape
 * bounds [xi_min, xi_max] are one interval of theta: outside it l* is -inf
 * and the search never leaves it. The sign and reach of theta differ a lot
 * between data sets, so the search runs on
 *
 *     v = log(1 + theta ymax)  for theta < 0   (-> -inf at the support's edge)
 *     v = log(1 + theta mean)  for theta >= 0
 *
 * which spreads the steep region near theta = -1 / ymax (short tails) and
 * the long flat one of heavy tails over similar lengths. Sums use log1p, so
 * theta near 0 (xi near 0) loses nothing.
 *
 * At a bound of xi the result is the point of the profile path with xi on
 * the bound (not the maximum over sigma with xi fixed there); the bounds are
 * sanity clamps, and the flags say when one was hit.
 *
 * Online, ps_evt_update refits from the last fit instead, by Newton's
 * method on l*' with the full fit as its fallback ("the warm refit" below).
 */
#include "evt.h"
#include "bytes.h"
#include "error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- GPD ----------------------------------------------------------------- */

#define GRID_SIDE 16      /* grid points on each side of the exponential */
#define GRID_INNER 1e-3   /* |v| of the grid point nearest the exponential */
#define GOLDEN_TOL 1e-8   /* relative width (in v) at which the golden search stops */
#define BOUND_TOL 1e-6    /* xi this close to a bound counts as on it */
#define MAX_OUTER_STEPS 9 /* |v| doubles from 1 up to 2^9 looking for the range's end */

ps_evt_gpd_options ps_evt_gpd_default_options(void)
{
    return (ps_evt_gpd_options){.xi_min = -0.5, .xi_max = 2.0, .min_mle = 20, .sigma_floor = 0};
}

static int gpd_options_ok(const ps_evt_gpd_options *o)
{
    return o->xi_min >= -0.9 && o->xi_min <= 0 && o->xi_max >= 0 && o->xi_max <= 10 &&
           o->sigma_floor >= 0 && isfinite(o->sigma_floor);
}

typedef struct gpd_data {
    const double *y;
    size_t n;
    double mean, ymax;
    double xi_min, xi_max;
} gpd_data;

/*
 * l*(v), with xi and sigma there; -inf outside the shape bounds (or where
 * theta leaves the support, or sigma is not a positive finite number).
 */
static double profile(const gpd_data *d, double v, double *xi, double *sigma)
{
    double nn = (double)d->n;
    double theta = v < 0 ? expm1(v) / d->ymax : expm1(v) / d->mean;
    if (v == 0 || theta == 0) {
        *xi = 0;
        *sigma = d->mean;
        return -nn * (log(d->mean) + 1);
    }
    if (!isfinite(theta) || !(theta * d->ymax > -1)) return -INFINITY;
    double s = 0;
    for (size_t i = 0; i < d->n; i++)
        s += log1p(theta * d->y[i]);
    double x = s / nn;
    /* Written so that a NaN fails too. */
    if (!(x >= d->xi_min && x <= d->xi_max)) return -INFINITY;
    double sg = x / theta;
    if (!(sg > 0) || !isfinite(sg)) return -INFINITY;
    *xi = x;
    *sigma = sg;
    return -nn * log(sg) - s - nn;
}

/* The first v = sign 2^j (j = 0..) outside the feasible range, or the last one tried. */
static double outer_end(const gpd_data *d, double sign)
{
    double v = sign, xi, sg;
    for (int j = 0; j < MAX_OUTER_STEPS; j++, v *= 2)
        if (profile(d, v, &xi, &sg) == -INFINITY) return v;
    return v / 2;
}

/* log-likelihood of (xi, sigma) on y; -inf if a y lies beyond a bounded tail. */
static double gpd_loglik(const double *y, size_t n, double xi, double sigma)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (xi == 0) {
            s += y[i] / sigma;
        } else {
            double z = xi * y[i] / sigma;
            if (!(z > -1)) return -INFINITY;
            s += (1 + 1 / xi) * log1p(z);
        }
    }
    return -(double)n * log(sigma) - s;
}

/*
 * Maximize l* from the bracket a <= x <= b with l*(x) >= l*(a), l*(b):
 * golden-section steps into the larger side keep the bracket, and x, always
 * feasible, only ever moves to a better point.
 */
static double golden(const gpd_data *d, double a, double x, double fx, double b)
{
    const double g = 0.3819660112501051; /* (3 - sqrt 5) / 2 */
    double xi, sg;
    for (int it = 0; it < 200 && b - a > GOLDEN_TOL * (1 + fabs(x)); it++) {
        double u = (x - a < b - x) ? x + g * (b - x) : x - g * (x - a);
        double fu = profile(d, u, &xi, &sg);
        if (fu > fx) {
            if (u > x)
                a = x;
            else
                b = x;
            x = u;
            fx = fu;
        } else if (u > x) {
            b = u;
        } else {
            a = u;
        }
    }
    return x;
}

int ps_evt_gpd_fit(const double *y, size_t n, const ps_evt_gpd_options *opt, ps_evt_gpd *g)
{
    ps_evt_gpd_options o = opt ? *opt : ps_evt_gpd_default_options();
    if (!g) return PS_EINVAL;
    memset(g, 0, sizeof *g);
    g->sigma = 1;
    if (!gpd_options_ok(&o) || (n > 0 && !y)) return PS_EINVAL;

    /* A running mean cannot overflow where a sum of large excesses could. */
    double mean = 0, ymax = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(y[i] >= 0) || !isfinite(y[i])) return PS_EINVAL;
        mean += (y[i] - mean) / (double)(i + 1);
        if (y[i] > ymax) ymax = y[i];
    }
    g->n = n;

    if (n == 0 || ymax == 0) {
        /* Nothing says how far the tail reaches: the floor, or unit scale without one. */
        g->xi = 0;
        g->sigma = o.sigma_floor > 0 ? o.sigma_floor : 1;
        g->flags = PS_EVT_GPD_DEGENERATE;
        g->loglik = n ? gpd_loglik(y, n, 0, g->sigma) : 0;
        return 0;
    }
    if (n < o.min_mle || o.xi_min == o.xi_max) {
        /*
         * Tens of excesses do not pin down a shape (sd(xi) ~ (1 + xi) / sqrt n),
         * and a noisy xi > 0 would fatten the tail at random: the exponential,
         * whose MLE is the mean excess, is the least committal tail.
         */
        g->xi = 0;
        g->sigma = mean;
        g->flags = PS_EVT_GPD_EXPONENTIAL;
    } else {
        gpd_data d = {y, n, mean, ymax, o.xi_min, o.xi_max};
        double lo = o.xi_min < 0 ? outer_end(&d, -1) : 0;
        double hi = o.xi_max > 0 ? outer_end(&d, 1) : 0;

        /* The grid: lo .. -GRID_INNER geometrically, 0, GRID_INNER .. hi geometrically. */
        double grid[2 * GRID_SIDE + 1];
        size_t ng = 0;
        if (lo < 0) {
            double r = pow(GRID_INNER / -lo, 1.0 / (GRID_SIDE - 1));
            for (int j = 0; j < GRID_SIDE; j++)
                grid[ng++] = lo * pow(r, j);
        }
        grid[ng++] = 0;
        if (hi > 0) {
            double r = pow(hi / GRID_INNER, 1.0 / (GRID_SIDE - 1));
            for (int j = 0; j < GRID_SIDE; j++)
                grid[ng++] = GRID_INNER * pow(r, j);
        }
        size_t best = 0;
        double fbest = -INFINITY, xi, sg;
        for (size_t k = 0; k < ng; k++) {
            double f = profile(&d, grid[k], &xi, &sg);
            if (f > fbest) {
                fbest = f;
                best = k;
            }
        }
        /* The exponential is feasible, so fbest is finite. */
        double a = grid[best > 0 ? best - 1 : 0];
        double b = grid[best + 1 < ng ? best + 1 : ng - 1];
        double v = golden(&d, a, grid[best], fbest, b);
        profile(&d, v, &g->xi, &g->sigma);
        if (g->xi <= o.xi_min + BOUND_TOL) g->flags |= PS_EVT_GPD_XI_AT_MIN;
        if (g->xi >= o.xi_max - BOUND_TOL) g->flags |= PS_EVT_GPD_XI_AT_MAX;
    }
    if (g->sigma < o.sigma_floor) {
        g->sigma = o.sigma_floor;
        g->flags |= PS_EVT_GPD_SIGMA_FLOOR;
    }
    g->loglik = gpd_loglik(y, n, g->xi, g->sigma);
    return 0;
}

/* ---- the warm refit ------------------------------------------------------ */

/*
 * ps_evt_update refits after every new excess, and one excess among
 * hundreds barely moves the maximum, so the full search above (about 80
 * passes over the excesses) mostly re-finds what the last fit knew. The
 * warm refit starts from the last fit's theta instead and runs Newton's
 * method on l*'(theta) = 0, with both derivatives in closed form: in
 * psi = theta ymax (the support is psi > -1) and u = y / ymax,
 *
 *     F(psi)  = -n log(S / psi) - S     (l* less the constant n log(n / ymax) - n)
 *     F'(psi) = n H / (psi S) - T
 *     F''     = n (U / S - H (psi T + S) / (psi S)^2) + U
 *
 * with S = sum log(1 + z), T = sum u / (1 + z), U = sum (u / (1 + z))^2 and
 * H = sum h(z), h(z) = log(1 + z) - z / (1 + z) >= 0, at z = psi u: one pass
 * computes all four, with h summed as its series where |z| is small and the
 * difference would cancel. At psi = 0 (the exponential) the moments
 * B_k = sum u^k give the limits
 *
 *     F'(0) = n B2 / (2 B1) - B1,   F''(0) = B2 - n (2 B3 / (3 B1) - B2^2 / (4 B1^2)),
 *
 * and F''(0) stands in for F'' where |psi| is too small for the formula's
 * cancellation. Each step keeps a bracket of the signs of F' seen, a step
 * out of it bisects, and the iteration stops once a step moves the full
 * fit's search variable v by less than WARM_ACCEPT: that step is taken
 * without another pass (S follows from T and U to third order; Newton
 * leaves an error of about the step squared), so a typical refit costs two
 * or three passes, and one that stays on the exponential bound of the
 * default shapes (xi_min = 0) only the moments, no logarithm at all.
 *
 * A last fit on a bound of xi (but xi_min = 0, handled above) is followed
 * there by Newton's method on xi(psi) = the bound, and kept if l* still
 * rises towards it; else Newton starts from that point.
 *
 * It answers only when it can vouch for a local maximum: F'' < 0 at every
 * interior step, xi inside its bounds, the last fit a regular one (not
 * degenerate, exponential or floored); otherwise, or after WARM_MAX_STEPS
 * steps, the caller runs the full fit. The full fit also runs on every
 * WARM_FULL_EVERY-th excess, so that a second mode of the likelihood
 * overtaking the one being followed is found within that many excesses.
 * Newton lands far closer to l*' = 0 than the golden search, which stops
 * at 1e-8 in v (against an extended-precision solution, 256 GPD excesses:
 * within 1e-11 in v, the full fit within 2e-7), so the two agree to what
 * the full fit leaves: about 1e-7 in xi and sigma (tests/test_evt_refit.c
 * checks 1e-6 on every refit of long streams of several shapes).
 */

#define WARM_FULL_EVERY 32 /* every this many excesses (n_exc), the full fit */
#define WARM_MAX_STEPS 12  /* Newton steps before giving up on the warm refit */
#define WARM_ACCEPT 1e-6   /* a step moving v by less than this ends the iteration */
#define WARM_SERIES 1e-3   /* |z| below which h(z) is summed as its series */
#define WARM_SMALL 1e-4    /* |psi| below which F''(0) stands in for F'' */
#define WARM_RANGE 1e100   /* ymax outside [1 / this, this]: the full fit (moments overflow) */

typedef struct warm_data {
    const double *y;
    size_t n;
    double ymax, inv, mean;
    double b1, b2, b3; /* the moments of u */
    double d1_0, d2_0; /* F'(0), F''(0) */
} warm_data;

typedef struct warm_point {
    double psi, s, t, u; /* psi and the sums at it */
    double d1, d2;       /* F', F'' */
} warm_point;

/* The sums and derivatives at w->psi; 0, or -1 if a sum is not finite. */
static int warm_eval(const warm_data *d, warm_point *w)
{
    double psi = w->psi, nn = (double)d->n;
    if (psi == 0) {
        w->s = 0;
        w->t = d->b1;
        w->u = d->b2;
        w->d1 = d->d1_0;
        w->d2 = d->d2_0;
        return 0;
    }
    double s = 0, t = 0, u2 = 0, h = 0;
    for (size_t i = 0; i < d->n; i++) {
        double u = d->y[i] * d->inv, z = psi * u;
        double l = log1p(z), r = 1 / (1 + z), q = u * r;
        s += l;
        t += q;
        u2 += q * q;
        /* h(z) = sum_k>=2 (-1)^k (k - 1) z^k / k */
        h += fabs(z) < WARM_SERIES ? z * z * (0.5 - z * (2.0 / 3 - z * (0.75 - z * 0.8)))
                                   : l - z * r;
    }
    double ps = psi * s;
    if (!(ps > 0) || !isfinite(ps)) return -1; /* S has psi's sign */
    w->s = s;
    w->t = t;
    w->u = u2;
    w->d1 = nn * h / ps - t;
    w->d2 = fabs(psi) < WARM_SMALL ? d->d2_0 : nn * (u2 / s - h * (psi * t + s) / (ps * ps)) + u2;
    return isfinite(w->d1) && isfinite(w->d2) ? 0 : -1;
}

/* dv / dpsi: v = log(1 + psi) below 0, log(1 + psi mean / ymax) above (the full fit's variable). */
static double warm_dv(const warm_data *d, double psi)
{
    if (psi < 0) return 1 / (1 + psi);
    double c = d->mean * d->inv;
    return c / (1 + psi * c);
}

/*
 * A step from w (evaluated) to next, clamped into (-1, inf): halfway to the
 * support's edge where it would cross it.
 */
static double warm_clamp(double psi, double next)
{
    return next > -1 ? next : 0.5 * (psi - 1);
}

/*
 * The point of the profile path with xi = b (a bound of xi, b != 0), by
 * Newton's method on S(psi) = n b from w->psi (S is increasing and concave,
 * so the iterates approach from below after the first). 0 with *psi_b and
 * *s_b (S there) and w evaluated at the last iterate; -1 if it does not
 * converge.
 */
static int warm_bound(const warm_data *d, double b, warm_point *w, double *psi_b, double *s_b)
{
    double nb = (double)d->n * b;
    for (int it = 0; it < WARM_MAX_STEPS; it++) {
        if (warm_eval(d, w) || !(w->t > 0)) return -1;
        double step = -(w->s - nb) / w->t, next = warm_clamp(w->psi, w->psi + step);
        if (next == w->psi + step && fabs(step * warm_dv(d, w->psi)) <= WARM_ACCEPT) {
            *psi_b = next;
            *s_b = w->s + step * (w->t - 0.5 * step * w->u);
            return next != 0 ? 0 : -1;
        }
        w->psi = next;
    }
    return -1;
}

/*
 * The warm refit of y[0..n-1] from the previous fit *prev: 0 with *g set as
 * ps_evt_gpd_fit would set it (to the precision of its golden search; the
 * loglik is the profile's value there), or -1 when it cannot vouch for its
 * answer.
 */
static int gpd_refit_warm(const double *y, size_t n, const ps_evt_gpd_options *o,
                          const ps_evt_gpd *prev, ps_evt_gpd *g)
{
    const unsigned cold = PS_EVT_GPD_DEGENERATE | PS_EVT_GPD_EXPONENTIAL | PS_EVT_GPD_SIGMA_FLOOR;
    if ((prev->flags & cold) || n < o->min_mle || n == 0 || o->xi_min == o->xi_max) return -1;
    if (!(prev->sigma > 0) || !isfinite(prev->xi) || !isfinite(prev->sigma)) return -1;

    warm_data d = {.y = y, .n = n};
    double a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = y[i];
        if (v > d.ymax) d.ymax = v;
        a1 += v;
        a2 += v * v;
        a3 += v * v * v;
    }
    if (!(d.ymax >= 1 / WARM_RANGE && d.ymax <= WARM_RANGE)) return -1;
    double nn = (double)n;
    d.inv = 1 / d.ymax;
    d.mean = a1 / nn;
    d.b1 = a1 * d.inv;
    d.b2 = a2 * d.inv * d.inv;
    d.b3 = a3 * d.inv * d.inv * d.inv;
    d.d1_0 = nn * d.b2 / (2 * d.b1) - d.b1;
    d.d2_0 = d.b2 - nn * (2 * d.b3 / (3 * d.b1) - d.b2 * d.b2 / (4 * d.b1 * d.b1));

    warm_point w = {.psi = prev->xi / prev->sigma * d.ymax};
    if (!isfinite(w.psi) || !(w.psi > -1)) return -1;
    /*
     * The bracket: F' > 0 at lo once lo_known, F' < 0 at hi. With xi_min = 0
     * lo starts at psi = 0, the bound (whose F' the moments give), else at
     * the support's edge.
     */
    double lo = o->xi_min == 0 ? 0 : -1, hi = INFINITY;
    int lo_known = 0;
    if (o->xi_min == 0 && w.psi < 0) w.psi = 0;

    double xi = 0, s = 0, psi = 0; /* the answer: xi, S and psi there */
    int done = 0;                  /* 1: the exponential, 2: (psi, s) */
    int bound = (prev->flags & PS_EVT_GPD_XI_AT_MAX)                    ? 1
                : (prev->flags & PS_EVT_GPD_XI_AT_MIN) && o->xi_min < 0 ? -1
                                                                        : 0;
    if (bound) {
        /* Last on a bound: still there if l* still rises towards it. */
        double b = bound > 0 ? o->xi_max : o->xi_min, pb, sb;
        if (warm_bound(&d, b, &w, &pb, &sb)) return -1;
        double d1 = w.d1 + (pb - w.psi) * w.d2; /* F' at pb, to first order */
        if (bound * d1 > 0) {
            psi = pb;
            s = sb;
            done = 2;
        } else if (bound > 0) {
            hi = pb;
        } else {
            lo = pb;
            lo_known = 1;
        }
        w.psi = pb;
    }
    for (int it = 0; it < WARM_MAX_STEPS && !done; it++) {
        if (warm_eval(&d, &w)) return -1;
        if (w.psi == 0 && o->xi_min == 0 && w.d1 <= 0) {
            done = 1; /* the maximum is on the bound xi = 0 */
            break;
        }
        xi = w.s / nn;
        if (!(w.d2 < 0) || !(xi >= o->xi_min && xi <= o->xi_max)) return -1;
        if (w.d1 > 0) {
            lo = w.psi;
            lo_known = 1;
        } else {
            hi = w.psi;
        }
        double step = -w.d1 / w.d2, next = w.psi + step;
        if (next > lo && next < hi) {
            if (fabs(step * warm_dv(&d, w.psi)) <= WARM_ACCEPT) {
                /* Converged: the step is taken without another pass, S to third order. */
                psi = next;
                s = w.s + step * (w.t - 0.5 * step * w.u);
                done = 2;
            }
        } else if (lo_known && isfinite(hi)) {
            next = 0.5 * (lo + hi);
        } else if (!lo_known && next <= lo) {
            next = o->xi_min == 0 ? 0 : warm_clamp(w.psi, next); /* try the bound, or the edge */
        } else {
            return -1;
        }
        w.psi = next;
    }
    if (!done) return -1;

    memset(g, 0, sizeof *g);
    g->n = n;
    if (done == 1) {
        g->xi = 0;
        g->sigma = d.mean;
        g->loglik = -nn * (log(d.mean) + 1);
    } else {
        if (psi == 0 || !(s / psi > 0)) return -1;
        xi = s / nn;
        /* A bound reached to rounding is the bound. */
        if (xi > o->xi_max) xi = o->xi_max;
        if (xi < o->xi_min) xi = o->xi_min;
        g->xi = xi;
        g->sigma = s / psi * d.ymax / nn;
        if (!(g->sigma > 0) || !isfinite(g->sigma)) return -1;
        /* l* there: sum log(1 + xi y / sigma) = S = n xi. */
        g->loglik = -nn * log(g->sigma) - xi * nn - nn;
    }
    if (g->xi <= o->xi_min + BOUND_TOL) g->flags |= PS_EVT_GPD_XI_AT_MIN;
    if (g->xi >= o->xi_max - BOUND_TOL) g->flags |= PS_EVT_GPD_XI_AT_MAX;
    if (g->sigma < o->sigma_floor) {
        g->sigma = o->sigma_floor;
        g->flags |= PS_EVT_GPD_SIGMA_FLOOR;
        g->loglik = gpd_loglik(y, n, g->xi, g->sigma);
    }
    return 0;
}

double ps_evt_gpd_log_survival(const ps_evt_gpd *g, double y)
{
    if (isnan(y)) return NAN;
    if (y <= 0) return 0;
    if (g->xi == 0) return -y / g->sigma;
    double z = g->xi * y / g->sigma;
    if (!(z > -1)) return -INFINITY; /* beyond the end of a bounded tail */
    return -log1p(z) / g->xi;
}

double ps_evt_gpd_quantile(const ps_evt_gpd *g, double log_p)
{
    if (isnan(log_p)) return NAN;
    if (log_p >= 0) return 0;
    if (g->xi == 0) return -g->sigma * log_p;
    /* sigma ((p)^-xi - 1) / xi, via expm1 so that small xi keeps its digits. */
    return g->sigma * expm1(-g->xi * log_p) / g->xi;
}

/* ---- the PFP map ----------------------------------------------------------- */

/*
 * Below this log(h p), r = 1 - (1 - p)^h is h p to double precision (the
 * next term is h p / 2 relative), and p itself may underflow.
 */
#define PFP_SMALL_LOG -30.0

double ps_evt_pfp_map(double log_tail, double horizon)
{
    const double e = PS_EVT_PFP_EXACT;
    if (isnan(log_tail)) return NAN;
    if (!(horizon > 0) || !isfinite(horizon)) horizon = 1;
    if (log_tail >= 0) return 0;
    double log_r;
    if (log_tail + log(horizon) < PFP_SMALL_LOG) {
        log_r = log(horizon) + log_tail;
    } else {
        double a = horizon * log1p(-exp(log_tail)); /* log (1 - p)^h */
        double r = -expm1(a);
        if (r >= e) return exp(a);
        log_r = log(r);
    }
    return 1 - e / (1 + log(e) - log_r);
}

double ps_evt_pfp_map_inverse(double pfp, double horizon)
{
    const double e = PS_EVT_PFP_EXACT;
    if (isnan(pfp)) return NAN;
    if (!(horizon > 0) || !isfinite(horizon)) horizon = 1;
    if (pfp <= 0) return 0;
    if (pfp >= 1) return -INFINITY;
    if (pfp <= 1 - e) return log(-expm1(log(pfp) / horizon));
    double log_r = 1 + log(e) - e / (1 - pfp);
    if (log_r < PFP_SMALL_LOG) return log_r - log(horizon);
    return log(-expm1(log1p(-exp(log_r)) / horizon));
}

/* ---- the peaks-over-threshold model ---------------------------------------- */

#define MAX_CAPACITY (1u << 24) /* a sanity bound on ring capacities */

ps_evt_options ps_evt_default_options(void)
{
    ps_evt_gpd_options g = {.xi_min = 0, .xi_max = 1, .min_mle = 20, .sigma_floor = 0};
    return (ps_evt_options){.level = 0.98,
                            .min_tail = 20,
                            .window = 512,
                            .max_excess = 256,
                            .refit_every = 64,
                            .horizon = 1,
                            .floor_abs = 1e-3,
                            .floor_rel = 1e-2,
                            .gpd = g};
}

double ps_evt_exceed_prob(const ps_evt *e)
{
    /*
     * Of n exchangeable scores with k above t, the next one exceeds t with
     * probability (k + 1) / (n + 1) when t is an order statistic of them:
     * never 0, so a constant history still leaves room above it.
     */
    return ((double)e->n_exc + 1) / ((double)e->n_obs + 1);
}

static double sigma_floor(const ps_evt *e)
{
    return e->opt.floor_abs + e->opt.floor_rel * fabs(e->threshold);
}

/*
 * Refit the GPD to the excesses. Online (warm), from the last fit where the
 * warm refit can vouch for its answer, except on every WARM_FULL_EVERY-th
 * excess; the full fit otherwise. Either way a function of the state alone,
 * so a model restored from a snapshot refits exactly as the original would.
 */
static void refit_tail(ps_evt *e, int warm)
{
    ps_evt_gpd_options o = e->opt.gpd;
    o.sigma_floor = sigma_floor(e);
    ps_evt_gpd g;
    if (warm && e->n_exc % WARM_FULL_EVERY != 0 &&
        gpd_refit_warm(e->excess, e->excess_len, &o, &e->gpd, &g) == 0) {
        e->gpd = g;
        return;
    }
    /* Cannot fail: options were checked at init and excesses are finite and > 0. */
    ps_evt_gpd_fit(e->excess, e->excess_len, &o, &e->gpd);
}

/*
 * Body knots from the sorted scores at or below t (either sd or sf, c >= 1).
 * Knot i sits at the tail probability phi^(i / (K - 1)): from 1 at the
 * smallest score to phi at t, evenly in log p, which is where a PFP needs
 * its resolution (log p is linear in s for an exponential body).
 */
static void set_knots(ps_evt *e, const double *sd, const float *sf, size_t c)
{
    double phi = ps_evt_exceed_prob(e);
    for (int i = 0; i < PS_EVT_KNOTS; i++) {
        double ci;
        if (i == 0)
            ci = 1;
        else if (i == PS_EVT_KNOTS - 1)
            ci = 0;
        else
            ci = (pow(phi, (double)i / (PS_EVT_KNOTS - 1)) - phi) / (1 - phi);
        /* The empirical quantile at 1 - ci, interpolated between order statistics. */
        double pos = (1 - ci) * (double)(c - 1);
        size_t j = (size_t)pos;
        if (j > c - 1) j = c - 1;
        double a = sd ? sd[j] : sf[j];
        double s = a;
        if (j + 1 < c) s = a + (pos - (double)j) * ((sd ? sd[j + 1] : sf[j + 1]) - a);
        if (i > 0 && s < e->knot_s[i - 1]) s = e->knot_s[i - 1];
        if (s > e->threshold) s = e->threshold;
        e->knot_s[i] = s;
        e->knot_c[i] = ci;
    }
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static int cmp_float(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a > b) - (a < b);
}

static void refresh_body(ps_evt *e)
{
    size_t c = 0;
    for (uint32_t i = 0; i < e->window_len; i++)
        if ((double)e->window[i] <= e->threshold) e->scratch[c++] = e->window[i];
    /* A window entirely above t (a drift up) keeps the last body it had. */
    if (c == 0) return;
    qsort(e->scratch, c, sizeof(float), cmp_float);
    set_knots(e, NULL, e->scratch, c);
}

static void push_window(ps_evt *e, double s)
{
    /* The window is float to halve its size; a score beyond float's range is clamped. */
    float f = s > 3.0e38 ? 3.0e38f : s < -3.0e38 ? -3.0e38f : (float)s;
    if (e->window_len < e->opt.window) {
        e->window[e->window_len++] = f;
    } else {
        e->window[e->window_head] = f;
        e->window_head = (e->window_head + 1) % e->opt.window;
    }
}

static void push_excess(ps_evt *e, double y)
{
    if (e->excess_len < e->opt.max_excess) {
        e->excess[e->excess_len++] = y;
    } else {
        e->excess[e->excess_head] = y;
        e->excess_head = (e->excess_head + 1) % e->opt.max_excess;
    }
}

static int options_ok(const ps_evt_options *o)
{
    return o->level > 0 && o->level < 1 && o->window >= 1 && o->window <= MAX_CAPACITY &&
           o->max_excess >= 1 && o->max_excess <= MAX_CAPACITY && o->refit_every >= 1 &&
           o->horizon > 0 && isfinite(o->horizon) && o->floor_abs > 0 && isfinite(o->floor_abs) &&
           o->floor_rel >= 0 && isfinite(o->floor_rel) && gpd_options_ok(&o->gpd);
}

int ps_evt_init(ps_evt *e, const double *x, size_t n, const ps_evt_options *opt, char *err,
                size_t errlen)
{
    if (!e) return ps_fail(err, errlen, PS_EINVAL, "EVT init: NULL model");
    memset(e, 0, sizeof *e);
    e->opt = opt ? *opt : ps_evt_default_options();
    if (!options_ok(&e->opt)) return ps_fail(err, errlen, PS_EINVAL, "EVT init: bad options");
    if (n > 0 && !x) return ps_fail(err, errlen, PS_EINVAL, "EVT init: NULL calibration batch");

    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += isfinite(x[i]) != 0;
    if (m == 0)
        return ps_fail(err, errlen, PS_EINVAL,
                       "EVT init: no finite score among the %zu of the calibration batch", n);

    size_t w = e->opt.window, me = e->opt.max_excess;
    double *sorted = malloc(m * sizeof(double));
    /* One block: excesses (double) first, so the floats after them stay aligned. */
    char *block = malloc(me * sizeof(double) + 2 * w * sizeof(float));
    if (!sorted || !block) {
        free(sorted);
        free(block);
        return ps_fail(err, errlen, PS_ENOMEM, "EVT init: out of memory");
    }
    e->excess = (double *)(void *)block;
    e->window = (float *)(void *)(block + me * sizeof(double));
    e->scratch = e->window + w;

    m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) sorted[m++] = x[i];
    qsort(sorted, m, sizeof(double), cmp_double);

    /* k scores above t: the level's share, at least min(min_tail, m / 4), at most m - 1. */
    /* (less a hair, so that 0.02 * 50000 rounds to 1000 whatever 1 - 0.98 rounds to) */
    size_t k = (size_t)ceil((1 - e->opt.level) * (double)m * (1 - 1e-12));
    size_t kmin = e->opt.min_tail < m / 4 ? e->opt.min_tail : m / 4;
    if (k < kmin) k = kmin;
    if (k > m - 1) k = m - 1;
    e->threshold = sorted[m - 1 - k];

    /* Ties at t leave fewer than k strictly above it; only those are excesses. */
    size_t above = 0;
    while (above < m && sorted[m - 1 - above] > e->threshold)
        above++;
    e->n_obs = m;
    e->n_exc = above;

    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) continue;
        push_window(e, x[i]);
        if (x[i] > e->threshold) push_excess(e, x[i] - e->threshold);
    }
    set_knots(e, sorted, NULL, m - above);
    free(sorted);
    refit_tail(e, 0);
    return 0;
}

void ps_evt_free(ps_evt *e)
{
    if (!e) return;
    free(e->excess); /* the head of the one block */
    memset(e, 0, sizeof *e);
}

int ps_evt_update(ps_evt *e, double score, int unstable)
{
    if (!e || !e->window) return PS_EINVAL;
    if (unstable) return 0;
    if (!isfinite(score)) return PS_EINVAL;
    e->n_obs++;
    push_window(e, score);
    if (score > e->threshold) {
        e->n_exc++;
        push_excess(e, score - e->threshold);
        refit_tail(e, 1);
    }
    if (++e->since_refresh >= e->opt.refit_every) {
        refresh_body(e);
        e->since_refresh = 0;
    }
    return 0;
}

/*
 * A fitted xi < 0 says the tail ends at sigma / -xi, so every score beyond
 * would get probability 0 and PFP 1: distinct extremes would tie, and a
 * shape that is negative only by sampling noise would make a finite end out
 * of nothing. So where the GPD's hazard 1 / (sigma + xi y) reaches
 * PS_EVT_HAZARD_CAP times its value at t, the tail continues as the
 * exponential with that hazard (its tangent in log p): smooth, unbounded,
 * and still far lighter than anything the history saw.
 */
static double cap_point(const ps_evt_gpd *g)
{
    return (1 - 1 / PS_EVT_HAZARD_CAP) * g->sigma / -g->xi;
}

static double tail_log_surv(const ps_evt_gpd *g, double y)
{
    if (g->xi < 0) {
        double yc = cap_point(g);
        if (y > yc) return ps_evt_gpd_log_survival(g, yc) - PS_EVT_HAZARD_CAP * (y - yc) / g->sigma;
    }
    return ps_evt_gpd_log_survival(g, y);
}

static double tail_quantile(const ps_evt_gpd *g, double log_p)
{
    if (g->xi < 0) {
        double yc = cap_point(g), lc = ps_evt_gpd_log_survival(g, yc);
        if (log_p < lc) return yc + (lc - log_p) * g->sigma / PS_EVT_HAZARD_CAP;
    }
    return ps_evt_gpd_quantile(g, log_p);
}

/* log P(S > knot i) now: the knot's conditional survival under today's phi. */
static double knot_log_p(const ps_evt *e, double phi, int i)
{
    return log(phi + (1 - phi) * e->knot_c[i]);
}

double ps_evt_log_tail(const ps_evt *e, double s)
{
    if (isnan(s)) return NAN;
    double phi = ps_evt_exceed_prob(e);
    if (s > e->threshold) return log(phi) + tail_log_surv(&e->gpd, s - e->threshold);
    if (s < e->knot_s[0]) return 0;
    if (s >= e->knot_s[PS_EVT_KNOTS - 1]) return log(phi);
    /* The last knot at or below s; s < knot_s[K-1], so i <= K - 2 and knot_s[i+1] > s. */
    int lo = 0, hi = PS_EVT_KNOTS - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (e->knot_s[mid] <= s)
            lo = mid;
        else
            hi = mid;
    }
    double a = knot_log_p(e, phi, lo), b = knot_log_p(e, phi, lo + 1);
    double f = (s - e->knot_s[lo]) / (e->knot_s[lo + 1] - e->knot_s[lo]);
    return a + f * (b - a);
}

double ps_evt_tail(const ps_evt *e, double s)
{
    return exp(ps_evt_log_tail(e, s));
}

double ps_evt_pfp(const ps_evt *e, double s)
{
    return ps_evt_pfp_map(ps_evt_log_tail(e, s), e->opt.horizon);
}

double ps_evt_risk_level_log(const ps_evt *e, double log_q)
{
    if (isnan(log_q)) return NAN;
    double phi = ps_evt_exceed_prob(e), log_phi = log(phi);
    if (log_q >= 0) return e->knot_s[0];
    if (log_q < log_phi) return e->threshold + tail_quantile(&e->gpd, log_q - log_phi);
    /* In the body: the segment whose log p spans log_q (log p falls from 0 to log phi). */
    double a = 0;
    for (int i = 0; i + 1 < PS_EVT_KNOTS; i++) {
        double b = knot_log_p(e, phi, i + 1);
        if (log_q >= b) {
            double ds = e->knot_s[i + 1] - e->knot_s[i];
            return a > b ? e->knot_s[i] + (a - log_q) / (a - b) * ds : e->knot_s[i];
        }
        a = b;
    }
    return e->knot_s[PS_EVT_KNOTS - 1];
}

double ps_evt_risk_level(const ps_evt *e, double q)
{
    if (isnan(q)) return NAN;
    return ps_evt_risk_level_log(e, q > 0 ? log(q) : -INFINITY);
}

double ps_evt_pfp_threshold(const ps_evt *e, double pfp)
{
    return ps_evt_risk_level_log(e, ps_evt_pfp_map_inverse(pfp, e->opt.horizon));
}

/* ---- snapshots ------------------------------------------------------------ */

enum {
    /* present, threshold, gpd (xi, sigma, loglik, n, flags), n_obs, n_exc,
     * window (cap, len, head), excess (cap, len, head), since_refresh, knots */
    EVT_FIXED_BYTES = 1 + 8 + (8 * 3 + 8 + 4) + 8 + 8 + 4 * 3 + 4 * 3 + 4 + 2 * 8 * PS_EVT_KNOTS,
};

size_t ps_evt_state_size(const ps_evt *e)
{
    if (!e->window) return 1;
    return EVT_FIXED_BYTES + (size_t)e->window_len * 4 + (size_t)e->excess_len * 8;
}

int ps_evt_state_export(const ps_evt *e, uint8_t *buf, size_t len)
{
    if (!e || !buf || len < ps_evt_state_size(e)) return PS_EINVAL;
    ps_wcur w = ps_wcur_init(buf, len);
    ps_w_u8(&w, e->window != NULL);
    if (!e->window) return PS_OK;
    ps_w_f64(&w, e->threshold);
    ps_w_f64(&w, e->gpd.xi);
    ps_w_f64(&w, e->gpd.sigma);
    ps_w_f64(&w, e->gpd.loglik);
    ps_w_u64(&w, e->gpd.n);
    ps_w_u32(&w, e->gpd.flags);
    ps_w_u64(&w, e->n_obs);
    ps_w_u64(&w, e->n_exc);
    ps_w_u32(&w, e->opt.window);
    ps_w_u32(&w, e->window_len);
    ps_w_u32(&w, e->window_head);
    ps_w_u32(&w, e->opt.max_excess);
    ps_w_u32(&w, e->excess_len);
    ps_w_u32(&w, e->excess_head);
    ps_w_u32(&w, e->since_refresh);
    for (int i = 0; i < PS_EVT_KNOTS; i++)
        ps_w_f64(&w, e->knot_s[i]);
    for (int i = 0; i < PS_EVT_KNOTS; i++)
        ps_w_f64(&w, e->knot_c[i]);
    for (uint32_t i = 0; i < e->window_len; i++)
        ps_w_f32(&w, e->window[i]);
    for (uint32_t i = 0; i < e->excess_len; i++)
        ps_w_f64(&w, e->excess[i]);
    return w.over ? PS_EINVAL : PS_OK;
}

/* A ring of capacity cap fills from 0 with its head at 0, then wraps. */
static int ring_ok(uint32_t cap, uint32_t n, uint32_t head)
{
    return n <= cap && (n < cap ? head == 0 : head < cap);
}

/* The fixed part of a snapshot, checked: everything but the ring values. */
static int evt_decode_fixed(ps_rcur *r, const ps_evt_options *opt, ps_evt *t, char *err,
                            size_t errlen)
{
    t->threshold = ps_r_f64(r);
    t->gpd.xi = ps_r_f64(r);
    t->gpd.sigma = ps_r_f64(r);
    t->gpd.loglik = ps_r_f64(r);
    uint64_t gn = ps_r_u64(r);
    t->gpd.flags = ps_r_u32(r);
    t->n_obs = ps_r_u64(r);
    t->n_exc = ps_r_u64(r);
    uint32_t wcap = ps_r_u32(r);
    t->window_len = ps_r_u32(r);
    t->window_head = ps_r_u32(r);
    uint32_t ecap = ps_r_u32(r);
    t->excess_len = ps_r_u32(r);
    t->excess_head = ps_r_u32(r);
    t->since_refresh = ps_r_u32(r);
    for (int i = 0; i < PS_EVT_KNOTS; i++)
        t->knot_s[i] = ps_r_f64(r);
    for (int i = 0; i < PS_EVT_KNOTS; i++)
        t->knot_c[i] = ps_r_f64(r);
    if (r->shrt) return ps_fail(err, errlen, PS_EINVAL, "EVT state truncated in its fixed part");
    if (wcap != opt->window || ecap != opt->max_excess)
        return ps_fail(err, errlen, PS_EINVAL,
                       "EVT state has rings of %u scores and %u excesses, the options %u and %u",
                       (unsigned)wcap, (unsigned)ecap, (unsigned)opt->window,
                       (unsigned)opt->max_excess);
    if (!ring_ok(wcap, t->window_len, t->window_head) ||
        !ring_ok(ecap, t->excess_len, t->excess_head))
        return ps_fail(err, errlen, PS_EINVAL,
                       "EVT state: ring length or head out of range (window %u at %u of %u, "
                       "excesses %u at %u of %u)",
                       (unsigned)t->window_len, (unsigned)t->window_head, (unsigned)wcap,
                       (unsigned)t->excess_len, (unsigned)t->excess_head, (unsigned)ecap);
    if (gn > t->excess_len || t->n_exc > t->n_obs || t->since_refresh >= opt->refit_every)
        return ps_fail(err, errlen, PS_EINVAL,
                       "EVT state: counts out of range (fit of %llu excesses, %llu above t of "
                       "%llu, %u updates since the refresh)",
                       (unsigned long long)gn, (unsigned long long)t->n_exc,
                       (unsigned long long)t->n_obs, (unsigned)t->since_refresh);
    t->gpd.n = (size_t)gn;
    if (!isfinite(t->threshold) || !isfinite(t->gpd.xi) || !(t->gpd.sigma > 0) ||
        !isfinite(t->gpd.sigma) || isnan(t->gpd.loglik))
        return ps_fail(err, errlen, PS_EINVAL,
                       "EVT state: threshold %g or tail (xi %g, sigma %g) not finite or sigma <= 0",
                       t->threshold, t->gpd.xi, t->gpd.sigma);
    for (int i = 0; i < PS_EVT_KNOTS; i++) {
        double s = t->knot_s[i], c = t->knot_c[i];
        if (!isfinite(s) || s > t->threshold || (i > 0 && s < t->knot_s[i - 1]) || !(c >= 0) ||
            !(c <= 1) || (i > 0 && c > t->knot_c[i - 1]))
            return ps_fail(err, errlen, PS_EINVAL,
                           "EVT state: knot %d (%g, %g) not finite, not ordered or out of range", i,
                           s, c);
    }
    return PS_OK;
}

int ps_evt_state_import(ps_evt *e, const ps_evt_options *opt, const uint8_t *buf, size_t len,
                        char *err, size_t errlen)
{
    if (!e || !opt || (!buf && len))
        return ps_fail(err, errlen, PS_EINVAL, "EVT import: NULL argument");
    if (!options_ok(opt)) return ps_fail(err, errlen, PS_EINVAL, "EVT import: bad options");
    ps_rcur r = ps_rcur_init(buf, len);
    uint8_t present = ps_r_u8(&r);
    if (r.shrt || present > 1)
        return ps_fail(err, errlen, PS_EINVAL, "EVT state: %s",
                       r.shrt ? "empty" : "bad presence byte");
    ps_evt t;
    memset(&t, 0, sizeof t);
    t.opt = *opt;
    if (present) {
        int rc = evt_decode_fixed(&r, opt, &t, err, errlen);
        if (rc) return rc;
        size_t need = (size_t)t.window_len * 4 + (size_t)t.excess_len * 8;
        if (ps_rcur_left(&r) != need)
            return ps_fail(
                err, errlen, PS_EINVAL,
                "EVT state: %zu bytes of ring values, %u scores and %u excesses need %zu",
                ps_rcur_left(&r), (unsigned)t.window_len, (unsigned)t.excess_len, need);
        size_t w = opt->window, me = opt->max_excess;
        char *block = malloc(me * sizeof(double) + 2 * w * sizeof(float));
        if (!block) return ps_fail(err, errlen, PS_ENOMEM, "EVT import: out of memory");
        t.excess = (double *)(void *)block;
        t.window = (float *)(void *)(block + me * sizeof(double));
        t.scratch = t.window + w;
        for (uint32_t i = 0; i < t.window_len && !rc; i++)
            if (!isfinite(t.window[i] = ps_r_f32(&r)))
                rc = ps_fail(err, errlen, PS_EINVAL, "EVT state: score %u of the window is %g",
                             (unsigned)i, (double)t.window[i]);
        for (uint32_t i = 0; i < t.excess_len && !rc; i++)
            if (!((t.excess[i] = ps_r_f64(&r)) >= 0) || !isfinite(t.excess[i]))
                rc = ps_fail(err, errlen, PS_EINVAL, "EVT state: excess %u is %g", (unsigned)i,
                             t.excess[i]);
        if (rc) {
            free(block);
            return rc;
        }
    } else if (ps_rcur_left(&r) != 0) {
        return ps_fail(err, errlen, PS_EINVAL, "EVT state: %zu bytes after an empty model",
                       ps_rcur_left(&r));
    }
    ps_evt_free(e);
    *e = t;
    return PS_OK;
}
