// The feature-map kernels for one architecture, selected by KERN_ARCH_ID (meson compiles this file
// once per arch with that arch's flags). Uses no std:: helpers: an inline function emitted here
// with AVX-512 code could otherwise be picked by the linker for a baseline caller.
#include <xsimd/xsimd.hpp>

#include "simd_ops_kernels.hpp"

#if KERN_ARCH_ID == 3
using Arch = xsimd::avx512bw;
#elif KERN_ARCH_ID == 2
using Arch = xsimd::fma3<xsimd::avx2>;
#else
using Arch = xsimd::sse2;
#endif

namespace attnkit::kern::ops {

namespace {
constexpr float kNegInf = -__builtin_inff();

template <class A>
inline float hmax(const xsimd::batch<float, A>& x) {
  constexpr int64_t W = static_cast<int64_t>(xsimd::batch<float, A>::size);
  alignas(64) float t[W];
  x.store_aligned(t);
  float r = t[0];
  for (int64_t i = 1; i < W; ++i) r = t[i] > r ? t[i] : r;
  return r;
}

// Loads the tail [i, n) padded with `fill`, applies f, stores it back.
template <class A, class F>
inline void tail(float* p, int64_t i, int64_t n, float fill, F f) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t W = static_cast<int64_t>(B::size);
  alignas(64) float t[W];
  for (int64_t k = 0; k < W; ++k) t[k] = i + k < n ? p[i + k] : fill;
  B x = f(B::load_aligned(t));
  x.store_aligned(t);
  for (int64_t k = 0; i + k < n; ++k) p[i + k] = t[k];
}
}  // namespace

template <class A>
float AddMax::operator()(A, float* p, int64_t n, float off) const {
  using B = xsimd::batch<float, A>;
  constexpr int64_t W = static_cast<int64_t>(B::size);
  const B vo(off);
  B mx(kNegInf);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const B x = B::load_unaligned(p + i) + vo;
    x.store_unaligned(p + i);
    mx = xsimd::max(mx, x);
  }
  float r = hmax(mx);
  for (; i < n; ++i) {
    p[i] += off;
    r = p[i] > r ? p[i] : r;
  }
  return r;
}

template <class A>
float MaxOf::operator()(A, const float* p, int64_t n) const {
  using B = xsimd::batch<float, A>;
  constexpr int64_t W = static_cast<int64_t>(B::size);
  B mx(kNegInf);
  int64_t i = 0;
  for (; i + W <= n; i += W) mx = xsimd::max(mx, B::load_unaligned(p + i));
  float r = hmax(mx);
  for (; i < n; ++i) r = p[i] > r ? p[i] : r;
  return r;
}

template <class A>
void ExpShift::operator()(A, float* p, int64_t n, float c) const {
  using B = xsimd::batch<float, A>;
  constexpr int64_t W = static_cast<int64_t>(B::size);
  const B vc(c);
  int64_t i = 0;
  for (; i + W <= n; i += W) xsimd::exp(B::load_unaligned(p + i) - vc).store_unaligned(p + i);
  if (i < n) tail<A>(p, i, n, c, [&](const B& x) { return xsimd::exp(x - vc); });
}

template <class A>
void EluPlusOne::operator()(A, float* p, int64_t n) const {
  using B = xsimd::batch<float, A>;
  constexpr int64_t W = static_cast<int64_t>(B::size);
  const B one(1.0f), zero(0.0f);
  // select, not min: min drops a NaN operand, and NaN must propagate (NaN > 0 is false, exp(NaN) = NaN).
  const auto f = [&](const B& x) {
    const auto pos = x > zero;
    return xsimd::select(pos, x + one, xsimd::exp(xsimd::select(pos, zero, x)));
  };
  int64_t i = 0;
  for (; i + W <= n; i += W) f(B::load_unaligned(p + i)).store_unaligned(p + i);
  if (i < n) tail<A>(p, i, n, 0.0f, f);
}

template float AddMax::operator()<Arch>(Arch, float*, int64_t, float) const;
template float MaxOf::operator()<Arch>(Arch, const float*, int64_t) const;
template void ExpShift::operator()<Arch>(Arch, float*, int64_t, float) const;
template void EluPlusOne::operator()<Arch>(Arch, float*, int64_t) const;

}  // namespace attnkit::kern::ops
