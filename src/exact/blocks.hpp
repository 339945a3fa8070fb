#pragma once
// Internal (not installed): the exact engine's block-size choice, shared with ring attention so
// that each of its steps tiles a block the way exact would tile the same problem.
#include <cstdint>

#include "attnkit/problem.hpp"

namespace attnkit::detail {

struct ExactBlocks {
  int64_t q = 0, k = 0;  // query rows per task, keys per tile
};

// Query and key block sizes exact uses for this shape and the current OpenMP thread count;
// want_q / want_k > 0 pin that size (the spec's block_q / block_k). See choose_blocks in exact.cpp.
ExactBlocks exact_blocks(const Shape& d, int64_t want_q, int64_t want_k);

}  // namespace attnkit::detail
