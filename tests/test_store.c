/*
 * test_store.c - the manager's SQLite store (server/store.h).
 *
 * A new store is WAL, marked as preshift's and at the current schema. The
 * example cluster saved and loaded back (after a reopen) is the same
 * cluster; a replace that fails half way leaves the previous one. The
 * registration calls refuse what the cluster model refuses, with names in
 * the message: a processor that still hosts workloads cannot be removed.
 * Transfer ids are idempotent, open transfers survive a reopen and come
 * back into the loaded cluster, commits move the workload in the same
 * transaction, outcomes are recorded once. Files that are not stores, and
 * stores from a newer schema, are refused and left as they were. A writer
 * killed mid-stream leaves a consistent store.
 */
#define _POSIX_C_SOURCE 200809L

#include "kernels/kernels.h"
#include "server/store.h"
#include "server/workload_file.h"
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char err[512];
static char dir[64];

static int err_has(const char *s)
{
    return strstr(err, s) != NULL;
}

static const char *in_dir(const char *name)
{
    static char path[4][400];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        unlink(in_dir(e->d_name));
    }
    closedir(d);
    rmdir(dir);
}

/* One integer from a query on a separate, plain SQLite connection (an operator's view). */
static long long sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -999;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
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

static void sql_text(const char *path, const char *sql, char *out, size_t len)
{
    sqlite3 *db = NULL;
    out[0] = '\0';
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
                snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
}

static int sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static int load_example(ps_cluster *c, ps_names *n)
{
    int rc = ps_workload_load_file(PRESHIFT_SOURCE_DIR "/docs/examples/cluster.workloads", NULL, c,
                                   n, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    return rc;
}

static ps_store *open_store(const char *path, int flags)
{
    ps_store *s = NULL;
    int rc = ps_store_open(path, flags, &s, err, sizeof err);
    CHECKF(rc == PS_OK && s, "%s", err);
    return s;
}

/* A store holding the example cluster. */
static ps_store *example_store(const char *path)
{
    ps_store *s = open_store(path, PS_STORE_CREATE);
    ps_cluster c;
    ps_names n;
    if (!s || load_example(&c, &n)) return s;
    CHECKF(ps_store_replace_cluster(s, &c, &n, err, sizeof err) == PS_OK, "%s", err);
    ps_cluster_free(&c);
    ps_names_free(&n);
    return s;
}

static int has_edge(const ps_cluster *c, uint32_t a, uint32_t b)
{
    uint32_t k;
    const uint32_t *out = ps_cluster_dependents(c, a, &k);
    for (uint32_t i = 0; i < k; i++)
        if (out[i] == b) return 1;
    return 0;
}

/* Two clusters with the same names hold the same things. */
static void check_same(const ps_cluster *a, const ps_names *na, const ps_cluster *b,
                       const ps_names *nb)
{
    CHECK(a->n_processors == b->n_processors && a->n_workloads == b->n_workloads);
    CHECK(a->n_edges == b->n_edges && a->n_classes == b->n_classes);
    for (uint32_t p = 0; p < a->max_processors; p++) {
        if (!a->proc[p].present) continue;
        uint32_t q = ps_name_find(&nb->processors, ps_name_of(&na->processors, p));
        CHECK(q == p); /* slots follow the order of registration */
        if (q == PS_NONE) continue;
        const ps_processor *x = &a->proc[p], *y = &b->proc[q];
        CHECK(!strcmp(ps_name_of(&na->classes, x->cls), ps_name_of(&nb->classes, y->cls)));
        CHECK(x->cpu_capacity == y->cpu_capacity && x->mem_capacity == y->mem_capacity);
        CHECK(x->net_bandwidth == y->net_bandwidth && x->alive == y->alive);
    }
    for (uint32_t w = 0; w < a->max_workloads; w++) {
        if (!a->work[w].present) continue;
        uint32_t v = ps_name_find(&nb->workloads, ps_name_of(&na->workloads, w));
        CHECK(v == w);
        if (v == PS_NONE) continue;
        const ps_workload *x = &a->work[w], *y = &b->work[v];
        CHECK(!strcmp(ps_name_of(&na->processors, x->proc), ps_name_of(&nb->processors, y->proc)));
        CHECK(x->cpu == y->cpu && x->mem == y->mem && x->state_bytes == y->state_bytes);
        CHECK(x->criticality == y->criticality && (x->group == 0) == (y->group == 0));
        if (x->group && y->group)
            CHECK(!strcmp(ps_name_of(&na->groups, x->group), ps_name_of(&nb->groups, y->group)));
        uint32_t k;
        const uint32_t *out = ps_cluster_dependents(a, w, &k);
        for (uint32_t i = 0; i < k; i++) {
            uint32_t d = ps_name_find(&nb->workloads, ps_name_of(&na->workloads, out[i]));
            CHECK(d != PS_NONE && has_edge(b, v, d));
        }
    }
}

static void test_create(void)
{
    const char *path = in_dir("new.db");
    ps_store *s = NULL;
    CHECK(ps_store_open(path, 0, &s, err, sizeof err) == PS_STORE_ENOTSTORE && !s);
    CHECKF(err_has("new.db: no store there"), "%s", err);
    s = open_store(path, PS_STORE_CREATE);
    if (!s) return;
    CHECK(ps_store_schema_version(s) == PS_STORE_SCHEMA_VERSION);
    ps_store_close(s);
    /* Reopened without CREATE; the file says what it is. */
    s = open_store(path, 0);
    CHECK(s && ps_store_schema_version(s) == PS_STORE_SCHEMA_VERSION);
    ps_store_close(s);
    char mode[16];
    sql_text(path, "PRAGMA journal_mode", mode, sizeof mode);
    CHECKF(!strcmp(mode, "wal"), "%s", mode);
    CHECK(sql_int(path, "PRAGMA application_id") == PS_STORE_APPLICATION_ID);
    CHECK(sql_int(path, "SELECT max(version) FROM schema_migrations") == PS_STORE_SCHEMA_VERSION);
    CHECK(sql_int(path, "SELECT count(*) FROM processors") == 0);
}

static void test_round_trip(void)
{
    const char *path = in_dir("trip.db");
    ps_store *s = example_store(path);
    if (!s) return;
    ps_store_close(s);
    CHECK(sql_int(path, "SELECT count(*) FROM workloads") == 13);
    CHECK(sql_int(path, "SELECT count(*) FROM dependencies") == 16);

    ps_cluster a, b;
    ps_names na, nb;
    if (load_example(&a, &na)) return;
    s = open_store(path, 0);
    if (!s) return;
    int rc = ps_store_load_cluster(s, NULL, &b, &nb, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    if (rc == PS_OK) {
        CHECKF(ps_cluster_check(&b, err, sizeof err) == PS_OK, "%s", err);
        check_same(&a, &na, &b, &nb);
        check_same(&b, &nb, &a, &na);
        ps_cluster_free(&b);
        ps_names_free(&nb);
    }

    /* Room for later additions. */
    ps_load_room room = {8, 100, 200, 10};
    CHECKF(ps_store_load_cluster(s, &room, &b, &nb, err, sizeof err) == PS_OK, "%s", err);
    CHECK(b.max_processors == 100 && b.max_workloads == 200 && b.n_classes == 8);
    CHECK(b.max_groups == 10 && b.n_workloads == 13);
    ps_cluster_free(&b);
    ps_names_free(&nb);

    /* A replace that fails half way (a workload without a name) changes nothing. */
    ps_name_remove(&na.workloads, 7);
    rc = ps_store_replace_cluster(s, &a, &na, err, sizeof err);
    CHECK(rc == PS_EINVAL);
    CHECKF(err_has("workload slot 7 has no name"), "%s", err);
    ps_store_close(s);
    CHECK(sql_int(path, "SELECT count(*) FROM workloads") == 13);
    CHECK(sql_int(path, "SELECT count(*) FROM processors") == 6);
    CHECK(sql_int(path, "SELECT count(*) FROM dependencies") == 16);
    ps_cluster_free(&a);
    ps_names_free(&na);

    /* A replace that succeeds replaces everything. */
    static const char small[] = "class k\nprocessor x class=k cpu=1 mem=1GiB net=1GB/s\n"
                                "workload y on=x\n";
    CHECK(ps_workload_load_string(small, strlen(small), "small", NULL, &a, &na, err, sizeof err) ==
          PS_OK);
    s = open_store(path, 0);
    CHECKF(ps_store_replace_cluster(s, &a, &na, err, sizeof err) == PS_OK, "%s", err);
    ps_store_close(s);
    CHECK(sql_int(path, "SELECT count(*) FROM workloads") == 1);
    CHECK(sql_int(path, "SELECT count(*) FROM classes") == 1);
    CHECK(sql_int(path, "SELECT count(*) FROM dependencies") == 0);
    ps_cluster_free(&a);
    ps_names_free(&na);
}

static ps_store_processor proc_rec(const char *name, const char *cls)
{
    ps_store_processor p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.cls, sizeof p.cls, "%s", cls);
    p.cpu_capacity = 8;
    p.mem_capacity = 64e9;
    p.net_bandwidth = 1.25e9;
    p.alive = 1;
    p.id = ps_processor_default_id(name);
    return p;
}

static ps_store_workload work_rec(const char *name, const char *proc, const char *group)
{
    ps_store_workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "%s", name);
    snprintf(w.processor, sizeof w.processor, "%s", proc);
    snprintf(w.group, sizeof w.group, "%s", group);
    w.cpu = 1;
    w.mem = 1e9;
    w.state_bytes = 5e8;
    w.criticality = 2;
    return w;
}

static void test_registration(void)
{
    const char *path = in_dir("reg.db");
    ps_store *s = open_store(path, PS_STORE_CREATE);
    if (!s) return;
    ps_store_processor p = proc_rec("p1", "std");
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_STORE_ENOTFOUND);
    CHECKF(err_has("processor 'p1': no class 'std'"), "%s", err);
    CHECK(ps_store_add_class(s, "std", err, sizeof err) == PS_OK);
    CHECK(ps_store_add_class(s, "std", err, sizeof err) == PS_STORE_EEXISTS);
    CHECK(ps_store_add_class(s, "no good", err, sizeof err) == PS_EINVAL);
    CHECKF(err_has("bad class name"), "%s", err);
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_OK);
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_STORE_EEXISTS);
    CHECKF(err_has("processor 'p1' already exists"), "%s", err);
    p = proc_rec("p2", "std");
    p.mem_capacity = -1;
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_EINVAL);
    p = proc_rec("p2", "std");
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_OK);
    p = proc_rec("p3", "std");
    p.alive = 0;
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_OK);
    ps_store_processor got;
    CHECK(ps_store_get_processor(s, "p3", &got, err, sizeof err) == PS_OK);
    CHECK(!got.alive && got.mem_capacity == 64e9 && !strcmp(got.cls, "std"));
    CHECK(got.id == ps_processor_default_id("p3") && got.agent[0] == 0);
    CHECK(ps_store_get_processor(s, "p9", &got, err, sizeof err) == PS_STORE_ENOTFOUND);
    /* Heartbeat ids: any uint64, each processor its own; agents: SP addresses. */
    p = proc_rec("p4", "std");
    p.id = ps_processor_default_id("p2");
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_STORE_EEXISTS);
    char want[128];
    snprintf(want, sizeof want, "processor 'p4': id %llu is already the id of 'p2'",
             (unsigned long long)p.id);
    CHECKF(err_has(want), "%s", err);
    p.id = UINT64_MAX;
    snprintf(p.agent, sizeof p.agent, "udp://x:1");
    CHECK(ps_store_add_processor(s, &p, err, sizeof err) == PS_EINVAL);
    CHECKF(err_has("agent must be a tcp://"), "%s", err);
    snprintf(p.agent, sizeof p.agent, "tcp://127.0.0.1:5560");
    CHECKF(ps_store_add_processor(s, &p, err, sizeof err) == PS_OK, "%s", err);
    CHECK(ps_store_get_processor(s, "p4", &got, err, sizeof err) == PS_OK);
    CHECK(got.id == UINT64_MAX && !strcmp(got.agent, "tcp://127.0.0.1:5560"));
    CHECK(sql_int(path, "SELECT heartbeat_id FROM processors WHERE name = 'p4'") == -1);
    CHECK(ps_store_remove_processor(s, "p4", err, sizeof err) == PS_OK);

    ps_store_workload w = work_rec("a", "p9", "");
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_STORE_ENOTFOUND);
    CHECKF(err_has("workload 'a': no processor 'p9'"), "%s", err);
    w = work_rec("a", "p3", "");
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("processor 'p3' is not alive"), "%s", err);
    w = work_rec("a", "p1", "g");
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_OK);
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_STORE_EEXISTS);
    w = work_rec("b", "p1", "g");
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("processor 'p1' already holds 'a' of replica group 'g'"), "%s", err);
    w = work_rec("b", "p2", "g");
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_OK);
    w = work_rec("c", "p1", "");
    w.criticality = NAN;
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_EINVAL);
    w.criticality = 1;
    CHECK(ps_store_add_workload(s, &w, err, sizeof err) == PS_OK);
    ps_store_workload gw;
    CHECK(ps_store_get_workload(s, "b", &gw, err, sizeof err) == PS_OK);
    CHECK(!strcmp(gw.processor, "p2") && !strcmp(gw.group, "g") && gw.state_bytes == 5e8);
    CHECK(ps_store_get_workload(s, "c", &gw, err, sizeof err) == PS_OK && gw.group[0] == 0);

    /* Dependencies. */
    CHECK(ps_store_add_dependency(s, "a", "c", err, sizeof err) == PS_OK);
    CHECK(ps_store_add_dependency(s, "b", "c", err, sizeof err) == PS_OK);
    CHECK(ps_store_add_dependency(s, "a", "c", err, sizeof err) == PS_STORE_EEXISTS);
    CHECKF(err_has("'c' already depends on 'a'"), "%s", err);
    CHECK(ps_store_add_dependency(s, "c", "c", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECK(ps_store_add_dependency(s, "a", "zz", err, sizeof err) == PS_STORE_ENOTFOUND);
    CHECKF(err_has("no workload 'zz'"), "%s", err);
    CHECK(ps_store_add_dependency(s, "c", "a", err, sizeof err) == PS_OK); /* a cycle is fine */
    CHECK(ps_store_remove_dependency(s, "c", "a", err, sizeof err) == PS_OK);
    CHECK(ps_store_remove_dependency(s, "c", "a", err, sizeof err) == PS_STORE_ENOTFOUND);

    /* Moves: not to a dead processor, not beside a replica. */
    CHECK(ps_store_move_workload(s, "a", "p3", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("target processor 'p3' is not alive"), "%s", err);
    CHECK(ps_store_move_workload(s, "a", "p2", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("'b' of replica group 'g'"), "%s", err);
    CHECK(ps_store_move_workload(s, "a", "p1", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECK(ps_store_set_alive(s, "p3", 1, err, sizeof err) == PS_OK);
    CHECK(ps_store_move_workload(s, "c", "p3", err, sizeof err) == PS_OK);
    CHECK(ps_store_move_workload(s, "c", "p1", err, sizeof err) == PS_OK);

    /* A processor that hosts workloads, a class in use: refused, with names. */
    CHECK(ps_store_remove_processor(s, "p1", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("processor 'p1' still hosts 2 workload(s) (a, c)"), "%s", err);
    CHECK(ps_store_remove_class(s, "std", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("class 'std' is still the class of 3 processor(s)"), "%s", err);
    CHECK(ps_store_remove_processor(s, "nope", err, sizeof err) == PS_STORE_ENOTFOUND);

    /* The loaded cluster agrees. */
    ps_cluster c;
    ps_names n;
    CHECKF(ps_store_load_cluster(s, NULL, &c, &n, err, sizeof err) == PS_OK, "%s", err);
    CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "%s", err);
    CHECK(c.n_processors == 3 && c.n_workloads == 3 && c.n_edges == 2);
    CHECK(c.work[ps_name_find(&n.workloads, "c")].proc == ps_name_find(&n.processors, "p1"));
    ps_cluster_free(&c);
    ps_names_free(&n);

    /* Removing a workload drops its dependencies; then the processor can go. */
    CHECK(ps_store_remove_workload(s, "c", err, sizeof err) == PS_OK);
    CHECK(ps_store_remove_workload(s, "c", err, sizeof err) == PS_STORE_ENOTFOUND);
    CHECK(ps_store_remove_processor(s, "p1", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("still hosts 1 workload(s) (a)"), "%s", err);
    CHECK(ps_store_remove_workload(s, "a", err, sizeof err) == PS_OK);
    CHECK(ps_store_remove_processor(s, "p1", err, sizeof err) == PS_OK);
    ps_store_close(s);
    CHECK(sql_int(path, "SELECT count(*) FROM dependencies") == 0);
    CHECK(sql_int(path, "SELECT count(*) FROM processors") == 2);
    /* The schema holds the rule too, for anyone writing with sqlite3 directly. */
    CHECK(sql_exec(path, "PRAGMA foreign_keys = ON; DELETE FROM processors WHERE name = 'p2'") !=
          SQLITE_OK);
}

static ps_store_transfer transfer(int64_t id, const char *w, const char *dest, int64_t at)
{
    ps_store_transfer t;
    memset(&t, 0, sizeof t);
    t.id = id;
    snprintf(t.workload, sizeof t.workload, "%s", w);
    snprintf(t.destination, sizeof t.destination, "%s", dest);
    t.tick = id * 10;
    t.pfp = 0.93;
    t.threshold = 0.9;
    t.expected_seconds = NAN;
    snprintf(t.reason, sizeof t.reason, "ratio 16.7 = risk 217.6 / disruption 13 (%lld)",
             (long long)id);
    t.started_ms = at;
    return t;
}

static void test_transfers(void)
{
    const char *path = in_dir("tr.db");
    ps_store *s = example_store(path);
    if (!s) return;
    int64_t next = 0;
    CHECK(ps_store_next_transfer_id(s, &next, err, sizeof err) == PS_OK && next == 1);
    ps_store_transfer t = transfer(7, "ingest", "spare", 1000000);
    CHECKF(ps_store_begin_transfer(s, &t, err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(t.source, "rack1-a") && t.state == PS_STORE_PREPARED);
    CHECK(t.started_ms == 1000000 && t.finished_ms == 0 && t.outcome == PS_STORE_NO_OUTCOME);
    CHECK(t.pfp == 0.93 && isnan(t.expected_seconds) && t.tick == 70);

    /* The same id again: a no-op that returns the first record. */
    ps_store_transfer again = transfer(7, "ingest", "spare", 5000000);
    snprintf(again.reason, sizeof again.reason, "a retry");
    CHECK(ps_store_begin_transfer(s, &again, err, sizeof err) == 1);
    CHECK(again.started_ms == 1000000 && !strcmp(again.reason, t.reason));
    CHECK(sql_int(path, "SELECT count(*) FROM transfers") == 1);
    /* The same id for another move, another id for the same workload: refused. */
    again = transfer(7, "ingest", "rack2-a", 0);
    CHECK(ps_store_begin_transfer(s, &again, err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("transfer 7 is already recorded for 'ingest' -> 'spare'"), "%s", err);
    again = transfer(8, "ingest", "rack2-a", 0);
    CHECK(ps_store_begin_transfer(s, &again, err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("already has transfer 7 in flight to 'spare'"), "%s", err);
    /* Placement rules: replicas apart, counting transfers in flight; no move home. */
    again = transfer(9, "db-2", "rack1-a", 0);
    CHECK(ps_store_begin_transfer(s, &again, err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("'db-1' of replica group 'db'"), "%s", err);
    again = transfer(10, "db-2", "spare", 2000000);
    CHECKF(ps_store_begin_transfer(s, &again, err, sizeof err) == 0, "%s", err);
    again = transfer(11, "db-3", "spare", 0);
    CHECK(ps_store_begin_transfer(s, &again, err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("'db-2' of replica group 'db'"), "%s", err);
    again = transfer(11, "api", "rack2-a", 0);
    CHECK(ps_store_begin_transfer(s, &again, err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("already on 'rack2-a'"), "%s", err);
    again = transfer(0, "api", "spare", 0);
    CHECK(ps_store_begin_transfer(s, &again, err, sizeof err) == PS_EINVAL);
    /* While in flight: no outcome, no removing the destination, no direct move. */
    CHECK(ps_store_record_outcome(s, 7, PS_OUTCOME_AVERTED, 0, err, sizeof err) ==
          PS_STORE_ECONFLICT);
    CHECK(ps_store_remove_processor(s, "spare", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECKF(err_has("receives 2 transfer(s) in flight"), "%s", err);
    CHECK(ps_store_move_workload(s, "ingest", "rack2-a", err, sizeof err) == PS_STORE_ECONFLICT);
    CHECK(ps_store_replace_cluster(s, &(ps_cluster){0}, &(ps_names){0}, err, sizeof err) ==
          PS_STORE_ECONFLICT);
    CHECKF(err_has("2 transfer(s) are open"), "%s", err);
    ps_store_close(s);

    /* After a restart: the open transfers, and a cluster with them in flight. */
    s = open_store(path, 0);
    if (!s) return;
    ps_store_transfer_list open;
    CHECKF(ps_store_open_transfers(s, &open, err, sizeof err) == PS_OK, "%s", err);
    CHECK(open.n == 2);
    if (open.n == 2) {
        CHECK(open.items[0].id == 7 && open.items[1].id == 10);
        CHECK(!strcmp(open.items[1].workload, "db-2") && !strcmp(open.items[1].source, "rack2-a"));
        CHECK(!strcmp(open.items[1].destination, "spare") && open.items[1].threshold == 0.9);
    }
    ps_store_transfer_list_free(&open);
    CHECK(ps_store_next_transfer_id(s, &next, err, sizeof err) == PS_OK && next == 11);
    ps_cluster c;
    ps_names n;
    CHECKF(ps_store_load_cluster(s, NULL, &c, &n, err, sizeof err) == PS_OK, "%s", err);
    CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "%s", err);
    uint32_t spare = ps_name_find(&n.processors, "spare");
    CHECK(c.work[ps_name_find(&n.workloads, "ingest")].dest == spare);
    CHECK(c.work[ps_name_find(&n.workloads, "ingest")].proc ==
          ps_name_find(&n.processors, "rack1-a"));
    CHECK(c.proc[spare].inbound == 2);
    ps_cluster_free(&c);
    ps_names_free(&n);

    /* Commit moves the workload; finishing again is a no-op; the other way is refused. */
    ps_store_transfer done;
    CHECKF(ps_store_finish_transfer(s, 7, PS_STORE_COMMITTED, NULL, 1060000, &done, err,
                                    sizeof err) == 0,
           "%s", err);
    CHECK(done.state == PS_STORE_COMMITTED && done.finished_ms == 1060000);
    ps_store_workload w;
    CHECK(ps_store_get_workload(s, "ingest", &w, err, sizeof err) == PS_OK);
    CHECK(!strcmp(w.processor, "spare"));
    CHECK(ps_store_finish_transfer(s, 7, PS_STORE_COMMITTED, NULL, 0, &done, err, sizeof err) == 1);
    CHECK(done.finished_ms == 1060000);
    CHECK(ps_store_finish_transfer(s, 7, PS_STORE_ROLLED_BACK, NULL, 0, NULL, err, sizeof err) ==
          PS_STORE_ECONFLICT);
    CHECKF(err_has("transfer 7 already ended committed"), "%s", err);
    CHECK(ps_store_finish_transfer(s, 99, PS_STORE_COMMITTED, NULL, 0, NULL, err, sizeof err) ==
          PS_STORE_ENOTFOUND);
    CHECK(ps_store_finish_transfer(s, 10, PS_STORE_ROLLED_BACK, "target stopped answering", 2030000,
                                   NULL, err, sizeof err) == 0);
    CHECK(ps_store_get_workload(s, "db-2", &w, err, sizeof err) == PS_OK);
    CHECK(!strcmp(w.processor, "rack2-a"));

    /* Outcomes: once each. */
    CHECK(ps_store_record_outcome(s, 7, PS_OUTCOME_AVERTED, 1900000, err, sizeof err) == 0);
    CHECK(ps_store_record_outcome(s, 7, PS_OUTCOME_AVERTED, 0, err, sizeof err) == 1);
    CHECK(ps_store_record_outcome(s, 7, PS_OUTCOME_UNNECESSARY, 0, err, sizeof err) ==
          PS_STORE_ECONFLICT);
    CHECKF(err_has("already turned out averted"), "%s", err);
    CHECK(ps_store_record_outcome(s, 10, PS_OUTCOME_MISSED, 0, err, sizeof err) == PS_EINVAL);
    CHECK(ps_store_record_outcome(s, 10, PS_OUTCOME_DISRUPTIVE, 2100000, err, sizeof err) == 0);
    ps_store_transfer got;
    CHECK(ps_store_get_transfer(s, 10, &got, err, sizeof err) == PS_OK);
    CHECK(got.state == PS_STORE_ROLLED_BACK && !strcmp(got.note, "target stopped answering"));
    CHECK(got.outcome == PS_OUTCOME_DISRUPTIVE && got.outcome_ms == 2100000);

    /* Removing a workload with a transfer in flight closes the transfer. */
    t = transfer(12, "reports", "rack1-b", 3000000);
    t.kind = PS_STORE_FAILOVER;
    CHECK(ps_store_begin_transfer(s, &t, err, sizeof err) == 0);
    CHECK(ps_store_remove_workload(s, "reports", err, sizeof err) == PS_OK);
    CHECK(ps_store_get_transfer(s, 12, &got, err, sizeof err) == PS_OK);
    CHECK(got.state == PS_STORE_ROLLED_BACK && !strcmp(got.note, "workload removed"));
    CHECK(got.kind == PS_STORE_FAILOVER && !strcmp(ps_transfer_kind_name(got.kind), "failover"));

    /* What moved, when and why. */
    ps_store_transfer_list l;
    CHECK(ps_store_query_transfers(s, NULL, &l, err, sizeof err) == PS_OK && l.n == 3);
    if (l.n == 3) CHECK(l.items[0].id == 12 && l.items[1].id == 10 && l.items[2].id == 7);
    ps_store_transfer_list_free(&l);
    ps_store_transfer_query q = {.since_ms = 1500000, .until_ms = 3000000};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_OK && l.n == 1);
    if (l.n == 1) CHECK(l.items[0].id == 10 && strstr(l.items[0].reason, "disruption 13"));
    ps_store_transfer_list_free(&l);
    q = (ps_store_transfer_query){.processor = "spare"};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_OK && l.n == 2);
    ps_store_transfer_list_free(&l);
    q = (ps_store_transfer_query){.workload = "ingest", .state = PS_STORE_COMMITTED + 1};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_OK && l.n == 1);
    ps_store_transfer_list_free(&l);
    q = (ps_store_transfer_query){.limit = 2};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_OK && l.n == 2);
    ps_store_transfer_list_free(&l);
    /* Shifts still waiting for their outcome; failovers. */
    q = (ps_store_transfer_query){.kind = PS_STORE_SHIFT + 1, .undecided = 1};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_OK && l.n == 0);
    ps_store_transfer_list_free(&l);
    q = (ps_store_transfer_query){.kind = PS_STORE_FAILOVER + 1, .undecided = 1};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_OK && l.n == 1);
    if (l.n == 1) CHECK(l.items[0].id == 12);
    ps_store_transfer_list_free(&l);
    q = (ps_store_transfer_query){.kind = 3};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_EINVAL);
    CHECK(ps_store_open_transfers(s, &l, err, sizeof err) == PS_OK && l.n == 0);
    ps_store_transfer_list_free(&l);
    ps_store_close(s);
    /* The operator's query of docs/store.md. */
    CHECK(sql_int(path, "SELECT count(*) FROM transfers WHERE started_ms >= 1000000 AND "
                        "outcome = 'averted' AND state = 'committed'") == 1);
}

static void test_refused(void)
{
    /* Not SQLite at all. */
    const char *text = in_dir("notes.txt");
    FILE *f = fopen(text, "w");
    CHECK(f != NULL);
    if (!f) return;
    for (int i = 0; i < 200; i++)
        fprintf(f, "this is not a database, line %d\n", i);
    fclose(f);
    ps_store *s = NULL;
    CHECK(ps_store_open(text, PS_STORE_CREATE, &s, err, sizeof err) == PS_STORE_ENOTSTORE && !s);
    CHECKF(err_has("notes.txt is not a preshift store (not an SQLite database)"), "%s", err);

    /* Another application's database: refused, and left in its own journal mode. */
    const char *other = in_dir("other.db");
    CHECK(sql_exec(other, "CREATE TABLE t (x); INSERT INTO t VALUES (1)") == SQLITE_OK);
    CHECK(ps_store_open(other, PS_STORE_CREATE, &s, err, sizeof err) == PS_STORE_ENOTSTORE);
    CHECKF(err_has("other.db is an SQLite database but not a preshift store"), "%s", err);
    char mode[16];
    sql_text(other, "PRAGMA journal_mode", mode, sizeof mode);
    CHECKF(!strcmp(mode, "delete"), "%s", mode);

    /* An empty file: a store only when asked to create one. */
    const char *empty = in_dir("empty.db");
    f = fopen(empty, "w");
    if (f) fclose(f);
    CHECK(ps_store_open(empty, 0, &s, err, sizeof err) == PS_STORE_ENOTSTORE);
    CHECKF(err_has("empty database"), "%s", err);
    s = open_store(empty, PS_STORE_CREATE);
    ps_store_close(s);

    /* A directory. */
    CHECK(ps_store_open(dir, PS_STORE_CREATE, &s, err, sizeof err) == PS_STORE_ENOTSTORE);

    /* A store from a newer preshift. */
    const char *future = in_dir("future.db");
    s = open_store(future, PS_STORE_CREATE);
    ps_store_close(s);
    CHECK(sql_exec(future, "INSERT INTO schema_migrations VALUES (99, 0, 'from the future')") ==
          SQLITE_OK);
    CHECK(ps_store_open(future, 0, &s, err, sizeof err) == PS_STORE_EVERSION && !s);
    CHECKF(err_has("has schema version 99, newer than this preshift reads (2)"), "%s", err);
}

/*
 * A store of schema version 1 (made here by taking version 2's additions
 * away again) is migrated forward when opened: every processor gets its
 * default id, transfers are shifts, and nothing else changes.
 */
static void test_migration(void)
{
    const char *path = in_dir("v1.db");
    ps_store *s = example_store(path);
    if (!s) return;
    ps_store_transfer t = transfer(3, "ingest", "spare", 1000);
    CHECKF(ps_store_begin_transfer(s, &t, err, sizeof err) == 0, "%s", err);
    ps_store_close(s);
    int rc = sql_exec(path, "DROP INDEX processors_heartbeat_id; DROP TABLE meta;"
                            "ALTER TABLE processors DROP COLUMN heartbeat_id;"
                            "ALTER TABLE processors DROP COLUMN agent;"
                            "ALTER TABLE transfers DROP COLUMN kind;"
                            "DELETE FROM schema_migrations WHERE version = 2");
    CHECK(rc == SQLITE_OK);
    if (rc != SQLITE_OK) return;
    CHECK(sql_int(path, "SELECT max(version) FROM schema_migrations") == 1);
    s = open_store(path, 0);
    if (!s) return;
    CHECK(ps_store_schema_version(s) == 2);
    ps_store_processor p;
    CHECK(ps_store_get_processor(s, "rack2-b", &p, err, sizeof err) == PS_OK);
    CHECK(p.id == ps_processor_default_id("rack2-b") && p.agent[0] == 0);
    ps_store_transfer got;
    CHECK(ps_store_get_transfer(s, 3, &got, err, sizeof err) == PS_OK);
    CHECK(got.kind == PS_STORE_SHIFT && got.state == PS_STORE_PREPARED);
    ps_cluster c;
    ps_names n;
    CHECKF(ps_store_load_cluster(s, NULL, &c, &n, err, sizeof err) == PS_OK, "%s", err);
    uint32_t r = ps_name_find(&n.processors, "rack1-a");
    CHECK(ps_names_processor_id(&n, r) == ps_processor_default_id("rack1-a"));
    CHECK(c.work[ps_name_find(&n.workloads, "ingest")].dest ==
          ps_name_find(&n.processors, "spare"));
    ps_cluster_free(&c);
    ps_names_free(&n);
    ps_store_close(s);
    CHECK(sql_int(path, "SELECT count(*) FROM processors WHERE heartbeat_id IS NULL") == 0);
    /* The manager's notes, new in version 2. */
    s = open_store(path, 0);
    char v[64];
    CHECK(s && ps_store_get_meta(s, "workloads", v, sizeof v, err, sizeof err) == 1);
    CHECK(s && ps_store_set_meta(s, "workloads", "abc 12 x.workloads", err, sizeof err) == 0);
    CHECK(s && ps_store_set_meta(s, "workloads", "def 13 y.workloads", err, sizeof err) == 0);
    CHECK(s && ps_store_get_meta(s, "workloads", v, 8, err, sizeof err) == 0 &&
          !strcmp(v, "def 13 "));
    ps_store_close(s);
    CHECK(sql_int(path, "SELECT count(*) FROM schema_migrations") == 2);
    char ok[64];
    sql_text(path, "PRAGMA integrity_check", ok, sizeof ok);
    CHECKF(!strcmp(ok, "ok"), "%s", ok);
}

static void test_history(void)
{
    const char *path = in_dir("hist.db");
    ps_store *s = example_store(path);
    if (!s) return;
    ps_cluster c;
    ps_names n;
    CHECKF(ps_store_load_cluster(s, NULL, &c, &n, err, sizeof err) == PS_OK, "%s", err);
    ps_decision d[3];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 3; i++) {
        d[i].tick = 41;
        d[i].processor = ps_name_find(&n.processors, "rack1-a");
        d[i].pfp = 0.95;
        d[i].threshold = 0.9;
        d[i].held_ticks = 3;
        d[i].rank = (uint32_t)i + 1;
        d[i].target = PS_NONE;
        d[i].score.ratio = 10.0 / (i + 1);
    }
    d[0].reason = PS_DECIDE_MOVE;
    d[0].workload = ps_name_find(&n.workloads, "ingest");
    d[0].target = ps_name_find(&n.processors, "spare");
    d[1].reason = PS_DECIDE_WITHIN_BUDGET;
    d[1].workload = ps_name_find(&n.workloads, "gateway");
    d[2].reason = PS_DECIDE_NOT_WORTH;
    d[2].workload = ps_name_find(&n.workloads, "db-1");
    int64_t ids[3] = {7, 0, 0};
    CHECKF(ps_store_record_decisions(s, d, 3, &n, ids, 5000, err, sizeof err) == PS_OK, "%s", err);
    d[0].workload = 999;
    CHECK(ps_store_record_decisions(s, d, 3, &n, NULL, 0, err, sizeof err) == PS_EINVAL);

    ps_threshold_change ch[2];
    memset(ch, 0, sizeof ch);
    ch[0].time = 41;
    ch[0].cls = ps_name_find(&n.classes, "standard");
    ch[0].cause = PS_CAUSE_UNNECESSARY;
    ch[0].old_threshold = 0.9;
    ch[0].new_threshold = 0.908;
    ch[0].old_base = 2.197;
    ch[0].new_base = 2.297;
    ch[0].congestion = 1;
    ch[0].rate[PS_OUTCOME_UNNECESSARY] = 0.2;
    ch[1] = ch[0];
    ch[1].time = 42;
    ch[1].cause = PS_CAUSE_ENVIRONMENT;
    ch[1].old_threshold = 0.908;
    ch[1].new_threshold = 0.93;
    ch[1].env_offset = 0.3;
    ch[1].load = 0.78;
    CHECKF(ps_store_append_thresholds(s, ch, 2, &n, 5000, err, sizeof err) == PS_OK, "%s", err);
    ps_threshold_change last;
    CHECK(ps_store_latest_threshold(s, &n, ch[0].cls, &last, err, sizeof err) == 0);
    CHECK(last.time == 42 && last.cause == PS_CAUSE_ENVIRONMENT && last.new_threshold == 0.93);
    CHECK(last.new_base == 2.297 && last.rate[PS_OUTCOME_UNNECESSARY] == 0.2);
    CHECK(last.load == 0.78 && last.cls == ch[0].cls);
    CHECK(ps_store_latest_threshold(s, &n, ps_name_find(&n.classes, "highmem"), &last, err,
                                    sizeof err) == 1);
    ps_cluster_free(&c);
    ps_names_free(&n);
    ps_store_close(s);

    CHECK(sql_int(path, "SELECT count(*) FROM decisions") == 3);
    CHECK(sql_int(path, "SELECT transfer_id FROM decisions WHERE decision = 'move' AND "
                        "workload = 'ingest' AND target = 'spare'") == 7);
    char detail[512];
    sql_text(path, "SELECT detail FROM decisions WHERE workload = 'gateway'", detail,
             sizeof detail);
    CHECKF(strstr(detail, "within-budget") != NULL, "%s", detail);
    CHECK(sql_int(path, "SELECT count(*) FROM thresholds WHERE class = 'standard'") == 2);
    sql_text(path, "SELECT why FROM thresholds ORDER BY id LIMIT 1", detail, sizeof detail);
    CHECKF(strstr(detail, "unnecessary: threshold 0.9000 -> 0.9080") != NULL, "%s", detail);
}

/*
 * A writer killed at an arbitrary point: the store opens, passes SQLite's
 * integrity check, and the workload is where the last committed transfer
 * (and nothing else) put it.
 */
static void test_killed_writer(void)
{
    const char *path = in_dir("crash.db");
    ps_store *s = example_store(path);
    if (!s) return;
    ps_store_close(s);
    int fd[2];
    CHECK(pipe(fd) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        ps_store *cs = NULL;
        if (ps_store_open(path, 0, &cs, err, sizeof err)) _exit(3);
        const char *hosts[2] = {"spare", "rack1-b"};
        for (int64_t id = 1;; id++) {
            ps_store_transfer t = transfer(id, "parse", hosts[id % 2 ? 0 : 1], id);
            if (ps_store_begin_transfer(cs, &t, err, sizeof err) != 0) _exit(4);
            if (ps_store_finish_transfer(cs, id, PS_STORE_COMMITTED, NULL, id, NULL, err,
                                         sizeof err) != 0)
                _exit(5);
            if (id == 5 && write(fd[1], "r", 1) != 1) _exit(6);
        }
    }
    close(fd[1]);
    char ready = 0;
    CHECK(read(fd[0], &ready, 1) == 1 && ready == 'r');
    close(fd[0]);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECKF(WIFSIGNALED(status), "the writer exited by itself: %d", status);

    char ok[64];
    sql_text(path, "PRAGMA integrity_check", ok, sizeof ok);
    CHECKF(!strcmp(ok, "ok"), "%s", ok);
    s = open_store(path, 0);
    if (!s) return;
    ps_store_transfer_list l;
    ps_store_transfer_query q = {.workload = "parse", .state = PS_STORE_COMMITTED + 1, .limit = 1};
    CHECK(ps_store_query_transfers(s, &q, &l, err, sizeof err) == PS_OK && l.n == 1);
    ps_store_workload w;
    CHECK(ps_store_get_workload(s, "parse", &w, err, sizeof err) == PS_OK);
    if (l.n == 1) CHECKF(!strcmp(w.processor, l.items[0].destination), "%s", w.processor);
    long long committed = l.n == 1 ? l.items[0].id : 0;
    ps_store_transfer_list_free(&l);
    CHECK(committed >= 5);
    CHECK(ps_store_open_transfers(s, &l, err, sizeof err) == PS_OK && l.n <= 1);
    if (l.n == 1) {
        CHECK(l.items[0].id == committed + 1 && !strcmp(l.items[0].source, w.processor));
        CHECK(ps_store_finish_transfer(s, l.items[0].id, PS_STORE_ROLLED_BACK, "restart", 0, NULL,
                                       err, sizeof err) == 0);
    }
    ps_store_transfer_list_free(&l);
    ps_cluster c;
    ps_names n;
    CHECKF(ps_store_load_cluster(s, NULL, &c, &n, err, sizeof err) == PS_OK, "%s", err);
    CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "%s", err);
    ps_cluster_free(&c);
    ps_names_free(&n);
    ps_store_close(s);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/preshift-store-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_create();
    test_round_trip();
    test_registration();
    test_transfers();
    test_refused();
    test_migration();
    test_history();
    test_killed_writer();
    remove_dir();
    return test_finish("test_store");
}
