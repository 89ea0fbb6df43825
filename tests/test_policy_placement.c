/*
 * test_policy_placement.c - target choice: replica anti-affinity is never
 * violated (hosts, transfers in flight, earlier plans of the same pass),
 * the utilization cap is never exceeded (heartbeat + reservations + plans),
 * affinity wins over headroom, PFP bands over headroom, ids break ties.
 */
#include "core/cluster.h"
#include "core/placement.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <string.h>

static char err[256];

/* Processors 0..n-1, 10 cores, 100 bytes, CPU share cpu[p], memory 0. */
static void build(ps_cluster *c, uint32_t n, const double *cpu)
{
    CHECK(ps_cluster_init(c, n, 16, 4, 1, err, sizeof err) == PS_OK);
    for (uint32_t p = 0; p < n; p++) {
        ps_processor_spec s = {.cpu_capacity = 10, .mem_capacity = 100, .net_bandwidth = 1e9};
        CHECK(ps_cluster_add_processor(c, p, &s, err, sizeof err) == PS_OK);
        CHECK(ps_cluster_set_load(c, p, cpu[p], 0, 0, err, sizeof err) == PS_OK);
    }
}

static void add(ps_cluster *c, uint32_t id, uint32_t proc, double cpu, uint32_t group)
{
    ps_workload_spec s = {.proc = proc, .cpu = cpu, .mem = 1, .criticality = 1, .group = group};
    CHECK(ps_cluster_add_workload(c, id, &s, err, sizeof err) == PS_OK);
}

static void test_replicas(void)
{
    const double cpu[4] = {0.1, 0.1, 0.1, 0.5};
    ps_cluster c;
    build(&c, 4, cpu);
    /* Group 1: w0 on p0, w1 on p1, w2 on p0 is not allowed so on p3. */
    add(&c, 0, 0, 1, 1);
    add(&c, 1, 1, 1, 1);
    add(&c, 2, 3, 1, 1);
    add(&c, 3, 0, 1, 2);
    ps_placement_config cfg = ps_placement_default_config();
    ps_placement_ws ws;
    CHECK(ps_placement_ws_init(&ws, &c, err, sizeof err) == PS_OK);
    ps_placement pl;
    /* w0 may go only to p2 (p1 and p3 hold its twins), though p1 ranks first by id. */
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 2);
    CHECK(pl.rejected_replica == 1); /* p1 would have won; p3 never beat p2 */
    /* Once w3 (group 2) is planned on p2, w0 can still go there; a group-2 twin could not. */
    ps_placement_commit(&c, &ws, 3, 2);
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 2);
    ps_placement_commit(&c, &ws, 0, 2);
    /* w1 now: p0 is free of group 1? No: w0 still lives on p0 until its transfer commits. */
    CHECK(ps_place(&c, &cfg, &ws, 1, &pl) == 1 && pl.target == PS_NONE);
    CHECK(pl.considered == 3 && pl.rejected_replica == 3);
    ps_placement_reset(&ws);
    /* Reset forgets the plans: w1 may go to p2 again. */
    CHECK(ps_place(&c, &cfg, &ws, 1, &pl) == 0 && pl.target == 2);
    /* A transfer in flight to p2 counts too. */
    CHECK(ps_cluster_begin_transfer(&c, 2, 2, err, sizeof err) == PS_OK);
    CHECK(ps_place(&c, &cfg, &ws, 1, &pl) == 1);
    ps_placement_ws_free(&ws);
    ps_cluster_free(&c);
}

static void test_capacity(void)
{
    /* p1 at 0.5 of 10 cores: exactly 3 one-core workloads fit under 0.8. */
    const double cpu[2] = {0.9, 0.5};
    ps_cluster c;
    build(&c, 2, cpu);
    for (uint32_t w = 0; w < 6; w++)
        add(&c, w, 0, 1, 0);
    ps_placement_config cfg = ps_placement_default_config();
    ps_placement_ws ws;
    CHECK(ps_placement_ws_init(&ws, &c, err, sizeof err) == PS_OK);
    ps_placement pl;
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 1);
    CHECK_NEAR(pl.headroom, 0.2, 1e-12);
    ps_placement_commit(&c, &ws, 0, 1);
    /* One in flight (reserved) and one planned: the third fits exactly, the fourth not. */
    CHECK(ps_cluster_begin_transfer(&c, 5, 1, err, sizeof err) == PS_OK);
    CHECK(ps_place(&c, &cfg, &ws, 1, &pl) == 0 && pl.target == 1);
    CHECK(pl.headroom >= 0 && pl.headroom < 1e-9);
    ps_placement_commit(&c, &ws, 1, 1);
    CHECK(ps_place(&c, &cfg, &ws, 2, &pl) == 1);
    CHECK(pl.rejected_headroom == 1 && pl.rejected_unhealthy == 0);
    /* Memory is capped the same way. */
    ps_placement_reset(&ws);
    CHECK(ps_cluster_finish_transfer(&c, 5, 0, err, sizeof err) == PS_OK);
    ps_workload_spec big = {.proc = 0, .cpu = 0, .mem = 81, .criticality = 1};
    CHECK(ps_cluster_add_workload(&c, 6, &big, err, sizeof err) == PS_OK);
    CHECK(ps_place(&c, &cfg, &ws, 6, &pl) == 1 && pl.rejected_headroom == 1);
    ps_placement_ws_free(&ws);
    ps_cluster_free(&c);
}

static void test_ranking(void)
{
    const double cpu[5] = {0.1, 0.6, 0.1, 0.1, 0.3};
    ps_cluster c;
    build(&c, 5, cpu);
    add(&c, 0, 0, 1, 0);
    add(&c, 1, 1, 1, 0); /* a dependency of w0 on the busiest target */
    add(&c, 2, 4, 1, 0);
    CHECK(ps_cluster_add_edge(&c, 1, 0, err, sizeof err) == PS_OK);
    ps_placement_config cfg = ps_placement_default_config();
    ps_placement_ws ws;
    CHECK(ps_placement_ws_init(&ws, &c, err, sizeof err) == PS_OK);
    ps_placement pl;
    /* Affinity first: p1 (headroom 0.1) beats p2, p3 (0.6). */
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 1 && pl.affinity == 1);
    CHECK_NEAR(pl.headroom, 0.1, 1e-12);
    /* Without it, equal headroom: the lower id. */
    CHECK(ps_cluster_remove_edge(&c, 1, 0, err, sizeof err) == PS_OK);
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 2 && pl.affinity == 0);
    /* PFPs in one band (0.001 vs 0.009) do not decide; another band (0.011) does. */
    CHECK(ps_cluster_set_pfp(&c, 2, 0.009, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_set_pfp(&c, 3, 0.001, err, sizeof err) == PS_OK);
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 2);
    CHECK(ps_cluster_set_pfp(&c, 2, 0.011, err, sizeof err) == PS_OK);
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 3);
    /* Above the healthy bound, or dead: not a candidate at all. */
    CHECK(ps_cluster_set_pfp(&c, 3, 0.06, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_set_alive(&c, 2, 0, err, sizeof err) == PS_OK);
    CHECK(ps_place(&c, &cfg, &ws, 0, &pl) == 0 && pl.target == 4);
    CHECK(pl.rejected_unhealthy == 2);
    /* The scratch affinity is clean after every call. */
    for (uint32_t p = 0; p < 5; p++)
        CHECK(ws.affinity[p] == 0);
    ps_placement_ws_free(&ws);
    ps_cluster_free(&c);

    cfg.max_utilization = 0;
    CHECK(ps_placement_config_check(&cfg, err, sizeof err) == PS_EINVAL);
}

int main(void)
{
    test_replicas();
    test_capacity();
    test_ranking();
    return test_finish("test_policy_placement");
}
