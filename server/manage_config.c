/*
 * manage_config.c - options of `preshift manage` (manage_config.h).
 *
 * Every option is one row of `options`: its flag, how its value is parsed,
 * where it lands in ps_manage_config, its range and its help line. Parsing
 * (flags and file), --help and the printed configuration all walk that
 * table, so an option cannot be documented, printed or parsed differently.
 */
#include "manage_config.h"

#include "cli.h"
#include "server/protocol.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    O_STR,     /* char[PS_MANAGE_STR_MAX] */
    O_LIST,    /* char[PS_MANAGE_MAX_SUBS][PS_MANAGE_STR_MAX], count at aux */
    O_FLAG,    /* int, no value on the command line */
    O_U32,     /* uint32_t */
    O_LONG,    /* long */
    O_NUM,     /* double */
    O_METRIC,  /* int: index or PS_MANAGE_NO_METRIC ("none") */
    O_METRICS, /* int[2], count at aux */
} opt_kind;

typedef struct option {
    const char *flag;
    opt_kind kind;
    size_t off, aux;
    double lo, hi;
    const char *arg, *help;
} option;

#define F(f) offsetof(ps_manage_config, f)
#define POL(f) offsetof(ps_manage_config, policy.f)
#define THR(f) offsetof(ps_manage_config, threshold.f)
static const option options[] = {
    {"--subscribe", O_LIST, F(subscribe), F(n_subscribe), 0, 0, "URL",
     "a scoring server's PUB address (repeat for servers sharding the processors)"},
    {"--server", O_LIST, F(server), F(n_server), 0, 0, "URL",
     "the REP address of the --subscribe of the same rank, asked for op latest after a gap"},
    {"--workloads", O_STR, F(workloads), 0, 0, 0, "FILE",
     "workload file (docs/workloads.md) loaded into an empty store"},
    {"--reload-workloads", O_FLAG, F(reload_workloads), 0, 0, 0, "",
     "replace the store's cluster by a --workloads file that differs from it"},
    {"--store", O_STR, F(store), 0, 0, 0, "FILE", "the manager's SQLite store (docs/store.md)"},
    {"--control", O_STR, F(control), 0, 0, 0, "ADDR",
     "REP socket for run-time changes (ipc://, tcp://, tls+tcp://) or off"},
    {"--http", O_STR, F(http), 0, 0, 0, "URL",
     "/metrics /healthz /readyz: http://HOST:PORT or off"},
    {"--tls-ca", O_STR, F(tls_ca), 0, 0, 0, "FILE", "PEM CA to verify tls+tcp:// peers with"},
    {"--tls-cert", O_STR, F(tls_cert), 0, 0, 0, "FILE", "PEM certificate of the manager"},
    {"--tls-key", O_STR, F(tls_key), 0, 0, 0, "FILE", "its PEM private key"},
    {"--hold-ticks", O_U32, POL(trigger.hold_ticks), 0, 1, 1e6, "N",
     "ticks with PFP above the threshold before a processor triggers"},
    {"--reset-margin", O_NUM, POL(trigger.reset_margin), 0, 0, 20, "X",
     "dead band below the threshold, log-odds"},
    {"--cooldown-ticks", O_U32, POL(trigger.cooldown_ticks), 0, 0, 1e9, "N",
     "ticks before a moved workload may move again"},
    {"--residual-share", O_NUM, POL(residual_at_threshold), 0, 0, 1, "X",
     "share of a triggered processor's expected loss left in place at PFP = threshold"},
    {"--max-moves", O_U32, POL(max_moves_per_pass), 0, 0, 1e9, "N", "moves per decision pass"},
    {"--max-moves-per-processor", O_U32, POL(max_moves_per_processor), 0, 0, 1e9, "N",
     "moves off one processor per pass"},
    {"--max-utilization", O_NUM, POL(placement.max_utilization), 0, 0.01, 1, "X",
     "CPU and memory share a target may reach with a workload moved to it"},
    {"--max-target-pfp", O_NUM, POL(placement.max_target_pfp), 0, 0, 0.999999, "X",
     "highest PFP of a target"},
    {"--pfp-band", O_NUM, POL(placement.pfp_band), 0, 1e-6, 1, "X",
     "targets' PFPs closer than this rank alike (1: by headroom only)"},
    {"--threshold-initial", O_NUM, THR(initial), 0, 1e-6, 1 - 1e-9, "P",
     "PFP threshold of every class at its first start"},
    {"--threshold-min", O_NUM, THR(min), 0, 1e-6, 1 - 1e-9, "P", "lowest threshold"},
    {"--threshold-max", O_NUM, THR(max), 0, 1e-6, 1 - 1e-9, "P", "highest threshold"},
    {"--step-down", O_NUM, THR(step_down), 0, 0, 10, "Z", "log-odds down per averted failure"},
    {"--step-unnecessary", O_NUM, THR(step_unnecessary), 0, 0, 10, "Z",
     "log-odds up per unnecessary shift"},
    {"--step-disruptive", O_NUM, THR(step_disruptive), 0, 0, 10, "Z",
     "log-odds up per disruptive shift"},
    {"--step-missed", O_NUM, THR(step_missed), 0, 0, 10, "Z",
     "log-odds down per failure no shift preceded"},
    {"--failure-timeout", O_NUM, F(failure_timeout), 0, 0.001, 1e9, "S",
     "stream seconds without a record before a processor is failed over"},
    {"--horizon", O_NUM, F(horizon), 0, 0.001, 1e9, "S",
     "stream seconds after a shift before it counts as unnecessary"},
    {"--max-transfers", O_LONG, F(max_transfers), 0, 1, 65536, "N", "transfers in flight at most"},
    {"--transfer-timeout", O_NUM, F(transfer_timeout), 0, 0.01, 86400, "S",
     "seconds one transfer phase may take before it rolls back"},
    {"--retry-backoff", O_NUM, F(retry_backoff), 0, 0, 1e9, "S",
     "stream seconds a target that refused (or failed) a workload is passed over for it"},
    {"--overload", O_NUM, F(overload), 0, 0.01, 1, "X",
     "CPU or memory share of a target, within the horizon, that makes a shift disruptive"},
    {"--environment-every", O_NUM, F(environment_every), 0, 0, 1e9, "S",
     "stream seconds between samples of the cluster's load and the transfers' speed, which "
     "move every threshold (0: every pass)"},
    {"--cpu-metric", O_METRIC, F(cpu_metric), 0, 0, PS_PROTO_MAX_K - 1, "I|none",
     "heartbeat metric holding CPU use as a share of the processor"},
    {"--mem-metric", O_METRIC, F(mem_metric), 0, 0, PS_PROTO_MAX_K - 1, "I|none",
     "heartbeat metric holding memory use as a share"},
    {"--net-metric", O_METRICS, F(net_metric), F(n_net_metric), 0, PS_PROTO_MAX_K - 1, "I[,J]|none",
     "heartbeat metrics in bytes/s over the processor's net= (the busier counts)"},
    {"--quiet", O_FLAG, F(quiet), 0, 0, 0, "", "print only errors (also -q)"},
};
#undef F
#undef POL
#undef THR
#define N_OPTIONS (sizeof options / sizeof options[0])

void ps_manage_config_default(ps_manage_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->store, sizeof c->store, "preshift-manage.db");
    snprintf(c->control, sizeof c->control, "ipc://preshift-manage.ctl");
    snprintf(c->http, sizeof c->http, "http://127.0.0.1:5558");
    c->policy = ps_policy_default_config();
    c->threshold = ps_threshold_default_config();
    /*
     * The scorer's PFP is calibrated on the false-alarm side (docs/pfp.md):
     * on a healthy processor it is about the percentile of its score among
     * its own healthy scores, so healthy processors sit anywhere in [0, 1]
     * and 0.999 is a one-in-a-thousand tick. The policy's defaults read a PFP
     * as a risk near 0 when healthy; these read it as the scorer means it.
     */
    c->threshold.initial = 0.999;
    c->threshold.min = 0.99;
    c->threshold.max = 0.999999;
    c->policy.placement.max_target_pfp = 0.99; /* not in its own top 1 % */
    c->policy.placement.pfp_band = 1;          /* healthy PFPs rank alike: headroom decides */
    c->failure_timeout = 30;
    c->horizon = 600;
    c->transfer_timeout = 30;
    c->retry_backoff = 60;
    c->overload = 0.95;
    c->environment_every = 10;
    c->max_transfers = 16;
    c->cpu_metric = 0; /* preshift agent: cpu, mem, net_rx, net_tx, disk_rd, disk_wr */
    c->mem_metric = 1;
    c->net_metric[0] = 2;
    c->net_metric[1] = 3;
    c->n_net_metric = 2;
}

static const option *find_option(const char *flag)
{
    if (!strcmp(flag, "-q")) flag = "--quiet";
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!strcmp(flag, options[i].flag)) return &options[i];
    return NULL;
}

static int parse_metric(const char *flag, const char *v, double hi, int *out, char *err,
                        size_t errlen)
{
    if (!strcmp(v, "none")) {
        *out = PS_MANAGE_NO_METRIC;
        return 0;
    }
    long l;
    if (ps_parse_long(flag, v, 0, (long)hi, &l, err, errlen)) return -1;
    *out = (int)l;
    return 0;
}

static int parse_bool(const char *flag, const char *v, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no",
                                                                                "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(v, yes[i])) return *out = 1, 0;
        if (!strcmp(v, no[i])) return *out = 0, 0;
    }
    snprintf(err, errlen, "%s: '%s' is not true or false", flag, v);
    return -1;
}

/*
 * Set option o from value v. *lists marks the lists already begun by this
 * source (a file, or the command line), so a new source replaces a list
 * rather than appending to another source's. 0 or -1.
 */
static int apply(ps_manage_config *c, const option *o, const char *v, unsigned *lists, char *err,
                 size_t errlen)
{
    char *field = (char *)c + o->off;
    int *count = o->aux ? (int *)((char *)c + o->aux) : NULL;
    switch (o->kind) {
    case O_STR:
    case O_LIST: {
        size_t n = strlen(v);
        if (n == 0 || n >= PS_MANAGE_STR_MAX) {
            snprintf(err, errlen, "%s: value must be 1..%d bytes", o->flag, PS_MANAGE_STR_MAX - 1);
            return -1;
        }
        if (o->kind == O_STR) {
            memcpy(field, v, n + 1);
            return 0;
        }
        unsigned bit = o->off == offsetof(ps_manage_config, subscribe) ? 1u : 2u;
        if (!(*lists & bit)) *count = 0;
        *lists |= bit;
        if (*count >= PS_MANAGE_MAX_SUBS) {
            snprintf(err, errlen, "%s: at most %d", o->flag, PS_MANAGE_MAX_SUBS);
            return -1;
        }
        memcpy(field + (size_t)(*count)++ * PS_MANAGE_STR_MAX, v, n + 1);
        return 0;
    }
    case O_FLAG:
        return parse_bool(o->flag, v, (int *)field, err, errlen);
    case O_U32:
    case O_LONG: {
        long l;
        if (ps_parse_long(o->flag, v, (long)o->lo, (long)o->hi, &l, err, errlen)) return -1;
        if (o->kind == O_U32)
            *(uint32_t *)field = (uint32_t)l;
        else
            *(long *)field = l;
        return 0;
    }
    case O_NUM:
        return ps_parse_double(o->flag, v, o->lo, o->hi, (double *)field, err, errlen);
    case O_METRIC:
        return parse_metric(o->flag, v, o->hi, (int *)field, err, errlen);
    case O_METRICS: {
        if (!strcmp(v, "none")) return *count = 0, 0;
        long l[2];
        int n = ps_parse_long_list(o->flag, v, 0, (long)o->hi, l, 2, err, errlen);
        if (n < 0) return -1;
        for (int i = 0; i < n; i++)
            ((int *)field)[i] = (int)l[i];
        *count = n;
        return 0;
    }
    }
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int ps_manage_config_load_file(ps_manage_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the configuration file", path);
        return -1;
    }
    char *line = NULL, msg[512], flag[96];
    size_t cap = 0;
    unsigned lists = 0;
    int rc = 0;
    for (long no = 1; rc == 0 && getline(&line, &cap, f) >= 0; no++) {
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (eq) *eq = '\0';
        char *key = trim(s);
        snprintf(flag, sizeof flag, "--%s", key);
        const option *o = strlen(key) < sizeof flag - 3 ? find_option(flag) : NULL;
        if (!eq)
            snprintf(msg, sizeof msg, "expected 'key = value'");
        else if (!o)
            snprintf(msg, sizeof msg, "'%s' is not an option of the file", key);
        if (!eq || !o || apply(c, o, trim(eq + 1), &lists, msg, sizeof msg)) {
            snprintf(err, errlen, "%s:%ld: %s", path, no, msg);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

int ps_manage_config_parse(ps_manage_config *c, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            ps_manage_usage(stdout);
            return 1;
        }
    }
    /* The file first, wherever --config stands, so that flags override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config")) continue;
        if (i + 1 >= argc) {
            snprintf(err, errlen, "--config needs a value");
            return -1;
        }
        if (ps_manage_config_load_file(c, argv[++i], err, errlen)) return -1;
    }
    unsigned lists = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            i++;
            continue;
        }
        const option *o = find_option(argv[i]);
        if (!o) {
            snprintf(err, errlen, argv[i][0] == '-' ? "unknown option '%s'" : "unexpected '%s'",
                     argv[i]);
            return -1;
        }
        const char *v = o->kind == O_FLAG ? "true" : i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            snprintf(err, errlen, "%s needs a value", o->flag);
            return -1;
        }
        if (apply(c, o, v, &lists, err, errlen)) return -1;
    }
    return ps_manage_config_check(c, err, errlen);
}

static int is_sp_address(const char *a)
{
    return !strncmp(a, "tcp://", 6) || !strncmp(a, "ipc://", 6) || !strncmp(a, "tls+tcp://", 10);
}

int ps_manage_config_check(const ps_manage_config *c, char *err, size_t errlen)
{
    if (c->n_subscribe == 0) {
        snprintf(err, errlen, "--subscribe: give the PUB address of at least one scoring server");
        return -1;
    }
    if (c->n_server && c->n_server != c->n_subscribe) {
        snprintf(err, errlen,
                 "%d --server for %d --subscribe: give none, or one per --subscribe in the "
                 "same order",
                 c->n_server, c->n_subscribe);
        return -1;
    }
    for (int i = 0; i < c->n_subscribe + c->n_server; i++) {
        const char *a = i < c->n_subscribe ? c->subscribe[i] : c->server[i - c->n_subscribe];
        if (!is_sp_address(a)) {
            snprintf(err, errlen, "%s '%s': expected tcp://, ipc:// or tls+tcp://",
                     i < c->n_subscribe ? "--subscribe" : "--server", a);
            return -1;
        }
    }
    if (strcmp(c->control, "off") && !is_sp_address(c->control)) {
        snprintf(err, errlen, "--control '%s': expected ipc://, tcp://, tls+tcp:// or off",
                 c->control);
        return -1;
    }
    if (strcmp(c->http, "off") && strncmp(c->http, "http://", 7)) {
        snprintf(err, errlen, "--http '%s': expected http://HOST:PORT or off", c->http);
        return -1;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (!strncmp(c->control, "tls+", 4) && !c->tls_cert[0]) {
        snprintf(err, errlen, "a tls+tcp:// --control needs --tls-cert and --tls-key");
        return -1;
    }
    if (ps_policy_config_check(&c->policy, err, errlen) ||
        ps_threshold_config_check(&c->threshold, err, errlen))
        return -1;
    return 0;
}

/* The value of option o in c, as a flag would give it. */
static void format_value(const ps_manage_config *c, const option *o, char *buf, size_t len)
{
    const char *field = (const char *)c + o->off;
    int count = o->aux ? *(const int *)((const char *)c + o->aux) : 0;
    switch (o->kind) {
    case O_STR:
        snprintf(buf, len, "%s", *field ? field : "(none)");
        break;
    case O_LIST:
        buf[0] = '\0';
        for (int i = 0; i < count; i++)
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "",
                     field + (size_t)i * PS_MANAGE_STR_MAX);
        if (!count) snprintf(buf, len, "(none)");
        break;
    case O_FLAG:
        snprintf(buf, len, "%s", *(const int *)field ? "true" : "false");
        break;
    case O_U32:
        snprintf(buf, len, "%u", (unsigned)*(const uint32_t *)field);
        break;
    case O_LONG:
        snprintf(buf, len, "%ld", *(const long *)field);
        break;
    case O_NUM:
        snprintf(buf, len, "%g", *(const double *)field);
        break;
    case O_METRIC:
        if (*(const int *)field < 0)
            snprintf(buf, len, "none");
        else
            snprintf(buf, len, "%d", *(const int *)field);
        break;
    case O_METRICS:
        if (!count) snprintf(buf, len, "none");
        if (count == 1) snprintf(buf, len, "%d", ((const int *)field)[0]);
        if (count == 2)
            snprintf(buf, len, "%d,%d", ((const int *)field)[0], ((const int *)field)[1]);
        break;
    }
}

void ps_manage_config_print(const ps_manage_config *c, FILE *out)
{
    char buf[PS_MANAGE_MAX_SUBS * PS_MANAGE_STR_MAX];
    fprintf(out, "preshift manage: effective configuration\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        format_value(c, &options[i], buf, sizeof buf);
        fprintf(out, "  %-24s = %s\n", options[i].flag + 2, buf);
    }
}

void ps_manage_config_write(const ps_manage_config *c, FILE *out)
{
    char buf[PS_MANAGE_MAX_SUBS * PS_MANAGE_STR_MAX];
    fprintf(out, "# preshift manage --config FILE\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option *o = &options[i];
        const char *field = (const char *)c + o->off;
        if (o->kind == O_LIST) {
            int n = *(const int *)((const char *)c + o->aux);
            for (int k = 0; k < n; k++)
                fprintf(out, "%s = %s\n", o->flag + 2, field + (size_t)k * PS_MANAGE_STR_MAX);
            continue;
        }
        if (o->kind == O_STR && !*field) continue;
        if (o->kind == O_NUM)
            snprintf(buf, sizeof buf, "%.17g", *(const double *)field);
        else
            format_value(c, o, buf, sizeof buf);
        fprintf(out, "%s = %s\n", o->flag + 2, buf);
    }
}

/* text word-wrapped to 80 columns, continuation lines indented by indent. */
static void wrap(FILE *out, const char *text, int col, int indent)
{
    while (*text) {
        int n = (int)strcspn(text, " ");
        if (col + 1 + n > 80 && col > indent) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        }
        col += fprintf(out, " %.*s", n, text);
        text += n;
        while (*text == ' ')
            text++;
    }
    fputc('\n', out);
}

void ps_manage_usage(FILE *out)
{
    ps_manage_config d;
    ps_manage_config_default(&d);
    char buf[PS_MANAGE_STR_MAX], text[PS_MANAGE_STR_MAX + 512];
    fprintf(out, "usage: preshift manage --subscribe URL [options]\n"
                 "       preshift manage --ctl ADDR 'REQUEST'\n"
                 "\n"
                 "The shifting manager: follows the PFP stream of one or more scoring servers,\n"
                 "moves workloads off processors likely to fail, fails over the ones that stop\n"
                 "reporting, and learns its thresholds from how shifts turned out. Its time is\n"
                 "the stream's (the latest heartbeat time seen). docs/manage.md describes it.\n"
                 "With --ctl it sends one request (docs/manage.md, \"Control socket\") to a\n"
                 "running manager's --control address, prints the answer and exits 0 for ok.\n"
                 "\n"
                 "options (a file line 'key = value' sets --key; flags override the file):\n"
                 "  --config FILE             read options from FILE first (default: none)\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option *o = &options[i];
        format_value(&d, o, buf, sizeof buf);
        snprintf(text, sizeof text, "%s (default %s)", o->help, buf);
        int col = fprintf(out, "  %s %s", o->flag, o->arg);
        if (col < 27) col += fprintf(out, "%*s", 27 - col, "");
        wrap(out, text, col, 27);
    }
}
