/*
 * test_evt_refit.c - the warm refit of ps_evt_update against the full fit.
 *
 * Online, the GPD is refitted on every new excess by a Newton iteration
 * started from the last fit (core/evt.c, "the warm refit"), with the full
 * search of ps_evt_gpd_fit as its fallback and on every 32nd excess. Here
 * long healthy streams of several shapes (exponential, Pareto tails from
 * moderate to heavier than xi_max, bounded tails with and without negative
 * shapes allowed, a tail that switches shape) go through ps_evt_update, and
 * after every update that refits, the model's fit must match a fresh
 * ps_evt_gpd_fit of the same excesses, and so must the tail probability
 * and PFP of probe scores; the largest differences are printed. A model
 * restored from a snapshot must then go on exactly as the original, and the
 * cost of a refit with 256 excesses, warm and full, is printed.
 */
#include "core/evt.h"
#include "core/rng.h"
#include "testutil.h"

#include <string.h>
#include <time.h>

/* How close the warm refit must come to the full fit. */
#define TOL_XI 1e-6     /* |xi - xi_full| / (1 + |xi|) */
#define TOL_SIGMA 1e-6  /* |sigma / sigma_full - 1| */
#define TOL_LOGLIK 1e-8 /* relative (on a bound l* is not flat, so it follows xi's error) */
/*
 * |log tail - log tail_full| / (1 + |log tail|) at probes up to 10 sigma
 * above t, and beyond. The full fit stops its search at 1e-8 in its search
 * variable, so its own xi is good to a few 1e-8 only, and d log tail / d xi
 * grows as y^2 / (2 sigma^2) (at xi = 0): 50 at 10 sigma, 5000 at 100
 * sigma (where an exponential tail's probability is e^-100 and the PFP is
 * compressed to 1 - 1e-8); more for xi < 0, past the hazard cap.
 */
#define TOL_LT 5e-6
#define TOL_LT_FAR 1e-4
#define TOL_PFP 1e-7 /* absolute, at the probes */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the streams ----------------------------------------------------------- */

typedef struct stream {
    const char *name;
    double xi_min;                         /* the tail model's shape bound (the default is 0) */
    double (*draw)(ps_rng *r, uint64_t i); /* score i of the stream */
} stream;

static double u01(ps_rng *r)
{
    return ps_rng_uniform(r);
}
static double d_exp(ps_rng *r, uint64_t i)
{
    (void)i;
    return 10 - 2 * log1p(-u01(r));
}
/* Pareto with index a on [1, inf): excesses GPD with xi = 1 / a. */
static double d_par3(ps_rng *r, uint64_t i)
{
    (void)i;
    return pow(1 - u01(r), -1.0 / 3);
}
static double d_par15(ps_rng *r, uint64_t i)
{
    (void)i;
    return pow(1 - u01(r), -1.0 / 1.5);
}
/* xi = 1.25, beyond xi_max = 1: fits on the bound. */
static double d_par08(ps_rng *r, uint64_t i)
{
    (void)i;
    return pow(1 - u01(r), -1.0 / 0.8);
}
/*
 * Bounded, ending at 0 (so that sigma's floor, 1e-2 |t|, stays below the
 * scale of the excesses): uniform (xi = -1), and -U^(1/4) (P(S > -d) = d^4,
 * xi = -1/4).
 */
static double d_unif(ps_rng *r, uint64_t i)
{
    (void)i;
    return u01(r) - 1;
}
static double d_beta(ps_rng *r, uint64_t i)
{
    (void)i;
    return -pow(u01(r), 0.25);
}
static double d_halfnorm(ps_rng *r, uint64_t i)
{
    (void)i;
    return fabs(ps_rng_normal(r));
}
/*
 * The shape switches every 5000 scores between GPD(0, 1) and GPD(1/3, 1)
 * (the exponential and a Lomax): as the excesses turn over, xi^ wanders
 * between the bound 0 and the inside.
 */
static double d_switch(ps_rng *r, uint64_t i)
{
    double lp = log1p(-u01(r));
    return (i / 5000) % 2 ? 3 * expm1(-lp / 3) : -lp;
}

static const stream streams[] = {
    {"exponential", 0, d_exp},
    {"Pareto(3), xi 1/3", 0, d_par3},
    {"Pareto(1.5), xi 2/3", 0, d_par15},
    {"Pareto(0.8), xi 1.25 > xi_max", 0, d_par08},
    {"uniform", 0, d_unif},
    {"uniform, xi_min -0.5", -0.5, d_unif},
    {"-U^(1/4), xi_min -0.5", -0.5, d_beta},
    {"half-normal, xi_min -0.5", -0.5, d_halfnorm},
    {"switching GPD(0) / GPD(1/3)", 0, d_switch},
};

/* ---- the comparison -------------------------------------------------------- */

typedef struct worst {
    double xi, sigma, loglik, lt, lt_far, pfp;
    size_t refits, same; /* refits checked; of which bit-equal to the full fit */
} worst;

static double rel(double a, double b)
{
    return fabs(a - b) / (fabs(b) > 0 ? fabs(b) : 1);
}

/* The model's fit against a fresh full fit of its excesses; 0 if within the tolerances. */
static int check_against_full(const ps_evt *e, worst *w, const char *name, uint64_t step)
{
    ps_evt_gpd_options o = e->opt.gpd;
    o.sigma_floor = e->opt.floor_abs + e->opt.floor_rel * fabs(e->threshold);
    ps_evt_gpd full;
    CHECK(ps_evt_gpd_fit(e->excess, e->excess_len, &o, &full) == 0);
    const ps_evt_gpd *g = &e->gpd;
    w->refits++;
    w->same += g->xi == full.xi && g->sigma == full.sigma && g->flags == full.flags;

    double dxi = fabs(g->xi - full.xi) / (1 + fabs(full.xi)), dsg = rel(g->sigma, full.sigma);
    double dll = rel(g->loglik, full.loglik);
    if (dxi > w->xi) w->xi = dxi;
    if (dsg > w->sigma) w->sigma = dsg;
    if (dll > w->loglik) w->loglik = dll;
    int bad = !(dxi <= TOL_XI && dsg <= TOL_SIGMA && dll <= TOL_LOGLIK && g->n == full.n);
    /* The flags agree, but for a bound flag where xi is within noise of the bound. */
    unsigned bounds = PS_EVT_GPD_XI_AT_MIN | PS_EVT_GPD_XI_AT_MAX;
    unsigned diff = g->flags ^ full.flags;
    if (diff & ~bounds) bad = 1;
    if ((diff & PS_EVT_GPD_XI_AT_MIN) && fabs(full.xi - (o.xi_min + 1e-6)) > 1e-5) bad = 1;
    if ((diff & PS_EVT_GPD_XI_AT_MAX) && fabs(full.xi - (o.xi_max - 1e-6)) > 1e-5) bad = 1;

    /* Probe scores from just above t to far out, through a model with the full fit. */
    ps_evt f = *e;
    f.gpd = full;
    static const double probes[] = {0.01, 0.3, 1, 3, 10, 30, 100};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        double s = e->threshold + probes[i] * full.sigma;
        double lt = ps_evt_log_tail(e, s), lf = ps_evt_log_tail(&f, s);
        double dlt = fabs(lt - lf) / (1 + fabs(lf));
        double dp = fabs(ps_evt_pfp(e, s) - ps_evt_pfp(&f, s));
        if (probes[i] <= 10 && dlt > w->lt) w->lt = dlt;
        if (probes[i] > 10 && dlt > w->lt_far) w->lt_far = dlt;
        if (dp > w->pfp) w->pfp = dp;
        if (!(dlt <= (probes[i] <= 10 ? TOL_LT : TOL_LT_FAR) && dp <= TOL_PFP)) bad = 1;
    }
    if (bad)
        fprintf(stderr,
                "%s, update %llu (%u excesses): warm xi %.12g sigma %.12g loglik %.12g flags %u, "
                "full xi %.12g sigma %.12g loglik %.12g flags %u\n",
                name, (unsigned long long)step, (unsigned)e->excess_len, g->xi, g->sigma, g->loglik,
                g->flags, full.xi, full.sigma, full.loglik, full.flags);
    return bad;
}

static void test_streams(void)
{
    enum { CALIB = 10000, EXCESSES = 500 };
    printf("warm refit vs full fit after every refit; largest differences (tolerance)\n");
    printf("%-30s %6s %6s %8s %8s %8s %8s %8s %8s  %s\n", "stream", "refits", "equal", "xi",
           "sigma", "loglik", "lt <=10", "lt far", "PFP", "final xi^, sigma^");
    double t0 = now_s();
    for (size_t k = 0; k < sizeof streams / sizeof streams[0]; k++) {
        const stream *st = &streams[k];
        ps_rng rng;
        ps_rng_seed(&rng, 4242 + k);
        double *x = malloc(CALIB * sizeof(double));
        for (uint64_t i = 0; i < CALIB; i++)
            x[i] = st->draw(&rng, i);
        ps_evt_options o = ps_evt_default_options();
        o.gpd.xi_min = st->xi_min;
        ps_evt e;
        char err[128];
        CHECK(ps_evt_init(&e, x, CALIB, &o, err, sizeof err) == 0);
        free(x);
        worst w = {0};
        int fails = 0;
        for (uint64_t i = CALIB; w.refits < EXCESSES && i < CALIB + 200 * EXCESSES; i++) {
            double s = st->draw(&rng, i);
            CHECK(ps_evt_update(&e, s, 0) == 0);
            if (s > e.threshold && fails < 5) fails += check_against_full(&e, &w, st->name, i);
        }
        CHECKF(fails == 0, "%s: the warm refit strays from the full fit", st->name);
        CHECKF(w.refits == EXCESSES, "%s: %zu refits", st->name, w.refits);
        /* Not a vacuous pass: most refits were warm (the full fit's digits differ). */
        CHECKF(w.same <= w.refits / 4, "%s: %zu of %zu refits equal the full fit", st->name, w.same,
               w.refits);
        CHECK(e.excess_len == e.opt.max_excess);
        printf("%-30s %6zu %6zu %8.2g %8.2g %8.2g %8.2g %8.2g %8.2g  %.4f %.4g\n", st->name,
               w.refits, w.same, w.xi, w.sigma, w.loglik, w.lt, w.lt_far, w.pfp, e.gpd.xi,
               e.gpd.sigma);
        ps_evt_free(&e);
    }
    printf("%-30s %6s %6s %8.2g %8.2g %8.2g %8.2g %8.2g %8.2g  (%.2f s)\n", "tolerance", "", "",
           TOL_XI, TOL_SIGMA, TOL_LOGLIK, TOL_LT, TOL_LT_FAR, TOL_PFP, now_s() - t0);
}

/* ---- snapshots -------------------------------------------------------------- */

/* The warm refit starts from the fit in the state: a restored model goes on bit for bit. */
static void test_snapshot_continues(void)
{
    for (size_t k = 0; k < sizeof streams / sizeof streams[0]; k++) {
        const stream *st = &streams[k];
        ps_rng rng;
        ps_rng_seed(&rng, 99 + k);
        double x[2000];
        for (uint64_t i = 0; i < 2000; i++)
            x[i] = st->draw(&rng, i);
        ps_evt_options o = ps_evt_default_options();
        o.gpd.xi_min = st->xi_min;
        ps_evt a, b;
        memset(&b, 0, sizeof b);
        CHECK(ps_evt_init(&a, x, 2000, &o, NULL, 0) == 0);
        for (uint64_t i = 0; i < 10000; i++)
            CHECK(ps_evt_update(&a, st->draw(&rng, 2000 + i), 0) == 0);
        size_t len = ps_evt_state_size(&a);
        uint8_t *buf = malloc(len);
        CHECK(ps_evt_state_export(&a, buf, len) == 0);
        CHECK(ps_evt_state_import(&b, &o, buf, len, NULL, 0) == 0);
        free(buf);
        size_t differ = 0;
        for (uint64_t i = 0; i < 10000; i++) {
            double s = st->draw(&rng, 12000 + i);
            ps_evt_update(&a, s, 0);
            ps_evt_update(&b, s, 0);
            differ +=
                !(a.gpd.xi == b.gpd.xi && a.gpd.sigma == b.gpd.sigma &&
                  a.gpd.loglik == b.gpd.loglik && a.gpd.n == b.gpd.n && a.gpd.flags == b.gpd.flags);
        }
        CHECKF(differ == 0 && a.n_exc == b.n_exc,
               "%s: the restored model's fit differs after %zu of 10000 updates", st->name, differ);
        ps_evt_free(&a);
        ps_evt_free(&b);
    }
}

/* ---- cost -------------------------------------------------------------------- */

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/*
 * One update that refits, at 256 excesses: a stream of excesses alone, so
 * that every call refits (the share of warm refits is the online one, 31 in
 * 32 at most), against the full fit of the same excesses.
 */
static void test_cost(void)
{
    static const stream *pick[] = {&streams[0], &streams[1], &streams[5]};
    printf("cost of an update that refits, 256 excesses (median of 5 runs of 1000)\n");
    for (size_t k = 0; k < sizeof pick / sizeof pick[0]; k++) {
        const stream *st = pick[k];
        ps_rng rng;
        ps_rng_seed(&rng, 5 + k);
        double x[5000];
        for (uint64_t i = 0; i < 5000; i++)
            x[i] = st->draw(&rng, i);
        ps_evt_options o = ps_evt_default_options();
        o.gpd.xi_min = st->xi_min;
        ps_evt e;
        CHECK(ps_evt_init(&e, x, 5000, &o, NULL, 0) == 0);
        /* Fill the excess ring. */
        while (e.excess_len < e.opt.max_excess) {
            double s = st->draw(&rng, 0);
            if (s > e.threshold) ps_evt_update(&e, s, 0);
        }
        enum { N = 1000, RUNS = 5 };
        double *ex = malloc(N * sizeof(double));
        double t_upd[RUNS], t_full[RUNS];
        for (int r = 0; r < RUNS; r++) {
            for (int i = 0; i < N;) {
                double s = st->draw(&rng, 0);
                if (s > e.threshold) ex[i++] = s;
            }
            double t0 = now_s();
            for (int i = 0; i < N; i++)
                ps_evt_update(&e, ex[i], 0);
            t_upd[r] = (now_s() - t0) / N;
            ps_evt_gpd_options go = e.opt.gpd;
            go.sigma_floor = e.opt.floor_abs + e.opt.floor_rel * fabs(e.threshold);
            ps_evt_gpd g;
            t0 = now_s();
            for (int i = 0; i < N / 20; i++)
                ps_evt_gpd_fit(e.excess, e.excess_len, &go, &g);
            t_full[r] = (now_s() - t0) / (N / 20);
        }
        qsort(t_upd, RUNS, sizeof(double), cmp_double);
        qsort(t_full, RUNS, sizeof(double), cmp_double);
        double mu = t_upd[RUNS / 2], mf = t_full[RUNS / 2];
        printf("  %-30s update %6.1f us, full fit %6.1f us (%.1fx); xi^ %.3f\n", st->name, 1e6 * mu,
               1e6 * mf, mf / mu, e.gpd.xi);
        free(ex);
        ps_evt_free(&e);
    }
}

int main(void)
{
    test_streams();
    test_snapshot_continues();
    test_cost();
    return test_finish("test_evt_refit");
}
