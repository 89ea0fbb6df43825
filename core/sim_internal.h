/*
 * sim_internal.h - what the sim_*.c files share and nobody else needs: the
 * stateless hash behind the noise and the transfer failures, and the
 * world's internal operations the policies (sim_policy.c) build on.
 */
#ifndef PRESHIFT_SIM_INTERNAL_H
#define PRESHIFT_SIM_INTERNAL_H

#include "sim_world.h"

#include <stdint.h>

/* Salts that keep the seed's streams apart (docs/evaluation.md lists their use). */
#define PS_SIM_SALT_OFFSET 0x6f66667365747321ull
#define PS_SIM_SALT_WORKLOAD 0x776f726b6c6f6164ull
#define PS_SIM_SALT_GROUP 0x67726f7570732121ull
#define PS_SIM_SALT_GRAPH 0x6465706772617068ull
#define PS_SIM_SALT_PLACE 0x706c6163656d6e74ull
#define PS_SIM_SALT_NOISE 0x6e6f697365212121ull
#define PS_SIM_SALT_TRANSFER 0x7472616e73666572ull

/* splitmix64's finalizer: a bijective 64-bit mix. */
static inline uint64_t ps_sim_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) from a hash. */
static inline double ps_sim_unit(uint64_t h)
{
    return (double)(h >> 11) * 0x1.0p-53;
}

/* 1 if the transfer of (workload, start tick, destination) fails, with probability q. */
static inline int ps_sim_transfer_fails(uint64_t seed, double q, uint32_t wl, uint32_t start,
                                        uint32_t dst)
{
    if (q <= 0) return 0;
    uint64_t h = ps_sim_mix(seed ^ PS_SIM_SALT_TRANSFER);
    h = ps_sim_mix(h ^ wl);
    h = ps_sim_mix(h ^ ((uint64_t)start << 32 | dst));
    return ps_sim_unit(h) < q;
}

/* The world's internals used by the policies. */
int ps_sim_policy_init(ps_sim_world *w, char *err, size_t errlen);
void ps_sim_policy_free(ps_sim_world *w);
int ps_sim_policy_decide(ps_sim_world *w, char *err, size_t errlen);

#endif
