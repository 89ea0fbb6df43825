/*
 * sim_agent.c - the simulated cluster's transfer agent (sim_agent.h).
 *
 * A raw REP socket (nng's xrep0): every request comes with its backtrace
 * in the message header, and a reply is the same message with its body
 * replaced, sent whenever the answer is known. So a prepare can be held
 * for as many ticks as the world's copy takes without tying up a REP
 * context, and resends of it (the manager's REQ resends an unanswered
 * request every second) are simply more copies to answer at the end.
 *
 * Per transfer id, the destination prepare's life: none -> pending
 * (received, not yet applied) -> held (the world copies) -> answered ok or
 * refused; or cancelled (the manager rolled it back first: it gave up
 * waiting, which the simulation's timeouts should never let happen). The
 * bundled agent's table (transfer_agent.h) records what every processor
 * said, so that everything after the destination's answer is the same
 * state machine as `preshift agent`.
 *
 * Answers that end a destination's wait (ok or refused) go out one
 * transfer at a time, in id order: the next only once the manager's last
 * message of the previous transfer (the source's release, the
 * destination's commit for a failover, the rollback of a refused one) has
 * been answered. The manager then collects finished transfers in id order,
 * and applies them in that order: its books (pending outcomes, workload
 * lists, reserved capacity summed in floating point) do not depend on which
 * of two concurrent exchanges the network finished first.
 */
#include "sim_agent.h"

#include "core/error.h"
#include "kernels/kernels.h"
#include "sim_cluster_file.h"
#include "transfer_agent.h"
#include "transfer_proto.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Transfer ids this agent tracks (the manager's store ids, from 1). */
#define ID_MAX ((int64_t)1 << 30)
/* Records the table keeps before forgetting finished ones (its default is 4096). */
#define TABLE_CAPACITY ((size_t)1 << 16)

enum { E_NONE = 0, E_PENDING, E_HELD, E_QUEUED, E_OK, E_REFUSED, E_CANCELLED };

/* A destination prepare pending or held: the request and every copy received. */
typedef struct live {
    int64_t id;
    ps_xfer_request req;
    nng_msg **copies;
    uint32_t n, cap;
    uint32_t tr; /* the world's transfer while held */
} live;

/* A decided answer waiting for its turn. */
typedef struct answer {
    int64_t id;
    uint32_t slot;
    uint8_t ok, failover;
    char reason[256];
} answer;

struct ps_sim_agent {
    ps_sim_agent_config cfg;
    nng_socket sock;
    int sock_open;
    int recv_ms; /* NNG_OPT_RECVTIMEO in force, -2 before the first set */
    ps_xfer_agent *tab;
    uint8_t *state; /* [id_cap] by transfer id */
    uint32_t *slot; /* [id_cap] its live slot while pending or held */
    size_t id_cap;
    live *live;
    size_t n_live, cap_live;
    uint32_t *free_slot;
    size_t n_free, cap_free;
    uint32_t *pending; /* live slots */
    size_t n_pending, cap_pending;
    size_t n_held;
    answer *queue; /* by id */
    size_t n_queue, cap_queue;
    /* The transfer whose answer went out last, until the manager's last message of it. */
    int chain;
    int64_t chain_id;
    ps_xfer_op chain_op;
    char chain_proc[PS_XFER_NAME_MAX + 1];
    int64_t *of_tr; /* [cap_tr] manager id of world transfer, 0 = none */
    size_t cap_tr;
    ps_buf buf;
    ps_sim_agent_stats st;
};

/* ---- growing arrays ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *na = realloc(*arr, nc * size);
    if (!na) return -1;
    memset((char *)na + *cap * size, 0, (nc - *cap) * size);
    *arr = na;
    *cap = nc;
    return 0;
}

static int ensure_id(ps_sim_agent *a, int64_t id)
{
    size_t need = (size_t)id + 1, c1 = a->id_cap, c2 = a->id_cap;
    if (need <= a->id_cap) return 0;
    if (grow((void **)&a->state, &c1, need, sizeof *a->state) ||
        grow((void **)&a->slot, &c2, need, sizeof *a->slot))
        return -1;
    a->id_cap = c1 < c2 ? c1 : c2;
    return 0;
}

static int new_live(ps_sim_agent *a, uint32_t *out)
{
    if (a->n_free) {
        *out = a->free_slot[--a->n_free];
        return 0;
    }
    if (grow((void **)&a->live, &a->cap_live, a->n_live + 1, sizeof *a->live)) return -1;
    *out = (uint32_t)a->n_live++;
    return 0;
}

static void free_live(ps_sim_agent *a, uint32_t s)
{
    live *l = &a->live[s];
    for (uint32_t i = 0; i < l->n; i++)
        if (l->copies[i]) nng_msg_free(l->copies[i]);
    free(l->copies);
    memset(l, 0, sizeof *l);
    if (grow((void **)&a->free_slot, &a->cap_free, a->n_free + 1, sizeof *a->free_slot) == 0)
        a->free_slot[a->n_free++] = s;
}

static int add_copy(live *l, nng_msg *m)
{
    if (l->n == l->cap) {
        uint32_t nc = l->cap ? l->cap * 2 : 2;
        nng_msg **na = realloc(l->copies, nc * sizeof *na);
        if (!na) return -1;
        l->copies = na;
        l->cap = nc;
    }
    l->copies[l->n++] = m;
    return 0;
}

/* ---- replies ---- */

/* Send a->buf as the reply to request message m (whose header routes it back). */
static void send_buf(ps_sim_agent *a, nng_msg *m)
{
    nng_msg_clear(m);
    if (nng_msg_append(m, a->buf.data, a->buf.len) != 0 || nng_sendmsg(a->sock, m, 0) != 0)
        nng_msg_free(m); /* lost: the manager's REQ resends, and is answered again */
}

/* rep into a->buf: a reply, or an error reply when the table answered one. */
static int encode(ps_sim_agent *a, const ps_xfer_reply *rep, char *why, size_t n)
{
    if (rep->op != PS_XFER_OP_ERROR) return ps_xfer_encode_reply(&a->buf, rep, why, n);
    ps_xfer_request about = {.id = rep->id};
    snprintf(about.processor, sizeof about.processor, "%s", rep->processor);
    int rc = ps_xfer_encode_error(&a->buf, &about, (int)rep->code, "%s", rep->message);
    if (rc) snprintf(why, n, "out of memory");
    return rc;
}

static int send_reply(ps_sim_agent *a, nng_msg *m, const ps_xfer_reply *rep, char *err,
                      size_t errlen)
{
    char why[256];
    if (encode(a, rep, why, sizeof why)) {
        nng_msg_free(m);
        return ps_fail(err, errlen, PS_ENOMEM, "sim agent: cannot encode a reply: %s", why);
    }
    send_buf(a, m);
    return 0;
}

/* Answer every copy of live slot s with rep and free the slot. */
static int answer_all(ps_sim_agent *a, uint32_t s, const ps_xfer_reply *rep, char *err,
                      size_t errlen)
{
    live *l = &a->live[s];
    char why[256];
    int rc = 0;
    if (encode(a, rep, why, sizeof why))
        rc = ps_fail(err, errlen, PS_ENOMEM, "sim agent: cannot encode a reply: %s", why);
    for (uint32_t i = 0; i < l->n && rc == 0; i++) {
        send_buf(a, l->copies[i]);
        l->copies[i] = NULL;
    }
    free_live(a, s);
    return rc;
}

static void chain_on(ps_sim_agent *a, int64_t id, ps_xfer_op op, const char *processor)
{
    a->chain = 1;
    a->chain_id = id;
    a->chain_op = op;
    snprintf(a->chain_proc, sizeof a->chain_proc, "%s", processor);
}

/*
 * The destination said yes: record the prepare in the table and answer it.
 * The manager's last message of it will be the source's release (a shift)
 * or the destination's commit (a failover: there is no source to ask).
 */
static int accept(ps_sim_agent *a, uint32_t s, int failover, char *err, size_t errlen)
{
    live *l = &a->live[s];
    int64_t id = l->id;
    ps_xfer_reply rep;
    ps_xfer_agent_apply(a->tab, &l->req, 0, &rep, NULL, NULL);
    int ok = rep.op == PS_XFER_OP_PREPARE && rep.result == PS_XFER_RESULT_OK;
    a->state[id] = ok ? E_OK : E_REFUSED;
    if (ok) {
        a->st.accepted++;
        chain_on(a, id, PS_XFER_OP_COMMIT, failover ? l->req.processor : l->req.peer);
    } else {
        a->st.refused++;
        chain_on(a, id, PS_XFER_OP_ROLLBACK, l->req.processor);
    }
    return answer_all(a, s, &rep, err, errlen);
}

/* The destination said no: the table records it rolled back, every copy is refused. */
static int refuse(ps_sim_agent *a, uint32_t s, const char *reason, char *err, size_t errlen)
{
    live *l = &a->live[s];
    ps_xfer_request rb = {.op = PS_XFER_OP_ROLLBACK, .id = l->id};
    snprintf(rb.processor, sizeof rb.processor, "%s", l->req.processor);
    ps_xfer_reply rep;
    ps_xfer_agent_apply(a->tab, &rb, 0, &rep, NULL, NULL);
    rep = (ps_xfer_reply){.op = PS_XFER_OP_PREPARE,
                          .id = l->id,
                          .result = PS_XFER_RESULT_REFUSED,
                          .state = PS_XFER_STATE_ROLLED_BACK};
    snprintf(rep.processor, sizeof rep.processor, "%s", l->req.processor);
    snprintf(rep.reason, sizeof rep.reason, "%s", reason[0] ? reason : "refused");
    a->state[l->id] = E_REFUSED;
    a->st.refused++;
    chain_on(a, l->id, PS_XFER_OP_ROLLBACK, l->req.processor);
    return answer_all(a, s, &rep, err, errlen);
}

/* Queue the answer to live slot s (ok, or refused with reason). 0 or -1. */
static int decide(ps_sim_agent *a, uint32_t s, int ok, int failover, const char *reason, char *err,
                  size_t errlen)
{
    if (grow((void **)&a->queue, &a->cap_queue, a->n_queue + 1, sizeof *a->queue))
        return ps_fail(err, errlen, PS_ENOMEM, "sim agent: out of memory");
    int64_t id = a->live[s].id;
    size_t i = a->n_queue++;
    while (i > 0 && a->queue[i - 1].id > id) {
        a->queue[i] = a->queue[i - 1];
        i--;
    }
    answer *q = &a->queue[i];
    q->id = id;
    q->slot = s;
    q->ok = (uint8_t)ok;
    q->failover = (uint8_t)failover;
    snprintf(q->reason, sizeof q->reason, "%s", reason ? reason : "");
    a->state[id] = E_QUEUED;
    return 0;
}

static void unqueue(ps_sim_agent *a, int64_t id)
{
    for (size_t i = 0; i < a->n_queue; i++)
        if (a->queue[i].id == id) {
            memmove(&a->queue[i], &a->queue[i + 1], (a->n_queue - i - 1) * sizeof *a->queue);
            a->n_queue--;
            return;
        }
}

/* Answer the next queued transfer when the previous one's exchanges are over. */
static int advance(ps_sim_agent *a, char *err, size_t errlen)
{
    while (!a->chain && a->n_queue) {
        answer q = a->queue[0];
        memmove(&a->queue[0], &a->queue[1], (a->n_queue - 1) * sizeof *a->queue);
        a->n_queue--;
        int rc = q.ok ? accept(a, q.slot, q.failover, err, errlen)
                      : refuse(a, q.slot, q.reason, err, errlen);
        if (rc) return -1;
    }
    return 0;
}

/* ---- requests ---- */

static void drop_pending(ps_sim_agent *a, uint32_t s)
{
    for (size_t i = 0; i < a->n_pending; i++)
        if (a->pending[i] == s) {
            a->pending[i] = a->pending[--a->n_pending];
            return;
        }
}

static int handle(ps_sim_agent *a, nng_msg *m, char *err, size_t errlen)
{
    a->st.messages++;
    ps_xfer_request q;
    char why[512];
    int rc = ps_xfer_decode_request(nng_msg_body(m), nng_msg_len(m), &q, why, sizeof why);
    if (rc == 0 && q.id > ID_MAX) {
        rc = PS_XFER_E_BAD_REQUEST;
        snprintf(why, sizeof why, "transfer id %lld is beyond what the simulation tracks",
                 (long long)q.id);
    }
    if (rc) {
        a->st.errors++;
        if (ps_xfer_encode_error(&a->buf, &q, rc, "%s", why)) {
            nng_msg_free(m);
            return ps_fail(err, errlen, PS_ENOMEM, "sim agent: out of memory");
        }
        send_buf(a, m);
        return 0;
    }
    if (ensure_id(a, q.id)) {
        nng_msg_free(m);
        return ps_fail(err, errlen, PS_ENOMEM, "sim agent: out of memory");
    }
    int st = a->state[q.id];
    int dest_prepare = q.op == PS_XFER_OP_PREPARE && q.role == PS_XFER_ROLE_DESTINATION;
    if (dest_prepare && st == E_NONE) {
        uint32_t s;
        if (new_live(a, &s) ||
            grow((void **)&a->pending, &a->cap_pending, a->n_pending + 1, sizeof *a->pending)) {
            nng_msg_free(m);
            return ps_fail(err, errlen, PS_ENOMEM, "sim agent: out of memory");
        }
        live *l = &a->live[s];
        memset(l, 0, sizeof *l);
        l->id = q.id;
        l->req = q;
        l->tr = PS_SIM_NONE;
        if (add_copy(l, m)) {
            nng_msg_free(m);
            free_live(a, s);
            return ps_fail(err, errlen, PS_ENOMEM, "sim agent: out of memory");
        }
        a->state[q.id] = E_PENDING;
        a->slot[q.id] = s;
        a->pending[a->n_pending++] = s;
        a->st.transfers++;
        return 0;
    }
    if (st == E_PENDING || st == E_HELD || st == E_QUEUED) {
        uint32_t s = a->slot[q.id];
        live *l = &a->live[s];
        int same = !strcmp(l->req.processor, q.processor);
        if (dest_prepare && same) {
            a->st.resends++;
            if (add_copy(l, m)) {
                nng_msg_free(m);
                return ps_fail(err, errlen, PS_ENOMEM, "sim agent: out of memory");
            }
            return 0;
        }
        if (q.op == PS_XFER_OP_ROLLBACK && same) {
            /* The manager gave up on the destination before the world answered. */
            a->st.divergences += st != E_PENDING;
            if (st == E_PENDING) drop_pending(a, s);
            if (st == E_HELD) a->n_held--;
            if (st == E_QUEUED) unqueue(a, q.id);
            int chain = a->chain;
            ps_xfer_op chain_op = a->chain_op;
            int64_t chain_id = a->chain_id;
            char chain_proc[sizeof a->chain_proc];
            memcpy(chain_proc, a->chain_proc, sizeof chain_proc);
            if (refuse(a, s, "rolled back by the manager before the copy ended", err, errlen))
                return -1;
            a->chain = chain; /* this rollback is the end of its exchanges */
            a->chain_op = chain_op;
            a->chain_id = chain_id;
            memcpy(a->chain_proc, chain_proc, sizeof chain_proc);
            a->st.refused--; /* not the world's refusal */
            a->state[q.id] = E_CANCELLED;
        }
    }
    ps_xfer_reply rep;
    ps_xfer_event ev;
    ps_xfer_agent_apply(a->tab, &q, 0, &rep, NULL, &ev);
    if (!ev.changed && !ev.code) a->st.table_repeats++;
    if (ev.code) a->st.errors++;
    /* The manager's last message of the transfer answered last: the next one may go. */
    if (a->chain && q.id == a->chain_id &&
        (q.op == PS_XFER_OP_ROLLBACK ||
         (q.op == a->chain_op && !strcmp(q.processor, a->chain_proc))))
        a->chain = 0;
    return send_reply(a, m, &rep, err, errlen);
}

int ps_sim_agent_pump(ps_sim_agent *a, int wait_ms, char *err, size_t errlen)
{
    int handled = 0;
    for (;;) {
        int flags = NNG_FLAG_NONBLOCK;
        if (handled == 0 && wait_ms > 0) {
            if (a->recv_ms != wait_ms) {
                nng_socket_set_ms(a->sock, NNG_OPT_RECVTIMEO, wait_ms);
                a->recv_ms = wait_ms;
            }
            flags = 0;
        }
        nng_msg *m = NULL;
        int rv = nng_recvmsg(a->sock, &m, flags);
        if (rv == NNG_EAGAIN || rv == NNG_ETIMEDOUT) break;
        if (rv != 0)
            return ps_fail(err, errlen, PS_EINVAL, "sim agent: receive: %s", nng_strerror(rv));
        handled++;
        if (handle(a, m, err, errlen) || advance(a, err, errlen)) return -1;
    }
    if (advance(a, err, errlen)) return -1;
    return handled;
}

/* ---- the world ---- */

/* Insertion sort of the pending slots by transfer id (few per tick). */
static void sort_pending(ps_sim_agent *a)
{
    for (size_t i = 1; i < a->n_pending; i++) {
        uint32_t v = a->pending[i];
        size_t j = i;
        while (j > 0 && a->live[a->pending[j - 1]].id > a->live[v].id) {
            a->pending[j] = a->pending[j - 1];
            j--;
        }
        a->pending[j] = v;
    }
}

/* Seconds of stream time processor p has been silent at the world's tick (0 if alive). */
static double silent_seconds(const ps_sim_agent *a, uint32_t p)
{
    const ps_sim_world *w = a->cfg.world;
    if (w->proc[p].alive) return 0;
    double ts = w->sc->cfg.tick_seconds, t0 = a->cfg.t0;
    /* As the manager computes it: now minus the time of p's last heartbeat. */
    return (t0 + (double)w->t * ts) - (t0 + ((double)w->proc[p].down_since - 1) * ts);
}

static int apply_one(ps_sim_agent *a, uint32_t s, char *err, size_t errlen)
{
    ps_sim_world *w = a->cfg.world;
    const ps_sim_scenario *sc = w->sc;
    live *l = &a->live[s];
    char why[512];
    uint32_t wl = ps_sim_parse_workload(l->req.workload, sc->W);
    uint32_t dst = ps_sim_parse_processor(l->req.processor, sc->P);
    uint32_t src = ps_sim_parse_processor(l->req.peer, sc->P);
    if (wl == PS_SIM_NONE || dst == PS_SIM_NONE || src == PS_SIM_NONE) {
        a->st.divergences++;
        snprintf(why, sizeof why, "the simulation has no workload %s or processor %s or %s",
                 l->req.workload, l->req.processor, l->req.peer);
        return decide(a, s, 0, 0, why, err, errlen);
    }
    if (w->wl[wl].proc != src) {
        a->st.divergences++;
        snprintf(why, sizeof why, "%s runs on p%u in the simulation, not on %s", l->req.workload,
                 w->wl[wl].proc, l->req.peer);
        return decide(a, s, 0, 0, why, err, errlen);
    }
    int rc;
    if (silent_seconds(a, src) > a->cfg.failure_timeout) {
        rc = ps_sim_failover(w, wl, dst, why, sizeof why);
        if (rc == 0) {
            a->st.failovers++;
            return decide(a, s, 1, 1, NULL, err, errlen);
        }
        if (rc == PS_SIM_EREFUSED) return decide(a, s, 0, 1, why, err, errlen);
        return ps_fail(err, errlen, rc, "sim agent: transfer %lld: %s", (long long)l->id, why);
    }
    uint32_t tr = PS_SIM_NONE;
    rc = ps_sim_shift(w, wl, dst, &tr, why, sizeof why);
    if (rc == PS_SIM_EREFUSED) return decide(a, s, 0, 0, why, err, errlen);
    if (rc) return ps_fail(err, errlen, rc, "sim agent: transfer %lld: %s", (long long)l->id, why);
    a->st.shifts++;
    if (grow((void **)&a->of_tr, &a->cap_tr, (size_t)tr + 1, sizeof *a->of_tr))
        return ps_fail(err, errlen, PS_ENOMEM, "sim agent: out of memory");
    a->of_tr[tr] = l->id;
    if (w->tr[tr].status == PS_SIM_DEST_FAILED) {
        snprintf(why, sizeof why, "%s has failed", l->req.processor);
        return decide(a, s, 0, 0, why, err, errlen);
    }
    l->tr = tr;
    a->state[l->id] = E_HELD;
    a->n_held++;
    if (a->n_held > a->st.held_max) a->st.held_max = a->n_held;
    return 0;
}

int ps_sim_agent_apply_pending(ps_sim_agent *a, char *err, size_t errlen)
{
    if (!a->cfg.world->in_tick)
        return ps_fail(err, errlen, PS_EINVAL, "sim agent: prepares applied outside a tick");
    sort_pending(a);
    size_t n = a->n_pending;
    a->n_pending = 0;
    for (size_t i = 0; i < n; i++)
        if (apply_one(a, a->pending[i], err, errlen)) return -1;
    return advance(a, err, errlen);
}

int ps_sim_agent_tick_ends(ps_sim_agent *a, char *err, size_t errlen)
{
    ps_sim_world *w = a->cfg.world;
    size_t n;
    const uint32_t *ends = ps_sim_transfer_ends(w, &n);
    char why[256];
    for (size_t i = 0; i < n; i++) {
        uint32_t tr = ends[i];
        int64_t id = tr < a->cap_tr ? a->of_tr[tr] : 0;
        if (!id) continue;
        const ps_sim_transfer *t = &w->tr[tr];
        int ok = t->status == PS_SIM_COMMITTED || t->status == PS_SIM_SOURCE_FAILED;
        if (a->state[id] == E_CANCELLED) {
            a->st.divergences += ok;
            continue;
        }
        if (a->state[id] != E_HELD) continue;
        a->n_held--;
        if (t->status == PS_SIM_FAILED)
            snprintf(why, sizeof why, "the copy of w%u from p%u failed", t->workload, t->src);
        else
            snprintf(why, sizeof why, "p%u failed during the copy", t->dst);
        if (decide(a, a->slot[id], ok, 0, ok ? NULL : why, err, errlen)) return -1;
    }
    return advance(a, err, errlen);
}

/* ---- life ---- */

ps_sim_agent *ps_sim_agent_open(const ps_sim_agent_config *cfg, char *err, size_t errlen)
{
    ps_sim_agent *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "sim agent: out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    a->recv_ms = -2;
    ps_xfer_agent_config tc = {.any_processor = true, .capacity = TABLE_CAPACITY};
    a->tab = ps_xfer_agent_open(&tc, err, errlen);
    if (!a->tab) {
        free(a);
        return NULL;
    }
    int rv = nng_rep0_open_raw(&a->sock);
    if (rv == 0) {
        a->sock_open = 1;
        nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, PS_XFER_MAX_MESSAGE);
        rv = nng_listen(a->sock, cfg->url, NULL, 0);
    }
    if (rv != 0) {
        snprintf(err, errlen, "sim agent: cannot listen on %s: %s", cfg->url, nng_strerror(rv));
        ps_sim_agent_close(a);
        return NULL;
    }
    return a;
}

void ps_sim_agent_close(ps_sim_agent *a)
{
    if (!a) return;
    if (a->sock_open) nng_close(a->sock);
    for (size_t s = 0; s < a->n_live; s++)
        for (uint32_t i = 0; i < a->live[s].n; i++)
            if (a->live[s].copies[i]) nng_msg_free(a->live[s].copies[i]);
    for (size_t s = 0; s < a->n_live; s++)
        free(a->live[s].copies);
    ps_xfer_agent_close(a->tab);
    free(a->state);
    free(a->slot);
    free(a->live);
    free(a->free_slot);
    free(a->pending);
    free(a->queue);
    free(a->of_tr);
    ps_buf_free(&a->buf);
    free(a);
}

uint64_t ps_sim_agent_seen(const ps_sim_agent *a)
{
    return a->st.transfers;
}

size_t ps_sim_agent_pending(const ps_sim_agent *a)
{
    return a->n_pending;
}

size_t ps_sim_agent_held(const ps_sim_agent *a)
{
    return a->n_held + a->n_queue;
}

ps_sim_agent_stats ps_sim_agent_get_stats(const ps_sim_agent *a)
{
    return a->st;
}

int64_t ps_sim_agent_transfer_id(const ps_sim_agent *a, uint32_t tr)
{
    return tr < a->cap_tr ? a->of_tr[tr] : 0;
}
