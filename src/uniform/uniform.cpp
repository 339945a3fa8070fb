// `uniform`: the mean of the visible values. The arithmetic is the metrics module's
// mean_value_baseline, so this backend and every report's baseline are one computation.
#include "attnkit/uniform.hpp"

#include <algorithm>

#include "attnkit/metrics.hpp"

namespace attnkit {

void UniformBackend::forward(const Problem& p) const {
  check(p);
  mean_value_baseline(p, p.out);
}

Cost UniformBackend::cost(const Shape& s) const {
  Cost c;
  const double bg = static_cast<double>(s.batch) * s.kv_heads, bh = static_cast<double>(s.batch) * s.heads;
  c.flops = 2.0 * bg * static_cast<double>(s.n_k) * s.d_v + bh * static_cast<double>(s.n_q) * s.d_v;
  c.bytes = 4.0 * (bg * static_cast<double>(s.n_k) * s.d_v + bh * static_cast<double>(s.n_q) * s.d_v);
  return c;
}

void UniformBackend::weights(const Problem& p, int64_t b, int64_t h, float* w) const {
  const Shape d = check_weights(p, b, h, w);
  for (int64_t i = 0; i < d.n_q; ++i) {
    const int64_t e = p.key_end(b, i);
    float* row = w + i * d.n_k;
    std::fill(row, row + d.n_k, 0.0f);
    if (e > 0) std::fill(row, row + e, static_cast<float>(1.0 / static_cast<double>(e)));
  }
}

BackendInfo uniform_info() {
  return {"uniform",
          "trivial baseline: every row is the mean of the values it may see (all scores equal), O(n d)",
          {},
          UniformBackend::kCapabilities,
          [](const Params&) { return std::make_unique<UniformBackend>(); }};
}

}  // namespace attnkit
