/*
 * cmd_calibrate.c - `preshift calibrate`: fit the score-to-PFP map on
 * labelled incidents and write it into a model file.
 *
 * The inputs are scored exactly as `preshift score` would (same options,
 * same replay), so the calibration maps the very scores the model will
 * produce. A row's target is "an incident is under way or starts within
 * --horizon rows"; warm-up rows carry no score and are left out. The fit
 * uses the first --fit share of each input's scored rows and the reliability
 * table is printed for the rest, so it is not flattered by its own data;
 * the written calibration is then refitted on all rows.
 */
#include "cli.h"
#include "commands.h"
#include "core/calibration.h"
#include "model_io.h"
#include "score_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_INPUTS = 4096, BINS = 10 };

typedef struct calib_opts {
    ps_score_job job;
    char *inputs[MAX_INPUTS];
    const char *labels[MAX_INPUTS];
    size_t nlabels;
    const char *output;
    int isotonic;
    long horizon;
    double fit_share;
} calib_opts;

static void usage(FILE *out)
{
    fprintf(out, "usage: preshift calibrate [options] --labels LABELS -o MODEL FILE...\n"
                 "\n"
                 "Score each FILE as 'preshift score' does, then fit the map from score to\n"
                 "PFP on labelled incidents and write the model (--model, or the default)\n"
                 "with that calibration to MODEL. LABELS (one per FILE, in order) has one\n"
                 "line per row of its FILE: 1 inside an incident, 0 outside. A row's target\n"
                 "is 1 when an incident is under way or starts within --horizon rows.\n"
                 "\n"
                 "options:\n"
                 "  --labels FILE        labels of the next FILE (repeat, one per input)\n"
                 "  -o, --output MODEL   model file to write (required)\n"
                 "  --method NAME        platt (default) or isotonic\n"
                 "  --horizon N          rows ahead that count as 'fails soon' (default 12)\n"
                 "  --fit X              share of each input's scored rows to fit on; the\n"
                 "                       reliability table is printed for the rest\n"
                 "                       (default 0.7)\n"
                 "  -h, --help           this text\n\n");
    ps_score_options_usage(out);
    fprintf(out, "\nExit status: 0 written, 1 bad data or file, 2 bad usage.\n");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "preshift calibrate: %s\n(see 'preshift calibrate --help')\n", msg);
    return 2;
}

static int parse_args(int argc, char **argv, calib_opts *o)
{
    char err[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = ps_score_parse_option(&o->job, argc, argv, &i, err, sizeof err);
        if (used < 0) return usage_error(err);
        if (used) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        int valued = !strcmp(a, "--labels") || !strcmp(a, "-o") || !strcmp(a, "--output") ||
                     !strcmp(a, "--method") || !strcmp(a, "--horizon") || !strcmp(a, "--fit");
        if (valued && !v) {
            snprintf(err, sizeof err, "%s needs a value", a);
            return usage_error(err);
        }
        long l;
        if (!strcmp(a, "--labels")) {
            if (o->nlabels == MAX_INPUTS) return usage_error("too many --labels");
            o->labels[o->nlabels++] = v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o->output = v;
        } else if (!strcmp(a, "--method")) {
            if (strcmp(v, "platt") && strcmp(v, "isotonic"))
                return usage_error("--method is platt or isotonic");
            o->isotonic = !strcmp(v, "isotonic");
        } else if (!strcmp(a, "--horizon")) {
            if (ps_parse_long(a, v, 0, 1000000, &l, err, sizeof err)) return usage_error(err);
            o->horizon = l;
        } else if (!strcmp(a, "--fit")) {
            if (ps_parse_double(a, v, 0.1, 1, &o->fit_share, err, sizeof err))
                return usage_error(err);
        } else if (a[0] == '-' && a[1]) {
            snprintf(err, sizeof err, "unknown option '%s'", a);
            return usage_error(err);
        } else {
            if (o->job.n == MAX_INPUTS) return usage_error("too many inputs");
            o->inputs[o->job.n++] = argv[i];
            continue;
        }
        i++;
    }
    if (o->job.n == 0) return usage_error("no input files");
    if (!o->output) return usage_error("-o MODEL is required");
    if (o->nlabels != o->job.n) {
        snprintf(err, sizeof err, "%zu input(s) but %zu --labels: give one per input", o->job.n,
                 o->nlabels);
        return usage_error(err);
    }
    if (o->job.history && o->job.n > 1) return usage_error("--history takes one input file");
    return -1;
}

/* What the replay collects: per input, the score and target of each row. */
typedef struct collected {
    const calib_opts *o;
    uint8_t **target; /* per input, per row: fails within the horizon */
    size_t *rows;
    double *score; /* all scored rows, input by input */
    uint8_t *label;
    uint8_t *held; /* 1 = in the held-out part */
    size_t n, cap;
} collected;

/* Labels read and turned into targets, checked against the inputs' rows. */
static int read_targets(void *user, const ps_csv *csv, size_t n)
{
    collected *c = user;
    char err[512];
    for (size_t i = 0; i < n; i++) {
        ps_csv lab = {0};
        if (ps_csv_read(c->o->labels[i], &lab, err, sizeof err)) {
            fprintf(stderr, "preshift calibrate: %s\n", err);
            return 1;
        }
        int bad = lab.cols != 1 || lab.rows != csv[i].rows;
        if (bad)
            fprintf(stderr,
                    "preshift calibrate: %s has %zu rows of %zu column(s); its input %s has %zu "
                    "rows: one label a row needed\n",
                    c->o->labels[i], lab.rows, lab.cols, c->o->inputs[i], csv[i].rows);
        for (size_t r = 0; !bad && r < lab.rows; r++)
            if (lab.values[r] != 0 && lab.values[r] != 1) {
                fprintf(stderr, "preshift calibrate: %s:%zu: label %g is not 0 or 1\n",
                        c->o->labels[i], r + 1, (double)lab.values[r]);
                bad = 1;
            }
        c->rows[i] = csv[i].rows;
        c->target[i] = bad ? NULL : calloc(csv[i].rows ? csv[i].rows : 1, 1);
        if (!bad && !c->target[i]) {
            fprintf(stderr, "preshift calibrate: out of memory\n");
            bad = 1;
        }
        /* target[r] = any label in [r, r + horizon]: one pass from the end. */
        size_t next = SIZE_MAX; /* nearest labelled row at or after r */
        for (size_t r = lab.rows; !bad && r-- > 0;) {
            if (lab.values[r] == 1) next = r;
            c->target[i][r] = next != SIZE_MAX && next - r <= (size_t)c->o->horizon;
        }
        ps_csv_free(&lab);
        if (bad) return 1;
    }
    return 0;
}

static int keep(void *user, size_t input, size_t row, const ps_score *s)
{
    collected *c = user;
    if (s->state != PS_PROC_SCORED) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4096;
        double *sc = realloc(c->score, cap * sizeof *sc);
        if (sc) c->score = sc;
        uint8_t *lb = realloc(c->label, cap);
        if (lb) c->label = lb;
        uint8_t *hd = realloc(c->held, cap);
        if (hd) c->held = hd;
        if (!sc || !lb || !hd) {
            fprintf(stderr, "preshift calibrate: out of memory\n");
            return 1;
        }
        c->cap = cap;
    }
    c->score[c->n] = s->score;
    c->label[c->n] = c->target[input][row];
    /* The last (1 - fit) of an input's rows are held out; the warm-up is
     * the same for every row count, so the split is by row position. */
    c->held[c->n] = (double)row >= c->o->fit_share * (double)c->rows[input];
    c->n++;
    return 0;
}

static int fit(const calib_opts *o, ps_calibration *cal, const double *score, const uint8_t *label,
               size_t n)
{
    char err[256];
    ps_calibration_fit_info info;
    int rc = o->isotonic
                 ? ps_calibration_fit_isotonic(cal, score, label, n, 0, &info, err, sizeof err)
                 : ps_calibration_fit_platt(cal, score, label, n, &info, err, sizeof err);
    if (rc) {
        fprintf(stderr, "preshift calibrate: %s\n", err);
        return 1;
    }
    if (info.constrained)
        fprintf(stderr, "preshift calibrate: warning: the score does not rank incidents above "
                        "healthy rows here; the calibration is the base rate\n");
    return 0;
}

static void print_reliability(const ps_calibration *cal, const collected *c)
{
    size_t m = 0;
    double *p = malloc((c->n ? c->n : 1) * sizeof *p);
    uint8_t *y = malloc(c->n ? c->n : 1);
    if (!p || !y) goto out;
    for (size_t i = 0; i < c->n; i++)
        if (c->held[i]) {
            p[m] = ps_calibration_apply(cal, c->score[i]);
            y[m++] = c->label[i];
        }
    ps_reliability_bin bins[BINS];
    ps_reliability_summary sum;
    char err[256];
    if (ps_reliability(p, y, m, bins, BINS, &sum, err, sizeof err)) {
        printf("no reliability table for the held-out rows: %s\n", err);
        goto out;
    }
    printf("reliability on the held-out rows (%zu rows, %zu positive):\n", sum.points,
           sum.positives);
    printf("   predicted bin     rows  positives  mean predicted  observed\n");
    for (size_t b = 0; b < BINS; b++)
        printf("  [%.1f, %.1f%c  %8zu  %9zu  %14.4f  %8.4f\n", bins[b].lo, bins[b].hi,
               b + 1 == BINS ? ']' : ')', bins[b].count, bins[b].positives, bins[b].predicted,
               bins[b].observed);
    printf("Brier score %.5f (base rate alone %.5f), expected calibration error %.4f\n", sum.brier,
           sum.brier_reference, sum.ece);
out:
    free(p);
    free(y);
}

static int run(calib_opts *o)
{
    collected c = {.o = o};
    c.target = calloc(o->job.n, sizeof *c.target);
    c.rows = calloc(o->job.n, sizeof *c.rows);
    int status = 1;
    ps_model model = {0};
    char err[512], pathbuf[4096];
    if (!c.target || !c.rows) goto out;
    if (ps_score_files("preshift calibrate", &o->job, read_targets, keep, &c)) goto out;

    /* Fit on the first part, judge on the rest, then refit on everything. */
    double *fs = malloc((c.n ? c.n : 1) * sizeof *fs);
    uint8_t *fl = malloc(c.n ? c.n : 1);
    size_t nf = 0;
    for (size_t i = 0; fs && fl && i < c.n; i++)
        if (!c.held[i]) {
            fs[nf] = c.score[i];
            fl[nf++] = c.label[i];
        }
    ps_calibration cal;
    int bad = !fs || !fl || fit(o, &cal, fs, fl, nf);
    free(fs);
    free(fl);
    if (bad) goto out;
    print_reliability(&cal, &c);
    if (fit(o, &cal, c.score, c.label, c.n)) goto out;

    if (ps_model_load(ps_score_model_path(&o->job, pathbuf, sizeof pathbuf), &model, err,
                      sizeof err)) {
        fprintf(stderr, "preshift calibrate: %s\n", err);
        goto out;
    }
    model.calibration = cal;
    if (ps_model_save(o->output, &model, err, sizeof err)) {
        fprintf(stderr, "preshift calibrate: %s\n", err);
        goto out;
    }
    fprintf(stderr, "preshift calibrate: wrote %s (%s on %zu rows)\n", o->output,
            o->isotonic ? "isotonic" : "Platt", c.n);
    status = 0;
out:
    for (size_t i = 0; c.target && i < o->job.n; i++)
        free(c.target[i]);
    free(c.target);
    free(c.rows);
    free(c.score);
    free(c.label);
    free(c.held);
    ps_model_free(&model);
    return status;
}

int ps_cmd_calibrate(int argc, char **argv)
{
    calib_opts *o = calloc(1, sizeof *o);
    if (!o) return 1;
    o->job = ps_score_job_default();
    o->job.paths = o->inputs;
    o->horizon = 12;
    o->fit_share = 0.7;
    int rc = parse_args(argc, argv, o);
    if (rc < 0) rc = run(o);
    free(o);
    return rc;
}
