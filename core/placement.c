/*
 * placement.c - target choice (placement.h).
 *
 * One linear scan over the processors per placement: with a few thousand
 * processors that is a few microseconds, cheaper and simpler than keeping a
 * sorted index that every heartbeat would disturb. The cheap filters run
 * first; the replica check walks the group's list, so it runs only for a
 * processor that would beat the best so far.
 */
#include "placement.h"
#include "error.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ps_placement_config ps_placement_default_config(void)
{
    return (ps_placement_config){.max_target_pfp = 0.05, .max_utilization = 0.8, .pfp_band = 0.01};
}

int ps_placement_config_check(const ps_placement_config *cfg, char *err, size_t errlen)
{
    const int E = PS_EINVAL;
    if (!cfg) return ps_fail(err, errlen, E, "no placement config");
    if (!(cfg->max_target_pfp >= 0 && cfg->max_target_pfp < 1))
        return ps_fail(err, errlen, E, "max_target_pfp must be in [0, 1), not %g",
                       cfg->max_target_pfp);
    if (!(cfg->max_utilization > 0 && cfg->max_utilization <= 1))
        return ps_fail(err, errlen, E, "max_utilization must be in (0, 1], not %g",
                       cfg->max_utilization);
    if (!(cfg->pfp_band > 0 && cfg->pfp_band <= 1))
        return ps_fail(err, errlen, E, "pfp_band must be in (0, 1], not %g", cfg->pfp_band);
    return PS_OK;
}

int ps_placement_ws_init(ps_placement_ws *ws, const ps_cluster *c, char *err, size_t errlen)
{
    if (!ws || !c) return ps_fail(err, errlen, PS_EINVAL, "no placement workspace or cluster");
    memset(ws, 0, sizeof *ws);
    size_t np = c->max_processors, nw = c->max_workloads;
    ws->cpu_add = calloc(np, sizeof *ws->cpu_add);
    ws->mem_add = calloc(np, sizeof *ws->mem_add);
    ws->affinity = calloc(np, sizeof *ws->affinity);
    ws->touched = malloc(np * sizeof *ws->touched);
    ws->is_touched = calloc(np, sizeof *ws->is_touched);
    ws->aff_touched = malloc(np * sizeof *ws->aff_touched);
    ws->planned = malloc(nw * sizeof *ws->planned);
    ws->planned_list = malloc(nw * sizeof *ws->planned_list);
    if (!ws->cpu_add || !ws->mem_add || !ws->affinity || !ws->touched || !ws->is_touched ||
        !ws->aff_touched || !ws->planned || !ws->planned_list) {
        ps_placement_ws_free(ws);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory for a placement workspace");
    }
    for (size_t w = 0; w < nw; w++)
        ws->planned[w] = PS_NONE;
    ws->max_processors = c->max_processors;
    ws->max_workloads = c->max_workloads;
    return PS_OK;
}

void ps_placement_ws_free(ps_placement_ws *ws)
{
    if (!ws) return;
    free(ws->cpu_add);
    free(ws->mem_add);
    free(ws->affinity);
    free(ws->touched);
    free(ws->is_touched);
    free(ws->aff_touched);
    free(ws->planned);
    free(ws->planned_list);
    memset(ws, 0, sizeof *ws);
}

void ps_placement_reset(ps_placement_ws *ws)
{
    for (uint32_t i = 0; i < ws->n_touched; i++) {
        uint32_t p = ws->touched[i];
        ws->cpu_add[p] = ws->mem_add[p] = 0.0;
        ws->is_touched[p] = 0;
    }
    for (uint32_t i = 0; i < ws->n_planned; i++)
        ws->planned[ws->planned_list[i]] = PS_NONE;
    ws->n_touched = ws->n_planned = 0;
}

double ps_placement_headroom(const ps_cluster *c, const ps_placement_config *cfg,
                             const ps_placement_ws *ws, uint32_t p, uint32_t w)
{
    const ps_processor *t = &c->proc[p];
    const ps_workload *x = &c->work[w];
    double cpu = t->cpu_util + (t->cpu_reserved + ws->cpu_add[p] + x->cpu) / t->cpu_capacity;
    double mem = t->mem_util + (t->mem_reserved + ws->mem_add[p] + x->mem) / t->mem_capacity;
    return cfg->max_utilization - fmax(cpu, mem);
}

/* Replica anti-affinity counting this pass's plans as well as hosts and transfers. */
static int holds_replica(const ps_cluster *c, const ps_placement_ws *ws, uint32_t w, uint32_t p)
{
    uint32_t g = c->work[w].group;
    if (!g) return 0;
    for (uint32_t m = c->group_first[g]; m != PS_NONE; m = c->work[m].gnext) {
        if (m == w) continue;
        const ps_workload *y = &c->work[m];
        if (y->proc == p || y->dest == p || ws->planned[m] == p) return 1;
    }
    return 0;
}

static void count_affinity(const ps_cluster *c, ps_placement_ws *ws, uint32_t w, uint32_t *n_aff)
{
    uint32_t host = c->work[w].proc;
    for (int dir = 0; dir < 2; dir++) {
        uint32_t n;
        const uint32_t *a =
            dir ? ps_cluster_dependencies(c, w, &n) : ps_cluster_dependents(c, w, &n);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t at = ps_placement_where(c, ws, a[i]);
            if (at == host) continue;
            if (ws->affinity[at]++ == 0) ws->aff_touched[(*n_aff)++] = at;
        }
    }
}

/* 1 if candidate (aff, band, head, id) ranks before the best so far. */
static int ranks_before(uint32_t aff, double band, double head, uint32_t id,
                        const ps_placement *best, double best_band)
{
    if (best->target == PS_NONE) return 1;
    if (aff != best->affinity) return aff > best->affinity;
    if (band != best_band) return band < best_band;
    if (head != best->headroom) return head > best->headroom;
    return id < best->target;
}

int ps_place(const ps_cluster *c, const ps_placement_config *cfg, ps_placement_ws *ws, uint32_t w,
             ps_placement *out)
{
    memset(out, 0, sizeof *out);
    out->target = PS_NONE;
    uint32_t host = c->work[w].proc;
    uint32_t n_aff = 0;
    count_affinity(c, ws, w, &n_aff);
    double best_band = 0.0;
    for (uint32_t p = 0; p < c->max_processors; p++) {
        const ps_processor *t = &c->proc[p];
        if (p == host || !t->present) continue;
        out->considered++;
        if (!t->alive || !(t->pfp <= cfg->max_target_pfp)) {
            out->rejected_unhealthy++;
            continue;
        }
        double head = ps_placement_headroom(c, cfg, ws, p, w);
        if (head < 0) {
            out->rejected_headroom++;
            continue;
        }
        double band = floor(t->pfp / cfg->pfp_band);
        if (!ranks_before(ws->affinity[p], band, head, p, out, best_band)) continue;
        if (holds_replica(c, ws, w, p)) {
            out->rejected_replica++;
            continue;
        }
        out->target = p;
        out->target_pfp = t->pfp;
        out->headroom = head;
        out->affinity = ws->affinity[p];
        best_band = band;
    }
    for (uint32_t i = 0; i < n_aff; i++)
        ws->affinity[ws->aff_touched[i]] = 0;
    return out->target == PS_NONE ? 1 : 0;
}

void ps_placement_commit(const ps_cluster *c, ps_placement_ws *ws, uint32_t w, uint32_t target)
{
    const ps_workload *x = &c->work[w];
    if (!ws->is_touched[target]) {
        ws->is_touched[target] = 1;
        ws->touched[ws->n_touched++] = target;
    }
    ws->cpu_add[target] += x->cpu;
    ws->mem_add[target] += x->mem;
    if (ws->planned[w] == PS_NONE) ws->planned_list[ws->n_planned++] = w;
    ws->planned[w] = target;
}
