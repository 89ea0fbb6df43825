/*
 * test_policy_select.c - one decision pass on the hand-worked chain of
 * test_policy_disruption.c, and the decision records it leaves.
 *
 * Processor 0 (PFP 0.85, class threshold 0.8) hosts w0..w3; w4 is on
 * processor 1. Targets 1, 2, 3 are healthy (PFP 0), CPU 0.3, 0.1, 0.1 of
 * 10 cores, every workload needs 1 core, so a target's headroom is
 * 0.8 - (cpu + placed/10).
 *
 * Budget: total loss 256 + 280 + 150 + 124 = 810; allowed share
 * 0.5 * (1 - 0.85) / (1 - 0.8) = 0.375, allowed residual 303.75.
 * Ratio order w0 (16.74), w2 (12.75), w3 (8.11), w1 (6.26):
 *   w0: residual 810 > 303.75, no neighbour off processor 0; headroom
 *       p1 0.4, p2 0.6, p3 0.6 -> p2 (tie, lower id). Residual 554.
 *   w2: neighbours on processor 0 only; p1 0.4, p2 0.5, p3 0.6 -> p3. 404.
 *   w3: w2 is now planned on p3, w4 lives on p1: affinity 1 each; headroom
 *       p3 0.5, p1 0.4 -> p3. Residual 280.
 *   w1: 280 <= 303.75: within budget.
 */
#include "core/cluster.h"
#include "core/decision.h"
#include "core/policy.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <string.h>

static char err[256];
static const double thr[1] = {0.8};

static void build(ps_cluster *c)
{
    CHECK(ps_cluster_init(c, 4, 5, 1, 1, err, sizeof err) == PS_OK);
    const double cpu[4] = {0.1, 0.3, 0.1, 0.1}, net[4] = {0.5, 0, 0, 0};
    for (uint32_t p = 0; p < 4; p++) {
        ps_processor_spec s = {.cpu_capacity = 10, .mem_capacity = 100, .net_bandwidth = 1e8};
        CHECK(ps_cluster_add_processor(c, p, &s, err, sizeof err) == PS_OK);
        CHECK(ps_cluster_set_load(c, p, cpu[p], 0.1, net[p], err, sizeof err) == PS_OK);
    }
    CHECK(ps_cluster_set_pfp(c, 0, 0.85, err, sizeof err) == PS_OK);
    const double crit[5] = {1, 2, 1, 3, 1}, state[5] = {1e8, 5e8, 0, 5e7, 0};
    /* Added in reverse so that list order differs from id order. */
    for (uint32_t w = 5; w-- > 0;) {
        ps_workload_spec s = {.proc = w < 4 ? 0 : 1,
                              .cpu = 1,
                              .mem = 1,
                              .state_bytes = state[w],
                              .criticality = crit[w]};
        CHECK(ps_cluster_add_workload(c, w, &s, err, sizeof err) == PS_OK);
    }
    for (uint32_t w = 0; w < 4; w++)
        CHECK(ps_cluster_add_edge(c, w, w + 1, err, sizeof err) == PS_OK);
}

static ps_policy_config config(void)
{
    ps_policy_config cfg = ps_policy_default_config();
    cfg.trigger.hold_ticks = 1;
    return cfg;
}

static void test_pass(void)
{
    ps_cluster c;
    build(&c);
    ps_policy_config cfg = config();
    ps_policy pol;
    ps_trigger t;
    CHECK(ps_policy_init(&pol, &cfg, &c, err, sizeof err) == PS_OK);
    CHECK(ps_trigger_init(&t, &cfg.trigger, &c, err, sizeof err) == PS_OK);
    ps_decision d[5];
    ps_policy_pass pass;

    uint32_t n = ps_policy_tick(&pol, &c, &t, thr, 1, d, 5, &pass);
    CHECK(n == 4 && pass.triggered == 1 && pass.served == 1 && pass.moves == 3 && !pass.truncated);
    const uint32_t order[4] = {0, 2, 3, 1}, target[4] = {2, 3, 3, PS_NONE};
    const ps_decision_reason why[4] = {PS_DECIDE_MOVE, PS_DECIDE_MOVE, PS_DECIDE_MOVE,
                                       PS_DECIDE_WITHIN_BUDGET};
    const double residual[4] = {810, 554, 404, 280};
    for (uint32_t i = 0; i < 4 && i < n; i++) {
        CHECK(d[i].workload == order[i]);
        CHECK(d[i].rank == i + 1);
        CHECKF(d[i].reason == why[i], "record %u: %s", i, ps_decision_reason_name(d[i].reason));
        CHECK(d[i].target == target[i]);
        CHECK_NEAR(d[i].residual_loss, residual[i], 1e-9);
        CHECK_NEAR(d[i].allowed_loss, 303.75, 1e-9);
        CHECK(d[i].processor == 0 && d[i].tick == 1 && d[i].held_ticks == 1);
        CHECK_NEAR(d[i].threshold, 0.8, 0);
    }
    CHECK_NEAR(d[0].place.headroom, 0.6, 1e-12);
    CHECK(d[2].place.affinity == 1);
    CHECK_NEAR(d[2].place.headroom, 0.5, 1e-12);

    char line[600];
    int len = ps_decision_format(&d[0], line, sizeof line);
    CHECK(len == (int)strlen(line));
    CHECKF(strstr(line, "tick 1 proc 0 workload 0: move -> proc 2") == line, "%s", line);
    CHECKF(strstr(line, "ratio 16.74 = risk 217.6 / disruption 13") != NULL, "%s", line);
    len = ps_decision_format(&d[3], line, sizeof line);
    CHECKF(strstr(line, "within-budget; pfp 0.8500 threshold 0.8000 held 1; residual loss 280 "
                        "allowed 303.8") != NULL,
           "%s", line);
    /* A short buffer gets a terminated prefix and the length the whole line needs. */
    char small[16];
    CHECK(ps_decision_format(&d[3], small, sizeof small) == len);
    CHECK(strlen(small) == sizeof small - 1 && strncmp(small, line, sizeof small - 1) == 0);

    /* Next tick, the manager has started the three transfers: they are protected. */
    for (uint32_t i = 0; i < 3; i++)
        CHECK(ps_cluster_begin_transfer(&c, d[i].workload, d[i].target, err, sizeof err) == PS_OK);
    n = ps_policy_tick(&pol, &c, &t, thr, 2, d, 5, &pass);
    CHECK(n == 4 && pass.moves == 0);
    CHECK(d[0].workload == 0 && d[0].reason == PS_DECIDE_IN_TRANSFER);
    CHECK(d[1].workload == 2 && d[2].workload == 3 && d[2].reason == PS_DECIDE_IN_TRANSFER);
    CHECK(d[3].workload == 1 && d[3].reason == PS_DECIDE_WITHIN_BUDGET);
    CHECK_NEAR(d[3].residual_loss, 280, 1e-9);

    /*
     * PFP 0.95: allowed share 0.5 * 0.05 / 0.2 = 0.125, 101.25 < 280, so w1
     * goes too. Its neighbours head to p2 (w0) and p3 (w2): affinity 1 each;
     * p2 holds 0.1 + 1 reserved core, p3 0.1 + 2: headroom 0.5 vs 0.4 -> p2.
     */
    CHECK(ps_cluster_set_pfp(&c, 0, 0.95, err, sizeof err) == PS_OK);
    n = ps_policy_tick(&pol, &c, &t, thr, 3, d, 5, &pass);
    CHECK(n == 4 && pass.moves == 1);
    CHECK(d[3].workload == 1 && d[3].reason == PS_DECIDE_MOVE && d[3].target == 2);
    CHECK(d[3].place.affinity == 1);
    CHECK_NEAR(d[3].place.headroom, 0.5, 1e-12);
    CHECK_NEAR(d[3].allowed_loss, 101.25, 1e-9);

    ps_trigger_free(&t);
    ps_policy_free(&pol);
    ps_cluster_free(&c);
}

/*
 * recovery_seconds 0 makes the loss the transfer time alone, at PFP 0.99:
 * loss w0 2 * 8 = 16, w1 10 * 7 = 70, w2 0, w3 1 * 4 = 4, total 90;
 * allowed 90 * 0.5 * 0.01 / 0.2 = 2.25. Risk 0.99 * loss against D:
 * w1 69.3 / 38, w0 15.84 / 13 (both moved, residual 90 -> 20 -> 4),
 * w3 3.96 / 13 and w2 0 / 10 not worth it.
 */
static void test_not_worth_and_caps(void)
{
    ps_cluster c;
    build(&c);
    CHECK(ps_cluster_set_pfp(&c, 0, 0.99, err, sizeof err) == PS_OK);
    ps_policy_config cfg = config();
    cfg.disruption.recovery_seconds = 0;
    ps_policy pol;
    ps_trigger t;
    CHECK(ps_policy_init(&pol, &cfg, &c, err, sizeof err) == PS_OK);
    CHECK(ps_trigger_init(&t, &cfg.trigger, &c, err, sizeof err) == PS_OK);
    ps_decision d[5];
    ps_policy_pass pass;
    uint32_t n = ps_policy_tick(&pol, &c, &t, thr, 1, d, 5, &pass);
    CHECK(n == 4 && pass.moves == 2);
    const uint32_t order[4] = {1, 0, 3, 2};
    const ps_decision_reason why[4] = {PS_DECIDE_MOVE, PS_DECIDE_MOVE, PS_DECIDE_NOT_WORTH,
                                       PS_DECIDE_NOT_WORTH};
    for (uint32_t i = 0; i < 4; i++)
        CHECK(d[i].workload == order[i] && d[i].reason == why[i]);
    CHECK_NEAR(d[2].residual_loss, 4, 1e-9);
    ps_trigger_free(&t);
    ps_policy_free(&pol);

    /* One move per processor: the rest are capped, with their reason. */
    cfg = config();
    cfg.max_moves_per_processor = 1;
    CHECK(ps_policy_init(&pol, &cfg, &c, err, sizeof err) == PS_OK);
    CHECK(ps_trigger_init(&t, &cfg.trigger, &c, err, sizeof err) == PS_OK);
    n = ps_policy_tick(&pol, &c, &t, thr, 1, d, 5, &pass);
    CHECK(n == 4 && pass.moves == 1 && d[0].reason == PS_DECIDE_MOVE);
    for (uint32_t i = 1; i < 4; i++)
        CHECK(d[i].reason == PS_DECIDE_MOVE_CAP);
    /* Cooldown: the moved workload is not moved again at the next tick. */
    n = ps_policy_tick(&pol, &c, &t, thr, 2, d, 5, &pass);
    CHECK(d[0].workload == 0 && d[0].reason == PS_DECIDE_COOLDOWN);
    ps_trigger_free(&t);

    /* Too few records: the pass stops, and says so, rather than act unrecorded. */
    CHECK(ps_trigger_init(&t, &cfg.trigger, &c, err, sizeof err) == PS_OK);
    n = ps_policy_tick(&pol, &c, &t, thr, 1, d, 2, &pass);
    CHECK(n == 2 && pass.truncated && pass.served == 0 && pass.moves == 1);
    ps_trigger_free(&t);
    ps_policy_free(&pol);

    /* No healthy target: every selected workload says why. */
    for (uint32_t p = 1; p < 4; p++)
        CHECK(ps_cluster_set_pfp(&c, p, 0.5, err, sizeof err) == PS_OK);
    cfg = config();
    CHECK(ps_policy_init(&pol, &cfg, &c, err, sizeof err) == PS_OK);
    CHECK(ps_trigger_init(&t, &cfg.trigger, &c, err, sizeof err) == PS_OK);
    n = ps_policy_tick(&pol, &c, &t, thr, 1, d, 5, &pass);
    CHECK(n == 4 && pass.moves == 0 && pass.no_target == 4);
    for (uint32_t i = 0; i < 4; i++)
        CHECK(d[i].reason == PS_DECIDE_NO_TARGET && d[i].place.considered == 3 &&
              d[i].place.rejected_unhealthy == 3);
    char line[600];
    ps_decision_format(&d[0], line, sizeof line);
    CHECKF(strstr(line, "no-target (of 3 processors: 3 unhealthy, 0 no headroom, 0 hold a "
                        "replica)") != NULL,
           "%s", line);
    ps_trigger_free(&t);
    ps_policy_free(&pol);
    ps_cluster_free(&c);
}

static void test_budget_share(void)
{
    ps_policy_config cfg = ps_policy_default_config();
    CHECK_NEAR(ps_policy_allowed_share(&cfg, 0.9, 0.9), 0.5, 1e-12);
    CHECK_NEAR(ps_policy_allowed_share(&cfg, 0.95, 0.9), 0.25, 1e-12);
    CHECK_NEAR(ps_policy_allowed_share(&cfg, 0.99, 0.9), 0.05, 1e-12);
    CHECK_NEAR(ps_policy_allowed_share(&cfg, 1.0, 0.9), 0.0, 0);
    CHECK_NEAR(ps_policy_allowed_share(&cfg, 0.5, 0.9), 1.0, 0); /* below: nothing to move */
    cfg.residual_at_threshold = 1.5;
    CHECK(ps_policy_config_check(&cfg, err, sizeof err) == PS_EINVAL);
}

int main(void)
{
    test_pass();
    test_not_worth_and_caps();
    test_budget_share();
    return test_finish("test_policy_select");
}
