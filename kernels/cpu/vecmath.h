/*
 * vecmath.h - vector math of the CPU backend, one table per instruction set.
 *
 * The table is picked once when a backend starts (from the CPU's features
 * or the user's choice), so the hot loops pay one indirect call per row, not
 * per element. Every entry accepts any n (tails included) and unaligned
 * pointers; sigmoid and tanh may work in place (x == y). Do not build with
 * -ffast-math: NaN and denormal handling rely on IEEE arithmetic.
 *
 * Accuracy: sigmoid and tanh are within 1e-6 (absolute) of libm's
 * 1/(1+expf(-x)) and tanhf over the whole float range, return exactly 0/1
 * (sigmoid) and -1/1 (tanh) for large |x|, and NaN for NaN.
 */
#ifndef PRESHIFT_VECMATH_H
#define PRESHIFT_VECMATH_H

#include <stddef.h>

typedef struct ps_vecmath {
    const char *name; /* "portable", "avx2", "avx512" */
    void (*sigmoid)(size_t n, const float *x, float *y);
    void (*tanh)(size_t n, const float *x, float *y);
    /*
     * One LSTM cell update of one row. g holds the 4*hidden gate
     * pre-activations (i, f, g, o blocks) without bias and may be
     * overwritten; b is the 4*hidden bias; c (hidden) is the cell state,
     * updated in place; h (hidden) receives the new hidden state. g, b, c and h
     * must not overlap (the vector paths use h as scratch between passes).
     */
    void (*lstm_cell)(size_t hidden, float *g, const float *b, float *c, float *h);
    float (*dot)(size_t n, const float *a, const float *b);
} ps_vecmath;

extern const ps_vecmath ps_vecmath_portable;
extern const ps_vecmath ps_vecmath_avx2;
extern const ps_vecmath ps_vecmath_avx512;

/* Whether this CPU (and OS) can run a table's instructions. */
int ps_vecmath_cpu_has_avx2(void);
int ps_vecmath_cpu_has_avx512(void);

#endif
