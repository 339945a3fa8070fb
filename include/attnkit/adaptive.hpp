#pragma once
// Content-adaptive sparse attention (family `adaptive`, library attnkit-adaptive): each query
// attends to keys chosen by their content, not their position.
//
// topk:k=K
//   Exact top-k attention, the oracle of every row-sparse method with K keys per query: all
//   scores s_ij = scale·q_i·k_j are computed (float32, streamed over key tiles of 256, never an
//   n×n buffer), and the output is the softmax over each row's min(K, visible) largest visible
//   scores applied to v. Ties are broken by the lower key index; a NaN score counts as -inf for
//   the choice, and a row with any NaN visible score outputs NaN (as exact does). Cost O(n²d):
//   not a speedup. Supports causal, key_lengths, cross-attention, GQA, weights() and the
//   a-posteriori bound ||õ_i − o_i||_2 ≤ 2ε_i·max_{visible j}||v_j||_2, ε_i the exact (fp64)
//   softmax mass of the row outside its chosen keys.
//   k in [1, 2^30], default 256.
//
// pruned:block=B,keep=K,window=W,sinks=S,score=mean|bound,precision=fp32|bf16|int8
//   Dynamic tile pruning. Queries are cut into tiles of B rows (row i0 = t·B), keys into tiles of
//   B keys (key tile u holds keys [u·B, (u+1)·B)). For each query tile:
//     - candidates: the key tiles holding a key any of its rows sees (mask and key_lengths);
//     - fixed tiles, always kept: the tiles of the first S keys (attention sinks) and of the
//       diagonal window — causal: the W keys ending at the tile's last row's position;
//       non-causal: the W keys centred on the tile's middle row (left = W/2), as local's window;
//       positions are bottom-right aligned (pos(i) = i + n_k − n_q);
//     - then the best-scored other candidates until ceil(K/B) tiles are kept in all (ties: lower
//       tile index; when the fixed tiles alone exceed ceil(K/B) they are all kept). `keep=K`
//       therefore spends the key budget of `local:window=K`.
//   Importance of key tile u for query tile t (only the ranking matters, so no scale):
//     mean:  (mean of the tile's queries) · (mean of the tile's visible keys);
//     bound: max over the tile's queries q of Σ_c max(q_c·min_c, q_c·max_c), min_c / max_c the
//            per-channel min / max over the tile's visible keys (Quest): an upper bound of every
//            q·k in the tile, computed as [q⁺, q⁻]·[max; min] with one sgemm per query tile.
//   The kept tiles are computed exactly (float32 online softmax) on the tile engine that `exact`
//   runs (src/simd), with the causal / key_lengths mask applied per (row, key); rows outside the
//   kept tiles get probability 0. Defaults: block 64, keep 1024, window 64 (= B), sinks 64,
//   score mean (on the trained inputs, mean ranks tiles better than the looser bound: at keep
//   1024, causal, mean rel. error 0.023 against 0.032). block in [1, 4096], keep in [1, 2^30],
//   window and sinks in [0, 2^30]. The sweep suites use window=128,sinks=0: on the trained
//   inputs the previous tile matters more than a sink tile (at keep 256, causal: 0.101 against
//   0.122 with the defaults; local:window=256 gives 0.105).
//   Supports causal, key_lengths, cross-attention, GQA, weights() and the same a-posteriori
//   bound as topk (ε_i = mass outside the kept tiles). The kept tile set is deterministic
//   (scores from single-threaded code), so weights() and error_bound() see the set forward used.
//   precision=bf16|int8 (attnkit/precision.hpp, docs/precision.md): the kept tiles are computed
//   by the reduced-precision tile kernels on K/V packed once per call per (batch, kv head); the
//   tile choice is the fp32 one. Such a backend has no weights and no error bound (nullopt: the
//   bound above is exact arithmetic's on the kept tiles).
//
// lsh:buckets=NB,rounds=R,chunk=C,seed=S,rest=mean|none
//   Reformer-style LSH attention (Kitaev et al. 2020). Per round r and kv head g a random
//   rotation R_rg (d × NB/2, standard normal entries from lsh_rotation(seed, r, g, ...)); the
//   bucket of a vector x is argmax over the NB entries of [xR, −xR]. Queries and keys use the same
//   rotation (the argmax is invariant to a positive scale, so hashing the normalised key — as
//   Reformer's shared-QK attention does — and hashing the key itself give the same bucket); the
//   attention uses the original q and k. Per round, the queries of head h and the visible keys of
//   its kv head (j < key_lengths[b]) are sorted by (bucket, position) separately, and the sorted
//   queries are cut into chunks of C.
//   Unequal queries and keys (Reformer shares Q = K; these inputs do not): a chunk of queries is
//   matched to a range of 2C consecutive sorted keys through the merged (bucket, position) order.
//   Let s0 = the number of sorted keys strictly before the chunk's first query and s1 = the number
//   at or before its last query (a key at the query's own position counts as before it). The
//   range ends at hi = s1 under a causal mask (every later key of the last query's bucket is at a
//   later position, invisible to the whole chunk) and at hi = max(s1, s0 + C) otherwise (the
//   chunk's own span, and at least C keys from its first query on); it is [hi − 2C, hi), shifted
//   inside [0, number of keys) when it crosses an end, so every chunk sees min(2C, keys) keys —
//   bounded cost however unbalanced the buckets. With Q = K (s1 = s0 + C) both are exactly
//   Reformer's "own chunk and the previous one". Keys of a neighbouring bucket inside the range
//   are not masked out. Causal: a query sees only keys at positions <= its own (bottom-right
//   aligned); its own position is not excluded (Reformer excludes self only because q = k there).
//   Under a causal mask the *choice* of keys still depends on future keys: every visible key is
//   ranked among all of them, so a future key can take a place in a chunk's range and push a
//   visible key out. A query never attends to a future key, but its output is not independent
//   of the keys it cannot see (as in Reformer's causal LSH). Use it for measurement, not as a
//   strictly causal decoder.
//   Rounds: each round gives per query an output and a log-sum-exp over its keys; the rounds are
//   combined by their log-sum-exp, o = Σ_r exp(lse_r − LSE) o_r, with Reformer's duplicate
//   correction: a key that the query sees in n of the rounds has its score lowered by log n in
//   each of them, so that the combination is exactly the softmax over the union of the rounds' key
//   sets (no key counts twice). A query that sees no key in any round gets zeros with rest=none
//   (or when it has no visible key at all), v̄ with rest=mean (below). Many small
//   rounds beat few large ones at the same key budget R·2C on the trained inputs (docs/adaptive.md).
//   rest=mean (default; an attnkit extension, not in Reformer): the visible keys a row sees in no
//   round (m_i = key_end(b, i) − |U_i| of them, U_i the union) are not dropped but summarised by
//   one extra term: with k̄, v̄ the means of k and v over all the row's visible keys [0, key_end)
//   and τ² = (mean of |k|² − |k̄|²)/d their per-channel variance, the rest's softmax mass is
//   estimated as m_i·exp(scale·q·k̄ + ½·scale²·|q|²·τ²) (the mean of exp(s) over keys whose scores
//   are normal with the isotropic variance), and its value as v̄:
//     o_i = (Σ_{j∈U_i} e^{s_ij} v_j + w_i v̄) / (Σ_{j∈U_i} e^{s_ij} + w_i),  w_i that mass.
//   Plain Reformer drops that mass and renormalises over U_i, which on diffuse attention (the
//   clustered and gaussian families: few keys hold little mass) gives errors above 1; the rest
//   term costs O(d + d_v) per query row and O((d + d_v)·n_k) fp64 key sums per (batch, kv head),
//   shared by its query heads, and lowers the error on every input measured but one (a tie,
//   docs/adaptive.md). The sums of a prefix [0, e) are defined blockwise, so that they can be
//   computed in parallel with the same bits on any thread count: blocks of 256 keys, each summed
//   in key order, the block sums added in block order, then the keys of e's block before e added
//   onto that one by one in key order (src/adaptive/lsh_rest.hpp). rest=none is Reformer's
//   softmax over U_i.
//   Defaults: buckets 64 (even, in [2, 4096]: the rotations take rounds · kv_heads · d · buckets/2
//   floats), rounds 4 ([1, 64]), chunk 64 ([1, 2^20]), seed 0 ([0, 2^53]); n_q and n_k at most
//   2^31 − 1. Supports causal, key_lengths, cross-attention, GQA and weights() (the softmax over
//   the union of the rounds' key sets; with rest=mean every visible key also gets w_i/key_end of
//   the row, before the common normalisation). No error bound.
//
// Shapes and layout: those of attnkit::Problem (any strides, last axis contiguous). forward(),
// error_bound() and weights() are const and thread-safe; forward() is bit-identical for any
// OpenMP thread count. Every function throws attnkit::Error naming a bad argument.
#include <cstdint>
#include <string>
#include <vector>

#include "attnkit/backend.hpp"
#include "attnkit/precision.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

struct TopkOptions {
  int64_t k = 256;
};

class TopkBackend final : public Backend {
 public:
  explicit TopkBackend(TopkOptions o);
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  // All scores (2·n_q·n_k·d) plus P·V on the kept keys (2·n_q·min(K, n_k)·d_v).
  Cost cost(const Shape& s) const override;
  std::optional<ErrorBound> error_bound(const Problem& p) const override;
  // The same bound for the given rows only (O(rows·n_k·d) instead of O(n_q·n_k·d)).
  std::optional<ErrorBound> error_bound_rows(const Problem& p, const std::vector<int64_t>& rows) const override;
  // softmax over the chosen keys in fp64 (zeros elsewhere), the choice made as forward() does.
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;

 private:
  TopkOptions opt_;
};

enum class TileScore { Mean, Bound };

struct PrunedOptions {
  int64_t block = 64;
  int64_t keep = 1024;
  int64_t window = 64;
  int64_t sinks = 64;
  TileScore score = TileScore::Mean;
  ComputePrecision precision = ComputePrecision::fp32;
};

class PrunedBackend final : public Backend {
 public:
  explicit PrunedBackend(PrunedOptions o);
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  // Flops of the kept tiles (2·(d + d_v) per query and key of a kept tile, the masked parts of
  // diagonal tiles included: what the engine multiplies) plus the importance scores. The number
  // of kept tiles per query tile depends only on the shape, not on the data.
  Cost cost(const Shape& s) const override;
  std::optional<ErrorBound> error_bound(const Problem& p) const override;
  // The same bound for the given rows only (O(rows·n_k·d) instead of O(n_q·n_k·d)).
  std::optional<ErrorBound> error_bound_rows(const Problem& p, const std::vector<int64_t>& rows) const override;
  // softmax over the kept tiles' visible keys in fp64 (zeros elsewhere).
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;

 private:
  PrunedOptions opt_;
};

// What lsh does with the visible keys a row sees in no round (see rest= above).
enum class LshRest { Mean, None };

struct LshOptions {
  int64_t buckets = 64;
  int64_t rounds = 4;
  int64_t chunk = 64;
  int64_t seed = 0;
  LshRest rest = LshRest::Mean;
};

class LshBackend final : public Backend {
 public:
  explicit LshBackend(LshOptions o);
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  // Hashing (2·R·(n_q + n_k)·d·NB/2) plus at most 2C keys per query and round; rest=mean adds
  // its fp64 key sums (one or two passes over the keys per (batch, kv head): two under a causal
  // mask, where the prefix moves with the row) and O(d + d_v) per query row.
  Cost cost(const Shape& s) const override;
  // The rounds' mixture of softmax rows (fp64 from the same key sets forward() uses).
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;

 private:
  LshOptions opt_;
};

// The rotation of round `round` and kv head `kv_head`: d × (buckets/2), row-major, entries
// standard normal from a splitmix64 stream seeded by (seed, round, kv_head) through Box–Muller
// (documented so that an independent implementation can reproduce it bit for bit). A pure
// function: thread-safe. Its arguments are not checked: d >= 1 and buckets even and >= 2 (as
// LshOptions requires) are the caller's. Throws no attnkit::Error: d·(buckets/2) = 0 gives an
// empty vector, < 0 std::length_error.
std::vector<double> lsh_rotation(int64_t seed, int64_t round, int64_t kv_head, int64_t d, int64_t buckets);

BackendInfo topk_info();
BackendInfo pruned_info();
BackendInfo lsh_info();

}  // namespace attnkit
