// The vectorised exp of the softmax kernels (attnkit::simd_exp, active SIMD path) against double
// exp over the whole range softmax uses, plus the special values it must get exactly right.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "support.hpp"

using attnkit::simd_exp;

namespace {
// Every `step`-th float between a and b (same sign, |a| <= |b|), walking the bit patterns: an
// exponent-uniform sweep of about 2^23 / step values per binade.
std::vector<float> sweep(float a, float b, uint32_t step) {
  uint32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  std::vector<float> xs;
  for (uint32_t i = ia; i <= ib; i += step) {
    float x;
    std::memcpy(&x, &i, 4);
    xs.push_back(x);
  }
  xs.push_back(b);
  return xs;
}
}  // namespace

TEST_CASE("simd_exp relative error on the softmax range", "[simd]") {
  INFO("path " << attnkit::simd_path());
  // Softmax arguments are s - max <= 0; positive ones only matter for completeness.
  std::vector<float> xs = sweep(-1e-30f, -87.33654f, 97);
  for (float x : sweep(1e-30f, 88.37626f, 997)) xs.push_back(x);
  xs.push_back(0.0f);
  std::vector<float> ys(xs.size());
  simd_exp(xs.data(), ys.data(), static_cast<int64_t>(xs.size()));
  double worst = 0, at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::exp(static_cast<double>(xs[i]));
    const double rel = std::fabs(ys[i] - want) / want;
    if (rel > worst) {
      worst = rel;
      at = xs[i];
    }
  }
  INFO("worst relative error " << worst << " at x = " << at << " over " << xs.size() << " points");
  CHECK(worst <= attnkit::simd_exp_max_rel_error);
  CHECK(worst > 0);  // the sweep really compared something
  CHECK(ys[xs.size() - 1] == 1.0f);  // exp(0) = 1 exactly: an unchanged max rescales by exactly 1
}

TEST_CASE("simd_exp special values: large negative -> 0, never NaN; NaN stays NaN", "[simd]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> xs = {-inf, -1e30f, -3.4e38f, -1000.0f, -104.0f, -88.0f, -87.5f, -87.34f,
                                 nan,  inf,    1000.0f,  89.0f,    0.0f,    -0.0f, 1.0f,  -1.0f};
  // Also every length 0..40 so the vector tail of every path is exercised.
  for (size_t len = 0; len <= xs.size(); ++len) {
    std::vector<float> ys(len, 123.0f);
    simd_exp(xs.data(), ys.data(), static_cast<int64_t>(len));
    for (size_t i = 0; i < len; ++i) {
      const float x = xs[i], y = ys[i];
      INFO("x = " << x << " y = " << y);
      if (std::isnan(x)) {
        CHECK(std::isnan(y));
      } else if (x < -87.33654f) {
        CHECK(y == 0.0f);
      } else if (x > 88.37626f) {
        CHECK(y == inf);
      } else {
        CHECK(std::fabs(y - std::exp(static_cast<double>(x))) <= attnkit::simd_exp_max_rel_error * std::exp(static_cast<double>(x)));
      }
    }
  }
  std::vector<float> many(41, -inf), out(41, 1.0f);
  for (int64_t n = 0; n <= 41; ++n) {
    simd_exp(many.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) REQUIRE(out[static_cast<size_t>(i)] == 0.0f);
  }
  CHECK_THROWS_AS(simd_exp(xs.data(), many.data(), -1), attnkit::Error);
}

TEST_CASE("simd paths: the active one is listed and ATTNKIT_SIMD is honoured", "[simd]") {
  const std::vector<std::string> paths = attnkit::simd_paths();
  REQUIRE(!paths.empty());
  const std::string active = attnkit::simd_path();
  CHECK(std::find(paths.begin(), paths.end(), active) != paths.end());
  CHECK(active == attnkit::test::wanted_simd_path());
}
