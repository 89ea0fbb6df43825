/*
 * serve_fixture.h - talking to an in-process scoring server from a test
 * with raw nng and the protocol codec: a REQ socket that gives up instead
 * of hanging, one request and its decoded reply, deterministic heartbeats,
 * and HTTP GETs of /metrics with a reader for one metric's value.
 */
#ifndef PRESHIFT_SERVE_FIXTURE_H
#define PRESHIFT_SERVE_FIXTURE_H

#include "server/prom_text.h"
#include "server/protocol.h"
#include "testutil.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/http/http.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A REQ socket that gives up after 20 s instead of hanging the test. */
static inline nng_socket client(const char *addr)
{
    nng_socket s;
    CHECK(nng_req0_open(&s) == 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 60000);
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, PS_PROTO_MAX_MESSAGE);
    int rv = nng_dial(s, addr, NULL, 0);
    CHECKF(rv == 0, "dial %s: %s", addr, nng_strerror(rv));
    return s;
}

/* Send raw bytes, decode the reply; 0 or an nng / codec failure. */
static inline int exchange(nng_socket s, const void *msg, size_t len, ps_proto_reply *reply)
{
    int rv = nng_send(s, (void *)msg, len, 0);
    if (rv) return rv;
    void *buf;
    size_t blen;
    if ((rv = nng_recv(s, &buf, &blen, NNG_FLAG_ALLOC)) != 0) return rv;
    char err[256];
    rv = ps_proto_decode_reply(buf, blen, reply, err, sizeof err);
    if (rv) fprintf(stderr, "reply does not decode: %s\n", err);
    nng_free(buf, blen);
    return rv;
}

static inline int simple_request(nng_socket s, ps_proto_op op, uint64_t id, ps_proto_reply *reply)
{
    ps_proto_request r = {.op = op, .has_id = true, .id = id};
    ps_buf b = {0};
    char err[256];
    int rv = ps_proto_encode_request(&b, &r, PS_PROTO_FORM_COLUMNS, err, sizeof err);
    if (rv == 0) rv = exchange(s, b.data, b.len, reply);
    ps_buf_free(&b);
    return rv;
}

static inline float metric(uint64_t id, int t, int k)
{
    uint32_t h = (uint32_t)(id * 2654435761u) ^ (uint32_t)(t * 40503u + (uint32_t)k * 97u);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return 10.0f + (float)k + sinf(0.3f * (float)t + (float)id) + (float)(h % 1000) * 1e-4f;
}

/* Heartbeats of n processors ids[0..n) at tick t (seq t + 1, ts 1e9 + t). */
static inline int score(nng_socket s, const uint64_t *ids, size_t n, int t, uint32_t k,
                        ps_proto_reply *reply)
{
    uint64_t *seqs = malloc(n * sizeof *seqs);
    double *ts = malloc(n * sizeof *ts);
    float *x = malloc(n * k * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        seqs[i] = (uint64_t)t + 1;
        ts[i] = 1e9 + t;
        for (uint32_t j = 0; j < k; j++)
            x[i * k + j] = metric(ids[i], t, (int)j);
    }
    ps_proto_request r = {.op = PS_PROTO_OP_SCORE,
                          .has_id = true,
                          .id = (uint64_t)t,
                          .n = n,
                          .k = k,
                          .ids = ids,
                          .seqs = seqs,
                          .ts = ts,
                          .metrics = x};
    ps_buf b = {0};
    char err[256];
    int rv = ps_proto_encode_request(&b, &r, PS_PROTO_FORM_COLUMNS, err, sizeof err);
    if (rv == 0) rv = exchange(s, b.data, b.len, reply);
    ps_buf_free(&b);
    free(seqs);
    free(ts);
    free(x);
    return rv;
}

/* ---- HTTP ------------------------------------------------------------------- */

static inline int http_get(int port, const char *path, char *body, size_t cap)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    nng_url *u = NULL;
    nng_http_client *c = NULL;
    nng_http_req *req = NULL;
    nng_http_res *res = NULL;
    nng_aio *aio = NULL;
    int status = -1;
    if (nng_url_parse(&u, url) || nng_http_client_alloc(&c, u) || nng_http_req_alloc(&req, u) ||
        nng_http_res_alloc(&res) || nng_aio_alloc(&aio, NULL, NULL))
        goto done;
    nng_aio_set_timeout(aio, 20000);
    nng_http_client_transact(c, req, res, aio);
    nng_aio_wait(aio);
    if (nng_aio_result(aio) == 0) {
        status = nng_http_res_get_status(res);
        void *data;
        size_t len;
        nng_http_res_get_data(res, &data, &len);
        if (len >= cap) len = cap - 1;
        memcpy(body, data, len);
        body[len] = '\0';
    }
done:
    if (aio) nng_aio_free(aio);
    if (res) nng_http_res_free(res);
    if (req) nng_http_req_free(req);
    if (c) nng_http_client_free(c);
    if (u) nng_url_free(u);
    return status;
}

/* The value of the series `name` (labels included), or -1 when absent (server/prom_text.h). */
static inline double metric_value(const char *text, const char *name)
{
    double v;
    return ps_prom_value(text, name, &v) ? -1 : v;
}

#endif
