/*
 * sim_policy.c - the simulator's core policies (docs/evaluation.md,
 * "Policies"): reactive failover, the naive metric threshold, the oracle,
 * and the hook for an external one (the real manager).
 *
 * Every policy but a bare external one runs the reactive failover first,
 * so that failed-over workloads claim capacity before proactive moves do.
 */
#include "sim_world.h"

#include "error.h"
#include "kernels/kernels.h"
#include "sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct policy_state {
    /* reactive: detected processors that still host workloads */
    uint32_t *stranded, n_stranded;
    uint8_t *is_stranded;
    uint32_t *order; /* scratch: one processor's workloads */
    /* naive: consecutive ticks above the threshold */
    uint32_t *above;
    /* oracle: failures in (t, t + max transfer + margin] are sc->failures[lo, hi) */
    uint32_t lo, hi;
} policy_state;

ps_sim_policy ps_sim_policy_default(ps_sim_policy_kind kind)
{
    ps_sim_policy p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.naive_cpu_col = 0;
    p.naive_mem_col = 1;
    p.naive_threshold = 0.9f;
    p.naive_hold = 3;
    p.oracle_margin = 0;
    p.decide = NULL;
    p.ctx = NULL;
    p.reactive_fallback = 1;
    return p;
}

const char *ps_sim_policy_name(ps_sim_policy_kind kind)
{
    switch (kind) {
    case PS_SIM_REACTIVE:
        return "reactive";
    case PS_SIM_NAIVE:
        return "naive";
    case PS_SIM_ORACLE:
        return "oracle";
    case PS_SIM_EXTERNAL:
        return "external";
    }
    return "?";
}

int ps_sim_policy_init(ps_sim_world *w, char *err, size_t errlen)
{
    const ps_sim_policy *pol = &w->pol;
    const ps_sim_scenario *sc = w->sc;
    switch (pol->kind) {
    case PS_SIM_REACTIVE:
    case PS_SIM_ORACLE:
    case PS_SIM_EXTERNAL:
        break;
    case PS_SIM_NAIVE:
        if (pol->naive_cpu_col >= (int)sc->cols || pol->naive_mem_col >= (int)sc->cols ||
            (pol->naive_cpu_col < 0 && pol->naive_mem_col < 0))
            return ps_fail(err, errlen, PS_EINVAL,
                           "naive: metric columns %d and %d: at least one must be in [0, %u)",
                           pol->naive_cpu_col, pol->naive_mem_col, sc->cols);
        if (!isfinite(pol->naive_threshold) || pol->naive_hold == 0)
            return ps_fail(err, errlen, PS_EINVAL,
                           "naive: the threshold must be finite and hold >= 1");
        break;
    default:
        return ps_fail(err, errlen, PS_EINVAL, "unknown policy kind %d", (int)pol->kind);
    }
    policy_state *s = calloc(1, sizeof *s);
    if (!s) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    w->policy_state = s;
    s->stranded = malloc((size_t)sc->P * sizeof *s->stranded);
    s->is_stranded = calloc(sc->P, 1);
    s->order = malloc((sc->W ? (size_t)sc->W : 1) * sizeof *s->order);
    if (pol->kind == PS_SIM_NAIVE) s->above = calloc(sc->P, sizeof *s->above);
    if (!s->stranded || !s->is_stranded || !s->order || (pol->kind == PS_SIM_NAIVE && !s->above))
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    return 0;
}

void ps_sim_policy_free(ps_sim_world *w)
{
    policy_state *s = w->policy_state;
    if (!s) return;
    free(s->stranded);
    free(s->is_stranded);
    free(s->order);
    free(s->above);
    free(s);
    w->policy_state = NULL;
}

/* ------------------------------------------------------------ reactive */

/* Heaviest first (the larger of its two demand shares), then by id. */
static int cmp_weight(const void *a, const void *b, const ps_sim_scenario *sc)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const ps_sim_config *c = &sc->cfg;
    double wx = fmax(sc->work[x].cpu / c->cpu_capacity, sc->work[x].mem / c->mem_capacity);
    double wy = fmax(sc->work[y].cpu / c->cpu_capacity, sc->work[y].mem / c->mem_capacity);
    if (wx != wy) return wx > wy ? -1 : 1;
    return (x > y) - (x < y);
}

/* Insertion sort: a processor hosts a handful of workloads. */
static void sort_by_weight(uint32_t *a, uint32_t n, const ps_sim_scenario *sc)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && cmp_weight(&a[j - 1], &a[j], sc) > 0; j--) {
            uint32_t x = a[j];
            a[j] = a[j - 1];
            a[j - 1] = x;
        }
}

typedef struct oracle_ok_ctx {
    uint32_t until; /* a target must not fail at or before this tick */
} oracle_ok_ctx;

static int oracle_ok(void *ctx, const ps_sim_world *w, uint32_t wl, uint32_t p)
{
    (void)wl;
    uint32_t f = ps_sim_next_failure(w, p);
    return f == PS_SIM_NONE || f > ((const oracle_ok_ctx *)ctx)->until;
}

static int naive_ok(void *ctx, const ps_sim_world *w, uint32_t wl, uint32_t p)
{
    (void)w;
    (void)wl;
    return ((const policy_state *)ctx)->above[p] == 0;
}

/* Fail over every workload of failed processor p it can place; 1 if some are left. */
static int failover_all(ps_sim_world *w, policy_state *s, uint32_t p, char *err, size_t errlen)
{
    const ps_sim_scenario *sc = w->sc;
    uint32_t n = 0;
    for (uint32_t wl = w->proc[p].first; wl != PS_SIM_NONE; wl = w->wl[wl].next)
        s->order[n++] = wl;
    sort_by_weight(s->order, n, sc);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t wl = s->order[i], q = PS_SIM_NONE;
        if (w->pol.kind == PS_SIM_ORACLE) {
            /* The oracle avoids targets that fail soon, if it can. */
            oracle_ok_ctx c = {w->t + sc->cfg.restart_ticks + sc->cfg.horizon};
            q = ps_sim_find_target(w, wl, oracle_ok, &c);
        } else if (w->pol.kind == PS_SIM_NAIVE) {
            /* The naive policy avoids the processors it finds hot, if it can. */
            q = ps_sim_find_target(w, wl, naive_ok, s);
        }
        if (q == PS_SIM_NONE) q = ps_sim_find_target(w, wl, NULL, NULL);
        if (q == PS_SIM_NONE) continue;
        int rc = ps_sim_failover(w, wl, q, err, errlen);
        if (rc) return rc;
    }
    return w->proc[p].n_hosted > 0;
}

static int reactive(ps_sim_world *w, policy_state *s, char *err, size_t errlen)
{
    size_t nd;
    const uint32_t *det = ps_sim_detected(w, &nd);
    for (size_t i = 0; i < nd; i++) {
        uint32_t p = det[i];
        if (!s->is_stranded[p] && w->proc[p].n_hosted) {
            s->is_stranded[p] = 1;
            s->stranded[s->n_stranded++] = p;
        }
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->n_stranded; i++) {
        uint32_t p = s->stranded[i];
        int left = 0;
        /* A processor back from repair restarted what it held. */
        if (!ps_sim_reported(w, p)) {
            left = failover_all(w, s, p, err, errlen);
            if (left < 0) return left;
        }
        if (left)
            s->stranded[k++] = p;
        else
            s->is_stranded[p] = 0;
    }
    s->n_stranded = k;
    return 0;
}

/* --------------------------------------------------------------- naive */

static int naive(ps_sim_world *w, policy_state *s, char *err, size_t errlen)
{
    const ps_sim_scenario *sc = w->sc;
    const ps_sim_policy *pol = &w->pol;
    uint32_t t = ps_sim_now(w);
    for (uint32_t p = 0; p < sc->P; p++) {
        if (!ps_sim_reported(w, p)) {
            s->above[p] = 0;
            continue;
        }
        int hot = (pol->naive_cpu_col >= 0 &&
                   ps_sim_value(sc, p, t, (uint32_t)pol->naive_cpu_col) > pol->naive_threshold) ||
                  (pol->naive_mem_col >= 0 &&
                   ps_sim_value(sc, p, t, (uint32_t)pol->naive_mem_col) > pol->naive_threshold);
        s->above[p] = hot ? s->above[p] + 1 : 0;
    }
    for (uint32_t p = 0; p < sc->P; p++) {
        if (s->above[p] != pol->naive_hold) continue;
        for (uint32_t wl = w->proc[p].first; wl != PS_SIM_NONE; wl = w->wl[wl].next) {
            if (w->wl[wl].transfer != PS_SIM_NONE) continue;
            uint32_t q = ps_sim_find_target(w, wl, naive_ok, s);
            if (q == PS_SIM_NONE) continue;
            int rc = ps_sim_shift(w, wl, q, NULL, err, errlen);
            if (rc) return rc;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- oracle */

static int oracle(ps_sim_world *w, policy_state *s, char *err, size_t errlen)
{
    const ps_sim_scenario *sc = w->sc;
    uint32_t t = ps_sim_now(w), margin = w->pol.oracle_margin;
    uint64_t reach = (uint64_t)t + sc->max_transfer_ticks + margin;
    while (s->lo < sc->n_failures && sc->failures[s->lo].tick <= t)
        s->lo++;
    if (s->hi < s->lo) s->hi = s->lo;
    while (s->hi < sc->n_failures && sc->failures[s->hi].tick <= reach)
        s->hi++;
    for (uint32_t i = s->lo; i < s->hi; i++) {
        uint32_t p = sc->failures[i].proc, f = sc->failures[i].tick;
        if (!ps_sim_reported(w, p) || ps_sim_next_failure(w, p) != f) continue;
        for (uint32_t wl = w->proc[p].first; wl != PS_SIM_NONE; wl = w->wl[wl].next) {
            if (w->wl[wl].transfer != PS_SIM_NONE) continue;
            uint32_t d = sc->work[wl].transfer_ticks;
            if ((uint64_t)t + d + margin < f) continue; /* not yet: start at f - d - margin */
            oracle_ok_ctx c = {t + d + sc->cfg.horizon};
            uint32_t q = ps_sim_find_target(w, wl, oracle_ok, &c);
            if (q == PS_SIM_NONE) continue;
            int rc = ps_sim_shift(w, wl, q, NULL, err, errlen);
            if (rc) return rc;
        }
    }
    return 0;
}

int ps_sim_policy_decide(ps_sim_world *w, char *err, size_t errlen)
{
    policy_state *s = w->policy_state;
    int rc = 0;
    if (w->pol.kind != PS_SIM_EXTERNAL || w->pol.reactive_fallback)
        rc = reactive(w, s, err, errlen);
    if (rc) return rc;
    switch (w->pol.kind) {
    case PS_SIM_REACTIVE:
        return 0;
    case PS_SIM_NAIVE:
        return naive(w, s, err, errlen);
    case PS_SIM_ORACLE:
        return oracle(w, s, err, errlen);
    case PS_SIM_EXTERNAL:
        return w->pol.decide ? w->pol.decide(w->pol.ctx, w, err, errlen) : 0;
    }
    return 0;
}
