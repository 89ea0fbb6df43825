/*
 * sim_processes.h - the simulation's scoring server and shifting manager as
 * processes of their own: `preshift serve` and `preshift manage` started
 * from the preshift executable with a configuration file each, as an
 * operator would run them (docs/evaluation.md, "End to end, as processes").
 *
 * The simulation reads the manager's counters from its /metrics, the only
 * window another process has; each child is in its own process group (a
 * Ctrl-C at the terminal reaches the simulation alone, which stops them)
 * and gets SIGTERM should the simulation die first.
 */
#ifndef PRESHIFT_SIM_PROCESSES_H
#define PRESHIFT_SIM_PROCESSES_H

#include "manage.h"
#include "manage_config.h"
#include "serve_config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_sim_processes ps_sim_processes;

/* What the functions below return when a child has exited (err says how). */
enum { PS_SIM_PROCESS_EXITED = -182 };

/*
 * Write dir/serve.conf and dir/manage.conf (every option of s and m) and
 * start `exe serve --config dir/serve.conf` and `exe manage --config
 * dir/manage.conf`, their standard output sent to standard error. s->http
 * and m->http must be http:// addresses: the counters come from there. NULL with the
 * reason in err (nothing left running).
 */
ps_sim_processes *ps_sim_processes_start(const char *exe, const char *dir, const ps_serve_config *s,
                                         const ps_manage_config *m, char *err, size_t errlen);

/* The manager's counters from its /metrics: 0, PS_SIM_PROCESS_EXITED, or -1 when the scrape
   fails (not up yet, say). */
int ps_sim_processes_manager_stats(ps_sim_processes *p, ps_manage_stats *out, char *err,
                                   size_t errlen);

/* The scoring server's PUB connections now, from its /metrics; -1 as above. */
int ps_sim_processes_subscribers(ps_sim_processes *p, uint64_t *n, char *err, size_t errlen);

/*
 * SIGTERM to both (the manager first: its store is whole when it exits),
 * wait for them (SIGKILL after 30 s) and free p. 0 when both exited with
 * status 0, else -1 with how each did not. NULL is a no-op.
 */
int ps_sim_processes_stop(ps_sim_processes *p, char *err, size_t errlen);

#endif
