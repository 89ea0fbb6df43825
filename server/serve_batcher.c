/*
 * serve_batcher.c - the queue between the network and the scorer, and the
 * scoring thread.
 *
 * Two mutexes at most are ever held together, always in the same order:
 * the batcher's `mu` (the submission queue and its counters), then the
 * metrics mutex. Everything else here (the processor table, the tick being
 * assembled, the scorer) belongs to the scoring thread alone and is touched
 * without locks.
 *
 * An item's life: submitted (on `head`, counted in `queued`), pulled by the
 * scoring thread (on `pending`), admitted (on `in_tick`, its heartbeats
 * copied into the tick's arrays) or answered at once, then completed when its
 * tick has run. A latest request is always answered at once, from the
 * processor table. Results live in the item, so the scoring thread never
 * allocates per request.
 */
#include "serve_batcher.h"

#include "core/bytes.h"
#include "core/error.h"
#include "serve_procs.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_POS UINT32_MAX

struct ps_batcher {
    ps_batcher_config cfg;
    size_t K, P;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t wake;    /* new items or stop, for the scoring thread */
    pthread_cond_t started; /* setup finished, for ps_batcher_start */
    int start_state;        /* 0 starting, 1 running, -1 failed */
    char start_err[512];
    int stop;
    ps_batch_item *head, *tail; /* submitted, not yet pulled */
    size_t queued, queued_requests;

    /* The scoring thread's own. */
    ps_backend *be;
    ps_scorer *sc;
    char backend_name[256];
    ps_procs procs;
    ps_batch_item *pending, *pending_tail; /* pulled, waiting for a tick */
    ps_batch_item *in_tick, *in_tick_tail; /* admitted into the tick being assembled */
    size_t count;                          /* heartbeats in that tick */
    double first_queued;                   /* submission time of its oldest item */
    uint64_t gen;                          /* generation of that tick (marks in procs) */
    uint64_t tick_no;                      /* last tick scored */
    size_t active;                         /* processors heard from within stale_after */
    double next_refresh, next_snapshot;
    double in_callbacks;  /* seconds spent in done and publish, which serve.c counts */
    double batch_seconds; /* batching work not yet added to the metrics */
    ps_state_load_info restored;
    /* The tick's arrays, one entry per heartbeat: at most one per processor. */
    uint32_t *t_procs, *t_idx;
    double *t_ts;
    float *t_x;
    ps_score *t_out;
    ps_batch_item **t_item;
    ps_proto_record *records; /* the tick's scored records, for publish */
    float *records_x;         /* their heartbeats' metrics, K per record */
};

int ps_batch_item_reserve(ps_batch_item *it, size_t n)
{
    if (n <= it->cap) return 0;
    ps_proto_result *r = realloc(it->results, n * sizeof *r);
    if (!r) return -1;
    it->results = r;
    double *t = realloc(it->ts, n * sizeof *t);
    if (!t) return -1;
    it->ts = t;
    uint32_t *p = realloc(it->pos, n * sizeof *p);
    if (!p) return -1;
    it->pos = p;
    it->cap = n;
    return 0;
}

void ps_batch_item_free(ps_batch_item *it)
{
    free(it->results);
    free(it->ts);
    free(it->pos);
    it->results = NULL;
    it->ts = NULL;
    it->pos = NULL;
    it->cap = 0;
}

/* What an item counts against max_queue: its heartbeats (none for latest). */
static size_t heartbeats_of(const ps_batch_item *it)
{
    return it->req->op == PS_PROTO_OP_SCORE ? it->req->n : 0;
}

const char *ps_batcher_backend(const ps_batcher *b)
{
    return b->backend_name;
}

ps_state_load_info ps_batcher_restored(const ps_batcher *b)
{
    return b->restored;
}

static double wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Caller holds b->mu. */
static void queue_gauges(ps_batcher *b)
{
    ps_serve_metrics *m = b->cfg.metrics;
    pthread_mutex_lock(&m->mu);
    m->queue_heartbeats = b->queued;
    m->queue_requests = b->queued_requests;
    pthread_mutex_unlock(&m->mu);
}

int ps_batcher_submit(ps_batcher *b, ps_batch_item *it)
{
    size_t n = heartbeats_of(it);
    int rc = PS_PROTO_OK;
    pthread_mutex_lock(&b->mu);
    if (b->stop) {
        rc = PS_PROTO_E_UNAVAILABLE;
    } else if (b->queued > 0 && b->queued + n > b->cfg.max_queue) {
        /* An empty queue takes any request, so that one larger than the
         * bound is not refused forever; the bound then holds to one request. */
        rc = PS_PROTO_E_BUSY;
    } else {
        it->next = NULL;
        it->queued = ps_serve_now();
        it->checked = 0;
        it->tick = 0;
        if (b->tail)
            b->tail->next = it;
        else
            b->head = it;
        b->tail = it;
        b->queued += n;
        b->queued_requests++;
        queue_gauges(b);
        pthread_cond_signal(&b->wake);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* Hand an item back; it may be reused by its owner as soon as done runs. */
static void complete(ps_batcher *b, ps_batch_item *it, int code, const char *message)
{
    pthread_mutex_lock(&b->mu);
    b->queued -= heartbeats_of(it);
    b->queued_requests--;
    queue_gauges(b);
    pthread_mutex_unlock(&b->mu);
    double t0 = ps_serve_now();
    b->cfg.done(b->cfg.user, it, code, message);
    b->in_callbacks += ps_serve_now() - t0;
}

/* A processor silent for evict_after seconds and not waited for. */
static int idle(const ps_batcher *b, const ps_proc_rec *r, double now)
{
    return b->cfg.evict_after > 0 && r->mark != b->gen && r->blocked != b->gen &&
           now - r->last_seen > b->cfg.evict_after;
}

/*
 * Evict idle processors; count processors by state and the number expected
 * in a tick. A slot taken by a heartbeat that was never accepted (its tick
 * failed) has last_seen 0 and goes at the first look.
 */
static void refresh(ps_batcher *b, double now)
{
    uint64_t counts[PS_PROCS_NSTATES] = {0}, evicted = 0;
    size_t active = 0;
    for (size_t s = 0; s < b->procs.hi; s++) {
        const ps_proc_rec *r = &b->procs.rec[s];
        if (!r->used) continue;
        if (idle(b, r, now) && (!r->accepted || ps_scorer_forget(b->sc, (uint32_t)s) == 0)) {
            ps_procs_remove(&b->procs, (uint32_t)s);
            evicted++;
            continue;
        }
        if (!r->accepted) continue;
        if (now - r->last_seen > b->cfg.stale_after) {
            counts[PS_PROCS_STALE]++;
        } else {
            counts[r->scored ? PS_PROCS_SCORED : PS_PROCS_WARMING]++;
            active++;
        }
    }
    b->active = active;
    b->next_refresh = now + 1.0;
    ps_serve_metrics *m = b->cfg.metrics;
    pthread_mutex_lock(&m->mu);
    memcpy(m->processors, counts, sizeof counts);
    m->evicted += evicted;
    m->stage_seconds[PS_STAGE_BATCH] += b->batch_seconds;
    b->batch_seconds = 0;
    pthread_mutex_unlock(&m->mu);
}

/* ---- durability --------------------------------------------------------------- */

/*
 * What the server keeps of a processor beside its scorer state, as the
 * snapshot's per-record blob: version, flags (1 accepted, 2 scored), id,
 * last seq, last heartbeat time, latest score, PFP and top metric.
 */
enum { BLOB_VERSION = 1, BLOB_BYTES = 1 + 1 + 8 + 8 + 8 + 4 + 8 + 4 };

static void blob_write(const ps_proc_rec *r, uint8_t *out)
{
    /* Through a local of known size: GCC's -O3 + ASan cannot follow the
     * cursor's bounds check into the caller's heap block and warns. */
    uint8_t blob[BLOB_BYTES];
    ps_wcur w = ps_wcur_init(blob, sizeof blob);
    ps_w_u8(&w, BLOB_VERSION);
    ps_w_u8(&w, (uint8_t)(r->accepted | r->scored << 1));
    ps_w_u64(&w, r->id);
    ps_w_u64(&w, r->last_seq);
    ps_w_f64(&w, r->last_ts);
    ps_w_f32(&w, r->latest.score);
    ps_w_f64(&w, r->latest.pfp);
    ps_w_u32(&w, (uint32_t)r->latest.top);
    memcpy(out, blob, sizeof blob);
}

/* Write the state file; the previous one stays when this fails. 0 or an error. */
static int snapshot(ps_batcher *b)
{
    const ps_procs *pp = &b->procs;
    size_t n = 0;
    for (size_t s = 0; s < pp->hi; s++)
        n += pp->rec[s].used && pp->rec[s].accepted;
    uint32_t *slots = malloc((n ? n : 1) * sizeof *slots);
    uint8_t *blobs = malloc((n ? n : 1) * BLOB_BYTES);
    const uint8_t **extra = malloc((n ? n : 1) * sizeof *extra);
    size_t *extra_len = malloc((n ? n : 1) * sizeof *extra_len);
    char err[512] = "out of memory for the snapshot";
    double t0 = ps_serve_now();
    int rc = PS_ENOMEM;
    if (slots && blobs && extra && extra_len) {
        size_t i = 0;
        for (size_t s = 0; s < pp->hi; s++) {
            if (!pp->rec[s].used || !pp->rec[s].accepted) continue;
            slots[i] = (uint32_t)s;
            blob_write(&pp->rec[s], blobs + i * BLOB_BYTES);
            extra[i] = blobs + i * BLOB_BYTES;
            extra_len[i] = BLOB_BYTES;
            i++;
        }
        rc = ps_state_file_save(b->cfg.state_path, b->sc, n, slots, (const uint8_t *const *)extra,
                                extra_len, err, sizeof err);
    }
    free(slots);
    free(blobs);
    free(extra);
    free(extra_len);
    double t1 = ps_serve_now();
    ps_serve_metrics *m = b->cfg.metrics;
    pthread_mutex_lock(&m->mu);
    if (rc == 0) {
        m->snapshots++;
        m->snapshot_seconds = t1 - t0;
        m->snapshot_processors = n;
        m->snapshot_time = wall_clock();
    } else {
        m->snapshot_failures++;
    }
    pthread_mutex_unlock(&m->mu);
    /* The operator must hear of it: the next restart would lose more. */
    if (rc) fprintf(stderr, "preshift serve: snapshot failed, the previous one stays: %s\n", err);
    b->next_snapshot = t1 + b->cfg.snapshot_every;
    return rc;
}

typedef struct restore_ctx {
    ps_batcher *b;
    double now;
    char why[200];
} restore_ctx;

/* One record of the state file: its blob back into the processor table. */
static int restore_record(void *arg, uint32_t slot, const uint8_t *extra, size_t len)
{
    restore_ctx *ctx = arg;
    ps_batcher *b = ctx->b;
    if (len != BLOB_BYTES || extra[0] != BLOB_VERSION) {
        snprintf(ctx->why, sizeof ctx->why, "server record of %zu bytes, version %u", len,
                 len ? (unsigned)extra[0] : 0u);
        return PS_EINVAL;
    }
    ps_rcur r = ps_rcur_init(extra + 1, len - 1);
    uint8_t flags = ps_r_u8(&r);
    uint64_t id = ps_r_u64(&r), seq = ps_r_u64(&r);
    double ts = ps_r_f64(&r);
    float score = ps_r_f32(&r);
    double pfp = ps_r_f64(&r);
    int32_t top = ps_r_i32(&r);
    if (!(flags & 1) || !isfinite(ts) || !isfinite(score) || score < 0 || !(pfp >= 0 && pfp <= 1) ||
        top < -1 || top >= (int32_t)b->K) {
        snprintf(ctx->why, sizeof ctx->why,
                 "processor %llu: flags %u, time %g, score %g, PFP %g, top metric %d out of range",
                 (unsigned long long)id, (unsigned)flags, ts, (double)score, pfp, (int)top);
        return PS_EINVAL;
    }
    if (ps_procs_put(&b->procs, id, slot)) {
        snprintf(ctx->why, sizeof ctx->why, "processor %llu appears twice", (unsigned long long)id);
        return PS_EINVAL;
    }
    ps_proc_rec *rec = &b->procs.rec[slot];
    rec->accepted = 1;
    rec->scored = ps_scorer_proc_state(b->sc, slot) == PS_PROC_SCORED;
    rec->last_seq = seq;
    rec->last_ts = ts;
    /* Silence is counted from the restart, not from before the outage. */
    rec->last_seen = ctx->now;
    if (rec->scored)
        rec->latest = (ps_proto_result){
            .id = id, .score = score, .pfp = pfp, .top = top, .state = PS_PROTO_STATE_SCORED};
    return 0;
}

/*
 * Restore the state file, then write it back at once: a path that cannot
 * be written should stop the start, not the first snapshot an hour later.
 */
static int restore(ps_batcher *b, char *err, size_t errlen)
{
    restore_ctx ctx = {.b = b, .now = ps_serve_now()};
    char msg[512];
    int rc = ps_state_file_load(b->cfg.state_path, b->sc, restore_record, &ctx, &b->restored, msg,
                                sizeof msg);
    if (rc) {
        const char *hint = rc == PS_STATE_EMISMATCH
                               ? "start with the model and options that wrote it, or move it away "
                                 "to start empty"
                               : "move it away to start empty";
        return ps_fail(err, errlen, rc, "%s%s%s\n(%s)", msg, ctx.why[0] ? ": " : "", ctx.why, hint);
    }
    ps_procs_restored(&b->procs);
    ps_serve_metrics *m = b->cfg.metrics;
    pthread_mutex_lock(&m->mu);
    m->restored = b->restored.records;
    pthread_mutex_unlock(&m->mu);
    if (snapshot(b)) {
        snprintf(err, errlen, "cannot write the state file %s (the message above says why)",
                 b->cfg.state_path);
        return -1;
    }
    return 0;
}

/*
 * Answer a latest request from the processor table, now: each id's latest
 * scored result, or warming up, or unknown (no slot, or a slot whose first
 * heartbeat is still waiting for its tick), with its last accepted
 * heartbeat time. Nothing is allocated and no slot is taken.
 */
static void answer_latest(ps_batcher *b, ps_batch_item *it)
{
    const ps_proto_request *r = it->req;
    for (size_t i = 0; i < r->n; i++) {
        long s = ps_procs_find(&b->procs, r->ids[i]);
        const ps_proc_rec *rec = s >= 0 ? &b->procs.rec[s] : NULL;
        ps_proto_result *res = &it->results[i];
        if (!rec || !rec->accepted) {
            *res = (ps_proto_result){.id = r->ids[i], .top = -1, .state = PS_PROTO_STATE_UNKNOWN};
            it->ts[i] = 0;
            continue;
        }
        if (rec->scored) {
            *res = rec->latest;
            res->state = PS_PROTO_STATE_SCORED;
        } else {
            *res = (ps_proto_result){.top = -1, .state = PS_PROTO_STATE_WARMING_UP};
        }
        res->id = r->ids[i];
        it->ts[i] = rec->last_ts;
    }
    it->tick = b->tick_no;
    complete(b, it, PS_PROTO_OK, NULL);
}

/*
 * Admit `it` into the tick, answer it at once (a latest request, or nothing
 * in it to score), or defer it to a later tick. 1 = deferred, 0 = no longer
 * pending.
 */
static int admit(ps_batcher *b, ps_batch_item *it)
{
    const ps_proto_request *r = it->req;
    if (r->op == PS_PROTO_OP_LATEST) {
        answer_latest(b, it);
        return 0;
    }
    size_t n = r->n, K = b->K;
    ps_procs *pp = &b->procs;
    int defer = b->count > 0 && b->count + n > b->cfg.max_batch;
    for (size_t i = 0; i < n; i++) {
        long s = ps_procs_get(pp, r->ids[i]);
        it->pos[i] = s < 0 ? NO_POS : (uint32_t)s;
        if (s >= 0 && (pp->rec[s].mark == b->gen || pp->rec[s].blocked == b->gen)) defer = 1;
    }
    if (defer) {
        /* Later requests for these processors must not overtake this one. */
        for (size_t i = 0; i < n; i++)
            if (it->pos[i] != NO_POS) pp->rec[it->pos[i]].blocked = b->gen;
        return 1;
    }
    uint64_t outcome[PS_PROTO_NSTATES] = {0};
    size_t taken = 0;
    for (size_t i = 0; i < n; i++) {
        ps_proto_result *res = &it->results[i];
        uint32_t s = it->pos[i];
        it->pos[i] = NO_POS;
        if (s == NO_POS) {
            *res = (ps_proto_result){.id = r->ids[i], .top = -1, .state = PS_PROTO_STATE_REJECTED};
            outcome[PS_PROTO_STATE_REJECTED]++;
            continue;
        }
        ps_proc_rec *rec = &pp->rec[s];
        int dup = rec->accepted && r->seqs[i] <= rec->last_seq;
        int stale = rec->accepted && !(r->ts[i] > rec->last_ts);
        if (dup || stale) {
            *res = rec->latest;
            res->state = dup ? PS_PROTO_STATE_DUPLICATE : PS_PROTO_STATE_STALE;
            outcome[res->state]++;
            continue;
        }
        size_t p = b->count++;
        b->t_procs[p] = s;
        b->t_ts[p] = r->ts[i];
        memcpy(b->t_x + p * K, r->metrics + i * K, K * sizeof(float));
        b->t_item[p] = it;
        b->t_idx[p] = (uint32_t)i;
        rec->mark = b->gen;
        it->pos[i] = (uint32_t)p;
        taken++;
    }
    ps_serve_metrics *m = b->cfg.metrics;
    pthread_mutex_lock(&m->mu);
    for (int s = 0; s < PS_PROTO_NSTATES; s++)
        m->heartbeats[s] += outcome[s];
    pthread_mutex_unlock(&m->mu);
    if (!taken) {
        it->tick = 0;
        complete(b, it, PS_PROTO_OK, NULL);
        return 0;
    }
    if (!b->in_tick || it->queued < b->first_queued) b->first_queued = it->queued;
    it->next = NULL;
    if (b->in_tick_tail)
        b->in_tick_tail->next = it;
    else
        b->in_tick = it;
    b->in_tick_tail = it;
    return 0;
}

static void admit_pending(ps_batcher *b)
{
    ps_batch_item **link = &b->pending, *prev = NULL;
    while (*link) {
        ps_batch_item *it = *link, *next = it->next; /* admit() reuses it->next */
        if (it->checked != b->gen && !admit(b, it)) {
            *link = next;
            if (b->pending_tail == it) b->pending_tail = prev;
            continue;
        }
        it->checked = b->gen;
        prev = it;
        link = &it->next;
    }
}

static void run_tick(ps_batcher *b)
{
    size_t n = b->count, nrec = 0;
    uint64_t warming = 0;
    char err[256] = "";
    double start = ps_serve_now(), callbacks = b->in_callbacks, t0 = start;
    int rc = ps_scorer_tick(b->sc, n, b->t_procs, b->t_ts, b->t_x, b->t_out, err, sizeof err);
    double t1 = ps_serve_now();
    if (rc == 0) {
        b->tick_no++;
        for (size_t p = 0; p < n; p++) {
            ps_proc_rec *rec = &b->procs.rec[b->t_procs[p]];
            ps_batch_item *it = b->t_item[p];
            uint32_t i = b->t_idx[p];
            const ps_score *o = &b->t_out[p];
            rec->accepted = 1;
            rec->last_seq = it->req->seqs[i];
            rec->last_ts = b->t_ts[p];
            rec->last_seen = t0;
            if (o->state != PS_PROC_SCORED) {
                it->results[i] =
                    (ps_proto_result){.id = rec->id, .top = -1, .state = PS_PROTO_STATE_WARMING_UP};
                warming++;
                continue;
            }
            /* A broken number says "unstable" rather than failing every reply
             * of this processor (the codec refuses non-finite values). */
            float score = isfinite(o->score) && o->score >= 0 ? o->score : FLT_MAX;
            double pfp = o->pfp >= 0 && o->pfp <= 1 ? o->pfp : 1.0;
            rec->scored = 1;
            rec->latest = (ps_proto_result){.id = rec->id,
                                            .score = score,
                                            .pfp = pfp,
                                            .top = o->top_metric,
                                            .state = PS_PROTO_STATE_SCORED};
            it->results[i] = rec->latest;
            /* Records are the scored subset of the tick: their metrics are
             * gathered from the tick's rows. */
            memcpy(b->records_x + nrec * b->K, b->t_x + p * b->K, b->K * sizeof *b->records_x);
            b->records[nrec++] = (ps_proto_record){
                .id = rec->id, .ts = b->t_ts[p], .score = score, .pfp = pfp, .top = o->top_metric};
        }
        if (b->cfg.publish && nrec) {
            double p0 = ps_serve_now();
            b->cfg.publish(b->cfg.user, b->tick_no, wall_clock(), b->records, nrec, (uint32_t)b->K,
                           b->records_x);
            b->in_callbacks += ps_serve_now() - p0;
        }
    }
    ps_serve_metrics *m = b->cfg.metrics;
    pthread_mutex_lock(&m->mu);
    if (rc == 0) {
        m->batches++;
        m->tick = b->tick_no;
        m->heartbeats[PS_PROTO_STATE_SCORED] += nrec;
        m->heartbeats[PS_PROTO_STATE_WARMING_UP] += warming;
        ps_histogram_observe(&m->batch_size, (double)n);
        ps_histogram_observe(&m->tick_seconds, t1 - t0);
        m->stage_seconds[PS_STAGE_SCORE] += t1 - t0;
    }
    pthread_mutex_unlock(&m->mu);
    /* Before the replies, so that a client's next info sees its processors. */
    refresh(b, ps_serve_now());
    ps_batch_item *it = b->in_tick;
    b->in_tick = b->in_tick_tail = NULL;
    b->count = 0;
    b->gen++;
    while (it) {
        ps_batch_item *next = it->next;
        it->tick = rc ? 0 : b->tick_no;
        complete(b, it, rc ? PS_PROTO_E_INTERNAL : PS_PROTO_OK, rc ? err : NULL);
        it = next;
    }
    b->batch_seconds += ps_serve_now() - start - (t1 - t0) - (b->in_callbacks - callbacks);
}

static int should_close(const ps_batcher *b, double now)
{
    return b->count >= b->cfg.max_batch || b->count >= b->active ||
           now >= b->first_queued + b->cfg.batch_delay;
}

static void wait_until(ps_batcher *b, double deadline)
{
    struct timespec ts;
    double whole = floor(deadline);
    ts.tv_sec = (time_t)whole;
    ts.tv_nsec = (long)((deadline - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    int rc = pthread_cond_timedwait(&b->wake, &b->mu, &ts);
    (void)rc; /* ETIMEDOUT and spurious wake-ups alike: the loop looks again */
}

static void fail_list(ps_batcher *b, ps_batch_item *it)
{
    while (it) {
        ps_batch_item *next = it->next;
        complete(b, it, PS_PROTO_E_UNAVAILABLE, "the server is stopping");
        it = next;
    }
}

static void loop(ps_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (b->head) {
            if (b->pending_tail)
                b->pending_tail->next = b->head;
            else
                b->pending = b->head;
            b->pending_tail = b->tail;
            b->head = b->tail = NULL;
        }
        if (b->stop) break;
        pthread_mutex_unlock(&b->mu);
        double a0 = ps_serve_now(), callbacks = b->in_callbacks;
        admit_pending(b);
        double now = ps_serve_now();
        b->batch_seconds += now - a0 - (b->in_callbacks - callbacks);
        if (b->count && should_close(b, now)) {
            run_tick(b);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        if (now >= b->next_refresh) refresh(b, now);
        if (b->cfg.state_path && now >= b->next_snapshot) snapshot(b);
        pthread_mutex_lock(&b->mu);
        if (b->head || b->stop) continue;
        double deadline = b->count ? b->first_queued + b->cfg.batch_delay : b->next_refresh;
        if (b->cfg.state_path && b->next_snapshot < deadline) deadline = b->next_snapshot;
        wait_until(b, deadline);
    }
    pthread_mutex_unlock(&b->mu);
    /* Nothing more is submitted once stop is set: these lists are all. */
    fail_list(b, b->in_tick);
    fail_list(b, b->pending);
    b->in_tick = b->in_tick_tail = b->pending = b->pending_tail = NULL;
    b->count = 0;
    if (b->cfg.state_path) snapshot(b);
}

static int setup(ps_batcher *b, char *err, size_t errlen)
{
    char msg[400];
    b->be = ps_backend_init(&b->cfg.backend, msg, sizeof msg);
    if (!b->be) {
        snprintf(err, errlen, "kernel backend: %s", msg);
        return -1;
    }
    snprintf(b->backend_name, sizeof b->backend_name, "%s (%s)", ps_backend_name(b->be),
             ps_backend_isa(b->be));
    b->sc = ps_scorer_create(b->be, b->cfg.model, &b->cfg.scorer, err, errlen);
    if (!b->sc) return -1;
    size_t P = b->P, K = b->K;
    if (ps_procs_init(&b->procs, P, b->cfg.seed)) goto oom;
    b->t_procs = malloc(P * sizeof *b->t_procs);
    b->t_idx = malloc(P * sizeof *b->t_idx);
    b->t_ts = malloc(P * sizeof *b->t_ts);
    b->t_x = malloc(P * K * sizeof *b->t_x);
    b->t_out = malloc(P * sizeof *b->t_out);
    b->t_item = malloc(P * sizeof *b->t_item);
    b->records = malloc(P * sizeof *b->records);
    b->records_x = malloc(P * K * sizeof *b->records_x);
    if (!b->t_procs || !b->t_idx || !b->t_ts || !b->t_x || !b->t_out || !b->t_item || !b->records ||
        !b->records_x)
        goto oom;
    return b->cfg.state_path ? restore(b, err, errlen) : 0;
oom:
    snprintf(err, errlen, "out of memory for %zu processors", P);
    return -1;
}

static void teardown(ps_batcher *b)
{
    ps_scorer_free(b->sc);
    ps_backend_free(b->be);
    ps_procs_free(&b->procs);
    free(b->t_procs);
    free(b->t_idx);
    free(b->t_ts);
    free(b->t_x);
    free(b->t_out);
    free(b->t_item);
    free(b->records);
    free(b->records_x);
    b->sc = NULL;
    b->be = NULL;
}

static void *thread_main(void *arg)
{
    ps_batcher *b = arg;
    char err[512] = "";
    int rc = setup(b, err, sizeof err);
    pthread_mutex_lock(&b->mu);
    b->start_state = rc ? -1 : 1;
    snprintf(b->start_err, sizeof b->start_err, "%s", err);
    pthread_cond_broadcast(&b->started);
    pthread_mutex_unlock(&b->mu);
    if (rc == 0) loop(b);
    teardown(b);
    return NULL;
}

ps_batcher *ps_batcher_start(const ps_batcher_config *cfg, char *err, size_t errlen)
{
    if (!cfg->done || !cfg->metrics || !cfg->model || cfg->max_batch == 0 || cfg->max_queue == 0 ||
        cfg->scorer.processors == 0 || cfg->scorer.metrics == 0) {
        snprintf(err, errlen, "batcher: bad configuration");
        return NULL;
    }
    ps_batcher *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    b->P = cfg->scorer.processors;
    b->K = cfg->scorer.metrics;
    b->gen = 1;
    pthread_condattr_t ca;
    int ok = !pthread_mutex_init(&b->mu, NULL);
    if (ok && !pthread_condattr_init(&ca)) {
        /* Deadlines are monotonic: a clock step must not stall a tick. */
        ok = !pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) && !pthread_cond_init(&b->wake, &ca);
        pthread_condattr_destroy(&ca);
    } else {
        ok = 0;
    }
    if (!ok || pthread_cond_init(&b->started, NULL)) {
        snprintf(err, errlen, "cannot create the batcher's mutex");
        free(b);
        return NULL;
    }
    if (pthread_create(&b->thread, NULL, thread_main, b)) {
        snprintf(err, errlen, "cannot start the scoring thread");
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&b->mu);
    while (b->start_state == 0)
        pthread_cond_wait(&b->started, &b->mu);
    int failed = b->start_state < 0;
    pthread_mutex_unlock(&b->mu);
    if (failed) {
        snprintf(err, errlen, "%s", b->start_err);
        pthread_join(b->thread, NULL);
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->wake);
        pthread_cond_destroy(&b->started);
        free(b);
        return NULL;
    }
    return b;
}

void ps_batcher_stop(ps_batcher *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    int joined = b->stop;
    b->stop = 1;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->mu);
    if (!joined) pthread_join(b->thread, NULL);
}

void ps_batcher_free(ps_batcher *b)
{
    if (!b) return;
    ps_batcher_stop(b);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->wake);
    pthread_cond_destroy(&b->started);
    free(b);
}
