/*
 * test_scorer.c - the scoring pipeline's contracts, not its tuning.
 *
 * Online: changing rows after t never changes the output up to t. A refused
 * tick leaves no trace. Warm-up rows report WARMING. A spike after warm-up
 * scores far above the healthy rows around it, and the metric it hit is the
 * one reported. Processors scored together get what they get alone.
 */
#include "core/rng.h"
#include "core/scorer.h"
#include "testutil.h"

#include <string.h>

enum { K = 3, ROWS = 400, WARM = 120 };

static ps_model model;
static ps_backend *be;

/* A healthy series: a slow wave per metric plus noise. */
static void make_rows(float *x, size_t rows, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < K; k++)
            x[r * K + k] = (float)(10.0 * (double)(k + 1) + sin((double)r / 9.0 + (double)k) +
                                   0.3 * ps_rng_normal(&rng));
}

static ps_scorer *make(size_t procs, float lstm_weight)
{
    char err[256];
    ps_scorer_config c = ps_scorer_default_config();
    c.processors = procs;
    c.metrics = K;
    c.warmup = WARM;
    c.lstm_weight = lstm_weight;
    ps_scorer *s = ps_scorer_create(be, &model, &c, err, sizeof err);
    CHECKF(s != NULL, "%s", err);
    return s;
}

/* Score rows of one processor; out gets ROWS scores. */
static void run(ps_scorer *s, const float *x, size_t rows, ps_score *out)
{
    char err[256];
    uint32_t p = 0;
    for (size_t r = 0; r < rows; r++)
        CHECKF(ps_scorer_tick(s, 1, &p, NULL, x + r * K, &out[r], err, sizeof err) == 0, "%s", err);
}

static void test_online(float weight)
{
    static float a[ROWS * K], b[ROWS * K];
    static ps_score sa[ROWS], sb[ROWS];
    make_rows(a, ROWS, 1);
    memcpy(b, a, sizeof a);
    size_t t = 250;
    for (size_t i = (t + 1) * K; i < ROWS * K; i++)
        b[i] += 5.0f * (float)(i % 7);
    ps_scorer *s1 = make(1, weight), *s2 = make(1, weight);
    run(s1, a, ROWS, sa);
    run(s2, b, ROWS, sb);
    int same = 1;
    for (size_t r = 0; r <= t; r++)
        same &= sa[r].score == sb[r].score && sa[r].pfp == sb[r].pfp &&
                sa[r].top_metric == sb[r].top_metric && sa[r].state == sb[r].state;
    CHECKF(same, "lstm weight %g: rows <= t changed when later rows did", (double)weight);
    int differs = 0;
    for (size_t r = t + 1; r < ROWS; r++)
        differs |= sa[r].pfp != sb[r].pfp;
    CHECK(differs);
    for (size_t r = 0; r < WARM; r++)
        CHECK(sa[r].state == PS_PROC_WARMING && sa[r].pfp == 0 && sa[r].top_metric == -1);
    for (size_t r = WARM; r < ROWS; r++)
        CHECK(sa[r].state == PS_PROC_SCORED && sa[r].pfp >= 0 && sa[r].pfp <= 1);
    ps_scorer_free(s1);
    ps_scorer_free(s2);
}

static void test_spike(void)
{
    static float x[ROWS * K];
    static ps_score out[ROWS];
    make_rows(x, ROWS, 2);
    size_t spike = 300;
    x[spike * K + 2] += 15.0f; /* about 50 healthy noise scales on metric 2 */
    ps_scorer *s = make(1, 0.5f);
    run(s, x, ROWS, out);
    double healthy_max = 0;
    for (size_t r = WARM + 20; r < spike; r++)
        if (out[r].score > healthy_max) healthy_max = out[r].score;
    CHECKF(out[spike].score > 10 * healthy_max, "spike %g vs healthy max %g",
           (double)out[spike].score, healthy_max);
    CHECKF(out[spike].pfp > 0.999, "spike PFP %g", out[spike].pfp);
    CHECK(out[spike].top_metric == 2);
    ps_scorer_free(s);
}

/*
 * A level shift that stays: the one-step forecast follows a level, so the
 * residual term can fade while the level is still far from its healthy
 * one; the level term adds to the score for as long as the shift lasts.
 */
static void test_level_shift(void)
{
    static float x[ROWS * K];
    static ps_score on[ROWS], off[ROWS];
    make_rows(x, ROWS, 6);
    size_t shift = 300;
    for (size_t r = shift; r < ROWS; r++)
        x[r * K + 1] += 30.0f;
    /* ARIMA alone: the test's random LSTM, clipped at 8, cannot follow a
     * level at all, which is not the case the level term is for. */
    ps_scorer *s = make(1, 0.0f);
    run(s, x, ROWS, on);
    ps_scorer_free(s);
    char err[256];
    ps_scorer_config c = ps_scorer_default_config();
    c.processors = 1;
    c.metrics = K;
    c.warmup = WARM;
    c.lstm_weight = 0;
    c.level_weight = 0;
    s = ps_scorer_create(be, &model, &c, err, sizeof err);
    CHECKF(s != NULL, "%s", err);
    run(s, x, ROWS, off);
    ps_scorer_free(s);
    /* Both runs gate learning alike (every shifted tick is unstable), so
     * on - off is the level term, smoothed. */
    double healthy_max = 0, held = 1e300;
    for (size_t r = WARM + 20; r < shift; r++)
        if (on[r].score > healthy_max) healthy_max = on[r].score;
    for (size_t r = shift + 20; r < ROWS; r++)
        if (on[r].score - off[r].score < held) held = on[r].score - off[r].score;
    CHECKF(held > healthy_max, "level term %g over 80 shifted ticks vs healthy max %g", held,
           healthy_max);
    double first = on[shift + 20].score - off[shift + 20].score;
    double last = on[ROWS - 1].score - off[ROWS - 1].score;
    CHECKF(last > 0.9 * first, "level term faded from %g to %g", first, last);
}

static void test_refused_and_batched(void)
{
    static float x[2][ROWS * K];
    static ps_score alone[2][ROWS];
    make_rows(x[0], ROWS, 3);
    make_rows(x[1], ROWS, 4);
    for (int p = 0; p < 2; p++) {
        ps_scorer *s = make(1, 0.5f);
        run(s, x[p], ROWS, alone[p]);
        ps_scorer_free(s);
    }

    /* Both together, with refused ticks thrown in along the way. */
    ps_scorer *s = make(2, 0.5f);
    char err[256];
    uint32_t both[2] = {0, 1}, dup[2] = {1, 1}, far[1] = {2};
    float row[2 * K];
    ps_score out[2];
    double worst = 0;
    for (size_t r = 0; r < ROWS; r++) {
        memcpy(row, x[0] + r * K, K * sizeof(float));
        memcpy(row + K, x[1] + r * K, K * sizeof(float));
        if (r % 50 == 7) {
            float bad[2 * K];
            memcpy(bad, row, sizeof bad);
            bad[4] = NAN;
            CHECK(ps_scorer_tick(s, 2, both, NULL, bad, out, err, sizeof err) == PS_EINVAL);
            CHECK(strstr(err, "finite") != NULL);
            CHECK(ps_scorer_tick(s, 2, dup, NULL, row, out, err, sizeof err) == PS_EINVAL);
            CHECK(strstr(err, "twice") != NULL);
            CHECK(ps_scorer_tick(s, 1, far, NULL, row, out, err, sizeof err) == PS_EINVAL);
        }
        CHECK(ps_scorer_tick(s, 2, both, NULL, row, out, err, sizeof err) == 0);
        for (int p = 0; p < 2; p++) {
            double d = fabs((double)out[p].score - alone[p][r].score) /
                       (1e-6 + fabs((double)alone[p][r].score));
            if (d > worst) worst = d;
            CHECK(out[p].state == alone[p][r].state);
        }
    }
    CHECKF(worst < 1e-4, "batched scores differ from solo ones by %g (relative)", worst);
    ps_scorer_free(s);
}

static void test_config(void)
{
    char err[256];
    ps_scorer_config c = ps_scorer_default_config();
    c.processors = 1;
    c.metrics = K;
    c.warmup = 8;
    CHECK(ps_scorer_create(be, &model, &c, err, sizeof err) == NULL);
    CHECK(strstr(err, "warm-up") != NULL);
    c.warmup = 100;
    c.smoothing = 0;
    CHECK(ps_scorer_create(be, &model, &c, err, sizeof err) == NULL);
    c.smoothing = 0.5f;
    ps_scorer *s = ps_scorer_create(be, &model, &c, err, sizeof err);
    CHECK(s != NULL);
    CHECK(ps_scorer_set_warmup(s, 0, 10) == PS_EINVAL);
    CHECK(ps_scorer_set_warmup(s, 0, 200) == PS_EINVAL);
    CHECK(ps_scorer_set_warmup(s, 0, 60) == PS_OK);
    float row[K] = {1, 2, 3};
    ps_score out;
    uint32_t p = 0;
    int warming = 0;
    for (int r = 0; r < 61; r++) {
        CHECK(ps_scorer_tick(s, 1, &p, NULL, row, &out, err, sizeof err) == 0);
        warming += out.state == PS_PROC_WARMING;
        row[r % K] += 0.01f * (float)(r % 5);
    }
    CHECK(warming == 60);
    CHECK(out.state == PS_PROC_SCORED && isfinite(out.score) && isfinite(out.pfp));
    CHECK(ps_scorer_set_warmup(s, 0, 50) == PS_EINVAL); /* already started */
    ps_scorer_free(s);
}

int main(void)
{
    char err[256];
    be = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU, .threads = 1}, err,
                         sizeof err);
    CHECKF(be != NULL, "%s", err);
    CHECK(ps_model_init(&model, &(ps_lstm_shape){1, 8, 1, 1}) == 0);
    ps_model_init_random(&model, 5);
    model.clip = 8;
    test_online(0.5f);
    test_online(1.0f);
    test_online(0.0f);
    test_spike();
    test_level_shift();
    test_refused_and_batched();
    test_config();
    ps_model_free(&model);
    ps_backend_free(be);
    return test_finish("test_scorer");
}
