/*
 * threshold.c - adaptive per-class thresholds (threshold.h).
 *
 * The base is clamped after every step, so a long run of one outcome parks
 * the threshold at a bound instead of winding it up beyond it: the first
 * outcome of the other kind then moves it at once.
 */
#include "threshold.h"
#include "error.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

ps_threshold_config ps_threshold_default_config(void)
{
    return (ps_threshold_config){
        .initial = 0.9,
        .min = 0.5,
        .max = 0.9999,
        .step_down = 0.10,
        .step_unnecessary = 0.10,
        .step_disruptive = 0.25,
        .step_missed = 0.10,
        .rate_alpha = 0.2,
        .lower_when_averted_rate = 0.5,
        .load_level = 0.7,
        .load_gain = 4.0,
        .congestion_gain = 1.0,
        .env_max = 2.0,
        .env_alpha = 0.3,
        .history_min_change = 0.01,
    };
}

static int finite_nonneg(double v)
{
    return isfinite(v) && v >= 0;
}

int ps_threshold_config_check(const ps_threshold_config *cfg, char *err, size_t errlen)
{
    const int E = PS_EINVAL;
    if (!cfg) return ps_fail(err, errlen, E, "no threshold config");
    if (!(cfg->min > 0 && cfg->min <= cfg->initial && cfg->initial <= cfg->max && cfg->max < 1))
        return ps_fail(err, errlen, E,
                       "thresholds need 0 < min <= initial <= max < 1 (min %g, initial %g, max %g)",
                       cfg->min, cfg->initial, cfg->max);
    if (!finite_nonneg(cfg->step_down) || !finite_nonneg(cfg->step_unnecessary) ||
        !finite_nonneg(cfg->step_disruptive) || !finite_nonneg(cfg->step_missed))
        return ps_fail(err, errlen, E, "threshold steps must be finite and >= 0 (log-odds)");
    if (!(cfg->rate_alpha > 0 && cfg->rate_alpha <= 1) ||
        !(cfg->env_alpha > 0 && cfg->env_alpha <= 1))
        return ps_fail(err, errlen, E, "rate_alpha and env_alpha must be in (0, 1]");
    if (!(cfg->lower_when_averted_rate >= 0 && cfg->lower_when_averted_rate <= 1))
        return ps_fail(err, errlen, E, "lower_when_averted_rate must be in [0, 1]");
    if (!(cfg->load_level >= 0 && cfg->load_level <= 1))
        return ps_fail(err, errlen, E, "load_level must be in [0, 1]");
    if (!finite_nonneg(cfg->load_gain) || !finite_nonneg(cfg->congestion_gain) ||
        !finite_nonneg(cfg->env_max) || !finite_nonneg(cfg->history_min_change))
        return ps_fail(err, errlen, E,
                       "load_gain, congestion_gain, env_max and history_min_change must be finite "
                       "and >= 0");
    return PS_OK;
}

static double logit(double p)
{
    return log(p / (1.0 - p));
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int ps_thresholds_init(ps_thresholds *th, const ps_threshold_config *cfg, uint32_t n_classes,
                       char *err, size_t errlen)
{
    if (!th) return ps_fail(err, errlen, PS_EINVAL, "no thresholds");
    memset(th, 0, sizeof *th);
    int rc = ps_threshold_config_check(cfg, err, errlen);
    if (rc) return rc;
    if (n_classes < 1 || n_classes > PS_THRESHOLD_MAX_CLASSES)
        return ps_fail(err, errlen, PS_EINVAL, "%u processor classes: must be 1 to %d", n_classes,
                       PS_THRESHOLD_MAX_CLASSES);
    th->cfg = *cfg;
    th->n_classes = n_classes;
    th->zmin = logit(cfg->min);
    th->zmax = logit(cfg->max);
    th->congestion = 1.0;
    for (uint32_t k = 0; k < n_classes; k++) {
        th->cls[k].base = clamp(logit(cfg->initial), th->zmin, th->zmax);
        th->cls[k].recorded = th->cls[k].base;
    }
    return PS_OK;
}

static double effective_logit(const ps_thresholds *th, uint32_t cls)
{
    return clamp(th->cls[cls].base + th->env_offset, th->zmin, th->zmax);
}

double ps_thresholds_effective(const ps_thresholds *th, uint32_t cls)
{
    if (cls >= th->n_classes) return NAN;
    return sigmoid(effective_logit(th, cls));
}

void ps_thresholds_fill(const ps_thresholds *th, double *out)
{
    for (uint32_t k = 0; k < th->n_classes; k++)
        out[k] = ps_thresholds_effective(th, k);
}

static void fill_record(const ps_thresholds *th, uint32_t cls, ps_threshold_cause cause,
                        int64_t time, double old_z, double old_base, ps_threshold_change *rec)
{
    const ps_threshold_class *k = &th->cls[cls];
    memset(rec, 0, sizeof *rec);
    rec->time = time;
    rec->cls = cls;
    rec->cause = cause;
    rec->old_threshold = sigmoid(old_z);
    rec->new_threshold = sigmoid(effective_logit(th, cls));
    rec->old_base = old_base;
    rec->new_base = k->base;
    rec->env_offset = th->env_offset;
    rec->load = th->load;
    rec->congestion = th->congestion;
    memcpy(rec->rate, k->rate, sizeof rec->rate);
}

int ps_thresholds_outcome(ps_thresholds *th, uint32_t cls, ps_outcome outcome, int64_t time,
                          ps_threshold_change *rec)
{
    if (!th || cls >= th->n_classes || (unsigned)outcome >= PS_OUTCOME_COUNT) return PS_EINVAL;
    const ps_threshold_config *cfg = &th->cfg;
    ps_threshold_class *k = &th->cls[cls];
    for (int o = 0; o < PS_OUTCOME_COUNT; o++)
        k->rate[o] = (1.0 - cfg->rate_alpha) * k->rate[o] + cfg->rate_alpha * (o == (int)outcome);
    k->count[outcome]++;

    double step = 0.0;
    switch (outcome) {
    case PS_OUTCOME_AVERTED:
        if (k->rate[PS_OUTCOME_AVERTED] >= cfg->lower_when_averted_rate) step = -cfg->step_down;
        break;
    case PS_OUTCOME_UNNECESSARY:
        step = cfg->step_unnecessary;
        break;
    case PS_OUTCOME_DISRUPTIVE:
        step = cfg->step_disruptive;
        break;
    case PS_OUTCOME_MISSED:
        step = -cfg->step_missed;
        break;
    case PS_OUTCOME_COUNT:
        break;
    }
    double old_base = k->base, old_z = k->recorded;
    k->base = clamp(k->base + step, th->zmin, th->zmax);
    if (k->base == old_base) return 0;
    k->recorded = effective_logit(th, cls);
    if (rec) fill_record(th, cls, (ps_threshold_cause)outcome, time, old_z, old_base, rec);
    return 1;
}

int ps_thresholds_environment(ps_thresholds *th, double mean_util, double transfer_ratio,
                              int64_t time, ps_threshold_change *out, size_t cap)
{
    if (!th || !(mean_util >= 0 && mean_util <= 1)) return PS_EINVAL;
    const ps_threshold_config *cfg = &th->cfg;
    th->load = (1.0 - cfg->env_alpha) * th->load + cfg->env_alpha * mean_util;
    if (isfinite(transfer_ratio) && transfer_ratio > 0)
        th->congestion = (1.0 - cfg->env_alpha) * th->congestion + cfg->env_alpha * transfer_ratio;
    double e = cfg->load_gain * fmax(0.0, th->load - cfg->load_level) +
               cfg->congestion_gain * fmax(0.0, log(th->congestion));
    th->env_offset = fmin(e, cfg->env_max);

    int n = 0;
    for (uint32_t c = 0; c < th->n_classes; c++) {
        ps_threshold_class *k = &th->cls[c];
        double z = effective_logit(th, c);
        if (fabs(z - k->recorded) < cfg->history_min_change || fabs(z - k->recorded) == 0) continue;
        double old_z = k->recorded;
        k->recorded = z;
        if ((size_t)n < cap && out)
            fill_record(th, c, PS_CAUSE_ENVIRONMENT, time, old_z, k->base, &out[n++]);
    }
    return n;
}

const char *ps_threshold_cause_name(ps_threshold_cause c)
{
    switch (c) {
    case PS_CAUSE_AVERTED:
        return "averted";
    case PS_CAUSE_UNNECESSARY:
        return "unnecessary";
    case PS_CAUSE_DISRUPTIVE:
        return "disruptive";
    case PS_CAUSE_MISSED:
        return "missed";
    case PS_CAUSE_ENVIRONMENT:
        return "environment";
    }
    return "unknown";
}
