// The reduced-precision tile kernels (src/simd/lowp.hpp) directly: every kernel set this CPU runs
// against an fp64 model of the same rounding (bf16 operands; int8 tiles with the mean key taken
// off), against exact fp64 attention, and the fast sets against the portable one; masks, several
// spans, ragged sizes, rows that see nothing, NaN, bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "../src/simd/lowp_paths.hpp"
#include "../src/simd/paths.hpp"
#include "attnkit/simd.hpp"
#include "support.hpp"

using namespace attnkit;
using simd::Precision;

namespace {

struct Head {
  int64_t nq, nk, d, dv;
  std::vector<float> q, k, v;
};

Head make_head(int64_t nq, int64_t nk, int64_t d, int64_t dv, uint32_t seed, float key_offset = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  Head h{nq, nk, d, dv, {}, {}, {}};
  h.q.resize(size_t(nq * d));
  h.k.resize(size_t(nk * d));
  h.v.resize(size_t(nk * dv));
  // Peaky scores (|q·k|/√d of a few units) so that the softmax is far from uniform.
  for (auto& x : h.q) x = 1.5f * g(rng);
  for (auto& x : h.k) x = 1.5f * g(rng) + key_offset;
  for (auto& x : h.v) x = g(rng);
  return h;
}

using Visible = std::function<bool(int64_t, int64_t)>;

// fp64 softmax attention of the given (already rounded or not) scores; rows that see nothing: 0.
std::vector<double> softmax_apply(const Head& h, const std::vector<double>& s, const std::vector<double>& v,
                                  const Visible& vis) {
  std::vector<double> out(size_t(h.nq * h.dv), 0.0);
  for (int64_t i = 0; i < h.nq; ++i) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < h.nk; ++j)
      if (vis(i, j)) mx = std::max(mx, s[size_t(i * h.nk + j)]);
    if (mx == -INFINITY) continue;
    double sum = 0;
    std::vector<double> w(size_t(h.nk), 0.0);
    for (int64_t j = 0; j < h.nk; ++j)
      if (vis(i, j)) sum += w[size_t(j)] = std::exp(s[size_t(i * h.nk + j)] - mx);
    for (int64_t j = 0; j < h.nk; ++j)
      for (int64_t c = 0; c < h.dv; ++c) out[size_t(i * h.dv + c)] += w[size_t(j)] / sum * v[size_t(j * h.dv + c)];
  }
  return out;
}

double bf(float x) { return simd::from_bf16(simd::to_bf16(x)); }

// The model of the kernels' rounding: exact products of the rounded operands, fp64 softmax.
std::vector<double> model(const Head& h, Precision p, const Visible& vis) {
  const double scale = 1.0 / std::sqrt(double(h.d));
  std::vector<double> s(size_t(h.nq * h.nk)), v(size_t(h.nk * h.dv));
  for (size_t i = 0; i < v.size(); ++i) v[i] = p == Precision::fp32 ? h.v[i] : bf(h.v[i]);
  if (p != Precision::int8) {
    for (int64_t i = 0; i < h.nq; ++i)
      for (int64_t j = 0; j < h.nk; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < h.d; ++c) {
          const float a = h.q[size_t(i * h.d + c)], b = h.k[size_t(j * h.d + c)];
          dot += p == Precision::fp32 ? double(a) * b : bf(a) * bf(b);
        }
        s[size_t(i * h.nk + j)] = dot * scale;
      }
    return softmax_apply(h, s, v, vis);
  }
  // int8: keys centred on their mean, one scale per 32-key tile; queries: one scale per block.
  std::vector<double> mean(size_t(h.d), 0.0);
  for (int64_t j = 0; j < h.nk; ++j)
    for (int64_t c = 0; c < h.d; ++c) mean[size_t(c)] += h.k[size_t(j * h.d + c)];
  for (auto& m : mean) m /= double(h.nk);
  std::vector<int> k8(size_t(h.nk * h.d));
  std::vector<double> ks(size_t(h.nk));
  for (int64_t t0 = 0; t0 < h.nk; t0 += simd::kKeyTile) {
    const int64_t t1 = std::min(h.nk, t0 + simd::kKeyTile);
    float amax = 0;
    for (int64_t j = t0; j < t1; ++j)
      for (int64_t c = 0; c < h.d; ++c)
        amax = std::max(amax, std::fabs(float(h.k[size_t(j * h.d + c)] - mean[size_t(c)])));
    for (int64_t j = t0; j < t1; ++j) {
      ks[size_t(j)] = amax / 127.0f;
      for (int64_t c = 0; c < h.d; ++c)
        k8[size_t(j * h.d + c)] = simd::quantize_int8(float(h.k[size_t(j * h.d + c)] - mean[size_t(c)]), 127.0f / amax);
    }
  }
  float qmax = 0;
  for (float x : h.q) qmax = std::max(qmax, std::fabs(x));
  const float qs = qmax / 127.0f;
  for (int64_t i = 0; i < h.nq; ++i)
    for (int64_t j = 0; j < h.nk; ++j) {
      long dot = 0;
      for (int64_t c = 0; c < h.d; ++c) dot += long(simd::quantize_int8(h.q[size_t(i * h.d + c)], 127.0f / qmax)) * k8[size_t(j * h.d + c)];
      s[size_t(i * h.nk + j)] = double(dot) * qs * ks[size_t(j)] * scale;
    }
  return softmax_apply(h, s, v, vis);
}

struct Run {
  std::vector<float> out, row_max, row_sum;
};

// One attend_lowp_on call over all query rows (one query block) of the head.
Run run(const std::string& set, const Head& h, Precision p, std::vector<simd::KeySpan> spans,
        const simd::TileMask* mask) {
  simd::LowpKV kv;
  kv.pack(p, h.k.data(), h.d, h.v.data(), h.dv, h.nk, h.d, h.dv);
  Run r;
  r.out.assign(size_t(h.nq * h.dv), -7.0f);
  r.row_max.assign(size_t(h.nq), -7.0f);
  r.row_sum.assign(size_t(h.nq), -7.0f);
  simd::AttendArgs a;
  a.q = h.q.data();
  a.q_stride = h.d;
  a.rows = h.nq;
  a.d = h.d;
  a.d_v = h.dv;
  a.scale = float(1.0 / std::sqrt(double(h.d)));
  a.out = r.out.data();
  a.out_stride = h.dv;
  a.row_max = r.row_max.data();
  a.row_sum = r.row_sum.data();
  simd::Workspace ws;
  simd::attend_lowp_on(set, a, kv, spans, mask, ws);
  return r;
}

template <class X, class Y>
double rel_fro(const X& x, const Y& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double(x[i]) - double(ref[i])) * (double(x[i]) - double(ref[i]));
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("lowp: every kernel set matches the fp64 model of its rounding, and exact attention", "[lowp]") {
  const auto sets = simd::lowp_paths_runnable();
  REQUIRE(sets.back() == "portable");
  struct Case {
    int64_t nq, nk, d, dv;
    bool causal;
  };
  for (const Case c : {Case{64, 256, 64, 64, false}, Case{100, 100, 40, 24, true}, Case{17, 200, 128, 128, true},
                       Case{64, 64, 128, 64, false}}) {
    const Head h = make_head(c.nq, c.nk, c.d, c.dv, uint32_t(c.nq * 7 + c.d), 0.3f);
    simd::PrefixMask causal(c.nk, c.nk - c.nq, true);
    const simd::TileMask* mask = c.causal ? &causal : nullptr;
    const Visible vis = [&](int64_t i, int64_t j) { return !c.causal || j <= i + c.nk - c.nq; };
    const auto exact = model(h, Precision::fp32, vis);
    for (Precision p : {Precision::bf16, Precision::int8}) {
      const auto want = model(h, p, vis);
      for (const auto& set : sets) {
        INFO("set " << set << ", " << simd::to_string(p) << ", nq=" << c.nq << " nk=" << c.nk << " d=" << c.d
                    << " dv=" << c.dv << " causal=" << c.causal);
        const Run r = run(set, h, p, {{0, c.nk}}, mask);
        // The model leaves P unrounded: bf16 probabilities add ~2^-9 relative per element.
        CHECK(rel_fro(r.out, want) < 4e-3);
        CHECK(rel_fro(r.out, exact) < (p == Precision::bf16 ? 1e-2 : 3e-2));
        for (int64_t i = 0; i < c.nq; ++i) {
          CHECK(std::isfinite(r.row_max[size_t(i)]));
          CHECK(r.row_sum[size_t(i)] >= 1.0f);  // the max key contributes exp(0) = 1 (before rounding)
        }
      }
    }
  }
}

TEST_CASE("lowp: the fast kernel sets agree with the portable one", "[lowp]") {
  const auto sets = simd::lowp_paths_runnable();
  const Head h = make_head(96, 300, 64, 64, 11u);
  simd::PrefixMask causal(300, 300 - 96, true);
  for (Precision p : {Precision::bf16, Precision::int8}) {
    const Run ref = run("portable", h, p, {{3, 150}, {170, 300}}, &causal);
    for (const auto& set : sets) {
      INFO("set " << set << " " << simd::to_string(p));
      const Run r = run(set, h, p, {{3, 150}, {170, 300}}, &causal);
      // Only the fp32 summation order differs (int8 dots are exact integers).
      CHECK(rel_fro(r.out, ref.out) < 2e-3);
      // The shift may move at different tiles (it has a slack), the log-sum-exp may not.
      for (size_t i = 0; i < 96; ++i)
        CHECK(r.row_max[i] + std::log(r.row_sum[i]) ==
              Approx(ref.row_max[i] + std::log(ref.row_sum[i])).epsilon(1e-3).margin(1e-3));
    }
  }
}

TEST_CASE("lowp: spans and masks hide keys; rows that see nothing get zeros", "[lowp]") {
  const Head h = make_head(40, 120, 48, 40, 5u);
  // Keys 10..40 and 70..100 only, causal with queries at the end of the keys.
  simd::PrefixMask causal(120, 80, true);
  const Visible vis = [](int64_t i, int64_t j) {
    return ((j >= 10 && j < 40) || (j >= 70 && j < 100)) && j <= i + 80;
  };
  for (Precision p : {Precision::bf16, Precision::int8})
    for (const auto& set : simd::lowp_paths_runnable()) {
      INFO("set " << set << " " << simd::to_string(p));
      const Run r = run(set, h, p, {{10, 40}, {70, 100}}, &causal);
      CHECK(rel_fro(r.out, model(h, p, vis)) < 4e-3);
      // No key at all: zeros, row sums 0.
      const Run none = run(set, h, p, {{50, 50}}, nullptr);
      for (float x : none.out) CHECK(x == 0.0f);
      for (float x : none.row_sum) CHECK(x == 0.0f);
    }
}

TEST_CASE("lowp: a NaN key makes the rows that see it NaN", "[lowp]") {
  Head h = make_head(32, 64, 32, 16, 9u);
  h.k[size_t(50 * 32 + 3)] = std::numeric_limits<float>::quiet_NaN();
  simd::PrefixMask causal(64, 32, true);  // row i sees keys <= i + 32: rows >= 18 see key 50
  for (Precision p : {Precision::bf16, Precision::int8})
    for (const auto& set : simd::lowp_paths_runnable()) {
      INFO("set " << set << " " << simd::to_string(p));
      const Run r = run(set, h, p, {{0, 64}}, &causal);
      CHECK(std::isnan(r.out[size_t(20 * 16)]));
      // bf16: rows that do not see the key stay finite, as in fp32. int8: the mean key over the whole
      // sequence is NaN, so every row of the head is NaN (documented in lowp.hpp).
      if (p == Precision::bf16)
        CHECK(std::isfinite(r.out[size_t(5 * 16)]));
      else
        CHECK(std::isnan(r.out[size_t(5 * 16)]));
    }
}

TEST_CASE("lowp: bad input", "[lowp]") {
  const Head h = make_head(8, 8, 16, 16, 1u);
  simd::LowpKV kv;
  CHECK_THROWS_WITH(kv.pack(Precision::fp32, h.k.data(), 16, h.v.data(), 16, 8, 16, 16), Catch::Contains("fp32"));
  CHECK_THROWS_WITH(kv.pack(Precision::bf16, h.k.data(), 16, h.v.data(), 16, 0, 16, 16), Catch::Contains("n_k=0"));
  CHECK_THROWS_WITH(run("no-such-set", h, Precision::bf16, {{0, 8}}, nullptr), Catch::Contains("no-such-set"));
  kv.pack(Precision::bf16, h.k.data(), 16, h.v.data(), 16, 8, 16, 16);
  std::vector<float> out(8 * 16);
  simd::AttendArgs a;
  a.q = h.q.data();
  a.q_stride = 16;
  a.rows = 8;
  a.d = 32;  // kv has d = 16
  a.d_v = 16;
  a.out = out.data();
  a.out_stride = 16;
  simd::Workspace ws;
  std::vector<simd::KeySpan> spans{{0, 8}};
  CHECK_THROWS_WITH(simd::attend_lowp_on("portable", a, kv, spans, nullptr, ws), Catch::Contains("a.d=32"));
  CHECK_THROWS_WITH(simd::attend_lowp_on("portable", a, simd::LowpKV{}, spans, nullptr, ws),
                    Catch::Contains("not packed"));
}

TEST_CASE("lowp: ATTNKIT_SIMD picks the kernel set, and attend_lowp runs on it", "[lowp]") {
  const auto sets = precision_paths();
  const char* env = std::getenv("ATTNKIT_SIMD");
  const std::string e = env ? env : "";
  if (e.empty())
    CHECK(precision_path() == sets.front());
  else if (e == "amx" || e == "avx512bf16")
    CHECK(precision_path() == e);
  else
    CHECK(precision_path() == "portable");
  const Head h = make_head(16, 40, 32, 16, 3u);
  simd::LowpKV kv;
  kv.pack(Precision::bf16, h.k.data(), h.d, h.v.data(), h.dv, h.nk, h.d, h.dv);
  std::vector<float> out(size_t(16 * 16));
  simd::AttendArgs a;
  a.q = h.q.data();
  a.q_stride = h.d;
  a.rows = 16;
  a.d = h.d;
  a.d_v = h.dv;
  a.scale = 0.25f;
  a.out = out.data();
  a.out_stride = h.dv;
  simd::Workspace ws;
  const std::vector<simd::KeySpan> spans{{0, 40}};
  simd::attend_lowp(a, kv, spans, nullptr, ws);
  CHECK(simd::last_path(simd::Kernel::lowp) == precision_path());
}
