/*
 * placement.h - where a workload chosen to leave a processor goes.
 *
 * A processor is a candidate for w if it is present, alive, not w's host,
 * its PFP is at most max_target_pfp, it holds (and receives) no replica of
 * w's group, and after taking w neither its CPU nor its memory use exceeds
 * max_utilization of capacity, counting its last heartbeat, the transfers in
 * flight to it and the placements already made in this pass. Among the
 * candidates the winner is, in order:
 *
 *   1. most affinity: edges between w and workloads that are (or will be)
 *      on the candidate, which stay local instead of becoming remote;
 *   2. lowest PFP band, floor(pfp / pfp_band): healthy PFPs differ by noise,
 *      so comparing them exactly would let noise decide and headroom never;
 *   3. most headroom: max_utilization minus the larger of the CPU and
 *      memory shares after the move;
 *   4. lowest id.
 *
 * A placement scratch lives for one decision pass: placements commit their
 * demand to it so later placements in the pass see the capacity consumed,
 * and reset clears only what the pass touched.
 */
#ifndef PRESHIFT_PLACEMENT_H
#define PRESHIFT_PLACEMENT_H

#include "cluster.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_placement_config {
    double max_target_pfp;  /* healthy bound for a target (0.05) */
    double max_utilization; /* cap on CPU and memory share after a move (0.8) */
    double pfp_band;        /* PFPs closer than this rank equal (0.01), > 0 */
} ps_placement_config;

/* The choice for one workload and, when there is none, why. */
typedef struct ps_placement {
    uint32_t target; /* PS_NONE if no candidate */
    double target_pfp;
    double headroom;             /* of the target after the move, share of capacity */
    uint32_t affinity;           /* edges kept local on the target */
    uint32_t considered;         /* processors other than the host */
    uint32_t rejected_unhealthy; /* absent, dead or PFP above max_target_pfp */
    uint32_t rejected_headroom;  /* would exceed max_utilization */
    uint32_t rejected_replica;   /* holds a replica; counted only for processors that would
                                    otherwise have won, so complete when there is no target */
} ps_placement;

typedef struct ps_placement_ws {
    uint32_t max_processors, max_workloads;
    double *cpu_add, *mem_add; /* [processors] demand placed in this pass */
    uint32_t *affinity;        /* [processors] scratch of one placement, zero between */
    uint32_t *touched;         /* [processors] processors with cpu_add/mem_add set */
    uint8_t *is_touched;       /* [processors] */
    uint32_t n_touched;
    uint32_t *aff_touched; /* [processors] */
    uint32_t *planned;     /* [workloads] target planned in this pass, PS_NONE */
    uint32_t *planned_list;
    uint32_t n_planned;
} ps_placement_ws;

ps_placement_config ps_placement_default_config(void);
int ps_placement_config_check(const ps_placement_config *cfg, char *err, size_t errlen);

int ps_placement_ws_init(ps_placement_ws *ws, const ps_cluster *c, char *err, size_t errlen);
void ps_placement_ws_free(ps_placement_ws *ws);
/* Forget the pass: O(what it touched). */
void ps_placement_reset(ps_placement_ws *ws);

/* Where w will be counting this pass's plans: planned, else in flight, else host. */
static inline uint32_t ps_placement_where(const ps_cluster *c, const ps_placement_ws *ws,
                                          uint32_t w)
{
    return ws->planned[w] != PS_NONE ? ws->planned[w] : ps_cluster_where(c, w);
}

/*
 * Choose a target for present workload w. Returns 0 with out->target set, or
 * 1 with out->target PS_NONE and the rejection counts saying why. Nothing
 * is committed. O(processors + degree of w + group size per contender).
 */
int ps_place(const ps_cluster *c, const ps_placement_config *cfg, ps_placement_ws *ws, uint32_t w,
             ps_placement *out);

/* Book w's move to target in the pass: its demand and its planned location. */
void ps_placement_commit(const ps_cluster *c, ps_placement_ws *ws, uint32_t w, uint32_t target);

/* Headroom of p after adding w's demand, counting the pass's plans (negative: over the cap). */
double ps_placement_headroom(const ps_cluster *c, const ps_placement_config *cfg,
                             const ps_placement_ws *ws, uint32_t p, uint32_t w);

#endif
