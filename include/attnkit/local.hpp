#pragma once
// Local / sparse attention (`local`): every query attends only to a set N(i) of keys (sliding
// window, dilated window, global tokens, BigBird block-sparse), with exact softmax over N(i).
//
// Spec: local:window=W,dilation=R,global=G,blocks=B,random=NR,seed=S,block_q=Q,block_k=K,precision=P
//   window   256   keys per query in the sliding window (0 = no window). Non-causal: centred,
//                  left = W/2 keys before the query's position, right = W-1-left after it.
//                  Causal (Mask::causal): the W keys ending at the query's position.
//   dilation 1     window keys are pos + R*t for t in [-left, right] (Longformer's dilated
//                  window). Computed by gathering: the query rows of one residue class mod R
//                  see keys of one residue class, copied into a dense buffer per tile, so it
//                  costs about what R = 1 costs (no masked-out work inside the span).
//   global   0     the first G key positions are seen by every query, and the queries at
//                  positions < G see every key (their rows are exact attention).
//   blocks   0     BigBird block size B (0 = no block part): the query block qb = floor(pos/B)
//                  sees key blocks qb-1, qb, qb+1 and `random` seeded random blocks.
//   random   0     random key blocks per query block (needs blocks >= 1), drawn without
//                  replacement from the blocks that are not neighbours and not wholly global;
//                  under causal only from blocks left of the neighbours. Same for every batch,
//                  different per query head, fixed by `seed`.
//   seed     0     seed of the random blocks.
//   block_q  0     query rows per tile (0 = auto from the window / block size).
//   block_k  0     keys per score tile (0 = auto; fp32 only: bf16 / int8 run in the kernels' own
//                  kKeyTile-key tiles).
//   precision fp32 fp32 | bf16 | int8 (attnkit/precision.hpp, docs/precision.md): the products of
//                  the allowed pairs in reduced precision. K and V are packed once per call per
//                  (batch, kv head) (per tile for the dilated window's gathered keys); every
//                  pattern goes through the same spans and masks. bf16 / int8 have no weights
//                  and no error bound (error_bound() returns nullopt: the identity below is exact
//                  arithmetic's, and the rounding is measured against `reference` instead).
// Ranges (inclusive, as `attnkit list` prints them): window [0, 1e9], dilation [1, 1e6],
// global [0, 1e9], blocks [0, 1e6], random [0, 1e6], seed [0, 1e9], block_q [0, 4096],
// block_k [0, 8192]. The LocalBackend constructor checks LocalOptions the same way.
// At least one of window or blocks must be >= 1; dilation > 1 needs window >= 1 and blocks = 0.
// The parts are combined as a union: N(i) = window(i) ∪ [0, G) ∪ blocks(i), or every key for a
// global query, and then intersected with the Problem's mask (causal, key_lengths). Pure BigBird
// therefore sets window=0 (e.g. local:window=0,global=64,blocks=64,random=3).
//
// Positions: query i is at key position pos(i) = i + n_k - n_q (bottom-right alignment, as
// Mask::causal), so for self-attention pos(i) = i and cross-attention aligns the window to the
// bottom-right diagonal. A query whose N(i) holds no visible key gets an all-zero output row.
//
// Cost: O(n_q·|N|·d): per tile of query rows only the union of their key ranges is multiplied,
// with the same online-softmax tile kernel as `exact`; partial tiles are masked per (row, key).
//
// Shapes and layout: as attnkit::Problem (any strides with a contiguous last axis), GQA, cross,
// causal and key_lengths all supported. forward(), error_bound() and weights() are const and
// thread-safe; forward() is bit-identical for any thread count. Every function throws
// attnkit::Error for a bad argument, naming it.
#include <cstdint>
#include <vector>

#include "attnkit/backend.hpp"
#include "attnkit/precision.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

struct LocalOptions {
  int64_t window = 256;
  int64_t dilation = 1;
  int64_t global = 0;
  int64_t blocks = 0;
  int64_t random = 0;
  int64_t seed = 0;
  int64_t block_q = 0;
  int64_t block_k = 0;
  ComputePrecision precision = ComputePrecision::fp32;
};

// Keys begin, begin + step, begin + 2·step, ... < end.
struct KeyRun {
  int64_t begin = 0, end = 0, step = 1;
  int64_t size() const { return end > begin ? (end - begin + step - 1) / step : 0; }
  bool contains(int64_t j) const { return j >= begin && j < end && (j - begin) % step == 0; }
};

// The allowed set N(i) for one problem size: the single definition used by forward(),
// error_bound(), weights(), cost() and the tests. Cheap to construct; thread-safe to use.
class LocalPattern {
 public:
  // Throws attnkit::Error for options out of range (see the spec above) or sizes < 1.
  LocalPattern(const LocalOptions& o, int64_t n_q, int64_t n_k, bool causal);

  int64_t position(int64_t i) const { return i + n_k_ - n_q_; }
  bool global_row(int64_t i) const { return position(i) >= 0 && position(i) < opt_.global; }
  int64_t left() const { return left_; }    // window steps before the position
  int64_t right() const { return right_; }  // window steps after it
  // BigBird query block of row i (floor division: negative for pos < 0).
  int64_t query_block(int64_t i) const;
  // The random key blocks of query head h and query block qb, ascending.
  void random_blocks(int64_t h, int64_t qb, std::vector<int64_t>& out) const;
  // N(i) ∩ [0, key_end) of query head h as ascending, disjoint runs (out is overwritten).
  // key_end is Problem::key_end(b, i). Runs have step 1 except the dilated window's.
  void row(int64_t h, int64_t i, int64_t key_end, std::vector<KeyRun>& out) const;
  // Whether the pattern (before key_end) differs between heads (only through random blocks).
  bool per_head() const { return opt_.blocks > 0 && opt_.random > 0; }
  const LocalOptions& options() const { return opt_; }

 private:
  LocalOptions opt_;
  int64_t n_q_, n_k_;
  bool causal_;
  int64_t left_ = 0, right_ = 0;
};

class LocalBackend final : public Backend {
 public:
  // Throws attnkit::Error naming the option for a value out of range or a bad combination.
  explicit LocalBackend(LocalOptions o);
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  // Flops of the allowed pairs: 2·(d + d_v) per (query, key in N(i)) (no key_lengths in a Shape).
  // Counts every query row's runs: O(n_q) time per call (O(heads·n_q) with random blocks), unlike
  // the O(1) of the dense backends.
  // Counts the allowed pairs row by row: O(n_q) time (O(n_q·heads) with random blocks), not O(1).
  Cost cost(const Shape& s) const override;
  // Flops of the score tiles actually multiplied (union of each query tile's key ranges,
  // including masked corners): what the machine executes, for GFLOP/s on the computed band.
  Cost computed_cost(const Shape& s) const;
  // Exact a-posteriori identity: eps_i = full-softmax mass (fp64) outside N(i) among the keys
  // the mask lets row i see; prob_l1[row] = 2·eps_i (exactly the L1 distance between the
  // restricted and the full probability rows) and out_l2[row] = 2·eps_i·max_{visible j}||v_j||_2.
  // A row that sees keys but none of N(i) (a window beyond key_lengths, say) outputs zeros:
  // there prob_l1 = 1 and out_l2 = max ||v_j||_2. Rows that see no key: 0 and 0.
  // Costs a full O(n_q·n_k·d) pass: a check, not a fast path.
  std::optional<ErrorBound> error_bound(const Problem& p) const override;
  // The same identity for the given rows only: O(rows·n_k·d) per (batch, head).
  std::optional<ErrorBound> error_bound_rows(const Problem& p, const std::vector<int64_t>& rows) const override;
  // softmax restricted to N(i) (zeros outside), fp64 then rounded to float.
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;
  void weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows, float* w) const override;

 private:
  LocalOptions opt_;
};

BackendInfo local_info();

}  // namespace attnkit
