/*
 * serve_metrics.h - what the scoring server counts, rendered in the
 * Prometheus text format for /metrics.
 *
 * One mutex guards everything: updates are a handful of additions per
 * request or tick, far cheaper than the decode or the tick around them, and
 * a single lock keeps a scrape consistent (a batch is never counted in the
 * histogram but not in the total). No label carries a processor id:
 * per-processor values belong on the PUB stream.
 */
#ifndef PRESHIFT_SERVE_METRICS_H
#define PRESHIFT_SERVE_METRICS_H

#include "server/protocol.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define PS_HIST_MAX_BUCKETS 24

typedef struct ps_histogram {
    const double *bounds; /* upper bounds, increasing; +Inf is implicit */
    size_t nbounds;
    uint64_t counts[PS_HIST_MAX_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
} ps_histogram;

/*
 * Where the server's time goes, summed over requests and ticks: decoding
 * requests (on nng's threads), batching (admitting heartbeats into ticks and
 * handing results back), scoring (the scorer's tick: the kernels), encoding
 * and sending replies, and publishing the stream.
 */
enum {
    PS_STAGE_DECODE = 0,
    PS_STAGE_BATCH = 1,
    PS_STAGE_SCORE = 2,
    PS_STAGE_REPLY = 3,
    PS_STAGE_PUBLISH = 4,
    PS_NSTAGES = 5
};
extern const char *const ps_stage_names[PS_NSTAGES];

/* Processor states counted for info and /metrics. */
enum { PS_PROCS_WARMING = 0, PS_PROCS_SCORED = 1, PS_PROCS_STALE = 2, PS_PROCS_NSTATES = 3 };

typedef struct ps_serve_metrics {
    pthread_mutex_t mu;
    double started;                        /* monotonic seconds */
    uint64_t requests[PS_PROTO_NOPS];      /* by decoded op; NONE = undecodable */
    uint64_t errors[PS_PROTO_NCODES];      /* error replies by code */
    uint64_t heartbeats[PS_PROTO_NSTATES]; /* by outcome (never UNKNOWN: latest replies only) */
    uint64_t batches;
    ps_histogram batch_size;   /* heartbeats per tick */
    ps_histogram tick_seconds; /* ps_scorer_tick alone */
    ps_histogram latency;      /* request received -> reply handed to nng, score requests */
    uint64_t queue_heartbeats; /* gauge: heartbeats submitted, not yet answered */
    uint64_t queue_requests;   /* gauge: likewise, requests (score and latest) */
    uint64_t processors[PS_PROCS_NSTATES]; /* gauge, refreshed by the scoring thread */
    uint64_t tick;                         /* last tick scored */
    uint64_t published_records, published_messages, publish_failures;
    uint64_t subscribers; /* gauge: connections to the PUB socket now */
    double stage_seconds[PS_NSTAGES];
    uint64_t evicted;  /* processors forgotten after --evict-after */
    uint64_t restored; /* gauge: processors restored at start */
    uint64_t snapshots, snapshot_failures;
    double snapshot_seconds;      /* gauge: duration of the last snapshot */
    uint64_t snapshot_processors; /* gauge: processors in it */
    double snapshot_time;         /* gauge: wall-clock time of the last good one, 0 = none */
    int ready;                    /* model loaded and state restored */
    int stopping;                 /* shutting down */
} ps_serve_metrics;

/* Monotonic clock, seconds. */
double ps_serve_now(void);

int ps_serve_metrics_init(ps_serve_metrics *m);
void ps_serve_metrics_destroy(ps_serve_metrics *m);

/* A request received and decoded (or not) in decode_seconds. */
void ps_serve_metrics_request(ps_serve_metrics *m, int op, double decode_seconds);
void ps_serve_metrics_error(ps_serve_metrics *m, int code);
/* A score request answered: its latency and the time its reply took to build and send. */
void ps_serve_metrics_reply(ps_serve_metrics *m, double latency, double reply_seconds);
/* A latest request answered: the time its reply took (not a scoring latency). */
void ps_serve_metrics_latest(ps_serve_metrics *m, double reply_seconds);

/* Adds x to h; the caller holds m->mu. */
void ps_histogram_observe(ps_histogram *h, double x);

/* A consistent copy of the gauges info and health report. */
typedef struct ps_serve_status {
    uint64_t processors[PS_PROCS_NSTATES];
    uint64_t tick;
    double uptime;
    int ready, stopping;
} ps_serve_status;
ps_serve_status ps_serve_metrics_status(ps_serve_metrics *m);

/* The Prometheus text exposition (format 0.0.4) of everything above. */
void ps_serve_metrics_render(ps_serve_metrics *m, FILE *out);

#endif
