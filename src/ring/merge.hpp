#pragma once
// Internal: merging two softmax-attention results over disjoint key sets, per query row.
//   (out, lse) from keys A, (out_b, lse_b) from keys B  ->  the result over A ∪ B:
//   out <- out - σ(lse_b - lse)·(out - out_b),   lse <- lse - log σ(lse - lse_b)
// (σ the logistic function). Written with exp of non-positive arguments only, so that neither
// form overflows where the naive lse + log(1 + exp(lse_b - lse)) would. lse in double: it is the
// running total over all blocks, and float's 1e-7 relative step on lse ~ 10 would already be a
// 1e-6 relative error in the weights.
#include <cmath>
#include <cstdint>
#include <limits>

namespace attnkit::ring {

// One row: out (d_v floats, the merged result so far) and lse (-inf: nothing merged yet) take in
// out_b with its softmax shift m_b and sum l_b (lse_b = m_b + log l_b; l_b = 0: the block had no
// visible key for this row, nothing to merge). NaN in l_b propagates into out and lse.
inline void merge_row(float* out, double& lse, const float* out_b, float m_b, float l_b, int64_t d_v) {
  if (l_b == 0.0f) return;
  const double lse_b = double(m_b) + std::log(double(l_b));
  if (lse == -std::numeric_limits<double>::infinity()) {
    for (int64_t c = 0; c < d_v; ++c) out[c] = out_b[c];
    lse = lse_b;
    return;
  }
  const double t = lse_b - lse;
  const double e = std::exp(-std::fabs(t));                // in (0, 1]
  const double w = t >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);  // σ(t)
  for (int64_t c = 0; c < d_v; ++c) out[c] = static_cast<float>(out[c] - w * (double(out[c]) - out_b[c]));
  lse += std::fmax(t, 0.0) + std::log1p(e);  // = lse - log σ(-t) = log(exp(lse) + exp(lse_b))
}

}  // namespace attnkit::ring
