/*
 * bench_clock.h - timing for benchmarks: a monotonic clock and the median
 * of repeated runs (shared machines are noisy; a median is what we quote).
 */
#ifndef PRESHIFT_BENCH_CLOCK_H
#define PRESHIFT_BENCH_CLOCK_H

#include <stddef.h>

/* Seconds on a monotonic clock. */
double bench_now(void);
/* Median of n values (n > 0); reorders v. */
double bench_median(double *v, size_t n);

#endif
