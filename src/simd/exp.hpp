#pragma once
// Internal: the vectorised exp of the softmax kernels, templated on the xsimd architecture.
// Included only by the per-architecture translation units (attend_arch.cpp), inside their own
// namespace, so every instantiation is a distinct symbol compiled with that unit's flags.
#include <xsimd/xsimd.hpp>

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

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
