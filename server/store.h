/*
 * store.h - the shifting manager's durable state in one SQLite file
 * (docs/store.md): the workload map and dependency graph, transfers and
 * their outcomes, policy decisions and the history of thresholds.
 *
 * Everything is keyed by name (workload_file.h), never by slot: slots are
 * given anew each time a cluster is loaded, names are what operators query.
 * History (transfers, decisions, thresholds) keeps the names as they were
 * and outlives the processors and workloads it names.
 *
 * Every write is one transaction (BEGIN IMMEDIATE ... COMMIT) that checks
 * everything before it commits, so a refused or failed call changes
 * nothing and a crash at any point leaves the store as it was before the
 * call or after it. The file is in WAL mode with synchronous=FULL: a call
 * that returned has reached the disk, so a transfer the manager started is
 * on record even after a power cut (see store.c). Readers (an operator's
 * sqlite3) do not block the manager.
 *
 * A ps_store is one SQLite connection: use it from one thread at a time.
 * Functions return 0 (or 1 where said) on success and a negative code with
 * the reason in err.
 */
#ifndef PRESHIFT_STORE_H
#define PRESHIFT_STORE_H

#include "core/cluster.h"
#include "core/decision.h"
#include "core/threshold.h"
#include "server/workload_file.h"

#include <stddef.h>
#include <stdint.h>

/* The schema this build writes; it opens stores of this version or older (migrating them). */
#define PS_STORE_SCHEMA_VERSION 2
/* SQLite's application_id of a preshift store ("PSHF"). */
#define PS_STORE_APPLICATION_ID 0x50534846

/* Longest transfer reason and finishing note, with the terminating NUL. */
#define PS_STORE_REASON_MAX 1024
#define PS_STORE_NOTE_MAX 256

/* Failures beyond the PS_E* codes of kernels.h. */
enum {
    PS_STORE_EIO = -150,       /* SQLite failed: I/O, disk full, locked (its message follows) */
    PS_STORE_ENOTSTORE = -151, /* the file is not a preshift store, or there is none */
    PS_STORE_EVERSION = -152,  /* written by a newer preshift: schema version above ours */
    PS_STORE_ENOTFOUND = -153, /* no such class, processor, workload, dependency or transfer */
    PS_STORE_EEXISTS = -154,   /* the name or dependency is already there */
    PS_STORE_ECONFLICT = -155, /* still in use, replica anti-affinity, a transfer's state */
};

typedef struct ps_store ps_store;

enum {
    PS_STORE_CREATE = 1, /* create the file (or initialize an empty one) if need be */
};

/*
 * Open the store at path (flags: PS_STORE_CREATE or 0), migrating an older
 * schema forward. Refused: no file without PS_STORE_CREATE, a file that is
 * not SQLite or not a preshift store (PS_STORE_ENOTSTORE), a store written
 * by a newer schema (PS_STORE_EVERSION). *out is NULL on failure.
 */
int ps_store_open(const char *path, int flags, ps_store **out, char *err, size_t errlen);
void ps_store_close(ps_store *s);
/* The schema version of the open store (PS_STORE_SCHEMA_VERSION once open). */
int ps_store_schema_version(const ps_store *s);

/* ---- the cluster ---- */

typedef struct ps_store_processor {
    char name[PS_NAME_MAX];
    char cls[PS_NAME_MAX];
    double cpu_capacity;  /* > 0, the workloads' cpu unit (cores) */
    double mem_capacity;  /* bytes, > 0 */
    double net_bandwidth; /* bytes per second, > 0 */
    int alive;
    uint64_t id; /* the id its heartbeats carry, unique (ps_processor_default_id) */
    char agent[PS_AGENT_URL_MAX]; /* its agent's transfer address, "" = none */
} ps_store_processor;

typedef struct ps_store_workload {
    char name[PS_NAME_MAX];
    char processor[PS_NAME_MAX];               /* its host */
    char group[PS_NAME_MAX];                   /* replica group, "" for none */
    double cpu, mem, state_bytes, criticality; /* each finite and >= 0 */
} ps_store_workload;

/*
 * The whole cluster into *c and *names (overwritten; free with
 * ps_cluster_free, ps_names_free), sized by room as in workload_file.h.
 * Slots follow the order of registration. Open transfers are begun in the
 * cluster (their destinations reserved), and dead processors marked dead
 * after their workloads are placed. On failure *c is zeroed, *names empty.
 */
int ps_store_load_cluster(ps_store *s, const ps_load_room *room, ps_cluster *c, ps_names *names,
                          char *err, size_t errlen);

/*
 * Replace classes, processors, workloads and dependencies by those of c,
 * in one transaction (e.g. from a workload file). Every present slot of c
 * needs a name in names. Refused (PS_STORE_ECONFLICT) while any transfer
 * is open, and for a cluster with transfers in flight. History is kept.
 */
int ps_store_replace_cluster(ps_store *s, const ps_cluster *c, const ps_names *names, char *err,
                             size_t errlen);

/* The record of processor id / workload w of a loaded cluster, for the calls below. */
int ps_store_processor_from(const ps_cluster *c, const ps_names *names, uint32_t id,
                            ps_store_processor *out, char *err, size_t errlen);
int ps_store_workload_from(const ps_cluster *c, const ps_names *names, uint32_t w,
                           ps_store_workload *out, char *err, size_t errlen);

int ps_store_add_class(ps_store *s, const char *name, char *err, size_t errlen);
/* Refused (PS_STORE_ECONFLICT) while a processor is of this class. */
int ps_store_remove_class(ps_store *s, const char *name, char *err, size_t errlen);

/* Its class must exist, its id be no other processor's. */
int ps_store_add_processor(ps_store *s, const ps_store_processor *p, char *err, size_t errlen);
/* Refused (PS_STORE_ECONFLICT, naming them) while it hosts workloads or receives transfers. */
int ps_store_remove_processor(ps_store *s, const char *name, char *err, size_t errlen);
int ps_store_set_alive(ps_store *s, const char *name, int alive, char *err, size_t errlen);
int ps_store_get_processor(ps_store *s, const char *name, ps_store_processor *out, char *err,
                           size_t errlen);

/*
 * On an existing, alive processor that holds no other replica of its group
 * (and receives none).
 */
int ps_store_add_workload(ps_store *s, const ps_store_workload *w, char *err, size_t errlen);
/*
 * Drops its dependencies; an open transfer of it ends rolled back with the
 * note "workload removed", as ps_cluster_remove_workload drops it.
 */
int ps_store_remove_workload(ps_store *s, const char *name, char *err, size_t errlen);
int ps_store_get_workload(ps_store *s, const char *name, ps_store_workload *out, char *err,
                          size_t errlen);
/*
 * Move at once (reactive failover, an operator): refused while a transfer
 * of it is open, to a dead or unknown processor, to its own host, or next
 * to a replica. Not recorded as a transfer.
 */
int ps_store_move_workload(ps_store *s, const char *workload, const char *processor, char *err,
                           size_t errlen);

/* b depends on a (the edge a -> b of core/cluster.h). */
int ps_store_add_dependency(ps_store *s, const char *a, const char *b, char *err, size_t errlen);
int ps_store_remove_dependency(ps_store *s, const char *a, const char *b, char *err, size_t errlen);

/* ---- transfers ---- */

/* Why a transfer was made: a proactive shift, or a reactive failover off a failed processor. */
typedef enum ps_transfer_kind {
    PS_STORE_SHIFT = 0,
    PS_STORE_FAILOVER = 1,
} ps_transfer_kind;

typedef enum ps_transfer_state {
    PS_STORE_PREPARED = 0,    /* in flight: begun, neither committed nor rolled back */
    PS_STORE_COMMITTED = 1,   /* the workload now runs on the destination */
    PS_STORE_ROLLED_BACK = 2, /* it stayed on the source */
} ps_transfer_state;

/* ps_store_transfer.outcome before one is recorded. */
#define PS_STORE_NO_OUTCOME (-1)

typedef struct ps_store_transfer {
    int64_t id; /* the manager's transfer id, > 0 */
    ps_transfer_kind kind;
    char workload[PS_NAME_MAX];
    char source[PS_NAME_MAX]; /* filled by the store: the workload's host when it began */
    char destination[PS_NAME_MAX];
    ps_transfer_state state;
    int64_t tick;                     /* the manager's tick of the decision */
    double pfp, threshold;            /* the source's at the decision; NaN = not known */
    double expected_seconds;          /* the policy's transfer time estimate; NaN = not known */
    char reason[PS_STORE_REASON_MAX]; /* why: the decision with its scores */
    int64_t started_ms;               /* Unix time, milliseconds */
    int64_t finished_ms;              /* 0 while prepared */
    char note[PS_STORE_NOTE_MAX];     /* how it ended ("" if nothing to say) */
    int outcome;                      /* ps_outcome (not MISSED), or PS_STORE_NO_OUTCOME */
    int64_t outcome_ms;               /* when the outcome was decided, 0 if none */
} ps_store_transfer;

/*
 * Record the start of transfer t->id of t->workload to t->destination,
 * with t->kind, tick, pfp, threshold, expected_seconds, reason and started_ms
 * (0 = now); the other fields are ignored. Checks as
 * ps_cluster_begin_transfer does: the workload and an alive destination
 * exist, it is not the host, no other transfer of the workload is open, no
 * replica of its group is on or heading to the destination.
 *
 * Idempotent by id: if t->id is already recorded for the same workload
 * and destination, nothing is written and 1 is returned. Either way *t is
 * then the stored record. An id recorded for another move is refused
 * (PS_STORE_ECONFLICT).
 */
int ps_store_begin_transfer(ps_store *s, ps_store_transfer *t, char *err, size_t errlen);

/*
 * End transfer id as committed (the workload's host becomes the
 * destination, in the same transaction) or rolled back. note may be NULL;
 * at_ms 0 = now. 0, or 1 if it had already ended the same way (nothing
 * written); PS_STORE_ECONFLICT if it ended the other way. out (may be
 * NULL) receives the record.
 */
int ps_store_finish_transfer(ps_store *s, int64_t id, ps_transfer_state end, const char *note,
                             int64_t at_ms, ps_store_transfer *out, char *err, size_t errlen);

/*
 * How an ended transfer turned out (averted, unnecessary, disruptive),
 * decided after the horizon. 0, or 1 if that outcome was already recorded;
 * PS_STORE_ECONFLICT for another outcome already recorded or a transfer
 * still open.
 */
int ps_store_record_outcome(ps_store *s, int64_t id, ps_outcome outcome, int64_t at_ms, char *err,
                            size_t errlen);

int ps_store_get_transfer(ps_store *s, int64_t id, ps_store_transfer *out, char *err,
                          size_t errlen);

/* One more than the largest transfer id ever recorded (1 for none): where a restarted manager
 * continues numbering. */
int ps_store_next_transfer_id(ps_store *s, int64_t *id, char *err, size_t errlen);

typedef struct ps_store_transfer_list {
    ps_store_transfer *items;
    size_t n;
} ps_store_transfer_list;

void ps_store_transfer_list_free(ps_store_transfer_list *l);

/* Transfers still prepared, oldest id first: for a restarted manager to resume or roll back. */
int ps_store_open_transfers(ps_store *s, ps_store_transfer_list *out, char *err, size_t errlen);

/* Filters for ps_store_query_transfers; zeroed = everything. */
typedef struct ps_store_transfer_query {
    int64_t since_ms, until_ms; /* started in [since, until); 0 = unbounded */
    const char *workload;       /* NULL = any */
    const char *processor;      /* as source or destination; NULL = any */
    int state;                  /* ps_transfer_state + 1; 0 = any */
    size_t limit;               /* most recent first; 0 = no limit */
    int kind;                   /* ps_transfer_kind + 1; 0 = any */
    int undecided;              /* 1 = only transfers without an outcome */
} ps_store_transfer_query;

/* What moved, when and why: newest first. */
int ps_store_query_transfers(ps_store *s, const ps_store_transfer_query *q,
                             ps_store_transfer_list *out, char *err, size_t errlen);

/* ---- decisions and thresholds ---- */

/*
 * One decision pass in one transaction: n records of a pass over cluster
 * slots named by names, at at_ms (0 = now). transfer_ids (may be NULL)
 * gives the transfer each MOVE started (0 = none).
 */
int ps_store_record_decisions(ps_store *s, const ps_decision *d, size_t n, const ps_names *names,
                              const int64_t *transfer_ids, int64_t at_ms, char *err, size_t errlen);

/* Threshold changes (core/threshold.h) of classes named by names, in one transaction. */
int ps_store_append_thresholds(ps_store *s, const ps_threshold_change *ch, size_t n,
                               const ps_names *names, int64_t at_ms, char *err, size_t errlen);

/*
 * The latest recorded change of class cls (named by names): 0 and *out
 * (out->cls = cls), or 1 when the class has no history. For a restarted
 * manager to resume its thresholds (base and rates) where they were.
 */
int ps_store_latest_threshold(ps_store *s, const ps_names *names, uint32_t cls,
                              ps_threshold_change *out, char *err, size_t errlen);

/* ---- the manager's own notes ---- */

/*
 * A small value the manager keeps by key (e.g. "workloads": the CRC-32 and
 * size of the workload file the cluster was loaded from). Get: 0 and the value
 * (cut to len), 1 when the key has none. Set: one transaction, replacing.
 */
int ps_store_get_meta(ps_store *s, const char *key, char *value, size_t len, char *err,
                      size_t errlen);
int ps_store_set_meta(ps_store *s, const char *key, const char *value, char *err, size_t errlen);

const char *ps_transfer_state_name(ps_transfer_state st);
const char *ps_transfer_kind_name(ps_transfer_kind k); /* "shift", "failover" */

#endif
