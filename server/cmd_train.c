/*
 * cmd_train.c - `preshift train`: CSV history in, model file out.
 *
 * All the learning is core/train.c; this file only turns flags and files
 * into a ps_train_config and tables, reports progress on stderr, and writes
 * the model. Usage errors (flags) exit 2 before any file is opened; data and
 * file errors exit 1, so a script can tell a typo from a bad input.
 */
#include "cli.h"
#include "commands.h"
#include "core/train.h"
#include "csv.h"
#include "model_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    ps_train_config d;
    ps_train_config_default(&d);
    fprintf(out,
            "usage: preshift train [options] -o MODEL FILE...\n"
            "\n"
            "Train the LSTM forecaster on healthy history and write it to MODEL.\n"
            "Each FILE is a CSV (plain or gzip; '-' is stdin): one row per tick, one\n"
            "column per metric, an optional header, an optional leading label column\n"
            "(timestamps). By default every column of every file is one series,\n"
            "normalized by its own median and scaled MAD, and one univariate model\n"
            "learns them all (channel-independent). The last --val part of every\n"
            "series is held out and its loss reported.\n"
            "\n"
            "options:\n"
            "  -o, --output MODEL   model file to write (required)\n"
            "  --hidden N           hidden units per layer (default %d)\n"
            "  --layers N           LSTM layers (default %d)\n"
            "  --window N           steps per training sequence, the BPTT length (default %u)\n"
            "  --burn-in N          leading steps of a sequence not scored (default %u)\n"
            "  --batch N            sequences per Adam step (default %u)\n"
            "  --epochs N           passes over the data (default %u)\n"
            "  --lr X               Adam step size (default %g)\n"
            "  --lr-final X         cosine-decayed to this by the end (default lr/%g)\n"
            "  --grad-clip X        clip the gradient's L2 norm to X, 0 = off (default %g)\n"
            "  --clip X             clip normalized values to +-X (default %g)\n"
            "  --val X              held-out fraction of every series, 0..0.5 (default %g)\n"
            "  --max-windows N      sequences per epoch, a random subset; 0 = all (default)\n"
            "  --seed N             seed of initialization and shuffling (default %llu)\n"
            "  --multivariate       one K-variate model over the K columns (all files\n"
            "                       alike) with per-column normalization in the model\n"
            "  -q, --quiet          no progress on stderr\n"
            "  -h, --help           this text\n"
            "\n"
            "Exit status: 0 written, 1 bad data or file, 2 bad usage.\n",
            d.hidden, d.layers, d.window, d.burn_in, d.batch, d.epochs, d.lr, d.lr / d.lr_final,
            d.grad_clip, (double)d.clip, d.val_fraction, (unsigned long long)d.seed);
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "preshift train: %s\n(see 'preshift train --help')\n", msg);
    return 2;
}

typedef struct progress_state {
    int quiet;
    int printing;
} progress_state;

static int on_epoch(void *user, const ps_train_progress *p)
{
    progress_state *s = user;
    /* Quick runs stay quiet; anything longer than a second reports every epoch. */
    if (s->quiet || (!s->printing && p->seconds < 1.0)) return 0;
    s->printing = 1;
    fprintf(stderr, "epoch %u/%u  train %.6f  val %.6f  %.1f s\n", p->epoch, p->epochs,
            p->train_loss, p->val_loss, p->seconds);
    return 0;
}

/* The command line, as provenance for the model file; truncated with "..." if long. */
static void record_source(char *dst, size_t cap, int argc, char **argv)
{
    size_t n = (size_t)snprintf(dst, cap, "preshift");
    for (int i = 0; i < argc && n < cap; i++)
        n += (size_t)snprintf(dst + n, cap - n, " %s", argv[i]);
    if (n >= cap && cap > 4) memcpy(dst + cap - 4, "...", 4);
}

int ps_cmd_train(int argc, char **argv)
{
    ps_train_config cfg;
    ps_train_config_default(&cfg);
    const char *output = NULL;
    int quiet = 0;
    char err[512];
    const char **files = calloc((size_t)(argc > 0 ? argc : 1), sizeof *files);
    size_t nfiles = 0;
    if (!files) {
        fprintf(stderr, "preshift train: out of memory\n");
        return 1;
    }
    int rc = 2;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !strcmp(a, "-")) {
            files[nfiles++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            while (++i < argc)
                files[nfiles++] = argv[i];
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = 0;
            goto out;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--multivariate")) {
            cfg.multivariate = 1;
            continue;
        }
        /* Everything else takes a value: "--flag value" or "--flag=value". */
        char flag[64];
        const char *val;
        const char *eq = strchr(a, '=');
        if (eq && a[1] == '-') {
            size_t fl = (size_t)(eq - a);
            if (fl >= sizeof flag) fl = sizeof flag - 1;
            memcpy(flag, a, fl);
            flag[fl] = '\0';
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
            val = i + 1 < argc ? argv[++i] : NULL;
        }
        long lv;
        double dv;
        int bad = 0;
        if (!strcmp(flag, "-o") || !strcmp(flag, "--output")) {
            if (!val || !*val) {
                snprintf(err, sizeof err, "%s needs a file name", flag);
                bad = 1;
            } else
                output = val;
        } else if (!strcmp(flag, "--hidden")) {
            bad = ps_parse_long(flag, val, 1, PS_LSTM_MAX_HIDDEN, &lv, err, sizeof err);
            cfg.hidden = (int32_t)lv;
        } else if (!strcmp(flag, "--layers")) {
            bad = ps_parse_long(flag, val, 1, PS_LSTM_MAX_LAYERS, &lv, err, sizeof err);
            cfg.layers = (int32_t)lv;
        } else if (!strcmp(flag, "--window")) {
            bad = ps_parse_long(flag, val, 2, 100000, &lv, err, sizeof err);
            cfg.window = (uint32_t)lv;
        } else if (!strcmp(flag, "--burn-in")) {
            bad = ps_parse_long(flag, val, 0, 99999, &lv, err, sizeof err);
            cfg.burn_in = (uint32_t)lv;
        } else if (!strcmp(flag, "--batch")) {
            bad = ps_parse_long(flag, val, 1, 65536, &lv, err, sizeof err);
            cfg.batch = (uint32_t)lv;
        } else if (!strcmp(flag, "--epochs")) {
            bad = ps_parse_long(flag, val, 1, 1000000, &lv, err, sizeof err);
            cfg.epochs = (uint32_t)lv;
        } else if (!strcmp(flag, "--max-windows")) {
            bad = ps_parse_long(flag, val, 0, 2000000000L, &lv, err, sizeof err);
            cfg.max_windows = (size_t)lv;
        } else if (!strcmp(flag, "--seed")) {
            bad = ps_parse_long(flag, val, 0, 2147483647L, &lv, err, sizeof err);
            cfg.seed = (uint64_t)lv;
        } else if (!strcmp(flag, "--lr")) {
            bad = ps_parse_double(flag, val, 1e-9, 10, &dv, err, sizeof err);
            cfg.lr = dv;
        } else if (!strcmp(flag, "--lr-final")) {
            bad = ps_parse_double(flag, val, 0, 10, &dv, err, sizeof err);
            cfg.lr_final = dv;
        } else if (!strcmp(flag, "--grad-clip")) {
            bad = ps_parse_double(flag, val, 0, 1e6, &dv, err, sizeof err);
            cfg.grad_clip = dv;
        } else if (!strcmp(flag, "--clip")) {
            bad = ps_parse_double(flag, val, 1e-3, 1e6, &dv, err, sizeof err);
            cfg.clip = (float)dv;
        } else if (!strcmp(flag, "--val")) {
            bad = ps_parse_double(flag, val, 0, 0.5, &dv, err, sizeof err);
            cfg.val_fraction = dv;
        } else {
            snprintf(err, sizeof err, "unknown option '%s'", flag);
            bad = 1;
        }
        if (bad) {
            rc = usage_error(err);
            goto out;
        }
    }
    /* --lr alone means a constant rate unless --lr-final says otherwise. */
    int lr_final_given = 0;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--lr-final", 10)) lr_final_given = 1;
    if (!lr_final_given) {
        ps_train_config d;
        ps_train_config_default(&d);
        cfg.lr_final = cfg.lr * (d.lr_final / d.lr);
    }
    if (!output) {
        rc = usage_error("no output file: -o MODEL is required");
        goto out;
    }
    if (nfiles == 0) {
        rc = usage_error("no input file");
        goto out;
    }
    if (cfg.burn_in >= cfg.window) {
        snprintf(err, sizeof err, "--burn-in (%u) must be smaller than --window (%u)", cfg.burn_in,
                 cfg.window);
        rc = usage_error(err);
        goto out;
    }
    size_t stdin_uses = 0;
    for (size_t i = 0; i < nfiles; i++)
        stdin_uses += !strcmp(files[i], "-");
    if (stdin_uses > 1) {
        rc = usage_error("'-' (stdin) can be given only once");
        goto out;
    }

    rc = 1;
    ps_csv *csv = calloc(nfiles, sizeof *csv);
    ps_train_table *tables = calloc(nfiles, sizeof *tables);
    ps_model model;
    memset(&model, 0, sizeof model);
    if (!csv || !tables) {
        fprintf(stderr, "preshift train: out of memory\n");
        goto free_data;
    }
    size_t series = 0, ticks = 0;
    for (size_t i = 0; i < nfiles; i++) {
        if (ps_csv_read(files[i], &csv[i], err, sizeof err)) {
            fprintf(stderr, "preshift train: %s\n", err);
            goto free_data;
        }
        tables[i] = (ps_train_table){csv[i].values, csv[i].rows, csv[i].cols};
        series += cfg.multivariate ? 1 : csv[i].cols;
        ticks += csv[i].rows;
    }
    if (!quiet)
        fprintf(stderr,
                "training on %zu file(s), %zu ticks, %zu series: hidden %d, layers %d, window "
                "%u, batch %u, %u epochs\n",
                nfiles, ticks, series, cfg.hidden, cfg.layers, cfg.window, cfg.batch, cfg.epochs);

    progress_state ps = {quiet, 0};
    ps_train_result res;
    int trc = ps_train(tables, nfiles, &cfg, &model, &res, on_epoch, &ps, err, sizeof err);
    if (trc) {
        fprintf(stderr, "preshift train: %s\n", err[0] ? err : "training failed");
        goto free_data;
    }
    record_source(model.train_source, sizeof model.train_source, argc, argv);
    if (ps_model_save(output, &model, err, sizeof err)) {
        fprintf(stderr, "preshift train: %s\n", err);
        goto free_data;
    }
    if (!quiet) {
        fprintf(stderr,
                "%zu series (%zu too short, skipped), %zu windows per epoch, %u epochs in %.1f "
                "s\n",
                res.series, res.series_skipped, res.windows, res.epochs_run, res.seconds);
        if (isnan(res.val_loss))
            fprintf(stderr, "final loss: train %.6f, no validation part\n", res.train_loss);
        else
            fprintf(stderr, "final loss: train %.6f, val %.6f (persistence %.6f)\n", res.train_loss,
                    res.val_loss, res.val_persistence);
        fprintf(stderr, "wrote %s\n", output);
    }
    rc = 0;

free_data:
    ps_model_free(&model);
    if (csv)
        for (size_t i = 0; i < nfiles; i++)
            ps_csv_free(&csv[i]);
    free(csv);
    free(tables);
out:
    free(files);
    return rc;
}
