// The element-wise (feature maps of kernelized) and Hamming (clustering of clustered) kernels of
// src/simd on the active SIMD path (meson runs this suite once per path with ATTNKIT_SIMD set):
// each against plain loops, and each group reports that it ran on that path.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../src/simd/elementwise.hpp"
#include "../src/simd/hamming.hpp"
#include "../src/simd/paths.hpp"
#include "attnkit/simd.hpp"
#include "support.hpp"

using namespace attnkit;

namespace {

// The kernels of group k last ran on the active path, and that is ATTNKIT_SIMD when it is set.
bool ran_on(simd::Kernel k) {
  const std::string active = simd_path(), ran = simd::last_path(k);
  const char* env = std::getenv("ATTNKIT_SIMD");
  INFO("active " << active << ", kernel ran on '" << ran << "', ATTNKIT_SIMD " << (env ? env : "(unset)"));
  return ran == active && ran == test::wanted_simd_path();
}

// |y - exp(x)| <= simd_exp_max_rel_error * exp(x), with exp in double.
bool close_exp(float y, float x) {
  const double want = std::exp(static_cast<double>(x));
  return std::fabs(y - want) <= simd_exp_max_rel_error * want;
}

}  // namespace

TEST_CASE("element-wise kernels match plain loops, on the active path", "[simd]") {
  INFO("path " << simd_path());
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-30.0f, 10.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {0, 1, 3, 4, 7, 8, 15, 16, 17, 33, 100, 257}) {
    INFO("n = " << n);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = u(rng);
    float want_max = -inf;
    for (float v : x) want_max = v > want_max ? v : want_max;
    CHECK(simd::max_of(x.data(), n) == want_max);

    std::vector<float> p = x;
    const float off = 0.75f;
    float want = -inf;
    for (float v : x) want = v + off > want ? v + off : want;
    CHECK(simd::add_and_max(p.data(), n, off) == want);
    for (int64_t i = 0; i < n; ++i) REQUIRE(p[size_t(i)] == x[size_t(i)] + off);

    p = x;
    const float c = 4.5f;
    simd::exp_shift(p.data(), n, c);
    for (int64_t i = 0; i < n; ++i) REQUIRE(close_exp(p[size_t(i)], x[size_t(i)] - c));

    p = x;
    simd::elu_plus_one(p.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[size_t(i)];
      if (v > 0)
        REQUIRE(p[size_t(i)] == v + 1.0f);
      else
        REQUIRE(close_exp(p[size_t(i)], v));
    }
  }
  // Special values, in the vector body and in the tail: NaN propagates through exp; -inf gives 0.
  std::vector<float> s(21, 0.5f);
  s[2] = nan, s[3] = -inf, s[19] = nan, s[20] = -inf;
  std::vector<float> e = s;
  simd::exp_shift(e.data(), 21, 0.0f);
  CHECK(std::isnan(e[2]));
  CHECK(e[3] == 0.0f);
  CHECK(std::isnan(e[19]));
  CHECK(e[20] == 0.0f);
  e = s;
  simd::elu_plus_one(e.data(), 21);
  CHECK(std::isnan(e[2]));
  CHECK(e[3] == 0.0f);
  CHECK(std::isnan(e[19]));
  CHECK(e[0] == 1.5f);
  // The maxima skip NaN entries wherever they sit (first lane of a vector, any other lane, the
  // tail): the largest other entry, -inf when every entry is NaN.
  for (size_t at : {size_t{0}, size_t{5}, size_t{16}, size_t{20}}) {
    INFO("NaN at " << at);
    std::vector<float> t(21);
    for (size_t i = 0; i < t.size(); ++i) t[i] = -1.0f - static_cast<float>(i);
    t[at] = nan;
    const float want = at == 0 ? -2.0f : -1.0f;
    CHECK(simd::max_of(t.data(), 21) == want);
    CHECK(simd::add_and_max(t.data(), 21, 0.5f) == want + 0.5f);
  }
  std::vector<float> all_nan(17, nan);
  CHECK(simd::max_of(all_nan.data(), 17) == -inf);
  CHECK(ran_on(simd::Kernel::elementwise));
}

TEST_CASE("Hamming kernels match plain loops, on the active path", "[simd]") {
  INFO("path " << attnkit::simd_path());
  std::mt19937_64 rng(5);
  for (int64_t n : {1, 7, 8, 61}) {
    for (int64_t count : {1, 3, 17}) {
      std::vector<uint64_t> codes(static_cast<size_t>((n + 7) / 8 * 8)), centres(static_cast<size_t>(count));
      for (int64_t i = 0; i < n; ++i) codes[static_cast<size_t>(i)] = rng() & ((uint64_t{1} << 63) - 1);
      for (auto& c : centres) c = rng() & ((uint64_t{1} << 63) - 1);
      centres[0] = centres[count - 1];  // a tie: the smaller index must win
      std::vector<int32_t> label(static_cast<size_t>(n), -1);
      CHECK(simd::assign_nearest(codes.data(), n, centres.data(), count, label.data()) <= n);
      for (int64_t i = 0; i < n; ++i) {
        int best = 99, arg = -1;
        for (int64_t c = 0; c < count; ++c) {
          const int dist = __builtin_popcountll(codes[static_cast<size_t>(i)] ^ centres[static_cast<size_t>(c)]);
          if (dist < best) best = dist, arg = static_cast<int>(c);
        }
        REQUIRE(label[static_cast<size_t>(i)] == arg);
      }
      std::vector<uint32_t> counts(static_cast<size_t>(count * 64)), sizes(static_cast<size_t>(count));
      simd::count_bits(codes.data(), n, label.data(), 63, counts.data(), sizes.data());
      for (int64_t c = 0; c < count; ++c)
        for (int b = 0; b < 64; ++b) {
          uint32_t want = 0;
          for (int64_t i = 0; i < n; ++i)
            want += label[static_cast<size_t>(i)] == c && ((codes[static_cast<size_t>(i)] >> b) & 1u);
          REQUIRE(counts[static_cast<size_t>(c * 64 + b)] == want);
        }
    }
    std::vector<float> proj(static_cast<size_t>(n * 64)), thr(64);
    std::normal_distribution<float> nd;
    for (auto& x : proj) x = nd(rng);
    for (auto& x : thr) x = nd(rng);
    thr[63] = std::numeric_limits<float>::infinity();
    std::vector<uint64_t> codes(static_cast<size_t>(n));
    simd::make_codes(proj.data(), n, thr.data(), codes.data());
    for (int64_t i = 0; i < n; ++i)
      for (int b = 0; b < 64; ++b)
        REQUIRE(((codes[static_cast<size_t>(i)] >> b) & 1u) == (proj[static_cast<size_t>(i * 64 + b)] > thr[static_cast<size_t>(b)]));
  }
  CHECK(ran_on(simd::Kernel::hamming));
}
