#pragma once
// Error metrics of an approximate output against a reference output.
#include <cstdint>
#include <vector>

#include "attnkit/problem.hpp"
#include "attnkit/tensor.hpp"

namespace attnkit {

struct ErrorMetrics {
  double max_abs = 0;   // max_i,c |a - r|
  double rel_fro = 0;   // ||a - r||_F / ||r||_F  (0 when both are zero)
  double mean_row_l2 = 0;  // mean over rows of ||a_i - r_i||_2
};

// Compares two views of the same shape (throws attnkit::Error otherwise). NaN anywhere makes
// max_abs and rel_fro NaN.
ErrorMetrics compare(ConstView approx, ConstView ref);

// Per-row ||a_i - r_i||_2, rows indexed (b * heads + h) * seq + i.
std::vector<double> row_l2_errors(ConstView approx, ConstView ref);

// Sum_j |p_j - r_j| of one probability row of length n.
double row_l1(const float* p, const float* r, int64_t n);

// The trivial baseline every approximation must beat: every output row = the mean of the value
// rows it may see (per batch and head, honouring key_lengths / causal through `key_end`).
// Written by the metrics module so every report uses the same one.
void mean_value_baseline(const Problem& p, MutView out);

}  // namespace attnkit
