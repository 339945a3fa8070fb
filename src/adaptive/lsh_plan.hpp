#pragma once
// Internal: the LSH buckets, sorted orders and chunk -> key-rank ranges of one (batch, head),
// shared by forward() and weights() so that both see the same key sets.
#include <cstdint>
#include <vector>

#include "attnkit/adaptive.hpp"
#include "attnkit/problem.hpp"

namespace attnkit::adaptive {

// Float rotations of every (round, kv head): rot[(r * kv_heads + g)] is d x NB/2 row-major.
std::vector<std::vector<float>> lsh_rotations(const LshOptions& o, int64_t kv_heads, int64_t d);

struct LshRound {
  std::vector<int64_t> q_order;  // query rows sorted by (bucket, position)
  std::vector<int64_t> k_order;  // visible keys sorted by (bucket, position)
  // Chunk c holds q_order[c·C, min(n_q, c·C + C)) and attends to k_order[lo[c], hi[c]).
  std::vector<int64_t> lo, hi;
  // Inverses for the duplicate count: key_rank[j] = x where k_order[x] = j (j < the key limit);
  // query_chunk[i] = the chunk holding query row i. int32 so that the count loop vectorises
  // (lsh_plan throws for more than 2^31 - 1 keys or queries).
  std::vector<int32_t> key_rank, query_chunk;
  // Does query row i attend to key j (j < the key limit) in this round?
  bool sees(int64_t i, int64_t j) const {
    const size_t c = static_cast<size_t>(query_chunk[static_cast<size_t>(i)]);
    const int64_t x = key_rank[static_cast<size_t>(j)];
    return x >= lo[c] && x < hi[c];
  }
};

// Throws attnkit::Error when n_q or n_k exceeds the int32 ranks (call before any parallel region).
void lsh_check_sizes(const Shape& d);

// Buckets and orders of round r for query head h of batch b (keys: its kv head, j < limit,
// limit = key_lengths[b] or n_k). Calls BLAS (keep it single-threaded); no threads of its own;
// rounds are independent, so callers may plan them in parallel. Sizes must pass lsh_check_sizes.
void lsh_plan_round(const Problem& p, const Shape& d, const LshOptions& o, const std::vector<std::vector<float>>& rot,
                    int64_t b, int64_t h, int64_t r, LshRound& lr);

// Every round of (b, h), one after the other; checks the sizes first.
void lsh_plan(const Problem& p, const Shape& d, const LshOptions& o, const std::vector<std::vector<float>>& rot,
              int64_t b, int64_t h, std::vector<LshRound>& rounds);

}  // namespace attnkit::adaptive
