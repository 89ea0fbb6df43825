/*
 * arima.h - ARIMA(p, d, q) per series: estimation on a window of history,
 * and online one-step forecasts of many series at once through the kernels.
 *
 * The model of a series y, with w = the d-th difference of y (d <= 2):
 *
 *   w_t = c + phi_1 w_{t-1} + .. + phi_p w_{t-p}
 *           + e_t + theta_1 e_{t-1} + .. + theta_q e_{t-q}
 *
 * (the signs of statsmodels and of kernels.h). Estimation is Hannan-Rissanen
 * followed by Gauss-Newton steps on the conditional sum of squares; see
 * docs/arima.md for why, and for the accuracy measured against statsmodels.
 *
 * Forecasts and residuals are always in the raw (undifferenced) scale: the
 * residual at t is y_t minus the forecast made at t-1, which equals the
 * residual of the differenced series.
 *
 * Estimation works in double. The online bank keeps coefficients and lags
 * in the kernel (float), centred on each series' mean so that a series far
 * from zero keeps its precision, and the last d raw values on the host in
 * double.
 */
#ifndef PRESHIFT_ARIMA_H
#define PRESHIFT_ARIMA_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdint.h>

#define PS_ARIMA_MAX_D 2

/* Failures of ARIMA functions beyond the PS_E* codes of kernels.h. */
enum {
    PS_ARIMA_ESHORT = -20, /* the window is shorter than ps_arima_min_window() */
    PS_ARIMA_EDATA = -21,  /* a value is NaN or infinite */
};

/* What estimation had to do to return a usable model (bits of .flags). */
enum {
    PS_ARIMA_CONSTANT = 1u << 0,  /* the differenced window is constant: c only */
    PS_ARIMA_DROPPED = 1u << 1,   /* collinear regressors were left out (set to 0) */
    PS_ARIMA_SHRUNK_AR = 1u << 2, /* phi shrunk to make the AR part stationary */
    PS_ARIMA_SHRUNK_MA = 1u << 3, /* theta shrunk to make the MA part invertible */
    PS_ARIMA_NO_REFINE = 1u << 4, /* no Gauss-Newton step improved the fit */
};

typedef struct ps_arima_model {
    int p, d, q;
    double c;                        /* constant of the differenced series */
    double phi[PS_ARMA_MAX_ORDER];   /* phi_1..phi_p; the rest are 0 */
    double theta[PS_ARMA_MAX_ORDER]; /* theta_1..theta_q; the rest are 0 */
    /*
     * The level of the differenced series assumed before the data starts
     * (the pre-sample lags) and the centre the kernel works around.
     * Estimation sets it to the window's mean of w; for hand-made
     * coefficients c / (1 - sum phi) (the process mean) is right.
     */
    double mean;
    double sigma2;    /* mean squared one-step residual over the window */
    unsigned flags;   /* PS_ARIMA_* bits above */
    int refine_steps; /* Gauss-Newton steps taken */
} ps_arima_model;

typedef struct ps_arima_options {
    int refine;  /* most Gauss-Newton steps after Hannan-Rissanen; 0 = none */
    int long_ar; /* order of the long AR of the first stage; 0 = automatic */
} ps_arima_options;

/* The defaults (what a NULL options pointer means). */
ps_arima_options ps_arima_default_options(void);

/* Shortest window, in raw values, that estimation accepts for an order. */
size_t ps_arima_min_window(int p, int d, int q);

/*
 * Fit ARIMA(p, d, q) to y[0..n-1]. 0 on success; PS_EINVAL for orders out
 * of range (p, q in 0..PS_ARMA_MAX_ORDER, d in 0..PS_ARIMA_MAX_D),
 * PS_ARIMA_ESHORT, PS_ARIMA_EDATA or PS_ENOMEM, with a reason in err
 * (if not NULL). opt may be NULL.
 */
int ps_arima_estimate(const double *y, size_t n, int p, int d, int q, const ps_arima_options *opt,
                      ps_arima_model *m, char *err, size_t errlen);

/*
 * Run the model over a whole series: resid[t] = y[t] - (forecast of y[t]
 * made at t-1) and forecast[t] = the forecast of y[t+1] made at t. Before
 * the first value the differenced series sits at m->mean with zero
 * residuals. The first d values have no residual (NaN), and forecast[t] is
 * NaN for t < d - 1 (too few values to undo the differencing). Either
 * output may be NULL. 0, PS_EINVAL or PS_ARIMA_EDATA.
 */
int ps_arima_filter(const ps_arima_model *m, const double *y, size_t n, double *resid,
                    double *forecast);

/*
 * Many series of one order, stepped together through a kernel ARMA object
 * (one slot per series: slot i is series i).
 */
typedef struct ps_arima_bank ps_arima_bank;

/* NULL on failure with the reason in err. */
ps_arima_bank *ps_arima_bank_create(ps_backend *be, int p, int d, int q, size_t nseries, char *err,
                                    size_t errlen);
void ps_arima_bank_free(ps_arima_bank *b);
size_t ps_arima_bank_series(const ps_arima_bank *b);
/* The last failure, for messages. */
const char *ps_arima_bank_error(const ps_arima_bank *b);

/*
 * Estimate series' model on window[0..len-1] (its most recent history) and
 * prime its state as if the model had run over the window: the next step
 * takes the value that follows the window. Return codes as
 * ps_arima_estimate, or the backend's.
 */
int ps_arima_bank_fit(ps_arima_bank *b, uint32_t series, const float *window, size_t len,
                      const ps_arima_options *opt);
/*
 * Install a given model (of the bank's order) and prime the state over
 * history[0..len-1], len >= d: for models loaded from a file.
 */
int ps_arima_bank_set_model(ps_arima_bank *b, uint32_t series, const ps_arima_model *m,
                            const float *history, size_t len);
/* The model series runs; PS_EINVAL if it has none yet. */
int ps_arima_bank_get_model(const ps_arima_bank *b, uint32_t series, ps_arima_model *m);

/*
 * One new raw value for each of n distinct, fitted series: resid[i] is
 * y[i] minus the forecast made at the previous step, forecast[i] the
 * forecast of the series' next value (either may be NULL). Refused without
 * any change (PS_EINVAL, PS_ARIMA_EDATA) if a series is out of range,
 * repeated or not fitted, or a value is not finite.
 */
int ps_arima_bank_step(ps_arima_bank *b, size_t n, const uint32_t *series, const float *y,
                       float *resid, float *forecast);

/*
 * Forget series' model and state: it has none until the next fit (an
 * evicted processor). 0, PS_EINVAL or the backend's error.
 */
int ps_arima_bank_reset(ps_arima_bank *b, uint32_t series);

/*
 * The state of one series as little-endian bytes (docs/state-file.md): the
 * order and a fitted flag, then for a fitted series its coefficients and
 * mean in double, sigma2, flags, refine steps, the last d raw values and
 * the kernel's ARMA state (p + q + 1 floats). The kernel's parameters are
 * not written: they follow from the coefficients and mean, exactly as
 * ps_arima_bank_set_model computes them.
 */
size_t ps_arima_bank_state_len(const ps_arima_bank *b, uint32_t series);
/* 0, PS_EINVAL (series out of range, len too short) or the backend's error. */
int ps_arima_bank_state_export(const ps_arima_bank *b, uint32_t series, uint8_t *buf, size_t len);
/*
 * Check a snapshot against the bank's order without changing anything:
 * the length, every coefficient, the mean, sigma2, the last values and the
 * kernel state finite, flags known. 0 or PS_EINVAL with the reason in err.
 */
int ps_arima_bank_state_check(const ps_arima_bank *b, const uint8_t *buf, size_t len, char *err,
                              size_t errlen);
/* Check, then install; a refused snapshot changes nothing. */
int ps_arima_bank_state_import(ps_arima_bank *b, uint32_t series, const uint8_t *buf, size_t len,
                               char *err, size_t errlen);

#endif
