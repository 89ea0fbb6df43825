/*
 * sim_scenario.c - the scenario of sim_world.h: processors replaying the
 * series with offsets, the failure schedule from the labels, workloads,
 * replica groups, the dependency DAG and the initial placement, all drawn
 * from the seed (docs/evaluation.md, "Scenario").
 */
#include "sim_world.h"

#include "error.h"
#include "kernels/kernels.h"
#include "rng.h"
#include "sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GIB 1073741824.0

ps_sim_config ps_sim_config_default(void)
{
    ps_sim_config c;
    memset(&c, 0, sizeof c);
    c.seed = 1;
    c.processors = 2000;
    c.workloads = 10000;
    c.ticks = 0;
    c.tick_seconds = 300;
    c.max_offset = 720;
    c.noise_sd = 0.01f;
    c.fail_delay = 0;
    c.repair_ticks = 12;
    c.failure_timeout = 1;
    c.restart_ticks = 1;
    c.horizon = 36;
    c.cpu_capacity = 16;
    c.mem_capacity = 64 * GIB;
    c.bandwidth = 1.25e9;
    c.transfer_fail_prob = 0.01;
    c.cpu_min = 0.4;
    c.cpu_max = 2.8;
    c.mem_min = 1.6 * GIB;
    c.mem_max = 11.2 * GIB;
    c.state_min = 1 * GIB;
    c.state_max = 1024 * GIB;
    c.crit_min = 1;
    c.crit_max = 1;
    c.layers = 4;
    c.out_degree = 2;
    c.replica_groups = 500;
    c.replica_size = 2;
    return c;
}

size_t ps_sim_label_events(const uint8_t *labels, size_t n, ps_sim_event *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (!labels[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < n && labels[j + 1])
            j++;
        if (out) {
            out[k].start = (uint32_t)i;
            out[k].end = (uint32_t)j;
        }
        k++;
        i = j + 1;
    }
    return k;
}

/* ---------------------------------------------------------------- rows */

/* The noise on metric col of processor p at tick (stateless: a hash, no stream). */
static float noise(const ps_sim_scenario *sc, uint32_t p, int64_t tick, uint32_t col)
{
    uint64_t h = ps_sim_mix(sc->noise_key ^ ((uint64_t)p << 32 | (uint32_t)tick));
    h = ps_sim_mix(h + (uint64_t)(col + 1) * 0x9e3779b97f4a7c15ull);
    /* Irwin-Hall: the sum of four uniforms (k + 1/2) / 2^16 from the hash's
       16-bit quarters, centred and scaled to variance 1: exact in double. */
    uint64_t q = (h & 0xffff) + (h >> 16 & 0xffff) + (h >> 32 & 0xffff) + (h >> 48);
    double z = ((double)q + 2.0) * 0x1.0p-16 - 2.0;
    return (float)(z * 1.7320508075688772 * sc->cfg.noise_sd);
}

static float value_at(const ps_sim_scenario *sc, uint32_t p, int64_t tick, uint32_t col)
{
    /* One metric of every processor per tick walks each series' metric
       column: a cache line serves 16 ticks (rows would need one per tick). */
    uint32_t e = sc->entity[p];
    const ps_sim_series *s = &sc->series[e];
    int64_t idx = (int64_t)s->train_rows + tick - (int64_t)sc->offset[p];
    float v = sc->by_metric[e][(size_t)col * (s->train_rows + s->test_rows) + (size_t)idx];
    return sc->cfg.noise_sd > 0 ? v + noise(sc, p, tick, col) : v;
}

float ps_sim_value(const ps_sim_scenario *sc, uint32_t p, uint32_t t, uint32_t col)
{
    return value_at(sc, p, (int64_t)t, col);
}

static void row_at(const ps_sim_scenario *sc, uint32_t p, int64_t tick, float *row)
{
    const ps_sim_series *s = &sc->series[sc->entity[p]];
    int64_t idx = (int64_t)s->train_rows + tick - (int64_t)sc->offset[p];
    const float *src = idx < (int64_t)s->train_rows
                           ? s->train + (size_t)idx * s->cols
                           : s->test + (size_t)(idx - (int64_t)s->train_rows) * s->cols;
    memcpy(row, src, s->cols * sizeof *row);
    if (sc->cfg.noise_sd > 0)
        for (uint32_t k = 0; k < sc->cols; k++)
            row[k] += noise(sc, p, tick, k);
}

void ps_sim_row(const ps_sim_scenario *sc, uint32_t p, uint32_t t, float *row)
{
    row_at(sc, p, (int64_t)t, row);
}

uint32_t ps_sim_history_len(const ps_sim_scenario *sc, uint32_t p)
{
    return sc->series[sc->entity[p]].train_rows - sc->offset[p];
}

void ps_sim_history_row(const ps_sim_scenario *sc, uint32_t p, uint32_t i, float *row)
{
    row_at(sc, p, (int64_t)i - (int64_t)ps_sim_history_len(sc, p), row);
}

/* ------------------------------------------------------------ validation */

static int finite_range(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

static int check_config(const ps_sim_config *c, const ps_sim_series *series, uint32_t n, char *err,
                        size_t errlen)
{
    if (!series || n == 0) return ps_fail(err, errlen, PS_EINVAL, "no series to replay");
    for (uint32_t i = 0; i < n; i++) {
        const ps_sim_series *s = &series[i];
        const char *name = s->name ? s->name : "?";
        if (!s->cols || !s->test_rows || !s->test || !s->labels || (s->train_rows && !s->train))
            return ps_fail(err, errlen, PS_EINVAL, "series %u (%s): empty or missing arrays", i,
                           name);
        if (s->cols != series[0].cols)
            return ps_fail(err, errlen, PS_EINVAL, "series %u (%s) has %u metrics, series 0 has %u",
                           i, name, s->cols, series[0].cols);
        for (uint32_t r = 0; r < s->test_rows; r++)
            if (s->labels[r] > 1)
                return ps_fail(err, errlen, PS_EINVAL, "series %u (%s): label %u of row %u", i,
                               name, s->labels[r], r);
    }
    if (c->processors == 0 || c->processors > (1u << 30))
        return ps_fail(err, errlen, PS_EINVAL, "processors must be in [1, 2^30], not %u",
                       c->processors);
    if (c->workloads > (1u << 30))
        return ps_fail(err, errlen, PS_EINVAL, "workloads must be at most 2^30, not %u",
                       c->workloads);
    if (!finite_range(c->tick_seconds, 1e-9, 1e12))
        return ps_fail(err, errlen, PS_EINVAL, "tick_seconds must be positive and finite");
    if (!(c->noise_sd >= 0 && isfinite(c->noise_sd)))
        return ps_fail(err, errlen, PS_EINVAL, "noise_sd must be finite and >= 0");
    if (c->repair_ticks == 0 || c->repair_ticks > (1u << 30))
        return ps_fail(err, errlen, PS_EINVAL, "repair_ticks must be in [1, 2^30]");
    if (c->fail_delay > (1u << 30) || c->failure_timeout > (1u << 30) ||
        c->restart_ticks > (1u << 30))
        return ps_fail(err, errlen, PS_EINVAL,
                       "fail_delay, failure_timeout and restart_ticks must be at most 2^30");
    if (c->horizon == 0 || c->horizon > (1u << 30))
        return ps_fail(err, errlen, PS_EINVAL, "horizon must be in [1, 2^30]");
    if (!finite_range(c->cpu_capacity, 1e-300, 1e300) ||
        !finite_range(c->mem_capacity, 1e-300, 1e300))
        return ps_fail(err, errlen, PS_EINVAL, "capacities must be positive and finite");
    if (!finite_range(c->bandwidth, 1e-300, 1e300))
        return ps_fail(err, errlen, PS_EINVAL, "bandwidth must be positive and finite");
    if (!finite_range(c->transfer_fail_prob, 0, 1))
        return ps_fail(err, errlen, PS_EINVAL, "transfer_fail_prob must be in [0, 1]");
    if (!finite_range(c->cpu_min, 0, 1e300) || !finite_range(c->cpu_max, c->cpu_min, 1e300) ||
        !finite_range(c->mem_min, 0, 1e300) || !finite_range(c->mem_max, c->mem_min, 1e300))
        return ps_fail(err, errlen, PS_EINVAL, "demands need 0 <= min <= max, finite");
    if (!finite_range(c->state_min, 1e-300, 1e300) ||
        !finite_range(c->state_max, c->state_min, 1e300))
        return ps_fail(err, errlen, PS_EINVAL, "state sizes need 0 < min <= max, finite");
    if (!finite_range(c->crit_min, 0, 1e300) || !finite_range(c->crit_max, c->crit_min, 1e300))
        return ps_fail(err, errlen, PS_EINVAL, "criticality needs 0 <= min <= max, finite");
    if (c->layers == 0) return ps_fail(err, errlen, PS_EINVAL, "layers must be >= 1");
    if (!finite_range(c->out_degree, 0, 1e6))
        return ps_fail(err, errlen, PS_EINVAL, "out_degree must be in [0, 1e6]");
    if (c->replica_groups) {
        if (c->replica_size < 2)
            return ps_fail(err, errlen, PS_EINVAL, "replica_size must be >= 2");
        if ((uint64_t)c->replica_groups * c->replica_size > c->workloads)
            return ps_fail(err, errlen, PS_EINVAL,
                           "%u replica groups of %u need more than %u workloads", c->replica_groups,
                           c->replica_size, c->workloads);
        if (c->replica_size > c->processors)
            return ps_fail(err, errlen, PS_EINVAL,
                           "replica groups of %u cannot be anti-affine on %u processors",
                           c->replica_size, c->processors);
    }
    return 0;
}

/* ------------------------------------------------------------- failures */

static int cmp_failure(const void *a, const void *b)
{
    const ps_sim_failure *x = a, *y = b;
    if (x->tick != y->tick) return x->tick < y->tick ? -1 : 1;
    return (x->proc > y->proc) - (x->proc < y->proc);
}

/* (back tick, processor) in the high bits, the failure index in the low ones. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int build_failures(ps_sim_scenario *sc, char *err, size_t errlen)
{
    const ps_sim_config *c = &sc->cfg;
    /* Events of every series once. */
    size_t *ev_start = calloc((size_t)sc->n_series + 1, sizeof *ev_start);
    if (!ev_start) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    for (uint32_t e = 0; e < sc->n_series; e++)
        ev_start[e + 1] =
            ev_start[e] + ps_sim_label_events(sc->series[e].labels, sc->series[e].test_rows, NULL);
    ps_sim_event *ev = malloc((ev_start[sc->n_series] ? ev_start[sc->n_series] : 1) * sizeof *ev);
    if (!ev) {
        free(ev_start);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    for (uint32_t e = 0; e < sc->n_series; e++)
        ps_sim_label_events(sc->series[e].labels, sc->series[e].test_rows, ev + ev_start[e]);

    /* Upper bound: every event of every processor. */
    uint64_t bound = 0;
    for (uint32_t p = 0; p < sc->P; p++) {
        uint32_t e = sc->entity[p];
        bound += ev_start[e + 1] - ev_start[e];
    }
    int rc = 0;
    if (bound > UINT32_MAX / 2) {
        rc = ps_fail(err, errlen, PS_EINVAL, "too many events (%llu)", (unsigned long long)bound);
        goto out;
    }
    sc->failures = malloc((bound ? bound : 1) * sizeof *sc->failures);
    sc->fail_at = calloc((size_t)sc->T + 1, sizeof *sc->fail_at);
    sc->back_at = calloc((size_t)sc->T + 1, sizeof *sc->back_at);
    sc->proc_fail_start = calloc((size_t)sc->P + 1, sizeof *sc->proc_fail_start);
    if (!sc->failures || !sc->fail_at || !sc->back_at || !sc->proc_fail_start) {
        rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
        goto out;
    }
    uint32_t n = 0;
    sc->events_total = (uint32_t)bound;
    for (uint32_t p = 0; p < sc->P; p++) {
        uint32_t e = sc->entity[p], o = sc->offset[p];
        uint64_t last_back = 0;
        for (size_t i = ev_start[e]; i < ev_start[e + 1]; i++) {
            uint64_t onset = (uint64_t)ev[i].start + o;
            uint64_t f = c->fail_delay ? onset + c->fail_delay : (uint64_t)ev[i].end + o + 1;
            if (f >= sc->T) {
                sc->events_after_end++;
                continue;
            }
            if (f <= last_back) { /* alive for at least one tick between failures */
                sc->events_merged++;
                continue;
            }
            ps_sim_failure *x = &sc->failures[n++];
            x->proc = p;
            x->onset = (uint32_t)onset;
            x->tick = (uint32_t)f;
            x->back = (uint32_t)(f + c->repair_ticks);
            x->event = (uint32_t)(i - ev_start[e]);
            last_back = x->back;
        }
    }
    sc->n_failures = n;
    sc->events_failed = n;
    qsort(sc->failures, n, sizeof *sc->failures, cmp_failure);
    sc->back_order = malloc((n ? n : 1) * sizeof *sc->back_order);
    sc->proc_fail = malloc((n ? n : 1) * sizeof *sc->proc_fail);
    if (!sc->back_order || !sc->proc_fail) {
        rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
        goto out;
    }
    /* By failure tick. */
    for (uint32_t i = 0; i < n; i++)
        sc->fail_at[sc->failures[i].tick + 1]++;
    for (uint32_t t = 0; t < sc->T; t++)
        sc->fail_at[t + 1] += sc->fail_at[t];
    /* By repair tick (those within the run), ties by processor: sort the keys
       back << 32 | proc (unique: a processor comes back at most once a tick),
       then find each failure again among those of its tick (sorted by proc). */
    uint32_t nb = 0;
    {
        uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
        if (!keys) {
            rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
            goto out;
        }
        for (uint32_t i = 0; i < n; i++)
            if (sc->failures[i].back < sc->T)
                keys[nb++] = (uint64_t)sc->failures[i].back << 32 | sc->failures[i].proc;
        qsort(keys, nb, sizeof *keys, cmp_u64);
        /* The failure of p that comes back at b failed at b - repair_ticks. */
        for (uint32_t i = 0; i < nb; i++) {
            uint32_t b = (uint32_t)(keys[i] >> 32), p = (uint32_t)(keys[i] & 0xffffffffu);
            uint32_t f = b - c->repair_ticks;
            uint32_t lo = sc->fail_at[f], hi = sc->fail_at[f + 1];
            while (lo < hi) { /* failures at f are sorted by proc */
                uint32_t mid = lo + (hi - lo) / 2;
                if (sc->failures[mid].proc < p)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            sc->back_order[i] = lo;
        }
        free(keys);
    }
    for (uint32_t i = 0; i < nb; i++)
        sc->back_at[sc->failures[sc->back_order[i]].back + 1]++;
    for (uint32_t t = 0; t < sc->T; t++)
        sc->back_at[t + 1] += sc->back_at[t];
    /* By processor, in tick order (a stable pass over the tick-sorted list). */
    for (uint32_t i = 0; i < n; i++)
        sc->proc_fail_start[sc->failures[i].proc + 1]++;
    for (uint32_t p = 0; p < sc->P; p++)
        sc->proc_fail_start[p + 1] += sc->proc_fail_start[p];
    {
        uint32_t *fill = malloc(((size_t)sc->P + 1) * sizeof *fill);
        if (!fill) {
            rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(fill, sc->proc_fail_start, ((size_t)sc->P + 1) * sizeof *fill);
        for (uint32_t i = 0; i < n; i++)
            sc->proc_fail[fill[sc->failures[i].proc]++] = i;
        free(fill);
    }
out:
    free(ev);
    free(ev_start);
    return rc;
}

/* ------------------------------------------------------------ workloads */

static double uniform(ps_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * ps_rng_uniform(r);
}

static uint32_t transfer_ticks(double state, double bandwidth, double tick_seconds)
{
    double x = ceil(state / (bandwidth * tick_seconds));
    if (!(x >= 1)) return 1;
    if (x > (double)(1u << 30)) return 1u << 30;
    return (uint32_t)x;
}

static int cmp_edge(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int build_graph(ps_sim_scenario *sc, char *err, size_t errlen)
{
    const ps_sim_config *c = &sc->cfg;
    uint32_t W = sc->W, L = c->layers;
    sc->out_start = calloc((size_t)W + 1, sizeof *sc->out_start);
    sc->in_start = calloc((size_t)W + 1, sizeof *sc->in_start);
    if (!sc->out_start || !sc->in_start) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    /* Layer l holds workloads [l W / L, (l + 1) W / L). */
    for (uint32_t w = 0; w < W; w++)
        sc->work[w].layer = (uint32_t)((uint64_t)w * L / W);
    uint32_t last_start = (uint32_t)((uint64_t)(L - 1) * W / L); /* first of the last layer */
    long long want = llround(c->out_degree * W);
    uint64_t m = (L > 1 && last_start > 0 && want > 0) ? (uint64_t)want : 0;
    if (m > (uint64_t)UINT32_MAX / 4) return ps_fail(err, errlen, PS_EINVAL, "too many edges");
    uint64_t *edges = malloc((m ? m : 1) * sizeof *edges);
    if (!edges) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    ps_rng r;
    ps_rng_seed(&r, c->seed ^ PS_SIM_SALT_GRAPH);
    for (uint64_t i = 0; i < m; i++) {
        uint32_t a = (uint32_t)ps_rng_below(&r, last_start);
        uint32_t l = sc->work[a].layer + 1;
        uint32_t lo = (uint32_t)((uint64_t)l * W / L), hi = (uint32_t)((uint64_t)(l + 1) * W / L);
        uint32_t b = lo + (uint32_t)ps_rng_below(&r, hi - lo);
        edges[i] = (uint64_t)a << 32 | b;
    }
    qsort(edges, m, sizeof *edges, cmp_edge);
    uint64_t k = 0;
    for (uint64_t i = 0; i < m; i++)
        if (i == 0 || edges[i] != edges[i - 1]) edges[k++] = edges[i];
    sc->n_edges = (uint32_t)k;
    sc->out = malloc((k ? k : 1) * sizeof *sc->out);
    sc->in = malloc((k ? k : 1) * sizeof *sc->in);
    if (!sc->out || !sc->in) {
        free(edges);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    for (uint64_t i = 0; i < k; i++) {
        sc->out_start[(edges[i] >> 32) + 1]++;
        sc->in_start[(edges[i] & 0xffffffffu) + 1]++;
    }
    for (uint32_t w = 0; w < W; w++) {
        sc->out_start[w + 1] += sc->out_start[w];
        sc->in_start[w + 1] += sc->in_start[w];
    }
    /* edges are sorted by (a, b): out lists come out ascending; in lists too, by a. */
    uint32_t *fill = malloc(((size_t)W + 1) * sizeof *fill);
    if (!fill) {
        free(edges);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    for (uint64_t i = 0; i < k; i++)
        sc->out[i] = (uint32_t)(edges[i] & 0xffffffffu);
    memcpy(fill, sc->in_start, ((size_t)W + 1) * sizeof *fill);
    for (uint64_t i = 0; i < k; i++)
        sc->in[fill[edges[i] & 0xffffffffu]++] = (uint32_t)(edges[i] >> 32);
    free(fill);
    free(edges);
    return 0;
}

static int build_groups(ps_sim_scenario *sc, char *err, size_t errlen)
{
    const ps_sim_config *c = &sc->cfg;
    uint32_t G = c->replica_groups, S = G ? c->replica_size : 0;
    sc->group_start = calloc((size_t)G + 2, sizeof *sc->group_start);
    sc->group_member = malloc(((size_t)G * S + 1) * sizeof *sc->group_member);
    if (!sc->group_start || !sc->group_member)
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    if (!G) return 0;
    uint32_t *perm = malloc((size_t)sc->W * sizeof *perm);
    if (!perm) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    for (uint32_t w = 0; w < sc->W; w++)
        perm[w] = w;
    ps_rng r;
    ps_rng_seed(&r, c->seed ^ PS_SIM_SALT_GROUP);
    /* A partial Fisher-Yates: the first G S entries are a uniform sample. */
    for (uint32_t i = 0; i < G * S; i++) {
        uint32_t j = i + (uint32_t)ps_rng_below(&r, sc->W - i);
        uint32_t x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    for (uint32_t g = 1; g <= G; g++) {
        sc->group_start[g] = (g - 1) * S;
        for (uint32_t i = 0; i < S; i++) {
            uint32_t w = perm[(g - 1) * S + i];
            sc->work[w].group = g;
        }
    }
    sc->group_start[G + 1] = G * S;
    /* Members in ascending id within a group. */
    for (uint32_t g = 1; g <= G; g++) {
        uint32_t *m = sc->group_member + sc->group_start[g];
        memcpy(m, perm + (size_t)(g - 1) * S, S * sizeof *m);
        for (uint32_t i = 1; i < S; i++)
            for (uint32_t j = i; j > 0 && m[j - 1] > m[j]; j--) {
                uint32_t x = m[j];
                m[j] = m[j - 1];
                m[j - 1] = x;
            }
    }
    free(perm);
    return 0;
}

static int fits(const ps_sim_config *c, const double *cpu, const double *mem, uint32_t p,
                const ps_sim_wspec *x)
{
    return cpu[p] + x->cpu <= c->cpu_capacity * (1 + 1e-9) &&
           mem[p] + x->mem <= c->mem_capacity * (1 + 1e-9);
}

static int twin_on(const ps_sim_scenario *sc, uint32_t w, uint32_t p, uint32_t placed_below)
{
    uint32_t g = sc->work[w].group;
    if (!g) return 0;
    for (uint32_t i = sc->group_start[g]; i < sc->group_start[g + 1]; i++) {
        uint32_t o = sc->group_member[i];
        if (o != w && o < placed_below && sc->work[o].proc == p) return 1;
    }
    return 0;
}

static int place_all(ps_sim_scenario *sc, char *err, size_t errlen)
{
    const ps_sim_config *c = &sc->cfg;
    double *cpu = calloc(sc->P, sizeof *cpu), *mem = calloc(sc->P, sizeof *mem);
    if (!cpu || !mem) {
        free(cpu);
        free(mem);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    ps_rng r;
    ps_rng_seed(&r, c->seed ^ PS_SIM_SALT_PLACE);
    int rc = 0;
    for (uint32_t w = 0; w < sc->W && !rc; w++) {
        ps_sim_wspec *x = &sc->work[w];
        uint32_t start = (uint32_t)ps_rng_below(&r, sc->P);
        x->proc = PS_SIM_NONE;
        for (uint32_t j = 0; j < sc->P; j++) {
            uint32_t p = start + j < sc->P ? start + j : start + j - sc->P;
            if (!fits(c, cpu, mem, p, x) || twin_on(sc, w, p, w)) continue;
            x->proc = p;
            cpu[p] += x->cpu;
            mem[p] += x->mem;
            break;
        }
        if (x->proc == PS_SIM_NONE)
            rc = ps_fail(err, errlen, PS_EINVAL,
                         "workload %u (cpu %g, mem %g) fits on no processor: %u workloads do not "
                         "fit on %u processors of cpu %g, mem %g",
                         w, x->cpu, x->mem, sc->W, sc->P, c->cpu_capacity, c->mem_capacity);
    }
    free(cpu);
    free(mem);
    return rc;
}

static int build_workloads(ps_sim_scenario *sc, char *err, size_t errlen)
{
    const ps_sim_config *c = &sc->cfg;
    sc->work = calloc(sc->W ? sc->W : 1, sizeof *sc->work);
    if (!sc->work) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    ps_rng r;
    ps_rng_seed(&r, c->seed ^ PS_SIM_SALT_WORKLOAD);
    double ls = log(c->state_min), lh = log(c->state_max);
    for (uint32_t w = 0; w < sc->W; w++) {
        ps_sim_wspec *x = &sc->work[w];
        x->cpu = uniform(&r, c->cpu_min, c->cpu_max);
        x->mem = uniform(&r, c->mem_min, c->mem_max);
        double u = ps_rng_uniform(&r);
        x->state_bytes = c->state_min == c->state_max ? c->state_min : exp(ls + (lh - ls) * u);
        x->criticality = uniform(&r, c->crit_min, c->crit_max);
        x->transfer_ticks = transfer_ticks(x->state_bytes, c->bandwidth, c->tick_seconds);
        if (x->transfer_ticks > sc->max_transfer_ticks) sc->max_transfer_ticks = x->transfer_ticks;
        if (x->cpu > c->cpu_capacity || x->mem > c->mem_capacity)
            return ps_fail(err, errlen, PS_EINVAL,
                           "workload demands up to cpu %g, mem %g exceed a processor's "
                           "capacity (cpu %g, mem %g)",
                           c->cpu_max, c->mem_max, c->cpu_capacity, c->mem_capacity);
    }
    return 0;
}

/* --------------------------------------------------------------- build */

int ps_sim_scenario_build(ps_sim_scenario *sc, const ps_sim_config *cfg,
                          const ps_sim_series *series, uint32_t n_series, char *err, size_t errlen)
{
    if (!sc || !cfg) return ps_fail(err, errlen, PS_EINVAL, "null argument");
    memset(sc, 0, sizeof *sc);
    int rc = check_config(cfg, series, n_series, err, errlen);
    if (rc) return rc;
    sc->cfg = *cfg;
    sc->series = series;
    sc->n_series = n_series;
    sc->cols = series[0].cols;
    sc->noise_key = ps_sim_mix(cfg->seed ^ PS_SIM_SALT_NOISE);
    sc->P = cfg->processors;
    sc->W = cfg->workloads;
    uint32_t min_test = UINT32_MAX, min_train = UINT32_MAX;
    for (uint32_t e = 0; e < n_series && e < sc->P; e++) {
        if (series[e].test_rows < min_test) min_test = series[e].test_rows;
        if (series[e].train_rows < min_train) min_train = series[e].train_rows;
    }
    sc->T = cfg->ticks ? cfg->ticks : min_test;
    sc->cfg.ticks = sc->T;
    if (sc->T > min_test)
        return ps_fail(err, errlen, PS_EINVAL,
                       "%u ticks is more than the shortest test series replayed (%u rows)", sc->T,
                       min_test);
    if (cfg->max_offset > min_train)
        return ps_fail(err, errlen, PS_EINVAL,
                       "max_offset %u is more than the shortest train series replayed (%u rows)",
                       cfg->max_offset, min_train);
    sc->entity = malloc((size_t)sc->P * sizeof *sc->entity);
    sc->offset = malloc((size_t)sc->P * sizeof *sc->offset);
    if (!sc->entity || !sc->offset) {
        ps_sim_scenario_free(sc);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    ps_rng r;
    ps_rng_seed(&r, cfg->seed ^ PS_SIM_SALT_OFFSET);
    for (uint32_t p = 0; p < sc->P; p++) {
        sc->entity[p] = p % n_series;
        sc->offset[p] = (uint32_t)ps_rng_below(&r, (uint64_t)cfg->max_offset + 1);
    }
    sc->by_metric = calloc(n_series, sizeof *sc->by_metric);
    if (!sc->by_metric) {
        ps_sim_scenario_free(sc);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    for (uint32_t e = 0; e < n_series && e < sc->P; e++) {
        const ps_sim_series *s = &series[e];
        size_t n = (size_t)s->train_rows + s->test_rows;
        float *m = malloc(n * s->cols * sizeof *m);
        if (!m) {
            ps_sim_scenario_free(sc);
            return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            const float *row = i < s->train_rows ? s->train + i * s->cols
                                                 : s->test + (i - s->train_rows) * s->cols;
            for (uint32_t k = 0; k < s->cols; k++)
                m[(size_t)k * n + i] = row[k];
        }
        sc->by_metric[e] = m;
    }
    if ((rc = build_failures(sc, err, errlen)) || (rc = build_workloads(sc, err, errlen)) ||
        (rc = build_groups(sc, err, errlen)) || (rc = build_graph(sc, err, errlen)) ||
        (rc = place_all(sc, err, errlen))) {
        ps_sim_scenario_free(sc);
        return rc;
    }
    return 0;
}

void ps_sim_scenario_free(ps_sim_scenario *sc)
{
    if (!sc) return;
    if (sc->by_metric)
        for (uint32_t e = 0; e < sc->n_series; e++)
            free(sc->by_metric[e]);
    free(sc->by_metric);
    free(sc->entity);
    free(sc->offset);
    free(sc->failures);
    free(sc->fail_at);
    free(sc->back_at);
    free(sc->back_order);
    free(sc->proc_fail_start);
    free(sc->proc_fail);
    free(sc->work);
    free(sc->out_start);
    free(sc->out);
    free(sc->in_start);
    free(sc->in);
    free(sc->group_start);
    free(sc->group_member);
    memset(sc, 0, sizeof *sc);
}

int ps_sim_scenario_place(ps_sim_scenario *sc, uint32_t w, uint32_t p, char *err, size_t errlen)
{
    if (!sc || w >= sc->W || p >= sc->P)
        return ps_fail(err, errlen, PS_EINVAL, "no workload %u or processor %u", w, p);
    double cpu = 0, mem = 0;
    for (uint32_t o = 0; o < sc->W; o++)
        if (o != w && sc->work[o].proc == p) {
            cpu += sc->work[o].cpu;
            mem += sc->work[o].mem;
        }
    if (cpu + sc->work[w].cpu > sc->cfg.cpu_capacity * (1 + 1e-9) ||
        mem + sc->work[w].mem > sc->cfg.mem_capacity * (1 + 1e-9))
        return ps_fail(err, errlen, PS_EINVAL, "processor %u has no room for workload %u", p, w);
    if (twin_on(sc, w, p, sc->W))
        return ps_fail(err, errlen, PS_EINVAL, "processor %u holds a replica of workload %u", p, w);
    sc->work[w].proc = p;
    return 0;
}
