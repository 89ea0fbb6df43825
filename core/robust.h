/*
 * robust.h - robust location and scale of a series: the normalization a
 * channel-independent model sees, in training and at run time alike.
 *
 * Location is the median; scale is the median absolute deviation times
 * 1.4826 (a standard deviation for normal data), so a few spikes in the
 * history do not stretch the scale that later spikes are measured against.
 *
 * Real metrics are often quantized or nearly constant (a disk that is
 * always 0.40, a counter that is 0 most of the time): more than half the
 * values equal the median, the MAD is 0 and a plain division would explode
 * or divide by zero. Two rules keep the scale usable:
 *
 *  1. when 1.4826 * MAD is below the floor, the mean absolute deviation
 *     around the median (times sqrt(pi/2), its normal-consistent factor) is
 *     used instead, so the spread of the minority of values still counts;
 *  2. the scale is never below the floor
 *         PS_ROBUST_FLOOR_ABS + PS_ROBUST_FLOOR_REL * |median|,
 *     so a constant series normalizes to 0 and a step of 1 % of the
 *     series' own level is at most about one unit.
 *
 * Non-finite values (NaN, +-inf) are skipped: a gap in the history does not
 * poison its baseline. The result is always finite with scale > 0.
 */
#ifndef PRESHIFT_ROBUST_H
#define PRESHIFT_ROBUST_H

#include <stddef.h>

#define PS_ROBUST_MAD_TO_SIGMA 1.4826
#define PS_ROBUST_MEANAD_TO_SIGMA 1.2533141373155003 /* sqrt(pi/2) */
#define PS_ROBUST_FLOOR_ABS 1e-3
#define PS_ROBUST_FLOOR_REL 1e-2

/*
 * Location and scale of the n values x[0], x[stride], ..., x[(n-1)*stride].
 * Returns 0; or PS_EINVAL (stride 0, null pointers, or no finite value
 * among the n) and PS_ENOMEM, in which cases *loc = 0 and *scale = 1 so a
 * caller that ignores the code still normalizes harmlessly.
 */
int ps_robust_loc_scale(const float *x, size_t n, size_t stride, float *loc, float *scale);

/* The same without allocating: work holds at least n floats (scratch). */
int ps_robust_loc_scale_work(const float *x, size_t n, size_t stride, float *work, float *loc,
                             float *scale);

/* The floor of the scale for a given location (rule 2 above). */
double ps_robust_floor(double loc);

#endif
