// nystrom and linformer against an independent float64 implementation of the same algorithms
// (same landmarks, same iteration, same E from the same seed, written here from the formulas in
// include/attnkit/lowrank.hpp), the M >= n identity, masks, GQA, cross-attention, weights, bad input.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <vector>

#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

using Mat = std::vector<double>;  // row-major

// C [m × n] = A [m × k] · B [k × n]
Mat mul(const Mat& a, const Mat& b, int64_t m, int64_t k, int64_t n) {
  Mat c(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t = 0; t < k; ++t) {
      const double x = a[static_cast<size_t>(i * k + t)];
      for (int64_t j = 0; j < n; ++j) c[static_cast<size_t>(i * n + j)] += x * b[static_cast<size_t>(t * n + j)];
    }
  return c;
}

// Rows [0, r) of (b, h) of a view as a double matrix [r × cols].
Mat rows_of(const ConstView& v, int64_t b, int64_t h, int64_t r) {
  const int64_t cols = v.shape[3];
  Mat m(static_cast<size_t>(r * cols));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t c = 0; c < cols; ++c) m[static_cast<size_t>(i * cols + c)] = v.row(b, h, i)[c];
  return m;
}

// Means of m segments [⌊i r/m⌋, ⌊(i+1) r/m⌋) of the rows of x [r × cols].
Mat seg_means(const Mat& x, int64_t r, int64_t cols, int64_t m) {
  Mat out(static_cast<size_t>(m * cols), 0.0);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t lo = i * r / m, hi = (i + 1) * r / m;
    REQUIRE(hi - lo >= r / m);
    REQUIRE(hi - lo <= (r + m - 1) / m);
    for (int64_t j = lo; j < hi; ++j)
      for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(i * cols + c)] += x[static_cast<size_t>(j * cols + c)];
    for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(i * cols + c)] /= static_cast<double>(hi - lo);
  }
  return out;
}

// softmax(s · X Yᵀ) row-wise, X [r × d], Y [c × d].
Mat softmax_xyt(const Mat& x, const Mat& y, int64_t r, int64_t c, int64_t d, double s) {
  Mat p(static_cast<size_t>(r * c));
  for (int64_t i = 0; i < r; ++i) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < c; ++j) {
      double dot = 0;
      for (int64_t t = 0; t < d; ++t) dot += x[static_cast<size_t>(i * d + t)] * y[static_cast<size_t>(j * d + t)];
      p[static_cast<size_t>(i * c + j)] = s * dot;
      mx = std::max(mx, s * dot);
    }
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += (p[static_cast<size_t>(i * c + j)] = std::exp(p[static_cast<size_t>(i * c + j)] - mx));
    for (int64_t j = 0; j < c; ++j) p[static_cast<size_t>(i * c + j)] /= sum;
  }
  return p;
}

int64_t visible(const Problem& p, int64_t b) {
  return p.mask.key_lengths.empty() ? p.k.shape[2] : std::min<int64_t>(p.k.shape[2], p.mask.key_lengths[b]);
}

// Nyströmformer in float64 for (b, h): out [n_q × d_v]; also the implied weights [n_q × n].
Mat nystrom64(const Problem& p, int64_t b, int64_t h, int64_t M, int64_t iters, Mat* weights = nullptr) {
  const int64_t nq = p.q.shape[2], d = p.q.shape[3], dv = p.v.shape[3], g = h / (p.q.shape[1] / p.k.shape[1]);
  const int64_t n = visible(p, b);
  if (n == 0) return Mat(static_cast<size_t>(nq * dv), 0.0);
  const double s = p.effective_scale();
  const Mat Q = rows_of(p.q, b, h, nq), K = rows_of(p.k, b, g, n), V = rows_of(p.v, b, g, n);
  const int64_t mq = std::min(M, nq), mk = std::min(M, n);
  const Mat Qt = seg_means(Q, nq, d, mq), Kt = seg_means(K, n, d, mk);
  const Mat F = softmax_xyt(Q, Kt, nq, mk, d, s), A = softmax_xyt(Qt, Kt, mq, mk, d, s),
            B = softmax_xyt(Qt, K, mq, n, d, s);
  // Z₀ = Aᵀ / (‖A‖₁ ‖A‖∞)
  double r1 = 0, c1 = 0;
  for (int64_t i = 0; i < mq; ++i) {
    double t = 0;
    for (int64_t j = 0; j < mk; ++j) t += std::fabs(A[static_cast<size_t>(i * mk + j)]);
    r1 = std::max(r1, t);
  }
  for (int64_t j = 0; j < mk; ++j) {
    double t = 0;
    for (int64_t i = 0; i < mq; ++i) t += std::fabs(A[static_cast<size_t>(i * mk + j)]);
    c1 = std::max(c1, t);
  }
  Mat Z(static_cast<size_t>(mk * mq));
  for (int64_t i = 0; i < mq; ++i)
    for (int64_t j = 0; j < mk; ++j) Z[static_cast<size_t>(j * mq + i)] = A[static_cast<size_t>(i * mk + j)] / (r1 * c1);
  auto shifted = [&](Mat x, double c) {  // cI − x
    for (double& e : x) e = -e;
    for (int64_t i = 0; i < mq; ++i) x[static_cast<size_t>(i * mq + i)] += c;
    return x;
  };
  for (int64_t it = 0; it < iters; ++it) {
    const Mat AZ = mul(A, Z, mq, mk, mq);
    const Mat T = shifted(mul(AZ, shifted(mul(AZ, shifted(AZ, 7), mq, mq, mq), 15), mq, mq, mq), 13);
    Z = mul(Z, T, mk, mq, mq);
    for (double& e : Z) e *= 0.25;
  }
  const Mat ZB = mul(Z, B, mk, mq, n);
  const Mat W = mul(F, ZB, nq, mk, n);
  if (weights) *weights = W;
  return mul(W, V, nq, n, dv);
}

// E [k × n] from the formula in lowrank.hpp (written independently of src/lowrank).
Mat projection64(int64_t seed, int64_t k, int64_t n) {
  auto mix = [](uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  Mat e(static_cast<size_t>(k * n));
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < n; ++c) {
      const uint64_t h = mix(mix(mix(static_cast<uint64_t>(seed)) ^ static_cast<uint64_t>(r)) ^ static_cast<uint64_t>(c / 2));
      const double u1 = (static_cast<double>(h >> 40) + 0.5) / 16777216.0;
      const double u2 = (static_cast<double>(h & 0xFFFFFFull) + 0.5) / 16777216.0;
      const double rad = std::sqrt(-2.0 * std::log(u1)), ang = 2.0 * M_PI * u2;
      e[static_cast<size_t>(r * n + c)] = (c % 2 == 0 ? rad * std::cos(ang) : rad * std::sin(ang)) / std::sqrt(double(k));
    }
  return e;
}

// Linformer in float64 for (b, h), E rounded to float (the backend evaluates it in float).
Mat linformer64(const Problem& p, int64_t b, int64_t h, int64_t k, int64_t seed, Mat* weights = nullptr) {
  const int64_t nq = p.q.shape[2], d = p.q.shape[3], dv = p.v.shape[3], g = h / (p.q.shape[1] / p.k.shape[1]);
  const int64_t n = visible(p, b);
  if (n == 0) return Mat(static_cast<size_t>(nq * dv), 0.0);
  Mat E = projection64(seed, k, n);
  for (double& e : E) e = static_cast<float>(e);
  const Mat Q = rows_of(p.q, b, h, nq), K = rows_of(p.k, b, g, n), V = rows_of(p.v, b, g, n);
  const Mat EK = mul(E, K, k, n, d), EV = mul(E, V, k, n, dv);
  const Mat P = softmax_xyt(Q, EK, nq, k, d, p.effective_scale());
  if (weights) *weights = mul(P, E, nq, k, n);
  return mul(P, EV, nq, k, dv);
}

// ‖out − ref‖_F / ‖ref‖_F over every (b, h), ref from `one(p, b, h)`.
template <class Fn>
double rel_vs(const Problem& p, Fn one) {
  double num = 0, den = 0;
  const int64_t dv = p.v.shape[3];
  for (int64_t b = 0; b < p.q.shape[0]; ++b)
    for (int64_t h = 0; h < p.q.shape[1]; ++h) {
      const Mat r = one(b, h);
      for (int64_t i = 0; i < p.q.shape[2]; ++i)
        for (int64_t c = 0; c < dv; ++c) {
          const double x = p.out.row(b, h, i)[c], y = r[static_cast<size_t>(i * dv + c)];
          num += (x - y) * (x - y);
          den += y * y;
        }
    }
  return std::sqrt(num / den);
}

double nystrom_rel(const Problem& p, int64_t M, int64_t I) {
  NystromBackend(NystromOptions{M, I}).forward(p);
  return rel_vs(p, [&](int64_t b, int64_t h) { return nystrom64(p, b, h, M, I); });
}

double linformer_rel(const Problem& p, int64_t k, int64_t seed) {
  LinformerBackend(LinformerOptions{k, seed}).forward(p);
  return rel_vs(p, [&](int64_t b, int64_t h) { return linformer64(p, b, h, k, seed); });
}

}  // namespace

TEST_CASE("nystrom equals the float64 implementation of the same algorithm", "[lowrank]") {
  Owned o(2, 3, 3, 300, 300, 32, 24, 11);
  for (auto [M, I] : {std::pair<int64_t, int64_t>{64, 6}, {7, 6}, {64, 12}, {300, 2}, {1, 6}}) {
    const double r = nystrom_rel(o.p, M, I);
    std::printf("nystrom M=%lld I=%lld vs float64: rel %.3g\n", (long long)M, (long long)I, r);
    INFO("M=" << M << " I=" << I);
    CHECK(r < 1e-4);
  }
}

TEST_CASE("nystrom: key lengths, grouped-query and cross-attention match the float64 implementation", "[lowrank]") {
  Owned o(2, 4, 2, 200, 333, 32, 16, 12);
  o.p.mask.key_lengths = {333, 101};
  const double r = nystrom_rel(o.p, 64, 6);
  std::printf("nystrom key_lengths+gqa+cross vs float64: rel %.3g\n", r);
  CHECK(r < 1e-4);
  // M above the visible keys of one batch but not of the other; fewer queries than M.
  Owned c(2, 2, 1, 40, 150, 16, 16, 13);
  c.p.mask.key_lengths = {150, 30};
  CHECK(nystrom_rel(c.p, 64, 6) < 1e-4);
}

TEST_CASE("nystrom with M >= n and 20 iterations equals exact attention", "[lowrank]") {
  Owned o(1, 4, 4, 256, 256, 64, 64, 14);
  for (int64_t M : {256, 1000}) {
    const double r = attnkit::test::rel_error(NystromBackend(NystromOptions{M, 20}), o.p);
    std::printf("nystrom M=%lld I=20, n=256 vs exact: rel %.3g\n", (long long)M, r);
    CHECK(r < 1e-3);
  }
  // Padding: M >= the visible keys, GQA.
  Owned k(2, 4, 2, 128, 160, 32, 32, 15);
  k.p.mask.key_lengths = {160, 77};
  CHECK(attnkit::test::rel_error(NystromBackend(NystromOptions{256, 20}), k.p) < 1e-3);
  // And it is not exact with few landmarks on the same input (the test can fail).
  CHECK(attnkit::test::rel_error(NystromBackend(NystromOptions{8, 20}), o.p) > 1e-2);
}

TEST_CASE("linformer: E is the documented Gaussian matrix, a prefix for fewer keys", "[lowrank]") {
  const LinformerBackend lb(LinformerOptions{64, 5});
  const std::vector<float> e = lb.projection(301);
  const Mat ref = projection64(5, 64, 301);
  REQUIRE(e.size() == ref.size());
  double worst = 0, sum = 0, sq = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    worst = std::max(worst, std::fabs(e[i] - ref[i]));
    sum += ref[i];
    sq += ref[i] * ref[i];
  }
  CHECK(worst < 1e-6);
  const double mean = sum / e.size(), var = sq / e.size() - mean * mean;
  CHECK(std::fabs(mean) < 0.01);            // N(0, 1/64): sd of the mean ~ 0.125/139
  CHECK(std::fabs(var * 64 - 1.0) < 0.05);  // variance 1/K
  const std::vector<float> e2 = lb.projection(120);
  for (int64_t r = 0; r < 64; ++r)
    for (int64_t c = 0; c < 120; ++c) REQUIRE(e2[r * 120 + c] == e[r * 301 + c]);
  CHECK(LinformerBackend(LinformerOptions{64, 6}).projection(10) != LinformerBackend(LinformerOptions{64, 5}).projection(10));
}

TEST_CASE("linformer equals the float64 implementation; key lengths, GQA, cross", "[lowrank]") {
  Owned o(2, 3, 3, 300, 300, 32, 24, 21);
  for (auto [k, s] : {std::pair<int64_t, int64_t>{256, 0}, {16, 3}, {500, 9}}) {
    const double r = linformer_rel(o.p, k, s);
    std::printf("linformer k=%lld seed=%lld vs float64: rel %.3g\n", (long long)k, (long long)s, r);
    CHECK(r < 1e-4);
  }
  Owned c(3, 4, 2, 200, 333, 32, 16, 22);
  c.p.mask.key_lengths = {333, 57, 0};
  CHECK(linformer_rel(c.p, 64, 1) < 1e-4);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < 200; ++i)
      for (int64_t x = 0; x < 16; ++x) REQUIRE(c.out.cview().row(2, h, i)[x] == 0.0f);
}

TEST_CASE("nystrom and linformer: a batch without visible keys gives zero rows", "[lowrank]") {
  Owned o(2, 2, 2, 50, 60, 16, 16, 23);
  o.p.mask.key_lengths = {0, 60};
  NystromBackend().forward(o.p);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 50; ++i)
      for (int64_t x = 0; x < 16; ++x) REQUIRE(o.out.cview().row(0, h, i)[x] == 0.0f);
  CHECK(nystrom_rel(o.p, 64, 6) < 1e-4);
}

TEST_CASE("weights: the implied matrices, negative entries allowed, and W V equals forward", "[lowrank]") {
  Owned o(1, 2, 1, 90, 120, 16, 8, 31);
  o.p.mask.key_lengths = {100};
  const int64_t nq = 90, nk = 120;
  std::vector<float> w(static_cast<size_t>(nq * nk));
  for (int which = 0; which < 2; ++which) {
    std::unique_ptr<Backend> be;
    if (which == 0) be = std::make_unique<NystromBackend>(NystromOptions{16, 6});
    else be = std::make_unique<LinformerBackend>(LinformerOptions{32, 2});
    INFO(be->spec());
    be->forward(o.p);
    for (int64_t h = 0; h < 2; ++h) {
      be->weights(o.p, 0, h, w.data());
      Mat ref;
      if (which == 0) nystrom64(o.p, 0, h, 16, 6, &ref);
      else linformer64(o.p, 0, h, 32, 2, &ref);
      double num = 0, den = 0, neg = 0;
      for (int64_t i = 0; i < nq; ++i) {
        for (int64_t j = 100; j < nk; ++j) REQUIRE(w[i * nk + j] == 0.0f);  // padding
        for (int64_t j = 0; j < 100; ++j) {
          const double d = w[i * nk + j] - ref[static_cast<size_t>(i * 100 + j)];
          num += d * d;
          den += ref[static_cast<size_t>(i * 100 + j)] * ref[static_cast<size_t>(i * 100 + j)];
          neg = std::min<double>(neg, w[i * nk + j]);
        }
        // Row i of W·V is the forward output.
        for (int64_t x = 0; x < 8; ++x) {
          double acc = 0;
          for (int64_t j = 0; j < 100; ++j) acc += static_cast<double>(w[i * nk + j]) * o.v.cview().row(0, 0, j)[x];
          REQUIRE(std::fabs(acc - o.out.cview().row(0, h, i)[x]) < 1e-4);
        }
      }
      CHECK(std::sqrt(num / den) < 1e-4);
      if (which == 1) CHECK(neg < 0);  // a Gaussian E gives negative implied weights
    }
  }
  // M >= n: the implied matrix is the exact probability matrix.
  Owned e(1, 1, 1, 64, 64, 16, 16, 32);
  std::vector<float> we(64 * 64), wr(64 * 64);
  NystromBackend(NystromOptions{64, 20}).weights(e.p, 0, 0, we.data());
  ReferenceBackend().weights(e.p, 0, 0, wr.data());
  double worst = 0;
  for (size_t i = 0; i < we.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(we[i]) - wr[i]));
  CHECK(worst < 1e-3);
}

TEST_CASE("causal is refused by name; capabilities say so", "[lowrank]") {
  Owned o(1, 1, 1, 32, 32, 16, 16, 41);
  o.p.mask.causal = true;
  std::vector<float> w(32 * 32);
  for (const char* spec : {"nystrom", "linformer"}) {
    const auto be = make_backend(spec);
    CHECK_FALSE(be->capabilities().causal);
    CHECK(be->capabilities().key_lengths);
    CHECK(be->capabilities().cross);
    CHECK(be->capabilities().gqa);
    CHECK(be->capabilities().weights);
    CHECK_THROWS_WITH(be->forward(o.p), Catch::Contains("causal"));
    CHECK_THROWS_WITH(be->weights(o.p, 0, 0, w.data()), Catch::Contains("causal"));
    CHECK_FALSE(be->error_bound(o.p).has_value());
  }
}

TEST_CASE("spec strings, defaults and bad options", "[lowrank]") {
  CHECK(make_backend("nystrom")->spec() == "nystrom:landmarks=64,iterations=6");
  CHECK(make_backend("nystrom:iterations=3,landmarks=16")->spec() == "nystrom:landmarks=16,iterations=3");
  CHECK(make_backend("linformer")->spec() == "linformer:k=256,seed=0");
  CHECK(make_backend("linformer:k=32,seed=7")->spec() == "linformer:k=32,seed=7");
  CHECK_THROWS_WITH(make_backend("nystrom:landmarks=0"), Catch::Contains("landmarks"));
  CHECK_THROWS_WITH(make_backend("nystrom:iterations=101"), Catch::Contains("iterations"));
  CHECK_THROWS_WITH(make_backend("nystrom:iterations=-1"), Catch::Contains("iterations"));
  CHECK_THROWS_WITH(make_backend("nystrom:rank=3"), Catch::Contains("rank"));
  CHECK_THROWS_WITH(make_backend("linformer:k=0"), Catch::Contains("k"));
  CHECK_THROWS_WITH(make_backend("linformer:seed=-1"), Catch::Contains("seed"));
  CHECK_THROWS_WITH(make_backend("linformer:k=12x"), Catch::Contains("k"));
  CHECK_THROWS_AS(NystromBackend(NystromOptions{0, 6}), Error);
  CHECK_THROWS_AS(LinformerBackend(LinformerOptions{70000, 0}), Error);
  CHECK_THROWS_AS(LinformerBackend().projection(-1), Error);
  // Problem errors still come first from validate (named argument).
  Owned o(1, 2, 2, 16, 16, 8, 8, 51);
  o.p.k.shape[3] = 4;
  CHECK_THROWS_WITH(NystromBackend().forward(o.p), Catch::Contains("k: dim"));
  CHECK_THROWS_WITH(LinformerBackend().forward(o.p), Catch::Contains("k: dim"));
}

TEST_CASE("cost counts linear work: far below exact and linear in n", "[lowrank]") {
  Shape s;
  s.heads = s.kv_heads = 4;
  s.n_q = s.n_k = 16384;
  for (const char* spec : {"nystrom:landmarks=64", "linformer:k=256"}) {
    const auto be = make_backend(spec);
    const double c1 = be->cost(s).flops;
    Shape t = s;
    t.n_q = t.n_k = 32768;
    const double c2 = be->cost(t).flops;
    INFO(spec);
    CHECK(c1 > 0);
    CHECK(c1 < exact_cost(s).flops / 20);
    CHECK(c2 / c1 > 1.9);
    CHECK(c2 / c1 < 2.1);
  }
}

TEST_CASE("nystrom and linformer: bit-identical for 1 and 3 threads, any strides", "[lowrank]") {
  Owned o(2, 4, 2, 700, 530, 32, 32, 61);
  o.p.mask.key_lengths = {530, 300};
  for (const char* spec : {"nystrom:landmarks=32", "linformer:k=64"}) {
    const auto be = make_backend(spec);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    be->forward(o.p);
    const Tensor one = o.out.clone();
    omp_set_num_threads(3);
    be->forward(o.p);
    omp_set_num_threads(saved);
    INFO(spec);
    CHECK(std::equal(one.data(), one.data() + one.numel(), o.out.data()));
  }
  // A key view with stride 0 on the sequence (every key the same row) is allowed for inputs.
  Owned z(1, 1, 1, 40, 50, 8, 8, 62);
  z.p.k.stride[2] = 0;
  z.p.v.stride[2] = 0;
  NystromBackend().forward(z.p);
  CHECK(rel_vs(z.p, [&](int64_t b, int64_t h) { return nystrom64(z.p, b, h, 64, 6); }) < 1e-4);
  LinformerBackend(LinformerOptions{16, 0}).forward(z.p);
  CHECK(rel_vs(z.p, [&](int64_t b, int64_t h) { return linformer64(z.p, b, h, 16, 0); }) < 1e-4);
}
