#include "pruned_plan.hpp"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace attnkit::adaptive {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}  // namespace

TilePlan::TilePlan(const PrunedOptions& o, int64_t n_q, int64_t n_k) : o_(o), n_q_(n_q), n_k_(n_k) {
  q_tiles_ = (n_q + o.block - 1) / o.block;
  k_tiles_ = (n_k + o.block - 1) / o.block;
  budget_ = (o.keep + o.block - 1) / o.block;
}

void TilePlan::stats(const Problem& p, int64_t b, int64_t g, int64_t limit, KeyTileStats& out) const {
  const int64_t d = p.k.shape[3], B = o_.block;
  const int64_t tiles = (limit + B - 1) / B;
  const bool bound = o_.score == TileScore::Bound;
  (bound ? out.bound : out.mean).assign(static_cast<size_t>(tiles * d * (bound ? 2 : 1)), 0.0f);
  for (int64_t u = 0; u < tiles; ++u) {
    const int64_t j0 = u * B, j1 = std::min(limit, j0 + B);
    if (bound) {
      float* mx = out.bound.data() + u * 2 * d;
      float* mn = mx + d;
      std::fill(mx, mx + d, kNegInf);
      std::fill(mn, mn + d, std::numeric_limits<float>::infinity());
      for (int64_t j = j0; j < j1; ++j) {
        const float* k = p.k.row(b, g, j);
        for (int64_t c = 0; c < d; ++c) {
          mx[c] = std::max(mx[c], k[c]);
          mn[c] = std::min(mn[c], k[c]);
        }
      }
    } else {
      float* m = out.mean.data() + u * d;
      for (int64_t j = j0; j < j1; ++j) {
        const float* k = p.k.row(b, g, j);
        for (int64_t c = 0; c < d; ++c) m[c] += k[c];
      }
      const float inv = 1.0f / static_cast<float>(j1 - j0);
      for (int64_t c = 0; c < d; ++c) m[c] *= inv;
    }
  }
}

std::array<TileRange, 2> TilePlan::fixed_ranges(int64_t t, int64_t cand, int64_t key_end, bool causal) const {
  const int64_t B = o_.block, off = n_k_ - n_q_;
  auto tiles = [&](int64_t j0, int64_t j1) {  // the tiles of keys [j0, j1) ∩ [0, key_end), u < cand
    j0 = std::max<int64_t>(j0, 0);
    j1 = std::min(j1, key_end);
    if (j0 >= j1) return TileRange{0, 0};
    return TileRange{std::min(j0 / B, cand), std::min((j1 - 1) / B + 1, cand)};
  };
  std::array<TileRange, 2> r{tiles(0, o_.sinks), TileRange{0, 0}};
  if (o_.window > 0) {
    const int64_t i0 = t * B, i1 = std::min(n_q_, i0 + B);
    if (causal) {
      const int64_t pos = i1 - 1 + off;
      r[1] = tiles(pos - o_.window + 1, pos + 1);
    } else {
      const int64_t pos = (i0 + i1 - 1) / 2 + off;
      r[1] = tiles(pos - o_.window / 2, pos - o_.window / 2 + o_.window);
    }
  }
  return r;
}

int64_t TilePlan::fixed_tiles(int64_t t, int64_t cand, int64_t key_end, bool causal, std::vector<char>& fixed) const {
  fixed.assign(static_cast<size_t>(cand), 0);
  int64_t n = 0;
  for (const TileRange& r : fixed_ranges(t, cand, key_end, causal))
    for (int64_t u = r.lo; u < r.hi; ++u) {
      n += !fixed[static_cast<size_t>(u)];
      fixed[static_cast<size_t>(u)] = 1;
    }
  return n;
}

int64_t TilePlan::kept_count(int64_t t, int64_t key_end, bool causal) const {
  const int64_t cand = (key_end + o_.block - 1) / o_.block;
  // O(1): cost() asks for every query tile, and marking all candidates made it quadratic in n
  // (17.7 s at n = 2^24).
  const auto [a, b] = fixed_ranges(t, cand, key_end, causal);
  const int64_t len_a = a.hi - a.lo, len_b = b.hi - b.lo;
  const int64_t overlap = std::max<int64_t>(0, std::min(a.hi, b.hi) - std::max(a.lo, b.lo));
  const int64_t nf = len_a + len_b - (len_a > 0 && len_b > 0 ? overlap : 0);
  return std::max(nf, std::min(budget_, cand));
}

void TilePlan::select(const Problem& p, int64_t b, int64_t h, int64_t t, int64_t key_end, const KeyTileStats& st,
                      PlanScratch& sc, std::vector<int64_t>& kept) const {
  kept.clear();
  const int64_t B = o_.block, d = p.q.shape[3];
  const int64_t cand = (key_end + B - 1) / B;
  if (cand == 0) return;
  const int64_t nf = fixed_tiles(t, cand, key_end, p.mask.causal, sc.fixed);
  const int64_t want = std::max<int64_t>(0, std::min(budget_, cand) - nf);
  if (want > 0) {
    const int64_t i0 = t * B, rows = std::min(n_q_, i0 + B) - i0;
    sc.score.assign(static_cast<size_t>(cand), kNegInf);
    if (o_.score == TileScore::Bound) {
      // [q⁺, q⁻] · [max; min]: q_c·max_c where q_c > 0, q_c·min_c where q_c < 0.
      sc.a.resize(static_cast<size_t>(rows * 2 * d));
      for (int64_t r = 0; r < rows; ++r) {
        const float* q = p.q.row(b, h, i0 + r);
        float* a = sc.a.data() + r * 2 * d;
        for (int64_t c = 0; c < d; ++c) {
          a[c] = std::max(q[c], 0.0f);
          a[d + c] = std::min(q[c], 0.0f);
        }
      }
      sc.s.resize(static_cast<size_t>(rows * cand));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(cand),
                  static_cast<int>(2 * d), 1.0f, sc.a.data(), static_cast<int>(2 * d), st.bound.data(),
                  static_cast<int>(2 * d), 0.0f, sc.s.data(), static_cast<int>(cand));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t u = 0; u < cand; ++u) {
          const float x = sc.s[static_cast<size_t>(r * cand + u)];
          if (x > sc.score[static_cast<size_t>(u)]) sc.score[static_cast<size_t>(u)] = x;  // NaN never wins
        }
    } else {
      sc.a.assign(static_cast<size_t>(d), 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const float* q = p.q.row(b, h, i0 + r);
        for (int64_t c = 0; c < d; ++c) sc.a[static_cast<size_t>(c)] += q[c];
      }
      for (int64_t u = 0; u < cand; ++u) {
        const float* m = st.mean.data() + u * d;
        float s = 0;
        for (int64_t c = 0; c < d; ++c) s += sc.a[static_cast<size_t>(c)] * m[c];
        sc.score[static_cast<size_t>(u)] = std::isnan(s) ? kNegInf : s;  // the 1/rows factor: no effect on the ranking
      }
    }
    sc.order.clear();
    for (int64_t u = 0; u < cand; ++u)
      if (!sc.fixed[static_cast<size_t>(u)]) sc.order.push_back(u);
    auto better = [&](int64_t x, int64_t y) {
      const float a = sc.score[static_cast<size_t>(x)], c = sc.score[static_cast<size_t>(y)];
      return a > c || (a == c && x < y);
    };
    std::nth_element(sc.order.begin(), sc.order.begin() + (want - 1), sc.order.end(), better);
    for (int64_t x = 0; x < want; ++x) sc.fixed[static_cast<size_t>(sc.order[static_cast<size_t>(x)])] = 1;
  }
  for (int64_t u = 0; u < cand; ++u)
    if (sc.fixed[static_cast<size_t>(u)]) kept.push_back(u);
}

}  // namespace attnkit::adaptive
