/*
 * reference_arma.h - a naive scalar reference of the kernels' ARMA step,
 * written as directly as the equations in kernels/kernels.h, in double.
 * Every backend's ARMA step is checked against it; nothing here is tuned.
 */
#ifndef PRESHIFT_REFERENCE_ARMA_H
#define PRESHIFT_REFERENCE_ARMA_H

#include "kernels/kernels.h"

/*
 * One ARMA(p, q) step for n slots, in place on arrays laid out as kernels.h
 * says: params is slots x (1 + p + q) (c, phi, theta), state is
 * slots x (p + q + 1) (w lags, e lags, forecast). Row i of w, resid and
 * forecast belongs to slots[i]; resid and forecast may be NULL.
 */
void ref_arma_step(int p, int q, const float *params, float *state, size_t n, const uint32_t *slots,
                   const float *w, float *resid, float *forecast);

#endif
