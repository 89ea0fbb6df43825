/*
 * model.h - a trained forecaster: its shape, weights and how its inputs are
 * normalized. What a model file holds, in memory.
 *
 * The default model is channel-independent (input = output = 1): one
 * univariate LSTM shared by every metric of every processor, fed values
 * normalized by each series' own baseline. A multivariate model has
 * input = output = K for one fixed metric set; the code is the same.
 */
#ifndef PRESHIFT_MODEL_H
#define PRESHIFT_MODEL_H

#include "calibration.h"
#include "kernels/kernels.h"

#include <stdint.h>

typedef enum ps_norm_kind {
    /* each series is normalized by its own robust baseline (median, scaled
     * MAD with a floor), computed by the caller at run time */
    PS_NORM_BASELINE = 0,
    /* the model carries a location and scale per input column */
    PS_NORM_FIXED = 1,
} ps_norm_kind;

typedef struct ps_model {
    ps_lstm_shape shape;
    float *params; /* ps_lstm_param_count(&shape) floats, layout of kernels.h */
    ps_norm_kind norm;
    float clip;        /* normalized inputs are clipped to [-clip, clip]; 0 = none */
    float *norm_loc;   /* shape.input floats for PS_NORM_FIXED, else NULL */
    float *norm_scale; /* likewise; every value > 0 */

    /* How it was trained; informational, kept so a file says where it came from. */
    uint64_t train_seed;
    uint32_t train_epochs;
    uint32_t train_window;  /* BPTT length */
    float train_loss;       /* final training loss (MSE on normalized values) */
    char train_source[256]; /* free text: data and command, NUL-terminated */

    /* Score to PFP, fitted on labelled incidents; kind PS_CALIB_NONE (zero) = none. */
    ps_calibration calibration;
} ps_model;

/* Allocate zeroed parameters for shape; 0, PS_EINVAL or PS_ENOMEM. */
int ps_model_init(ps_model *m, const ps_lstm_shape *shape);
void ps_model_free(ps_model *m);
/*
 * PyTorch's default initialization, U(-1/sqrt(hidden), 1/sqrt(hidden)) for
 * every weight and bias, from a seeded generator, then the forget-gate bias
 * set to 1 (it helps an LSTM carry state early in training).
 */
void ps_model_init_random(ps_model *m, uint64_t seed);

#endif
