/*
 * decision.h - the record of one decision about one workload on a triggered
 * processor: what was decided, and every number that led to it, so that an
 * operator reading the manager's log or store can see why a workload moved
 * (or did not) without re-running anything.
 */
#ifndef PRESHIFT_DECISION_H
#define PRESHIFT_DECISION_H

#include "disruption.h"
#include "placement.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ps_decision_reason {
    PS_DECIDE_MOVE = 0,          /* selected and placed: start a transfer to target */
    PS_DECIDE_IN_TRANSFER = 1,   /* already leaving; counted as protected */
    PS_DECIDE_COOLDOWN = 2,      /* moved too recently to move again */
    PS_DECIDE_WITHIN_BUDGET = 3, /* the processor's remaining expected loss is low enough */
    PS_DECIDE_NOT_WORTH = 4,     /* risk reduction below its disruption */
    PS_DECIDE_MOVE_CAP = 5,      /* the per-processor or per-pass move limit was reached */
    PS_DECIDE_NO_TARGET = 6,     /* selected, but no processor can take it (placement says why) */
} ps_decision_reason;

typedef struct ps_decision {
    int64_t tick;
    ps_decision_reason reason;
    uint32_t processor; /* the triggered source */
    uint32_t workload;
    uint32_t target;     /* PS_NONE unless reason is PS_DECIDE_MOVE */
    double pfp;          /* of the source */
    double threshold;    /* the source class's effective threshold */
    uint32_t held_ticks; /* the source's hysteresis count */
    uint32_t rank;       /* 1-based place in the processor's ratio order, 0 if not ranked */
    ps_disruption score;
    /* The processor's budget when this workload was considered (criticality-seconds). */
    double residual_loss; /* loss still at risk on the processor, before this decision */
    double allowed_loss;  /* the residual the budget accepts at this PFP */
    ps_placement place;   /* filled for MOVE and NO_TARGET */
} ps_decision;

/* A short stable name: "move", "in-transfer", "cooldown", ... */
const char *ps_decision_reason_name(ps_decision_reason r);

/*
 * One human-readable line (no newline) into buf, like snprintf: the return
 * is the length the whole line needs, and buf (if len > 0) always ends in
 * '\0'. Something over 400 characters fits every record.
 */
int ps_decision_format(const ps_decision *d, char *buf, size_t len);

#endif
