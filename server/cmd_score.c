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
#include "core/onset.h"
#include "score_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef PRESHIFT_SOURCE_DIR
#define PRESHIFT_SOURCE_DIR "."
#endif

enum { MAX_INPUTS = 100000, DEFAULT_ONSET_ROWS = 288 /* a day of 5-minute rows */ };

typedef struct score_opts {
    const char *output;
    int onset;       /* NAB style: anomaly_score is the PFP's onsets (core/onset.h) */
    long onset_rows; /* their window */
    ps_score_job job;
} score_opts;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: preshift score [options] FILE...\n"
            "\n"
            "Score each row of each FILE online: the output for row t depends on rows\n"
            "<= t only (and on --history). A FILE is a CSV, plain or gzip ('-' is\n"
            "stdin): either NAB style, a header 'timestamp,value', or numeric columns\n"
            "(one row per tick, one column per metric, optional header).\n"
            "\n"
            "Output, one row per input row in input order:\n"
            "  NAB style:  timestamp,value,anomaly_score   (anomaly_score = PFP in [0,1],\n"
            "              or its onsets with --anomaly-score onset)\n"
            "  otherwise:  score,pfp,top_metric            (top_metric: column name or\n"
            "              1-based index; empty while warming up)\n"
            "\n"
            "options:\n"
            "  -o, --output PATH    one input: output file (default stdout); several\n"
            "                       inputs: a directory, one file per input named as it\n"
            "                       (without .gz)\n"
            "  --batch-files DIR    add every regular file in DIR (sorted by name)\n"
            "  --anomaly-score pfp|onset  NAB style: the PFP (default), or its onsets:\n"
            "                       the PFP where it is higher than at each of the\n"
            "                       --onset-rows rows before, 0 elsewhere (an alarm once\n"
            "                       per rise, not every row a degradation lasts)\n"
            "  --onset-rows N       the onsets' window (default %d, a day of 5-minute\n"
            "                       rows)\n"
            "  -h, --help           this text\n\n",
            DEFAULT_ONSET_ROWS);
    ps_score_options_usage(out);
    fprintf(out, "\nExit status: 0 scored, 1 bad data or file, 2 bad usage.\n");
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
        int used;
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
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            NEED_VALUE();
            o->output = v;
        } else if (!strcmp(a, "--anomaly-score")) {
            NEED_VALUE();
            if (strcmp(v, "pfp") && strcmp(v, "onset")) {
                snprintf(err, sizeof err, "--anomaly-score: '%s' is not pfp or onset", v);
                return usage_error(err);
            }
            o->onset = !strcmp(v, "onset");
        } else if (!strcmp(a, "--onset-rows")) {
            NEED_VALUE();
            if (ps_parse_long(a, v, 1, 10000000, &o->onset_rows, err, sizeof err))
                return usage_error(err);
        } else if (!strcmp(a, "--batch-files")) {
            NEED_VALUE();
            if (add_dir(in, v)) return 1;
        } else if ((used = ps_score_parse_option(&o->job, argc, argv, &i, err, sizeof err))) {
            if (used < 0) return usage_error(err);
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
    if (o->job.history && in->n > 1) return usage_error("--history takes one input file");
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

static void print_row(FILE *f, const ps_csv *csv, size_t r, const ps_score *s, ps_onset *onset)
{
    if (csv->labels) {
        double pfp = s->state == PS_PROC_SCORED ? s->pfp : 0.0;
        /* %.17g: PFPs near 1 must stay distinct for threshold sweeps. */
        fprintf(f, "%s,%.9g,%.17g\n", csv->labels[r], (double)csv->values[r * csv->cols],
                onset ? ps_onset_next(onset, pfp) : pfp);
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

typedef struct printer {
    const score_opts *o;
    const ps_csv *csv;
    FILE **out;
    ps_onset *onset; /* [n] with --anomaly-score onset, else NULL */
    size_t n;
} printer;

/* Every input is read: open the outputs. */
static int open_outputs(void *user, const ps_csv *csv, size_t n)
{
    printer *pr = user;
    const score_opts *o = pr->o;
    pr->csv = csv;
    if (n > 1 && mkdir(o->output, 0777) && errno != EEXIST) {
        fprintf(stderr, "preshift score: %s: %s\n", o->output, strerror(errno));
        return 1;
    }
    for (size_t i = 0; o->onset && i < n; i++)
        if (!csv[i].labels) {
            fprintf(stderr,
                    "preshift score: --anomaly-score onset: %s is not NAB style (a header "
                    "'timestamp,value'); its output has no anomaly_score\n",
                    o->job.paths[i]);
            return 1;
        }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        if (n > 1)
            output_name(o->output, o->job.paths[i], path, sizeof path);
        else
            snprintf(path, sizeof path, "%s", o->output ? o->output : "-");
        pr->out[i] = strcmp(path, "-") ? fopen(path, "w") : stdout;
        if (!pr->out[i]) {
            fprintf(stderr, "preshift score: %s: %s\n", path, strerror(errno));
            return 1;
        }
        print_header(pr->out[i], &csv[i]);
    }
    return 0;
}

static int print_score(void *user, size_t input, size_t row, const ps_score *s)
{
    printer *pr = user;
    print_row(pr->out[input], &pr->csv[input], row, s, pr->onset ? &pr->onset[input] : NULL);
    return 0;
}

static int run(const score_opts *o)
{
    printer pr = {o, NULL, calloc(o->job.n, sizeof(FILE *)), NULL, o->job.n};
    int oom = !pr.out;
    if (o->onset && !oom) {
        pr.onset = calloc(o->job.n, sizeof *pr.onset);
        for (size_t i = 0; pr.onset && i < o->job.n && !oom; i++)
            oom = ps_onset_init(&pr.onset[i], (size_t)o->onset_rows) != 0;
        oom |= !pr.onset;
    }
    if (oom) {
        fprintf(stderr, "preshift score: out of memory\n");
        for (size_t i = 0; pr.onset && i < o->job.n; i++)
            ps_onset_free(&pr.onset[i]);
        free(pr.onset);
        free(pr.out);
        return 1;
    }
    int status = ps_score_files("preshift score", &o->job, open_outputs, print_score, &pr);
    for (size_t i = 0; i < pr.n; i++)
        if (pr.out[i] && pr.out[i] != stdout && fclose(pr.out[i]) && status == 0) {
            fprintf(stderr, "preshift score: writing output: %s\n", strerror(errno));
            status = 1;
        }
    if (status == 0 && fflush(stdout)) status = 1;
    for (size_t i = 0; pr.onset && i < pr.n; i++)
        ps_onset_free(&pr.onset[i]);
    free(pr.onset);
    free(pr.out);
    return status;
}

int ps_cmd_score(int argc, char **argv)
{
    score_opts o = {.onset_rows = DEFAULT_ONSET_ROWS, .job = ps_score_job_default()};
    inputs in = {0};
    int rc = parse_args(argc, argv, &o, &in);
    o.job.paths = in.paths;
    o.job.n = in.n;
    if (rc < 0) rc = run(&o);
    for (size_t i = 0; i < in.n; i++)
        free(in.paths[i]);
    free(in.paths);
    return rc;
}
