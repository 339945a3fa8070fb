#pragma once
// Clustered attention (Vyas, Katharopoulos, Fleuret 2020, "Fast Transformers with Clustered
// Attention"), plain and improved ("top-k").
//
// Spec: clustered:clusters=C,bits=B,iterations=I,topk=K,seed=S
//   clusters   C in [1, 1048576], default 100: K-means clusters per (batch, head)
//   bits       B in [1, 63], default 63: LSH hash length (random hyperplanes)
//   iterations I in [0, 1000], default 10: K-means update rounds in Hamming space (stops early
//              when no assignment changes)
//   topk       K in [0, 65536], default 0: 0 = plain clustered attention; K > 0 = improved:
//              per cluster the K keys with the largest centroid scores are recomputed exactly
//   seed       S in [0, 2^53], default 0: the only source of randomness (hyperplanes, K-means
//              seeds, reseeding of empty clusters)
//
// Per (batch, head): the queries are hashed to B-bit codes (seeded random hyperplanes; each
// plane's offset is a seeded random point of the queries' projected spread), clustered by
// K-means in Hamming space (popcount distance, majority-vote centroid codes, an empty cluster
// gets the code of a seeded random query), the real centroid of a cluster is the mean of its
// member queries, exact softmax attention is computed for the centroids on all visible keys and
// broadcast to the members. With topk = K, member i of cluster c gets, on the K keys T_c where
// the centroid scores are largest, the centroid's mass on T_c distributed by softmax_T(s q_i·k);
// elsewhere the centroid's probabilities (Vyas et al. §3.3). When C >= n_q every query is its own
// cluster and the result is exact attention.
//
// Shapes and layout: those of attnkit::Problem (any strides, last axis contiguous). Supported:
// key_lengths, cross-attention (n_q != n_k), grouped-query attention, weights(). Not supported:
// the causal mask (a centroid mixes queries that see different keys): forward, error_bound and
// weights throw attnkit::Error naming mask.causal.
//
// Thread-safety: forward(), error_bound() and weights() are const and may run concurrently. The
// output is bit-identical for the same spec and input whatever the OpenMP thread count.
//
// error_bound(p): per query row, with c its cluster centroid and K, V the visible keys and
// values of its kv head (spectral norms bounded from above, see src/clustered/spectral.hpp):
//   prob_l1 (both): L1_i = min(2, s ||q_i - c||_2 max_j ||k_j||_2)   (the L1 distance of two
//           softmax rows is at most the largest |difference| of their logits; the top-k row is
//           never farther from the exact row in L1 than the centroid row, Vyas et al. Prop. 2)
//   plain:  ||out_i - exact_i||_2 <= min(s ||q_i - c||_2 ||K||_2 ||V||_2, max_j ||v_j||_2 L1_i)
//           (the first: softmax is 1-Lipschitz in L2, ../shared/DESIGN.md; the second is usually tighter)
//   topk:   ||out_i - exact_i||_2 <= max_j ||v_j||_2 * L1_i
#include <cstdint>

#include "attnkit/backend.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

struct ClusteredOptions {
  int64_t clusters = 100;
  int64_t bits = 63;
  int64_t iterations = 10;
  int64_t topk = 0;
  int64_t seed = 0;
};

class ClusteredBackend final : public Backend {
 public:
  // Throws attnkit::Error for an option out of the ranges above.
  explicit ClusteredBackend(ClusteredOptions o = {});
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  Cost cost(const Shape& s) const override;
  std::optional<ErrorBound> error_bound(const Problem& p) const override;
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;
  void weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows, float* w) const override;
  const ClusteredOptions& options() const { return opt_; }

 private:
  ClusteredOptions opt_;
};

BackendInfo clustered_info();

}  // namespace attnkit
