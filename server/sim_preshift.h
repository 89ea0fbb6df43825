/*
 * sim_preshift.h - the `preshift` policy of the cluster simulation: the
 * real scoring server (server/serve.h) and the real shifting manager
 * (server/manage.h), as threads over ipc:// (or tcp loopback) sockets, or
 * as `preshift serve` and `preshift manage` processes over tcp loopback
 * (server/sim_processes.h), driven tick by tick by the simulated world
 * (core/sim_world.h) and compared with the core's policies on the same
 * scenario.
 *
 *   world ──heartbeats (ps_client_score)──▶ scoring server ──PUB──▶ manager
 *     ▲                                                              │
 *     └──── ps_sim_shift / ps_sim_failover ◀── simulated agent ◀─────┘
 *                                              (transfer protocol)
 *
 * Each tick: the world's ground truth (begin), the held transfers the world
 * ended are answered and the manager has taken them in; every alive
 * processor's heartbeat goes to the server in one request; the manager
 * consumes the tick, runs its pass, and the transfers it began reach the
 * simulated agent (server/sim_agent.h) and act on the world; the world
 * counts the tick (end). Every step waits on a condition (the manager's
 * counters, what the agent received), never on a sleep, so the order of
 * events, and with it the result, is fixed by the seed and the options.
 * docs/evaluation.md, "The preshift policy end to end", has the details.
 */
#ifndef PRESHIFT_SIM_PRESHIFT_H
#define PRESHIFT_SIM_PRESHIFT_H

#include "core/sim_world.h"
#include "manage.h"
#include "serve.h"
#include "sim_agent.h"

#include <stddef.h>
#include <stdint.h>

/* A run stopped by its progress function during the warm-up (ps_sim_run_preshift). */
enum { PS_SIM_ESTOPPED = -181 };

/* A processor with one of the highest PFPs of the last tick. */
typedef struct ps_sim_live_pfp {
    uint32_t proc; /* index in the scenario */
    double pfp;
    float score;
    int32_t top; /* metric contributing most, or -1 */
} ps_sim_live_pfp;

#define PS_SIM_LIVE_TOP 5

/* What a progress function sees: after every history row, then after every tick. */
typedef struct ps_sim_live {
    const char *dir;                /* the temporary directory: store, workload file, sockets */
    int warming_up;                 /* 1: done of total history rows sent; 0: ticks run */
    uint32_t done, total;           /* rows or ticks */
    const ps_sim_results *res;      /* the world's counts so far (zero during the warm-up) */
    const ps_manage_stats *manager; /* NULL when it could not be read */
    const ps_serve_stats *server;   /* NULL with processes */
    ps_sim_live_pfp top[PS_SIM_LIVE_TOP]; /* highest PFP first (ticks only) */
    size_t n_top;
} ps_sim_live;

/* Nonzero stops the run: during the warm-up it fails with PS_SIM_ESTOPPED, after a tick it
   ends there and reports the ticks run (ps_sim_preshift_report.ticks, .stopped). */
typedef int (*ps_sim_progress_fn)(void *ctx, const ps_sim_live *live);

typedef struct ps_sim_preshift_opts {
    /*
     * The scoring server: everything but its addresses (ipc:// in the
     * temporary directory, HTTP off), --metrics (the scenario's columns),
     * --max-processors, --max-batch and --max-queue (at least the
     * scenario's processors), --state (off) and --evict-after (never),
     * which the run sets. Defaults: preshift serve's, --warmup 1000 (3.5
     * days of 5-minute rows), -q.
     */
    ps_serve_config serve;
    /* History rows each processor sends before tick 0 (the warm-up, then healthy scored
       ticks); 0 = serve.warmup + 36, or the shortest history of any processor when that is
       less. More than serve.warmup, at most the shortest history. */
    uint32_t history;
    /*
     * The shifting manager: everything but its stream, store, workload
     * file, control (off) and HTTP (off), which the run sets, and the
     * items below. Defaults: preshift manage's, with CPU, memory and
     * network utilization taken from the demand each processor hosts
     * (--cpu-metric none --mem-metric none --net-metric none: the
     * dataset's columns are not the simulated workloads' use), -q.
     */
    ps_manage_config manage;
    uint32_t horizon_ticks;        /* --horizon in ticks; 0 = the scenario's horizon */
    int64_t failure_timeout_ticks; /* --failure-timeout in ticks; < 0 = the scenario's */
    int64_t retry_backoff_ticks;   /* --retry-backoff in ticks; < 0 = the scenario's repair */
    int class_per_entity;          /* a class (and threshold) per entity replayed (default);
                                      0 = one for the cluster */
    /* Running. */
    const char *tmp_dir; /* NULL: /dev/shm when writable, else $TMPDIR, else /tmp */
    int tcp;             /* sockets on tcp://127.0.0.1 (free ports) instead of ipc:// */
    /* The server and the manager as `exe serve` and `exe manage` processes over tcp loopback
       (tcp implied), configured by files in the temporary directory (server/sim_processes.h);
       0: in this process. */
    int processes;
    const char *exe;             /* the preshift executable, for processes */
    int keep_files;              /* leave the temporary directory (store, workload file) behind */
    double barrier_timeout;      /* wall seconds a step may take before the run fails (600) */
    int quiet;                   /* no progress line on stderr */
    ps_sim_progress_fn progress; /* called after every row and tick (quiet or not); NULL ok */
    void *progress_ctx;
} ps_sim_preshift_opts;

/* The defaults above. */
ps_sim_preshift_opts ps_sim_preshift_default_opts(void);

/* A class threshold's value from a tick on (a step function of simulated time). */
typedef struct ps_sim_threshold_point {
    int32_t tick; /* the tick of the change; < 0 during the warm-up before tick 0 */
    uint32_t cls; /* index into the report's classes */
    double value; /* the effective threshold (PFP) from then on */
    int8_t cause; /* ps_threshold_cause, or -1 for the starting value */
} ps_sim_threshold_point;

/* What the run saw besides the world's results. */
typedef struct ps_sim_preshift_report {
    uint32_t n_classes;
    char (*classes)[64];                /* [n_classes] the manager's class names */
    ps_sim_threshold_point *thresholds; /* starting values, then every change, in order */
    size_t n_thresholds;
    ps_manage_stats manager; /* the manager's counters at the end */
    ps_serve_stats server;   /* zero with processes */
    ps_sim_agent_stats agent;
    uint64_t store_mismatches; /* workloads the manager's store places elsewhere than the world */
    uint64_t dead_hosted;      /* workloads on a failed processor at the end */
    uint32_t ticks, history, warmup; /* ticks: those run, the scenario's unless stopped */
    int stopped;                     /* the progress function ended the run early */
    double seconds_setup, seconds_warmup, seconds_run, ticks_per_second;
    /* Where the ticks' time went: the ends answered and taken in (step 2), the heartbeats
       scored (3), the pass and its transfers (4). */
    double seconds_ends, seconds_scoring, seconds_pass;
    char dir[256]; /* the temporary directory (removed unless keep_files) */
} ps_sim_preshift_report;

void ps_sim_preshift_report_free(ps_sim_preshift_report *r);

/*
 * Run the preshift policy over sc (all its ticks) into out, exactly as
 * ps_sim_run fills it for the core's policies (out owns its arrays:
 * ps_sim_results_free), and into rep (may be NULL) the thresholds'
 * trajectory and the components' counters (ps_sim_preshift_report_free).
 * o may be NULL (the defaults). 0, or < 0 with the reason in err (out and
 * rep zeroed then). A run the progress function stops after tick t fills
 * out for ticks 0..t only (out->ticks = t + 1; comparing it with another
 * policy means running that one over the scenario built with t + 1
 * ticks, which has the same processors, workloads and failures up to t).
 */
int ps_sim_run_preshift(const ps_sim_scenario *sc, const ps_sim_preshift_opts *o,
                        ps_sim_results *out, ps_sim_preshift_report *rep, char *err, size_t errlen);

#endif
