/*
 * cmd_sim.c - `preshift sim`: policies for failing processors compared on
 * one simulated cluster replaying real metric data (docs/evaluation.md).
 *
 * Load the dataset (server/sim_dataset.h), build one scenario from the
 * seed (core/sim_world.h), run every listed policy over it (the table in
 * sim_policies.h; reactive and the oracle also run as references when not
 * listed, for the comparisons), then report (sim_report.h) and plot
 * (sim_plot.h). Standard output depends only on the dataset and the
 * options; progress and timings go to standard error.
 *
 * Exit status: 0 done; 1 a failure (unreadable or malformed dataset, a
 * policy run that failed, a plot gnuplot could not make, a listed policy
 * without a run function: the others are still reported); 2 a usage
 * error. A missing
 * gnuplot is not a failure: the plot is skipped with a message.
 */
#include "cli.h"
#include "commands.h"
#include "core/sim_world.h"
#include "kernels/kernels.h"
#include "manage_config.h"
#include "serve_config.h"
#include "sim_dataset.h"
#include "sim_plot.h"
#include "sim_policies.h"
#include "sim_report.h"
#include "sim_thresholds.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PRESHIFT_SOURCE_DIR
#define PRESHIFT_SOURCE_DIR "."
#endif

#define GIB 1073741824.0
#define MAX_POLICIES 8
#define U30 (1L << 30)

typedef struct sim_opts {
    char dataset[PATH_MAX];
    ps_sim_config cfg;
    ps_sim_policy tuning;
    const ps_sim_policy_entry *pol[MAX_POLICIES];
    size_t n_pol;
    char plot[PATH_MAX]; /* "" when off */
    ps_sim_preshift_opts pre;
    char manage_config[PATH_MAX], serve_config[PATH_MAX]; /* "" when not given */
    char exe[PATH_MAX];                                   /* this executable, for --processes */
    int given_backend, given_warmup;
    int json, quiet;
    int given_dataset, given_offset, given_groups;
} sim_opts;

static const char default_policies[] = "reactive,naive,oracle";
static const char default_plot[] = "sim.png";

static const char *default_dataset(char *buf, size_t len)
{
    snprintf(buf, len, "%s/data/asd", PRESHIFT_SOURCE_DIR);
    return buf;
}

static void usage(FILE *out)
{
    ps_sim_config c = ps_sim_config_default();
    ps_sim_policy p = ps_sim_policy_default(PS_SIM_NAIVE);
    char ds[PATH_MAX + 32];
    fprintf(out,
            "usage: preshift sim [options]\n"
            "\n"
            "Compare policies for failing processors on one simulated cluster that replays\n"
            "labelled metric data: the same processors, workloads, placement and failures\n"
            "for every policy, so that results differ only by what the policies did. The\n"
            "model is docs/evaluation.md. Prints the scenario and a table (or JSON lines),\n"
            "writes a plot; progress goes to standard error.\n"
            "\n"
            "  --dataset DIR          a directory in the layout of data/asd/ (docs/evaluation.md)\n"
            "                         (default %s when it exists)\n"
            "  --policies LIST        comma-separated, in report order, from the list below\n"
            "                         (default %s)\n",
            default_dataset(ds, sizeof ds), default_policies);
    fprintf(out,
            "  --seed S               every random draw of the scenario (default %llu)\n"
            "  --processors P         processors; processor p replays entity p mod E\n"
            "                         (default %u)\n"
            "  --workloads W          workloads (default %u)\n"
            "  --ticks T              run length in ticks, 0 = the shortest test series\n"
            "                         (default %u)\n"
            "  --tick-seconds S       simulated seconds per tick, one data row (default %g)\n"
            "  --horizon TICKS        a shift is averted if its source fails within it\n"
            "                         (default %u)\n"
            "  --repair TICKS         a failed processor is back this much later\n"
            "                         (default %u)\n"
            "  --failure-timeout TICKS  silence before the reactive scheme declares a\n"
            "                         failure (default %u)\n"
            "  --restart TICKS        a restarted (failed-over) workload runs again after\n"
            "                         this (default %u)\n"
            "  --transfer-fail Q      probability that a transfer fails at its end\n"
            "                         (default %g)\n"
            "  --bandwidth GBITS      Gbit/s of one transfer (default %g)\n"
            "  --noise SD             noise on every replayed value (default %g)\n"
            "  --max-offset TICKS     processor offsets uniform in 0..TICKS (default %u, or\n"
            "                         the shortest train series replayed when shorter)\n"
            "  --fail-delay TICKS     0: a processor fails after an event's last row; D: D\n"
            "                         ticks after its onset (default %u)\n"
            "  --cpu-capacity CORES   of every processor (default %g)\n"
            "  --mem-capacity GIB     of every processor (default %g)\n"
            "  --cpu-demand MIN,MAX   workload cpu demand, uniform, cores (default %g,%g)\n"
            "  --mem-demand MIN,MAX   workload memory demand, uniform, GiB\n"
            "                         (default %g,%g)\n"
            "  --state MIN,MAX        workload state, log-uniform, GiB (default %g,%g)\n"
            "  --criticality MIN,MAX  workload criticality, uniform (default %g,%g)\n"
            "  --replica-groups N     anti-affine groups of --replica-size workloads\n"
            "                         (default: 10 %% of the workloads, %u for %u)\n"
            "  --replica-size S       workloads per replica group (default %u)\n"
            "  --layers N             layers of the dependency DAG (default %u)\n"
            "  --out-degree D         mean dependents per workload (default %g)\n"
            "  --naive-cpu-col C      naive: 0-based metric column read as cpu, or off\n"
            "                         (default %d)\n"
            "  --naive-mem-col C      naive: metric column read as memory, or off\n"
            "                         (default %d)\n"
            "  --naive-threshold X    naive: a column above X ... (default %g)\n"
            "  --naive-hold TICKS     ... for this many ticks empties the processor\n"
            "                         (default %u)\n"
            "  --oracle-margin TICKS  oracle: commit this much before the failure\n"
            "                         (default %u)\n"
            "  --backend NAME         preshift: the scoring server's kernels, cpu or cuda\n"
            "                         (default: the build's, %s)\n"
            "  --warmup ROWS          preshift: history rows each processor's scorer warms\n"
            "                         up on before it scores (default %ld; a processor sends\n"
            "                         36 more, or as many as its history has)\n",
            (unsigned long long)c.seed, c.processors, c.workloads, c.ticks, c.tick_seconds,
            c.horizon, c.repair_ticks, c.failure_timeout, c.restart_ticks, c.transfer_fail_prob,
            c.bandwidth * 8 / 1e9, (double)c.noise_sd, c.max_offset, c.fail_delay, c.cpu_capacity,
            c.mem_capacity / GIB, c.cpu_min, c.cpu_max, c.mem_min / GIB, c.mem_max / GIB,
            c.state_min / GIB, c.state_max / GIB, c.crit_min, c.crit_max, c.replica_groups,
            c.workloads, c.replica_size, c.layers, c.out_degree, p.naive_cpu_col, p.naive_mem_col,
            (double)p.naive_threshold, p.naive_hold, p.oracle_margin,
            ps_backend_default_kind() == PS_BACKEND_CUDA ? "cuda" : "cpu",
            ps_sim_preshift_default_opts().serve.warmup);
    fprintf(out,
            "  --serve-config FILE    preshift: the scoring server's options from a\n"
            "                         `key = value` file (preshift serve --config);\n"
            "                         --backend and --warmup win over it\n"
            "  --manage-config FILE   preshift: the manager's options from such a file\n"
            "                         (preshift manage --config; the run sets the\n"
            "                         addresses, store, horizon and failure timeout)\n"
            "  --classes entity|one   preshift: the manager's classes, each with its own\n"
            "                         threshold: one per entity of the dataset (processors\n"
            "                         replaying one server are one kind of machine), or one\n"
            "                         for the whole cluster (default entity)\n"
            "  --tcp                  preshift: its sockets on tcp://127.0.0.1 (free ports)\n"
            "                         instead of ipc:// in the temporary directory\n"
            "  --processes            preshift: end to end, the server and the manager as\n"
            "                         `preshift serve` and `preshift manage` processes over\n"
            "                         tcp://127.0.0.1, each with a configuration file in the\n"
            "                         temporary directory (default: threads of this one,\n"
            "                         the same results a little faster)\n"
            "  --keep-files           preshift: keep its temporary directory (the manager's\n"
            "                         SQLite store with every transfer, the workload file)\n"
            "                         and print where it is\n"
            "  --json                 one JSON object per policy and line instead of the\n"
            "                         table (keys: docs/evaluation.md)\n"
            "  --plot FILE            the PNG of cumulative interrupted workload-minutes and\n"
            "                         unnecessary shifts over time, or off (default %s);\n"
            "                         needs gnuplot, skipped with a message without it\n"
            "  -q, --quiet            no progress on standard error\n"
            "\n"
            "policies:\n",
            default_plot);
    size_t n;
    const ps_sim_policy_entry *e = ps_sim_policy_entries(&n);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-9s %s\n", e[i].name, e[i].summary);
    fprintf(out, "\n"
                 "Exit status: 0 done, 1 a failure (a dataset that cannot be read, a policy\n"
                 "that could not run, a plot that could not be written), 2 a usage error.\n");
}

/* ------------------------------------------------------------- options */

typedef enum {
    K_U32,    /* uint32_t in [lo, hi] */
    K_DOUBLE, /* double in [lo, hi], times scale */
    K_FLOAT,  /* float in [lo, hi] */
    K_RANGE,  /* "MIN,MAX" into two doubles, times scale, lo <= MIN <= MAX <= hi */
    K_COL,    /* int column, or "off" (-1) */
} opt_kind;

typedef enum { IN_CFG, IN_TUNING } opt_where;

typedef struct option {
    const char *flag;
    opt_kind kind;
    opt_where where;
    size_t offset;
    double lo, hi, scale;
} option;

#define CFG(f) IN_CFG, offsetof(ps_sim_config, f)
#define POL(f) IN_TUNING, offsetof(ps_sim_policy, f)
static const option options[] = {
    {"--processors", K_U32, CFG(processors), 1, U30, 1},
    {"--workloads", K_U32, CFG(workloads), 0, U30, 1},
    {"--ticks", K_U32, CFG(ticks), 0, U30, 1},
    {"--tick-seconds", K_DOUBLE, CFG(tick_seconds), 1e-3, 1e9, 1},
    {"--horizon", K_U32, CFG(horizon), 1, U30, 1},
    {"--repair", K_U32, CFG(repair_ticks), 1, U30, 1},
    {"--failure-timeout", K_U32, CFG(failure_timeout), 0, U30, 1},
    {"--restart", K_U32, CFG(restart_ticks), 0, U30, 1},
    {"--transfer-fail", K_DOUBLE, CFG(transfer_fail_prob), 0, 1, 1},
    {"--bandwidth", K_DOUBLE, CFG(bandwidth), 1e-6, 1e9, 1e9 / 8},
    {"--noise", K_FLOAT, CFG(noise_sd), 0, 1e6, 1},
    {"--max-offset", K_U32, CFG(max_offset), 0, U30, 1},
    {"--fail-delay", K_U32, CFG(fail_delay), 0, U30, 1},
    {"--cpu-capacity", K_DOUBLE, CFG(cpu_capacity), 1e-6, 1e9, 1},
    {"--mem-capacity", K_DOUBLE, CFG(mem_capacity), 1e-6, 1e9, GIB},
    {"--cpu-demand", K_RANGE, CFG(cpu_min), 0, 1e9, 1},
    {"--mem-demand", K_RANGE, CFG(mem_min), 0, 1e9, GIB},
    {"--state", K_RANGE, CFG(state_min), 1e-9, 1e9, GIB},
    {"--criticality", K_RANGE, CFG(crit_min), 0, 1e9, 1},
    {"--replica-groups", K_U32, CFG(replica_groups), 0, U30, 1},
    {"--replica-size", K_U32, CFG(replica_size), 2, U30, 1},
    {"--layers", K_U32, CFG(layers), 1, 1L << 20, 1},
    {"--out-degree", K_DOUBLE, CFG(out_degree), 0, 1e6, 1},
    {"--naive-cpu-col", K_COL, POL(naive_cpu_col), -1, 1 << 20, 1},
    {"--naive-mem-col", K_COL, POL(naive_mem_col), -1, 1 << 20, 1},
    {"--naive-threshold", K_FLOAT, POL(naive_threshold), -1e30, 1e30, 1},
    {"--naive-hold", K_U32, POL(naive_hold), 1, U30, 1},
    {"--oracle-margin", K_U32, POL(oracle_margin), 0, U30, 1},
};
#undef CFG
#undef POL

static int parse_range(const char *flag, const char *v, double lo, double hi, double *out,
                       char *err, size_t errlen)
{
    const char *comma = v ? strchr(v, ',') : NULL;
    char a[64], b[64];
    if (!comma || (size_t)(comma - v) >= sizeof a || strlen(comma + 1) >= sizeof b) {
        snprintf(err, errlen, "%s: '%s' is not MIN,MAX", flag, v ? v : "");
        return -1;
    }
    memcpy(a, v, (size_t)(comma - v));
    a[comma - v] = '\0';
    snprintf(b, sizeof b, "%s", comma + 1);
    if (ps_parse_double(flag, a, lo, hi, &out[0], err, errlen) ||
        ps_parse_double(flag, b, lo, hi, &out[1], err, errlen))
        return -1;
    if (out[0] > out[1]) {
        snprintf(err, errlen, "%s: MIN %g is above MAX %g", flag, out[0], out[1]);
        return -1;
    }
    return 0;
}

static int apply_option(sim_opts *o, const option *op, const char *v, char *err, size_t errlen)
{
    char *base = op->where == IN_CFG ? (char *)&o->cfg : (char *)&o->tuning;
    char *field = base + op->offset;
    long l;
    double d, r[2];
    switch (op->kind) {
    case K_U32:
        if (ps_parse_long(op->flag, v, (long)op->lo, (long)op->hi, &l, err, errlen)) return -1;
        *(uint32_t *)(void *)field = (uint32_t)l;
        return 0;
    case K_DOUBLE:
        if (ps_parse_double(op->flag, v, op->lo, op->hi, &d, err, errlen)) return -1;
        *(double *)(void *)field = d * op->scale;
        return 0;
    case K_FLOAT:
        if (ps_parse_double(op->flag, v, op->lo, op->hi, &d, err, errlen)) return -1;
        *(float *)(void *)field = (float)d;
        return 0;
    case K_RANGE:
        if (parse_range(op->flag, v, op->lo, op->hi, r, err, errlen)) return -1;
        ((double *)(void *)field)[0] = r[0] * op->scale;
        ((double *)(void *)field)[1] = r[1] * op->scale;
        return 0;
    case K_COL:
        if (v && !strcmp(v, "off")) {
            *(int *)(void *)field = -1;
            return 0;
        }
        if (ps_parse_long(op->flag, v, (long)op->lo, (long)op->hi, &l, err, errlen)) return -1;
        *(int *)(void *)field = (int)l;
        return 0;
    }
    return -1;
}

static int parse_seed(const char *v, uint64_t *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long s = v && *v != '-' ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *v == '-' || errno || *end || end == v) {
        snprintf(err, errlen, "--seed: '%s' is not an integer in 0..2^64-1", v ? v : "");
        return -1;
    }
    *out = (uint64_t)s;
    return 0;
}

static int parse_policies(sim_opts *o, const char *v, char *err, size_t errlen)
{
    o->n_pol = 0;
    if (!v || !*v) {
        snprintf(err, errlen, "--policies needs a comma-separated list");
        return -1;
    }
    for (const char *p = v;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        const ps_sim_policy_entry *e = NULL;
        if (len > 0 && len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            e = ps_sim_policy_find(name);
        }
        if (!e) {
            size_t n;
            const ps_sim_policy_entry *all = ps_sim_policy_entries(&n);
            int k = snprintf(err, errlen, "--policies: '%.*s' is not a policy (", (int)len, p);
            for (size_t i = 0; i < n && k >= 0 && (size_t)k < errlen; i++)
                k += snprintf(err + k, errlen - (size_t)k, "%s%s", i ? ", " : "", all[i].name);
            if (k >= 0 && (size_t)k < errlen) snprintf(err + k, errlen - (size_t)k, ")");
            return -1;
        }
        for (size_t i = 0; i < o->n_pol; i++)
            if (o->pol[i] == e) {
                snprintf(err, errlen, "--policies: '%s' is listed twice", e->name);
                return -1;
            }
        if (o->n_pol == MAX_POLICIES) {
            snprintf(err, errlen, "--policies: at most %d", MAX_POLICIES);
            return -1;
        }
        o->pol[o->n_pol++] = e;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

static int copy_path(const char *flag, char *dst, const char *v, char *err, size_t errlen)
{
    if (!v || !*v || strlen(v) >= PATH_MAX) {
        snprintf(err, errlen, "%s needs a path of 1..%d bytes", flag, PATH_MAX - 1);
        return -1;
    }
    snprintf(dst, PATH_MAX, "%s", v);
    return 0;
}

/* The server's and the manager's files under the command line's --backend and --warmup. */
static int load_component_configs(sim_opts *o, char *err, size_t errlen)
{
    ps_sim_preshift_opts d = ps_sim_preshift_default_opts();
    if (o->serve_config[0]) {
        ps_backend_kind backend = o->pre.serve.backend;
        long warmup = o->pre.serve.warmup;
        o->pre.serve = d.serve;
        if (ps_serve_config_load_file(&o->pre.serve, o->serve_config, err, errlen)) return -1;
        if (o->given_backend) o->pre.serve.backend = backend;
        if (o->given_warmup) o->pre.serve.warmup = warmup;
        o->pre.serve.quiet = 1;
    }
    if (o->manage_config[0]) {
        if (ps_manage_config_load_file(&o->pre.manage, o->manage_config, err, errlen)) return -1;
        o->pre.manage.quiet = 1;
    }
    return 0;
}

/* 0 ready, 1 --help printed, -1 usage error in err. */
static int parse_args(sim_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->cfg = ps_sim_config_default();
    o->tuning = ps_sim_policy_default(PS_SIM_NAIVE);
    o->pre = ps_sim_preshift_default_opts();
    snprintf(o->plot, sizeof o->plot, "%s", default_plot);
    if (parse_policies(o, default_policies, err, errlen)) return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--tcp")) {
            o->pre.tcp = 1;
            continue;
        }
        if (!strcmp(a, "--processes")) {
            o->pre.processes = 1;
            continue;
        }
        if (!strcmp(a, "--keep-files")) {
            o->pre.keep_files = 1;
            continue;
        }
        if (a[0] != '-') {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            return -1;
        }
        if (!v) {
            snprintf(err, errlen, "%s needs a value", a);
            return -1;
        }
        i++;
        int bad;
        if (!strcmp(a, "--classes")) {
            bad = strcmp(v, "entity") && strcmp(v, "one");
            if (bad) snprintf(err, errlen, "--classes: '%s' is not entity or one", v);
            o->pre.class_per_entity = !strcmp(v, "entity");
        } else if (!strcmp(a, "--dataset")) {
            bad = copy_path(a, o->dataset, v, err, errlen);
            o->given_dataset = 1;
        } else if (!strcmp(a, "--plot")) {
            bad = copy_path(a, o->plot, v, err, errlen);
            if (!strcmp(v, "off")) o->plot[0] = '\0';
        } else if (!strcmp(a, "--seed")) {
            bad = parse_seed(v, &o->cfg.seed, err, errlen);
        } else if (!strcmp(a, "--policies")) {
            bad = parse_policies(o, v, err, errlen);
        } else if (!strcmp(a, "--backend")) {
            bad = ps_parse_backend(a, v, &o->pre.serve.backend, err, errlen);
            o->given_backend = 1;
        } else if (!strcmp(a, "--warmup")) {
            bad = ps_parse_long(a, v, 16, 100000, &o->pre.serve.warmup, err, errlen);
            o->given_warmup = 1;
        } else if (!strcmp(a, "--manage-config")) {
            bad = copy_path(a, o->manage_config, v, err, errlen);
        } else if (!strcmp(a, "--serve-config")) {
            bad = copy_path(a, o->serve_config, v, err, errlen);
        } else {
            const option *op = NULL;
            for (size_t k = 0; k < sizeof options / sizeof options[0] && !op; k++)
                if (!strcmp(a, options[k].flag)) op = &options[k];
            if (!op) {
                snprintf(err, errlen, "unknown option '%s'", a);
                return -1;
            }
            bad = apply_option(o, op, v, err, errlen);
            if (!strcmp(a, "--max-offset")) o->given_offset = 1;
            if (!strcmp(a, "--replica-groups")) o->given_groups = 1;
        }
        if (bad) return -1;
    }
    if (load_component_configs(o, err, errlen)) return -1;
    if (o->pre.processes) {
        ssize_t n = readlink("/proc/self/exe", o->exe, sizeof o->exe - 1);
        if (n <= 0) {
            snprintf(err, errlen, "--processes: cannot find this executable: %s", strerror(errno));
            return -1;
        }
        o->exe[n] = '\0';
        o->pre.exe = o->exe;
    }
    ps_sim_config *c = &o->cfg;
    /* The core's default is 500 groups of 2: 10 % of 10,000 workloads. Keep the share. */
    if (!o->given_groups) c->replica_groups = c->workloads / (10 * c->replica_size);
    if ((uint64_t)c->replica_groups * c->replica_size > c->workloads) {
        snprintf(err, errlen,
                 "--replica-groups %u of --replica-size %u need %llu workloads, not %u",
                 c->replica_groups, c->replica_size,
                 (unsigned long long)c->replica_groups * c->replica_size, c->workloads);
        return -1;
    }
    if (c->replica_groups && c->replica_size > c->processors) {
        snprintf(
            err, errlen,
            "--replica-size %u: replicas cannot be anti-affine on %u processors (--processors)",
            c->replica_size, c->processors);
        return -1;
    }
    if (c->cpu_max > c->cpu_capacity) {
        snprintf(err, errlen, "--cpu-demand up to %g exceeds --cpu-capacity %g", c->cpu_max,
                 c->cpu_capacity);
        return -1;
    }
    if (c->mem_max > c->mem_capacity) {
        snprintf(err, errlen, "--mem-demand up to %g GiB exceeds --mem-capacity %g GiB",
                 c->mem_max / GIB, c->mem_capacity / GIB);
        return -1;
    }
    if (o->tuning.naive_cpu_col < 0 && o->tuning.naive_mem_col < 0) {
        for (size_t i = 0; i < o->n_pol; i++)
            if (o->pol[i]->kind == PS_SIM_NAIVE) {
                snprintf(err, errlen, "--naive-cpu-col and --naive-mem-col are both off");
                return -1;
            }
    }
    return 0;
}

/* Dataset-dependent checks and defaults: 0 or -1 (a usage error). */
static int fit_to_dataset(sim_opts *o, const ps_sim_dataset *d, int naive, char *err, size_t errlen)
{
    ps_sim_config *c = &o->cfg;
    uint32_t min_train = UINT32_MAX, min_test = UINT32_MAX;
    const char *short_train = "", *short_test = "";
    for (uint32_t e = 0; e < d->n && e < c->processors; e++) {
        if (d->series[e].train_rows < min_train) {
            min_train = d->series[e].train_rows;
            short_train = d->entity[e].name;
        }
        if (d->series[e].test_rows < min_test) {
            min_test = d->series[e].test_rows;
            short_test = d->entity[e].name;
        }
    }
    if (c->ticks > min_test) {
        snprintf(err, errlen, "--ticks %u: the shortest test series replayed (%s) has %u rows",
                 c->ticks, short_test, min_test);
        return -1;
    }
    if (c->max_offset > min_train) {
        if (o->given_offset) {
            snprintf(err, errlen,
                     "--max-offset %u: the shortest train series replayed (%s) has %u rows",
                     c->max_offset, short_train, min_train);
            return -1;
        }
        c->max_offset = min_train;
    }
    if (naive) {
        int cols[2] = {o->tuning.naive_cpu_col, o->tuning.naive_mem_col};
        const char *flags[2] = {"--naive-cpu-col", "--naive-mem-col"};
        for (int k = 0; k < 2; k++)
            if (cols[k] >= (int)d->cols) {
                snprintf(err, errlen, "%s %d: the dataset has %u metric columns (0..%u)", flags[k],
                         cols[k], d->cols, d->cols - 1);
                return -1;
            }
    }
    return 0;
}

/* -------------------------------------------------------------- report */

static void print_col(FILE *out, int col, const char *as)
{
    if (col < 0)
        fprintf(out, "no %s column", as);
    else
        fprintf(out, "column %d as %s", col, as);
}

static void print_scenario(FILE *out, const sim_opts *o, const ps_sim_dataset *d,
                           const ps_sim_scenario *sc, int naive, int oracle)
{
    const ps_sim_config *c = &sc->cfg;
    fprintf(out, "preshift sim\n");
    fprintf(out, "dataset   %s\n", o->dataset);
    fprintf(out, "          %u entities (%s", d->n, d->entity[0].name);
    if (d->n > 1) fprintf(out, "%s%s", d->n > 2 ? " ... " : ", ", d->entity[d->n - 1].name);
    fprintf(out, "), %u metrics, %u labelled events\n", d->cols, d->n_events);
    fprintf(out, "scenario  seed %llu: %u processors, %u workloads, %u ticks of %g s (%.1f days)\n",
            (unsigned long long)c->seed, sc->P, sc->W, sc->T, c->tick_seconds,
            sc->T * c->tick_seconds / 86400);
    fprintf(out,
            "failures  %u in the run, from %u events replayed (%u after the end, %u merged "
            "into a repair)\n",
            sc->n_failures, sc->events_total, sc->events_after_end, sc->events_merged);
    fprintf(out, "model     horizon %u, repair %u, failure timeout %u, restart %u (ticks)\n",
            c->horizon, c->repair_ticks, c->failure_timeout, c->restart_ticks);
    fprintf(out,
            "          transfers at %g Gbit/s, 1..%u ticks each, fail with probability %g; "
            "noise %g\n",
            c->bandwidth * 8 / 1e9, sc->max_transfer_ticks, c->transfer_fail_prob,
            (double)c->noise_sd);
    fprintf(out, "          offsets 0..%u ticks; ", c->max_offset);
    if (c->fail_delay)
        fprintf(out, "a processor fails %u ticks after an event's onset\n", c->fail_delay);
    else
        fprintf(out, "a processor fails after an event's last row\n");
    fprintf(out, "          %u replica groups of %u, %u dependencies; capacity %g cores, %g GiB\n",
            c->replica_groups, c->replica_size, sc->n_edges, c->cpu_capacity,
            c->mem_capacity / GIB);
    if (naive) {
        fprintf(out, "naive     ");
        print_col(out, o->tuning.naive_cpu_col, "cpu");
        fprintf(out, ", ");
        print_col(out, o->tuning.naive_mem_col, "memory");
        fprintf(out, ", above %g for %u ticks\n", (double)o->tuning.naive_threshold,
                o->tuning.naive_hold);
    }
    if (oracle) fprintf(out, "oracle    margin %u ticks\n", o->tuning.oracle_margin);
    fputc('\n', out);
}

/* ---------------------------------------------------------------- main */

typedef struct run {
    const ps_sim_policy_entry *e;
    int listed;
    ps_sim_results res;
} run;

static int run_policies(sim_opts *o, const ps_sim_scenario *sc, run *runs, size_t n_runs,
                        ps_sim_preshift_report *pre, char *err, size_t errlen)
{
    o->pre.quiet = o->quiet;
    ps_sim_run_args a = {sc, o->tuning, o->quiet, &o->pre, pre};
    for (size_t i = 0; i < n_runs; i++) {
        if (!o->quiet && !runs[i].listed)
            fprintf(stderr, "sim: %s runs as the reference of the comparisons, not reported\n",
                    runs[i].e->name);
        char msg[1024];
        int rc = runs[i].e->run(runs[i].e, &a, &runs[i].res, msg, sizeof msg);
        if (rc) {
            snprintf(err, errlen, "%s: %s", runs[i].e->name, msg);
            return rc;
        }
    }
    return 0;
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *s = path + n;
    while (s > path && s[-1] != '/')
        s--;
    return s;
}

int ps_cmd_sim(int argc, char **argv)
{
    sim_opts *o = calloc(1, sizeof *o);
    if (!o) {
        fprintf(stderr, "sim: out of memory\n");
        return 1;
    }
    char err[2048];
    int rc = parse_args(o, argc, argv, err, sizeof err);
    if (rc) {
        free(o);
        if (rc == 1) return 0;
        fprintf(stderr, "sim: %s\n(preshift sim --help lists the options)\n", err);
        return 2;
    }
    if (!o->given_dataset) {
        char def[PATH_MAX + 32];
        default_dataset(def, sizeof def);
        struct stat st;
        if (stat(def, &st) || !S_ISDIR(st.st_mode) || strlen(def) >= sizeof o->dataset) {
            fprintf(stderr,
                    "sim: --dataset DIR is required: the default, %s, is not there\n"
                    "(preshift sim --help lists the options)\n",
                    def);
            free(o);
            return 2;
        }
        memcpy(o->dataset, def, strlen(def) + 1);
    }

    /* What runs: the listed policies that are available, and the references. */
    run runs[MAX_POLICIES + 2];
    size_t n_runs = 0;
    int unavailable = 0, naive = 0, oracle_listed = 0, reactive_listed = 0;
    for (size_t i = 0; i < o->n_pol; i++) {
        const ps_sim_policy_entry *e = o->pol[i];
        if (!e->run) {
            fprintf(stderr, "sim: policy '%s' is %s\n", e->name, e->unavailable);
            unavailable++;
            continue;
        }
        runs[n_runs++] = (run){e, 1, {0}};
        naive |= e->kind == PS_SIM_NAIVE;
        reactive_listed |= e->kind == PS_SIM_REACTIVE;
        oracle_listed |= e->kind == PS_SIM_ORACLE;
    }
    if (n_runs == 0) {
        fprintf(stderr, "sim: no policy to run\n");
        free(o);
        return 1;
    }
    if (!reactive_listed) runs[n_runs++] = (run){ps_sim_policy_find("reactive"), 0, {0}};
    if (!oracle_listed) runs[n_runs++] = (run){ps_sim_policy_find("oracle"), 0, {0}};

    int status = 1;
    ps_sim_dataset d;
    memset(&d, 0, sizeof d);
    ps_sim_scenario sc;
    memset(&sc, 0, sizeof sc);
    ps_sim_summary *sum = NULL;
    ps_sim_preshift_report pre;
    memset(&pre, 0, sizeof pre);
    ps_sim_threshold_summary *ths = NULL;

    double t0 = ps_sim_wall_seconds();
    if (!o->quiet) fprintf(stderr, "sim: loading %s\n", o->dataset);
    rc = ps_sim_dataset_load(o->dataset, &d, err, sizeof err);
    if (rc) {
        fprintf(stderr, "sim: %s\n", err);
        goto done;
    }
    if (d.n == 0) {
        fprintf(stderr, "sim: %s: no entity (NAME in train/, test/ and test_label/)\n", o->dataset);
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "sim: %u entities, %u metrics, %u labelled events in %.2f s\n", d.n, d.cols,
                d.n_events, ps_sim_wall_seconds() - t0);
    if (fit_to_dataset(o, &d, naive, err, sizeof err)) {
        fprintf(stderr, "sim: %s\n(preshift sim --help lists the options)\n", err);
        status = 2;
        goto done;
    }

    t0 = ps_sim_wall_seconds();
    rc = ps_sim_scenario_build(&sc, &o->cfg, d.series, d.n, err, sizeof err);
    if (rc) {
        fprintf(stderr, "sim: the scenario cannot be built: %s\n", err);
        if (rc == PS_EINVAL) {
            fprintf(stderr, "(preshift sim --help lists the options)\n");
            status = 2;
        }
        goto done;
    }
    if (!o->quiet)
        fprintf(stderr, "sim: scenario of %u processors, %u workloads, %u failures in %.2f s\n",
                sc.P, sc.W, sc.n_failures, ps_sim_wall_seconds() - t0);

    if (run_policies(o, &sc, runs, n_runs, &pre, err, sizeof err)) {
        fprintf(stderr, "sim: %s\n", err);
        goto done;
    }

    /* Summaries of the listed policies, compared with the references. */
    double reactive_min = NAN, oracle_min = NAN;
    for (size_t i = 0; i < n_runs; i++) {
        if (runs[i].e->kind == PS_SIM_REACTIVE) reactive_min = runs[i].res.interrupted_minutes;
        if (runs[i].e->kind == PS_SIM_ORACLE) oracle_min = runs[i].res.interrupted_minutes;
    }
    sum = calloc(n_runs, sizeof *sum);
    if (!sum) {
        fprintf(stderr, "sim: out of memory\n");
        goto done;
    }
    size_t n_sum = 0;
    ps_sim_plot_line lines[MAX_POLICIES + 2];
    for (size_t i = 0; i < n_runs; i++) {
        if (!runs[i].listed) continue;
        if (ps_sim_summarize(&sum[n_sum], runs[i].e->name, &sc, &runs[i].res)) {
            fprintf(stderr, "sim: out of memory\n");
            goto done;
        }
        ps_sim_summary_compare(&sum[n_sum], reactive_min, oracle_min);
        lines[n_sum] = (ps_sim_plot_line){runs[i].e->name, runs[i].res.cum_interrupted_minutes,
                                          runs[i].res.cum_unnecessary};
        n_sum++;
    }

    ths = calloc(pre.n_classes ? pre.n_classes : 1, sizeof *ths);
    if (!ths) {
        fprintf(stderr, "sim: out of memory\n");
        goto done;
    }
    ps_sim_threshold_summarize(&pre, ths);
    if (o->json) {
        for (size_t i = 0; i < n_sum; i++) {
            char line[4096];
            if (ps_sim_summary_json(&sum[i], line, sizeof line) >= (int)sizeof line) {
                fprintf(stderr, "sim: a JSON line is too long\n");
                goto done;
            }
            if (strcmp(sum[i].policy, "preshift") || !pre.n_classes) {
                printf("%s\n", line);
                continue;
            }
            /* The thresholds' trajectory goes into preshift's object. */
            size_t need = (size_t)ps_sim_threshold_json(ths, pre.n_classes, NULL, 0) + 1;
            char *member = malloc(need);
            if (!member) {
                fprintf(stderr, "sim: out of memory\n");
                goto done;
            }
            ps_sim_threshold_json(ths, pre.n_classes, member, need);
            printf("%.*s,%s}\n", (int)strlen(line) - 1, line, member);
            free(member);
        }
    } else {
        print_scenario(stdout, o, &d, &sc, naive, oracle_listed);
        ps_sim_report_table(stdout, sum, n_sum);
        if (pre.n_classes) {
            fputc('\n', stdout);
            ps_sim_threshold_table(stdout, ths, pre.n_classes, 16);
        }
        printf(
            "\nInterrupted workload-minutes: workload-ticks not running x %g s / 60. Reduction:\n"
            "(reactive - policy) / reactive. Share of the oracle's: (reactive - policy) /\n"
            "(reactive - oracle). Lead time: failure - first shift off it. '-': undefined\n"
            "(no averted failure, or nothing to reduce). Model: docs/evaluation.md.\n",
            sc.cfg.tick_seconds);
        for (size_t i = 0; i < o->n_pol; i++)
            if (!o->pol[i]->run) printf("%s: %s\n", o->pol[i]->name, o->pol[i]->unavailable);
    }
    if (pre.dir[0] && o->pre.keep_files)
        fprintf(stderr,
                "sim: preshift kept its files (manage.db: the store; cluster.workloads) in %s\n",
                pre.dir);
    fflush(stdout);

    status = unavailable ? 1 : 0;
    if (o->plot[0]) {
        char title[PATH_MAX + 256];
        snprintf(title, sizeof title, "preshift sim: %s, seed %llu, %u processors, %u workloads",
                 base_name(o->dataset), (unsigned long long)sc.cfg.seed, sc.P, sc.W);
        t0 = ps_sim_wall_seconds();
        rc = ps_sim_plot(o->plot, title, lines, n_sum, sc.T, sc.cfg.tick_seconds, err, sizeof err);
        if (rc == 0) {
            if (o->json) {
                if (!o->quiet) fprintf(stderr, "sim: plot written to %s\n", o->plot);
            } else {
                printf(
                    "plot: %s (cumulative interrupted workload-minutes and unnecessary shifts)\n",
                    o->plot);
            }
            if (!o->quiet) fprintf(stderr, "sim: plot in %.2f s\n", ps_sim_wall_seconds() - t0);
        } else if (rc == PS_SIM_PLOT_NO_GNUPLOT) {
            fprintf(stderr, "sim: %s: no plot written\n", err);
            if (!o->json) printf("plot: not written (%s)\n", err);
        } else {
            fprintf(stderr, "sim: plot %s: %s\n", o->plot, err);
            if (!o->json) printf("plot: not written (see the error)\n");
            status = 1;
        }
    }

done:
    for (size_t i = 0; i < n_runs; i++)
        ps_sim_results_free(&runs[i].res);
    free(sum);
    free(ths);
    ps_sim_preshift_report_free(&pre);
    ps_sim_scenario_free(&sc);
    ps_sim_dataset_free(&d);
    free(o);
    return status;
}
