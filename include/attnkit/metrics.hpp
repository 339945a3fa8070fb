#pragma once
// Error metrics of an approximate output against a reference output.
// Thread-safety: every function only reads its inputs (and writes `out`); concurrent calls on
// distinct outputs are safe. mean_value_baseline runs on OpenMP threads, the rest on the caller's.
#include <cstdint>
#include <vector>

#include "attnkit/problem.hpp"
#include "attnkit/tensor.hpp"

namespace attnkit {

struct ErrorMetrics {
  double max_abs = 0;   // max_i,c |a - r|
  double rel_fro = 0;   // ||a - r||_F / ||r||_F  (0 when both are zero; +inf when only r is zero)
  double mean_row_l2 = 0;  // mean over rows of ||a_i - r_i||_2
};

// Compares two views of the same shape, any strides (throws attnkit::Error naming the dimension
// otherwise). A NaN in either view (or the same infinity in both) makes all three metrics NaN.
ErrorMetrics compare(ConstView approx, ConstView ref);

// Per-row ||a_i - r_i||_2, rows indexed (b * heads + h) * seq + i. Throws attnkit::Error when the
// shapes differ.
std::vector<double> row_l2_errors(ConstView approx, ConstView ref);

// Sum_j |p_j - r_j| of one probability row: p and r hold n >= 0 floats each (unchecked). Never throws.
double row_l1(const float* p, const float* r, int64_t n);

// The trivial baseline every approximation must beat: every output row = the mean of the value
// rows it may see (per batch and head, honouring key_lengths / causal through `key_end`).
// Written by the metrics module so every report uses the same one. out: [B, H, n_q, d_v], the shape
// of p.out (p.out itself is not written). Throws what p.validate() throws, and attnkit::Error when
// out's shape differs from p.out's. Summed in fp64 in key order: the same bits for any thread count.
void mean_value_baseline(const Problem& p, MutView out);

}  // namespace attnkit
