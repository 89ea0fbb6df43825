#include "score_files.h"

#include "cli.h"
#include "model_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PRESHIFT_SOURCE_DIR
#define PRESHIFT_SOURCE_DIR "."
#endif

ps_score_job ps_score_job_default(void)
{
    return (ps_score_job){.warmup = -1, .cfg = ps_scorer_default_config()};
}

const char *ps_score_model_path(const ps_score_job *job, char *buf, size_t buflen)
{
    const char *path = job->model ? job->model : getenv("PRESHIFT_MODEL");
    if (path) return path;
    snprintf(buf, buflen, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
    return buf;
}

void ps_score_options_usage(FILE *out)
{
    ps_scorer_config d = ps_scorer_default_config();
    fprintf(out,
            "scoring options:\n"
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
            "  --level-weight L     weight of the level term (EW z against its healthy\n"
            "                       spread) in the raw score, 0 = off (default %g)\n"
            "  --level-rate A       weight of a new tick in the EW level (default %g)\n"
            "  --seasonal-weight S|auto  weight of the seasonal term (distance from the\n"
            "                       same phase of the last cycles) in the raw score, 0 = off;\n"
            "                       auto: 1 for a one-metric series, 0 for several (default\n"
            "                       auto)\n"
            "  --seasonal-cycles C  cycles the seasonal term compares with (default %u)\n"
            "  --max-period N       longest period looked for, in ticks (default %u)\n"
            "  --seasonal-acf R     autocorrelation a period must reach (default %g)\n"
            "  --seasonal-rate A    weight of a new tick in the EW seasonal distance\n"
            "                       (default %g)\n"
            "  --backend NAME       kernel backend, cpu or cuda (default: the one this\n"
            "                       build chose, %s)\n"
            "  --threads N          kernel threads, 0 = all cores (default 0)\n"
            "  -q, --quiet          no progress on stderr\n",
            750u, PRESHIFT_SOURCE_DIR, (double)d.lstm_weight, d.arima_p, d.arima_d, d.arima_q,
            (double)d.smoothing, (double)d.drift_rate, (double)d.residual_floor,
            (double)d.unstable_pfp, (double)d.level_weight, (double)d.level_rate,
            (unsigned)d.seasonal.cycles, (unsigned)d.seasonal.max_period,
            (double)d.seasonal.min_acf, (double)d.seasonal.rate,
            ps_backend_default_kind() == PS_BACKEND_CUDA ? "cuda" : "cpu");
}

int ps_score_parse_option(ps_score_job *job, int argc, char **argv, int *i, char *err,
                          size_t errlen)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    ps_scorer_config *c = &job->cfg;
    long l, order[3];
    double x;
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
        job->quiet = 1;
        return 1;
    }
    static const char *const valued[] = {"--history",      "--model",           "--warmup",
                                         "--backend",      "--threads",         "--lstm-weight",
                                         "--arima",        "--smoothing",       "--drift",
                                         "--unstable-pfp", "--residual-floor",  "--level-weight",
                                         "--level-rate",   "--seasonal-weight", "--seasonal-cycles",
                                         "--max-period",   "--seasonal-acf",    "--seasonal-rate"};
    size_t which = 0, count = sizeof valued / sizeof valued[0];
    while (which < count && strcmp(a, valued[which]))
        which++;
    if (which == count) return 0;
    if (!v) {
        snprintf(err, errlen, "%s needs a value", a);
        return -1;
    }
    (*i)++;
    int bad = 0;
    switch (which) {
    case 0:
        job->history = v;
        break;
    case 1:
        job->model = v;
        break;
    case 2:
        bad = ps_parse_long(a, v, 16, 10000000, &l, err, errlen);
        job->warmup = l;
        break;
    case 3:
        bad = ps_parse_backend(a, v, &job->backend, err, errlen);
        break;
    case 4:
        bad = ps_parse_long(a, v, 0, 64, &l, err, errlen);
        job->threads = l;
        break;
    case 5:
        bad = ps_parse_double(a, v, 0, 1, &x, err, errlen);
        c->lstm_weight = (float)x;
        break;
    case 6: {
        int got = ps_parse_long_list(a, v, 0, 16, order, 3, err, errlen);
        if (got >= 0 && got != 3) snprintf(err, errlen, "--arima takes P,D,Q");
        if (got == 3 && order[1] > 2) snprintf(err, errlen, "--arima: D is at most 2");
        bad = got != 3 || order[1] > 2;
        c->arima_p = (int)order[0];
        c->arima_d = (int)order[1];
        c->arima_q = (int)order[2];
        break;
    }
    case 7:
        bad = ps_parse_double(a, v, 1e-3, 1, &x, err, errlen);
        c->smoothing = (float)x;
        break;
    case 8:
        bad = ps_parse_double(a, v, 0, 0.5, &x, err, errlen);
        c->drift_rate = (float)x;
        break;
    case 9:
        bad = ps_parse_double(a, v, 0.5, 1, &x, err, errlen);
        c->unstable_pfp = (float)x;
        break;
    case 10:
        bad = ps_parse_double(a, v, 1e-6, 1e6, &x, err, errlen);
        c->residual_floor = (float)x;
        break;
    case 11:
        bad = ps_parse_double(a, v, 0, 1e6, &x, err, errlen);
        c->level_weight = (float)x;
        break;
    case 12:
        bad = ps_parse_double(a, v, 1e-3, 1, &x, err, errlen);
        c->level_rate = (float)x;
        break;
    case 13:
        if (!strcmp(v, "auto")) {
            c->seasonal_weight = PS_SEASONAL_AUTO;
            break;
        }
        bad = ps_parse_double(a, v, 0, 1e6, &x, err, errlen);
        c->seasonal_weight = (float)x;
        break;
    case 14:
        bad = ps_parse_long(a, v, 1, 16, &l, err, errlen);
        c->seasonal.cycles = (uint32_t)l;
        break;
    case 15:
        bad = ps_parse_long(a, v, 4, 100000, &l, err, errlen);
        c->seasonal.max_period = (uint32_t)l;
        break;
    case 16:
        bad = ps_parse_double(a, v, 0.01, 1, &x, err, errlen);
        c->seasonal.min_acf = (float)x;
        break;
    default:
        bad = ps_parse_double(a, v, 1e-3, 1, &x, err, errlen);
        c->seasonal.rate = (float)x;
        break;
    }
    return bad ? -1 : 1;
}

/* NAB's probationary period: 15 % of the rows, at most 750 (and our least, 16). */
static uint32_t default_warmup(size_t rows)
{
    size_t w = rows * 15 / 100;
    if (w > 750) w = 750;
    if (w < 16) w = 16;
    return (uint32_t)w;
}

static uint32_t warmup_of(const ps_score_job *job, const ps_csv *csv, const ps_csv *hist)
{
    if (job->history) return (uint32_t)hist->rows;
    if (job->warmup > 0) return (uint32_t)job->warmup;
    return default_warmup(csv->rows);
}

static int read_inputs(const char *cmd, const ps_score_job *job, ps_csv *csv, ps_csv *hist)
{
    char err[512];
    for (size_t i = 0; i < job->n; i++) {
        if (ps_csv_read(job->paths[i], &csv[i], err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", cmd, err);
            return 1;
        }
        if (csv[i].cols != csv[0].cols) {
            fprintf(stderr,
                    "%s: %s has %zu columns, %s has %zu: scored together, inputs must have "
                    "the same metrics\n",
                    cmd, job->paths[i], csv[i].cols, job->paths[0], csv[0].cols);
            return 1;
        }
    }
    if (!job->history) return 0;
    if (ps_csv_read(job->history, hist, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return 1;
    }
    if (hist->cols != csv[0].cols) {
        fprintf(stderr, "%s: %s has %zu metric columns, the history %s has %zu\n", cmd,
                job->paths[0], csv[0].cols, job->history, hist->cols);
        return 1;
    }
    if (hist->rows < 16) {
        fprintf(stderr, "%s: %s: %zu rows of history, at least 16 needed\n", cmd, job->history,
                hist->rows);
        return 1;
    }
    return 0;
}

int ps_score_files(const char *cmd, const ps_score_job *job, ps_score_ready_fn ready,
                   ps_score_row_fn row, void *user)
{
    char err[512], pathbuf[4096];
    size_t n = job->n;
    int status = 1;
    ps_csv *csv = calloc(n, sizeof *csv);
    ps_csv hist = {0};
    ps_score *scores = calloc(n, sizeof *scores);
    uint32_t *procs = malloc(n * sizeof *procs);
    float *x = NULL;
    ps_backend *be = NULL;
    ps_scorer *sc = NULL;
    ps_model model = {0};
    if (!csv || !scores || !procs) goto oom;
    if (read_inputs(cmd, job, csv, &hist)) goto done;
    if (ps_model_load(ps_score_model_path(job, pathbuf, sizeof pathbuf), &model, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        goto done;
    }

    size_t K = csv[0].cols, ticks = 0;
    ps_scorer_config cfg = job->cfg;
    cfg.processors = n;
    cfg.metrics = K;
    cfg.warmup = 16;
    uint32_t shortest = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        uint32_t w = warmup_of(job, &csv[i], &hist);
        if (w > cfg.warmup) cfg.warmup = w;
        if (w < shortest) shortest = w;
        if (csv[i].rows > ticks) ticks = csv[i].rows;
    }
    /* Short warm-ups keep most of their rows for the residual statistics. */
    if (cfg.burn_in > shortest / 4) cfg.burn_in = shortest / 4;
    be = ps_backend_init(&(ps_backend_params){.kind = job->backend, .threads = (int)job->threads},
                         err, sizeof err);
    if (!be) {
        fprintf(stderr, "%s: kernel backend: %s%s\n", cmd, err,
                job->backend == PS_BACKEND_DEFAULT ? " (--backend cpu runs on the CPU)" : "");
        goto done;
    }
    sc = ps_scorer_create(be, &model, &cfg, err, sizeof err);
    if (!sc) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        ps_scorer_set_warmup(sc, (uint32_t)i, warmup_of(job, &csv[i], &hist));
    x = malloc(n * K * sizeof *x);
    if (!x) goto oom;

    for (size_t r = 0; r < hist.rows; r++) {
        uint32_t p = 0;
        if (ps_scorer_tick(sc, 1, &p, NULL, hist.values + r * K, scores, err, sizeof err)) {
            fprintf(stderr, "%s: %s row %zu: %s\n", cmd, job->history, r + 1, err);
            goto done;
        }
    }
    if ((status = ready(user, csv, n)) != 0) goto done;
    status = 1;

    if (!job->quiet && ticks * n > 200000)
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
            fprintf(stderr, "%s: row %zu: %s\n", cmd, r + 1, err);
            goto done;
        }
        for (size_t j = 0; j < m; j++)
            if (row(user, procs[j], r, &scores[j])) goto done;
        if (!job->quiet && time(NULL) - last >= 2) {
            last = time(NULL);
            fprintf(stderr, "row %zu/%zu\n", r + 1, ticks);
        }
    }
    status = 0;
    goto done;
oom:
    fprintf(stderr, "%s: out of memory\n", cmd);
done:
    for (size_t i = 0; csv && i < n; i++)
        ps_csv_free(&csv[i]);
    ps_csv_free(&hist);
    ps_scorer_free(sc);
    ps_backend_free(be);
    ps_model_free(&model);
    free(csv);
    free(scores);
    free(procs);
    free(x);
    return status;
}
