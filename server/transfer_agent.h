/*
 * transfer_agent.h - the agent's side of the transfer protocol
 * (docs/transfer.md) as a state machine without sockets or threads: a table
 * of transfers by (processor, id), one decoded request applied to it at a
 * time, the reply to send produced. `preshift agent --transfer-listen`
 * (cmd_agent.c) serves it on a REP socket; tests drive it directly.
 *
 * Per (processor, id) a transfer is none -> prepared -> committed, or
 * -> rolled_back (from none or prepared). Every request is idempotent: the
 * same request again answers the same and changes nothing; see the table
 * in docs/transfer.md. A refused prepare is recorded as rolled_back with its
 * reason, so that a resent prepare gets the same refusal, and a rollback of
 * an unknown transfer leaves a rolled_back record behind, so that a late
 * (resent) prepare cannot revive it.
 *
 * This bundled handler accepts every transfer (it keeps no workloads: it
 * acknowledges and records), except that it can refuse every prepare as
 * destination (`refuse_destination`) and delay the acknowledgement of a
 * destination's prepare (`delay`, the copy). With a journal, every change
 * is appended to a text file and synced before the reply is produced, and
 * the table is rebuilt from it when the agent starts again, so the agent
 * answers idempotently across its restarts.
 *
 * Not thread-safe: one caller at a time (cmd_agent.c holds a mutex).
 */
#ifndef PRESHIFT_TRANSFER_AGENT_H
#define PRESHIFT_TRANSFER_AGENT_H

#include "transfer_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Transfers an agent keeps by default; beyond it the oldest finished ones
 * (committed or rolled back) are forgotten. */
#define PS_XFER_AGENT_CAPACITY 4096u

typedef struct ps_xfer_agent_config {
    const char *name;        /* the processor this agent answers for (unless any_processor) */
    bool any_processor;      /* answer for every processor name (tests, simulations) */
    bool refuse_destination; /* refuse every prepare as destination */
    double delay;            /* seconds before a destination's prepare is acknowledged, >= 0 */
    const char *journal;     /* append-only journal file, NULL or "" for none */
    size_t capacity;         /* transfers kept, 0 for PS_XFER_AGENT_CAPACITY */
} ps_xfer_agent_config;

/* One transfer at one processor. */
typedef struct ps_xfer_record {
    int64_t id;
    char processor[PS_XFER_NAME_MAX + 1];
    ps_xfer_state state; /* PREPARED, COMMITTED or ROLLED_BACK */
    /* From the prepare; NONE, "" and 0 for a rollback of a transfer never prepared. */
    ps_xfer_role role;
    char workload[PS_XFER_NAME_MAX + 1];
    char peer[PS_XFER_NAME_MAX + 1];
    double state_bytes, expected_seconds;
    char reason[256]; /* why its prepare was refused (state ROLLED_BACK), else "" */
    double ready_at;  /* the `now` from which its prepare is acknowledged (memory only) */
    uint64_t seq;     /* order of the last change (private) */
} ps_xfer_record;

/* What one request did, for the agent's log line. */
typedef struct ps_xfer_event {
    ps_xfer_op op; /* the request's op; NONE when it did not decode */
    int64_t id;
    char processor[PS_XFER_NAME_MAX + 1];
    ps_xfer_role role; /* of the transfer's record (or the prepare) */
    char workload[PS_XFER_NAME_MAX + 1];
    char peer[PS_XFER_NAME_MAX + 1];
    ps_xfer_state before, after;
    ps_xfer_result result;
    bool changed;                      /* the table (and the journal) changed */
    int code;                          /* nonzero: answered an error with this code */
    char reason[PS_XFER_TEXT_MAX + 1]; /* the refusal's reason or the error's message */
} ps_xfer_event;

typedef struct ps_xfer_agent_stats {
    uint64_t received[PS_XFER_NOPS]; /* requests by op (NONE: did not decode) */
    uint64_t applied[PS_XFER_NOPS];  /* requests that changed the table, by op */
    uint64_t repeats;                /* accepted requests that changed nothing (resends) */
    uint64_t refused, errors;
    uint64_t replayed;      /* journal records read at open */
    uint64_t journal_lines; /* records appended since open */
} ps_xfer_agent_stats;

typedef struct ps_xfer_agent ps_xfer_agent;

/* Open the table (replaying the journal); NULL with the reason in err. */
ps_xfer_agent *ps_xfer_agent_open(const ps_xfer_agent_config *cfg, char *err, size_t errlen);
void ps_xfer_agent_close(ps_xfer_agent *a);

/*
 * Apply one decoded request at monotonic time `now` (seconds). Fills rep
 * (an ok or refused reply, or op ERROR) and ev (may be NULL), and sets
 * *reply_at (may be NULL) to the time the reply may go out: `now`, or later
 * for a destination's prepare while its copy is simulated. Returns 0, or
 * the error code rep carries (WRONG_PROCESSOR, INTERNAL when the journal
 * cannot be written: nothing changed then).
 */
int ps_xfer_agent_apply(ps_xfer_agent *a, const ps_xfer_request *req, double now,
                        ps_xfer_reply *rep, double *reply_at, ps_xfer_event *ev);

/*
 * Decode a request message, apply it and encode the reply into out (an
 * error reply when it does not decode). Returns what apply returns, or the
 * decoder's code; out->len is 0 only when the reply could not be encoded
 * (out of memory): send nothing then.
 */
int ps_xfer_agent_handle(ps_xfer_agent *a, const uint8_t *msg, size_t len, double now, ps_buf *out,
                         double *reply_at, ps_xfer_event *ev);

/* The record of (processor, id), or NULL; valid until the next call. */
const ps_xfer_record *ps_xfer_agent_find(const ps_xfer_agent *a, const char *processor, int64_t id);
size_t ps_xfer_agent_count(const ps_xfer_agent *a);
ps_xfer_agent_stats ps_xfer_agent_get_stats(const ps_xfer_agent *a);

#endif
