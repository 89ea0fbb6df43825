/*
 * test_arima.c - ARIMA estimation, the scalar filter and the online bank.
 *
 * Estimation is checked three ways: on simulated series, where the truth is
 * known and the tolerance is the statistical error of the series' length
 * (asymptotic standard errors from the information matrix, computed here
 * from the model's psi weights, and a small Monte Carlo that the spread of
 * the estimates matches them); against statsmodels' maximum-likelihood fits
 * (tests/golden/arima_*.txt, from tests/gen_arima_golden.py), within a
 * fraction of statsmodels' own standard errors; and on degenerate windows
 * (constant, near-constant, periodic, trending), which must give finite
 * models. The filter is checked against statsmodels' one-step predictions
 * given statsmodels' coefficients, and the bank, stepped through the CPU
 * kernel, against the filter. Figures quoted in docs/arima.md are printed.
 */
#include "core/arima.h"
#include "core/rng.h"
#include "testutil.h"

#include <string.h>

/* ---- simulation ----------------------------------------------------------- */

typedef struct truth {
    int p, d, q;
    double phi[4], theta[4];
    double mean; /* of the differenced series */
    double sigma;
} truth;

/* n raw values of the ARIMA process, after a burn-in; y starts at 50. */
static void simulate(const truth *tr, ps_rng *rng, double *y, size_t n)
{
    size_t burn = 300, total = n + burn;
    double *w = malloc(total * sizeof(double)), *e = malloc(total * sizeof(double));
    double sphi = 0;
    for (int i = 0; i < tr->p; i++)
        sphi += tr->phi[i];
    double c = tr->mean * (1 - sphi);
    for (size_t t = 0; t < total; t++) {
        e[t] = tr->sigma * ps_rng_normal(rng);
        double v = c + e[t];
        for (int i = 0; i < tr->p; i++)
            v += tr->phi[i] * (t > (size_t)i ? w[t - 1 - (size_t)i] : tr->mean);
        for (int j = 0; j < tr->q; j++)
            v += tr->theta[j] * (t > (size_t)j ? e[t - 1 - (size_t)j] : 0.0);
        w[t] = v;
    }
    for (size_t t = 0; t < n; t++)
        y[t] = w[burn + t];
    for (int k = 0; k < tr->d; k++) {
        double level = 50, prev;
        for (size_t t = 0; t < n; t++) {
            prev = y[t];
            y[t] = level;
            level += prev;
        }
    }
    free(w);
    free(e);
}

/*
 * Asymptotic standard errors of (phi, theta) for a series of length n:
 * the inverse of the information matrix Gamma = Cov(u_{t-1..t-p},
 * v_{t-1..t-q}) with phi(B) u = e, theta(B) v = e (unit variance), from
 * the psi weights of 1/phi and 1/theta.
 */
static void asymptotic_se(const truth *tr, size_t n, double *se)
{
    enum { K = 2000 };
    static double a[K], b[K];
    int p = tr->p, q = tr->q, m = p + q;
    for (int k = 0; k < K; k++) {
        a[k] = k == 0;
        b[k] = k == 0;
        for (int i = 1; i <= p && i <= k; i++)
            a[k] += tr->phi[i - 1] * a[k - i];
        for (int j = 1; j <= q && j <= k; j++)
            b[k] -= tr->theta[j - 1] * b[k - j];
    }
    double g[8][16];
    for (int r = 0; r < m; r++)
        for (int s = 0; s < m; s++) {
            /* lag of each regressor, and which psi weights drive it */
            int lr = r < p ? r : r - p, ls = s < p ? s : s - p;
            const double *x = r < p ? a : b, *y = s < p ? a : b;
            double acc = 0;
            for (int k = 0; k < K; k++) {
                int l = k + lr - ls;
                if (l >= 0 && l < K) acc += x[k] * y[l];
            }
            g[r][s] = acc;
            g[r][m + s] = r == s;
        }
    for (int col = 0; col < m; col++) { /* Gauss-Jordan; Gamma is SPD */
        double piv = g[col][col];
        for (int s = 0; s < 2 * m; s++)
            g[col][s] /= piv;
        for (int r = 0; r < m; r++) {
            if (r == col) continue;
            double f = g[r][col];
            for (int s = 0; s < 2 * m; s++)
                g[r][s] -= f * g[col][s];
        }
    }
    for (int r = 0; r < m; r++)
        se[r] = sqrt(g[r][m + r] / (double)n);
}

static double coef_of(const ps_arima_model *m, int i)
{
    return i < m->p ? m->phi[i] : m->theta[i - m->p];
}

static double true_coef(const truth *tr, int i)
{
    return i < tr->p ? tr->phi[i] : tr->theta[i - tr->p];
}

/* ---- recovery on simulated series ---------------------------------------- */

static void check_recovery(const char *name, const truth *tr, size_t n, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    double *y = malloc(n * sizeof(double));
    simulate(tr, &rng, y, n);
    ps_arima_model m;
    char err[256] = "";
    int rc = ps_arima_estimate(y, n, tr->p, tr->d, tr->q, NULL, &m, err, sizeof err);
    CHECKF(rc == PS_OK, "%s: %s", name, err);
    double se[8];
    asymptotic_se(tr, n - (size_t)tr->d, se);
    printf("%s n=%zu:", name, n);
    for (int i = 0; i < tr->p + tr->q; i++) {
        double z = (coef_of(&m, i) - true_coef(tr, i)) / se[i];
        printf(" %s%d %.4f (true %.2f, %+.2f se)", i < tr->p ? "phi" : "theta",
               i < tr->p ? i + 1 : i - tr->p + 1, coef_of(&m, i), true_coef(tr, i), z);
        CHECKF(fabs(z) <= 3.0, "%s: coefficient %d is %.2f standard errors off", name, i, z);
    }
    /* The mean of w: its standard error is sigma * theta(1) / phi(1) / sqrt(n). */
    double sphi = 0, stheta = 0;
    for (int i = 0; i < tr->p; i++)
        sphi += tr->phi[i];
    for (int j = 0; j < tr->q; j++)
        stheta += tr->theta[j];
    double se_mean = tr->sigma * fabs(1 + stheta) / (1 - sphi) / sqrt((double)n);
    double msphi = 0;
    for (int i = 0; i < m.p; i++)
        msphi += m.phi[i];
    double est_mean = m.c / (1 - msphi);
    printf(" mean %.4f (true %.2f, %+.2f se), sigma2 %.4f (true %.4f), %d GN steps\n", est_mean,
           tr->mean, (est_mean - tr->mean) / se_mean, m.sigma2, tr->sigma * tr->sigma,
           m.refine_steps);
    CHECKF(fabs(est_mean - tr->mean) <= 3.5 * se_mean, "%s: mean %.4f vs %.4f", name, est_mean,
           tr->mean);
    double s2 = tr->sigma * tr->sigma;
    CHECKF(fabs(m.sigma2 - s2) <= 4 * s2 * sqrt(2.0 / (double)n), "%s: sigma2 %.4f vs %.4f", name,
           m.sigma2, s2);
    free(y);
}

/* The spread of the estimates over many series is the asymptotic one. */
static void check_spread(const char *name, const truth *tr, size_t n, int reps, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    double *y = malloc(n * sizeof(double));
    double se[8], sq[8] = {0}, sq_hr[8] = {0};
    asymptotic_se(tr, n - (size_t)tr->d, se);
    int k = tr->p + tr->q;
    ps_arima_options hr_only = {.refine = 0};
    for (int r = 0; r < reps; r++) {
        simulate(tr, &rng, y, n);
        ps_arima_model m, h;
        CHECK(ps_arima_estimate(y, n, tr->p, tr->d, tr->q, NULL, &m, NULL, 0) == PS_OK);
        CHECK(ps_arima_estimate(y, n, tr->p, tr->d, tr->q, &hr_only, &h, NULL, 0) == PS_OK);
        for (int i = 0; i < k; i++) {
            double dm = coef_of(&m, i) - true_coef(tr, i), dh = coef_of(&h, i) - true_coef(tr, i);
            sq[i] += dm * dm;
            sq_hr[i] += dh * dh;
        }
    }
    printf("%s n=%zu, %d series: RMSE / asymptotic se:", name, n, reps);
    for (int i = 0; i < k; i++) {
        double ratio = sqrt(sq[i] / reps) / se[i], ratio_hr = sqrt(sq_hr[i] / reps) / se[i];
        printf(" %s%d %.2f (Hannan-Rissanen alone %.2f)", i < tr->p ? "phi" : "theta",
               i < tr->p ? i + 1 : i - tr->p + 1, ratio, ratio_hr);
        CHECKF(ratio > 0.7 && ratio < 1.4, "%s: RMSE of coefficient %d is %.2f se", name, i, ratio);
    }
    printf("\n");
    free(y);
}

/* ---- degenerate windows ------------------------------------------------------ */

static int model_finite(const ps_arima_model *m)
{
    int ok = isfinite(m->c) && isfinite(m->mean) && isfinite(m->sigma2) && m->sigma2 >= 0;
    for (int i = 0; i < m->p; i++)
        ok &= isfinite(m->phi[i]);
    for (int j = 0; j < m->q; j++)
        ok &= isfinite(m->theta[j]);
    return ok;
}

static void check_degenerate(void)
{
    static const int orders[][3] = {{0, 0, 0}, {1, 0, 0}, {1, 0, 1},   {2, 1, 2},
                                    {0, 2, 1}, {4, 0, 4}, {16, 0, 16}, {16, 2, 16}};
    enum { N = 400 };
    static double y[N], resid[N], fc[N];
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        int p = orders[o][0], d = orders[o][1], q = orders[o][2];
        for (int kind = 0; kind < 8; kind++) {
            for (size_t t = 0; t < N; t++) {
                switch (kind) {
                case 0: /* constant */
                    y[t] = 5.0;
                    break;
                case 1: /* constant but for a blip at rounding level */
                    y[t] = 1000.0 + (t == N / 2 ? 1e-9 : 0.0);
                    break;
                case 2: /* constant but the last value */
                    y[t] = t == N - 1 ? 7.0 : 3.0;
                    break;
                case 3: /* period 2: an AR(1) with phi = -1 exactly */
                    y[t] = t % 2 ? 1.0 : -1.0;
                    break;
                case 4: /* a straight line, with d = 0 a unit root */
                    y[t] = 0.5 * (double)t;
                    break;
                case 5: /* a step */
                    y[t] = t < N / 2 ? 0.0 : 10.0;
                    break;
                case 6: /* all zeros */
                    y[t] = 0;
                    break;
                default: /* tiny values */
                    y[t] = 1e-300 * (double)(t % 7);
                    break;
                }
            }
            ps_arima_model m;
            char err[256] = "";
            int rc = ps_arima_estimate(y, N, p, d, q, NULL, &m, err, sizeof err);
            CHECKF(rc == PS_OK, "(%d,%d,%d) kind %d: %s", p, d, q, kind, err);
            if (rc) continue;
            CHECKF(model_finite(&m), "(%d,%d,%d) kind %d: non-finite model", p, d, q, kind);
            CHECK(ps_arima_filter(&m, y, N, resid, fc) == PS_OK);
            int finite = 1;
            for (size_t t = (size_t)d; t < N; t++)
                finite &= isfinite(resid[t]) && isfinite(fc[t]);
            CHECKF(finite, "(%d,%d,%d) kind %d: non-finite filter output", p, d, q, kind);
            if (kind == 0) {
                CHECK(m.flags & PS_ARIMA_CONSTANT);
                CHECK_NEAR(fc[N - 1], 5.0, 1e-12);
                CHECK_NEAR(resid[N - 1], 0.0, 1e-12);
            }
        }
    }
}

/* ---- window length and argument checks ----------------------------------------- */

static void check_refusals(void)
{
    enum { N = 600 };
    static double y[N];
    ps_rng rng;
    ps_rng_seed(&rng, 5);
    for (size_t t = 0; t < N; t++)
        y[t] = ps_rng_normal(&rng);
    static const int orders[][3] = {{0, 0, 0}, {1, 0, 0},  {1, 0, 1},   {2, 1, 1},
                                    {0, 2, 3}, {16, 0, 0}, {16, 2, 16}, {3, 1, 16}};
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        int p = orders[o][0], d = orders[o][1], q = orders[o][2];
        size_t need = ps_arima_min_window(p, d, q);
        CHECK(need > (size_t)(d + p + q) && need <= N);
        ps_arima_model m;
        char err[256] = "";
        CHECK(ps_arima_estimate(y, need - 1, p, d, q, NULL, &m, err, sizeof err) ==
              PS_ARIMA_ESHORT);
        CHECKF(strstr(err, "too short") != NULL, "message: %s", err);
        int rc = ps_arima_estimate(y, need, p, d, q, NULL, &m, err, sizeof err);
        CHECKF(rc == PS_OK && model_finite(&m), "(%d,%d,%d) at the minimum %zu: %s", p, d, q, need,
               err);
    }
    printf("minimum windows: ARIMA(1,0,0) %zu, (1,0,1) %zu, (2,1,1) %zu, (16,2,16) %zu\n",
           ps_arima_min_window(1, 0, 0), ps_arima_min_window(1, 0, 1), ps_arima_min_window(2, 1, 1),
           ps_arima_min_window(16, 2, 16));
    ps_arima_model m;
    char err[256];
    CHECK(ps_arima_estimate(y, 0, 0, 0, 0, NULL, &m, err, sizeof err) == PS_ARIMA_ESHORT);
    CHECK(ps_arima_estimate(y, N, -1, 0, 0, NULL, &m, err, sizeof err) == PS_EINVAL);
    CHECK(ps_arima_estimate(y, N, 17, 0, 0, NULL, &m, err, sizeof err) == PS_EINVAL);
    CHECK(ps_arima_estimate(y, N, 1, 3, 0, NULL, &m, err, sizeof err) == PS_EINVAL);
    CHECK(ps_arima_estimate(NULL, N, 1, 0, 0, NULL, &m, err, sizeof err) == PS_EINVAL);
    CHECK(ps_arima_estimate(y, N, 1, 0, 0, &(ps_arima_options){.refine = -1}, &m, err,
                            sizeof err) == PS_EINVAL);
    CHECK(ps_arima_estimate(y, N, 1, 0, 1, &(ps_arima_options){.refine = 5, .long_ar = 10000}, &m,
                            err, sizeof err) == PS_EINVAL);
    CHECK(ps_arima_min_window(0, 3, 0) == SIZE_MAX);
    y[17] = NAN;
    CHECK(ps_arima_estimate(y, N, 1, 0, 0, NULL, &m, err, sizeof err) == PS_ARIMA_EDATA);
    ps_arima_model ar1 = {.p = 1, .phi = {0.5}};
    CHECK(ps_arima_filter(&ar1, y, N, NULL, NULL) == PS_ARIMA_EDATA);
    y[17] = INFINITY;
    CHECK(ps_arima_estimate(y, N, 1, 0, 0, NULL, &m, err, sizeof err) == PS_ARIMA_EDATA);
}

/* ---- the filter on a hand-made model ---------------------------------------------- */

static void check_filter_by_hand(void)
{
    /* ARIMA(1,1,1): w_t = 0.5 + 0.5 w_{t-1} + e_t + 0.25 e_{t-1}, mean 1. */
    ps_arima_model m = {.p = 1, .d = 1, .q = 1, .c = 0.5, .mean = 1.0};
    m.phi[0] = 0.5;
    m.theta[0] = 0.25;
    double y[4] = {10, 12, 12.5, 14}, r[4], f[4];
    CHECK(ps_arima_filter(&m, y, 4, r, f) == PS_OK);
    CHECK(isnan(r[0]));
    CHECK_NEAR(f[0], 11.0, 1e-12); /* 10 + (0.5 + 0.5 * 1) */
    /* w = 2, e = 1; next w = 0.5 + 1 + 0.25 = 1.75 */
    CHECK_NEAR(r[1], 1.0, 1e-12);
    CHECK_NEAR(f[1], 13.75, 1e-12);
    /* w = 0.5, e = -1.25; next w = 0.5 + 0.25 - 0.3125 = 0.4375 */
    CHECK_NEAR(r[2], -1.25, 1e-12);
    CHECK_NEAR(f[2], 12.9375, 1e-12);
    CHECK_NEAR(r[3], 14 - 12.9375, 1e-12);
    /* d = 2: the first forecast needs two values. */
    ps_arima_model m2 = {.p = 0, .d = 2, .q = 0, .c = 0.0, .mean = 0.0};
    CHECK(ps_arima_filter(&m2, y, 4, r, f) == PS_OK);
    CHECK(isnan(r[0]) && isnan(r[1]) && isnan(f[0]));
    CHECK_NEAR(f[1], 14.0, 1e-12);
    CHECK_NEAR(r[2], -1.5, 1e-12);
    CHECK_NEAR(f[2], 13.0, 1e-12);
    ps_arima_model bad = m;
    bad.d = 3;
    CHECK(ps_arima_filter(&bad, y, 4, r, f) == PS_EINVAL);
}

/* ---- statsmodels goldens ------------------------------------------------------------- */

typedef struct golden {
    int p, d, q;
    double coef[33], mean, mean_se, sigma2, bse[32];
    size_t n;
    double *y, *pred; /* n and n + 1 values */
} golden;

/* Read one section: the keyword, its count, then the values. */
static int read_section(FILE *f, const char *key, size_t *count, double **vals, double *fixed,
                        size_t fixed_cap)
{
    char word[64];
    int ch;
    /* skip whitespace and comments */
    for (;;) {
        ch = fgetc(f);
        if (ch == '#') {
            while ((ch = fgetc(f)) != EOF && ch != '\n') {
            }
        } else if (ch == EOF || !(ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r')) {
            break;
        }
    }
    if (ch == EOF) return -1;
    ungetc(ch, f);
    if (fscanf(f, "%63s %zu", word, count) != 2 || strcmp(word, key) != 0) return -1;
    double *v = fixed;
    if (vals) {
        v = malloc((*count ? *count : 1) * sizeof(double));
        *vals = v;
    } else if (*count > fixed_cap) {
        return -1;
    }
    for (size_t i = 0; i < *count; i++)
        if (fscanf(f, "%lf", &v[i]) != 1) return -1;
    return 0;
}

static int load_golden(const char *name, golden *g)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/golden/arima_%s.txt", PRESHIFT_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    memset(g, 0, sizeof *g);
    double ord[3], meanv[2], s2[1];
    size_t cnt;
    int rc = read_section(f, "order", &cnt, NULL, ord, 3);
    g->p = (int)ord[0];
    g->d = (int)ord[1];
    g->q = (int)ord[2];
    if (!rc) rc = read_section(f, "coef", &cnt, NULL, g->coef, 33);
    if (!rc) rc = read_section(f, "mean", &cnt, NULL, meanv, 2);
    if (!rc) rc = read_section(f, "sigma2", &cnt, NULL, s2, 1);
    if (!rc) rc = read_section(f, "bse", &cnt, NULL, g->bse, 32);
    if (!rc) rc = read_section(f, "series", &g->n, &g->y, NULL, 0);
    if (!rc) rc = read_section(f, "predict", &cnt, &g->pred, NULL, 0);
    if (!rc && cnt != g->n + 1) rc = -1;
    fclose(f);
    g->mean = meanv[0];
    g->mean_se = meanv[1];
    g->sigma2 = s2[0];
    if (rc) fprintf(stderr, "%s: malformed\n", path);
    return rc;
}

#define BURN 100

static void check_golden(const char *name)
{
    golden g;
    if (load_golden(name, &g)) {
        CHECKF(0, "golden %s unreadable", name);
        free(g.y);
        free(g.pred);
        return;
    }
    size_t n = g.n;
    double *resid = malloc(n * sizeof(double)), *fc = malloc(n * sizeof(double));
    double sd = sqrt(g.sigma2);

    /* statsmodels' coefficients in our filter give statsmodels' predictions. */
    ps_arima_model sm = {.p = g.p, .d = g.d, .q = g.q, .c = g.coef[0], .mean = g.mean};
    for (int i = 0; i < g.p; i++)
        sm.phi[i] = g.coef[1 + i];
    for (int j = 0; j < g.q; j++)
        sm.theta[j] = g.coef[1 + g.p + j];
    CHECK(ps_arima_filter(&sm, g.y, n, resid, fc) == PS_OK);
    double worst = 0;
    for (size_t t = BURN; t <= n; t++) {
        double d = fabs(fc[t - 1] - g.pred[t]) / (sd + 1e-9 * fabs(g.pred[t]));
        worst = d > worst ? d : worst;
    }
    CHECKF(worst <= 1e-6, "%s: filter vs statsmodels predictions: %.3g sd", name, worst);

    /* Our estimate against statsmodels' MLE. */
    ps_arima_model m;
    char err[256] = "";
    CHECKF(ps_arima_estimate(g.y, n, g.p, g.d, g.q, NULL, &m, err, sizeof err) == PS_OK, "%s", err);
    printf("golden %s ARIMA(%d,%d,%d) n=%zu: filter max diff %.2g sd; coef - mle in mle se:", name,
           g.p, g.d, g.q, n, worst);
    double worst_z = 0;
    for (int i = 0; i < g.p + g.q; i++) {
        double z = (coef_of(&m, i) - g.coef[1 + i]) / g.bse[i];
        printf(" %+.3f", z);
        worst_z = fabs(z) > worst_z ? fabs(z) : worst_z;
    }
    /* Hannan-Rissanen alone, for the record (docs/arima.md). */
    ps_arima_model hr;
    double worst_hr = 0;
    CHECK(ps_arima_estimate(g.y, n, g.p, g.d, g.q, &(ps_arima_options){.refine = 0}, &hr, NULL,
                            0) == PS_OK);
    for (int i = 0; i < g.p + g.q; i++) {
        double z = fabs(coef_of(&hr, i) - g.coef[1 + i]) / g.bse[i];
        worst_hr = z > worst_hr ? z : worst_hr;
    }
    printf(" (HR alone: worst %.3f)", worst_hr);
    double sphi = 0;
    for (int i = 0; i < m.p; i++)
        sphi += m.phi[i];
    double our_mean = m.c / (1 - sphi);
    double mean_z = g.mean_se > 0 ? (our_mean - g.mean) / g.mean_se : 0;
    /* Without a trend term statsmodels' mean is 0; ours must be near it. */
    double mean_tol = g.mean_se > 0 ? 0.25 * g.mean_se : 0.1 * sd;
    CHECKF(worst_z <= 0.25, "%s: a coefficient is %.3f MLE standard errors off", name, worst_z);
    CHECKF(fabs(our_mean - g.mean) <= mean_tol, "%s: mean %.6g vs MLE %.6g", name, our_mean,
           g.mean);
    CHECKF(fabs(m.sigma2 / g.sigma2 - 1) <= 0.02, "%s: sigma2 %.5g vs MLE %.5g", name, m.sigma2,
           g.sigma2);

    /* And our forecasts against statsmodels'. */
    CHECK(ps_arima_filter(&m, g.y, n, resid, fc) == PS_OK);
    double ss = 0, mx = 0;
    for (size_t t = BURN; t <= n; t++) {
        double d = (fc[t - 1] - g.pred[t]) / sd;
        ss += d * d;
        mx = fabs(d) > mx ? fabs(d) : mx;
    }
    double rms = sqrt(ss / (double)(n + 1 - BURN));
    printf("; mean %+.3f se; sigma2 ratio %.4f; forecast diff rms %.4f sd, max %.4f sd\n", mean_z,
           m.sigma2 / g.sigma2, rms, mx);
    CHECKF(rms <= 0.03 && mx <= 0.1, "%s: forecasts differ from statsmodels' by %.3g sd rms", name,
           rms);
    free(resid);
    free(fc);
    free(g.y);
    free(g.pred);
}

/* ---- the bank through the CPU kernel -------------------------------------------------- */

static void shuffle(ps_rng *rng, uint32_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)ps_rng_below(rng, i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static void check_bank(ps_backend *be, int p, int d, int q, uint64_t seed)
{
    enum { S = 24, FIT = 500, MORE = 150 };
    size_t n = FIT + MORE;
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    char err[256] = "";
    ps_arima_bank *b = ps_arima_bank_create(be, p, d, q, S, err, sizeof err);
    CHECKF(b != NULL, "bank (%d,%d,%d): %s", p, d, q, err);
    if (!b) return;
    CHECK(ps_arima_bank_series(b) == S);
    double *y = malloc(S * n * sizeof(double));
    float *yf = malloc(S * n * sizeof(float));
    ps_arima_model *models = malloc(S * sizeof *models);
    for (size_t s = 0; s < S; s++) {
        truth tr = {.p = p > 4 ? 4 : p, .d = d, .q = q > 4 ? 4 : q, .sigma = 0.5 + (double)s};
        tr.mean = d == 0 ? 100.0 * (double)s : 0.01 * (double)s;
        if (tr.p) tr.phi[0] = 0.5 - 0.03 * (double)s;
        if (tr.q) tr.theta[0] = 0.3;
        simulate(&tr, &rng, y + s * n, n);
        for (size_t t = 0; t < n; t++) {
            yf[s * n + t] = (float)y[s * n + t];
            y[s * n + t] = yf[s * n + t]; /* the filter sees the floats too */
        }
    }

    /* Stepping an unfitted series is refused. */
    uint32_t ids[S], one = 0;
    float r[S], f[S], v[S];
    CHECK(ps_arima_bank_step(b, 1, &one, yf, r, f) == PS_EINVAL);
    for (uint32_t s = 0; s < S; s++) {
        int rc = ps_arima_bank_fit(b, s, yf + s * n, FIT, NULL);
        CHECKF(rc == PS_OK, "fit %u: %s", (unsigned)s, ps_arima_bank_error(b));
        CHECK(ps_arima_bank_get_model(b, s, &models[s]) == PS_OK);
        ids[s] = s;
    }
    CHECK(ps_arima_bank_fit(b, S, yf, FIT, NULL) == PS_EINVAL);
    CHECK(ps_arima_bank_fit(b, 0, yf, 5, NULL) == PS_ARIMA_ESHORT);
    CHECK(ps_arima_bank_get_model(b, S, &models[0]) == PS_EINVAL);

    /* Refused steps change nothing. */
    uint32_t dup[2] = {3, 3}, far = S;
    float nan_in[2] = {NAN, 1.0f};
    CHECK(ps_arima_bank_step(b, 2, dup, v, r, f) == PS_EINVAL);
    CHECK(ps_arima_bank_step(b, 1, &far, v, r, f) == PS_EINVAL);
    CHECK(ps_arima_bank_step(b, 2, ids, nan_in, r, f) == PS_ARIMA_EDATA);
    CHECK(ps_arima_bank_step(b, 0, ids, v, r, f) == PS_OK);

    double *fr = malloc(n * sizeof(double)), *ff = malloc(n * sizeof(double));
    double worst = 0;
    float *got_r = malloc(S * MORE * sizeof(float)), *got_f = malloc(S * MORE * sizeof(float));
    for (size_t t = FIT; t < n; t++) {
        /* every series once a tick, in random order, split over two calls */
        shuffle(&rng, ids, S);
        size_t split = (size_t)ps_rng_below(&rng, S + 1);
        for (size_t i = 0; i < S; i++) {
            v[i] = yf[ids[i] * n + t];
            r[i] = f[i] = NAN;
        }
        CHECK(ps_arima_bank_step(b, split, ids, v, r, f) == PS_OK);
        CHECK(ps_arima_bank_step(b, S - split, ids + split, v + split, r + split, f + split) ==
              PS_OK);
        for (size_t i = 0; i < S; i++) {
            got_r[ids[i] * MORE + (t - FIT)] = r[i];
            got_f[ids[i] * MORE + (t - FIT)] = f[i];
        }
    }
    for (size_t s = 0; s < S; s++) {
        CHECK(ps_arima_filter(&models[s], y + s * n, n, fr, ff) == PS_OK);
        double scale = sqrt(models[s].sigma2) + 1e-9;
        for (size_t t = FIT; t < n; t++) {
            double level = fabs(y[s * n + t]);
            double tol = 2e-5 * scale + 4 * 1.2e-7 * level;
            double e1 = fabs(got_r[s * MORE + t - FIT] - fr[t]) / tol;
            double e2 = fabs(got_f[s * MORE + t - FIT] - ff[t]) / tol;
            if (!(e1 <= worst)) worst = isnan(e1) ? INFINITY : e1;
            if (!(e2 <= worst)) worst = isnan(e2) ? INFINITY : e2;
        }
    }
    CHECKF(worst <= 1, "bank (%d,%d,%d) vs filter: %.3g x tolerance", p, d, q, worst);
    printf("bank ARIMA(%d,%d,%d) x %d series vs scalar filter: worst %.3g of tolerance\n", p, d, q,
           S, worst);

    /* A model set by hand primes like a fit. */
    CHECK(ps_arima_bank_set_model(b, 1, &models[0], yf, FIT) == PS_OK);
    ps_arima_model back;
    CHECK(ps_arima_bank_get_model(b, 1, &back) == PS_OK);
    CHECK(back.c == models[0].c && back.mean == models[0].mean);
    ps_arima_model wrong = models[0];
    wrong.d = (d + 1) % 3;
    CHECK(ps_arima_bank_set_model(b, 1, &wrong, yf, FIT) == PS_EINVAL);

    free(fr);
    free(ff);
    free(got_r);
    free(got_f);
    free(y);
    free(yf);
    free(models);
    ps_arima_bank_free(b);
}

int main(void)
{
    check_filter_by_hand();
    check_refusals();
    check_degenerate();

    truth ar1 = {.p = 1, .d = 0, .q = 0, .phi = {0.7}, .mean = 3.0, .sigma = 1.0};
    check_recovery("AR(1)", &ar1, 2000, 1);
    /* Well identified: complex AR roots of modulus 1.41, MA root at -2.5
     * (an AR and MA part with near-cancelling roots would make the ridge of
     * the likelihood, not the estimator, the subject of the test). */
    truth arma21 = {.p = 2, .q = 1, .phi = {0.75, -0.5}, .theta = {0.4}, .mean = -2, .sigma = 2};
    check_recovery("ARMA(2,1)", &arma21, 3000, 2);
    truth arima111 = {
        .p = 1, .d = 1, .q = 1, .phi = {0.5}, .theta = {-0.3}, .mean = 0.05, .sigma = 1};
    check_recovery("ARIMA(1,1,1) with drift", &arima111, 2000, 3);
    truth ma1 = {.q = 1, .theta = {-0.6}, .mean = 10, .sigma = 0.1};
    check_recovery("MA(1)", &ma1, 1000, 4);

    check_spread("AR(1) phi=0.7", &ar1, 500, 100, 10);
    truth arma11 = {.p = 1, .q = 1, .phi = {0.6}, .theta = {0.3}, .sigma = 1};
    check_spread("ARMA(1,1) phi=0.6 theta=0.3", &arma11, 500, 100, 11);
    check_spread("MA(1) theta=-0.6", &ma1, 500, 100, 12);
    check_spread("ARMA(2,1)", &arma21, 1000, 60, 13);

    static const char *goldens[] = {"ar2", "arma11", "arma21", "ma2", "arima111", "arima021"};
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++)
        check_golden(goldens[i]);

    char err[256];
    ps_backend *be = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU}, err, sizeof err);
    CHECKF(be != NULL, "%s", err);
    if (be) {
        check_bank(be, 2, 1, 1, 20);
        check_bank(be, 0, 0, 0, 21);
        check_bank(be, 1, 0, 0, 22);
        check_bank(be, 0, 2, 1, 23);
        check_bank(be, 3, 0, 2, 24);
        check_bank(be, 16, 1, 16, 25);
        CHECK(ps_arima_bank_create(be, 1, 3, 0, 4, err, sizeof err) == NULL);
        CHECK(ps_arima_bank_create(be, 1, 0, 0, 0, err, sizeof err) == NULL);
        ps_backend_free(be);
    }
    return test_finish("test_arima");
}
