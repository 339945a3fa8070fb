#pragma once
// Internal: the float32 range of attention scores, checked by Problem::validate and by the decode
// backends' attend. Scores scale · q·k past float32's range make the fp32 kernels' softmax
// inf - inf = NaN for finite inputs; |scale · q·k| <= scale · |q| · |k| (Cauchy-Schwarz, which also
// bounds every partial sum of the dot product) is the bound checked.
#include <cmath>
#include <limits>

#include "attnkit/error.hpp"
#include "attnkit/tensor.hpp"

namespace attnkit::detail {

// The largest squared norm of x's rows (in double: no overflow), rows with a NaN or inf skipped
// (non-finite inputs propagate to the output by design).
inline double max_row_norm2(const ConstView& x) {
  double m = 0;
  for (int64_t b = 0; b < x.shape[0]; ++b)
    for (int64_t h = 0; h < x.shape[1]; ++h)
      for (int64_t i = 0; i < x.shape[2]; ++i) {
        const float* r = x.row(b, h, i);
        double s = 0;
        for (int64_t c = 0; c < x.shape[3]; ++c) s += static_cast<double>(r[c]) * r[c];
        if (std::isfinite(s) && s > m) m = s;
      }
  return m;
}

// Throws attnkit::Error (message starting with `what`) when scale · sqrt(q_norm2) · sqrt(k_norm2)
// exceeds FLT_MAX.
inline void check_score_range(const char* what, double scale, double q_norm2, double k_norm2) {
  const double nq = std::sqrt(q_norm2), nk = std::sqrt(k_norm2), bound = scale * nq * nk;
  const double top = std::numeric_limits<float>::max();
  if (bound > top)
    fail(what, "scale ", scale, " with query rows of norm up to ", nq, " and key rows of norm up to ", nk,
         ": scores can reach ", bound, ", past float32's largest value ", top, "; expected scale * |q| * |k| <= ",
         top, " (scale the inputs down)");
}

}  // namespace attnkit::detail
