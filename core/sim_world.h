/*
 * sim_world.h - the ground truth of a simulated cluster, advanced one tick
 * at a time, for `preshift sim` (docs/evaluation.md specifies the model).
 *
 * Three layers:
 *  - ps_sim_series: one entity's metrics (healthy train history, then the
 *    labelled test series), borrowed from the caller: the dataset loader
 *    (server/sim_dataset.h) or a test's hand-made arrays.
 *  - ps_sim_scenario: built once from a seed and the series: processors
 *    with the entity they replay, their time offset and failure schedule;
 *    workloads with demands, state sizes, criticalities, replica groups, a
 *    dependency graph and an initial placement. Immutable after the build
 *    (but for ps_sim_scenario_place), shared by every policy run, so that
 *    policies are compared on the same failures.
 *  - ps_sim_world: one run of one policy over a scenario: hosts, transfers
 *    in flight, restarts, interruptions, shift outcomes and results.
 *
 * A tick is three calls: ps_sim_world_begin_tick applies the ground truth
 * of the tick (transfer ends, failures, repairs, restarts, horizons), the
 * policy observes and acts (ps_sim_world_decide, or any external code
 * calling ps_sim_shift / ps_sim_failover), ps_sim_world_end_tick counts
 * the tick. ps_sim_world_step does all three, ps_sim_run a whole run.
 *
 * Cost: a tick is O(events of the tick + moves) plus what the policy does;
 * nothing in the world is O(processors x workloads). Target choice is a
 * best-first walk of a heap of alive processors keyed by load.
 *
 * Pure C: no I/O, no threads, no clock. Every random draw comes from the
 * scenario's seed, so a run is the same on every machine for that seed.
 */
#ifndef PRESHIFT_SIM_WORLD_H
#define PRESHIFT_SIM_WORLD_H

#include <stddef.h>
#include <stdint.h>

/* "No processor / workload / transfer / tick" wherever one is expected. */
#define PS_SIM_NONE UINT32_MAX

/* Refusals beyond kernels.h's PS_EINVAL and PS_ENOMEM. */
enum {
    PS_SIM_EREFUSED = -180, /* a request the world cannot carry out now (reason in err) */
};

/* ---------------------------------------------------------------- series */

/* One entity's metric series; the arrays are the caller's and must outlive the scenario. */
typedef struct ps_sim_series {
    const char *name;
    uint32_t train_rows, test_rows, cols;
    const float *train;    /* train_rows x cols, row-major: healthy history */
    const float *test;     /* test_rows x cols: what the run replays */
    const uint8_t *labels; /* test_rows, each 0 or 1 */
} ps_sim_series;

/* A labelled anomaly event: test rows [start, end], inclusive. */
typedef struct ps_sim_event {
    uint32_t start, end;
} ps_sim_event;

/*
 * The events of labels[0..n): maximal runs of non-zero values, in order.
 * Writes them to out (when out is not NULL) and returns how many there are.
 */
size_t ps_sim_label_events(const uint8_t *labels, size_t n, ps_sim_event *out);

/* -------------------------------------------------------------- scenario */

typedef struct ps_sim_config {
    uint64_t seed;
    uint32_t processors;      /* P >= 1; processor p replays series p mod E */
    uint32_t workloads;       /* W >= 0 */
    uint32_t ticks;           /* T; 0 = the shortest test series (never more) */
    double tick_seconds;      /* wall time of one tick, > 0 (300: ASD's 5-minute rows) */
    uint32_t max_offset;      /* offsets uniform in [0, max_offset], <= the shortest train */
    float noise_sd;           /* >= 0: N(0,1)-like noise times this on every replayed value */
    uint32_t fail_delay;      /* 0: fail after the event's last row; d: d ticks after its onset */
    uint32_t repair_ticks;    /* >= 1: a failed processor is back this many ticks later */
    uint32_t failure_timeout; /* ticks of silence before the reactive scheme declares failure */
    uint32_t restart_ticks;   /* ticks a failed-over (restarted) workload takes to run again */
    uint32_t horizon;         /* H >= 1: a shift is averted if its source fails within H */
    double cpu_capacity, mem_capacity; /* of every processor, > 0 (cores, bytes) */
    double bandwidth;                  /* bytes per second of one transfer, > 0 */
    double transfer_fail_prob;         /* q in [0, 1]: a transfer fails at its end */
    double cpu_min, cpu_max;           /* workload cpu demand, uniform */
    double mem_min, mem_max;           /* workload memory demand, uniform */
    double state_min, state_max;       /* state bytes, log-uniform, > 0 */
    double crit_min, crit_max;         /* criticality, uniform, >= 0 */
    uint32_t layers;                   /* >= 1: layers of the dependency DAG */
    double out_degree;                 /* mean out-degree over all workloads, >= 0 */
    uint32_t replica_groups;           /* groups of replica_size workloads, anti-affine */
    uint32_t replica_size;             /* >= 2 when replica_groups > 0 */
} ps_sim_config;

/* The documented defaults (docs/evaluation.md): 2,000 processors, 10,000 workloads, ... */
ps_sim_config ps_sim_config_default(void);

/* One processor failure of the schedule. */
typedef struct ps_sim_failure {
    uint32_t proc;
    uint32_t onset; /* tick of the event's first labelled row */
    uint32_t tick;  /* f: the first tick without a heartbeat */
    uint32_t back;  /* f + repair_ticks: the first tick alive again (may be >= T) */
    uint32_t event; /* index of the event among its series' events */
} ps_sim_failure;

typedef struct ps_sim_wspec {
    double cpu, mem, state_bytes, criticality;
    uint32_t group;          /* replica group 1..G, 0 = none */
    uint32_t layer;          /* layer of the dependency DAG */
    uint32_t transfer_ticks; /* max(1, ceil(state_bytes / (bandwidth x tick_seconds))) */
    uint32_t proc;           /* initial host */
} ps_sim_wspec;

typedef struct ps_sim_scenario {
    ps_sim_config cfg; /* as given, ticks resolved */
    const ps_sim_series *series;
    uint32_t n_series, cols;
    uint32_t P, W, T;
    uint64_t noise_key;        /* from the seed: noise is a hash of (key, p, tick, metric) */
    float **by_metric;         /* [n_series]: train ++ test, one metric after another */
    uint32_t *entity, *offset; /* [P]: series replayed, time offset in ticks */
    /* Failures sorted by (tick, proc); fail_at[t] .. fail_at[t + 1] happen at tick t. */
    ps_sim_failure *failures;
    uint32_t n_failures;
    uint32_t *fail_at;                     /* [T + 1] */
    uint32_t *back_at, *back_order;        /* [T + 1] CSR over failure indices with back == t */
    uint32_t *proc_fail_start, *proc_fail; /* [P + 1] CSR: p's failure indices, tick order */
    /* Events of the replayed series over all processors, and what became of them. */
    uint32_t events_total;     /* events in the replayed test series, summed over processors */
    uint32_t events_failed;    /* made a failure in the run (= n_failures) */
    uint32_t events_merged;    /* would fail while the processor is still being repaired */
    uint32_t events_after_end; /* would fail at or after tick T (offset pushed them out) */
    ps_sim_wspec *work;        /* [W] */
    uint32_t *out_start, *out; /* [W + 1] CSR: dependents d of w (edge w -> d), ascending */
    uint32_t *in_start, *in;   /* [W + 1] CSR: dependencies of w, ascending */
    uint32_t n_edges;
    uint32_t *group_start, *group_member; /* [G + 2] CSR by group id 1..G */
    uint32_t max_transfer_ticks;
} ps_sim_scenario;

/*
 * Build the scenario of cfg over n_series series (all with the same column
 * count, train_rows >= max_offset, test_rows >= the run). 0, PS_EINVAL with
 * the reason (a bad value, workloads that do not fit), PS_ENOMEM.
 */
int ps_sim_scenario_build(ps_sim_scenario *sc, const ps_sim_config *cfg,
                          const ps_sim_series *series, uint32_t n_series, char *err, size_t errlen);
void ps_sim_scenario_free(ps_sim_scenario *sc);

/*
 * Move workload w's initial placement to p (tests, hand-made scenarios):
 * refused (PS_EINVAL) if p lacks the room or holds a replica of w's group.
 */
int ps_sim_scenario_place(ps_sim_scenario *sc, uint32_t w, uint32_t p, char *err, size_t errlen);

/* The metric row processor p replays at tick t (any t < T; noise included). */
void ps_sim_row(const ps_sim_scenario *sc, uint32_t p, uint32_t t, float *row);
/* Healthy history before tick 0: rows i in [0, ps_sim_history_len(p)), oldest first. */
uint32_t ps_sim_history_len(const ps_sim_scenario *sc, uint32_t p);
void ps_sim_history_row(const ps_sim_scenario *sc, uint32_t p, uint32_t i, float *row);
/* One value of ps_sim_row. */
float ps_sim_value(const ps_sim_scenario *sc, uint32_t p, uint32_t t, uint32_t col);

/* ----------------------------------------------------------------- world */

typedef enum ps_sim_wstate {
    PS_SIM_RUNNING = 0,
    PS_SIM_DOWN = 1,       /* its host is failed */
    PS_SIM_RESTARTING = 2, /* restarted on an alive host, running from restart_until */
} ps_sim_wstate;

typedef struct ps_sim_wl {
    uint32_t proc;          /* host */
    uint32_t next, prev;    /* host's workload list */
    uint32_t transfer;      /* transfer in flight, PS_SIM_NONE */
    uint32_t restart_until; /* RESTARTING: first tick running again */
    uint8_t state;          /* ps_sim_wstate */
} ps_sim_wl;

typedef struct ps_sim_proc {
    uint8_t alive;
    uint32_t down_since;       /* while failed: the failure tick */
    uint32_t fail_next;        /* index into proc_fail of its next failure */
    double cpu_load, mem_load; /* hosted demand + transfers in flight to it */
    uint32_t first, n_hosted;  /* hosted workloads (transfers away included) */
    uint32_t in_head;          /* transfers in flight to it */
    uint32_t sh_head, sh_tail; /* shifts off it whose horizon is open */
    uint32_t heap_pos;         /* in the load heap, PS_SIM_NONE while failed */
} ps_sim_proc;

typedef enum ps_sim_end {
    PS_SIM_IN_FLIGHT = 0,
    PS_SIM_COMMITTED = 1,     /* the workload runs on the destination */
    PS_SIM_FAILED = 2,        /* the copy failed (probability q): it stays on the source */
    PS_SIM_DEST_FAILED = 3,   /* the destination failed, or was failed when asked */
    PS_SIM_SOURCE_FAILED = 4, /* the source failed mid-copy: restarted on the destination */
} ps_sim_end;

typedef enum ps_sim_outcome {
    PS_SIM_PENDING = 0,
    PS_SIM_AVERTED = 1,     /* the source failed within H of the start */
    PS_SIM_UNNECESSARY = 2, /* it did not */
    PS_SIM_DISRUPTIVE = 3,  /* the transfer failed, or its commit overloaded the destination */
} ps_sim_outcome;

/* A shift: a transfer a policy asked for. Its id is its index. */
typedef struct ps_sim_transfer {
    uint32_t workload, src, dst;
    uint32_t start;            /* tick requested */
    uint32_t end;              /* scheduled end while in flight, then the tick it ended */
    uint32_t outcome_tick;     /* when the outcome was decided */
    uint8_t status;            /* ps_sim_end */
    uint8_t outcome;           /* ps_sim_outcome */
    uint8_t overloaded;        /* the commit left the destination beyond capacity */
    uint8_t expired;           /* the horizon passed while it was in flight */
    uint8_t open;              /* in its source's open-horizon list */
    uint32_t in_next, in_prev; /* destination's in-flight list */
    uint32_t sh_next, sh_prev; /* source's open-horizon list */
} ps_sim_transfer;

typedef struct ps_sim_results {
    uint32_t ticks;
    double tick_seconds;
    uint64_t failures;               /* processor failures in the run */
    uint64_t failures_averted;       /* shifted off within H before, nothing left on it */
    uint64_t failures_partial;       /* shifted off within H before, something left on it */
    uint64_t failures_missed;        /* no shift within H before, workloads on it */
    uint64_t failures_idle;          /* no shift, nothing on it */
    uint64_t interruptions;          /* episodes: a running workload stops running */
    uint64_t interrupted_ticks;      /* workload-ticks not running */
    double interrupted_minutes;      /* interrupted_ticks x tick_seconds / 60 */
    double interrupted_crit_minutes; /* the same weighted by criticality */
    uint64_t shifts;                 /* transfers started by the policy */
    uint64_t committed, failed, dest_failed, source_failed, in_flight;
    uint64_t averted, unnecessary, disruptive, pending; /* shift outcomes */
    uint64_t overloaded;  /* commits that left their destination beyond capacity */
    uint64_t failovers;   /* restarts elsewhere (reactive), no state copied */
    uint32_t *lead_ticks; /* per averted failure: f - first shift off it within H */
    uint64_t n_lead;
    double *cum_interrupted_minutes; /* [ticks]: after each tick */
    uint32_t *cum_unnecessary;       /* [ticks]: unnecessary shifts decided by each tick */
} ps_sim_results;

void ps_sim_results_free(ps_sim_results *r);

typedef struct ps_sim_world ps_sim_world;

typedef enum ps_sim_policy_kind {
    PS_SIM_REACTIVE = 0, /* failover after failure_timeout ticks of silence */
    PS_SIM_NAIVE = 1,    /* threshold on raw cpu / memory metrics, plus reactive */
    PS_SIM_ORACLE = 2,   /* knows the failure schedule: moves just in time, plus reactive */
    PS_SIM_EXTERNAL = 3, /* decide() from outside (the real manager), reactive optional */
} ps_sim_policy_kind;

/* An external policy's tick: observe w, call ps_sim_shift / ps_sim_failover. 0 or < 0. */
typedef int (*ps_sim_decide_fn)(void *ctx, ps_sim_world *w, char *err, size_t errlen);

typedef struct ps_sim_policy {
    ps_sim_policy_kind kind;
    /* naive: a processor with metric[cpu_col] or metric[mem_col] above threshold for
       hold consecutive ticks is emptied; a column < 0 is not used. */
    int naive_cpu_col, naive_mem_col;
    float naive_threshold;
    uint32_t naive_hold;
    /* oracle: a workload starts moving at f - transfer_ticks - margin. */
    uint32_t oracle_margin;
    /* external: called each tick (may be NULL: the caller drives between begin and end). */
    ps_sim_decide_fn decide;
    void *ctx;
    int reactive_fallback; /* external: also run the reactive failover (1) or not (0) */
} ps_sim_policy;

ps_sim_policy ps_sim_policy_default(ps_sim_policy_kind kind);
const char *ps_sim_policy_name(ps_sim_policy_kind kind);

struct ps_sim_world {
    const ps_sim_scenario *sc;
    ps_sim_policy pol;
    uint32_t t;  /* the current tick; T once the run is over */
    int in_tick; /* between begin and end */
    ps_sim_proc *proc;
    ps_sim_wl *wl;
    ps_sim_transfer *tr;
    uint32_t n_tr, cap_tr;
    /* Scheduled ends, one FIFO list per tick: [0] transfers, [1] restarts. */
    uint32_t *ev_head[2], *ev_tail[2];
    uint32_t *ev_val, *ev_next;
    uint32_t n_ev, cap_ev;
    /* Open horizons in start order: tr indices from hz_pos. */
    uint32_t *hz;
    uint32_t hz_pos, n_hz, cap_hz;
    /* This tick's lists. */
    uint32_t *ends, n_ends, cap_ends;             /* transfers that ended */
    uint32_t *outcomes, n_outcomes, cap_outcomes; /* shifts whose outcome was decided */
    uint32_t *detected, n_detected;               /* processors detected failed */
    /* Load heap of alive processors and scratch for the best-first walk. */
    uint32_t *heap, n_heap;
    double *key;
    uint32_t *walk;
    uint32_t n_interrupted;
    double crit_interrupted;
    ps_sim_results res;
    uint32_t cap_lead;
    void *policy_state; /* the core policy's own */
};

/* A world at tick 0 with the scenario's initial placement. */
int ps_sim_world_init(ps_sim_world *w, const ps_sim_scenario *sc, const ps_sim_policy *pol,
                      char *err, size_t errlen);
void ps_sim_world_free(ps_sim_world *w);

/*
 * Apply tick t's ground truth. 1, or 0 when the run is over (t == T);
 * PS_EINVAL if the tick has begun already, PS_ENOMEM (the run is then over).
 */
int ps_sim_world_begin_tick(ps_sim_world *w);
/*
 * The policy's turn: the reactive failover first (every kind but an
 * external one without reactive_fallback), then the naive or oracle moves,
 * or the external decide (when not NULL). An external caller that drives
 * the tick itself calls this too, to get the fallback.
 */
int ps_sim_world_decide(ps_sim_world *w, char *err, size_t errlen);
/* Count the tick and move to the next. */
void ps_sim_world_end_tick(ps_sim_world *w);
/* begin + decide + end: 1, 0 when over, < 0 on a policy error. */
int ps_sim_world_step(ps_sim_world *w, char *err, size_t errlen);
/* The results so far (counters of outcomes pending and transfers in flight up to date). */
const ps_sim_results *ps_sim_world_results(ps_sim_world *w);

/* A whole run; out owns its arrays (ps_sim_results_free). */
int ps_sim_run(const ps_sim_scenario *sc, const ps_sim_policy *pol, ps_sim_results *out, char *err,
               size_t errlen);

/* ---- what a policy may observe */

static inline uint32_t ps_sim_now(const ps_sim_world *w)
{
    return w->t;
}
/* 1 if p sent this tick's heartbeat. */
static inline int ps_sim_reported(const ps_sim_world *w, uint32_t p)
{
    return w->proc[p].alive;
}
/* Ticks since p's last heartbeat: 0 if it reported this tick. */
static inline uint32_t ps_sim_silence(const ps_sim_world *w, uint32_t p)
{
    return w->proc[p].alive ? 0 : w->t - w->proc[p].down_since + 1;
}
/* Processors whose silence exceeded failure_timeout at this tick (reactive detection). */
static inline const uint32_t *ps_sim_detected(const ps_sim_world *w, size_t *n)
{
    *n = w->n_detected;
    return w->detected;
}
/* This tick's heartbeat of p: 1 and row[cols] written, or 0 (silent). */
int ps_sim_heartbeat(const ps_sim_world *w, uint32_t p, float *row);
/* Utilization of p from hosted demand (and transfers in flight to it), shares of capacity. */
void ps_sim_utilization(const ps_sim_world *w, uint32_t p, double *cpu, double *mem);
/* The oracle's privilege: p's next failure tick (>= now), PS_SIM_NONE if none. */
uint32_t ps_sim_next_failure(const ps_sim_world *w, uint32_t p);
/* Transfers that ended this tick (begin's, then immediate ends of this tick's requests). */
static inline const uint32_t *ps_sim_transfer_ends(const ps_sim_world *w, size_t *n)
{
    *n = w->n_ends;
    return w->ends;
}
/* Shifts whose outcome was decided this tick. */
static inline const uint32_t *ps_sim_outcomes(const ps_sim_world *w, size_t *n)
{
    *n = w->n_outcomes;
    return w->outcomes;
}

/* ---- what a policy may do */

/*
 * Start moving workload wl to dest (a shift): its state is copied for
 * transfer_ticks ticks while it keeps running on its host, its demand is
 * reserved on dest meanwhile. Refused (PS_SIM_EREFUSED) for a failed host,
 * a transfer already in flight, dest == host, or a replica of its group on
 * or heading to dest; PS_EINVAL for bad ids. A failed dest is accepted and
 * ends at once as PS_SIM_DEST_FAILED. *id (may be NULL) gets the transfer's id.
 */
int ps_sim_shift(ps_sim_world *w, uint32_t wl, uint32_t dest, uint32_t *id, char *err,
                 size_t errlen);
/*
 * Restart wl on dest now, without its state (reactive failover): it runs
 * there after restart_ticks. Refused for a failed dest, dest == host, a
 * transfer in flight or a replica conflict.
 */
int ps_sim_failover(ps_sim_world *w, uint32_t wl, uint32_t dest, char *err, size_t errlen);

/* Extra condition on a target (NULL: none). */
typedef int (*ps_sim_target_ok)(void *ctx, const ps_sim_world *w, uint32_t wl, uint32_t p);
/*
 * The alive processor with the least load (max of cpu and memory shares,
 * ties by id) that is not wl's host, has room for wl's demand, holds and
 * receives no replica of its group, and passes ok. PS_SIM_NONE if none.
 */
uint32_t ps_sim_find_target(ps_sim_world *w, uint32_t wl, ps_sim_target_ok ok, void *ctx);

/* 1 if a member of wl's group other than wl sits on or is heading to p. */
int ps_sim_group_touches(const ps_sim_world *w, uint32_t wl, uint32_t p);

#endif
