#include <catch2/catch.hpp>
#include <cmath>

#include "support.hpp"

using namespace attnkit;

TEST_CASE("compare computes max abs, relative Frobenius and row L2", "[metrics]") {
  Tensor a(1, 1, 2, 2), r(1, 1, 2, 2);
  r.data()[0] = 3; r.data()[1] = 4;  // ||r||_F = 5
  a.data()[0] = 3; a.data()[1] = 4; a.data()[2] = 0.3f; a.data()[3] = 0.4f;
  const ErrorMetrics m = compare(a.cview(), r.cview());
  CHECK(m.max_abs == Approx(0.4));
  CHECK(m.rel_fro == Approx(0.1));
  CHECK(m.mean_row_l2 == Approx(0.25));
  const auto rows = row_l2_errors(a.cview(), r.cview());
  CHECK(rows[0] == 0.0);
  CHECK(rows[1] == Approx(0.5));
  a.data()[0] = NAN;
  CHECK(std::isnan(compare(a.cview(), r.cview()).rel_fro));
  Tensor b(1, 1, 3, 2);
  CHECK_THROWS_AS(compare(b.cview(), r.cview()), Error);
  const float p[3] = {0.5f, 0.5f, 0.0f}, q[3] = {0.25f, 0.5f, 0.25f};
  CHECK(row_l1(p, q, 3) == Approx(0.5));
}

TEST_CASE("mean-of-V baseline honours the visible prefix", "[metrics]") {
  attnkit::test::Owned o(1, 2, 1, 3, 3, 2, 1, 4);
  for (int64_t j = 0; j < 3; ++j) o.v.data()[j] = static_cast<float>(j + 1);  // v = 1, 2, 3
  o.p.mask.causal = true;
  Tensor base(1, 2, 3, 1);
  mean_value_baseline(o.p, base.view());
  CHECK(base.data()[0] == Approx(1));
  CHECK(base.data()[1] == Approx(1.5));
  CHECK(base.data()[2] == Approx(2));
  CHECK(base.data()[5] == Approx(2));  // head 1 shares kv head 0
}
