/*
 * test_baseline.c - the healthy profile (core/baseline.h) and the residual
 * covariance (core/residual_cov.h).
 *
 * Statistical checks use seeded generators and sample sizes whose sampling
 * error is a small fraction of the tolerance, so they are deterministic and
 * far from flaky; each tolerance says where it comes from.
 */
#include "core/baseline.h"
#include "core/residual_cov.h"
#include "core/rng.h"
#include "core/robust.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <float.h>
#include <string.h>

static ps_baseline *make(size_t procs, size_t metrics, uint32_t warmup, float rate)
{
    ps_baseline_config c = ps_baseline_default_config();
    c.warmup = warmup;
    c.drift_rate = rate;
    char err[128] = "";
    ps_baseline *b = ps_baseline_create(procs, metrics, &c, err, sizeof err);
    CHECKF(b != NULL, "%s", err);
    if (!b) exit(1);
    return b;
}

/* One stable tick of one processor. */
static int tick(ps_baseline *b, uint32_t p, const float *x, int stable)
{
    uint8_t st = (uint8_t)stable;
    return ps_baseline_observe(b, 1, &p, x, NULL, &st);
}

static void test_outliers_in_warmup(void)
{
    enum { K = 3, W = 200 };
    ps_baseline *b = make(2, K, W, 0.0f);
    ps_rng r;
    ps_rng_seed(&r, 11);
    for (int t = 0; t < W; t++) {
        float clean[K], dirty[K];
        for (int k = 0; k < K; k++) {
            clean[k] = (float)(5.0 + 2.0 * ps_rng_normal(&r));
            dirty[k] = clean[k];
        }
        /* Five huge spikes, on every metric, in the processor's first day. */
        if (t % 40 == 7)
            for (int k = 0; k < K; k++)
                dirty[k] = k == 1 ? -1e6f : 1e6f;
        CHECK(tick(b, 0, clean, 1) >= 0);
        CHECK(tick(b, 1, dirty, 1) >= 0);
    }
    CHECK(ps_baseline_ready(b, 0) && ps_baseline_ready(b, 1));
    float l0[K], s0[K], l1[K], s1[K];
    CHECK(ps_baseline_get(b, 0, l0, s0) == PS_OK);
    CHECK(ps_baseline_get(b, 1, l1, s1) == PS_OK);
    for (int k = 0; k < K; k++) {
        /* 2.5 % of the values moved: the median moves by about 0.03 sigma, the MAD by a few
         * percent. A mean and standard deviation would be off by 10^4. */
        CHECKF(fabs(l1[k] - l0[k]) < 0.1 * 2.0, "metric %d loc %g vs %g", k, l1[k], l0[k]);
        CHECKF(s1[k] / s0[k] > 0.95 && s1[k] / s0[k] < 1.12, "metric %d scale %g vs %g", k, s1[k],
               s0[k]);
        /* and both near the truth (the MAD's sampling error at n = 200 is about 8 %) */
        CHECK_NEAR(l0[k], 5.0, 0.5);
        CHECK_NEAR(s0[k], 2.0, 0.4);
    }
    ps_baseline_free(b);
}

static void test_constant_and_quantized(void)
{
    enum { K = 4, W = 100 };
    ps_baseline *b = make(1, K, W, 0.005f);
    float hist[W * K];
    ps_rng r;
    ps_rng_seed(&r, 12);
    for (int t = 0; t < W; t++) {
        float *x = hist + t * K;
        x[0] = 0.40f;                                    /* constant */
        x[1] = 0.0f;                                     /* constant at zero */
        x[2] = t % 5 == 3 ? 0.45f : 0.40f;               /* quantized: MAD 0, a minority moves */
        x[3] = ps_rng_uniform(&r) < 0.5 ? 0.12f : 0.13f; /* two levels */
        CHECK(tick(b, 0, x, 1) >= 0);
    }
    CHECK(ps_baseline_ready(b, 0));
    float loc[K], scale[K];
    CHECK(ps_baseline_get(b, 0, loc, scale) == PS_OK);
    for (int k = 0; k < K; k++) {
        float l, s;
        /* the same statistics as training, bit for bit */
        CHECK(ps_robust_loc_scale(hist + k, W, K, &l, &s) == PS_OK);
        CHECK(l == loc[k] && s == scale[k]);
        CHECKF(scale[k] >= (float)ps_robust_floor(loc[k]) * 0.999999f, "metric %d scale %g", k,
               scale[k]);
    }
    CHECK_NEAR(scale[0], ps_robust_floor(0.40), 1e-7);
    CHECK_NEAR(scale[1], PS_ROBUST_FLOOR_ABS, 1e-9);
    /* the quantized column keeps the spread of its minority (mean AD), above the floor */
    CHECK(scale[2] > (float)ps_robust_floor(0.40) * 1.2f);

    /* a move of one quantum, and a large one, normalize to finite, sensible values */
    uint32_t p = 0;
    float x[K] = {0.41f, 0.01f, 0.41f, 0.14f}, z[K];
    CHECK(ps_baseline_normalize(b, 1, &p, x, z) == 0);
    for (int k = 0; k < K; k++)
        CHECK(isfinite(z[k]));
    CHECK_NEAR(z[0], 0.01 / ps_robust_floor(0.40), 1e-3); /* 2: a 1 % step of the level */
    CHECK_NEAR(z[1], 10.0, 1e-3);
    float big[K] = {1.0f, 1.0f, 1.0f, 1.0f};
    CHECK(ps_baseline_normalize(b, 1, &p, big, z) == 0);
    for (int k = 0; k < K; k++)
        CHECK(isfinite(z[k]) && z[k] <= 1000.0f);

    /* drift on a constant series stays put and keeps the floor */
    for (int t = 0; t < 500; t++)
        CHECK(tick(b, 0, hist, 1) >= 0);
    CHECK(ps_baseline_get(b, 0, loc, scale) == PS_OK);
    CHECK(loc[0] == 0.40f && loc[1] == 0.0f);
    CHECK_NEAR(scale[0], ps_robust_floor(0.40), 1e-7);
    CHECK_NEAR(scale[1], PS_ROBUST_FLOOR_ABS, 1e-9);

    /* denormalize inverts normalize */
    float back[K];
    CHECK(ps_baseline_normalize(b, 1, &p, x, z) == 0);
    CHECK(ps_baseline_denormalize(b, 1, &p, z, back) == 0);
    for (int k = 0; k < K; k++)
        CHECK_NEAR(back[k], x[k], 1e-6);
    /* a missing value stays missing */
    x[2] = NAN;
    CHECK(ps_baseline_normalize(b, 1, &p, x, z) == 0);
    CHECK(isnan(z[2]) && isfinite(z[1]));
    ps_baseline_free(b);
}

static void test_drift(void)
{
    enum { W = 100 };
    const float rate = 0.01f;
    ps_baseline *b = make(4, 1, W, rate);
    ps_baseline *b2 = make(1, 1, W, 2 * rate);
    ps_baseline *off = make(1, 1, W, 0.0f);
    ps_rng r;
    ps_rng_seed(&r, 13);
    for (int t = 0; t < W; t++) {
        float v = (float)ps_rng_normal(&r);
        for (uint32_t p = 0; p < 4; p++)
            tick(b, p, &v, 1);
        tick(b2, 0, &v, 1);
        tick(off, 0, &v, 1);
    }
    float l0, s0;
    CHECK(ps_baseline_get(b, 0, &l0, &s0) == PS_OK);

    /* one stable tick at a shifted level moves loc by exactly rate * scale */
    const float level = 10.0f;
    float l, s, prev;
    tick(b, 0, &level, 1);
    CHECK(ps_baseline_get(b, 0, &l, &s) == PS_OK);
    CHECK_NEAR(l - l0, rate * s0, 1e-6);
    CHECK(s > s0); /* the deviation is far beyond the scale: the scale grows */
    prev = l;
    int monotone = 1;
    for (int t = 0; t < 1000; t++) {
        tick(b, 0, &level, 1);
        ps_baseline_get(b, 0, &l, &s);
        if (l < prev || l > level) monotone = 0;
        prev = l;
    }
    CHECK(monotone);
    CHECK_NEAR(l, level, 1e-4);

    /* twice the rate, twice as fast over the first steps */
    float lb, sb;
    for (int t = 0; t < 20; t++)
        tick(b2, 0, &level, 1);
    ps_baseline_get(b2, 0, &lb, &sb);
    float l1;
    ps_baseline_get(b, 1, &l1, NULL);
    for (int t = 0; t < 20; t++)
        tick(b, 1, &level, 1);
    float la;
    ps_baseline_get(b, 1, &la, NULL);
    CHECKF(lb - l0 > 1.9f * (la - l0), "rate 2r moved %g, rate r %g", lb - l0, la - l0);

    /* drift off: stable ticks at the new level change nothing */
    float lo0, so0, lo1, so1;
    ps_baseline_get(off, 0, &lo0, &so0);
    for (int t = 0; t < 100; t++)
        tick(off, 0, &level, 1);
    ps_baseline_get(off, 0, &lo1, &so1);
    CHECK(lo0 == lo1 && so0 == so1);

    /* unstable ticks change nothing at all: the whole state, bit for bit */
    size_t len = ps_baseline_state_len(b);
    double *before = malloc(len * sizeof *before), *after = malloc(len * sizeof *after);
    CHECK(ps_baseline_export(b, 2, before) == PS_OK);
    for (int t = 0; t < 500; t++)
        tick(b, 2, &level, 0);
    CHECK(ps_baseline_export(b, 2, after) == PS_OK);
    CHECK(memcmp(before, after, len * sizeof *before) == 0);
    /* with a timestamp, only the previous heartbeat time moves */
    uint32_t p = 2;
    uint8_t no = 0;
    double t0 = 1000.0;
    CHECK(ps_baseline_observe(b, 1, &p, &level, &t0, &no) == 0);
    CHECK(ps_baseline_export(b, 2, after) == PS_OK);
    for (size_t i = 0; i < len; i++)
        if (i != 2 && i != 3) CHECK(before[i] == after[i]);
    free(before);
    free(after);

    /* slow drift under noise: the EW median follows with a small lag */
    float lr, sr;
    for (int t = 1; t <= 5000; t++) {
        float v = (float)(0.002 * t + ps_rng_normal(&r));
        tick(b, 3, &v, 1);
    }
    ps_baseline_get(b, 3, &lr, &sr);
    /* At drift speed v the median lags where rate*scale*(2P(x > loc) - 1) = v: about
     * 0.25 sigma here; the tolerance is twice that, the tracker's own noise is ~0.1. */
    CHECKF(fabs(lr - 10.0) < 0.5, "loc %g, level 10", lr);
    CHECKF(sr > 0.75f && sr < 1.33f, "scale %g, sigma 1", sr);
    ps_baseline_free(b);
    ps_baseline_free(b2);
    ps_baseline_free(off);
}

static void test_history_equals_warmup(void)
{
    enum { K = 5, W = 150 };
    ps_baseline *b = make(3, K, W, 0.01f);
    float hist[W * K];
    ps_rng r;
    ps_rng_seed(&r, 14);
    for (int t = 0; t < W; t++) {
        float *x = hist + t * K;
        x[0] = (float)(3.0 + ps_rng_normal(&r));
        x[1] = 0.5f;
        x[2] = floorf((float)ps_rng_uniform(&r) * 4.0f) / 100.0f;
        x[3] = (float)(1e4 * ps_rng_normal(&r));
        x[4] = t == 77 ? NAN : (float)ps_rng_uniform(&r);
    }
    int became = 0;
    for (int t = 0; t < W; t++)
        became += tick(b, 0, hist + t * K, 1);
    CHECK(became == 1);
    CHECK(ps_baseline_set_from_history(b, 1, W, hist, NULL) == PS_OK);
    CHECK(ps_baseline_ready(b, 1));
    size_t len = ps_baseline_state_len(b);
    double *s0 = malloc(len * sizeof *s0), *s1 = malloc(len * sizeof *s1);
    ps_baseline_export(b, 0, s0);
    ps_baseline_export(b, 1, s1);
    CHECK(memcmp(s0, s1, len * sizeof *s0) == 0);

    /* a history longer than the warm-up (scratch of its own) still matches robust.h */
    float *longer = malloc(3 * W * K * sizeof *longer);
    for (int i = 0; i < 3 * W * K; i++)
        longer[i] = hist[i % (W * K)] + (float)(i / (W * K));
    CHECK(ps_baseline_set_from_history(b, 2, 3 * W, longer, NULL) == PS_OK);
    float loc[K], scale[K];
    ps_baseline_get(b, 2, loc, scale);
    for (int k = 0; k < K; k++) {
        float l, s;
        ps_robust_loc_scale(longer + k, 3 * W, K, &l, &s);
        CHECK(l == loc[k] && s == scale[k]);
    }
    free(longer);

    /* snapshot round trip: a fresh object normalizes identically */
    ps_baseline *c = make(3, K, W, 0.01f);
    CHECK(ps_baseline_import(c, 0, s0) == PS_OK);
    uint32_t p = 0;
    float z0[K], z1[K];
    CHECK(ps_baseline_normalize(b, 1, &p, hist + 5 * K, z0) == 0);
    CHECK(ps_baseline_normalize(c, 1, &p, hist + 5 * K, z1) == 0);
    CHECK(memcmp(z0, z1, sizeof z0) == 0);
    /* a corrupt snapshot is refused and changes nothing */
    s0[8 + K] = 0.0; /* scale of metric 0 */
    CHECK(ps_baseline_import(c, 1, s0) == PS_BASELINE_EDATA);
    CHECK(!ps_baseline_ready(c, 1));
    s0[8 + K] = 1.0;
    s0[0] = 2.0;
    CHECK(ps_baseline_import(c, 1, s0) == PS_BASELINE_EDATA);
    /* warming with a full buffer: the next row would be written past it */
    s0[0] = 0.0;
    s0[1] = W;
    CHECK(ps_baseline_import(c, 1, s0) == PS_BASELINE_EDATA);
    s0[1] = W - 1;
    CHECK(ps_baseline_import(c, 1, s0) == PS_OK);
    CHECK(tick(c, 1, hist, 1) == 1 && ps_baseline_ready(c, 1));

    /* a warming processor normalizes to 0 and is counted */
    uint32_t two[2] = {0, 2};
    float zz[2 * K];
    CHECK(ps_baseline_normalize(c, 2, two, hist, zz) == 1);
    for (int k = 0; k < K; k++)
        CHECK(zz[K + k] == 0.0f);
    /* repeated or out-of-range processors are refused */
    uint32_t dup[2] = {0, 0}, bad = 3;
    uint8_t st[2] = {1, 1};
    CHECK(ps_baseline_observe(c, 2, dup, hist, NULL, st) == PS_EINVAL);
    CHECK(ps_baseline_observe(c, 1, &bad, hist, NULL, st) == PS_EINVAL);
    CHECK(ps_baseline_normalize(c, 1, &bad, hist, zz) == PS_EINVAL);
    /* reset: back to warm-up */
    CHECK(ps_baseline_reset(c, 1, &p) == PS_OK);
    CHECK(!ps_baseline_ready(c, 0) && ps_baseline_warm_count(c, 0) == 0);
    CHECK(ps_baseline_get(c, 0, loc, scale) == PS_BASELINE_ENOTREADY);
    free(s0);
    free(s1);
    ps_baseline_free(b);
    ps_baseline_free(c);
}

/* Lateness of one heartbeat, then commit it with a verdict. */
static float beat(ps_baseline *b, double t, int stable, uint32_t *flags)
{
    uint32_t p = 0;
    float late = -1.0f, x = 0.0f;
    uint8_t st = (uint8_t)stable;
    CHECK(ps_baseline_lateness(b, 1, &p, &t, &late, flags) == PS_OK);
    CHECK(ps_baseline_observe(b, 1, &p, &x, &t, &st) >= 0);
    return late;
}

static void test_lateness(void)
{
    ps_baseline *b = make(1, 1, 10, 0.0f);
    uint32_t f;
    CHECK(beat(b, 100.0, 1, &f) == 0.0f && (f & PS_HB_FIRST));
    CHECK(beat(b, 110.0, 1, &f) == 0.0f && (f & PS_HB_UNKNOWN));
    CHECK(beat(b, 120.0, 1, &f) == 0.0f && (f & PS_HB_DEFAULT)); /* guess from one interval */
    for (int i = 3; i < 20; i++) {
        float late = beat(b, 100.0 + 10.0 * i, 1, &f);
        CHECK(late == 0.0f);
        if (i >= 4) CHECK(f == 0); /* three intervals learned: the median is in use */
    }
    int learned;
    CHECK_NEAR(ps_baseline_expected_interval(b, 0, &learned), 10.0, 0);
    CHECK(learned);
    /* 25 s after the last one, 10 expected: 1.5 intervals late. Unstable: not learned. */
    CHECK_NEAR(beat(b, 315.0, 0, &f), 1.5, 1e-6);
    CHECK(f == 0);
    CHECK_NEAR(ps_baseline_expected_interval(b, 0, NULL), 10.0, 0);
    /* the next is measured from the late one */
    CHECK(beat(b, 325.0, 1, &f) == 0.0f);
    /* early is not late */
    CHECK(beat(b, 330.0, 1, &f) == 0.0f);
    /* backwards: reported, lateness 0, and the clock resyncs */
    CHECK(beat(b, 300.0, 1, &f) == 0.0f && (f & PS_HB_BACKWARDS));
    CHECK(beat(b, 310.0, 1, &f) == 0.0f && f == 0);
    /* repeated: reported, ignored */
    CHECK(beat(b, 310.0, 1, &f) == 0.0f && (f & PS_HB_REPEAT));
    CHECK_NEAR(beat(b, 330.0, 1, &f), 1.0, 1e-6);
    /* not a number: reported, nothing moves */
    CHECK(beat(b, NAN, 1, &f) == 0.0f && (f & PS_HB_INVALID));
    CHECK(beat(b, INFINITY, 1, &f) == 0.0f && (f & PS_HB_INVALID));
    uint64_t back, rep;
    ps_baseline_clock_faults(b, 0, &back, &rep);
    CHECK(back == 1 && rep == 1);
    /* the median shrugs off a few long gaps even when they are learned */
    double t = 1000.0;
    ps_rng r;
    ps_rng_seed(&r, 15);
    beat(b, t, 1, &f);
    for (int i = 0; i < 40; i++) {
        t += i % 8 == 5 ? 100.0 : 10.0 + ps_rng_uniform(&r) - 0.5;
        beat(b, t, 1, &f);
    }
    CHECK_NEAR(ps_baseline_expected_interval(b, 0, NULL), 10.0, 0.5);
    ps_baseline_free(b);

    /* a configured default holds until enough intervals are learned */
    ps_baseline_config c = ps_baseline_default_config();
    c.warmup = 10;
    c.hb_default_interval = 5.0;
    b = ps_baseline_create(1, 1, &c, NULL, 0);
    CHECK(b != NULL);
    beat(b, 0.0, 1, &f);
    CHECK_NEAR(beat(b, 10.0, 1, &f), 1.0, 1e-6);
    CHECK(f & PS_HB_DEFAULT);
    /* a history seeds the interval */
    double ts[6] = {0, 60, 120, 180, 240, 300};
    float xs[6] = {1, 2, 3, 4, 5, 6};
    CHECK(ps_baseline_set_from_history(b, 0, 6, xs, ts) == PS_OK);
    CHECK_NEAR(ps_baseline_expected_interval(b, 0, &learned), 60.0, 0);
    CHECK(learned);
    uint32_t bad = 1;
    float late;
    CHECK(ps_baseline_lateness(b, 1, &bad, ts, &late, NULL) == PS_EINVAL);
    ps_baseline_free(b);

    /* A gap beyond the restart bound (10 intervals by default) is a restart: lateness 0,
       flagged, and not learned; one below it is lateness as usual. */
    c = ps_baseline_default_config();
    c.warmup = 10;
    CHECK(c.hb_restart_intervals == 10.0);
    b = ps_baseline_create(1, 1, &c, NULL, 0);
    CHECK(b != NULL);
    t = 0;
    for (int i = 0; i < 6; i++, t += 5)
        beat(b, t, 1, &f);
    CHECK_NEAR(ps_baseline_expected_interval(b, 0, NULL), 5.0, 0);
    t += 40; /* beats at 0 .. 25; this one at 65: 8 intervals, 7 late */
    CHECK_NEAR(beat(b, t - 5, 0, &f), 7.0, 1e-6);
    CHECK(!(f & PS_HB_RESTART));
    t += 55; /* at 120: 11 intervals, a restart */
    CHECK(beat(b, t - 5, 1, &f) == 0.0f && (f & PS_HB_RESTART));
    CHECK_NEAR(ps_baseline_expected_interval(b, 0, NULL), 5.0, 0);
    CHECK_NEAR(beat(b, t, 1, &f), 0.0, 0);
    ps_baseline_free(b);
    /* Off: every gap is lateness. */
    c.hb_restart_intervals = 0;
    b = ps_baseline_create(1, 1, &c, NULL, 0);
    CHECK(b != NULL);
    for (int i = 0; i < 6; i++)
        beat(b, 5.0 * i, 1, &f);
    CHECK_NEAR(beat(b, 25.0 + 60.0, 1, &f), 11.0, 1e-6);
    ps_baseline_free(b);
    c.hb_restart_intervals = 0.5;
    CHECK(ps_baseline_create(1, 1, &c, NULL, 0) == NULL);
}

/* ---- residual covariance ---- */

/* x = A z with z standard normal: covariance A A'. A is K x K row-major. */
static void draw(ps_rng *r, const double *A, size_t K, float *x)
{
    double z[32];
    for (size_t i = 0; i < K; i++)
        z[i] = ps_rng_normal(r);
    for (size_t i = 0; i < K; i++) {
        double v = 0;
        for (size_t j = 0; j < K; j++)
            v += A[i * K + j] * z[j];
        x[i] = (float)v;
    }
}

static ps_rescov *make_cov(size_t procs, size_t K, float rate)
{
    ps_rescov_config c = ps_rescov_default_config();
    c.rate = rate;
    char err[128] = "";
    ps_rescov *cv = ps_rescov_create(procs, K, &c, err, sizeof err);
    CHECKF(cv != NULL, "%s", err);
    if (!cv) exit(1);
    return cv;
}

static int argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (int)best;
}

static void test_mahalanobis_calibrated(void)
{
    enum { K = 8, N = 20000 };
    /* A random factor structure: loadings that give correlations of about 0.3 to 0.8,
     * plus unequal idiosyncratic noise. */
    double A[K * K] = {0};
    ps_rng r;
    ps_rng_seed(&r, 21);
    for (int i = 0; i < K; i++) {
        A[i * K + 0] = 0.5 + ps_rng_uniform(&r);
        A[i * K + 1] = ps_rng_uniform(&r) - 0.5;
        A[i * K + i] += 0.3 + ps_rng_uniform(&r);
    }
    ps_rescov *cv = make_cov(1, K, 0.0f);
    uint32_t p = 0;
    uint8_t yes = 1;
    float x[K];
    int became = 0;
    for (int t = 0; t < N; t++) {
        draw(&r, A, K, x);
        became += ps_rescov_update(cv, 1, &p, x, &yes);
    }
    CHECK(became == 1);
    ps_rescov_info info;
    CHECK(ps_rescov_info_get(cv, 0, &info) == PS_OK);
    CHECK(info.ready && !info.diagonal && info.samples == N);
    /* 20000 samples of 8 metrics: the estimated intensity is about 2e-4, the floor of
     * 1e-3 is in force */
    CHECKF(info.shrinkage >= 0.00099 && info.shrinkage < 0.01, "shrinkage %g", info.shrinkage);
    double sum = 0, sum2 = 0, worst = 0;
    float contrib[K];
    for (int t = 0; t < N; t++) {
        double d2;
        draw(&r, A, K, x);
        CHECK(ps_rescov_mahalanobis(cv, 0, x, &d2, contrib) == PS_OK);
        double cs = 0;
        for (int k = 0; k < K; k++)
            cs += contrib[k];
        if (fabs(cs - d2) > worst) worst = fabs(cs - d2);
        sum += d2;
        sum2 += d2 * d2;
    }
    double mean = sum / N, var = sum2 / N - mean * mean;
    /* chi-square with K degrees of freedom: mean K, variance 2K; the mean of N has a
     * standard error of sqrt(2K/N) = 0.028. The shrinkage floor of 1e-3 pulls it down
     * by about 0.5 % on these correlations (up to 0.9); 1e-2 would cost 4.5 %. */
    printf("mahalanobis: mean d2 %.4f (K = %d), variance %.3f (2K = %d), shrinkage %.4f\n", mean, K,
           var, 2 * K, info.shrinkage);
    CHECK_NEAR(mean, K, 0.2);
    CHECK_NEAR(var, 2 * K, 2.0);
    CHECKF(worst < 1e-3 * K, "contributions sum to d2 within %g", worst);

    /* a residual far out on one metric names it */
    for (int k = 0; k < K; k++)
        x[k] = 0.1f * (float)ps_rng_normal(&r);
    x[5] = 6.0f;
    double d2;
    CHECK(ps_rescov_mahalanobis(cv, 0, x, &d2, contrib) == PS_OK);
    CHECK(argmax(contrib, K) == 5);

    /* unstable ticks teach nothing */
    size_t len = ps_rescov_state_len(cv);
    double *before = malloc(len * sizeof *before), *after = malloc(len * sizeof *after);
    ps_rescov_export(cv, 0, before);
    uint8_t no = 0;
    for (int t = 0; t < 100; t++) {
        x[0] = 50.0f;
        ps_rescov_update(cv, 1, &p, x, &no);
    }
    ps_rescov_export(cv, 0, after);
    CHECK(memcmp(before, after, len * sizeof *before) == 0);
    /* and a snapshot restores the same distances */
    ps_rescov *cv2 = make_cov(1, K, 0.0f);
    CHECK(ps_rescov_import(cv2, 0, before) == PS_OK);
    double d2b;
    ps_rescov_mahalanobis(cv2, 0, x, &d2b, NULL);
    ps_rescov_mahalanobis(cv, 0, x, &d2, NULL);
    CHECK(d2 == d2b);
    before[6 + K * (K + 1) + 0] = 0.0; /* first pivot of the factor */
    CHECK(ps_rescov_import(cv2, 0, before) == PS_EINVAL);
    free(before);
    free(after);
    ps_rescov_free(cv);
    ps_rescov_free(cv2);
}

static void test_mahalanobis_correlation(void)
{
    /* unit variances, correlation 0.9 */
    const double rho = 0.9;
    double A[4] = {1.0, 0.0, rho, sqrt(1 - rho * rho)};
    ps_rescov *cv = make_cov(1, 2, 1.0f / 2048.0f);
    ps_rng r;
    ps_rng_seed(&r, 22);
    uint32_t p = 0;
    uint8_t yes = 1;
    float x[2];
    /* not ready yet: the identity */
    float follow[2] = {2.0f, 2.0f}, brk[2] = {2.0f, -2.0f};
    double d_follow, d_break;
    CHECK(ps_rescov_mahalanobis(cv, 0, follow, &d_follow, NULL) == PS_OK);
    CHECK(d_follow == 8.0);
    for (int t = 0; t < 10000; t++) {
        draw(&r, A, 2, x);
        ps_rescov_update(cv, 1, &p, x, &yes);
    }
    double cov[4];
    CHECK(ps_rescov_get(cv, 0, cov) == PS_OK);
    printf("rho 0.9: learned covariance [%.3f %.3f; %.3f %.3f]\n", cov[0], cov[1], cov[2], cov[3]);
    CHECK_NEAR(cov[0], 1.0, 0.08);
    CHECK_NEAR(cov[3], 1.0, 0.08);
    CHECK_NEAR(cov[1] / sqrt(cov[0] * cov[3]), rho, 0.03);
    float c[2];
    CHECK(ps_rescov_mahalanobis(cv, 0, follow, &d_follow, NULL) == PS_OK);
    CHECK(ps_rescov_mahalanobis(cv, 0, brk, &d_break, c) == PS_OK);
    /* exact: 8 / (1 + rho) = 4.2 and 8 / (1 - rho) = 80 */
    printf("rho 0.9: d2(+2,+2) = %.2f, d2(+2,-2) = %.2f\n", d_follow, d_break);
    CHECK(d_follow < 8.0 && d_follow > 3.0);
    CHECK(d_break > 50.0);
    CHECK(d_break > 10.0 * d_follow);
    CHECK(c[0] > 0 && c[1] > 0);
    ps_rescov_free(cv);
}

static void test_mahalanobis_singular(void)
{
    enum { K = 5 };
    ps_rescov *cv = make_cov(2, K, 1.0f / 2048.0f);
    ps_rng r;
    ps_rng_seed(&r, 23);
    uint32_t procs[2] = {0, 1};
    uint8_t yes[2] = {1, 1};
    for (int t = 0; t < 1000; t++) {
        float x[2 * K];
        double a = ps_rng_normal(&r);
        x[0] = (float)a;
        x[1] = (float)a; /* a duplicate of metric 0: rank deficient */
        x[2] = 0.0f;     /* a constant metric: zero variance */
        x[3] = ps_rng_uniform(&r) < 0.05 ? 2.0f : 0.0f; /* quantized, mostly 0 */
        x[4] = (float)(1e-4 * ps_rng_normal(&r));       /* nearly constant */
        for (int k = 0; k < K; k++)
            x[K + k] = 0.0f; /* processor 1: every residual exactly 0 */
        CHECK(ps_rescov_update(cv, 2, procs, x, yes) >= 0);
    }
    for (uint32_t p = 0; p < 2; p++) {
        ps_rescov_info info;
        ps_rescov_info_get(cv, p, &info);
        CHECK(info.ready && !info.diagonal);
        float tests[4][K] = {
            {1.0f, -1.0f, 0.0f, 0.0f, 0.0f}, /* breaks the duplicate */
            {0.0f, 0.0f, 5.0f, 0.0f, 0.0f},  /* the constant moves */
            {0.0f, 0.0f, 0.0f, 0.0f, 1.0f},  /* the nearly constant moves */
            {1e30f, 1e30f, -1e30f, 1e30f, 1e30f},
        };
        for (int i = 0; i < 4; i++) {
            double d2;
            float c[K];
            CHECK(ps_rescov_mahalanobis(cv, p, tests[i], &d2, c) == PS_OK);
            CHECKF(isfinite(d2) && d2 > 0, "proc %u case %d: d2 %g", p, i, d2);
            if (i < 3) {
                /* bounded by |r|^2 / (shrink_min * var_floor), the defaults 1e-3 and 1e-2 */
                double n2 = 0;
                for (int k = 0; k < K; k++)
                    n2 += (double)tests[i][k] * tests[i][k];
                CHECKF(d2 <= n2 / (0.001 * 0.01) * 1.0001, "case %d: d2 %g", i, d2);
            }
        }
        /* the constant metric moving: 25 / var_floor */
        double d2;
        float c[K];
        ps_rescov_mahalanobis(cv, p, tests[1], &d2, c);
        CHECK(argmax(c, K) == 2);
        if (p == 0) CHECK_NEAR(d2, 25.0 / 0.01, 25.0 / 0.01 * 1e-3);
    }
    /* bad input: NaN out, error code, no crash */
    float nanr[K] = {0, NAN, 0, 0, 0}, c[K];
    double d2 = 0;
    CHECK(ps_rescov_mahalanobis(cv, 0, nanr, &d2, c) == PS_EINVAL);
    CHECK(isnan(d2) && isnan(c[0]));
    CHECK(ps_rescov_mahalanobis(cv, 7, nanr, &d2, NULL) == PS_EINVAL);
    /* a fixed shrinkage of 1 is the diagonal */
    ps_rescov_config cfg = ps_rescov_default_config();
    cfg.shrink = 1.0f;
    ps_rescov *diag = ps_rescov_create(1, 2, &cfg, NULL, 0);
    float hist[200 * 2];
    for (int t = 0; t < 200; t++)
        hist[2 * t] = hist[2 * t + 1] = (float)ps_rng_normal(&r);
    CHECK(ps_rescov_set_from_history(diag, 0, 200, hist) == PS_OK);
    double cov[4];
    ps_rescov_get(diag, 0, cov);
    CHECK(cov[1] == 0.0 && cov[2] == 0.0 && cov[0] > 0.5);
    ps_rescov_free(diag);
    ps_rescov_free(cv);
}

int main(void)
{
    test_outliers_in_warmup();
    test_constant_and_quantized();
    test_drift();
    test_history_equals_warmup();
    test_lateness();
    test_mahalanobis_calibrated();
    test_mahalanobis_correlation();
    test_mahalanobis_singular();
    return test_finish("test_baseline");
}
