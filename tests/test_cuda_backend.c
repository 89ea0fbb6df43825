/*
 * test_cuda_backend.c - what only the CUDA backend has: its three ways of
 * running a step and its staging, each checked against the CPU backend and
 * the naive reference over many ticks.
 *
 * test_kernels and test_arma_kernel already run every general check on
 * CUDA; this file drives the paths they reach by chance or not at all:
 * graph replay (the same size bucket many ticks in a row, with different
 * slots and batch sizes inside the bucket, so a graph that kept stale
 * sizes or slots would show), direct launches above the graph limit,
 * gemm chunks (PRESHIFT_CUDA_CHUNK_ROWS small), graphs of several chunks,
 * state I/O of more rows than one staging chunk, two models sharing one
 * backend's stream, and the backend's name and knobs.
 *
 * Exits 77 (a ctest skip) with the reason when no device answers.
 */
#include "core/rng.h"
#include "kernels/kernels.h"
#include "reference.h"
#include "reference_arma.h"
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

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

/* Starts a CUDA backend with the two knobs set (NULL: unset). */
static ps_backend *cuda_with(const char *graph_rows, const char *chunk_rows)
{
    if (graph_rows)
        setenv("PRESHIFT_CUDA_GRAPH_ROWS", graph_rows, 1);
    else
        unsetenv("PRESHIFT_CUDA_GRAPH_ROWS");
    if (chunk_rows)
        setenv("PRESHIFT_CUDA_CHUNK_ROWS", chunk_rows, 1);
    else
        unsetenv("PRESHIFT_CUDA_CHUNK_ROWS");
    char err[256];
    ps_backend *be =
        ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CUDA}, err, sizeof err);
    CHECKF(be != NULL, "cuda backend (graph rows %s, chunk rows %s): %s",
           graph_rows ? graph_rows : "default", chunk_rows ? chunk_rows : "default", err);
    return be;
}

/*
 * ticks steps of one shape on gpu, the CPU backend and the reference side
 * by side; sizes[t % nsizes] rows at tick t, from a fresh random subset of
 * the slots each tick.
 */
static void lstm_ticks(const char *what, ps_backend *gpu, ps_backend *cpu, const ps_lstm_shape *s,
                       size_t slots, const size_t *sizes, size_t nsizes, int ticks, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    size_t np = ps_lstm_param_count(s), sf = ps_lstm_state_floats(s);
    size_t nmax = 0;
    for (size_t i = 0; i < nsizes; i++)
        nmax = sizes[i] > nmax ? sizes[i] : nmax;
    size_t in = (size_t)s->input, out = (size_t)s->output;
    float *params = malloc(np * sizeof(float));
    float *ref_state = calloc(slots * sf, sizeof(float));
    float *got_state = malloc(slots * sf * sizeof(float));
    float *cpu_state = malloc(slots * sf * sizeof(float));
    float *x = malloc(nmax * in * sizeof(float));
    float *y = malloc(nmax * out * sizeof(float));
    float *y_cpu = malloc(nmax * out * sizeof(float));
    float *y_ref = malloc(nmax * out * sizeof(float));
    uint32_t *perm = malloc(slots * sizeof(uint32_t));
    uint32_t *all = malloc(slots * sizeof(uint32_t));
    for (size_t i = 0; i < np; i++)
        params[i] = ps_rng_uniformf(&rng, -0.5f, 0.5f);
    for (size_t i = 0; i < slots; i++)
        all[i] = (uint32_t)i;

    ps_lstm *g = ps_lstm_create(gpu, s, params, slots);
    ps_lstm *c = ps_lstm_create(cpu, s, params, slots);
    CHECKF(g != NULL, "%s: create: %s", what, ps_backend_error(gpu));
    CHECKF(c != NULL, "%s: create on cpu: %s", what, ps_backend_error(cpu));
    if (!g || !c) goto out;

    double worst_ref = 0, worst_cpu = 0;
    for (int t = 0; t < ticks; t++) {
        size_t m = sizes[(size_t)t % nsizes];
        pick_slots(&rng, perm, slots, m);
        for (size_t i = 0; i < m * in; i++)
            x[i] = ps_rng_uniformf(&rng, -3.0f, 3.0f);
        for (size_t i = 0; i < m * out; i++)
            y[i] = y_cpu[i] = NAN;
        int rc = ps_lstm_step(g, m, perm, x, y);
        CHECKF(rc == PS_OK, "%s: tick %d, %zu rows: %s", what, t, m, ps_backend_error(gpu));
        if (rc != PS_OK) break;
        CHECK(ps_lstm_step(c, m, perm, x, y_cpu) == PS_OK);
        ref_lstm_step(s, params, ref_state, m, perm, x, y_ref);
        double d = worst_rel(y, y_ref, m * out);
        worst_ref = d > worst_ref ? d : worst_ref;
        d = worst_rel(y, y_cpu, m * out);
        worst_cpu = d > worst_cpu ? d : worst_cpu;
    }
    CHECKF(worst_ref <= TOL, "%s: h=%d layers=%d: worst rel err %.3g vs reference", what, s->hidden,
           s->layers, worst_ref);
    CHECKF(worst_cpu <= TOL, "%s: h=%d layers=%d: worst rel err %.3g vs cpu", what, s->hidden,
           s->layers, worst_cpu);

    CHECKF(ps_lstm_state_get(g, slots, all, got_state) == PS_OK, "%s: state_get: %s", what,
           ps_backend_error(gpu));
    CHECK(ps_lstm_state_get(c, slots, all, cpu_state) == PS_OK);
    double d = worst_rel(got_state, ref_state, slots * sf);
    CHECKF(d <= TOL, "%s: state differs from the reference by %.3g", what, d);
    d = worst_rel(got_state, cpu_state, slots * sf);
    CHECKF(d <= TOL, "%s: state differs from the CPU backend's by %.3g", what, d);

    /* Round trip through the staging, in a random order. */
    pick_slots(&rng, perm, slots, slots);
    for (size_t i = 0; i < slots * sf; i++)
        cpu_state[i] = ps_rng_uniformf(&rng, -1.0f, 1.0f);
    CHECK(ps_lstm_state_set(g, slots, perm, cpu_state) == PS_OK);
    CHECK(ps_lstm_state_get(g, slots, perm, got_state) == PS_OK);
    CHECKF(memcmp(got_state, cpu_state, slots * sf * sizeof(float)) == 0,
           "%s: state set then get in one order does not read back", what);
    CHECK(ps_lstm_reset(g, slots / 2, perm) == PS_OK);
    CHECK(ps_lstm_state_get(g, slots, perm, got_state) == PS_OK);
    size_t bad = 0;
    for (size_t i = 0; i < slots * sf; i++)
        bad += got_state[i] != (i < slots / 2 * sf ? 0.0f : cpu_state[i]);
    CHECKF(bad == 0, "%s: reset of half the slots left %zu values wrong", what, bad);

out:
    ps_lstm_free(g);
    ps_lstm_free(c);
    free(params);
    free(ref_state);
    free(got_state);
    free(cpu_state);
    free(x);
    free(y);
    free(y_cpu);
    free(y_ref);
    free(perm);
    free(all);
}

/* Every path of the step on one backend configuration. */
static void lstm_paths(const char *what, ps_backend *gpu, ps_backend *cpu)
{
    /* Inside one bucket (33..64 rows) tick after tick: captured on the
     * second tick, replayed after, with the row count changing within it. */
    static const size_t small[] = {64, 40, 33, 64, 50, 64, 37};
    lstm_ticks(what, gpu, cpu, &(ps_lstm_shape){1, 64, 1, 1}, 300, small, 7, 14, 1);
    /* Alternating buckets, several layers, a wide input and output. */
    static const size_t mixed[] = {200, 1000, 3, 250, 700, 1};
    lstm_ticks(what, gpu, cpu, &(ps_lstm_shape){3, 16, 2, 3}, 1200, mixed, 6, 12, 2);
    lstm_ticks(what, gpu, cpu, &(ps_lstm_shape){19, 8, 3, 19}, 1200, mixed, 6, 12, 3);
    /* Above the default graph limit: direct launches, larger gemms. */
    static const size_t large[] = {20000, 9000, 20000};
    lstm_ticks(what, gpu, cpu, &(ps_lstm_shape){1, 64, 1, 1}, 20000, large, 3, 3, 4);
}

static void arma_paths(ps_backend *gpu, ps_backend *cpu)
{
    static const int pq[][2] = {{0, 0}, {1, 0}, {0, 1}, {2, 1}, {16, 16}, {3, 7}};
    for (size_t k = 0; k < sizeof pq / sizeof pq[0]; k++) {
        int p = pq[k][0], q = pq[k][1];
        size_t slots = 50000, np = (size_t)(1 + p + q);
        ps_rng rng;
        ps_rng_seed(&rng, 50 + k);
        float *params = malloc(slots * np * sizeof(float));
        float *ref_state = calloc(slots * np, sizeof(float));
        float *st_g = malloc(slots * np * sizeof(float)),
              *st_c = malloc(slots * np * sizeof(float));
        float *w = malloc(slots * sizeof(float));
        float *r = malloc(slots * sizeof(float)), *f = malloc(slots * sizeof(float));
        float *rc_ = malloc(slots * sizeof(float)), *fc_ = malloc(slots * sizeof(float));
        float *rr = malloc(slots * sizeof(float)), *fr = malloc(slots * sizeof(float));
        uint32_t *perm = malloc(slots * sizeof(uint32_t)), *all = malloc(slots * sizeof(uint32_t));
        for (size_t i = 0; i < slots; i++) {
            all[i] = (uint32_t)i;
            float *c = params + i * np;
            c[0] = ps_rng_uniformf(&rng, -0.2f, 0.2f);
            for (int j = 0; j < p; j++)
                c[1 + j] = ps_rng_uniformf(&rng, -0.9f, 0.9f) / (float)p;
            for (int j = 0; j < q; j++)
                c[1 + p + j] = ps_rng_uniformf(&rng, -0.9f, 0.9f) / (float)q;
        }
        ps_arma *g = ps_arma_create(gpu, p, q, slots), *c = ps_arma_create(cpu, p, q, slots);
        CHECKF(g != NULL, "ARMA(%d,%d) create: %s", p, q, ps_backend_error(gpu));
        if (g && c) {
            CHECK(ps_arma_set_params(g, slots, all, params) == PS_OK);
            CHECK(ps_arma_set_params(c, slots, all, params) == PS_OK);
            double worst = 0;
            for (int t = 0; t < 8; t++) {
                size_t m = t % 2 ? slots : 1 + (size_t)ps_rng_below(&rng, slots);
                pick_slots(&rng, perm, slots, m);
                for (size_t i = 0; i < m; i++) {
                    w[i] = ps_rng_uniformf(&rng, -3.0f, 3.0f);
                    r[i] = f[i] = rc_[i] = fc_[i] = NAN;
                }
                CHECKF(ps_arma_step(g, m, perm, w, r, f) == PS_OK, "ARMA step: %s",
                       ps_backend_error(gpu));
                CHECK(ps_arma_step(c, m, perm, w, rc_, fc_) == PS_OK);
                ref_arma_step(p, q, params, ref_state, m, perm, w, rr, fr);
                double d[4] = {worst_rel(r, rr, m), worst_rel(f, fr, m), worst_rel(r, rc_, m),
                               worst_rel(f, fc_, m)};
                for (int j = 0; j < 4; j++)
                    worst = d[j] > worst ? d[j] : worst;
            }
            CHECKF(worst <= TOL, "ARMA(%d,%d): worst rel err %.3g vs reference or cpu", p, q,
                   worst);
            /* More rows than one staging chunk when the order is high. */
            CHECK(ps_arma_state_get(g, slots, all, st_g) == PS_OK);
            CHECK(ps_arma_state_get(c, slots, all, st_c) == PS_OK);
            double d = worst_rel(st_g, st_c, slots * np);
            CHECKF(d <= TOL, "ARMA(%d,%d): state differs from the CPU's by %.3g", p, q, d);
            d = worst_rel(st_g, ref_state, slots * np);
            CHECKF(d <= TOL, "ARMA(%d,%d): state differs from the reference by %.3g", p, q, d);
        }
        ps_arma_free(g);
        ps_arma_free(c);
        free(params);
        free(ref_state);
        free(st_g);
        free(st_c);
        free(w);
        free(r);
        free(f);
        free(rc_);
        free(fc_);
        free(rr);
        free(fr);
        free(perm);
        free(all);
    }
}

/* Two models on one backend share its stream and staging: interleaved
 * calls must not see each other's data. */
static void two_models(ps_backend *gpu, ps_backend *cpu)
{
    ps_lstm_shape a = {1, 32, 1, 1}, b = {2, 16, 2, 2};
    size_t slots = 500;
    ps_rng rng;
    ps_rng_seed(&rng, 77);
    size_t npa = ps_lstm_param_count(&a), npb = ps_lstm_param_count(&b);
    float *pa = malloc(npa * sizeof(float)), *pb = malloc(npb * sizeof(float));
    for (size_t i = 0; i < npa; i++)
        pa[i] = ps_rng_uniformf(&rng, -0.5f, 0.5f);
    for (size_t i = 0; i < npb; i++)
        pb[i] = ps_rng_uniformf(&rng, -0.5f, 0.5f);
    ps_lstm *ga = ps_lstm_create(gpu, &a, pa, slots), *gb = ps_lstm_create(gpu, &b, pb, slots);
    ps_lstm *ca = ps_lstm_create(cpu, &a, pa, slots), *cb = ps_lstm_create(cpu, &b, pb, slots);
    uint32_t perm[500];
    float x[1000], y[1000], yc[1000];
    double worst = 0;
    if (ga && gb && ca && cb) {
        for (int t = 0; t < 10; t++) {
            int second = t % 2;
            ps_lstm *g = second ? gb : ga, *c = second ? cb : ca;
            size_t in = second ? 2 : 1, out = second ? 2 : 1;
            size_t m = 100 + (size_t)ps_rng_below(&rng, 400);
            pick_slots(&rng, perm, slots, m);
            for (size_t i = 0; i < m * in; i++)
                x[i] = ps_rng_uniformf(&rng, -2.0f, 2.0f);
            for (size_t i = 0; i < m * out; i++)
                y[i] = yc[i] = NAN;
            CHECK(ps_lstm_step(g, m, perm, x, y) == PS_OK);
            CHECK(ps_lstm_step(c, m, perm, x, yc) == PS_OK);
            double d = worst_rel(y, yc, m * out);
            worst = d > worst ? d : worst;
        }
    } else {
        CHECKF(0, "two models: create failed: %s", ps_backend_error(gpu));
    }
    CHECKF(worst <= TOL, "two models on one backend: worst rel err %.3g vs cpu", worst);
    ps_lstm_free(ga);
    ps_lstm_free(gb);
    ps_lstm_free(ca);
    ps_lstm_free(cb);
    free(pa);
    free(pb);
}

int main(void)
{
    char err[256];
    ps_backend *probe =
        ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CUDA}, err, sizeof err);
    if (!probe) TEST_SKIP("no CUDA backend here: %s", err);
    const char *name = ps_backend_name(probe);
    printf("testing %s, %s\n", name, ps_backend_isa(probe));
    CHECKF(strncmp(name, "cuda (", 6) == 0 && strstr(name, "sm_") && strstr(name, "cuBLAS"),
           "name '%s'", name);
    CHECKF(strstr(name, "fallback") == NULL, "name '%s' still says fallback", name);
    CHECKF(strncmp(ps_backend_isa(probe), "sm_", 3) == 0, "isa '%s'", ps_backend_isa(probe));
    CHECK(ps_backend_threads(probe) == 1);
    ps_backend_free(probe);

    ps_backend *cpu = ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CPU, .threads = 1},
                                      err, sizeof err);
    CHECKF(cpu != NULL, "cpu backend: %s", err);
    if (!cpu) return test_finish("test_cuda_backend");

    /* A knob that is not a number is refused at init, and says which. */
    setenv("PRESHIFT_CUDA_GRAPH_ROWS", "lots", 1);
    CHECK(ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CUDA}, err, sizeof err) == NULL);
    CHECKF(strstr(err, "PRESHIFT_CUDA_GRAPH_ROWS") != NULL, "err '%s'", err);

    static const struct {
        const char *what, *graph_rows, *chunk_rows;
    } configs[] = {
        {"default (graphs up to 8192 rows)", NULL, NULL},
        {"direct launches", "0", NULL},
        {"direct, gemm chunks of 1000 rows", "0", "1000"},
        {"graphs of several chunks", "4096", "100"},
        {"chunks of one row", "0", "1"},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        ps_backend *gpu = cuda_with(configs[i].graph_rows, configs[i].chunk_rows);
        if (!gpu) continue;
        printf("paths: %s\n", configs[i].what);
        if (i == 4) {
            /* One-row chunks multiply launches: keep it small. */
            static const size_t few[] = {5, 64, 3};
            lstm_ticks(configs[i].what, gpu, cpu, &(ps_lstm_shape){2, 8, 2, 1}, 100, few, 3, 6, 9);
        } else {
            lstm_paths(configs[i].what, gpu, cpu);
        }
        if (i == 0) {
            arma_paths(gpu, cpu);
            two_models(gpu, cpu);
        }
        ps_backend_free(gpu);
    }
    unsetenv("PRESHIFT_CUDA_GRAPH_ROWS");
    unsetenv("PRESHIFT_CUDA_CHUNK_ROWS");
    ps_backend_free(cpu);
    return test_finish("test_cuda_backend");
}
