/*
 * trigger.c - hysteresis and cooldown (trigger.h).
 *
 * The reset level is computed once per class per tick in probability space,
 * so the per-processor work is two comparisons, not a logarithm.
 */
#include "trigger.h"
#include "error.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ps_trigger_config ps_trigger_default_config(void)
{
    /* docs/policy.md, "Trigger": measured in the simulation on ASD. */
    return (ps_trigger_config){.hold_ticks = 2, .reset_margin = 0.5, .cooldown_ticks = 30};
}

int ps_trigger_config_check(const ps_trigger_config *cfg, char *err, size_t errlen)
{
    if (!cfg) return ps_fail(err, errlen, PS_EINVAL, "no trigger config");
    if (cfg->hold_ticks < 1)
        return ps_fail(err, errlen, PS_EINVAL, "trigger hold_ticks must be >= 1");
    if (!isfinite(cfg->reset_margin) || cfg->reset_margin < 0)
        return ps_fail(err, errlen, PS_EINVAL,
                       "trigger reset_margin must be finite and >= 0 (log-odds), not %g",
                       cfg->reset_margin);
    return PS_OK;
}

int ps_trigger_init(ps_trigger *t, const ps_trigger_config *cfg, const ps_cluster *c, char *err,
                    size_t errlen)
{
    if (!t || !c) return ps_fail(err, errlen, PS_EINVAL, "no trigger or cluster");
    memset(t, 0, sizeof *t);
    int rc = ps_trigger_config_check(cfg, err, errlen);
    if (rc) return rc;
    t->cfg = *cfg;
    t->max_processors = c->max_processors;
    t->max_workloads = c->max_workloads;
    t->held = calloc(c->max_processors, sizeof *t->held);
    t->last_move = malloc((size_t)c->max_workloads * sizeof *t->last_move);
    t->list = malloc((size_t)c->max_processors * sizeof *t->list);
    if (!t->held || !t->last_move || !t->list) {
        ps_trigger_free(t);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory for trigger state");
    }
    for (uint32_t w = 0; w < c->max_workloads; w++)
        t->last_move[w] = PS_TICK_NEVER;
    return PS_OK;
}

void ps_trigger_free(ps_trigger *t)
{
    if (!t) return;
    free(t->held);
    free(t->last_move);
    free(t->list);
    memset(t, 0, sizeof *t);
}

void ps_trigger_forget_processor(ps_trigger *t, uint32_t p)
{
    if (p < t->max_processors) t->held[p] = 0;
}

void ps_trigger_forget_workload(ps_trigger *t, uint32_t w)
{
    if (w < t->max_workloads) t->last_move[w] = PS_TICK_NEVER;
}

/* The class threshold lowered by margin in log-odds. */
static double reset_level(double threshold, double margin)
{
    double z = log(threshold / (1.0 - threshold)) - margin;
    return 1.0 / (1.0 + exp(-z));
}

static int triggered_order(const void *pa, const void *pb)
{
    const ps_triggered *a = pa, *b = pb;
    if (a->pfp != b->pfp) return a->pfp > b->pfp ? -1 : 1;
    return (a->processor > b->processor) - (a->processor < b->processor);
}

/* Enough classes for every deployment we know of; more fall back to computing per processor. */
enum { RESET_CACHE = 256 };

uint32_t ps_trigger_update(ps_trigger *t, const ps_cluster *c, const double *class_threshold)
{
    double reset[RESET_CACHE];
    uint32_t cached = c->n_classes < RESET_CACHE ? c->n_classes : RESET_CACHE;
    for (uint32_t k = 0; k < cached; k++)
        reset[k] = reset_level(class_threshold[k], t->cfg.reset_margin);
    t->n_triggered = 0;
    uint32_t np = c->max_processors < t->max_processors ? c->max_processors : t->max_processors;
    for (uint32_t p = 0; p < np; p++) {
        const ps_processor *x = &c->proc[p];
        if (!x->present || !x->alive) {
            t->held[p] = 0;
            continue;
        }
        double thr = class_threshold[x->cls];
        if (x->pfp > thr) {
            if (t->held[p] < UINT32_MAX) t->held[p]++;
        } else {
            double lo = x->cls < cached ? reset[x->cls] : reset_level(thr, t->cfg.reset_margin);
            if (x->pfp < lo) t->held[p] = 0;
        }
        if (t->held[p] >= t->cfg.hold_ticks)
            t->list[t->n_triggered++] = (ps_triggered){.processor = p, .pfp = x->pfp};
    }
    if (t->n_triggered > 1) qsort(t->list, t->n_triggered, sizeof *t->list, triggered_order);
    return t->n_triggered;
}
