/*
 * sim_report.h - what `preshift sim` reports from the simulator's results
 * (core/sim_world.h): per-policy summaries, the comparisons with the
 * reactive baseline and the oracle, the JSON lines and the table.
 *
 * No I/O but the FILE * the table is printed to, no clock: a report is a
 * function of the results, so the same scenario prints the same bytes.
 *
 * Conventions (docs/evaluation.md, "Running it"):
 *  - Percentiles interpolate linearly between order statistics: for n
 *    sorted values x[0..n), q's value is at h = (n - 1) q, x[floor h] plus
 *    (h - floor h) of the step to the next one (R's and numpy's default).
 *    No values: NAN.
 *  - A ratio whose denominator is zero is NAN, never infinite: unnecessary
 *    shifts per averted failure when no failure was averted, the reduction
 *    when reactive interrupted nothing, the share of the oracle's reduction
 *    when the oracle reduced nothing. NAN is `null` in JSON and "-" in the
 *    table.
 */
#ifndef PRESHIFT_SIM_REPORT_H
#define PRESHIFT_SIM_REPORT_H

#include "core/sim_world.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The q-quantile (q in [0, 1]) of v[0..n) (any order; v is left alone). NAN for n == 0. */
double ps_sim_percentile(const uint32_t *v, size_t n, double q);
/* (base - x) / base: the share of base's interrupted minutes x avoids; NAN if base <= 0. */
double ps_sim_reduction(double base, double x);
/* (base - x) / (base - oracle): the share of the oracle's reduction x achieves; NAN if the
   oracle reduced nothing (base - oracle <= 0). */
double ps_sim_oracle_share(double base, double oracle, double x);
/* num / den, NAN when den is 0. */
double ps_sim_ratio(double num, double den);

/* One policy's line of the report. */
typedef struct ps_sim_summary {
    char policy[32];
    uint64_t seed;
    uint32_t processors, workloads, ticks;
    double tick_seconds;
    uint64_t failures, failures_averted, failures_partial, failures_missed, failures_idle;
    uint64_t interruptions;
    double interrupted_minutes, interrupted_crit_minutes;
    uint64_t transfers, committed, failed, dest_failed, source_failed, in_flight;
    uint64_t averted, unnecessary, disruptive, pending, overloaded, failovers;
    double lead_median, lead_p10,
        lead_p90;                   /* minutes (6 decimals); NAN without an averted failure */
    double unnecessary_per_averted; /* unnecessary / failures_averted, NAN if none */
    double reduction;               /* of interrupted minutes vs reactive, a fraction */
    double oracle_share;            /* of the oracle's reduction, a fraction */
} ps_sim_summary;

/*
 * The summary of policy `name`'s results r over scenario sc; the
 * comparisons are NAN until ps_sim_summary_compare. 0, or PS_ENOMEM (the
 * percentiles sort a copy of the lead times).
 */
int ps_sim_summarize(ps_sim_summary *s, const char *name, const ps_sim_scenario *sc,
                     const ps_sim_results *r);
/* Fill reduction and oracle_share from the reactive and oracle interrupted minutes
   (NAN when that reference was not run). */
void ps_sim_summary_compare(ps_sim_summary *s, double reactive_minutes, double oracle_minutes);

/*
 * A JSON number: integers (|x| < 2^53) without a fraction, other finite
 * values with the fewest significant digits that read back to x, NAN and
 * infinities as null. Returns the length written (buf of >= 32 bytes).
 */
int ps_sim_json_number(char *buf, size_t len, double x);
/*
 * s as one JSON object on one line, without the newline. Returns the length
 * it needs (as snprintf does: the line is complete if that is < len).
 */
int ps_sim_summary_json(const ps_sim_summary *s, char *buf, size_t len);

/* The table: one column per policy, one row per metric. */
void ps_sim_report_table(FILE *out, const ps_sim_summary *s, size_t n);

#endif
