// The multi-head layer against an independent fp64 computation written out per head, PyTorch's
// layout against the native one, and attention weights (rows sum to 1, or 0 when fully masked).
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "support.hpp"

using namespace attnkit;

namespace {

std::vector<float> randn(size_t n, std::mt19937_64& rng, float sd = 1.0f) {
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

struct Sizes {
  int64_t B, n, m, D, H, G, d, dv;
};

// y = x·W + b in fp64; x [rows, in], W [in, out] row-major, b [out] or empty.
std::vector<double> affine(const std::vector<float>& x, int64_t rows, int64_t in, const std::vector<float>& w,
                           int64_t out, const std::vector<float>& b) {
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[static_cast<size_t>(o)];
      for (int64_t i = 0; i < in; ++i) s += static_cast<double>(x[static_cast<size_t>(r * in + i)]) * w[static_cast<size_t>(i * out + o)];
      y[static_cast<size_t>(r * out + o)] = s;
    }
  return y;
}

// The layer written out in the plainest way: project, then for every batch, head and query row
// an explicit softmax over the visible keys, then the output projection.
std::vector<double> naive_mha(const Sizes& s, const MhaWeights& w, const std::vector<float>& x,
                              const std::vector<float>& c, const Mask& mask, double scale) {
  const auto q = affine(x, s.B * s.n, s.D, w.wq, s.H * s.d, w.bq);
  const auto k = affine(c, s.B * s.m, s.D, w.wk, s.G * s.d, w.bk);
  const auto v = affine(c, s.B * s.m, s.D, w.wv, s.G * s.dv, w.bv);
  std::vector<float> o(static_cast<size_t>(s.B * s.n * s.H * s.dv), 0.0f);  // concat of heads
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / (s.H / s.G);
      for (int64_t i = 0; i < s.n; ++i) {
        std::vector<double> p(static_cast<size_t>(s.m), -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < s.m; ++j) {
          const bool padded = !mask.key_lengths.empty() && j >= mask.key_lengths[static_cast<size_t>(b)];
          const bool future = mask.causal && j > i + s.m - s.n;
          if (padded || future) continue;
          double dot = 0;
          for (int64_t t = 0; t < s.d; ++t)
            dot += q[static_cast<size_t>((b * s.n + i) * s.H * s.d + h * s.d + t)] *
                   k[static_cast<size_t>((b * s.m + j) * s.G * s.d + g * s.d + t)];
          p[static_cast<size_t>(j)] = dot * scale;
          mx = std::max(mx, dot * scale);
        }
        if (mx == -std::numeric_limits<double>::infinity()) continue;  // sees nothing: zeros
        double sum = 0;
        for (double& e : p) sum += (e = std::exp(e - mx));
        for (int64_t t = 0; t < s.dv; ++t) {
          double acc = 0;
          for (int64_t j = 0; j < s.m; ++j)
            acc += p[static_cast<size_t>(j)] * v[static_cast<size_t>((b * s.m + j) * s.G * s.dv + g * s.dv + t)];
          o[static_cast<size_t>((b * s.n + i) * s.H * s.dv + h * s.dv + t)] = static_cast<float>(acc / sum);
        }
      }
    }
  return affine(o, s.B * s.n, s.H * s.dv, w.wo, s.D, w.bo);
}

MhaWeights random_weights(const Sizes& s, std::mt19937_64& rng, bool biases) {
  const float sd = 1.0f / std::sqrt(static_cast<float>(s.D));
  MhaWeights w;
  w.wq = randn(static_cast<size_t>(s.D * s.H * s.d), rng, sd);
  w.wk = randn(static_cast<size_t>(s.D * s.G * s.d), rng, sd);
  w.wv = randn(static_cast<size_t>(s.D * s.G * s.dv), rng, sd);
  w.wo = randn(static_cast<size_t>(s.H * s.dv * s.D), rng, sd);
  if (biases) {
    w.bq = randn(static_cast<size_t>(s.H * s.d), rng, 0.3f);
    w.bk = randn(static_cast<size_t>(s.G * s.d), rng, 0.3f);
    w.bv = randn(static_cast<size_t>(s.G * s.dv), rng, 0.3f);
    w.bo = randn(static_cast<size_t>(s.D), rng, 0.3f);
  }
  return w;
}

double rel_diff(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

// Runs the layer (self when s.m == 0 is not used: `cross` picks the overload) and compares.
void check_layer(const Sizes& s, bool biases, bool cross, const Mask& mask, const std::string& spec,
                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  const MhaWeights w = random_weights(s, rng, biases);
  const auto x = randn(static_cast<size_t>(s.B * s.n * s.D), rng);
  const auto c = cross ? randn(static_cast<size_t>(s.B * s.m * s.D), rng) : x;
  MhaConfig cfg{s.D, s.H, s.G, s.d, s.dv, std::nullopt};
  const MultiHeadAttention mha(cfg, w, spec);
  std::vector<float> y(static_cast<size_t>(s.B * s.n * s.D), std::numeric_limits<float>::quiet_NaN());
  const ConstSeq xs{x.data(), s.B, s.n, s.D};
  const MutSeq ys{y.data(), s.B, s.n, s.D};
  if (cross)
    mha.forward(xs, ConstSeq{c.data(), s.B, s.m, s.D}, ys, mask);
  else
    mha.forward(xs, ys, mask);
  const auto ref = naive_mha(s, w, x, c, mask, 1.0 / std::sqrt(static_cast<double>(s.d)));
  const double e = rel_diff(y, ref);
  INFO("spec " << spec << " B=" << s.B << " n=" << s.n << " m=" << s.m << " D=" << s.D << " H=" << s.H
               << " G=" << s.G << " d=" << s.d << " dv=" << s.dv << " biases=" << biases << " cross=" << cross
               << " causal=" << mask.causal << " lengths=" << mask.key_lengths.size() << " rel " << e);
  CHECK(e <= 1e-5);
}

}  // namespace

TEST_CASE("mha self-attention matches the per-head computation", "[layer]") {
  const Sizes s{2, 37, 37, 48, 4, 4, 12, 12};
  for (const char* spec : {"exact", "reference"})
    for (bool biases : {false, true})
      for (bool causal : {false, true})
        for (bool lengths : {false, true}) {
          Mask m;
          m.causal = causal;
          if (lengths) m.key_lengths = {37, 20};
          check_layer(s, biases, false, m, spec, 11);
        }
}

TEST_CASE("mha cross-attention, GQA and head sizes apart from d_model", "[layer]") {
  Mask none;
  check_layer({2, 29, 53, 32, 4, 4, 8, 8}, true, true, none, "exact", 3);
  // n > m with causal: the first n - m query rows see no key and give y = b_O.
  Mask causal;
  causal.causal = true;
  check_layer({1, 40, 25, 32, 4, 4, 8, 8}, true, true, causal, "exact", 4);
  Mask padded;
  padded.key_lengths = {0, 10};  // batch 0 sees nothing at all
  check_layer({2, 17, 31, 16, 2, 2, 8, 8}, true, true, padded, "exact", 5);
  // Grouped-query attention with head_dim * heads != d_model and d_v != d.
  check_layer({2, 33, 33, 20, 6, 2, 8, 5}, true, false, causal, "exact", 6);
  check_layer({1, 33, 19, 20, 6, 3, 8, 5}, false, true, none, "reference", 7);
}

TEST_CASE("mha accepts a backend object and y may alias x", "[layer]") {
  std::mt19937_64 rng(9);
  const Sizes s{1, 21, 21, 16, 2, 2, 8, 8};
  const MhaWeights w = random_weights(s, rng, true);
  auto x = randn(static_cast<size_t>(s.B * s.n * s.D), rng);
  const MhaConfig cfg{s.D, s.H, 0, 0, 0, std::nullopt};
  const MultiHeadAttention mha(cfg, w, std::make_shared<ReferenceBackend>());
  CHECK(mha.backend().spec() == "reference");
  CHECK(mha.config().kv_heads == 2);
  CHECK(mha.config().head_dim == 8);
  const auto ref = naive_mha(s, w, x, x, {}, 1.0 / std::sqrt(8.0));
  mha.forward(ConstSeq{x.data(), 1, s.n, s.D}, MutSeq{x.data(), 1, s.n, s.D});
  CHECK(rel_diff(x, ref) <= 1e-6);
}

TEST_CASE("mha loads PyTorch's layout and gives the native layout's result", "[layer]") {
  std::mt19937_64 rng(21);
  const int64_t D = 24, H = 3, B = 2, n = 19;
  TorchMhaWeights t;
  t.in_proj_weight = randn(static_cast<size_t>(3 * D * D), rng, 0.2f);
  t.in_proj_bias = randn(static_cast<size_t>(3 * D), rng, 0.2f);
  t.out_proj_weight = randn(static_cast<size_t>(D * D), rng, 0.2f);
  t.out_proj_bias = randn(static_cast<size_t>(D), rng, 0.2f);
  // Native weights written out by hand from the definition q = x·W_qᵀ: W_Q[i][o] = in_proj[o][i].
  MhaWeights w;
  for (auto* m : {&w.wq, &w.wk, &w.wv, &w.wo}) m->resize(static_cast<size_t>(D * D));
  for (int64_t o = 0; o < D; ++o)
    for (int64_t i = 0; i < D; ++i) {
      w.wq[static_cast<size_t>(i * D + o)] = t.in_proj_weight[static_cast<size_t>(o * D + i)];
      w.wk[static_cast<size_t>(i * D + o)] = t.in_proj_weight[static_cast<size_t>((D + o) * D + i)];
      w.wv[static_cast<size_t>(i * D + o)] = t.in_proj_weight[static_cast<size_t>((2 * D + o) * D + i)];
      w.wo[static_cast<size_t>(i * D + o)] = t.out_proj_weight[static_cast<size_t>(o * D + i)];
    }
  w.bq.assign(t.in_proj_bias.begin(), t.in_proj_bias.begin() + D);
  w.bk.assign(t.in_proj_bias.begin() + D, t.in_proj_bias.begin() + 2 * D);
  w.bv.assign(t.in_proj_bias.begin() + 2 * D, t.in_proj_bias.end());
  w.bo = t.out_proj_bias;

  const auto x = randn(static_cast<size_t>(B * n * D), rng);
  Mask mask;
  mask.causal = true;
  mask.key_lengths = {19, 7};
  std::vector<float> y_torch(x.size()), y_native(x.size());
  const ConstSeq xs{x.data(), B, n, D};
  MultiHeadAttention::from_torch(D, H, t, "exact").forward(xs, MutSeq{y_torch.data(), B, n, D}, mask);
  MultiHeadAttention(MhaConfig{D, H, 0, 0, 0, std::nullopt}, w, "exact").forward(xs, MutSeq{y_native.data(), B, n, D}, mask);
  CHECK(y_torch == y_native);  // the same native matrices, so bit for bit
  const Sizes s{B, n, n, D, H, H, D / H, D / H};
  CHECK(rel_diff(y_torch, naive_mha(s, w, x, x, mask, 1.0 / std::sqrt(8.0))) <= 1e-5);

  // Without biases (bias=False in PyTorch).
  TorchMhaWeights nb = t;
  nb.in_proj_bias.clear();
  nb.out_proj_bias.clear();
  const MhaWeights wn = MultiHeadAttention::native_from_torch(D, H, nb);
  CHECK(wn.wq == w.wq);
  CHECK(wn.wo == w.wo);
  CHECK(wn.bq.empty());
  CHECK(wn.bo.empty());
}

TEST_CASE("mha rejects bad sizes with messages naming them", "[layer]") {
  std::mt19937_64 rng(1);
  const Sizes s{1, 5, 5, 16, 2, 2, 8, 8};
  const MhaWeights w = random_weights(s, rng, true);
  const MhaConfig cfg{16, 2, 0, 0, 0, std::nullopt};
  using Catch::Matchers::Contains;
  MhaWeights bad = w;
  bad.wq.pop_back();
  CHECK_THROWS_WITH(MultiHeadAttention(cfg, bad), Contains("W_Q") && Contains("expected 256"));
  bad = w;
  bad.bo.resize(3);
  CHECK_THROWS_WITH(MultiHeadAttention(cfg, bad), Contains("b_O"));
  CHECK_THROWS_WITH(MultiHeadAttention(MhaConfig{16, 3, 0, 0, 0, std::nullopt}, w), Contains("heads = 3"));
  CHECK_THROWS_WITH(MultiHeadAttention(MhaConfig{16, 2, 3, 0, 0, std::nullopt}, w), Contains("kv_heads = 3"));
  CHECK_THROWS_WITH(MultiHeadAttention(MhaConfig{16, 2, 0, 0, 0, -1.0f}, w), Contains("scale"));
  CHECK_THROWS_WITH(MultiHeadAttention(cfg, w, std::shared_ptr<const Backend>()), Contains("null"));
  CHECK_THROWS_WITH(MultiHeadAttention(cfg, w, "nosuch"), Contains("nosuch"));
  TorchMhaWeights t;
  t.in_proj_weight.resize(3 * 16 * 16 - 1);
  t.out_proj_weight.resize(16 * 16);
  CHECK_THROWS_WITH(MultiHeadAttention::from_torch(16, 2, t), Contains("in_proj_weight"));

  const MultiHeadAttention mha(cfg, w);
  std::vector<float> x(5 * 16), y(5 * 16), c(2 * 7 * 16);
  CHECK_THROWS_WITH(mha.forward(ConstSeq{x.data(), 1, 5, 15}, MutSeq{y.data(), 1, 5, 16}), Contains("x: width 15"));
  CHECK_THROWS_WITH(mha.forward(ConstSeq{x.data(), 1, 5, 16}, MutSeq{y.data(), 1, 4, 16}), Contains("y: shape"));
  CHECK_THROWS_WITH(mha.forward(ConstSeq{x.data(), 1, 5, 16}, ConstSeq{c.data(), 2, 7, 16}, MutSeq{y.data(), 1, 5, 16}),
                    Contains("context: batch 2"));
  CHECK_THROWS_WITH(mha.forward(ConstSeq{nullptr, 1, 5, 16}, MutSeq{y.data(), 1, 5, 16}), Contains("x: null"));
  // A bad input is named, not the output the caller sized from it (y was reported first).
  CHECK_THROWS_WITH(mha.forward(ConstSeq{x.data(), 2, 0, 16}, MutSeq{y.data(), 2, 0, 16}),
                    Catch::StartsWith("x: shape [2, 0, 16]; expected batch and seq >= 1"));
  CHECK_THROWS_WITH(mha.forward(ConstSeq{x.data(), 2, 0, 16}, ConstSeq{c.data(), 2, 7, 16}, MutSeq{y.data(), 2, 0, 16}),
                    Catch::StartsWith("x: shape [2, 0, 16]"));
  CHECK_THROWS_WITH(mha.forward(ConstSeq{x.data(), 1, 5, 16}, ConstSeq{c.data(), 1, 7, 15}, MutSeq{y.data(), 1, 5, 17}),
                    Catch::StartsWith("context: width 15"));
  Mask m;
  m.key_lengths = {6};
  CHECK_THROWS_WITH(mha.forward(ConstSeq{x.data(), 1, 5, 16}, MutSeq{y.data(), 1, 5, 16}, m), Contains("key_lengths"));
}

TEST_CASE("attention weights rows sum to 1, or 0 when fully masked", "[layer][weights]") {
  // Cross-attention n > m with causal (first rows see nothing) and a batch with no keys at all.
  for (const char* spec : {"exact", "reference"}) {
    test::Owned o(2, 2, 1, 30, 20, 8, 8, 77);
    o.p.mask.causal = true;
    o.p.mask.key_lengths = {20, 0};
    const auto be = make_backend(spec);
    std::vector<float> w(30 * 20);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 2; ++h) {
        be->weights(o.p, b, h, w.data());
        for (int64_t i = 0; i < 30; ++i) {
          double sum = 0;
          for (int64_t j = 0; j < 20; ++j) {
            const float x = w[static_cast<size_t>(i * 20 + j)];
            CHECK(x >= 0.0f);
            if (j >= o.p.key_end(b, i)) CHECK(x == 0.0f);
            sum += x;
          }
          const bool sees = o.p.key_end(b, i) > 0;
          INFO(spec << " b=" << b << " h=" << h << " i=" << i);
          CHECK(sum == Approx(sees ? 1.0 : 0.0).margin(1e-6));
        }
      }
    // The weights reproduce forward(): out = W·V for a head.
    be->forward(o.p);
    be->weights(o.p, 0, 1, w.data());
    double err = 0;
    for (int64_t i = 0; i < 30; ++i)
      for (int64_t t = 0; t < 8; ++t) {
        double acc = 0;
        for (int64_t j = 0; j < 20; ++j) acc += w[static_cast<size_t>(i * 20 + j)] * o.p.v.at(0, 0, j, t);
        err = std::max(err, std::abs(acc - o.p.out.at(0, 1, i, t)));
      }
    CHECK(err <= 1e-5);
  }
}

TEST_CASE("mha weights are the layer's per-head probabilities", "[layer][weights]") {
  std::mt19937_64 rng(5);
  const Sizes s{2, 12, 12, 16, 2, 2, 8, 8};
  const MhaWeights w = random_weights(s, rng, true);
  const auto x = randn(static_cast<size_t>(s.B * s.n * s.D), rng);
  const MultiHeadAttention mha(MhaConfig{16, 2, 0, 0, 0, std::nullopt}, w, "reference");
  Mask m;
  m.causal = true;
  std::vector<float> p(12 * 12);
  mha.weights(ConstSeq{x.data(), s.B, s.n, s.D}, m, 1, 1, p.data());
  // Row 0 sees only key 0; every row sums to 1; nothing above the diagonal.
  CHECK(p[0] == Approx(1.0f));
  for (int64_t i = 0; i < 12; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < 12; ++j) {
      sum += p[static_cast<size_t>(i * 12 + j)];
      if (j > i) CHECK(p[static_cast<size_t>(i * 12 + j)] == 0.0f);
    }
    CHECK(sum == Approx(1.0).margin(1e-6));
  }
  CHECK_THROWS_WITH(mha.weights(ConstSeq{x.data(), s.B, s.n, s.D}, m, 2, 0, p.data()), Catch::Matchers::Contains("batch 2"));
}
