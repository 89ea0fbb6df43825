/*
 * serve_config.c - options of `preshift serve`.
 *
 * The scorer's tuning options (--lstm-weight, --arima, ...) are parsed by
 * ps_score_parse_option, the parser `preshift score` uses, so that both
 * commands accept the same values with the same messages. The options whose
 * meaning differs for a server (--warmup counts ticks of each processor, not
 * rows of a file; --history has no meaning here) are parsed here first.
 */
#include "serve_config.h"

#include "cli.h"
#include "core/arima.h"
#include "score_files.h"
#include "server/protocol.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef PRESHIFT_SOURCE_DIR
#define PRESHIFT_SOURCE_DIR "."
#endif

void ps_serve_config_default(ps_serve_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "tcp://127.0.0.1:5555");
    snprintf(c->publish, sizeof c->publish, "tcp://127.0.0.1:5556");
    snprintf(c->http, sizeof c->http, "http://127.0.0.1:5557");
    c->metrics = 0;
    c->max_processors = 10000;
    /* Far below `score`'s 750: the scorer keeps each warming processor's
     * rows, so warm-up length times processors is memory. */
    c->warmup = 120;
    c->contexts = 64;
    c->max_batch = 65536;
    c->max_queue = 262144;
    c->batch_delay = 0.005;
    c->stale_after = 30;
    snprintf(c->state, sizeof c->state, "off");
    c->snapshot_every = 60;
    c->evict_after = 3600;
    c->backend = PS_BACKEND_DEFAULT;
    c->threads = 0;
    c->scorer = ps_scorer_default_config();
}

const char *ps_serve_model_path(const ps_serve_config *c, char *buf, size_t buflen)
{
    if (c->model[0]) return c->model;
    const char *env = getenv("PRESHIFT_MODEL");
    if (env && *env) return env;
    snprintf(buf, buflen, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
    return buf;
}

static int copy_str(const char *flag, char *dst, const char *v, char *err, size_t errlen)
{
    size_t n = strlen(v);
    if (n == 0 || n >= PS_SERVE_STR_MAX) {
        snprintf(err, errlen, "%s: value must be 1..%d bytes", flag, PS_SERVE_STR_MAX - 1);
        return -1;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

static int parse_bool(const char *flag, const char *v, int *out, char *err, size_t errlen)
{
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) {
        *out = 0;
        return 0;
    }
    snprintf(err, errlen, "%s: '%s' is not true or false", flag, v);
    return -1;
}

/* The server's own options; every other one is the scorer's (see apply). */
typedef enum { OPT_STR, OPT_LONG, OPT_SECONDS, OPT_MS, OPT_BACKEND } opt_kind;

typedef struct option {
    const char *flag;
    opt_kind kind;
    size_t offset; /* of the field in ps_serve_config */
    double lo, hi; /* range of a number, in the flag's unit */
} option;

#define FIELD(f) offsetof(ps_serve_config, f)
static const option options[] = {
    {"--listen", OPT_STR, FIELD(listen), 0, 0},
    {"--publish", OPT_STR, FIELD(publish), 0, 0},
    {"--http", OPT_STR, FIELD(http), 0, 0},
    {"--tls-cert", OPT_STR, FIELD(tls_cert), 0, 0},
    {"--tls-key", OPT_STR, FIELD(tls_key), 0, 0},
    {"--tls-ca", OPT_STR, FIELD(tls_ca), 0, 0},
    {"--model", OPT_STR, FIELD(model), 0, 0},
    {"--state", OPT_STR, FIELD(state), 0, 0},
    {"--metrics", OPT_LONG, FIELD(metrics), 1, PS_PROTO_MAX_K},
    {"--max-processors", OPT_LONG, FIELD(max_processors), 1, 10000000},
    {"--warmup", OPT_LONG, FIELD(warmup), 16, 100000},
    {"--contexts", OPT_LONG, FIELD(contexts), 1, 65536},
    {"--max-batch", OPT_LONG, FIELD(max_batch), 1, 1L << 24},
    {"--max-queue", OPT_LONG, FIELD(max_queue), 1, 1L << 28},
    {"--threads", OPT_LONG, FIELD(threads), 0, 64},
    {"--batch-delay", OPT_MS, FIELD(batch_delay), 0, 60000},
    {"--stale-after", OPT_SECONDS, FIELD(stale_after), 0.001, 1e9},
    {"--snapshot-every", OPT_SECONDS, FIELD(snapshot_every), 0.01, 1e9},
    {"--evict-after", OPT_SECONDS, FIELD(evict_after), 0, 1e9},
    {"--backend", OPT_BACKEND, FIELD(backend), 0, 0},
};
#undef FIELD

/*
 * Apply option `flag` (with its leading dashes) and its value (NULL when
 * absent). Returns 2 when the value was used, 1 for a flag without one,
 * 0 for an unknown option, -1 for a bad value.
 */
static int apply(ps_serve_config *c, const char *flag, const char *v, char *err, size_t errlen)
{
    if (!strcmp(flag, "-q") || !strcmp(flag, "--quiet")) {
        c->quiet = 1;
        return 1;
    }
    if (!strcmp(flag, "--history")) return 0;
    const option *o = NULL;
    for (size_t i = 0; i < sizeof options / sizeof options[0] && !o; i++)
        if (!strcmp(flag, options[i].flag)) o = &options[i];
    if (!o) {
        /* The scorer's tuning options, shared with `preshift score`. */
        char *argv[2] = {(char *)flag, (char *)v};
        int i = 0;
        ps_score_job job = ps_score_job_default();
        job.cfg = c->scorer;
        int rc = ps_score_parse_option(&job, v ? 2 : 1, argv, &i, err, errlen);
        if (rc <= 0) return rc;
        c->scorer = job.cfg;
        return i == 1 ? 2 : 1;
    }
    if (!v) {
        snprintf(err, errlen, "%s needs a value", flag);
        return -1;
    }
    char *field = (char *)c + o->offset;
    long l = 0;
    double x = 0;
    int bad = 0;
    switch (o->kind) {
    case OPT_STR:
        bad = copy_str(flag, field, v, err, errlen);
        break;
    case OPT_LONG:
        bad = ps_parse_long(flag, v, (long)o->lo, (long)o->hi, &l, err, errlen);
        if (!bad) memcpy(field, &l, sizeof l);
        break;
    case OPT_SECONDS:
    case OPT_MS:
        bad = ps_parse_double(flag, v, o->lo, o->hi, &x, err, errlen);
        if (o->kind == OPT_MS) x /= 1000;
        if (!bad) memcpy(field, &x, sizeof x);
        break;
    case OPT_BACKEND:
        bad = ps_parse_backend(flag, v, &c->backend, err, errlen);
        break;
    }
    return bad ? -1 : 2;
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

int ps_serve_config_load_file(ps_serve_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the configuration file", path);
        return -1;
    }
    char *line = NULL, msg[512];
    size_t cap = 0;
    int rc = 0;
    for (long no = 1; getline(&line, &cap, f) >= 0; no++) {
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%ld: expected 'key = value'", path, no);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        char flag[96];
        if (!*key || strlen(key) > sizeof flag - 3 || !strcmp(key, "config")) {
            snprintf(err, errlen, "%s:%ld: '%s' is not an option of the file", path, no, key);
            rc = -1;
            break;
        }
        snprintf(flag, sizeof flag, "--%s", key);
        int got;
        if (!strcmp(key, "quiet")) {
            got = parse_bool(flag, value, &c->quiet, msg, sizeof msg) ? -1 : 2;
        } else {
            got = apply(c, flag, value, msg, sizeof msg);
            if (got == 1) snprintf(msg, sizeof msg, "%s takes no value", flag);
        }
        if (got == 0) snprintf(msg, sizeof msg, "unknown option '%s'", key);
        if (got != 2) {
            snprintf(err, errlen, "%s:%ld: %s", path, no, msg);
            rc = -1;
            break;
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

int ps_serve_config_parse(ps_serve_config *c, int argc, char **argv, char *err, size_t errlen)
{
    /* The file first, wherever --config stands, so that flags override it. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            ps_serve_usage(stdout);
            return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config")) continue;
        if (i + 1 >= argc) {
            snprintf(err, errlen, "--config needs a value");
            return -1;
        }
        if (ps_serve_config_load_file(c, argv[++i], err, errlen)) return -1;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            i++;
            continue;
        }
        if (argv[i][0] != '-') {
            snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
            return -1;
        }
        int got = apply(c, argv[i], i + 1 < argc ? argv[i + 1] : NULL, err, errlen);
        if (got == 0) snprintf(err, errlen, "unknown option '%s'", argv[i]);
        if (got <= 0) return -1;
        i += got - 1;
    }
    return ps_serve_config_check(c, err, errlen);
}

static int is_sp_address(const char *a)
{
    return !strncmp(a, "tcp://", 6) || !strncmp(a, "ipc://", 6) || !strncmp(a, "tls+tcp://", 10);
}

int ps_serve_config_check(const ps_serve_config *c, char *err, size_t errlen)
{
    if (!is_sp_address(c->listen)) {
        snprintf(err, errlen, "--listen '%s': expected tcp://, ipc:// or tls+tcp://", c->listen);
        return -1;
    }
    if (strcmp(c->publish, "off") && !is_sp_address(c->publish)) {
        snprintf(err, errlen, "--publish '%s': expected tcp://, ipc://, tls+tcp:// or off",
                 c->publish);
        return -1;
    }
    if (strcmp(c->http, "off") && strncmp(c->http, "http://", 7) &&
        strncmp(c->http, "https://", 8)) {
        snprintf(err, errlen, "--http '%s': expected http://, https:// or off", c->http);
        return -1;
    }
    int tls = !strncmp(c->listen, "tls+", 4) || !strncmp(c->publish, "tls+", 4) ||
              !strncmp(c->http, "https://", 8);
    if (tls && (!c->tls_cert[0] || !c->tls_key[0])) {
        snprintf(err, errlen, "a tls+tcp:// or https:// address needs --tls-cert and --tls-key");
        return -1;
    }
    if (!tls && (c->tls_cert[0] || c->tls_key[0] || c->tls_ca[0])) {
        snprintf(err, errlen,
                 "--tls-cert, --tls-key and --tls-ca need a tls+tcp:// or "
                 "https:// address");
        return -1;
    }
    if (c->evict_after > 0 && c->evict_after < c->stale_after) {
        snprintf(err, errlen,
                 "--evict-after %g is shorter than --stale-after %g: a processor would be "
                 "forgotten before it counts as stale (0 turns eviction off)",
                 c->evict_after, c->stale_after);
        return -1;
    }
    const ps_scorer_config *sc = &c->scorer;
    size_t need = ps_arima_min_window(sc->arima_p, sc->arima_d, sc->arima_q);
    if (sc->lstm_weight < 1 && (size_t)c->warmup < need) {
        /* The scorer fits ARIMA on the warm-up rows; finding out at the
         * first processor's activation would fail its tick instead. */
        snprintf(err, errlen, "--warmup %ld is too short to fit ARIMA(%d,%d,%d): at least %zu",
                 c->warmup, sc->arima_p, sc->arima_d, sc->arima_q, need);
        return -1;
    }
    return 0;
}

void ps_serve_config_print(const ps_serve_config *c, FILE *out)
{
    char buf[PS_SERVE_STR_MAX + 64];
    const ps_scorer_config *s = &c->scorer;
    fprintf(out, "preshift serve: effective configuration\n");
    fprintf(out, "  listen          = %s\n", c->listen);
    fprintf(out, "  publish         = %s\n", c->publish);
    fprintf(out, "  http            = %s\n", c->http);
    fprintf(out, "  tls-cert        = %s\n", c->tls_cert[0] ? c->tls_cert : "(none)");
    fprintf(out, "  tls-key         = %s\n", c->tls_key[0] ? c->tls_key : "(none)");
    fprintf(out, "  tls-ca          = %s\n",
            c->tls_ca[0] ? c->tls_ca : "(none: clients need no certificate)");
    fprintf(out, "  model           = %s\n", ps_serve_model_path(c, buf, sizeof buf));
    if (c->metrics)
        fprintf(out, "  metrics         = %ld\n", c->metrics);
    else
        fprintf(out, "  metrics         = (the model's)\n");
    fprintf(out, "  max-processors  = %ld\n", c->max_processors);
    fprintf(out, "  warmup          = %ld\n", c->warmup);
    fprintf(out, "  contexts        = %ld\n", c->contexts);
    fprintf(out, "  max-batch       = %ld\n", c->max_batch);
    fprintf(out, "  max-queue       = %ld\n", c->max_queue);
    fprintf(out, "  batch-delay     = %g\n", c->batch_delay * 1000);
    fprintf(out, "  stale-after     = %g\n", c->stale_after);
    fprintf(out, "  state           = %s\n",
            strcmp(c->state, "off") ? c->state : "off (nothing survives a restart)");
    fprintf(out, "  snapshot-every  = %g\n", c->snapshot_every);
    if (c->evict_after > 0)
        fprintf(out, "  evict-after     = %g\n", c->evict_after);
    else
        fprintf(out, "  evict-after     = 0 (never)\n");
    fprintf(out, "  backend         = %s\n",
            c->backend == PS_BACKEND_CPU    ? "cpu"
            : c->backend == PS_BACKEND_CUDA ? "cuda"
                                            : "(the build's default)");
    fprintf(out, "  threads         = %ld\n", c->threads);
    fprintf(out, "  lstm-weight     = %g\n", (double)s->lstm_weight);
    fprintf(out, "  arima           = %d,%d,%d\n", s->arima_p, s->arima_d, s->arima_q);
    fprintf(out, "  smoothing       = %g\n", (double)s->smoothing);
    fprintf(out, "  drift           = %g\n", (double)s->drift_rate);
    fprintf(out, "  residual-floor  = %g\n", (double)s->residual_floor);
    fprintf(out, "  unstable-pfp    = %g\n", (double)s->unstable_pfp);
    fprintf(out, "  level-weight    = %g\n", (double)s->level_weight);
    fprintf(out, "  level-rate      = %g\n", (double)s->level_rate);
    if (s->seasonal_weight == PS_SEASONAL_AUTO)
        fprintf(out, "  seasonal-weight = auto (1 for one metric, else 0)\n");
    else
        fprintf(out, "  seasonal-weight = %g\n", (double)s->seasonal_weight);
    fprintf(out, "  seasonal-cycles = %u\n", (unsigned)s->seasonal.cycles);
    fprintf(out, "  max-period      = %u\n", (unsigned)s->seasonal.max_period);
    fprintf(out, "  seasonal-acf    = %g\n", (double)s->seasonal.min_acf);
    fprintf(out, "  seasonal-rate   = %g\n", (double)s->seasonal.rate);
}

void ps_serve_config_write(const ps_serve_config *c, FILE *out)
{
    const ps_scorer_config *s = &c->scorer;
    fprintf(out, "# preshift serve --config FILE\n");
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const option *o = &options[i];
        const char *key = o->flag + 2, *field = (const char *)c + o->offset;
        switch (o->kind) {
        case OPT_STR:
            if (*field) fprintf(out, "%s = %s\n", key, field);
            break;
        case OPT_LONG: /* 0 below the range: the model's or the default (metrics) */
            if (*(const long *)field || o->lo <= 0)
                fprintf(out, "%s = %ld\n", key, *(const long *)field);
            break;
        case OPT_SECONDS:
        case OPT_MS:
            fprintf(out, "%s = %.17g\n", key,
                    *(const double *)field * (o->kind == OPT_MS ? 1000 : 1));
            break;
        case OPT_BACKEND:
            if (c->backend != PS_BACKEND_DEFAULT)
                fprintf(out, "%s = %s\n", key, c->backend == PS_BACKEND_CUDA ? "cuda" : "cpu");
            break;
        }
    }
    fprintf(out, "quiet = %s\n", c->quiet ? "true" : "false");
    fprintf(out, "lstm-weight = %.9g\n", (double)s->lstm_weight);
    fprintf(out, "arima = %d,%d,%d\n", s->arima_p, s->arima_d, s->arima_q);
    fprintf(out, "smoothing = %.9g\n", (double)s->smoothing);
    fprintf(out, "drift = %.9g\n", (double)s->drift_rate);
    fprintf(out, "residual-floor = %.9g\n", (double)s->residual_floor);
    fprintf(out, "unstable-pfp = %.9g\n", (double)s->unstable_pfp);
    fprintf(out, "level-weight = %.9g\n", (double)s->level_weight);
    fprintf(out, "level-rate = %.9g\n", (double)s->level_rate);
    if (s->seasonal_weight == PS_SEASONAL_AUTO)
        fprintf(out, "seasonal-weight = auto\n");
    else
        fprintf(out, "seasonal-weight = %.9g\n", (double)s->seasonal_weight);
    fprintf(out, "seasonal-cycles = %u\n", (unsigned)s->seasonal.cycles);
    fprintf(out, "max-period = %u\n", (unsigned)s->seasonal.max_period);
    fprintf(out, "seasonal-acf = %.9g\n", (double)s->seasonal.min_acf);
    fprintf(out, "seasonal-rate = %.9g\n", (double)s->seasonal.rate);
}

void ps_serve_usage(FILE *out)
{
    ps_serve_config d;
    ps_serve_config_default(&d);
    const ps_scorer_config *s = &d.scorer;
    fprintf(out,
            "usage: preshift serve [options]\n"
            "\n"
            "The scoring server: heartbeats in over nng REQ/REP, Instability Score and PFP\n"
            "back, every scored record published on PUB, /metrics /healthz /readyz over\n"
            "HTTP. Protocol: docs/protocol.md; operation: docs/serve.md. SIGINT or SIGTERM\n"
            "stops it cleanly.\n"
            "\n"
            "options (a file line 'key = value' sets --key; flags override the file):\n"
            "  --config FILE          read options from FILE first (default: none)\n"
            "  --listen ADDR          scoring REP socket: tcp://, ipc:// or tls+tcp://\n"
            "                         (default %s)\n"
            "  --publish ADDR         PUB socket of scored records, or off (default %s)\n"
            "  --http URL             /metrics, /healthz, /readyz: http://HOST:PORT,\n"
            "                         https://HOST:PORT or off (default %s)\n"
            "  --tls-cert FILE        PEM certificate for tls+tcp:// and https:// (default none)\n"
            "  --tls-key FILE         PEM private key of --tls-cert (default none)\n"
            "  --tls-ca FILE          PEM CA certificates: when given, clients must present\n"
            "                         a certificate signed by one (default none)\n"
            "  --model FILE           forecaster (default $PRESHIFT_MODEL, else\n"
            "                         %s/models/default.psm)\n"
            "  --metrics K            metrics per heartbeat, 1..%u (default: the model's when\n"
            "                         it is multivariate; required for a univariate model)\n"
            "  --max-processors N     processors tracked at once; heartbeats of further new\n"
            "                         processors get state 'rejected' (default %ld)\n"
            "  --warmup N             heartbeats kept per processor before it is scored,\n"
            "                         16..100000 (default %ld)\n"
            "  --contexts N           REP contexts: requests served at once (default %ld)\n"
            "  --max-batch N          most heartbeats scored in one tick (default %ld)\n"
            "  --max-queue N          most heartbeats waiting for a tick; a request beyond it\n"
            "                         gets 'busy' at once (default %ld)\n"
            "  --batch-delay MS       a tick closes at most MS milliseconds after its first\n"
            "                         heartbeat was queued (default %g)\n"
            "  --stale-after S        seconds without a heartbeat before a processor counts\n"
            "                         as stale (default %g)\n"
            "  --state FILE           snapshot of every processor's state: restored at start,\n"
            "                         saved every --snapshot-every seconds and at SIGTERM,\n"
            "                         or off (default %s)\n"
            "  --snapshot-every S     seconds between snapshots (default %g)\n"
            "  --evict-after S        forget a processor silent for S seconds, freeing its\n"
            "                         slot; 0 = never (default %g)\n"
            "  --backend NAME         kernel backend, cpu or cuda (default: the build's, %s)\n"
            "  --threads N            kernel threads, 0 = all cores (default %ld)\n"
            "  -q, --quiet            print nothing but errors (default: print the\n"
            "                         configuration and addresses at start)\n"
            "\n"
            "scoring options (as in 'preshift score --help'):\n"
            "  --lstm-weight W        forecast = W*LSTM + (1-W)*ARIMA (default %g)\n"
            "  --arima P,D,Q          ARIMA order per metric (default %d,%d,%d)\n"
            "  --smoothing A          weight of a new tick in the smoothed score (default %g)\n"
            "  --drift R              baseline drift following per stable tick (default %g)\n"
            "  --residual-floor X     least healthy residual scale (default %g)\n"
            "  --unstable-pfp P       ticks at or above this PFP teach nothing (default %g)\n"
            "  --level-weight L       weight of the level term, 0 = off (default %g)\n"
            "  --level-rate A         weight of a new tick in the EW level (default %g)\n"
            "  --seasonal-weight S|auto  weight of the seasonal term, 0 = off; auto: 1 with\n"
            "                         one metric, 0 with several (default auto)\n"
            "  --seasonal-cycles C    cycles the seasonal term compares with (default %u)\n"
            "  --max-period N         longest period looked for, in ticks (default %u)\n"
            "  --seasonal-acf R       autocorrelation a period must reach (default %g)\n"
            "  --seasonal-rate A      weight of a new tick in the seasonal distance\n"
            "                         (default %g)\n",
            d.listen, d.publish, d.http, PRESHIFT_SOURCE_DIR, PS_PROTO_MAX_K, d.max_processors,
            d.warmup, d.contexts, d.max_batch, d.max_queue, d.batch_delay * 1000, d.stale_after,
            d.state, d.snapshot_every, d.evict_after,
            ps_backend_default_kind() == PS_BACKEND_CUDA ? "cuda" : "cpu", d.threads,
            (double)s->lstm_weight, s->arima_p, s->arima_d, s->arima_q, (double)s->smoothing,
            (double)s->drift_rate, (double)s->residual_floor, (double)s->unstable_pfp,
            (double)s->level_weight, (double)s->level_rate, (unsigned)s->seasonal.cycles,
            (unsigned)s->seasonal.max_period, (double)s->seasonal.min_acf,
            (double)s->seasonal.rate);
}
