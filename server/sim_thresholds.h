/*
 * sim_thresholds.h - the thresholds' trajectory of a preshift run
 * (ps_sim_preshift_report.thresholds), summarized per class for the
 * report of `preshift sim`: where each class's threshold started and
 * ended, its range, and how many changes each cause made.
 */
#ifndef PRESHIFT_SIM_THRESHOLDS_H
#define PRESHIFT_SIM_THRESHOLDS_H

#include "sim_preshift.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PS_SIM_CAUSES 5 /* ps_threshold_cause: the four outcomes, then the environment */

typedef struct ps_sim_threshold_summary {
    const char *cls; /* the report's class name */
    double start, end, min, max;
    uint64_t changes[PS_SIM_CAUSES];
    uint64_t changes_during_warmup; /* at ticks < 0 */
} ps_sim_threshold_summary;

/*
 * One summary per class of rep into out[0..rep->n_classes) (the caller's
 * array). A class without a starting point in the trajectory starts and
 * ends at NAN. Points are taken in order; those of unknown classes are
 * skipped.
 */
void ps_sim_threshold_summarize(const ps_sim_preshift_report *rep, ps_sim_threshold_summary *out);

/* The table: a row per class, at most max_rows (then a line saying how many were left out). */
void ps_sim_threshold_table(FILE *out, const ps_sim_threshold_summary *s, size_t n,
                            size_t max_rows);

/*
 * `"thresholds":[{"class":..,"start":..,"end":..,"min":..,"max":..,
 * "averted":..,"unnecessary":..,"disruptive":..,"missed":..,
 * "environment":..},...]` (a JSON member, no braces around it) into buf.
 * Returns the length it needs, as snprintf does.
 */
int ps_sim_threshold_json(const ps_sim_threshold_summary *s, size_t n, char *buf, size_t len);

#endif
