/*
 * test_sim_world.c - the simulator's bookkeeping against hand-computed
 * answers (core/sim_world.h, docs/evaluation.md).
 *
 * The small cluster: two processors, one workload (cpu 0.5, mem 0.5 of
 * capacity 1, state 200 bytes at 1 byte/s with 120-second ticks: a
 * transfer takes ceil(200 / 120) = 2 ticks), no offsets, no noise.
 * Processor 0 replays series A, labelled [10, 14]: it fails at tick 15
 * (the tick after the event) and is back at 20 (repair 5). Processor 1
 * replays series B, never labelled. failure_timeout 2, restart 3,
 * horizon 10. A tick is 2 minutes.
 *
 * Metric 0 of A is 0.95 at rows 8..14 (the naive policy's threshold is
 * 0.9, hold 3: it fires at tick 10), metric 0 of B is 0.95 at rows 30..32
 * (fires at 32, with no failure after it: an unnecessary shift).
 */
#include "core/sim_world.h"
#include "kernels/kernels.h"
#include "testutil.h"

#include <string.h>

#define ROWS 60
#define TRAIN 4
#define COLS 2

static float train_a[TRAIN * COLS], test_a[ROWS * COLS];
static float train_b[TRAIN * COLS], test_b[ROWS * COLS];
static uint8_t labels_a[ROWS], labels_b[ROWS];
static ps_sim_series series[2];

static void make_series(void)
{
    for (int i = 0; i < TRAIN; i++) {
        train_a[i * COLS] = train_b[i * COLS] = 0.1f + 0.01f * (float)i;
        train_a[i * COLS + 1] = train_b[i * COLS + 1] = 0.2f;
    }
    for (int i = 0; i < ROWS; i++) {
        test_a[i * COLS] = (i >= 8 && i <= 14) ? 0.95f : 0.1f;
        test_b[i * COLS] = (i >= 30 && i <= 32) ? 0.95f : 0.1f;
        test_a[i * COLS + 1] = test_b[i * COLS + 1] = 0.2f + 0.001f * (float)i;
        labels_a[i] = i >= 10 && i <= 14;
        labels_b[i] = 0;
    }
    series[0] = (ps_sim_series){"A", TRAIN, ROWS, COLS, train_a, test_a, labels_a};
    series[1] = (ps_sim_series){"B", TRAIN, ROWS, COLS, train_b, test_b, labels_b};
}

static ps_sim_config small_config(void)
{
    ps_sim_config c = ps_sim_config_default();
    c.seed = 7;
    c.processors = 2;
    c.workloads = 1;
    c.ticks = 0;
    c.tick_seconds = 120;
    c.max_offset = 0;
    c.noise_sd = 0;
    c.fail_delay = 0;
    c.repair_ticks = 5;
    c.failure_timeout = 2;
    c.restart_ticks = 3;
    c.horizon = 10;
    c.cpu_capacity = c.mem_capacity = 1;
    c.bandwidth = 1;
    c.transfer_fail_prob = 0;
    c.cpu_min = c.cpu_max = 0.5;
    c.mem_min = c.mem_max = 0.5;
    c.state_min = c.state_max = 200;
    c.crit_min = c.crit_max = 1;
    c.layers = 1;
    c.out_degree = 0;
    c.replica_groups = 0;
    return c;
}

/* The small scenario with workload 0 on processor host. */
static int small_scenario(ps_sim_scenario *sc, const ps_sim_config *c, uint32_t n_series,
                          uint32_t host)
{
    char err[256];
    int rc = ps_sim_scenario_build(sc, c, series, n_series, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return rc;
    for (uint32_t w = 0; w < sc->W; w++) {
        rc = ps_sim_scenario_place(sc, w, host, err, sizeof err);
        CHECKF(rc == 0, "%s", err);
    }
    return rc;
}

/* Each workload on exactly one host list, loads = hosted + inbound demand. */
static void check_world(const ps_sim_world *w)
{
    const ps_sim_scenario *sc = w->sc;
    uint32_t *seen = calloc(sc->W ? sc->W : 1, sizeof *seen);
    double *cpu = calloc(sc->P, sizeof *cpu), *mem = calloc(sc->P, sizeof *mem);
    uint64_t total = 0;
    for (uint32_t p = 0; p < sc->P; p++) {
        uint32_t n = 0;
        for (uint32_t wl = w->proc[p].first; wl != PS_SIM_NONE; wl = w->wl[wl].next) {
            seen[wl]++;
            n++;
            CHECK(w->wl[wl].proc == p);
            cpu[p] += sc->work[wl].cpu;
            mem[p] += sc->work[wl].mem;
            if (w->wl[wl].transfer != PS_SIM_NONE) {
                const ps_sim_transfer *t = &w->tr[w->wl[wl].transfer];
                CHECK(t->status == PS_SIM_IN_FLIGHT && t->src == p && t->workload == wl);
                cpu[t->dst] += sc->work[wl].cpu;
                mem[t->dst] += sc->work[wl].mem;
            }
            if (!w->proc[p].alive) CHECK(w->wl[wl].state == PS_SIM_DOWN);
        }
        CHECK(n == w->proc[p].n_hosted);
        total += n;
    }
    CHECK(total == sc->W);
    for (uint32_t wl = 0; wl < sc->W; wl++)
        CHECKF(seen[wl] == 1, "workload %u on %u hosts", wl, seen[wl]);
    for (uint32_t p = 0; p < sc->P; p++) {
        CHECK_NEAR(w->proc[p].cpu_load, cpu[p], 1e-6 * sc->cfg.cpu_capacity);
        CHECK_NEAR(w->proc[p].mem_load, mem[p], 1e-6 * sc->cfg.mem_capacity);
    }
    uint32_t down = 0;
    for (uint32_t wl = 0; wl < sc->W; wl++)
        down += w->wl[wl].state != PS_SIM_RUNNING;
    CHECK(down == w->n_interrupted);
    free(seen);
    free(cpu);
    free(mem);
}

static void test_label_events(void)
{
    uint8_t l[] = {1, 1, 0, 0, 1, 0, 1, 1, 1};
    ps_sim_event ev[4];
    CHECK(ps_sim_label_events(l, 9, NULL) == 3);
    CHECK(ps_sim_label_events(l, 9, ev) == 3);
    CHECK(ev[0].start == 0 && ev[0].end == 1);
    CHECK(ev[1].start == 4 && ev[1].end == 4);
    CHECK(ev[2].start == 6 && ev[2].end == 8);
    CHECK(ps_sim_label_events(l, 0, ev) == 0);
}

static void test_schedule(void)
{
    ps_sim_config c = small_config();
    ps_sim_scenario sc;
    char err[256];
    if (small_scenario(&sc, &c, 2, 0)) return;
    CHECK(sc.T == ROWS);
    CHECK(sc.n_failures == 1);
    CHECK(sc.failures[0].proc == 0 && sc.failures[0].onset == 10 && sc.failures[0].tick == 15 &&
          sc.failures[0].back == 20);
    CHECK(sc.work[0].transfer_ticks == 2);
    CHECK(sc.events_total == 1 && sc.events_failed == 1);
    ps_sim_scenario_free(&sc);

    /* fail_delay: onset + delay. */
    c.fail_delay = 3;
    if (small_scenario(&sc, &c, 2, 0)) return;
    CHECK(sc.n_failures == 1 && sc.failures[0].tick == 13 && sc.failures[0].back == 18);
    ps_sim_scenario_free(&sc);
    c.fail_delay = 0;

    /* Two events close together: the second fails while the first is repaired (merged),
       unless the repair is short enough. */
    uint8_t lab2[ROWS] = {0};
    lab2[3] = lab2[4] = 1;   /* fails at 5 */
    lab2[7] = lab2[8] = 1;   /* fails at 9 */
    lab2[57] = lab2[58] = 1; /* fails at 59 */
    lab2[59] = 0;
    ps_sim_series s2 = series[0];
    s2.labels = lab2;
    c.processors = 1;
    c.repair_ticks = 4; /* back at 9: fails again at 9 -> merged (alive for no tick) */
    CHECK(ps_sim_scenario_build(&sc, &c, &s2, 1, err, sizeof err) == 0);
    CHECK(sc.n_failures == 2 && sc.events_merged == 1 && sc.events_total == 3);
    CHECK(sc.failures[0].tick == 5 && sc.failures[1].tick == 59);
    ps_sim_scenario_free(&sc);
    c.repair_ticks = 3; /* back at 8, alive at 8, fails at 9 */
    CHECK(ps_sim_scenario_build(&sc, &c, &s2, 1, err, sizeof err) == 0);
    CHECK(sc.n_failures == 3 && sc.events_merged == 0);
    ps_sim_scenario_free(&sc);
    c.ticks = 59; /* the third would fail at tick 59: after the end */
    CHECK(ps_sim_scenario_build(&sc, &c, &s2, 1, err, sizeof err) == 0);
    CHECK(sc.n_failures == 2 && sc.events_after_end == 1);
    ps_sim_scenario_free(&sc);

    /* Offsets: tick t replays concatenated row train + t - offset. */
    c = small_config();
    c.processors = 6;
    c.max_offset = TRAIN;
    CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == 0);
    int differ = 0;
    for (uint32_t p = 0; p < 6; p++) {
        uint32_t o = sc.offset[p];
        CHECK(o <= TRAIN);
        CHECK(sc.entity[p] == p % 2);
        differ |= o != sc.offset[0];
        CHECK(ps_sim_history_len(&sc, p) == TRAIN - o);
        const ps_sim_series *s = &series[p % 2];
        float row[COLS];
        for (uint32_t t = 0; t < 20; t++) {
            ps_sim_row(&sc, p, t, row);
            const float *want =
                t < o ? s->train + (TRAIN - o + t) * COLS : s->test + (t - o) * COLS;
            CHECK(row[0] == want[0] && row[1] == want[1]);
        }
        for (uint32_t i = 0; i < TRAIN - o; i++) {
            ps_sim_history_row(&sc, p, i, row);
            CHECK(row[0] == s->train[i * COLS] && row[1] == s->train[i * COLS + 1]);
        }
    }
    CHECK(differ);
    /* Each processor of series A fails at 15 + its offset. */
    uint32_t fa = 0;
    for (uint32_t i = 0; i < sc.n_failures; i++) {
        CHECK(sc.failures[i].proc % 2 == 0);
        CHECK(sc.failures[i].tick == 15 + sc.offset[sc.failures[i].proc]);
        if (i) CHECK(sc.failures[i - 1].tick <= sc.failures[i].tick);
        fa++;
    }
    CHECK(fa == 3);
    ps_sim_scenario_free(&sc);

    /* Noise: deterministic, bounded by 2 sqrt(3) sd, not all zero. */
    c.noise_sd = 0.01f;
    CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == 0);
    int moved = 0;
    for (uint32_t t = 0; t < 50; t++) {
        float a[COLS], b[COLS];
        ps_sim_row(&sc, 1, t, a);
        ps_sim_row(&sc, 1, t, b);
        uint32_t o = sc.offset[1];
        const float *raw = t < o ? train_b + (TRAIN - o + t) * COLS : test_b + (t - o) * COLS;
        for (int k = 0; k < COLS; k++) {
            CHECK(a[k] == b[k]);
            CHECK(fabsf(a[k] - raw[k]) <= 0.0347f);
            moved |= a[k] != raw[k];
        }
    }
    CHECK(moved);
    ps_sim_scenario_free(&sc);

    /* Refusals. */
    c = small_config();
    c.max_offset = TRAIN + 1;
    CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == PS_EINVAL);
    c = small_config();
    c.ticks = ROWS + 1;
    CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == PS_EINVAL);
    c = small_config();
    c.workloads = 5; /* 5 x 0.5 on 2 x 1 */
    CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "fits on no processor") != NULL, "%s", err);
    c = small_config();
    c.workloads = 2;
    CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == 0);
    CHECK(ps_sim_scenario_place(&sc, 0, 1, err, sizeof err) == 0); /* 0.5 + 0.5 fits */
    CHECK(ps_sim_scenario_place(&sc, 1, 1, err, sizeof err) == 0);
    CHECK(ps_sim_scenario_place(&sc, 1, 2, err, sizeof err) == PS_EINVAL);
    ps_sim_scenario_free(&sc);
}

static void test_transfer_ticks(void)
{
    ps_sim_config c = small_config();
    ps_sim_scenario sc;
    char err[256];
    const double state[] = {1, 120, 121, 240, 241, 1200};
    const uint32_t want[] = {1, 1, 2, 2, 3, 10};
    for (int i = 0; i < 6; i++) {
        c.state_min = c.state_max = state[i];
        CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == 0);
        CHECKF(sc.work[0].transfer_ticks == want[i], "state %g: %u ticks", state[i],
               sc.work[0].transfer_ticks);
        ps_sim_scenario_free(&sc);
    }
    c.state_min = c.state_max = 3000;
    c.bandwidth = 10; /* 3000 / (10 x 120) = 2.5 -> 3 */
    CHECK(ps_sim_scenario_build(&sc, &c, series, 2, err, sizeof err) == 0);
    CHECK(sc.work[0].transfer_ticks == 3 && sc.max_transfer_ticks == 3);
    ps_sim_scenario_free(&sc);
}

static void test_reactive(void)
{
    ps_sim_config c = small_config();
    ps_sim_scenario sc;
    char err[256];
    if (small_scenario(&sc, &c, 2, 0)) return;
    ps_sim_policy pol = ps_sim_policy_default(PS_SIM_REACTIVE);
    ps_sim_world w;
    CHECK(ps_sim_world_init(&w, &sc, &pol, err, sizeof err) == 0);
    for (uint32_t t = 0; t < sc.T; t++) {
        CHECK(ps_sim_world_begin_tick(&w) == 1);
        CHECK(ps_sim_world_begin_tick(&w) == PS_EINVAL);
        size_t nd;
        const uint32_t *det = ps_sim_detected(&w, &nd);
        /* Silent from 15; detected after 2 silent ticks, at 17. */
        CHECK(ps_sim_reported(&w, 0) == !(t >= 15 && t < 20));
        if (t >= 15 && t < 20) CHECK(ps_sim_silence(&w, 0) == t - 14);
        CHECK(nd == (t == 17));
        if (nd) CHECK(det[0] == 0);
        float row[COLS];
        CHECK(ps_sim_heartbeat(&w, 0, row) == ps_sim_reported(&w, 0));
        CHECK(ps_sim_world_decide(&w, err, sizeof err) == 0);
        /* Failed over at 17 onto processor 1, restarting until 20. */
        CHECK(w.wl[0].proc == (t >= 17 ? 1u : 0u));
        CHECK(w.wl[0].state == (t < 15   ? PS_SIM_RUNNING
                                : t < 17 ? PS_SIM_DOWN
                                : t < 20 ? PS_SIM_RESTARTING
                                         : PS_SIM_RUNNING));
        check_world(&w);
        ps_sim_world_end_tick(&w);
    }
    CHECK(ps_sim_world_begin_tick(&w) == 0);
    const ps_sim_results *r = ps_sim_world_results(&w);
    /* Interrupted at ticks 15..19: failure_timeout 2 + restart 3 = 5 ticks = 10 minutes. */
    CHECK(r->failures == 1 && r->failures_missed == 1);
    CHECK(r->interruptions == 1);
    CHECK(r->interrupted_ticks == 5);
    CHECK_NEAR(r->interrupted_minutes, 10.0, 1e-12);
    CHECK_NEAR(r->interrupted_crit_minutes, 10.0, 1e-12);
    CHECK(r->failovers == 1 && r->shifts == 0 && r->n_lead == 0);
    CHECK(r->cum_interrupted_minutes[14] == 0);
    CHECK(r->cum_interrupted_minutes[15] == 2);
    CHECK(r->cum_interrupted_minutes[19] == 10);
    CHECK(r->cum_interrupted_minutes[ROWS - 1] == 10);
    ps_sim_world_free(&w);

    /* failure_timeout 0, restart 0: detected at 15 itself, running at once: an
       interruption of no ticks. */
    ps_sim_scenario_free(&sc);
    c.failure_timeout = 0;
    c.restart_ticks = 0;
    if (small_scenario(&sc, &c, 2, 0)) return;
    ps_sim_results res;
    CHECK(ps_sim_run(&sc, &pol, &res, err, sizeof err) == 0);
    CHECK(res.interrupted_ticks == 0 && res.interruptions == 1 && res.failovers == 1);
    ps_sim_results_free(&res);
    ps_sim_scenario_free(&sc);

    /* A repair shorter than the timeout: the workload restarts where it was. */
    c = small_config();
    c.failure_timeout = 8; /* detection would be at 23; back at 20, running at 23 */
    if (small_scenario(&sc, &c, 2, 0)) return;
    CHECK(ps_sim_run(&sc, &pol, &res, err, sizeof err) == 0);
    CHECK(res.interrupted_ticks == 8 && res.failovers == 0 && res.interruptions == 1);
    ps_sim_results_free(&res);
    ps_sim_scenario_free(&sc);
}

static void test_oracle(void)
{
    ps_sim_config c = small_config();
    ps_sim_scenario sc;
    char err[256];
    if (small_scenario(&sc, &c, 2, 0)) return;
    ps_sim_policy pol = ps_sim_policy_default(PS_SIM_ORACLE);
    ps_sim_world w;
    CHECK(ps_sim_world_init(&w, &sc, &pol, err, sizeof err) == 0);
    int ended = 0;
    while (ps_sim_world_begin_tick(&w) == 1) {
        uint32_t t = ps_sim_now(&w);
        CHECK(ps_sim_next_failure(&w, 0) == (t < 15 ? 15u : PS_SIM_NONE));
        CHECK(ps_sim_next_failure(&w, 1) == PS_SIM_NONE);
        size_t n;
        const uint32_t *ends = ps_sim_transfer_ends(&w, &n);
        if (t == 15) {
            /* Started at 13 = 15 - 2 ticks of copy; committed at 15 before the failure. */
            CHECK(n == 1 && ends[0] == 0 && w.tr[0].status == PS_SIM_COMMITTED);
            CHECK(w.tr[0].start == 13 && w.tr[0].end == 15 && w.tr[0].dst == 1);
            const uint32_t *oc = ps_sim_outcomes(&w, &n);
            CHECK(n == 1 && oc[0] == 0 && w.tr[0].outcome == PS_SIM_AVERTED);
            ended = 1;
        } else {
            CHECK(n == 0);
        }
        CHECK(ps_sim_world_decide(&w, err, sizeof err) == 0);
        CHECK(w.n_tr == (t >= 13 ? 1u : 0u));
        check_world(&w);
        ps_sim_world_end_tick(&w);
    }
    CHECK(ended);
    const ps_sim_results *r = ps_sim_world_results(&w);
    CHECK(r->interrupted_ticks == 0 && r->interruptions == 0);
    CHECK(r->failures == 1 && r->failures_averted == 1);
    CHECK(r->n_lead == 1 && r->lead_ticks[0] == 2);
    CHECK(r->shifts == 1 && r->committed == 1 && r->averted == 1);
    CHECK(r->unnecessary == 0 && r->disruptive == 0 && r->pending == 0 && r->failovers == 0);
    ps_sim_world_free(&w);

    /* margin 1: starts at 12, lead time 3. */
    pol.oracle_margin = 1;
    ps_sim_results res;
    CHECK(ps_sim_run(&sc, &pol, &res, err, sizeof err) == 0);
    CHECK(res.failures_averted == 1 && res.n_lead == 1 && res.lead_ticks[0] == 3);
    CHECK(res.interrupted_ticks == 0);
    ps_sim_results_free(&res);
    ps_sim_scenario_free(&sc);
}

static void test_transfer_failure(void)
{
    /* q = 1: the oracle's move fails at 15; the reactive fallback restarts the workload. */
    ps_sim_config c = small_config();
    c.transfer_fail_prob = 1;
    ps_sim_scenario sc;
    char err[256];
    if (small_scenario(&sc, &c, 2, 0)) return;
    ps_sim_policy pol = ps_sim_policy_default(PS_SIM_ORACLE);
    ps_sim_results r;
    CHECK(ps_sim_run(&sc, &pol, &r, err, sizeof err) == 0);
    CHECK(r.shifts == 1 && r.failed == 1 && r.committed == 0);
    CHECK(r.disruptive == 1 && r.averted == 0 && r.unnecessary == 0);
    CHECK(r.failures == 1 && r.failures_partial == 1 && r.failures_averted == 0);
    CHECK(r.failovers == 1);
    CHECK(r.interrupted_ticks == 5 && r.interruptions == 1);
    CHECK_NEAR(r.interrupted_minutes, 10.0, 1e-12);
    ps_sim_results_free(&r);
    ps_sim_scenario_free(&sc);
}

static void test_naive(void)
{
    ps_sim_config c = small_config();
    ps_sim_scenario sc;
    char err[256];
    if (small_scenario(&sc, &c, 2, 0)) return;
    ps_sim_policy pol = ps_sim_policy_default(PS_SIM_NAIVE);
    pol.naive_cpu_col = 0;
    pol.naive_mem_col = -1;
    pol.naive_threshold = 0.9f;
    pol.naive_hold = 3;
    ps_sim_world w;
    CHECK(ps_sim_world_init(&w, &sc, &pol, err, sizeof err) == 0);
    ps_sim_results r;
    memset(&r, 0, sizeof r);
    int k;
    while ((k = ps_sim_world_step(&w, err, sizeof err)) == 1)
        check_world(&w);
    CHECK(k == 0);
    const ps_sim_results *rr = ps_sim_world_results(&w);
    /* Processor 0 is hot at 8, 9, 10: shift at 10, committed at 12, failure at 15:
       averted, lead 5. Processor 1 is hot at 30, 31, 32: shift back to 0 at 32, no
       failure by 42: unnecessary, decided at 43 (after the run: pending). */
    CHECK(rr->shifts == 2 && rr->committed == 2);
    CHECK(w.tr[0].start == 10 && w.tr[0].src == 0 && w.tr[0].dst == 1);
    CHECK(w.tr[0].outcome == PS_SIM_AVERTED && w.tr[0].outcome_tick == 15);
    CHECK(w.tr[1].start == 32 && w.tr[1].src == 1 && w.tr[1].dst == 0);
    CHECK(w.tr[1].outcome == PS_SIM_UNNECESSARY && w.tr[1].outcome_tick == 43);
    CHECK(rr->averted == 1 && rr->unnecessary == 1 && rr->disruptive == 0);
    CHECK(rr->failures_averted == 1 && rr->n_lead == 1 && rr->lead_ticks[0] == 5);
    CHECK(rr->interrupted_ticks == 0 && rr->failovers == 0);
    CHECK(rr->cum_unnecessary[42] == 0 && rr->cum_unnecessary[43] == 1);
    CHECK(w.wl[0].proc == 0);
    ps_sim_world_free(&w);
    ps_sim_scenario_free(&sc);
}

/* An external policy that plays a script. */
typedef struct action {
    uint32_t tick, wl, dest;
    int failover;
    int rc;
    uint32_t id;
} action;

typedef struct script {
    action *a;
    size_t n;
} script;

static int play(void *ctx, ps_sim_world *w, char *err, size_t errlen)
{
    script *s = ctx;
    for (size_t i = 0; i < s->n; i++) {
        action *a = &s->a[i];
        if (a->tick != ps_sim_now(w)) continue;
        a->id = PS_SIM_NONE;
        a->rc = a->failover ? ps_sim_failover(w, a->wl, a->dest, err, errlen)
                            : ps_sim_shift(w, a->wl, a->dest, &a->id, err, errlen);
    }
    return 0;
}

static void run_script(const ps_sim_scenario *sc, script *s, ps_sim_results *r)
{
    char err[256];
    ps_sim_policy pol = ps_sim_policy_default(PS_SIM_EXTERNAL);
    pol.decide = play;
    pol.ctx = s;
    pol.reactive_fallback = 1;
    ps_sim_world w;
    CHECK(ps_sim_world_init(&w, sc, &pol, err, sizeof err) == 0);
    while (ps_sim_world_step(&w, err, sizeof err) == 1)
        check_world(&w);
    *r = *ps_sim_world_results(&w);
    /* Keep the counters, drop the arrays. */
    r->lead_ticks = NULL;
    r->cum_interrupted_minutes = NULL;
    r->cum_unnecessary = NULL;
    ps_sim_world_free(&w);
}

static void test_external(void)
{
    ps_sim_config c = small_config();
    ps_sim_scenario sc;
    ps_sim_results r;

    /* The source fails mid-copy (started 14, due 16, failure 15): restarted on the
       destination at 15, running at 18: 3 interrupted ticks, no detection needed. */
    if (small_scenario(&sc, &c, 2, 0)) return;
    action a1[] = {{14, 0, 1, 0, 1, 0}};
    script s1 = {a1, 1};
    run_script(&sc, &s1, &r);
    CHECK(a1[0].rc == 0 && a1[0].id == 0);
    CHECK(r.source_failed == 1 && r.averted == 1 && r.failures_partial == 1);
    CHECK(r.interrupted_ticks == 3 && r.interruptions == 1 && r.failovers == 0);

    /* Refusals: out of range, own host, already in transfer, failed host. */
    action a2[] = {
        {2, 5, 1, 0, 1, 0},  /* no workload 5 */
        {2, 0, 0, 0, 1, 0},  /* on 0 already */
        {3, 0, 1, 0, 1, 0},  /* fine: due at 5 */
        {4, 0, 1, 0, 1, 0},  /* in transfer */
        {4, 0, 1, 1, 1, 0},  /* failover while in transfer */
        {16, 0, 0, 0, 1, 0}, /* on 1 (committed at 5): to failed 0 ends at once */
        {17, 0, 0, 1, 1, 0}, /* failover to a failed processor */
    };
    script s2 = {a2, 7};
    run_script(&sc, &s2, &r);
    CHECK(a2[0].rc == PS_EINVAL);
    CHECK(a2[1].rc == PS_SIM_EREFUSED);
    CHECK(a2[2].rc == 0);
    CHECK(a2[3].rc == PS_SIM_EREFUSED && a2[4].rc == PS_SIM_EREFUSED);
    CHECK(a2[5].rc == 0 && a2[5].id == 1);
    CHECK(a2[6].rc == PS_SIM_EREFUSED);
    CHECK(r.shifts == 2 && r.committed == 1 && r.dest_failed == 1);
    /* The first left 0 at 3; 0 fails at 15 within H = 10 of 3? 12 > 10: unnecessary,
       decided at 14. The second is disruptive. 0 had nothing on it: an idle failure. */
    CHECK(r.unnecessary == 1 && r.disruptive == 1 && r.averted == 0);
    CHECK(r.failures_idle == 1 && r.interrupted_ticks == 0);
    ps_sim_scenario_free(&sc);

    /* The destination fails mid-copy: the workload stays on its source, running. */
    if (small_scenario(&sc, &c, 2, 1)) return;
    action a3[] = {{14, 0, 0, 0, 1, 0}};
    script s3 = {a3, 1};
    run_script(&sc, &s3, &r);
    CHECK(a3[0].rc == 0 && r.dest_failed == 1 && r.disruptive == 1);
    CHECK(r.interrupted_ticks == 0 && r.failures_idle == 1);
    ps_sim_scenario_free(&sc);

    /* Driven from outside, no callback, no fallback: nothing moves the workload; it
       restarts when its host returns at 20, running at 23: 8 interrupted ticks. */
    if (small_scenario(&sc, &c, 2, 0)) return;
    {
        char err2[256];
        ps_sim_policy pol = ps_sim_policy_default(PS_SIM_EXTERNAL);
        pol.reactive_fallback = 0;
        ps_sim_world w;
        CHECK(ps_sim_world_init(&w, &sc, &pol, err2, sizeof err2) == 0);
        CHECK(ps_sim_shift(&w, 0, 1, NULL, err2, sizeof err2) == PS_EINVAL); /* no tick */
        while (ps_sim_world_begin_tick(&w) == 1) {
            size_t nd;
            ps_sim_detected(&w, &nd);
            CHECK(nd == (ps_sim_now(&w) == 17));
            CHECK(ps_sim_world_decide(&w, err2, sizeof err2) == 0);
            ps_sim_world_end_tick(&w);
        }
        const ps_sim_results *rr = ps_sim_world_results(&w);
        CHECK(rr->interrupted_ticks == 8 && rr->failovers == 0 && rr->failures_missed == 1);
        ps_sim_world_free(&w);
    }
    ps_sim_scenario_free(&sc);

    /* Overload: two workloads of 0.6 on processors of 1, no failures (series B only). */
    c.workloads = 2;
    c.cpu_min = c.cpu_max = 0.6;
    char err[256];
    CHECK(ps_sim_scenario_build(&sc, &c, series + 1, 1, err, sizeof err) == 0);
    CHECK(ps_sim_scenario_place(&sc, 0, 0, err, sizeof err) == 0);
    CHECK(ps_sim_scenario_place(&sc, 1, 1, err, sizeof err) == 0);
    CHECK(ps_sim_scenario_place(&sc, 1, 0, err, sizeof err) == PS_EINVAL); /* no room */
    action a4[] = {{2, 0, 1, 0, 1, 0}};
    script s4 = {a4, 1};
    run_script(&sc, &s4, &r);
    CHECK(a4[0].rc == 0 && r.committed == 1 && r.overloaded == 1 && r.disruptive == 1);
    CHECK(r.failures == 0 && r.interrupted_ticks == 0);
    ps_sim_scenario_free(&sc);
}

static int same_results(const ps_sim_results *a, const ps_sim_results *b)
{
    if (a->failures != b->failures || a->failures_averted != b->failures_averted ||
        a->failures_partial != b->failures_partial || a->failures_missed != b->failures_missed ||
        a->interruptions != b->interruptions || a->interrupted_ticks != b->interrupted_ticks ||
        a->interrupted_crit_minutes != b->interrupted_crit_minutes || a->shifts != b->shifts ||
        a->committed != b->committed || a->failed != b->failed ||
        a->dest_failed != b->dest_failed || a->source_failed != b->source_failed ||
        a->averted != b->averted || a->unnecessary != b->unnecessary ||
        a->disruptive != b->disruptive || a->failovers != b->failovers || a->n_lead != b->n_lead)
        return 0;
    if (a->n_lead && memcmp(a->lead_ticks, b->lead_ticks, a->n_lead * sizeof *a->lead_ticks))
        return 0;
    for (uint32_t t = 0; t < a->ticks; t++)
        if (a->cum_interrupted_minutes[t] != b->cum_interrupted_minutes[t] ||
            a->cum_unnecessary[t] != b->cum_unnecessary[t])
            return 0;
    return 1;
}

/* A mid-size cluster over hand-made series with many events. */
#define MROWS 400
#define MSERIES 3
static float m_train[MSERIES][50 * 3], m_test[MSERIES][MROWS * 3];
static uint8_t m_lab[MSERIES][MROWS];
static ps_sim_series m_series[MSERIES];

static void make_mid_series(void)
{
    for (int e = 0; e < MSERIES; e++) {
        for (int i = 0; i < 50 * 3; i++)
            m_train[e][i] = 0.3f;
        for (int i = 0; i < MROWS; i++) {
            int ev = (i % (60 + 17 * e)) >= 50 && (i % (60 + 17 * e)) < 50 + 3 + e;
            m_lab[e][i] = (uint8_t)ev;
            m_test[e][i * 3] = ev || (i % (60 + 17 * e)) >= 47 ? 0.95f : 0.3f;
            m_test[e][i * 3 + 1] = (i % 97) < 4 ? 0.97f : 0.4f; /* false alarms */
            m_test[e][i * 3 + 2] = 0.5f;
        }
        m_series[e] = (ps_sim_series){"m", 50, MROWS, 3, m_train[e], m_test[e], m_lab[e]};
    }
}

static ps_sim_config mid_config(uint64_t seed)
{
    ps_sim_config c = ps_sim_config_default();
    c.seed = seed;
    c.processors = 50;
    c.workloads = 300;
    c.max_offset = 40;
    c.tick_seconds = 60;
    c.repair_ticks = 6;
    c.failure_timeout = 1;
    c.restart_ticks = 2;
    c.horizon = 12;
    c.transfer_fail_prob = 0.05;
    c.bandwidth = 1e8;
    c.state_min = 1e8;
    c.state_max = 2e10; /* 1 to 4 ticks */
    c.crit_min = 1;
    c.crit_max = 5;
    c.layers = 4;
    c.out_degree = 2;
    c.replica_groups = 20;
    c.replica_size = 3;
    return c;
}

static void test_graph_and_placement(void)
{
    ps_sim_config c = mid_config(11);
    ps_sim_scenario sc;
    char err[256];
    CHECK(ps_sim_scenario_build(&sc, &c, m_series, MSERIES, err, sizeof err) == 0);
    /* Placement: capacity and anti-affinity. */
    double *cpu = calloc(sc.P, sizeof *cpu), *mem = calloc(sc.P, sizeof *mem);
    for (uint32_t w = 0; w < sc.W; w++) {
        CHECK(sc.work[w].proc < sc.P);
        cpu[sc.work[w].proc] += sc.work[w].cpu;
        mem[sc.work[w].proc] += sc.work[w].mem;
        CHECK(sc.work[w].cpu >= c.cpu_min && sc.work[w].cpu <= c.cpu_max);
        CHECK(sc.work[w].state_bytes >= c.state_min * (1 - 1e-12) &&
              sc.work[w].state_bytes <= c.state_max * (1 + 1e-12));
        CHECK(sc.work[w].transfer_ticks >= 1 && sc.work[w].transfer_ticks <= 4);
    }
    for (uint32_t p = 0; p < sc.P; p++)
        CHECK(cpu[p] <= c.cpu_capacity * (1 + 1e-9) && mem[p] <= c.mem_capacity * (1 + 1e-9));
    free(cpu);
    free(mem);
    uint32_t grouped = 0;
    for (uint32_t g = 1; g <= c.replica_groups; g++) {
        CHECK(sc.group_start[g + 1] - sc.group_start[g] == c.replica_size);
        for (uint32_t i = sc.group_start[g]; i < sc.group_start[g + 1]; i++) {
            uint32_t a = sc.group_member[i];
            CHECK(sc.work[a].group == g);
            grouped++;
            for (uint32_t j = i + 1; j < sc.group_start[g + 1]; j++)
                CHECK(sc.work[a].proc != sc.work[sc.group_member[j]].proc);
        }
    }
    for (uint32_t w = 0; w < sc.W; w++)
        grouped -= sc.work[w].group != 0;
    CHECK(grouped == 0);
    /* The DAG: layer l -> l + 1 only, CSR both ways, ascending, no duplicates. */
    CHECK(sc.n_edges > 0.95 * c.out_degree * c.workloads && sc.n_edges <= 600);
    uint64_t in_total = 0;
    for (uint32_t a = 0; a < sc.W; a++) {
        for (uint32_t i = sc.out_start[a]; i < sc.out_start[a + 1]; i++) {
            uint32_t b = sc.out[i];
            CHECK(sc.work[b].layer == sc.work[a].layer + 1);
            if (i > sc.out_start[a]) CHECK(sc.out[i - 1] < b);
            int found = 0;
            for (uint32_t j = sc.in_start[b]; j < sc.in_start[b + 1]; j++)
                found += sc.in[j] == a;
            CHECK(found == 1);
        }
        in_total += sc.in_start[a + 1] - sc.in_start[a];
        if (sc.work[a].layer == c.layers - 1) CHECK(sc.out_start[a + 1] == sc.out_start[a]);
    }
    CHECK(in_total == sc.n_edges);
    CHECK(sc.n_failures > 50);

    /* Every policy keeps every workload on exactly one processor, every tick. */
    for (int k = 0; k < 4; k++) {
        ps_sim_policy pol = ps_sim_policy_default((ps_sim_policy_kind)k);
        pol.naive_cpu_col = 0;
        pol.naive_mem_col = 1;
        pol.naive_threshold = 0.9f;
        pol.naive_hold = 2;
        ps_sim_world w;
        CHECK(ps_sim_world_init(&w, &sc, &pol, err, sizeof err) == 0);
        int step;
        while ((step = ps_sim_world_step(&w, err, sizeof err)) == 1)
            check_world(&w);
        CHECKF(step == 0, "%s", err);
        const ps_sim_results *r = ps_sim_world_results(&w);
        CHECK(r->failures == sc.n_failures);
        CHECK(r->failures ==
              r->failures_averted + r->failures_partial + r->failures_missed + r->failures_idle);
        CHECK(r->shifts == r->averted + r->unnecessary + r->disruptive + r->pending);
        CHECK(r->shifts ==
              r->committed + r->failed + r->dest_failed + r->source_failed + r->in_flight);
        CHECK(r->n_lead == r->failures_averted);
        if (k == PS_SIM_REACTIVE) CHECK(r->shifts == 0 && r->failures_missed > 0);
        if (k == PS_SIM_ORACLE) {
            CHECK(r->unnecessary == 0 && r->failures_averted > r->failures_missed);
            for (uint64_t i = 0; i < r->n_lead; i++)
                CHECK(r->lead_ticks[i] >= 1 && r->lead_ticks[i] <= sc.max_transfer_ticks);
        }
        if (k == PS_SIM_NAIVE) CHECK(r->shifts > 0 && r->unnecessary > 0);
        ps_sim_world_free(&w);
    }
    ps_sim_scenario_free(&sc);
}

static void test_determinism(void)
{
    char err[256];
    ps_sim_scenario a, b, d;
    ps_sim_config ca = mid_config(5), cd = mid_config(6);
    CHECK(ps_sim_scenario_build(&a, &ca, m_series, MSERIES, err, sizeof err) == 0);
    CHECK(ps_sim_scenario_build(&b, &ca, m_series, MSERIES, err, sizeof err) == 0);
    CHECK(ps_sim_scenario_build(&d, &cd, m_series, MSERIES, err, sizeof err) == 0);
    int same_place = 1, diff_place = 0;
    for (uint32_t w = 0; w < a.W; w++) {
        same_place &= a.work[w].proc == b.work[w].proc && a.work[w].cpu == b.work[w].cpu;
        diff_place |= a.work[w].proc != d.work[w].proc;
    }
    CHECK(same_place && diff_place);
    CHECK(a.n_failures == b.n_failures && a.n_edges == b.n_edges);
    CHECK(!memcmp(a.failures, b.failures, a.n_failures * sizeof *a.failures));
    CHECK(!memcmp(a.offset, b.offset, a.P * sizeof *a.offset));
    for (int k = 0; k < 3; k++) {
        ps_sim_policy pol = ps_sim_policy_default((ps_sim_policy_kind)k);
        ps_sim_results ra, rb, rd;
        CHECK(ps_sim_run(&a, &pol, &ra, err, sizeof err) == 0);
        CHECK(ps_sim_run(&b, &pol, &rb, err, sizeof err) == 0);
        CHECK(ps_sim_run(&d, &pol, &rd, err, sizeof err) == 0);
        CHECKF(same_results(&ra, &rb), "policy %s", ps_sim_policy_name(pol.kind));
        CHECKF(!same_results(&ra, &rd), "policy %s", ps_sim_policy_name(pol.kind));
        ps_sim_results_free(&ra);
        ps_sim_results_free(&rb);
        ps_sim_results_free(&rd);
    }
    ps_sim_scenario_free(&a);
    ps_sim_scenario_free(&b);
    ps_sim_scenario_free(&d);
}

int main(void)
{
    make_series();
    make_mid_series();
    test_label_events();
    test_schedule();
    test_transfer_ticks();
    test_reactive();
    test_oracle();
    test_transfer_failure();
    test_naive();
    test_external();
    test_graph_and_placement();
    test_determinism();
    return test_finish("test_sim_world");
}
