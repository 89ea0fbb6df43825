/*
 * test_manage_units.c - the shifting manager's pieces that need no stream:
 *
 *   - its configuration: defaults, flags, a file, flags over the file, a
 *     repeated flag replacing the file's list, every refusal naming the
 *     option, --help documenting every option with its default;
 *   - utilization from a heartbeat's metrics, or from hosted demand;
 *   - the reactive fallback's rule: least loaded relative to capacity,
 *     only where the workload fits, replicas apart, heaviest first;
 *   - the control socket of a manager that hears no stream: declarations
 *     applied to the cluster and the store together, refusals that change
 *     nothing, removals, show;
 *   - the workload file at start: loaded into an empty store, the same file
 *     again accepted, a changed one refused unless --reload-workloads.
 */
#include "server/manage.h"
#include "server/manage_config.h"
#include "server/store.h"
#include "server/workload_file.h"
#include "testutil.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char err[2048];

static const char *in_dir(const char *name)
{
    static char p[4][400];
    static int next;
    char *s = p[next++ % 4];
    snprintf(s, sizeof p[0], "%s/%s", dir, name);
    return s;
}

static int parse(ps_manage_config *c, const char *const *args)
{
    char *argv[64] = {"manage"};
    int argc = 1;
    while (args[argc - 1])
        argv[argc] = (char *)args[argc - 1], argc++;
    ps_manage_config_default(c);
    return ps_manage_config_parse(c, argc, argv, err, sizeof err);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ---- configuration ---- */

static void test_config(void)
{
    ps_manage_config c;
    ps_manage_config_default(&c);
    CHECK(!strcmp(c.store, "preshift-manage.db") &&
          !strcmp(c.control, "ipc://preshift-manage.ctl"));
    CHECK(!strcmp(c.http, "http://127.0.0.1:5558") && c.failure_timeout == 30 && c.horizon == 600);
    CHECK(c.cpu_metric == 0 && c.mem_metric == 1 && c.n_net_metric == 2 && c.net_metric[1] == 3);
    CHECK(c.threshold.initial == 0.999 && c.policy.trigger.hold_ticks == 2);
    CHECK(c.max_transfers == 16 && c.transfer_timeout == 30 && c.n_subscribe == 0);

    const char *ok[] = {"--subscribe",
                        "ipc:///a",
                        "--subscribe",
                        "tcp://b:1",
                        "--server",
                        "ipc:///ra",
                        "--server",
                        "tcp://b:2",
                        "--hold-ticks",
                        "5",
                        "--net-metric",
                        "4",
                        "--mem-metric",
                        "none",
                        "--threshold-initial",
                        "0.99",
                        "--reload-workloads",
                        "-q",
                        NULL};
    CHECKF(parse(&c, ok) == 0, "%s", err);
    CHECK(c.n_subscribe == 2 && !strcmp(c.subscribe[1], "tcp://b:1") && c.n_server == 2);
    CHECK(c.policy.trigger.hold_ticks == 5 && c.n_net_metric == 1 && c.net_metric[0] == 4);
    CHECK(c.mem_metric == PS_MANAGE_NO_METRIC && c.threshold.initial == 0.99);
    CHECK(c.reload_workloads && c.quiet);

    /* A file, then flags over it; a repeated flag replaces the file's list. */
    const char *conf = in_dir("manage.conf");
    write_text(conf, "# the manager\nsubscribe = ipc:///f1\nsubscribe = ipc:///f2\n"
                     "failure-timeout = 12\nhorizon=90\nquiet = true\ncpu-metric = none\n");
    const char *over[] = {"--config", conf, "--horizon", "45", NULL};
    CHECKF(parse(&c, over) == 0, "%s", err);
    CHECK(c.n_subscribe == 2 && c.failure_timeout == 12 && c.horizon == 45 && c.quiet);
    CHECK(c.cpu_metric == PS_MANAGE_NO_METRIC);
    const char *relist[] = {"--subscribe", "ipc:///cli", "--config", conf, NULL};
    CHECKF(parse(&c, relist) == 0, "%s", err);
    CHECK(c.n_subscribe == 1 && !strcmp(c.subscribe[0], "ipc:///cli"));

    /* Refusals name the option. */
    static const struct {
        const char *args[6];
        const char *what;
    } bad[] = {
        {{NULL}, "--subscribe: give the PUB address"},
        {{"--subscribe", "udp://x", NULL}, "--subscribe 'udp://x'"},
        {{"--subscribe", "ipc:///a", "--server", "ipc:///b", "--server", "ipc:///c"},
         "2 --server for 1 --subscribe"},
        {{"--subscribe", "ipc:///a", "--hold-ticks", "0", NULL}, "--hold-ticks: 0 is out of range"},
        {{"--subscribe", "ipc:///a", "--horizon", "-1", NULL}, "--horizon: -1 is out of range"},
        {{"--subscribe", "ipc:///a", "--cpu-metric", "x", NULL}, "--cpu-metric: 'x' is not"},
        {{"--subscribe", "ipc:///a", "--frob", NULL}, "unknown option '--frob'"},
        {{"--subscribe", "ipc:///a", "--http", "ftp://x", NULL}, "--http 'ftp://x'"},
        {{"--subscribe", "ipc:///a", "--threshold-min", "0.9999", NULL}, "min"},
        {{"--subscribe", "ipc:///a", "--tls-cert", "c.pem", NULL}, "go together"},
        {{"--subscribe", NULL}, "--subscribe needs a value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(&c, bad[i].args);
        CHECKF(rc == -1 && strstr(err, bad[i].what), "case %zu: rc %d, '%s'", i, rc, err);
    }
    write_text(conf, "subscribe = ipc:///a\nthis is wrong\n");
    const char *badfile[] = {"--config", conf, NULL};
    CHECK(parse(&c, badfile) == -1 && strstr(err, "manage.conf:2: expected 'key = value'"));
    write_text(conf, "subscribe = ipc:///a\nnope = 1\n");
    CHECK(parse(&c, badfile) == -1 && strstr(err, "manage.conf:2: 'nope' is not an option"));

    /* --help and the printed configuration cover every option, with defaults. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ps_manage_usage(f);
    fclose(f);
    static const char *const flags[] = {"--subscribe",
                                        "--server",
                                        "--workloads",
                                        "--reload-workloads",
                                        "--store",
                                        "--control",
                                        "--http",
                                        "--hold-ticks",
                                        "--cooldown-ticks",
                                        "--residual-share",
                                        "--max-moves",
                                        "--max-utilization",
                                        "--threshold-initial",
                                        "--threshold-min",
                                        "--threshold-max",
                                        "--step-down",
                                        "--failure-timeout",
                                        "--horizon",
                                        "--max-transfers",
                                        "--transfer-timeout",
                                        "--cpu-metric",
                                        "--mem-metric",
                                        "--net-metric",
                                        "--ctl"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        CHECKF(strstr(text, flags[i]) != NULL, "--help lacks %s", flags[i]);
    CHECK(strstr(text, "(default 600)") && strstr(text, "(default 2,3)"));
    free(text);
    f = open_memstream(&text, &len);
    ps_manage_config_default(&c);
    ps_manage_config_print(&c, f);
    fclose(f);
    CHECKF(strstr(text, "  failure-timeout          = 30\n") && strstr(text, "net-metric"), "%s",
           text);
    free(text);

    /* What ps_manage_config_write gives loads back to the same options, lists and all. */
    CHECKF(parse(&c, ok) == 0, "%s", err);
    c.horizon = 0.1; /* not exact in binary: written with every digit */
    c.n_net_metric = 0;
    FILE *w = fopen(conf, "w");
    CHECK(w != NULL);
    if (!w) return;
    ps_manage_config_write(&c, w);
    fclose(w);
    ps_manage_config back;
    ps_manage_config_default(&back);
    back.n_net_metric = 2;
    CHECKF(ps_manage_config_load_file(&back, conf, err, sizeof err) == 0, "%s", err);
    CHECK(back.n_subscribe == 2 && !strcmp(back.subscribe[1], "tcp://b:1") && back.n_server == 2);
    CHECK(!strcmp(back.server[1], "tcp://b:2") && back.policy.trigger.hold_ticks == 5);
    CHECK(back.horizon == 0.1 && back.n_net_metric == 0 && back.mem_metric == PS_MANAGE_NO_METRIC);
    CHECK(back.threshold.initial == 0.99 && back.reload_workloads && back.quiet);
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    FILE *f1 = open_memstream(&t1, &l1), *f2 = open_memstream(&t2, &l2);
    ps_manage_config_write(&c, f1);
    ps_manage_config_write(&back, f2);
    fclose(f1);
    fclose(f2);
    CHECKF(!strcmp(t1, t2), "written:\n%s\nread back and written:\n%s", t1, t2);
    free(t1);
    free(t2);
}

/* ---- pure pieces ---- */

static ps_cluster cluster_of(const char *text, ps_names *n)
{
    ps_cluster c;
    int rc = ps_workload_load_string(text, strlen(text), "t", NULL, &c, n, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    return c;
}

static void test_utilization(void)
{
    ps_names n;
    ps_cluster c = cluster_of("class k\nprocessor p class=k cpu=8 mem=16GiB net=100MB/s\n"
                              "workload a on=p cpu=2 mem=4GiB\nworkload b on=p cpu=2\n",
                              &n);
    ps_manage_config cfg;
    ps_manage_config_default(&cfg);
    double u[3];
    float x[4] = {0.25f, 0.5f, 2e7f, 5e7f};
    ps_manage_utilization(&cfg, &c, 0, x, 4, u);
    CHECK_NEAR(u[0], 0.25, 1e-6);
    CHECK_NEAR(u[1], 0.5, 1e-6);
    CHECK_NEAR(u[2], 0.5, 1e-6); /* the busier of rx and tx over 100 MB/s */
    /* Metrics beyond k, or none: demand over capacity; network 0. */
    ps_manage_utilization(&cfg, &c, 0, x, 1, u);
    CHECK_NEAR(u[0], 0.25, 1e-6);
    CHECK_NEAR(u[1], 0.25, 1e-12);
    CHECK(u[2] == 0);
    ps_manage_utilization(&cfg, &c, 0, NULL, 0, u);
    CHECK_NEAR(u[0], 0.5, 1e-12);
    /* Clamped to [0, 1], NaN to 0. */
    float y[4] = {3.0f, -1.0f, 1e12f, NAN};
    ps_manage_utilization(&cfg, &c, 0, y, 4, u);
    CHECK(u[0] == 1 && u[1] == 0 && u[2] == 1);
    cfg.cpu_metric = PS_MANAGE_NO_METRIC;
    cfg.n_net_metric = 0;
    ps_manage_utilization(&cfg, &c, 0, x, 4, u);
    CHECK_NEAR(u[0], 0.5, 1e-12);
    CHECK(u[2] == 0);
    ps_cluster_free(&c);
    ps_names_free(&n);
}

static void test_failover_rule(void)
{
    ps_names n;
    ps_cluster c = cluster_of("class k\n"
                              "processor dead class=k cpu=16 mem=64GiB net=1GB/s\n"
                              "processor a class=k cpu=16 mem=64GiB net=1GB/s\n"
                              "processor b class=k cpu=16 mem=64GiB net=1GB/s\n"
                              "processor tiny class=k cpu=1 mem=1GiB net=1GB/s\n"
                              "workload big on=dead cpu=8 mem=8GiB\n"
                              "workload small on=dead cpu=1 mem=1GiB group=g\n"
                              "workload mid on=dead cpu=4 mem=2GiB\n"
                              "workload twin on=b cpu=1 mem=1GiB group=g\n",
                              &n);
    uint32_t dead = 0, a = 1, b = 2, tiny = 3;
    ps_cluster_set_alive(&c, dead, 0, NULL, 0);
    ps_cluster_set_load(&c, a, 0.2, 0.2, 0, NULL, 0);
    ps_cluster_set_load(&c, b, 0.3, 0.1, 0, NULL, 0);
    ps_cluster_set_load(&c, tiny, 0.0, 0.0, 0, NULL, 0);
    uint32_t order[8];
    CHECK(ps_manage_failover_order(&c, dead, order, 8) == 3);
    CHECK(order[0] == ps_name_find(&n.workloads, "big") &&
          order[1] == ps_name_find(&n.workloads, "mid") &&
          order[2] == ps_name_find(&n.workloads, "small"));
    /* big: a ends at 0.2 + 0.5 = 0.7, b at 0.3 + 0.5 = 0.8, tiny cannot take it. */
    CHECK(ps_manage_failover_target(&c, order[0]) == a);
    ps_cluster_begin_transfer(&c, order[0], a, NULL, 0);
    /* mid: a 0.2 + (8 + 4) / 16 = 0.95, b 0.3 + 0.25 = 0.55: b. */
    CHECK(ps_manage_failover_target(&c, order[1]) == b);
    ps_cluster_begin_transfer(&c, order[1], b, NULL, 0);
    /* small: b is the least loaded, but its twin is there: a (0.2 + 9 / 16), not tiny (1). */
    CHECK(ps_manage_failover_target(&c, order[2]) == a);
    ps_cluster_set_load(&c, a, 0.95, 0.2, 0, NULL, 0);
    CHECK(ps_manage_failover_target(&c, order[2]) == tiny); /* 1 / 1: it just fits */
    /* Workloads in flight are not ordered again. */
    CHECK(ps_manage_failover_order(&c, dead, order, 8) == 1);
    /* Nothing fits: none. */
    ps_cluster_set_load(&c, tiny, 0.5, 0.5, 0, NULL, 0);
    CHECK(ps_manage_failover_target(&c, order[0]) == PS_NONE);
    ps_cluster_free(&c);
    ps_names_free(&n);
}

/* ---- a manager with no stream: its control socket and its start ---- */

static const char CLUSTER[] = "class std\n"
                              "processor p1 class=std cpu=8 mem=32GiB net=1GB/s id=1\n"
                              "processor p2 class=std cpu=8 mem=32GiB net=1GB/s id=2\n"
                              "workload w1 on=p1 cpu=1 mem=1GiB group=g\n"
                              "workload w2 on=p2 cpu=1 mem=1GiB group=g\n";

static void config_for(ps_manage_config *c, const char *store, const char *workloads)
{
    ps_manage_config_default(c);
    snprintf(c->subscribe[0], sizeof c->subscribe[0], "ipc://%s", in_dir("nobody.pub"));
    c->n_subscribe = 1;
    snprintf(c->store, sizeof c->store, "%s", store);
    snprintf(c->workloads, sizeof c->workloads, "%s", workloads ? workloads : "");
    snprintf(c->control, sizeof c->control, "ipc://%s", in_dir("ctl"));
    snprintf(c->http, sizeof c->http, "off");
    c->quiet = 1;
}

static char answer[8192];

static const char *ask(const ps_manage_config *c, const char *req)
{
    nng_socket s;
    answer[0] = '\0';
    if (nng_req0_open(&s)) return answer;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
    char *buf = NULL;
    size_t len = 0;
    if (nng_dial(s, c->control, NULL, 0) == 0 && nng_send(s, (void *)req, strlen(req), 0) == 0 &&
        nng_recv(s, &buf, &len, NNG_FLAG_ALLOC) == 0) {
        snprintf(answer, sizeof answer, "%.*s", (int)len, buf);
        nng_free(buf, len);
    }
    nng_close(s);
    return answer;
}

static long long sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -999;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return v;
}

#define ASK_OK(req)                                                                                \
    do {                                                                                           \
        const char *a_ = ask(&c, req);                                                             \
        CHECKF(!strncmp(a_, "ok", 2), "%s -> %s", req, a_);                                        \
    } while (0)
#define ASK_ERR(req, what)                                                                         \
    do {                                                                                           \
        const char *a_ = ask(&c, req);                                                             \
        CHECKF(!strncmp(a_, "error: ", 7) && strstr(a_, what), "%s -> %s", req, a_);               \
    } while (0)

static void test_control(void)
{
    char store[400], wl[400];
    snprintf(store, sizeof store, "%s", in_dir("ctl.db"));
    snprintf(wl, sizeof wl, "%s", in_dir("ctl.workloads"));
    write_text(wl, CLUSTER);
    ps_manage_config c;
    config_for(&c, store, wl);
    ps_manage *m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m != NULL, "%s", err);
    if (!m) return;

    ASK_OK("processor p3 class=std cpu=4 mem=8GiB net=1GB/s id=3 agent=tcp://127.0.0.1:1");
    ASK_OK("workload w3 on=p3 cpu=1 mem=1GiB state=1MB criticality=2");
    ASK_OK("depends w3 on w1, w2");
    ASK_OK("flow w2 -> w1");
    ASK_OK("class gpu");
    CHECK(sql_int(store, "SELECT count(*) FROM processors") == 3);
    CHECK(sql_int(store, "SELECT count(*) FROM dependencies") == 3);
    CHECK(sql_int(store, "SELECT heartbeat_id FROM processors WHERE name = 'p3'") == 3);

    /* Refusals change nothing, in the store or the cluster. */
    ASK_ERR("processor p4 class=none cpu=4 mem=8GiB net=1GB/s", "unknown class 'none'");
    ASK_ERR("processor p4 class=std cpu=4 mem=8GiB net=1GB/s id=2",
            "id 2 is already the id of 'p2'");
    ASK_ERR("processor p3 class=std cpu=4 mem=8GiB net=1GB/s id=9", "'p3' already exists");
    ASK_ERR("workload w4 on=p1 group=g", "already holds 'w1' of replica group 'g'");
    ASK_ERR("workload w4 on=p9", "unknown processor 'p9'");
    ASK_ERR("workload w4 on=p1 mem=-1GiB", "request:1:23: mem= must not be negative");
    ASK_ERR("depends w1 on w3, nope", "unknown workload 'nope'");    /* w3 -> w1 undone */
    ASK_ERR("depends w1 on w3, w2", "'w1' already depends on 'w2'"); /* w3 -> w1 undone */
    ASK_ERR("remove processor p1", "still hosts 1 workload(s) (w1)");
    ASK_ERR("remove workload nope", "no workload 'nope'");
    ASK_ERR("remove depends w1 on w3", "does not depend");
    ASK_ERR("remove class std", "still the class of 3 processor(s)");
    ASK_ERR("remove thing x", "cannot remove 'thing'");
    ASK_ERR("launch rockets", "unknown declaration 'launch'");
    ASK_ERR("show nothing-here", "no processor, workload or class 'nothing-here'");
    CHECK(sql_int(store, "SELECT count(*) FROM processors") == 3);
    CHECK(sql_int(store, "SELECT count(*) FROM workloads") == 3);
    CHECK(sql_int(store, "SELECT count(*) FROM dependencies") == 3);

    const char *a = ask(&c, "show w3");
    CHECKF(!strncmp(a, "ok\nworkload w3 on=p3 cpu=1", 26) && strstr(a, "depends on (2): w1 w2"),
           "%s", a);
    a = ask(&c, "show p3");
    CHECKF(strstr(a, "id=3 agent=tcp://127.0.0.1:1 alive=yes") && strstr(a, "workloads (1): w3"),
           "%s", a);
    a = ask(&c, "show");
    CHECKF(strstr(a, "3 processor(s), 3 workload(s), 3 dependencies") &&
               strstr(a, "class std threshold 0.999000"),
           "%s", a);

    ASK_OK("remove depends w3 on w1, w2");
    ASK_OK("remove workload w3");
    ASK_OK("remove processor p3");
    ASK_OK("remove class gpu");
    CHECK(sql_int(store, "SELECT count(*) FROM processors") == 2);
    CHECK(sql_int(store, "SELECT count(*) FROM dependencies") == 1);
    ASK_OK("remove flow w2 -> w1");
    CHECK(sql_int(store, "SELECT count(*) FROM dependencies") == 0);
    /* Slots are reused. */
    ASK_OK("processor p3 class=std cpu=4 mem=8GiB net=1GB/s");
    ASK_OK("workload w3 on=p3 group=g");
    ps_manage_stats st;
    for (int i = 0; i < 5000; i++) { /* the counters are published after each answer */
        ps_manage_get_stats(m, &st);
        if (st.control_ok + st.control_errors == 30) break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    CHECKF(st.control_ok == 15 && st.control_errors == 15 && st.alive == 3 && st.never_seen == 3,
           "ok %llu, errors %llu, alive %u, never seen %u", (unsigned long long)st.control_ok,
           (unsigned long long)st.control_errors, st.alive, st.never_seen);
    ps_manage_stop(m);

    /* A restart loads what the control socket changed; the file is the same: accepted. */
    m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m != NULL, "%s", err);
    a = ask(&c, "show p3");
    CHECKF(strstr(a, "workloads (1): w3"), "%s", a);
    ps_manage_stop(m);
}

static void test_workload_file(void)
{
    char store[400], wl[400];
    snprintf(store, sizeof store, "%s", in_dir("wl.db"));
    snprintf(wl, sizeof wl, "%s", in_dir("wl.workloads"));
    write_text(wl, CLUSTER);
    ps_manage_config c;
    config_for(&c, store, wl);
    ps_manage *m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m != NULL, "%s", err);
    ps_manage_stop(m);
    /* Again with the same file, and without one: the store's cluster. */
    m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m != NULL, "%s", err);
    ps_manage_stop(m);
    c.workloads[0] = '\0';
    m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m != NULL, "%s", err);
    ps_manage_stop(m);
    /* A changed file: refused, unless --reload-workloads replaces the cluster. */
    write_text(wl, "class std\nprocessor solo class=std cpu=8 mem=32GiB net=1GB/s\n");
    config_for(&c, store, wl);
    m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m == NULL && strstr(err, "differs from the workload file") &&
               strstr(err, "--reload-workloads"),
           "%s", m ? "started" : err);
    ps_manage_stop(m);
    CHECK(sql_int(store, "SELECT count(*) FROM processors") == 2);
    c.reload_workloads = 1;
    m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m != NULL, "%s", err);
    ps_manage_stop(m);
    CHECK(sql_int(store, "SELECT count(*) FROM processors") == 1);
    CHECK(sql_int(store, "SELECT count(*) FROM workloads") == 0);
    /* A bad file, a missing one: refused with the reason. */
    write_text(wl, "class std\nprocessor x class=nope cpu=1 mem=1GiB net=1GB/s\n");
    m = ps_manage_start(&c, err, sizeof err);
    CHECK(m == NULL && strstr(err, "wl.workloads:2:19: unknown class 'nope'"));
    snprintf(c.workloads, sizeof c.workloads, "%s", in_dir("missing.workloads"));
    m = ps_manage_start(&c, err, sizeof err);
    CHECK(m == NULL && strstr(err, "missing.workloads: cannot open"));
    /* Two managers cannot share a control socket (nor, so, a working directory's store). */
    config_for(&c, store, NULL);
    m = ps_manage_start(&c, err, sizeof err);
    CHECKF(m != NULL, "%s", err);
    ps_manage *m2 = ps_manage_start(&c, err, sizeof err);
    CHECK(m2 == NULL && strstr(err, "control socket"));
    ps_manage_stop(m2);
    ps_manage_stop(m);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(in_dir(e->d_name));
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/preshift-manage-units-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_config();
    test_utilization();
    test_failover_rule();
    test_control();
    test_workload_file();
    if (!test_failures) remove_dir();
    return test_finish("test_manage_units");
}
