/*
 * cluster.c - the processors, workloads, replica groups and dependency
 * graph the policy reads (cluster.h).
 *
 * Every mutation validates all of its input before it changes anything, so
 * a refused request leaves the model exactly as it was: the manager can
 * pass requests from its socket straight through and reply with err.
 */
#include "cluster.h"
#include "error.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Slices start with this much room: most workloads have a handful of edges. */
enum { ADJ_MIN_CAP = 4 };
/* Compact only beyond this much waste, so small pools do not churn. */
enum { ADJ_COMPACT_MIN_WASTE = 4096 };

int ps_cluster_init(ps_cluster *c, uint32_t max_processors, uint32_t max_workloads,
                    uint32_t max_groups, uint16_t n_classes, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    memset(c, 0, sizeof *c);
    if (!max_processors || !max_workloads || !n_classes)
        return ps_fail(err, errlen, PS_EINVAL,
                       "cluster sizes must be positive (processors %u, workloads %u, classes %u)",
                       max_processors, max_workloads, (unsigned)n_classes);
    if (max_processors == PS_NONE || max_workloads == PS_NONE || max_groups == PS_NONE)
        return ps_fail(err, errlen, PS_EINVAL, "cluster sizes must be below %u", PS_NONE);
    c->proc = calloc(max_processors, sizeof *c->proc);
    c->work = calloc(max_workloads, sizeof *c->work);
    c->group_first = malloc(((size_t)max_groups + 1) * sizeof *c->group_first);
    if (!c->proc || !c->work || !c->group_first) {
        ps_cluster_free(c);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory for a cluster of %u x %u",
                       max_processors, max_workloads);
    }
    for (size_t g = 0; g <= max_groups; g++)
        c->group_first[g] = PS_NONE;
    c->max_processors = max_processors;
    c->max_workloads = max_workloads;
    c->max_groups = max_groups;
    c->n_classes = n_classes;
    return PS_OK;
}

void ps_cluster_free(ps_cluster *c)
{
    if (!c) return;
    free(c->proc);
    free(c->work);
    free(c->group_first);
    free(c->pool);
    memset(c, 0, sizeof *c);
}

/* ---- lookups that name what is wrong ---- */

static int need_processor(const ps_cluster *c, uint32_t id, char *err, size_t errlen)
{
    if (id >= c->max_processors)
        return ps_fail(err, errlen, PS_CLUSTER_EUNKNOWN, "processor %u is out of range (max %u)",
                       id, c->max_processors);
    if (!c->proc[id].present)
        return ps_fail(err, errlen, PS_CLUSTER_EUNKNOWN, "unknown processor %u", id);
    return PS_OK;
}

static int need_workload(const ps_cluster *c, uint32_t id, char *err, size_t errlen)
{
    if (id >= c->max_workloads)
        return ps_fail(err, errlen, PS_CLUSTER_EUNKNOWN, "workload %u is out of range (max %u)", id,
                       c->max_workloads);
    if (!c->work[id].present)
        return ps_fail(err, errlen, PS_CLUSTER_EUNKNOWN, "unknown workload %u", id);
    return PS_OK;
}

static int bad_unit(double v)
{
    return !isfinite(v) || v < 0.0 || v > 1.0;
}

/* ---- processors ---- */

int ps_cluster_add_processor(ps_cluster *c, uint32_t id, const ps_processor_spec *s, char *err,
                             size_t errlen)
{
    if (!c || !s) return ps_fail(err, errlen, PS_EINVAL, "no cluster or processor spec");
    if (id >= c->max_processors)
        return ps_fail(err, errlen, PS_CLUSTER_EUNKNOWN, "processor %u is out of range (max %u)",
                       id, c->max_processors);
    if (c->proc[id].present)
        return ps_fail(err, errlen, PS_CLUSTER_EEXISTS, "processor %u already exists", id);
    if (s->cls >= c->n_classes)
        return ps_fail(err, errlen, PS_EINVAL, "processor %u: class %u out of range (%u classes)",
                       id, (unsigned)s->cls, (unsigned)c->n_classes);
    if (!(isfinite(s->cpu_capacity) && s->cpu_capacity > 0) ||
        !(isfinite(s->mem_capacity) && s->mem_capacity > 0) ||
        !(isfinite(s->net_bandwidth) && s->net_bandwidth > 0))
        return ps_fail(err, errlen, PS_EINVAL,
                       "processor %u: capacities must be finite and > 0 (cpu %g, mem %g, net %g)",
                       id, s->cpu_capacity, s->mem_capacity, s->net_bandwidth);
    ps_processor *p = &c->proc[id];
    memset(p, 0, sizeof *p);
    p->present = 1;
    p->alive = 1;
    p->cls = s->cls;
    p->cpu_capacity = s->cpu_capacity;
    p->mem_capacity = s->mem_capacity;
    p->net_bandwidth = s->net_bandwidth;
    p->first = PS_NONE;
    c->n_processors++;
    return PS_OK;
}

int ps_cluster_remove_processor(ps_cluster *c, uint32_t id, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_processor(c, id, err, errlen);
    if (rc) return rc;
    const ps_processor *p = &c->proc[id];
    if (p->n_workloads || p->inbound)
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT,
                       "processor %u still hosts %u workload(s) and receives %u transfer(s)", id,
                       p->n_workloads, p->inbound);
    memset(&c->proc[id], 0, sizeof c->proc[id]);
    c->n_processors--;
    return PS_OK;
}

int ps_cluster_set_alive(ps_cluster *c, uint32_t id, int alive, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_processor(c, id, err, errlen);
    if (rc) return rc;
    c->proc[id].alive = alive ? 1 : 0;
    return PS_OK;
}

int ps_cluster_set_load(ps_cluster *c, uint32_t id, double cpu_util, double mem_util,
                        double net_util, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_processor(c, id, err, errlen);
    if (rc) return rc;
    if (bad_unit(cpu_util) || bad_unit(mem_util) || bad_unit(net_util))
        return ps_fail(err, errlen, PS_EINVAL,
                       "processor %u: utilizations must be in [0, 1] (cpu %g, mem %g, net %g)", id,
                       cpu_util, mem_util, net_util);
    ps_processor *p = &c->proc[id];
    p->cpu_util = cpu_util;
    p->mem_util = mem_util;
    p->net_util = net_util;
    return PS_OK;
}

int ps_cluster_set_pfp(ps_cluster *c, uint32_t id, double pfp, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_processor(c, id, err, errlen);
    if (rc) return rc;
    if (bad_unit(pfp))
        return ps_fail(err, errlen, PS_EINVAL, "processor %u: PFP %g is not in [0, 1]", id, pfp);
    c->proc[id].pfp = pfp;
    return PS_OK;
}

/* ---- intrusive lists ---- */

static void host_link(ps_cluster *c, uint32_t w, uint32_t p)
{
    ps_workload *x = &c->work[w];
    ps_processor *h = &c->proc[p];
    x->proc = p;
    x->prev = PS_NONE;
    x->next = h->first;
    if (h->first != PS_NONE) c->work[h->first].prev = w;
    h->first = w;
    h->n_workloads++;
}

static void host_unlink(ps_cluster *c, uint32_t w)
{
    ps_workload *x = &c->work[w];
    ps_processor *h = &c->proc[x->proc];
    if (x->prev != PS_NONE)
        c->work[x->prev].next = x->next;
    else
        h->first = x->next;
    if (x->next != PS_NONE) c->work[x->next].prev = x->prev;
    h->n_workloads--;
    x->next = x->prev = PS_NONE;
}

static void group_link(ps_cluster *c, uint32_t w)
{
    ps_workload *x = &c->work[w];
    x->gprev = x->gnext = PS_NONE;
    if (!x->group) return;
    uint32_t head = c->group_first[x->group];
    x->gnext = head;
    if (head != PS_NONE) c->work[head].gprev = w;
    c->group_first[x->group] = w;
}

static void group_unlink(ps_cluster *c, uint32_t w)
{
    ps_workload *x = &c->work[w];
    if (!x->group) return;
    if (x->gprev != PS_NONE)
        c->work[x->gprev].gnext = x->gnext;
    else
        c->group_first[x->group] = x->gnext;
    if (x->gnext != PS_NONE) c->work[x->gnext].gprev = x->gprev;
    x->gprev = x->gnext = PS_NONE;
}

int ps_cluster_group_touches(const ps_cluster *c, uint32_t group, uint32_t p, uint32_t except)
{
    if (!group || group > c->max_groups) return 0;
    for (uint32_t m = c->group_first[group]; m != PS_NONE; m = c->work[m].gnext) {
        if (m == except) continue;
        if (c->work[m].proc == p || c->work[m].dest == p) return 1;
    }
    return 0;
}

/* ---- the adjacency pool ---- */

/* Rewrite the pool with every slice packed at its current capacity. */
static int pool_compact(ps_cluster *c, uint32_t extra)
{
    uint64_t need = (uint64_t)c->pool_len - c->pool_waste + extra;
    uint64_t cap = need < 1024 ? 1024 : need * 2;
    if (cap > UINT32_MAX - 1) cap = UINT32_MAX - 1;
    if (need > cap) return PS_ENOMEM;
    uint32_t *np = malloc((size_t)cap * sizeof *np);
    if (!np) return PS_ENOMEM;
    uint32_t at = 0;
    for (uint32_t w = 0; w < c->max_workloads; w++) {
        ps_workload *x = &c->work[w];
        if (!x->present) continue;
        ps_adj_slice *sl[2] = {&x->out, &x->in};
        for (int k = 0; k < 2; k++) {
            if (!sl[k]->cap) continue;
            memcpy(np + at, c->pool + sl[k]->start, sl[k]->len * sizeof *np);
            sl[k]->start = at;
            at += sl[k]->cap;
        }
    }
    free(c->pool);
    c->pool = np;
    c->pool_len = at;
    c->pool_cap = (uint32_t)cap;
    c->pool_waste = 0;
    return PS_OK;
}

/* Room for one more id in slice s: in place at the pool's end, else moved there, doubled. */
static int slice_grow(ps_cluster *c, ps_adj_slice *s)
{
    if (s->len < s->cap) return PS_OK;
    uint32_t ncap = s->cap ? s->cap * 2 : ADJ_MIN_CAP;
    int at_end = s->cap && s->start + s->cap == c->pool_len;
    uint32_t grow = at_end ? ncap - s->cap : ncap;
    if ((uint64_t)c->pool_len + grow > c->pool_cap) {
        if (c->pool_waste > ADJ_COMPACT_MIN_WASTE && c->pool_waste > c->pool_len / 2) {
            if (pool_compact(c, ncap) != PS_OK) return PS_ENOMEM;
            at_end = s->cap && s->start + s->cap == c->pool_len;
            grow = at_end ? ncap - s->cap : ncap;
        }
        if ((uint64_t)c->pool_len + grow > c->pool_cap) {
            uint64_t cap = c->pool_cap ? (uint64_t)c->pool_cap * 2 : 1024;
            while (cap < (uint64_t)c->pool_len + grow)
                cap *= 2;
            if (cap > UINT32_MAX - 1) return PS_ENOMEM;
            uint32_t *np = realloc(c->pool, (size_t)cap * sizeof *np);
            if (!np) return PS_ENOMEM;
            c->pool = np;
            c->pool_cap = (uint32_t)cap;
        }
    }
    if (!at_end) {
        if (s->len) memcpy(c->pool + c->pool_len, c->pool + s->start, s->len * sizeof *c->pool);
        c->pool_waste += s->cap;
        s->start = c->pool_len;
    }
    c->pool_len += grow;
    s->cap = ncap;
    return PS_OK;
}

static int slice_find(const ps_cluster *c, const ps_adj_slice *s, uint32_t v)
{
    const uint32_t *a = c->pool + s->start;
    for (uint32_t i = 0; i < s->len; i++)
        if (a[i] == v) return (int)i;
    return -1;
}

static void slice_remove_at(ps_cluster *c, ps_adj_slice *s, uint32_t i)
{
    uint32_t *a = c->pool + s->start;
    a[i] = a[s->len - 1];
    s->len--;
}

static void slice_release(ps_cluster *c, ps_adj_slice *s)
{
    c->pool_waste += s->cap;
    memset(s, 0, sizeof *s);
}

/* ---- workloads ---- */

int ps_cluster_add_workload(ps_cluster *c, uint32_t id, const ps_workload_spec *s, char *err,
                            size_t errlen)
{
    if (!c || !s) return ps_fail(err, errlen, PS_EINVAL, "no cluster or workload spec");
    if (id >= c->max_workloads)
        return ps_fail(err, errlen, PS_CLUSTER_EUNKNOWN, "workload %u is out of range (max %u)", id,
                       c->max_workloads);
    if (c->work[id].present)
        return ps_fail(err, errlen, PS_CLUSTER_EEXISTS, "workload %u already exists", id);
    if (!(isfinite(s->cpu) && s->cpu >= 0) || !(isfinite(s->mem) && s->mem >= 0) ||
        !(isfinite(s->state_bytes) && s->state_bytes >= 0) ||
        !(isfinite(s->criticality) && s->criticality >= 0))
        return ps_fail(err, errlen, PS_EINVAL,
                       "workload %u: cpu %g, mem %g, state %g bytes and criticality %g must be "
                       "finite and >= 0",
                       id, s->cpu, s->mem, s->state_bytes, s->criticality);
    if (s->group > c->max_groups)
        return ps_fail(err, errlen, PS_EINVAL,
                       "workload %u: replica group %u out of range (max %u)", id, s->group,
                       c->max_groups);
    int rc = need_processor(c, s->proc, err, errlen);
    if (rc) return rc;
    if (!c->proc[s->proc].alive)
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT, "workload %u: processor %u is not alive",
                       id, s->proc);
    if (ps_cluster_group_touches(c, s->group, s->proc, PS_NONE))
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT,
                       "workload %u: processor %u already holds a replica of group %u", id, s->proc,
                       s->group);
    ps_workload *x = &c->work[id];
    memset(x, 0, sizeof *x);
    x->present = 1;
    x->dest = PS_NONE;
    x->group = s->group;
    x->cpu = s->cpu;
    x->mem = s->mem;
    x->state_bytes = s->state_bytes;
    x->criticality = s->criticality;
    host_link(c, id, s->proc);
    group_link(c, id);
    c->n_workloads++;
    return PS_OK;
}

static void release_reservation(ps_cluster *c, uint32_t w)
{
    ps_workload *x = &c->work[w];
    ps_processor *t = &c->proc[x->dest];
    t->cpu_reserved -= x->cpu;
    t->mem_reserved -= x->mem;
    /* Sums of doubles need not cancel exactly; an empty destination owes nothing. */
    if (--t->inbound == 0) t->cpu_reserved = t->mem_reserved = 0.0;
    x->dest = PS_NONE;
}

int ps_cluster_remove_workload(ps_cluster *c, uint32_t id, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_workload(c, id, err, errlen);
    if (rc) return rc;
    ps_workload *x = &c->work[id];
    const uint32_t *a = c->pool + x->out.start;
    for (uint32_t i = 0; i < x->out.len; i++) {
        ps_adj_slice *in = &c->work[a[i]].in;
        slice_remove_at(c, in, (uint32_t)slice_find(c, in, id));
    }
    a = c->pool + x->in.start;
    for (uint32_t i = 0; i < x->in.len; i++) {
        ps_adj_slice *out = &c->work[a[i]].out;
        slice_remove_at(c, out, (uint32_t)slice_find(c, out, id));
    }
    c->n_edges -= x->out.len + x->in.len;
    slice_release(c, &x->out);
    slice_release(c, &x->in);
    if (x->dest != PS_NONE) release_reservation(c, id);
    host_unlink(c, id);
    group_unlink(c, id);
    memset(x, 0, sizeof *x);
    c->n_workloads--;
    return PS_OK;
}

/* ---- edges ---- */

int ps_cluster_add_edge(ps_cluster *c, uint32_t a, uint32_t b, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_workload(c, a, err, errlen);
    if (!rc) rc = need_workload(c, b, err, errlen);
    if (rc) return rc;
    if (a == b)
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT, "workload %u cannot depend on itself", a);
    if (slice_find(c, &c->work[a].out, b) >= 0)
        return ps_fail(err, errlen, PS_CLUSTER_EEXISTS, "edge %u -> %u already exists", a, b);
    /* Grow both slices before writing either, so a failure leaves no half edge. */
    if (slice_grow(c, &c->work[a].out) || slice_grow(c, &c->work[b].in))
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory for edge %u -> %u", a, b);
    ps_adj_slice *o = &c->work[a].out, *i = &c->work[b].in;
    c->pool[o->start + o->len++] = b;
    c->pool[i->start + i->len++] = a;
    c->n_edges++;
    return PS_OK;
}

int ps_cluster_remove_edge(ps_cluster *c, uint32_t a, uint32_t b, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_workload(c, a, err, errlen);
    if (!rc) rc = need_workload(c, b, err, errlen);
    if (rc) return rc;
    int at = slice_find(c, &c->work[a].out, b);
    if (at < 0) return ps_fail(err, errlen, PS_CLUSTER_EUNKNOWN, "no edge %u -> %u", a, b);
    slice_remove_at(c, &c->work[a].out, (uint32_t)at);
    ps_adj_slice *in = &c->work[b].in;
    slice_remove_at(c, in, (uint32_t)slice_find(c, in, a));
    c->n_edges--;
    return PS_OK;
}

/* ---- moves ---- */

static int check_target(const ps_cluster *c, uint32_t w, uint32_t target, char *err, size_t errlen)
{
    int rc = need_processor(c, target, err, errlen);
    if (rc) return rc;
    const ps_workload *x = &c->work[w];
    if (!c->proc[target].alive)
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT,
                       "workload %u: target processor %u is not alive", w, target);
    if (x->proc == target)
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT, "workload %u is already on processor %u",
                       w, target);
    if (ps_cluster_group_touches(c, x->group, target, w))
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT,
                       "workload %u: processor %u already holds a replica of group %u", w, target,
                       x->group);
    return PS_OK;
}

int ps_cluster_begin_transfer(ps_cluster *c, uint32_t w, uint32_t target, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_workload(c, w, err, errlen);
    if (rc) return rc;
    ps_workload *x = &c->work[w];
    if (x->dest != PS_NONE)
        return ps_fail(err, errlen, PS_CLUSTER_ETRANSFER,
                       "workload %u already has a transfer in flight to processor %u", w, x->dest);
    rc = check_target(c, w, target, err, errlen);
    if (rc) return rc;
    ps_processor *t = &c->proc[target];
    t->cpu_reserved += x->cpu;
    t->mem_reserved += x->mem;
    t->inbound++;
    x->dest = target;
    return PS_OK;
}

/* Shift w's demand between the heartbeat utilizations, which lag the move. */
static void move_load(ps_cluster *c, uint32_t w, uint32_t from, uint32_t to)
{
    const ps_workload *x = &c->work[w];
    ps_processor *s = &c->proc[from], *t = &c->proc[to];
    s->cpu_util = fmax(0.0, s->cpu_util - x->cpu / s->cpu_capacity);
    s->mem_util = fmax(0.0, s->mem_util - x->mem / s->mem_capacity);
    t->cpu_util = fmin(1.0, t->cpu_util + x->cpu / t->cpu_capacity);
    t->mem_util = fmin(1.0, t->mem_util + x->mem / t->mem_capacity);
}

int ps_cluster_finish_transfer(ps_cluster *c, uint32_t w, int committed, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_workload(c, w, err, errlen);
    if (rc) return rc;
    ps_workload *x = &c->work[w];
    if (x->dest == PS_NONE)
        return ps_fail(err, errlen, PS_CLUSTER_ETRANSFER, "workload %u has no transfer in flight",
                       w);
    uint32_t from = x->proc, to = x->dest;
    release_reservation(c, w);
    if (committed) {
        host_unlink(c, w);
        host_link(c, w, to);
        move_load(c, w, from, to);
    }
    return PS_OK;
}

int ps_cluster_move_workload(ps_cluster *c, uint32_t w, uint32_t target, char *err, size_t errlen)
{
    if (!c) return ps_fail(err, errlen, PS_EINVAL, "no cluster");
    int rc = need_workload(c, w, err, errlen);
    if (rc) return rc;
    if (c->work[w].dest != PS_NONE)
        return ps_fail(err, errlen, PS_CLUSTER_ETRANSFER,
                       "workload %u has a transfer in flight to processor %u; finish it first", w,
                       c->work[w].dest);
    rc = check_target(c, w, target, err, errlen);
    if (rc) return rc;
    uint32_t from = c->work[w].proc;
    host_unlink(c, w);
    host_link(c, w, target);
    move_load(c, w, from, target);
    return PS_OK;
}

/* ---- whole-cluster views ---- */

double ps_cluster_mean_utilization(const ps_cluster *c)
{
    double sum = 0.0;
    uint32_t n = 0;
    for (uint32_t p = 0; p < c->max_processors; p++) {
        const ps_processor *x = &c->proc[p];
        if (!x->present || !x->alive) continue;
        sum += fmax(x->cpu_util, x->mem_util);
        n++;
    }
    return n ? sum / n : 0.0;
}

int ps_cluster_check(const ps_cluster *c, char *err, size_t errlen)
{
    const int E = PS_EINVAL;
    uint32_t np = 0, nw = 0;
    uint64_t ne = 0;
    for (uint32_t p = 0; p < c->max_processors; p++) {
        const ps_processor *x = &c->proc[p];
        if (!x->present) continue;
        np++;
        uint32_t n = 0;
        for (uint32_t w = x->first; w != PS_NONE; w = c->work[w].next) {
            if (w >= c->max_workloads || !c->work[w].present || c->work[w].proc != p)
                return ps_fail(err, errlen, E, "processor %u lists workload %u wrongly", p, w);
            if (++n > x->n_workloads) break;
        }
        if (n != x->n_workloads)
            return ps_fail(err, errlen, E, "processor %u counts %u workloads, lists %u", p,
                           x->n_workloads, n);
    }
    for (uint32_t w = 0; w < c->max_workloads; w++) {
        const ps_workload *x = &c->work[w];
        if (!x->present) continue;
        nw++;
        if (x->proc >= c->max_processors || !c->proc[x->proc].present)
            return ps_fail(err, errlen, E, "workload %u is on unknown processor %u", w, x->proc);
        if (x->dest != PS_NONE && (x->dest >= c->max_processors || !c->proc[x->dest].present))
            return ps_fail(err, errlen, E, "workload %u heads to unknown processor %u", w, x->dest);
        for (uint32_t m = x->group ? c->group_first[x->group] : PS_NONE; m != PS_NONE;
             m = c->work[m].gnext) {
            if (m == w) continue;
            const ps_workload *y = &c->work[m];
            if (y->proc == x->proc || y->proc == x->dest ||
                (y->dest != PS_NONE && (y->dest == x->proc || y->dest == x->dest)))
                return ps_fail(err, errlen, E, "replicas %u and %u of group %u share a processor",
                               w, m, x->group);
        }
        uint32_t n;
        const uint32_t *a = ps_cluster_dependents(c, w, &n);
        for (uint32_t i = 0; i < n; i++) {
            if (a[i] >= c->max_workloads || !c->work[a[i]].present || a[i] == w)
                return ps_fail(err, errlen, E, "workload %u has a bad dependent %u", w, a[i]);
            if (slice_find(c, &c->work[a[i]].in, w) < 0)
                return ps_fail(err, errlen, E, "edge %u -> %u lacks its reverse", w, a[i]);
            for (uint32_t j = 0; j < i; j++)
                if (a[j] == a[i])
                    return ps_fail(err, errlen, E, "edge %u -> %u is duplicated", w, a[i]);
        }
        ne += n;
        const uint32_t *b = ps_cluster_dependencies(c, w, &n);
        for (uint32_t i = 0; i < n; i++)
            if (b[i] >= c->max_workloads || slice_find(c, &c->work[b[i]].out, w) < 0)
                return ps_fail(err, errlen, E, "reverse edge %u <- %u has no edge", w, b[i]);
    }
    if (np != c->n_processors || nw != c->n_workloads || ne != c->n_edges)
        return ps_fail(err, errlen, E,
                       "counts disagree: %u/%u processors, %u/%u workloads, %llu/%llu edges", np,
                       c->n_processors, nw, c->n_workloads, (unsigned long long)ne,
                       (unsigned long long)c->n_edges);
    return PS_OK;
}
