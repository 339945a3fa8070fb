// One SIMD path of the element-wise kernels of the feature maps (kernelized attention); compiled
// once per path like attend_arch.cpp (same flags, same namespace rule: nothing of ours here may be
// an inline function outside attnkit::simd::<path>, or the linker could hand AVX-512 code to a
// baseline caller). exp is the path's tested exp (exp.hpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 inside its avx512fintrin.h, see attend_arch.cpp
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>

#include <cstdint>

#include "exp.hpp"
#include "reduce.hpp"
#include "kernels_arch.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

namespace {

using A = ATTNKIT_SIMD_ARCH;
using B = xsimd::batch<float, A>;
constexpr int64_t W = B::size;
constexpr float kNegInf = -__builtin_inff();

// Loads the tail [i, n) padded with `fill`, applies f, stores it back.
template <class F>
inline void tail(float* p, int64_t i, int64_t n, float fill, F f) {
  alignas(64) float t[W];
  for (int64_t k = 0; k < W; ++k) t[k] = i + k < n ? p[i + k] : fill;
  B x = f(B::load_aligned(t));
  x.store_aligned(t);
  for (int64_t k = 0; i + k < n; ++k) p[i + k] = t[k];
}

}  // namespace

float add_and_max(float* p, int64_t n, float off) {
  ran(Kernel::elementwise);
  const B vo(off);
  B mx(kNegInf);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const B x = B::load_unaligned(p + i) + vo;
    x.store_unaligned(p + i);
    mx = max_skip_nan<A>(mx, x);
  }
  float r = hmax<A>(mx);
  for (; i < n; ++i) {
    p[i] += off;
    r = p[i] > r ? p[i] : r;
  }
  return r;
}

float max_of(const float* p, int64_t n) {
  ran(Kernel::elementwise);
  B mx(kNegInf);
  int64_t i = 0;
  for (; i + W <= n; i += W) mx = max_skip_nan<A>(mx, B::load_unaligned(p + i));
  float r = hmax<A>(mx);
  for (; i < n; ++i) r = p[i] > r ? p[i] : r;
  return r;
}

void exp_shift(float* p, int64_t n, float c) {
  ran(Kernel::elementwise);
  const B vc(c);
  int64_t i = 0;
  for (; i + W <= n; i += W) exp<A>(B::load_unaligned(p + i) - vc).store_unaligned(p + i);
  if (i < n) tail(p, i, n, c, [&](const B& x) { return exp<A>(x - vc); });
}

void elu_plus_one(float* p, int64_t n) {
  ran(Kernel::elementwise);
  const B one(1.0f), zero(0.0f);
  // select, not min: min drops a NaN operand, and NaN must propagate (NaN > 0 is false, exp(NaN) = NaN).
  const auto f = [&](const B& x) {
    const auto pos = x > zero;
    return xsimd::select(pos, x + one, exp<A>(xsimd::select(pos, zero, x)));
  };
  int64_t i = 0;
  for (; i + W <= n; i += W) f(B::load_unaligned(p + i)).store_unaligned(p + i);
  if (i < n) tail(p, i, n, 0.0f, f);
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
