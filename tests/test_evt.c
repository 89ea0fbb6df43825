/*
 * test_evt.c - the GPD fit, the peaks-over-threshold model and the PFP map.
 *
 * The fit is checked where the truth is known: GPD samples drawn by inverse
 * transform, whose parameters must come back within 4 asymptotic standard
 * errors. For xi > -1/2 the MLE is asymptotically normal with (Smith 1984;
 * Hosking and Wallis 1987)
 *
 *     var(xi^) ~ (1 + xi)^2 / n,   var(sigma^ / sigma) ~ 2 (1 + xi) / n,
 *     cov(xi^, sigma^ / sigma) ~ (1 + xi) / n,
 *
 * and a small Monte Carlo checks that the spread of the estimates matches.
 * The fitted point must also be a maximum of an independently written
 * likelihood. The tail model is checked against the true survival of
 * exponential and Pareto streams (for which the excesses over any threshold
 * are exactly GPD), within 4 standard errors from the delta method; and on
 * fine grids for monotonicity, continuity at t, degenerate batches, bounded
 * state and the 'unstable' flag. Figures quoted in docs/pfp.md are printed.
 */
#include "core/evt.h"
#include "core/rng.h"
#include "testutil.h"

#include <string.h>
#include <time.h>

/* ---- helpers -------------------------------------------------------------- */

/* One GPD(xi, sigma) variate by inverse transform. */
static double gpd_draw(ps_rng *r, double xi, double sigma)
{
    double lp = log1p(-ps_rng_uniform(r)); /* log of a uniform in (0, 1] */
    return xi == 0 ? -sigma * lp : sigma * expm1(-xi * lp) / xi;
}

/* The GPD log-likelihood written from the density, independently of evt.c. */
static double loglik(const double *y, size_t n, double xi, double sigma)
{
    if (!(sigma > 0)) return -INFINITY;
    double s = -(double)n * log(sigma);
    for (size_t i = 0; i < n; i++) {
        double z = y[i] / sigma;
        if (fabs(xi) < 1e-12) {
            s -= z;
        } else {
            if (1 + xi * z <= 0) return -INFINITY;
            s -= (1 / xi + 1) * log(1 + xi * z);
        }
    }
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- GPD parameter recovery ----------------------------------------------- */

static void test_gpd_recovery(void)
{
    static const struct {
        double xi, sigma;
        size_t n;
    } cases[] = {
        {0.0, 1.0, 5000},   {0.2, 2.0, 5000},  {0.5, 1.0, 5000},   {-0.2, 1.0, 5000},
        {0.0, 0.01, 10000}, {0.2, 1e-3, 2000}, {0.5, 50.0, 10000}, {-0.2, 3.0, 2000},
        {-0.4, 1.0, 10000}, {1.0, 1.0, 5000},
    };
    ps_rng rng;
    ps_rng_seed(&rng, 20240901);
    printf("GPD recovery (default options: xi in [-0.5, 2]); error in asymptotic SEs\n");
    printf("%6s %8s %6s | %9s %8s %6s | %9s %8s %6s\n", "xi", "sigma", "n", "xi^", "se", "z",
           "sig^/sig", "se", "z");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double xi = cases[c].xi, sigma = cases[c].sigma;
        size_t n = cases[c].n;
        double *y = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            y[i] = gpd_draw(&rng, xi, sigma);
        ps_evt_gpd g;
        CHECK(ps_evt_gpd_fit(y, n, NULL, &g) == 0);
        double se_xi = (1 + xi) / sqrt((double)n);
        double se_s = sqrt(2 * (1 + xi) / (double)n);
        double zx = (g.xi - xi) / se_xi, zs = (g.sigma / sigma - 1) / se_s;
        printf("%6.2f %8.3g %6zu | %9.4f %8.4f %6.2f | %9.4f %8.4f %6.2f\n", xi, sigma, n, g.xi,
               se_xi, zx, g.sigma / sigma, se_s, zs);
        CHECKF(fabs(zx) <= 4, "xi %g: xi^ = %g", xi, g.xi);
        CHECKF(fabs(zs) <= 4, "xi %g sigma %g: sigma^ = %g", xi, sigma, g.sigma);
        CHECK(g.n == n);
        CHECK((g.flags & (PS_EVT_GPD_DEGENERATE | PS_EVT_GPD_EXPONENTIAL)) == 0);

        /* A maximum of the likelihood: nothing nearby, nor the truth, does better. */
        double l0 = loglik(y, n, g.xi, g.sigma);
        CHECK_NEAR(g.loglik, l0, 1e-7 * fabs(l0));
        CHECK(l0 >= loglik(y, n, xi, sigma) - 1e-9 * fabs(l0));
        for (int dx = -1; dx <= 1; dx++)
            for (int ds = -1; ds <= 1; ds++) {
                double xi2 = g.xi + 1e-3 * dx, s2 = g.sigma * (1 + 1e-3 * ds);
                if (xi2 < -0.5) continue;
                CHECKF(l0 >= loglik(y, n, xi2, s2) - 1e-9 * fabs(l0),
                       "xi %g: (%g, %g) beats the fit (%g, %g)", xi, xi2, s2, g.xi, g.sigma);
            }
        free(y);
    }
}

/* The spread of xi^ over replications matches the asymptotic standard error. */
static void test_gpd_monte_carlo(void)
{
    enum { R = 40, N = 2000 };
    static const double xis[] = {-0.2, 0.0, 0.2, 0.5};
    ps_rng rng;
    ps_rng_seed(&rng, 7);
    double *y = malloc(N * sizeof(double));
    printf("GPD Monte Carlo, %d samples of %d: mean and sd of xi^ vs asymptotic sd\n", R, N);
    for (size_t c = 0; c < sizeof xis / sizeof xis[0]; c++) {
        double xi = xis[c], sx = 0, sxx = 0, ss = 0, sss = 0;
        for (int r = 0; r < R; r++) {
            for (int i = 0; i < N; i++)
                y[i] = gpd_draw(&rng, xi, 1.0);
            ps_evt_gpd g;
            CHECK(ps_evt_gpd_fit(y, N, NULL, &g) == 0);
            sx += g.xi;
            sxx += g.xi * g.xi;
            ss += g.sigma;
            sss += g.sigma * g.sigma;
        }
        double mx = sx / R, sdx = sqrt((sxx - R * mx * mx) / (R - 1));
        double ms = ss / R, sds = sqrt((sss - R * ms * ms) / (R - 1));
        double ax = (1 + xi) / sqrt((double)N), as = sqrt(2 * (1 + xi) / (double)N);
        printf("  xi %5.2f: mean xi^ %7.4f  sd %6.4f (asymptotic %6.4f) | mean sig^ %6.4f  sd "
               "%6.4f (asymptotic %6.4f)\n",
               xi, mx, sdx, ax, ms, sds, as);
        /* The mean of R estimates is within 4 of its standard errors; the MLE's O(1/n) bias is far
         * smaller. */
        CHECK(fabs(mx - xi) <= 4 * ax / sqrt((double)R));
        CHECK(fabs(ms - 1) <= 4 * as / sqrt((double)R));
        /* An sd from 40 draws is within about 25 % of the truth (chi-square, 40 df, 99.9 %). */
        CHECK(sdx > 0.6 * ax && sdx < 1.45 * ax);
        CHECK(sds > 0.6 * as && sds < 1.45 * as);
    }
    free(y);
}

static void test_gpd_exponential_and_bounds(void)
{
    ps_rng rng;
    ps_rng_seed(&rng, 99);
    size_t n = 8000;
    double *y = malloc(n * sizeof(double));

    /* Exponential data: xi^ ~ 0 free, and exactly 0 or a little above under xi >= 0. */
    for (size_t i = 0; i < n; i++)
        y[i] = gpd_draw(&rng, 0, 2.5);
    ps_evt_gpd g;
    CHECK(ps_evt_gpd_fit(y, n, NULL, &g) == 0);
    CHECK(fabs(g.xi) <= 4 / sqrt((double)n));
    ps_evt_gpd_options o = ps_evt_default_options().gpd;
    CHECK(ps_evt_gpd_fit(y, n, &o, &g) == 0);
    CHECK(g.xi >= 0 && g.xi <= 4 / sqrt((double)n));
    CHECK(fabs(g.sigma / 2.5 - 1) <= 4 * sqrt(2.0 / (double)n));
    printf("exponential sample, xi in [0, 1]: xi^ = %.5f, sigma^ = %.4f (2.5)\n", g.xi, g.sigma);

    /* Pinned to the exponential: the mean excess. */
    o.xi_max = 0;
    CHECK(ps_evt_gpd_fit(y, n, &o, &g) == 0);
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += y[i] / (double)n;
    CHECK(g.xi == 0 && (g.flags & PS_EVT_GPD_EXPONENTIAL));
    CHECK_NEAR(g.sigma, mean, 1e-12 * mean);

    /* A tail heavier than xi_max: the fit sits on the bound and says so. */
    for (size_t i = 0; i < n; i++)
        y[i] = gpd_draw(&rng, 1.6, 1.0);
    o = ps_evt_default_options().gpd; /* xi_max = 1 */
    CHECK(ps_evt_gpd_fit(y, n, &o, &g) == 0);
    CHECK((g.flags & PS_EVT_GPD_XI_AT_MAX) && fabs(g.xi - 1) <= 1e-5);
    CHECK(isfinite(g.sigma) && g.sigma > 0);

    /* Shorter than xi_min = -0.5: on the bound, finite, every excess inside the support. */
    for (size_t i = 0; i < n; i++)
        y[i] = gpd_draw(&rng, -0.8, 1.0);
    CHECK(ps_evt_gpd_fit(y, n, NULL, &g) == 0);
    CHECK((g.flags & PS_EVT_GPD_XI_AT_MIN) && fabs(g.xi + 0.5) <= 1e-5);
    CHECK(isfinite(g.loglik));

    /* Lower bound xi_min = -0.9 reaches xi = -0.8 (irregular, but bounded likelihood). */
    o = ps_evt_gpd_default_options();
    o.xi_min = -0.9;
    CHECK(ps_evt_gpd_fit(y, n, &o, &g) == 0);
    CHECK(fabs(g.xi + 0.8) < 0.05 && isfinite(g.loglik));
    printf("xi = -0.8 sample, xi_min = -0.9: xi^ = %.4f sigma^ = %.4f\n", g.xi, g.sigma);

    /* Survival and quantile are inverse; the bounded tail ends at sigma / -xi. */
    ps_evt_gpd h = {.xi = 0.3, .sigma = 2};
    for (double lp = -0.01; lp > -300; lp *= 1.7)
        CHECK_NEAR(ps_evt_gpd_log_survival(&h, ps_evt_gpd_quantile(&h, lp)), lp, 1e-9 * -lp);
    h.xi = -0.25;
    CHECK_NEAR(ps_evt_gpd_quantile(&h, -INFINITY), 8, 1e-12);
    CHECK(ps_evt_gpd_log_survival(&h, 8.5) == -INFINITY);
    h.xi = 0;
    CHECK_NEAR(ps_evt_gpd_quantile(&h, log(0.01)), 2 * log(100.0), 1e-12);
    h.xi = 1e-14; /* continuous in xi at 0 */
    CHECK_NEAR(ps_evt_gpd_log_survival(&h, 5), -2.5, 1e-9);

    /* What one refit of the default tail (256 excesses) costs. */
    o = ps_evt_default_options().gpd;
    double t0 = now_s();
    int reps = 200;
    for (int r = 0; r < reps; r++)
        ps_evt_gpd_fit(y + 7 * r, 256, &o, &g);
    printf("one fit of 256 excesses: %.0f us\n", 1e6 * (now_s() - t0) / reps);
    free(y);
}

static void test_gpd_degenerate(void)
{
    ps_evt_gpd g;
    ps_evt_gpd_options o = ps_evt_gpd_default_options();
    o.sigma_floor = 0.5;

    CHECK(ps_evt_gpd_fit(NULL, 0, &o, &g) == 0);
    CHECK((g.flags & PS_EVT_GPD_DEGENERATE) && g.xi == 0 && g.sigma == 0.5);
    CHECK(ps_evt_gpd_fit(NULL, 0, NULL, &g) == 0 && g.sigma == 1);

    double zeros[50] = {0};
    CHECK(ps_evt_gpd_fit(zeros, 50, &o, &g) == 0);
    CHECK((g.flags & PS_EVT_GPD_DEGENERATE) && g.sigma == 0.5 && isfinite(g.loglik));

    double same[100];
    for (int i = 0; i < 100; i++)
        same[i] = 3;
    CHECK(ps_evt_gpd_fit(same, 100, NULL, &g) == 0);
    CHECK(isfinite(g.xi) && isfinite(g.sigma) && g.sigma > 0 && isfinite(g.loglik));
    CHECK(g.xi >= -0.5 - 1e-12 && ps_evt_gpd_quantile(&g, -INFINITY) >= 3);
    ps_evt_gpd_options o0 = ps_evt_default_options().gpd;
    CHECK(ps_evt_gpd_fit(same, 100, &o0, &g) == 0);
    CHECK(g.xi == 0 && fabs(g.sigma - 3) < 1e-12);

    /* A handful: the exponential with the mean excess. */
    double few[5] = {0.5, 1, 2, 0.1, 4};
    CHECK(ps_evt_gpd_fit(few, 5, NULL, &g) == 0);
    CHECK((g.flags & PS_EVT_GPD_EXPONENTIAL) && g.xi == 0 && fabs(g.sigma - 1.52) < 1e-12);
    double one = 0.25;
    CHECK(ps_evt_gpd_fit(&one, 1, NULL, &g) == 0 && g.sigma == 0.25);
    /* Smaller than the floor: raised to it. */
    double tiny[3] = {1e-9, 2e-9, 3e-9};
    CHECK(ps_evt_gpd_fit(tiny, 3, &o, &g) == 0 && g.sigma == 0.5 &&
          (g.flags & PS_EVT_GPD_SIGMA_FLOOR));

    /* Huge excesses neither overflow nor lose the fit. */
    double big[40];
    ps_rng rng;
    ps_rng_seed(&rng, 3);
    for (int i = 0; i < 40; i++)
        big[i] = 1e300 * ps_rng_uniform(&rng);
    CHECK(ps_evt_gpd_fit(big, 40, NULL, &g) == 0 && isfinite(g.sigma) && isfinite(g.xi));

    /* Refused: negative, NaN, infinite excesses; bad options. */
    double bad[3] = {1, -1, 2};
    CHECK(ps_evt_gpd_fit(bad, 3, NULL, &g) == PS_EINVAL);
    bad[1] = NAN;
    CHECK(ps_evt_gpd_fit(bad, 3, NULL, &g) == PS_EINVAL);
    bad[1] = INFINITY;
    CHECK(ps_evt_gpd_fit(bad, 3, NULL, &g) == PS_EINVAL);
    CHECK(ps_evt_gpd_fit(NULL, 3, NULL, &g) == PS_EINVAL);
    o = ps_evt_gpd_default_options();
    o.xi_min = 0.1;
    CHECK(ps_evt_gpd_fit(few, 5, &o, &g) == PS_EINVAL);
    o = ps_evt_gpd_default_options();
    o.xi_min = -1.5;
    CHECK(ps_evt_gpd_fit(few, 5, &o, &g) == PS_EINVAL);
}

/* ---- the PFP map ---------------------------------------------------------- */

static void test_pfp_map(void)
{
    /* Exactly (1 - p)^h where 1 - (1 - p)^h >= 1e-6. */
    for (double h = 1; h <= 100; h *= 10)
        for (double p = 0.9; p > 1e-6 / h; p /= 3) {
            double want = pow(1 - p, h);
            CHECK_NEAR(ps_evt_pfp_map(log(p), h), want, 1e-12);
            CHECK_NEAR(ps_evt_pfp_map_inverse(want, h), log(p), 1e-6);
        }
    CHECK(ps_evt_pfp_map(0, 1) == 0);
    CHECK(ps_evt_pfp_map(0.5, 1) == 0);
    CHECK(ps_evt_pfp_map(-INFINITY, 1) == 1);
    CHECK(isnan(ps_evt_pfp_map(NAN, 1)));
    CHECK(ps_evt_pfp_map(log(0.5), 0) == 0.5); /* a bad horizon is 1 */
    CHECK(ps_evt_pfp_map(log(0.5), NAN) == 0.5);

    /* Continuous where the compression starts. */
    double lb = log(-expm1(log1p(-PS_EVT_PFP_EXACT) / 10));
    CHECK_NEAR(ps_evt_pfp_map(lb * (1 + 1e-12), 10), ps_evt_pfp_map(lb * (1 - 1e-12), 10), 1e-15);

    /* Monotone everywhere, and never 1 for a finite tail this side of e^-1e8. */
    for (double h = 1; h <= 1000; h *= 10) {
        double prev = -1;
        for (double lt = 0; lt > -1e8; lt = lt == 0 ? -1e-6 : lt * 1.001) {
            double f = ps_evt_pfp_map(lt, h);
            CHECKF(f >= prev && f >= 0 && f < 1, "h %g log tail %g: %.17g after %.17g", h, lt, f,
                   prev);
            if (!(f >= prev)) break;
            prev = f;
        }
    }
    /* Distinct extremes stay distinct: a PFP for every e-fold of rarity up to e^-10^5. */
    double prev = 0;
    for (double lt = -20; lt >= -1e5; lt *= 1.05) {
        double f = ps_evt_pfp_map(lt, 1);
        CHECKF(f > prev, "log tail %g: %.17g", lt, f);
        prev = f;
    }
    /* The inverse, across the compressed zone. */
    for (double pfp = 0.5; pfp < 1 - 1e-12; pfp = 1 - (1 - pfp) / 3)
        for (double h = 1; h <= 100; h *= 10) {
            double lt = ps_evt_pfp_map_inverse(pfp, h);
            CHECK_NEAR(ps_evt_pfp_map(lt, h), pfp, 1e-9 * (1 - pfp) + 1e-15);
        }
    printf("PFP map, h = 1: p = 1e-3 -> %.9f, 1e-6 -> %.9f, 1e-9 -> %.12f, 1e-30 -> %.12f, "
           "1e-300 -> %.12f\n",
           ps_evt_pfp_map(log(1e-3), 1), ps_evt_pfp_map(log(1e-6), 1), ps_evt_pfp_map(log(1e-9), 1),
           ps_evt_pfp_map(log(1e-30), 1), ps_evt_pfp_map(log(1e-300), 1));
}

/* ---- the tail model against known distributions ---------------------------- */

/*
 * Standard error of log P^(S > s) for s = t + y above the threshold: the
 * binomial error of phi^ from n scores plus the GPD's from k excesses
 * (covariance above), by the delta method at the true (xi, sigma).
 */
static double se_log_tail(double xi, double sigma, double y, double phi, double n, double k)
{
    double dxi, dsig = y / (sigma * (sigma + xi * y));
    if (fabs(xi) < 1e-9) {
        dxi = y * y / (2 * sigma * sigma);
    } else {
        double z = xi * y / sigma;
        dxi = log1p(z) / (xi * xi) - (y / sigma) / (xi * (1 + z));
    }
    double vx = (1 + xi) * (1 + xi) / k, vs = 2 * sigma * sigma * (1 + xi) / k;
    double cxs = sigma * (1 + xi) / k;
    double v = dxi * dxi * vx + 2 * dxi * dsig * cxs + dsig * dsig * vs;
    return sqrt(v + (1 - phi) / (n * phi));
}

typedef struct dist {
    const char *name;
    double xi; /* of the excesses over any threshold */
    double (*draw)(ps_rng *);
    double (*log_surv)(double);
    double (*sigma_at)(double t); /* GPD scale of the excesses over t */
} dist;

static double exp_draw(ps_rng *r)
{
    return -log1p(-ps_rng_uniform(r));
}
static double exp_log_surv(double s)
{
    return s <= 0 ? 0 : -s;
}
static double exp_sigma(double t)
{
    (void)t;
    return 1;
}
/* Pareto with index 3 on [1, inf): excesses over t are GPD(1/3, t/3). */
static double par_draw(ps_rng *r)
{
    return pow(1 - ps_rng_uniform(r), -1.0 / 3);
}
static double par_log_surv(double s)
{
    return s <= 1 ? 0 : -3 * log(s);
}
static double par_sigma(double t)
{
    return t / 3;
}

static void check_tail_vs_truth(const ps_evt *e, const dist *d, double nbody, const char *what)
{
    static const double qs[] = {0.5, 0.2, 0.1, 0.05, 0.03, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6};
    double t = e->threshold, phi = ps_evt_exceed_prob(e), sig = d->sigma_at(t);
    printf("%s %s: t = %.4f, phi = %.4f, xi^ = %.4f, sigma^ = %.4f (true %.4f, %.4f), %u "
           "excesses\n",
           d->name, what, t, phi, e->gpd.xi, e->gpd.sigma, d->xi, sig, e->excess_len);
    printf("   %8s %10s %10s %8s %6s\n", "q", "z_q", "P^(S>z_q)", "ln ratio", "SE");
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        /* s: the true (1 - q)-quantile; compare the model's log tail there with log q. */
        double lq = log(qs[i]), s;
        if (d->log_surv == exp_log_surv)
            s = -lq;
        else
            s = exp(-lq / 3);
        double lt = ps_evt_log_tail(e, s), se;
        if (s > t)
            se = se_log_tail(d->xi, sig, s - t, phi, (double)e->n_obs, (double)e->excess_len);
        else /* binomial error of an empirical survival, plus 2 % for the knots' interpolation */
            se = sqrt((1 - qs[i]) / (nbody * qs[i])) + 0.02;
        printf("   %8.0e %10.4f %10.3e %8.4f %6.3f\n", qs[i], s, exp(lt), lt - lq, se);
        CHECKF(fabs(lt - lq) <= 4 * se, "%s %s q %g: log tail %g, want %g +- 4 x %g", d->name, what,
               qs[i], lt, lq, se);
        /* z_q is the inverse of the tail probability. */
        double z = ps_evt_risk_level(e, exp(lt));
        CHECK_NEAR(z, s, 1e-6 * (1 + fabs(s)));
    }
}

static void test_tail_vs_truth(void)
{
    const dist dists[] = {
        {"exponential", 0, exp_draw, exp_log_surv, exp_sigma},
        {"Pareto(3)", 1.0 / 3, par_draw, par_log_surv, par_sigma},
    };
    for (size_t di = 0; di < 2; di++) {
        const dist *d = &dists[di];
        ps_rng rng;
        ps_rng_seed(&rng, 1234 + di);

        /* A large calibration batch: 1000 excesses, one fit. */
        size_t n = 50000;
        double *x = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            x[i] = d->draw(&rng);
        ps_evt_options o = ps_evt_default_options();
        o.max_excess = 1000;
        o.window = 4096;
        ps_evt e;
        char err[128];
        CHECK(ps_evt_init(&e, x, n, &o, err, sizeof err) == 0);
        CHECK(e.excess_len == 1000 && e.n_exc == 1000);
        check_tail_vs_truth(&e, d, (double)n, "calibrated on 50000");
        ps_evt_free(&e);

        /* Online: a small calibration, then a long healthy stream with default capacities. */
        CHECK(ps_evt_init(&e, x, 2000, NULL, err, sizeof err) == 0);
        size_t steps = 30000, nrefit = 0;
        double t0 = now_s();
        for (size_t i = 0; i < steps; i++) {
            double s = d->draw(&rng);
            nrefit += s > e.threshold;
            CHECK(ps_evt_update(&e, s, 0) == 0);
        }
        double dt = now_s() - t0;
        CHECK(e.n_obs == 2000 + steps);
        check_tail_vs_truth(&e, d, (double)e.opt.window, "online, 2000 + 30000 updates");
        printf("   %zu updates, %zu tail refits (256 excesses): %.1f us per update, %.0f us per "
               "refit at most\n",
               steps, nrefit, 1e6 * dt / (double)steps, 1e6 * dt / (double)(nrefit ? nrefit : 1));
        ps_evt_free(&e);
        free(x);
    }

    /*
     * A tail that is not exactly GPD (half-normal, xi = 0 only in the limit):
     * xi >= 0 errs towards a heavier tail, never a much lighter one.
     */
    ps_rng rng;
    ps_rng_seed(&rng, 77);
    size_t n = 20000;
    double *x = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        x[i] = fabs(ps_rng_normal(&rng));
    for (int bounded = 0; bounded < 2; bounded++) {
        ps_evt_options o = ps_evt_default_options();
        if (bounded) o.gpd.xi_min = -0.5;
        ps_evt e;
        CHECK(ps_evt_init(&e, x, n, &o, NULL, 0) == 0);
        printf("half-normal, calibrated on 20000, xi_min %g: xi^ = %.4f, sigma^ = %.4f\n",
               o.gpd.xi_min, e.gpd.xi, e.gpd.sigma);
        /* P(|Z| > z) = erfc(z / sqrt 2) */
        static const double zs[] = {2.5758, 3.2905, 3.8906, 4.4172, 4.8916};
        for (int i = 0; i < 5; i++) {
            double truth = erfc(zs[i] / sqrt(2.0)), lt = ps_evt_log_tail(&e, zs[i]);
            printf("   q %.0e: P^ = %.3e, ln ratio %.3f\n", truth, exp(lt), lt - log(truth));
            if (!bounded) CHECK(lt - log(truth) > -0.5);
        }
        ps_evt_free(&e);
    }
    free(x);
}

/* ---- monotonicity, continuity, degenerate batches -------------------------- */

/* Walk a fine grid through the body, across t and far into the tail. */
static void check_shape(const ps_evt *e, const char *what)
{
    double t = e->threshold, lo = e->knot_s[0], span = t - lo;
    if (span <= 0) span = 1;
    double hi = t + 200 * e->gpd.sigma + span;
    double prev_lt = INFINITY, prev_pfp = -1;
    int n = 20000, bad = 0;
    for (int i = 0; i <= n && !bad; i++) {
        double s = lo - 0.1 * span + (hi - lo + 0.1 * span) * i / n;
        double lt = ps_evt_log_tail(e, s), f = ps_evt_pfp(e, s);
        if (!(lt <= prev_lt && lt <= 0 && f >= prev_pfp && f >= 0 && f <= 1)) bad = 1;
        if (!(isfinite(lt) && f < 1)) bad = 1;
        CHECKF(!bad, "%s: at s = %.9g log tail %.9g (after %.9g), PFP %.17g (after %.17g)", what, s,
               lt, prev_lt, f, prev_pfp);
        prev_lt = lt;
        prev_pfp = f;
    }
    /* Continuous at t, and equal to phi there. */
    double lphi = log(ps_evt_exceed_prob(e));
    CHECK_NEAR(ps_evt_log_tail(e, t), lphi, 1e-12);
    double eps = 1e-9 * (fabs(t) + e->gpd.sigma);
    CHECKF(fabs(ps_evt_log_tail(e, t + eps) - lphi) < 1e-6, "%s: jump at t", what);
    CHECK(ps_evt_log_tail(e, t + eps) <= ps_evt_log_tail(e, t));
    /* Below everything seen: probability 1, PFP 0. */
    CHECK(ps_evt_log_tail(e, lo - 1) == 0 && ps_evt_pfp(e, lo - 1) == 0);
    /* Risk levels: non-decreasing as q falls, and the PFP threshold meets its PFP. */
    double prev_z = -INFINITY;
    for (double q = 1; q > 1e-200; q /= 1.5) {
        double z = ps_evt_risk_level(e, q);
        CHECKF(z >= prev_z && isfinite(z), "%s: z_q %g at q %g after %g", what, z, q, prev_z);
        prev_z = z;
    }
    /*
     * The PFP threshold is the generalized inverse of the PFP: just below it
     * the PFP is below the level, at it the level is reached (where the PFP
     * jumps, at an atom or a bounded tail's end, that is all one can ask).
     */
    for (double pfp = 0.5; pfp < 1 - 1e-11; pfp = 1 - (1 - pfp) / 4) {
        double z = ps_evt_pfp_threshold(e, pfp);
        if (isinf(z)) { /* beyond double's range: a heavy tail at an absurd level */
            CHECK(z > 0 && ps_evt_pfp(e, 1e300) <= pfp);
            continue;
        }
        double d = 1e-9 * (1 + fabs(z)), tol = 1e-7 * (1 - pfp) + 1e-15;
        CHECKF(ps_evt_pfp(e, z - d) <= pfp + tol && ps_evt_pfp(e, z + d) >= pfp - tol,
               "%s: PFP %.15g, threshold %g: PFP %.15g just below, %.15g just above", what, pfp, z,
               ps_evt_pfp(e, z - d), ps_evt_pfp(e, z + d));
        if (e->gpd.xi >= 0 && e->n_exc > 0 && z > e->threshold)
            CHECK_NEAR(ps_evt_pfp(e, z), pfp, tol);
    }
}

static void test_shapes_and_degenerate(void)
{
    ps_rng rng;
    ps_rng_seed(&rng, 5);
    size_t n = 3000;
    double *x = malloc(n * sizeof(double));
    ps_evt e;
    char err[128];

    for (size_t i = 0; i < n; i++)
        x[i] = 10 + 2 * exp_draw(&rng);
    CHECK(ps_evt_init(&e, x, n, NULL, err, sizeof err) == 0);
    check_shape(&e, "exponential");
    /* Distinct extremes keep distinct PFPs below 1: one per sigma, out to 10^4 sigma. */
    double prev = ps_evt_pfp(&e, e.threshold);
    for (int k = 1; k <= 10000; k++) {
        double f = ps_evt_pfp(&e, e.threshold + k * e.gpd.sigma);
        if (!(f > prev && f < 1)) {
            CHECKF(0, "PFP at t + %d sigma is %.17g after %.17g", k, f, prev);
            break;
        }
        prev = f;
    }
    ps_evt_free(&e);

    for (size_t i = 0; i < n; i++)
        x[i] = par_draw(&rng);
    CHECK(ps_evt_init(&e, x, n, NULL, err, sizeof err) == 0);
    check_shape(&e, "Pareto");
    ps_evt_free(&e);

    /*
     * A bounded tail allowed (xi_min = -0.5) on uniform scores: followed until
     * its hazard is 10 times that at t, then exponential, so even past the
     * fitted end a score keeps a finite tail and a PFP below 1.
     */
    for (size_t i = 0; i < n; i++)
        x[i] = ps_rng_uniform(&rng);
    ps_evt_options o = ps_evt_default_options();
    o.gpd.xi_min = -0.5;
    CHECK(ps_evt_init(&e, x, n, &o, err, sizeof err) == 0);
    CHECK(e.gpd.xi < 0);
    check_shape(&e, "uniform, bounded tail");
    double end = e.threshold + ps_evt_gpd_quantile(&e.gpd, -INFINITY);
    double yc = 0.9 * e.gpd.sigma / -e.gpd.xi, lc = ps_evt_gpd_log_survival(&e.gpd, yc);
    double lphi = log(ps_evt_exceed_prob(&e));
    CHECK_NEAR(ps_evt_log_tail(&e, e.threshold + yc), lphi + lc, 1e-9);
    CHECK_NEAR(ps_evt_log_tail(&e, e.threshold + 2 * yc), lphi + lc - 10 * yc / e.gpd.sigma, 1e-9);
    CHECK(isfinite(ps_evt_log_tail(&e, end + 1)) && ps_evt_pfp(&e, end + 1) < 1);
    CHECK(ps_evt_pfp(&e, end + 1) < ps_evt_pfp(&e, end + 2));
    printf("uniform scores, xi_min -0.5: xi^ = %.3f, fitted end %.4f, capped from %.4f\n", e.gpd.xi,
           end, e.threshold + yc);
    ps_evt_free(&e);

    /* Constant scores: t is the constant, P(S > t) = 1 / (n + 1), sigma the floor. */
    for (size_t i = 0; i < n; i++)
        x[i] = 5;
    CHECK(ps_evt_init(&e, x, n, NULL, err, sizeof err) == 0);
    CHECK(e.threshold == 5 && e.n_exc == 0 && e.excess_len == 0);
    CHECK(e.gpd.flags & PS_EVT_GPD_DEGENERATE);
    CHECK_NEAR(e.gpd.sigma, 1e-3 + 1e-2 * 5, 1e-15);
    CHECK_NEAR(ps_evt_exceed_prob(&e), 1.0 / (n + 1), 1e-15);
    check_shape(&e, "constant");
    CHECK(ps_evt_pfp(&e, 4.9) == 0 && ps_evt_pfp(&e, 5) > 0.99);
    CHECK(ps_evt_pfp(&e, 5.01) > ps_evt_pfp(&e, 5) && ps_evt_pfp(&e, 6) > ps_evt_pfp(&e, 5.01));
    CHECK(ps_evt_pfp(&e, 6) < 1);
    /* Learning keeps it finite even when a few scores start to differ. */
    for (int i = 0; i < 200; i++)
        CHECK(ps_evt_update(&e, i % 50 == 0 ? 5.2 : 5, 0) == 0);
    CHECK(e.n_exc == 4 && e.excess_len == 4 && (e.gpd.flags & PS_EVT_GPD_EXPONENTIAL));
    check_shape(&e, "constant, then learning");
    ps_evt_free(&e);

    for (size_t i = 0; i < n; i++)
        x[i] = 0;
    CHECK(ps_evt_init(&e, x, n, NULL, err, sizeof err) == 0);
    CHECK(e.gpd.sigma == 1e-3);
    check_shape(&e, "all zero");
    ps_evt_free(&e);

    /* A handful of scores, and a single one. */
    double few[3] = {1, 2, 3};
    CHECK(ps_evt_init(&e, few, 3, NULL, err, sizeof err) == 0);
    CHECK(e.threshold == 2 && e.n_exc == 1 && (e.gpd.flags & PS_EVT_GPD_EXPONENTIAL));
    check_shape(&e, "three scores");
    ps_evt_free(&e);
    CHECK(ps_evt_init(&e, few + 2, 1, NULL, err, sizeof err) == 0);
    CHECK(e.threshold == 3 && e.n_exc == 0);
    check_shape(&e, "one score");
    ps_evt_free(&e);

    /* Non-finite scores are skipped in calibration and refused online, changing nothing. */
    double mixed[6] = {NAN, 1, INFINITY, 2, -INFINITY, 3};
    CHECK(ps_evt_init(&e, mixed, 6, NULL, err, sizeof err) == 0 && e.n_obs == 3);
    CHECK(ps_evt_update(&e, NAN, 0) == PS_EINVAL && e.n_obs == 3);
    CHECK(ps_evt_update(&e, INFINITY, 0) == PS_EINVAL && e.n_obs == 3);
    ps_evt_free(&e);

    /* Refused batches and options, with a reason, and a model that can still be freed. */
    double nans[2] = {NAN, NAN};
    err[0] = 0;
    CHECK(ps_evt_init(&e, nans, 2, NULL, err, sizeof err) == PS_EINVAL && err[0]);
    ps_evt_free(&e);
    CHECK(ps_evt_init(&e, NULL, 0, NULL, err, sizeof err) == PS_EINVAL);
    ps_evt_free(&e);
    o = ps_evt_default_options();
    o.level = 1;
    CHECK(ps_evt_init(&e, few, 3, &o, err, sizeof err) == PS_EINVAL);
    o = ps_evt_default_options();
    o.window = 0;
    CHECK(ps_evt_init(&e, few, 3, &o, err, sizeof err) == PS_EINVAL);
    o = ps_evt_default_options();
    o.floor_abs = 0;
    CHECK(ps_evt_init(&e, few, 3, &o, err, sizeof err) == PS_EINVAL);
    CHECK(ps_evt_update(NULL, 1, 0) == PS_EINVAL);
    ps_evt_free(NULL);
    free(x);
}

/* ---- bounded state and the unstable flag ----------------------------------- */

static void test_bounded_and_unstable(void)
{
    ps_rng rng;
    ps_rng_seed(&rng, 11);
    double x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = exp_draw(&rng);
    ps_evt_options o = ps_evt_default_options();
    o.window = 64;
    o.max_excess = 16;
    o.refit_every = 7;
    ps_evt e;
    CHECK(ps_evt_init(&e, x, 1000, &o, NULL, 0) == 0);
    CHECK(e.window_len == 64 && e.excess_len == 16);
    float *w = e.window;
    double *ex = e.excess;
    for (int i = 0; i < 20000; i++) {
        /* Scores that drift upwards: most land above t, which must not grow anything. */
        CHECK(ps_evt_update(&e, exp_draw(&rng) + i * 1e-3, 0) == 0);
        if (e.window_len > 64 || e.excess_len > 16 || e.window_head >= 64 || e.excess_head >= 16) {
            CHECKF(0, "capacity exceeded at update %d", i);
            break;
        }
    }
    CHECK(e.window == w && e.excess == ex);
    CHECK(e.n_obs == 21000 && e.n_exc > 15000);
    check_shape(&e, "after drift");

    /* An unstable tick changes no byte of the state. */
    ps_evt before;
    memcpy(&before, &e, sizeof e);
    float wcopy[64];
    double excopy[16];
    memcpy(wcopy, e.window, sizeof wcopy);
    memcpy(excopy, e.excess, sizeof excopy);
    static const double probes[] = {-5, 0.5, 1e3, 1e300};
    for (int i = 0; i < 4; i++)
        CHECK(ps_evt_update(&e, probes[i], 1) == 0);
    CHECK(ps_evt_update(&e, NAN, 1) == 0);
    CHECK(memcmp(&before, &e, sizeof e) == 0);
    CHECK(memcmp(wcopy, e.window, sizeof wcopy) == 0);
    CHECK(memcmp(excopy, e.excess, sizeof excopy) == 0);
    /* And a stable one does. */
    CHECK(ps_evt_update(&e, 1e3, 0) == 0 && e.n_obs == before.n_obs + 1);
    ps_evt_free(&e);

    /* The same stream gives the same model, bit for bit. */
    ps_evt a, b;
    CHECK(ps_evt_init(&a, x, 1000, &o, NULL, 0) == 0);
    CHECK(ps_evt_init(&b, x, 1000, &o, NULL, 0) == 0);
    for (int i = 0; i < 2000; i++) {
        double s = exp_draw(&rng);
        ps_evt_update(&a, s, 0);
        ps_evt_update(&b, s, 0);
    }
    CHECK(memcmp(a.knot_s, b.knot_s, sizeof a.knot_s) == 0);
    CHECK(a.gpd.xi == b.gpd.xi && a.gpd.sigma == b.gpd.sigma);
    ps_evt_free(&a);
    ps_evt_free(&b);
    printf("state: %zu bytes of struct + %u x 4 (window) + %u x 8 (excesses) + %u x 4 (scratch) "
           "at the default capacities\n",
           sizeof(ps_evt), ps_evt_default_options().window, ps_evt_default_options().max_excess,
           ps_evt_default_options().window);
}

int main(void)
{
    test_gpd_recovery();
    test_gpd_monte_carlo();
    test_gpd_exponential_and_bounds();
    test_gpd_degenerate();
    test_pfp_map();
    test_tail_vs_truth();
    test_shapes_and_degenerate();
    test_bounded_and_unstable();
    return test_finish("test_evt");
}
