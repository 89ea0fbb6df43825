/*
 * disruption.c - the Disruption Score and the loss a failure would cause
 * (disruption.h).
 *
 * The transitive dependents are walked breadth first, so that when the walk
 * is cut by loss_max_visit it keeps the nearest dependents, which are the
 * ones that stall first. Visits are marked with a per-walk stamp instead of
 * a cleared array: a walk costs what it visits, not the size of the cluster.
 * A dependent reachable along several paths counts once; the graph need not
 * be acyclic, and a cycle back to w adds nothing (w is marked first).
 */
#include "disruption.h"
#include "error.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ps_disruption_config ps_disruption_default_config(void)
{
    return (ps_disruption_config){
        .switch_seconds = 2.0,
        .min_bandwidth_fraction = 0.05,
        .remote_edge_cost = 1.0,
        .recovery_seconds = 30.0,
        .loss_depth = 8,
        .loss_max_visit = 4096,
        .min_disruption = 1e-6,
    };
}

int ps_disruption_config_check(const ps_disruption_config *cfg, char *err, size_t errlen)
{
    const int E = PS_EINVAL;
    if (!cfg) return ps_fail(err, errlen, E, "no disruption config");
    if (!isfinite(cfg->switch_seconds) || cfg->switch_seconds < 0)
        return ps_fail(err, errlen, E, "switch_seconds must be finite and >= 0");
    if (!(cfg->min_bandwidth_fraction > 0 && cfg->min_bandwidth_fraction <= 1))
        return ps_fail(err, errlen, E, "min_bandwidth_fraction must be in (0, 1]");
    if (!isfinite(cfg->remote_edge_cost) || cfg->remote_edge_cost < 0)
        return ps_fail(err, errlen, E, "remote_edge_cost must be finite and >= 0");
    if (!isfinite(cfg->recovery_seconds) || cfg->recovery_seconds < 0)
        return ps_fail(err, errlen, E, "recovery_seconds must be finite and >= 0");
    if (!(isfinite(cfg->min_disruption) && cfg->min_disruption > 0))
        return ps_fail(err, errlen, E, "min_disruption must be finite and > 0");
    return PS_OK;
}

int ps_disruption_ws_init(ps_disruption_ws *ws, uint32_t max_workloads, char *err, size_t errlen)
{
    if (!ws) return ps_fail(err, errlen, PS_EINVAL, "no disruption workspace");
    memset(ws, 0, sizeof *ws);
    ws->stamp = calloc(max_workloads, sizeof *ws->stamp);
    ws->queue = malloc((size_t)max_workloads * sizeof *ws->queue);
    ws->depth = malloc((size_t)max_workloads * sizeof *ws->depth);
    if (!ws->stamp || !ws->queue || !ws->depth) {
        ps_disruption_ws_free(ws);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory for a disruption workspace");
    }
    ws->max_workloads = max_workloads;
    return PS_OK;
}

void ps_disruption_ws_free(ps_disruption_ws *ws)
{
    if (!ws) return;
    free(ws->stamp);
    free(ws->queue);
    free(ws->depth);
    memset(ws, 0, sizeof *ws);
}

/* A fresh stamp; on wrap-around the marks are cleared once so old ones cannot match. */
static uint32_t next_stamp(ps_disruption_ws *ws)
{
    if (++ws->stamp_now == 0) {
        memset(ws->stamp, 0, (size_t)ws->max_workloads * sizeof *ws->stamp);
        ws->stamp_now = 1;
    }
    return ws->stamp_now;
}

/* Criticality of w's transitive dependents within the limits; *reach counts them. */
static double dependents_loss(const ps_cluster *c, const ps_disruption_config *cfg,
                              ps_disruption_ws *ws, uint32_t w, uint32_t *reach, uint8_t *truncated)
{
    uint32_t s = next_stamp(ws);
    uint32_t head = 0, tail = 0;
    double sum = 0.0;
    *reach = 0;
    *truncated = 0;
    ws->stamp[w] = s;
    ws->queue[tail] = w;
    ws->depth[tail++] = 0;
    while (head < tail) {
        uint32_t u = ws->queue[head], d = ws->depth[head++];
        if (d >= cfg->loss_depth) continue;
        uint32_t n;
        const uint32_t *a = ps_cluster_dependents(c, u, &n);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t v = a[i];
            if (ws->stamp[v] == s) continue;
            if (*reach >= cfg->loss_max_visit) {
                *truncated = 1;
                return sum;
            }
            ws->stamp[v] = s;
            ws->queue[tail] = v;
            ws->depth[tail++] = d + 1;
            sum += c->work[v].criticality;
            (*reach)++;
        }
    }
    return sum;
}

void ps_disruption_score(const ps_cluster *c, const ps_disruption_config *cfg, ps_disruption_ws *ws,
                         uint32_t w, double pfp, ps_disruption *out)
{
    const ps_workload *x = &c->work[w];
    const ps_processor *p = &c->proc[x->proc];
    memset(out, 0, sizeof *out);

    double free_share = fmax(1.0 - p->net_util, cfg->min_bandwidth_fraction);
    out->transfer_seconds = x->state_bytes / (p->net_bandwidth * free_share);
    out->pause_seconds = cfg->switch_seconds + out->transfer_seconds;
    out->self_cost = out->pause_seconds * x->criticality;

    uint32_t n;
    const uint32_t *a = ps_cluster_dependents(c, w, &n);
    double direct = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        direct += c->work[a[i]].criticality;
        if (ps_cluster_where(c, a[i]) == x->proc) out->remote_edges++;
    }
    out->dependents = n;
    out->dependents_cost = out->pause_seconds * direct;
    a = ps_cluster_dependencies(c, w, &n);
    for (uint32_t i = 0; i < n; i++)
        if (ps_cluster_where(c, a[i]) == x->proc) out->remote_edges++;
    out->remote_cost = cfg->remote_edge_cost * out->remote_edges;
    out->disruption =
        fmax(out->self_cost + out->dependents_cost + out->remote_cost, cfg->min_disruption);

    double reach = dependents_loss(c, cfg, ws, w, &out->loss_reach, &out->loss_truncated);
    out->loss = (cfg->recovery_seconds + out->transfer_seconds) * (x->criticality + reach);
    out->risk_reduction = pfp * out->loss;
    out->ratio = out->risk_reduction / out->disruption;
}
