/*
 * sim_policies.h - the policies `preshift sim` can run, as a table: each
 * entry is a function that runs one policy over a scenario and fills
 * ps_sim_results. The core's policies (reactive, naive, oracle) are one
 * function over ps_sim_policy_kind; `preshift` runs the real scoring
 * server and manager in-process (server/sim_preshift.h) and also reports
 * the trajectory of its thresholds. An entry without a function is listed
 * as not available, with the reason.
 */
#ifndef PRESHIFT_SIM_POLICIES_H
#define PRESHIFT_SIM_POLICIES_H

#include "core/sim_world.h"
#include "sim_preshift.h"

#include <stddef.h>

/* What a policy run gets besides the scenario. */
typedef struct ps_sim_run_args {
    const ps_sim_scenario *sc;
    ps_sim_policy tuning; /* the naive and oracle parameters from the command line */
    int quiet;            /* no progress on stderr */
    /* The preshift policy: its options (NULL: ps_sim_preshift_default_opts(), with quiet
       from above) and, if not NULL, where its report goes (the caller frees it). */
    const ps_sim_preshift_opts *preshift;
    ps_sim_preshift_report *preshift_report;
} ps_sim_run_args;

typedef struct ps_sim_policy_entry ps_sim_policy_entry;

/* Run self over a->sc into out (owned by the caller then: ps_sim_results_free). 0 or < 0. */
typedef int (*ps_sim_policy_run_fn)(const ps_sim_policy_entry *self, const ps_sim_run_args *a,
                                    ps_sim_results *out, char *err, size_t errlen);

struct ps_sim_policy_entry {
    const char *name;         /* as in --policies and in the reports */
    const char *summary;      /* one line for --help */
    ps_sim_policy_run_fn run; /* NULL: not available yet */
    const char *unavailable;  /* why, when run is NULL */
    ps_sim_policy_kind kind;  /* the core's kind (core policies) */
};

/* Every policy the command knows, in report order. */
const ps_sim_policy_entry *ps_sim_policy_entries(size_t *n);
/* The entry called name, or NULL. */
const ps_sim_policy_entry *ps_sim_policy_find(const char *name);

/* Monotonic seconds, for progress and timings. */
double ps_sim_wall_seconds(void);

/*
 * Run world w from its current tick to the end, with progress on stderr
 * under `label` unless quiet: a line a second while it runs, and the ticks
 * and ticks per second at the end. out takes the results (zeroed on
 * error). 0, or < 0 with the reason in err.
 */
int ps_sim_drive(ps_sim_world *w, const char *label, int quiet, ps_sim_results *out, char *err,
                 size_t errlen);

#endif
