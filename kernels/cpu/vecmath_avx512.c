/*
 * vecmath_avx512.c - the vector math with AVX-512, 16 floats a register.
 * Compiled with -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma;
 * run only where ps_vecmath_cpu_has_avx512().
 *
 * Line for line the AVX2 algorithm (see vecmath_avx2.c and
 * vecmath_consts.h) at twice the width. What AVX-512 adds is used where it
 * saves work: the tail is an ordinary pass under a lane mask (masked loads
 * and stores never touch the lanes they leave out), and the sign of x
 * becomes a mask register in one instruction (vpmovd2m) for the sigmoid's
 * select.
 */
#include "vecmath.h"
#include "vecmath_consts.h"

#include <immintrin.h>
#include <stdint.h>

enum { LANES = 16 };

/* Lanes below m (0 < m < LANES) set. */
static inline __mmask16 tail_mask(size_t m)
{
    return (__mmask16)((1u << m) - 1u);
}

/* exp(t) = *scale * (1 + *pm1) for t <= 0; max(limit, t) keeps a NaN t. */
static inline void exp_parts(__m512 t, __m512 *scale, __m512 *pm1)
{
    t = _mm512_max_ps(_mm512_set1_ps(PS_VM_EXP_MIN), t);
    __m512 j = _mm512_fmadd_ps(t, _mm512_set1_ps(PS_VM_LOG2E), _mm512_set1_ps(PS_VM_SHIFTER));
    __m512 n = _mm512_sub_ps(j, _mm512_set1_ps(PS_VM_SHIFTER));
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(PS_VM_LN2), t);
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 lo = _mm512_fmadd_ps(_mm512_set1_ps(PS_VM_C1), r, _mm512_set1_ps(PS_VM_C0));
    __m512 hi = _mm512_fmadd_ps(_mm512_set1_ps(PS_VM_C3), r, _mm512_set1_ps(PS_VM_C2));
    hi = _mm512_fmadd_ps(_mm512_set1_ps(PS_VM_C4), r2, hi);
    *pm1 = _mm512_fmadd_ps(r2, _mm512_fmadd_ps(hi, r2, lo), r);
    *scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(j), 23));
}

static inline void sigmoid_frac(__m512 x, __m512 *num, __m512 *den)
{
    __m512 scale, pm1;
    exp_parts(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)), &scale, &pm1);
    __m512 e = _mm512_fmadd_ps(scale, pm1, scale);
    __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(x));
    *num = _mm512_mask_blend_ps(neg, _mm512_set1_ps(1.0f), e);
    *den = _mm512_add_ps(_mm512_set1_ps(1.0f), e);
}

static inline void tanh_frac(__m512 x, __m512 *num, __m512 *den)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    __m512 xs = _mm512_and_ps(x, sign);
    __m512 t = _mm512_mul_ps(_mm512_xor_ps(x, xs), _mm512_set1_ps(-2.0f));
    __m512 scale, pm1;
    exp_parts(t, &scale, &pm1);
    __m512 em1 = _mm512_fmadd_ps(scale, pm1, _mm512_sub_ps(scale, _mm512_set1_ps(1.0f)));
    *num = _mm512_or_ps(_mm512_andnot_ps(sign, em1), xs);
    *den = _mm512_add_ps(_mm512_set1_ps(2.0f), em1);
}

static inline __m512 sigmoid16(__m512 x)
{
    __m512 num, den;
    sigmoid_frac(x, &num, &den);
    return _mm512_div_ps(num, den);
}

static inline __m512 tanh16(__m512 x)
{
    __m512 num, den;
    tanh_frac(x, &num, &den);
    return _mm512_div_ps(num, den);
}

static void sigmoid_avx512(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; n - i >= LANES; i += LANES)
        _mm512_storeu_ps(y + i, sigmoid16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, sigmoid16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

static void tanh_avx512(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; n - i >= LANES; i += LANES)
        _mm512_storeu_ps(y + i, tanh16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, tanh16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* c' = (nf c di dg + ni ng df) / (df di dg); o stays the fraction no / dn. */
static inline __m512 cell16(__m512 zi, __m512 zf, __m512 zg, __m512 zo, __m512 c, __m512 *no,
                            __m512 *dn)
{
    __m512 ni, di, nf, df, ng, dg;
    sigmoid_frac(zi, &ni, &di);
    sigmoid_frac(zf, &nf, &df);
    tanh_frac(zg, &ng, &dg);
    sigmoid_frac(zo, no, dn);
    __m512 dig = _mm512_mul_ps(di, dg);
    __m512 num =
        _mm512_fmadd_ps(_mm512_mul_ps(nf, c), dig, _mm512_mul_ps(_mm512_mul_ps(ni, ng), df));
    return _mm512_div_ps(num, _mm512_mul_ps(dig, df));
}

/* h = o tanh(c') = no nt / (dn dt). */
static inline __m512 hidden16(__m512 c, __m512 no, __m512 dn)
{
    __m512 nt, dt;
    tanh_frac(c, &nt, &dt);
    return _mm512_div_ps(_mm512_mul_ps(no, nt), _mm512_mul_ps(dn, dt));
}

static inline __m512 load_sum(__mmask16 m, const float *p, const float *q)
{
    return _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), _mm512_maskz_loadu_ps(m, q));
}

/*
 * Two passes split at the new cell, for the reason given at
 * lstm_cell_avx2: one pass is a dependency chain too long for the reorder
 * buffer to overlap. Full blocks run under an all-ones mask, which costs
 * nothing, so the tail needs no second copy of the loop body.
 */
static void lstm_cell_avx512(size_t hidden, float *g, const float *b, float *c, float *h)
{
    const float *gi = g, *gf = g + hidden, *gg = g + 2 * hidden;
    const float *bi = b, *bf = b + hidden, *bg = b + 2 * hidden, *bo = b + 3 * hidden;
    float *go = g + 3 * hidden;
    for (size_t j = 0; j < hidden; j += LANES) {
        __mmask16 m = hidden - j >= LANES ? (__mmask16)0xffff : tail_mask(hidden - j);
        __m512 no, dn;
        __m512 cn = cell16(load_sum(m, gi + j, bi + j), load_sum(m, gf + j, bf + j),
                           load_sum(m, gg + j, bg + j), load_sum(m, go + j, bo + j),
                           _mm512_maskz_loadu_ps(m, c + j), &no, &dn);
        _mm512_mask_storeu_ps(c + j, m, cn);
        _mm512_mask_storeu_ps(h + j, m, no);
        _mm512_mask_storeu_ps(go + j, m, dn);
    }
    for (size_t j = 0; j < hidden; j += LANES) {
        __mmask16 m = hidden - j >= LANES ? (__mmask16)0xffff : tail_mask(hidden - j);
        __m512 hn = hidden16(_mm512_maskz_loadu_ps(m, c + j), _mm512_maskz_loadu_ps(m, h + j),
                             _mm512_maskz_loadu_ps(m, go + j));
        _mm512_mask_storeu_ps(h + j, m, hn);
    }
}

/* Four accumulators hide the FMA latency; the tail is one masked step. */
static float dot_avx512(size_t n, const float *a, const float *b)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; n - i >= 4 * LANES; i += 4 * LANES) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; n - i >= LANES; i += LANES)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

const ps_vecmath ps_vecmath_avx512 = {
    .name = "avx512",
    .sigmoid = sigmoid_avx512,
    .tanh = tanh_avx512,
    .lstm_cell = lstm_cell_avx512,
    .dot = dot_avx512,
};
