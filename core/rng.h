/*
 * rng.h - a small seeded generator (xoshiro256**, seeded by splitmix64), so
 * that training and simulation are the same for the same seed everywhere.
 */
#ifndef PRESHIFT_RNG_H
#define PRESHIFT_RNG_H

#include <stdint.h>

typedef struct ps_rng {
    uint64_t s[4];
} ps_rng;

void ps_rng_seed(ps_rng *r, uint64_t seed);
uint64_t ps_rng_next(ps_rng *r);
/* Uniform in [0, 1). */
double ps_rng_uniform(ps_rng *r);
/* Uniform in [lo, hi). */
float ps_rng_uniformf(ps_rng *r, float lo, float hi);
/* Standard normal (Box-Muller). */
double ps_rng_normal(ps_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t ps_rng_below(ps_rng *r, uint64_t n);

#endif
