/*
 * sim_report.c - summaries, comparisons, JSON lines and the table of
 * `preshift sim` (sim_report.h).
 */
#include "sim_report.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n), n >= 1. */
static double quantile_sorted(const uint32_t *v, size_t n, double q)
{
    if (!(q > 0)) return v[0];
    if (q >= 1) return v[n - 1];
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)h;
    if (lo + 1 >= n) return v[n - 1];
    return v[lo] + (h - (double)lo) * ((double)v[lo + 1] - (double)v[lo]);
}

static int sorted_copy(const uint32_t *v, size_t n, uint32_t **out)
{
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) return PS_ENOMEM;
    if (n) memcpy(*out, v, n * sizeof *v);
    qsort(*out, n, sizeof **out, cmp_u32);
    return 0;
}

double ps_sim_percentile(const uint32_t *v, size_t n, double q)
{
    if (n == 0 || !v) return NAN;
    uint32_t *s;
    if (sorted_copy(v, n, &s)) return NAN;
    double x = quantile_sorted(s, n, q);
    free(s);
    return x;
}

double ps_sim_ratio(double num, double den)
{
    if (den == 0 || !isfinite(num) || !isfinite(den)) return NAN;
    return num / den;
}

double ps_sim_reduction(double base, double x)
{
    if (!(base > 0) || !isfinite(x)) return NAN;
    return (base - x) / base;
}

double ps_sim_oracle_share(double base, double oracle, double x)
{
    if (!isfinite(base) || !isfinite(oracle) || !isfinite(x) || !(base - oracle > 0)) return NAN;
    return (base - x) / (base - oracle);
}

int ps_sim_summarize(ps_sim_summary *s, const char *name, const ps_sim_scenario *sc,
                     const ps_sim_results *r)
{
    memset(s, 0, sizeof *s);
    snprintf(s->policy, sizeof s->policy, "%s", name);
    s->seed = sc->cfg.seed;
    s->processors = sc->P;
    s->workloads = sc->W;
    s->ticks = sc->T;
    s->tick_seconds = sc->cfg.tick_seconds;
    s->failures = r->failures;
    s->failures_averted = r->failures_averted;
    s->failures_partial = r->failures_partial;
    s->failures_missed = r->failures_missed;
    s->failures_idle = r->failures_idle;
    s->interruptions = r->interruptions;
    s->interrupted_minutes = r->interrupted_minutes;
    s->interrupted_crit_minutes = r->interrupted_crit_minutes;
    s->transfers = r->shifts;
    s->committed = r->committed;
    s->failed = r->failed;
    s->dest_failed = r->dest_failed;
    s->source_failed = r->source_failed;
    s->in_flight = r->in_flight;
    s->averted = r->averted;
    s->unnecessary = r->unnecessary;
    s->disruptive = r->disruptive;
    s->pending = r->pending;
    s->overloaded = r->overloaded;
    s->failovers = r->failovers;
    s->lead_median = s->lead_p10 = s->lead_p90 = NAN;
    if (r->n_lead) {
        uint32_t *v;
        if (sorted_copy(r->lead_ticks, (size_t)r->n_lead, &v)) return PS_ENOMEM;
        /* Minutes to 6 decimals: 2.8 ticks of 300 s are 14 minutes, not 14.000000000000002. */
        double minutes = sc->cfg.tick_seconds / 60;
        s->lead_median = round(quantile_sorted(v, (size_t)r->n_lead, 0.5) * minutes * 1e6) / 1e6;
        s->lead_p10 = round(quantile_sorted(v, (size_t)r->n_lead, 0.1) * minutes * 1e6) / 1e6;
        s->lead_p90 = round(quantile_sorted(v, (size_t)r->n_lead, 0.9) * minutes * 1e6) / 1e6;
        free(v);
    }
    s->unnecessary_per_averted = ps_sim_ratio((double)r->unnecessary, (double)r->failures_averted);
    s->reduction = s->oracle_share = NAN;
    return 0;
}

void ps_sim_summary_compare(ps_sim_summary *s, double reactive_minutes, double oracle_minutes)
{
    s->reduction = ps_sim_reduction(reactive_minutes, s->interrupted_minutes);
    s->oracle_share = ps_sim_oracle_share(reactive_minutes, oracle_minutes, s->interrupted_minutes);
}

int ps_sim_json_number(char *buf, size_t len, double x)
{
    if (!isfinite(x)) return snprintf(buf, len, "null");
    if (x == 0) return snprintf(buf, len, "0"); /* -0 too */
    if (fabs(x) < 9007199254740992.0 && x == floor(x)) return snprintf(buf, len, "%.0f", x);
    for (int prec = 6; prec < 17; prec++) {
        char tmp[40];
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x) return snprintf(buf, len, "%s", tmp);
    }
    return snprintf(buf, len, "%.17g", x);
}

/* Appends to a bounded buffer and counts what it would need, as snprintf does. */
typedef struct jbuf {
    char *p;
    size_t len, used;
} jbuf;

static void jput(jbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->used < b->len) {
        size_t room = b->len - b->used - 1;
        size_t k = n < room ? n : room;
        memcpy(b->p + b->used, s, k);
        b->p[b->used + k] = '\0';
    }
    b->used += n;
}

static void jkey(jbuf *b, const char *key)
{
    jput(b, b->used > 1 ? ",\"" : "\"");
    jput(b, key);
    jput(b, "\":");
}

static void jnum(jbuf *b, const char *key, double x)
{
    char num[48];
    ps_sim_json_number(num, sizeof num, x);
    jkey(b, key);
    jput(b, num);
}

static void jcount(jbuf *b, const char *key, uint64_t x)
{
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)x);
    jkey(b, key);
    jput(b, num);
}

static void jstr(jbuf *b, const char *key, const char *s)
{
    jkey(b, key);
    jput(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char e[8];
        if (*c == '"' || *c == '\\')
            snprintf(e, sizeof e, "\\%c", *c);
        else if (*c < 0x20)
            snprintf(e, sizeof e, "\\u%04x", *c);
        else
            snprintf(e, sizeof e, "%c", *c);
        jput(b, e);
    }
    jput(b, "\"");
}

int ps_sim_summary_json(const ps_sim_summary *s, char *buf, size_t len)
{
    jbuf b = {buf, len, 0};
    if (len) buf[0] = '\0';
    jput(&b, "{");
    jstr(&b, "policy", s->policy);
    jcount(&b, "seed", s->seed);
    jcount(&b, "processors", s->processors);
    jcount(&b, "workloads", s->workloads);
    jcount(&b, "ticks", s->ticks);
    jnum(&b, "tick_seconds", s->tick_seconds);
    jcount(&b, "failures", s->failures);
    jcount(&b, "failures_averted", s->failures_averted);
    jcount(&b, "failures_partial", s->failures_partial);
    jcount(&b, "failures_missed", s->failures_missed);
    jcount(&b, "failures_idle", s->failures_idle);
    jcount(&b, "interruptions", s->interruptions);
    jnum(&b, "interrupted_workload_minutes", s->interrupted_minutes);
    jnum(&b, "interrupted_crit_minutes", s->interrupted_crit_minutes);
    jcount(&b, "transfers", s->transfers);
    jcount(&b, "committed", s->committed);
    jcount(&b, "transfer_failed", s->failed);
    jcount(&b, "dest_failed", s->dest_failed);
    jcount(&b, "source_failed", s->source_failed);
    jcount(&b, "in_flight", s->in_flight);
    jcount(&b, "averted", s->averted);
    jcount(&b, "unnecessary", s->unnecessary);
    jcount(&b, "disruptive", s->disruptive);
    jcount(&b, "pending", s->pending);
    jcount(&b, "overloaded", s->overloaded);
    jcount(&b, "failovers", s->failovers);
    jnum(&b, "lead_minutes_median", s->lead_median);
    jnum(&b, "lead_minutes_p10", s->lead_p10);
    jnum(&b, "lead_minutes_p90", s->lead_p90);
    jnum(&b, "unnecessary_per_averted", s->unnecessary_per_averted);
    jnum(&b, "reduction_vs_reactive", s->reduction);
    jnum(&b, "share_of_oracle_reduction", s->oracle_share);
    jput(&b, "}");
    return (int)b.used;
}

/* ---------------------------------------------------------------- table */

#define LABEL_W 36
#define COL_W 12

typedef enum { F_COUNT, F_MINUTES, F_RATIO, F_PERCENT } fmt_kind;

typedef struct row {
    const char *label;
    fmt_kind fmt;
    size_t offset; /* of a uint64_t (F_COUNT) or a double in ps_sim_summary */
} row;

#define OFF(f) offsetof(ps_sim_summary, f)
static const row rows[] = {
    {"interrupted workload-minutes", F_MINUTES, OFF(interrupted_minutes)},
    {"  reduction vs reactive", F_PERCENT, OFF(reduction)},
    {"  share of the oracle's reduction", F_PERCENT, OFF(oracle_share)},
    {"  criticality-weighted", F_MINUTES, OFF(interrupted_crit_minutes)},
    {"interruptions", F_COUNT, OFF(interruptions)},
    {"failures", F_COUNT, OFF(failures)},
    {"  averted (nothing left on it)", F_COUNT, OFF(failures_averted)},
    {"  partial (shifted, some left)", F_COUNT, OFF(failures_partial)},
    {"  missed (no shift)", F_COUNT, OFF(failures_missed)},
    {"  idle (nothing on it)", F_COUNT, OFF(failures_idle)},
    {"lead time, minutes: median", F_MINUTES, OFF(lead_median)},
    {"  p10", F_MINUTES, OFF(lead_p10)},
    {"  p90", F_MINUTES, OFF(lead_p90)},
    {"transfers (shifts)", F_COUNT, OFF(transfers)},
    {"  averted", F_COUNT, OFF(averted)},
    {"  unnecessary", F_COUNT, OFF(unnecessary)},
    {"  disruptive", F_COUNT, OFF(disruptive)},
    {"  pending at the end", F_COUNT, OFF(pending)},
    {"  committed", F_COUNT, OFF(committed)},
    {"  copy failed", F_COUNT, OFF(failed)},
    {"  destination failed", F_COUNT, OFF(dest_failed)},
    {"  source failed mid-copy", F_COUNT, OFF(source_failed)},
    {"  in flight at the end", F_COUNT, OFF(in_flight)},
    {"  overloaded the destination", F_COUNT, OFF(overloaded)},
    {"unnecessary per averted failure", F_RATIO, OFF(unnecessary_per_averted)},
    {"failovers (restarts elsewhere)", F_COUNT, OFF(failovers)},
};
#undef OFF

static void cell(char *buf, size_t len, const ps_sim_summary *s, const row *r)
{
    const char *field = (const char *)s + r->offset;
    if (r->fmt == F_COUNT) {
        uint64_t v;
        memcpy(&v, field, sizeof v);
        snprintf(buf, len, "%llu", (unsigned long long)v);
        return;
    }
    double x;
    memcpy(&x, field, sizeof x);
    if (!isfinite(x)) {
        snprintf(buf, len, "-");
        return;
    }
    switch (r->fmt) {
    case F_MINUTES:
        snprintf(buf, len, fabs(x - round(x)) < 0.05 ? "%.0f" : "%.1f", x);
        break;
    case F_RATIO:
        snprintf(buf, len, "%.2f", x);
        break;
    case F_PERCENT:
        snprintf(buf, len, "%.1f %%", 100 * x);
        break;
    default:
        snprintf(buf, len, "?");
    }
}

void ps_sim_report_table(FILE *out, const ps_sim_summary *s, size_t n)
{
    fprintf(out, "%-*s", LABEL_W, "");
    for (size_t i = 0; i < n; i++)
        fprintf(out, " %*s", COL_W, s[i].policy);
    fputc('\n', out);
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        fprintf(out, "%-*s", LABEL_W, rows[k].label);
        for (size_t i = 0; i < n; i++) {
            char c[48];
            cell(c, sizeof c, &s[i], &rows[k]);
            fprintf(out, " %*s", COL_W, c);
        }
        fputc('\n', out);
    }
}
