/*
 * test_vecmath.c - every vecmath table this CPU can run, against libm and a
 * double-precision formula.
 *
 * sigmoid and tanh are cheap next to their references, so they are checked
 * over the whole float range: a strided walk over the bit patterns of all
 * non-negative floats (NaNs, infinities and denormals included), a dense
 * walk over [-20, 20] where the curves bend, and a list of special values
 * and thresholds with their neighbours. Every value goes in with its
 * negation beside it, which covers both signs and lets tanh's odd symmetry
 * be checked bit for bit. The references are computed once a batch and
 * shared by all tables.
 *
 * The LSTM cell is checked against the gate formula in double; dot against a
 * double sum with the usual bound on float summation error. Tails run every
 * n from 0 to 70 with exactly sized inputs (so that ASan sees any read past
 * n) at several misalignments, and outputs between guard values that must
 * come back unchanged (so that any write past n shows without ASan).
 *
 * The sizes are fixed, not scaled for sanitizer builds: about 14 million
 * values per function take well under a second per table normally and fit
 * the sanitizer budget too.
 */
#include "kernels/cpu/vecmath.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_TABLES = 3,
    BATCH = 4096,     /* even: values go in as (v, -v) pairs */
    STRIDE = 509,     /* odd, so the walk meets every low-bit pattern */
    DENSE_SHIFT = 17, /* the dense walk steps by 2^-17 */
    GUARD = 16,       /* guard floats each side of an output */
    MAX_REPORTS = 10, /* failures printed per table and function */
};

static const double TOL_ACT = 1e-6;  /* sigmoid, tanh: absolute */
static const double TOL_CELL = 2e-6; /* lstm_cell: absolute for |c| <= 4 */
static const float GUARD_VALUE = -12345.5f;

static const ps_vecmath *tables[MAX_TABLES];
static int ntables;

typedef struct act_stats {
    double err_d; /* against the double formula */
    double err_f; /* against libm in float */
    float worst_d, worst_f;
    long checked;
    int reports;
} act_stats;

static act_stats sig_stats[MAX_TABLES], tanh_stats[MAX_TABLES];
static double cell_err[MAX_TABLES], dot_err[MAX_TABLES];

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

/* Uniform in [lo, hi). */
static float rng_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_next() >> 40) / (double)(1u << 24));
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Exactly n floats (the end of the block is where ASan looks), 1 for n = 0. */
static float *alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static double sigmoid_d(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* One reference set per batch, shared by all tables. */
static double ref_sig_d[BATCH], ref_tanh_d[BATCH];
static float ref_sig_f[BATCH], ref_tanh_f[BATCH];
static float batch_x[BATCH], batch_y[BATCH];
static size_t batch_n;

static void report(act_stats *st, const char *table, const char *fn, float x, float y,
                   const char *what)
{
    test_failures++;
    if (st->reports++ < MAX_REPORTS)
        fprintf(stderr, "%s %s(%.9g) = %.9g: %s\n", table, fn, (double)x, (double)y, what);
}

static void note_err(act_stats *st, double ed, double ef, float x)
{
    if (ed > st->err_d) {
        st->err_d = ed;
        st->worst_d = x;
    }
    if (ef > st->err_f) {
        st->err_f = ef;
        st->worst_f = x;
    }
}

static void check_sigmoid(const ps_vecmath *vm, act_stats *st)
{
    vm->sigmoid(batch_n, batch_x, batch_y);
    for (size_t k = 0; k < batch_n; k++) {
        float x = batch_x[k], y = batch_y[k];
        st->checked++;
        if (isnan(x)) {
            if (!isnan(y)) report(st, vm->name, "sigmoid", x, y, "NaN expected");
            continue;
        }
        double ed = fabs(y - ref_sig_d[k]), ef = fabs(y - ref_sig_f[k]);
        note_err(st, ed, ef, x);
        if (!(ed <= TOL_ACT && ef <= TOL_ACT))
            report(st, vm->name, "sigmoid", x, y, "too far from the reference");
        if (!(y >= 0.0f && y <= 1.0f)) report(st, vm->name, "sigmoid", x, y, "outside [0, 1]");
        /* Past these the true value rounds to exactly 1 or 0 in float. */
        if (x >= 17.5f && y != 1.0f) report(st, vm->name, "sigmoid", x, y, "exactly 1 expected");
        if (x <= -104.0f && y != 0.0f) report(st, vm->name, "sigmoid", x, y, "exactly 0 expected");
    }
}

static void check_tanh(const ps_vecmath *vm, act_stats *st)
{
    vm->tanh(batch_n, batch_x, batch_y);
    for (size_t k = 0; k < batch_n; k++) {
        float x = batch_x[k], y = batch_y[k];
        st->checked++;
        if (isnan(x)) {
            if (!isnan(y)) report(st, vm->name, "tanh", x, y, "NaN expected");
            continue;
        }
        double ed = fabs(y - ref_tanh_d[k]), ef = fabs(y - ref_tanh_f[k]);
        note_err(st, ed, ef, x);
        if (!(ed <= TOL_ACT && ef <= TOL_ACT))
            report(st, vm->name, "tanh", x, y, "too far from the reference");
        if (!(fabsf(y) <= 1.0f)) report(st, vm->name, "tanh", x, y, "outside [-1, 1]");
        if (signbit(y) != signbit(x)) report(st, vm->name, "tanh", x, y, "wrong sign");
        if (fabsf(x) >= 9.1f && fabsf(y) != 1.0f)
            report(st, vm->name, "tanh", x, y, "exactly +-1 expected");
        if (k % 2 == 1 && x == -batch_x[k - 1] && y != -batch_y[k - 1])
            report(st, vm->name, "tanh", x, y, "not odd: differs from -tanh(-x)");
    }
}

static void flush_batch(void)
{
    for (size_t k = 0; k < batch_n; k++) {
        float x = batch_x[k];
        ref_sig_d[k] = sigmoid_d(x);
        ref_sig_f[k] = 1.0f / (1.0f + expf(-x));
        ref_tanh_d[k] = tanh((double)x);
        ref_tanh_f[k] = tanhf(x);
    }
    for (int t = 0; t < ntables; t++) {
        check_sigmoid(tables[t], &sig_stats[t]);
        check_tanh(tables[t], &tanh_stats[t]);
    }
    batch_n = 0;
}

static void push_pair(float v)
{
    batch_x[batch_n++] = v;
    batch_x[batch_n++] = -v;
    if (batch_n == BATCH) flush_batch();
}

static void check_activations(void)
{
    /* The whole range: NaN, inf and denormal bit patterns come up too. */
    for (uint64_t u = 0; u <= 0x7fffffffu; u += STRIDE)
        push_pair(float_of((uint32_t)u));
    /* Where the curves bend; 2^-17 steps are exact multiples in float. */
    for (int32_t k = 0; k <= (20 << DENSE_SHIFT); k++)
        push_pair(ldexpf((float)k, -DENSE_SHIFT));
    /* Specials, the thresholds of exp's clamp and of exact 0, 1 and +-1. */
    static const float specials[] = {
        0.0f,     INFINITY, NAN,      FLT_MAX,  FLT_MIN, FLT_TRUE_MIN, 0x1.fffffcp-127f,
        1e-30f,   1e-10f,   1e-7f,    1e-4f,    0.01f,   0.1f,         0.5f,
        1.0f,     2.0f,     9.0f,     9.01f,    9.1f,    16.5f,        16.6355f,
        17.0f,    17.3287f, 17.5f,    44.0f,    86.0f,   87.0f,        87.33654f,
        87.68f,   88.0f,    88.3763f, 88.7228f, 89.0f,   100.0f,       103.279f,
        103.972f, 104.0f,   105.0f,   200.0f,   1e10f,   1e30f,
    };
    for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
        float v = specials[s];
        push_pair(v);
        push_pair(nextafterf(v, 0.0f));
        push_pair(nextafterf(v, INFINITY));
    }
    push_pair(float_of(0x7fc00001u)); /* a NaN with payload */
    push_pair(float_of(0x7f800001u)); /* a signalling NaN */
    if (batch_n) flush_batch();
}

/* --- lstm_cell ------------------------------------------------------------ */

/* The gate formula of vecmath.h in double, for row j. */
static void cell_ref(size_t hidden, size_t j, const float *g, const float *b, float c,
                     double *c_out, double *h_out)
{
    double zi = (double)g[j] + b[j], zf = (double)g[hidden + j] + b[hidden + j];
    double zg = (double)g[2 * hidden + j] + b[2 * hidden + j];
    double zo = (double)g[3 * hidden + j] + b[3 * hidden + j];
    double cn = sigmoid_d(zf) * c + sigmoid_d(zi) * tanh(zg);
    *c_out = cn;
    *h_out = sigmoid_d(zo) * tanh(cn);
}

/* Gate pre-activations: mostly moderate, a few saturating. */
static float gate_value(void)
{
    uint64_t pick = rng_next() % 16;
    if (pick == 0) return rng_uniform(-120.0f, 120.0f);
    if (pick == 1) return rng_uniform(-0.01f, 0.01f);
    return rng_uniform(-8.0f, 8.0f);
}

/*
 * One call on exactly sized copies placed off by `offset` floats inside
 * their allocations (end flush with the end, for ASan), c and h between
 * guards; checks results, guards and that b and the untouched part of g are
 * unchanged. Returns the largest error.
 */
static double check_cell_call(const ps_vecmath *vm, size_t hidden, size_t offset, float c_scale)
{
    size_t n4 = 4 * hidden;
    float *g = alloc_floats(n4 + offset), *b = alloc_floats(n4 + offset);
    float *c = alloc_floats(hidden + 2 * GUARD), *h = alloc_floats(hidden + 2 * GUARD);
    float *g0 = alloc_floats(n4), *c0 = alloc_floats(hidden);
    float *gp = g + offset, *bp = b + offset;
    for (size_t k = 0; k < n4; k++) {
        gp[k] = g0[k] = gate_value();
        bp[k] = rng_uniform(-1.0f, 1.0f);
    }
    for (size_t k = 0; k < hidden + 2 * GUARD; k++)
        c[k] = h[k] = GUARD_VALUE;
    for (size_t k = 0; k < hidden; k++)
        c[GUARD + k] = c0[k] = rng_uniform(-c_scale, c_scale);
    for (size_t k = 0; k < offset; k++)
        g[k] = b[k] = GUARD_VALUE;

    vm->lstm_cell(hidden, gp, bp, c + GUARD, h + GUARD);

    double worst = 0.0;
    for (size_t j = 0; j < hidden; j++) {
        double cr, hr;
        cell_ref(hidden, j, g0, bp, c0[j], &cr, &hr);
        double tol = TOL_CELL * (fabs(cr) > 4.0 ? fabs(cr) / 4.0 : 1.0);
        double ec = fabs(c[GUARD + j] - cr), eh = fabs(h[GUARD + j] - hr);
        if (ec > worst) worst = ec;
        if (eh > worst) worst = eh;
        CHECKF(ec <= tol && eh <= tol,
               "%s lstm_cell hidden %zu j %zu: c %.9g (want %.9g), h %.9g (want %.9g)", vm->name,
               hidden, j, (double)c[GUARD + j], cr, (double)h[GUARD + j], hr);
    }
    for (size_t k = 0; k < GUARD; k++) {
        CHECK(c[k] == GUARD_VALUE && c[GUARD + hidden + k] == GUARD_VALUE);
        CHECK(h[k] == GUARD_VALUE && h[GUARD + hidden + k] == GUARD_VALUE);
    }
    for (size_t k = 0; k < offset; k++)
        CHECK(g[k] == GUARD_VALUE && b[k] == GUARD_VALUE);
    free(g);
    free(b);
    free(c);
    free(h);
    free(g0);
    free(c0);
    return worst;
}

static void check_lstm_cell(void)
{
    static const size_t sizes[] = {1, 3, 7, 8, 15, 16, 17, 32, 33, 64, 100};
    for (int t = 0; t < ntables; t++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            for (int rep = 0; rep < 40; rep++) {
                double e = check_cell_call(tables[t], sizes[s], (size_t)rep % 4, 3.0f);
                if (e > cell_err[t]) cell_err[t] = e;
            }
            /* Large cell values, where the tolerance becomes relative. */
            check_cell_call(tables[t], sizes[s], 1, 1000.0f);
        }
        for (size_t hidden = 0; hidden <= 70; hidden++)
            for (size_t offset = 0; offset < 4; offset++)
                check_cell_call(tables[t], hidden, offset, 3.0f);
    }
}

/* --- tails of sigmoid and tanh -------------------------------------------- */

static void check_act_tails(const ps_vecmath *vm)
{
    for (size_t n = 0; n <= 70; n++) {
        for (size_t offset = 0; offset < 4; offset++) {
            float *x = alloc_floats(n + offset), *y = alloc_floats(n + 2 * GUARD);
            float *xp = x + offset;
            for (size_t k = 0; k < n; k++)
                xp[k] = rng_uniform(-12.0f, 12.0f);
            for (int fn = 0; fn < 2; fn++) {
                for (size_t k = 0; k < n + 2 * GUARD; k++)
                    y[k] = GUARD_VALUE;
                (fn ? vm->tanh : vm->sigmoid)(n, xp, y + GUARD);
                for (size_t k = 0; k < n; k++) {
                    double want = fn ? tanh((double)xp[k]) : sigmoid_d(xp[k]);
                    CHECKF(fabs(y[GUARD + k] - want) <= TOL_ACT, "%s %s tail n %zu k %zu", vm->name,
                           fn ? "tanh" : "sigmoid", n, k);
                }
                for (size_t k = 0; k < GUARD; k++)
                    CHECKF(y[k] == GUARD_VALUE && y[GUARD + n + k] == GUARD_VALUE,
                           "%s %s wrote outside n = %zu", vm->name, fn ? "tanh" : "sigmoid", n);
            }
            /* In place: y == x. */
            for (size_t k = 0; k < n; k++)
                y[GUARD + k] = xp[k];
            vm->sigmoid(n, y + GUARD, y + GUARD);
            for (size_t k = 0; k < n; k++)
                CHECK_NEAR(y[GUARD + k], sigmoid_d(xp[k]), TOL_ACT);
            free(x);
            free(y);
        }
    }
}

/* --- dot -------------------------------------------------------------------- */

static void check_dot_n(int t, size_t n, size_t offset)
{
    const ps_vecmath *vm = tables[t];
    float *a = alloc_floats(n + offset), *b = alloc_floats(n + offset);
    float *ap = a + offset, *bp = b + offset;
    double sum = 0.0, mag = 0.0;
    for (size_t k = 0; k < n; k++) {
        ap[k] = rng_uniform(-2.0f, 2.0f);
        bp[k] = rng_uniform(-2.0f, 2.0f);
        sum += (double)ap[k] * bp[k];
        mag += fabs((double)ap[k] * bp[k]);
    }
    float d = vm->dot(n, ap, bp);
    /* Float summation in at least 8 lanes: error <= (n/8 + 8) eps sum|ab|. */
    double tol = ((double)n / 8.0 + 8.0) * FLT_EPSILON * mag;
    CHECKF(fabs(d - sum) <= tol, "%s dot n %zu: %.9g, want %.9g", vm->name, n, (double)d, sum);
    if (n == 0) CHECK(d == 0.0f);
    if (mag > 0 && fabs(d - sum) / mag > dot_err[t]) dot_err[t] = fabs(d - sum) / mag;
    free(a);
    free(b);
}

static void check_dot(void)
{
    static const size_t big[] = {100, 255, 256, 257, 1000, 4099};
    for (int t = 0; t < ntables; t++) {
        for (size_t n = 0; n <= 70; n++)
            for (size_t offset = 0; offset < 4; offset++)
                check_dot_n(t, n, offset);
        for (size_t s = 0; s < sizeof big / sizeof big[0]; s++)
            check_dot_n(t, big[s], s % 4);
    }
}

int main(void)
{
    tables[ntables++] = &ps_vecmath_portable;
    if (ps_vecmath_cpu_has_avx2())
        tables[ntables++] = &ps_vecmath_avx2;
    else
        printf("skipped: avx2 (this CPU lacks AVX2 or FMA)\n");
    if (ps_vecmath_cpu_has_avx512())
        tables[ntables++] = &ps_vecmath_avx512;
    else
        printf("skipped: avx512 (this CPU lacks AVX-512 F/DQ/VL/BW)\n");

    check_activations();
    for (int t = 0; t < ntables; t++) {
        check_act_tails(tables[t]);
        CHECK(strcmp(tables[t]->name, t == 0 ? "portable" : t == 1 ? "avx2" : "avx512") == 0);
    }
    check_lstm_cell();
    check_dot();

    for (int t = 0; t < ntables; t++) {
        const act_stats *s = &sig_stats[t], *th = &tanh_stats[t];
        printf("%-8s sigmoid: %ld values, max abs err %.3g vs double (x = %.9g), %.3g vs libm "
               "float (x = %.9g)\n",
               tables[t]->name, s->checked, s->err_d, (double)s->worst_d, s->err_f,
               (double)s->worst_f);
        printf("%-8s tanh:    %ld values, max abs err %.3g vs double (x = %.9g), %.3g vs libm "
               "float (x = %.9g)\n",
               tables[t]->name, th->checked, th->err_d, (double)th->worst_d, th->err_f,
               (double)th->worst_f);
        printf("%-8s lstm_cell max abs err %.3g (|c| <= 4); dot max err / sum|ab| %.3g\n",
               tables[t]->name, cell_err[t], dot_err[t]);
    }
    return test_finish("test_vecmath");
}
