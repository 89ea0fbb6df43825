/*
 * manage.h - the shifting manager as a library: start it from a
 * configuration, read its counters, stop it. `preshift manage`
 * (cmd_manage.c) is this plus flags and signals; tests run it in-process.
 * docs/manage.md describes what it does.
 *
 * One manager thread owns the cluster, the store, the policy and the
 * transfers; nng's threads carry the sockets and the HTTP server. Its
 * clock is the stream's: the latest heartbeat time it has seen.
 */
#ifndef PRESHIFT_MANAGE_H
#define PRESHIFT_MANAGE_H

#include "core/cluster.h"
#include "core/decision.h"
#include "core/threshold.h"
#include "manage_config.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_manage ps_manage;

/* What the manager has done, as /metrics shows it. Counters since start. */
typedef struct ps_manage_stats {
    int ready;                         /* loaded, recovered, subscribed */
    double stream_time;                /* seconds since the epoch; NAN before the first record */
    int64_t passes;                    /* decision passes (the policy's ticks) */
    uint64_t messages;                 /* stream messages */
    uint64_t records;                  /* records applied */
    uint64_t unknown_records;          /* records of processors not in the cluster */
    uint64_t gaps;                     /* gaps seen (records lost or a server restarted) */
    uint64_t missed_records;           /* records lost in gaps */
    uint64_t latest_ok, latest_failed; /* op latest asked after gaps */
    uint32_t alive, failed, triggered, never_seen;   /* processors now */
    uint64_t begun[2], committed[2], rolled_back[2]; /* transfers, by ps_transfer_kind */
    uint64_t outcomes[PS_OUTCOME_COUNT];
    uint64_t decisions[PS_DECIDE_NO_TARGET + 1]; /* records by ps_decision_reason */
    uint64_t failures;                           /* processors declared failed */
    uint64_t revivals;                           /* failed processors that reported again */
    uint64_t control_ok, control_errors;
    uint64_t store_errors; /* writes the store refused or failed (logged) */
    size_t in_flight, queued, limit;
    uint32_t stream_connections; /* scoring servers' PUB sockets connected to now */
} ps_manage_stats;

/*
 * Open (or create) the store, load the workload file into an empty one
 * (or check it against the one it was loaded from), load the cluster,
 * restore thresholds and pending outcomes, recover open transfers, open
 * the control socket and HTTP, subscribe, and start the manager thread.
 * NULL with the reason in err when anything fails (nothing left running).
 */
ps_manage *ps_manage_start(const ps_manage_config *cfg, char *err, size_t errlen);

/* The TCP port of the HTTP server (useful with port 0); 0 when off. */
int ps_manage_http_port(const ps_manage *m);

/* A consistent copy of the counters. */
void ps_manage_get_stats(ps_manage *m, ps_manage_stats *out);

/*
 * The counters back from the text of a manager's /metrics (another
 * process's, say): 0, or -1 naming the series missing. Exact for counts
 * below 2^53; `ready` is 0 while stopping, stream_time NAN before the first
 * record.
 */
int ps_manage_stats_from_metrics(const char *text, ps_manage_stats *out, char *err, size_t errlen);

/* Stop the thread (transfers in flight are left to a restart's recovery), close everything. */
void ps_manage_stop(ps_manage *m);

/* ---- pure pieces, exposed for tests ---- */

/*
 * Utilizations of processor p from one heartbeat's metrics x[0..k): CPU
 * and memory shares from cfg's metrics, network as the busier of the net
 * metrics over p's bandwidth. A metric that is off or beyond k comes from
 * the demand hosted on p instead (network: 0). Each in [0, 1].
 */
void ps_manage_utilization(const ps_manage_config *cfg, const ps_cluster *c, uint32_t p,
                           const float *x, uint32_t k, double out[3]);

/*
 * The reactive fallback's rule: the alive processor (other than w's host)
 * with the least load relative to capacity once it takes w, among those
 * where w fits (CPU and memory shares, counting heartbeats and transfers
 * in flight, at most 1) and that hold no replica of w's group; ties by
 * slot. PS_NONE if none.
 */
uint32_t ps_manage_failover_target(const ps_cluster *c, uint32_t w);

/*
 * The order in which a failed processor's free workloads (no transfer in
 * flight) are placed: heaviest first, by the larger of their CPU and
 * memory shares of p, ties by slot, so that greedy placement spreads the
 * load evenly. Writes up to cap slots; returns how many there are.
 */
size_t ps_manage_failover_order(const ps_cluster *c, uint32_t p, uint32_t *out, size_t cap);

#endif
