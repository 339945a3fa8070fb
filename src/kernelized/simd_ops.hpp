#pragma once
// Internal: the element-wise kernels of the feature maps, vectorised with xsimd and chosen once at
// run time for the best of avx512bw, fma3<avx2>, sse2 (one translation unit per arch).
#include <cstdint>

namespace attnkit::kern {

// p[i] += off for i < n; returns max_i p[i] (NaN entries are skipped by the max; they still
// propagate through exp into the output).
float add_and_max(float* p, int64_t n, float off);
// max_i p[i] (-inf for n == 0).
float max_of(const float* p, int64_t n);
// p[i] = exp(p[i] - c).
void exp_shift(float* p, int64_t n, float c);
// p[i] = elu(p[i]) + 1 = p > 0 ? p + 1 : exp(p).
void elu_plus_one(float* p, int64_t n);

}  // namespace attnkit::kern
