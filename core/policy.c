/*
 * policy.c - the decision pass (policy.h).
 *
 * A processor's workloads are gathered and sorted by id first, so that the
 * records come out in the same order whatever order the manager built the
 * cluster in; the ranking then breaks equal ratios by id. All scratch is
 * sized at init: the pass itself allocates nothing.
 */
#include "policy.h"
#include "error.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ps_policy_config ps_policy_default_config(void)
{
    return (ps_policy_config){
        .trigger = ps_trigger_default_config(),
        .disruption = ps_disruption_default_config(),
        .placement = ps_placement_default_config(),
        .residual_at_threshold = 0.5,
        .max_moves_per_processor = 16,
        .max_moves_per_pass = 256,
    };
}

int ps_policy_config_check(const ps_policy_config *cfg, char *err, size_t errlen)
{
    if (!cfg) return ps_fail(err, errlen, PS_EINVAL, "no policy config");
    int rc = ps_trigger_config_check(&cfg->trigger, err, errlen);
    if (!rc) rc = ps_disruption_config_check(&cfg->disruption, err, errlen);
    if (!rc) rc = ps_placement_config_check(&cfg->placement, err, errlen);
    if (rc) return rc;
    if (!(cfg->residual_at_threshold >= 0 && cfg->residual_at_threshold <= 1))
        return ps_fail(err, errlen, PS_EINVAL, "residual_at_threshold must be in [0, 1], not %g",
                       cfg->residual_at_threshold);
    return PS_OK;
}

int ps_policy_init(ps_policy *pol, const ps_policy_config *cfg, const ps_cluster *c, char *err,
                   size_t errlen)
{
    if (!pol || !c) return ps_fail(err, errlen, PS_EINVAL, "no policy or cluster");
    memset(pol, 0, sizeof *pol);
    int rc = ps_policy_config_check(cfg, err, errlen);
    if (rc) return rc;
    pol->cfg = *cfg;
    rc = ps_disruption_ws_init(&pol->dws, c->max_workloads, err, errlen);
    if (!rc) rc = ps_placement_ws_init(&pol->pws, c, err, errlen);
    if (rc) {
        ps_policy_free(pol);
        return rc;
    }
    size_t n = c->max_workloads;
    pol->ids = malloc(n * sizeof *pol->ids);
    pol->score = malloc(n * sizeof *pol->score);
    pol->rank = malloc(n * sizeof *pol->rank);
    if (!pol->ids || !pol->score || !pol->rank) {
        ps_policy_free(pol);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory for the policy workspace");
    }
    pol->max_workloads = c->max_workloads;
    return PS_OK;
}

void ps_policy_free(ps_policy *pol)
{
    if (!pol) return;
    ps_disruption_ws_free(&pol->dws);
    ps_placement_ws_free(&pol->pws);
    free(pol->ids);
    free(pol->score);
    free(pol->rank);
    memset(pol, 0, sizeof *pol);
}

double ps_policy_allowed_share(const ps_policy_config *cfg, double pfp, double thr)
{
    if (pfp >= 1.0) return 0.0;
    if (thr >= 1.0) return 1.0;
    double share = cfg->residual_at_threshold * (1.0 - pfp) / (1.0 - thr);
    return share < 0.0 ? 0.0 : share > 1.0 ? 1.0 : share;
}

static int by_id(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

static int by_ratio(const void *pa, const void *pb)
{
    const ps_policy_rank *a = pa, *b = pb;
    if (a->ratio != b->ratio) return a->ratio > b->ratio ? -1 : 1;
    return (a->workload > b->workload) - (a->workload < b->workload);
}

/* The state a pass carries from one processor to the next. */
typedef struct pass_state {
    ps_decision *out;
    size_t cap;
    ps_policy_pass *pass;
} pass_state;

/* The next record, or NULL (and the pass marked truncated) when the buffer is full. */
static ps_decision *next_record(pass_state *st, const ps_decision *base)
{
    if (st->pass->records >= st->cap) {
        st->pass->truncated = 1;
        return NULL;
    }
    ps_decision *d = &st->out[st->pass->records++];
    *d = *base;
    return d;
}

/* Decide for processor p; 0, or -1 when the record buffer ran out. */
static int decide_processor(ps_policy *pol, const ps_cluster *c, ps_trigger *t,
                            const double *class_threshold, int64_t tick, uint32_t p, pass_state *st)
{
    const ps_policy_config *cfg = &pol->cfg;
    const ps_processor *src = &c->proc[p];
    uint32_t n = 0;
    for (uint32_t w = src->first; w != PS_NONE; w = c->work[w].next)
        pol->ids[n++] = w;
    if (n > 1) qsort(pol->ids, n, sizeof *pol->ids, by_id);

    double total = 0.0, protected_loss = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        ps_disruption_score(c, &cfg->disruption, &pol->dws, pol->ids[i], src->pfp, &pol->score[i]);
        total += pol->score[i].loss;
        if (c->work[pol->ids[i]].dest != PS_NONE) protected_loss += pol->score[i].loss;
    }
    double thr = class_threshold[src->cls];
    double residual = total - protected_loss;
    double allowed = total * ps_policy_allowed_share(cfg, src->pfp, thr);

    ps_decision base;
    memset(&base, 0, sizeof base);
    base.tick = tick;
    base.processor = p;
    base.target = PS_NONE;
    base.pfp = src->pfp;
    base.threshold = thr;
    base.held_ticks = ps_trigger_held(t, p);
    base.place.target = PS_NONE;

    uint32_t n_free = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t w = pol->ids[i];
        ps_decision_reason why;
        if (c->work[w].dest != PS_NONE)
            why = PS_DECIDE_IN_TRANSFER;
        else if (ps_trigger_in_cooldown(t, w, tick))
            why = PS_DECIDE_COOLDOWN;
        else {
            pol->rank[n_free++] =
                (ps_policy_rank){.ratio = pol->score[i].ratio, .workload = w, .slot = i};
            continue;
        }
        ps_decision *d = next_record(st, &base);
        if (!d) return -1;
        d->reason = why;
        d->workload = w;
        d->score = pol->score[i];
        d->residual_loss = residual;
        d->allowed_loss = allowed;
    }
    if (n_free > 1) qsort(pol->rank, n_free, sizeof *pol->rank, by_ratio);

    uint32_t moved_here = 0;
    for (uint32_t k = 0; k < n_free; k++) {
        const ps_policy_rank *r = &pol->rank[k];
        const ps_disruption *s = &pol->score[r->slot];
        ps_decision *d = next_record(st, &base);
        if (!d) return -1;
        d->workload = r->workload;
        d->rank = k + 1;
        d->score = *s;
        d->residual_loss = residual;
        d->allowed_loss = allowed;
        if (moved_here >= cfg->max_moves_per_processor ||
            st->pass->moves >= cfg->max_moves_per_pass) {
            d->reason = PS_DECIDE_MOVE_CAP;
        } else if (residual <= allowed) {
            d->reason = PS_DECIDE_WITHIN_BUDGET;
        } else if (s->risk_reduction < s->disruption) {
            d->reason = PS_DECIDE_NOT_WORTH;
        } else if (ps_place(c, &cfg->placement, &pol->pws, r->workload, &d->place) == 0) {
            d->reason = PS_DECIDE_MOVE;
            d->target = d->place.target;
            ps_placement_commit(c, &pol->pws, r->workload, d->target);
            ps_trigger_note_move(t, r->workload, tick);
            residual -= s->loss;
            moved_here++;
            st->pass->moves++;
        } else {
            d->reason = PS_DECIDE_NO_TARGET;
            st->pass->no_target++;
        }
    }
    return 0;
}

uint32_t ps_policy_decide(ps_policy *pol, const ps_cluster *c, ps_trigger *t,
                          const double *class_threshold, int64_t tick, ps_decision *out, size_t cap,
                          ps_policy_pass *pass)
{
    ps_policy_pass local;
    pass_state st = {.out = out, .cap = out ? cap : 0, .pass = pass ? pass : &local};
    memset(st.pass, 0, sizeof *st.pass);
    st.pass->triggered = t->n_triggered;
    ps_placement_reset(&pol->pws);
    for (uint32_t i = 0; i < t->n_triggered; i++) {
        if (decide_processor(pol, c, t, class_threshold, tick, t->list[i].processor, &st)) break;
        st.pass->served++;
    }
    ps_placement_reset(&pol->pws);
    return st.pass->records;
}

uint32_t ps_policy_tick(ps_policy *pol, const ps_cluster *c, ps_trigger *t,
                        const double *class_threshold, int64_t tick, ps_decision *out, size_t cap,
                        ps_policy_pass *pass)
{
    ps_trigger_update(t, c, class_threshold);
    return ps_policy_decide(pol, c, t, class_threshold, tick, out, cap, pass);
}
