/*
 * sim_thresholds.c - the thresholds' trajectory per class (sim_thresholds.h).
 */
#include "sim_thresholds.h"

#include "sim_report.h"

#include <math.h>
#include <string.h>

static const char *const cause_names[PS_SIM_CAUSES] = {"averted", "unnecessary", "disruptive",
                                                       "missed", "environment"};

void ps_sim_threshold_summarize(const ps_sim_preshift_report *rep, ps_sim_threshold_summary *out)
{
    for (uint32_t c = 0; c < rep->n_classes; c++) {
        memset(&out[c], 0, sizeof out[c]);
        out[c].cls = rep->classes[c];
        out[c].start = out[c].end = out[c].min = out[c].max = NAN;
    }
    for (size_t i = 0; i < rep->n_thresholds; i++) {
        const ps_sim_threshold_point *p = &rep->thresholds[i];
        if (p->cls >= rep->n_classes) continue;
        ps_sim_threshold_summary *s = &out[p->cls];
        if (isnan(s->start)) {
            s->start = s->min = s->max = p->value;
        } else {
            if (p->value < s->min) s->min = p->value;
            if (p->value > s->max) s->max = p->value;
        }
        s->end = p->value;
        if (p->cause < 0 || p->cause >= PS_SIM_CAUSES) continue;
        s->changes[p->cause]++;
        s->changes_during_warmup += p->tick < 0;
    }
}

static void value(char *buf, size_t len, double x)
{
    if (isnan(x))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.6g", x);
}

void ps_sim_threshold_table(FILE *out, const ps_sim_threshold_summary *s, size_t n, size_t max_rows)
{
    fprintf(out, "thresholds of preshift (PFP), per class:\n");
    fprintf(out, "  %-16s %10s %10s %10s %10s", "class", "start", "end", "min", "max");
    for (int k = 0; k < PS_SIM_CAUSES; k++)
        fprintf(out, " %11s", cause_names[k]);
    fputc('\n', out);
    for (size_t i = 0; i < n && i < max_rows; i++) {
        char v[4][32];
        value(v[0], sizeof v[0], s[i].start);
        value(v[1], sizeof v[1], s[i].end);
        value(v[2], sizeof v[2], s[i].min);
        value(v[3], sizeof v[3], s[i].max);
        fprintf(out, "  %-16.16s %10s %10s %10s %10s", s[i].cls, v[0], v[1], v[2], v[3]);
        for (int k = 0; k < PS_SIM_CAUSES; k++)
            fprintf(out, " %11llu", (unsigned long long)s[i].changes[k]);
        fputc('\n', out);
    }
    if (n > max_rows) fprintf(out, "  (%zu more classes: --json lists them all)\n", n - max_rows);
    fprintf(out, "  (the cause columns count the changes each cause made)\n");
}

/* Append like snprintf, tracking the length needed. */
static void put(char *buf, size_t len, size_t *at, const char *fmt, const char *a, const char *b)
{
    int k = snprintf(*at < len ? buf + *at : NULL, *at < len ? len - *at : 0, fmt, a, b);
    if (k > 0) *at += (size_t)k;
}

int ps_sim_threshold_json(const ps_sim_threshold_summary *s, size_t n, char *buf, size_t len)
{
    size_t at = 0;
    put(buf, len, &at, "\"thresholds\":[", "", "");
    for (size_t i = 0; i < n; i++) {
        char num[4][32];
        ps_sim_json_number(num[0], sizeof num[0], s[i].start);
        ps_sim_json_number(num[1], sizeof num[1], s[i].end);
        ps_sim_json_number(num[2], sizeof num[2], s[i].min);
        ps_sim_json_number(num[3], sizeof num[3], s[i].max);
        /* Class names come from the manager's store: letters, digits, '-', '_', '.'. */
        put(buf, len, &at, "%s{\"class\":\"%s\"", i ? "," : "", s[i].cls);
        put(buf, len, &at, ",\"start\":%s,\"end\":%s", num[0], num[1]);
        put(buf, len, &at, ",\"min\":%s,\"max\":%s", num[2], num[3]);
        for (int k = 0; k < PS_SIM_CAUSES; k++) {
            char c[32];
            snprintf(c, sizeof c, "%llu", (unsigned long long)s[i].changes[k]);
            put(buf, len, &at, ",\"%s\":%s", cause_names[k], c);
        }
        put(buf, len, &at, "}", "", "");
    }
    put(buf, len, &at, "]", "", "");
    return (int)at;
}
