/*
 * sim_cluster_file.h - a simulated cluster (core/sim_world.h's scenario)
 * as the shifting manager's workload file (docs/workloads.md), so that the
 * real manager (server/manage.h) can run the `preshift` policy of the
 * simulation (server/sim_preshift.h, docs/evaluation.md).
 *
 * Names are fixed by index: processor p is "p<p>", workload w "w<w>",
 * replica group g "g<g>"; the heartbeat id of processor p (its `id=`) is
 * p + 1. The classes are one, "sim", or one per entity replayed (the
 * entity's name when it is a valid name and no other entity has it, else
 * "e<index>"): each class learns its own threshold. Every number is
 * written with 17 significant digits, so the manager reads the scenario's
 * demands, state sizes and capacities exactly.
 */
#ifndef PRESHIFT_SIM_CLUSTER_FILE_H
#define PRESHIFT_SIM_CLUSTER_FILE_H

#include "core/sim_world.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ps_sim_cluster_opts {
    const char *agent;    /* agent= of every processor; NULL or "" for none (a dry run) */
    int class_per_entity; /* 1: a class per entity replayed; 0: one class "sim" */
} ps_sim_cluster_opts;

/* "p<p>" and "w<w>" into buf (at least 16 bytes). */
void ps_sim_processor_name(uint32_t p, char *buf, size_t len);
void ps_sim_workload_name(uint32_t w, char *buf, size_t len);
/* The index of a name made above, below n; PS_SIM_NONE if s is no such name. */
uint32_t ps_sim_parse_processor(const char *s, uint32_t n);
uint32_t ps_sim_parse_workload(const char *s, uint32_t n);

/* The heartbeat id of processor p: p + 1. */
static inline uint64_t ps_sim_processor_id(uint32_t p)
{
    return (uint64_t)p + 1;
}

/* How many classes the file declares, and the class (its declaration index) of processor p. */
uint32_t ps_sim_cluster_classes(const ps_sim_scenario *sc, const ps_sim_cluster_opts *o);
uint32_t ps_sim_cluster_class_of(const ps_sim_scenario *sc, const ps_sim_cluster_opts *o,
                                 uint32_t p);
/* The name of class cls into buf (at least 64 bytes). */
void ps_sim_cluster_class_name(const ps_sim_scenario *sc, const ps_sim_cluster_opts *o,
                               uint32_t cls, char *buf, size_t len);

/*
 * Write sc's cluster, with each workload on its initial host: classes,
 * processors (class, cpu and mem capacity, net = the scenario's bandwidth,
 * id, agent), workloads (on, cpu, mem, state, criticality, group), then
 * one `flow a -> b` line per dependency edge. 0, or PS_EINVAL (a name or
 * agent the file cannot hold) / PS_WL_EIO with the reason in err.
 */
int ps_sim_cluster_write(FILE *f, const ps_sim_scenario *sc, const ps_sim_cluster_opts *o,
                         char *err, size_t errlen);
/* The same into a new file at path. */
int ps_sim_cluster_write_file(const char *path, const ps_sim_scenario *sc,
                              const ps_sim_cluster_opts *o, char *err, size_t errlen);

#endif
