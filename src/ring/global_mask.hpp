#pragma once
// Internal: the mask of one ring step. Local query rows and the keys of the block held in this
// step each map to global positions through a RingRows (up to two ascending ranges). Because both
// maps are increasing, the keys query row i sees (global key position <= its position under
// causal, < key_lengths[b]) are a prefix [0, end(i)) of the block's local key indices, and end(i)
// never decreases with i: the same shape as simd::PrefixMask, so the tile engine skips whole
// tiles and micro-tiles the same way.
#include <algorithm>
#include <limits>

#include "../simd/attend.hpp"
#include "attnkit/ring.hpp"

namespace attnkit::ring {

class GlobalMask final : public simd::TileMask {
 public:
  // limit: global key positions >= limit are padding (n for none).
  GlobalMask(const RingRows& queries, const RingRows& keys, bool causal, int64_t limit)
      : q_(queries), k_(keys), causal_(causal), limit_end_(below(limit)) {}

  // Keys of the block (local indices) visible to local query row i: [0, end(i)).
  int64_t end(int64_t i) const {
    const int64_t e = causal_ ? below(q_.position(i) + 1) : k_.count();
    return std::min(e, limit_end_);
  }

  simd::TileKind classify(int64_t q0, int64_t nq, int64_t k0, int64_t nk) const override {
    if (end(q0) >= k0 + nk) return simd::TileKind::Full;
    if (end(q0 + nq - 1) <= k0) return simd::TileKind::Empty;
    return simd::TileKind::Partial;
  }
  void apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const override {
    for (int64_t r = 0; r < nq; ++r)
      for (int64_t c = std::max<int64_t>(0, end(q0 + r) - k0); c < nk; ++c) S[r * lds + c] = kNegInf;
  }
  void apply_transposed(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* St, int64_t ldt) const override {
    // Rows that cannot see key k0 + c are a prefix [0, r) growing with c (end is non-decreasing).
    int64_t r = 0;
    for (int64_t c = 0; c < nk; ++c) {
      while (r < nq && end(q0 + r) <= k0 + c) ++r;
      std::fill(St + c * ldt, St + c * ldt + r, kNegInf);
    }
  }

 private:
  static constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  // Number of the block's keys with global position < x.
  int64_t below(int64_t x) const {
    int64_t c = 0;
    for (int s = 0; s < 2; ++s) c += std::clamp<int64_t>(x - k_.begin[s], 0, k_.end[s] - k_.begin[s]);
    return c;
  }
  RingRows q_, k_;
  bool causal_;
  int64_t limit_end_;
};

}  // namespace attnkit::ring
