/*
 * test_seasonal.c - the same-phase distance (core/seasonal.h).
 *
 * The period of a noisy wave is found, and none in noise, a random walk or
 * a constant. A cycle that lost its peak scores far above the healthy
 * cycles, and its echo one period later does not (another cycle matches).
 * Through the scorer, the same missing peak raises the PFP only with the
 * seasonal term on.
 */
#include "core/rng.h"
#include "core/scorer.h"
#include "core/seasonal.h"
#include "testutil.h"

#include <string.h>

enum { PERIOD = 48, ROWS = 12 * PERIOD, HIST = 4 * PERIOD };

/* A square-ish daily wave with noise; cycle `flat` (if >= 0) lost its peak. */
static void make_wave(float *x, size_t rows, int flat, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    for (size_t r = 0; r < rows; r++) {
        int phase = (int)(r % PERIOD), cycle = (int)(r / PERIOD);
        double peak = phase >= 12 && phase < 30 && cycle != flat ? 3.0 : 0.0;
        x[r] = (float)(peak + 0.2 * ps_rng_normal(&rng));
    }
}

static void test_detect(void)
{
    ps_seasonal_config c = ps_seasonal_default_config();
    static float x[ROWS];
    float acf;
    make_wave(x, ROWS, -1, 1);
    uint32_t p = ps_seasonal_detect(x, ROWS, 1, &c, &acf);
    CHECKF(p > 0 && p % PERIOD == 0, "period %u, expected a multiple of %d", (unsigned)p, PERIOD);
    CHECK(acf > 0.8f);
    /* Two cycles are the least that shows one. */
    CHECK(ps_seasonal_detect(x, 2 * PERIOD, 1, &c, NULL) == PERIOD);
    CHECK(ps_seasonal_detect(x, 3 * PERIOD / 2, 1, &c, NULL) == 0);

    ps_rng rng;
    ps_rng_seed(&rng, 2);
    double walk = 0;
    static float noise[ROWS], rw[ROWS], flat[ROWS];
    for (size_t r = 0; r < ROWS; r++) {
        noise[r] = (float)ps_rng_normal(&rng);
        walk += ps_rng_normal(&rng);
        rw[r] = (float)walk;
        flat[r] = 7.0f;
    }
    CHECK(ps_seasonal_detect(noise, ROWS, 1, &c, NULL) == 0);
    CHECK(ps_seasonal_detect(rw, ROWS, 1, &c, NULL) == 0);
    CHECK(ps_seasonal_detect(flat, ROWS, 1, &c, NULL) == 0);
    x[5] = NAN;
    CHECK(ps_seasonal_detect(x, ROWS, 1, &c, NULL) == 0);
}

static void test_distance(void)
{
    ps_seasonal_config c = ps_seasonal_default_config();
    ps_seasonal *s = ps_seasonal_create(2, &c);
    CHECK(s != NULL);
    static float x[ROWS], dist[HIST];
    int flat = 7;
    make_wave(x, ROWS, flat, 3);
    CHECK(ps_seasonal_set_from_history(s, 0, x, HIST, 1, dist) == 0);
    CHECK(ps_seasonal_period(s, 0) > 0 && ps_seasonal_period(s, 0) % PERIOD == 0);
    /* Nothing to compare with before the first cycle is (nearly) in. */
    for (size_t r = 0; r + 1 < PERIOD; r++)
        CHECK(dist[r] == 0);
    double healthy = 0, lost = 0, echo = 0;
    for (size_t r = HIST; r < ROWS; r++) {
        double d = fabs(ps_seasonal_step(s, 0, x[r]));
        int cycle = (int)(r / PERIOD), phase = (int)(r % PERIOD), peak = phase >= 14 && phase < 28;
        if (!peak) continue;
        if (cycle == flat)
            lost = fmax(lost, d);
        else if (cycle == flat + 1)
            echo = fmax(echo, d);
        else
            healthy = fmax(healthy, d);
    }
    CHECKF(lost > 5 * healthy, "lost peak %g, healthy %g", lost, healthy);
    CHECKF(echo < 2 * healthy, "echo %g, healthy %g", echo, healthy);

    /* A series without period: no term, no memory. */
    static float noise[HIST];
    ps_rng rng;
    ps_rng_seed(&rng, 4);
    for (size_t r = 0; r < HIST; r++)
        noise[r] = (float)ps_rng_normal(&rng);
    CHECK(ps_seasonal_set_from_history(s, 1, noise, HIST, 1, dist) == 0);
    CHECK(ps_seasonal_period(s, 1) == 0 && dist[HIST - 1] == 0);
    CHECK(ps_seasonal_step(s, 1, 100.0f) == 0);
    CHECK(ps_seasonal_set_from_history(s, 2, noise, HIST, 1, dist) == PS_EINVAL);
    ps_seasonal_free(s);

    c.cycles = 0;
    CHECK(ps_seasonal_create(1, &c) == NULL);
}

/* The scorer with and without the term on a processor whose cycle 7 lost its
 * peak: the highest PFP inside that cycle against the highest elsewhere. */
/* A random model of K metrics and a one-thread CPU backend. */
static ps_backend *fixture(ps_model *model, int32_t K)
{
    CHECK(ps_model_init(model,
                        &(ps_lstm_shape){.input = K, .hidden = 4, .layers = 1, .output = K}) == 0);
    ps_model_init_random(model, 1);
    char err[256];
    ps_backend *be = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU, .threads = 1},
                                     err, sizeof err);
    CHECKF(be != NULL, "%s", err);
    return be;
}

static void scorer_margin(float weight, double *inside, double *outside)
{
    static ps_model model;
    ps_backend *be = fixture(&model, 1);
    char err[256];
    ps_scorer_config c = ps_scorer_default_config();
    c.processors = 1;
    c.metrics = 1;
    c.warmup = HIST;
    c.lstm_weight = 0;
    c.seasonal_weight = weight;
    ps_scorer *s = ps_scorer_create(be, &model, &c, err, sizeof err);
    CHECKF(s != NULL, "%s", err);
    static float x[ROWS];
    make_wave(x, ROWS, 7, 5);
    *inside = *outside = 0;
    uint32_t p = 0;
    for (size_t r = 0; r < ROWS; r++) {
        ps_score o;
        CHECKF(ps_scorer_tick(s, 1, &p, NULL, &x[r], &o, err, sizeof err) == 0, "%s", err);
        if (r < HIST) continue;
        double *m = r / PERIOD == 7 ? inside : outside;
        *m = fmax(*m, o.pfp);
    }
    ps_scorer_free(s);
    ps_backend_free(be);
    ps_model_free(&model);
}

/* The default weight is auto: 1 for one metric, 0 for several; a weight given stays. */
static void test_auto(void)
{
    static ps_model model;
    ps_backend *be = fixture(&model, 3);
    char err[256];
    ps_scorer_config c = ps_scorer_default_config();
    CHECK(c.seasonal_weight == PS_SEASONAL_AUTO);
    c.processors = 2;
    c.warmup = HIST;
    c.lstm_weight = 0; /* ARIMA alone: any metric count fits */
    static const struct {
        size_t metrics;
        float given, want;
    } cases[] = {{1, PS_SEASONAL_AUTO, 1}, {3, PS_SEASONAL_AUTO, 0}, {3, 0.5f, 0.5f}, {1, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c.metrics = cases[i].metrics;
        c.seasonal_weight = cases[i].given;
        ps_scorer *s = ps_scorer_create(be, &model, &c, err, sizeof err);
        CHECKF(s != NULL, "%s", err);
        if (!s) continue;
        CHECKF(ps_scorer_config_of(s)->seasonal_weight == cases[i].want, "case %zu: %g", i,
               (double)ps_scorer_config_of(s)->seasonal_weight);
        ps_scorer_free(s);
    }
    ps_backend_free(be);
    ps_model_free(&model);
}

static void test_scorer(void)
{
    double in_on, out_on, in_off, out_off;
    scorer_margin(1.0f, &in_on, &out_on);
    scorer_margin(0.0f, &in_off, &out_off);
    /* Compare the tails: 1 - PFP is the tail probability. */
    CHECKF(1 - in_on < 0.01 * (1 - out_on), "with the term: inside %.9g, outside %.9g", in_on,
           out_on);
    CHECKF(1 - in_off > 0.01 * (1 - out_off), "without: inside %.9g, outside %.9g", in_off,
           out_off);
}

int main(void)
{
    test_detect();
    test_distance();
    test_scorer();
    test_auto();
    return test_failures ? 1 : 0;
}
