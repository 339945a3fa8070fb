#pragma once
// Internal: horizontal reductions of the per-architecture kernels, templated on the xsimd
// architecture. Included only by the per-architecture translation units (like exp.hpp), inside
// their own namespace, so every instantiation is compiled with that unit's flags.
#include <xsimd/xsimd.hpp>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <cstddef>
#include <limits>

namespace attnkit::simd::ATTNKIT_SIMD_NS {

#if defined(__AVX__)
// The largest lane of x, which holds no NaN: a shuffle tree (a store and a scalar loop cost ~5% of
// the int8 decode kernel, which takes one per tile and query row).
inline float hmax_m256(__m256 x) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
#endif

// Running lane-wise maximum that skips NaN (x86 max returns its second operand when either is NaN,
// so a NaN would replace the lane's maximum so far): m stays NaN-free if it starts so.
template <class A>
inline xsimd::batch<float, A> max_skip_nan(const xsimd::batch<float, A>& m, const xsimd::batch<float, A>& x) {
  return xsimd::select(x > m, x, m);
}

// The largest lane of x that is not NaN; -inf when every lane is NaN or -inf. The one contract of
// the softmax maxima of every kernel (they detect NaN scores separately): a NaN lane neither wins
// nor hides the other lanes, whichever lane it is in.
template <class A>
inline float hmax(xsimd::batch<float, A> x) {
  using B = xsimd::batch<float, A>;
  x = xsimd::select(x == x, x, B(-std::numeric_limits<float>::infinity()));
#if defined(__AVX512F__)
  if constexpr (B::size == 16) return _mm512_reduce_max_ps(x.data);
#endif
#if defined(__AVX__)
  if constexpr (B::size == 8) return hmax_m256(x.data);
#endif
  alignas(64) float t[B::size];
  x.store_aligned(t);
  float m = t[0];
  for (std::size_t i = 1; i < B::size; ++i) m = t[i] > m ? t[i] : m;
  return m;
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
