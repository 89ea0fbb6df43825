/*
 * test_forecaster.c - processors and metrics land on the right kernel rows.
 *
 * A channel-independent forecaster over K metrics must give, for processor
 * p and metric k, exactly what the reference gives for slot p*K + k fed the
 * clipped value; processors not in a tick keep their state; a multivariate
 * model is refused for the wrong metric count.
 */
#include "core/forecaster.h"
#include "reference.h"
#include "testutil.h"

#include <string.h>

enum { PROCS = 6, K = 3 };

int main(void)
{
    char err[256];
    ps_backend *be = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU}, err, sizeof err);
    CHECKF(be != NULL, "%s", err);
    if (!be) return test_finish("test_forecaster");

    ps_model m;
    CHECK(ps_model_init(&m, &(ps_lstm_shape){1, 8, 2, 1}) == PS_OK);
    ps_model_init_random(&m, 42);
    m.clip = 2.0f;

    ps_forecaster *f = ps_forecaster_create(be, &m, PROCS, K, err, sizeof err);
    CHECKF(f != NULL, "%s", err);
    CHECK(!ps_forecaster_is_multivariate(f));

    size_t sf = ps_lstm_state_floats(&m.shape);
    float *ref_state = calloc(PROCS * K * sf, sizeof(float));
    float x[PROCS * K], y[PROCS * K], yref[PROCS * K], xc[PROCS * K];
    uint32_t slots[PROCS * K];
    const uint32_t ticks[3][3] = {{0, 5, 2}, {4, 0, 1}, {2, 3, 5}};
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < 3 * K; i++) {
            x[i] = (float)(i % 5) - 2.5f + 0.37f * (float)t;
            if (i == 4) x[i] = 50.0f; /* far outside the clip range */
            xc[i] = x[i] > 2 ? 2 : x[i] < -2 ? -2 : x[i];
            y[i] = NAN;
        }
        for (size_t i = 0; i < 3; i++)
            for (size_t k = 0; k < K; k++)
                slots[i * K + k] = ticks[t][i] * K + (uint32_t)k;
        CHECK(ps_forecaster_step(f, 3, ticks[t], x, y) == PS_OK);
        ref_lstm_step(&m.shape, m.params, ref_state, 3 * K, slots, xc, yref);
        for (size_t i = 0; i < 3 * K; i++)
            CHECK_NEAR(y[i], yref[i], 1e-5 * (1 + fabs(yref[i])));
    }

    uint32_t bad = PROCS;
    CHECK(ps_forecaster_step(f, 1, &bad, x, y) == PS_EINVAL);
    CHECK(ps_forecaster_reset(f, 1, &bad) == PS_EINVAL);
    ps_forecaster_free(f);

    /* A multivariate model serves exactly its metric count. */
    ps_model mv;
    CHECK(ps_model_init(&mv, &(ps_lstm_shape){K, 4, 1, K}) == PS_OK);
    ps_model_init_random(&mv, 7);
    f = ps_forecaster_create(be, &mv, PROCS, K + 1, err, sizeof err);
    CHECK(f == NULL);
    CHECK(strstr(err, "multivariate") != NULL);
    f = ps_forecaster_create(be, &mv, PROCS, K, err, sizeof err);
    CHECKF(f != NULL, "%s", err);
    CHECK(f && ps_forecaster_is_multivariate(f));
    if (f) {
        uint32_t p = 3;
        CHECK(ps_forecaster_step(f, 1, &p, x, y) == PS_OK);
        for (size_t k = 0; k < K; k++)
            CHECK(isfinite(y[k]));
    }
    ps_forecaster_free(f);

    free(ref_state);
    ps_model_free(&m);
    ps_model_free(&mv);
    ps_backend_free(be);
    return test_finish("test_forecaster");
}
