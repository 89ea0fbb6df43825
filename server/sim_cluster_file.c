/*
 * sim_cluster_file.c - a simulated cluster as a workload file
 * (sim_cluster_file.h).
 */
#include "sim_cluster_file.h"

#include "core/error.h"
#include "core/threshold.h"
#include "kernels/kernels.h"
#include "workload_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ps_sim_processor_name(uint32_t p, char *buf, size_t len)
{
    snprintf(buf, len, "p%u", p);
}

void ps_sim_workload_name(uint32_t w, char *buf, size_t len)
{
    snprintf(buf, len, "w%u", w);
}

/* The number after prefix c in s, below n: digits only, no leading zero but "0". */
static uint32_t parse_index(const char *s, char c, uint32_t n)
{
    if (!s || s[0] != c || !s[1] || (s[1] == '0' && s[2])) return PS_SIM_NONE;
    uint64_t v = 0;
    for (const char *q = s + 1; *q; q++) {
        if (*q < '0' || *q > '9') return PS_SIM_NONE;
        v = v * 10 + (uint64_t)(*q - '0');
        if (v >= n) return PS_SIM_NONE;
    }
    return (uint32_t)v;
}

uint32_t ps_sim_parse_processor(const char *s, uint32_t n)
{
    return parse_index(s, 'p', n);
}

uint32_t ps_sim_parse_workload(const char *s, uint32_t n)
{
    return parse_index(s, 'w', n);
}

uint32_t ps_sim_cluster_classes(const ps_sim_scenario *sc, const ps_sim_cluster_opts *o)
{
    return o && o->class_per_entity ? sc->n_series : 1;
}

uint32_t ps_sim_cluster_class_of(const ps_sim_scenario *sc, const ps_sim_cluster_opts *o,
                                 uint32_t p)
{
    return o && o->class_per_entity ? sc->entity[p] : 0;
}

/* "e<digits>": the form of the fallback names, never kept from the data. */
static int fallback_form(const char *s)
{
    return parse_index(s, 'e', UINT32_MAX) != PS_SIM_NONE;
}

void ps_sim_cluster_class_name(const ps_sim_scenario *sc, const ps_sim_cluster_opts *o,
                               uint32_t cls, char *buf, size_t len)
{
    if (!o || !o->class_per_entity) {
        snprintf(buf, len, "sim");
        return;
    }
    const char *name = cls < sc->n_series ? sc->series[cls].name : NULL;
    char why[128];
    int ok = name && ps_name_check(name, why, sizeof why) == 0 && !fallback_form(name);
    for (uint32_t i = 0; ok && i < sc->n_series; i++)
        if (i != cls && sc->series[i].name && !strcmp(sc->series[i].name, name)) ok = 0;
    if (ok)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "e%u", cls);
}

int ps_sim_cluster_write(FILE *f, const ps_sim_scenario *sc, const ps_sim_cluster_opts *o,
                         char *err, size_t errlen)
{
    const char *agent = o && o->agent ? o->agent : "";
    if (strlen(agent) >= PS_AGENT_URL_MAX || strpbrk(agent, " \t\r\n#"))
        return ps_fail(err, errlen, PS_EINVAL,
                       "agent address '%s' cannot be written in a workload file", agent);
    uint32_t nc = ps_sim_cluster_classes(sc, o);
    if (nc + 8 > PS_THRESHOLD_MAX_CLASSES)
        return ps_fail(err, errlen, PS_EINVAL,
                       "%u classes (one per entity) are more than the manager takes (%d)", nc,
                       PS_THRESHOLD_MAX_CLASSES - 8);
    const ps_sim_config *c = &sc->cfg;
    fprintf(f,
            "# The simulated cluster of `preshift sim` (seed %llu): %u processors, %u "
            "workloads, %u dependencies.\n",
            (unsigned long long)c->seed, sc->P, sc->W, sc->n_edges);
    char name[64];
    for (uint32_t k = 0; k < nc; k++) {
        ps_sim_cluster_class_name(sc, o, k, name, sizeof name);
        fprintf(f, "class %s\n", name);
    }
    for (uint32_t p = 0; p < sc->P; p++) {
        ps_sim_cluster_class_name(sc, o, ps_sim_cluster_class_of(sc, o, p), name, sizeof name);
        fprintf(f, "processor p%u class=%s cpu=%.17g mem=%.17g net=%.17g id=%llu%s%s\n", p, name,
                c->cpu_capacity, c->mem_capacity, c->bandwidth,
                (unsigned long long)ps_sim_processor_id(p), agent[0] ? " agent=" : "", agent);
    }
    for (uint32_t w = 0; w < sc->W; w++) {
        const ps_sim_wspec *x = &sc->work[w];
        fprintf(f, "workload w%u on=p%u cpu=%.17g mem=%.17g state=%.17g criticality=%.17g", w,
                x->proc, x->cpu, x->mem, x->state_bytes, x->criticality);
        if (x->group) fprintf(f, " group=g%u", x->group);
        fputc('\n', f);
    }
    for (uint32_t w = 0; w < sc->W; w++)
        for (uint32_t i = sc->out_start[w]; i < sc->out_start[w + 1]; i++)
            fprintf(f, "flow w%u -> w%u\n", w, sc->out[i]);
    if (ferror(f)) return ps_fail(err, errlen, PS_WL_EIO, "writing the workload file failed");
    return 0;
}

int ps_sim_cluster_write_file(const char *path, const ps_sim_scenario *sc,
                              const ps_sim_cluster_opts *o, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) return ps_fail(err, errlen, PS_WL_EIO, "%s: %s", path, strerror(errno));
    int rc = ps_sim_cluster_write(f, sc, o, err, errlen);
    if (fclose(f) != 0 && rc == 0)
        rc = ps_fail(err, errlen, PS_WL_EIO, "%s: %s", path, strerror(errno));
    return rc;
}
