/*
 * sim_preshift.c - the preshift policy end to end in the simulation
 * (sim_preshift.h, docs/evaluation.md "The preshift policy end to end").
 *
 * One thread (the caller's) drives everything: the world, the heartbeats
 * (a REQ client of the scoring server) and the simulated agent's socket.
 * The server and the manager run their own threads, or processes; the
 * caller waits for them through the manager's counters (its /metrics when
 * it is a process):
 *
 *   settle: the manager has run exactly the passes the stream has given it
 *   (one per scored tick), every transfer it began has had its
 *   destination's prepare reach the agent (they are applied to the world
 *   in id order once all have), and every transfer it still has open is
 *   one whose prepare the agent holds for the world's copy.
 *
 * Nothing else moves once that holds: the manager has nothing to receive
 * but the next tick's records and the held answers, so what it decides
 * depends on the stream alone, not on the machine's speed.
 */
#include "sim_preshift.h"

#include "client.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "sim_cluster_file.h"
#include "sim_processes.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Stream time of tick 0, seconds since the epoch (any fixed value would do). */
#define T0 1700000000.0
/* Healthy scored ticks sent after the warm-up by default. */
#define DEFAULT_MARGIN 36

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

ps_sim_preshift_opts ps_sim_preshift_default_opts(void)
{
    ps_sim_preshift_opts o;
    memset(&o, 0, sizeof o);
    ps_serve_config_default(&o.serve);
    o.serve.warmup = 1000; /* 3.5 days of ASD's rows: a day left the EVT tail short */
    o.serve.quiet = 1;
    ps_manage_config_default(&o.manage);
    o.manage.cpu_metric = o.manage.mem_metric = PS_MANAGE_NO_METRIC;
    o.manage.n_net_metric = 0;
    o.manage.quiet = 1;
    o.failure_timeout_ticks = -1;
    o.retry_backoff_ticks = -1;
    o.barrier_timeout = 600;
    o.class_per_entity = 1; /* docs/evaluation.md, "What the runs show": per-kind thresholds */
    return o;
}

void ps_sim_preshift_report_free(ps_sim_preshift_report *r)
{
    if (!r) return;
    free(r->classes);
    free(r->thresholds);
    memset(r, 0, sizeof *r);
}

/* ---- one run ---- */

typedef struct run {
    const ps_sim_scenario *sc;
    ps_sim_preshift_opts o;
    ps_sim_cluster_opts co;
    char dir[256];
    int dir_made;
    char workloads[320], store[320], listen[320], publish[320], agent_url[320], server_http[64],
        manager_http[64];
    ps_serve *srv; /* in-process, or */
    ps_manage *mgr;
    ps_sim_processes *procs; /* `preshift serve` and `preshift manage` as processes */
    ps_client *cl;
    ps_sim_agent *ag;
    ps_sim_world w;
    int world_ok;
    int64_t passes; /* the manager's passes the stream has caused so far */
    uint32_t history, K;
    uint64_t *ids, *seqs;
    double *ts;
    float *x;
    double last_progress;
    double sec_ends, sec_scoring, sec_pass;
    int stop;         /* the progress function asked to stop */
    uint32_t ran;     /* ticks run */
    ps_sim_live live; /* the highest PFPs of the last tick, kept by send_tick */
} run;

static int ipc_path(char *out, size_t len, const char *dir, const char *name, char *err,
                    size_t errlen)
{
    /* A Unix socket path holds at most 107 bytes. */
    if (strlen(dir) + strlen(name) + 2 > 100)
        return ps_fail(err, errlen, PS_EINVAL,
                       "temporary directory %s: too long a path for an ipc:// socket", dir);
    snprintf(out, len, "ipc://%s/%s", dir, name);
    return 0;
}

/* SCHEME://127.0.0.1:PORT with a port free just now (the kernel's pick for port 0). */
static int loopback_url(char *out, size_t len, const char *scheme, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(fd, (struct sockaddr *)&a, &alen) == 0;
    int e = errno;
    if (fd >= 0) close(fd);
    if (!ok) return ps_fail(err, errlen, PS_EINVAL, "no free loopback port: %s", strerror(e));
    snprintf(out, len, "%s://127.0.0.1:%u", scheme, (unsigned)ntohs(a.sin_port));
    return 0;
}

static int make_dir(run *r, char *err, size_t errlen)
{
    const char *base = r->o.tmp_dir;
    if (!base || !base[0]) {
        struct stat st;
        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
            base = "/dev/shm";
        else if (getenv("TMPDIR") && getenv("TMPDIR")[0])
            base = getenv("TMPDIR");
        else
            base = "/tmp";
    }
    if (strlen(base) > 80)
        return ps_fail(err, errlen, PS_EINVAL, "temporary directory %s: too long a path", base);
    snprintf(r->dir, sizeof r->dir, "%s/preshift-sim-XXXXXX", base);
    if (!mkdtemp(r->dir))
        return ps_fail(err, errlen, PS_EINVAL, "cannot make a directory in %s: %s", base,
                       strerror(errno));
    r->dir_made = 1;
    snprintf(r->workloads, sizeof r->workloads, "%s/cluster.workloads", r->dir);
    snprintf(r->store, sizeof r->store, "%s/manage.db", r->dir);
    if (r->o.processes &&
        (loopback_url(r->server_http, sizeof r->server_http, "http", err, errlen) ||
         loopback_url(r->manager_http, sizeof r->manager_http, "http", err, errlen)))
        return PS_EINVAL;
    if (r->o.tcp || r->o.processes) {
        if (loopback_url(r->listen, sizeof r->listen, "tcp", err, errlen) ||
            loopback_url(r->publish, sizeof r->publish, "tcp", err, errlen) ||
            loopback_url(r->agent_url, sizeof r->agent_url, "tcp", err, errlen))
            return PS_EINVAL;
        return 0;
    }
    if (ipc_path(r->listen, sizeof r->listen, r->dir, "score", err, errlen) ||
        ipc_path(r->publish, sizeof r->publish, r->dir, "stream", err, errlen) ||
        ipc_path(r->agent_url, sizeof r->agent_url, r->dir, "agent", err, errlen))
        return PS_EINVAL;
    return 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* The scoring server's PUB connections (the manager's subscription). */
static int subscribers(run *r, uint64_t *n, char *err, size_t errlen)
{
    if (r->procs) return ps_sim_processes_subscribers(r->procs, n, err, errlen);
    ps_serve_stats ss;
    ps_serve_get_stats(r->srv, &ss);
    *n = ss.subscribers;
    return 0;
}

/* The manager's counters: its own, or from its /metrics when it is a process. */
static int manager_stats(run *r, ps_manage_stats *s, char *err, size_t errlen)
{
    if (r->procs) return ps_sim_processes_manager_stats(r->procs, s, err, errlen);
    ps_manage_get_stats(r->mgr, s);
    return 0;
}

static void manager_totals(const ps_manage_stats *s, uint64_t *begun, uint64_t *finished)
{
    *begun = s->begun[0] + s->begun[1];
    *finished = s->committed[0] + s->committed[1] + s->rolled_back[0] + s->rolled_back[1];
}

/*
 * Wait until the manager has run r->passes passes and nothing is in motion
 * but the prepares the agent holds (module comment). Pending prepares are
 * applied to the world as soon as all of them are in, when in a tick; in
 * the warm-up (before tick 0) they wait for tick 0.
 */
static int settle(run *r, const char *when, char *err, size_t errlen)
{
    double until = mono() + r->o.barrier_timeout;
    ps_manage_stats s;
    for (;;) {
        if (ps_sim_agent_pump(r->ag, 0, err, errlen) < 0) return -1;
        if (manager_stats(r, &s, err, errlen)) return -1;
        uint64_t begun, finished, seen = ps_sim_agent_seen(r->ag);
        manager_totals(&s, &begun, &finished);
        size_t pending = ps_sim_agent_pending(r->ag), held = ps_sim_agent_held(r->ag);
        if (s.passes > r->passes)
            return ps_fail(err, errlen, PS_EINVAL,
                           "%s: the manager ran %lld passes, the stream gave it %lld", when,
                           (long long)s.passes, (long long)r->passes);
        if (s.passes == r->passes && seen == begun) {
            if (pending && r->w.in_tick) {
                if (ps_sim_agent_apply_pending(r->ag, err, errlen)) return -1;
                continue;
            }
            uint64_t waiting = held + pending;
            if (begun - finished == waiting && s.in_flight == waiting && s.queued == 0) return 0;
        }
        if (mono() > until)
            return ps_fail(err, errlen, PS_EINVAL,
                           "%s: the manager did not settle within %g s: passes %lld of %lld, "
                           "transfers begun %llu, finished %llu, in flight %zu, queued %zu; "
                           "prepares received %llu, pending %zu, held %zu",
                           when, r->o.barrier_timeout, (long long)s.passes, (long long)r->passes,
                           (unsigned long long)begun, (unsigned long long)finished, s.in_flight,
                           s.queued, (unsigned long long)seen, pending, held);
        if (ps_sim_agent_pump(r->ag, 1, err, errlen) < 0) return -1;
    }
}

/* Insert x among the PS_SIM_LIVE_TOP highest PFPs, highest first. */
static void keep_top(ps_sim_live *l, const ps_proto_result *x)
{
    size_t i = l->n_top < PS_SIM_LIVE_TOP ? l->n_top++ : PS_SIM_LIVE_TOP;
    while (i > 0 && l->top[i - 1].pfp < x->pfp) {
        if (i < PS_SIM_LIVE_TOP) l->top[i] = l->top[i - 1];
        i--;
    }
    if (i < PS_SIM_LIVE_TOP)
        l->top[i] = (ps_sim_live_pfp){(uint32_t)(x->id - 1), x->pfp, x->score, x->top};
}

/* Send n heartbeats (r->ids ...); a pass follows when any was scored. */
static int send_tick(run *r, size_t n, const char *when, char *err, size_t errlen)
{
    if (!n) return 0;
    ps_proto_score_reply rep;
    char why[512];
    int rc = ps_client_score(r->cl, n, r->K, r->ids, r->seqs, r->ts, r->x, &rep, why, sizeof why);
    if (rc != PS_CLIENT_OK)
        return ps_fail(err, errlen, PS_EINVAL, "%s: scoring server: %s (%s)", when, why,
                       ps_client_code_name(rc));
    if (rep.n != n)
        return ps_fail(err, errlen, PS_EINVAL, "%s: %zu results for %zu heartbeats", when, rep.n,
                       n);
    size_t scored = 0;
    r->live.n_top = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t st = rep.results[i].state;
        if (st == PS_PROTO_STATE_SCORED) {
            scored++;
            keep_top(&r->live, &rep.results[i]);
        } else if (st != PS_PROTO_STATE_WARMING_UP)
            return ps_fail(err, errlen, PS_EINVAL,
                           "%s: the heartbeat of processor id %llu came back %s", when,
                           (unsigned long long)rep.results[i].id, ps_proto_state_name(st));
    }
    if (scored) r->passes++;
    return 0;
}

static int call_progress(run *r, int warming_up, uint32_t done, uint32_t total);

static int warm_up(run *r, char *err, size_t errlen)
{
    const ps_sim_scenario *sc = r->sc;
    double tick = sc->cfg.tick_seconds;
    char when[64];
    for (uint32_t i = 0; i < r->history; i++) {
        for (uint32_t p = 0; p < sc->P; p++) {
            ps_sim_history_row(sc, p, ps_sim_history_len(sc, p) - r->history + i,
                               r->x + (size_t)p * r->K);
            r->ids[p] = ps_sim_processor_id(p);
            r->seqs[p] = (uint64_t)i + 1;
            r->ts[p] = T0 - (double)(r->history - i) * tick;
        }
        snprintf(when, sizeof when, "history row %u", i);
        if (send_tick(r, sc->P, when, err, errlen) || settle(r, when, err, errlen)) return -1;
        if (call_progress(r, 1, i + 1, r->history))
            return ps_fail(err, errlen, PS_SIM_ESTOPPED,
                           "stopped during the warm-up (row %u of %u)", i + 1, r->history);
    }
    return 0;
}

/* The caller's progress function, if any: nonzero to stop. */
static int call_progress(run *r, int warming_up, uint32_t done, uint32_t total)
{
    if (!r->o.progress) return 0;
    ps_manage_stats ms;
    ps_serve_stats ss;
    char why[256];
    if (r->srv) ps_serve_get_stats(r->srv, &ss);
    r->live.dir = r->dir;
    r->live.warming_up = warming_up;
    r->live.done = done;
    r->live.total = total;
    r->live.res = ps_sim_world_results(&r->w);
    r->live.manager = manager_stats(r, &ms, why, sizeof why) ? NULL : &ms;
    r->live.server = r->srv ? &ss : NULL;
    int stop = r->o.progress(r->o.progress_ctx, &r->live);
    r->live.manager = NULL;
    r->live.server = NULL;
    return stop;
}

static void progress(run *r, uint32_t t)
{
    r->stop = call_progress(r, 0, t + 1, r->sc->T);
    if (r->o.quiet) return;
    double now = mono();
    if (now - r->last_progress < 5 && t + 1 < r->sc->T) return;
    r->last_progress = now;
    const ps_sim_results *res = ps_sim_world_results(&r->w);
    fprintf(stderr,
            "preshift: tick %u of %u; %llu shifts, %llu failovers, %.0f interrupted "
            "workload-minutes\n",
            t + 1, r->sc->T, (unsigned long long)res->shifts, (unsigned long long)res->failovers,
            res->interrupted_minutes);
}

static int run_ticks(run *r, char *err, size_t errlen)
{
    const ps_sim_scenario *sc = r->sc;
    double tick = sc->cfg.tick_seconds;
    char when[64];
    for (uint32_t t = 0; t < sc->T; t++) {
        snprintf(when, sizeof when, "tick %u", t);
        int k = ps_sim_world_begin_tick(&r->w);
        if (k != 1)
            return ps_fail(err, errlen, k < 0 ? k : PS_EINVAL, "%s: the world did not begin it",
                           when);
        double a0 = mono();
        if (ps_sim_agent_tick_ends(r->ag, err, errlen) || settle(r, when, err, errlen)) return -1;
        double a1 = mono();
        size_t n = 0;
        for (uint32_t p = 0; p < sc->P; p++) {
            if (!ps_sim_heartbeat(&r->w, p, r->x + n * r->K)) continue;
            r->ids[n] = ps_sim_processor_id(p);
            r->seqs[n] = (uint64_t)r->history + t + 1;
            r->ts[n] = T0 + (double)t * tick;
            n++;
        }
        if (send_tick(r, n, when, err, errlen)) return -1;
        double a2 = mono();
        if (settle(r, when, err, errlen)) return -1;
        r->sec_ends += a1 - a0;
        r->sec_scoring += a2 - a1;
        r->sec_pass += mono() - a2;
        ps_sim_world_end_tick(&r->w);
        r->ran = t + 1;
        progress(r, t);
        if (r->stop) break;
    }
    return 0;
}

static int start(run *r, char *err, size_t errlen)
{
    const ps_sim_scenario *sc = r->sc;
    const ps_sim_config *c = &sc->cfg;
    if (make_dir(r, err, errlen)) return -1;
    r->co = (ps_sim_cluster_opts){.agent = r->agent_url, .class_per_entity = r->o.class_per_entity};
    if (ps_sim_cluster_write_file(r->workloads, sc, &r->co, err, errlen)) return -1;

    ps_sim_policy pol = ps_sim_policy_default(PS_SIM_EXTERNAL);
    pol.decide = NULL;
    pol.reactive_fallback = 0; /* the manager's own reactive fallback fails processors over */
    if (ps_sim_world_init(&r->w, sc, &pol, err, errlen)) return -1;
    r->world_ok = 1;

    double ft_ticks = r->o.failure_timeout_ticks < 0 ? (double)c->failure_timeout
                                                     : (double)r->o.failure_timeout_ticks;
    ps_sim_agent_config ac = {.url = r->agent_url,
                              .world = &r->w,
                              .t0 = T0,
                              .failure_timeout = ft_ticks * c->tick_seconds};
    r->ag = ps_sim_agent_open(&ac, err, errlen);
    if (!r->ag) return -1;

    ps_serve_config s = r->o.serve;
    s.quiet = 1;
    snprintf(s.listen, sizeof s.listen, "%s", r->listen);
    snprintf(s.publish, sizeof s.publish, "%s", r->publish);
    snprintf(s.http, sizeof s.http, "%s", r->o.processes ? r->server_http : "off");
    snprintf(s.state, sizeof s.state, "off");
    s.metrics = sc->cols;
    if (s.max_processors < (long)sc->P) s.max_processors = sc->P;
    if (s.max_batch < (long)sc->P) s.max_batch = sc->P;
    if (s.max_queue < (long)sc->P) s.max_queue = sc->P;
    s.evict_after = 0; /* a processor down for its repair keeps its state */
    if (ps_serve_config_check(&s, err, errlen)) return -1;

    ps_manage_config m = r->o.manage;
    memset(m.subscribe, 0, sizeof m.subscribe);
    memset(m.server, 0, sizeof m.server);
    snprintf(m.subscribe[0], sizeof m.subscribe[0], "%s", r->publish);
    m.n_subscribe = 1;
    m.n_server = 0; /* no op latest: its answer would race the warm-up */
    snprintf(m.workloads, sizeof m.workloads, "%s", r->workloads);
    m.reload_workloads = 0;
    snprintf(m.store, sizeof m.store, "%s", r->store);
    snprintf(m.control, sizeof m.control, "off");
    snprintf(m.http, sizeof m.http, "%s", r->o.processes ? r->manager_http : "off");
    m.failure_timeout = ft_ticks * c->tick_seconds;
    m.horizon = (double)(r->o.horizon_ticks ? r->o.horizon_ticks : c->horizon) * c->tick_seconds;
    m.retry_backoff = (double)(r->o.retry_backoff_ticks < 0 ? (int64_t)c->repair_ticks
                                                            : r->o.retry_backoff_ticks) *
                      c->tick_seconds;
    /*
     * Wall-clock pieces of the manager, kept out of the simulated time: a
     * held prepare lasts the world's copy, so no phase may time out; the
     * transfers' observed / expected time is wall clock over simulated
     * seconds (meaningless here), so it moves no threshold and the
     * in-flight limit it lowers is far above what a run keeps in flight.
     */
    m.transfer_timeout = 86400;
    m.max_transfers = 65536;
    m.threshold.congestion_gain = 0;
    if (ps_manage_config_check(&m, err, errlen)) return -1;
    if (r->o.processes) {
        r->procs = ps_sim_processes_start(r->o.exe, r->dir, &s, &m, err, errlen);
        if (!r->procs) return -1;
    } else {
        if (!(r->srv = ps_serve_start(&s, err, errlen))) return -1;
        if (!(r->mgr = ps_manage_start(&m, err, errlen))) return -1;
    }

    /*
     * The manager's subscription must be up before the first scored tick
     * is published (PUB drops what nobody receives). Processes answer
     * their /metrics once they are up: until then, a failed scrape is a wait.
     */
    double until = mono() + r->o.barrier_timeout;
    uint64_t subs = 0;
    char why[512] = "";
    for (;;) {
        int rc = subscribers(r, &subs, why, sizeof why);
        if (rc == 0 && subs > 0) break;
        if (rc == PS_SIM_PROCESS_EXITED) return ps_fail(err, errlen, rc, "%s", why);
        if (mono() > until)
            return ps_fail(err, errlen, PS_EINVAL,
                           "the manager did not subscribe to %s within %g s%s%s", r->publish,
                           r->o.barrier_timeout, rc ? ": " : "", rc ? why : "");
        nng_msleep(1);
    }

    ps_client_options co = {.timeout_ms = (int)fmin(r->o.barrier_timeout * 1000, 2e9)};
    r->cl = ps_client_open(r->listen, &co, err, errlen);
    if (!r->cl) return -1;
    r->K = sc->cols;
    r->ids = malloc(sc->P * sizeof *r->ids);
    r->seqs = malloc(sc->P * sizeof *r->seqs);
    r->ts = malloc(sc->P * sizeof *r->ts);
    r->x = malloc((size_t)sc->P * r->K * sizeof *r->x);
    if (!r->ids || !r->seqs || !r->ts || !r->x)
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    return 0;
}

/* Stop the components: 0, or -1 when a process did not end well (how in err). */
static int stop(run *r, char *err, size_t errlen)
{
    ps_manage_stop(r->mgr);
    r->mgr = NULL;
    int rc = ps_sim_processes_stop(r->procs, err, errlen);
    r->procs = NULL;
    ps_client_close(r->cl);
    r->cl = NULL;
    ps_serve_stop(r->srv);
    r->srv = NULL;
    ps_sim_agent_close(r->ag);
    r->ag = NULL;
    return rc ? -1 : 0;
}

static void cleanup(run *r)
{
    stop(r, NULL, 0);
    if (r->world_ok) ps_sim_world_free(&r->w);
    r->world_ok = 0;
    free(r->ids);
    free(r->seqs);
    free(r->ts);
    free(r->x);
    if (r->dir_made && !r->o.keep_files) remove_dir(r->dir);
}

/* ---- what the store says ---- */

static int cause_of(const char *s)
{
    static const char *const names[] = {"averted", "unnecessary", "disruptive", "missed",
                                        "environment"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Thresholds' trajectory and the store's workload map against the world's. */
static int read_store(run *r, ps_sim_preshift_report *rep, char *err, size_t errlen)
{
    const ps_sim_scenario *sc = r->sc;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    /* Read-write only so that closing it removes the -wal and -shm files it makes. */
    if (sqlite3_open_v2(r->store, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = ps_fail(err, errlen, PS_EINVAL, "%s: %s", r->store, db ? sqlite3_errmsg(db) : "");
        goto done;
    }
    sqlite3_busy_timeout(db, 10000);
    uint32_t nc = ps_sim_cluster_classes(sc, &r->co);
    rep->n_classes = nc;
    rep->classes = calloc(nc, sizeof *rep->classes);
    size_t cap = nc + 64;
    rep->thresholds = malloc(cap * sizeof *rep->thresholds);
    if (!rep->classes || !rep->thresholds) {
        rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
        goto done;
    }
    for (uint32_t k = 0; k < nc; k++) {
        ps_sim_cluster_class_name(sc, &r->co, k, rep->classes[k], sizeof rep->classes[k]);
        rep->thresholds[rep->n_thresholds++] =
            (ps_sim_threshold_point){-(int32_t)r->history, k, r->o.manage.threshold.initial, -1};
    }
    if (sqlite3_prepare_v2(db, "SELECT class, at_ms, cause, value FROM thresholds ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK) {
        rc = ps_fail(err, errlen, PS_EINVAL, "%s: %s", r->store, sqlite3_errmsg(db));
        goto done;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *cls = (const char *)sqlite3_column_text(st, 0);
        const char *cause = (const char *)sqlite3_column_text(st, 2);
        uint32_t k = 0;
        while (k < nc && (!cls || strcmp(rep->classes[k], cls)))
            k++;
        if (k == nc) continue;
        if (rep->n_thresholds == cap) {
            ps_sim_threshold_point *np = realloc(rep->thresholds, 2 * cap * sizeof *np);
            if (!np) {
                rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
                goto done;
            }
            rep->thresholds = np;
            cap *= 2;
        }
        double at = (double)sqlite3_column_int64(st, 1) / 1000.0;
        rep->thresholds[rep->n_thresholds++] = (ps_sim_threshold_point){
            (int32_t)llround((at - T0) / sc->cfg.tick_seconds), k, sqlite3_column_double(st, 3),
            (int8_t)(cause ? cause_of(cause) : -1)};
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT name, processor FROM workloads", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = ps_fail(err, errlen, PS_EINVAL, "%s: %s", r->store, sqlite3_errmsg(db));
        goto done;
    }
    uint64_t rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint32_t w = ps_sim_parse_workload((const char *)sqlite3_column_text(st, 0), sc->W);
        uint32_t p = ps_sim_parse_processor((const char *)sqlite3_column_text(st, 1), sc->P);
        rows++;
        if (w == PS_SIM_NONE || p == PS_SIM_NONE || r->w.wl[w].proc != p) rep->store_mismatches++;
    }
    if (rows != sc->W) rep->store_mismatches += rows > sc->W ? rows - sc->W : sc->W - rows;
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* ---- the run ---- */

int ps_sim_run_preshift(const ps_sim_scenario *sc, const ps_sim_preshift_opts *o,
                        ps_sim_results *out, ps_sim_preshift_report *rep, char *err, size_t errlen)
{
    if (!sc || !out) return ps_fail(err, errlen, PS_EINVAL, "null argument");
    memset(out, 0, sizeof *out);
    ps_sim_preshift_report scratch;
    if (!rep) rep = &scratch;
    memset(rep, 0, sizeof *rep);
    run *r = calloc(1, sizeof *r);
    if (!r) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    r->sc = sc;
    r->o = o ? *o : ps_sim_preshift_default_opts();
    if (!(r->o.barrier_timeout > 0)) r->o.barrier_timeout = 600;
    uint32_t warmup = (uint32_t)r->o.serve.warmup;
    uint32_t shortest = UINT32_MAX;
    for (uint32_t p = 0; p < sc->P; p++) {
        uint32_t h = ps_sim_history_len(sc, p);
        if (h < shortest) shortest = h;
    }
    r->history = r->o.history ? r->o.history : warmup + DEFAULT_MARGIN;
    if (!r->o.history && r->history > shortest) r->history = shortest;
    int rc = 0;
    if (r->history < warmup + 1 || r->history > shortest) {
        rc = ps_fail(err, errlen, PS_EINVAL,
                     "history %u rows: needs more than the warm-up (%u) and at most the shortest "
                     "history of a processor (%u: train rows less the largest offset)",
                     r->history, warmup, shortest);
        free(r);
        return rc;
    }
    if (r->o.processes && (!r->o.exe || !r->o.exe[0])) {
        free(r);
        return ps_fail(err, errlen, PS_EINVAL, "processes: no preshift executable given");
    }
    double t_start = mono();
    if (start(r, err, errlen)) {
        rc = -1;
        goto fail;
    }
    double t_ready = mono();
    if (warm_up(r, err, errlen)) {
        rc = -1;
        goto fail;
    }
    double t_warm = mono();
    r->last_progress = t_warm;
    if (run_ticks(r, err, errlen)) {
        rc = -1;
        goto fail;
    }
    double t_end = mono();

    if (manager_stats(r, &rep->manager, err, errlen)) {
        rc = -1;
        goto fail;
    }
    if (r->srv) ps_serve_get_stats(r->srv, &rep->server);
    rep->agent = ps_sim_agent_get_stats(r->ag);
    /* The store is whole once the manager has stopped. */
    if (stop(r, err, errlen) || read_store(r, rep, err, errlen)) {
        rc = -1;
        goto fail;
    }
    for (uint32_t w = 0; w < sc->W; w++)
        rep->dead_hosted += !r->w.proc[r->w.wl[w].proc].alive;
    rep->ticks = r->ran;
    rep->stopped = r->ran < sc->T;
    rep->history = r->history;
    rep->warmup = warmup;
    rep->seconds_setup = t_ready - t_start;
    rep->seconds_warmup = t_warm - t_ready;
    rep->seconds_run = t_end - t_warm;
    rep->ticks_per_second = rep->seconds_run > 0 ? r->ran / rep->seconds_run : 0;
    rep->seconds_ends = r->sec_ends;
    rep->seconds_scoring = r->sec_scoring;
    rep->seconds_pass = r->sec_pass;
    snprintf(rep->dir, sizeof rep->dir, "%s", r->dir);
    *out = *ps_sim_world_results(&r->w);
    out->ticks = r->ran;
    memset(&r->w.res, 0, sizeof r->w.res);
    cleanup(r);
    free(r);
    if (rep == &scratch) ps_sim_preshift_report_free(&scratch);
    return 0;
fail:
    if (r->dir_made && r->o.keep_files && errlen) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (files in %s)", r->dir);
    }
    cleanup(r);
    free(r);
    ps_sim_preshift_report_free(rep);
    return rc < 0 ? rc : -1;
}
