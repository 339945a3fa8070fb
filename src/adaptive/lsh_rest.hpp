#pragma once
// Internal: lsh's rest term (rest=mean, attnkit/adaptive.hpp): fp64 sums of k, k² (per channel)
// and v over a key prefix [0, e) of one (batch, kv head), and the log of the estimated softmax
// mass of the keys a row did not see. Shared by forward() and weights() so both use the same
// estimate.
//
// The sums of a prefix have one definition, whoever computes them and whatever the thread count:
// the keys are cut into blocks of kRestBlock (block u = keys [u·KB, (u+1)·KB));
//   B_u  = the keys of block u added in key order, from 0;
//   P_0  = 0,  P_{u+1} = P_u + B_u  (block order);
//   S(e) = P_u with the keys [u·KB, e) added onto it one by one in key order, u = ⌊e / KB⌋.
// So the block sums are computed once per (batch, kv head), blocks in parallel (RestBlocks), and
// a prefix is finished from its block's start (RestSums: at most KB − 1 keys), with the same bits
// on any thread and for every query head of the kv head. Rows whose prefixes grow one key at a
// time (causal) add one key each, as a single running sum from key 0 would.
#include <cstdint>
#include <vector>

#include "attnkit/problem.hpp"

namespace attnkit::adaptive {

// Keys per block of the prefix sums.
constexpr int64_t kRestBlock = 256;
// Rows per task of forward()'s rest=mean finish (a task also ends where its rows' prefixes enter
// a new key block, so that a causal task sums its block's keys once): a task that starts inside
// a block re-sums up to kRestBlock − 1 keys, small against its rows' work.
constexpr int64_t kRestTaskRows = 512;

// The block prefixes P_u, u in [0, ⌊end / KB⌋], of the keys [0, end) of one (batch, kv head).
class RestBlocks {
 public:
  RestBlocks(int64_t d, int64_t d_v);
  // Keys [0, end) of batch b, kv head g of p (p must outlive the use); the prefixes are unset
  // until every sum_block() and then accumulate() ran.
  void reset(const Problem& p, int64_t b, int64_t g, int64_t end);
  int64_t full_blocks() const { return full_; }
  // B_u for u < full_blocks(). Blocks are independent: any threads, any order.
  void sum_block(int64_t u);
  // P_u for every u from the B_u, in block order (one thread, after every sum_block()).
  void accumulate();
  // P_u: k (d) | k² (d) | v (d_v) per channel; u <= full_blocks().
  const double* prefix(int64_t u) const { return s_.data() + u * width(); }
  int64_t d() const { return d_; }
  int64_t d_v() const { return d_v_; }
  int64_t width() const { return 2 * d_ + d_v_; }
  // Adds the keys [j0, j1) to s (k | k² | v), in key order; j1 <= the end given to reset().
  void add_keys(double* s, int64_t j0, int64_t j1) const;

 private:
  const Problem* p_ = nullptr;
  int64_t b_ = 0, g_ = 0, d_, d_v_, full_ = 0;
  std::vector<double> s_;  // slot u: P_u (before accumulate(), slot u + 1 holds B_u)
};

// One thread's prefix sums S(e) (definition above) over a RestBlocks after accumulate(), with
// the reductions the rest term needs (k̄, τ², v̄). Runs inside OpenMP regions: does not throw.
class RestSums {
 public:
  explicit RestSums(const RestBlocks& blocks);
  // Moves to the prefix [0, end), 1 <= end <= the RestBlocks' end. Rows in increasing end
  // within one key block only add the keys in between; an earlier end or another block restarts
  // from that block's start.
  void advance(int64_t end);

  // log of m·exp(scale·q·k̄ + ½·scale²·|q|²·τ²) over the keys [0, end) (end >= 1, m >= 1):
  // the mean of exp(s) when the scores of the m unseen keys are normal around the mean key's
  // score with the keys' mean per-channel variance τ² (isotropic).
  double log_mass(const float* q, double scale, int64_t m) const;

  // Mean value v̄ (channel c) over the keys [0, end).
  double mean_v(size_t c) const { return run_[static_cast<size_t>(2 * bl_.d()) + c] * inv_; }

 private:
  const RestBlocks& bl_;
  std::vector<double> run_, kbar_;  // run_: S(upto_) (k | k² | v), upto_ in block block_
  int64_t block_ = -1, upto_ = 0;
  double tau2_ = 0, inv_ = 0;
};

}  // namespace attnkit::adaptive
