/*
 * test_policy_threshold.c - adaptive thresholds: steps in log-odds, the
 * averted-rate gate, clamping at the bounds, the environmental offset and
 * its cap, and the history records.
 *
 * Defaults: initial 0.9 = logit 2.197225, steps 0.1 (0.25 disruptive),
 * rates weighted 0.2, lowering only at an averted rate >= 0.5.
 */
#include "core/threshold.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <string.h>

static char err[256];

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

static const double z0 = 2.1972245773362196; /* logit(0.9) */

static void test_outcomes(void)
{
    ps_threshold_config cfg = ps_threshold_default_config();
    ps_thresholds th;
    CHECK(ps_thresholds_init(&th, &cfg, 2, err, sizeof err) == PS_OK);
    CHECK_NEAR(ps_thresholds_effective(&th, 0), 0.9, 1e-12);
    ps_threshold_change rec;

    CHECK(ps_thresholds_outcome(&th, 0, PS_OUTCOME_UNNECESSARY, 10, &rec) == 1);
    CHECK(rec.cause == PS_CAUSE_UNNECESSARY && rec.time == 10 && rec.cls == 0);
    CHECK_NEAR(rec.old_threshold, 0.9, 1e-12);
    CHECK_NEAR(rec.new_threshold, sigmoid(z0 + 0.1), 1e-12); /* 0.908662 */
    CHECK_NEAR(rec.rate[PS_OUTCOME_UNNECESSARY], 0.2, 1e-12);
    CHECK_NEAR(ps_thresholds_effective(&th, 1), 0.9, 1e-12); /* other classes untouched */

    /* Averted rate 0.2, 0.36, 0.488: not yet consistent; 0.5904 on the 4th: lower. */
    for (int i = 0; i < 3; i++)
        CHECK(ps_thresholds_outcome(&th, 0, PS_OUTCOME_AVERTED, 11 + i, &rec) == 0);
    CHECK(ps_thresholds_outcome(&th, 0, PS_OUTCOME_AVERTED, 14, &rec) == 1);
    CHECK_NEAR(rec.rate[PS_OUTCOME_AVERTED], 0.5904, 1e-12);
    CHECK_NEAR(rec.new_threshold, 0.9, 1e-12);
    CHECK(rec.cause == PS_CAUSE_AVERTED);
    CHECK(th.cls[0].count[PS_OUTCOME_AVERTED] == 4);

    /* Disruptive steps 0.25 up to the bound 0.9999 (logit 9.21), then no more records. */
    int moved = 0;
    while (ps_thresholds_outcome(&th, 0, PS_OUTCOME_DISRUPTIVE, 20, &rec) == 1)
        moved++;
    CHECK(moved == 29); /* ceil((9.2102 - 2.1972) / 0.25) = ceil(28.05) */
    CHECK_NEAR(ps_thresholds_effective(&th, 0), 0.9999, 1e-12);
    /* Parked at the bound, not wound up past it: once the averted gate opens, one step down. */
    for (int i = 0; i < 3; i++)
        ps_thresholds_outcome(&th, 0, PS_OUTCOME_AVERTED, 30, NULL);
    CHECK(ps_thresholds_outcome(&th, 0, PS_OUTCOME_AVERTED, 31, &rec) == 1);
    CHECK_NEAR(rec.new_base, log(0.9999 / 0.0001) - 0.1, 1e-9);

    /* Missed failures lower it, down to the bound 0.5. */
    moved = 0;
    while (ps_thresholds_outcome(&th, 1, PS_OUTCOME_MISSED, 40, &rec) == 1)
        moved++;
    CHECK(moved == 22); /* ceil(2.1972 / 0.1) */
    CHECK_NEAR(ps_thresholds_effective(&th, 1), 0.5, 1e-12);

    CHECK(ps_thresholds_outcome(&th, 2, PS_OUTCOME_AVERTED, 0, &rec) == PS_EINVAL);
    CHECK(ps_thresholds_outcome(&th, 0, PS_OUTCOME_COUNT, 0, &rec) == PS_EINVAL);
    CHECK(strcmp(ps_threshold_cause_name(PS_CAUSE_ENVIRONMENT), "environment") == 0);
}

static void test_environment(void)
{
    ps_threshold_config cfg = ps_threshold_default_config();
    cfg.env_alpha = 1.0; /* no smoothing: each sample is the environment */
    ps_thresholds th;
    CHECK(ps_thresholds_init(&th, &cfg, 2, err, sizeof err) == PS_OK);
    ps_threshold_change rec[4];

    /* Below the load level, transfers on time: nothing moves, nothing recorded. */
    CHECK(ps_thresholds_environment(&th, 0.6, 1.0, 1, rec, 4) == 0);
    CHECK_NEAR(th.env_offset, 0, 0);
    /* Transfers faster than expected do not lower it either. */
    CHECK(ps_thresholds_environment(&th, 0.6, 0.5, 2, rec, 4) == 0);

    /* Load 0.8: 4 * 0.1 = 0.4; transfers twice as slow: + ln 2. Both classes recorded. */
    CHECK(ps_thresholds_environment(&th, 0.8, 2.0, 3, rec, 4) == 2);
    double e = 0.4 + log(2.0);
    CHECK_NEAR(th.env_offset, e, 1e-12);
    CHECK(rec[0].cause == PS_CAUSE_ENVIRONMENT && rec[1].cls == 1 && rec[0].time == 3);
    CHECK_NEAR(rec[0].old_threshold, 0.9, 1e-12);
    CHECK_NEAR(rec[0].new_threshold, sigmoid(z0 + e), 1e-12); /* 0.96409 */
    CHECK_NEAR(ps_thresholds_effective(&th, 1), sigmoid(z0 + e), 1e-12);
    CHECK_NEAR(rec[0].old_base, z0, 1e-12);
    CHECK_NEAR(rec[0].new_base, z0, 1e-12);

    /* No transfer finished (NaN): congestion keeps its value. */
    CHECK(ps_thresholds_environment(&th, 0.8, NAN, 4, rec, 4) == 0);
    CHECK_NEAR(th.congestion, 2.0, 0);
    /* Saturated: the offset is capped at 2 log-odds. */
    CHECK(ps_thresholds_environment(&th, 1.0, 10.0, 5, rec, 4) == 2);
    CHECK_NEAR(th.env_offset, 2.0, 0);
    CHECK_NEAR(ps_thresholds_effective(&th, 0), sigmoid(z0 + 2.0), 1e-12);
    /* A record buffer of one still updates every class's state. */
    CHECK(ps_thresholds_environment(&th, 0.0, 1.0, 6, rec, 1) == 1);
    CHECK_NEAR(ps_thresholds_effective(&th, 1), 0.9, 1e-12);
    CHECK(ps_thresholds_environment(&th, 0.0, 1.0, 7, rec, 4) == 0);

    /* Changes below history_min_change (0.01) accumulate until they matter. */
    CHECK(ps_thresholds_environment(&th, 0.7015, 1.0, 8, rec, 4) == 0); /* +0.006 */
    CHECK(ps_thresholds_environment(&th, 0.7030, 1.0, 9, rec, 4) == 2); /* +0.012 */
    CHECK_NEAR(rec[0].old_threshold, 0.9, 1e-12);
    CHECK(ps_thresholds_environment(&th, 1.5, 1.0, 10, rec, 4) == PS_EINVAL);

    /* The environment and the base add, and the sum is clamped to the bounds. */
    CHECK(ps_thresholds_environment(&th, 1.0, 100.0, 11, rec, 4) == 2);
    while (ps_thresholds_outcome(&th, 0, PS_OUTCOME_DISRUPTIVE, 12, NULL) == 1) {
    }
    CHECK_NEAR(ps_thresholds_effective(&th, 0), 0.9999, 1e-12);
}

static void test_config(void)
{
    ps_threshold_config cfg = ps_threshold_default_config();
    ps_thresholds th;
    CHECK(ps_thresholds_init(&th, &cfg, 0, err, sizeof err) == PS_EINVAL);
    CHECK(ps_thresholds_init(&th, &cfg, PS_THRESHOLD_MAX_CLASSES + 1, err, sizeof err) ==
          PS_EINVAL);
    cfg.max = 1.0;
    CHECK(ps_thresholds_init(&th, &cfg, 1, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "max < 1") != NULL, "%s", err);
    cfg = ps_threshold_default_config();
    cfg.step_down = -0.1;
    CHECK(ps_threshold_config_check(&cfg, err, sizeof err) == PS_EINVAL);
    cfg = ps_threshold_default_config();
    cfg.initial = 0.4;
    CHECK(ps_threshold_config_check(&cfg, err, sizeof err) == PS_EINVAL);
}

int main(void)
{
    test_outcomes();
    test_environment();
    test_config();
    return test_finish("test_policy_threshold");
}
