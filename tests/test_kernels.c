/*
 * test_kernels.c - every backend's LSTM step against the naive reference.
 *
 * For each backend this build has (CPU with each instruction set the CPU can
 * run, one and two threads; CUDA where a device exists) and several shapes:
 * random weights, a random subset of slots in random order at every step, a
 * few steps so state carries over, batches large enough to use the worker
 * pool, outputs prefilled with NaN so an element left unwritten fails.
 * A backend other than the CPU (CUDA) is also checked step by step against
 * the CPU backend fed the same weights, slots and inputs: outputs and the
 * whole state within 1e-5, so a device kernel cannot hide behind the
 * reference's tolerance. Then the argument checks: a slot out of range or
 * repeated is refused and leaves state untouched; the state round trip: a
 * random state set in random order reads back exactly, and stepping from it
 * matches the reference stepped from the same state.
 */
#include "core/rng.h"
#include "each_backend.h"
#include "reference.h"
#include "testutil.h"

#include <string.h>

/* The peer every non-CPU backend is compared with; NULL if it cannot start. */
static ps_backend *cpu_peer;

static int is_cpu(ps_backend *be)
{
    return strcmp(ps_backend_name(be), "cpu") == 0;
}

/* Worst relative error of got against want over n values; NaN counts as infinite. */
static double worst_rel(const float *got, const float *want, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i])) return INFINITY;
        double d = fabs((double)got[i] - (double)want[i]) / (1.0 + fabs((double)want[i]));
        if (d > worst) worst = d;
    }
    return worst;
}

static int rel_close(float got, float want, double tol)
{
    double d = fabs((double)got - (double)want);
    return d <= tol * (1.0 + fabs((double)want));
}

/* A random permutation's first n entries out of slots. */
static void pick_slots(ps_rng *rng, uint32_t *perm, size_t slots, size_t n)
{
    for (size_t i = 0; i < slots; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)ps_rng_below(rng, slots - i);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static void check_shape(ps_backend *be, const ps_lstm_shape *s, size_t slots, size_t n,
                        uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    size_t np = ps_lstm_param_count(s), sf = ps_lstm_state_floats(s);
    float *params = malloc(np * sizeof(float));
    float *ref_state = calloc(slots * sf, sizeof(float));
    float *got_state = malloc(slots * sf * sizeof(float));
    float *x = malloc(n * (size_t)s->input * sizeof(float));
    float *y = malloc(n * (size_t)s->output * sizeof(float));
    float *y_ref = malloc(n * (size_t)s->output * sizeof(float));
    uint32_t *perm = malloc(slots * sizeof(uint32_t));
    uint32_t *all = malloc(slots * sizeof(uint32_t));
    for (size_t i = 0; i < np; i++)
        params[i] = ps_rng_uniformf(&rng, -0.5f, 0.5f);
    for (size_t i = 0; i < slots; i++)
        all[i] = (uint32_t)i;

    ps_lstm *lstm = ps_lstm_create(be, s, params, slots);
    CHECKF(lstm != NULL, "create: %s", ps_backend_error(be));
    if (!lstm) goto out;
    ps_lstm *peer = NULL;
    if (cpu_peer && !is_cpu(be)) {
        peer = ps_lstm_create(cpu_peer, s, params, slots);
        CHECKF(peer != NULL, "create on the CPU peer: %s", ps_backend_error(cpu_peer));
    }

    double worst = 0, worst_peer = 0;
    for (int step = 0; step < 4; step++) {
        size_t m = step == 0 ? n : n - (size_t)ps_rng_below(&rng, n / 2 + 1);
        pick_slots(&rng, perm, slots, m);
        for (size_t i = 0; i < m * (size_t)s->input; i++)
            x[i] = ps_rng_uniformf(&rng, -3.0f, 3.0f);
        for (size_t i = 0; i < m * (size_t)s->output; i++)
            y[i] = NAN;
        CHECKF(ps_lstm_step(lstm, m, perm, x, y) == PS_OK, "step: %s", ps_backend_error(be));
        ref_lstm_step(s, params, ref_state, m, perm, x, y_ref);
        double d = worst_rel(y, y_ref, m * (size_t)s->output);
        if (d > worst) worst = d;
        if (peer) {
            for (size_t i = 0; i < m * (size_t)s->output; i++)
                y_ref[i] = NAN;
            CHECK(ps_lstm_step(peer, m, perm, x, y_ref) == PS_OK);
            d = worst_rel(y, y_ref, m * (size_t)s->output);
            if (d > worst_peer) worst_peer = d;
        }
    }
    CHECKF(worst <= 1e-5, "%s/%s h=%d layers=%d in=%d out=%d n=%zu: worst rel err %.3g",
           ps_backend_name(be), ps_backend_isa(be), s->hidden, s->layers, s->input, s->output, n,
           worst);
    CHECKF(worst_peer <= 1e-5, "%s h=%d layers=%d in=%d out=%d n=%zu: worst rel err %.3g vs cpu",
           ps_backend_name(be), s->hidden, s->layers, s->input, s->output, n, worst_peer);

    CHECK(ps_lstm_state_get(lstm, slots, all, got_state) == PS_OK);
    size_t bad = 0;
    for (size_t i = 0; i < slots * sf; i++)
        bad += !rel_close(got_state[i], ref_state[i], 1e-5);
    CHECKF(bad == 0, "%zu state values differ from the reference", bad);
    if (peer) {
        float *peer_state = malloc(slots * sf * sizeof(float));
        CHECK(ps_lstm_state_get(peer, slots, all, peer_state) == PS_OK);
        double d = worst_rel(got_state, peer_state, slots * sf);
        CHECKF(d <= 1e-5, "%s: state differs from the CPU backend's by %.3g", ps_backend_name(be),
               d);
        free(peer_state);
        ps_lstm_free(peer);
    }

    /* Refused calls leave state alone. */
    uint32_t dup[2] = {1, 1}, far[1] = {(uint32_t)slots};
    CHECK(ps_lstm_step(lstm, 2, dup, x, y) == PS_EINVAL);
    CHECK(strstr(ps_backend_error(be), "twice") != NULL);
    CHECK(ps_lstm_step(lstm, 1, far, x, y) == PS_EINVAL);
    CHECK(strstr(ps_backend_error(be), "out of range") != NULL);
    CHECK(ps_lstm_state_get(lstm, slots, all, got_state) == PS_OK);
    bad = 0;
    for (size_t i = 0; i < slots * sf; i++)
        bad += !rel_close(got_state[i], ref_state[i], 1e-5);
    CHECKF(bad == 0, "a refused call changed %zu state values", bad);

    /* Reset zeroes exactly the slots named; set restores them. */
    uint32_t two[2] = {0, (uint32_t)(slots - 1)};
    CHECK(ps_lstm_reset(lstm, 2, two) == PS_OK);
    CHECK(ps_lstm_state_get(lstm, slots, all, got_state) == PS_OK);
    int zeroed = 1;
    for (size_t i = 0; i < sf; i++)
        zeroed &= got_state[i] == 0 && got_state[(slots - 1) * sf + i] == 0;
    CHECK(zeroed);
    CHECK(ps_lstm_state_set(lstm, slots, all, ref_state) == PS_OK);
    CHECK(ps_lstm_state_get(lstm, slots, all, got_state) == PS_OK);
    CHECK(memcmp(got_state, ref_state, slots * sf * sizeof(float)) == 0);

    /* A random state set in random order reads back in that order, and a
     * step from it matches the reference stepped from the same state. */
    pick_slots(&rng, perm, slots, slots);
    for (size_t i = 0; i < slots * sf; i++)
        got_state[i] = ps_rng_uniformf(&rng, -1.0f, 1.0f);
    CHECK(ps_lstm_state_set(lstm, slots, perm, got_state) == PS_OK);
    for (size_t i = 0; i < slots; i++)
        memcpy(ref_state + (size_t)perm[i] * sf, got_state + i * sf, sf * sizeof(float));
    float *back = malloc(slots * sf * sizeof(float));
    CHECK(ps_lstm_state_get(lstm, slots, perm, back) == PS_OK);
    CHECK(memcmp(back, got_state, slots * sf * sizeof(float)) == 0);
    free(back);
    for (size_t i = 0; i < n * (size_t)s->input; i++)
        x[i] = ps_rng_uniformf(&rng, -3.0f, 3.0f);
    for (size_t i = 0; i < n * (size_t)s->output; i++)
        y[i] = NAN;
    CHECK(ps_lstm_step(lstm, n, perm, x, y) == PS_OK);
    ref_lstm_step(s, params, ref_state, n, perm, x, y_ref);
    worst = worst_rel(y, y_ref, n * (size_t)s->output);
    CHECKF(worst <= 1e-5, "%s h=%d: after state_set, worst rel err %.3g", ps_backend_name(be),
           s->hidden, worst);

    ps_lstm_free(lstm);
out:
    free(params);
    free(ref_state);
    free(got_state);
    free(x);
    free(y);
    free(y_ref);
    free(perm);
    free(all);
}

static void check_backend(ps_backend *be, void *ctx)
{
    (void)ctx;
    static const ps_lstm_shape shapes[] = {
        {1, 32, 1, 1},  {1, 64, 1, 1}, {1, 7, 1, 1},   {3, 16, 2, 3},
        {19, 8, 3, 19}, {5, 33, 2, 1}, {1, 100, 1, 2}, {2, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_shape(be, &shapes[i], 300, 200, 1000 + i);
    /* Large enough for the worker pool to split blocks. */
    check_shape(be, &(ps_lstm_shape){1, 32, 1, 1}, 5000, 4500, 7);
    check_shape(be, &(ps_lstm_shape){2, 64, 2, 1}, 3000, 2999, 8);
    printf("checked %s, isa %s, %d thread(s)\n", ps_backend_name(be), ps_backend_isa(be),
           ps_backend_threads(be));
}

int main(void)
{
    char err[256];
    cpu_peer = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU, .threads = 1}, err,
                               sizeof err);
    CHECKF(cpu_peer != NULL, "the CPU peer: %s", err);
    each_backend(check_backend, NULL);
    ps_backend_free(cpu_peer);

    /* Bad arguments are refused before any work. */
    ps_backend *be = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU}, err, sizeof err);
    CHECK(be != NULL);
    float w[1] = {0};
    CHECK(ps_lstm_create(be, &(ps_lstm_shape){0, 8, 1, 1}, w, 4) == NULL);
    CHECK(ps_lstm_create(be, &(ps_lstm_shape){1, 8, PS_LSTM_MAX_LAYERS + 1, 1}, w, 4) == NULL);
    CHECK(ps_lstm_create(be, &(ps_lstm_shape){1, 8, 1, 1}, NULL, 4) == NULL);
    CHECK(ps_lstm_create(be, &(ps_lstm_shape){1, 8, 1, 1}, w, 0) == NULL);
    CHECK(ps_backend_init(&(ps_backend_params){.threads = -1}, err, sizeof err) == NULL);
    ps_backend_free(be);
    return test_finish("test_kernels");
}
