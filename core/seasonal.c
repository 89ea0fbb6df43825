/*
 * seasonal.c - same-phase distances (see seasonal.h).
 *
 * Each series with a period keeps a ring of its last cycles * period + 1
 * values: one more than the cycles themselves so that the jitter of one tick
 * can look one tick past the oldest cycle.
 */
#include "seasonal.h"

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
