/*
 * workload_file.h - the shifting manager's input: a line-oriented text file
 * that declares processor classes, processors, workloads, replica groups
 * and dependencies (docs/workloads.md), loaded into a ps_cluster, and the
 * name <-> slot maps the manager needs to print and accept names.
 *
 *   class standard
 *   processor p1 class=standard cpu=16 mem=64GiB net=10Gbit/s
 *   workload  db on=p1 cpu=4 mem=16GiB state=8GiB criticality=5 group=db
 *   depends   api on db, cache
 *   flow      ingest -> parse -> store
 *
 * Names are what operators see; the cluster works on dense slots. A
 * ps_names holds one table per kind (classes, processors, workloads,
 * replica groups) mapping each name to the slot it was given and back.
 * Slots are given in declaration order on load; later additions take the
 * lowest free slot. Group slot 0 means "no group" and is never given.
 *
 * Loading checks the whole file before the cluster exists: every error
 * names the file, line and column and what was wrong (the first syntax
 * error, else the earliest reference that does not resolve), and on
 * failure the cluster is left zeroed and the names empty: nothing to free.
 */
#ifndef PRESHIFT_WORKLOAD_FILE_H
#define PRESHIFT_WORKLOAD_FILE_H

#include "core/cluster.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest name in bytes, plus its terminating NUL. */
#define PS_NAME_MAX 64
/* Longest agent address (agent=), plus its terminating NUL. */
#define PS_AGENT_URL_MAX 512

/* Failures beyond the PS_E* codes of kernels.h. */
enum {
    PS_WL_EPARSE = -140, /* the file is malformed or inconsistent: FILE:LINE:COL: what */
    PS_WL_EIO = -141,    /* the file could not be opened or read (strerror follows) */
};

/* One kind of name: slot -> name and name -> slot (an open-addressed hash). */
typedef struct ps_name_table {
    char **name;       /* [cap]; NULL for a free slot */
    uint32_t cap;      /* slots allocated */
    uint32_t len;      /* one past the highest slot ever used */
    uint32_t count;    /* names present */
    uint32_t first;    /* lowest slot ever given (1 for groups, else 0) */
    uint32_t *hash;    /* [hash_cap] slot + 1, 0 = empty */
    uint32_t hash_cap; /* a power of two, or 0 */
} ps_name_table;

/*
 * What the manager knows of a processor beyond the cluster model: the id
 * its heartbeats carry to the scoring server and its agent's transfer
 * socket.
 */
typedef struct ps_proc_info {
    uint8_t set; /* 0: nothing given, the id is the hash of the name */
    uint64_t id; /* the processor id of its heartbeats */
    char *agent; /* its agent's transfer address; NULL = none */
} ps_proc_info;

typedef struct ps_names {
    ps_name_table classes;    /* slot = ps_processor.cls */
    ps_name_table processors; /* slot = processor id */
    ps_name_table workloads;  /* slot = workload id */
    ps_name_table groups;     /* slot = ps_workload.group, from 1 */
    ps_proc_info *info;       /* [info_cap] by processor slot */
    uint32_t info_cap;
} ps_names;

/* Empty tables (group slots start at 1). ps_names_free releases and re-empties them. */
void ps_names_init(ps_names *n);
void ps_names_free(ps_names *n);

/*
 * The default processor id: the 64-bit FNV-1a hash of its name, the same
 * hash `preshift agent` makes of its host name, so that a processor named
 * after its host matches an agent started there without --id.
 */
uint64_t ps_processor_default_id(const char *name);

/* Set processor slot's id and agent address (NULL or "" = none); 0 or PS_ENOMEM. */
int ps_names_set_info(ps_names *n, uint32_t slot, uint64_t id, const char *agent, char *err,
                      size_t errlen);
/* The id of processor slot: its id= or, when none was set, the hash of its name (0 if no name). */
uint64_t ps_names_processor_id(const ps_names *n, uint32_t slot);
/* The agent address of processor slot, "" when none. */
const char *ps_names_agent(const ps_names *n, uint32_t slot);
/* Free processor slot: its name and its id and agent. */
void ps_names_remove_processor(ps_names *n, uint32_t slot);

/*
 * 0 if s is a valid name: 1..PS_NAME_MAX-1 bytes, starting with a letter,
 * digit or '_', then letters, digits and "_.-:/", and no "->". Otherwise
 * PS_EINVAL with the reason (and the offending byte) in err.
 */
int ps_name_check(const char *s, char *err, size_t errlen);

/* The slot of name, or PS_NONE. */
uint32_t ps_name_find(const ps_name_table *t, const char *name);
/* The name at slot, or NULL if the slot is free or out of range. */
const char *ps_name_of(const ps_name_table *t, uint32_t slot);
/*
 * Give name the lowest free slot below limit (and at or above t->first):
 * 0 and *slot, PS_EINVAL (invalid name), PS_CLUSTER_EEXISTS (already
 * present; *slot is its slot), PS_CLUSTER_ECONFLICT (no free slot below
 * limit) or PS_ENOMEM.
 */
int ps_name_add(ps_name_table *t, const char *name, uint32_t limit, uint32_t *slot, char *err,
                size_t errlen);
/* Give name exactly this slot; refused if either is taken. */
int ps_name_set(ps_name_table *t, uint32_t slot, const char *name, char *err, size_t errlen);
/* Free the slot (a no-op if it is free). */
void ps_name_remove(ps_name_table *t, uint32_t slot);

/*
 * The minimum number of slots the loaded cluster gets, so the manager can
 * register processors, workloads and groups later (ps_cluster does not
 * grow). 0 = just what is loaded. Classes cannot be added to a cluster
 * after it is built; at most PS_THRESHOLD_MAX_CLASSES.
 */
typedef struct ps_load_room {
    uint32_t classes, processors, workloads, groups;
} ps_load_room;

/*
 * Parse the workload file at path and build *c and *names from it (both
 * overwritten; free them with ps_cluster_free and ps_names_free). room may
 * be NULL. 0, PS_WL_EPARSE ("path:line:col: message" in err), PS_WL_EIO,
 * PS_EINVAL (room asks for more than a cluster holds) or PS_ENOMEM. On
 * failure *c is zeroed and *names empty (ps_names_init).
 *
 * Processors declared alive=no are added, given their workloads, and then
 * marked dead, as a store restored after a failure would be.
 */
int ps_workload_load_file(const char *path, const ps_load_room *room, ps_cluster *c,
                          ps_names *names, char *err, size_t errlen);

/* The same from len bytes of text in memory; label stands for the path in messages. */
int ps_workload_load_string(const char *text, size_t len, const char *label,
                            const ps_load_room *room, ps_cluster *c, ps_names *names, char *err,
                            size_t errlen);

/*
 * One declaration in the file's syntax, parsed but not resolved (the names
 * it mentions need not exist): what the manager's control socket accepts.
 * `depends` and `flow` both give edges: edges[i][0] feeds edges[i][1].
 */
#define PS_DECL_MAX_EDGES 64

typedef enum ps_decl_kind {
    PS_DECL_CLASS = 1,
    PS_DECL_PROCESSOR = 2,
    PS_DECL_WORKLOAD = 3,
    PS_DECL_EDGES = 4,
} ps_decl_kind;

typedef struct ps_decl {
    ps_decl_kind kind;
    char name[PS_NAME_MAX]; /* class, processor or workload */
    /* processor */
    char cls[PS_NAME_MAX];
    double net; /* bandwidth, bytes per second */
    int alive;
    uint64_t id;                  /* id= or ps_processor_default_id(name) */
    char agent[PS_AGENT_URL_MAX]; /* "" = none */
    /* processor capacity or workload demand */
    double cpu, mem;
    /* workload */
    char on[PS_NAME_MAX], group[PS_NAME_MAX];
    double state, criticality;
    /* depends, flow */
    uint32_t n_edges;
    char edges[PS_DECL_MAX_EDGES][2][PS_NAME_MAX];
} ps_decl;

/*
 * Parse text holding exactly one declaration (comments and blank lines
 * aside) into *out. 0, or PS_WL_EPARSE with "label:line:col: message".
 */
int ps_workload_parse_decl(const char *text, size_t len, const char *label, ps_decl *out, char *err,
                           size_t errlen);

/*
 * Write c as a workload file that loads back to the same cluster: classes,
 * processors, workloads (sizes in the largest unit that is exact), then one
 * `depends` line per workload with dependencies. Transfers in flight are
 * not part of the format (the workloads are written on their hosts).
 * Every present slot needs a name. 0, PS_EINVAL (a slot without a name)
 * or PS_WL_EIO.
 */
int ps_workload_write(FILE *f, const ps_cluster *c, const ps_names *names, char *err,
                      size_t errlen);

#endif
