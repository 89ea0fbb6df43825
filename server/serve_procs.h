/*
 * serve_procs.h - the processors the scoring server knows: uint64 ids from
 * the wire mapped to the dense slots of the scorer, and what the server
 * remembers of each (last seq and heartbeat time, latest result).
 *
 * Slots are handed out in order of first appearance and never given back:
 * eviction of idle processors (issue 4) is the hook ps_procs_evict would
 * fill, and a durable snapshot would save rec[0 .. n) with the scorer's state.
 *
 * The table is open addressing over a power-of-two array of slot numbers,
 * probed linearly. Ids come from the network, so the hash is keyed with a
 * per-table random seed: a sender cannot pick ids that all collide.
 * Owned by the scoring thread; not thread-safe.
 */
#ifndef PRESHIFT_SERVE_PROCS_H
#define PRESHIFT_SERVE_PROCS_H

#include "server/protocol.h"

#include <stdint.h>

typedef struct ps_proc_rec {
    uint64_t id;
    uint64_t last_seq;      /* of the last heartbeat scored or kept for warm-up */
    double last_ts;         /* its timestamp (seconds since the epoch) */
    double last_seen;       /* server monotonic time it arrived */
    ps_proto_result latest; /* latest result (state scored), zeros and top -1 before */
    uint8_t accepted;       /* a heartbeat was scored or kept: last_* are valid */
    uint8_t scored;         /* the scorer has finished its warm-up */
    uint64_t mark;          /* batcher: generation of the tick holding a heartbeat of it */
    uint64_t blocked;       /* batcher: generation in which a queued request waits for it */
} ps_proc_rec;

typedef struct ps_procs {
    size_t cap, n;    /* slots available, slots used */
    ps_proc_rec *rec; /* cap entries; slot i is rec[i] */
    uint32_t *table;  /* slot + 1, 0 = empty; mask + 1 entries */
    size_t mask;
    uint64_t seed;
} ps_procs;

/* 0, or -1 when out of memory. seed keys the hash. */
int ps_procs_init(ps_procs *p, size_t cap, uint64_t seed);
void ps_procs_free(ps_procs *p);

/* Slot of id, or -1 when unknown. */
long ps_procs_find(const ps_procs *p, uint64_t id);
/* Slot of id, taking a new one when unknown; -1 when every slot is taken. */
long ps_procs_get(ps_procs *p, uint64_t id);

#endif
