/*
 * test_client.c - the client library (server/client.h) against a real
 * server in-process, over ipc:// in a temporary directory and
 * tcp://127.0.0.1:0: health and info, warm-up then scores, a resend answered
 * `duplicate`, an error reply (wrong K) surfacing as k_mismatch with the
 * handle still usable, a request refused before sending, the seq-managing
 * heartbeat helper, the subscriber's consecutive seqs and its gap, repeat
 * and run-change detection (fed by a local PUB socket), a client opened
 * before its server, 8 concurrent clients, one tick of 1,000 processors from
 * 20 concurrent clients becoming one kernel batch (reply ticks and
 * /metrics), and mutual TLS when openssl can make a certificate.
 */
#include "server/client.h"
#include "server/protocol.h"
#include "server/serve.h"
#include "testutil.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/util/platform.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K 3
#define WARMUP 24

static char tmpdir[256];
static char err[1024];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static ps_serve_config base_config(const char *name)
{
    ps_serve_config c;
    ps_serve_config_default(&c);
    snprintf(c.listen, sizeof c.listen, "ipc://%s/%s.rep", tmpdir, name);
    snprintf(c.publish, sizeof c.publish, "ipc://%s/%s.pub", tmpdir, name);
    snprintf(c.http, sizeof c.http, "off");
    snprintf(c.model, sizeof c.model, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
    c.metrics = K;
    c.max_processors = 256;
    c.warmup = WARMUP;
    c.backend = PS_BACKEND_CPU;
    c.threads = 1;
    c.batch_delay = 0.002;
    c.quiet = 1;
    return c;
}

static const ps_client_options opts = {.timeout_ms = 20000};

static float metric(uint64_t id, int t, int k)
{
    uint32_t h = (uint32_t)(id * 2654435761u) ^ (uint32_t)(t * 40503u + (uint32_t)k * 97u);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return 10.0f + (float)k + sinf(0.3f * (float)t + (float)id) + (float)(h % 1000) * 1e-4f;
}

/* Heartbeats of n processors at step t: seq t + 1, ts base + t. */
typedef struct beat {
    uint64_t ids[64], seqs[64];
    double ts[64];
    float x[64 * K];
} beat;

static void fill(beat *b, const uint64_t *ids, size_t n, int t, double base)
{
    for (size_t i = 0; i < n; i++) {
        b->ids[i] = ids[i];
        b->seqs[i] = (uint64_t)t + 1;
        b->ts[i] = base + t;
        for (int j = 0; j < K; j++)
            b->x[i * K + (size_t)j] = metric(ids[i], t, j);
    }
}

static int score_step(ps_client *c, const uint64_t *ids, size_t n, int t, double base,
                      ps_proto_score_reply *out)
{
    static beat b;
    fill(&b, ids, n, t, base);
    return ps_client_score(c, n, K, b.ids, b.seqs, b.ts, b.x, out, err, sizeof err);
}

static int result_ok(const ps_proto_result *r)
{
    return isfinite(r->score) && r->score >= 0 && r->pfp >= 0 && r->pfp <= 1 && r->top >= -1 &&
           r->top < K;
}

/* ---- HTTP (as test_serve.c) -------------------------------------------------------- */

static int http_get(int port, const char *path, char *body, size_t cap)
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

static double metric_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ') return atof(p + n + 1);
    return -1;
}

/* ---- concurrent clients -------------------------------------------------------------- */

typedef struct worker {
    const char *addr;
    uint64_t ids[64];
    size_t n;
    int first, steps;
    double base;
    int ok, bad;
    uint64_t tick; /* of the last reply */
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    char e[512];
    ps_client *c = ps_client_open(w->addr, &opts, e, sizeof e);
    if (!c) {
        fprintf(stderr, "worker: %s\n", e);
        w->bad = w->steps;
        return NULL;
    }
    beat *b = malloc(sizeof *b);
    for (int t = w->first; t < w->first + w->steps; t++) {
        fill(b, w->ids, w->n, t, w->base);
        ps_proto_score_reply r;
        int rc = ps_client_score(c, w->n, K, b->ids, b->seqs, b->ts, b->x, &r, e, sizeof e);
        if (rc != PS_CLIENT_OK) {
            fprintf(stderr, "worker %llu step %d: %s\n", (unsigned long long)w->ids[0], t, e);
            w->bad++;
            continue;
        }
        int good = r.n == w->n && r.tick > 0;
        uint8_t want = t < WARMUP ? PS_PROTO_STATE_WARMING_UP : PS_PROTO_STATE_SCORED;
        for (size_t i = 0; good && i < r.n; i++)
            good = r.results[i].id == w->ids[i] && r.results[i].state == want &&
                   result_ok(&r.results[i]);
        if (good) {
            w->ok++;
            w->tick = r.tick;
        } else {
            w->bad++;
        }
    }
    free(b);
    ps_client_close(c);
    return NULL;
}

/* ---- the main server --------------------------------------------------------------------- */

static void drain_stream(ps_subscriber *sub, uint64_t run, uint64_t want_records)
{
    uint64_t got = 0, expect = 1;
    const ps_proto_pub *p;
    ps_sub_event ev;
    int first = 1;
    while (got < want_records) {
        int rc = ps_sub_recv(sub, 10000, &p, &ev, err, sizeof err);
        CHECKF(rc == PS_CLIENT_OK, "stream after %llu records: %s", (unsigned long long)got, err);
        if (rc) break;
        CHECK(p->run == run);
        CHECKF(p->seq == expect, "seq %llu, expected %llu", (unsigned long long)p->seq,
               (unsigned long long)expect);
        CHECK(ev.new_run == first && ev.missed == 0 && !ev.repeat);
        CHECK(ev.total_missed == 0);
        for (size_t i = 0; i < p->n; i++)
            CHECK(isfinite(p->records[i].score) && p->records[i].pfp >= 0 &&
                  p->records[i].pfp <= 1);
        first = 0;
        expect = p->seq + p->n;
        got += p->n;
    }
    CHECKF(got == want_records, "%llu records, expected %llu", (unsigned long long)got,
           (unsigned long long)want_records);
}

static void test_main_server(void)
{
    ps_serve_config cfg = base_config("main");
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;

    ps_subscriber *sub = ps_sub_open(cfg.publish, &opts, err, sizeof err);
    CHECKF(sub != NULL, "%s", err);
    /* The stream is checked from its first record: nothing may be published before. */
    CHECK(sub == NULL || ps_sub_wait_connected(sub, 10000) == 1);
    ps_client *c = ps_client_open(cfg.listen, &opts, err, sizeof err);
    CHECKF(c != NULL, "%s", err);
    if (!c || !sub) goto done;

    /* health and info */
    ps_proto_health h;
    CHECKF(ps_client_health(c, &h, err, sizeof err) == PS_CLIENT_OK, "%s", err);
    CHECK(h.status == PS_PROTO_STATUS_OK && h.uptime >= 0);
    ps_proto_info info;
    CHECKF(ps_client_info(c, &info, err, sizeof err) == PS_CLIENT_OK, "%s", err);
    CHECK(info.k == K && info.run != 0 && info.max_processors == 256);
    CHECK(strstr(info.version, "preshift") != NULL);

    /* warm-up, then scores */
    const uint64_t ids[4] = {100, 101, 102, 103};
    const int steps = WARMUP + 4;
    const double base = now_s() - 1000;
    uint64_t last_tick = 0;
    ps_proto_result last[4];
    ps_proto_score_reply r;
    for (int t = 0; t < steps; t++) {
        int rc = score_step(c, ids, 4, t, base, &r);
        CHECKF(rc == PS_CLIENT_OK, "step %d: %s", t, err);
        if (rc) continue;
        CHECK(r.n == 4 && r.tick > last_tick);
        last_tick = r.tick;
        for (size_t i = 0; i < 4; i++) {
            uint8_t want = t < WARMUP ? PS_PROTO_STATE_WARMING_UP : PS_PROTO_STATE_SCORED;
            CHECKF(r.results[i].id == ids[i] && r.results[i].state == want,
                   "step %d: id %llu state %u", t, (unsigned long long)r.results[i].id,
                   r.results[i].state);
            CHECK(result_ok(&r.results[i]));
            last[i] = r.results[i];
        }
    }
    CHECK(ps_client_last_error(c)->code == 0);

    /* The same request again (as REQ would resend it): duplicates. */
    CHECKF(score_step(c, ids, 4, steps - 1, base, &r) == PS_CLIENT_OK, "%s", err);
    CHECK(r.n == 4 && r.tick == 0);
    for (size_t i = 0; i < r.n; i++)
        CHECK(r.results[i].state == PS_PROTO_STATE_DUPLICATE &&
              r.results[i].score == last[i].score && r.results[i].pfp == last[i].pfp);

    /* Wrong K: the server's error, as code, name and message; the handle still works. */
    {
        uint64_t seq = 5000;
        double ts = base + 5000;
        float x[K + 1] = {1, 2, 3, 4};
        int rc = ps_client_score(c, 1, K + 1, ids, &seq, &ts, x, &r, err, sizeof err);
        CHECKF(rc == PS_PROTO_E_K_MISMATCH, "rc %d: %s", rc, err);
        CHECKF(strstr(err, "k_mismatch: ") == err, "%s", err);
        CHECK(ps_client_last_error(c)->code == PS_PROTO_E_K_MISMATCH &&
              !strcmp(ps_client_last_error(c)->name, "k_mismatch") &&
              ps_client_last_error(c)->message[0]);
        CHECK(!strcmp(ps_client_code_name(rc), "k_mismatch"));
        CHECK(ps_client_health(c, &h, err, sizeof err) == PS_CLIENT_OK);
        CHECK(ps_client_last_error(c)->code == 0);

        /* Refused before sending: NaN, and a processor twice. */
        x[1] = NAN;
        rc = ps_client_score(c, 1, K, ids, &seq, &ts, x, &r, err, sizeof err);
        CHECKF(rc == PS_CLIENT_E_INVALID && strstr(err, "NaN"), "rc %d: %s", rc, err);
        uint64_t twice[2] = {7, 7}, seqs[2] = {1, 1};
        double tss[2] = {ts, ts};
        float xx[2 * K] = {0};
        rc = ps_client_score(c, 2, K, twice, seqs, tss, xx, &r, err, sizeof err);
        CHECKF(rc == PS_CLIENT_E_INVALID, "rc %d: %s", rc, err);
        CHECK(ps_client_info(c, &info, err, sizeof err) == PS_CLIENT_OK && info.k == K);
    }

    /* The heartbeat helper: seqs managed by the client, in microseconds. */
    {
        const uint64_t id = 900;
        uint64_t prev_seq = 0, tick = 0;
        ps_proto_result res;
        for (int t = 0; t < WARMUP + 2; t++) {
            float x[K];
            for (int j = 0; j < K; j++)
                x[j] = metric(id, t, j);
            int rc = ps_client_heartbeat(c, id, 0, K, x, &res, &tick, err, sizeof err);
            CHECKF(rc == PS_CLIENT_OK, "heartbeat %d: %s", t, err);
            uint64_t seq = ps_client_last_seq(c, id);
            CHECK(seq > prev_seq && seq > 1000000000ull * 1000000ull);
            prev_seq = seq;
            CHECK(res.id == id && tick > 0 &&
                  res.state == (t < WARMUP ? PS_PROTO_STATE_WARMING_UP : PS_PROTO_STATE_SCORED));
        }
        CHECK(ps_client_last_seq(c, 901) == 0);
        /* id 0 is a processor like any other */
        float x[K] = {1, 2, 3};
        CHECK(ps_client_heartbeat(c, 0, 0, K, x, &res, NULL, err, sizeof err) == PS_CLIENT_OK);
        CHECK(ps_client_last_seq(c, 0) > 0 && res.state == PS_PROTO_STATE_WARMING_UP);
    }

    /* The stream: 4 scored steps of 4, then the helper's 2, numbered 1, 2, ... */
    drain_stream(sub, info.run, 4 * 4 + 2);
    const ps_proto_pub *p;
    CHECK(ps_sub_recv(sub, 100, &p, NULL, err, sizeof err) == PS_CLIENT_E_TIMEOUT);
    CHECK(ps_sub_recv(sub, 0, &p, NULL, err, sizeof err) == PS_CLIENT_E_TIMEOUT);

    /* 8 clients at once, each its own handle and processors. */
    enum { NC = 8 };
    worker w[NC];
    pthread_t th[NC];
    for (int i = 0; i < NC; i++) {
        w[i] = (worker){.addr = cfg.listen, .n = 2, .steps = WARMUP + 2, .base = base};
        w[i].ids[0] = 2000 + 2 * (uint64_t)i;
        w[i].ids[1] = 2001 + 2 * (uint64_t)i;
        CHECK(pthread_create(&th[i], NULL, worker_run, &w[i]) == 0);
    }
    for (int i = 0; i < NC; i++) {
        pthread_join(th[i], NULL);
        CHECKF(w[i].ok == WARMUP + 2 && w[i].bad == 0, "client %d: %d ok, %d bad", i, w[i].ok,
               w[i].bad);
    }
    /* ... and their scored records on the stream, still without a gap */
    {
        uint64_t got = 0;
        ps_sub_event ev;
        while (got < NC * 2 * 2 && ps_sub_recv(sub, 10000, &p, &ev, err, sizeof err) == 0) {
            CHECK(ev.missed == 0 && !ev.new_run && ev.total_missed == 0);
            got += p->n;
        }
        CHECKF(got == NC * 2 * 2, "%llu records from the 8 clients", (unsigned long long)got);
        CHECK(ev.total_records == 4 * 4 + 2 + NC * 2 * 2);
    }

    /* Both ends count the connection; the server's count drops when the subscriber leaves. */
    ps_serve_stats st;
    ps_serve_get_stats(srv, &st);
    CHECK(ps_sub_connections(sub) == 1 && st.subscribers == 1);
    ps_sub_close(sub);
    sub = NULL;
    for (int i = 0; i < 2000 && (ps_serve_get_stats(srv, &st), st.subscribers); i++)
        nng_msleep(5);
    CHECKF(st.subscribers == 0, "%llu subscribers after the only one closed",
           (unsigned long long)st.subscribers);

done:
    ps_client_close(c);
    ps_sub_close(sub);
    ps_serve_stop(srv);
}

/* ---- gaps, repeats and runs, from a local publisher --------------------------------------- */

static void publish(nng_socket pub, uint64_t run, uint64_t seq, size_t n)
{
    ps_proto_record rec[4];
    for (size_t i = 0; i < n && i < 4; i++)
        rec[i] = (ps_proto_record){.id = 10 + i, .ts = 1e9, .score = 1.5f, .pfp = 0.25, .top = 0};
    ps_proto_pub m = {.run = run, .seq = seq, .tick = seq, .t = 1e9, .n = n, .records = rec};
    ps_buf b = {0};
    CHECK(ps_proto_encode_pub(&b, &m, err, sizeof err) == 0);
    CHECK(nng_send(pub, b.data, b.len, 0) == 0);
    ps_buf_free(&b);
}

static void expect_pub(ps_subscriber *sub, uint64_t run, uint64_t seq, bool new_run, bool repeat,
                       uint64_t missed, uint64_t prev_run)
{
    const ps_proto_pub *p = NULL;
    ps_sub_event ev;
    int rc = ps_sub_recv(sub, 5000, &p, &ev, err, sizeof err);
    CHECKF(rc == PS_CLIENT_OK, "waiting for run %llu seq %llu: %s", (unsigned long long)run,
           (unsigned long long)seq, err);
    if (rc) return;
    CHECKF(p->run == run && p->seq == seq && ev.new_run == new_run && ev.repeat == repeat &&
               ev.missed == missed && ev.prev_run == prev_run,
           "got run %llu seq %llu new_run %d repeat %d missed %llu prev_run %llu; expected run "
           "%llu seq %llu",
           (unsigned long long)p->run, (unsigned long long)p->seq, ev.new_run, ev.repeat,
           (unsigned long long)ev.missed, (unsigned long long)ev.prev_run, (unsigned long long)run,
           (unsigned long long)seq);
}

static void test_gaps(void)
{
    char addr[300];
    snprintf(addr, sizeof addr, "ipc://%s/gap.pub", tmpdir);
    nng_socket pub;
    CHECK(nng_pub0_open(&pub) == 0);
    CHECK(nng_listen(pub, addr, NULL, 0) == 0);
    ps_subscriber *sub = ps_sub_open(addr, &opts, err, sizeof err);
    CHECKF(sub != NULL, "%s", err);
    if (!sub) return;

    /* PUB drops what it sends before the subscriber is connected: announce
     * (n = 0) on a probe run until one arrives, then let the rest drain. */
    const ps_proto_pub *p;
    int connected = 0;
    for (int i = 0; i < 500 && !connected; i++) {
        publish(pub, 99, 1, 0);
        connected = ps_sub_recv(sub, 10, &p, NULL, err, sizeof err) == PS_CLIENT_OK;
    }
    CHECK(connected);
    while (ps_sub_recv(sub, 200, &p, NULL, err, sizeof err) == PS_CLIENT_OK)
        ;

    const uint64_t A = 7, B = 8;
    publish(pub, A, 1, 2);  /* records 1, 2 */
    publish(pub, A, 3, 1);  /* 3 */
    publish(pub, A, 10, 2); /* 10, 11: 4 .. 9 lost */
    publish(pub, A, 5, 1);  /* a repeat */
    publish(pub, B, 1, 1);  /* another run (a restarted server) */
    publish(pub, A, 12, 1); /* run A again, in order */
    publish(pub, A, 14, 1); /* 13 lost */
    static const uint8_t junk[] = {0x81, 0xa1, 'v'};
    CHECK(nng_send(pub, (void *)junk, sizeof junk, 0) == 0);
    publish(pub, B, 2, 3);

    expect_pub(sub, A, 1, true, false, 0, 99);
    expect_pub(sub, A, 3, false, false, 0, A);
    expect_pub(sub, A, 10, false, false, 6, A);
    expect_pub(sub, A, 5, false, true, 0, A);
    expect_pub(sub, B, 1, true, false, 0, A);
    expect_pub(sub, A, 12, false, false, 0, B);
    expect_pub(sub, A, 14, false, false, 1, A);
    CHECK(ps_sub_recv(sub, 5000, &p, NULL, err, sizeof err) == PS_CLIENT_E_PROTOCOL &&
          strstr(err, "does not decode"));
    ps_sub_event ev;
    CHECK(ps_sub_recv(sub, 5000, &p, &ev, err, sizeof err) == PS_CLIENT_OK);
    CHECK(p->run == B && p->n == 3 && ev.missed == 0 && !ev.new_run);
    CHECK(ev.total_missed == 7 && ev.total_records == 2 + 1 + 2 + 1 + 1 + 1 + 3);

    ps_sub_close(sub);
    nng_close(pub);
}

/* ---- a client before its server; open errors ------------------------------------------------ */

static void test_early_client(void)
{
    ps_serve_config cfg = base_config("early");
    snprintf(cfg.publish, sizeof cfg.publish, "off");
    ps_client_options o = {.timeout_ms = 200};
    ps_client *c = ps_client_open(cfg.listen, &o, err, sizeof err);
    CHECKF(c != NULL, "%s", err);
    if (!c) return;
    ps_proto_health h;
    int rc = ps_client_health(c, &h, err, sizeof err);
    CHECKF(rc == PS_CLIENT_E_TIMEOUT && strstr(err, cfg.listen), "rc %d: %s", rc, err);
    CHECK(!strcmp(ps_client_code_name(rc), "timeout"));

    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (srv) {
        /* nng redials in the background (backoff up to a few hundred ms) */
        for (int i = 0; i < 50 && (rc = ps_client_health(c, &h, err, sizeof err)) != 0; i++)
            ;
        CHECKF(rc == PS_CLIENT_OK && h.status == PS_PROTO_STATUS_OK, "rc %d: %s", rc, err);
    }
    ps_client_close(c);
    ps_serve_stop(srv);

    CHECK(ps_client_open("udp://1.2.3.4:5", NULL, err, sizeof err) == NULL && strstr(err, "udp"));
    CHECK(ps_client_open("", NULL, err, sizeof err) == NULL);
    ps_client_options t = {.tls_ca = "/nonexistent/ca.pem"};
    CHECK(ps_client_open("tls+tcp://127.0.0.1:1", &t, err, sizeof err) == NULL &&
          strstr(err, "TLS"));
    t = (ps_client_options){.tls_cert = "/nonexistent/c.pem"};
    CHECK(ps_client_open("tls+tcp://127.0.0.1:1", &t, err, sizeof err) == NULL &&
          strstr(err, "key"));
    CHECK(ps_sub_open("udp://1.2.3.4:5", NULL, err, sizeof err) == NULL);
    CHECK(!strcmp(ps_client_code_name(PS_PROTO_E_BUSY), "busy"));
    CHECK(!strcmp(ps_client_code_name(PS_CLIENT_E_INVALID), "invalid"));
}

/* ---- one tick of 1,000 processors from 20 clients ------------------------------------------ */

static void test_one_batch(void)
{
    ps_serve_config cfg = base_config("batch");
    snprintf(cfg.listen, sizeof cfg.listen, "tcp://127.0.0.1:0");
    snprintf(cfg.publish, sizeof cfg.publish, "off");
    snprintf(cfg.http, sizeof cfg.http, "http://127.0.0.1:0");
    cfg.max_processors = 2000;
    /* A tick closes when every known processor has reported; the delay is only a backstop. */
    cfg.batch_delay = 5.0;
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    char addr[64];
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", ps_serve_port(srv, PS_SERVE_REP));
    int http = ps_serve_port(srv, PS_SERVE_HTTP);
    CHECK(http > 0);

    enum { NC = 20, PER = 50 };
    worker w[NC];
    pthread_t th[NC];
    double base = now_s() - 100;
    static char body[1 << 16];
    double batches[2] = {-1, -1}, sizes[2] = {-1, -1};
    for (int round = 0; round < 2; round++) {
        if (round == 1 && http_get(http, "/metrics", body, sizeof body) == 200) {
            batches[0] = metric_value(body, "preshift_batches_total");
            sizes[0] = metric_value(body, "preshift_batch_size_sum");
        }
        for (int i = 0; i < NC; i++) {
            w[i] = (worker){.addr = addr, .n = PER, .first = round, .steps = 1, .base = base};
            for (int j = 0; j < PER; j++)
                w[i].ids[j] = 10000 + (uint64_t)(i * PER + j);
            CHECK(pthread_create(&th[i], NULL, worker_run, &w[i]) == 0);
        }
        for (int i = 0; i < NC; i++) {
            pthread_join(th[i], NULL);
            CHECKF(w[i].ok == 1 && w[i].bad == 0, "round %d client %d failed", round, i);
        }
    }
    /* Round 2: every reply from the same tick ... */
    for (int i = 1; i < NC; i++)
        CHECKF(w[i].tick == w[0].tick, "client %d: tick %llu, client 0: tick %llu", i,
               (unsigned long long)w[i].tick, (unsigned long long)w[0].tick);
    /* ... which was one kernel batch of 1,000 heartbeats. */
    CHECK(http_get(http, "/metrics", body, sizeof body) == 200);
    batches[1] = metric_value(body, "preshift_batches_total");
    sizes[1] = metric_value(body, "preshift_batch_size_sum");
    CHECKF(batches[1] - batches[0] == 1, "%g batches for the second round",
           batches[1] - batches[0]);
    CHECKF(sizes[1] - sizes[0] == NC * PER, "%g heartbeats in them", sizes[1] - sizes[0]);
    printf("20 clients x 50 processors: tick %llu, %g batch(es), %g heartbeats\n",
           (unsigned long long)w[0].tick, batches[1] - batches[0], sizes[1] - sizes[0]);
    ps_serve_stop(srv);
}

/* ---- mutual TLS ---------------------------------------------------------------------------- */

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
    snprintf(cfg.tls_cert, sizeof cfg.tls_cert, "%s", cert);
    snprintf(cfg.tls_key, sizeof cfg.tls_key, "%s", key);
    snprintf(cfg.tls_ca, sizeof cfg.tls_ca, "%s", cert);
    ps_serve *srv = ps_serve_start(&cfg, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    if (!srv) return;
    char addr[64];
    snprintf(addr, sizeof addr, "tls+tcp://127.0.0.1:%d", ps_serve_port(srv, PS_SERVE_REP));

    ps_client_options o = {.timeout_ms = 20000,
                           .tls_ca = cert,
                           .tls_cert = cert,
                           .tls_key = key,
                           .server_name = "localhost"};
    ps_client *c = ps_client_open(addr, &o, err, sizeof err);
    CHECKF(c != NULL, "%s", err);
    ps_proto_health h;
    if (c) {
        CHECKF(ps_client_health(c, &h, err, sizeof err) == PS_CLIENT_OK, "%s", err);
        float x[K] = {1, 2, 3};
        ps_proto_result r;
        CHECKF(ps_client_heartbeat(c, 5, 0, K, x, &r, NULL, err, sizeof err) == PS_CLIENT_OK, "%s",
               err);
        CHECK(r.state == PS_PROTO_STATE_WARMING_UP);
        printf("mutual TLS: health and a heartbeat answered\n");
        ps_client_close(c);
    }
    /* Without a client certificate the server refuses the handshake: no reply. */
    o = (ps_client_options){.timeout_ms = 500, .tls_ca = cert, .server_name = "localhost"};
    c = ps_client_open(addr, &o, err, sizeof err);
    CHECKF(c != NULL, "%s", err);
    if (c) {
        int rc = ps_client_health(c, &h, err, sizeof err);
        CHECKF(rc == PS_CLIENT_E_TIMEOUT, "rc %d: %s", rc, err);
        ps_client_close(c);
    }
    ps_serve_stop(srv);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ps_client_XXXXXX");
    if (!mkdtemp(tmpdir)) TEST_SKIP("cannot make a temporary directory");
    test_main_server();
    test_gaps();
    test_early_client();
    test_one_batch();
    test_tls();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    nng_fini();
    return test_finish("test_client");
}
