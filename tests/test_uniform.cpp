// `uniform`: the mean of the visible values, checked against a direct double-precision loop.
#include <catch2/catch.hpp>

#include "attnkit/uniform.hpp"
#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

// Direct definition: for each row, the mean of v over keys [0, key_end), zeros when empty.
double max_diff_to_direct(const Problem& p) {
  const Shape d = p.dims();
  double worst = 0;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h)
      for (int64_t i = 0; i < d.n_q; ++i) {
        const int64_t e = p.key_end(b, i);
        for (int64_t c = 0; c < d.d_v; ++c) {
          double s = 0;
          for (int64_t j = 0; j < e; ++j) s += p.v.row(b, h / d.group(), j)[c];
          const double want = e > 0 ? s / static_cast<double>(e) : 0.0;
          worst = std::max(worst, std::fabs(want - p.out.row(b, h, i)[c]));
        }
      }
  return worst;
}

}  // namespace

TEST_CASE("uniform: mean of the visible values under every mask", "[uniform]") {
  const UniformBackend u;
  struct Case {
    int64_t B, H, Hkv, nq, nk;
    bool causal;
    std::vector<int32_t> lengths;
  };
  const Case cases[] = {{1, 2, 2, 33, 33, false, {}},   {2, 4, 2, 17, 40, true, {}},
                        {2, 4, 1, 40, 17, true, {}},    {2, 2, 2, 25, 25, false, {0, 11}},
                        {2, 6, 3, 19, 31, true, {31, 5}}};
  for (const Case& c : cases) {
    Owned o(c.B, c.H, c.Hkv, c.nq, c.nk, 8, 5, 7);
    o.p.mask.causal = c.causal;
    o.p.mask.key_lengths = c.lengths;
    u.forward(o.p);
    CHECK(max_diff_to_direct(o.p) < 1e-6);
  }
}

TEST_CASE("uniform: rows that see nothing are zero; weights are 1/e on the visible keys", "[uniform]") {
  const UniformBackend u;
  Owned o(1, 1, 1, 6, 3, 4, 4, 3);  // causal, n_q > n_k: the first 3 rows see no key
  o.p.mask.causal = true;
  u.forward(o.p);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 4; ++c) CHECK(o.p.out.row(0, 0, i)[c] == 0.0f);
  std::vector<float> w(6 * 3);
  u.weights(o.p, 0, 0, w.data());
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t e = o.p.key_end(0, i);
    for (int64_t j = 0; j < 3; ++j) CHECK(w[i * 3 + j] == Approx(j < e ? 1.0 / e : 0.0));
  }
}

TEST_CASE("uniform: spec, registry and the metrics module's baseline are one computation", "[uniform]") {
  auto b = make_backend("uniform");
  CHECK(b->spec() == "uniform");
  CHECK_THROWS_WITH(make_backend("uniform:window=3"), Catch::Contains("window"));
  Owned o(2, 4, 2, 64, 64, 16, 16, 11);
  o.p.mask.causal = true;
  b->forward(o.p);
  Tensor base(2, 4, 64, 16);
  mean_value_baseline(o.p, base.view());
  CHECK(compare(ConstView(o.p.out), base.cview()).max_abs == 0.0);
  // it is a poor approximation of attention on structured input, but a real one: error < 1
  CHECK(attnkit::test::rel_error(*b, o.p) < 1.0);
  const Cost c = b->cost(Shape{2, 4, 2, 64, 64, 16, 16, true});
  CHECK(c.flops == Approx(2.0 * 2 * 2 * 64 * 16 + 2 * 4 * 64 * 16));
}

TEST_CASE("uniform: bad input names the argument", "[uniform]") {
  const UniformBackend u;
  Owned o(1, 3, 2, 8, 8, 4, 4, 1);  // 3 heads over 2 kv heads
  CHECK_THROWS_AS(u.forward(o.p), Error);
  Owned ok(1, 2, 2, 8, 8, 4, 4, 1);
  std::vector<float> w(64);
  CHECK_THROWS_WITH(u.weights(ok.p, 0, 2, w.data()), Catch::Contains("head"));
}
