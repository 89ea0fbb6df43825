/*
 * manage_internal.h - the shifting manager's state, shared by its files:
 *
 *   manage.c           start, load and recover, the thread's loop, stop
 *   manage_stream.c    PFP stream: records into the cluster, gaps, op latest, ticks
 *   manage_shift.c     a decision pass, transfers begun and finished, outcomes, learning
 *   manage_failover.c  the reactive fallback: silent processors failed over
 *   manage_control.c   the control socket: declarations, removals, show
 *   manage_metrics.c   counters, /metrics /healthz /readyz
 *
 * Everything here is owned by the manager thread (after start returns);
 * only ps_manage_metrics is read by nng's HTTP threads, under its mutex.
 */
#ifndef PRESHIFT_MANAGE_INTERNAL_H
#define PRESHIFT_MANAGE_INTERNAL_H

#include "manage.h"

#include "client.h"
#include "core/policy.h"
#include "core/threshold.h"
#include "store.h"
#include "transfer.h"
#include "workload_file.h"

#include "kernels/kernels.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct ps_manage_metrics ps_manage_metrics;

/* Per processor slot. */
typedef struct mg_proc {
    double last_seen; /* stream time of its latest record; NAN = not seen since start */
    uint8_t failover; /* failed: its workloads wait to be moved off */
    uint8_t stuck;    /* a failover found no room: said once */
} mg_proc;

/* A transfer begun: queued (not yet handed to ps_transfers) or in flight. */
typedef struct mg_xfer {
    int64_t id;
    ps_transfer_kind kind;
    uint32_t w, src, dst; /* slots */
    uint8_t submitted, recover;
    double expected; /* seconds, the policy's estimate */
    double retry_at; /* monotonic seconds: a recovery waits until then */
} mg_xfer;

/* A committed shift waiting for its outcome. */
typedef struct mg_pending {
    int64_t id;
    uint32_t src, dst, cls;
    double since; /* stream time of the commit */
} mg_pending;

/* A target passed over for a workload after it refused (or failed) it. */
typedef struct mg_backoff {
    uint32_t w, target;
    double until; /* stream time */
} mg_backoff;

/* One --subscribe (and its --server). */
typedef struct mg_sub {
    ps_subscriber *sub;
    ps_client *server; /* NULL without --server */
    uint8_t in_round;  /* delivered since the last pass */
    uint8_t want_latest;
    double last; /* stream time of its last message; NAN = none yet */
} mg_sub;

struct ps_manage {
    ps_manage_config cfg;
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    char log_prefix[32];

    ps_store *store;
    ps_cluster c;
    ps_names names;
    ps_trigger trig;
    ps_policy pol;
    ps_placement_ws pws; /* re-placements and failover checks outside a pass */
    ps_thresholds th;
    double thr[PS_THRESHOLD_MAX_CLASSES];
    ps_decision *dec; /* [max_workloads] one pass */
    int64_t *dec_ids;
    mg_proc *procs; /* [max_processors] */
    /* processor id -> slot, open addressing, slot + 1 (0 = empty) */
    uint64_t *ix_key;
    uint32_t *ix_slot, ix_cap;

    mg_sub subs[PS_MANAGE_MAX_SUBS];
    int n_subs;
    double now, start; /* stream time; NAN before the first record */
    int64_t tick;      /* decision passes */

    ps_transfers *xf;
    mg_xfer *xfers;
    size_t n_xfers, cap_xfers;
    int64_t next_id;
    mg_pending *pending;
    size_t n_pending, cap_pending;
    mg_backoff *backoff;
    size_t n_backoff, cap_backoff;
    double obs_seconds, exp_seconds; /* transfers finished since the last environment sample */
    double load_sum;                 /* mean utilization summed over the passes since then */
    uint32_t load_n;
    double env_at; /* stream time of the last sample; NAN before the first pass */

    nng_socket ctl;
    int ctl_open;

    ps_manage_stats st; /* the thread's counters; published to metrics */
    ps_manage_metrics *metrics;
    void *http;
};

/* Log one line to stderr (unless quiet). */
void mg_log(ps_manage *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Errors are printed even when quiet. */
void mg_error(ps_manage *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stream time in milliseconds for the store (0 = the store's wall clock). */
int64_t mg_now_ms(const ps_manage *m);
/* Room for one more element of a growing array; 0 or -1 (out of memory). */
int mg_reserve(void **arr, size_t n, size_t *cap, size_t size);
#define MG_RESERVE(arr, n, cap) mg_reserve((void **)&(arr), (n), &(cap), sizeof *(arr))
/* Monotonic wall-clock seconds (transfer retries only: decisions use stream time). */
double mg_mono(void);

/* The id index: rebuilt whenever processors change. 0 or PS_ENOMEM. */
int mg_index_build(ps_manage *m);
uint32_t mg_index_find(const ps_manage *m, uint64_t id);

/* manage_stream.c */
int mg_stream_open(ps_manage *m, char *err, size_t errlen);
void mg_stream_close(ps_manage *m);
/* Receive and apply what is there (waiting up to wait_ms); 1 if anything came. */
int mg_stream_poll(ps_manage *m, int wait_ms);
/* Utilizations of processor p from a heartbeat's metrics (x NULL or k too small: demand). */
void mg_apply_load(ps_manage *m, uint32_t p, const float *x, uint32_t k);

/* manage_shift.c */
void mg_pass(ps_manage *m);
int64_t mg_begin(ps_manage *m, uint32_t w, uint32_t dst, ps_transfer_kind kind, double pfp,
                 double threshold, double expected, const char *reason);
void mg_submit_queued(ps_manage *m);
void mg_poll_transfers(ps_manage *m);
void mg_finish(ps_manage *m, size_t i, int committed, const char *note, double seconds);
void mg_outcome(ps_manage *m, int64_t id, uint32_t cls, ps_outcome o, const char *why);
void mg_learn(ps_manage *m, uint32_t cls, ps_outcome o);
int mg_in_backoff(const ps_manage *m, uint32_t w, uint32_t target);
/* Hide w's backed-off targets from placement (alive = 0 for the call); returns how many. */
size_t mg_hide_backoff(ps_manage *m, uint32_t w, uint32_t *hidden, size_t cap);
void mg_unhide(ps_manage *m, const uint32_t *hidden, size_t n);
/* Forget everything that names processor p or workload w (PS_NONE for neither). */
void mg_forget(ps_manage *m, uint32_t p, uint32_t w);

/* manage_failover.c */
void mg_detect_failures(ps_manage *m);
void mg_failover(ps_manage *m);
void mg_revive(ps_manage *m, uint32_t p);

/* manage_control.c */
int mg_control_open(ps_manage *m, char *err, size_t errlen);
void mg_control_poll(ps_manage *m);
void mg_control_close(ps_manage *m);

/* manage_metrics.c */
int mg_metrics_init(ps_manage *m);
void mg_metrics_free(ps_manage *m);
void mg_metrics_set_ready(ps_manage *m, int ready, int stopping);
/* Copy the thread's counters and gauges for /metrics and ps_manage_get_stats. */
void mg_metrics_publish(ps_manage *m);
int mg_http_start(ps_manage *m, char *err, size_t errlen);
void mg_http_stop(ps_manage *m);

#endif
