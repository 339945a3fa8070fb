#pragma once
// The trivial baseline as a backend (`uniform`): every output row is the mean of the value rows its
// mask lets it see, i.e. attention with all scores equal. It ignores q and k entirely.
//
// Spec: uniform (no parameters).
//   out[b,h,i,:] = (1/e) Σ_{j<e} v[b,g,j,:]  with e = Problem::key_end(b, i) (key padding and the
//   bottom-right aligned causal mask: a causal row gets the mean of its prefix); a row with e = 0
//   gets zeros. g = h / (H/H_kv).
// Every approximation must beat it: on iid inputs exact attention is close to this mean, and an
// approximation that lands at its error has learned nothing about the scores. The sweep's
// `mean(V)` row is this backend.
//
// Cost: O(B·H_kv·n_k·d_v + B·H·n_q·d_v): prefix sums of v (in double) per (batch, kv head), then
// one division per output element.
//
// Shapes and layout: as attnkit::Problem (any strides with a contiguous last axis); causal,
// key_lengths, cross-attention and GQA are all supported. forward() and weights() are const and
// thread-safe; forward() is bit-identical for any thread count (each (batch, kv head) is summed
// by one thread in key order). Every function throws attnkit::Error for a bad argument, naming it.
#include "attnkit/backend.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

class UniformBackend final : public Backend {
 public:
  std::string spec() const override { return "uniform"; }
  Capabilities capabilities() const override { return kCapabilities; }
  void forward(const Problem& p) const override;
  // 2·n_k·d_v·B·H_kv (prefix sums) + B·H·n_q·d_v (divisions); bytes: v read, out written.
  Cost cost(const Shape& s) const override;
  // Row i: 1/e on its e visible keys, 0 elsewhere (a fully masked row is all zeros).
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;

  static constexpr Capabilities kCapabilities{
      .causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};
};

// Registry entry of `uniform`.
BackendInfo uniform_info();

}  // namespace attnkit
