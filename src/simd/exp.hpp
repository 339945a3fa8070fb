#pragma once
// Internal: the vectorised exp of the softmax kernels, templated on the xsimd architecture.
// Included only by the per-architecture translation units (src/simd/*_arch.cpp, the lowp sets,
// src/decode/kernel_arch.cpp), inside their own namespace, so every instantiation is a distinct symbol compiled with that unit's flags.
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <cstdint>

namespace attnkit::simd::ATTNKIT_SIMD_NS {

// exp(x) for a batch of floats: Cody-Waite reduction x = n·ln2 + r, |r| <= ln2/2, Cephes' degree-6
// polynomial for e^r, scaled by 2^n through the exponent bits.
//
// Maximum relative error: attnkit::simd_exp_max_rel_error (attnkit/simd.hpp) for x in [-87.33654, 88.37626]; checked by
// tests/test_simd_exp.cpp against double-precision exp on a dense sweep, on every SIMD path.
// Outside it: x < -87.33654 (where e^x < FLT_MIN, subnormal) returns exactly 0, so -inf -> 0 and
// masked scores contribute nothing; x > 88.37626 returns +inf (the true value is within a factor
// 1.42 of FLT_MAX); NaN returns NaN. Softmax only uses x <= 0 (score minus running max) and -inf.
template <class A>
inline xsimd::batch<float, A> exp(xsimd::batch<float, A> x) {
  using B = xsimd::batch<float, A>;
  using I = xsimd::batch<int32_t, A>;
  const B lo(-87.33654f), hi(88.37626f);
  // Clamp with compares, not min/max: x86 min/max drop a NaN operand, a false compare keeps it.
  const B xc = xsimd::select(x < lo, lo, xsimd::select(x > hi, hi, x));
  const I n = xsimd::nearbyint_as_int(xc * B(1.44269504088896341f));
  const B fn = xsimd::to_float(n);
  B r = xsimd::fma(fn, B(-0.693359375f), xc);  // ln2 split in two: the high part is exact in float
  r = xsimd::fma(fn, B(2.12194440e-4f), r);
  B p(1.9875691500e-4f);
  p = xsimd::fma(p, r, B(1.3981999507e-3f));
  p = xsimd::fma(p, r, B(8.3334519073e-3f));
  p = xsimd::fma(p, r, B(4.1665795894e-2f));
  p = xsimd::fma(p, r, B(1.6666665459e-1f));
  p = xsimd::fma(p, r, B(5.0000001201e-1f));
  p = xsimd::fma(p, r * r, r + B(1.0f));
  // n in [-126, 127] after the clamp: 2^n is a normal float, built from its exponent bits.
  const I bits = (n + I(127)) << 23;
  B y = p * xsimd::bitwise_cast<B>(bits);
  y = xsimd::select(x < lo, B(0.0f), y);
  y = xsimd::select(x > hi, B(__builtin_inff()), y);
  return y;
}

// e^x for a softmax whose weights are then rounded to low precision (bf16 P of the fast sets,
// decode's u8 weights and bf16 values): x = score − running shift, at most a few units above 0,
// -inf (masked) or NaN. 2^t with t = x·log2 e as 2^round(t) · P(f), f = t − round(t) in
// [-1/2, 1/2], P of degree 5 (relative error < 3e-6), plus the rounding of t (|t| <= 127 ulps of
// t: 8e-6): relative error < 1.2e-5 for -125 <= t <= 127 (measured 4.1e-6 on the portable path:
// tests/test_exp_softmax.cpp).
// With AVX-512 (vscalefps applies 2^n) t < -125 gives exactly 0, never a subnormal (on Intel every
// fp32 operation that reads or makes a subnormal takes a ~100-cycle microcode assist); elsewhere
// see below. -inf (masked keys) gives exactly 0 and NaN stays NaN on every path. About half of
// exp()'s instructions: where the products are cheap (AMX, integer dot products) the softmax is a
// large part of the work.
template <class A>
inline xsimd::batch<float, A> exp_softmax_lowp(xsimd::batch<float, A> x) {
  using B = xsimd::batch<float, A>;
#if defined(__AVX512F__)
  if constexpr (B::size == 16) {
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    // keep: t >= -125 or NaN (unordered compares true), so NaN still reaches the sum
    const __mmask16 keep = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-125.0f), _CMP_NLT_UQ);
    t = _mm512_max_ps(_mm512_set1_ps(-125.0f), t);  // the second operand (NaN) wins when either is NaN
    const __m512 ti = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, ti);
    __m512 p = _mm512_set1_ps(1.333355814e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129108e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265070e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471806e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, ti);
  }
#endif
  // Without vscalefps: t clamped at -127, whose 2^n has the exponent bits 0, so t <= -127 (and
  // -inf) gives exactly 0 with no compare or select; -127 < t < -125 gives 0 or a subnormal, not
  // for masked keys (-inf) but for scores more than 86 below the row's maximum.
  using I = xsimd::batch<int32_t, A>;
#if defined(__SSE2__)
  const B tc = xsimd::max(B(-127.0f), x * B(1.44269504088896341f));  // x86 max: a NaN second operand wins
#else
  const B t = x * B(1.44269504088896341f);
  const B tc = xsimd::select(t < B(-127.0f), B(-127.0f), t);
#endif
  const B n = xsimd::nearbyint(tc);
  const B f = tc - n;
  B p(1.333355814e-3f);
  p = xsimd::fma(p, f, B(9.618129108e-3f));
  p = xsimd::fma(p, f, B(5.550410866e-2f));
  p = xsimd::fma(p, f, B(2.402265070e-1f));
  p = xsimd::fma(p, f, B(6.931471806e-1f));
  p = xsimd::fma(p, f, B(1.0f));
  return p * xsimd::bitwise_cast<B>((xsimd::to_int(n) + I(127)) << 23);
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
