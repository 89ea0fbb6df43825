/*
 * transfer_proto.h - the transfer protocol between the shifting manager
 * (REQ) and the processors' agents (REP), as a pure codec: bytes in, structs
 * out, and back. No sockets, no threads, no global state.
 *
 * docs/transfer.md is the specification. In short: one nng message is one
 * msgpack map with string keys, "v" (1) and "op" always present. Requests:
 *
 *   prepare   id, processor, role (destination|source), workload, peer,
 *             state_bytes, expected_seconds
 *   commit    id, processor
 *   rollback  id, processor
 *   status    id, processor
 *
 * A reply carries the request's op, id and processor, a result ("ok" or
 * "refused", with a reason) and the transfer's state at that processor
 * after the request ("none", "prepared", "committed", "rolled_back"); or it
 * is op "error" with a stable code, its name and a message.
 *
 * Decoding never trusts the input, with the rules of the scoring protocol
 * (docs/protocol.md): a bounded message size, every declared length checked
 * against the bytes left, the whole buffer one map, nesting bounded,
 * duplicate keys refused, unknown keys ignored, any msgpack number accepted
 * where a number is expected, NaN and infinities refused. Names are 1 ..
 * PS_XFER_NAME_MAX bytes of printable ASCII without spaces. Encoders apply
 * the same checks, so they never write what the decoder refuses.
 *
 * Every function returns a ps_xfer_code (0 or the code of the error reply
 * to send) and writes the reason into the caller's err.
 */
#ifndef PRESHIFT_TRANSFER_PROTO_H
#define PRESHIFT_TRANSFER_PROTO_H

#include "protocol.h" /* ps_buf */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PS_XFER_VERSION 1u
/* Largest transfer message either side accepts (NNG_OPT_RECVMAXSZ too). */
#define PS_XFER_MAX_MESSAGE ((size_t)65536)
#define PS_XFER_MAX_KEYS 64u
#define PS_XFER_MAX_DEPTH 16u
/* Longest processor or workload name, in bytes (PS_TRANSFER_NAME_MAX - 1). */
#define PS_XFER_NAME_MAX 63u
/* Longest reason or error message, in bytes. */
#define PS_XFER_TEXT_MAX 1023u
/* Longest error name, in bytes. */
#define PS_XFER_CODE_NAME_MAX 31u

/* Stable error codes, the "code" of an error reply. Never renumbered. */
typedef enum ps_xfer_code {
    PS_XFER_OK = 0,
    PS_XFER_E_BAD_REQUEST = 1,     /* "bad_request": malformed, wrong type, missing key, NaN */
    PS_XFER_E_VERSION = 2,         /* "version": unsupported protocol version */
    PS_XFER_E_UNKNOWN_OP = 3,      /* "unknown_op" */
    PS_XFER_E_TOO_LARGE = 4,       /* "too_large": over PS_XFER_MAX_MESSAGE */
    PS_XFER_E_WRONG_PROCESSOR = 5, /* "wrong_processor": this agent does not serve it */
    PS_XFER_E_INTERNAL = 6,        /* "internal": the agent failed (journal, memory) */
} ps_xfer_code;
#define PS_XFER_NCODES 7

/* "bad_request" etc.; "unknown" outside the table. */
const char *ps_xfer_code_name(int code);

typedef enum ps_xfer_op {
    PS_XFER_OP_NONE = 0,
    PS_XFER_OP_PREPARE,
    PS_XFER_OP_COMMIT,
    PS_XFER_OP_ROLLBACK,
    PS_XFER_OP_STATUS,
    PS_XFER_OP_ERROR, /* replies only */
} ps_xfer_op;
#define PS_XFER_NOPS 6

/* "prepare" etc.; "" for NONE or outside the enum. */
const char *ps_xfer_op_name(int op);

typedef enum ps_xfer_role {
    PS_XFER_ROLE_NONE = 0,
    PS_XFER_ROLE_DESTINATION = 1, /* takes the workload */
    PS_XFER_ROLE_SOURCE = 2,      /* hands it over */
} ps_xfer_role;

/* "destination", "source"; "none" otherwise. */
const char *ps_xfer_role_name(int role);

/* A transfer's state at one processor. */
typedef enum ps_xfer_state {
    PS_XFER_STATE_NONE = 0,        /* never seen (or forgotten) */
    PS_XFER_STATE_PREPARED = 1,    /* prepared: ready to commit or roll back */
    PS_XFER_STATE_COMMITTED = 2,   /* final */
    PS_XFER_STATE_ROLLED_BACK = 3, /* final (a refused prepare ends here too) */
} ps_xfer_state;
#define PS_XFER_NSTATES 4

/* "none", "prepared", "committed", "rolled_back"; "unknown" otherwise. */
const char *ps_xfer_state_name(int state);

typedef enum ps_xfer_result {
    PS_XFER_RESULT_OK = 0,
    PS_XFER_RESULT_REFUSED = 1,
} ps_xfer_result;

/* "ok", "refused"; "unknown" otherwise. */
const char *ps_xfer_result_name(int result);

/*
 * 0 if s is a valid name: 1 .. PS_XFER_NAME_MAX bytes of printable ASCII
 * (0x21 .. 0x7e); otherwise PS_XFER_E_BAD_REQUEST with the reason, naming
 * the field as `what`.
 */
int ps_xfer_name_check(const char *what, const char *s, char *err, size_t errlen);

/* ---- requests (manager -> agent) ------------------------------------------ */

typedef struct ps_xfer_request {
    ps_xfer_op op;                        /* PREPARE, COMMIT, ROLLBACK or STATUS */
    int64_t id;                           /* the transfer, 1 .. INT64_MAX */
    char processor[PS_XFER_NAME_MAX + 1]; /* the processor the message is for */
    /* op PREPARE only (zero otherwise) */
    ps_xfer_role role;
    char workload[PS_XFER_NAME_MAX + 1];
    char peer[PS_XFER_NAME_MAX + 1]; /* the other processor, never `processor` */
    double state_bytes;              /* finite, >= 0 */
    double expected_seconds;         /* finite, >= 0 */
} ps_xfer_request;

/*
 * Decode one request. 0, or the code of the error reply to send with the
 * reason in err; on failure req->op, req->id and req->processor hold what
 * could be read (0 and "" otherwise), for the error reply to echo.
 */
int ps_xfer_decode_request(const uint8_t *buf, size_t len, ps_xfer_request *req, char *err,
                           size_t errlen);
int ps_xfer_encode_request(ps_buf *out, const ps_xfer_request *req, char *err, size_t errlen);

/* ---- replies (agent -> manager) ------------------------------------------- */

typedef struct ps_xfer_reply {
    ps_xfer_op op;                        /* the request's op, or ERROR */
    int64_t id;                           /* 0 in an error reply that could not read it */
    char processor[PS_XFER_NAME_MAX + 1]; /* "" in an error reply that could not read it */
    /* ops PREPARE, COMMIT, ROLLBACK, STATUS */
    ps_xfer_result result;
    ps_xfer_state state;               /* at this processor, after the request */
    char reason[PS_XFER_TEXT_MAX + 1]; /* required when refused; optional ("") when ok */
    /* op ERROR */
    uint32_t code;                        /* ps_xfer_code (a newer agent may send others) */
    char name[PS_XFER_CODE_NAME_MAX + 1]; /* its stable name */
    char message[PS_XFER_TEXT_MAX + 1];   /* for a human */
} ps_xfer_reply;

int ps_xfer_encode_reply(ps_buf *out, const ps_xfer_reply *rep, char *err, size_t errlen);

/*
 * An error reply with code (one outside the table is sent as internal) and a
 * printf-style message cut to PS_XFER_TEXT_MAX bytes at a UTF-8 boundary;
 * id and processor of `about` are echoed when set (about may be NULL).
 * 0, or PS_XFER_E_INTERNAL when out of memory.
 */
int ps_xfer_encode_error(ps_buf *out, const ps_xfer_request *about, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int ps_xfer_decode_reply(const uint8_t *buf, size_t len, ps_xfer_reply *rep, char *err,
                         size_t errlen);

#endif
