/*
 * disruption.h - what moving a workload costs, what losing it would cost,
 * and how much risk a move removes (docs/policy.md, "Disruption Score").
 *
 * Every cost is in criticality-seconds: seconds of interruption weighted by
 * the criticality of whatever is interrupted, the unit of the simulator's
 * "interrupted workload-minutes". Moving and losing are then comparable:
 *
 *   pause      = switch_seconds + state_bytes / bandwidth          (s)
 *   bandwidth  = net_bandwidth * max(1 - net_util, min_bandwidth_fraction)
 *   self       = pause * criticality(w)
 *   dependents = pause * sum of criticality of w's direct dependents
 *   remote     = remote_edge_cost * edges of w to workloads staying on its processor
 *   disruption = max(self + dependents + remote, min_disruption)
 *
 *   loss       = (recovery_seconds + state_bytes / bandwidth)
 *                * (criticality(w) + sum of criticality of w's transitive
 *                   dependents within loss_depth hops, each counted once)
 *   risk_reduction = pfp * loss
 *   ratio      = risk_reduction / disruption
 */
#ifndef PRESHIFT_DISRUPTION_H
#define PRESHIFT_DISRUPTION_H

#include "cluster.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_disruption_config {
    double switch_seconds;         /* fixed pause of a move: prepare, commit, reroute (2 s) */
    double min_bandwidth_fraction; /* floor of the free share of bandwidth (0.05) */
    double remote_edge_cost;       /* per edge made remote, criticality-seconds (1) */
    double recovery_seconds;       /* reactive failover: detection + restart (30 s) */
    uint32_t loss_depth;           /* hops of transitive dependents counted (8) */
    uint32_t loss_max_visit;       /* dependents visited per workload at most (4096) */
    double min_disruption;         /* keeps the ratio finite (1e-6) */
} ps_disruption_config;

/* One workload's score; every term kept so a decision can show its reasons. */
typedef struct ps_disruption {
    double pause_seconds; /* switch + transfer */
    double transfer_seconds;
    double self_cost;
    double dependents_cost;
    uint32_t dependents;   /* direct dependents that pause */
    uint32_t remote_edges; /* edges to co-located workloads that would become remote */
    double remote_cost;
    double disruption;      /* the Disruption Score */
    double loss;            /* cost if the processor fails with w on it */
    uint32_t loss_reach;    /* transitive dependents counted in loss */
    uint8_t loss_truncated; /* the walk hit loss_max_visit */
    double risk_reduction;
    double ratio;
} ps_disruption;

/* Scratch for the dependents walk, sized once: no allocation per score. */
typedef struct ps_disruption_ws {
    uint32_t max_workloads;
    uint32_t stamp_now;
    uint32_t *stamp; /* visited in walk stamp_now */
    uint32_t *queue;
    uint32_t *depth;
} ps_disruption_ws;

ps_disruption_config ps_disruption_default_config(void);
int ps_disruption_config_check(const ps_disruption_config *cfg, char *err, size_t errlen);

int ps_disruption_ws_init(ps_disruption_ws *ws, uint32_t max_workloads, char *err, size_t errlen);
void ps_disruption_ws_free(ps_disruption_ws *ws);

/*
 * Score present workload w at the PFP pfp of its processor. O(degree of w +
 * the dependents walked), no allocation. ws must be sized for c.
 */
void ps_disruption_score(const ps_cluster *c, const ps_disruption_config *cfg, ps_disruption_ws *ws,
                         uint32_t w, double pfp, ps_disruption *out);

#endif
