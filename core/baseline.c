/*
 * baseline.c - warm-up, normalization, drift following and heartbeat
 * intervals (see baseline.h and docs/baseline.md).
 *
 * Every per-processor array is a slice of one allocation, indexed by the
 * processor's slot, so the state is plain values and a snapshot is a copy.
 *
 * Drift keeps the rule of core/robust.h alive online instead of inventing a
 * second one: the location is an exponentially weighted median (a sign step
 * of drift_rate * scale), and the scale is chosen from two running
 * estimators exactly as the warm-up chooses it - the scaled MAD, tracked as
 * a median of |x - loc| by multiplicative steps, when it clears the floor,
 * else the (clipped) mean absolute deviation, never below the floor. A
 * quantized series whose MAD is 0 therefore keeps the scale its warm-up
 * gave it instead of collapsing to the floor once drift starts.
 */
#include "baseline.h"
#include "kernels/kernels.h"
#include "robust.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Warm-up windows longer than this are a configuration mistake, not a need. */
#define MAX_WARMUP (1u << 20)
/* The values that open a snapshot before the per-metric arrays. */
#define STATE_HEAD 8

struct ps_baseline {
    size_t procs, metrics;
    ps_baseline_config cfg;
    double up, down; /* exp(+-drift_rate): one step of the MAD tracker */

    void *block;         /* everything below lives in it */
    float *loc, *scale;  /* P x K: the baseline */
    float *mad, *meanad; /* P x K: the two scale estimators drift moves */
    float *warm;         /* P x warmup x K: ticks collected while warming */
    double *last_t;      /* P: previous heartbeat time */
    double *ring;        /* P x HB_RING: recent stable intervals */
    double *expected;    /* P: median of the ring (derived, cached) */
    uint64_t *backwards; /* P */
    uint64_t *repeats;   /* P */
    uint32_t *warm_n;    /* P */
    uint32_t *hb_count;  /* P: intervals learned, saturating */
    uint32_t *hb_head;   /* P: next ring position */
    uint8_t *ready;      /* P */
    uint8_t *has_last;   /* P */
    uint8_t *mark;       /* P: scratch for the duplicate check */
    float *work;         /* warmup floats: scratch for the robust statistics */
};

ps_baseline_config ps_baseline_default_config(void)
{
    ps_baseline_config c;
    c.warmup = 288; /* a day of 5-minute ticks: the daily cycle is in the profile */
    c.drift_rate = 0.005f;
    c.drift_clip = 6.0f;
    c.hb_default_interval = 0.0;
    c.hb_min_intervals = 3;
    c.hb_restart_intervals = 10.0;
    return c;
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/*
 * Reserve count elements of size bytes (aligned to size, a power of two up
 * to 8) at *off; 0 if the total would overflow.
 */
static int reserve(size_t *off, size_t count, size_t size, size_t *at)
{
    size_t o = (*off + size - 1) / size * size;
    if (count > (SIZE_MAX - o) / size) return 0;
    *at = o;
    *off = o + count * size;
    return 1;
}

static int check_config(const ps_baseline_config *c, char *err, size_t errlen)
{
    if (c->warmup > MAX_WARMUP) {
        set_err(err, errlen, "warm-up longer than 2^20 ticks");
        return 0;
    }
    if (!(c->drift_rate >= 0.0f && c->drift_rate <= 0.5f)) {
        set_err(err, errlen, "drift rate must be in [0, 0.5]");
        return 0;
    }
    if (!(c->drift_clip > 0.0f && c->drift_clip <= 1e6f)) {
        set_err(err, errlen, "drift clip must be in (0, 1e6]");
        return 0;
    }
    if (!(c->hb_default_interval >= 0.0 && c->hb_default_interval <= 1e300)) {
        set_err(err, errlen, "default heartbeat interval must be finite and >= 0");
        return 0;
    }
    if (c->hb_min_intervals < 1 || c->hb_min_intervals > PS_BASELINE_HB_RING) {
        set_err(err, errlen, "hb_min_intervals must be in 1..PS_BASELINE_HB_RING");
        return 0;
    }
    if (!(c->hb_restart_intervals == 0.0 ||
          (c->hb_restart_intervals >= 1.0 && c->hb_restart_intervals <= 1e9))) {
        set_err(err, errlen, "the restart gap must be 0 (off) or 1..1e9 intervals");
        return 0;
    }
    return 1;
}

ps_baseline *ps_baseline_create(size_t processors, size_t metrics, const ps_baseline_config *cfg,
                                char *err, size_t errlen)
{
    ps_baseline_config c = cfg ? *cfg : ps_baseline_default_config();
    if (processors == 0 || metrics == 0) {
        set_err(err, errlen, "need at least one processor and one metric");
        return NULL;
    }
    if ((uint64_t)processors > (uint64_t)UINT32_MAX + 1) {
        set_err(err, errlen, "processor slots are 32-bit");
        return NULL;
    }
    if (!check_config(&c, err, errlen)) return NULL;

    size_t P = processors, K = metrics, W = c.warmup;
    size_t pk, pwk, ph;
    if (K > SIZE_MAX / P || (W && P * K > SIZE_MAX / W) || P > SIZE_MAX / PS_BASELINE_HB_RING) {
        set_err(err, errlen, "processors x metrics x warm-up is too large");
        return NULL;
    }
    pk = P * K;
    pwk = pk * W;
    ph = P * PS_BASELINE_HB_RING;

    size_t off = 0;
    size_t a_last, a_ring, a_exp, a_back, a_rep, a_loc, a_scale, a_mad, a_meanad, a_warm, a_work;
    size_t a_wn, a_cnt, a_head, a_ready, a_has, a_mark;
    int ok =
        reserve(&off, P, sizeof(double), &a_last) && reserve(&off, ph, sizeof(double), &a_ring) &&
        reserve(&off, P, sizeof(double), &a_exp) && reserve(&off, P, sizeof(uint64_t), &a_back) &&
        reserve(&off, P, sizeof(uint64_t), &a_rep) && reserve(&off, pk, sizeof(float), &a_loc) &&
        reserve(&off, pk, sizeof(float), &a_scale) && reserve(&off, pk, sizeof(float), &a_mad) &&
        reserve(&off, pk, sizeof(float), &a_meanad) && reserve(&off, pwk, sizeof(float), &a_warm) &&
        reserve(&off, W, sizeof(float), &a_work) && reserve(&off, P, sizeof(uint32_t), &a_wn) &&
        reserve(&off, P, sizeof(uint32_t), &a_cnt) && reserve(&off, P, sizeof(uint32_t), &a_head) &&
        reserve(&off, P, 1, &a_ready) && reserve(&off, P, 1, &a_has) &&
        reserve(&off, P, 1, &a_mark);
    if (!ok) {
        set_err(err, errlen, "processors x metrics x warm-up is too large");
        return NULL;
    }

    ps_baseline *b = calloc(1, sizeof *b);
    unsigned char *blk = calloc(off ? off : 1, 1);
    if (!b || !blk) {
        free(b);
        free(blk);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    b->procs = P;
    b->metrics = K;
    b->cfg = c;
    b->up = exp((double)c.drift_rate);
    b->down = exp(-(double)c.drift_rate);
    b->block = blk;
    b->last_t = (double *)(void *)(blk + a_last);
    b->ring = (double *)(void *)(blk + a_ring);
    b->expected = (double *)(void *)(blk + a_exp);
    b->backwards = (uint64_t *)(void *)(blk + a_back);
    b->repeats = (uint64_t *)(void *)(blk + a_rep);
    b->loc = (float *)(void *)(blk + a_loc);
    b->scale = (float *)(void *)(blk + a_scale);
    b->mad = (float *)(void *)(blk + a_mad);
    b->meanad = (float *)(void *)(blk + a_meanad);
    b->warm = (float *)(void *)(blk + a_warm);
    b->work = (float *)(void *)(blk + a_work);
    b->warm_n = (uint32_t *)(void *)(blk + a_wn);
    b->hb_count = (uint32_t *)(void *)(blk + a_cnt);
    b->hb_head = (uint32_t *)(void *)(blk + a_head);
    b->ready = blk + a_ready;
    b->has_last = blk + a_has;
    b->mark = blk + a_mark;
    /* calloc's zero bytes are 0.0 on every IEEE platform; the scales are made valid here so
     * that a not-ready slot never holds a zero scale anyone could divide by. */
    for (size_t i = 0; i < pk; i++)
        b->scale[i] = 1.0f;
    return b;
}

void ps_baseline_free(ps_baseline *b)
{
    if (!b) return;
    free(b->block);
    free(b);
}

size_t ps_baseline_processors(const ps_baseline *b)
{
    return b ? b->procs : 0;
}

size_t ps_baseline_metrics(const ps_baseline *b)
{
    return b ? b->metrics : 0;
}

ps_baseline_config ps_baseline_get_config(const ps_baseline *b)
{
    return b ? b->cfg : ps_baseline_default_config();
}

int ps_baseline_ready(const ps_baseline *b, uint32_t proc)
{
    return b && proc < b->procs && b->ready[proc];
}

uint32_t ps_baseline_warm_count(const ps_baseline *b, uint32_t proc)
{
    return b && proc < b->procs ? b->warm_n[proc] : 0;
}

int ps_baseline_get(const ps_baseline *b, uint32_t proc, float *loc, float *scale)
{
    if (!b || proc >= b->procs) return PS_EINVAL;
    if (!b->ready[proc]) return PS_BASELINE_ENOTREADY;
    size_t K = b->metrics;
    if (loc) memcpy(loc, b->loc + (size_t)proc * K, K * sizeof *loc);
    if (scale) memcpy(scale, b->scale + (size_t)proc * K, K * sizeof *scale);
    return PS_OK;
}

/* ---- the profile ---- */

/*
 * Set p's profile from rows x K values with the robust statistics; work
 * holds rows floats. A column with no finite value gets robust.h's fallback
 * (loc 0, scale 1): harmless, and the drift can still move it.
 */
static void set_profile(ps_baseline *b, uint32_t p, const float *x, size_t rows, float *work)
{
    size_t K = b->metrics;
    float *loc = b->loc + (size_t)p * K, *scale = b->scale + (size_t)p * K;
    for (size_t k = 0; k < K; k++) {
        ps_robust_loc_scale_work(x + k, rows, K, work, &loc[k], &scale[k]);
        b->mad[(size_t)p * K + k] = scale[k];
        b->meanad[(size_t)p * K + k] = scale[k];
    }
    b->ready[p] = 1;
    b->warm_n[p] = b->cfg.warmup;
    if (b->cfg.warmup)
        memset(b->warm + (size_t)p * b->cfg.warmup * K, 0,
               (size_t)b->cfg.warmup * K * sizeof(float));
}

/* One stable tick of a ready processor moves its profile towards x. */
static void follow_drift(ps_baseline *b, uint32_t p, const float *x)
{
    size_t K = b->metrics;
    double rate = b->cfg.drift_rate, clip = b->cfg.drift_clip;
    for (size_t k = 0; k < K; k++) {
        size_t i = (size_t)p * K + k;
        if (!isfinite(x[k])) continue;
        double l = b->loc[i], s = b->scale[i];
        double d = (double)x[k] - l, ad = fabs(d);

        /* Expected step 0 where half the values lie on either side: an EW median. Never
         * past the value itself, so a constant series does not jitter around it. */
        double step = rate * s;
        if (ad < step) step = ad;
        double nl = d > 0 ? l + step : l - step;

        /* Multiplicative steps: the estimate of 1.4826 * MAD settles where half the
         * deviations exceed it, and stays positive. */
        double a = b->mad[i], dev = ad * PS_ROBUST_MAD_TO_SIGMA;
        if (dev > a)
            a *= b->up;
        else if (dev < a)
            a *= b->down;
        double c = ad < clip * s ? ad : clip * s;
        double m = b->meanad[i] + rate * (PS_ROBUST_MEANAD_TO_SIGMA * c - b->meanad[i]);

        double fl = ps_robust_floor(nl);
        /* Half the floor is low enough to be unused and high enough to climb back from in
         * log(2) / rate ticks when the spread returns. */
        if (a < 0.5 * fl) a = 0.5 * fl;
        double sc = a >= fl ? a : (m > fl ? m : fl);
        if (!(fabs(nl) <= 3.0e38) || !(sc <= 3.0e38) || !(a <= 3.0e38) || !(m <= 3.0e38))
            continue; /* only values near FLT_MAX get here: keep the profile as it was */
        b->loc[i] = (float)nl;
        b->scale[i] = (float)sc;
        b->mad[i] = (float)a;
        b->meanad[i] = (float)m;
    }
}

/* ---- heartbeats ---- */

static double median_small(const double *v, size_t n)
{
    double s[PS_BASELINE_HB_RING];
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        size_t j = i;
        while (j > 0 && s[j - 1] > x) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = x;
    }
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void refresh_expected(ps_baseline *b, uint32_t p)
{
    uint32_t m = b->hb_count[p] < PS_BASELINE_HB_RING ? b->hb_count[p] : PS_BASELINE_HB_RING;
    b->expected[p] = m ? median_small(b->ring + (size_t)p * PS_BASELINE_HB_RING, m) : 0.0;
}

static void learn_interval(ps_baseline *b, uint32_t p, double dt)
{
    b->ring[(size_t)p * PS_BASELINE_HB_RING + b->hb_head[p]] = dt;
    b->hb_head[p] = (b->hb_head[p] + 1) % PS_BASELINE_HB_RING;
    if (b->hb_count[p] < UINT32_MAX) b->hb_count[p]++;
    refresh_expected(b, p);
}

/* The interval to be late against, and PS_HB_DEFAULT / PS_HB_UNKNOWN bits. */
static double expected_of(const ps_baseline *b, uint32_t p, uint32_t *flags)
{
    if (b->hb_count[p] >= b->cfg.hb_min_intervals) return b->expected[p];
    if (b->cfg.hb_default_interval > 0) {
        *flags |= PS_HB_DEFAULT;
        return b->cfg.hb_default_interval;
    }
    if (b->hb_count[p] > 0) {
        *flags |= PS_HB_DEFAULT;
        return b->expected[p];
    }
    *flags |= PS_HB_UNKNOWN;
    return 0.0;
}

/* A gap of more than hb_restart_intervals expected intervals e (> 0). */
static int is_restart(const ps_baseline *b, double dt, double e)
{
    return b->cfg.hb_restart_intervals > 0 && dt > b->cfg.hb_restart_intervals * e;
}

/* Classify t against p's previous heartbeat: 0 with *dt > 0, or one PS_HB_* fault bit. */
static uint32_t classify(const ps_baseline *b, uint32_t p, double t, double *dt)
{
    *dt = 0.0;
    if (!isfinite(t)) return PS_HB_INVALID;
    if (!b->has_last[p]) return PS_HB_FIRST;
    if (t < b->last_t[p]) return PS_HB_BACKWARDS;
    if (t == b->last_t[p]) return PS_HB_REPEAT;
    double d = t - b->last_t[p];
    if (!isfinite(d)) return PS_HB_INVALID;
    *dt = d;
    return 0;
}

int ps_baseline_lateness(const ps_baseline *b, size_t n, const uint32_t *procs, const double *t,
                         float *lateness, uint32_t *flags)
{
    if (!b || (n && (!procs || !t || !lateness))) return PS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (procs[i] >= b->procs) return PS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i], f = 0;
        double dt, late = 0.0;
        f = classify(b, p, t[i], &dt);
        double e = expected_of(b, p, &f);
        if (!(f & (PS_HB_FIRST | PS_HB_BACKWARDS | PS_HB_REPEAT | PS_HB_INVALID)) && e > 0) {
            if (is_restart(b, dt, e)) {
                f |= PS_HB_RESTART;
            } else {
                late = dt / e - 1.0;
                if (!(late > 0)) late = 0.0;
                if (!(late <= PS_BASELINE_LATENESS_MAX)) late = PS_BASELINE_LATENESS_MAX;
            }
        }
        lateness[i] = (float)late;
        if (flags) flags[i] = f;
    }
    return PS_OK;
}

double ps_baseline_expected_interval(const ps_baseline *b, uint32_t proc, int *learned)
{
    if (learned) *learned = 0;
    if (!b || proc >= b->procs) return 0.0;
    uint32_t f = 0;
    double e = expected_of(b, proc, &f);
    if (learned) *learned = !(f & (PS_HB_DEFAULT | PS_HB_UNKNOWN));
    return e;
}

static void commit_heartbeat(ps_baseline *b, uint32_t p, double t, int stable)
{
    double dt;
    switch (classify(b, p, t, &dt)) {
    case 0: {
        uint32_t f = 0;
        double e = expected_of(b, p, &f);
        if (stable && !(e > 0 && is_restart(b, dt, e))) learn_interval(b, p, dt);
        b->last_t[p] = t;
        break;
    }
    case PS_HB_FIRST:
        b->last_t[p] = t;
        b->has_last[p] = 1;
        break;
    case PS_HB_BACKWARDS:
        /* The clock went back (reset, another host answering): measure from here on. */
        b->backwards[p]++;
        b->last_t[p] = t;
        break;
    case PS_HB_REPEAT:
        b->repeats[p]++;
        break;
    default: /* invalid: nothing to measure from */
        break;
    }
}

void ps_baseline_clock_faults(const ps_baseline *b, uint32_t proc, uint64_t *backwards,
                              uint64_t *repeats)
{
    int ok = b && proc < b->procs;
    if (backwards) *backwards = ok ? b->backwards[proc] : 0;
    if (repeats) *repeats = ok ? b->repeats[proc] : 0;
}

/* ---- one tick ---- */

/* 1 if every processor is in range and none repeats. Leaves mark clear. */
static int distinct_in_range(ps_baseline *b, size_t n, const uint32_t *procs)
{
    size_t i;
    int ok = 1;
    for (i = 0; i < n; i++) {
        if (procs[i] >= b->procs || b->mark[procs[i]]) {
            ok = 0;
            break;
        }
        b->mark[procs[i]] = 1;
    }
    for (size_t j = 0; j < i; j++)
        b->mark[procs[j]] = 0;
    return ok;
}

int ps_baseline_observe(ps_baseline *b, size_t n, const uint32_t *procs, const float *x,
                        const double *t, const uint8_t *stable)
{
    if (!b || (n && (!procs || !x || !stable))) return PS_EINVAL;
    if (!distinct_in_range(b, n, procs)) return PS_EINVAL;
    size_t K = b->metrics, W = b->cfg.warmup;
    int became = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        int st = stable[i] != 0;
        const float *row = x + i * K;
        if (t) commit_heartbeat(b, p, t[i], st);
        if (!st) continue;
        if (!b->ready[p]) {
            if (W == 0) continue;
            float *dst = b->warm + ((size_t)p * W + b->warm_n[p]) * K;
            memcpy(dst, row, K * sizeof *dst);
            if (++b->warm_n[p] == W) {
                set_profile(b, p, b->warm + (size_t)p * W * K, W, b->work);
                if (became < INT_MAX) became++;
            }
        } else if (b->cfg.drift_rate > 0) {
            follow_drift(b, p, row);
        }
    }
    return became;
}

int ps_baseline_set_from_history(ps_baseline *b, uint32_t proc, size_t rows, const float *x,
                                 const double *t)
{
    if (!b || proc >= b->procs || rows == 0 || !x) return PS_EINVAL;
    float *work = b->work, *own = NULL;
    if (rows > b->cfg.warmup) {
        own = malloc(rows * sizeof *own);
        if (!own) return PS_ENOMEM;
        work = own;
    }
    set_profile(b, proc, x, rows, work);
    free(own);
    if (t) {
        /* The last intervals are the ones a live processor would have in its ring. */
        double iv[PS_BASELINE_HB_RING];
        size_t m = 0;
        for (size_t r = rows; r-- > 1 && m < PS_BASELINE_HB_RING;) {
            double d = t[r] - t[r - 1];
            if (isfinite(d) && d > 0) iv[m++] = d;
        }
        memset(b->ring + (size_t)proc * PS_BASELINE_HB_RING, 0,
               PS_BASELINE_HB_RING * sizeof(double));
        b->hb_count[proc] = 0;
        b->hb_head[proc] = 0;
        while (m > 0)
            learn_interval(b, proc, iv[--m]);
        refresh_expected(b, proc);
    }
    return PS_OK;
}

int ps_baseline_reset(ps_baseline *b, size_t n, const uint32_t *procs)
{
    if (!b || (n && !procs)) return PS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (procs[i] >= b->procs) return PS_EINVAL;
    size_t K = b->metrics, W = b->cfg.warmup;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        for (size_t k = 0; k < K; k++) {
            size_t j = (size_t)p * K + k;
            b->loc[j] = 0.0f;
            b->scale[j] = 1.0f;
            b->mad[j] = 0.0f;
            b->meanad[j] = 0.0f;
        }
        if (W) memset(b->warm + (size_t)p * W * K, 0, W * K * sizeof(float));
        memset(b->ring + (size_t)p * PS_BASELINE_HB_RING, 0, PS_BASELINE_HB_RING * sizeof(double));
        b->last_t[p] = 0.0;
        b->expected[p] = 0.0;
        b->backwards[p] = 0;
        b->repeats[p] = 0;
        b->warm_n[p] = 0;
        b->hb_count[p] = 0;
        b->hb_head[p] = 0;
        b->ready[p] = 0;
        b->has_last[p] = 0;
    }
    return PS_OK;
}

/* ---- normalization ---- */

static int check_procs(const ps_baseline *b, size_t n, const uint32_t *procs, const float *in,
                       const float *out)
{
    if (!b || (n && (!procs || !in || !out))) return 0;
    for (size_t i = 0; i < n; i++)
        if (procs[i] >= b->procs) return 0;
    return 1;
}

int ps_baseline_normalize(const ps_baseline *b, size_t n, const uint32_t *procs, const float *x,
                          float *z)
{
    if (!check_procs(b, n, procs, x, z)) return PS_EINVAL;
    size_t K = b->metrics;
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        const float *loc = b->loc + (size_t)p * K, *scale = b->scale + (size_t)p * K;
        if (!b->ready[p]) {
            for (size_t k = 0; k < K; k++)
                z[i * K + k] = 0.0f;
            if (missing < INT_MAX) missing++;
            continue;
        }
        /* Float arithmetic in the trainer's order, so a model sees the values it was
         * trained on, bit for bit. */
        for (size_t k = 0; k < K; k++) {
            float v = x[i * K + k];
            z[i * K + k] = isfinite(v) ? (v - loc[k]) / scale[k] : NAN;
        }
    }
    return missing;
}

int ps_baseline_denormalize(const ps_baseline *b, size_t n, const uint32_t *procs, const float *z,
                            float *x)
{
    if (!check_procs(b, n, procs, z, x)) return PS_EINVAL;
    size_t K = b->metrics;
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        const float *loc = b->loc + (size_t)p * K, *scale = b->scale + (size_t)p * K;
        if (!b->ready[p] && missing < INT_MAX) missing++;
        for (size_t k = 0; k < K; k++)
            x[i * K + k] = b->ready[p] ? loc[k] + z[i * K + k] * scale[k] : NAN;
    }
    return missing;
}

int ps_baseline_scale_residuals(const ps_baseline *b, size_t n, const uint32_t *procs,
                                const float *r, float *out)
{
    if (!check_procs(b, n, procs, r, out)) return PS_EINVAL;
    size_t K = b->metrics;
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        const float *scale = b->scale + (size_t)p * K;
        if (!b->ready[p] && missing < INT_MAX) missing++;
        for (size_t k = 0; k < K; k++)
            out[i * K + k] = b->ready[p] ? r[i * K + k] / scale[k] : 0.0f;
    }
    return missing;
}

/* ---- snapshots ---- */

size_t ps_baseline_state_len(const ps_baseline *b)
{
    if (!b) return 0;
    return STATE_HEAD + 4 * b->metrics + PS_BASELINE_HB_RING + (size_t)b->cfg.warmup * b->metrics;
}

int ps_baseline_export(const ps_baseline *b, uint32_t proc, double *state)
{
    if (!b || proc >= b->procs || !state) return PS_EINVAL;
    size_t K = b->metrics, W = b->cfg.warmup, p = proc;
    double *s = state;
    s[0] = b->ready[p];
    s[1] = b->warm_n[p];
    s[2] = b->has_last[p];
    s[3] = b->last_t[p];
    s[4] = b->hb_count[p];
    s[5] = b->hb_head[p];
    s[6] = (double)b->backwards[p];
    s[7] = (double)b->repeats[p];
    s += STATE_HEAD;
    for (size_t k = 0; k < K; k++) {
        s[k] = b->loc[p * K + k];
        s[K + k] = b->scale[p * K + k];
        s[2 * K + k] = b->mad[p * K + k];
        s[3 * K + k] = b->meanad[p * K + k];
    }
    s += 4 * K;
    for (size_t j = 0; j < PS_BASELINE_HB_RING; j++)
        s[j] = b->ring[p * PS_BASELINE_HB_RING + j];
    s += PS_BASELINE_HB_RING;
    for (size_t j = 0; j < W * K; j++)
        s[j] = b->warm[p * W * K + j];
    return PS_OK;
}

/* v is a whole number in [0, max]. */
static int is_count(double v, double max)
{
    return v >= 0 && v <= max && v == floor(v);
}

/* v is exactly a float (NaN allowed only where a missing value may be stored). */
static int is_float(double v, int allow_nan)
{
    if (isnan(v)) return allow_nan;
    return fabs(v) <= 3.4028234663852886e38 && (double)(float)v == v;
}

int ps_baseline_import(ps_baseline *b, uint32_t proc, const double *state)
{
    if (!b || proc >= b->procs || !state) return PS_EINVAL;
    size_t K = b->metrics, W = b->cfg.warmup, p = proc;
    const double *s = state;
    int ready = s[0] == 1.0;
    if (!(s[0] == 0.0 || ready) || !is_count(s[1], (double)W) || !(s[2] == 0.0 || s[2] == 1.0) ||
        !isfinite(s[3]) || !is_count(s[4], (double)UINT32_MAX) ||
        !is_count(s[5], PS_BASELINE_HB_RING - 1) || !is_count(s[6], 9007199254740992.0) ||
        !is_count(s[7], 9007199254740992.0))
        return PS_BASELINE_EDATA;
    /* A warming processor has room for its next row: observe writes at row warm count. */
    if (ready ? s[1] != (double)W : W > 0 && s[1] >= (double)W) return PS_BASELINE_EDATA;
    const double *m = s + STATE_HEAD;
    for (size_t k = 0; k < K; k++) {
        double loc = m[k], sc = m[K + k], a = m[2 * K + k], md = m[3 * K + k];
        if (!is_float(loc, 0) || !is_float(sc, 0) || !is_float(a, 0) || !is_float(md, 0))
            return PS_BASELINE_EDATA;
        /* Every scale the baseline sets is at least its floor; half of it leaves room for
         * rounding and still keeps a division by it finite. */
        if (ready && !(sc >= 0.5 * ps_robust_floor(loc) && a >= 0 && md >= 0))
            return PS_BASELINE_EDATA;
    }
    const double *ring = m + 4 * K;
    uint32_t have = s[4] < PS_BASELINE_HB_RING ? (uint32_t)s[4] : PS_BASELINE_HB_RING;
    for (size_t j = 0; j < PS_BASELINE_HB_RING; j++) {
        /* Learned intervals are positive (the median divides by them); unused places are 0. */
        double lo = j < have ? 0.0 : -1.0;
        if (!(ring[j] > lo && isfinite(ring[j]))) return PS_BASELINE_EDATA;
        if (j >= have && ring[j] != 0.0) return PS_BASELINE_EDATA;
    }
    const double *warm = ring + PS_BASELINE_HB_RING;
    for (size_t j = 0; j < W * K; j++)
        if (!is_float(warm[j], 1) && !isinf(warm[j])) return PS_BASELINE_EDATA;

    b->ready[p] = (uint8_t)ready;
    b->warm_n[p] = (uint32_t)s[1];
    b->has_last[p] = (uint8_t)s[2];
    b->last_t[p] = s[3];
    b->hb_count[p] = (uint32_t)s[4];
    b->hb_head[p] = (uint32_t)s[5];
    b->backwards[p] = (uint64_t)s[6];
    b->repeats[p] = (uint64_t)s[7];
    for (size_t k = 0; k < K; k++) {
        b->loc[p * K + k] = (float)m[k];
        b->scale[p * K + k] = ready ? (float)m[K + k] : 1.0f;
        b->mad[p * K + k] = (float)m[2 * K + k];
        b->meanad[p * K + k] = (float)m[3 * K + k];
    }
    for (size_t j = 0; j < PS_BASELINE_HB_RING; j++)
        b->ring[p * PS_BASELINE_HB_RING + j] = ring[j];
    for (size_t j = 0; j < W * K; j++)
        b->warm[p * W * K + j] = (float)warm[j];
    refresh_expected(b, proc);
    return PS_OK;
}
