/*
 * robust.c - median, MAD and the scale floor (see robust.h for the rules).
 *
 * Medians come from quickselect on a scratch copy: O(n) on average, no sort,
 * and deterministic (the pivot is the middle element, never random), so the
 * same history always gives the same baseline. Sums are in double so a long
 * history of floats loses nothing that matters.
 */
#include "robust.h"
#include "kernels/kernels.h"

#include <math.h>
#include <stdlib.h>

/* The k-th smallest of v[0..n-1] (0-based); reorders v. n > k. */
static float select_kth(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        /* Hoare partition: afterwards v[lo..j] <= pivot <= v[i..hi]. */
        for (;;) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i >= j) break;
            float t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
            j--;
        }
        if (k <= j)
            hi = j;
        else
            lo = j + 1;
    }
    return v[k];
}

/* Median of v[0..n-1], n > 0; reorders v. Mean of the two middle values when n is even. */
static double median(float *v, size_t n)
{
    float hi = select_kth(v, n, n / 2);
    if (n % 2) return hi;
    /* After selecting n/2, everything left of it is <= it: the lower middle is their max. */
    float lo = v[0];
    for (size_t i = 1; i < n / 2; i++)
        if (v[i] > lo) lo = v[i];
    return 0.5 * ((double)lo + (double)hi);
}

double ps_robust_floor(double loc)
{
    return PS_ROBUST_FLOOR_ABS + PS_ROBUST_FLOOR_REL * fabs(loc);
}

int ps_robust_loc_scale_work(const float *x, size_t n, size_t stride, float *work, float *loc,
                             float *scale)
{
    if (loc) *loc = 0.0f;
    if (scale) *scale = 1.0f;
    if (!x || !work || !loc || !scale || stride == 0) return PS_EINVAL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i * stride];
        if (isfinite(v)) work[m++] = v;
    }
    if (m == 0) return PS_EINVAL;

    double med = median(work, m);
    double sum_abs = 0.0;
    for (size_t i = 0; i < m; i++) {
        double d = fabs((double)work[i] - med);
        sum_abs += d;
        work[i] = (float)d;
    }
    double s = PS_ROBUST_MAD_TO_SIGMA * median(work, m);
    double floor = ps_robust_floor(med);
    if (s < floor) {
        double mean_ad = PS_ROBUST_MEANAD_TO_SIGMA * sum_abs / (double)m;
        s = mean_ad > floor ? mean_ad : floor;
    }
    /* Finite floats in, so med and s are finite; the float cast cannot overflow
     * to inf except for values near FLT_MAX, which the check keeps out. */
    if (!(fabs(med) <= 3.0e38) || !(s <= 3.0e38)) return PS_EINVAL;
    *loc = (float)med;
    *scale = (float)s;
    return PS_OK;
}

int ps_robust_loc_scale(const float *x, size_t n, size_t stride, float *loc, float *scale)
{
    if (loc) *loc = 0.0f;
    if (scale) *scale = 1.0f;
    float *work = malloc((n ? n : 1) * sizeof *work);
    if (!work) return PS_ENOMEM;
    int rc = ps_robust_loc_scale_work(x, n, stride, work, loc, scale);
    free(work);
    return rc;
}
