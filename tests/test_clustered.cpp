// clustered (plain and improved/top-k) against reference: exactness at C = n_q, the
// a-posteriori bound on every row of generated and trained inputs, Proposition 2 of Vyas et al.
// Masks, cross-attention, GQA, forward = weights·V, the refused causal mask and determinism: the
// conformance suite (test_conformance.cpp).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

// Owns a generated problem (attnkit::generate) with its output.
struct Generated {
  Inputs in;
  Tensor out;
  Problem p;
  Generated(InputFamily f, int64_t B, int64_t H, int64_t n, int64_t d, uint64_t seed)
      : in(generate(f, B, H, n, d, seed)), out(B, H, n, d) {
    p.q = in.q.view();
    p.k = in.k.view();
    p.v = in.v.view();
    p.out = out.view();
  }
};

ClusteredBackend make(int64_t clusters, int64_t topk, int64_t seed = 3) {
  ClusteredOptions o;
  o.clusters = clusters;
  o.topk = topk;
  o.seed = seed;
  return ClusteredBackend(o);
}

// Every row's measured error is within the bound (plus float rounding: the bound is for exact
// arithmetic, the backend computes in float32). Returns the number of rows checked.
int64_t check_bound(const Backend& be, const Problem& p) {
  be.forward(p);
  const Tensor ref = attnkit::test::reference_of(p);
  const std::vector<double> err = row_l2_errors(ConstView(p.out), ref.cview());
  const ErrorBound eb = be.error_bound(p).value();
  REQUIRE(eb.out_l2.size() == err.size());
  int64_t bad = 0;
  double worst_ratio = 0;
  for (size_t r = 0; r < err.size(); ++r) {
    REQUIRE(std::isfinite(eb.out_l2[r]));
    if (err[r] > eb.out_l2[r] + 1e-5) ++bad;
    if (eb.out_l2[r] > 0) worst_ratio = std::max(worst_ratio, err[r] / eb.out_l2[r]);
  }
  std::printf("bound %s: max measured/bound over rows %.3g\n", be.spec().c_str(), worst_ratio);
  INFO(be.spec() << ": rows over the bound " << bad << ", max err/bound " << worst_ratio);
  CHECK(bad == 0);
  return static_cast<int64_t>(err.size());
}

std::vector<float> weights_of(const Backend& be, const Problem& p, int64_t b, int64_t h) {
  const Shape d = p.dims();
  std::vector<float> w(static_cast<size_t>(d.n_q * d.n_k));
  be.weights(p, b, h, w.data());
  return w;
}

}  // namespace

TEST_CASE("clustered spec strings and option ranges", "[clustered]") {
  CHECK(make_backend("clustered")->spec() == "clustered:clusters=100,bits=63,iterations=10,topk=0,seed=0");
  const auto b = make_backend("clustered:topk=32,clusters=7");
  CHECK(b->spec() == "clustered:clusters=7,bits=63,iterations=10,topk=32,seed=0");
  CHECK(make_backend(b->spec())->spec() == b->spec());
  CHECK_THROWS_AS(make_backend("clustered:bits=64"), Error);
  CHECK_THROWS_AS(make_backend("clustered:clusters=0"), Error);
  CHECK_THROWS_AS(make_backend("clustered:centroids=4"), Error);
  ClusteredOptions o;
  o.bits = 0;
  CHECK_THROWS_WITH(ClusteredBackend(o), Catch::Contains("bits=0"));
  const Capabilities c = ClusteredBackend().capabilities();
  CHECK(!c.causal);
  CHECK((c.key_lengths && c.cross && c.gqa && c.weights));
}

TEST_CASE("clustered runs its Hamming and attend kernels on the process's SIMD path", "[clustered]") {
  // meson runs this suite once per SIMD path with ATTNKIT_SIMD set: each run proves that path's
  // clustering (Hamming) and centroid attention (plain variant: simd::attend) kernels are the ones
  // that ran.
  const std::string want = attnkit::test::wanted_simd_path();
  for (int64_t topk : {8, 0}) {
    Owned o(1, 2, 2, 80, 80, 16, 16, 6);
    make(5, topk).forward(o.p);
    CHECK(attnkit::test::kernel_path("hamming") == want);
    if (topk == 0) CHECK(attnkit::test::kernel_path("attend") == want);
  }
  CHECK(simd_path() == want);
}

TEST_CASE("clustered with C = n_q is exact attention", "[clustered]") {
  for (int64_t topk : {0, 8}) {
    Owned o(2, 4, 2, 96, 130, 32, 16, 5);
    o.p.mask.key_lengths = {130, 77};
    const ClusteredBackend be = make(96, topk);
    INFO(be.spec());
    CHECK(attnkit::test::rel_error(be, o.p) <= 2e-6);
    const ErrorBound eb = be.error_bound(o.p).value();
    for (double x : eb.out_l2) REQUIRE(x == 0.0);
    // the implied weights are the exact ones too
    const std::vector<float> w = weights_of(be, o.p, 1, 3), r = weights_of(ReferenceBackend(), o.p, 1, 3);
    double worst = 0;
    for (int64_t i = 0; i < 96; ++i) worst = std::max(worst, row_l1(w.data() + i * 130, r.data() + i * 130, 130));
    CHECK(worst <= 1e-5);
  }
}

TEST_CASE("clustered error is within the a-posteriori bound on every row", "[clustered]") {
  for (InputFamily f : {InputFamily::Gaussian, InputFamily::Clustered, InputFamily::Peaky})
    for (int64_t topk : {0, 16}) {
      Generated g(f, 1, 2, 512, 64, 17);
      INFO("family " << input_family_name(f));
      CHECK(check_bound(make(24, topk), g.p) == 2 * 512);
    }
}

TEST_CASE("improved (top-k) rows are never farther from exact in L1 than plain rows", "[clustered]") {
  for (InputFamily f : {InputFamily::Gaussian, InputFamily::Clustered, InputFamily::Peaky}) {
    Generated g(f, 1, 2, 384, 32, 23);
    const ClusteredBackend plain = make(16, 0, 9), top = make(16, 24, 9);
    for (int64_t h = 0; h < 2; ++h) {
      const std::vector<float> r = weights_of(ReferenceBackend(), g.p, 0, h);
      const std::vector<float> wp = weights_of(plain, g.p, 0, h), wt = weights_of(top, g.p, 0, h);
      const ErrorBound eb = plain.error_bound(g.p).value();
      int64_t worse = 0, over = 0, improved = 0;
      for (int64_t i = 0; i < 384; ++i) {
        const double lp = row_l1(wp.data() + i * 384, r.data() + i * 384, 384);
        const double lt = row_l1(wt.data() + i * 384, r.data() + i * 384, 384);
        worse += lt > lp + 1e-5;
        improved += lt < lp - 1e-3;
        over += lp > eb.prob_l1[static_cast<size_t>(h * 384 + i)] + 1e-5;
      }
      INFO("family " << input_family_name(f) << " head " << h);
      CHECK(worse == 0);
      CHECK(over == 0);
      CHECK(improved > 0);  // top-k does change the rows
    }
  }
}

TEST_CASE("another seed clusters differently", "[clustered]") {
  // (Bit-identity for 1 and 2 threads and for a fresh object: the conformance suite.)
  for (int64_t topk : {0, 16}) {
    Generated g(InputFamily::Clustered, 2, 3, 700, 32, 7);
    make(20, topk, 11).forward(g.p);
    const Tensor one = g.out.clone();
    make(20, topk, 12).forward(g.p);
    int64_t diff = 0;
    for (int64_t i = 0; i < one.numel(); ++i) diff += one.data()[i] != g.out.data()[i];
    CHECK(diff > 0);
  }
}

TEST_CASE("clustered beats the mean(V) baseline clearly on clustered inputs", "[clustered]") {
  Generated g(InputFamily::Clustered, 1, 4, 1024, 64, 29);
  Tensor base(1, 4, 1024, 64);
  mean_value_baseline(g.p, base.view());
  const Tensor ref = attnkit::test::reference_of(g.p);
  const double e_base = compare(base.cview(), ref.cview()).rel_fro;
  for (int64_t topk : {0, 32}) {
    make(100, topk).forward(g.p);
    const double e = compare(g.out.cview(), ref.cview()).rel_fro;
    INFO("topk " << topk << ": rel_fro " << e << " vs mean(V) baseline " << e_base);
    CHECK(e < 0.25 * e_base);
  }
}

TEST_CASE("clustered on trained attention inputs (non-causal): bound holds", "[clustered][data]") {
  const std::string dir = attnkit::test::data_dir() + "/trained-attention";
  if (attnkit::test::data_dir().empty() || !std::filesystem::exists(dir + "/w0_layer1_q.npy")) {
    WARN("trained-attention data not found in " << dir << "; skipped");
    return;
  }
  NpyArray q = read_npy(dir + "/w0_layer1_q.npy"), k = read_npy(dir + "/w0_layer1_k.npy"),
           v = read_npy(dir + "/w0_layer1_v.npy");
  REQUIRE(q.shape == std::vector<int64_t>{1, 4, 2048, 64});
  Tensor out(1, 4, 2048, 64), base(1, 4, 2048, 64);
  Problem p;
  p.q = ConstView::bhnd(q.f32.data(), 1, 4, 2048, 64);
  p.k = ConstView::bhnd(k.f32.data(), 1, 4, 2048, 64);
  p.v = ConstView::bhnd(v.f32.data(), 1, 4, 2048, 64);
  p.out = out.view();
  p.scale = 0.125f;
  mean_value_baseline(p, base.view());
  const Tensor ref = attnkit::test::reference_of(p);
  const double e_base = compare(base.cview(), ref.cview()).rel_fro;
  for (int64_t topk : {0, 32}) {
    const ClusteredBackend be = make(100, topk);
    check_bound(be, p);
    const double e = compare(out.cview(), ref.cview()).rel_fro;
    std::printf("trained w0 layer1, %s: rel_fro %.4f (mean(V) baseline %.4f)\n", be.spec().c_str(), e, e_base);
    CHECK(e < e_base);
  }
}

#include "../src/clustered/spectral.hpp"

TEST_CASE("spectral norm bound is an upper bound and nearly tight", "[clustered]") {
  // rank one: ||u v^T||_2 = ||u|| ||v|| exactly
  std::vector<float> a(50 * 16);
  double nu = 0, nv = 0;
  for (int i = 0; i < 50; ++i) nu += (0.1 * i - 2) * (0.1 * i - 2);
  for (int j = 0; j < 16; ++j) nv += (j % 5 + 1.0) * (j % 5 + 1.0);
  for (int i = 0; i < 50; ++i)
    for (int j = 0; j < 16; ++j) a[static_cast<size_t>(i * 16 + j)] = static_cast<float>((0.1 * i - 2) * (j % 5 + 1.0));
  const double exact = std::sqrt(nu * nv), ub = clustered::spectral_norm_upper(a.data(), 50, 16, 16);
  CHECK(ub >= exact * (1 - 1e-6));  // float inputs: the matrix itself is rounded
  CHECK(ub <= exact * 1.012);
  // gaussian 300 x 64 against 500 power iterations in double (a lower bound that converges)
  Owned o(1, 1, 1, 300, 300, 64, 64, 77);
  const float* k = o.k.data();
  std::vector<double> x(64, 1.0), y(300);
  double est = 0;
  for (int it = 0; it < 500; ++it) {
    for (int i = 0; i < 300; ++i) {
      y[static_cast<size_t>(i)] = 0;
      for (int j = 0; j < 64; ++j) y[static_cast<size_t>(i)] += k[i * 64 + j] * x[static_cast<size_t>(j)];
    }
    double nx = 0;
    for (int j = 0; j < 64; ++j) {
      x[static_cast<size_t>(j)] = 0;
      for (int i = 0; i < 300; ++i) x[static_cast<size_t>(j)] += k[i * 64 + j] * y[static_cast<size_t>(i)];
      nx += x[static_cast<size_t>(j)] * x[static_cast<size_t>(j)];
    }
    nx = std::sqrt(nx);
    est = std::sqrt(nx);  // ||A^T A x|| with ||x|| = 1 -> sigma^2
    for (auto& e : x) e /= nx;
  }
  const double ub2 = clustered::spectral_norm_upper(k, 300, 64, 64);
  CHECK(ub2 >= est);
  CHECK(ub2 <= est * 1.017);
  CHECK(clustered::spectral_norm_upper(k, 0, 64, 64) == 0.0);
}
