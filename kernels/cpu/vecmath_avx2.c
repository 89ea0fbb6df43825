/*
 * vecmath_avx2.c - the vector math with AVX2 and FMA, 8 floats a register.
 * Compiled with -mavx2 -mfma; run only where ps_vecmath_cpu_has_avx2().
 *
 * The algorithm is the portable one (see vecmath_consts.h and
 * vecmath_portable.c): exp by range reduction and a degree-6 polynomial,
 * sigmoid and tanh as fractions num / den, and an LSTM cell that multiplies
 * the fractions together to divide twice per element instead of five times.
 * FMA rounds once per step, which allows the one-step range reduction and
 * Estrin's scheme; results differ from the portable ones in the last bit or
 * two, with the same worst-case error.
 *
 * Tails use vmaskmovps: masked-off lanes are neither read nor written (and
 * cannot fault), so a tail costs one more pass of the vector body instead of
 * a scalar loop, and nothing past n is touched.
 *
 * NaN: vmaxps returns its second operand when either is NaN, so the clamp
 * is written max(limit, t) and a NaN input flows through to the output.
 */
#include "vecmath.h"
#include "vecmath_consts.h"

#include <immintrin.h>
#include <stdint.h>

enum { LANES = 8 };

/* Lanes below m (0 < m <= LANES) set, for vmaskmovps. */
static inline __m256i tail_mask(size_t m)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/*
 * exp(t) = *scale * (1 + *pm1) for t <= 0. Estrin's scheme for the
 * polynomial and the one-step reduction keep the dependency chain at 8
 * operations; see lstm_cell_avx2 for why latency matters here.
 */
static inline void exp_parts(__m256 t, __m256 *scale, __m256 *pm1)
{
    t = _mm256_max_ps(_mm256_set1_ps(PS_VM_EXP_MIN), t);
    __m256 j = _mm256_fmadd_ps(t, _mm256_set1_ps(PS_VM_LOG2E), _mm256_set1_ps(PS_VM_SHIFTER));
    __m256 n = _mm256_sub_ps(j, _mm256_set1_ps(PS_VM_SHIFTER));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(PS_VM_LN2), t);
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 lo = _mm256_fmadd_ps(_mm256_set1_ps(PS_VM_C1), r, _mm256_set1_ps(PS_VM_C0));
    __m256 hi = _mm256_fmadd_ps(_mm256_set1_ps(PS_VM_C3), r, _mm256_set1_ps(PS_VM_C2));
    hi = _mm256_fmadd_ps(_mm256_set1_ps(PS_VM_C4), r2, hi);
    *pm1 = _mm256_fmadd_ps(r2, _mm256_fmadd_ps(hi, r2, lo), r);
    *scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(j), 23));
}

static inline void sigmoid_frac(__m256 x, __m256 *num, __m256 *den)
{
    __m256 scale, pm1;
    exp_parts(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)), &scale, &pm1);
    __m256 e = _mm256_fmadd_ps(scale, pm1, scale);
    /* blendv picks by the sign bit of x: e / (1 + e) for x < 0. */
    *num = _mm256_blendv_ps(_mm256_set1_ps(1.0f), e, x);
    *den = _mm256_add_ps(_mm256_set1_ps(1.0f), e);
}

static inline void tanh_frac(__m256 x, __m256 *num, __m256 *den)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 xs = _mm256_and_ps(x, sign);
    __m256 t = _mm256_mul_ps(_mm256_xor_ps(x, xs), _mm256_set1_ps(-2.0f));
    __m256 scale, pm1;
    exp_parts(t, &scale, &pm1);
    __m256 em1 = _mm256_fmadd_ps(scale, pm1, _mm256_sub_ps(scale, _mm256_set1_ps(1.0f)));
    *num = _mm256_or_ps(_mm256_andnot_ps(sign, em1), xs);
    *den = _mm256_add_ps(_mm256_set1_ps(2.0f), em1);
}

static inline __m256 sigmoid8(__m256 x)
{
    __m256 num, den;
    sigmoid_frac(x, &num, &den);
    return _mm256_div_ps(num, den);
}

static inline __m256 tanh8(__m256 x)
{
    __m256 num, den;
    tanh_frac(x, &num, &den);
    return _mm256_div_ps(num, den);
}

static void sigmoid_avx2(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; n - i >= LANES; i += LANES)
        _mm256_storeu_ps(y + i, sigmoid8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, sigmoid8(_mm256_maskload_ps(x + i, m)));
    }
}

static void tanh_avx2(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; n - i >= LANES; i += LANES)
        _mm256_storeu_ps(y + i, tanh8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, tanh8(_mm256_maskload_ps(x + i, m)));
    }
}

static inline __m256 load_sum(const float *p, const float *q)
{
    return _mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(q));
}

static inline __m256 load_sum_masked(__m256i m, const float *p, const float *q)
{
    return _mm256_add_ps(_mm256_maskload_ps(p, m), _mm256_maskload_ps(q, m));
}

/*
 * The gates and the new cell: c' = (nf c di dg + ni ng df) / (df di dg).
 * The output gate is left as its fraction no / dn for the second pass.
 */
static inline __m256 cell8(__m256 zi, __m256 zf, __m256 zg, __m256 zo, __m256 c, __m256 *no,
                           __m256 *dn)
{
    __m256 ni, di, nf, df, ng, dg;
    sigmoid_frac(zi, &ni, &di);
    sigmoid_frac(zf, &nf, &df);
    tanh_frac(zg, &ng, &dg);
    sigmoid_frac(zo, no, dn);
    __m256 dig = _mm256_mul_ps(di, dg);
    __m256 num =
        _mm256_fmadd_ps(_mm256_mul_ps(nf, c), dig, _mm256_mul_ps(_mm256_mul_ps(ni, ng), df));
    return _mm256_div_ps(num, _mm256_mul_ps(dig, df));
}

/* h = o tanh(c') = no nt / (dn dt). */
static inline __m256 hidden8(__m256 c, __m256 no, __m256 dn)
{
    __m256 nt, dt;
    tanh_frac(c, &nt, &dt);
    return _mm256_div_ps(_mm256_mul_ps(no, nt), _mm256_mul_ps(dn, dt));
}

/*
 * Two passes over the row, not one. In one pass, each 8 elements are a
 * dependency chain of ~130 cycles (gates, a division, tanh of the new cell,
 * another division) and ~180 micro-ops, and a reorder buffer of 224 entries
 * (Skylake) holds little more than one such chain: the core waits on
 * latency with ports idle. Split at the new cell, each pass has half the
 * chain and the core overlaps several blocks: llvm-mca's Skylake-X model
 * gives ~93 cycles per 8 elements for one pass and ~57 for two. The output
 * gate's fraction waits between the passes in h and in the o block of g,
 * which the interface lets us overwrite.
 */
static void lstm_cell_avx2(size_t hidden, float *g, const float *b, float *c, float *h)
{
    const float *gi = g, *gf = g + hidden, *gg = g + 2 * hidden;
    const float *bi = b, *bf = b + hidden, *bg = b + 2 * hidden, *bo = b + 3 * hidden;
    float *go = g + 3 * hidden;
    __m256 no, dn;
    size_t j = 0;
    for (; hidden - j >= LANES; j += LANES) {
        __m256 cn =
            cell8(load_sum(gi + j, bi + j), load_sum(gf + j, bf + j), load_sum(gg + j, bg + j),
                  load_sum(go + j, bo + j), _mm256_loadu_ps(c + j), &no, &dn);
        _mm256_storeu_ps(c + j, cn);
        _mm256_storeu_ps(h + j, no);
        _mm256_storeu_ps(go + j, dn);
    }
    if (j < hidden) {
        __m256i m = tail_mask(hidden - j);
        __m256 cn = cell8(load_sum_masked(m, gi + j, bi + j), load_sum_masked(m, gf + j, bf + j),
                          load_sum_masked(m, gg + j, bg + j), load_sum_masked(m, go + j, bo + j),
                          _mm256_maskload_ps(c + j, m), &no, &dn);
        _mm256_maskstore_ps(c + j, m, cn);
        _mm256_maskstore_ps(h + j, m, no);
        _mm256_maskstore_ps(go + j, m, dn);
    }
    for (j = 0; hidden - j >= LANES; j += LANES)
        _mm256_storeu_ps(h + j, hidden8(_mm256_loadu_ps(c + j), _mm256_loadu_ps(h + j),
                                        _mm256_loadu_ps(go + j)));
    if (j < hidden) {
        __m256i m = tail_mask(hidden - j);
        _mm256_maskstore_ps(h + j, m,
                            hidden8(_mm256_maskload_ps(c + j, m), _mm256_maskload_ps(h + j, m),
                                    _mm256_maskload_ps(go + j, m)));
    }
}

static float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four accumulators hide the FMA latency; the tail is one masked step. */
static float dot_avx2(size_t n, const float *a, const float *b)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; n - i >= 4 * LANES; i += 4 * LANES) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; n - i >= LANES; i += LANES)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

const ps_vecmath ps_vecmath_avx2 = {
    .name = "avx2",
    .sigmoid = sigmoid_avx2,
    .tanh = tanh_avx2,
    .lstm_cell = lstm_cell_avx2,
    .dot = dot_avx2,
};
