// The shared tile kernel (src/simd/attend.hpp) directly: masks that only implement apply(),
// several key spans, NaN propagation.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "../src/simd/attend.hpp"
#include "../src/simd/paths.hpp"
#include "support.hpp"

using namespace attnkit;
using attnkit::test::Owned;

namespace {

// A window mask that implements only apply(), so attend() goes through the default
// TileMask::apply_transposed: query i sees keys j with |i - j| <= w.
class BandMask final : public simd::TileMask {
 public:
  explicit BandMask(int64_t w) : w_(w) {}
  bool sees(int64_t i, int64_t j) const { return j >= i - w_ && j <= i + w_; }
  simd::TileKind classify(int64_t q0, int64_t nq, int64_t k0, int64_t nk) const override {
    if (k0 > q0 + nq - 1 + w_ || k0 + nk - 1 < q0 - w_) return simd::TileKind::Empty;
    return simd::TileKind::Partial;
  }
  void apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const override {
    for (int64_t r = 0; r < nq; ++r)
      for (int64_t c = 0; c < nk; ++c)
        if (!sees(q0 + r, k0 + c)) S[r * lds + c] = -std::numeric_limits<float>::infinity();
  }

 private:
  int64_t w_;
};

// Direct fp64 softmax attention of one head over the keys `visible(i, j)` allows.
template <class Visible>
std::vector<double> direct(const Owned& o, int64_t n, int64_t d, Visible visible) {
  std::vector<double> out(static_cast<size_t>(n * d), 0.0);
  const double s = 1.0 / std::sqrt(static_cast<double>(d));
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> w(static_cast<size_t>(n), 0.0);
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; ++j)
      if (visible(i, j)) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += double(o.q.cview().at(0, 0, i, c)) * o.k.cview().at(0, 0, j, c);
        w[size_t(j)] = dot * s;
        mx = std::max(mx, w[size_t(j)]);
      }
    if (mx == -INFINITY) continue;
    for (int64_t j = 0; j < n; ++j)
      if (visible(i, j)) {
        w[size_t(j)] = std::exp(w[size_t(j)] - mx);
        sum += w[size_t(j)];
      }
    for (int64_t j = 0; j < n; ++j)
      if (visible(i, j))
        for (int64_t c = 0; c < d; ++c) out[size_t(i * d + c)] += w[size_t(j)] / sum * o.v.cview().at(0, 0, j, c);
  }
  return out;
}

}  // namespace

TEST_CASE("attend with a mask that implements only apply(), over two key spans", "[simd]") {
  INFO("path " << simd_path());
  const int64_t n = 150, d = 24;
  Owned o(1, 1, 1, n, n, d, d, 17);
  const BandMask band(9);
  const simd::KeySpan spans[] = {{0, 40}, {70, 150}};
  const auto visible = [&](int64_t i, int64_t j) { return band.sees(i, j) && (j < 40 || j >= 70); };
  simd::Workspace ws;
  for (int64_t bq : {7, 64, 150})
    for (int64_t bk : {5, 24, 200}) {
      for (int64_t r0 = 0; r0 < n; r0 += bq) {
        simd::AttendArgs a;
        a.rows = std::min(bq, n - r0);
        a.row0 = r0;
        a.q = o.q.cview().row(0, 0, r0);
        a.q_stride = d;
        a.k = o.k.cview().row(0, 0, 0);
        a.k_stride = d;
        a.v = o.v.cview().row(0, 0, 0);
        a.v_stride = d;
        a.d = a.d_v = d;
        a.scale = 1.0f / std::sqrt(float(d));
        a.out = o.out.view().row(0, 0, r0);
        a.out_stride = d;
        simd::attend(a, spans, &band, bk, ws);
      }
      const std::vector<double> want = direct(o, n, d, visible);
      double err = 0, norm = 0;
      for (int64_t i = 0; i < n * d; ++i) {
        const double e = o.out.data()[i] - want[size_t(i)];
        err += e * e;
        norm += want[size_t(i)] * want[size_t(i)];
      }
      INFO("bq " << bq << " bk " << bk);
      CHECK(std::sqrt(err / norm) <= 2e-6);
      // Rows 40..60 see only keys in the gap [40, 70) minus the spans: rows 49..60 see nothing.
      for (int64_t c = 0; c < d; ++c) CHECK(o.out.cview().at(0, 0, 55, c) == 0.0f);
    }
  // The tile kernel reports the path it ran on: the active one (ATTNKIT_SIMD when set).
  CHECK(simd::last_path(simd::Kernel::attend) == simd_path());
}

TEST_CASE("a NaN in a query row makes that row NaN and leaves the others finite", "[simd][exact]") {
  for (bool causal : {false, true}) {
    Owned o(1, 1, 1, 70, 70, 16, 16, 3);
    o.p.mask.causal = causal;
    o.q.data()[5 * 16 + 3] = std::numeric_limits<float>::quiet_NaN();
    ExactBackend().forward(o.p);
    for (int64_t i = 0; i < 70; ++i)
      for (int64_t c = 0; c < 16; ++c) {
        const float y = o.out.cview().at(0, 0, i, c);
        if (i == 5)
          REQUIRE(std::isnan(y));
        else
          REQUIRE(std::isfinite(y));
      }
  }
}

