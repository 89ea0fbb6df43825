/*
 * test_onset.c - a score's onsets (core/onset.h): hand cases, then the
 * monotonic queue against the definition (a scan of the window) on random
 * scores with ties, for several windows.
 */
#include "core/onset.h"
#include "core/rng.h"
#include "testutil.h"

#include <stdlib.h>

static void test_hand(void)
{
    ps_onset o;
    CHECK(ps_onset_init(&o, 0) == -1);
    CHECK(ps_onset_init(&o, 3) == 0);
    /* window 3: a new height is reported, staying there or lower is not; a
       height is forgotten 3 rows later (the 0.4 of row 12) */
    static const double x[] = {0, 0.5, 0.5, 0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.2, 0.3, 0.3, 0.4};
    static const double want[] = {0, 0.5, 0, 0.9, 0, 0, 0, 0, 0.95, 0, 0, 0, 0.4};
    for (size_t t = 0; t < sizeof x / sizeof x[0]; t++) {
        double got = ps_onset_next(&o, x[t]);
        CHECKF(got == want[t], "row %zu: %g, expected %g", t, got, want[t]);
    }
    ps_onset_free(&o);
    ps_onset_free(&o); /* twice is harmless */
}

static void test_against_scan(void)
{
    ps_rng rng;
    ps_rng_seed(&rng, 7);
    enum { N = 5000 };
    double *x = malloc(N * sizeof *x);
    CHECK(x != NULL);
    if (!x) return;
    for (size_t i = 0; i < N; i++) /* few distinct values: many ties */
        x[i] = (double)(int)(ps_rng_uniform(&rng) * 20) / 20;
    static const size_t windows[] = {1, 2, 7, 288, 6000};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        size_t rows = windows[w], bad = 0;
        ps_onset o;
        CHECK(ps_onset_init(&o, rows) == 0);
        for (size_t t = 0; t < N; t++) {
            double high = 0;
            for (size_t k = t >= rows ? t - rows : 0; k < t; k++)
                if (x[k] > high) high = x[k];
            double want = x[t] > high ? x[t] : 0;
            bad += ps_onset_next(&o, x[t]) != want;
        }
        CHECKF(bad == 0, "window %zu: %zu rows differ from the scan", rows, bad);
        ps_onset_free(&o);
    }
    free(x);
}

int main(void)
{
    test_hand();
    test_against_scan();
    return test_finish("test_onset");
}
