/*
 * test_policy_random.c - the whole policy on a random cluster of the
 * simulator's size: 2,000 processors in 3 classes, 10,000 workloads (2,000
 * of them in replica pairs), a random DAG of about 20,000 dependencies, 2 %
 * of the processors degrading towards failure. Over several ticks, with
 * the manager's part played here (transfers started for every MOVE, some
 * committed, some rolled back), no constraint may ever be violated: no
 * target above the utilization cap or the healthy PFP bound, no two
 * replicas together, every workload of a triggered processor with exactly
 * one record and a reason. The same seed must give the same decisions.
 * The time per pass is printed, not asserted.
 */
#include "core/cluster.h"
#include "core/policy.h"
#include "core/rng.h"
#include "core/threshold.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NP = 2000, NW = 10000, NCLASS = 3, TICKS = 12, DEGRADING = 40 };

static char err[256];

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void build(ps_cluster *c, ps_rng *r)
{
    CHECK(ps_cluster_init(c, NP, NW, NW / 2, NCLASS, err, sizeof err) == PS_OK);
    static double cpu_used[NP], mem_used[NP];
    memset(cpu_used, 0, sizeof cpu_used);
    memset(mem_used, 0, sizeof mem_used);
    for (uint32_t p = 0; p < NP; p++) {
        ps_processor_spec s = {.cls = (uint16_t)(p % NCLASS),
                               .cpu_capacity = 32,
                               .mem_capacity = 128e9,
                               .net_bandwidth = 1.25e9};
        CHECK(ps_cluster_add_processor(c, p, &s, err, sizeof err) == PS_OK);
    }
    for (uint32_t w = 0; w < NW; w++) {
        ps_workload_spec s = {.cpu = ps_rng_uniform(r) * 1.8 + 0.2,
                              .mem = (ps_rng_uniform(r) * 3.5 + 0.5) * 1e9,
                              .state_bytes = ps_rng_uniform(r) * 2e9,
                              .criticality = ps_rng_uniform(r) * 4.9 + 0.1,
                              .group = w < 2000 ? w / 2 + 1 : 0};
        int rc;
        do {
            s.proc = (uint32_t)ps_rng_below(r, NP);
            rc = ps_cluster_add_workload(c, w, &s, err, sizeof err);
        } while (rc == PS_CLUSTER_ECONFLICT);
        CHECK(rc == PS_OK);
        cpu_used[s.proc] += s.cpu;
        mem_used[s.proc] += s.mem;
    }
    for (uint32_t w = 0; w + 1 < NW; w++) {
        for (int k = 0; k < 2; k++) {
            uint32_t span = NW - 1 - w < 200 ? NW - 1 - w : 200;
            uint32_t b = w + 1 + (uint32_t)ps_rng_below(r, span);
            int rc = ps_cluster_add_edge(c, w, b, err, sizeof err);
            CHECK(rc == PS_OK || rc == PS_CLUSTER_EEXISTS);
        }
    }
    for (uint32_t p = 0; p < NP; p++) {
        double bg = 0.05 + 0.25 * ps_rng_uniform(r);
        double cu = fmin(1.0, bg + cpu_used[p] / 32), mu = fmin(1.0, bg + mem_used[p] / 128e9);
        CHECK(ps_cluster_set_load(c, p, cu, mu, 0.2 * ps_rng_uniform(r), err, sizeof err) == PS_OK);
    }
}

/* PFPs of one tick: noise everywhere, a ramp towards 1 on the degrading processors. */
static void set_pfps(ps_cluster *c, ps_rng *r, int tick)
{
    for (uint32_t p = 0; p < NP; p++) {
        double q = 0.03 * ps_rng_uniform(r);
        if (p % (NP / DEGRADING) == 7)
            q = fmin(0.9999, 0.85 + 0.015 * tick + 0.02 * ps_rng_uniform(r));
        CHECK(ps_cluster_set_pfp(c, p, q, err, sizeof err) == PS_OK);
    }
}

typedef struct run_result {
    uint64_t moves, records, no_target, triggered;
    uint64_t digest; /* of (workload, reason, target) in order */
    double seconds, worst;
} run_result;

static void check_pass(const ps_cluster *c, const ps_policy_config *cfg, const ps_trigger *t,
                       const ps_decision *d, uint32_t n, const ps_policy_pass *pass)
{
    static uint8_t seen[NW];
    static double cpu_add[NP], mem_add[NP];
    memset(seen, 0, sizeof seen);
    memset(cpu_add, 0, sizeof cpu_add);
    memset(mem_add, 0, sizeof mem_add);
    CHECK(!pass->truncated && pass->served == pass->triggered);
    uint32_t expect = 0;
    for (uint32_t i = 0; i < t->n_triggered; i++)
        expect += c->proc[t->list[i].processor].n_workloads;
    CHECKF(n == expect, "%u records for %u workloads on triggered processors", n, expect);
    char line[600];
    for (uint32_t i = 0; i < n; i++) {
        const ps_decision *x = &d[i];
        CHECK(x->workload < NW && !seen[x->workload]);
        seen[x->workload] = 1;
        CHECK(c->work[x->workload].proc == x->processor);
        CHECK(x->reason <= PS_DECIDE_NO_TARGET);
        CHECK(ps_decision_format(x, line, sizeof line) > 0 && line[0]);
        if (x->reason != PS_DECIDE_MOVE) {
            CHECK(x->target == PS_NONE);
            continue;
        }
        const ps_processor *tp = &c->proc[x->target];
        CHECK(x->target != x->processor && tp->present && tp->alive);
        CHECK(tp->pfp <= cfg->placement.max_target_pfp);
        CHECK(x->score.risk_reduction >= x->score.disruption);
        cpu_add[x->target] += c->work[x->workload].cpu;
        mem_add[x->target] += c->work[x->workload].mem;
    }
    for (uint32_t p = 0; p < NP; p++) {
        if (cpu_add[p] == 0 && mem_add[p] == 0) continue;
        const ps_processor *tp = &c->proc[p];
        double cu = tp->cpu_util + (tp->cpu_reserved + cpu_add[p]) / tp->cpu_capacity;
        double mu = tp->mem_util + (tp->mem_reserved + mem_add[p]) / tp->mem_capacity;
        CHECKF(cu <= cfg->placement.max_utilization + 1e-9 &&
                   mu <= cfg->placement.max_utilization + 1e-9,
               "processor %u would be at cpu %g mem %g", p, cu, mu);
    }
}

static run_result run(uint64_t seed, int verbose)
{
    run_result out;
    memset(&out, 0, sizeof out);
    ps_rng r;
    ps_rng_seed(&r, seed);
    ps_cluster c;
    build(&c, &r);
    CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "%s", err);
    ps_policy_config cfg = ps_policy_default_config();
    ps_policy pol;
    ps_trigger t;
    ps_thresholds th;
    ps_threshold_config tcfg = ps_threshold_default_config();
    CHECK(ps_policy_init(&pol, &cfg, &c, err, sizeof err) == PS_OK);
    CHECK(ps_trigger_init(&t, &cfg.trigger, &c, err, sizeof err) == PS_OK);
    CHECK(ps_thresholds_init(&th, &tcfg, NCLASS, err, sizeof err) == PS_OK);
    ps_decision *d = malloc(NW * sizeof *d);
    uint32_t *inflight = malloc(NW * sizeof *inflight);
    uint32_t n_inflight = 0;
    double thr[NCLASS];
    for (int tick = 1; tick <= TICKS; tick++) {
        set_pfps(&c, &r, tick);
        ps_thresholds_environment(&th, ps_cluster_mean_utilization(&c), 1.0, tick, NULL, 0);
        ps_thresholds_fill(&th, thr);
        ps_policy_pass pass;
        double t0 = now_seconds();
        uint32_t n = ps_policy_tick(&pol, &c, &t, thr, tick, d, NW, &pass);
        double dt = now_seconds() - t0;
        out.seconds += dt;
        if (dt > out.worst) out.worst = dt;
        check_pass(&c, &cfg, &t, d, n, &pass);
        if (verbose)
            printf("tick %2d: %u triggered, %u records, %u moves, %u without target, %.1f us\n",
                   tick, pass.triggered, pass.records, pass.moves, pass.no_target, dt * 1e6);
        out.moves += pass.moves;
        out.records += n;
        out.no_target += pass.no_target;
        out.triggered += pass.triggered;
        /* The manager: commit two thirds of what was in flight, roll back the rest. */
        for (uint32_t i = 0; i < n_inflight; i++)
            CHECK(ps_cluster_finish_transfer(&c, inflight[i], i % 3 != 2, err, sizeof err) ==
                  PS_OK);
        n_inflight = 0;
        for (uint32_t i = 0; i < n; i++) {
            out.digest = out.digest * 1099511628211ull ^
                         ((uint64_t)d[i].workload << 32 | (uint64_t)d[i].reason << 24 |
                          (d[i].target & 0xffffff));
            if (d[i].reason != PS_DECIDE_MOVE) continue;
            int rc = ps_cluster_begin_transfer(&c, d[i].workload, d[i].target, err, sizeof err);
            CHECKF(rc == PS_OK, "%s", err);
            if (rc == PS_OK) inflight[n_inflight++] = d[i].workload;
        }
        CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "tick %d: %s", tick, err);
    }
    free(d);
    free(inflight);
    ps_trigger_free(&t);
    ps_policy_free(&pol);
    ps_cluster_free(&c);
    return out;
}

int main(void)
{
    run_result a = run(42, 1);
    CHECK(a.moves > 0 && a.triggered > 0);
    /* Not everything on a triggered processor moves. */
    CHECK(a.moves < a.records);
    printf("%d ticks: %llu triggered processor-ticks, %llu moves, %llu without target; "
           "mean %.1f us per pass (worst %.1f us), %.1f us per triggered processor\n",
           TICKS, (unsigned long long)a.triggered, (unsigned long long)a.moves,
           (unsigned long long)a.no_target, a.seconds / TICKS * 1e6, a.worst * 1e6,
           a.triggered ? a.seconds / (double)a.triggered * 1e6 : 0.0);
    run_result b = run(42, 0);
    CHECK(a.digest == b.digest && a.moves == b.moves && a.records == b.records);
    return test_finish("test_policy_random");
}
