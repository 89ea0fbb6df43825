/*
 * test_policy_trigger.c - hysteresis and cooldown timing, tick by tick.
 *
 * Threshold 0.9 (log-odds 2.1972) with the default margin 0.5 puts the
 * reset level at sigmoid(1.6972) = 0.84516: PFPs in (0.84516, 0.9] are the
 * dead band, where the count neither grows nor resets.
 */
#include "core/cluster.h"
#include "core/trigger.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <string.h>

static char err[256];

static void setup(ps_cluster *c, uint32_t n)
{
    CHECK(ps_cluster_init(c, n, 4, 1, 2, err, sizeof err) == PS_OK);
    for (uint32_t p = 0; p < n; p++) {
        ps_processor_spec s = {
            .cls = (uint16_t)(p % 2), .cpu_capacity = 1, .mem_capacity = 1, .net_bandwidth = 1};
        CHECK(ps_cluster_add_processor(c, p, &s, err, sizeof err) == PS_OK);
    }
}

static uint32_t step(ps_trigger *t, ps_cluster *c, uint32_t p, double pfp, const double *thr)
{
    CHECK(ps_cluster_set_pfp(c, p, pfp, err, sizeof err) == PS_OK);
    ps_trigger_update(t, c, thr);
    return ps_trigger_held(t, p);
}

static int is_triggered(const ps_trigger *t, uint32_t p)
{
    for (uint32_t i = 0; i < t->n_triggered; i++)
        if (t->list[i].processor == p) return 1;
    return 0;
}

static void test_hysteresis(void)
{
    ps_cluster c;
    setup(&c, 2);
    ps_trigger t;
    ps_trigger_config cfg = ps_trigger_default_config();
    CHECK(cfg.hold_ticks == 2 && cfg.reset_margin == 0.5);
    cfg.hold_ticks = 3; /* long enough to show the dead band holding the count */
    CHECK(ps_trigger_init(&t, &cfg, &c, err, sizeof err) == PS_OK);
    const double thr[2] = {0.9, 0.9};

    /* Above, above, dead band (held), above: triggers on the 4th tick, not the 3rd. */
    CHECK(step(&t, &c, 0, 0.95, thr) == 1 && !is_triggered(&t, 0));
    CHECK(step(&t, &c, 0, 0.91, thr) == 2 && !is_triggered(&t, 0));
    CHECK(step(&t, &c, 0, 0.86, thr) == 2 && !is_triggered(&t, 0));
    CHECK(step(&t, &c, 0, 0.93, thr) == 3 && is_triggered(&t, 0));
    /* Exactly at the threshold is not above it; in the dead band it stays triggered. */
    CHECK(step(&t, &c, 0, 0.90, thr) == 3 && is_triggered(&t, 0));
    CHECK(step(&t, &c, 0, 0.846, thr) == 3 && is_triggered(&t, 0));
    /* Below the reset level: cleared at once. */
    CHECK(step(&t, &c, 0, 0.845, thr) == 0 && !is_triggered(&t, 0));
    /* A single spike between quiet ticks never triggers. */
    for (int i = 0; i < 10; i++) {
        step(&t, &c, 0, i % 2 ? 0.99 : 0.5, thr);
        CHECK(!is_triggered(&t, 0));
    }
    /* A dead processor's count is cleared. */
    step(&t, &c, 0, 0.5, thr);
    step(&t, &c, 0, 0.99, thr);
    step(&t, &c, 0, 0.99, thr);
    CHECK(ps_trigger_held(&t, 0) == 2);
    CHECK(ps_cluster_set_alive(&c, 0, 0, err, sizeof err) == PS_OK);
    ps_trigger_update(&t, &c, thr);
    CHECK(ps_trigger_held(&t, 0) == 0);
    ps_trigger_free(&t);
    ps_cluster_free(&c);
}

/* The triggered list: highest PFP first, ties by lower id; per-class thresholds. */
static void test_order_and_classes(void)
{
    ps_cluster c;
    setup(&c, 6);
    ps_trigger t;
    ps_trigger_config cfg = ps_trigger_default_config();
    cfg.hold_ticks = 1;
    CHECK(ps_trigger_init(&t, &cfg, &c, err, sizeof err) == PS_OK);
    const double thr[2] = {0.9, 0.99}; /* even ids class 0, odd ids class 1 */
    const double pfp[6] = {0.95, 0.97, 0.97, 0.995, 0.5, 0.95};
    for (uint32_t p = 0; p < 6; p++)
        CHECK(ps_cluster_set_pfp(&c, p, pfp[p], err, sizeof err) == PS_OK);
    CHECK(ps_trigger_update(&t, &c, thr) == 3);
    /* 1 (0.97, class 1) and 5 (0.95, class 1) are below 0.99; 4 is healthy. */
    CHECK(t.list[0].processor == 3 && t.list[1].processor == 2 && t.list[2].processor == 0);
    ps_trigger_free(&t);
    ps_cluster_free(&c);
}

static void test_cooldown(void)
{
    ps_cluster c;
    setup(&c, 1);
    ps_trigger t;
    ps_trigger_config cfg = ps_trigger_default_config();
    cfg.cooldown_ticks = 5;
    CHECK(ps_trigger_init(&t, &cfg, &c, err, sizeof err) == PS_OK);
    CHECK(!ps_trigger_in_cooldown(&t, 0, 0));
    CHECK(!ps_trigger_in_cooldown(&t, 0, INT64_MIN + 1));
    ps_trigger_note_move(&t, 0, 100);
    CHECK(ps_trigger_in_cooldown(&t, 0, 100));
    CHECK(ps_trigger_in_cooldown(&t, 0, 104));
    CHECK(!ps_trigger_in_cooldown(&t, 0, 105));
    CHECK(!ps_trigger_in_cooldown(&t, 0, INT64_MAX));
    CHECK(!ps_trigger_in_cooldown(&t, 1, 101));
    ps_trigger_forget_workload(&t, 0);
    CHECK(!ps_trigger_in_cooldown(&t, 0, 101));
    ps_trigger_free(&t);

    cfg.hold_ticks = 0;
    CHECK(ps_trigger_init(&t, &cfg, &c, err, sizeof err) == PS_EINVAL);
    cfg.hold_ticks = 1;
    cfg.reset_margin = -1;
    CHECK(ps_trigger_init(&t, &cfg, &c, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "reset_margin") != NULL, "%s", err);
    ps_cluster_free(&c);
}

int main(void)
{
    test_hysteresis();
    test_order_and_classes();
    test_cooldown();
    return test_finish("test_policy_trigger");
}
