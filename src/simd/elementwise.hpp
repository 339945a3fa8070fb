#pragma once
// Internal: the element-wise kernels of the kernelized feature maps, on the SIMD path of this
// process (paths.hpp; ATTNKIT_SIMD and -Dnative apply). Each path's code is in
// elementwise_arch.cpp. exp is the tested simd exp (docs/simd.md: relative error <= 2e-7, exactly
// 0 below -87.34, NaN -> NaN). Thread-safe; call attnkit::simd_path() once before a parallel region
// so that a bad ATTNKIT_SIMD throws there.
#include <cstdint>

namespace attnkit::simd {

// p[i] += off for i < n; returns max_i p[i] (NaN entries are skipped by the max; they still
// propagate through exp into the output).
float add_and_max(float* p, int64_t n, float off);
// max_i p[i] (-inf for n == 0).
float max_of(const float* p, int64_t n);
// p[i] = exp(p[i] - c).
void exp_shift(float* p, int64_t n, float c);
// p[i] = elu(p[i]) + 1 = p > 0 ? p + 1 : exp(p).
void elu_plus_one(float* p, int64_t n);

}  // namespace attnkit::simd
