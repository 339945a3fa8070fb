#pragma once
// Internal to the local backend: how the query rows are cut into tiles, and the per-row key
// spans of one tile as a TileMask for simd::attend.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../simd/attend.hpp"
#include "attnkit/local.hpp"

namespace attnkit::local {

// Query rows i0, i0 + step, ..., (count rows) of one head. `gather`: the tile's keys are copied
// into a contiguous buffer first (the dilated window: rows of one residue class mod the dilation
// see keys of one residue class, so both sides are strided and the scores stay dense).
struct Tile {
  int64_t i0 = 0, count = 0, step = 1;
  bool gather = false;
  bool global = false;  // global query rows (full attention rows)
};

// Cuts the n_q query rows into tiles: global rows first (heaviest), then the others; block-sparse
// tiles never straddle a query block, dilated tiles hold one residue class.
std::vector<Tile> plan_tiles(const LocalPattern& pat, int64_t n_q, int64_t n_k);

// Keys per score tile for a key span of `len` keys: balanced chunks of at most `cap`.
int64_t balanced_block(int64_t len, int64_t cap);

// The visible keys of each row of one tile as ascending disjoint spans in the coordinates that
// attend() sees (key indices, or positions in the gathered buffer). Reused across tiles.
class RowSpans final : public simd::TileMask {
 public:
  void clear() {
    spans_.clear();
    first_.assign(1, 0);
    cache_nq_ = -1;
  }
  void add(int64_t begin, int64_t end) {
    if (begin < end) spans_.push_back({begin, end});
  }
  void end_row() { first_.push_back(static_cast<int64_t>(spans_.size())); }
  int64_t rows() const { return static_cast<int64_t>(first_.size()) - 1; }
  // Union of all rows' spans, ascending and disjoint: the keys attend() must visit.
  void union_into(std::vector<simd::KeySpan>& out) const;

  simd::TileKind classify(int64_t q0, int64_t nq, int64_t k0, int64_t nk) const override;
  void apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const override;
  void apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const override;

 private:
  // Summary of the rows [cache_q0_, cache_q0_ + cache_nq_): attend() classifies many key
  // sub-tiles of the same rows, so the per-row scan runs once per row range, not per sub-tile.
  void summarise(int64_t q0, int64_t nq) const;

  std::vector<simd::KeySpan> spans_;
  std::vector<int64_t> first_{0};
  mutable int64_t cache_q0_ = -1, cache_nq_ = -1;
  mutable int64_t max_begin_ = 0, min_end_ = 0, min_lo_ = 0, max_hi_ = 0;
  mutable bool single_ = false;  // every row has exactly one span
};

// Where a gathered tile's keys come from: buffer rows [0, globals) are keys [0, globals), buffer
// row globals + x is key first + step·x for x < count.
struct Gather {
  int64_t globals = 0, first = 0, count = 0, step = 1;
  int64_t rows() const { return globals + count; }
};

// Fills `mask` with the visible keys of every row of `tile` for query head h (key_end(i) gives
// Problem::key_end for the tile's batch) and, for a gathered tile, where its keys come from.
// `runs` is scratch.
template <class KeyEnd>
void build_tile(const LocalPattern& pat, const Tile& tile, int64_t h, const KeyEnd& key_end, RowSpans& mask,
                Gather& gather, std::vector<KeyRun>& runs, std::vector<KeyRun>& rows_runs) {
  mask.clear();
  if (!tile.gather) {
    for (int64_t r = 0; r < tile.count; ++r) {
      const int64_t i = tile.i0 + r * tile.step;
      pat.row(h, i, key_end(i), runs);
      for (const KeyRun& k : runs) mask.add(k.begin, k.end);  // step 1 outside dilated tiles
      mask.end_row();
    }
    return;
  }
  // Dilated rows of one residue class: runs are [0, G') (step 1) and the window (step R), whose
  // keys all share the rows' residue; the buffer holds the globals then that residue's keys.
  const int64_t R = tile.step;
  rows_runs.clear();
  int64_t globals = 0, first = INT64_MAX, last = INT64_MIN;
  for (int64_t r = 0; r < tile.count; ++r) {
    const int64_t i = tile.i0 + r * R;
    pat.row(h, i, key_end(i), runs);
    KeyRun g{0, 0, 1}, w{0, 0, R};
    for (const KeyRun& k : runs) (k.step == 1 ? g : w) = k;
    globals = std::max(globals, g.end);
    if (w.size() > 0) {
      first = std::min(first, w.begin);
      last = std::max(last, w.begin + (w.size() - 1) * R);
    }
    rows_runs.push_back(g);
    rows_runs.push_back(w);
  }
  gather = {globals, first, first <= last ? (last - first) / R + 1 : 0, R};
  for (int64_t r = 0; r < tile.count; ++r) {
    const KeyRun& g = rows_runs[static_cast<size_t>(2 * r)];
    const KeyRun& w = rows_runs[static_cast<size_t>(2 * r + 1)];
    mask.add(0, g.end);
    if (w.size() > 0) {
      const int64_t u = globals + (w.begin - first) / R;
      mask.add(u, u + w.size());
    }
    mask.end_row();
  }
}

}  // namespace attnkit::local
