#include "attnkit/backend.hpp"

#include "attnkit/error.hpp"

namespace attnkit {

Cost exact_cost(const Shape& s) {
  const double pairs = s.causal && s.n_q <= s.n_k
                           ? static_cast<double>(s.n_q) * (s.n_k - s.n_q) + 0.5 * s.n_q * (s.n_q + 1.0)
                           : static_cast<double>(s.n_q) * s.n_k;
  const double bh = static_cast<double>(s.batch) * s.heads;
  Cost c;
  c.flops = bh * pairs * 2.0 * (s.d + s.d_v);
  c.bytes = 4.0 * (bh * s.n_q * (s.d + s.d_v) + s.batch * s.kv_heads * s.n_k * (s.d + s.d_v));
  return c;
}

double exact_equivalent_flops(const Problem& p) { return exact_cost(p.validate()).flops; }

Cost Backend::cost(const Shape& s) const { return exact_cost(s); }

std::optional<ErrorBound> Backend::error_bound(const Problem&) const { return std::nullopt; }

void Backend::weights(const Problem&, int64_t, int64_t, float*) const {
  detail::fail("backend ", spec(), ": weights are not available; expected a backend with the weights capability");
}

Shape Backend::check(const Problem& p) const {
  const Shape d = p.validate();
  const Capabilities c = capabilities();
  const std::string name = spec();
  if (p.mask.causal && !c.causal)
    detail::fail("mask.causal: backend ", name, " does not support a causal mask; expected causal=false");
  if (!p.mask.key_lengths.empty() && !c.key_lengths)
    detail::fail("mask.key_lengths: backend ", name, " does not support key padding; expected no key_lengths");
  if (d.n_q != d.n_k && !c.cross)
    detail::fail("k: seq is ", d.n_k, " but q's seq is ", d.n_q, "; backend ", name,
                 " does not support cross-attention, expected equal lengths");
  if (d.kv_heads != d.heads && !c.gqa)
    detail::fail("k: heads is ", d.kv_heads, " but q's heads is ", d.heads, "; backend ", name,
                 " does not support grouped-query attention, expected equal heads");
  return d;
}

Shape Backend::check_weights(const Problem& p, int64_t b, int64_t h, const float* w) const {
  const Shape d = check(p);
  if (b < 0 || b >= d.batch) detail::fail("weights: batch ", b, "; expected a value in [0, ", d.batch, ")");
  if (h < 0 || h >= d.heads) detail::fail("weights: head ", h, "; expected a value in [0, ", d.heads, ")");
  if (w == nullptr) detail::fail("weights: w is null; expected n_q * n_k floats");
  if (d.n_q * d.n_k > kMaxWeights)
    detail::fail("weights: n_q x n_k = ", d.n_q * d.n_k, " entries; expected at most ", kMaxWeights);
  return d;
}

}  // namespace attnkit
