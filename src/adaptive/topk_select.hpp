#pragma once
// Internal: the choice of topk's keys, shared by forward(), weights() and error_bound() so that
// all three see the same keys.
#include <cstdint>
#include <vector>

#include "attnkit/problem.hpp"
#include "sets.hpp"

namespace attnkit::adaptive {

// Per-thread scratch of select_topk.
struct TopkScratch {
  std::vector<float> scores;                 // rows x kTopkTile
  std::vector<std::vector<float>> cand_s;    // per row: candidate scores
  std::vector<std::vector<int64_t>> cand_j;  // per row: candidate keys
  std::vector<int64_t> order;
};

// Keys per score tile of the streaming pass.
constexpr int64_t kTopkTile = 256;

// For rows [i0, i0 + rows) of (b, h): the min(k, key_end(i)) keys with the largest float32
// scores scale·q·k (sgemm, tiles of kTopkTile keys; ties: lower index; NaN counts as -inf),
// appended to `keys` (ascending per row) together with their float scores in `chosen_s`;
// nan_rows[r] (resized to rows) = 1 when row r had a NaN score (exact attention's row is NaN).
// Memory O(rows · k): each row keeps at most 2k + kTopkTile candidates and compacts to its best k
// with nth_element when full; a later key enters only with a score above the current k-th best.
// Calls BLAS: the caller keeps BLAS single-threaded (SingleThreadedBlas).
void select_topk(const Problem& p, const Shape& d, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t k,
                 TopkScratch& sc, RowKeys& keys, std::vector<float>& chosen_s, std::vector<char>& nan_rows);

}  // namespace attnkit::adaptive
