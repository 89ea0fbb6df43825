/*
 * policy.h - one decision pass of the shifting policy: for every triggered
 * processor, which of its workloads to move and where, with a decision
 * record for every workload it looked at.
 *
 * Per triggered processor p with PFP q and effective threshold T
 * (docs/policy.md, "Selection"):
 *
 *   total    = sum of loss over p's workloads (disruption.h)
 *   residual = total - loss of workloads already in transfer away from p
 *   allowed  = total * min(1, residual_at_threshold * (1 - q) / (1 - T))
 *
 * The workloads free to move (not in transfer, not in cooldown) are ranked
 * by risk reduction per unit of disruption (ratio, then lower id) and taken
 * in that order while residual > allowed: a workload whose risk reduction
 * is below its disruption is not worth moving; one that finds no target is
 * skipped and the next one tried; each one placed lowers residual by its
 * loss. At the threshold half of the loss at risk is moved (by default); as
 * q approaches 1 the allowed residual shrinks to nothing and everything
 * worth moving goes. Triggered processors are served highest PFP first, so
 * when capacity or the move cap runs short it goes to the most endangered.
 *
 * The pass reads the cluster and never changes it; it records the cooldown
 * of every workload it decides to move. The manager applies each MOVE with
 * ps_cluster_begin_transfer before the next pass, so that the next pass
 * sees the transfer in flight (protected loss, reserved capacity).
 */
#ifndef PRESHIFT_POLICY_H
#define PRESHIFT_POLICY_H

#include "cluster.h"
#include "decision.h"
#include "disruption.h"
#include "placement.h"
#include "trigger.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_policy_config {
    ps_trigger_config trigger;
    ps_disruption_config disruption;
    ps_placement_config placement;
    double residual_at_threshold;     /* share of the loss left in place at q = T (0.5) */
    uint32_t max_moves_per_processor; /* per pass (16) */
    uint32_t max_moves_per_pass;      /* over all processors (256) */
} ps_policy_config;

/* Totals of one pass. */
typedef struct ps_policy_pass {
    uint32_t triggered; /* processors triggered */
    uint32_t served;    /* of which fully decided (all of them unless truncated) */
    uint32_t records;   /* decision records written */
    uint32_t moves;
    uint32_t no_target;
    uint8_t truncated; /* the record buffer filled; the rest of the pass was not decided */
} ps_policy_pass;

/* One free workload of a processor in ratio order. */
typedef struct ps_policy_rank {
    double ratio;
    uint32_t workload;
    uint32_t slot; /* index into the processor's scores */
} ps_policy_rank;

typedef struct ps_policy {
    ps_policy_config cfg;
    ps_disruption_ws dws;
    ps_placement_ws pws;
    uint32_t max_workloads;
    uint32_t *ids;        /* [max_workloads] one processor's workloads by id */
    ps_disruption *score; /* [max_workloads] their scores */
    ps_policy_rank *rank; /* [max_workloads] */
} ps_policy;

ps_policy_config ps_policy_default_config(void);
int ps_policy_config_check(const ps_policy_config *cfg, char *err, size_t errlen);

/* Workspaces for c's id ranges; a pass then allocates nothing. 0, PS_EINVAL or PS_ENOMEM. */
int ps_policy_init(ps_policy *pol, const ps_policy_config *cfg, const ps_cluster *c, char *err,
                   size_t errlen);
void ps_policy_free(ps_policy *pol);

/* The budget: residual loss accepted on a processor with PFP pfp and threshold thr. */
double ps_policy_allowed_share(const ps_policy_config *cfg, double pfp, double thr);

/*
 * Decide for the processors t lists as triggered (ps_trigger_update).
 * class_threshold[cls] is each class's effective threshold (recorded only).
 * Writes up to cap records into out; the pass needs at most one per
 * workload on a triggered processor, so cap = c->max_workloads never
 * truncates. Fills *pass if not NULL. Returns the number of records.
 */
uint32_t ps_policy_decide(ps_policy *pol, const ps_cluster *c, ps_trigger *t,
                          const double *class_threshold, int64_t tick, ps_decision *out, size_t cap,
                          ps_policy_pass *pass);

/* ps_trigger_update and ps_policy_decide in one call. */
uint32_t ps_policy_tick(ps_policy *pol, const ps_cluster *c, ps_trigger *t,
                        const double *class_threshold, int64_t tick, ps_decision *out, size_t cap,
                        ps_policy_pass *pass);

#endif
