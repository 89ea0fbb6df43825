/*
 * test_scorer_state.c - snapshots of one processor (scorer.h: state export,
 * import, forget).
 *
 * A scorer restored from every processor's snapshot continues bit for bit
 * like the one that never stopped, through activations, unstable ticks and
 * seasonal rings. A truncated snapshot, at every length, is refused and
 * changes nothing; random damage never crashes and is refused or gives a
 * state that scores; a snapshot from another configuration or model is
 * refused with a message that names the difference. A forgotten processor
 * warms up again exactly like a new one.
 */
#include "state_fixture.h"

#include <stdlib.h>

static ps_score out_a[FIX_ROWS][FIX_P], out_b[FIX_ROWS][FIX_P];

/* Run A to the split, restore B from it, run both on. */
static void test_continuation(void)
{
    ps_scorer_config c = fix_config();
    ps_scorer *a = fix_scorer(&c);
    ps_scorer *b = fix_scorer(&c);
    if (!a || !b) goto out;
    for (int r = 0; r < FIX_SPLIT; r++)
        fix_tick(a, r, out_a[r]);
    CHECK(ps_scorer_proc_state(a, 0) == PS_PROC_SCORED);
    CHECK(ps_scorer_proc_state(a, 3) == PS_PROC_WARMING);
    CHECK(ps_scorer_proc_state(a, 5) == PS_PROC_WARMING);
    /* B's slots are not where A's were: slot p of A goes to p of B, but B
     * first ran something else on them, which the import must replace. */
    for (int r = 0; r < 130; r++)
        fix_tick(b, r + 200, out_b[r]);
    for (uint32_t p = 0; p < FIX_P; p++) {
        size_t len;
        uint8_t *buf = fix_export(a, p, &len);
        char err[256] = "";
        CHECKF(ps_scorer_state_import(b, p, buf, len, err, sizeof err) == 0, "processor %u: %s", p,
               err);
        CHECKF(fix_state_is(b, p, buf, len), "processor %u re-exports differently", p);
        free(buf);
    }
    int diverged = -1;
    for (int r = FIX_SPLIT; r < FIX_ROWS; r++) {
        fix_tick(a, r, out_a[r]);
        fix_tick(b, r, out_b[r]);
        for (int p = 0; p < FIX_P && diverged < 0; p++)
            if (!fix_same(&out_a[r][p], &out_b[r][p])) diverged = r * FIX_P + p;
    }
    CHECKF(diverged < 0, "outputs differ first at tick %d, processor %d", diverged / FIX_P,
           diverged % FIX_P);
    for (uint32_t p = 0; p < FIX_P; p++) {
        size_t len;
        uint8_t *buf = fix_export(a, p, &len);
        CHECKF(fix_state_is(b, p, buf, len), "processor %u ends in another state", p);
        CHECK(ps_scorer_proc_state(a, p) == PS_PROC_SCORED);
        free(buf);
    }
    /* The workload does exercise what it claims: scores that move, the
     * spikes unstable, the seasonal ring of the periodic metric full (its
     * values make the snapshot larger than without the term). */
    double top = 0;
    for (int r = FIX_SPLIT; r < FIX_ROWS; r++)
        top = fmax(top, out_a[r][1].pfp);
    CHECKF(top > 0.999, "the spike reached PFP %g only", top);
    ps_scorer_config c0 = c;
    c0.seasonal_weight = 0;
    ps_scorer *plain = fix_scorer(&c0);
    if (plain) {
        for (int r = 0; r < FIX_SPLIT; r++)
            fix_tick(plain, r, out_b[r]);
        size_t with = ps_scorer_state_size(a, 0), without = ps_scorer_state_size(plain, 0);
        CHECKF(with >= without + 4 + 28 + (3 * FIX_PERIOD + 1) * 4, "%zu vs %zu bytes", with,
               without);
    }
    ps_scorer_free(plain);
out:
    ps_scorer_free(a);
    ps_scorer_free(b);
}

/* A scorer at the split and one processor's snapshot from it. */
static ps_scorer *at_split(void)
{
    ps_scorer_config c = fix_config();
    ps_scorer *s = fix_scorer(&c);
    ps_score o[FIX_P];
    for (int r = 0; s && r < FIX_SPLIT; r++)
        fix_tick(s, r, o);
    return s;
}

static void test_truncated(void)
{
    ps_scorer *a = at_split(), *b = at_split();
    if (!a || !b) goto out;
    /* Processor 0 ready, 3 warming; each cut into the other's slot, so an
     * accepted cut would show as a changed state. */
    uint32_t from[2] = {0, 3}, into[2] = {3, 0};
    for (int i = 0; i < 2; i++) {
        size_t len, before_len;
        uint8_t *buf = fix_export(a, from[i], &len);
        uint8_t *before = fix_export(b, into[i], &before_len);
        size_t accepted = 0, unchanged = 0, named = 0;
        for (size_t cut = 0; cut < len; cut++) {
            char err[256] = "";
            int rc = ps_scorer_state_import(b, into[i], buf, cut, err, sizeof err);
            accepted += rc != PS_EINVAL;
            named += err[0] != '\0';
            unchanged += fix_state_is(b, into[i], before, before_len);
            if (cut == len / 2 && i == 0)
                CHECKF(strstr(err, "truncated") != NULL, "message: %s", err);
        }
        CHECKF(accepted == 0, "%zu cuts of processor %u's %zu bytes accepted", accepted, from[i],
               len);
        CHECKF(unchanged == len, "%zu of %zu refused cuts changed the state", len - unchanged, len);
        CHECK(named == len);
        free(buf);
        free(before);
    }
out:
    ps_scorer_free(a);
    ps_scorer_free(b);
}

/* Damaged snapshots: refused without a trace, or accepted and scoring. */
static void test_damage(void)
{
    ps_scorer *a = at_split(), *b = at_split();
    if (!a || !b) goto out;
    ps_rng rng;
    ps_rng_seed(&rng, 7);
    size_t refused = 0, accepted = 0, trials = 0;
    for (uint32_t from = 0; from < 4; from++) {
        size_t len, before_len;
        uint8_t *buf = fix_export(a, from, &len);
        uint8_t *copy = malloc(len);
        uint32_t into = 2;
        uint8_t *before = fix_export(b, into, &before_len);
        for (int t = 0; t < 1500; t++, trials++) {
            memcpy(copy, buf, len);
            int flips = 1 + (int)(ps_rng_next(&rng) % 3);
            for (int f = 0; f < flips; f++) {
                size_t at = (size_t)(ps_rng_next(&rng) % len);
                /* Single bits mostly; sometimes a whole random byte. */
                if (ps_rng_next(&rng) % 4)
                    copy[at] ^= (uint8_t)(1u << (ps_rng_next(&rng) % 8));
                else
                    copy[at] = (uint8_t)ps_rng_next(&rng);
            }
            char err[256] = "";
            int rc = ps_scorer_state_import(b, into, copy, len, err, sizeof err);
            if (rc) {
                refused++;
                CHECKF(rc == PS_EINVAL && err[0], "rc %d, message '%s'", rc, err);
                CHECK(fix_state_is(b, into, before, before_len));
                continue;
            }
            accepted++;
            /* An accepted state is one the scorer can run on. */
            char e2[256];
            for (int r = 0; r < 3; r++) {
                ps_score o;
                float x[FIX_K] = {50, 20, 7};
                rc = ps_scorer_tick(b, 1, &into, NULL, x, &o, e2, sizeof e2);
                if (rc == 0)
                    CHECKF(!isnan(o.score) && o.pfp >= 0 && o.pfp <= 1 && o.top_metric < FIX_K,
                           "score %g pfp %g top %d", (double)o.score, o.pfp, o.top_metric);
            }
            /* Back to the undamaged state for the next trial. */
            CHECK(ps_scorer_state_import(b, into, before, before_len, e2, sizeof e2) == 0);
        }
        free(buf);
        free(copy);
        free(before);
    }
    printf("damage: %zu trials, %zu refused, %zu accepted\n", trials, refused, accepted);
    CHECK(refused > 0 && accepted > 0);
out:
    ps_scorer_free(a);
    ps_scorer_free(b);
}

/* A snapshot from scorer a imported into one built with c: refused, naming `what`. */
static void expect_refused(const uint8_t *buf, size_t len, const ps_scorer_config *c,
                           const char *what, int other_model)
{
    ps_model m2;
    const ps_model *m = &fix_model;
    if (other_model) {
        CHECK(ps_model_init(&m2, &fix_model.shape) == 0);
        ps_model_init_random(&m2, 12);
        m = &m2;
    }
    char err[256] = "";
    ps_scorer *s = ps_scorer_create(fix_be, m, c, err, sizeof err);
    CHECKF(s != NULL, "%s", err);
    if (s) {
        err[0] = '\0';
        CHECK(ps_scorer_state_check(s, buf, len, err, sizeof err) == PS_EINVAL);
        CHECK(ps_scorer_state_import(s, 0, buf, len, err, sizeof err) == PS_EINVAL);
        CHECKF(strstr(err, what) != NULL, "expected '%s' in: %s", what, err);
        CHECK(ps_scorer_proc_state(s, 0) == PS_PROC_WARMING);
    }
    ps_scorer_free(s);
    if (other_model) ps_model_free(&m2);
}

static void test_mismatch(void)
{
    ps_scorer *a = at_split();
    if (!a) return;
    size_t len;
    uint8_t *buf = fix_export(a, 0, &len);
    ps_scorer_config c = fix_config();
    c.metrics = 2;
    expect_refused(buf, len, &c, "metrics", 0);
    c = fix_config();
    c.warmup = 100;
    expect_refused(buf, len, &c, "warm-up", 0);
    c = fix_config();
    c.arima_p = 1;
    expect_refused(buf, len, &c, "ARIMA(2,0,1)", 0);
    c = fix_config();
    c.lstm_weight = 1;
    expect_refused(buf, len, &c, "models", 0);
    c = fix_config();
    c.smoothing = 0.25f;
    expect_refused(buf, len, &c, "fingerprint", 0);
    c = fix_config();
    c.evt.window = 128;
    expect_refused(buf, len, &c, "fingerprint", 0);
    c = fix_config();
    expect_refused(buf, len, &c, "fingerprint", 1);
    /* More processors is the same configuration: the server may grow. */
    c.processors = 2 * FIX_P;
    char err[256] = "";
    ps_scorer *big = fix_scorer(&c);
    if (big) CHECKF(ps_scorer_state_import(big, 9, buf, len, err, sizeof err) == 0, "%s", err);
    ps_scorer_free(big);
    free(buf);
    ps_scorer_free(a);
}

/* A forgotten processor is a new one: same outputs as in a fresh scorer. */
static void test_forget(void)
{
    ps_scorer_config c = fix_config();
    ps_scorer *a = at_split(), *fresh = fix_scorer(&c);
    if (!a || !fresh) goto out;
    size_t len;
    uint8_t *never = fix_export(fresh, 4, &len);
    CHECK(ps_scorer_forget(a, 0) == 0);
    CHECK(ps_scorer_forget(a, 3) == 0); /* warming: its rows go */
    CHECK(ps_scorer_forget(a, 5) == 0); /* its shorter warm-up too */
    CHECK(ps_scorer_forget(a, FIX_P) == PS_EINVAL);
    for (uint32_t p = 0; p < FIX_P; p++)
        if (p != 1 && p != 2) CHECKF(fix_state_is(a, p, never, len), "processor %u", p);
    CHECK(ps_scorer_proc_state(a, 0) == PS_PROC_WARMING);
    /* Processor 0 of a gets the rows processor 0 of fresh gets from tick 0. */
    char err[256];
    int diverged = -1;
    uint32_t p = 0;
    for (int r = 0; r < 2 * FIX_WARM; r++) {
        ps_score oa, of;
        CHECKF(ps_scorer_tick(a, 1, &p, NULL, fix_x[0][r], &oa, err, sizeof err) == 0, "%s", err);
        CHECKF(ps_scorer_tick(fresh, 1, &p, NULL, fix_x[0][r], &of, err, sizeof err) == 0, "%s",
               err);
        if (r < FIX_WARM) CHECK(oa.state == PS_PROC_WARMING);
        if (diverged < 0 && !fix_same(&oa, &of)) diverged = r;
    }
    CHECKF(diverged < 0, "the forgotten processor differs from a new one at tick %d", diverged);
    free(never);
out:
    ps_scorer_free(a);
    ps_scorer_free(fresh);
}

int main(void)
{
    fix_setup();
    test_continuation();
    test_truncated();
    test_damage();
    test_mismatch();
    test_forget();
    fix_teardown();
    return test_finish("test_scorer_state");
}
