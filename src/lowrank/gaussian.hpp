#pragma once
// Internal: Linformer's projection E, entry by entry from a counter-based hash (the formula is in
// include/attnkit/lowrank.hpp), so any column range can be drawn in parallel and the same seed
// gives the same E whatever the thread count or the number of columns asked for.
#include <cstdint>

namespace attnkit::lowrank {

// Rows [r0, r1) of E (k rows in all, entries N(0, 1/k)), columns [0, n), into e at row stride ld.
void gaussian_rows(int64_t seed, int64_t k, int64_t r0, int64_t r1, int64_t n, float* e, int64_t ld);

}  // namespace attnkit::lowrank
