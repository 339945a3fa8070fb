// The shared numerics of src/core/numerics.hpp (row softmax and its guards, value-norm running
// maximum, floor division), the one exact-equivalent flop count, and ParallelErrors.
#include <omp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "../src/core/numerics.hpp"
#include "../src/core/parallel_errors.hpp"
#include "support.hpp"

using namespace attnkit;

TEMPLATE_TEST_CASE("softmax_row: probabilities, masked keys, empty and NaN rows", "[core]", float, double) {
  const TestType inf = std::numeric_limits<TestType>::infinity();
  std::vector<TestType> x = {1, 2, -inf, 3};
  REQUIRE(numerics::softmax_row(x.data(), 4));
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(x[0] == Approx(std::exp(1.0) / z));
  CHECK(x[1] == Approx(std::exp(2.0) / z));
  CHECK(x[2] == 0);  // a masked key gets exactly 0
  CHECK(x[3] == Approx(std::exp(3.0) / z));
  // Large scores do not overflow: the max is subtracted first.
  std::vector<TestType> big = {1000, 1000};
  numerics::softmax_row(big.data(), 2);
  CHECK(big[0] == Approx(0.5));
  // A mass other than 1 scales the row.
  std::vector<TestType> m = {0, 0, 0, 0};
  numerics::softmax_row(m.data(), 4, TestType(0.5));
  for (TestType v : m) CHECK(v == Approx(0.125));
  // Empty row: nothing written, false.
  TestType untouched = 7;
  CHECK_FALSE(numerics::softmax_row(&untouched, 0));
  CHECK(untouched == 7);
  // One NaN score: the whole row is NaN.
  std::vector<TestType> n = {1, std::numeric_limits<TestType>::quiet_NaN(), 2};
  REQUIRE(numerics::softmax_row(n.data(), 3));
  for (TestType v : n) CHECK(std::isnan(v));
}

TEST_CASE("value_norm_running_max: prefix maxima of ||v_j|| per (batch, kv head)", "[core]") {
  attnkit::test::Owned o(2, 2, 1, 3, 5, 4, 3, 9);
  const std::vector<double> r = numerics::value_norm_running_max(o.p);
  REQUIRE(r.size() == 2 * 1 * 5);
  for (int64_t b = 0; b < 2; ++b) {
    double m = 0;
    for (int64_t j = 0; j < 5; ++j) {
      double n2 = 0;
      for (int64_t c = 0; c < 3; ++c) n2 += double(o.v.cview().at(b, 0, j, c)) * o.v.cview().at(b, 0, j, c);
      m = std::max(m, std::sqrt(n2));
      CHECK(r[size_t(b * 5 + j)] == Approx(m).epsilon(1e-12));
    }
  }
}

TEST_CASE("floor_div rounds towards minus infinity", "[core]") {
  CHECK(numerics::floor_div(7, 2) == 3);
  CHECK(numerics::floor_div(-7, 2) == -4);
  CHECK(numerics::floor_div(-8, 2) == -4);
  CHECK(numerics::floor_div(0, 5) == 0);
  CHECK(numerics::floor_div(-1, 5) == -1);
}

TEST_CASE("exact_equivalent_flops counts the causal mask", "[core]") {
  attnkit::test::Owned o(2, 4, 2, 64, 64, 32, 16, 1);
  const double full = 2.0 * 4 * 64 * 64 * 2 * (32 + 16);
  CHECK(exact_equivalent_flops(o.p) == full);
  o.p.mask.causal = true;
  CHECK(exact_equivalent_flops(o.p) == 2.0 * 4 * (64 * 65 / 2) * 2 * (32 + 16));
  CHECK(exact_equivalent_flops(o.p) == exact_cost(o.p.validate()).flops);
  // Cross shapes, bottom-right causal: n_q < n_k, row i sees n_k - n_q + i + 1 keys; n_q > n_k,
  // the first n_q - n_k rows see none and the rest 1..n_k keys.
  attnkit::test::Owned few(2, 4, 2, 16, 64, 32, 16, 1), many(2, 4, 2, 64, 16, 32, 16, 1);
  few.p.mask.causal = many.p.mask.causal = true;
  CHECK(exact_equivalent_flops(few.p) == 2.0 * 4 * (16 * 48 + 16 * 17 / 2) * 2 * (32 + 16));
  CHECK(exact_equivalent_flops(many.p) == 2.0 * 4 * (16 * 17 / 2) * 2 * (32 + 16));
}

TEST_CASE("ParallelErrors carries the first exception out of an OpenMP region, every thread at every barrier", "[core]") {
  ParallelErrors errors;
  std::atomic<int> after{0};
#pragma omp parallel num_threads(3)
  {
    errors.run([&] {
      if (omp_get_thread_num() == omp_get_num_threads() - 1) throw std::bad_alloc();  // any team size
    });
#pragma omp for schedule(static)
    for (int i = 0; i < 30; ++i) errors.run([&] { after += 1; });  // skipped once anything failed
#pragma omp barrier
  }
  CHECK_THROWS_AS(errors.rethrow(), std::bad_alloc);
  CHECK(after < 30);
  ParallelErrors none;
#pragma omp parallel num_threads(2)
  none.run([] {});
  CHECK_NOTHROW(none.rethrow());
}
