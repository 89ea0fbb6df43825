/*
 * protocol.h - the scoring server's wire protocol, as a pure codec: bytes in,
 * structs out, and back. No sockets, no threads, no global state; every
 * function may be called from any thread on its own arguments.
 *
 * docs/protocol.md is the specification; this header is one implementation
 * of it. In short: one nng message is one msgpack map with string keys,
 * "v" (protocol version) and "op" always present, an optional client "id"
 * echoed in the reply.
 *
 *   request (REQ -> REP)    reply                        stream (PUB -> SUB)
 *   op "score"   heartbeats  op "score"  per-heartbeat    op "pub"  scored records
 *   op "health"              op "health" status               and their metrics,
 *   op "info"                op "info"   model, K, counts     with a sequence range
 *   op "latest"  ids         op "latest" per-processor
 *                            op "error"  code, name, message
 *
 * Decoding never trusts the input: the message size is bounded
 * (PS_PROTO_MAX_MESSAGE, which the server also sets as NNG_OPT_RECVMAXSZ),
 * every declared count is checked against the bytes left before anything is
 * allocated, the whole buffer must be one map, nesting is bounded, duplicate
 * keys are refused and unknown keys ignored, every msgpack number type is
 * accepted where a float is expected, and NaN and infinities are refused.
 * A refusal returns a stable code (ps_proto_code, which is also the code of
 * the error reply to send) and says exactly what was wrong in err.
 *
 * Decoded messages own their arrays in one block that is kept and reused by
 * the next decode into the same struct (a server context decodes into the
 * same request over and over without allocating); free it with the
 * matching _free function. A zero-initialised struct is a valid empty one.
 *
 * Encoders replace the content of a caller-owned growable buffer (ps_buf),
 * which also keeps its memory between messages.
 */
#ifndef PRESHIFT_PROTOCOL_H
#define PRESHIFT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PS_PROTO_VERSION 1u
/* Largest message either side accepts, in bytes (set as NNG_OPT_RECVMAXSZ). */
#define PS_PROTO_MAX_MESSAGE ((size_t)16 << 20)
/* Most heartbeats in one score request, results in one reply, records in one
 * PUB message. */
#define PS_PROTO_MAX_BATCH 65536u
/* Most metrics per heartbeat. */
#define PS_PROTO_MAX_K 256u
/* Most keys in one map. */
#define PS_PROTO_MAX_KEYS 64u
/* Deepest nesting of arrays and maps, the message map being depth 1
 * (unknown keys may hold nested values; none of ours go beyond 4). */
#define PS_PROTO_MAX_DEPTH 16u
/* Longest free text (error message, model, backend, version), in bytes. */
#define PS_PROTO_MAX_TEXT 1023u
/* Longest enumeration string (error name, health status), in bytes. */
#define PS_PROTO_MAX_NAME 31u

/*
 * Stable error codes: the value returned by every function here and the
 * "code" of an error reply (with the name beside each). Never renumbered.
 */
typedef enum ps_proto_code {
    PS_PROTO_OK = 0,
    PS_PROTO_E_BAD_REQUEST = 1, /* "bad_request": malformed, wrong type, inconsistent */
    PS_PROTO_E_VERSION = 2,     /* "version": unsupported protocol version */
    PS_PROTO_E_UNKNOWN_OP = 3,  /* "unknown_op" */
    PS_PROTO_E_TOO_LARGE = 4,   /* "too_large": message, N or K beyond the limits */
    PS_PROTO_E_K_MISMATCH = 5,  /* "k_mismatch": K differs from the server's model */
    PS_PROTO_E_BUSY = 6,        /* "busy": server overloaded, retry later */
    PS_PROTO_E_UNAVAILABLE = 7, /* "unavailable": starting or stopping */
    PS_PROTO_E_INTERNAL = 8,    /* "internal": server fault (or out of memory) */
} ps_proto_code;
#define PS_PROTO_NCODES 9

/* "bad_request" etc.; "unknown" for a code outside the table. */
const char *ps_proto_code_name(int code);

typedef enum ps_proto_op {
    PS_PROTO_OP_NONE = 0,
    PS_PROTO_OP_SCORE,
    PS_PROTO_OP_HEALTH,
    PS_PROTO_OP_INFO,
    PS_PROTO_OP_ERROR,  /* replies only */
    PS_PROTO_OP_PUB,    /* the stream only */
    PS_PROTO_OP_LATEST, /* request and reply: processors' latest state */
} ps_proto_op;
/* Values of ps_proto_op, NONE included (for arrays indexed by op). */
#define PS_PROTO_NOPS 7

/* "score" etc.; "" for PS_PROTO_OP_NONE or a value outside the enum. */
const char *ps_proto_op_name(int op);

/* What happened to one heartbeat of a score request, or (op "latest") what
 * the server holds of a processor. */
typedef enum ps_proto_state {
    PS_PROTO_STATE_WARMING_UP = 0, /* kept for the processor's warm-up; score, pfp 0, top -1 */
    PS_PROTO_STATE_SCORED = 1,     /* scored now */
    PS_PROTO_STATE_STALE = 2,      /* not newer than its processor's last scored heartbeat,
                                    * or too old: not scored; latest result repeated */
    PS_PROTO_STATE_DUPLICATE = 3,  /* seq already seen (a resent request): not scored again;
                                    * latest result repeated */
    PS_PROTO_STATE_REJECTED = 4,   /* server could not take it (no room for a new processor);
                                    * score, pfp 0, top -1 */
    PS_PROTO_STATE_UNKNOWN = 5,    /* op "latest" only: the server holds nothing of this
                                    * processor; score, pfp 0, top -1, ts 0 */
} ps_proto_state;
#define PS_PROTO_NSTATES 6

/* "warming_up" etc.; "unknown" for PS_PROTO_STATE_UNKNOWN and outside the
 * enum alike (a state a peer does not know means "not scored" either way). */
const char *ps_proto_state_name(int state);

typedef enum ps_proto_status {
    PS_PROTO_STATUS_OK = 0,       /* "ok": scoring */
    PS_PROTO_STATUS_STARTING = 1, /* "starting": not scoring yet (model loading) */
    PS_PROTO_STATUS_STOPPING = 2, /* "stopping": shutting down */
} ps_proto_status;

const char *ps_proto_status_name(int status);

/* ---- buffers -------------------------------------------------------------- */

/* A growable byte buffer; zero-initialise it, free it with ps_buf_free. */
typedef struct ps_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* an allocation failed while encoding (private) */
} ps_buf;

void ps_buf_free(ps_buf *b);

/* Storage a decoded message owns (private). */
typedef struct ps_proto_mem {
    void *p;
    size_t cap;
} ps_proto_mem;

/* ---- requests (client -> server) ------------------------------------------ */

/* The two wire forms of a score request; both decode to the same struct. */
typedef enum ps_proto_form {
    PS_PROTO_FORM_COLUMNS = 0, /* ids, seqs, ts arrays + one float32 bin of N x K metrics */
    PS_PROTO_FORM_ROWS = 1,    /* rows: [[id, seq, ts, [m_1 .. m_K]], ...] */
} ps_proto_form;

typedef struct ps_proto_request {
    ps_proto_op op; /* SCORE, HEALTH, INFO or LATEST */
    bool has_id;    /* a client id came with it: echo it */
    uint64_t id;
    /* op SCORE: n heartbeats of k metrics, distinct processor ids, every
     * number finite.
     * op LATEST: n distinct processor ids (1 <= n <= PS_PROTO_MAX_BATCH);
     * k is 0, seqs, ts and metrics are NULL, form is COLUMNS. */
    size_t n;
    uint32_t k;
    ps_proto_form form; /* as it arrived (informational) */
    const uint64_t *ids;
    const uint64_t *seqs;
    const double *ts;     /* seconds since the Unix epoch */
    const float *metrics; /* n x k, row-major */
    ps_proto_mem mem;     /* private */
} ps_proto_request;

/*
 * Decode one request. PS_PROTO_OK, or the code of the error reply to send
 * with the reason in err. On failure req->op, req->has_id and req->id hold
 * what could be read (so that the error reply can echo the id) and n is 0.
 */
int ps_proto_decode_request(const uint8_t *buf, size_t len, ps_proto_request *req, char *err,
                            size_t errlen);
void ps_proto_request_free(ps_proto_request *req);

/*
 * Encode req (op SCORE, HEALTH, INFO or LATEST; id sent when has_id) into
 * out, a score request in the given form (the other ops have one form and
 * ignore it). The same checks as the decoder (bounds, finite numbers,
 * distinct ids): a refusal names the offending heartbeat.
 */
int ps_proto_encode_request(ps_buf *out, const ps_proto_request *req, ps_proto_form form, char *err,
                            size_t errlen);

/* ---- replies (server -> client) ------------------------------------------- */

/* One heartbeat's outcome (or one processor's latest state), in request order. */
typedef struct ps_proto_result {
    uint64_t id;   /* processor */
    float score;   /* Instability Score, finite */
    double pfp;    /* predictive failure probability in [0, 1] */
    int32_t top;   /* metric contributing most, 0 .. K-1, or -1 for none */
    uint8_t state; /* ps_proto_state (a newer server may send values beyond it) */
} ps_proto_result;

typedef struct ps_proto_score_reply {
    uint64_t tick; /* server tick that scored this request (0: none scored) */
    size_t n;
    const ps_proto_result *results;
} ps_proto_score_reply;

/*
 * Reply to op LATEST: each requested processor's latest result, in request
 * order. results[i].state is SCORED (its latest scored result), WARMING_UP
 * (score 0, pfp 0, top -1) or UNKNOWN (the same zeros); a newer server may
 * send other values. ts[i] is the timestamp of its last accepted heartbeat,
 * 0 for none (UNKNOWN). tick is the last tick the server had scored when it
 * answered: the results reflect every tick up to it and nothing later.
 */
typedef struct ps_proto_latest_reply {
    uint64_t tick;
    size_t n;
    const ps_proto_result *results;
    const double *ts; /* n entries, finite */
} ps_proto_latest_reply;

typedef struct ps_proto_health {
    int status;    /* ps_proto_status */
    double uptime; /* seconds since the server started */
    uint64_t tick; /* last tick scored, 0 before the first */
} ps_proto_health;

typedef struct ps_proto_info {
    char version[PS_PROTO_MAX_TEXT + 1]; /* server software, e.g. "preshift 0.1.0" */
    char model[PS_PROTO_MAX_TEXT + 1];   /* model name or path */
    char backend[PS_PROTO_MAX_TEXT + 1]; /* kernel backend, e.g. "cpu (avx2)" */
    uint32_t k;                          /* metrics per heartbeat the model takes */
    uint32_t hidden;                     /* LSTM hidden size */
    uint64_t run;                        /* the PUB stream's run id */
    /* processors tracked, by state */
    uint64_t warming_up, scored, stale;
    /* limits */
    uint64_t max_message_bytes, max_batch, max_processors;
} ps_proto_info;

typedef struct ps_proto_error {
    uint32_t code;                       /* ps_proto_code (a newer server may send others) */
    char name[PS_PROTO_MAX_NAME + 1];    /* its stable name */
    char message[PS_PROTO_MAX_TEXT + 1]; /* human text */
} ps_proto_error;

/* A decoded reply: op says which of the parts is filled. */
typedef struct ps_proto_reply {
    ps_proto_op op; /* SCORE, HEALTH, INFO, LATEST or ERROR */
    bool has_id;
    uint64_t id;
    ps_proto_score_reply score;
    ps_proto_latest_reply latest;
    ps_proto_health health;
    ps_proto_info info;
    ps_proto_error error;
    ps_proto_mem mem; /* private */
} ps_proto_reply;

/* id: the request's id to echo, or NULL when it had none. */
int ps_proto_encode_score_reply(ps_buf *out, const uint64_t *id, const ps_proto_score_reply *r,
                                char *err, size_t errlen);
int ps_proto_encode_latest_reply(ps_buf *out, const uint64_t *id, const ps_proto_latest_reply *r,
                                 char *err, size_t errlen);
int ps_proto_encode_health_reply(ps_buf *out, const uint64_t *id, const ps_proto_health *h,
                                 char *err, size_t errlen);
int ps_proto_encode_info_reply(ps_buf *out, const uint64_t *id, const ps_proto_info *info,
                               char *err, size_t errlen);
/*
 * An error reply with code (a code outside the table is sent as internal) and
 * a printf-style message, cut to PS_PROTO_MAX_TEXT bytes at a UTF-8 boundary.
 * PS_PROTO_OK, or PS_PROTO_E_INTERNAL when out of memory.
 */
int ps_proto_encode_error(ps_buf *out, const uint64_t *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int ps_proto_decode_reply(const uint8_t *buf, size_t len, ps_proto_reply *reply, char *err,
                          size_t errlen);
void ps_proto_reply_free(ps_proto_reply *reply);

/* ---- the PUB stream ------------------------------------------------------- */

/* One scored heartbeat. */
typedef struct ps_proto_record {
    uint64_t id; /* processor */
    double ts;   /* the heartbeat's own timestamp */
    float score;
    double pfp;
    int32_t top;
} ps_proto_record;

/*
 * One PUB message: records seq .. seq + n - 1 of publisher run `run`, all
 * scored in tick `tick` at server time t, with the k metrics of each
 * record's heartbeat. A subscriber has missed records when, for the same
 * run, seq != the last seen seq + 1.
 */
typedef struct ps_proto_pub {
    uint64_t run; /* nonzero, random per publisher start */
    uint64_t seq; /* of the first record; the first record of a run is 1 */
    uint64_t tick;
    double t; /* seconds since the Unix epoch */
    size_t n;
    const ps_proto_record *records;
    /* The scored heartbeats' metrics: n x k, row-major, in record order,
     * finite; k <= PS_PROTO_MAX_K. k = 0 (x NULL): a message without
     * metrics, as an older publisher sends (no "k" and "x" on the wire). */
    uint32_t k;
    const float *x;
    ps_proto_mem mem; /* private (decode only) */
} ps_proto_pub;

/*
 * The most records of k metrics one PUB message always holds, whatever their
 * values: PS_PROTO_MAX_BATCH, or fewer where n x k metrics would take the
 * message past PS_PROTO_MAX_MESSAGE (k = 256: 15 842). A publisher splits a
 * tick into messages of at most this many records.
 */
size_t ps_proto_pub_max_records(uint32_t k);

int ps_proto_encode_pub(ps_buf *out, const ps_proto_pub *pub, char *err, size_t errlen);
int ps_proto_decode_pub(const uint8_t *buf, size_t len, ps_proto_pub *pub, char *err,
                        size_t errlen);
void ps_proto_pub_free(ps_proto_pub *pub);

#endif
