/*
 * train.h - offline training of the LSTM forecaster (ps_model, the layout of
 * kernels.h) by backpropagation through time with Adam.
 *
 * The data are tables of healthy history (rows = ticks, columns = metrics).
 * Channel-independent (the default): every column of every table is one
 * univariate series, normalized by its own robust location and scale
 * (core/robust.h) exactly as the run-time baseline will normalize it, and
 * clipped to +-clip; the model (input = output = 1) learns to forecast the
 * next normalized value. Multivariate: every table is one K-variate series
 * (all tables have K columns), normalized by per-column location and scale
 * computed over all tables and stored in the model (PS_NORM_FIXED).
 *
 * The last val_fraction of every series is held out: it never contributes
 * to a gradient or to the normalization, and its loss is reported.
 *
 * Training is single-threaded and deterministic: the same data, config and
 * binary give bit-identical parameters. Forward and backward passes run in
 * double, and the parameters are rounded to float once, at the end.
 */
#ifndef PRESHIFT_TRAIN_H
#define PRESHIFT_TRAIN_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ps_train_table {
    const float *values; /* rows x cols, row-major; every value finite */
    size_t rows, cols;
} ps_train_table;

typedef struct ps_train_config {
    int32_t hidden, layers;
    int multivariate; /* 0: channel-independent, input = output = 1 */
    uint32_t window;  /* steps of one training sequence: the BPTT length */
    uint32_t burn_in; /* leading steps of a sequence whose forecasts are not scored */
    uint32_t batch;   /* sequences per Adam step */
    uint32_t epochs;
    double lr;           /* Adam step size; beta1 0.9, beta2 0.999, eps 1e-8 */
    double lr_final;     /* cosine decay from lr to this over the run; = lr for constant */
    double grad_clip;    /* global L2 norm of the minibatch gradient; 0 = none */
    float clip;          /* normalized inputs and targets are clipped to +-clip; > 0 */
    double val_fraction; /* tail of each series held out, in [0, 0.5] */
    size_t max_windows;  /* training sequences per epoch, a random subset; 0 = all */
    uint64_t seed;
} ps_train_config;

/* hidden 32, 1 layer, window 64, burn-in 16, batch 32, 20 epochs, lr 3e-3 decaying
 * to 3e-4, grad clip 1, clip 8, val 0.1, all windows, seed 1. */
void ps_train_config_default(ps_train_config *c);

typedef struct ps_train_progress {
    uint32_t epoch, epochs; /* epoch just finished (1-based) and the planned total */
    double train_loss;      /* mean minibatch loss over the epoch */
    double val_loss;        /* loss on the held-out tails; NAN without a validation part */
    double seconds;         /* since ps_train began */
} ps_train_progress;

/* Called after every epoch; a non-zero return stops training after that epoch. */
typedef int (*ps_train_progress_fn)(void *user, const ps_train_progress *p);

typedef struct ps_train_result {
    double train_loss;      /* of the last epoch */
    double val_loss;        /* of the final parameters; NAN without validation */
    double val_persistence; /* the same loss for "next = current": the bar to beat */
    double seconds;
    uint32_t epochs_run;
    size_t series; /* series used (skipped ones are too short) */
    size_t series_skipped;
    size_t train_steps; /* scored forecasts available for training */
    size_t val_steps;   /* scored forecasts in the validation parts */
    size_t windows;     /* training sequences per epoch */
} ps_train_result;

/*
 * Train a model on ntables tables. On success returns 0 and *out is a new
 * model (ps_model_free it) whose train_* fields are set except train_source
 * (left empty for the caller). On failure returns PS_EINVAL (bad config, no
 * usable data: err says why) or PS_ENOMEM, and *out is zeroed. res and
 * progress may be NULL.
 *
 * Every sequence starts from a zero state; its first burn_in steps are fed
 * but not scored, so the scored forecasts are made from a warmed-up state
 * as at run time, and gradients still flow back through the burn-in. The
 * validation loss is measured online, as the server would run: each tail is
 * forecast continuously from a state warmed up over the `window` steps
 * before it.
 */
int ps_train(const ps_train_table *tables, size_t ntables, const ps_train_config *cfg,
             ps_model *out, ps_train_result *res, ps_train_progress_fn progress, void *user,
             char *err, size_t errlen);

/*
 * Loss and gradient of one sequence, for checking the backward pass: params
 * is the flat vector of kernels.h in double for m->shape (m->params is not
 * read), x is steps x input, y is steps x output (the target of step t),
 * the state starts at zero and every step is scored. Returns the mean
 * squared error over steps x output and writes its gradient into grad
 * (ps_lstm_param_count doubles); returns -1 on a bad shape or no memory.
 */
double ps_train_loss_grad(const ps_model *m, const double *params, const float *x, const float *y,
                          size_t steps, double *grad);

#endif
