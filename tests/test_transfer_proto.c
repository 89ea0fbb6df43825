/*
 * test_transfer_proto.c - the transfer protocol's codec (server/transfer_proto.h,
 * docs/transfer.md): every request and reply round trips, the worked example's
 * bytes are exact, every msgpack encoding of a number is accepted where one
 * is expected, unknown keys are skipped, and every malformed message is
 * refused with its code and a message naming what is wrong; the encoders
 * refuse what the decoders would.
 */
#include "server/transfer_proto.h"

#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* ---- a tiny msgpack writer for hand-made messages -------------------------------- */

typedef struct mb {
    uint8_t b[4096];
    size_t n;
} mb;

static void put(mb *m, const void *p, size_t n)
{
    if (m->n + n > sizeof m->b) abort();
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void byte(mb *m, uint8_t x)
{
    put(m, &x, 1);
}

static void be(mb *m, uint64_t v, int w)
{
    for (int i = w - 1; i >= 0; i--)
        byte(m, (uint8_t)(v >> (8 * i)));
}

static void map(mb *m, unsigned n)
{
    if (n < 16)
        byte(m, (uint8_t)(0x80 | n));
    else {
        byte(m, 0xde);
        be(m, n, 2);
    }
}

static void str_n(mb *m, const char *s, size_t n)
{
    if (n < 32) {
        byte(m, (uint8_t)(0xa0 | n));
    } else if (n < 256) {
        byte(m, 0xd9);
        byte(m, (uint8_t)n);
    } else {
        byte(m, 0xda);
        be(m, n, 2);
    }
    put(m, s, n);
}

static void str(mb *m, const char *s)
{
    str_n(m, s, strlen(s));
}

static void uint_(mb *m, uint64_t v)
{
    if (v < 128)
        byte(m, (uint8_t)v);
    else {
        byte(m, 0xcf);
        be(m, v, 8);
    }
}

static void f64(mb *m, double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    byte(m, 0xcb);
    be(m, u, 8);
}

static void kv_str(mb *m, const char *k, const char *v)
{
    str(m, k);
    str(m, v);
}

static void kv_uint(mb *m, const char *k, uint64_t v)
{
    str(m, k);
    uint_(m, v);
}

/* A valid commit request with `extra` more entries to be written by the caller. */
static void commit_head(mb *m, unsigned extra)
{
    m->n = 0;
    map(m, 4 + extra);
    kv_uint(m, "v", 1);
    kv_str(m, "op", "commit");
    kv_uint(m, "id", 7);
    kv_str(m, "processor", "p1");
}

static char err[2048];

/* Decoding m as a request gives code, with `needle` in the message. */
static void refused_req(const mb *m, int code, const char *needle, int line)
{
    ps_xfer_request q;
    err[0] = '\0';
    int rc = ps_xfer_decode_request(m->b, m->n, &q, err, sizeof err);
    if (rc != code || !strstr(err, needle)) {
        fprintf(stderr, "line %d: rc %d (expected %d), err '%s' (expected '%s')\n", line, rc, code,
                err, needle);
        test_failures++;
    }
}
#define REFUSED_REQ(m, code, needle) refused_req(m, code, needle, __LINE__)

static void refused_rep(const mb *m, int code, const char *needle, int line)
{
    ps_xfer_reply r;
    err[0] = '\0';
    int rc = ps_xfer_decode_reply(m->b, m->n, &r, err, sizeof err);
    if (rc != code || !strstr(err, needle)) {
        fprintf(stderr, "line %d: rc %d (expected %d), err '%s' (expected '%s')\n", line, rc, code,
                err, needle);
        test_failures++;
    }
}
#define REFUSED_REP(m, code, needle) refused_rep(m, code, needle, __LINE__)

static ps_xfer_request prepare_req(void)
{
    ps_xfer_request q = {.op = PS_XFER_OP_PREPARE,
                         .id = 42,
                         .role = PS_XFER_ROLE_DESTINATION,
                         .state_bytes = 1.5e9,
                         .expected_seconds = 12.5};
    strcpy(q.processor, "node-7");
    strcpy(q.workload, "orders.db");
    strcpy(q.peer, "node-3");
    return q;
}

/* A prepare as a hand-made map: every key but `skip`, `override` given. */
static void prepare_map(mb *m, const char *skip, const char *okey, void (*oval)(mb *))
{
    static const char *const keys[] = {"v",        "op",   "id",          "processor",       "role",
                                       "workload", "peer", "state_bytes", "expected_seconds"};
    unsigned n = 0;
    for (int i = 0; i < 9; i++)
        n += !skip || strcmp(keys[i], skip);
    m->n = 0;
    map(m, n);
    for (int i = 0; i < 9; i++) {
        if (skip && !strcmp(keys[i], skip)) continue;
        str(m, keys[i]);
        if (okey && !strcmp(keys[i], okey)) {
            oval(m);
            continue;
        }
        switch (i) {
        case 0:
            uint_(m, 1);
            break;
        case 1:
            str(m, "prepare");
            break;
        case 2:
            uint_(m, 42);
            break;
        case 3:
            str(m, "node-7");
            break;
        case 4:
            str(m, "destination");
            break;
        case 5:
            str(m, "orders.db");
            break;
        case 6:
            str(m, "node-3");
            break;
        case 7:
            f64(m, 1.5e9);
            break;
        default:
            f64(m, 12.5);
            break;
        }
    }
}

static void v_nan(mb *m)
{
    f64(m, NAN);
}
static void v_inf(mb *m)
{
    f64(m, -INFINITY);
}
static void v_neg(mb *m)
{
    byte(m, 0xff); /* -1 */
}
static void v_negf(mb *m)
{
    f64(m, -0.5);
}
static void v_text(mb *m)
{
    str(m, "12");
}
static void v_zero(mb *m)
{
    uint_(m, 0);
}
static void v_big(mb *m)
{
    byte(m, 0xcf);
    be(m, (uint64_t)INT64_MAX + 1, 8);
}
static void v_float_id(mb *m)
{
    f64(m, 42.0);
}
static void v_empty(mb *m)
{
    str(m, "");
}
static void v_long(mb *m)
{
    char s[65];
    memset(s, 'a', 64);
    str_n(m, s, 64);
}
static void v_space(mb *m)
{
    str(m, "node 7");
}
static void v_nul(mb *m)
{
    str_n(m, "no\0de", 5);
}
static void v_utf8(mb *m)
{
    str(m, "n\xc3\xa9ud");
}
static void v_role(mb *m)
{
    str(m, "both");
}
static void v_peer_self(mb *m)
{
    str(m, "node-7");
}
static void v_v2(mb *m)
{
    uint_(m, 2);
}
static void v_op_bad(mb *m)
{
    str(m, "transfer");
}
static void v_op_error(mb *m)
{
    str(m, "error");
}
static void v_nil(mb *m)
{
    byte(m, 0xc0);
}
static void v_int8_bytes(mb *m)
{
    byte(m, 0xd0); /* int8 holding 100: an unsigned value in a signed type */
    byte(m, 100);
}
static void v_f32(mb *m)
{
    byte(m, 0xca);
    be(m, 0x41480000u, 4); /* 12.5f */
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_names(void)
{
    CHECK(!strcmp(ps_xfer_op_name(PS_XFER_OP_PREPARE), "prepare"));
    CHECK(!strcmp(ps_xfer_op_name(PS_XFER_OP_ERROR), "error"));
    CHECK(!strcmp(ps_xfer_op_name(99), ""));
    CHECK(!strcmp(ps_xfer_state_name(PS_XFER_STATE_ROLLED_BACK), "rolled_back"));
    CHECK(!strcmp(ps_xfer_state_name(-1), "unknown"));
    CHECK(!strcmp(ps_xfer_role_name(PS_XFER_ROLE_SOURCE), "source"));
    CHECK(!strcmp(ps_xfer_result_name(PS_XFER_RESULT_REFUSED), "refused"));
    CHECK(!strcmp(ps_xfer_code_name(PS_XFER_E_WRONG_PROCESSOR), "wrong_processor"));
    CHECK(!strcmp(ps_xfer_code_name(77), "unknown"));
    CHECK(ps_xfer_name_check("x", "a", err, sizeof err) == 0);
    CHECK(ps_xfer_name_check("x", "", err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    CHECK(ps_xfer_name_check("x", "a b", err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    CHECK(ps_xfer_name_check("x", NULL, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    char n63[64], n64[65];
    memset(n63, 'z', 63);
    n63[63] = '\0';
    memset(n64, 'z', 64);
    n64[64] = '\0';
    CHECK(ps_xfer_name_check("x", n63, err, sizeof err) == 0);
    CHECK(ps_xfer_name_check("x", n64, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
}

static void test_round_trips(void)
{
    ps_buf b = {0};
    ps_xfer_request q = prepare_req(), d;
    CHECKF(ps_xfer_encode_request(&b, &q, err, sizeof err) == 0, "%s", err);
    CHECKF(ps_xfer_decode_request(b.data, b.len, &d, err, sizeof err) == 0, "%s", err);
    CHECK(d.op == PS_XFER_OP_PREPARE && d.id == 42 && d.role == PS_XFER_ROLE_DESTINATION);
    CHECK(!strcmp(d.processor, "node-7") && !strcmp(d.workload, "orders.db") &&
          !strcmp(d.peer, "node-3"));
    CHECK(d.state_bytes == 1.5e9 && d.expected_seconds == 12.5);
    q.role = PS_XFER_ROLE_SOURCE;
    q.id = INT64_MAX;
    q.state_bytes = 0;
    CHECKF(ps_xfer_encode_request(&b, &q, err, sizeof err) == 0, "%s", err);
    CHECKF(ps_xfer_decode_request(b.data, b.len, &d, err, sizeof err) == 0, "%s", err);
    CHECK(d.role == PS_XFER_ROLE_SOURCE && d.id == INT64_MAX && d.state_bytes == 0);

    for (int op = PS_XFER_OP_COMMIT; op <= PS_XFER_OP_STATUS; op++) {
        ps_xfer_request c = {.op = (ps_xfer_op)op, .id = 9};
        strcpy(c.processor, "p1");
        CHECKF(ps_xfer_encode_request(&b, &c, err, sizeof err) == 0, "%s", err);
        CHECKF(ps_xfer_decode_request(b.data, b.len, &d, err, sizeof err) == 0, "%s", err);
        CHECK((int)d.op == op && d.id == 9 && !strcmp(d.processor, "p1") && d.role == 0 &&
              !d.workload[0]);
    }

    /* Replies: every op, result and state. */
    for (int op = PS_XFER_OP_PREPARE; op <= PS_XFER_OP_STATUS; op++)
        for (int res = 0; res < 2; res++)
            for (int st = 0; st < PS_XFER_NSTATES; st++) {
                ps_xfer_reply r = {.op = (ps_xfer_op)op,
                                   .id = 5,
                                   .result = (ps_xfer_result)res,
                                   .state = (ps_xfer_state)st},
                              e;
                strcpy(r.processor, "node-3");
                if (res) strcpy(r.reason, "no room for orders.db (12 GB free, 15 GB needed)");
                CHECKF(ps_xfer_encode_reply(&b, &r, err, sizeof err) == 0, "%s", err);
                CHECKF(ps_xfer_decode_reply(b.data, b.len, &e, err, sizeof err) == 0, "%s", err);
                CHECK((int)e.op == op && e.id == 5 && (int)e.result == res && (int)e.state == st &&
                      !strcmp(e.processor, "node-3") && !strcmp(e.reason, r.reason));
            }
    /* An ok reply may carry a reason too. */
    ps_xfer_reply r = {.op = PS_XFER_OP_PREPARE, .id = 5, .state = PS_XFER_STATE_COMMITTED}, e;
    strcpy(r.processor, "node-3");
    strcpy(r.reason, "already committed");
    CHECK(ps_xfer_encode_reply(&b, &r, err, sizeof err) == 0);
    CHECK(ps_xfer_decode_reply(b.data, b.len, &e, err, sizeof err) == 0 &&
          !strcmp(e.reason, "already committed"));

    /* Errors, with and without what they echo. */
    ps_xfer_request about = {.id = 77};
    strcpy(about.processor, "node-9");
    CHECK(ps_xfer_encode_error(&b, &about, PS_XFER_E_WRONG_PROCESSOR, "not %s", "here") == 0);
    CHECKF(ps_xfer_decode_reply(b.data, b.len, &e, err, sizeof err) == 0, "%s", err);
    CHECK(e.op == PS_XFER_OP_ERROR && e.code == PS_XFER_E_WRONG_PROCESSOR && e.id == 77 &&
          !strcmp(e.processor, "node-9") && !strcmp(e.name, "wrong_processor") &&
          !strcmp(e.message, "not here"));
    CHECK(ps_xfer_encode_error(&b, NULL, 99, "boom") == 0);
    CHECK(ps_xfer_decode_reply(b.data, b.len, &e, err, sizeof err) == 0);
    CHECK(e.code == PS_XFER_E_INTERNAL && e.id == 0 && !e.processor[0]);
    /* A long message is cut at a UTF-8 boundary. */
    char longmsg[1100];
    memset(longmsg, 'x', sizeof longmsg);
    memcpy(longmsg + 1022, "\xc3\xa9", 2); /* the cut at 1023 would split it */
    longmsg[1099] = '\0';
    CHECK(ps_xfer_encode_error(&b, NULL, 1, "%s", longmsg) == 0);
    CHECK(ps_xfer_decode_reply(b.data, b.len, &e, err, sizeof err) == 0);
    CHECKF(strlen(e.message) == 1022, "%zu", strlen(e.message));
    ps_buf_free(&b);
}

/* The worked example of docs/transfer.md, byte for byte. */
static void test_golden(void)
{
    ps_buf b = {0};
    ps_xfer_request q = {.op = PS_XFER_OP_PREPARE,
                         .id = 17,
                         .role = PS_XFER_ROLE_DESTINATION,
                         .state_bytes = 1048576,
                         .expected_seconds = 0.5};
    strcpy(q.processor, "p2");
    strcpy(q.workload, "w1");
    strcpy(q.peer, "p1");
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == 0);
    static const uint8_t want[] = {
        0x89, 0xa1, 'v',  0x01, 0xa2, 'o', 'p',  0xa7, 'p',  'r',  'e', 'p', 'a', 'r',  'e',
        0xa2, 'i',  'd',  0x11, 0xa9, 'p', 'r',  'o',  'c',  'e',  's', 's', 'o', 'r',  0xa2,
        'p',  '2',  0xa4, 'r',  'o',  'l', 'e',  0xab, 'd',  'e',  's', 't', 'i', 'n',  'a',
        't',  'i',  'o',  'n',  0xa8, 'w', 'o',  'r',  'k',  'l',  'o', 'a', 'd', 0xa2, 'w',
        '1',  0xa4, 'p',  'e',  'e',  'r', 0xa2, 'p',  '1',  0xab, 's', 't', 'a', 't',  'e',
        '_',  'b',  'y',  't',  'e',  's', 0xcb, 0x41, 0x30, 0,    0,   0,   0,   0,    0,
        0xb0, 'e',  'x',  'p',  'e',  'c', 't',  'e',  'd',  '_',  's', 'e', 'c', 'o',  'n',
        'd',  's',  0xcb, 0x3f, 0xe0, 0,   0,    0,    0,    0,    0};
    CHECKF(b.len == sizeof want && !memcmp(b.data, want, sizeof want), "%zu bytes", b.len);
    ps_xfer_reply r = {.op = PS_XFER_OP_PREPARE, .id = 17, .state = PS_XFER_STATE_PREPARED};
    strcpy(r.processor, "p2");
    CHECK(ps_xfer_encode_reply(&b, &r, err, sizeof err) == 0);
    static const uint8_t want_rep[] = {
        0x86, 0xa1, 'v',  0x01, 0xa2, 'o', 'p', 0xa7, 'p', 'r',  'e', 'p', 'a',  'r', 'e',
        0xa2, 'i',  'd',  0x11, 0xa9, 'p', 'r', 'o',  'c', 'e',  's', 's', 'o',  'r', 0xa2,
        'p',  '2',  0xa6, 'r',  'e',  's', 'u', 'l',  't', 0xa2, 'o', 'k', 0xa5, 's', 't',
        'a',  't',  'e',  0xa8, 'p',  'r', 'e', 'p',  'a', 'r',  'e', 'd'};
    CHECKF(b.len == sizeof want_rep && !memcmp(b.data, want_rep, sizeof want_rep), "%zu bytes",
           b.len);
    ps_buf_free(&b);
}

/* What the decoders accept beyond the encoders' own choices. */
static void test_lenient(void)
{
    mb m;
    ps_xfer_request q;
    /* Keys in any order, integers in signed types, float32, an unknown key
     * holding nested values. */
    prepare_map(&m, NULL, "expected_seconds", v_f32);
    CHECKF(ps_xfer_decode_request(m.b, m.n, &q, err, sizeof err) == 0, "%s", err);
    CHECK(q.expected_seconds == 12.5);
    prepare_map(&m, NULL, "state_bytes", v_int8_bytes);
    CHECKF(ps_xfer_decode_request(m.b, m.n, &q, err, sizeof err) == 0, "%s", err);
    CHECK(q.state_bytes == 100);
    prepare_map(&m, NULL, "id", v_int8_bytes);
    CHECKF(ps_xfer_decode_request(m.b, m.n, &q, err, sizeof err) == 0 && q.id == 100, "%s", err);

    commit_head(&m, 2);
    str(&m, "future");
    map(&m, 1);
    str(&m, "nested");
    byte(&m, 0x92);
    byte(&m, 0xc3);
    byte(&m, 0xc0);
    str(&m, "role"); /* a prepare key in a commit: ignored */
    str(&m, "nonsense");
    CHECKF(ps_xfer_decode_request(m.b, m.n, &q, err, sizeof err) == 0, "%s", err);
    CHECK(q.op == PS_XFER_OP_COMMIT && q.role == PS_XFER_ROLE_NONE);

    /* Keys reversed. */
    m.n = 0;
    map(&m, 4);
    kv_str(&m, "processor", "p1");
    kv_uint(&m, "id", 3);
    kv_str(&m, "op", "status");
    kv_uint(&m, "v", 1);
    CHECKF(ps_xfer_decode_request(m.b, m.n, &q, err, sizeof err) == 0 &&
               q.op == PS_XFER_OP_STATUS && q.id == 3,
           "%s", err);
}

static void test_refusals(void)
{
    mb m;
    /* Framing. */
    m.n = 0;
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "empty");
    static uint8_t huge[PS_XFER_MAX_MESSAGE + 1];
    huge[0] = 0x80;
    ps_xfer_request q;
    CHECK(ps_xfer_decode_request(huge, sizeof huge, &q, err, sizeof err) == PS_XFER_E_TOO_LARGE);
    m.n = 0;
    byte(&m, 0x92);
    byte(&m, 1);
    byte(&m, 2);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "expected a map");
    commit_head(&m, 0);
    byte(&m, 0xc0);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "1 bytes after the end");
    commit_head(&m, 0);
    m.n -= 1;
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "truncated");
    m.n = 0;
    map(&m, 65);
    for (int i = 0; i < 65; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        kv_uint(&m, k, 1);
    }
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "65 keys");
    commit_head(&m, 1);
    kv_uint(&m, "id", 8);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "key 'id' appears twice");
    commit_head(&m, 1);
    uint_(&m, 5);
    uint_(&m, 5);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "expected a string");
    commit_head(&m, 1);
    str(&m, "deep");
    for (int i = 0; i < 20; i++)
        byte(&m, 0x91);
    byte(&m, 0x01);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "nested");
    commit_head(&m, 1);
    str(&m, "x");
    byte(&m, 0xc1);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "not a msgpack type");
    commit_head(&m, 1);
    str(&m, "x");
    byte(&m, 0xdd);
    be(&m, 0xffffffffu, 4);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "declares 4294967295 entries");
    commit_head(&m, 1);
    str(&m, "x");
    byte(&m, 0xc6);
    be(&m, 1000, 4);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "declares 1000 bytes");

    /* The envelope. */
    prepare_map(&m, "v", NULL, NULL);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "missing key 'v'");
    prepare_map(&m, NULL, "v", v_v2);
    REFUSED_REQ(&m, PS_XFER_E_VERSION, "version 2");
    CHECK(q.id == 0);
    /* ... and the error reply can still echo what was readable. */
    ps_xfer_decode_request(m.b, m.n, &q, err, sizeof err);
    CHECK(q.id == 42 && !strcmp(q.processor, "node-7"));
    prepare_map(&m, NULL, "v", v_text);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'v' is a string");
    prepare_map(&m, "op", NULL, NULL);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "missing key 'op'");
    prepare_map(&m, NULL, "op", v_op_bad);
    REFUSED_REQ(&m, PS_XFER_E_UNKNOWN_OP, "unknown op 'transfer'");
    prepare_map(&m, NULL, "op", v_op_error); /* a reply's op, not a request's */
    REFUSED_REQ(&m, PS_XFER_E_UNKNOWN_OP, "unknown op 'error'");
    prepare_map(&m, NULL, "op", v_nil);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'op' is nil");

    /* id and processor. */
    prepare_map(&m, "id", NULL, NULL);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "missing key 'id'");
    prepare_map(&m, NULL, "id", v_zero);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'id' is 0");
    prepare_map(&m, NULL, "id", v_neg);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'id' is a negative integer");
    prepare_map(&m, NULL, "id", v_big);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "at most 9223372036854775807");
    prepare_map(&m, NULL, "id", v_float_id);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'id' is a float");
    prepare_map(&m, "processor", NULL, NULL);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "missing key 'processor'");
    prepare_map(&m, NULL, "processor", v_empty);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'processor' is empty");
    prepare_map(&m, NULL, "processor", v_long);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "64 bytes long (at most 63)");
    prepare_map(&m, NULL, "processor", v_space);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "byte 0x20");
    prepare_map(&m, NULL, "processor", v_nul);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "byte 0x00");
    prepare_map(&m, NULL, "processor", v_utf8);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "byte 0xc3");
    prepare_map(&m, NULL, "processor", v_zero);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'processor' is an unsigned integer");

    /* prepare's own keys. */
    static const char *const required[] = {"role", "workload", "peer", "state_bytes",
                                           "expected_seconds"};
    for (int i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "missing key '%s'", required[i]);
        prepare_map(&m, required[i], NULL, NULL);
        REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, want);
    }
    prepare_map(&m, NULL, "role", v_role);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'role' is 'both'");
    prepare_map(&m, NULL, "role", v_zero);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'role' is an unsigned integer");
    prepare_map(&m, NULL, "workload", v_long);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'workload' is 64 bytes");
    prepare_map(&m, NULL, "workload", v_empty);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'workload' is empty");
    prepare_map(&m, NULL, "peer", v_space);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'peer' has byte 0x20");
    prepare_map(&m, NULL, "peer", v_peer_self);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "the processor itself");
    prepare_map(&m, NULL, "state_bytes", v_nan);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'state_bytes' is NaN");
    prepare_map(&m, NULL, "state_bytes", v_inf);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'state_bytes' is infinite");
    prepare_map(&m, NULL, "state_bytes", v_neg);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'state_bytes' is -1");
    prepare_map(&m, NULL, "expected_seconds", v_negf);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'expected_seconds' is -0.5");
    prepare_map(&m, NULL, "expected_seconds", v_text);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "expected a number");
    prepare_map(&m, NULL, "expected_seconds", v_nan);
    REFUSED_REQ(&m, PS_XFER_E_BAD_REQUEST, "'expected_seconds' is NaN");
}

static void reply_map(mb *m, const char *op, const char *result, const char *state,
                      const char *reason)
{
    m->n = 0;
    map(m, 6 + (reason != NULL));
    kv_uint(m, "v", 1);
    kv_str(m, "op", op);
    kv_uint(m, "id", 5);
    kv_str(m, "processor", "p1");
    if (result)
        kv_str(m, "result", result);
    else
        kv_str(m, "other", "x");
    kv_str(m, "state", state);
    if (reason) kv_str(m, "reason", reason);
}

static void test_reply_refusals(void)
{
    mb m;
    reply_map(&m, "commit", "ok", "committed", NULL);
    ps_xfer_reply r;
    CHECK(ps_xfer_decode_reply(m.b, m.n, &r, err, sizeof err) == 0);
    reply_map(&m, "commit", "maybe", "committed", NULL);
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "'result' is 'maybe'");
    reply_map(&m, "commit", NULL, "committed", NULL);
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "missing key 'result'");
    reply_map(&m, "commit", "ok", "done", NULL);
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "'state' is 'done'");
    reply_map(&m, "commit", "refused", "none", NULL);
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "refusal without a reason");
    reply_map(&m, "commit", "refused", "none", "");
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "refusal without a reason");
    char longr[1100];
    memset(longr, 'r', 1024);
    longr[1024] = '\0';
    reply_map(&m, "commit", "refused", "none", longr);
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "'reason' is 1024 bytes long (at most 1023)");
    reply_map(&m, "frobnicate", "ok", "none", NULL);
    REFUSED_REP(&m, PS_XFER_E_UNKNOWN_OP, "unknown op");
    /* Errors. */
    m.n = 0;
    map(&m, 4);
    kv_uint(&m, "v", 1);
    kv_str(&m, "op", "error");
    kv_uint(&m, "code", 1);
    kv_str(&m, "name", "bad_request");
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "missing key 'message'");
    m.n = 0;
    map(&m, 5);
    kv_uint(&m, "v", 1);
    kv_str(&m, "op", "error");
    kv_uint(&m, "code", 1);
    kv_str(&m, "name", "a_name_much_longer_than_31_bytes_x");
    kv_str(&m, "message", "m");
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "'name' is 34 bytes long (at most 31)");
    m.n = 0;
    map(&m, 6);
    kv_uint(&m, "v", 1);
    kv_str(&m, "op", "error");
    kv_uint(&m, "code", 1);
    kv_str(&m, "name", "bad_request");
    kv_str(&m, "message", "m");
    kv_uint(&m, "id", 0);
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "'id' is 0");
    m.n = 0;
    map(&m, 5);
    kv_uint(&m, "v", 1);
    kv_str(&m, "op", "error");
    str(&m, "code");
    byte(&m, 0xcf);
    be(&m, (uint64_t)1 << 40, 8);
    kv_str(&m, "name", "x");
    kv_str(&m, "message", "m");
    REFUSED_REP(&m, PS_XFER_E_BAD_REQUEST, "'code' is 1099511627776");
    /* A newer agent's code is fine. */
    m.n = 0;
    map(&m, 5);
    kv_uint(&m, "v", 1);
    kv_str(&m, "op", "error");
    kv_uint(&m, "code", 40);
    kv_str(&m, "name", "future_code");
    kv_str(&m, "message", "m");
    CHECK(ps_xfer_decode_reply(m.b, m.n, &r, err, sizeof err) == 0 && r.code == 40);
}

static void test_encoder_refusals(void)
{
    ps_buf b = {0};
    ps_xfer_request q = prepare_req();
    q.state_bytes = NAN;
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST &&
          strstr(err, "NaN"));
    q = prepare_req();
    q.expected_seconds = INFINITY;
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    q = prepare_req();
    q.expected_seconds = -1;
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    q = prepare_req();
    q.id = 0;
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    q = prepare_req();
    q.role = PS_XFER_ROLE_NONE;
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    q = prepare_req();
    strcpy(q.peer, q.processor);
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    q = prepare_req();
    strcpy(q.workload, "a b");
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    q = prepare_req();
    memset(q.processor, 'x', sizeof q.processor); /* no NUL within 64 bytes */
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    q = prepare_req();
    q.op = PS_XFER_OP_ERROR;
    CHECK(ps_xfer_encode_request(&b, &q, err, sizeof err) == PS_XFER_E_UNKNOWN_OP);

    ps_xfer_reply r = {.op = PS_XFER_OP_COMMIT, .id = 1, .result = PS_XFER_RESULT_REFUSED};
    strcpy(r.processor, "p");
    CHECK(ps_xfer_encode_reply(&b, &r, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    strcpy(r.reason, "why");
    CHECK(ps_xfer_encode_reply(&b, &r, err, sizeof err) == 0);
    r.state = (ps_xfer_state)9;
    CHECK(ps_xfer_encode_reply(&b, &r, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    r.state = PS_XFER_STATE_NONE;
    r.op = PS_XFER_OP_ERROR;
    CHECK(ps_xfer_encode_reply(&b, &r, err, sizeof err) == PS_XFER_E_UNKNOWN_OP);
    r.op = PS_XFER_OP_COMMIT;
    r.result = (ps_xfer_result)3;
    CHECK(ps_xfer_encode_reply(&b, &r, err, sizeof err) == PS_XFER_E_BAD_REQUEST);
    ps_buf_free(&b);
}

int main(void)
{
    test_names();
    test_round_trips();
    test_golden();
    test_lenient();
    test_refusals();
    test_reply_refusals();
    test_encoder_refusals();
    return test_finish("test_transfer_proto");
}
