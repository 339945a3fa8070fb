#include "tiles.hpp"
#include "ranges.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "../core/numerics.hpp"

namespace attnkit::local {

namespace {

using numerics::floor_div;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Splits [a, e) into ceil(len / cap) nearly equal consecutive tiles.
void split(std::vector<Tile>& out, int64_t a, int64_t e, int64_t cap, bool global) {
  const int64_t len = e - a;
  if (len <= 0) return;
  const int64_t parts = (len + cap - 1) / cap;
  for (int64_t k = 0; k < parts; ++k) {
    const int64_t s = a + len * k / parts, t = a + len * (k + 1) / parts;
    out.push_back({s, t - s, 1, false, global});
  }
}

}  // namespace

int64_t balanced_block(int64_t len, int64_t cap) {
  if (len <= cap) return std::max<int64_t>(len, 1);
  const int64_t parts = (len + cap - 1) / cap;
  return (len + parts - 1) / parts;
}

std::vector<Tile> plan_tiles(const LocalPattern& pat, int64_t n_q, int64_t n_k) {
  const LocalOptions& o = pat.options();
  const int64_t off = n_k - n_q;
  // Global query rows: positions [0, G), i.e. rows [g0, g1).
  const int64_t g0 = std::clamp<int64_t>(-off, 0, n_q);
  const int64_t g1 = std::clamp<int64_t>(o.global - off, g0, n_q);
  std::vector<Tile> tiles;
  split(tiles, g0, g1, o.block_q ? o.block_q : (n_k >= 768 ? 128 : 64), true);

  // Rows per tile of the banded part: about a quarter of the window keeps the masked corners of
  // each tile (block_q - 1 extra keys per row) small while the GEMMs stay efficient; 128 rows
  // measured no faster than 64 at window 1024 (noisy 2-core machine), so 16..64.
  int64_t bq = o.block_q;
  if (bq == 0) {
    bq = 16;
    while (bq < 64 && bq * 4 < o.window) bq *= 2;
  }
  const int64_t intervals[2][2] = {{0, g0}, {g1, n_q}};
  for (const auto& iv : intervals) {
    const int64_t a = iv[0], e = iv[1];
    if (a >= e) continue;
    if (o.blocks > 0) {
      // Never straddle a query block: every row of a tile shares its random blocks.
      const int64_t cap = o.block_q ? o.block_q : 128;
      for (int64_t i = a; i < e;) {
        const int64_t qb = floor_div(i + off, o.blocks);
        const int64_t seg_end = std::min(e, (qb + 1) * o.blocks - off);
        split(tiles, i, seg_end, cap, false);
        i = seg_end;
      }
    } else if (o.dilation > 1) {
      const int64_t R = o.dilation;
      for (int64_t phi = 0; phi < R && a + phi < e; ++phi) {
        const int64_t rows = (e - a - phi + R - 1) / R;
        for (int64_t t = 0; t < rows; t += bq)
          tiles.push_back({a + phi + t * R, std::min(bq, rows - t), R, true, false});
      }
    } else {
      for (int64_t i = a; i < e; i += bq) tiles.push_back({i, std::min(bq, e - i), 1, false, false});
    }
  }
  return tiles;
}

void RowSpans::union_into(std::vector<simd::KeySpan>& out) const {
  out.assign(spans_.begin(), spans_.end());
  merge_ranges(out);
}

void RowSpans::summarise(int64_t q0, int64_t nq) const {
  if (q0 == cache_q0_ && nq == cache_nq_) return;
  cache_q0_ = q0;
  cache_nq_ = nq;
  single_ = true;
  max_begin_ = INT64_MIN;
  min_end_ = INT64_MAX;
  min_lo_ = INT64_MAX;
  max_hi_ = INT64_MIN;
  for (int64_t r = q0; r < q0 + nq; ++r) {
    const int64_t a = first_[r], b = first_[r + 1];
    single_ &= b - a == 1;
    if (a == b) continue;
    max_begin_ = std::max(max_begin_, spans_[static_cast<size_t>(a)].begin);
    min_end_ = std::min(min_end_, spans_[static_cast<size_t>(a)].end);
    min_lo_ = std::min(min_lo_, spans_[static_cast<size_t>(a)].begin);
    max_hi_ = std::max(max_hi_, spans_[static_cast<size_t>(b - 1)].end);
  }
}

simd::TileKind RowSpans::classify(int64_t q0, int64_t nq, int64_t k0, int64_t nk) const {
  summarise(q0, nq);
  const int64_t k1 = k0 + nk;
  // Full needs one covering span per row; a tile between spans of a multi-span row is reported
  // Partial rather than Empty, which costs time, never correctness (apply() masks it).
  if (single_ && max_begin_ <= k0 && min_end_ >= k1) return simd::TileKind::Full;
  if (min_lo_ >= k1 || max_hi_ <= k0) return simd::TileKind::Empty;
  return simd::TileKind::Partial;
}

void RowSpans::apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const {
  const int64_t k1 = k0 + nk;
  for (int64_t r = 0; r < nq; ++r) {
    float* s = S + r * lds;
    int64_t cursor = k0;
    for (int64_t x = first_[q0 + r]; x < first_[q0 + r + 1] && cursor < k1; ++x) {
      const simd::KeySpan& sp = spans_[static_cast<size_t>(x)];
      for (int64_t j = cursor; j < std::min(sp.begin, k1); ++j) s[j - k0] = kNegInf;
      cursor = std::max(cursor, sp.end);
    }
    for (int64_t j = cursor; j < k1; ++j) s[j - k0] = kNegInf;
  }
}

void RowSpans::apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const {
  const int64_t k1 = k0 + nk;
  for (int64_t r = 0; r < nq; ++r) {
    int64_t cursor = k0;
    for (int64_t x = first_[q0 + r]; x < first_[q0 + r + 1] && cursor < k1; ++x) {
      const simd::KeySpan& sp = spans_[static_cast<size_t>(x)];
      for (int64_t j = cursor; j < std::min(sp.begin, k1); ++j) St[(j - k0) * ldt + r] = kNegInf;
      cursor = std::max(cursor, sp.end);
    }
    for (int64_t j = cursor; j < k1; ++j) St[(j - k0) * ldt + r] = kNegInf;
  }
}

}  // namespace attnkit::local
