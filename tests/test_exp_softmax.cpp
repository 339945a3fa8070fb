// exp_softmax_lowp (src/simd/exp.hpp), the short exp of the low-precision softmaxes (decode's int8
// and bf16 storage; the fast reduced-precision sets with AVX-512), compiled here for this test's
// default architecture (its portable branch; the AVX-512 branch runs in the fast sets' tests).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#define ATTNKIT_SIMD_NS test_default
#include "../src/simd/exp.hpp"

namespace {
using A = xsimd::default_arch;
using B = xsimd::batch<float, A>;

std::vector<float> apply(const std::vector<float>& xs) {
  std::vector<float> ys(xs.size());
  alignas(64) float in[B::size], out[B::size];
  for (size_t i = 0; i < xs.size(); i += B::size) {
    for (size_t j = 0; j < B::size; ++j) in[j] = i + j < xs.size() ? xs[i + j] : 0.0f;
    attnkit::simd::test_default::exp_softmax_lowp<A>(B::load_aligned(in)).store_aligned(out);
    for (size_t j = 0; j < B::size && i + j < xs.size(); ++j) ys[i + j] = out[j];
  }
  return ys;
}
}  // namespace

TEST_CASE("exp_softmax_lowp: relative error < 1.2e-5 where 2^t >= 2^-125", "[simd][exp]") {
  std::vector<float> xs;
  const float lo = -125.0f / 1.44269504088896341f;  // t = -125
  for (int i = 0; i <= 2000000; ++i) xs.push_back(lo + (8.0f - lo) * static_cast<float>(i) / 2000000.0f);
  xs.push_back(0.0f);
  xs.push_back(-1e-30f);
  const std::vector<float> ys = apply(xs);
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (static_cast<double>(xs[i]) * 1.4426950408889634 < -125.0) continue;  // float rounding at the edge
    const double ref = std::exp(static_cast<double>(xs[i]));
    worst = std::max(worst, std::fabs(ys[i] - ref) / ref);
  }
  INFO("worst relative error " << worst);
  CHECK(worst < 1.2e-5);
  CHECK(worst > 1e-8);  // it is the short polynomial, not exp()
}

TEST_CASE("exp_softmax_lowp: exactly 0 for t <= -127 and -inf, tiny below 2^-125; NaN stays NaN", "[simd][exp]") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> xs = {-88.1f, -100.0f, -1e30f, -inf, std::nanf(""), 0.0f, -86.6f, -87.5f};
  const std::vector<float> ys = apply(xs);
  CHECK(ys[0] == 0.0f);  // t = -127.1
  CHECK(ys[1] == 0.0f);
  CHECK(ys[2] == 0.0f);
  CHECK(ys[3] == 0.0f);  // masked keys
  CHECK(std::isnan(ys[4]));
  CHECK(ys[5] == Approx(1.0f).epsilon(1e-5));
  CHECK(std::fpclassify(ys[6]) == FP_NORMAL);  // t = -124.94
  CHECK(ys[7] >= 0.0f);                        // t = -126.2: 0 or a subnormal
  CHECK(ys[7] < 1.2e-38f);
}
