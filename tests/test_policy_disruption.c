/*
 * test_policy_disruption.c - Disruption Score and loss by hand.
 *
 * The chain w0 -> w1 -> w2 -> w3 -> w4 (each depends on the one before);
 * w0..w3 on processor 0, w4 on processor 1. Processor 0 sends 1e8 bytes/s
 * and is half busy on the network, so a transfer gets 5e7 bytes/s. Default
 * config: switch 2 s, remote edge 1, recovery 30 s, depth 8. PFP 0.85.
 *
 *      crit state  transfer pause self  dependents       remote     D
 *  w0  1    1e8    2 s      4     4     w1: 2*4 = 8      w1     1   13
 *  w1  2    5e8    10 s     12    24    w2: 1*12 = 12    w0,w2  2   38
 *  w2  1    0      0 s      2     2     w3: 3*2 = 6      w1,w3  2   10
 *  w3  3    5e7    1 s      3     9     w4: 1*3 = 3      w2     1   13
 *                                        (w4 is on processor 1: not remote-made)
 *
 *      reach (criticality)   loss = (30 + transfer) * (crit + reach)   risk = 0.85 * loss
 *  w0  w1..w4: 7             32 * 8 = 256                              217.6   ratio 16.738
 *  w1  w2..w4: 5             40 * 7 = 280                              238     ratio 6.263
 *  w2  w3, w4: 4             30 * 5 = 150                              127.5   ratio 12.75
 *  w3  w4: 1                 31 * 4 = 124                              105.4   ratio 8.108
 */
#include "core/cluster.h"
#include "core/disruption.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <string.h>

static char err[256];

static void add_proc(ps_cluster *c, uint32_t id, double net_util)
{
    ps_processor_spec s = {.cls = 0, .cpu_capacity = 10, .mem_capacity = 100, .net_bandwidth = 1e8};
    CHECK(ps_cluster_add_processor(c, id, &s, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_set_load(c, id, 0.1, 0.1, net_util, err, sizeof err) == PS_OK);
}

static void add_work(ps_cluster *c, uint32_t id, uint32_t proc, double crit, double state)
{
    ps_workload_spec s = {
        .proc = proc, .cpu = 1, .mem = 1, .state_bytes = state, .criticality = crit, .group = 0};
    CHECK(ps_cluster_add_workload(c, id, &s, err, sizeof err) == PS_OK);
}

static void build_chain(ps_cluster *c)
{
    CHECK(ps_cluster_init(c, 2, 5, 1, 1, err, sizeof err) == PS_OK);
    add_proc(c, 0, 0.5);
    add_proc(c, 1, 0.0);
    const double crit[5] = {1, 2, 1, 3, 1}, state[5] = {1e8, 5e8, 0, 5e7, 0};
    for (uint32_t w = 0; w < 5; w++)
        add_work(c, w, w < 4 ? 0 : 1, crit[w], state[w]);
    for (uint32_t w = 0; w < 4; w++)
        CHECK(ps_cluster_add_edge(c, w, w + 1, err, sizeof err) == PS_OK);
}

static void test_chain(void)
{
    ps_cluster c;
    build_chain(&c);
    ps_disruption_config cfg = ps_disruption_default_config();
    ps_disruption_ws ws;
    CHECK(ps_disruption_ws_init(&ws, c.max_workloads, err, sizeof err) == PS_OK);
    const double D[4] = {13, 38, 10, 13}, L[4] = {256, 280, 150, 124};
    const double self[4] = {4, 24, 2, 9}, dep[4] = {8, 12, 6, 3};
    const uint32_t remote[4] = {1, 2, 2, 1}, reach[4] = {4, 3, 2, 1};
    for (uint32_t w = 0; w < 4; w++) {
        ps_disruption s;
        ps_disruption_score(&c, &cfg, &ws, w, 0.85, &s);
        CHECK_NEAR(s.self_cost, self[w], 1e-9);
        CHECK_NEAR(s.dependents_cost, dep[w], 1e-9);
        CHECK(s.remote_edges == remote[w]);
        CHECK_NEAR(s.disruption, D[w], 1e-9);
        CHECK_NEAR(s.loss, L[w], 1e-9);
        CHECK(s.loss_reach == reach[w] && !s.loss_truncated);
        CHECK_NEAR(s.risk_reduction, 0.85 * L[w], 1e-9);
        CHECK_NEAR(s.ratio, 0.85 * L[w] / D[w], 1e-9);
    }

    /* Depth 1 counts direct dependents only: w0 reaches w1 (crit 2): 32 * 3. */
    cfg.loss_depth = 1;
    ps_disruption s;
    ps_disruption_score(&c, &cfg, &ws, 0, 0.85, &s);
    CHECK_NEAR(s.loss, 96, 1e-9);
    CHECK(s.loss_reach == 1);
    /* A visit cap of 2 stops the walk after w1, w2 and says so: 32 * (1 + 2 + 1). */
    cfg = ps_disruption_default_config();
    cfg.loss_max_visit = 2;
    ps_disruption_score(&c, &cfg, &ws, 0, 0.85, &s);
    CHECK_NEAR(s.loss, 128, 1e-9);
    CHECK(s.loss_reach == 2 && s.loss_truncated);

    /* A neighbour already leaving processor 0 does not count as made remote. */
    cfg = ps_disruption_default_config();
    CHECK(ps_cluster_begin_transfer(&c, 1, 1, err, sizeof err) == PS_OK);
    ps_disruption_score(&c, &cfg, &ws, 0, 0.85, &s);
    CHECK(s.remote_edges == 0);
    CHECK_NEAR(s.disruption, 12, 1e-9);
    /* A saturated network is floored at 5 % of the bandwidth: 1e8 / 5e6 = 20 s. */
    CHECK(ps_cluster_set_load(&c, 0, 0.1, 0.1, 1.0, err, sizeof err) == PS_OK);
    ps_disruption_score(&c, &cfg, &ws, 0, 0.85, &s);
    CHECK_NEAR(s.transfer_seconds, 20, 1e-9);
    ps_disruption_ws_free(&ws);
    ps_cluster_free(&c);
}

/*
 * A diamond with a cycle: 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3, 3 -> 0. From 0 the
 * dependents are 1, 2, 3 once each (3 is reached twice, 0 is where we began).
 */
static void test_diamond_cycle(void)
{
    ps_cluster c;
    CHECK(ps_cluster_init(&c, 1, 4, 1, 1, err, sizeof err) == PS_OK);
    add_proc(&c, 0, 0.0);
    for (uint32_t w = 0; w < 4; w++)
        add_work(&c, w, 0, (double)(w + 1), 0);
    const uint32_t e[5][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 0}};
    for (int i = 0; i < 5; i++)
        CHECK(ps_cluster_add_edge(&c, e[i][0], e[i][1], err, sizeof err) == PS_OK);
    ps_disruption_config cfg = ps_disruption_default_config();
    ps_disruption_ws ws;
    CHECK(ps_disruption_ws_init(&ws, 4, err, sizeof err) == PS_OK);
    for (int rep = 0; rep < 3; rep++) { /* stamps must not leak between walks */
        ps_disruption s;
        ps_disruption_score(&c, &cfg, &ws, 0, 1.0, &s);
        CHECK(s.loss_reach == 3);
        CHECK_NEAR(s.loss, 30 * (1 + 2 + 3 + 4), 1e-9);
        /* Remote: out 1, 2 and in 3, all on processor 0. Pause 2 s * (1 + 2 + 3). */
        CHECK(s.remote_edges == 3);
        CHECK_NEAR(s.disruption, 2 * 1 + 2 * 5 + 3, 1e-9);
    }
    ps_disruption_ws_free(&ws);
    ps_cluster_free(&c);

    cfg.min_bandwidth_fraction = 0;
    CHECK(ps_disruption_config_check(&cfg, err, sizeof err) == PS_EINVAL);
}

int main(void)
{
    test_chain();
    test_diamond_cycle();
    return test_finish("test_policy_disruption");
}
