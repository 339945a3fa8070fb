// Run-time choice of the feature-map kernels (xsimd::dispatch over the arches built in meson).
#include "simd_ops.hpp"

#include <xsimd/xsimd.hpp>

#include "simd_ops_kernels.hpp"

namespace attnkit::kern {

namespace {
// fma4 is kept out (xsimd 8.1 misdetects it); these three are what simd_ops_arch.cpp is built for.
using Arches = xsimd::arch_list<xsimd::avx512bw, xsimd::fma3<xsimd::avx2>, xsimd::sse2>;
}  // namespace

float add_and_max(float* p, int64_t n, float off) {
  static auto f = xsimd::dispatch<Arches>(ops::AddMax{});
  return f(p, n, off);
}
float max_of(const float* p, int64_t n) {
  static auto f = xsimd::dispatch<Arches>(ops::MaxOf{});
  return f(p, n);
}
void exp_shift(float* p, int64_t n, float c) {
  static auto f = xsimd::dispatch<Arches>(ops::ExpShift{});
  f(p, n, c);
}
void elu_plus_one(float* p, int64_t n) {
  static auto f = xsimd::dispatch<Arches>(ops::EluPlusOne{});
  f(p, n);
}

}  // namespace attnkit::kern
