/*
 * test_policy_cluster.c - the cluster model the shifting policy reads:
 * every refusal names what is wrong and changes nothing, transfers reserve
 * and release capacity, moves keep the lists and anti-affinity intact, and
 * the pooled adjacency survives growth, removal and compaction.
 */
#include "core/cluster.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <string.h>

static char err[256];

static ps_processor_spec proc_spec(void)
{
    return (ps_processor_spec){
        .cls = 0, .cpu_capacity = 8, .mem_capacity = 64, .net_bandwidth = 1e9};
}

static ps_workload_spec work_spec(uint32_t proc, uint32_t group)
{
    return (ps_workload_spec){
        .proc = proc, .cpu = 1, .mem = 4, .state_bytes = 1e6, .criticality = 1, .group = group};
}

static int err_has(const char *s)
{
    return strstr(err, s) != NULL;
}

static void test_validation(void)
{
    ps_cluster c;
    CHECK(ps_cluster_init(&c, 0, 10, 4, 1, err, sizeof err) == PS_EINVAL);
    CHECK(ps_cluster_init(&c, 4, 10, 4, 2, err, sizeof err) == PS_OK);
    ps_processor_spec ps = proc_spec();
    CHECK(ps_cluster_add_processor(&c, 0, &ps, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_add_processor(&c, 0, &ps, err, sizeof err) == PS_CLUSTER_EEXISTS);
    CHECKF(err_has("processor 0 already exists"), "%s", err);
    CHECK(ps_cluster_add_processor(&c, 4, &ps, err, sizeof err) == PS_CLUSTER_EUNKNOWN);
    CHECKF(err_has("out of range"), "%s", err);
    ps.cls = 2;
    CHECK(ps_cluster_add_processor(&c, 1, &ps, err, sizeof err) == PS_EINVAL);
    CHECKF(err_has("class 2"), "%s", err);
    ps = proc_spec();
    ps.cpu_capacity = 0;
    CHECK(ps_cluster_add_processor(&c, 1, &ps, err, sizeof err) == PS_EINVAL);
    ps.cpu_capacity = NAN;
    CHECK(ps_cluster_add_processor(&c, 1, &ps, err, sizeof err) == PS_EINVAL);
    ps = proc_spec();
    CHECK(ps_cluster_add_processor(&c, 1, &ps, err, sizeof err) == PS_OK);
    CHECK(c.n_processors == 2);

    CHECK(ps_cluster_set_load(&c, 0, 0.5, 1.5, 0, err, sizeof err) == PS_EINVAL);
    CHECKF(err_has("[0, 1]"), "%s", err);
    CHECK(ps_cluster_set_pfp(&c, 0, -0.1, err, sizeof err) == PS_EINVAL);
    CHECK(ps_cluster_set_pfp(&c, 3, 0.1, err, sizeof err) == PS_CLUSTER_EUNKNOWN);
    CHECKF(err_has("unknown processor 3"), "%s", err);

    ps_workload_spec ws = work_spec(0, 1);
    CHECK(ps_cluster_add_workload(&c, 0, &ws, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_add_workload(&c, 0, &ws, err, sizeof err) == PS_CLUSTER_EEXISTS);
    CHECK(ps_cluster_add_workload(&c, 10, &ws, err, sizeof err) == PS_CLUSTER_EUNKNOWN);
    /* A second replica of group 1 on processor 0 is refused. */
    CHECK(ps_cluster_add_workload(&c, 1, &ws, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECKF(err_has("replica of group 1"), "%s", err);
    ws.group = 5;
    CHECK(ps_cluster_add_workload(&c, 1, &ws, err, sizeof err) == PS_EINVAL);
    ws = work_spec(3, 0);
    CHECK(ps_cluster_add_workload(&c, 1, &ws, err, sizeof err) == PS_CLUSTER_EUNKNOWN);
    ws = work_spec(0, 0);
    ws.criticality = -1;
    CHECK(ps_cluster_add_workload(&c, 1, &ws, err, sizeof err) == PS_EINVAL);
    ws = work_spec(1, 1);
    CHECK(ps_cluster_add_workload(&c, 1, &ws, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_set_alive(&c, 1, 0, err, sizeof err) == PS_OK);
    ws = work_spec(1, 0);
    CHECK(ps_cluster_add_workload(&c, 2, &ws, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECKF(err_has("not alive"), "%s", err);
    CHECK(ps_cluster_set_alive(&c, 1, 1, err, sizeof err) == PS_OK);

    CHECK(ps_cluster_add_edge(&c, 0, 0, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECKF(err_has("itself"), "%s", err);
    CHECK(ps_cluster_add_edge(&c, 0, 7, err, sizeof err) == PS_CLUSTER_EUNKNOWN);
    CHECKF(err_has("unknown workload 7"), "%s", err);
    CHECK(ps_cluster_add_edge(&c, 0, 1, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_add_edge(&c, 0, 1, err, sizeof err) == PS_CLUSTER_EEXISTS);
    CHECKF(err_has("edge 0 -> 1 already exists"), "%s", err);
    CHECK(ps_cluster_add_edge(&c, 1, 0, err, sizeof err) ==
          PS_OK); /* the reverse is another edge */
    CHECK(ps_cluster_remove_edge(&c, 1, 0, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_remove_edge(&c, 1, 0, err, sizeof err) == PS_CLUSTER_EUNKNOWN);
    CHECK(c.n_edges == 1);

    /* A processor with workloads cannot go. */
    CHECK(ps_cluster_remove_processor(&c, 0, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECKF(err_has("still hosts 1"), "%s", err);
    CHECK(ps_cluster_check(&c, err, sizeof err) == PS_OK);
    ps_cluster_free(&c);
}

static void test_transfers(void)
{
    ps_cluster c;
    CHECK(ps_cluster_init(&c, 3, 4, 2, 1, err, sizeof err) == PS_OK);
    ps_processor_spec ps = proc_spec();
    for (uint32_t p = 0; p < 3; p++)
        CHECK(ps_cluster_add_processor(&c, p, &ps, err, sizeof err) == PS_OK);
    ps_workload_spec a = work_spec(0, 1), b = work_spec(2, 1);
    CHECK(ps_cluster_add_workload(&c, 0, &a, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_add_workload(&c, 1, &b, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_set_load(&c, 0, 0.5, 0.25, 0, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_set_load(&c, 1, 0.25, 0.25, 0, err, sizeof err) == PS_OK);

    /* Replica 0 may not go where replica 1 lives, nor onto its own host. */
    CHECK(ps_cluster_begin_transfer(&c, 0, 2, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECK(ps_cluster_begin_transfer(&c, 0, 0, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECK(ps_cluster_begin_transfer(&c, 0, 1, err, sizeof err) == PS_OK);
    CHECK(c.proc[1].inbound == 1 && c.proc[1].cpu_reserved == 1 && c.proc[1].mem_reserved == 4);
    CHECK(ps_cluster_where(&c, 0) == 1 && c.work[0].proc == 0);
    CHECK(ps_cluster_begin_transfer(&c, 0, 1, err, sizeof err) == PS_CLUSTER_ETRANSFER);
    /* While 0 heads to 1, replica 1 may not go to 1 either. */
    CHECK(ps_cluster_begin_transfer(&c, 1, 1, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECK(ps_cluster_move_workload(&c, 0, 2, err, sizeof err) == PS_CLUSTER_ETRANSFER);
    CHECK(ps_cluster_remove_processor(&c, 1, err, sizeof err) == PS_CLUSTER_ECONFLICT);

    /* Rollback: reservation gone, still on 0. */
    CHECK(ps_cluster_finish_transfer(&c, 0, 0, err, sizeof err) == PS_OK);
    CHECK(c.proc[1].inbound == 0 && c.proc[1].cpu_reserved == 0 && c.work[0].proc == 0);
    CHECK(ps_cluster_finish_transfer(&c, 0, 0, err, sizeof err) == PS_CLUSTER_ETRANSFER);

    /* Commit: moved, utilizations follow the demand (1 of 8 cores, 4 of 64 bytes). */
    CHECK(ps_cluster_begin_transfer(&c, 0, 1, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_finish_transfer(&c, 0, 1, err, sizeof err) == PS_OK);
    CHECK(c.work[0].proc == 1 && c.proc[0].n_workloads == 0 && c.proc[1].n_workloads == 1);
    CHECK_NEAR(c.proc[0].cpu_util, 0.375, 1e-12);
    CHECK_NEAR(c.proc[1].cpu_util, 0.375, 1e-12);
    CHECK_NEAR(c.proc[1].mem_util, 0.3125, 1e-12);
    CHECK(ps_cluster_check(&c, err, sizeof err) == PS_OK);

    /* A dead target is refused; removal drops the in-flight reservation. */
    CHECK(ps_cluster_set_alive(&c, 0, 0, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_move_workload(&c, 0, 0, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECK(ps_cluster_set_alive(&c, 0, 1, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_begin_transfer(&c, 0, 0, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_remove_workload(&c, 0, err, sizeof err) == PS_OK);
    CHECK(c.proc[0].inbound == 0 && c.proc[0].cpu_reserved == 0);
    CHECK(ps_cluster_remove_processor(&c, 0, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_check(&c, err, sizeof err) == PS_OK);
    CHECK(ps_cluster_mean_utilization(&c) > 0);
    ps_cluster_free(&c);
}

/* Random edges added and removed against a dense reference matrix. */
static void test_adjacency_churn(void)
{
    enum { NW = 256, ROUNDS = 200000 };
    static uint8_t ref[NW][NW];
    memset(ref, 0, sizeof ref);
    ps_cluster c;
    CHECK(ps_cluster_init(&c, 1, NW, 1, 1, err, sizeof err) == PS_OK);
    ps_processor_spec ps = proc_spec();
    CHECK(ps_cluster_add_processor(&c, 0, &ps, err, sizeof err) == PS_OK);
    for (uint32_t w = 0; w < NW; w++) {
        ps_workload_spec s = work_spec(0, 0);
        CHECK(ps_cluster_add_workload(&c, w, &s, err, sizeof err) == PS_OK);
    }
    ps_rng r;
    ps_rng_seed(&r, 7);
    for (int i = 0; i < ROUNDS; i++) {
        uint32_t a = (uint32_t)ps_rng_below(&r, NW), b = (uint32_t)ps_rng_below(&r, NW);
        if (a == b) continue;
        if (i % 97 == 0) {
            /* Drop and re-add a whole workload: its edges go with it. */
            CHECK(ps_cluster_remove_workload(&c, a, err, sizeof err) == PS_OK);
            for (uint32_t k = 0; k < NW; k++)
                ref[a][k] = ref[k][a] = 0;
            ps_workload_spec s = work_spec(0, 0);
            CHECK(ps_cluster_add_workload(&c, a, &s, err, sizeof err) == PS_OK);
            continue;
        }
        if (ps_rng_uniform(&r) < 0.6) {
            int rc = ps_cluster_add_edge(&c, a, b, err, sizeof err);
            CHECK(rc == (ref[a][b] ? PS_CLUSTER_EEXISTS : PS_OK));
            ref[a][b] = 1;
        } else {
            int rc = ps_cluster_remove_edge(&c, a, b, err, sizeof err);
            CHECK(rc == (ref[a][b] ? PS_OK : PS_CLUSTER_EUNKNOWN));
            ref[a][b] = 0;
        }
    }
    CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "%s", err);
    uint64_t edges = 0;
    for (uint32_t a = 0; a < NW; a++) {
        uint32_t n;
        const uint32_t *d = ps_cluster_dependents(&c, a, &n);
        uint32_t expect = 0;
        for (uint32_t b = 0; b < NW; b++)
            expect += ref[a][b];
        CHECK(n == expect);
        for (uint32_t i = 0; i < n; i++)
            CHECK(ref[a][d[i]]);
        edges += n;
    }
    CHECK(edges == c.n_edges);
    CHECK(c.pool_len <= c.pool_cap);
    ps_cluster_free(&c);
}

int main(void)
{
    test_validation();
    test_transfers();
    test_adjacency_churn();
    return test_finish("test_policy_cluster");
}
