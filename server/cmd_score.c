/*
 * cmd_score.c - `preshift score`: replay CSV series through the scorer.
 *
 * Every input file is one processor; several files are scored together, in
 * lockstep, as one batch per row (a file that has ended just leaves the
 * batch), which is how a whole corpus costs one kernel call per tick. All
 * inputs are read and checked before any output is opened, so bad input
 * never leaves half-written results behind. Rows are replayed as regular
 * ticks: heartbeat lateness is the server's business, not a file's.
 */
#include "cli.h"
#include "commands.h"
#include "core/scorer.h"
#include "csv.h"
#include "model_io.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef PRESHIFT_SOURCE_DIR
#define PRESHIFT_SOURCE_DIR "."
#endif

enum { MAX_INPUTS = 100000 };

typedef struct score_opts {
    const char *output;
    const char *history;
    const char *model;
    long warmup; /* -1 = 15 % of each input's rows, at most 750 */
    long threads;
    ps_backend_kind backend;
    int quiet;
    ps_scorer_config cfg;
} score_opts;

static void usage(FILE *out)
{
    ps_scorer_config d = ps_scorer_default_config();
    fprintf(out,
            "usage: preshift score [options] FILE...\n"
            "\n"
            "Score each row of each FILE online: the output for row t depends on rows\n"
            "<= t only (and on --history). A FILE is a CSV, plain or gzip ('-' is\n"
            "stdin): either NAB style, a header 'timestamp,value', or numeric columns\n"
            "(one row per tick, one column per metric, optional header).\n"
            "\n"
            "Output, one row per input row in input order:\n"
            "  NAB style:  timestamp,value,anomaly_score   (anomaly_score = PFP in [0,1])\n"
            "  otherwise:  score,pfp,top_metric            (top_metric: column name or\n"
            "              1-based index; empty while warming up)\n"
            "\n"
            "options:\n"
            "  -o, --output PATH    one input: output file (default stdout); several\n"
            "                       inputs: a directory, one file per input named as it\n"
            "                       (without .gz)\n"
            "  --batch-files DIR    add every regular file in DIR (sorted by name)\n"
            "  --history FILE       healthy history that sets the baseline and fits the\n"
            "                       models before the input is scored (one input only;\n"
            "                       same columns)\n"
            "  --warmup N           leading rows of each input that only set the baseline\n"
            "                       (default 15%% of its rows, at most %u; ignored with\n"
            "                       --history)\n"
            "  --model FILE         forecaster (default $PRESHIFT_MODEL, else\n"
            "                       %s/models/default.psm)\n"
            "  --lstm-weight W      forecast = W*LSTM + (1-W)*ARIMA; 1 = LSTM alone,\n"
            "                       0 = ARIMA alone (default %g)\n"
            "  --arima P,D,Q        ARIMA order per metric (default %d,%d,%d)\n"
            "  --smoothing A        weight of a new tick in the smoothed score (default %g)\n"
            "  --drift R            baseline drift following per stable tick, 0 = off\n"
            "                       (default %g)\n"
            "  --residual-floor X   least healthy residual scale (default %g)\n"
            "  --unstable-pfp P     ticks at or above this PFP teach the baseline and the\n"
            "                       tail nothing (default %g)\n"
            "  --backend NAME       kernel backend, cpu or cuda (default: the one this\n"
            "                       build chose, %s)\n"
            "  --threads N          kernel threads, 0 = all cores (default 0)\n"
            "  -q, --quiet          no progress on stderr\n"
            "  -h, --help           this text\n"
            "\n"
            "Exit status: 0 scored, 1 bad data or file, 2 bad usage.\n",
            (unsigned)d.warmup, PRESHIFT_SOURCE_DIR, (double)d.lstm_weight, d.arima_p, d.arima_d,
            d.arima_q, (double)d.smoothing, (double)d.drift_rate, (double)d.residual_floor,
            (double)d.unstable_pfp, ps_backend_default_kind() == PS_BACKEND_CUDA ? "cuda" : "cpu");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "preshift score: %s\n(see 'preshift score --help')\n", msg);
    return 2;
}

typedef struct inputs {
    char **paths;
    size_t n, cap;
} inputs;

static int add_input(inputs *in, const char *path)
{
    if (in->n == MAX_INPUTS) return -1;
    if (in->n == in->cap) {
        size_t cap = in->cap ? 2 * in->cap : 16;
        char **p = realloc(in->paths, cap * sizeof *p);
        if (!p) return -1;
        in->paths = p;
        in->cap = cap;
    }
    in->paths[in->n] = strdup(path);
    return in->paths[in->n] ? (int)in->n++ : -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_dir(inputs *in, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "preshift score: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    size_t first = in->n;
    struct dirent *e;
    char path[4096];
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) rc = add_input(in, path) < 0;
    }
    closedir(d);
    if (rc) {
        fprintf(stderr, "preshift score: too many inputs or out of memory\n");
        return -1;
    }
    if (in->n == first) {
        fprintf(stderr, "preshift score: %s: no files\n", dir);
        return -1;
    }
    qsort(in->paths + first, in->n - first, sizeof *in->paths, cmp_str);
    return 0;
}

static int parse_args(int argc, char **argv, score_opts *o, inputs *in)
{
    char err[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        double x;
        long order[3];
#define NEED_VALUE()                                                                               \
    do {                                                                                           \
        if (!v) {                                                                                  \
            snprintf(err, sizeof err, "%s needs a value", a);                                      \
            return usage_error(err);                                                               \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            NEED_VALUE();
            o->output = v;
        } else if (!strcmp(a, "--history")) {
            NEED_VALUE();
            o->history = v;
        } else if (!strcmp(a, "--model")) {
            NEED_VALUE();
            o->model = v;
        } else if (!strcmp(a, "--batch-files")) {
            NEED_VALUE();
            if (add_dir(in, v)) return 1;
        } else if (!strcmp(a, "--warmup")) {
            NEED_VALUE();
            if (ps_parse_long(a, v, 16, 10000000, &l, err, sizeof err)) return usage_error(err);
            o->warmup = l;
        } else if (!strcmp(a, "--backend")) {
            NEED_VALUE();
            if (ps_parse_backend(a, v, &o->backend, err, sizeof err)) return usage_error(err);
        } else if (!strcmp(a, "--threads")) {
            NEED_VALUE();
            if (ps_parse_long(a, v, 0, 64, &l, err, sizeof err)) return usage_error(err);
            o->threads = l;
        } else if (!strcmp(a, "--lstm-weight")) {
            NEED_VALUE();
            if (ps_parse_double(a, v, 0, 1, &x, err, sizeof err)) return usage_error(err);
            o->cfg.lstm_weight = (float)x;
        } else if (!strcmp(a, "--smoothing")) {
            NEED_VALUE();
            if (ps_parse_double(a, v, 1e-3, 1, &x, err, sizeof err)) return usage_error(err);
            o->cfg.smoothing = (float)x;
        } else if (!strcmp(a, "--drift")) {
            NEED_VALUE();
            if (ps_parse_double(a, v, 0, 0.5, &x, err, sizeof err)) return usage_error(err);
            o->cfg.drift_rate = (float)x;
        } else if (!strcmp(a, "--unstable-pfp")) {
            NEED_VALUE();
            if (ps_parse_double(a, v, 0.5, 1, &x, err, sizeof err)) return usage_error(err);
            o->cfg.unstable_pfp = (float)x;
        } else if (!strcmp(a, "--residual-floor")) {
            NEED_VALUE();
            if (ps_parse_double(a, v, 1e-6, 1e6, &x, err, sizeof err)) return usage_error(err);
            o->cfg.residual_floor = (float)x;
        } else if (!strcmp(a, "--arima")) {
            NEED_VALUE();
            int got = ps_parse_long_list(a, v, 0, 16, order, 3, err, sizeof err);
            if (got < 0) return usage_error(err);
            if (got != 3) return usage_error("--arima takes P,D,Q");
            if (order[1] > 2) return usage_error("--arima: D is at most 2");
            o->cfg.arima_p = (int)order[0];
            o->cfg.arima_d = (int)order[1];
            o->cfg.arima_q = (int)order[2];
        } else if (a[0] == '-' && a[1] != 0) {
            snprintf(err, sizeof err, "unknown option '%s'", a);
            return usage_error(err);
        } else if (add_input(in, a) < 0) {
            fprintf(stderr, "preshift score: too many inputs or out of memory\n");
            return 1;
        }
#undef NEED_VALUE
    }
    if (in->n == 0) return usage_error("no input files");
    if (o->history && in->n > 1) return usage_error("--history takes one input file");
    if (in->n > 1 && !o->output) return usage_error("several inputs need -o DIR");
    return -1; /* go on */
}

/* The file name an input's output gets inside the output directory. */
static void output_name(const char *dir, const char *input, char *out, size_t outlen)
{
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    size_t len = strlen(base);
    if (len > 3 && !strcmp(base + len - 3, ".gz")) len -= 3;
    snprintf(out, outlen, "%s/%.*s", dir, (int)len, base);
}

static void print_row(FILE *f, const ps_csv *csv, size_t r, const ps_score *s)
{
    if (csv->labels) {
        /* %.17g: PFPs near 1 must stay distinct for threshold sweeps. */
        fprintf(f, "%s,%.9g,%.17g\n", csv->labels[r], (double)csv->values[r * csv->cols],
                s->state == PS_PROC_SCORED ? s->pfp : 0.0);
    } else if (s->state != PS_PROC_SCORED) {
        fprintf(f, "0,0,\n");
    } else if (csv->names) {
        fprintf(f, "%.9g,%.17g,%s\n", (double)s->score, s->pfp, csv->names[s->top_metric]);
    } else {
        fprintf(f, "%.9g,%.17g,%d\n", (double)s->score, s->pfp, s->top_metric + 1);
    }
}

static void print_header(FILE *f, const ps_csv *csv)
{
    if (csv->labels)
        fprintf(f, "%s,%s,anomaly_score\n", csv->label_name ? csv->label_name : "timestamp",
                csv->names ? csv->names[0] : "value");
    else
        fprintf(f, "score,pfp,top_metric\n");
}

static int default_warmup(size_t rows, uint32_t cap)
{
    size_t w = rows * 15 / 100;
    if (w > cap) w = cap;
    if (w < 16) w = 16;
    return (int)w;
}

/* Score everything; outputs are opened only once every input has been read. */
static int run(const score_opts *o, const inputs *in)
{
    char err[512];
    size_t n = in->n;
    int status = 1;
    ps_csv *csv = calloc(n, sizeof *csv);
    ps_csv hist = {0};
    FILE **out = calloc(n, sizeof *out);
    ps_score *scores = calloc(n, sizeof *scores);
    uint32_t *procs = malloc(n * sizeof *procs);
    float *x = NULL;
    ps_backend *be = NULL;
    ps_scorer *sc = NULL;
    ps_model model = {0};
    if (!csv || !out || !scores || !procs) goto oom;

    for (size_t i = 0; i < n; i++) {
        if (ps_csv_read(in->paths[i], &csv[i], err, sizeof err)) {
            fprintf(stderr, "preshift score: %s\n", err);
            goto done;
        }
        if (csv[i].cols != csv[0].cols) {
            fprintf(stderr,
                    "preshift score: %s has %zu columns, %s has %zu: scored together, "
                    "inputs must have the same metrics\n",
                    in->paths[i], csv[i].cols, in->paths[0], csv[0].cols);
            goto done;
        }
    }
    if (o->history) {
        if (ps_csv_read(o->history, &hist, err, sizeof err)) {
            fprintf(stderr, "preshift score: %s\n", err);
            goto done;
        }
        if (hist.cols != csv[0].cols) {
            fprintf(stderr, "preshift score: %s has %zu metric columns, the history %s has %zu\n",
                    in->paths[0], csv[0].cols, o->history, hist.cols);
            goto done;
        }
        if (hist.rows < 16) {
            fprintf(stderr, "preshift score: %s: %zu rows of history, at least 16 needed\n",
                    o->history, hist.rows);
            goto done;
        }
    }

    const char *model_path = o->model ? o->model : getenv("PRESHIFT_MODEL");
    char default_model[4096];
    if (!model_path) {
        snprintf(default_model, sizeof default_model, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
        model_path = default_model;
    }
    if (ps_model_load(model_path, &model, err, sizeof err)) {
        fprintf(stderr, "preshift score: %s\n", err);
        goto done;
    }

    size_t K = csv[0].cols, ticks = 0;
    ps_scorer_config cfg = o->cfg;
    cfg.processors = n;
    cfg.metrics = K;
    uint32_t shortest = UINT32_MAX;
    cfg.warmup = 16;
    for (size_t i = 0; i < n; i++) {
        uint32_t w = o->history      ? (uint32_t)hist.rows
                     : o->warmup > 0 ? (uint32_t)o->warmup
                                     : (uint32_t)default_warmup(csv[i].rows, 750);
        if (w > cfg.warmup) cfg.warmup = w;
        if (w < shortest) shortest = w;
        if (csv[i].rows > ticks) ticks = csv[i].rows;
    }
    /* Short warm-ups keep most of their rows for the residual statistics. */
    if (cfg.burn_in > shortest / 4) cfg.burn_in = shortest / 4;
    be = ps_backend_init(&(ps_backend_params){.kind = o->backend, .threads = (int)o->threads}, err,
                         sizeof err);
    if (!be) {
        fprintf(stderr, "preshift score: kernel backend: %s%s\n", err,
                o->backend == PS_BACKEND_DEFAULT ? " (--backend cpu runs on the CPU)" : "");
        goto done;
    }
    sc = ps_scorer_create(be, &model, &cfg, err, sizeof err);
    if (!sc) {
        fprintf(stderr, "preshift score: %s\n", err);
        goto done;
    }
    for (size_t i = 0; i < n && !o->history && o->warmup <= 0; i++)
        ps_scorer_set_warmup(sc, (uint32_t)i, (uint32_t)default_warmup(csv[i].rows, 750));
    x = malloc(n * K * sizeof *x);
    if (!x) goto oom;

    if (o->history) {
        uint32_t p = 0;
        for (size_t r = 0; r < hist.rows; r++)
            if (ps_scorer_tick(sc, 1, &p, NULL, hist.values + r * K, scores, err, sizeof err)) {
                fprintf(stderr, "preshift score: %s row %zu: %s\n", o->history, r + 1, err);
                goto done;
            }
    }

    /* Everything is read and the models are set: now open the outputs. */
    if (n > 1 && mkdir(o->output, 0777) && errno != EEXIST) {
        fprintf(stderr, "preshift score: %s: %s\n", o->output, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        if (n > 1)
            output_name(o->output, in->paths[i], path, sizeof path);
        else
            snprintf(path, sizeof path, "%s", o->output ? o->output : "-");
        out[i] = strcmp(path, "-") ? fopen(path, "w") : stdout;
        if (!out[i]) {
            fprintf(stderr, "preshift score: %s: %s\n", path, strerror(errno));
            goto done;
        }
        print_header(out[i], &csv[i]);
    }

    if (!o->quiet && ticks * n > 200000)
        fprintf(stderr, "scoring %zu input(s), %zu metric(s), up to %zu rows on %s (%s)\n", n, K,
                ticks, ps_backend_name(be), ps_backend_isa(be));
    time_t last = time(NULL);
    for (size_t r = 0; r < ticks; r++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (r >= csv[i].rows) continue;
            procs[m] = (uint32_t)i;
            memcpy(x + m * K, csv[i].values + r * K, K * sizeof *x);
            m++;
        }
        if (ps_scorer_tick(sc, m, procs, NULL, x, scores, err, sizeof err)) {
            fprintf(stderr, "preshift score: row %zu: %s\n", r + 1, err);
            goto done;
        }
        for (size_t j = 0; j < m; j++)
            print_row(out[procs[j]], &csv[procs[j]], r, &scores[j]);
        if (!o->quiet && time(NULL) - last >= 2) {
            last = time(NULL);
            fprintf(stderr, "row %zu/%zu\n", r + 1, ticks);
        }
    }
    status = 0;
    goto done;
oom:
    fprintf(stderr, "preshift score: out of memory\n");
done:
    for (size_t i = 0; out && i < n; i++)
        if (out[i] && out[i] != stdout && fclose(out[i]) && status == 0) {
            fprintf(stderr, "preshift score: writing output: %s\n", strerror(errno));
            status = 1;
        }
    if (status == 0 && fflush(stdout)) status = 1;
    for (size_t i = 0; csv && i < n; i++)
        ps_csv_free(&csv[i]);
    ps_csv_free(&hist);
    ps_scorer_free(sc);
    ps_backend_free(be);
    ps_model_free(&model);
    free(csv);
    free(out);
    free(scores);
    free(procs);
    free(x);
    return status;
}

int ps_cmd_score(int argc, char **argv)
{
    score_opts o = {.warmup = -1, .cfg = ps_scorer_default_config()};
    inputs in = {0};
    int rc = parse_args(argc, argv, &o, &in);
    if (rc < 0) rc = run(&o, &in);
    for (size_t i = 0; i < in.n; i++)
        free(in.paths[i]);
    free(in.paths);
    return rc;
}
