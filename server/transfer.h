/*
 * transfer.h - moving a workload between processors: the manager's side of
 * the two-phase transfer protocol spoken with the processors' agents
 * (docs/transfer.md).
 *
 * A transfer has an id (the store's), a workload, a source and a
 * destination processor, each reached through its agent's transfer socket
 * (one agent endpoint may serve many processors: every message names the
 * processor it is for). The orchestrator drives each transfer through
 *
 *   prepare(destination) -> prepare(source) -> commit(destination)
 *                                           -> commit(source)
 *
 * The destination's commit is the point of no return: before it, any
 * refusal, error or timeout rolls the transfer back on both agents; after
 * it, the transfer is committed and the source's commit (release) is
 * retried until acknowledged. Every message is idempotent by transfer id,
 * so a retry, a resend or a manager restarted mid-transfer never moves a
 * workload twice. A transfer whose source is dead (reactive failover) has
 * no source agent: only the destination is prepared and committed.
 *
 * Everything runs on nng's asynchronous I/O: submit never blocks, and
 * finished transfers are collected with ps_transfers_poll from the
 * manager's own thread. At most `limit` transfers are in flight; the
 * manager lowers the limit when transfers run slower than expected
 * (congestion).
 */
#ifndef PRESHIFT_TRANSFER_H
#define PRESHIFT_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

/* Failures beyond kernels.h's PS_E* codes. */
enum {
    PS_TRANSFER_EBUSY = -170,   /* the in-flight limit is reached: submit later */
    PS_TRANSFER_EEXISTS = -171, /* this id is already in flight */
};

#define PS_TRANSFER_NAME_MAX 64
#define PS_TRANSFER_URL_MAX 512

typedef struct ps_transfers_config {
    double timeout;   /* seconds one phase may take before the transfer rolls back (30) */
    double retry;     /* seconds between resends of an unanswered message (1) */
    size_t max_limit; /* most transfers in flight (16) */
    const char *tls_ca, *tls_cert, *tls_key; /* for tls+tcp:// agents; NULL for none */
} ps_transfers_config;

ps_transfers_config ps_transfers_default_config(void);

typedef struct ps_transfer_spec {
    int64_t id;                             /* > 0, unique, the idempotency key */
    char workload[PS_TRANSFER_NAME_MAX];    /* names, as in the workload file */
    char source[PS_TRANSFER_NAME_MAX];      /* source processor */
    char destination[PS_TRANSFER_NAME_MAX]; /* destination processor */
    char source_agent[PS_TRANSFER_URL_MAX]; /* "" when the source is dead */
    char destination_agent[PS_TRANSFER_URL_MAX];
    double state_bytes;      /* what the destination copies */
    double expected_seconds; /* state_bytes over the bandwidth: the agents' hint */
} ps_transfer_spec;

typedef enum ps_transfer_end {
    PS_TRANSFER_COMMITTED = 1,   /* the workload runs on the destination */
    PS_TRANSFER_ROLLED_BACK = 2, /* it stays on the source; reason says why */
} ps_transfer_end;

typedef enum ps_transfer_why {
    PS_TRANSFER_OK = 0,
    PS_TRANSFER_REFUSED = 1, /* an agent refused (no room, unknown workload, ...) */
    PS_TRANSFER_TIMEOUT = 2, /* a phase took longer than the timeout */
    PS_TRANSFER_ERROR = 3,   /* transport or protocol failure */
} ps_transfer_why;

typedef struct ps_transfer_done {
    int64_t id;
    ps_transfer_end end;
    ps_transfer_why why;
    double seconds; /* submission to the end */
    char reason[256];
} ps_transfer_done;

typedef struct ps_transfers ps_transfers;

/* NULL with the reason in err. */
ps_transfers *ps_transfers_start(const ps_transfers_config *cfg, char *err, size_t errlen);

/*
 * Start a transfer. 0; PS_TRANSFER_EBUSY at the limit; PS_TRANSFER_EEXISTS
 * when the id is in flight; PS_EINVAL for a bad spec (message in err).
 */
int ps_transfers_submit(ps_transfers *t, const ps_transfer_spec *s, char *err, size_t errlen);

/*
 * Finish a transfer a previous manager left open (from the store after a
 * restart): ask the destination whether it committed id; if it did, the
 * transfer ends committed (the source is released), else both agents roll
 * it back. Counts against the limit like a submission; the end arrives
 * through ps_transfers_poll.
 */
int ps_transfers_recover(ps_transfers *t, const ps_transfer_spec *s, char *err, size_t errlen);

/*
 * Collect up to cap finished transfers, waiting at most timeout_ms for the
 * first (0: do not wait). Returns how many were written.
 */
size_t ps_transfers_poll(ps_transfers *t, ps_transfer_done *out, size_t cap, int timeout_ms);

size_t ps_transfers_in_flight(const ps_transfers *t);
/* The current limit, 1 .. max_limit; lowering it never cancels a transfer. */
void ps_transfers_set_limit(ps_transfers *t, size_t limit);
size_t ps_transfers_limit(const ps_transfers *t);

/* Stop: transfers still in flight are abandoned (a restart recovers them). */
void ps_transfers_stop(ps_transfers *t);

/*
 * Additions (transfer.c; docs/transfer.md has the details):
 *
 * - The destination's prepare may take timeout + expected_seconds (it covers
 *   the copy); every other phase, timeout.
 * - A recovered transfer the destination had not committed ends
 *   PS_TRANSFER_ROLLED_BACK with why PS_TRANSFER_OK (nothing failed; the
 *   reason says so); REFUSED, TIMEOUT or ERROR when its status could not be
 *   had.
 * - Rollback reaches the agents the transfer reached (both when recovering).
 *   If a commit went to the destination unanswered, the destination is rolled
 *   back first and alone: when it answers that it committed, the transfer
 *   ends COMMITTED after all; when it does not answer, the transfer ends
 *   ROLLED_BACK (TIMEOUT) with the source left prepared, and the reason says
 *   to recover the transfer to settle it.
 * - A COMMITTED transfer whose source has not acknowledged the release
 *   within timeout is reported with a reason saying so; the release goes on
 *   in the background (not counted in flight) until acknowledged or stop.
 * - ps_transfers_poll with timeout_ms < 0 does not wait (as 0).
 */

/* "ok", "refused", "timeout", "error"; "unknown" otherwise. */
const char *ps_transfer_why_name(int why);
/* "committed", "rolled_back"; "unknown" otherwise. */
const char *ps_transfer_end_name(int end);

#endif
