/*
 * test_serve_latest.c - what a shifting manager needs from the scoring
 * server, on a real in-process server: op "latest" for scored, warming and
 * unknown processors (in request order, with their last heartbeat times,
 * refusals with the id echoed, the largest request), the PUB stream's
 * metrics (k, and x holding each scored record's own heartbeat row even
 * when the tick also held warming heartbeats), a latest request answered
 * while a tick is still being assembled (it never waits for the tick and
 * reflects only the ticks run), ps_client_latest, and the /metrics counters.
 */
#include "serve_fixture.h"
#include "server/client.h"
#include "server/protocol.h"
#include "server/serve.h"
#include "testutil.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K 3
#define WARMUP 24

static char tmpdir[256];

static ps_serve_config base_config(const char *name)
{
    ps_serve_config c;
    ps_serve_config_default(&c);
    snprintf(c.listen, sizeof c.listen, "ipc://%s/%s.rep", tmpdir, name);
    snprintf(c.publish, sizeof c.publish, "ipc://%s/%s.pub", tmpdir, name);
    snprintf(c.http, sizeof c.http, "http://127.0.0.1:0");
    snprintf(c.model, sizeof c.model, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
    c.metrics = K;
    c.max_processors = 64;
    c.warmup = WARMUP;
    c.backend = PS_BACKEND_CPU;
    c.threads = 1;
    c.batch_delay = 0.002;
    c.quiet = 1;
    return c;
}

/* A latest request for ids[0..n) with client id `id`; 0 or a failure. */
static int latest(nng_socket s, const uint64_t *ids, size_t n, uint64_t id, ps_proto_reply *reply)
{
    ps_proto_request r = {.op = PS_PROTO_OP_LATEST, .has_id = true, .id = id, .n = n, .ids = ids};
    ps_buf b = {0};
    char err[256];
    int rv = ps_proto_encode_request(&b, &r, PS_PROTO_FORM_COLUMNS, err, sizeof err);
    CHECKF(rv == 0, "%s", err);
    if (rv == 0) rv = exchange(s, b.data, b.len, reply);
    ps_buf_free(&b);
    return rv;
}

static int same_result(const ps_proto_result *a, const ps_proto_result *b)
{
    return a->id == b->id && !memcmp(&a->score, &b->score, sizeof a->score) &&
           !memcmp(&a->pfp, &b->pfp, sizeof a->pfp) && a->top == b->top;
}

static int zero_result(const ps_proto_result *r, uint64_t id, uint8_t state)
{
    return r->id == id && r->state == state && r->score == 0 && r->pfp == 0 && r->top == -1;
}

/* ---- latest and the stream ------------------------------------------------------ */

static void test_latest_and_stream(void)
{
    ps_serve_config cfg = base_config("main");
    char err[1024];
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    int http = ps_serve_port(srv, PS_SERVE_HTTP);

    nng_socket sub;
    CHECK(nng_sub0_open(&sub) == 0);
    CHECK(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0) == 0);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000);
    CHECK(nng_dial(sub, cfg.publish, NULL, 0) == 0);

    nng_socket s = client(cfg.listen);
    ps_proto_reply reply = {0};
    int latest_requests = 0;

    /* Nothing known yet: unknown, ts 0, tick 0. */
    const uint64_t none[2] = {5, 6};
    CHECK(latest(s, none, 2, 1, &reply) == 0);
    latest_requests++;
    CHECKF(reply.op == PS_PROTO_OP_LATEST, "op %d (%s)", reply.op, reply.error.message);
    CHECK(reply.has_id && reply.id == 1 && reply.latest.tick == 0 && reply.latest.n == 2);
    for (size_t i = 0; i < 2 && reply.latest.n == 2; i++)
        CHECK(zero_result(&reply.latest.results[i], none[i], PS_PROTO_STATE_UNKNOWN) &&
              reply.latest.ts[i] == 0);
    CHECK(simple_request(s, PS_PROTO_OP_INFO, 2, &reply) == 0 && reply.op == PS_PROTO_OP_INFO);
    uint64_t run = reply.info.run;

    /* Processors 100..103 warm up and are scored; processor 200 joins in
     * the middle of each request once they are scored, so every scored
     * tick also holds one warming heartbeat (not a record) among them. */
    enum { T = WARMUP + 4, NS = 4 };
    const uint64_t ids[NS + 1] = {100, 101, 200, 102, 103};
    const uint64_t early[NS] = {100, 101, 102, 103};
    ps_proto_result scored[T][NS + 1];
    memset(scored, 0, sizeof scored);
    uint64_t last_tick = 0;
    for (int t = 0; t < T; t++) {
        int late = t >= WARMUP;
        size_t n = late ? NS + 1 : NS;
        CHECK(score(s, late ? ids : early, n, t, K, &reply) == 0);
        CHECKF(reply.op == PS_PROTO_OP_SCORE && reply.score.n == n, "tick %d: op %d (%s)", t,
               reply.op, reply.error.message);
        if (reply.op != PS_PROTO_OP_SCORE || reply.score.n != n) continue;
        last_tick = reply.score.tick;
        for (size_t i = 0; i < n; i++) {
            const ps_proto_result *r = &reply.score.results[i];
            scored[t][i] = *r;
            uint8_t want =
                r->id == 200 || t < WARMUP ? PS_PROTO_STATE_WARMING_UP : PS_PROTO_STATE_SCORED;
            CHECKF(r->state == want, "tick %d: processor %llu state %u", t,
                   (unsigned long long)r->id, r->state);
        }
    }

    /* Latest: in request order, scored ones repeat their last result,
     * the warming one says so, an unknown one is unknown. */
    const uint64_t ask[5] = {101, 999, 200, 100, 103};
    CHECK(latest(s, ask, 5, 77, &reply) == 0);
    latest_requests++;
    CHECKF(reply.op == PS_PROTO_OP_LATEST && reply.latest.n == 5, "op %d (%s)", reply.op,
           reply.error.message);
    if (reply.op == PS_PROTO_OP_LATEST && reply.latest.n == 5) {
        const ps_proto_result *r = reply.latest.results;
        const double *ts = reply.latest.ts, last_ts = 1e9 + (T - 1);
        CHECK(reply.has_id && reply.id == 77);
        CHECKF(reply.latest.tick == last_tick, "tick %llu, last scored %llu",
               (unsigned long long)reply.latest.tick, (unsigned long long)last_tick);
        CHECK(r[0].state == PS_PROTO_STATE_SCORED && same_result(&r[0], &scored[T - 1][1]));
        CHECK(ts[0] == last_ts);
        CHECK(zero_result(&r[1], 999, PS_PROTO_STATE_UNKNOWN) && ts[1] == 0);
        CHECK(zero_result(&r[2], 200, PS_PROTO_STATE_WARMING_UP) && ts[2] == last_ts);
        CHECK(r[3].state == PS_PROTO_STATE_SCORED && same_result(&r[3], &scored[T - 1][0]));
        CHECK(r[4].state == PS_PROTO_STATE_SCORED && same_result(&r[4], &scored[T - 1][4]));
        CHECK(ts[3] == last_ts && ts[4] == last_ts);
    }

    /* The same through the client library; a repeated id is refused before
     * anything is sent. */
    {
        ps_client *c = ps_client_open(cfg.listen, NULL, err, sizeof err);
        CHECKF(c != NULL, "%s", err);
        ps_proto_latest_reply lr = {0};
        const uint64_t two[2] = {200, 102};
        int rv = c ? ps_client_latest(c, 2, two, &lr, err, sizeof err) : -1;
        CHECKF(rv == PS_CLIENT_OK, "%s", err);
        latest_requests++;
        if (rv == PS_CLIENT_OK) {
            CHECK(lr.n == 2 && lr.tick == last_tick);
            CHECK(lr.results[0].state == PS_PROTO_STATE_WARMING_UP);
            CHECK(lr.results[1].state == PS_PROTO_STATE_SCORED &&
                  same_result(&lr.results[1], &scored[T - 1][3]));
            CHECK(lr.ts[0] == 1e9 + (T - 1) && lr.ts[1] == 1e9 + (T - 1));
        }
        const uint64_t dup[2] = {7, 7};
        if (c) CHECK(ps_client_latest(c, 2, dup, &lr, err, sizeof err) == PS_CLIENT_E_INVALID);
        ps_client_close(c);
    }

    /* A latest request changes nothing: the same heartbeat again is still
     * a duplicate, and a processor asked about is still unknown to info. */
    CHECK(score(s, early, NS, T - 1, K, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_SCORE && reply.score.n == NS &&
          reply.score.results[0].state == PS_PROTO_STATE_DUPLICATE);
    CHECK(simple_request(s, PS_PROTO_OP_INFO, 3, &reply) == 0);
    CHECKF(reply.info.scored + reply.info.warming_up == NS + 1, "%llu scored, %llu warming",
           (unsigned long long)reply.info.scored, (unsigned long long)reply.info.warming_up);

    /* The largest request: 65536 ids, the known ones among them. */
    {
        size_t n = PS_PROTO_MAX_BATCH;
        uint64_t *many = malloc(n * sizeof *many);
        for (size_t i = 0; i < n; i++)
            many[i] = 1000000 + i;
        many[7] = 102;
        many[n - 1] = 200;
        CHECK(latest(s, many, n, 78, &reply) == 0);
        latest_requests++;
        CHECK(reply.op == PS_PROTO_OP_LATEST && reply.latest.n == n);
        size_t unknown = 0;
        for (size_t i = 0; i < reply.latest.n; i++) {
            CHECK(reply.latest.results[i].id == many[i]);
            unknown += reply.latest.results[i].state == PS_PROTO_STATE_UNKNOWN;
        }
        CHECK(unknown == n - 2);
        if (reply.latest.n == n) {
            CHECK(reply.latest.results[7].state == PS_PROTO_STATE_SCORED);
            CHECK(reply.latest.results[n - 1].state == PS_PROTO_STATE_WARMING_UP);
        }
        free(many);
    }

    /* Refusals, each echoing the id: a processor twice, none, one too many. */
    static const uint8_t twice[] = {0x84, 0xa1, 'v', 0x01, 0xa2, 'o',  'p',  0xa6, 'l',
                                    'a',  't',  'e', 's',  't',  0xa2, 'i',  'd',  0x05,
                                    0xa3, 'i',  'd', 's',  0x93, 0x01, 0x02, 0x01};
    CHECK(exchange(s, twice, sizeof twice, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_ERROR && reply.error.code == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(reply.error.message, "ids[2] repeats ids[0] (processor 1)"), "%s",
           reply.error.message);
    CHECK(reply.has_id && reply.id == 5);
    static const uint8_t empty[] = {0x84, 0xa1, 'v',  0x01, 0xa2, 'o', 'p',  0xa6,
                                    'l',  'a',  't',  'e',  's',  't', 0xa2, 'i',
                                    'd',  0x06, 0xa3, 'i',  'd',  's', 0x90};
    CHECK(exchange(s, empty, sizeof empty, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_ERROR && reply.error.code == PS_PROTO_E_BAD_REQUEST);
    CHECK(reply.has_id && reply.id == 6);
    {
        /* {"v":1,"op":"latest","id":7,"ids":[65537 x 0..]} by hand. */
        size_t n = PS_PROTO_MAX_BATCH + 1, len = 0;
        uint8_t *msg = malloc(32 + 5 * n);
        memcpy(msg, empty, sizeof empty - 1);
        len = sizeof empty - 1;
        msg[17] = 0x07;
        msg[len++] = 0xdd;
        for (int sh = 24; sh >= 0; sh -= 8)
            msg[len++] = (uint8_t)(n >> sh);
        for (size_t i = 0; i < n; i++) {
            msg[len++] = 0xce;
            for (int sh = 24; sh >= 0; sh -= 8)
                msg[len++] = (uint8_t)(i >> sh);
        }
        CHECK(exchange(s, msg, len, &reply) == 0);
        CHECK(reply.op == PS_PROTO_OP_ERROR && reply.error.code == PS_PROTO_E_TOO_LARGE);
        CHECK(reply.has_id && reply.id == 7);
        free(msg);
    }

    /* The stream: every scored record with its own heartbeat's metrics.
     * Ticks WARMUP .. T-1 scored 4 records each, among 5 heartbeats. */
    ps_proto_pub pub = {0};
    uint64_t expect = 1, got = 0, rows_ok = 0, messages = 0;
    while (got < NS * (uint64_t)(T - WARMUP)) {
        void *buf;
        size_t len;
        int rv = nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC);
        CHECKF(rv == 0, "PUB: %s after %llu records", nng_strerror(rv), (unsigned long long)got);
        if (rv) break;
        rv = ps_proto_decode_pub(buf, len, &pub, err, sizeof err);
        nng_free(buf, len);
        CHECKF(rv == 0, "PUB does not decode: %s", err);
        if (rv) break;
        messages++;
        CHECK(pub.run == run && pub.seq == expect);
        CHECKF(pub.k == K && pub.x != NULL, "PUB k %u", (unsigned)pub.k);
        for (size_t i = 0; i < pub.n && pub.k == K; i++) {
            const ps_proto_record *rec = &pub.records[i];
            int t = (int)lround(rec->ts - 1e9);
            CHECKF(t >= WARMUP && t < T && rec->id != 200, "record %llu at %d",
                   (unsigned long long)rec->id, t);
            if (t < WARMUP || t >= T) continue;
            /* Its metrics are the row its heartbeat carried... */
            int row = 1;
            for (int j = 0; j < K; j++) {
                float want = metric(rec->id, t, j);
                row &= !memcmp(&pub.x[i * K + j], &want, sizeof want);
            }
            /* ...and its score the one its reply had. */
            int found = 0;
            for (size_t q = 0; q < NS + 1; q++)
                if (scored[t][q].id == rec->id) {
                    found = 1;
                    row &= !memcmp(&scored[t][q].score, &rec->score, sizeof rec->score) &&
                           scored[t][q].pfp == rec->pfp && scored[t][q].top == rec->top;
                }
            CHECKF(row && found, "record %llu of tick %d: metrics or score differ",
                   (unsigned long long)rec->id, t);
            rows_ok += row && found;
        }
        expect = pub.seq + pub.n;
        got += pub.n;
    }
    CHECK(got == NS * (uint64_t)(T - WARMUP) && rows_ok == got);
    CHECK(messages == (uint64_t)(T - WARMUP)); /* one per tick: small ticks are not split */
    ps_proto_pub_free(&pub);

    /* /metrics: latest requests by op; no heartbeat is ever "unknown". */
    static char body[1 << 16];
    CHECK(http_get(http, "/metrics", body, sizeof body) == 200);
    double n_latest = metric_value(body, "preshift_requests_total{op=\"latest\"}");
    CHECKF(n_latest == latest_requests, "requests_total{op=\"latest\"} %g, sent %d", n_latest,
           latest_requests);
    CHECK(metric_value(body, "preshift_requests_total{op=\"score\"}") == T + 1);
    CHECK(metric_value(body, "preshift_requests_total{op=\"invalid\"}") == 3);
    CHECK(metric_value(body, "preshift_heartbeats_total{state=\"unknown\"}") == -1);
    CHECK(strstr(body, "state=\"unknown\"") == NULL);
    CHECK(metric_value(body, "preshift_heartbeats_total{state=\"warming_up\"}") ==
          NS * WARMUP + (T - WARMUP));
    CHECK(metric_value(body, "preshift_heartbeats_total{state=\"duplicate\"}") == NS);
    CHECK(metric_value(body, "preshift_queue_depth") == 0);
    CHECK(metric_value(body, "preshift_queue_requests") == 0);
    CHECK(metric_value(body, "preshift_published_records_total") == (double)got);

    ps_proto_reply_free(&reply);
    nng_close(s);
    nng_close(sub);
    ps_serve_stop(srv);
}

/* ---- latest while a tick is being assembled ---------------------------------------- */

static void test_latest_does_not_wait(void)
{
    ps_serve_config cfg = base_config("nowait");
    snprintf(cfg.publish, sizeof cfg.publish, "off");
    snprintf(cfg.http, sizeof cfg.http, "off");
    cfg.batch_delay = 1.0; /* a tick waits for its 4 known processors, or 1 s */
    char err[1024];
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    const uint64_t ids[4] = {1, 2, 3, 4};
    ps_proto_reply reply = {0};
    nng_socket s = client(cfg.listen), s2 = client(cfg.listen);
    CHECK(score(s, ids, 4, 0, K, &reply) == 0 && reply.op == PS_PROTO_OP_SCORE);
    CHECK(reply.score.tick == 1);

    /* Processor 1's next heartbeat and new processor 9's first open tick 2,
     * which then waits for processors 2, 3 and 4 (or the 1 s delay). */
    const uint64_t pending[2] = {1, 9};
    uint64_t seqs[2] = {2, 2};
    double ts[2] = {1e9 + 1, 1e9 + 1};
    float x[2 * K] = {1, 2, 3, 4, 5, 6};
    ps_proto_request r = {.op = PS_PROTO_OP_SCORE,
                          .n = 2,
                          .k = K,
                          .ids = pending,
                          .seqs = seqs,
                          .ts = ts,
                          .metrics = x};
    ps_buf b = {0};
    nng_msg *msg = NULL;
    nng_aio *aio;
    CHECK(nng_aio_alloc(&aio, NULL, NULL) == 0);
    nng_aio_set_timeout(aio, 20000);
    CHECK(ps_proto_encode_request(&b, &r, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0);
    CHECK(nng_msg_alloc(&msg, 0) == 0 && nng_msg_append(msg, b.data, b.len) == 0);
    nng_aio_set_msg(aio, msg);
    nng_send_aio(s2, aio);
    nng_aio_wait(aio);
    CHECK(nng_aio_result(aio) == 0);
    nng_recv_aio(s2, aio);
    sleep_ms(50); /* let the scoring thread admit it */

    /* Answered now, from tick 1: processor 1 as of its first heartbeat,
     * processor 9 unknown (its first heartbeat still waits for its tick). */
    double t0 = ps_serve_now();
    CHECK(latest(s, pending, 2, 3, &reply) == 0);
    double waited = ps_serve_now() - t0;
    CHECKF(reply.op == PS_PROTO_OP_LATEST && reply.latest.n == 2, "op %d (%s)", reply.op,
           reply.error.message);
    if (reply.op == PS_PROTO_OP_LATEST && reply.latest.n == 2) {
        CHECKF(reply.latest.tick == 1, "latest answered at tick %llu",
               (unsigned long long)reply.latest.tick);
        CHECK(zero_result(&reply.latest.results[0], 1, PS_PROTO_STATE_WARMING_UP));
        CHECK(reply.latest.ts[0] == 1e9);
        CHECK(zero_result(&reply.latest.results[1], 9, PS_PROTO_STATE_UNKNOWN));
        CHECK(reply.latest.ts[1] == 0);
    }
    printf("latest answered in %.1f ms while tick 2 was being assembled\n", waited * 1e3);

    /* Then tick 2 runs, and a second latest sees it. */
    nng_aio_wait(aio);
    CHECK(nng_aio_result(aio) == 0);
    ps_proto_reply late = {0};
    if (nng_aio_result(aio) == 0) {
        msg = nng_aio_get_msg(aio);
        CHECK(ps_proto_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &late, err, sizeof err) ==
              0);
        CHECK(late.op == PS_PROTO_OP_SCORE && late.score.tick == 2);
        nng_msg_free(msg);
    }
    CHECK(latest(s, pending, 2, 4, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_LATEST && reply.latest.tick == 2 && reply.latest.n == 2);
    if (reply.op == PS_PROTO_OP_LATEST && reply.latest.n == 2) {
        CHECK(reply.latest.ts[0] == 1e9 + 1 && reply.latest.ts[1] == 1e9 + 1);
        CHECK(reply.latest.results[1].state == PS_PROTO_STATE_WARMING_UP);
    }
    ps_proto_reply_free(&late);
    ps_proto_reply_free(&reply);
    ps_buf_free(&b);
    nng_aio_free(aio);
    nng_close(s);
    nng_close(s2);
    ps_serve_stop(srv);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ps_serve_latest_XXXXXX");
    if (!mkdtemp(tmpdir)) TEST_SKIP("cannot make a temporary directory");
    test_latest_and_stream();
    test_latest_does_not_wait();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    nng_fini();
    return test_finish("test_serve_latest");
}
