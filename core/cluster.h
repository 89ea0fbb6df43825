/*
 * cluster.h - the in-memory model the shifting policy reads: processors,
 * the workloads they host, replica groups, and the directed dependency
 * graph between workloads.
 *
 * Ids are dense slots chosen by the manager (as the scoring server maps
 * processor ids to slots): a processor id is in [0, max_processors), a
 * workload id in [0, max_workloads), a replica group in [1, max_groups]
 * (0 = no group). Dense ids make every lookup an index, every change O(1)
 * or O(degree), and "ties broken by id" a plain integer comparison.
 *
 * An edge a -> b means "b depends on a": a's output feeds b, so when a
 * pauses or is lost, b stalls. out-edges of a are its dependents, in-edges
 * its dependencies. Both directions are kept in one pooled CSR: each
 * workload owns a slice (start, len, cap) of one uint32 array. A slice that
 * fills moves to the end of the pool with twice the room, and the pool is
 * compacted when more than half of it is abandoned slices, so adding or
 * removing an edge is amortized O(degree) and a hot-path scan of one
 * workload's neighbours is one contiguous read.
 *
 * The workloads of one processor and the members of one replica group are
 * intrusive doubly linked lists through the workload records: moving a
 * workload is O(1).
 *
 * A transfer in flight (ps_cluster_begin_transfer) reserves the workload's
 * demand on its destination, so that a target is never overloaded by moves
 * its heartbeats do not show yet, and counts as the workload already being
 * there for replica anti-affinity. The workload stays on its source until
 * ps_cluster_finish_transfer commits or rolls back.
 *
 * Nothing here does I/O or keeps a clock; every function that can refuse
 * returns a negative code and writes the reason into the caller's buffer.
 */
#ifndef PRESHIFT_CLUSTER_H
#define PRESHIFT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

/* "No processor" / "no workload" wherever an id is expected. */
#define PS_NONE UINT32_MAX

/* Refusals of the mutation functions beyond kernels.h's PS_EINVAL and PS_ENOMEM. */
enum {
    PS_CLUSTER_EUNKNOWN = -60,  /* an id names no present processor or workload */
    PS_CLUSTER_EEXISTS = -61,   /* the id is already present / the edge already exists */
    PS_CLUSTER_ECONFLICT = -62, /* replica anti-affinity, self-loop, busy processor */
    PS_CLUSTER_ETRANSFER = -63, /* a transfer is (or is not) in flight for the workload */
};

typedef struct ps_processor {
    uint8_t present;      /* the slot is in use */
    uint8_t alive;        /* reporting and able to host; 0 after a failure */
    uint16_t cls;         /* processor class: indexes the per-class thresholds */
    double cpu_capacity;  /* cores (any unit, the same as workload cpu demand), > 0 */
    double mem_capacity;  /* bytes, > 0 */
    double net_bandwidth; /* bytes per second the processor can send, > 0 */
    /* Utilization in [0, 1] from the latest heartbeat (adjusted by committed moves). */
    double cpu_util, mem_util, net_util;
    double pfp; /* latest predictive failure probability, [0, 1] */
    /* Demand of transfers in flight to this processor, in capacity units. */
    double cpu_reserved, mem_reserved;
    uint32_t inbound;     /* transfers in flight to this processor */
    uint32_t n_workloads; /* workloads hosted (transfers in flight away included) */
    uint32_t first;       /* head of the hosted-workload list, PS_NONE if empty */
} ps_processor;

/* One slice of the adjacency pool. */
typedef struct ps_adj_slice {
    uint32_t start, len, cap;
} ps_adj_slice;

typedef struct ps_workload {
    uint8_t present;
    uint32_t proc;         /* host processor */
    uint32_t dest;         /* destination of the transfer in flight, PS_NONE if none */
    uint32_t group;        /* replica group, 0 if none */
    double cpu, mem;       /* demand in the processors' capacity units */
    double state_bytes;    /* what a transfer has to copy */
    double criticality;    /* weight of one second of its interruption, >= 0 */
    uint32_t next, prev;   /* hosted-workload list of proc */
    uint32_t gnext, gprev; /* replica group list */
    ps_adj_slice out, in;  /* dependents, dependencies */
} ps_workload;

typedef struct ps_cluster {
    uint32_t max_processors, max_workloads, max_groups;
    uint16_t n_classes;
    uint32_t n_processors, n_workloads; /* present */
    uint64_t n_edges;
    ps_processor *proc;
    ps_workload *work;
    uint32_t *group_first; /* [max_groups + 1], PS_NONE if empty */
    uint32_t *pool;        /* adjacency slices */
    uint32_t pool_len, pool_cap, pool_waste;
} ps_cluster;

typedef struct ps_processor_spec {
    uint16_t cls;
    double cpu_capacity, mem_capacity, net_bandwidth;
} ps_processor_spec;

typedef struct ps_workload_spec {
    uint32_t proc;
    double cpu, mem, state_bytes, criticality;
    uint32_t group;
} ps_workload_spec;

/*
 * An empty cluster with room for the given ids and n_classes processor
 * classes (1..65535). 0, PS_EINVAL (a zero size) or PS_ENOMEM; c zeroed on
 * failure.
 */
int ps_cluster_init(ps_cluster *c, uint32_t max_processors, uint32_t max_workloads,
                    uint32_t max_groups, uint16_t n_classes, char *err, size_t errlen);
void ps_cluster_free(ps_cluster *c);

/* A new processor, alive, idle, PFP 0. PS_EINVAL for a bad spec, PS_CLUSTER_EEXISTS. */
int ps_cluster_add_processor(ps_cluster *c, uint32_t id, const ps_processor_spec *s, char *err,
                             size_t errlen);
/* Refused (PS_CLUSTER_ECONFLICT) while it hosts workloads or transfers head to it. */
int ps_cluster_remove_processor(ps_cluster *c, uint32_t id, char *err, size_t errlen);
int ps_cluster_set_alive(ps_cluster *c, uint32_t id, int alive, char *err, size_t errlen);
/* A heartbeat's utilizations, each finite and in [0, 1]. */
int ps_cluster_set_load(ps_cluster *c, uint32_t id, double cpu_util, double mem_util,
                        double net_util, char *err, size_t errlen);
/* The scoring server's PFP, finite, in [0, 1]. */
int ps_cluster_set_pfp(ps_cluster *c, uint32_t id, double pfp, char *err, size_t errlen);

/*
 * A new workload on a present, alive processor. Demands finite and >= 0,
 * criticality finite and >= 0, group in [0, max_groups]; refused
 * (PS_CLUSTER_ECONFLICT) if the processor already hosts or receives a
 * replica of the same group.
 */
int ps_cluster_add_workload(ps_cluster *c, uint32_t id, const ps_workload_spec *s, char *err,
                            size_t errlen);
/* Also drops its edges (O(sum of its neighbours' degrees)) and any transfer in flight. */
int ps_cluster_remove_workload(ps_cluster *c, uint32_t id, char *err, size_t errlen);

/* b depends on a. Refused for unknown ids, a == b, an edge already present. */
int ps_cluster_add_edge(ps_cluster *c, uint32_t a, uint32_t b, char *err, size_t errlen);
int ps_cluster_remove_edge(ps_cluster *c, uint32_t a, uint32_t b, char *err, size_t errlen);

/*
 * Start moving w to target: reserves w's demand on target. Refused for an
 * unknown or dead target, target == host, a transfer already in flight, or a
 * replica of w's group on (or heading to) target. Capacity is the policy's
 * concern, not checked here, so that an operator can force a move.
 */
int ps_cluster_begin_transfer(ps_cluster *c, uint32_t w, uint32_t target, char *err, size_t errlen);
/*
 * End w's transfer: committed moves it (source and target utilizations are
 * adjusted by its demand until their next heartbeats say otherwise), not
 * committed rolls it back. Either way the reservation is released.
 */
int ps_cluster_finish_transfer(ps_cluster *c, uint32_t w, int committed, char *err, size_t errlen);
/* Move at once (reactive failover, operator): like begin + commit. */
int ps_cluster_move_workload(ps_cluster *c, uint32_t w, uint32_t target, char *err, size_t errlen);

/* Where w will be: its transfer's destination if one is in flight, else its host. */
static inline uint32_t ps_cluster_where(const ps_cluster *c, uint32_t w)
{
    const ps_workload *x = &c->work[w];
    return x->dest != PS_NONE ? x->dest : x->proc;
}

/* w's dependents (out) and dependencies (in): n ids, valid until the next edge change. */
static inline const uint32_t *ps_cluster_dependents(const ps_cluster *c, uint32_t w, uint32_t *n)
{
    *n = c->work[w].out.len;
    return c->pool + c->work[w].out.start;
}
static inline const uint32_t *ps_cluster_dependencies(const ps_cluster *c, uint32_t w, uint32_t *n)
{
    *n = c->work[w].in.len;
    return c->pool + c->work[w].in.start;
}

/*
 * 1 if a member of group other than except sits on p or is heading to p,
 * else 0 (always 0 for group 0). O(group size).
 */
int ps_cluster_group_touches(const ps_cluster *c, uint32_t group, uint32_t p, uint32_t except);

/* Mean over alive processors of max(cpu, mem) utilization: how loaded the cluster is. */
double ps_cluster_mean_utilization(const ps_cluster *c);

/* Check every invariant (lists, counts, adjacency symmetry, anti-affinity); O(N + E). */
int ps_cluster_check(const ps_cluster *c, char *err, size_t errlen);

#endif
