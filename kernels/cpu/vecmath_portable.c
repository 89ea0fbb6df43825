/*
 * vecmath_portable.c - the vector math in plain C, for CPUs without AVX2 and
 * as the readable statement of what the intrinsics files compute.
 *
 * It runs the algorithm of vecmath_consts.h, as the AVX files do, so that
 * a result does not depend much on the CPU (they differ in the last bit or
 * two: no FMA here, so a two-step reduction and Horner's rule). To let the
 * compiler vectorize it at -O2, where GCC only vectorizes loops whose trip
 * count is known and whose memory cannot alias, every entry works on fixed
 * blocks of BLOCK elements copied into local arrays; a short tail is padded
 * with zeros in the local copy, so nothing past n is ever read or written.
 * Bit casts go through memcpy and selections through integer masks, since
 * GCC turns float ternaries here into branches, which do not vectorize.
 *
 * Sigmoid and tanh are each a fraction num / den with den in [1, 2]; the
 * LSTM cell multiplies fractions together and divides twice per element
 * instead of five times, because division is the slowest instruction here.
 */
#include "vecmath.h"
#include "vecmath_consts.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/*
 * 32 floats a block: long enough to amortize the set-up of a block's loop
 * (constants broadcast into registers), short enough that a padded tail
 * wastes little.
 */
enum { BLOCK = 32, DOT_LANES = 16 };

static inline uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/*
 * |x| limited to limit, as a float; *nan is all ones if x is NaN. This is
 * the clamp of vecmath_consts.h done on the integer bits: written on floats
 * (t < min ? min : t), GCC turns it into a branch around two copies of the
 * whole exponential, which then does not vectorize. An integer min carries
 * no NaN semantics, so NaN is remembered apart and put back at the end.
 */
static inline float clamp_mag(float x, float limit, uint32_t *nan)
{
    uint32_t a = bits_of(x) & 0x7fffffffu, l = bits_of(limit);
    *nan = 0u - (uint32_t)(a > 0x7f800000u);
    return float_of(a < l ? a : l);
}

static inline float with_nan(float v, uint32_t nan)
{
    return float_of(bits_of(v) | (nan & 0x7fc00000u));
}

/* exp(t) = *scale * (1 + *pm1) for PS_VM_EXP_MIN <= t <= 0. */
static inline void exp_parts(float t, float *scale, float *pm1)
{
    float j = t * PS_VM_LOG2E + PS_VM_SHIFTER;
    float n = j - PS_VM_SHIFTER;
    float r = t - n * PS_VM_LN2_HI;
    r = r - n * PS_VM_LN2_LO;
    float q = PS_VM_C4 * r + PS_VM_C3;
    q = q * r + PS_VM_C2;
    q = q * r + PS_VM_C1;
    q = q * r + PS_VM_C0;
    *pm1 = (r * r) * q + r;
    *scale = float_of(bits_of(j) << 23);
}

/* sigmoid(x) = num / den: exp(-|x|) keeps the exponential below 1 either way. */
static inline void sigmoid_frac(float x, float *num, float *den)
{
    uint32_t nan;
    float scale, pm1;
    exp_parts(-clamp_mag(x, -PS_VM_EXP_MIN, &nan), &scale, &pm1);
    float e = scale * pm1 + scale;
    /* A mask, not a ternary, for the same reason as in clamp_mag. */
    uint32_t neg = 0u - (bits_of(x) >> 31);
    *num = with_nan(float_of((bits_of(e) & neg) | (bits_of(1.0f) & ~neg)), nan);
    *den = 1.0f + e;
}

/* tanh(x) = num / den from em1 = expm1(-2|x|): no cancellation near 0. */
static inline void tanh_frac(float x, float *num, float *den)
{
    uint32_t nan;
    float scale, pm1;
    exp_parts(-2.0f * clamp_mag(x, -0.5f * PS_VM_EXP_MIN, &nan), &scale, &pm1);
    float em1 = scale * pm1 + (scale - 1.0f);
    /* em1 <= 0, so -em1 = |em1|, given the sign of x. */
    *num = with_nan(copysignf(em1, x), nan);
    *den = 2.0f + em1;
}

static void sigmoid_block(const float *restrict x, float *restrict y)
{
    for (int k = 0; k < BLOCK; k++) {
        float num, den;
        sigmoid_frac(x[k], &num, &den);
        y[k] = num / den;
    }
}

static void tanh_block(const float *restrict x, float *restrict y)
{
    for (int k = 0; k < BLOCK; k++) {
        float num, den;
        tanh_frac(x[k], &num, &den);
        y[k] = num / den;
    }
}

typedef void (*block_fn)(const float *restrict x, float *restrict y);

/*
 * Inlined into each caller, so fn becomes a direct, inlined call. Full
 * blocks copy a constant size, which compiles to plain vector moves; a
 * variable-size copy would be a rep movs with its start-up cost.
 */
static inline void map_blocks(size_t n, const float *x, float *y, block_fn fn)
{
    float xb[BLOCK], yb[BLOCK];
    size_t i = 0;
    for (; n - i >= BLOCK; i += BLOCK) {
        memcpy(xb, x + i, sizeof xb);
        fn(xb, yb);
        memcpy(y + i, yb, sizeof yb);
    }
    if (i < n) {
        memset(xb, 0, sizeof xb);
        memcpy(xb, x + i, (n - i) * sizeof *x);
        fn(xb, yb);
        memcpy(y + i, yb, (n - i) * sizeof *y);
    }
}

static void sigmoid_portable(size_t n, const float *x, float *y)
{
    map_blocks(n, x, y, sigmoid_block);
}

static void tanh_portable(size_t n, const float *x, float *y)
{
    map_blocks(n, x, y, tanh_block);
}

/* The gate pre-activations of one block, bias already added, and its cell. */
typedef struct lstm_block {
    float i[BLOCK], f[BLOCK], g[BLOCK], o[BLOCK], c[BLOCK], h[BLOCK];
} lstm_block;

/*
 * c' = f c + i g and h = o tanh(c') as fractions: with f = nf/df and so on,
 * c' = (nf c di dg + ni ng df) / (df di dg). Each den lies in [1, 2], so the
 * products cannot overflow for any cell value a real model reaches.
 *
 * Two loops split at c', for the out-of-order window (see lstm_cell_avx2):
 * o's fraction waits in the i and f arrays, which are spent by then.
 */
static void lstm_block_run(lstm_block *restrict s)
{
    for (int k = 0; k < BLOCK; k++) {
        float ni, di, nf, df, ng, dg;
        sigmoid_frac(s->i[k], &ni, &di);
        sigmoid_frac(s->f[k], &nf, &df);
        tanh_frac(s->g[k], &ng, &dg);
        sigmoid_frac(s->o[k], &s->i[k], &s->f[k]);
        float dig = di * dg;
        s->c[k] = ((nf * s->c[k]) * dig + (ni * ng) * df) / (dig * df);
    }
    for (int k = 0; k < BLOCK; k++) {
        float nt, dt;
        tanh_frac(s->c[k], &nt, &dt);
        s->h[k] = (s->i[k] * nt) / (s->f[k] * dt);
    }
}

static inline void lstm_load(lstm_block *s, size_t hidden, size_t j, size_t m, const float *g,
                             const float *b, const float *c)
{
    for (size_t k = 0; k < m; k++) {
        s->i[k] = g[j + k] + b[j + k];
        s->f[k] = g[hidden + j + k] + b[hidden + j + k];
        s->g[k] = g[2 * hidden + j + k] + b[2 * hidden + j + k];
        s->o[k] = g[3 * hidden + j + k] + b[3 * hidden + j + k];
        s->c[k] = c[j + k];
    }
}

static void lstm_cell_portable(size_t hidden, float *g, const float *b, float *c, float *h)
{
    lstm_block s;
    size_t j = 0;
    for (; hidden - j >= BLOCK; j += BLOCK) {
        lstm_load(&s, hidden, j, BLOCK, g, b, c);
        lstm_block_run(&s);
        memcpy(c + j, s.c, sizeof s.c);
        memcpy(h + j, s.h, sizeof s.h);
    }
    if (j < hidden) {
        size_t m = hidden - j;
        memset(&s, 0, sizeof s);
        lstm_load(&s, hidden, j, m, g, b, c);
        lstm_block_run(&s);
        memcpy(c + j, s.c, m * sizeof *c);
        memcpy(h + j, s.h, m * sizeof *h);
    }
}

/* DOT_LANES partial sums: the compiler may not reorder one float sum itself. */
static float dot_portable(size_t n, const float *a, const float *b)
{
    float acc[DOT_LANES] = {0};
    size_t i = 0;
    for (; n - i >= DOT_LANES; i += DOT_LANES)
        for (int k = 0; k < DOT_LANES; k++)
            acc[k] += a[i + k] * b[i + k];
    for (int k = 0; i < n; i++, k++)
        acc[k] += a[i] * b[i];
    for (int w = DOT_LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++)
            acc[k] += acc[k + w];
    return acc[0];
}

const ps_vecmath ps_vecmath_portable = {
    .name = "portable",
    .sigmoid = sigmoid_portable,
    .tanh = tanh_portable,
    .lstm_cell = lstm_cell_portable,
    .dot = dot_portable,
};
