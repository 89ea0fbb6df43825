/*
 * decision.c - names and the one-line form of decision records (decision.h).
 *
 * The line leads with what happened and to what, then the numbers in the
 * order the policy used them (trigger, budget, score, placement), with
 * units, so a log reader can follow the reasoning left to right.
 */
#include "decision.h"

#include <stdarg.h>
#include <stdio.h>

const char *ps_decision_reason_name(ps_decision_reason r)
{
    switch (r) {
    case PS_DECIDE_MOVE:
        return "move";
    case PS_DECIDE_IN_TRANSFER:
        return "in-transfer";
    case PS_DECIDE_COOLDOWN:
        return "cooldown";
    case PS_DECIDE_WITHIN_BUDGET:
        return "within-budget";
    case PS_DECIDE_NOT_WORTH:
        return "not-worth";
    case PS_DECIDE_MOVE_CAP:
        return "move-cap";
    case PS_DECIDE_NO_TARGET:
        return "no-target";
    }
    return "unknown";
}

/* Append to buf at *at, keeping the snprintf contract for the whole line. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t len, size_t *at,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*at < len ? buf + *at : NULL, *at < len ? len - *at : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *at += (size_t)n;
}

int ps_decision_format(const ps_decision *d, char *buf, size_t len)
{
    size_t at = 0;
    const ps_disruption *s = &d->score;
    if (len) buf[0] = '\0';
    append(buf, len, &at, "tick %lld proc %u workload %u: %s", (long long)d->tick, d->processor,
           d->workload, ps_decision_reason_name(d->reason));
    if (d->reason == PS_DECIDE_MOVE)
        append(buf, len, &at, " -> proc %u (pfp %.4f, headroom %.3f, affinity %u)", d->target,
               d->place.target_pfp, d->place.headroom, d->place.affinity);
    else if (d->reason == PS_DECIDE_NO_TARGET)
        append(buf, len, &at,
               " (of %u processors: %u unhealthy, %u no headroom, %u hold a replica)",
               d->place.considered, d->place.rejected_unhealthy, d->place.rejected_headroom,
               d->place.rejected_replica);
    append(buf, len, &at,
           "; pfp %.4f threshold %.4f held %u; residual loss %.4g allowed %.4g; rank %u "
           "ratio %.4g = risk %.4g / disruption %.4g (pause %.3gs: self %.4g + %u dependents "
           "%.4g + %u remote edges %.4g); loss %.4g over %u dependents%s",
           d->pfp, d->threshold, d->held_ticks, d->residual_loss, d->allowed_loss, d->rank,
           s->ratio, s->risk_reduction, s->disruption, s->pause_seconds, s->self_cost,
           s->dependents, s->dependents_cost, s->remote_edges, s->remote_cost, s->loss,
           s->loss_reach, s->loss_truncated ? " (walk truncated)" : "");
    return at > (size_t)0x7fffffff ? 0x7fffffff : (int)at;
}
