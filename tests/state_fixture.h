/*
 * state_fixture.h - one scorer workload shared by the snapshot tests
 * (test_scorer_state.c, test_state_file.c): a small random model, LSTM and
 * ARIMA both weighted, the seasonal term on, and six processors that start
 * at different ticks, one with a shorter warm-up, one with a spike, so a
 * snapshot at FIX_SPLIT holds ready, warming and never-seen processors.
 */
#ifndef PRESHIFT_STATE_FIXTURE_H
#define PRESHIFT_STATE_FIXTURE_H

#include "core/rng.h"
#include "core/scorer.h"
#include "testutil.h"

#include <string.h>

enum {
    FIX_K = 3,
    FIX_P = 6,
    FIX_WARM = 120,
    FIX_PERIOD = 12,
    FIX_ROWS = 600,
    FIX_SPLIT = 300, /* where the tests snapshot */
};

static ps_model fix_model;
static ps_backend *fix_be;
static float fix_x[FIX_P][FIX_ROWS][FIX_K];

/* First tick of each processor: 3 is still warming at FIX_SPLIT, 4 unseen,
 * 5 warms up on a shorter window that completes after FIX_SPLIT. */
static const int fix_start[FIX_P] = {0, 0, 0, 250, 400, 290};

static inline void fix_setup(void)
{
    CHECK(ps_model_init(&fix_model,
                        &(ps_lstm_shape){.input = 1, .hidden = 6, .layers = 1, .output = 1}) == 0);
    ps_model_init_random(&fix_model, 11);
    char err[256];
    fix_be = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU, .threads = 1}, err,
                             sizeof err);
    CHECKF(fix_be != NULL, "%s", err);
    for (int p = 0; p < FIX_P; p++) {
        ps_rng rng;
        ps_rng_seed(&rng, 100 + (uint64_t)p);
        for (int r = 0; r < FIX_ROWS; r++) {
            int phase = r % FIX_PERIOD;
            double wave = phase >= 3 && phase < 7 ? 4.0 : 0.0;
            fix_x[p][r][0] = (float)(50 + wave + 0.3 * ps_rng_normal(&rng));
            fix_x[p][r][1] = (float)(20 + 2 * sin(r / 17.0 + p) + 0.5 * ps_rng_normal(&rng));
            fix_x[p][r][2] = (float)(5 + (double)p + 0.2 * ps_rng_normal(&rng));
        }
        /* Unstable ticks on both sides of the split: they teach nothing. */
        if (p == 1)
            for (int r = 0; r < FIX_ROWS; r++)
                if ((r >= 200 && r < 206) || (r >= 420 && r < 424)) fix_x[p][r][1] += 40;
    }
}

static inline void fix_teardown(void)
{
    ps_backend_free(fix_be);
    ps_model_free(&fix_model);
}

static inline ps_scorer_config fix_config(void)
{
    ps_scorer_config c = ps_scorer_default_config();
    c.processors = FIX_P;
    c.metrics = FIX_K;
    c.warmup = FIX_WARM;
    c.burn_in = 16;
    c.lstm_weight = 0.5f;
    c.seasonal_weight = 1.0f;
    c.drift_rate = 0.01f;
    c.evt.window = 64;
    c.evt.max_excess = 32;
    c.evt.refit_every = 8;
    return c;
}

static inline ps_scorer *fix_scorer(const ps_scorer_config *c)
{
    char err[256];
    ps_scorer *s = ps_scorer_create(fix_be, &fix_model, c, err, sizeof err);
    CHECKF(s != NULL, "%s", err);
    if (s && c->processors > 5) CHECK(ps_scorer_set_warmup(s, 5, 40) == 0);
    return s;
}

/* Tick r of the workload; out[p] gets processor p's score (zeroed if absent). */
static inline int fix_tick(ps_scorer *s, int r, ps_score out[FIX_P])
{
    uint32_t procs[FIX_P];
    double t[FIX_P];
    float x[FIX_P * FIX_K];
    ps_score o[FIX_P];
    size_t n = 0;
    for (int p = 0; p < FIX_P; p++) {
        if (r < fix_start[p]) continue;
        procs[n] = (uint32_t)p;
        /* Heartbeats a little late or early, so lateness is exercised. */
        t[n] = r + 0.05 * sin(r * 0.7 + p) + (p == 2 && r % 50 == 0 ? 3 : 0);
        memcpy(x + n * FIX_K, fix_x[p][r], sizeof fix_x[p][r]);
        n++;
    }
    char err[256];
    /* Every fifth tick without times: the clock is exercised too. */
    int rc = ps_scorer_tick(s, n, procs, r % 5 == 4 ? NULL : t, x, o, err, sizeof err);
    CHECKF(rc == 0, "tick %d: %s", r, err);
    memset(out, 0, FIX_P * sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[procs[i]] = o[i];
    return rc;
}

/* Bit-identical outputs, field by field (the struct has padding). */
static inline int fix_same(const ps_score *a, const ps_score *b)
{
    return memcmp(&a->score, &b->score, sizeof a->score) == 0 &&
           memcmp(&a->pfp, &b->pfp, sizeof a->pfp) == 0 && a->top_metric == b->top_metric &&
           memcmp(&a->top_share, &b->top_share, sizeof a->top_share) == 0 &&
           memcmp(&a->lateness, &b->lateness, sizeof a->lateness) == 0 && a->state == b->state;
}

/* Processor p's state as a malloc'd buffer (*len bytes). */
static inline uint8_t *fix_export(const ps_scorer *s, uint32_t p, size_t *len)
{
    *len = ps_scorer_state_size(s, p);
    uint8_t *b = malloc(*len ? *len : 1);
    CHECK(b != NULL);
    if (b) CHECKF(ps_scorer_state_export(s, p, b, *len) == 0, "export of processor %u", p);
    return b;
}

/* Whether processor p's state exports to exactly these bytes. */
static inline int fix_state_is(const ps_scorer *s, uint32_t p, const uint8_t *b, size_t len)
{
    size_t n;
    uint8_t *now = fix_export(s, p, &n);
    int same = n == len && memcmp(now, b, len) == 0;
    free(now);
    return same;
}

#endif
