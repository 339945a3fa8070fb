// exact vs reference on many shapes, tile sizes and inputs (its kernel's tiling). Masks, GQA,
// cross-attention, layouts and determinism: the conformance suite (test_conformance.cpp).
#include <catch2/catch.hpp>

#include <cmath>

#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {
void expect_close(Owned& o, const Backend& b, double tol = 2e-6) {
  const double e = attnkit::test::rel_error(b, o.p);
  INFO("backend " << b.spec() << " rel_fro " << e);
  CHECK(e <= tol);
}
}  // namespace

TEST_CASE("exact matches reference across shapes", "[exact]") {
  const ExactBackend ex;
  struct S { int64_t B, H, Hkv, nq, nk, d, dv; };
  const S shapes[] = {{1, 1, 1, 1, 1, 1, 1},     {1, 2, 2, 7, 7, 3, 3},       {2, 3, 3, 33, 33, 64, 64},
                      {1, 2, 2, 300, 300, 128, 128}, {1, 1, 1, 129, 129, 256, 256}, {1, 2, 2, 65, 65, 64, 32},
                      {1, 2, 2, 50, 170, 64, 64},  {1, 2, 2, 170, 50, 16, 16},  {2, 8, 2, 77, 77, 32, 48},
                      {1, 4, 1, 513, 513, 64, 64}};
  for (const S& s : shapes)
    for (bool causal : {false, true}) {
      Owned o(s.B, s.H, s.Hkv, s.nq, s.nk, s.d, s.dv, 42 + s.nq);
      o.p.mask.causal = causal;
      INFO("B=" << s.B << " H=" << s.H << " Hkv=" << s.Hkv << " nq=" << s.nq << " nk=" << s.nk << " d=" << s.d
                << " dv=" << s.dv << " causal=" << causal);
      expect_close(o, ex);
    }
}

TEST_CASE("exact honours block sizes that do not divide n", "[exact]") {
  for (int64_t bq : {1, 3, 64}) 
    for (int64_t bk : {1, 5, 256}) {
      Owned o(1, 2, 2, 37, 53, 8, 8, 7);
      o.p.mask.causal = bk == 5;
      expect_close(o, ExactBackend({bq, bk}));
    }
}

TEST_CASE("large logits give finite results", "[exact]") {
  Owned o(1, 2, 2, 100, 100, 64, 64, 5, 30.0f);  // |s q.k| ~ 30*30*8 ~ 7e3, up to >1e4
  float mx = 0;
  for (int64_t i = 0; i < o.q.numel(); ++i) mx = std::max(mx, std::fabs(o.q.data()[i]));
  o.q.data()[0] = 400.0f;
  o.k.data()[0] = 400.0f;  // s*q.k >= 400*400/8 = 2e4 for that pair
  ExactBackend().forward(o.p);
  for (int64_t i = 0; i < o.out.numel(); ++i) REQUIRE(std::isfinite(o.out.data()[i]));
  expect_close(o, ExactBackend(), 1e-5);
}

TEST_CASE("explicit scale", "[exact]") {
  Owned o(1, 1, 1, 30, 30, 8, 8, 1);
  o.p.scale = 0.7f;
  expect_close(o, ExactBackend());
}

TEST_CASE("reference against a hand-computed 2x2 case", "[reference]") {
  // q = [[1,0],[0,1]], k = [[1,0],[0,1]], v = [[1,2],[3,4]], scale 1:
  // row 0 weights softmax(1,0) = (e/(e+1), 1/(e+1)).
  Tensor q(1, 1, 2, 2), k(1, 1, 2, 2), v(1, 1, 2, 2), out(1, 1, 2, 2);
  q.data()[0] = 1; q.data()[3] = 1;
  k.data()[0] = 1; k.data()[3] = 1;
  v.data()[0] = 1; v.data()[1] = 2; v.data()[2] = 3; v.data()[3] = 4;
  Problem p{q.view(), k.view(), v.view(), out.view(), 1.0f, {}};
  ReferenceBackend().forward(p);
  const double a = std::exp(1.0) / (std::exp(1.0) + 1), b = 1 - a;
  CHECK(out.data()[0] == Approx(a * 1 + b * 3));
  CHECK(out.data()[1] == Approx(a * 2 + b * 4));
  CHECK(out.data()[2] == Approx(b * 1 + a * 3));
  std::vector<float> w(4);
  ReferenceBackend().weights(p, 0, 0, w.data());
  CHECK(w[0] == Approx(a));
  CHECK(w[1] + w[0] == Approx(1.0));
}

TEST_CASE("backends refuse problems they cannot honour and bad problems", "[exact]") {
  Owned o(1, 2, 2, 8, 8, 4, 4, 1);
  o.p.mask.key_lengths = {9};
  CHECK_THROWS_WITH(ExactBackend().forward(o.p), Catch::Contains("key_lengths[0]"));
  o.p.mask.key_lengths = {1, 2};
  CHECK_THROWS_WITH(ExactBackend().forward(o.p), Catch::Contains("one per batch"));
  o.p.mask.key_lengths.clear();
  o.p.scale = -1.0f;
  CHECK_THROWS_WITH(ExactBackend().forward(o.p), Catch::Contains("scale"));
  o.p.scale = NAN;
  CHECK_THROWS_AS(ExactBackend().forward(o.p), Error);
  o.p.scale.reset();
  o.p.out = MutView{const_cast<float*>(o.q.data()), o.out.view().shape, o.out.view().stride};
  CHECK_THROWS_WITH(ExactBackend().forward(o.p), Catch::Contains("overlaps q"));
}

TEST_CASE("exact on structured inputs, several query and key blocks, every mask", "[exact]") {
  // Default blocks (256 x 252) over n = 700: partial last blocks, diagonal tiles, padding edges.
  for (InputFamily f : {InputFamily::Peaky, InputFamily::Local, InputFamily::Clustered}) {
    Inputs in = generate(f, 2, 2, 700, 64, 5);
    Tensor out(2, 2, 700, 64);
    Problem p{in.q.view(), in.k.view(), in.v.view(), out.view(), std::nullopt, {}};
    for (int variant = 0; variant < 3; ++variant) {
      p.mask.causal = variant != 1;
      p.mask.key_lengths = variant == 2 ? std::vector<int>{333, 700} : std::vector<int>{};
      ExactBackend().forward(p);
      const Tensor ref = attnkit::test::reference_of(p);
      INFO("family " << int(f) << " variant " << variant);
      CHECK(compare(ConstView(p.out), ref.cview()).rel_fro <= 2e-6);
    }
  }
}
