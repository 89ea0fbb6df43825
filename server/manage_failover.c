/*
 * manage_failover.c - the reactive fallback, the scheme preshift improves
 * on and keeps for what prediction misses (docs/manage.md, "Reactive
 * fallback").
 *
 * A processor seen at least once since the manager started, and silent
 * for --failure-timeout seconds of stream time, is declared failed (never
 * before the manager itself has watched the stream that long: a manager
 * that just started has not had the chance to hear anyone). Its workloads
 * are then moved to the survivors one by one, heaviest first, each to the
 * processor with the least load relative to capacity that it fits on and
 * that holds no replica of it: greedy least-loaded placement, which spreads
 * the failed processor's load evenly by weight. Each move is a transfer
 * with no source agent (the source is gone). A workload that fits nowhere
 * waits for the next pass. A failed processor that reports again is alive
 * again; what was moved off it stays where it went.
 */
#include "manage_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* CPU and memory shares of p once it takes w (heartbeats, reservations, demand). */
static double share_after(const ps_cluster *c, uint32_t p, uint32_t w)
{
    const ps_processor *t = &c->proc[p];
    const ps_workload *x = &c->work[w];
    double cpu = t->cpu_util + (t->cpu_reserved + x->cpu) / t->cpu_capacity;
    double mem = t->mem_util + (t->mem_reserved + x->mem) / t->mem_capacity;
    return fmax(cpu, mem);
}

uint32_t ps_manage_failover_target(const ps_cluster *c, uint32_t w)
{
    const ps_workload *x = &c->work[w];
    uint32_t best = PS_NONE;
    double best_share = INFINITY;
    for (uint32_t p = 0; p < c->max_processors; p++) {
        const ps_processor *t = &c->proc[p];
        if (!t->present || !t->alive || p == x->proc) continue;
        double s = share_after(c, p, w);
        if (!(s <= 1.0) || s >= best_share) continue;
        if (ps_cluster_group_touches(c, x->group, p, w)) continue;
        best = p;
        best_share = s;
    }
    return best;
}

typedef struct weighed {
    double weight;
    uint32_t w;
} weighed;

static int heaviest_first(const void *a, const void *b)
{
    const weighed *x = a, *y = b;
    if (x->weight != y->weight) return x->weight > y->weight ? -1 : 1;
    return (x->w > y->w) - (x->w < y->w);
}

size_t ps_manage_failover_order(const ps_cluster *c, uint32_t p, uint32_t *out, size_t cap)
{
    const ps_processor *src = &c->proc[p];
    size_t n = 0;
    for (uint32_t w = src->first; w != PS_NONE; w = c->work[w].next)
        if (c->work[w].dest == PS_NONE) n++;
    weighed *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return 0;
    size_t i = 0;
    for (uint32_t w = src->first; w != PS_NONE; w = c->work[w].next) {
        const ps_workload *x = &c->work[w];
        if (x->dest != PS_NONE) continue;
        v[i++] = (weighed){fmax(x->cpu / src->cpu_capacity, x->mem / src->mem_capacity), w};
    }
    qsort(v, n, sizeof *v, heaviest_first);
    for (i = 0; i < n && i < cap; i++)
        out[i] = v[i].w;
    free(v);
    return n;
}

/* Declare p failed: the cluster, the store, outcomes of shifts off it. */
static void declare_failed(ps_manage *m, uint32_t p)
{
    const char *name = ps_name_of(&m->names.processors, p);
    char err[512];
    ps_cluster_set_alive(&m->c, p, 0, NULL, 0);
    if (ps_store_set_alive(m->store, name, 0, err, sizeof err)) {
        m->st.store_errors++;
        mg_error(m, "%s", err);
    }
    m->procs[p].failover = 1;
    m->procs[p].stuck = 0;
    m->st.failures++;
    mg_log(m, "processor %s failed: no record for %.1f s of stream time (last at %.3f)", name,
           m->now - m->procs[p].last_seen, m->procs[p].last_seen);
    /* Shifts off p within their horizon averted its failure; none at all: missed. */
    int shifted = 0;
    for (size_t i = 0; i < m->n_pending;) {
        mg_pending *x = &m->pending[i];
        if (x->src != p) {
            i++;
            continue;
        }
        shifted = 1;
        mg_pending done = *x;
        m->pending[i] = m->pending[--m->n_pending];
        mg_outcome(m, done.id, done.cls, PS_OUTCOME_AVERTED, "its source failed");
    }
    if (!shifted) {
        m->st.outcomes[PS_OUTCOME_MISSED]++;
        mg_log(m, "outcome: missed: %s failed with no shift off it within the horizon", name);
        /* Averted and unnecessary outcomes come one per workload moved, so a miss
           weighs as the shifts it lacked: one per workload lost (none when idle). */
        for (uint32_t k = 0; k < m->c.proc[p].n_workloads; k++)
            mg_learn(m, m->c.proc[p].cls, PS_OUTCOME_MISSED);
    }
}

void mg_detect_failures(ps_manage *m)
{
    if (isnan(m->now) || m->now - m->start < m->cfg.failure_timeout) return;
    for (uint32_t p = 0; p < m->c.max_processors; p++) {
        const ps_processor *x = &m->c.proc[p];
        double seen = m->procs[p].last_seen;
        if (x->present && x->alive && !isnan(seen) && m->now - seen > m->cfg.failure_timeout)
            declare_failed(m, p);
    }
}

void mg_revive(ps_manage *m, uint32_t p)
{
    const char *name = ps_name_of(&m->names.processors, p);
    char err[512];
    ps_cluster_set_alive(&m->c, p, 1, NULL, 0);
    if (ps_store_set_alive(m->store, name, 1, err, sizeof err)) {
        m->st.store_errors++;
        mg_error(m, "%s", err);
    }
    m->procs[p].failover = 0;
    m->st.revivals++;
    mg_log(m, "processor %s reports again: alive", name);
}

/* Move the free workloads of failed processor p, as far as there is room. */
static void fail_over(ps_manage *m, uint32_t p)
{
    const ps_processor *src = &m->c.proc[p];
    if (src->first == PS_NONE) {
        m->procs[p].failover = 0; /* nothing left on it */
        return;
    }
    uint32_t n = src->n_workloads, *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return;
    size_t k = ps_manage_failover_order(&m->c, p, order, n);
    const char *pname = ps_name_of(&m->names.processors, p);
    size_t placed = 0;
    for (size_t i = 0; i < k; i++) {
        uint32_t w = order[i], hidden[64];
        size_t nh = mg_hide_backoff(m, w, hidden, 64);
        uint32_t dst = ps_manage_failover_target(&m->c, w);
        mg_unhide(m, hidden, nh);
        if (dst == PS_NONE) continue;
        char reason[512];
        snprintf(reason, sizeof reason,
                 "failover: %s on %s, failed (silent for %.1f s); to %s, the least loaded "
                 "processor it fits on (load %.2f after)",
                 ps_name_of(&m->names.workloads, w), pname, m->now - m->procs[p].last_seen,
                 ps_name_of(&m->names.processors, dst), share_after(&m->c, dst, w));
        /* The state comes from wherever the destination restores it: at its bandwidth. */
        double expected = m->pol.cfg.disruption.switch_seconds +
                          m->c.work[w].state_bytes / m->c.proc[dst].net_bandwidth;
        if (mg_begin(m, w, dst, PS_STORE_FAILOVER, m->c.proc[p].pfp, NAN, expected, reason) > 0)
            placed++;
    }
    if (placed < k && !m->procs[p].stuck) {
        mg_log(m, "failover of %s: %zu of %zu workload(s) fit nowhere now; trying again each pass",
               pname, k - placed, k);
        m->procs[p].stuck = 1;
    }
    if (placed == k) m->procs[p].stuck = 0;
    free(order);
}

void mg_failover(ps_manage *m)
{
    for (uint32_t p = 0; p < m->c.max_processors; p++)
        if (m->c.proc[p].present && !m->c.proc[p].alive && m->procs[p].failover) fail_over(m, p);
}
