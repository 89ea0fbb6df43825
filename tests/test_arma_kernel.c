/*
 * test_arma_kernel.c - every backend's ARMA step against the naive reference.
 *
 * For each backend this build has (CPU with each instruction set the CPU can
 * run, one and two threads; CUDA where a device exists) and every pair of
 * orders p, q in {0..4, 16}: random coefficients (small enough that the
 * residual recursion is stable, so rounding differences do not grow), a
 * random subset of slots in random order at each of several steps so state
 * carries over, outputs prefilled with NaN so an element left unwritten
 * fails. A backend other than the CPU (CUDA) is also checked step by step
 * against the CPU backend given the same coefficients and inputs: outputs
 * and state within 1e-5. Then the state round trip and the argument checks:
 * a slot out of range or repeated is refused and leaves state untouched.
 */
#include "core/rng.h"
#include "each_backend.h"
#include "reference_arma.h"
#include "testutil.h"

#include <string.h>

#define STEPS 6

/* The peer every non-CPU backend is compared with; NULL if it cannot start. */
static ps_backend *cpu_peer;

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

/* Relative error, measured against the size of the values around it. */
static double rel_err(float got, float want, double scale)
{
    if (isnan(got) || isnan(want)) return INFINITY;
    return fabs((double)got - (double)want) / (scale + fabs((double)want));
}

typedef struct arma_case {
    ps_backend *be;
    int p, q;
    size_t slots, n;
    float level; /* values sit around this, so rounding relative to it shows */
    uint64_t seed;
} arma_case;

static void check_case(const arma_case *k)
{
    ps_rng rng;
    ps_rng_seed(&rng, k->seed);
    int p = k->p, q = k->q;
    size_t slots = k->slots, n = k->n;
    size_t np = (size_t)(1 + p + q), ns = (size_t)(p + q + 1);
    double scale = 1.0 + fabs((double)k->level);
    float *params = malloc(slots * np * sizeof(float));
    float *ref_state = calloc(slots * ns, sizeof(float));
    float *got_state = malloc(slots * ns * sizeof(float));
    float *w = malloc(n * sizeof(float));
    float *resid = malloc(n * sizeof(float)), *fc = malloc(n * sizeof(float));
    float *resid_ref = malloc(n * sizeof(float)), *fc_ref = malloc(n * sizeof(float));
    uint32_t *perm = malloc(slots * sizeof(uint32_t));
    uint32_t *all = malloc(slots * sizeof(uint32_t));
    for (size_t i = 0; i < slots; i++)
        all[i] = (uint32_t)i;
    /* sum |phi| and sum |theta| below 0.9 each: stationary, invertible. */
    for (size_t s = 0; s < slots; s++) {
        float *c = params + s * np;
        c[0] = k->level * ps_rng_uniformf(&rng, -0.2f, 0.2f);
        for (int j = 0; j < p; j++)
            c[1 + j] = ps_rng_uniformf(&rng, -0.9f, 0.9f) / (float)p;
        for (int j = 0; j < q; j++)
            c[1 + p + j] = ps_rng_uniformf(&rng, -0.9f, 0.9f) / (float)q;
    }

    ps_arma *arma = ps_arma_create(k->be, p, q, slots);
    CHECKF(arma != NULL, "create p=%d q=%d: %s", p, q, ps_backend_error(k->be));
    if (!arma) goto out;
    CHECK(ps_arma_slots(arma) == slots);

    /* Parameters and state start at zero. */
    CHECK(ps_arma_state_get(arma, slots, all, got_state) == PS_OK);
    size_t nonzero = 0;
    for (size_t i = 0; i < slots * ns; i++)
        nonzero += got_state[i] != 0.0f;
    CHECKF(nonzero == 0, "%zu state values are not zero after create", nonzero);
    w[0] = 2.5f;
    resid[0] = fc[0] = NAN;
    CHECK(ps_arma_step(arma, 1, all, w, resid, fc) == PS_OK);
    CHECK(resid[0] == 2.5f && fc[0] == 0.0f);
    memset(got_state, 0, slots * ns * sizeof(float));
    CHECK(ps_arma_state_set(arma, 1, all, got_state) == PS_OK);

    /* Half the slots get their parameters in one call, half in another. */
    pick_slots(&rng, perm, slots, slots);
    float *shuffled = malloc(slots * np * sizeof(float));
    for (size_t i = 0; i < slots; i++)
        memcpy(shuffled + i * np, params + (size_t)perm[i] * np, np * sizeof(float));
    CHECK(ps_arma_set_params(arma, slots / 2, perm, shuffled) == PS_OK);
    CHECK(ps_arma_set_params(arma, slots - slots / 2, perm + slots / 2,
                             shuffled + slots / 2 * np) == PS_OK);
    free(shuffled);

    ps_arma *peer = NULL;
    float *resid_peer = NULL, *fc_peer = NULL;
    if (cpu_peer && strcmp(ps_backend_name(k->be), "cpu") != 0) {
        peer = ps_arma_create(cpu_peer, p, q, slots);
        CHECKF(peer != NULL, "create on the CPU peer: %s", ps_backend_error(cpu_peer));
        if (peer) CHECK(ps_arma_set_params(peer, slots, all, params) == PS_OK);
        resid_peer = malloc(n * sizeof(float));
        fc_peer = malloc(n * sizeof(float));
    }

    double worst = 0, worst_peer = 0;
    for (int step = 0; step < STEPS; step++) {
        size_t m = step == 0 ? n : n - (size_t)ps_rng_below(&rng, n / 2 + 1);
        pick_slots(&rng, perm, slots, m);
        for (size_t i = 0; i < m; i++) {
            w[i] = k->level + ps_rng_uniformf(&rng, -3.0f, 3.0f);
            resid[i] = fc[i] = NAN;
        }
        /* Every other step asks for one output only, or neither. */
        float *r_out = step % 3 == 1 ? NULL : resid, *f_out = step % 3 == 2 ? NULL : fc;
        if (step == STEPS - 1) r_out = f_out = NULL;
        CHECK(ps_arma_step(arma, m, perm, w, r_out, f_out) == PS_OK);
        ref_arma_step(p, q, params, ref_state, m, perm, w, resid_ref, fc_ref);
        for (size_t i = 0; i < m; i++) {
            double e1 = r_out ? rel_err(resid[i], resid_ref[i], scale) : 0;
            double e2 = f_out ? rel_err(fc[i], fc_ref[i], scale) : 0;
            if (e1 > worst) worst = e1;
            if (e2 > worst) worst = e2;
        }
        if (peer) {
            for (size_t i = 0; i < m; i++)
                resid_peer[i] = fc_peer[i] = NAN;
            CHECK(ps_arma_step(peer, m, perm, w, resid_peer, fc_peer) == PS_OK);
            for (size_t i = 0; i < m; i++) {
                double e1 = r_out ? rel_err(resid[i], resid_peer[i], scale) : 0;
                double e2 = f_out ? rel_err(fc[i], fc_peer[i], scale) : 0;
                if (e1 > worst_peer) worst_peer = e1;
                if (e2 > worst_peer) worst_peer = e2;
            }
        }
    }
    CHECKF(worst <= 1e-5, "%s/%s p=%d q=%d n=%zu level=%g: worst rel err %.3g",
           ps_backend_name(k->be), ps_backend_isa(k->be), p, q, n, k->level, worst);
    CHECKF(worst_peer <= 1e-5, "%s p=%d q=%d n=%zu level=%g: worst rel err %.3g vs cpu",
           ps_backend_name(k->be), p, q, n, k->level, worst_peer);

    /* The state the backend holds is the reference's. */
    CHECK(ps_arma_state_get(arma, slots, all, got_state) == PS_OK);
    size_t bad = 0;
    for (size_t i = 0; i < slots * ns; i++)
        bad += !(rel_err(got_state[i], ref_state[i], scale) <= 1e-5);
    CHECKF(bad == 0, "p=%d q=%d: %zu state values differ from the reference", p, q, bad);
    if (peer) {
        float *peer_state = malloc(slots * ns * sizeof(float));
        CHECK(ps_arma_state_get(peer, slots, all, peer_state) == PS_OK);
        bad = 0;
        for (size_t i = 0; i < slots * ns; i++)
            bad += !(rel_err(got_state[i], peer_state[i], scale) <= 1e-5);
        CHECKF(bad == 0, "p=%d q=%d: %zu state values differ from the CPU backend's", p, q, bad);
        free(peer_state);
        ps_arma_free(peer);
    }
    free(resid_peer);
    free(fc_peer);

    /* Refused calls leave state alone. */
    uint32_t dup[2] = {1, 1}, far[1] = {(uint32_t)slots};
    CHECK(ps_arma_step(arma, 2, dup, w, resid, fc) == PS_EINVAL);
    CHECK(strstr(ps_backend_error(k->be), "twice") != NULL);
    CHECK(ps_arma_step(arma, 1, far, w, resid, fc) == PS_EINVAL);
    CHECK(strstr(ps_backend_error(k->be), "out of range") != NULL);
    CHECK(ps_arma_set_params(arma, 2, dup, params) == PS_EINVAL);
    CHECK(ps_arma_set_params(arma, 1, far, params) == PS_EINVAL);
    CHECK(ps_arma_state_set(arma, 2, dup, ref_state) == PS_EINVAL);
    CHECK(ps_arma_state_get(arma, 1, far, got_state) == PS_EINVAL);
    CHECK(ps_arma_step(arma, 1, all, NULL, resid, fc) == PS_EINVAL);
    CHECK(ps_arma_step(arma, 0, all, w, resid, fc) == PS_OK);
    float *before = malloc(slots * ns * sizeof(float));
    CHECK(ps_arma_state_get(arma, slots, all, before) == PS_OK);
    bad = 0;
    for (size_t i = 0; i < slots * ns; i++)
        bad += !(rel_err(before[i], ref_state[i], scale) <= 1e-5);
    CHECKF(bad == 0, "a refused call changed %zu state values", bad);

    /* Round trip: a random state set in random order reads back exactly, and
     * stepping from it matches the reference stepped from the same state. */
    pick_slots(&rng, perm, slots, slots);
    for (size_t i = 0; i < slots * ns; i++)
        before[i] = k->level + ps_rng_uniformf(&rng, -1.0f, 1.0f);
    CHECK(ps_arma_state_set(arma, slots, perm, before) == PS_OK);
    for (size_t i = 0; i < slots; i++)
        memcpy(ref_state + (size_t)perm[i] * ns, before + i * ns, ns * sizeof(float));
    CHECK(ps_arma_state_get(arma, slots, perm, got_state) == PS_OK);
    CHECK(memcmp(got_state, before, slots * ns * sizeof(float)) == 0);
    for (size_t i = 0; i < n; i++)
        resid[i] = fc[i] = NAN;
    CHECK(ps_arma_step(arma, n, perm, w, resid, fc) == PS_OK);
    ref_arma_step(p, q, params, ref_state, n, perm, w, resid_ref, fc_ref);
    worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e1 = rel_err(resid[i], resid_ref[i], scale), e2 = rel_err(fc[i], fc_ref[i], scale);
        worst = e1 > worst ? e1 : worst;
        worst = e2 > worst ? e2 : worst;
    }
    CHECKF(worst <= 1e-5, "p=%d q=%d after state_set: worst rel err %.3g", p, q, worst);
    free(before);
    ps_arma_free(arma);
out:
    free(params);
    free(ref_state);
    free(got_state);
    free(w);
    free(resid);
    free(fc);
    free(resid_ref);
    free(fc_ref);
    free(perm);
    free(all);
}

static void check_backend(ps_backend *be, void *ctx)
{
    (void)ctx;
    static const int orders[] = {0, 1, 2, 3, 4, 16};
    uint64_t seed = 100;
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 6; j++) {
            arma_case k = {be, orders[i], orders[j], 300, 200, 0.0f, seed++};
            check_case(&k);
            k.level = 1000.0f;
            k.seed = seed++;
            check_case(&k);
        }
    /* Large enough for the worker pool to split the rows. */
    check_case(&(arma_case){be, 2, 1, 20000, 19000, 10.0f, 7});
    check_case(&(arma_case){be, 16, 16, 12000, 11000, 0.0f, 8});
    printf("checked ARMA on %s, isa %s, %d thread(s)\n", ps_backend_name(be), ps_backend_isa(be),
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

    /* Orders and slot counts out of range are refused at create. */
    ps_backend *be = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU}, err, sizeof err);
    CHECKF(be != NULL, "%s", err);
    if (be) {
        CHECK(ps_arma_create(be, -1, 0, 4) == NULL);
        CHECK(ps_arma_create(be, 0, PS_ARMA_MAX_ORDER + 1, 4) == NULL);
        CHECK(ps_arma_create(be, 1, 1, 0) == NULL);
        ps_arma *a = ps_arma_create(be, 0, 0, 3);
        CHECK(a != NULL);
        if (a) {
            /* ARMA(0, 0) forecasts its constant. */
            float c[3] = {1.5f, -2.0f, 0.25f}, w[3] = {1, 2, 3}, r[3], f[3];
            uint32_t s[3] = {2, 0, 1};
            CHECK(ps_arma_set_params(a, 3, s, c) == PS_OK);
            CHECK(ps_arma_step(a, 3, s, w, r, f) == PS_OK);
            CHECK(f[0] == 1.5f && f[1] == -2.0f && f[2] == 0.25f);
            CHECK(ps_arma_step(a, 3, s, w, r, f) == PS_OK);
            CHECK(r[0] == -0.5f && r[1] == 4.0f && r[2] == 2.75f);
            ps_arma_free(a);
        }
        ps_backend_free(be);
    }
    return test_finish("test_arma_kernel");
}
