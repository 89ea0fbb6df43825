/*
 * sim_policies.c - the table of policies `preshift sim` runs, and the loop
 * that runs one with progress on stderr (sim_policies.h).
 */
#include "sim_policies.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

double ps_sim_wall_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int ps_sim_drive(ps_sim_world *w, const char *label, int quiet, ps_sim_results *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint32_t T = w->sc->T, first = w->t;
    double t0 = ps_sim_wall_seconds(), last = t0;
    int rc;
    while ((rc = ps_sim_world_step(w, err, errlen)) == 1) {
        if (quiet || (w->t & 63)) continue;
        double now = ps_sim_wall_seconds();
        if (now - last < 1) continue;
        last = now;
        fprintf(stderr, "sim: %s: tick %u of %u (%.0f %%), %.0f ticks/s\n", label, w->t, T,
                100.0 * w->t / (T ? T : 1), (w->t - first) / (now - t0));
    }
    if (rc < 0) return rc;
    double dt = ps_sim_wall_seconds() - t0;
    if (!quiet)
        fprintf(stderr, "sim: %s: %u ticks in %.2f s, %.0f ticks/s\n", label, T - first, dt,
                dt > 0 ? (T - first) / dt : 0.0);
    *out = *ps_sim_world_results(w);
    memset(&w->res, 0, sizeof w->res); /* the arrays are out's now */
    return 0;
}

/* reactive, naive, oracle: the core's own policies, with the command line's parameters. */
static int run_core(const ps_sim_policy_entry *self, const ps_sim_run_args *a, ps_sim_results *out,
                    char *err, size_t errlen)
{
    ps_sim_policy pol = a->tuning;
    pol.kind = self->kind;
    pol.decide = NULL;
    pol.ctx = NULL;
    pol.reactive_fallback = 1;
    ps_sim_world w;
    int rc = ps_sim_world_init(&w, a->sc, &pol, err, errlen);
    if (rc) return rc;
    rc = ps_sim_drive(&w, self->name, a->quiet, out, err, errlen);
    ps_sim_world_free(&w);
    return rc;
}

/* preshift: the real scoring server and manager (sim_preshift.h). */
static int run_preshift(const ps_sim_policy_entry *self, const ps_sim_run_args *a,
                        ps_sim_results *out, char *err, size_t errlen)
{
    (void)self;
    ps_sim_preshift_opts o = a->preshift ? *a->preshift : ps_sim_preshift_default_opts();
    if (!a->preshift) o.quiet = a->quiet;
    double t0 = ps_sim_wall_seconds();
    int rc = ps_sim_run_preshift(a->sc, &o, out, a->preshift_report, err, errlen);
    if (rc == 0 && !o.quiet)
        fprintf(stderr, "sim: preshift: %u ticks in %.2f s (with the warm-up)\n", a->sc->T,
                ps_sim_wall_seconds() - t0);
    return rc;
}

static const ps_sim_policy_entry entries[] = {
    {"reactive", "fail workloads over once their processor is silent past the timeout", run_core,
     NULL, PS_SIM_REACTIVE},
    {"naive", "empty a processor whose raw cpu or memory metric stays high", run_core, NULL,
     PS_SIM_NAIVE},
    {"oracle", "knows the failures: moves each workload just in time (upper bound)", run_core, NULL,
     PS_SIM_ORACLE},
    {"preshift", "the real scoring server and shifting manager, in-process over ipc://",
     run_preshift, NULL, PS_SIM_EXTERNAL},
};

const ps_sim_policy_entry *ps_sim_policy_entries(size_t *n)
{
    *n = sizeof entries / sizeof entries[0];
    return entries;
}

const ps_sim_policy_entry *ps_sim_policy_find(const char *name)
{
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (!strcmp(entries[i].name, name)) return &entries[i];
    return NULL;
}
