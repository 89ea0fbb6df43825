/*
 * reference.h - naive scalar references of the kernels, written as directly
 * as the equations in kernels/kernels.h, in double. Every backend is checked
 * against these; nothing here is tuned.
 */
#ifndef PRESHIFT_REFERENCE_H
#define PRESHIFT_REFERENCE_H

#include "kernels/kernels.h"

/*
 * One LSTM step for n slots of a state array laid out as kernels.h says
 * (state: slots x ps_lstm_state_floats, per layer h then c), in place.
 */
void ref_lstm_step(const ps_lstm_shape *s, const float *params, float *state, size_t n,
                   const uint32_t *slots, const float *x, float *y);

#endif
