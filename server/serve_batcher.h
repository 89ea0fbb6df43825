/*
 * serve_batcher.h - gathers the heartbeats of many score requests into one
 * scorer tick, on the one thread that owns the kernels.
 *
 * Network callbacks submit decoded requests; submitting takes the queue
 * mutex for a few instructions and never waits for scoring: a full queue
 * answers PS_PROTO_E_BUSY at once. The scoring thread creates the backend
 * and the scorer (so the kernels, BLAS and any device context live on one
 * thread), pulls requests off the queue in arrival order and admits them
 * into the tick being assembled:
 *
 *   - each heartbeat is resolved against its processor: a new processor
 *     beyond --max-processors is `rejected`, seq <= the last accepted seq is
 *     `duplicate`, ts <= the last accepted ts is `stale` (these repeat the
 *     processor's latest result); the rest go into the tick;
 *   - a request whose processor already has a heartbeat in the tick waits,
 *     whole, for the next tick (a tick holds one heartbeat per processor),
 *     and so does every later request for any of its processors, so each
 *     processor's heartbeats are scored in arrival order;
 *   - a request with nothing to score is answered at once (tick 0).
 *
 * A latest request (op LATEST) goes through the same queue but is never
 * admitted into a tick: it is answered as soon as the scoring thread pulls
 * it, from the processor table. Items are pulled in arrival order, so every
 * score request queued before it has been admitted into the tick being
 * assembled (or deferred) by then, but that tick may not have run yet: the
 * answer reflects every tick run so far (its tick is the last one) and no
 * heartbeat still waiting for its tick.
 *
 * The tick closes when every expected processor has reported (as many
 * heartbeats as processors reported within --stale-after), when
 * --batch-delay has passed since its first heartbeat was queued, or when it
 * holds --max-batch heartbeats. Then ps_scorer_tick runs once, every request
 * in it is completed, and the scored records are handed to `publish` with
 * their heartbeats' metrics.
 *
 * The scoring thread also owns durability: it restores the state file
 * before it reports started, snapshots every processor (with its id, last
 * seq and time, latest result) every snapshot_every seconds and once more
 * when stopped, and forgets processors silent for evict_after seconds.
 *
 * Callbacks (done, publish) run on the scoring thread and must not block.
 */
#ifndef PRESHIFT_SERVE_BATCHER_H
#define PRESHIFT_SERVE_BATCHER_H

#include "core/model.h"
#include "core/scorer.h"
#include "serve_metrics.h"
#include "server/protocol.h"
#include "server/state_file.h"

#include <stdint.h>

/* One score or latest request on its way through the batcher; owned by the caller. */
typedef struct ps_batch_item {
    struct ps_batch_item *next;  /* private */
    const ps_proto_request *req; /* decoded: op SCORE (K already checked) or LATEST */
    ps_proto_result *results;    /* req->n entries, filled in (ps_batch_item_reserve) */
    double *ts;                  /* op LATEST: req->n last heartbeat times, filled in */
    uint32_t *pos;               /* private: index in the tick, or UINT32_MAX */
    size_t cap;                  /* entries of results, ts and pos */
    double queued;               /* private: monotonic time of submission */
    uint64_t checked;            /* private: generation it was last deferred in */
    uint64_t tick;               /* out: the tick that scored it, 0 for none;
                                  * op LATEST: the last tick run when answered */
} ps_batch_item;

/* Make room for n results; 0 or -1 when out of memory. */
int ps_batch_item_reserve(ps_batch_item *it, size_t n);
void ps_batch_item_free(ps_batch_item *it);

/*
 * Completion of a submitted item: code PS_PROTO_OK (results and tick set,
 * and ts for op LATEST), PS_PROTO_E_UNAVAILABLE (the batcher stopped before
 * scoring or answering it) or PS_PROTO_E_INTERNAL (the tick failed; message
 * says why).
 */
typedef void (*ps_batch_done_fn)(void *user, ps_batch_item *it, int code, const char *message);
/* The scored records of one tick, in tick order, and the metrics of their
 * heartbeats: x holds n rows of k floats, row i for records[i]; t is
 * wall-clock time. */
typedef void (*ps_batch_publish_fn)(void *user, uint64_t tick, double t,
                                    const ps_proto_record *records, size_t n, uint32_t k,
                                    const float *x);

typedef struct ps_batcher_config {
    const ps_model *model;   /* read while the scoring thread starts, in ps_batcher_start */
    ps_scorer_config scorer; /* processors, metrics and warmup set */
    ps_backend_params backend;
    size_t max_batch, max_queue;
    double batch_delay, stale_after; /* seconds */
    uint64_t seed;                   /* keys the processor table's hash */
    const char *state_path;          /* snapshot file, NULL = none */
    double snapshot_every;           /* seconds between snapshots */
    double evict_after;              /* seconds of silence before eviction, 0 = never */
    ps_serve_metrics *metrics;
    ps_batch_done_fn done;
    ps_batch_publish_fn publish; /* may be NULL */
    void *user;
} ps_batcher_config;

typedef struct ps_batcher ps_batcher;

/*
 * Start the scoring thread and wait until it has created the backend and
 * the scorer. NULL with the reason in err when anything fails.
 */
ps_batcher *ps_batcher_start(const ps_batcher_config *cfg, char *err, size_t errlen);

/*
 * What the scoring thread restored from cfg->state_path before it started
 * (info.found = 0: there was no file). A file that cannot be restored (torn,
 * corrupt, from another configuration) stops ps_batcher_start instead.
 */
ps_state_load_info ps_batcher_restored(const ps_batcher *b);

/* "cpu (avx2)" and the like, for info replies. */
const char *ps_batcher_backend(const ps_batcher *b);

/*
 * Queue an item (from any thread, never blocking on scoring; a latest
 * request counts no heartbeats against max_queue). PS_PROTO_OK:
 * `done` will be called for it exactly once, possibly before this returns
 * to its caller's caller; PS_PROTO_E_BUSY (queue full) or
 * PS_PROTO_E_UNAVAILABLE (stopping): it was not queued.
 */
int ps_batcher_submit(ps_batcher *b, ps_batch_item *it);

/*
 * Stop: every item still queued or waiting for its tick is completed with
 * PS_PROTO_E_UNAVAILABLE, the thread frees the scorer and backend and is
 * joined. Later submissions get PS_PROTO_E_UNAVAILABLE, so network
 * callbacks may still run until their socket is closed; free b after that.
 */
void ps_batcher_stop(ps_batcher *b);
/* Free a stopped batcher (stopping it first if needed). NULL is fine. */
void ps_batcher_free(ps_batcher *b);

#endif
