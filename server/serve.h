/*
 * serve.h - the scoring server as a library: start it from a configuration,
 * ask which ports it got, stop it. `preshift serve` (cmd_serve.c) is this
 * plus flags and signals; tests run it in-process.
 */
#ifndef PRESHIFT_SERVE_H
#define PRESHIFT_SERVE_H

#include "serve_config.h"
#include "serve_metrics.h"

#include <stddef.h>

typedef struct ps_serve ps_serve;

/*
 * Load the model, start HTTP (/readyz says "starting"), start the scoring
 * thread, which restores the state file, then listen on every address and
 * start serving. Returns NULL with the reason in err when anything fails
 * (nothing is left running then).
 */
ps_serve *ps_serve_start(const ps_serve_config *cfg, char *err, size_t errlen);

typedef enum ps_serve_endpoint {
    PS_SERVE_REP = 0,
    PS_SERVE_PUB = 1,
    PS_SERVE_HTTP = 2,
} ps_serve_endpoint;

/* The TCP port an endpoint listens on (useful with port 0); 0 when not TCP or off. */
int ps_serve_port(const ps_serve *s, ps_serve_endpoint which);

/* Counters a benchmark reads in-process (the same as /metrics shows). */
typedef struct ps_serve_stats {
    double stage_seconds[PS_NSTAGES]; /* by PS_STAGE_* */
    uint64_t batches;                 /* ticks scored */
    uint64_t heartbeats[PS_PROTO_NSTATES];
    uint64_t requests;    /* score requests */
    uint64_t subscribers; /* connections to the PUB socket now */
} ps_serve_stats;
void ps_serve_get_stats(ps_serve *s, ps_serve_stats *out);

/* One line on the durable state: off, nothing restored, or what was restored. */
void ps_serve_state_note(const ps_serve *s, char *buf, size_t len);

/*
 * Stop: refuse new scoring (health says "stopping", /readyz 503), answer
 * everything queued with `unavailable`, close the sockets, stop HTTP, join
 * the scoring thread (which writes a last snapshot) and free everything.
 * NULL is fine.
 */
void ps_serve_stop(ps_serve *s);

#endif
