/*
 * test_calibration.c - Platt and isotonic calibration, PAVA, the
 * reliability table.
 *
 * Statistical checks draw labels from a known probability with a fixed seed
 * and compare the fit with the truth within a few standard errors (Platt)
 * or a sampling tolerance (isotonic), so they are exact reruns, not flaky;
 * the small cases have answers worked out by hand. n = 20,000 keeps the
 * whole test well under a second, sanitizers included.
 */
#include "core/calibration.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

enum { N_BIG = 20000 };

static double logistic_truth(double a, double b, double s)
{
    return 1.0 / (1.0 + exp(a * s + b));
}

static double truth_step(double s)
{
    return s < 5 ? 0.1 : 0.6;
}

static double truth_ramp(double s)
{
    return 0.05 + 0.09 * s;
}

/* Scores uniform on [0, 10), labels drawn from truth(score). */
static void draw(ps_rng *r, double (*truth)(double), double *s, uint8_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s[i] = 10 * ps_rng_uniform(r);
        y[i] = ps_rng_uniform(r) < truth(s[i]) ? 1 : 0;
    }
}

static int is_zero(const ps_calibration *c)
{
    static const ps_calibration zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

/* Non-decreasing and within [0, 1] on a fine grid, at every breakpoint and just beside it. */
static void check_monotone(const ps_calibration *c, double lo, double hi, const char *what)
{
    double prev = ps_calibration_apply(c, -INFINITY);
    CHECKF(prev >= 0 && prev <= 1, "%s: p(-inf) = %g", what, prev);
    const int steps = 100000;
    int bad = 0;
    for (int i = 0; i <= steps; i++) {
        double s = lo + (hi - lo) * i / steps;
        double p = ps_calibration_apply(c, s);
        if (!(p >= prev && p <= 1)) bad++;
        prev = p;
    }
    CHECKF(bad == 0, "%s: %d grid points not monotone or outside [0, 1]", what, bad);
    double last = ps_calibration_apply(c, INFINITY);
    CHECKF(last >= prev && last <= 1, "%s: p(inf) = %g after %g", what, last, prev);
    if (c->kind == PS_CALIB_ISOTONIC) {
        for (uint32_t i = 0; i < c->count; i++) {
            double x = c->score[i];
            double p0 = ps_calibration_apply(c, nextafter(x, -INFINITY));
            double p1 = ps_calibration_apply(c, x);
            double p2 = ps_calibration_apply(c, nextafter(x, INFINITY));
            CHECKF(p0 <= p1 && p1 <= p2 && p1 == c->prob[i],
                   "%s: breakpoint %u: %.17g %.17g %.17g (want %.17g)", what, (unsigned)i, p0, p1,
                   p2, c->prob[i]);
        }
    }
}

/* ---- PAVA ---- */

static void check_pava(const double *y, const double *w, size_t n, const double *want,
                       const char *what)
{
    double out[16];
    CHECK(n <= 16);
    int rc = ps_pava(y, w, n, out);
    CHECKF(rc == PS_OK, "%s: rc %d", what, rc);
    for (size_t i = 0; i < n; i++)
        CHECKF(out[i] == want[i], "%s: out[%zu] = %.17g, want %.17g", what, i, out[i], want[i]);
}

static void test_pava(void)
{
    check_pava((double[]){1, 3, 2, 4}, NULL, 4, (double[]){1, 2.5, 2.5, 4}, "1 3 2 4");
    check_pava((double[]){3, 2, 1}, NULL, 3, (double[]){2, 2, 2}, "decreasing");
    check_pava((double[]){1, 2, 3}, NULL, 3, (double[]){1, 2, 3}, "increasing");
    check_pava((double[]){2, 2, 2}, NULL, 3, (double[]){2, 2, 2}, "constant");
    check_pava((double[]){7}, NULL, 1, (double[]){7}, "single");
    /* a late violator pulls back over an earlier pool */
    check_pava((double[]){4, 1, 3, 2, 5}, NULL, 5, (double[]){2.5, 2.5, 2.5, 2.5, 5}, "pull back");
    check_pava((double[]){1, 5, 6, 0, 8}, NULL, 5, (double[]){1, 11.0 / 3, 11.0 / 3, 11.0 / 3, 8},
               "three pooled");
    /* weights: the pool is the weighted mean */
    check_pava((double[]){1, 3, 2}, (double[]){1, 1, 3}, 3, (double[]){1, 2.25, 2.25}, "weighted");
    check_pava((double[]){0, 1, 0, 1}, (double[]){2, 1, 1, 4}, 4, (double[]){0, 0.5, 0.5, 1},
               "weighted labels");

    /* in place */
    double y[4] = {1, 3, 2, 4};
    CHECK(ps_pava(y, NULL, 4, y) == PS_OK);
    CHECK(y[0] == 1 && y[1] == 2.5 && y[2] == 2.5 && y[3] == 4);

    /* the result is the least-squares isotonic fit: no monotone perturbation does better */
    ps_rng r;
    ps_rng_seed(&r, 99);
    double v[200], f[200];
    for (int i = 0; i < 200; i++)
        v[i] = 0.01 * i + ps_rng_normal(&r);
    CHECK(ps_pava(v, NULL, 200, f) == PS_OK);
    double sse = 0;
    for (int i = 0; i < 200; i++) {
        if (i) CHECK(f[i] >= f[i - 1]);
        sse += (v[i] - f[i]) * (v[i] - f[i]);
    }
    for (int t = 0; t < 50; t++) {
        /* move one level (a maximal run of equal values) up or down a little */
        int at = (int)ps_rng_below(&r, 200), b0 = at, b1 = at;
        while (b0 > 0 && f[b0 - 1] == f[at])
            b0--;
        while (b1 < 199 && f[b1 + 1] == f[at])
            b1++;
        double d = ps_rng_uniform(&r) < 0.5 ? -1e-3 : 1e-3, sse2 = 0;
        for (int i = 0; i < 200; i++) {
            double g = f[i] + (i >= b0 && i <= b1 ? d : 0);
            sse2 += (v[i] - g) * (v[i] - g);
        }
        CHECKF(sse2 > sse, "level %d..%d moved by %g: %.17g <= %.17g", b0, b1, d, sse2, sse);
    }

    /* errors */
    double out[2];
    CHECK(ps_pava(NULL, NULL, 0, NULL) == PS_OK);
    CHECK(ps_pava(NULL, NULL, 2, out) == PS_EINVAL);
    CHECK(ps_pava((double[]){1, NAN}, NULL, 2, out) == PS_EINVAL);
    CHECK(ps_pava((double[]){1, 2}, (double[]){1, 0}, 2, out) == PS_EINVAL);
    CHECK(ps_pava((double[]){1, 2}, (double[]){-1, 1}, 2, out) == PS_EINVAL);
    CHECK(ps_pava((double[]){1, 2}, (double[]){1, INFINITY}, 2, out) == PS_EINVAL);
    CHECK(ps_pava((double[]){DBL_MAX, DBL_MAX}, NULL, 2, out) == PS_EINVAL);
}

/* ---- Platt ---- */

/* Gradient of the smoothed-target log-loss in (a, b), on the raw scores. */
static void platt_gradient(const double *s, const uint8_t *y, size_t n, double a, double b,
                           double g[2])
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y[i];
    double t1 = (pos + 1.0) / (pos + 2.0), t0 = 1.0 / (n - pos + 2.0);
    g[0] = g[1] = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (y[i] ? t1 : t0) - logistic_truth(a, b, s[i]);
        g[0] += s[i] * d;
        g[1] += d;
    }
}

static void test_platt_recovers(void)
{
    static double s[N_BIG], s2[N_BIG];
    static uint8_t y[N_BIG];
    const double a0 = -1.7, b0 = 2.5;
    ps_rng r;
    ps_rng_seed(&r, 2024);
    for (size_t i = 0; i < N_BIG; i++) {
        s[i] = 2 + 1.5 * ps_rng_normal(&r); /* off centre: the fit standardizes */
        y[i] = ps_rng_uniform(&r) < logistic_truth(a0, b0, s[i]) ? 1 : 0;
    }
    ps_calibration c;
    ps_calibration_fit_info info;
    char err[256];
    int rc = ps_calibration_fit_platt(&c, s, y, N_BIG, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    CHECK(err[0] == '\0');
    CHECK(c.kind == PS_CALIB_PLATT && c.samples == N_BIG && c.positives == info.positives);
    CHECK(!info.constrained && info.iterations > 0 && info.iterations < 20);
    CHECKF(fabs(c.a - a0) < 4 * info.se_a, "a = %g, truth %g, se %g", c.a, a0, info.se_a);
    CHECKF(fabs(c.b - b0) < 4 * info.se_b, "b = %g, truth %g, se %g", c.b, b0, info.se_b);
    /* the standard errors are of the size Fisher information predicts (about 0.03 here) */
    CHECKF(info.se_a > 0.01 && info.se_a < 0.1, "se_a %g", info.se_a);
    CHECKF(info.se_b > 0.01 && info.se_b < 0.2, "se_b %g", info.se_b);
    printf("platt: a = %.4f +- %.4f (truth %.2f), b = %.4f +- %.4f (truth %.2f), %d steps, "
           "log-loss %.4f\n",
           c.a, info.se_a, a0, c.b, info.se_b, b0, info.iterations, info.log_loss);

    /* it is the optimum on the raw scores, not only on the standardized ones */
    double g[2];
    platt_gradient(s, y, N_BIG, c.a, c.b, g);
    CHECKF(fabs(g[0]) < 1e-6 * N_BIG && fabs(g[1]) < 1e-6 * N_BIG, "gradient %g %g", g[0], g[1]);
    check_monotone(&c, -10, 15, "platt");
    CHECK(ps_calibration_check(&c, err, sizeof err) == PS_OK);

    /* the same scores in other units give the same probabilities */
    for (size_t i = 0; i < N_BIG; i++)
        s2[i] = 1e7 + 1e6 * s[i];
    ps_calibration c2;
    rc = ps_calibration_fit_platt(&c2, s2, y, N_BIG, NULL, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    double worst = 0;
    for (int k = -20; k <= 60; k++) {
        double x = 0.25 * k;
        worst = fmax(worst,
                     fabs(ps_calibration_apply(&c, x) - ps_calibration_apply(&c2, 1e7 + 1e6 * x)));
    }
    CHECKF(worst < 1e-8, "rescaled scores: probabilities differ by %g", worst);
    for (size_t i = 0; i < N_BIG; i++)
        s2[i] = 1e-6 * s[i];
    rc = ps_calibration_fit_platt(&c2, s2, y, N_BIG, NULL, err, sizeof err);
    CHECKF(rc == PS_OK && fabs(c2.a * 1e-6 - c.a) < 1e-9 * fabs(c.a), "tiny scores: a %g", c2.a);
}

static void test_platt_edges(void)
{
    ps_calibration c;
    ps_calibration_fit_info info;
    char err[256];

    /* separable: the smoothed targets keep the optimum finite */
    double s[10];
    uint8_t y[10];
    for (int i = 0; i < 10; i++) {
        s[i] = i;
        y[i] = i >= 5;
    }
    int rc = ps_calibration_fit_platt(&c, s, y, 10, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "separable: %s", err);
    CHECK(c.a < 0 && isfinite(c.b) && !info.constrained);
    double p0 = ps_calibration_apply(&c, 0), p9 = ps_calibration_apply(&c, 9);
    CHECKF(p0 > 0 && p0 < 0.2 && p9 > 0.8 && p9 < 1, "separable: p(0) %g, p(9) %g", p0, p9);
    /* the symmetric data give the symmetric curve: p(4.5) = 1/2 */
    CHECK_NEAR(ps_calibration_apply(&c, 4.5), 0.5, 1e-9);
    check_monotone(&c, -5, 15, "separable");

    /* a score that ranks failures lower: held at a = 0, the smoothed base rate everywhere */
    for (int i = 0; i < 10; i++)
        y[i] = i < 3;
    rc = ps_calibration_fit_platt(&c, s, y, 10, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "inverted: %s", err);
    CHECK(c.a == 0 && info.constrained && info.se_a == 0);
    double tbar = (3 * (4.0 / 5) + 7 * (1.0 / 9)) / 10;
    CHECK_NEAR(ps_calibration_apply(&c, -100), tbar, 1e-12);
    CHECK_NEAR(ps_calibration_apply(&c, 100), tbar, 1e-12);

    /* two points are enough */
    rc =
        ps_calibration_fit_platt(&c, (double[]){0, 1}, (uint8_t[]){0, 1}, 2, NULL, err, sizeof err);
    CHECKF(rc == PS_OK && c.a < 0, "two points: %s", err);

    /* a hand-made a > 0 cannot invert the map */
    ps_calibration h = {.kind = PS_CALIB_PLATT, .a = 2, .b = 0};
    CHECK(ps_calibration_apply(&h, -5) == 0.5 && ps_calibration_apply(&h, 5) == 0.5);
    CHECK(ps_calibration_check(&h, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "Platt coefficient a = 2 is positive") != NULL, "%s", err);
    h.a = -1;
    CHECK(ps_calibration_apply(&h, INFINITY) == 1 && ps_calibration_apply(&h, -INFINITY) == 0);
    CHECK(ps_calibration_apply(&h, 0) == 0.5);
    CHECK(ps_calibration_apply(&h, 800) == 1 && ps_calibration_apply(&h, -800) == 0);
    CHECK(isnan(ps_calibration_apply(&h, NAN)));
}

/* ---- isotonic ---- */

static void test_isotonic_small(void)
{
    ps_calibration c;
    ps_calibration_fit_info info;
    char err[256];

    /* PAVA by hand: labels 0 1 0 1 at scores 1..4 -> levels 0, 1/2 (2..3), 1 */
    int rc = ps_calibration_fit_isotonic(&c, (double[]){3, 1, 4, 2}, (uint8_t[]){0, 0, 1, 1}, 4, 0,
                                         &info, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    CHECK(c.kind == PS_CALIB_ISOTONIC && c.count == 4 && info.levels == 3);
    static const double ws[4] = {1, 2, 3, 4}, wp[4] = {0, 0.5, 0.5, 1};
    for (uint32_t i = 0; i < c.count && i < 4; i++)
        CHECKF(c.score[i] == ws[i] && c.prob[i] == wp[i], "breakpoint %u: %g %g", (unsigned)i,
               c.score[i], c.prob[i]);
    CHECK(ps_calibration_apply(&c, 0) == 0 && ps_calibration_apply(&c, 1) == 0);
    CHECK(ps_calibration_apply(&c, 1.5) == 0.25 && ps_calibration_apply(&c, 2.5) == 0.5);
    CHECK(ps_calibration_apply(&c, 3.5) == 0.75 && ps_calibration_apply(&c, 9) == 1);
    CHECK(c.samples == 4 && c.positives == 2);

    /* ties are pooled: 10 points at each score k = 0..9, k+1 of them positive; the order of the
     * input does not matter */
    double s[100];
    uint8_t y[100];
    for (int k = 0; k < 10; k++)
        for (int j = 0; j < 10; j++) {
            s[10 * k + j] = k;
            y[10 * k + j] = j <= k;
        }
    ps_calibration c2;
    rc = ps_calibration_fit_isotonic(&c, s, y, 100, 0, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    CHECK(c.count == 10 && info.distinct == 10 && info.levels == 10);
    for (uint32_t i = 0; i < c.count; i++)
        CHECKF(c.score[i] == i && c.prob[i] == (i + 1) / 10.0, "tie level %u: %g %g", (unsigned)i,
               c.score[i], c.prob[i]);
    ps_rng r;
    ps_rng_seed(&r, 5);
    for (int i = 99; i > 0; i--) {
        size_t j = (size_t)ps_rng_below(&r, (uint64_t)i + 1);
        double ts = s[i];
        uint8_t ty = y[i];
        s[i] = s[j];
        y[i] = y[j];
        s[j] = ts;
        y[j] = ty;
    }
    rc = ps_calibration_fit_isotonic(&c2, s, y, 100, 0, NULL, err, sizeof err);
    CHECK(rc == PS_OK && c2.count == c.count);
    CHECK(memcmp(c.score, c2.score, sizeof c.score) == 0);
    CHECK(memcmp(c.prob, c2.prob, sizeof c.prob) == 0);

    /* a cap of 2 leaves one level: the base rate */
    rc = ps_calibration_fit_isotonic(&c, s, y, 100, 2, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    CHECK(c.count == 2 && c.score[0] == 0 && c.score[1] == 9);
    CHECK(c.prob[0] == 0.55 && c.prob[1] == 0.55 && info.levels_kept == 1);
    CHECK_NEAR(info.max_shift, 0.45, 1e-15);
    /* a cap of 5 on 10 single-score levels: 5 levels, each still its points' frequency */
    rc = ps_calibration_fit_isotonic(&c, s, y, 100, 5, &info, err, sizeof err);
    CHECK(rc == PS_OK && c.count <= 5 && info.levels_kept >= 2);
    check_monotone(&c, -1, 10, "cap 5 on ties");
}

/* Mean and largest |fit - truth| over a grid of [lo, hi], skipping +-gap around 5. */
static void grid_error(const ps_calibration *c, double (*truth)(double), double lo, double hi,
                       double gap, double *mean, double *worst)
{
    int n = 0;
    *mean = *worst = 0;
    for (int i = 0; i <= 1000; i++) {
        double s = lo + (hi - lo) * i / 1000;
        if (fabs(s - 5) < gap) continue;
        double e = fabs(ps_calibration_apply(c, s) - truth(s));
        *mean += e;
        *worst = fmax(*worst, e);
        n++;
    }
    *mean /= n;
}

static void test_isotonic_recovers(void)
{
    static double s[N_BIG];
    static uint8_t y[N_BIG];
    ps_calibration c, capped;
    ps_calibration_fit_info info;
    char err[256];
    double mean, worst;
    ps_rng r;
    ps_rng_seed(&r, 77);

    /* a step: two levels, each from about 10,000 points (standard error 0.005) */
    draw(&r, truth_step, s, y, N_BIG);
    int rc = ps_calibration_fit_isotonic(&c, s, y, N_BIG, 0, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "step: %s", err);
    CHECK(c.count <= PS_CALIB_MAX_BREAKPOINTS);
    grid_error(&c, truth_step, 0.5, 9.5, 0.25, &mean, &worst);
    printf("isotonic step: %zu levels -> %zu kept, %u breakpoints, mean |error| %.4f, worst "
           "%.4f\n",
           info.levels, info.levels_kept, (unsigned)c.count, mean, worst);
    CHECKF(mean < 0.02 && worst < 0.06, "step: mean %g, worst %g", mean, worst);
    check_monotone(&c, -1, 11, "isotonic step");
    CHECK(ps_calibration_check(&c, err, sizeof err) == PS_OK);

    /* a ramp from 0.05 to 0.95 */
    draw(&r, truth_ramp, s, y, N_BIG);
    rc = ps_calibration_fit_isotonic(&c, s, y, N_BIG, 0, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "ramp: %s", err);
    grid_error(&c, truth_ramp, 0.5, 9.5, 0, &mean, &worst);
    printf("isotonic ramp: %zu distinct, %zu levels -> %zu kept, %u breakpoints, mean |error| "
           "%.4f, worst %.4f, merge shift %.4f, log-loss %.4f\n",
           info.distinct, info.levels, info.levels_kept, (unsigned)c.count, mean, worst,
           info.max_shift, info.log_loss);
    CHECKF(mean < 0.02 && worst < 0.08, "ramp: mean %g, worst %g", mean, worst);
    check_monotone(&c, -1, 11, "isotonic ramp");

    /* a tight cap still gives a monotone, close curve */
    rc = ps_calibration_fit_isotonic(&capped, s, y, N_BIG, 16, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "cap 16: %s", err);
    CHECK(capped.count <= 16 && capped.count >= 8);
    check_monotone(&capped, -1, 11, "cap 16");
    double dmean = 0, dworst = 0;
    for (int i = 0; i <= 1000; i++) {
        double x = 0.5 + 9.0 * i / 1000;
        double d = fabs(ps_calibration_apply(&capped, x) - ps_calibration_apply(&c, x));
        dmean += d / 1001;
        dworst = fmax(dworst, d);
    }
    grid_error(&capped, truth_ramp, 0.5, 9.5, 0, &mean, &worst);
    printf("isotonic ramp, cap 16: %u breakpoints, mean |error| %.4f, worst %.4f; from the "
           "uncapped fit: mean %.4f, worst %.4f\n",
           (unsigned)capped.count, mean, worst, dmean, dworst);
    CHECKF(mean < 0.04 && worst < 0.12, "cap 16: mean %g, worst %g", mean, worst);
    CHECKF(dmean < 0.03, "cap 16 vs uncapped: mean %g", dmean);
}

/* More levels than the default cap holds: 300 scores, 300 points each, k positives at score k. */
static void test_isotonic_default_cap(void)
{
    enum { K = 300 };
    static double s[K * K];
    static uint8_t y[K * K];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < K; j++) {
            s[K * k + j] = 0.5 * k;
            y[K * k + j] = j < k;
        }
    ps_calibration c;
    ps_calibration_fit_info info;
    char err[256];
    int rc = ps_calibration_fit_isotonic(&c, s, y, K * K, 0, &info, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    CHECK(info.levels == K && info.levels_kept < K);
    CHECK(c.count <= PS_CALIB_MAX_BREAKPOINTS && c.count >= PS_CALIB_MAX_BREAKPOINTS - 1);
    CHECK(c.score[0] == 0 && c.score[c.count - 1] == 0.5 * (K - 1));
    CHECK(ps_calibration_check(&c, err, sizeof err) == PS_OK);
    check_monotone(&c, -1, K, "default cap");
    double worst = 0;
    for (int k = 0; k < K; k++)
        worst = fmax(worst, fabs(ps_calibration_apply(&c, 0.5 * k) - (double)k / K));
    printf("isotonic, %d levels over the cap: %zu kept, %u breakpoints, merge shift %.4f, "
           "worst |error| at the data %.4f\n",
           K, info.levels_kept, (unsigned)c.count, info.max_shift, worst);
    CHECKF(info.max_shift < 0.01 && worst <= info.max_shift + 1e-12, "shift %g, worst %g",
           info.max_shift, worst);
}

/* ---- reliability ---- */

static void test_reliability(void)
{
    const double p[6] = {0.05, 0.15, 0.15, 0.55, 0.95, 1.0};
    const uint8_t y[6] = {0, 0, 1, 1, 1, 0};
    ps_reliability_bin bins[4];
    ps_reliability_summary sum;
    char err[256];
    int rc = ps_reliability(p, y, 6, bins, 4, &sum, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    CHECK(bins[0].lo == 0 && bins[0].hi == 0.25 && bins[3].lo == 0.75 && bins[3].hi == 1);
    CHECK(bins[0].count == 3 && bins[0].positives == 1);
    CHECK_NEAR(bins[0].predicted, 0.35 / 3, 1e-15);
    CHECK_NEAR(bins[0].observed, 1.0 / 3, 1e-15);
    CHECK(bins[1].count == 0 && bins[1].predicted == 0 && bins[1].observed == 0);
    CHECK(bins[2].count == 1 && bins[2].predicted == 0.55 && bins[2].observed == 1);
    CHECK(bins[3].count == 2 && bins[3].positives == 1 && bins[3].observed == 0.5);
    CHECK_NEAR(bins[3].predicted, 0.975, 1e-15);
    /* (0.05^2 + 0.15^2 + 0.85^2 + 0.45^2 + 0.05^2 + 1^2) / 6 */
    CHECK_NEAR(sum.brier, 1.9525 / 6, 1e-15);
    CHECK(sum.points == 6 && sum.positives == 3 && sum.brier_reference == 0.25);
    /* (3 * |0.35/3 - 1/3| + |0.55 - 1| + 2 * |0.975 - 0.5|) / 6 */
    CHECK_NEAR(sum.ece, 2.05 / 6, 1e-15);

    /* edges: p = 0.25 opens bin 1, p = 1 closes the last bin */
    rc = ps_reliability((double[]){0.25, 1, 0}, (uint8_t[]){1, 1, 0}, 3, bins, 4, &sum, NULL, 0);
    CHECK(rc == PS_OK && bins[0].count == 1 && bins[1].count == 1 && bins[3].count == 1);
    CHECK(sum.brier == 0.5625 / 3);
    /* one bin is the whole population */
    rc = ps_reliability(p, y, 6, bins, 1, NULL, err, sizeof err);
    CHECK(rc == PS_OK && bins[0].count == 6 && bins[0].observed == 0.5);

    CHECK(ps_reliability((double[]){0.5, 1.5}, y, 2, bins, 4, &sum, err, sizeof err) ==
          PS_CALIB_EDATA);
    CHECKF(strcmp(err, "probability 1 is 1.5 (must be in [0, 1])") == 0, "%s", err);
    CHECK(ps_reliability((double[]){NAN}, y, 1, bins, 4, &sum, err, sizeof err) == PS_CALIB_EDATA);
    CHECK(ps_reliability((double[]){-0.1}, y, 1, bins, 4, &sum, err, sizeof err) == PS_CALIB_EDATA);
    CHECK(ps_reliability(p, (uint8_t[]){0, 2}, 2, bins, 4, &sum, err, sizeof err) ==
          PS_CALIB_EDATA);
    CHECKF(strcmp(err, "label 1 is 2 (must be 0 or 1)") == 0, "%s", err);
    CHECK(ps_reliability(p, y, 0, bins, 4, &sum, err, sizeof err) == PS_EINVAL);
    CHECK(ps_reliability(p, y, 6, bins, 0, &sum, err, sizeof err) == PS_EINVAL);
    CHECK(ps_reliability(NULL, y, 6, bins, 4, &sum, err, sizeof err) == PS_EINVAL);

    /* a calibrated fit is calibrated on fresh data from the same truth */
    static double s[N_BIG], q[N_BIG];
    static uint8_t l[N_BIG];
    ps_rng r;
    ps_rng_seed(&r, 31);
    draw(&r, truth_ramp, s, l, N_BIG);
    ps_calibration c;
    CHECK(ps_calibration_fit_isotonic(&c, s, l, N_BIG, 0, NULL, NULL, 0) == PS_OK);
    draw(&r, truth_ramp, s, l, N_BIG);
    for (size_t i = 0; i < N_BIG; i++)
        q[i] = ps_calibration_apply(&c, s[i]);
    ps_reliability_bin b10[10];
    CHECK(ps_reliability(q, l, N_BIG, b10, 10, &sum, NULL, 0) == PS_OK);
    printf("reliability of the ramp fit on fresh data: Brier %.4f (base rate alone %.4f), ECE "
           "%.4f\n",
           sum.brier, sum.brier_reference, sum.ece);
    /* truth's own Brier score is E[p(1-p)] = 0.5 - (0.05^2 + 0.05*0.9 + 0.9^2/3) = 0.1825 */
    CHECK(sum.brier < 0.19 && sum.brier_reference > 0.24 && sum.ece < 0.03);
    for (int k = 1; k < 9; k++)
        CHECKF(fabs(b10[k].predicted - b10[k].observed) < 0.05, "bin %d: %g vs %g", k,
               b10[k].predicted, b10[k].observed);
}

/* ---- errors ---- */

static void expect_fit_fail(int isotonic, const double *s, const uint8_t *y, size_t n, int code,
                            const char *msg)
{
    ps_calibration c;
    ps_calibration_fit_info info;
    char err[256];
    memset(&c, 0xab, sizeof c);
    int rc = isotonic ? ps_calibration_fit_isotonic(&c, s, y, n, 0, &info, err, sizeof err)
                      : ps_calibration_fit_platt(&c, s, y, n, &info, err, sizeof err);
    CHECKF(rc == code, "%s fit: rc %d (%s), want %d; %s", isotonic ? "isotonic" : "Platt", rc,
           ps_calibration_strerror(rc), code, err);
    CHECKF(strstr(err, msg) != NULL, "message '%s', want '%s'", err, msg);
    CHECK(is_zero(&c));
}

static void test_errors(void)
{
    for (int iso = 0; iso < 2; iso++) {
        expect_fit_fail(iso, NULL, NULL, 0, PS_CALIB_ESHORT, "0 labelled point(s), at least 2");
        expect_fit_fail(iso, (double[]){1}, (uint8_t[]){1}, 1, PS_CALIB_ESHORT,
                        "1 labelled point(s)");
        expect_fit_fail(iso, (double[]){1, 2, 3}, (uint8_t[]){0, 0, 0}, 3, PS_CALIB_ENOPOS,
                        "no label is 1 among 3 points");
        expect_fit_fail(iso, (double[]){1, 2, 3}, (uint8_t[]){1, 1, 1}, 3, PS_CALIB_ENONEG,
                        "all 3 labels are 1");
        expect_fit_fail(iso, (double[]){1, NAN, 3}, (uint8_t[]){0, 1, 1}, 3, PS_CALIB_EDATA,
                        "score 1 is not finite (nan)");
        expect_fit_fail(iso, (double[]){1, 2, -INFINITY}, (uint8_t[]){0, 1, 1}, 3, PS_CALIB_EDATA,
                        "score 2 is not finite (-inf)");
        expect_fit_fail(iso, (double[]){1, 2, 3}, (uint8_t[]){0, 2, 1}, 3, PS_CALIB_EDATA,
                        "label 1 is 2 (must be 0 or 1)");
        expect_fit_fail(iso, (double[]){4, 4, 4}, (uint8_t[]){0, 1, 1}, 3, PS_CALIB_ESHORT,
                        "all 3 scores are equal (4)");
        expect_fit_fail(iso, (double[]){-DBL_MAX, DBL_MAX}, (uint8_t[]){0, 1}, 2, PS_CALIB_EDATA,
                        "scores span a range too wide");
        expect_fit_fail(iso, NULL, NULL, 5, PS_EINVAL, "no scores or labels");
    }
    char err[128];
    CHECK(ps_calibration_fit_platt(NULL, (double[]){0, 1}, (uint8_t[]){0, 1}, 2, NULL, err,
                                   sizeof err) == PS_EINVAL);
    ps_calibration c;
    CHECK(ps_calibration_fit_isotonic(&c, (double[]){0, 1}, (uint8_t[]){0, 1}, 2, 1, NULL, err,
                                      sizeof err) == PS_EINVAL);
    CHECKF(strcmp(err, "breakpoint cap 1 out of range 2..256") == 0, "%s", err);
    CHECK(ps_calibration_fit_isotonic(&c, (double[]){0, 1}, (uint8_t[]){0, 1}, 2, 257, NULL, err,
                                      sizeof err) == PS_EINVAL);

    /* hand-made calibrations that ps_calibration_check refuses */
    static const struct {
        ps_calibration_kind kind;
        uint32_t count;
        double s0, s1, p0, p1;
        const char *msg;
    } bad[] = {
        {(ps_calibration_kind)3, 0, 0, 0, 0, 0, "unknown calibration kind 3"},
        {PS_CALIB_ISOTONIC, 0, 0, 0, 0, 0, "isotonic calibration has 0 breakpoints, 1..256"},
        {PS_CALIB_ISOTONIC, 257, 0, 0, 0, 0, "isotonic calibration has 257 breakpoints"},
        {PS_CALIB_ISOTONIC, 2, 1, 1, 0, 1, "breakpoint 1: score 1 is not above the previous"},
        {PS_CALIB_ISOTONIC, 2, 2, 1, 0, 1, "breakpoint 1: score 1 is not above"},
        {PS_CALIB_ISOTONIC, 2, 1, 2, 0.5, 0.25, "breakpoint 1: probability 0.25 is below"},
        {PS_CALIB_ISOTONIC, 2, 1, 2, 0, 1.5, "breakpoint 1: probability 1.5 is outside [0, 1]"},
        {PS_CALIB_ISOTONIC, 2, 1, 2, -0.5, 1, "breakpoint 0: probability -0.5 is outside"},
        {PS_CALIB_ISOTONIC, 2, NAN, 2, 0, 1, "breakpoint 0: score is not finite (nan)"},
        {PS_CALIB_ISOTONIC, 2, 1, INFINITY, 0, 1, "breakpoint 1: score is not finite (inf)"},
        {PS_CALIB_ISOTONIC, 2, 1, 2, 0, NAN, "breakpoint 1: probability is not finite (nan)"},
        {PS_CALIB_ISOTONIC, 2, -DBL_MAX, DBL_MAX, 0, 1, "span a range too wide"},
        {PS_CALIB_PLATT, 0, NAN, 0, 0, 0, "Platt coefficient a is not finite (nan)"},
        {PS_CALIB_PLATT, 0, -1, INFINITY, 0, 0, "Platt coefficient b is not finite (inf)"},
        {PS_CALIB_PLATT, 0, 0.5, 0, 0, 0, "Platt coefficient a = 0.5 is positive"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0, sizeof c);
        c.kind = bad[i].kind;
        c.count = bad[i].count;
        if (c.kind == PS_CALIB_PLATT) {
            c.a = bad[i].s0;
            c.b = bad[i].s1;
        } else {
            c.score[0] = bad[i].s0;
            c.score[1] = bad[i].s1;
            c.prob[0] = bad[i].p0;
            c.prob[1] = bad[i].p1;
        }
        int rc = ps_calibration_check(&c, err, sizeof err);
        CHECKF(rc == PS_EINVAL && strstr(err, bad[i].msg) != NULL, "case %zu: rc %d, '%s'", i, rc,
               err);
    }
    memset(&c, 0, sizeof c);
    c.kind = PS_CALIB_PLATT;
    c.samples = 3;
    c.positives = 4;
    CHECK(ps_calibration_check(&c, err, sizeof err) == PS_EINVAL);
    CHECKF(strcmp(err, "calibration counts 4 positives among 3 samples") == 0, "%s", err);
    /* none is always valid, and applies as NaN */
    memset(&c, 0x5a, sizeof c);
    c.kind = PS_CALIB_NONE;
    CHECK(ps_calibration_check(&c, err, sizeof err) == PS_OK && err[0] == '\0');
    CHECK(isnan(ps_calibration_apply(&c, 1)));
    CHECK(isnan(ps_calibration_apply(NULL, 1)));
    CHECK(ps_calibration_check(NULL, err, sizeof err) == PS_EINVAL);
    /* one breakpoint is a constant */
    memset(&c, 0, sizeof c);
    c.kind = PS_CALIB_ISOTONIC;
    c.count = 1;
    c.score[0] = 3;
    c.prob[0] = 0.25;
    CHECK(ps_calibration_check(&c, err, sizeof err) == PS_OK);
    CHECK(ps_calibration_apply(&c, -1e300) == 0.25 && ps_calibration_apply(&c, 1e300) == 0.25);

    static const int codes[] = {PS_OK,           PS_EINVAL,       PS_ENOMEM,      PS_CALIB_ESHORT,
                                PS_CALIB_ENOPOS, PS_CALIB_ENONEG, PS_CALIB_EDATA, PS_CALIB_EFIT};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(ps_calibration_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(ps_calibration_strerror(codes[i]), ps_calibration_strerror(codes[j])) !=
                  0);
    }
    CHECK(strcmp(ps_calibration_strerror(-999), "unknown error") == 0);
}

int main(void)
{
    test_pava();
    test_platt_recovers();
    test_platt_edges();
    test_isotonic_small();
    test_isotonic_recovers();
    test_isotonic_default_cap();
    test_reliability();
    test_errors();
    return test_finish("test_calibration");
}
