/*
 * serve_procs.h - the processors the scoring server knows: uint64 ids from
 * the wire mapped to the dense slots of the scorer, and what the server
 * remembers of each (last seq and heartbeat time, latest result).
 *
 * A new id takes a free slot: one given back by eviction (ps_procs_remove)
 * if any, else the next never used. `hi` bounds the slots ever used, so a
 * scan of rec[0 .. hi) that skips unused entries sees every processor.
 *
 * The table is open addressing over a power-of-two array of slot numbers,
 * probed linearly; removal shifts the probe chain back instead of leaving
 * tombstones, so a table that churns never fills with them. Ids come from
 * the network, so the hash is keyed with a per-table random seed: a sender
 * cannot pick ids that all collide. Owned by the scoring thread; not
 * thread-safe.
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
    uint8_t used;           /* the slot belongs to a processor */
    uint8_t accepted;       /* a heartbeat was scored or kept: last_* are valid */
    uint8_t scored;         /* the scorer has finished its warm-up */
    uint64_t mark;          /* batcher: generation of the tick holding a heartbeat of it */
    uint64_t blocked;       /* batcher: generation in which a queued request waits for it */
} ps_proc_rec;

typedef struct ps_procs {
    size_t cap, n;    /* slots available, slots used */
    size_t hi;        /* every used slot is below hi */
    ps_proc_rec *rec; /* cap entries; slot i is rec[i] */
    uint32_t *free;   /* slots below hi given back, a stack */
    size_t nfree;
    uint32_t *table; /* slot + 1, 0 = empty; mask + 1 entries */
    size_t mask;
    uint64_t seed;
} ps_procs;

/* 0, or -1 when out of memory. seed keys the hash. */
int ps_procs_init(ps_procs *p, size_t cap, uint64_t seed);
void ps_procs_free(ps_procs *p);

/* Slot of id, or -1 when unknown. */
long ps_procs_find(const ps_procs *p, uint64_t id);
/* Slot of id, taking a free one when unknown; -1 when every slot is taken. */
long ps_procs_get(ps_procs *p, uint64_t id);
/*
 * Give id this very slot, restoring a snapshot into a table that has given
 * no slot back: 0, or -1 when the slot is out of range or used, id is known
 * already, or slots were given back. Call ps_procs_restored after the last
 * one, so that the slots left between them are free again.
 */
int ps_procs_put(ps_procs *p, uint64_t id, uint32_t slot);
void ps_procs_restored(ps_procs *p);
/* Forget the processor in slot (no-op for an unused one); its slot is free. */
void ps_procs_remove(ps_procs *p, uint32_t slot);

#endif
