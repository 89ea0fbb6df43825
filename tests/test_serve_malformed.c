/*
 * test_serve_malformed.c - every kind of bad message a real server can get,
 * over ipc:// and tcp://: truncated, trailing bytes, wrong types, a huge
 * declared count, an unknown op, a wrong K, NaN, a processor twice in one
 * request, more heartbeats than a request may carry, and a resent request
 * (duplicate seqs, not an error). Each is answered with the error it
 * deserves, and a valid request on the same socket works right after.
 * (Messages beyond 16 MiB never reach the decoder: NNG_OPT_RECVMAXSZ drops
 * them in nng.)
 */
#include "serve_fixture.h"
#include "server/serve.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K 2

static char tmpdir[256];

/* The bytes of a valid score request for processors ids[0..n) at tick t. */
static ps_buf valid(const uint64_t *ids, size_t n, int t)
{
    uint64_t seqs[8];
    double ts[8];
    float x[8 * K];
    for (size_t i = 0; i < n; i++) {
        seqs[i] = (uint64_t)t + 1;
        ts[i] = 1e9 + t;
        for (int k = 0; k < K; k++)
            x[i * K + (size_t)k] = metric(ids[i], t, k);
    }
    ps_proto_request r = {
        .op = PS_PROTO_OP_SCORE, .n = n, .k = K, .ids = ids, .seqs = seqs, .ts = ts, .metrics = x};
    ps_buf b = {0};
    char err[256];
    CHECKF(ps_proto_encode_request(&b, &r, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0, "%s", err);
    return b;
}

/* Send bytes; the reply must be error `code`; then tick t must be scored normally. */
static void refused(nng_socket s, const char *what, const void *msg, size_t len, int code, int t)
{
    ps_proto_reply reply = {0};
    int rv = exchange(s, msg, len, &reply);
    CHECKF(rv == 0 && reply.op == PS_PROTO_OP_ERROR && (int)reply.error.code == code,
           "%s: rv %d op %d code %u (%s) want %d", what, rv, (int)reply.op,
           (unsigned)reply.error.code, reply.error.message, code);
    CHECKF(rv || reply.error.message[0], "%s: an error with no message", what);
    uint64_t id = 7;
    rv = score(s, &id, 1, t, K, &reply);
    CHECKF(rv == 0 && reply.op == PS_PROTO_OP_SCORE && reply.score.n == 1 &&
               reply.score.results[0].state != PS_PROTO_STATE_REJECTED,
           "%s: the valid request after it failed (rv %d op %d)", what, rv, (int)reply.op);
    ps_proto_reply_free(&reply);
}

static void run(const char *listen)
{
    ps_serve_config c;
    ps_serve_config_default(&c);
    snprintf(c.listen, sizeof c.listen, "%s", listen);
    snprintf(c.publish, sizeof c.publish, "off");
    snprintf(c.http, sizeof c.http, "off");
    snprintf(c.model, sizeof c.model, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
    c.metrics = K;
    c.max_processors = 16;
    c.warmup = 24;
    c.backend = PS_BACKEND_CPU;
    c.threads = 1;
    c.batch_delay = 0.001;
    c.quiet = 1;
    char err[512];
    ps_serve *srv = ps_serve_start(&c, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    char addr[600];
    int port = ps_serve_port(srv, PS_SERVE_REP);
    if (port)
        snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", port);
    else
        snprintf(addr, sizeof addr, "%s", listen);
    nng_socket s = client(addr);
    int t = 0;

    uint64_t ids[2] = {1, 2};
    ps_buf good = valid(ids, 2, 0);
    refused(s, "truncated", good.data, good.len - 3, PS_PROTO_E_BAD_REQUEST, t++);
    uint8_t *longer = malloc(good.len + 1);
    memcpy(longer, good.data, good.len);
    longer[good.len] = 0xc0; /* nil after the map */
    refused(s, "trailing bytes", longer, good.len + 1, PS_PROTO_E_BAD_REQUEST, t++);
    free(longer);
    ps_buf_free(&good);

    /* {"v":1,"op":"score","ids":"x"} */
    static const uint8_t wrong_type[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa5, 's', 'c',
                                         'o',  'r',  'e', 0xa3, 'i',  'd', 's', 0xa1, 'x'};
    refused(s, "ids as a string", wrong_type, sizeof wrong_type, PS_PROTO_E_BAD_REQUEST, t++);
    /* {"v":"1","op":"score"}: the version as a string */
    static const uint8_t version_str[] = {0x82, 0xa1, 'v', 0xa1, '1', 0xa2, 'o',
                                          'p',  0xa5, 's', 'c',  'o', 'r',  'e'};
    refused(s, "version as a string", version_str, sizeof version_str, PS_PROTO_E_BAD_REQUEST, t++);
    /* {"v":1,"op":"score","ids":[ 4 billion entries, none there ]} */
    static const uint8_t huge[] = {0x83, 0xa1, 'v',  0x01, 0xa2, 'o',  'p', 0xa5, 's',
                                   'c',  'o',  'r',  'e',  0xa3, 'i',  'd', 's',  0xdd,
                                   0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
    refused(s, "huge declared count", huge, sizeof huge, PS_PROTO_E_BAD_REQUEST, t++);
    /* {"v":1,"op":"dance"} */
    static const uint8_t unknown_op[] = {0x82, 0xa1, 'v', 0x01, 0xa2, 'o', 'p',
                                         0xa5, 'd',  'a', 'n',  'c',  'e'};
    refused(s, "unknown op", unknown_op, sizeof unknown_op, PS_PROTO_E_UNKNOWN_OP, t++);
    /* rows form: {"v":1,"op":"score","rows":[[5, 1, 1e9, [NaN, 1.0]]]} */
    static const uint8_t nan_row[] = {0x83, 0xa1, 'v',  0x01, 0xa2, 'o',  'p',  0xa5, 's',  'c',
                                      'o',  'r',  'e',  0xa4, 'r',  'o',  'w',  's',  0x91, 0x94,
                                      0x05, 0x01, 0xcb, 0x41, 0xcd, 0xcd, 0x65, 0x00, 0x00, 0x00,
                                      0x00, 0x92, 0xcb, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00,
                                      0x00, 0xcb, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    refused(s, "NaN metric", nan_row, sizeof nan_row, PS_PROTO_E_BAD_REQUEST, t++);
    /* The same rows with 3 metrics: decodes, but the server takes 2. */
    static const uint8_t wrong_k[] = {0x83, 0xa1, 'v',  0x01, 0xa2, 'o',  'p',  0xa5, 's',
                                      'c',  'o',  'r',  'e',  0xa4, 'r',  'o',  'w',  's',
                                      0x91, 0x94, 0x05, 0x01, 0xcb, 0x41, 0xcd, 0xcd, 0x65,
                                      0x00, 0x00, 0x00, 0x00, 0x93, 0x01, 0x02, 0x03};
    refused(s, "wrong K", wrong_k, sizeof wrong_k, PS_PROTO_E_K_MISMATCH, t++);
    /* rows form with processor 5 twice */
    static const uint8_t twice[] = {0x83, 0xa1, 'v',  0x01, 0xa2, 'o',  'p',  0xa5, 's',
                                    'c',  'o',  'r',  'e',  0xa4, 'r',  'o',  'w',  's',
                                    0x92, 0x94, 0x05, 0x01, 0x01, 0x92, 0x01, 0x02, 0x94,
                                    0x05, 0x02, 0x02, 0x92, 0x01, 0x02};
    refused(s, "a processor twice", twice, sizeof twice, PS_PROTO_E_BAD_REQUEST, t++);

    /* A resent request is not an error: its heartbeats are duplicates. */
    uint64_t id = 9;
    ps_proto_reply reply = {0};
    CHECK(score(s, &id, 1, 100, K, &reply) == 0 && reply.op == PS_PROTO_OP_SCORE);
    CHECK(score(s, &id, 1, 100, K, &reply) == 0 && reply.op == PS_PROTO_OP_SCORE &&
          reply.score.n == 1 && reply.score.results[0].state == PS_PROTO_STATE_DUPLICATE);

    /* More heartbeats than one request may carry (65,536): too_large. */
    size_t n = PS_PROTO_MAX_BATCH + 1, len = 0;
    uint8_t *many = malloc(32 + n);
    static const uint8_t head[] = {0x84, 0xa1, 'v',  0x01, 0xa2, 'o',  'p', 0xa5, 's', 'c', 'o',
                                   'r',  'e',  0xa1, 'k',  0x02, 0xa3, 'i', 'd',  's', 0xdd};
    memcpy(many, head, sizeof head);
    len = sizeof head;
    for (int sh = 24; sh >= 0; sh -= 8)
        many[len++] = (uint8_t)(n >> sh);
    memset(many + len, 0x01, n);
    len += n;
    refused(s, "too many heartbeats", many, len, PS_PROTO_E_TOO_LARGE, t++);
    free(many);
    ps_proto_reply_free(&reply);
    nng_close(s);
    ps_serve_stop(srv);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ps_malformed_XXXXXX");
    if (!mkdtemp(tmpdir)) TEST_SKIP("cannot make a temporary directory");
    char addr[512];
    snprintf(addr, sizeof addr, "ipc://%s/rep", tmpdir);
    run(addr);
    run("tcp://127.0.0.1:0");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    nng_fini();
    return test_finish("test_serve_malformed");
}
