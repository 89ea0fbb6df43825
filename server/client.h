/*
 * client.h - a small synchronous client of the scoring server (`preshift
 * serve`) over nng: score heartbeats, ask for health and info, and follow the
 * PUB stream of scored records with gap detection. The agent, the tests and
 * load generators use it; docs/agent.md ("Client library") has an example,
 * docs/protocol.md the messages underneath.
 *
 * Threads: a handle (ps_client, ps_subscriber) is used by one thread at a
 * time; it holds no lock. Open one handle per thread to talk to the server
 * from several threads at once (each is its own nng socket; nng multiplexes
 * them). Different handles may be used from different threads freely.
 *
 * Memory: a handle keeps its encode buffer, its nng message and its decoded
 * reply between calls, so once they have grown to the size of the traffic
 * the calls allocate nothing (nng itself may still allocate internally).
 * Pointers a call hands back (score results, the decoded PUB message) point
 * into the handle and stay valid until the next call on it.
 *
 * Connections: opening never waits for the server. nng dials in the
 * background and redials whenever the connection drops (after 0.1 s, the
 * wait doubling up to 1 s while the server stays away), so a client may be
 * opened before the server starts; a request made while the server is
 * unreachable fails with PS_CLIENT_E_TIMEOUT after the handle's timeout.
 * REQ resends a request on a new connection when the old one dropped before
 * its reply came; the per-processor seq makes such a resend harmless (the
 * server answers `duplicate`).
 *
 * Return values: every call returns PS_CLIENT_OK (0); a positive value, the
 * code of an error reply from the server (a ps_proto_code, e.g.
 * PS_PROTO_E_K_MISMATCH; a newer server may send codes beyond the table),
 * with "name: message" from the reply in err; or a negative PS_CLIENT_E_*
 * for a failure on this side or on the wire, with the reason in err. A
 * handle stays usable after any of them.
 */
#ifndef PRESHIFT_CLIENT_H
#define PRESHIFT_CLIENT_H

#include "protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Failures on this side (negative, so they never collide with server codes). */
enum {
    PS_CLIENT_OK = 0,
    PS_CLIENT_E_TIMEOUT = -1,   /* no reply (or no message) within the timeout */
    PS_CLIENT_E_TRANSPORT = -2, /* nng refused: closed socket, bad address, TLS setup */
    PS_CLIENT_E_PROTOCOL = -3,  /* the reply does not decode or does not answer the request */
    PS_CLIENT_E_INVALID = -4,   /* refused before sending: NaN, repeated id, limits, K */
    PS_CLIENT_E_NOMEM = -5,
};

/* "ok", "timeout", "transport", "protocol", "invalid", "nomem", or for a
 * positive code the server's error name ("k_mismatch", ...). */
const char *ps_client_code_name(int rc);

/* Default receive (and send) timeout, milliseconds. */
#define PS_CLIENT_DEFAULT_TIMEOUT_MS 10000

/* How to connect; zero-initialise and set what you need. */
typedef struct ps_client_options {
    int timeout_ms;          /* per request (subscriber: default for ps_sub_recv); 0 = default */
    int resend_ms;           /* REQ resend time without a reply; 0 = nng's default (60 s) */
    ps_proto_form form;      /* form of score requests; COLUMNS (0) by default */
    const char *tls_ca;      /* PEM CA file: verify the server against it (tls+tcp://) */
    const char *tls_cert;    /* PEM certificate of this client, for mutual TLS */
    const char *tls_key;     /* its PEM private key */
    const char *server_name; /* name the server's certificate must carry; NULL = URL's host */
} ps_client_options;

/* ---- requests: REQ ------------------------------------------------------------ */

typedef struct ps_client ps_client;

/*
 * Open a REQ socket and dial url: tcp://HOST:PORT, ipc://PATH or
 * tls+tcp://HOST:PORT. For tls+tcp:// without opt->tls_ca the connection is
 * encrypted but the server is not verified. opt may be NULL (defaults).
 * Fails (NULL, reason in err) on a bad address or unreadable TLS files, never
 * because the server is not up yet.
 */
ps_client *ps_client_open(const char *url, const ps_client_options *opt, char *err, size_t errlen);
/* Close the socket and free everything; NULL is fine. */
void ps_client_close(ps_client *c);

/*
 * Score n heartbeats of k metrics each: processor ids[i], its seq seqs[i]
 * (strictly increasing per processor), timestamp ts[i] (seconds since the
 * epoch) and metrics[i*k .. i*k+k). On PS_CLIENT_OK *out holds the reply:
 * the tick and n results in request order, pointing into c until the next
 * call on c.
 */
int ps_client_score(ps_client *c, size_t n, uint32_t k, const uint64_t *ids, const uint64_t *seqs,
                    const double *ts, const float *metrics, ps_proto_score_reply *out, char *err,
                    size_t errlen);

/*
 * One heartbeat of one processor, with its seq managed by c: the seq is the
 * larger of the last one c sent for this processor plus 1 and the current
 * time in microseconds since the epoch, so it keeps increasing across
 * restarts of the sender too (docs/protocol.md). ts <= 0 means now. On
 * PS_CLIENT_OK *out is the processor's result and *tick (when not NULL) the
 * server tick.
 */
int ps_client_heartbeat(ps_client *c, uint64_t id, double ts, uint32_t k, const float *metrics,
                        ps_proto_result *out, uint64_t *tick, char *err, size_t errlen);

/* The seq ps_client_heartbeat last sent for id, 0 if none. */
uint64_t ps_client_last_seq(const ps_client *c, uint64_t id);

int ps_client_health(ps_client *c, ps_proto_health *out, char *err, size_t errlen);
int ps_client_info(ps_client *c, ps_proto_info *out, char *err, size_t errlen);

/*
 * The latest state of n distinct processors (op "latest", docs/protocol.md):
 * on PS_CLIENT_OK *out holds the server's last tick and, in request order,
 * each processor's latest result (state scored, warming_up or unknown) and
 * last heartbeat time, pointing into c until the next call on c.
 */
int ps_client_latest(ps_client *c, size_t n, const uint64_t *ids, ps_proto_latest_reply *out,
                     char *err, size_t errlen);

/* The last error reply (code, name, message); code 0 when the last call got none. */
const ps_proto_error *ps_client_last_error(const ps_client *c);

/* ---- the stream: SUB ----------------------------------------------------------- */

typedef struct ps_subscriber ps_subscriber;

/* What ps_sub_recv saw, from the stream's sequence numbers (protocol.md, "The stream"). */
typedef struct ps_sub_event {
    bool new_run;           /* first message of a run not seen before (server started or new) */
    bool repeat;            /* seq below the expected one: a repeat, safe to ignore */
    uint64_t missed;        /* records lost just before this message (same run, seq > expected) */
    uint64_t prev_run;      /* run of the previous message received (0 for the first) */
    uint64_t total_missed;  /* records lost since the subscriber opened */
    uint64_t total_records; /* records received since the subscriber opened (repeats excluded) */
} ps_sub_event;

/*
 * Open a SUB socket subscribed to every message and dial url (tcp://, ipc://,
 * tls+tcp://; the TLS fields of opt as for ps_client_open). opt->timeout_ms
 * is the default wait of ps_sub_recv.
 */
ps_subscriber *ps_sub_open(const char *url, const ps_client_options *opt, char *err, size_t errlen);
/* Dial one more server's PUB address on the same socket (runs are told apart by their run id). */
int ps_sub_dial(ps_subscriber *s, const char *url, char *err, size_t errlen);
void ps_sub_close(ps_subscriber *s);
/*
 * Wait up to timeout_ms for the subscriber to be connected to a publisher.
 * PUB drops what it publishes while no subscriber is connected, and
 * ps_sub_open dials in the background: a caller that must see a stream
 * from its first message waits here first. 1 connected, 0 not in time.
 */
int ps_sub_wait_connected(ps_subscriber *s, int timeout_ms);
/* The publishers the subscriber is connected to now. */
int ps_sub_connections(ps_subscriber *s);

/*
 * Wait up to timeout_ms (< 0: the handle's default; 0: do not wait) for the
 * next PUB message, decode it into *out (pointing into s until the next call)
 * and report in *ev (may be NULL) whether records were missed. A message that
 * does not decode is skipped and reported as PS_CLIENT_E_PROTOCOL; the next
 * call goes on with the next message.
 */
int ps_sub_recv(ps_subscriber *s, int timeout_ms, const ps_proto_pub **out, ps_sub_event *ev,
                char *err, size_t errlen);

#endif
