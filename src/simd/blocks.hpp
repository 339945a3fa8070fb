#pragma once
// Internal: block sizes for the tile engine (attend.hpp) — query rows per task and keys per tile —
// from the problem's shape, the L2 size and the OpenMP thread count. exact uses it for its tasks;
// ring attention for each of its steps, so that a step tiles its block as exact would.
#include <cstdint>

#include "attnkit/problem.hpp"

namespace attnkit::simd {

struct Blocks {
  int64_t q = 0, k = 0;  // query rows per task, keys per tile
};

// want_q / want_k > 0 pin that size (exact's spec block_q / block_k); 0 chooses it. See
// blocks.cpp for the rule and the measurements behind it.
Blocks choose_blocks(const Shape& d, int64_t want_q, int64_t want_k);

}  // namespace attnkit::simd
