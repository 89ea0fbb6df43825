/*
 * test_manage_loop.c - the shifting manager end to end over loopback: a
 * real scoring server (in-process, ipc:// in a temporary directory), real
 * agents (`preshift agent --server off --transfer-listen ... --any-processor`,
 * spawned), the SQLite store, and the manager in-process (or, for the
 * restart, as a child process killed with SIGKILL). The test is the fleet:
 * it sends every processor's heartbeats, one tick per stream second, and
 * waits for the manager to have seen each tick before the next, so what
 * happens depends on the stream, not on the machine's speed.
 *
 *   (a) a processor whose metrics degrade has its workloads moved before it
 *       stops; when it then falls silent, the shifts turn out averted;
 *   (b) a processor whose PFP flaps (spikes shorter than the hysteresis)
 *       moves nothing; bursts that do trigger move each workload once;
 *   (c) a target that refuses gets its transfer rolled back, and another
 *       target is chosen;
 *   (d) a manager killed mid-transfer and restarted ends with every workload
 *       on exactly one processor (store and agents agree), none moved twice;
 *   (e) a processor that stops without warning is failed over: its
 *       workloads are spread over the survivors, the failure counts missed
 *       (one threshold step per workload lost);
 *   (f) processors sharded over two servers: a pass per round of ticks, and
 *       a server's restart is a gap answered with op latest.
 *
 * The server runs with --smoothing 1 --level-weight 0, so a PFP follows its
 * heartbeat's metrics at once (a one-tick spike is a PFP above the threshold
 * for a tick or two, below the three-tick hold the tests set); the
 * default model, warm-up 24.
 */
#include "serve_fixture.h" /* sleep_ms, http_get, metric_value */
#include "server/client.h"
#include "server/manage.h"
#include "server/serve.h"
#include "server/store.h"
#include "server/transfer_proto.h"
#include "testutil.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/http/http.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define K 4
#define WARMUP 24
#define T0 1700000000.0
#define MAXP 8
#define THRESHOLD 0.999

static char dir[64];
static char err[2048];
static const char *binary = PRESHIFT_BINARY_DIR "/server/preshift";

enum { HEALTHY, DEGRADED, SPIKE, SILENT, LOADED };

typedef struct world {
    const char *name;
    ps_serve *srv[2]; /* processors may be sharded over two servers */
    ps_serve_config scfg[2];
    ps_client *cl[2];
    int n_srv;
    pid_t agents[2];
    char agent_url[2][256];
    ps_manage *mgr; /* in-process */
    pid_t mgr_pid;  /* or a child process */
    ps_manage_config mcfg;
    char workloads[256], store[256], control[256];
    int n, t;
    uint64_t id[MAXP];
    int shard[MAXP]; /* the server of each processor */
    int mode[MAXP];
    double pfp[MAXP]; /* of the last tick, -1 when not scored */
} world;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *path_in(world *w, const char *file)
{
    static char p[4][300];
    static int next;
    char *s = p[next++ % 4];
    snprintf(s, sizeof p[0], "%s/%s-%s", dir, w->name, file);
    return s;
}

/* ---- processes ---- */

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void reap(pid_t *pid, int sig)
{
    if (*pid <= 0) return;
    kill(*pid, sig);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

static void start_agent(world *w, int i, int refuse, double delay)
{
    snprintf(w->agent_url[i], sizeof w->agent_url[i], "ipc://%s",
             path_in(w, i ? "agent1" : "agent0"));
    char d[32];
    snprintf(d, sizeof d, "%g", delay);
    char *argv[12] = {(char *)binary,
                      "agent",
                      "--server",
                      "off",
                      "--transfer-listen",
                      w->agent_url[i],
                      "--any-processor",
                      "--transfer-delay",
                      d,
                      NULL,
                      NULL};
    if (refuse) argv[9] = "--refuse-transfers";
    w->agents[i] = spawn(argv, path_in(w, i ? "agent1.log" : "agent0.log"));
}

/* ---- the cluster ---- */

/*
 * p1 hosts three workloads worth moving, p2 and p3 a replica each of db,
 * p4 one; agent 0 serves every processor, or all but p2 when agent 1 (which
 * refuses every transfer) runs. big: p2's capacity. p2 is also the least
 * loaded (metrics()), so it is every placement's first choice.
 */
static void write_cluster(world *w, const char *big, const char *extra)
{
    FILE *f = fopen(w->workloads, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "class std\n");
    for (int p = 0; p < 4; p++) {
        const char *agent = p == 1 && w->agents[1] ? w->agent_url[1] : w->agent_url[0];
        fprintf(f, "processor p%d class=std %s net=10Gbit/s id=%d agent=%s\n", p + 1,
                p == 1 && big ? big : "cpu=16 mem=64GiB", 101 + p, agent);
        w->id[p] = 101 + p;
    }
    w->n = 4;
    fprintf(f,
            "workload api   on=p1 cpu=2 mem=4GiB state=256MiB criticality=3\n"
            "workload cache on=p1 cpu=1 mem=8GiB state=1GiB criticality=2\n"
            "workload batch on=p1 cpu=1 mem=1GiB state=64MiB criticality=1\n"
            "workload db-1  on=p2 cpu=2 mem=8GiB state=2GiB criticality=4 group=db\n"
            "workload db-2  on=p3 cpu=2 mem=8GiB state=2GiB criticality=4 group=db\n"
            "workload web   on=p4 cpu=2 mem=2GiB state=32MiB criticality=2\n"
            "flow web -> api -> cache\n"
            "depends api on db-1\n%s",
            extra ? extra : "");
    fclose(f);
}

static void start_server(world *w, int i)
{
    ps_serve_config *c = &w->scfg[i];
    ps_serve_config_default(c);
    snprintf(c->listen, sizeof c->listen, "ipc://%s", path_in(w, i ? "rep1" : "rep0"));
    snprintf(c->publish, sizeof c->publish, "ipc://%s", path_in(w, i ? "pub1" : "pub0"));
    snprintf(c->http, sizeof c->http, "off");
    snprintf(c->model, sizeof c->model, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
    c->metrics = K;
    c->max_processors = 64;
    c->warmup = WARMUP;
    c->backend = PS_BACKEND_CPU;
    c->threads = 1;
    c->quiet = 1;
    c->scorer.smoothing = 1;
    c->scorer.level_weight = 0;
    w->srv[i] = ps_serve_start(c, err, sizeof err);
    CHECKF(w->srv[i] != NULL, "%s", err);
    ps_client_options opt = {.timeout_ms = 20000};
    if (!w->cl[i]) w->cl[i] = ps_client_open(c->listen, &opt, err, sizeof err);
    CHECKF(w->cl[i] != NULL, "%s", err);
    if (i >= w->n_srv) w->n_srv = i + 1;
}

static void manager_config(world *w)
{
    ps_manage_config *m = &w->mcfg;
    ps_manage_config_default(m);
    for (int i = 0; i < w->n_srv; i++) {
        snprintf(m->subscribe[i], sizeof m->subscribe[i], "%s", w->scfg[i].publish);
        snprintf(m->server[i], sizeof m->server[i], "%s", w->scfg[i].listen);
    }
    m->n_subscribe = m->n_server = w->n_srv;
    snprintf(m->workloads, sizeof m->workloads, "%s", w->workloads);
    snprintf(m->store, sizeof m->store, "%s", w->store);
    snprintf(m->control, sizeof m->control, "%s", w->control);
    snprintf(m->http, sizeof m->http, "http://127.0.0.1:0");
    m->failure_timeout = 10;
    m->horizon = 120;
    m->transfer_timeout = 5;
    /* The scenarios are written for a three-tick hold: (b) checks that a shorter spike
       triggers nothing (the default hold is 2). */
    m->policy.trigger.hold_ticks = 3;
    m->quiet = getenv("PRESHIFT_TEST_VERBOSE") == NULL;
}

static int start_manager(world *w)
{
    w->mgr = ps_manage_start(&w->mcfg, err, sizeof err);
    CHECKF(w->mgr != NULL, "%s", err);
    return w->mgr != NULL;
}

static void world_begin(world *w, const char *name)
{
    memset(w, 0, sizeof *w);
    w->name = name;
    snprintf(w->workloads, sizeof w->workloads, "%s", path_in(w, "cluster.workloads"));
    snprintf(w->store, sizeof w->store, "%s", path_in(w, "manage.db"));
    snprintf(w->control, sizeof w->control, "ipc://%s", path_in(w, "ctl"));
    start_server(w, 0);
}

static void world_end(world *w)
{
    ps_manage_stop(w->mgr);
    reap(&w->mgr_pid, SIGKILL);
    for (int i = 0; i < 2; i++) {
        ps_client_close(w->cl[i]);
        ps_serve_stop(w->srv[i]);
    }
    reap(&w->agents[0], SIGTERM);
    reap(&w->agents[1], SIGTERM);
}

/* ---- the fleet ---- */

static void metrics(int t, int p, int mode, float *x)
{
    uint32_t h = (uint32_t)t * 2654435761u + (uint32_t)p * 97u;
    h ^= h >> 13;
    double noise = (double)(h % 1000) / 1000.0 - 0.5, ph = 0.3 * t + p;
    double light = p == 1 ? 0.15 : 0; /* p2 is the least loaded */
    x[0] = (float)(0.3 - light + 0.05 * sin(ph) + 0.02 * noise);
    x[1] = (float)(0.4 - light + 0.02 * cos(ph) + 0.01 * noise);
    x[2] = (float)(1e6 * (1 + 0.1 * sin(ph) + 0.05 * noise));
    x[3] = (float)(5e5 * (1 + 0.1 * cos(ph) + 0.05 * noise));
    if (mode == SPIKE) {
        x[0] += 0.05f;
        x[1] += 0.025f;
    }
    if (mode == LOADED) {
        x[0] += 0.55f;
        x[1] += 0.45f;
    }
    if (mode == DEGRADED) {
        x[0] = 0.99f;
        x[1] = 0.97f;
        x[2] = 3e7f;
        x[3] = 2e7f;
    }
}

/* The manager's stream time, in-process or over the control socket; NAN if unknown. */
static double manager_time(world *w);

/* One tick: every processor not silent sends a heartbeat; wait for the manager to see it. */
static void tick(world *w)
{
    int scored = 0;
    for (int p = 0; p < w->n; p++)
        w->pfp[p] = -1;
    for (int srv = 0; srv < w->n_srv; srv++) {
        uint64_t ids[MAXP], seqs[MAXP];
        double ts[MAXP];
        float x[MAXP * K];
        size_t n = 0;
        for (int p = 0; p < w->n; p++) {
            if (w->mode[p] == SILENT || w->shard[p] != srv) continue;
            ids[n] = w->id[p];
            seqs[n] = (uint64_t)w->t + 1;
            ts[n] = T0 + w->t;
            metrics(w->t, p, w->mode[p], x + n * K);
            n++;
        }
        ps_proto_score_reply r;
        if (!n || !w->srv[srv]) continue;
        int rc = ps_client_score(w->cl[srv], n, K, ids, seqs, ts, x, &r, err, sizeof err);
        CHECKF(rc == PS_CLIENT_OK, "tick %d: %s", w->t, err);
        for (size_t i = 0; rc == PS_CLIENT_OK && i < r.n; i++) {
            for (int p = 0; p < w->n; p++)
                if (w->id[p] == r.results[i].id && r.results[i].state == PS_PROTO_STATE_SCORED)
                    w->pfp[p] = r.results[i].pfp, scored = 1;
        }
    }
    double want = T0 + w->t;
    w->t++;
    if (!scored) return;
    double until = mono() + 10;
    while (mono() < until) {
        double now = manager_time(w);
        if (!isnan(now) && now >= want) return;
        sleep_ms(1);
    }
    fprintf(stderr, "%s: the manager did not see tick %d within 10 s\n", w->name, w->t - 1);
}

static void ticks(world *w, int until)
{
    while (w->t < until)
        tick(w);
}

/* ---- looking at what happened ---- */

static long long sql_int(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static long long sql_int(const char *path, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3 *db = NULL;
    long long v = -999;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        } else {
            fprintf(stderr, "sql_int: %s: %s\n", sql, sqlite3_errmsg(db));
        }
    }
    sqlite3_close(db);
    return v;
}

static ps_manage_stats stats(world *w)
{
    ps_manage_stats s;
    ps_manage_get_stats(w->mgr, &s);
    return s;
}

/* One control request; the answer in buf. */
static int control(const char *addr, const char *req, char *buf, size_t len)
{
    nng_socket s;
    int rv = nng_req0_open(&s);
    if (rv == 0) rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
    if (rv == 0) rv = nng_dial(s, addr, NULL, 0);
    if (rv == 0) rv = nng_send(s, (void *)req, strlen(req), 0);
    char *msg = NULL;
    size_t n = 0;
    if (rv == 0) rv = nng_recv(s, &msg, &n, NNG_FLAG_ALLOC);
    if (rv == 0) {
        snprintf(buf, len, "%.*s", (int)n, msg);
        nng_free(msg, n);
    } else {
        snprintf(buf, len, "(%s)", nng_strerror(rv));
    }
    nng_close(s);
    return rv;
}

static double manager_time(world *w)
{
    if (w->mgr) return stats(w).stream_time;
    char buf[4096];
    if (control(w->control, "show", buf, sizeof buf)) return NAN;
    const char *at = strstr(buf, "stream time ");
    return at ? atof(at + 12) : NAN;
}

/* Wait (wall clock) for cond while ticking every 20 ms; 1 if it held. */
static int tick_until(world *w, int (*cond)(world *), int max_ticks)
{
    for (int i = 0; i < max_ticks; i++) {
        if (cond(w)) return 1;
        tick(w);
        sleep_ms(20);
    }
    return cond(w);
}

/* The state of transfer id at processor proc, asked of the agent at url (-1 if no answer). */
static int agent_state(const char *url, const char *proc, int64_t id)
{
    ps_xfer_request q = {.op = PS_XFER_OP_STATUS, .id = id};
    snprintf(q.processor, sizeof q.processor, "%s", proc);
    ps_buf b = {0};
    int state = -1;
    nng_socket s;
    if (ps_xfer_encode_request(&b, &q, err, sizeof err) == 0 && nng_req0_open(&s) == 0) {
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
        char *msg = NULL;
        size_t n = 0;
        ps_xfer_reply rep;
        if (nng_dial(s, url, NULL, 0) == 0 && nng_send(s, b.data, b.len, 0) == 0 &&
            nng_recv(s, &msg, &n, NNG_FLAG_ALLOC) == 0) {
            if (ps_xfer_decode_reply((const uint8_t *)msg, n, &rep, err, sizeof err) == 0 &&
                rep.op == PS_XFER_OP_STATUS)
                state = (int)rep.state;
            nng_free(msg, n);
        }
        nng_close(s);
    }
    ps_buf_free(&b);
    return state;
}

static int shifts_committed_3(world *w)
{
    return stats(w).committed[PS_STORE_SHIFT] >= 3;
}

static int failed_1(world *w)
{
    return stats(w).failures >= 1;
}

static int gap_seen(world *w)
{
    return stats(w).gaps >= 1;
}

static int all_settled(world *w)
{
    ps_manage_stats s = stats(w);
    return s.in_flight == 0 && s.queued == 0 &&
           s.begun[0] + s.begun[1] ==
               s.committed[0] + s.committed[1] + s.rolled_back[0] + s.rolled_back[1];
}

/* ---- (a) ---- */

static void test_degrading(void)
{
    double t0 = mono();
    world w;
    world_begin(&w, "a");
    start_agent(&w, 0, 0, 0);
    write_cluster(&w, NULL, NULL);
    manager_config(&w);
    if (!w.srv[0] || !start_manager(&w)) {
        world_end(&w);
        return;
    }
    sleep_ms(300); /* the subscription connects during the warm-up anyway */
    ticks(&w, 50);
    ps_manage_stats s = stats(&w);
    CHECKF(s.begun[0] == 0 && s.triggered == 0, "healthy: %llu moves, %u triggered",
           (unsigned long long)s.begun[0], s.triggered);
    CHECK(s.records > 0 && s.alive == 4 && s.never_seen == 0);

    /* p1 degrades: its workloads leave while it still reports. */
    w.mode[0] = DEGRADED;
    CHECK(tick_until(&w, shifts_committed_3, 100));
    CHECK(tick_until(&w, all_settled, 100));
    int moved_at = w.t;
    CHECK(sql_int(w.store, "SELECT count(*) FROM workloads WHERE processor = 'p1'") == 0);
    CHECK(sql_int(w.store, "SELECT count(*) FROM transfers WHERE kind = 'shift' AND source = 'p1' "
                           "AND state = 'committed'") == 3);
    CHECK(sql_int(w.store, "SELECT count(*) FROM transfers WHERE source <> 'p1'") == 0);
    CHECK(sql_int(w.store, "SELECT count(*) FROM decisions WHERE decision = 'move'") == 3);
    CHECK(sql_int(w.store, "SELECT count(*) FROM (SELECT processor FROM workloads WHERE "
                           "replica_group = 'db' GROUP BY processor HAVING count(*) > 1)") == 0);
    /* The agent agrees: committed at both ends. */
    for (int64_t id = 1; id <= 3; id++) {
        char q[200], dest[64] = "";
        snprintf(q, sizeof q, "SELECT substr(destination, 2) FROM transfers WHERE id = %lld",
                 (long long)id);
        snprintf(dest, sizeof dest, "p%lld", sql_int(w.store, "%s", q));
        CHECKF(agent_state(w.agent_url[0], dest, id) == PS_XFER_STATE_COMMITTED,
               "transfer %lld at %s", (long long)id, dest);
        CHECK(agent_state(w.agent_url[0], "p1", id) == PS_XFER_STATE_COMMITTED);
    }

    /* p1 stops: failed after the timeout; every shift off it averted its failure. */
    w.mode[0] = SILENT;
    CHECK(tick_until(&w, failed_1, 40));
    CHECKF(w.t - moved_at >= 10, "failed after %d ticks of silence", w.t - moved_at);
    s = stats(&w);
    CHECK(s.outcomes[PS_OUTCOME_AVERTED] == 3 && s.outcomes[PS_OUTCOME_MISSED] == 0);
    CHECK(s.begun[PS_STORE_FAILOVER] == 0 && s.failed == 1 && s.alive == 3);
    CHECK(sql_int(w.store, "SELECT count(*) FROM transfers WHERE outcome = 'averted'") == 3);
    CHECK(sql_int(w.store, "SELECT alive FROM processors WHERE name = 'p1'") == 0);

    char body[65536], line[4096];
    int port = ps_manage_http_port(w.mgr);
    CHECK(port > 0 && http_get(port, "/metrics", body, sizeof body) == 200);
    CHECK(metric_value(body, "preshift_manage_outcomes_total{outcome=\"averted\"}") == 3);
    CHECK(metric_value(body,
                       "preshift_manage_transfers_total{kind=\"shift\",state=\"committed\"}") == 3);
    CHECK(metric_value(body, "preshift_manage_processors{state=\"failed\"}") == 1);
    CHECK(metric_value(body, "preshift_manage_threshold{class=\"std\"}") > 0.99);
    CHECK(http_get(port, "/readyz", line, sizeof line) == 200 && !strcmp(line, "ready\n"));
    /* The scrape reads back as the counters themselves (the manager is idle now). */
    ps_manage_stats back;
    s = stats(&w);
    CHECKF(ps_manage_stats_from_metrics(body, &back, line, sizeof line) == 0, "%s", line);
    CHECK(back.ready == 1 && back.stream_connections == 1 && back.passes == s.passes);
    CHECK(back.begun[0] == s.begun[0] && back.committed[0] == s.committed[0]);
    CHECK(back.outcomes[PS_OUTCOME_AVERTED] == 3 && back.failed == 1 && back.alive == 3);
    CHECK(back.records == s.records && back.stream_time == s.stream_time);
    CHECK(back.decisions[PS_DECIDE_MOVE] == s.decisions[PS_DECIDE_MOVE] &&
          s.decisions[PS_DECIDE_MOVE] > 0);
    CHECK(ps_manage_stats_from_metrics("preshift_manage_ready 1\n", &back, line, sizeof line) ==
              -1 &&
          strstr(line, "preshift_manage_stream_time_seconds"));
    CHECK(control(w.control, "show p1", line, sizeof line) == 0);
    CHECKF(!strncmp(line, "ok\nprocessor p1 class=std id=101", 32) && strstr(line, "alive=no"),
           "%s", line);
    world_end(&w);
    printf("(a) degrading: %.1f s\n", mono() - t0);
}

/* ---- (b) ---- */

static void test_flapping(void)
{
    double t0 = mono();
    world w;
    world_begin(&w, "b");
    start_agent(&w, 0, 0, 0);
    write_cluster(&w, NULL, NULL);
    manager_config(&w);
    if (!w.srv[0] || !start_manager(&w)) {
        world_end(&w);
        return;
    }
    sleep_ms(300);
    ticks(&w, 40);
    /* Spikes: one tick in eight. The PFP crosses the threshold each time, for less than
     * the hysteresis (3 ticks): nothing triggers, nothing moves. */
    int above = 0, run = 0, longest = 0;
    for (int i = 0; i < 96; i++) {
        w.mode[0] = i % 8 == 0 ? SPIKE : HEALTHY;
        tick(&w);
        run = w.pfp[0] > THRESHOLD ? run + 1 : 0;
        above += w.pfp[0] > THRESHOLD;
        longest = run > longest ? run : longest;
    }
    CHECKF(above >= 6, "the spikes should cross the threshold: %d ticks above", above);
    CHECKF(longest < 3,
           "a spike held the PFP above the threshold for %d ticks (the test "
           "expects fewer than the hysteresis)",
           longest);
    ps_manage_stats s = stats(&w);
    CHECKF(s.begun[0] == 0 && s.decisions[PS_DECIDE_MOVE] == 0, "%llu moves from spikes",
           (unsigned long long)s.begun[0]);

    /* Bursts long enough to trigger, five times: each workload leaves p1 once, none
     * moves again, none comes back. */
    for (int burst = 0; burst < 5; burst++) {
        w.mode[0] = DEGRADED;
        ticks(&w, w.t + 5);
        w.mode[0] = HEALTHY;
        for (int i = 0; i < 15; i++) {
            tick(&w);
            sleep_ms(5);
        }
    }
    CHECK(tick_until(&w, all_settled, 100));
    s = stats(&w);
    CHECKF(s.begun[0] == 3 && s.committed[0] == 3, "%llu shifts begun, %llu committed",
           (unsigned long long)s.begun[0], (unsigned long long)s.committed[0]);
    CHECK(sql_int(w.store, "SELECT max(n) FROM (SELECT count(*) AS n FROM transfers GROUP BY "
                           "workload)") == 1);
    CHECK(sql_int(w.store, "SELECT count(*) FROM transfers WHERE destination = 'p1'") == 0);
    CHECK(sql_int(w.store, "SELECT count(*) FROM workloads WHERE processor = 'p1'") == 0);
    CHECK(s.failures == 0);
    world_end(&w);
    printf("(b) flapping: %.1f s\n", mono() - t0);
}

/* ---- (c) ---- */

static void test_refusing_target(void)
{
    double t0 = mono();
    world w;
    world_begin(&w, "c");
    start_agent(&w, 0, 0, 0);
    start_agent(&w, 1, 1, 0);                     /* p2's agent refuses every transfer to it */
    write_cluster(&w, "cpu=64 mem=256GiB", NULL); /* p2: the most headroom, the first choice */
    manager_config(&w);
    if (!w.srv[0] || !start_manager(&w)) {
        world_end(&w);
        return;
    }
    sleep_ms(300);
    ticks(&w, 40);
    w.mode[0] = DEGRADED;
    CHECK(tick_until(&w, shifts_committed_3, 100));
    CHECK(tick_until(&w, all_settled, 100));
    ps_manage_stats s = stats(&w);
    CHECKF(s.rolled_back[0] == 3 && s.committed[0] == 3, "rolled back %llu, committed %llu",
           (unsigned long long)s.rolled_back[0], (unsigned long long)s.committed[0]);
    CHECK(s.outcomes[PS_OUTCOME_DISRUPTIVE] == 3);
    /* Each of p1's workloads: refused by p2 (rolled back), then moved elsewhere. */
    static const char *const moved[3] = {"api", "cache", "batch"};
    for (int i = 0; i < 3; i++) {
        CHECKF(sql_int(w.store,
                       "SELECT count(*) FROM transfers WHERE workload = '%s' AND destination = "
                       "'p2' AND state = 'rolled_back' AND outcome = 'disruptive' AND note <> ''",
                       moved[i]) == 1,
               "%s", moved[i]);
        CHECKF(sql_int(w.store,
                       "SELECT count(*) FROM transfers WHERE workload = '%s' AND destination "
                       "NOT IN ('p1', 'p2') AND state = 'committed'",
                       moved[i]) == 1,
               "%s", moved[i]);
        CHECK(sql_int(w.store,
                      "SELECT count(*) FROM workloads WHERE name = '%s' AND processor IN ('p3', "
                      "'p4')",
                      moved[i]) == 1);
        CHECK(sql_int(w.store,
                      "SELECT max(id) FROM transfers WHERE workload = '%s' AND state = "
                      "'committed'",
                      moved[i]) >
              sql_int(w.store,
                      "SELECT max(id) FROM transfers WHERE workload = '%s' AND state = "
                      "'rolled_back'",
                      moved[i]));
    }
    /* Disruptive outcomes raise the class's threshold. */
    CHECK(sql_int(w.store, "SELECT count(*) FROM thresholds WHERE cause = 'disruptive'") == 3);
    CHECK(sql_int(w.store, "SELECT value > old_value FROM thresholds ORDER BY id LIMIT 1") == 1);
    world_end(&w);
    printf("(c) refusing target: %.1f s\n", mono() - t0);
}

/* ---- (e) ---- */

static void test_failover(void)
{
    double t0 = mono();
    world w;
    world_begin(&w, "e");
    start_agent(&w, 0, 0, 0);
    write_cluster(&w, NULL,
                  "workload q1 on=p4 cpu=2 mem=4GiB state=1GiB\n"
                  "workload q2 on=p4 cpu=2 mem=4GiB state=1GiB\n"
                  "workload q3 on=p4 cpu=2 mem=4GiB state=1GiB group=db\n");
    manager_config(&w);
    if (!w.srv[0] || !start_manager(&w)) {
        world_end(&w);
        return;
    }
    sleep_ms(300);
    ticks(&w, 45);
    /* p4 stops without warning: no shift could have saved it. */
    w.mode[3] = SILENT;
    CHECK(tick_until(&w, failed_1, 40));
    CHECK(tick_until(&w, all_settled, 100));
    ps_manage_stats s = stats(&w);
    CHECK(s.failures == 1 && s.outcomes[PS_OUTCOME_MISSED] == 1 && s.begun[PS_STORE_SHIFT] == 0);
    CHECKF(s.committed[PS_STORE_FAILOVER] == 4, "%llu failovers committed",
           (unsigned long long)s.committed[PS_STORE_FAILOVER]);
    CHECK(sql_int(w.store, "SELECT count(*) FROM workloads WHERE processor = 'p4'") == 0);
    CHECK(sql_int(w.store, "SELECT count(*) FROM transfers WHERE kind = 'failover' AND source = "
                           "'p4' AND state = 'committed' AND outcome IS NULL") == 4);
    /* Spread over the survivors, replicas apart (q3 joins db, on p2 and p3: it goes to p1). */
    CHECK(sql_int(w.store, "SELECT count(DISTINCT destination) FROM transfers") >= 2);
    CHECK(sql_int(w.store, "SELECT count(*) FROM workloads WHERE name = 'q3' AND processor = "
                           "'p1'") == 1);
    /* The miss weighs as the four shifts it lacked: one threshold step each. */
    CHECK(sql_int(w.store, "SELECT count(*) FROM thresholds WHERE cause = 'missed'") == 4);
    /* It reports again: alive again, and nothing moves back. */
    w.mode[3] = HEALTHY;
    ticks(&w, w.t + 3);
    s = stats(&w);
    CHECK(s.revivals == 1 && s.failed == 0 && s.alive == 4);
    CHECK(sql_int(w.store, "SELECT alive FROM processors WHERE name = 'p4'") == 1);
    world_end(&w);
    printf("(e) failover: %.1f s\n", mono() - t0);
}

/* ---- (d) ---- */

static void spawn_manager(world *w)
{
    char *argv[] = {(char *)binary,
                    "manage",
                    "--subscribe",
                    w->scfg[0].publish,
                    "--server",
                    w->scfg[0].listen,
                    "--workloads",
                    w->workloads,
                    "--store",
                    w->store,
                    "--control",
                    w->control,
                    "--http",
                    "off",
                    "--failure-timeout",
                    "1000",
                    "--transfer-timeout",
                    "10",
                    NULL};
    w->mgr_pid = spawn(argv, path_in(w, "manage.log"));
    char buf[4096];
    double until = mono() + 20;
    while (mono() < until && control(w->control, "show", buf, sizeof buf) != 0)
        sleep_ms(20);
    CHECKF(!strncmp(buf, "ok", 2), "the manager does not answer: %s", buf);
}

static int open_transfers(world *w)
{
    return (int)sql_int(w->store, "SELECT count(*) FROM transfers WHERE state = 'prepared'");
}

static int some_open(world *w)
{
    return open_transfers(w) > 0;
}

static int p1_empty_and_settled(world *w)
{
    return open_transfers(w) == 0 &&
           sql_int(w->store, "SELECT count(*) FROM workloads WHERE processor = 'p1'") == 0;
}

static void test_restart(void)
{
    double t0 = mono();
    world w;
    world_begin(&w, "d");
    start_agent(&w, 0, 0, 1.5); /* every copy takes 1.5 s */
    write_cluster(&w, NULL, NULL);
    if (!w.srv[0]) {
        world_end(&w);
        return;
    }
    spawn_manager(&w);
    ticks(&w, 40);
    w.mode[0] = DEGRADED;
    CHECK(tick_until(&w, some_open, 100));
    kill(w.mgr_pid, SIGKILL); /* mid-transfer: the agent is still copying */
    waitpid(w.mgr_pid, NULL, 0);
    w.mgr_pid = 0;
    int open = open_transfers(&w);
    long long before = sql_int(w.store, "SELECT max(id) FROM transfers");
    CHECKF(open > 0, "%d transfers open when the manager was killed", open);

    /* Restarted: the open transfers are recovered first, then the policy goes on. */
    spawn_manager(&w);
    CHECK(tick_until(&w, p1_empty_and_settled, 300));
    reap(&w.mgr_pid, SIGTERM);
    CHECK(sql_int(w.store, "SELECT count(*) FROM transfers WHERE state = 'prepared'") == 0);
    /* None moved twice; every workload where its last transfer put it. */
    CHECK(sql_int(w.store, "SELECT max(n) FROM (SELECT count(*) AS n FROM transfers WHERE state = "
                           "'committed' GROUP BY workload)") == 1);
    CHECK(sql_int(w.store, "SELECT count(*) FROM workloads w WHERE processor <> coalesce((SELECT "
                           "destination FROM transfers t WHERE t.workload = w.name AND state = "
                           "'committed'), processor)") == 0);
    CHECK(sql_int(w.store, "SELECT count(*) FROM workloads WHERE processor = 'p1'") == 0);
    CHECK(sql_int(w.store, "SELECT count(*) FROM workloads") == 6);
    /* The agent agrees with the store on every transfer, at both ends: a workload runs on
     * exactly one processor. */
    long long last = sql_int(w.store, "SELECT max(id) FROM transfers");
    CHECK(last > before);
    for (long long id = 1; id <= last; id++) {
        char src[8], dst[8];
        long long committed =
            sql_int(w.store, "SELECT state = 'committed' FROM transfers WHERE id = %lld", id);
        snprintf(src, sizeof src, "p%lld",
                 sql_int(w.store, "SELECT substr(source, 2) FROM transfers WHERE id = %lld", id));
        snprintf(
            dst, sizeof dst, "p%lld",
            sql_int(w.store, "SELECT substr(destination, 2) FROM transfers WHERE id = %lld", id));
        int ds = agent_state(w.agent_url[0], dst, id), ss = agent_state(w.agent_url[0], src, id);
        if (committed == 1)
            CHECKF(ds == PS_XFER_STATE_COMMITTED && ss == PS_XFER_STATE_COMMITTED,
                   "transfer %lld committed in the store; agent: %s %s, %s %s", id, dst,
                   ps_xfer_state_name(ds), src, ps_xfer_state_name(ss));
        else
            CHECKF(ds != PS_XFER_STATE_COMMITTED && ds != PS_XFER_STATE_PREPARED &&
                       ss != PS_XFER_STATE_COMMITTED && ss != PS_XFER_STATE_PREPARED,
                   "transfer %lld rolled back in the store; agent: %s %s, %s %s", id, dst,
                   ps_xfer_state_name(ds), src, ps_xfer_state_name(ss));
    }
    /* The store loads into a consistent cluster. */
    ps_store *st = NULL;
    ps_cluster c;
    ps_names n;
    CHECKF(ps_store_open(w.store, 0, &st, err, sizeof err) == 0, "%s", err);
    if (st && ps_store_load_cluster(st, NULL, &c, &n, err, sizeof err) == 0) {
        CHECKF(ps_cluster_check(&c, err, sizeof err) == 0, "%s", err);
        ps_cluster_free(&c);
        ps_names_free(&n);
    }
    ps_store_close(st);
    world_end(&w);
    printf("(d) restart: %.1f s (%d transfer(s) open at the kill)\n", mono() - t0, open);
}

/* ---- (f) ---- */

/*
 * Processors sharded over two servers: one pass per round of both servers'
 * ticks (not one per message), so hysteresis counts each processor's own
 * ticks; a server that restarts is a gap, after which the manager asks it
 * (op latest) where its processors stand.
 */
static void test_sharded(void)
{
    double t0 = mono();
    world w;
    world_begin(&w, "f");
    start_server(&w, 1);
    start_agent(&w, 0, 0, 0);
    write_cluster(&w, NULL, NULL);
    w.shard[2] = w.shard[3] = 1; /* p3 and p4 report to the second server */
    manager_config(&w);
    w.mcfg.failure_timeout = 1000;
    w.mcfg.environment_every = 2; /* a sample every 2 ticks */
    if (!w.srv[0] || !w.srv[1] || !start_manager(&w)) {
        world_end(&w);
        return;
    }
    sleep_ms(300);
    ticks(&w, 30);
    ps_manage_stats s0 = stats(&w);
    ticks(&w, 60);
    ps_manage_stats s1 = stats(&w);
    CHECKF(s1.messages - s0.messages == 60, "%llu messages for 30 ticks of 2 servers",
           (unsigned long long)(s1.messages - s0.messages));
    CHECKF(s1.passes - s0.passes >= 29 && s1.passes - s0.passes <= 31, "%lld passes for 30 ticks",
           (long long)(s1.passes - s0.passes));
    CHECK(s1.latest_ok == 2 && s1.gaps == 0 && s1.records == s1.messages * 2);
    /* The second server restarts (a new run): its processors warm up again, the manager asks
     * it for their latest state, and degradation on the first server is still acted on. */
    ps_serve_stop(w.srv[1]);
    w.srv[1] = NULL;
    start_server(&w, 1);
    w.mode[0] = DEGRADED;
    ticks(&w, w.t + WARMUP + 5);
    CHECK(tick_until(&w, shifts_committed_3, 100));
    CHECK(tick_until(&w, gap_seen, 200)); /* once the subscription has redialled */
    ps_manage_stats s2 = stats(&w);
    CHECKF(s2.gaps == 1 && s2.latest_ok == 3, "%llu gaps, %llu latest", (unsigned long long)s2.gaps,
           (unsigned long long)s2.latest_ok);
    CHECK(s2.failures == 0 && s2.alive == 4);
    /* The whole cluster loaded past 0.7: moving costs more, every threshold rises (the
     * environment), and a workload finds no target with headroom. */
    for (int p = 0; p < 4; p++)
        w.mode[p] = LOADED;
    ticks(&w, w.t + 20);
    CHECK(sql_int(w.store, "SELECT count(*) FROM thresholds WHERE cause = 'environment' AND "
                           "value > old_value") >= 1);
    char body[65536];
    CHECK(http_get(ps_manage_http_port(w.mgr), "/metrics", body, sizeof body) == 200);
    CHECKF(metric_value(body, "preshift_manage_threshold{class=\"std\"}") > 0.9991, "%g",
           metric_value(body, "preshift_manage_threshold{class=\"std\"}"));
    world_end(&w);
    printf("(f) sharded: %.1f s\n", mono() - t0);
}

/* ---- cleanup ---- */

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[400];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "%s is not built: build the preshift target first\n", binary);
        return 1;
    }
    snprintf(dir, sizeof dir, "/tmp/preshift-manage-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    test_degrading();
    test_flapping();
    test_refusing_target();
    test_restart();
    test_failover();
    test_sharded();
    if (!test_failures && !getenv("PRESHIFT_TEST_KEEP"))
        remove_dir();
    else
        fprintf(stderr, "files left in %s\n", dir);
    return test_finish("test_manage_loop");
}
