#pragma once
// Internal: the LSH buckets, sorted orders and chunk -> key-rank ranges of one (batch, head),
// shared by forward() and weights() so that both see the same key sets.
#include <cstdint>
#include <vector>

#include "attnkit/adaptive.hpp"

namespace attnkit::adaptive {

// Float rotations of every (round, kv head): rot[(r * kv_heads + g)] is d x NB/2 row-major.
std::vector<std::vector<float>> lsh_rotations(const LshOptions& o, int64_t kv_heads, int64_t d);

struct LshRound {
  std::vector<int64_t> q_order;  // query rows sorted by (bucket, position)
  std::vector<int64_t> k_order;  // visible keys sorted by (bucket, position)
  // Chunk c holds q_order[c·C, min(n_q, c·C + C)) and attends to k_order[lo[c], hi[c]).
  std::vector<int64_t> lo, hi;
};

// Buckets and orders of every round for query head h of batch b (keys: its kv head, j < limit,
// limit = key_lengths[b] or n_k). Calls BLAS (keep it single-threaded); no threads of its own.
void lsh_plan(const Problem& p, const Shape& d, const LshOptions& o, const std::vector<std::vector<float>>& rot,
              int64_t b, int64_t h, std::vector<LshRound>& rounds);

}  // namespace attnkit::adaptive
