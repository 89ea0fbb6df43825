/*
 * vecmath_consts.h - the constants of the exponential that every vecmath
 * table shares, so that the three instruction sets compute one algorithm and
 * differ only in lane count and rounding of intermediate steps.
 *
 * Sigmoid and tanh both reduce to exp(t) for t <= 0, written as
 * scale * (1 + pm1): scale = 2^n with n = round(t / ln 2), and pm1 = e^r - 1
 * for the remainder r = t - n ln 2, |r| <= ln 2 / 2. Keeping pm1 apart from
 * the 1 is what lets tanh get expm1 (and so full relative accuracy near 0)
 * for one extra subtraction.
 *
 * - With FMA, r = fma(-n, LN2, t) in one step: the error of LN2 (2^-29)
 *   times |n| only matters where 2^n is small, so it stays under 1e-9 in
 *   exp(t) for t <= 0. Without FMA, ln 2 is split Cody-Waite style: LN2_HI
 *   has 9 significant bits, so n * LN2_HI is exact for |n| <= 127, and
 *   LN2_LO carries the rest.
 * - n is rounded by adding SHIFTER (1.5 * 2^23 + 127): the sum's low
 *   mantissa bits then hold n + 127, the biased exponent of 2^n, so one
 *   integer shift by 23 makes the bits of 2^n, with no float-to-int
 *   conversion (which would be undefined for NaN in C).
 * - t is clamped at EXP_MIN first. -88 gives n = -127, whose biased exponent
 *   field is 0, so scale comes out as exactly +0: sigmoid then returns exactly
 *   0 and tanh exactly +-1 for every input past the clamp, where the true
 *   values are below 1e-38 away. A lower clamp would let n wrap around.
 * - pm1 = r + r^2 * (C0 + C1 r + C2 r^2 + C3 r^3 + C4 r^4), a minimax fit of
 *   (e^r - 1 - r) / r^2 on [-0.3473, 0.3473] (ln 2 / 2 and a margin for the
 *   rounding of n), computed for this project with a Remez exchange and
 *   rounded to float; the relative error of pm1 is 2.5e-8, under half an
 *   ulp of float, so rounding of the arithmetic dominates.
 */
#ifndef PRESHIFT_VECMATH_CONSTS_H
#define PRESHIFT_VECMATH_CONSTS_H

#define PS_VM_EXP_MIN (-88.0f)
#define PS_VM_LOG2E 0x1.715476p+0f
#define PS_VM_SHIFTER (0x1.8p+23f + 127.0f)
#define PS_VM_LN2 0x1.62e43p-1f
#define PS_VM_LN2_HI 0x1.63p-1f
#define PS_VM_LN2_LO (-0x1.bd0106p-13f)

#define PS_VM_C0 0x1p-1f
#define PS_VM_C1 0x1.5554dcp-3f
#define PS_VM_C2 0x1.5554b8p-5f
#define PS_VM_C3 0x1.120c68p-7f
#define PS_VM_C4 0x1.6d76a2p-10f

#endif
