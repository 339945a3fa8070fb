#pragma once
// Internal: which key tiles each query tile of `pruned` keeps (shared by forward, cost, weights
// and error_bound so that all of them see one choice).
#include <array>
#include <cstdint>
#include <vector>

#include "attnkit/adaptive.hpp"

namespace attnkit::adaptive {

// Per-(batch, kv head) summary of the key tiles over the visible keys (j < key_lengths[b]):
// mean[u·d + c] and, for the bound score, bound[u·2d + c] = max_c, bound[u·2d + d + c] = min_c.
struct KeyTileStats {
  std::vector<float> mean, bound;
};

// Per-thread scratch of select().
struct PlanScratch {
  std::vector<float> a, s, score;
  std::vector<int64_t> order;
  std::vector<char> fixed;
};

struct TileRange {
  int64_t lo = 0, hi = 0;  // tiles [lo, hi); empty when lo >= hi
};

class TilePlan {
 public:
  TilePlan(const PrunedOptions& o, int64_t n_q, int64_t n_k);
  int64_t q_tiles() const { return q_tiles_; }
  int64_t k_tiles() const { return k_tiles_; }
  int64_t budget() const { return budget_; }  // tiles kept per query tile: ceil(keep / block)
  int64_t block() const { return o_.block; }

  // Stats of the key tiles of (b, g), keys [0, limit).
  void stats(const Problem& p, int64_t b, int64_t g, int64_t limit, KeyTileStats& out) const;

  // The sink tiles and the window tiles of query tile t among the candidates u < cand: two
  // ranges, possibly empty or overlapping.
  std::array<TileRange, 2> fixed_ranges(int64_t t, int64_t cand, int64_t key_end, bool causal) const;

  // Marks fixed[u] = 1 for the sink and window tiles of query tile t among the candidates
  // u < cand (fixed is resized to cand); returns how many.
  int64_t fixed_tiles(int64_t t, int64_t cand, int64_t key_end, bool causal, std::vector<char>& fixed) const;

  // How many tiles query tile t keeps when its last row sees key_end keys (shape only; O(1)).
  int64_t kept_count(int64_t t, int64_t key_end, bool causal) const;

  // The kept tiles of query tile t of (b, h), ascending, into `kept`. key_end: Problem::key_end of
  // the tile's last row. Calls BLAS for the bound score (keep it single-threaded).
  void select(const Problem& p, int64_t b, int64_t h, int64_t t, int64_t key_end, const KeyTileStats& st,
              PlanScratch& sc, std::vector<int64_t>& kept) const;

 private:
  PrunedOptions o_;
  int64_t n_q_, n_k_, q_tiles_, k_tiles_, budget_;
};

}  // namespace attnkit::adaptive
