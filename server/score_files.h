/*
 * score_files.h - replay CSV files through the scorer, one processor per
 * file, all files in lockstep. Shared by `preshift score` (which prints the
 * rows) and `preshift calibrate` (which keeps them to fit a calibration).
 *
 * Every input (and the history) is read and checked, the model loaded and
 * the history replayed before `ready` is called; only then may the caller
 * open outputs, so bad input never leaves half-written files behind.
 */
#ifndef PRESHIFT_SCORE_FILES_H
#define PRESHIFT_SCORE_FILES_H

#include "core/scorer.h"
#include "csv.h"

#include <stdio.h>

typedef struct ps_score_job {
    char **paths; /* inputs, one processor each */
    size_t n;
    const char *history; /* NULL, or healthy history for a single input */
    const char *model;   /* NULL = $PRESHIFT_MODEL, else the source tree's default */
    long warmup;         /* -1 = 15 % of each input's rows, at most 750 */
    long threads;
    ps_backend_kind backend;
    int quiet;
    ps_scorer_config cfg; /* processors, metrics and warmup are set from the files */
} ps_score_job;

/* Called once, with every input read; non-zero stops with that status. */
typedef int (*ps_score_ready_fn)(void *user, const ps_csv *inputs, size_t n);
/* Called for every row of every input, rows in order; non-zero stops. */
typedef int (*ps_score_row_fn)(void *user, size_t input, size_t row, const ps_score *s);

/* The job's default options (those of ps_scorer_default_config). */
ps_score_job ps_score_job_default(void);

/* Runs the job; 0, or 1 after printing what went wrong (prefixed by cmd). */
int ps_score_files(const char *cmd, const ps_score_job *job, ps_score_ready_fn ready,
                   ps_score_row_fn row, void *user);

/*
 * If argv[*i] is one of the scorer's options (shared by every command that
 * scores: --history, --model, --warmup, --backend, --threads, --lstm-weight,
 * --arima, --smoothing, --drift, --unstable-pfp, --residual-floor, -q), apply
 * it to job, advance *i past its value and return 1; return 0 for any other
 * argument, -1 with a message in err for a bad value.
 */
int ps_score_parse_option(ps_score_job *job, int argc, char **argv, int *i, char *err,
                          size_t errlen);
/* The usage lines of those options. */
void ps_score_options_usage(FILE *out);

/* The model path the job will load (for messages and for calibrate). */
const char *ps_score_model_path(const ps_score_job *job, char *buf, size_t buflen);

#endif
