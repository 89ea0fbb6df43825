/*
 * sim_world.c - one run of a policy over a scenario (sim_world.h): the
 * tick's ground truth, transfers, restarts, interruptions, shift outcomes.
 *
 * Order of a tick t (docs/evaluation.md, "One tick"):
 *   begin: transfers ending at t (commit or fail), failures at t, repairs
 *          at t, restarts ending at t, horizons closing at t, detection;
 *   the policy observes and requests;
 *   end:   every workload not running counts one interrupted tick.
 * A transfer ending at t has copied during ticks start .. t - 1, so it
 * commits before a failure of its source at t: the source was alive for
 * the whole copy.
 */
#include "sim_world.h"

#include "error.h"
#include "kernels/kernels.h"
#include "sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-9
#define EV_TRANSFER 0
#define EV_RESTART 1

/* ------------------------------------------------------------- helpers */

static int grow(void **a, uint32_t *cap, uint32_t need, size_t size)
{
    if (need <= *cap) return 0;
    uint64_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    if (c > UINT32_MAX / 2) c = UINT32_MAX / 2;
    if (c < need) return PS_ENOMEM;
    void *p = realloc(*a, (size_t)c * size);
    if (!p) return PS_ENOMEM;
    *a = p;
    *cap = (uint32_t)c;
    return 0;
}

static int push_u32(uint32_t **a, uint32_t *n, uint32_t *cap, uint32_t v)
{
    if (grow((void **)a, cap, *n + 1, sizeof **a)) return PS_ENOMEM;
    (*a)[(*n)++] = v;
    return 0;
}

/* ---------------------------------------------------------------- heap */

static int heap_less(const ps_sim_world *w, uint32_t a, uint32_t b)
{
    return w->key[a] < w->key[b] || (w->key[a] == w->key[b] && a < b);
}

static void heap_put(ps_sim_world *w, uint32_t i, uint32_t p)
{
    w->heap[i] = p;
    w->proc[p].heap_pos = i;
}

static void sift_up(ps_sim_world *w, uint32_t i)
{
    uint32_t p = w->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(w, p, w->heap[parent])) break;
        heap_put(w, i, w->heap[parent]);
        i = parent;
    }
    heap_put(w, i, p);
}

static void sift_down(ps_sim_world *w, uint32_t i)
{
    uint32_t p = w->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= w->n_heap) break;
        if (c + 1 < w->n_heap && heap_less(w, w->heap[c + 1], w->heap[c])) c++;
        if (!heap_less(w, w->heap[c], p)) break;
        heap_put(w, i, w->heap[c]);
        i = c;
    }
    heap_put(w, i, p);
}

static void heap_insert(ps_sim_world *w, uint32_t p)
{
    heap_put(w, w->n_heap++, p);
    sift_up(w, w->n_heap - 1);
}

static void heap_remove(ps_sim_world *w, uint32_t p)
{
    uint32_t i = w->proc[p].heap_pos;
    if (i == PS_SIM_NONE) return;
    w->proc[p].heap_pos = PS_SIM_NONE;
    uint32_t last = w->heap[--w->n_heap];
    if (i == w->n_heap) return;
    heap_put(w, i, last);
    sift_up(w, i);
    sift_down(w, w->proc[last].heap_pos);
}

static void load_add(ps_sim_world *w, uint32_t p, double cpu, double mem)
{
    ps_sim_proc *x = &w->proc[p];
    x->cpu_load += cpu;
    x->mem_load += mem;
    double old = w->key[p];
    w->key[p] = fmax(x->cpu_load / w->sc->cfg.cpu_capacity, x->mem_load / w->sc->cfg.mem_capacity);
    if (x->heap_pos == PS_SIM_NONE) return;
    if (w->key[p] < old)
        sift_up(w, x->heap_pos);
    else
        sift_down(w, x->heap_pos);
}

/* ------------------------------------------------------- lists, events */

static void host_add(ps_sim_world *w, uint32_t wl, uint32_t p)
{
    ps_sim_wl *x = &w->wl[wl];
    ps_sim_proc *h = &w->proc[p];
    x->proc = p;
    x->prev = PS_SIM_NONE;
    x->next = h->first;
    if (h->first != PS_SIM_NONE) w->wl[h->first].prev = wl;
    h->first = wl;
    h->n_hosted++;
}

static void host_remove(ps_sim_world *w, uint32_t wl)
{
    ps_sim_wl *x = &w->wl[wl];
    ps_sim_proc *h = &w->proc[x->proc];
    if (x->prev != PS_SIM_NONE)
        w->wl[x->prev].next = x->next;
    else
        h->first = x->next;
    if (x->next != PS_SIM_NONE) w->wl[x->next].prev = x->prev;
    x->next = x->prev = PS_SIM_NONE;
    h->n_hosted--;
}

static void in_link(ps_sim_world *w, uint32_t id)
{
    ps_sim_transfer *t = &w->tr[id];
    ps_sim_proc *d = &w->proc[t->dst];
    t->in_prev = PS_SIM_NONE;
    t->in_next = d->in_head;
    if (d->in_head != PS_SIM_NONE) w->tr[d->in_head].in_prev = id;
    d->in_head = id;
}

static void in_unlink(ps_sim_world *w, uint32_t id)
{
    ps_sim_transfer *t = &w->tr[id];
    if (t->in_prev != PS_SIM_NONE)
        w->tr[t->in_prev].in_next = t->in_next;
    else
        w->proc[t->dst].in_head = t->in_next;
    if (t->in_next != PS_SIM_NONE) w->tr[t->in_next].in_prev = t->in_prev;
    t->in_next = t->in_prev = PS_SIM_NONE;
}

/* Append to the source's open-horizon list (start order: the head is the oldest). */
static void sh_link(ps_sim_world *w, uint32_t id)
{
    ps_sim_transfer *t = &w->tr[id];
    ps_sim_proc *s = &w->proc[t->src];
    t->sh_next = PS_SIM_NONE;
    t->sh_prev = s->sh_tail;
    if (s->sh_tail != PS_SIM_NONE)
        w->tr[s->sh_tail].sh_next = id;
    else
        s->sh_head = id;
    s->sh_tail = id;
    t->open = 1;
}

static void sh_unlink(ps_sim_world *w, uint32_t id)
{
    ps_sim_transfer *t = &w->tr[id];
    ps_sim_proc *s = &w->proc[t->src];
    if (t->sh_prev != PS_SIM_NONE)
        w->tr[t->sh_prev].sh_next = t->sh_next;
    else
        s->sh_head = t->sh_next;
    if (t->sh_next != PS_SIM_NONE)
        w->tr[t->sh_next].sh_prev = t->sh_prev;
    else
        s->sh_tail = t->sh_prev;
    t->sh_next = t->sh_prev = PS_SIM_NONE;
    t->open = 0;
}

/* Events at ticks beyond the run never happen and are not kept. */
static int schedule(ps_sim_world *w, int kind, uint32_t tick, uint32_t val)
{
    if (tick >= w->sc->T) return 0;
    if (w->n_ev == w->cap_ev) {
        uint32_t cap = w->cap_ev;
        if (grow((void **)&w->ev_val, &cap, w->n_ev + 1, sizeof *w->ev_val)) return PS_ENOMEM;
        void *p = realloc(w->ev_next, (size_t)cap * sizeof *w->ev_next);
        if (!p) return PS_ENOMEM; /* ev_val grew, cap_ev did not: the next call retries */
        w->ev_next = p;
        w->cap_ev = cap;
    }
    uint32_t n = w->n_ev++;
    w->ev_val[n] = val;
    w->ev_next[n] = PS_SIM_NONE;
    if (w->ev_tail[kind][tick] != PS_SIM_NONE)
        w->ev_next[w->ev_tail[kind][tick]] = n;
    else
        w->ev_head[kind][tick] = n;
    w->ev_tail[kind][tick] = n;
    return 0;
}

/* ----------------------------------------------------- workload states */

static void set_state(ps_sim_world *w, uint32_t wl, ps_sim_wstate s)
{
    ps_sim_wl *x = &w->wl[wl];
    double crit = w->sc->work[wl].criticality;
    if (x->state == PS_SIM_RUNNING && s != PS_SIM_RUNNING) {
        w->n_interrupted++;
        w->crit_interrupted += crit;
        w->res.interruptions++;
    } else if (x->state != PS_SIM_RUNNING && s == PS_SIM_RUNNING) {
        w->n_interrupted--;
        w->crit_interrupted = w->n_interrupted ? w->crit_interrupted - crit : 0;
    }
    x->state = (uint8_t)s;
}

/* Restart wl on its (alive) host now: it runs again restart_ticks later. */
static int restart(ps_sim_world *w, uint32_t wl)
{
    uint32_t r = w->sc->cfg.restart_ticks;
    if (r == 0) {
        set_state(w, wl, PS_SIM_RUNNING);
        return 0;
    }
    set_state(w, wl, PS_SIM_RESTARTING);
    w->wl[wl].restart_until = w->t + r;
    return schedule(w, EV_RESTART, w->t + r, wl);
}

static int decide(ps_sim_world *w, uint32_t id, ps_sim_outcome o)
{
    ps_sim_transfer *t = &w->tr[id];
    if (t->outcome != PS_SIM_PENDING) return 0;
    t->outcome = (uint8_t)o;
    t->outcome_tick = w->t;
    if (o == PS_SIM_AVERTED) w->res.averted++;
    if (o == PS_SIM_UNNECESSARY) w->res.unnecessary++;
    if (o == PS_SIM_DISRUPTIVE) w->res.disruptive++;
    return push_u32(&w->outcomes, &w->n_outcomes, &w->cap_outcomes, id);
}

static int overloaded(const ps_sim_world *w, uint32_t p)
{
    const ps_sim_config *c = &w->sc->cfg;
    return w->proc[p].cpu_load > c->cpu_capacity * (1 + EPS) ||
           w->proc[p].mem_load > c->mem_capacity * (1 + EPS);
}

/* ----------------------------------------------------- ground truth */

/* A transfer reaching its scheduled end: commit, or fail with probability q. */
static int transfer_end(ps_sim_world *w, uint32_t id)
{
    ps_sim_transfer *t = &w->tr[id];
    if (t->status != PS_SIM_IN_FLIGHT) return 0;
    const ps_sim_wspec *x = &w->sc->work[t->workload];
    in_unlink(w, id);
    w->wl[t->workload].transfer = PS_SIM_NONE;
    t->end = w->t;
    int rc = 0;
    if (ps_sim_transfer_fails(w->sc->cfg.seed, w->sc->cfg.transfer_fail_prob, t->workload, t->start,
                              t->dst)) {
        t->status = PS_SIM_FAILED;
        w->res.failed++;
        load_add(w, t->dst, -x->cpu, -x->mem);
        rc = decide(w, id, PS_SIM_DISRUPTIVE);
    } else {
        t->status = PS_SIM_COMMITTED;
        w->res.committed++;
        host_remove(w, t->workload);
        load_add(w, t->src, -x->cpu, -x->mem);
        host_add(w, t->workload, t->dst);
        if (overloaded(w, t->dst)) {
            t->overloaded = 1;
            w->res.overloaded++;
            rc = decide(w, id, PS_SIM_DISRUPTIVE);
        } else if (t->expired) {
            rc = decide(w, id, PS_SIM_UNNECESSARY);
        }
    }
    if (!rc) rc = push_u32(&w->ends, &w->n_ends, &w->cap_ends, id);
    return rc;
}

static int record_lead(ps_sim_world *w, uint32_t lead)
{
    if (grow((void **)&w->res.lead_ticks, &w->cap_lead, (uint32_t)w->res.n_lead + 1,
             sizeof *w->res.lead_ticks))
        return PS_ENOMEM;
    w->res.lead_ticks[w->res.n_lead++] = lead;
    return 0;
}

static int fail_processor(ps_sim_world *w, uint32_t p)
{
    ps_sim_proc *h = &w->proc[p];
    uint32_t f = w->t;
    int rc = 0;
    w->res.failures++;
    /* The failure's record: shifts off p within H before it, what is left on it. */
    if (h->sh_head != PS_SIM_NONE) {
        uint32_t lead = f - w->tr[h->sh_head].start;
        if (h->n_hosted == 0) {
            w->res.failures_averted++;
            rc = record_lead(w, lead);
        } else {
            w->res.failures_partial++;
        }
    } else if (h->n_hosted) {
        w->res.failures_missed++;
    } else {
        w->res.failures_idle++;
    }
    while (!rc && h->sh_head != PS_SIM_NONE) {
        uint32_t id = h->sh_head;
        sh_unlink(w, id);
        rc = decide(w, id, PS_SIM_AVERTED);
    }
    /* Transfers to p fail. */
    while (!rc && h->in_head != PS_SIM_NONE) {
        uint32_t id = h->in_head;
        ps_sim_transfer *t = &w->tr[id];
        const ps_sim_wspec *x = &w->sc->work[t->workload];
        in_unlink(w, id);
        w->wl[t->workload].transfer = PS_SIM_NONE;
        t->status = PS_SIM_DEST_FAILED;
        t->end = f;
        w->res.dest_failed++;
        load_add(w, p, -x->cpu, -x->mem);
        if (!(rc = decide(w, id, PS_SIM_DISRUPTIVE)))
            rc = push_u32(&w->ends, &w->n_ends, &w->cap_ends, id);
    }
    h->alive = 0;
    h->down_since = f;
    h->fail_next++;
    heap_remove(w, p);
    /* Its workloads stop; one being copied away restarts on its destination. */
    uint32_t wl = h->first;
    while (!rc && wl != PS_SIM_NONE) {
        uint32_t next = w->wl[wl].next;
        uint32_t id = w->wl[wl].transfer;
        if (id == PS_SIM_NONE) {
            set_state(w, wl, PS_SIM_DOWN);
        } else {
            ps_sim_transfer *t = &w->tr[id];
            const ps_sim_wspec *x = &w->sc->work[wl];
            in_unlink(w, id);
            w->wl[wl].transfer = PS_SIM_NONE;
            t->status = PS_SIM_SOURCE_FAILED;
            t->end = f;
            w->res.source_failed++;
            host_remove(w, wl);
            load_add(w, p, -x->cpu, -x->mem);
            host_add(w, wl, t->dst); /* its demand is already reserved there */
            /* It stops now and restarts there (an episode if it was running). */
            rc = restart(w, wl);
            if (!rc && t->expired) rc = decide(w, id, PS_SIM_UNNECESSARY);
            if (!rc) rc = push_u32(&w->ends, &w->n_ends, &w->cap_ends, id);
        }
        wl = next;
    }
    return rc;
}

static int repair_processor(ps_sim_world *w, uint32_t p)
{
    ps_sim_proc *h = &w->proc[p];
    h->alive = 1;
    heap_insert(w, p);
    int rc = 0;
    for (uint32_t wl = h->first; wl != PS_SIM_NONE && !rc; wl = w->wl[wl].next)
        rc = restart(w, wl);
    return rc;
}

static int close_horizons(ps_sim_world *w)
{
    uint32_t H = w->sc->cfg.horizon;
    int rc = 0;
    while (!rc && w->hz_pos < w->n_hz) {
        uint32_t id = w->hz[w->hz_pos];
        ps_sim_transfer *t = &w->tr[id];
        if ((uint64_t)t->start + H >= w->t) break;
        w->hz_pos++;
        if (t->open) sh_unlink(w, id);
        if (t->outcome != PS_SIM_PENDING) continue;
        if (t->status == PS_SIM_IN_FLIGHT)
            t->expired = 1;
        else
            rc = decide(w, id, PS_SIM_UNNECESSARY);
    }
    /* Drop the consumed prefix now and then so the queue stays small. */
    if (w->hz_pos > 4096 && w->hz_pos * 2 > w->n_hz) {
        memmove(w->hz, w->hz + w->hz_pos, (size_t)(w->n_hz - w->hz_pos) * sizeof *w->hz);
        w->n_hz -= w->hz_pos;
        w->hz_pos = 0;
    }
    return rc;
}

int ps_sim_world_begin_tick(ps_sim_world *w)
{
    const ps_sim_scenario *sc = w->sc;
    if (w->in_tick) return PS_EINVAL; /* begin twice would apply the tick twice */
    if (w->t >= sc->T) return 0;
    uint32_t t = w->t;
    w->n_ends = w->n_outcomes = w->n_detected = 0;
    int rc = 0;
    for (uint32_t e = w->ev_head[EV_TRANSFER][t]; e != PS_SIM_NONE && !rc; e = w->ev_next[e])
        rc = transfer_end(w, w->ev_val[e]);
    for (uint32_t i = sc->fail_at[t]; i < sc->fail_at[t + 1] && !rc; i++)
        rc = fail_processor(w, sc->failures[i].proc);
    for (uint32_t i = sc->back_at[t]; i < sc->back_at[t + 1] && !rc; i++)
        rc = repair_processor(w, sc->failures[sc->back_order[i]].proc);
    for (uint32_t e = w->ev_head[EV_RESTART][t]; e != PS_SIM_NONE; e = w->ev_next[e]) {
        uint32_t wl = w->ev_val[e];
        ps_sim_wl *x = &w->wl[wl];
        if (x->state == PS_SIM_RESTARTING && x->restart_until == t && w->proc[x->proc].alive)
            set_state(w, wl, PS_SIM_RUNNING);
    }
    if (!rc) rc = close_horizons(w);
    uint32_t timeout = sc->cfg.failure_timeout;
    if (t >= timeout) {
        uint32_t ft = t - timeout;
        for (uint32_t i = sc->fail_at[ft]; i < sc->fail_at[ft + 1]; i++) {
            uint32_t p = sc->failures[i].proc;
            if (!w->proc[p].alive && w->proc[p].down_since == ft) w->detected[w->n_detected++] = p;
        }
    }
    /* An allocation failure leaves the run unusable; say so by ending it. */
    if (rc) {
        w->t = sc->T;
        return rc;
    }
    w->in_tick = 1;
    return 1;
}

void ps_sim_world_end_tick(ps_sim_world *w)
{
    if (!w->in_tick) return;
    double per = w->sc->cfg.tick_seconds / 60.0;
    w->res.interrupted_ticks += w->n_interrupted;
    w->res.interrupted_minutes = (double)w->res.interrupted_ticks * per;
    w->res.interrupted_crit_minutes += w->crit_interrupted * per;
    w->res.cum_interrupted_minutes[w->t] = w->res.interrupted_minutes;
    w->res.cum_unnecessary[w->t] = (uint32_t)w->res.unnecessary;
    w->in_tick = 0;
    w->t++;
}

int ps_sim_world_decide(ps_sim_world *w, char *err, size_t errlen)
{
    if (!w->in_tick) return ps_fail(err, errlen, PS_EINVAL, "not within a tick");
    return ps_sim_policy_decide(w, err, errlen);
}

int ps_sim_world_step(ps_sim_world *w, char *err, size_t errlen)
{
    int k = ps_sim_world_begin_tick(w);
    if (k == PS_EINVAL) return ps_fail(err, errlen, k, "tick %u has begun already", w->t);
    if (k < 0) return ps_fail(err, errlen, k, "out of memory at tick %u", w->t);
    if (k == 0) return 0;
    int rc = ps_sim_world_decide(w, err, errlen);
    if (rc < 0) return rc;
    ps_sim_world_end_tick(w);
    return 1;
}

const ps_sim_results *ps_sim_world_results(ps_sim_world *w)
{
    ps_sim_results *r = &w->res;
    r->pending = r->shifts - r->averted - r->unnecessary - r->disruptive;
    r->in_flight = r->shifts - r->committed - r->failed - r->dest_failed - r->source_failed;
    return r;
}

/* -------------------------------------------------------------- actions */

int ps_sim_group_touches(const ps_sim_world *w, uint32_t wl, uint32_t p)
{
    const ps_sim_scenario *sc = w->sc;
    uint32_t g = sc->work[wl].group;
    if (!g) return 0;
    for (uint32_t i = sc->group_start[g]; i < sc->group_start[g + 1]; i++) {
        uint32_t o = sc->group_member[i];
        if (o == wl) continue;
        if (w->wl[o].proc == p) return 1;
        if (w->wl[o].transfer != PS_SIM_NONE && w->tr[w->wl[o].transfer].dst == p) return 1;
    }
    return 0;
}

static int check_request(ps_sim_world *w, uint32_t wl, uint32_t dest, const char *what, char *err,
                         size_t errlen)
{
    if (!w->in_tick) return ps_fail(err, errlen, PS_EINVAL, "%s requested outside a tick", what);
    if (wl >= w->sc->W || dest >= w->sc->P)
        return ps_fail(err, errlen, PS_EINVAL, "%s: no workload %u or processor %u", what, wl,
                       dest);
    const ps_sim_wl *x = &w->wl[wl];
    if (x->transfer != PS_SIM_NONE)
        return ps_fail(err, errlen, PS_SIM_EREFUSED, "%s: workload %u is already in transfer %u",
                       what, wl, x->transfer);
    if (dest == x->proc)
        return ps_fail(err, errlen, PS_SIM_EREFUSED, "%s: workload %u is on processor %u already",
                       what, wl, dest);
    if (ps_sim_group_touches(w, wl, dest))
        return ps_fail(err, errlen, PS_SIM_EREFUSED,
                       "%s: processor %u holds or receives a replica of workload %u", what, dest,
                       wl);
    return 0;
}

int ps_sim_shift(ps_sim_world *w, uint32_t wl, uint32_t dest, uint32_t *id, char *err,
                 size_t errlen)
{
    int rc = check_request(w, wl, dest, "shift", err, errlen);
    if (rc) return rc;
    uint32_t src = w->wl[wl].proc;
    if (!w->proc[src].alive)
        return ps_fail(err, errlen, PS_SIM_EREFUSED,
                       "shift: the host of workload %u (processor %u) has failed: fail it over", wl,
                       src);
    if (grow((void **)&w->tr, &w->cap_tr, w->n_tr + 1, sizeof *w->tr) ||
        grow((void **)&w->hz, &w->cap_hz, w->n_hz + 1, sizeof *w->hz))
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    uint32_t n = w->n_tr++;
    ps_sim_transfer *t = &w->tr[n];
    memset(t, 0, sizeof *t);
    t->workload = wl;
    t->src = src;
    t->dst = dest;
    t->start = w->t;
    t->outcome_tick = PS_SIM_NONE;
    t->in_next = t->in_prev = t->sh_next = t->sh_prev = PS_SIM_NONE;
    w->res.shifts++;
    if (id) *id = n;
    if (!w->proc[dest].alive) {
        t->status = PS_SIM_DEST_FAILED;
        t->end = w->t;
        w->res.dest_failed++;
        if ((rc = decide(w, n, PS_SIM_DISRUPTIVE)) ||
            (rc = push_u32(&w->ends, &w->n_ends, &w->cap_ends, n)))
            return ps_fail(err, errlen, rc, "out of memory");
        return 0;
    }
    const ps_sim_wspec *x = &w->sc->work[wl];
    t->status = PS_SIM_IN_FLIGHT;
    t->end = w->t + x->transfer_ticks;
    load_add(w, dest, x->cpu, x->mem);
    in_link(w, n);
    sh_link(w, n);
    w->hz[w->n_hz++] = n;
    w->wl[wl].transfer = n;
    if (schedule(w, EV_TRANSFER, t->end, n))
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    return 0;
}

int ps_sim_failover(ps_sim_world *w, uint32_t wl, uint32_t dest, char *err, size_t errlen)
{
    int rc = check_request(w, wl, dest, "failover", err, errlen);
    if (rc) return rc;
    if (!w->proc[dest].alive)
        return ps_fail(err, errlen, PS_SIM_EREFUSED, "failover: processor %u has failed", dest);
    const ps_sim_wspec *x = &w->sc->work[wl];
    uint32_t src = w->wl[wl].proc;
    host_remove(w, wl);
    load_add(w, src, -x->cpu, -x->mem);
    host_add(w, wl, dest);
    load_add(w, dest, x->cpu, x->mem);
    w->res.failovers++;
    if (restart(w, wl)) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    return 0;
}

/* Best-first walk of the load heap: its nodes in key order, stopping at the first fit. */
static int walk_less(const ps_sim_world *w, uint32_t a, uint32_t b)
{
    return heap_less(w, w->heap[a], w->heap[b]);
}

uint32_t ps_sim_find_target(ps_sim_world *w, uint32_t wl, ps_sim_target_ok ok, void *ctx)
{
    const ps_sim_config *c = &w->sc->cfg;
    const ps_sim_wspec *x = &w->sc->work[wl];
    uint32_t host = w->wl[wl].proc;
    double cpu_cap = c->cpu_capacity * (1 + EPS), mem_cap = c->mem_capacity * (1 + EPS);
    /* A processor with room has key <= 1 - (the smaller of the two demand shares). */
    double bound = 1 - fmin(x->cpu / c->cpu_capacity, x->mem / c->mem_capacity) + 2 * EPS;
    uint32_t n = 0;
    if (w->n_heap) w->walk[n++] = 0;
    while (n) {
        uint32_t i = w->walk[0];
        /* pop */
        uint32_t last = w->walk[--n];
        if (n) {
            uint32_t k = 0;
            for (;;) {
                uint32_t ch = 2 * k + 1;
                if (ch >= n) break;
                if (ch + 1 < n && walk_less(w, w->walk[ch + 1], w->walk[ch])) ch++;
                if (!walk_less(w, w->walk[ch], last)) break;
                w->walk[k] = w->walk[ch];
                k = ch;
            }
            w->walk[k] = last;
        }
        uint32_t p = w->heap[i];
        if (w->key[p] > bound) break;
        const ps_sim_proc *h = &w->proc[p];
        if (p != host && h->cpu_load + x->cpu <= cpu_cap && h->mem_load + x->mem <= mem_cap &&
            !ps_sim_group_touches(w, wl, p) && (!ok || ok(ctx, w, wl, p)))
            return p;
        for (uint32_t ch = 2 * i + 1; ch <= 2 * i + 2 && ch < w->n_heap; ch++) {
            uint32_t k = n++;
            while (k > 0 && walk_less(w, ch, w->walk[(k - 1) / 2])) {
                w->walk[k] = w->walk[(k - 1) / 2];
                k = (k - 1) / 2;
            }
            w->walk[k] = ch;
        }
    }
    return PS_SIM_NONE;
}

/* --------------------------------------------------------- observation */

int ps_sim_heartbeat(const ps_sim_world *w, uint32_t p, float *row)
{
    if (!w->proc[p].alive) return 0;
    ps_sim_row(w->sc, p, w->t, row);
    return 1;
}

void ps_sim_utilization(const ps_sim_world *w, uint32_t p, double *cpu, double *mem)
{
    *cpu = w->proc[p].cpu_load / w->sc->cfg.cpu_capacity;
    *mem = w->proc[p].mem_load / w->sc->cfg.mem_capacity;
}

uint32_t ps_sim_next_failure(const ps_sim_world *w, uint32_t p)
{
    const ps_sim_scenario *sc = w->sc;
    uint32_t i = sc->proc_fail_start[p] + w->proc[p].fail_next;
    return i < sc->proc_fail_start[p + 1] ? sc->failures[sc->proc_fail[i]].tick : PS_SIM_NONE;
}

/* ------------------------------------------------------------ lifetime */

int ps_sim_world_init(ps_sim_world *w, const ps_sim_scenario *sc, const ps_sim_policy *pol,
                      char *err, size_t errlen)
{
    if (!w || !sc || !pol) return ps_fail(err, errlen, PS_EINVAL, "null argument");
    memset(w, 0, sizeof *w);
    w->sc = sc;
    w->pol = *pol;
    uint32_t P = sc->P, W = sc->W, T = sc->T;
    w->proc = calloc(P, sizeof *w->proc);
    w->wl = calloc(W ? W : 1, sizeof *w->wl);
    for (int k = 0; k < 2; k++) {
        w->ev_head[k] = malloc((size_t)T * sizeof *w->ev_head[k]);
        w->ev_tail[k] = malloc((size_t)T * sizeof *w->ev_tail[k]);
    }
    w->detected = malloc((size_t)P * sizeof *w->detected);
    w->heap = malloc((size_t)P * sizeof *w->heap);
    w->key = calloc(P, sizeof *w->key);
    w->walk = malloc((size_t)P * sizeof *w->walk);
    w->res.cum_interrupted_minutes = calloc(T, sizeof *w->res.cum_interrupted_minutes);
    w->res.cum_unnecessary = calloc(T, sizeof *w->res.cum_unnecessary);
    if (!w->proc || !w->wl || !w->ev_head[0] || !w->ev_head[1] || !w->ev_tail[0] ||
        !w->ev_tail[1] || !w->detected || !w->heap || !w->key || !w->walk ||
        !w->res.cum_interrupted_minutes || !w->res.cum_unnecessary) {
        ps_sim_world_free(w);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    for (int k = 0; k < 2; k++)
        for (uint32_t t = 0; t < T; t++)
            w->ev_head[k][t] = w->ev_tail[k][t] = PS_SIM_NONE;
    w->res.ticks = T;
    w->res.tick_seconds = sc->cfg.tick_seconds;
    for (uint32_t p = 0; p < P; p++) {
        ps_sim_proc *h = &w->proc[p];
        h->alive = 1;
        h->first = h->in_head = h->sh_head = h->sh_tail = PS_SIM_NONE;
        h->heap_pos = PS_SIM_NONE;
    }
    /* Descending ids pushed at the head: each host's list starts in ascending id. */
    for (uint32_t i = W; i-- > 0;) {
        const ps_sim_wspec *x = &sc->work[i];
        w->wl[i].transfer = PS_SIM_NONE;
        w->wl[i].state = PS_SIM_RUNNING;
        host_add(w, i, x->proc);
        w->proc[x->proc].cpu_load += x->cpu;
        w->proc[x->proc].mem_load += x->mem;
    }
    for (uint32_t p = 0; p < P; p++) {
        w->key[p] = fmax(w->proc[p].cpu_load / sc->cfg.cpu_capacity,
                         w->proc[p].mem_load / sc->cfg.mem_capacity);
        heap_insert(w, p);
    }
    int rc = ps_sim_policy_init(w, err, errlen);
    if (rc) {
        ps_sim_world_free(w);
        return rc;
    }
    return 0;
}

void ps_sim_results_free(ps_sim_results *r)
{
    if (!r) return;
    free(r->lead_ticks);
    free(r->cum_interrupted_minutes);
    free(r->cum_unnecessary);
    memset(r, 0, sizeof *r);
}

void ps_sim_world_free(ps_sim_world *w)
{
    if (!w) return;
    ps_sim_policy_free(w);
    free(w->proc);
    free(w->wl);
    free(w->tr);
    for (int k = 0; k < 2; k++) {
        free(w->ev_head[k]);
        free(w->ev_tail[k]);
    }
    free(w->ev_val);
    free(w->ev_next);
    free(w->hz);
    free(w->ends);
    free(w->outcomes);
    free(w->detected);
    free(w->heap);
    free(w->key);
    free(w->walk);
    ps_sim_results_free(&w->res);
    memset(w, 0, sizeof *w);
}

int ps_sim_run(const ps_sim_scenario *sc, const ps_sim_policy *pol, ps_sim_results *out, char *err,
               size_t errlen)
{
    if (!out) return ps_fail(err, errlen, PS_EINVAL, "null argument");
    memset(out, 0, sizeof *out);
    ps_sim_world w;
    int rc = ps_sim_world_init(&w, sc, pol, err, errlen);
    if (rc) return rc;
    while ((rc = ps_sim_world_step(&w, err, errlen)) == 1)
        ;
    if (rc == 0) {
        *out = *ps_sim_world_results(&w);
        memset(&w.res, 0, sizeof w.res);
    }
    ps_sim_world_free(&w);
    return rc;
}
