/*
 * cmd_demo.c - `preshift demo`: the project's main job in one command. A
 * simulated cluster of a few thousand processors replays the bundled ASD
 * data (data/asd/); the real scoring server scores every heartbeat and the
 * real shifting manager moves workloads off the processors it expects to
 * fail (the `preshift` policy of `preshift sim`, in-process over ipc://,
 * its SQLite store in a temporary directory). A live view shows the run;
 * within the time budget it ends with the table that compares it with
 * reactive failover and the oracle on the same failures, and a plot.
 *
 * The run stops at the first tick past the budget (or at the last tick),
 * and the references are run over the same ticks, so the comparison is
 * always like for like. Ctrl-C (SIGINT) or SIGTERM stops it the same way,
 * summary included, and exits 130; during the warm-up it just stops.
 *
 * Exit status: 0 done, 1 a failure, 2 a usage error, 130 stopped by a
 * signal. docs/evaluation.md, "The demo", has the details.
 */
#include "cli.h"
#include "commands.h"
#include "demo_view.h"
#include "sim_dataset.h"
#include "sim_plot.h"
#include "sim_policies.h"
#include "sim_report.h"
#include "stop_signals.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PRESHIFT_SOURCE_DIR
#define PRESHIFT_SOURCE_DIR "."
#endif

enum { VIEW_AUTO, VIEW_LIVE, VIEW_LINES, VIEW_OFF };

typedef struct demo_opts {
    char dataset[PATH_MAX];
    char plot[PATH_MAX]; /* "" when off */
    ps_sim_config cfg;
    uint32_t start_row;
    double seconds;
    long warmup;
    ps_backend_kind backend;
    int view;
} demo_opts;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: preshift demo [options]\n"
            "\n"
            "A simulated cluster replaying real server metrics, scored by the real scoring\n"
            "server and shifted by the real manager, watched live; it ends within the time\n"
            "budget with the comparison against reactive failover and a plot.\n"
            "\n"
            "  --dataset DIR       metric data in the layout of data/asd/ (default: the\n"
            "                      bundled %s/data/asd)\n"
            "  --processors P      simulated processors (default 2000)\n"
            "  --workloads W       workloads (default 10000)\n"
            "  --seed S            the scenario's random draws (default 1)\n"
            "  --seconds S         wall-clock budget of the whole demo: the run stops at the\n"
            "                      first tick past it (default 90)\n"
            "  --ticks T           at most this many ticks of 5 minutes (default 1440, 5 days)\n"
            "  --start-row R       replay from test row R on, the rows before are history\n"
            "                      (default 600: ASD's first failures come soon after)\n"
            "  --max-offset TICKS  copies of one server replay it up to this much later\n"
            "                      (default 288, a day)\n"
            "  --warmup ROWS       history rows each processor's scorer warms up on\n"
            "                      (default 144, half a day)\n"
            "  --backend NAME      the scoring server's kernels, cpu or cuda (default: the\n"
            "                      build's, %s)\n"
            "  --plot FILE         the PNG of interrupted workload-minutes and unnecessary\n"
            "                      shifts over time, or off (default preshift-demo.png)\n"
            "  --view MODE         live (redrawn in place), lines (a line every 5 s) or off\n"
            "                      (default: live on a terminal, lines otherwise)\n"
            "\n"
            "The live view goes to standard output, the summary too. Ctrl-C stops the demo\n"
            "early with the summary so far. Exit status: 0 done, 1 a failure, 2 a usage\n"
            "error, 130 stopped by Ctrl-C or SIGTERM.\n",
            PRESHIFT_SOURCE_DIR, ps_backend_default_kind() == PS_BACKEND_CUDA ? "cuda" : "cpu");
}

static int parse_u32(const char *flag, const char *v, long lo, long hi, uint32_t *out, char *err,
                     size_t errlen)
{
    long l;
    if (ps_parse_long(flag, v, lo, hi, &l, err, errlen)) return -1;
    *out = (uint32_t)l;
    return 0;
}

/* 0 ready, 1 --help printed, -1 usage error in err. */
static int parse_args(demo_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    snprintf(o->dataset, sizeof o->dataset, "%s/data/asd", PRESHIFT_SOURCE_DIR);
    snprintf(o->plot, sizeof o->plot, "preshift-demo.png");
    o->cfg = ps_sim_config_default();
    o->cfg.processors = 2000;
    o->cfg.workloads = 10000;
    o->cfg.ticks = 1440;
    o->cfg.max_offset = 288;
    o->start_row = 600;
    o->seconds = 90;
    o->warmup = 144;
    o->backend = PS_BACKEND_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (a[0] != '-') return snprintf(err, errlen, "unexpected argument '%s'", a), -1;
        if (!v) return snprintf(err, errlen, "%s needs a value", a), -1;
        i++;
        int bad;
        if (!strcmp(a, "--dataset") || !strcmp(a, "--plot")) {
            char *dst = a[2] == 'd' ? o->dataset : o->plot;
            bad = !*v || strlen(v) >= PATH_MAX;
            if (bad)
                snprintf(err, errlen, "%s needs a path of 1..%d bytes", a, PATH_MAX - 1);
            else
                snprintf(dst, PATH_MAX, "%s", strcmp(v, "off") || a[2] == 'd' ? v : "");
        } else if (!strcmp(a, "--processors")) {
            bad = parse_u32(a, v, 2, 1L << 20, &o->cfg.processors, err, errlen);
        } else if (!strcmp(a, "--workloads")) {
            bad = parse_u32(a, v, 1, 1L << 24, &o->cfg.workloads, err, errlen);
        } else if (!strcmp(a, "--ticks")) {
            bad = parse_u32(a, v, 1, 1L << 30, &o->cfg.ticks, err, errlen);
        } else if (!strcmp(a, "--start-row")) {
            bad = parse_u32(a, v, 0, 1L << 30, &o->start_row, err, errlen);
        } else if (!strcmp(a, "--max-offset")) {
            bad = parse_u32(a, v, 0, 1L << 30, &o->cfg.max_offset, err, errlen);
        } else if (!strcmp(a, "--seed")) {
            long s;
            bad = ps_parse_long(a, v, 0, LONG_MAX, &s, err, errlen);
            if (!bad) o->cfg.seed = (uint64_t)s;
        } else if (!strcmp(a, "--seconds")) {
            bad = ps_parse_double(a, v, 1, 86400, &o->seconds, err, errlen);
        } else if (!strcmp(a, "--warmup")) {
            bad = ps_parse_long(a, v, 16, 100000, &o->warmup, err, errlen);
        } else if (!strcmp(a, "--backend")) {
            bad = ps_parse_backend(a, v, &o->backend, err, errlen);
        } else if (!strcmp(a, "--view")) {
            static const char *const modes[] = {"auto", "live", "lines", "off"};
            bad = 1;
            for (int k = 0; k < 4 && bad; k++)
                if (!strcmp(v, modes[k])) o->view = k, bad = 0;
            if (bad) snprintf(err, errlen, "--view: '%s' is not live, lines or off", v);
        } else {
            return snprintf(err, errlen, "unknown option '%s'", a), -1;
        }
        if (bad) return -1;
    }
    ps_sim_config *c = &o->cfg;
    c->replica_groups = c->workloads / (10 * c->replica_size);
    if (c->replica_groups && c->processors < c->replica_size) c->replica_groups = 0;
    if (o->view == VIEW_AUTO) o->view = isatty(STDOUT_FILENO) ? VIEW_LIVE : VIEW_LINES;
    return 0;
}

/* ------------------------------------------------------------- the run */

typedef struct demo {
    const demo_opts *o;
    const ps_sim_dataset *d;
    const char **names;
    const char *dataset_name; /* the last part of its path */
    sigset_t signals;
    int interrupted; /* a signal stopped it */
    int out_of_time; /* the budget stopped it */
    int said_dir;
    double t0; /* start of the demo */
    double last_draw, last_ticks_at;
    uint32_t last_done;
    uint64_t last_heartbeats;
    double ticks_per_s, heartbeats_per_s;
    ps_sim_results reactive, oracle; /* over the whole scenario, for the live view */
} demo;

static uint64_t heartbeats(const ps_serve_stats *s)
{
    uint64_t n = 0;
    for (int k = 0; s && k < PS_PROTO_NSTATES; k++)
        n += s->heartbeats[k];
    return n;
}

static double at_tick(const ps_sim_results *r, uint32_t done)
{
    return done && r->cum_interrupted_minutes ? r->cum_interrupted_minutes[done - 1] : 0;
}

static int on_progress(void *ctx, const ps_sim_live *l)
{
    demo *m = ctx;
    struct timespec zero = {0, 0};
    if (sigtimedwait(&m->signals, NULL, &zero) > 0) m->interrupted = 1;
    if (!m->said_dir) {
        fprintf(stderr,
                "demo: the manager's store and the sockets are in %s (removed at the "
                "end)\n",
                l->dir);
        m->said_dir = 1;
    }
    double t = ps_sim_wall_seconds(), elapsed = t - m->t0;
    if (elapsed >= m->o->seconds) m->out_of_time = 1;
    int stop = m->interrupted || m->out_of_time;
    int last = stop || (!l->warming_up && l->done == l->total);
    double every = m->o->view == VIEW_LIVE ? 1 : 5;
    if (m->o->view == VIEW_OFF || (t - m->last_draw < every && !last)) return stop;
    double dt = t - m->last_ticks_at;
    uint64_t hb = heartbeats(l->server);
    if (dt > 0) {
        m->ticks_per_s = l->warming_up ? 0 : (l->done - m->last_done) / dt;
        m->heartbeats_per_s = (double)(hb - m->last_heartbeats) / dt;
    }
    m->last_done = l->warming_up ? 0 : l->done;
    m->last_heartbeats = hb;
    m->last_ticks_at = m->last_draw = t;
    ps_demo_view v = {
        .processors = m->o->cfg.processors,
        .workloads = m->o->cfg.workloads,
        .metrics = m->d->cols,
        .entities = m->d->n,
        .dataset = m->dataset_name,
        .seed = m->o->cfg.seed,
        .tick_seconds = m->o->cfg.tick_seconds,
        .entity_names = m->names,
        .live = l,
        .elapsed = elapsed,
        .budget = m->o->seconds,
        .ticks_per_s = m->ticks_per_s,
        .heartbeats_per_s = m->heartbeats_per_s,
        .reactive_minutes = at_tick(&m->reactive, l->warming_up ? 0 : l->done),
        .oracle_minutes = at_tick(&m->oracle, l->warming_up ? 0 : l->done),
    };
    if (m->o->view == VIEW_LIVE)
        ps_demo_view_screen(stdout, &v);
    else
        ps_demo_view_line(stdout, &v);
    return stop;
}

/* Run a core policy ("reactive", "oracle") over sc, quietly. */
static int run_reference(const char *name, const ps_sim_scenario *sc, ps_sim_results *out,
                         char *err, size_t errlen)
{
    const ps_sim_policy_entry *e = ps_sim_policy_find(name);
    ps_sim_run_args a = {sc, ps_sim_policy_default(e->kind), 1, NULL, NULL};
    return e->run(e, &a, out, err, errlen);
}

/* The summary: reactive, preshift and the oracle over sc, the plot. 0 or 1 (plot failed). */
static int summarize(const demo *m, const ps_sim_scenario *sc, const ps_sim_results *pre,
                     const ps_sim_results *reactive, const ps_sim_results *oracle,
                     const ps_sim_preshift_report *rep)
{
    const demo_opts *o = m->o;
    ps_sim_summary s[3];
    const ps_sim_results *r[3] = {reactive, pre, oracle};
    const char *names[3] = {"reactive", "preshift", "oracle"};
    for (int i = 0; i < 3; i++) {
        if (ps_sim_summarize(&s[i], names[i], sc, r[i])) {
            fprintf(stderr, "demo: out of memory\n");
            return 1;
        }
        ps_sim_summary_compare(&s[i], reactive->interrupted_minutes, oracle->interrupted_minutes);
    }
    printf("\npreshift demo: %u processors, %u workloads, %u ticks of %g s (%.1f days) in %.0f s",
           sc->P, sc->W, sc->T, sc->cfg.tick_seconds, sc->T * sc->cfg.tick_seconds / 86400,
           ps_sim_wall_seconds() - m->t0);
    if (rep->stopped)
        printf(" (%s)", m->interrupted ? "stopped by a signal" : "the time budget ended it");
    printf("\n%u failures; the same failures for every column. Scored at %.1f ticks/s.\n\n",
           sc->n_failures, rep->ticks_per_second);
    ps_sim_report_table(stdout, s, 3);
    char a[32], b[32];
    printf("\nReactive failover left workloads interrupted for %s minutes; preshift for %s",
           ps_demo_count(a, sizeof a, reactive->interrupted_minutes),
           ps_demo_count(b, sizeof b, pre->interrupted_minutes));
    if (isfinite(s[1].reduction)) printf(" (%+.1f %%)", -100 * s[1].reduction);
    printf(".\nThe model, the policies and how to reproduce this: docs/evaluation.md\n"
           "(preshift sim runs any scale and seed).\n");
    if (!o->plot[0]) return 0;
    ps_sim_plot_line lines[3];
    for (int i = 0; i < 3; i++)
        lines[i] =
            (ps_sim_plot_line){names[i], r[i]->cum_interrupted_minutes, r[i]->cum_unnecessary};
    char title[256], err[1024];
    snprintf(title, sizeof title, "preshift demo: %u processors, %u workloads, seed %llu", sc->P,
             sc->W, (unsigned long long)sc->cfg.seed);
    int rc = ps_sim_plot(o->plot, title, lines, 3, sc->T, sc->cfg.tick_seconds, err, sizeof err);
    if (rc == 0) {
        printf("plot: %s\n", o->plot);
        return 0;
    }
    printf("plot: not written (%s)\n", err);
    return rc == PS_SIM_PLOT_NO_GNUPLOT ? 0 : 1;
}

static int run_demo(demo *m, char *err, size_t errlen)
{
    const demo_opts *o = m->o;
    ps_sim_dataset d;
    memset(&d, 0, sizeof d);
    ps_sim_scenario sc, cut;
    memset(&sc, 0, sizeof sc);
    memset(&cut, 0, sizeof cut);
    ps_sim_results pre, reactive, oracle;
    memset(&pre, 0, sizeof pre);
    memset(&reactive, 0, sizeof reactive);
    memset(&oracle, 0, sizeof oracle);
    ps_sim_preshift_report rep;
    memset(&rep, 0, sizeof rep);
    int status = 1;

    fprintf(stderr, "demo: loading %s\n", o->dataset);
    if (ps_sim_dataset_load(o->dataset, &d, err, errlen)) goto done;
    if (d.n == 0) {
        snprintf(err, errlen, "%.1024s: no entity (NAME in train/, test/ and test_label/)",
                 o->dataset);
        goto done;
    }
    if (ps_sim_dataset_skip_test(&d, o->start_row, err, errlen)) goto done;
    m->d = &d;
    m->names = malloc(d.n * sizeof *m->names);
    if (!m->names) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    ps_sim_config cfg = o->cfg;
    uint32_t min_train = UINT32_MAX, min_test = UINT32_MAX;
    for (uint32_t e = 0; e < d.n; e++) {
        m->names[e] = d.entity[e].name;
        if (d.series[e].train_rows < min_train) min_train = d.series[e].train_rows;
        if (d.series[e].test_rows < min_test) min_test = d.series[e].test_rows;
    }
    if (cfg.max_offset > min_train) cfg.max_offset = min_train;
    if (cfg.ticks > min_test) cfg.ticks = min_test;
    if (ps_sim_scenario_build(&sc, &cfg, d.series, d.n, err, errlen)) goto done;
    fprintf(stderr,
            "demo: %u processors replaying %u servers from test row %u, %u workloads, "
            "%u failures in %u ticks at most\n",
            sc.P, d.n, o->start_row, sc.W, sc.n_failures, sc.T);
    if (run_reference("reactive", &sc, &m->reactive, err, errlen) ||
        run_reference("oracle", &sc, &m->oracle, err, errlen))
        goto done;

    ps_sim_preshift_opts po = ps_sim_preshift_default_opts();
    po.serve.backend = o->backend;
    po.serve.warmup = o->warmup;
    po.quiet = 1;
    po.progress = on_progress;
    po.progress_ctx = m;
    fprintf(stderr, "demo: starting the scoring server and the shifting manager\n");
    int rc = ps_sim_run_preshift(&sc, &po, &pre, &rep, err, errlen);
    if (rc == PS_SIM_ESTOPPED) {
        if (m->interrupted) {
            printf("\ndemo: stopped during the warm-up, before the first tick: nothing to "
                   "compare\n");
            status = 130;
        } else {
            snprintf(err, errlen,
                     "the warm-up took the whole budget (--seconds %g): fewer "
                     "--processors, or more --seconds",
                     o->seconds);
        }
        goto done;
    }
    if (rc) goto done;

    /* Stopped early: the references over the same ticks (the same failures up to there). */
    const ps_sim_scenario *over = &sc;
    if (rep.stopped) {
        cfg.ticks = rep.ticks;
        if (ps_sim_scenario_build(&cut, &cfg, d.series, d.n, err, errlen) ||
            run_reference("reactive", &cut, &reactive, err, errlen) ||
            run_reference("oracle", &cut, &oracle, err, errlen))
            goto done;
        over = &cut;
    } else {
        reactive = m->reactive;
        oracle = m->oracle;
        memset(&m->reactive, 0, sizeof m->reactive);
        memset(&m->oracle, 0, sizeof m->oracle);
    }
    status = summarize(m, over, &pre, &reactive, &oracle, &rep);
    if (m->interrupted) status = 130;
done:
    ps_sim_results_free(&pre);
    ps_sim_results_free(&reactive);
    ps_sim_results_free(&oracle);
    ps_sim_results_free(&m->reactive);
    ps_sim_results_free(&m->oracle);
    ps_sim_preshift_report_free(&rep);
    ps_sim_scenario_free(&cut);
    ps_sim_scenario_free(&sc);
    ps_sim_dataset_free(&d);
    free(m->names);
    m->names = NULL;
    return status;
}

int ps_cmd_demo(int argc, char **argv)
{
    demo_opts o;
    char err[2048];
    int rc = parse_args(&o, argc, argv, err, sizeof err);
    if (rc) {
        if (rc == 1) return 0;
        fprintf(stderr, "demo: %s\n(preshift demo --help lists the options)\n", err);
        return 2;
    }
    demo m;
    memset(&m, 0, sizeof m);
    m.o = &o;
    size_t n = strlen(o.dataset);
    while (n > 1 && o.dataset[n - 1] == '/')
        o.dataset[--n] = '\0';
    m.dataset_name = strrchr(o.dataset, '/') ? strrchr(o.dataset, '/') + 1 : o.dataset;
    sigset_t old;
    if (ps_stop_signals_block(&m.signals, &old)) {
        perror("demo: signals");
        return 1;
    }
    m.t0 = m.last_draw = m.last_ticks_at = ps_sim_wall_seconds();
    m.last_draw -= 60; /* draw at the first chance */
    err[0] = '\0';
    int status = run_demo(&m, err, sizeof err);
    if (status == 1 && err[0]) fprintf(stderr, "demo: %s\n", err);
    return status;
}
