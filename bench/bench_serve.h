/*
 * bench_serve.h - the end-to-end benchmark behind `preshift bench serve`.
 *
 * It starts a real scoring server in this process (tcp loopback, the PUB
 * stream on, HTTP off) and drives it with C client threads, each owning a
 * share of the processors and sending their heartbeats as columnar score
 * requests, a window of requests in flight on REQ contexts. Every run
 * warms its processors up first (not measured), then measures either
 * paced (each processor one heartbeat per second, as a fleet reports) or
 * as fast as the server answers. It reports heartbeats and processor-metric
 * values scored per second, request latency percentiles (send to reply,
 * measured by the client), and where the server's time went (decode,
 * batching, kernels, reply, publish).
 */
#ifndef PRESHIFT_BENCH_SERVE_H
#define PRESHIFT_BENCH_SERVE_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdio.h>

#define PS_BENCH_SERVE_MAX_LIST 16

typedef enum ps_bench_pace {
    PS_BENCH_PACED = 1, /* one tick per second per processor */
    PS_BENCH_MAX = 2,   /* as fast as possible */
    PS_BENCH_BOTH = 3,
} ps_bench_pace;

typedef struct ps_bench_serve_opts {
    long processors[PS_BENCH_SERVE_MAX_LIST];
    size_t n_processors;
    long metrics;       /* K */
    long clients;       /* client threads */
    long request;       /* heartbeats per request */
    long window;        /* requests in flight per client */
    double duration;    /* measured seconds per run */
    long warmup;        /* the server's --warmup */
    long threads;       /* kernel threads, 0 = all cores */
    double batch_delay; /* the server's --batch-delay, seconds */
    ps_bench_pace pace;
    ps_backend_kind backend;
    const char *state_dir; /* NULL, or snapshot each run's state there at stop and time it */
    int json;
} ps_bench_serve_opts;

void ps_bench_serve_defaults(ps_bench_serve_opts *o);

/* Run every configuration; 0, or 1 when a run failed (said on err). */
int ps_bench_serve(const ps_bench_serve_opts *o, FILE *out, FILE *err);

#endif
