/*
 * test_serve.c - the scoring server in-process, over ipc:// in a temporary
 * directory and tcp://127.0.0.1:0 (no fixed ports): health and info, warm-up
 * then scores, duplicates and stale heartbeats, K mismatch and garbage,
 * processors beyond capacity, the PUB stream's sequence numbers, many
 * concurrent clients, `busy` from a tiny queue without hanging, /metrics
 * /healthz /readyz over HTTP, and TLS when openssl can make a certificate.
 */
#include "serve_fixture.h"
#include "server/protocol.h"
#include "server/serve.h"
#include "testutil.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define K 3
#define WARMUP 32

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

static int result_ok(const ps_proto_result *r)
{
    return isfinite(r->score) && r->score >= 0 && r->pfp >= 0 && r->pfp <= 1 && r->top >= -1 &&
           r->top < K;
}

/* ---- many clients at once ------------------------------------------------------ */

typedef struct burst {
    const char *addr;
    uint64_t id;
    int ticks, first_tick;
    int ok, errors, busy, bad;
} burst;

static void *burst_client(void *arg)
{
    burst *b = arg;
    nng_socket s = client(b->addr);
    ps_proto_reply reply = {0};
    for (int t = b->first_tick; t < b->first_tick + b->ticks; t++) {
        if (score(s, &b->id, 1, t, K, &reply)) {
            b->bad++;
            continue;
        }
        if (reply.op == PS_PROTO_OP_ERROR) {
            b->errors++;
            if (reply.error.code == PS_PROTO_E_BUSY) b->busy++;
        } else if (reply.op == PS_PROTO_OP_SCORE && reply.score.n == 1 &&
                   reply.score.results[0].id == b->id && result_ok(&reply.score.results[0])) {
            b->ok++;
        } else {
            b->bad++;
        }
    }
    ps_proto_reply_free(&reply);
    nng_close(s);
    return NULL;
}

/* ---- the main server ------------------------------------------------------------ */

static void test_main_server(void)
{
    ps_serve_config cfg = base_config("main");
    char err[1024];
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    int http = ps_serve_port(srv, PS_SERVE_HTTP);
    CHECK(http > 0);

    nng_socket sub;
    CHECK(nng_sub0_open(&sub) == 0);
    CHECK(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0) == 0);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 5000);
    CHECK(nng_dial(sub, cfg.publish, NULL, 0) == 0);

    nng_socket s = client(cfg.listen);
    ps_proto_reply reply = {0};

    /* health and info */
    CHECK(simple_request(s, PS_PROTO_OP_HEALTH, 7, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_HEALTH && reply.has_id && reply.id == 7);
    CHECK(reply.health.status == PS_PROTO_STATUS_OK && reply.health.tick == 0);
    CHECK(simple_request(s, PS_PROTO_OP_INFO, 8, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_INFO && reply.id == 8);
    CHECK(reply.info.k == K && reply.info.hidden > 0 && reply.info.run != 0);
    CHECK(reply.info.max_processors == 64 && reply.info.max_batch == PS_PROTO_MAX_BATCH);
    CHECK(reply.info.max_message_bytes == PS_PROTO_MAX_MESSAGE);
    CHECK(strstr(reply.info.version, "preshift") != NULL && reply.info.backend[0]);
    uint64_t run = reply.info.run;

    /* warm-up, then scores */
    const uint64_t ids[4] = {100, 101, 102, 103};
    const int ticks = WARMUP + 4;
    uint64_t last_tick = 0;
    ps_proto_result last[4];
    for (int t = 0; t < ticks; t++) {
        CHECK(score(s, ids, 4, t, K, &reply) == 0);
        CHECKF(reply.op == PS_PROTO_OP_SCORE, "tick %d: op %d (%s)", t, reply.op,
               reply.error.message);
        if (reply.op != PS_PROTO_OP_SCORE) continue;
        CHECK(reply.has_id && reply.id == (uint64_t)t && reply.score.n == 4);
        CHECK(reply.score.tick > last_tick);
        last_tick = reply.score.tick;
        for (size_t i = 0; i < 4 && i < reply.score.n; i++) {
            const ps_proto_result *r = &reply.score.results[i];
            uint8_t want = t < WARMUP ? PS_PROTO_STATE_WARMING_UP : PS_PROTO_STATE_SCORED;
            CHECKF(r->id == ids[i] && r->state == want, "tick %d: id %llu state %u", t,
                   (unsigned long long)r->id, r->state);
            CHECK(result_ok(r));
            if (t < WARMUP) CHECK(r->score == 0 && r->pfp == 0 && r->top == -1);
            last[i] = *r;
        }
    }

    /* The same request again: duplicates, repeating the latest results. */
    CHECK(score(s, ids, 4, ticks - 1, K, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_SCORE && reply.score.n == 4 && reply.score.tick == 0);
    for (size_t i = 0; i < 4 && reply.op == PS_PROTO_OP_SCORE; i++) {
        const ps_proto_result *r = &reply.score.results[i];
        CHECK(r->state == PS_PROTO_STATE_DUPLICATE);
        CHECK(r->score == last[i].score && r->pfp == last[i].pfp && r->top == last[i].top);
    }

    /* A new seq with a timestamp no newer than the last: stale. */
    {
        uint64_t seq = 1000;
        double ts = 1e9;
        float x[K] = {1, 2, 3};
        ps_proto_request r = {.op = PS_PROTO_OP_SCORE,
                              .n = 1,
                              .k = K,
                              .ids = ids,
                              .seqs = &seq,
                              .ts = &ts,
                              .metrics = x};
        ps_buf b = {0};
        CHECK(ps_proto_encode_request(&b, &r, PS_PROTO_FORM_ROWS, err, sizeof err) == 0);
        CHECK(exchange(s, b.data, b.len, &reply) == 0);
        CHECK(reply.op == PS_PROTO_OP_SCORE && !reply.has_id);
        CHECK(reply.op == PS_PROTO_OP_SCORE &&
              reply.score.results[0].state == PS_PROTO_STATE_STALE &&
              reply.score.results[0].score == last[0].score);
        ps_buf_free(&b);
    }

    /* Wrong K, garbage, an unknown version. */
    CHECK(score(s, ids, 2, 100, K - 1, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_ERROR && reply.error.code == PS_PROTO_E_K_MISMATCH);
    CHECK(reply.has_id && reply.id == 100);
    static const uint8_t garbage[] = {0xc1, 0xff, 0x00, 0x12};
    CHECK(exchange(s, garbage, sizeof garbage, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_ERROR && reply.error.code == PS_PROTO_E_BAD_REQUEST);
    static const uint8_t v2[] = {0x82, 0xa1, 'v', 0x02, 0xa2, 'o', 'p', 0xa4, 'i', 'n', 'f', 'o'};
    CHECK(exchange(s, v2, sizeof v2, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_ERROR && reply.error.code == PS_PROTO_E_VERSION);

    /* The stream: ticks WARMUP+1 .. ticks scored 4 records each, numbered 1, 2, ... */
    ps_proto_pub pub = {0};
    uint64_t expect = 1, got = 0;
    while (got < 4 * (uint64_t)(ticks - WARMUP)) {
        void *buf;
        size_t len;
        int rv = nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC);
        CHECKF(rv == 0, "PUB: %s after %llu records", nng_strerror(rv), (unsigned long long)got);
        if (rv) break;
        CHECK(ps_proto_decode_pub(buf, len, &pub, err, sizeof err) == 0);
        nng_free(buf, len);
        CHECK(pub.run == run);
        CHECK(pub.k == K && pub.x != NULL); /* metrics: tests/test_serve_latest.c */
        CHECKF(pub.seq == expect, "seq %llu, expected %llu", (unsigned long long)pub.seq,
               (unsigned long long)expect);
        for (size_t i = 0; i < pub.n; i++)
            CHECK(pub.records[i].id >= 100 && pub.records[i].id <= 103 &&
                  isfinite(pub.records[i].score) && pub.records[i].pfp <= 1);
        expect = pub.seq + pub.n;
        got += pub.n;
    }
    CHECK(got == 4 * (uint64_t)(ticks - WARMUP));
    ps_proto_pub_free(&pub);

    /* 32 clients at once, each its own processor. */
    enum { NC = 32 };
    burst bs[NC];
    pthread_t th[NC];
    for (int c = 0; c < NC; c++) {
        bs[c] = (burst){.addr = cfg.listen, .id = 1000 + (uint64_t)c, .ticks = WARMUP + 2};
        CHECK(pthread_create(&th[c], NULL, burst_client, &bs[c]) == 0);
    }
    int ok = 0;
    for (int c = 0; c < NC; c++) {
        pthread_join(th[c], NULL);
        CHECKF(bs[c].ok == WARMUP + 2 && bs[c].errors == 0 && bs[c].bad == 0,
               "client %d: %d ok, %d errors, %d bad", c, bs[c].ok, bs[c].errors, bs[c].bad);
        ok += bs[c].ok;
    }
    CHECK(ok == NC * (WARMUP + 2));

    /* 36 processors known, room for 28 more: of 40 new ones the last 12 are rejected. */
    uint64_t fresh[40];
    for (int i = 0; i < 40; i++)
        fresh[i] = 5000 + (uint64_t)i;
    CHECK(score(s, fresh, 40, 0, K, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_SCORE && reply.score.n == 40);
    for (size_t i = 0; i < 40 && reply.op == PS_PROTO_OP_SCORE; i++) {
        uint8_t want = i < 28 ? PS_PROTO_STATE_WARMING_UP : PS_PROTO_STATE_REJECTED;
        CHECKF(reply.score.results[i].state == want, "fresh %zu: state %u", i,
               reply.score.results[i].state);
    }
    CHECK(simple_request(s, PS_PROTO_OP_INFO, 9, &reply) == 0);
    CHECKF(reply.info.scored == 36 && reply.info.warming_up == 28 && reply.info.stale == 0,
           "scored %llu warming %llu stale %llu", (unsigned long long)reply.info.scored,
           (unsigned long long)reply.info.warming_up, (unsigned long long)reply.info.stale);

    /* HTTP */
    static char body[1 << 16];
    CHECK(http_get(http, "/healthz", body, sizeof body) == 200);
    CHECK(http_get(http, "/readyz", body, sizeof body) == 200);
    CHECK(http_get(http, "/nope", body, sizeof body) == 404);
    CHECK(http_get(http, "/metrics", body, sizeof body) == 200);
    static const char *const names[] = {
        "preshift_requests_total{op=\"score\"}",
        "preshift_heartbeats_total{state=\"scored\"}",
        "preshift_batches_total",
        "preshift_batch_size_bucket{le=\"+Inf\"}",
        "preshift_batch_size_count",
        "preshift_scoring_latency_seconds_bucket{le=\"+Inf\"}",
        "preshift_tick_duration_seconds_count",
        "preshift_queue_depth",
        "preshift_rejected_requests_total{reason=\"busy\"}",
        "preshift_processors{state=\"stale\"}",
        "preshift_published_records_total",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECKF(metric_value(body, names[i]) >= 0, "/metrics lacks %s", names[i]);
    CHECK(metric_value(body, "preshift_rejected_requests_total{reason=\"k_mismatch\"}") == 1);
    CHECK(metric_value(body, "preshift_rejected_requests_total{reason=\"bad_request\"}") == 1);
    CHECK(metric_value(body, "preshift_heartbeats_total{state=\"rejected\"}") == 12);
    CHECK(metric_value(body, "preshift_heartbeats_total{state=\"duplicate\"}") == 4);
    CHECK(metric_value(body, "preshift_processors{state=\"scored\"}") == 36);
    CHECK(metric_value(body, "preshift_queue_depth") == 0);
    double requests = metric_value(body, "preshift_requests_total{op=\"score\"}");
    double batches = metric_value(body, "preshift_batches_total");
    /* The 32 clients' heartbeats shared ticks. */
    CHECKF(batches > 0 && batches < requests, "%g batches for %g score requests", batches,
           requests);
    CHECK(metric_value(body, "preshift_published_records_total") == 4 * (ticks - WARMUP) + NC * 2);

    ps_proto_reply_free(&reply);
    nng_close(s);
    nng_close(sub);
    ps_serve_stop(srv);
}

/* ---- a tiny queue ----------------------------------------------------------------- */

static void test_busy(void)
{
    ps_serve_config cfg = base_config("busy");
    snprintf(cfg.publish, sizeof cfg.publish, "off");
    snprintf(cfg.http, sizeof cfg.http, "off");
    cfg.max_queue = 1;
    cfg.batch_delay = 1.0; /* a tick waits for all 16 known processors, or 1 s */
    cfg.stale_after = 0.5;
    char err[1024];
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    CHECK(ps_serve_port(srv, PS_SERVE_HTTP) == 0);
    enum { NP = 16 };
    uint64_t ids[NP];
    for (int i = 0; i < NP; i++)
        ids[i] = 77 + (uint64_t)i;
    nng_socket s = client(cfg.listen);
    ps_proto_reply reply = {0};
    CHECK(score(s, ids, NP, 0, K, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_SCORE);

    /* Each processor's next heartbeat from its own client: one is queued, the
     * rest find the queue full until its tick closes. */
    burst bs[NP];
    pthread_t th[NP];
    for (int c = 0; c < NP; c++) {
        bs[c] = (burst){.addr = cfg.listen, .id = ids[c], .ticks = 1, .first_tick = 1};
        CHECK(pthread_create(&th[c], NULL, burst_client, &bs[c]) == 0);
    }
    int ok = 0, busy = 0;
    for (int c = 0; c < NP; c++) {
        pthread_join(th[c], NULL);
        CHECK(bs[c].bad == 0 && bs[c].ok + bs[c].busy == 1 && bs[c].errors == bs[c].busy);
        ok += bs[c].ok;
        busy += bs[c].busy;
    }
    CHECKF(ok >= 1 && busy >= 1, "%d ok, %d busy", ok, busy);

    /* No heartbeat for longer than --stale-after: stale. */
    sleep_ms(1800);
    CHECK(simple_request(s, PS_PROTO_OP_INFO, 1, &reply) == 0);
    CHECKF(reply.op == PS_PROTO_OP_INFO && reply.info.stale == NP && reply.info.warming_up == 0,
           "stale %llu warming %llu", (unsigned long long)reply.info.stale,
           (unsigned long long)reply.info.warming_up);
    ps_proto_reply_free(&reply);
    nng_close(s);
    ps_serve_stop(srv);
}

/* ---- one processor twice while a tick is open ---------------------------------------- */

/* Send a score request on s and start receiving its reply on aio. */
static void score_async(nng_socket s, uint64_t id, int t, nng_aio *aio)
{
    uint64_t seq = (uint64_t)t + 1;
    double ts = 1e9 + t;
    float x[K];
    for (int j = 0; j < K; j++)
        x[j] = metric(id, t, j);
    ps_proto_request r = {
        .op = PS_PROTO_OP_SCORE, .n = 1, .k = K, .ids = &id, .seqs = &seq, .ts = &ts, .metrics = x};
    ps_buf b = {0};
    char err[256];
    nng_msg *msg = NULL;
    CHECK(ps_proto_encode_request(&b, &r, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0);
    CHECK(nng_msg_alloc(&msg, 0) == 0 && nng_msg_append(msg, b.data, b.len) == 0);
    ps_buf_free(&b);
    nng_aio_set_msg(aio, msg);
    nng_send_aio(s, aio);
    nng_aio_wait(aio);
    CHECK(nng_aio_result(aio) == 0);
    nng_recv_aio(s, aio);
}

static ps_proto_result async_result(nng_aio *aio, uint64_t *tick)
{
    ps_proto_result out = {.state = 255};
    ps_proto_reply reply = {0};
    char err[256];
    nng_aio_wait(aio);
    CHECK(nng_aio_result(aio) == 0);
    nng_msg *msg = nng_aio_result(aio) == 0 ? nng_aio_get_msg(aio) : NULL;
    if (msg &&
        ps_proto_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &reply, err, sizeof err) == 0 &&
        reply.op == PS_PROTO_OP_SCORE && reply.score.n == 1) {
        out = reply.score.results[0];
        *tick = reply.score.tick;
    }
    if (msg) nng_msg_free(msg);
    ps_proto_reply_free(&reply);
    return out;
}

static void test_same_processor_twice(void)
{
    ps_serve_config cfg = base_config("twice");
    snprintf(cfg.publish, sizeof cfg.publish, "off");
    snprintf(cfg.http, sizeof cfg.http, "off");
    cfg.batch_delay = 0.5; /* ticks wait for the 4 known processors, or 500 ms */
    char err[1024];
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    const uint64_t ids[4] = {1, 2, 3, 4};
    ps_proto_reply reply = {0};
    nng_socket s[3];
    nng_aio *aio[3];
    for (int i = 0; i < 3; i++) {
        s[i] = client(cfg.listen);
        CHECK(nng_aio_alloc(&aio[i], NULL, NULL) == 0);
        nng_aio_set_timeout(aio[i], 20000);
    }
    CHECK(score(s[0], ids, 4, 0, K, &reply) == 0 && reply.score.tick == 1);
    /* A: processor 1's next heartbeat opens tick 2; B: its following one must
     * wait for tick 3; C: processor 2 arrives after B and still joins tick 2. */
    score_async(s[0], 1, 1, aio[0]);
    sleep_ms(30);
    score_async(s[1], 1, 2, aio[1]);
    sleep_ms(30);
    score_async(s[2], 2, 1, aio[2]);
    uint64_t tick[3] = {0, 0, 0};
    ps_proto_result r[3];
    for (int i = 0; i < 3; i++)
        r[i] = async_result(aio[i], &tick[i]);
    for (int i = 0; i < 3; i++)
        CHECKF(r[i].state == PS_PROTO_STATE_WARMING_UP, "request %d: state %u", i, r[i].state);
    CHECKF(tick[0] == 2 && tick[2] == 2 && tick[1] == 3, "ticks %llu %llu %llu",
           (unsigned long long)tick[0], (unsigned long long)tick[1], (unsigned long long)tick[2]);
    for (int i = 0; i < 3; i++) {
        nng_aio_free(aio[i]);
        nng_close(s[i]);
    }
    ps_proto_reply_free(&reply);
    ps_serve_stop(srv);
}

/* ---- TLS, with client certificates -------------------------------------------------- */

static void test_tls(void)
{
    char cmd[1024], cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
    snprintf(key, sizeof key, "%s/key.pem", tmpdir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        printf("no openssl to make a certificate: TLS not tested\n");
        return;
    }
    ps_serve_config cfg = base_config("tls");
    snprintf(cfg.listen, sizeof cfg.listen, "tls+tcp://127.0.0.1:0");
    snprintf(cfg.publish, sizeof cfg.publish, "off");
    snprintf(cfg.http, sizeof cfg.http, "off");
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s", cert);
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s", key);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", cert);
    char err[1024];
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    int port = ps_serve_port(srv, PS_SERVE_REP);
    CHECK(port > 0);

    nng_tls_config *tc;
    CHECK(nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT) == 0);
    CHECK(nng_tls_config_ca_file(tc, cert) == 0);
    char *pem[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(i ? key : cert, "rb");
        pem[i] = calloc(1, 16384);
        if (f) {
            size_t n = fread(pem[i], 1, 16383, f);
            (void)n;
            fclose(f);
        }
    }
    CHECK(nng_tls_config_own_cert(tc, pem[0], pem[1], NULL) == 0);
    CHECK(nng_tls_config_server_name(tc, "localhost") == 0);
    CHECK(nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_REQUIRED) == 0);
    free(pem[0]);
    free(pem[1]);

    nng_socket s;
    nng_dialer d;
    char addr[64];
    snprintf(addr, sizeof addr, "tls+tcp://127.0.0.1:%d", port);
    CHECK(nng_req0_open(&s) == 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
    CHECK(nng_dialer_create(&d, s, addr) == 0);
    CHECK(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc) == 0);
    int rv = nng_dialer_start(d, 0);
    CHECKF(rv == 0, "TLS dial: %s", nng_strerror(rv));
    ps_proto_reply reply = {0};
    CHECK(simple_request(s, PS_PROTO_OP_HEALTH, 3, &reply) == 0);
    CHECK(reply.op == PS_PROTO_OP_HEALTH && reply.health.status == PS_PROTO_STATUS_OK);
    ps_proto_reply_free(&reply);
    nng_close(s);
    nng_tls_config_free(tc);
    ps_serve_stop(srv);
}

static void test_config_errors(void)
{
    char err[1024];
    ps_serve_config cfg = base_config("bad");
    cfg.metrics = 0; /* the default model is univariate: K must be given */
    CHECK(ps_serve_start(&cfg, err, sizeof err) == NULL && strstr(err, "--metrics"));
    cfg = base_config("bad");
    snprintf(cfg.model, sizeof cfg.model, "%s/none.psm", tmpdir);
    CHECK(ps_serve_start(&cfg, err, sizeof err) == NULL && strstr(err, "none.psm"));
    cfg = base_config("bad");
    snprintf(cfg.listen, sizeof cfg.listen, "udp://1.2.3.4:5");
    CHECK(ps_serve_start(&cfg, err, sizeof err) == NULL && strstr(err, "--listen"));
    cfg = base_config("bad");
    snprintf(cfg.listen, sizeof cfg.listen, "tls+tcp://127.0.0.1:0");
    CHECK(ps_serve_start(&cfg, err, sizeof err) == NULL && strstr(err, "--tls-cert"));

    /* Flags override the file. */
    char path[300];
    snprintf(path, sizeof path, "%s/serve.conf", tmpdir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "# comment\n\nmax-processors = 77\n  warmup=40 \ncontexts = 5\nsmoothing = 0.25\n");
    fclose(f);
    char *argv[] = {"serve", "--config", path, "--contexts", "9", "--metrics", "2"};
    ps_serve_config_default(&cfg);
    CHECKF(ps_serve_config_parse(&cfg, 7, argv, err, sizeof err) == 0, "%s", err);
    CHECK(cfg.max_processors == 77 && cfg.warmup == 40 && cfg.contexts == 9 && cfg.metrics == 2);
    CHECK(fabs(cfg.scorer.smoothing - 0.25) < 1e-6);
    f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "max-processors = 77\nfrobnicate = 1\n");
    fclose(f);
    ps_serve_config_default(&cfg);
    CHECK(ps_serve_config_parse(&cfg, 3, argv, err, sizeof err) == -1 &&
          strstr(err, "serve.conf:2") && strstr(err, "frobnicate"));
    char *bad[] = {"serve", "--batch-delay", "-1"};
    CHECK(ps_serve_config_parse(&cfg, 3, bad, err, sizeof err) == -1 &&
          strstr(err, "--batch-delay"));

    /* What ps_serve_config_write gives loads back to the same options. */
    ps_serve_config_default(&cfg);
    cfg.warmup = 123;
    cfg.stale_after = 0.1;
    cfg.backend = PS_BACKEND_CPU;
    cfg.quiet = 1;
    cfg.scorer.smoothing = 0.3f;
    cfg.scorer.arima_p = 3;
    snprintf(cfg.state, sizeof cfg.state, "off");
    snprintf(cfg.listen, sizeof cfg.listen, "tcp://127.0.0.1:9");
    f = fopen(path, "w");
    if (!f) return;
    ps_serve_config_write(&cfg, f);
    fclose(f);
    ps_serve_config back;
    ps_serve_config_default(&back);
    CHECKF(ps_serve_config_load_file(&back, path, err, sizeof err) == 0, "%s", err);
    CHECK(back.warmup == 123 && back.stale_after == 0.1 && back.backend == PS_BACKEND_CPU);
    CHECK(back.quiet && back.scorer.smoothing == 0.3f && back.scorer.arima_p == 3);
    CHECK(back.scorer.seasonal_weight == PS_SEASONAL_AUTO);
    CHECK(!strcmp(back.state, "off") && !strcmp(back.listen, cfg.listen) && back.metrics == 0);
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    FILE *f1 = open_memstream(&t1, &l1), *f2 = open_memstream(&t2, &l2);
    ps_serve_config_write(&cfg, f1);
    ps_serve_config_write(&back, f2);
    fclose(f1);
    fclose(f2);
    CHECKF(!strcmp(t1, t2), "written:\n%s\nread back and written:\n%s", t1, t2);
    free(t1);
    free(t2);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ps_serve_XXXXXX");
    if (!mkdtemp(tmpdir)) TEST_SKIP("cannot make a temporary directory");
    test_config_errors();
    test_main_server();
    test_busy();
    test_same_processor_twice();
    test_tls();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    nng_fini();
    return test_finish("test_serve");
}
