/*
 * seasonal.c - same-phase distances (see seasonal.h).
 *
 * Each series with a period keeps a ring of its last cycles * period + 1
 * values: one more than the cycles themselves so that the jitter of one tick
 * can look one tick past the oldest cycle.
 */
#include "seasonal.h"

#include "bytes.h"
#include "error.h"
#include "kernels/kernels.h"
#include "robust.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ring {
    float *v;        /* len values, newest at head - 1 */
    uint32_t len;    /* cycles * period + 1, 0 without a period */
    uint32_t head;   /* next write */
    uint32_t filled; /* values written, up to len */
    uint32_t period;
    float scale;    /* healthy scale of the distance */
    float ew;       /* EW average of the normalized distance */
    float ew_loc;   /* its healthy location */
    float ew_scale; /* and scale */
} ring;

struct ps_seasonal {
    ps_seasonal_config cfg;
    size_t n;
    ring *r;
};

ps_seasonal_config ps_seasonal_default_config(void)
{
    return (ps_seasonal_config){.min_period = 4,
                                .max_period = 2016,
                                .cycles = 3,
                                .min_acf = 0.5f,
                                .rate = 1.0f,
                                .floor = 0.05f};
}

/* Pearson correlation of x[0 .. n-L) with x[L .. n), at stride. */
static double lag_corr(const float *x, size_t n, size_t stride, size_t L)
{
    size_t m = n - L;
    double sa = 0, sb = 0;
    for (size_t i = 0; i < m; i++) {
        sa += x[i * stride];
        sb += x[(i + L) * stride];
    }
    double ma = sa / (double)m, mb = sb / (double)m, ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < m; i++) {
        double a = x[i * stride] - ma, b = x[(i + L) * stride] - mb;
        ab += a * b;
        aa += a * a;
        bb += b * b;
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

uint32_t ps_seasonal_detect(const float *x, size_t n, size_t stride, const ps_seasonal_config *cfg,
                            float *acf)
{
    if (acf) *acf = 0;
    size_t hi = n / 2 < cfg->max_period ? n / 2 : cfg->max_period;
    if (!x || stride == 0 || hi < cfg->min_period || hi < 2) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i * stride])) return 0;
    double *r = malloc((hi + 1) * sizeof *r);
    if (!r) return 0;
    /* A trend or a slow wander correlates at every short lag; a period only
     * shows as a peak after the correlation has first fallen away. */
    size_t L = 1;
    for (; L <= hi; L++)
        if ((r[L] = lag_corr(x, n, stride, L)) <= 0) break;
    /* The highest peak wins even when it is a multiple of a shorter period:
     * a weekly pattern beats the daily one inside it (NAB's taxi demand),
     * and a multiple of the true period still lines the same phases up. */
    double best = 0;
    size_t best_lag = 0;
    for (size_t l = L + 1; l <= hi; l++) {
        r[l] = lag_corr(x, n, stride, l);
        if (l >= cfg->min_period && r[l] > best) {
            best = r[l];
            best_lag = l;
        }
    }
    free(r);
    if (L > hi || best < cfg->min_acf) return 0;
    if (acf) *acf = (float)best;
    return (uint32_t)best_lag;
}

ps_seasonal *ps_seasonal_create(size_t series, const ps_seasonal_config *cfg)
{
    if (!cfg || series == 0 || cfg->min_period < 2 || cfg->max_period < cfg->min_period ||
        cfg->cycles < 1 || cfg->max_period > UINT32_MAX / 2 / cfg->cycles ||
        !(cfg->min_acf > 0 && cfg->min_acf <= 1) || !(cfg->rate > 0 && cfg->rate <= 1) ||
        !(cfg->floor > 0))
        return NULL;
    ps_seasonal *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cfg = *cfg;
    s->n = series;
    s->r = calloc(series, sizeof *s->r);
    if (!s->r) {
        free(s);
        return NULL;
    }
    return s;
}

void ps_seasonal_free(ps_seasonal *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].v);
    free(s->r);
    free(s);
}

uint32_t ps_seasonal_period(const ps_seasonal *s, size_t id)
{
    return id < s->n ? s->r[id].period : 0;
}

/* Value `back` ticks before the next write (1 = newest), or NAN. */
static float ring_back(const ring *g, uint32_t back)
{
    if (back == 0 || back > g->filled) return NAN;
    return g->v[(g->head + g->len - back) % g->len];
}

/* z minus the closest same-phase value kept, NAN when none is. */
static float ring_distance(const ring *g, uint32_t cycles, float z)
{
    float best = NAN;
    for (uint32_t j = 1; j <= cycles; j++)
        for (int d = -1; d <= 1; d++) {
            float e = z - ring_back(g, (uint32_t)((int64_t)j * g->period + d));
            if (e == e && !(fabsf(e) >= fabsf(best))) best = e;
        }
    return best;
}

static void ring_push(ring *g, float z)
{
    g->v[g->head] = z;
    g->head = (g->head + 1) % g->len;
    if (g->filled < g->len) g->filled++;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int ps_seasonal_set_from_history(ps_seasonal *s, size_t id, const float *x, size_t n, size_t stride,
                                 float *dist)
{
    if (!s || id >= s->n || (!x && n > 0) || stride == 0) return PS_EINVAL;
    ring *g = &s->r[id];
    free(g->v);
    *g = (ring){0};
    if (dist)
        for (size_t i = 0; i < n; i++)
            dist[i] = 0;
    uint32_t period = ps_seasonal_detect(x, n, stride, &s->cfg, NULL);
    if (period == 0) return PS_OK;
    g->len = s->cfg.cycles * period + 1;
    g->period = period;
    g->v = malloc(g->len * sizeof *g->v);
    float *d = malloc(n * sizeof *d);
    if (!g->v || !d) {
        free(d);
        free(g->v);
        *g = (ring){0};
        return PS_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        float z = x[i * stride];
        d[i] = ring_distance(g, s->cfg.cycles, z);
        ring_push(g, z);
    }
    /* The median of |distance| the history had: sort a packed copy. */
    float *sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        free(d);
        free(g->v);
        *g = (ring){0};
        return PS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if (d[i] == d[i]) sorted[m++] = fabsf(d[i]);
    float scale = 0;
    if (m > 0) {
        qsort(sorted, m, sizeof *sorted, cmp_float);
        scale = (float)(1.4826 * sorted[m / 2]);
    }
    g->scale = scale >= s->cfg.floor ? scale : s->cfg.floor;
    /* The EW average over the rows that had a distance, and its spread. */
    m = 0;
    float a = s->cfg.rate;
    for (size_t i = 0; i < n; i++) {
        if (d[i] != d[i]) continue;
        float u = d[i] / g->scale;
        g->ew = m == 0 ? u : a * u + (1 - a) * g->ew;
        sorted[m++] = g->ew;
        d[i] = g->ew;
    }
    g->ew_loc = 0;
    g->ew_scale = 1;
    if (m > 0) ps_robust_loc_scale(sorted, m, 1, &g->ew_loc, &g->ew_scale);
    if (!(g->ew_scale >= s->cfg.floor)) g->ew_scale = s->cfg.floor;
    if (dist)
        for (size_t i = 0; i < n; i++)
            dist[i] = d[i] == d[i] ? (d[i] - g->ew_loc) / g->ew_scale : 0;
    free(sorted);
    free(d);
    return PS_OK;
}

float ps_seasonal_step(ps_seasonal *s, size_t id, float z)
{
    if (id >= s->n || s->r[id].period == 0) return 0;
    ring *g = &s->r[id];
    float d = ring_distance(g, s->cfg.cycles, z);
    ring_push(g, z);
    if (d == d) g->ew = s->cfg.rate * (d / g->scale) + (1 - s->cfg.rate) * g->ew;
    return (g->ew - g->ew_loc) / g->ew_scale;
}

void ps_seasonal_reset(ps_seasonal *s, size_t id)
{
    if (!s || id >= s->n) return;
    free(s->r[id].v);
    s->r[id] = (ring){0};
}

/* ---- snapshots ---- */

enum { RING_FIXED_BYTES = 4 * 3 + 4 * 4 }; /* len, head, filled; scale, ew, ew_loc, ew_scale */

size_t ps_seasonal_state_size(const ps_seasonal *s, size_t id)
{
    if (!s || id >= s->n || s->r[id].period == 0) return 4;
    return 4 + RING_FIXED_BYTES + (size_t)s->r[id].filled * 4;
}

int ps_seasonal_state_export(const ps_seasonal *s, size_t id, uint8_t *buf, size_t len)
{
    if (!s || id >= s->n || !buf || len < ps_seasonal_state_size(s, id)) return PS_EINVAL;
    const ring *g = &s->r[id];
    ps_wcur w = ps_wcur_init(buf, len);
    ps_w_u32(&w, g->period);
    if (g->period == 0) return PS_OK;
    ps_w_u32(&w, g->len);
    ps_w_u32(&w, g->head);
    ps_w_u32(&w, g->filled);
    ps_w_f32(&w, g->scale);
    ps_w_f32(&w, g->ew);
    ps_w_f32(&w, g->ew_loc);
    ps_w_f32(&w, g->ew_scale);
    /* Only what was written: past `filled` the ring holds nothing yet. */
    for (uint32_t i = 0; i < g->filled; i++)
        ps_w_f32(&w, g->v[i]);
    return w.over ? PS_EINVAL : PS_OK;
}

/* Decode and check everything but the values, which stay in r. */
static int ring_decode(const ps_seasonal *s, ps_rcur *r, ring *g, char *err, size_t errlen)
{
    *g = (ring){0};
    g->period = ps_r_u32(r);
    if (r->shrt) return ps_fail(err, errlen, PS_EINVAL, "seasonal state: empty");
    if (g->period == 0) {
        if (ps_rcur_left(r))
            return ps_fail(err, errlen, PS_EINVAL, "seasonal state: %zu bytes after no period",
                           ps_rcur_left(r));
        return PS_OK;
    }
    g->len = ps_r_u32(r);
    g->head = ps_r_u32(r);
    g->filled = ps_r_u32(r);
    g->scale = ps_r_f32(r);
    g->ew = ps_r_f32(r);
    g->ew_loc = ps_r_f32(r);
    g->ew_scale = ps_r_f32(r);
    const ps_seasonal_config *c = &s->cfg;
    if (r->shrt) return ps_fail(err, errlen, PS_EINVAL, "seasonal state truncated");
    if (g->period < c->min_period || g->period > c->max_period)
        return ps_fail(err, errlen, PS_EINVAL, "seasonal state: period %u outside %u..%u",
                       (unsigned)g->period, (unsigned)c->min_period, (unsigned)c->max_period);
    /* cycles * max_period + 1 fits: ps_seasonal_create bounds it. */
    if (g->len != c->cycles * g->period + 1)
        return ps_fail(err, errlen, PS_EINVAL, "seasonal state: ring of %u for %u cycles of %u",
                       (unsigned)g->len, (unsigned)c->cycles, (unsigned)g->period);
    if (g->filled > g->len || (g->filled < g->len ? g->head != g->filled : g->head >= g->len))
        return ps_fail(err, errlen, PS_EINVAL,
                       "seasonal state: head %u and fill %u do not fit a ring of %u",
                       (unsigned)g->head, (unsigned)g->filled, (unsigned)g->len);
    if (!isfinite(g->scale) || !(g->scale >= c->floor) || !isfinite(g->ew_scale) ||
        !(g->ew_scale >= c->floor) || !isfinite(g->ew) || !isfinite(g->ew_loc))
        return ps_fail(err, errlen, PS_EINVAL,
                       "seasonal state: scale %g, EW %g, location %g or scale %g not finite or "
                       "below the floor",
                       (double)g->scale, (double)g->ew, (double)g->ew_loc, (double)g->ew_scale);
    if (ps_rcur_left(r) != (size_t)g->filled * 4)
        return ps_fail(err, errlen, PS_EINVAL, "seasonal state: %zu bytes for %u values",
                       ps_rcur_left(r), (unsigned)g->filled);
    for (size_t i = 0, at = r->pos; i < g->filled; i++, at += 4) {
        uint32_t u = ps_get_u32(r->p + at);
        float f;
        memcpy(&f, &u, sizeof f);
        if (!isfinite(f))
            return ps_fail(err, errlen, PS_EINVAL, "seasonal state: value %zu is %g", i, (double)f);
    }
    return PS_OK;
}

int ps_seasonal_state_check(const ps_seasonal *s, const uint8_t *buf, size_t len, char *err,
                            size_t errlen)
{
    if (!s || (!buf && len)) return ps_fail(err, errlen, PS_EINVAL, "seasonal: NULL argument");
    ps_rcur r = ps_rcur_init(buf, len);
    ring g;
    return ring_decode(s, &r, &g, err, errlen);
}

int ps_seasonal_state_import(ps_seasonal *s, size_t id, const uint8_t *buf, size_t len, char *err,
                             size_t errlen)
{
    if (!s || (!buf && len)) return ps_fail(err, errlen, PS_EINVAL, "seasonal: NULL argument");
    if (id >= s->n) return ps_fail(err, errlen, PS_EINVAL, "seasonal: series %zu out of range", id);
    ps_rcur r = ps_rcur_init(buf, len);
    ring g;
    int rc = ring_decode(s, &r, &g, err, errlen);
    if (rc) return rc;
    if (g.period) {
        g.v = calloc(g.len, sizeof *g.v);
        if (!g.v) return ps_fail(err, errlen, PS_ENOMEM, "seasonal: out of memory");
        for (uint32_t i = 0; i < g.filled; i++)
            g.v[i] = ps_r_f32(&r);
    }
    free(s->r[id].v);
    s->r[id] = g;
    return PS_OK;
}
