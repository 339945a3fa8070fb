#include "attnkit/backend.hpp"

#include <algorithm>

#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"

namespace attnkit {

Cost exact_cost(const Shape& s) {
  // The visible (query, key) pairs; the causal mask is aligned bottom-right (query i sees keys
  // j <= i + n_k - n_q), so with n_q > n_k the first n_q - n_k rows see nothing.
  const double nq = static_cast<double>(s.n_q), nk = static_cast<double>(s.n_k);
  const double pairs = !s.causal      ? nq * nk
                       : s.n_q <= s.n_k ? nq * (nk - nq) + 0.5 * nq * (nq + 1.0)
                                        : 0.5 * nk * (nk + 1.0);
  const double bh = static_cast<double>(s.batch) * s.heads;
  const double dd = static_cast<double>(s.d) + s.d_v;  // in double: a shape of huge sizes must not wrap
  Cost c;
  c.flops = bh * pairs * 2.0 * dd;
  c.bytes = 4.0 * (bh * s.n_q * dd + static_cast<double>(s.batch) * s.kv_heads * s.n_k * dd);
  return c;
}

double exact_equivalent_flops(const Problem& p) { return exact_cost(p.validate()).flops; }

Cost Backend::cost(const Shape& s) const { return exact_cost(s); }

std::optional<ErrorBound> Backend::error_bound(const Problem&) const { return std::nullopt; }

void Backend::weights(const Problem&, int64_t, int64_t, float*) const {
  detail::fail("backend ", spec(), ": weights are not available; expected a backend with the weights capability");
}

namespace {
void check_rows(const std::vector<int64_t>& rows, int64_t n_q) {
  for (int64_t i : rows)
    if (i < 0 || i >= n_q) detail::fail("rows: row ", i, "; expected rows in [0, ", n_q, ")");
}
}  // namespace

std::optional<ErrorBound> Backend::error_bound_rows(const Problem& p, const std::vector<int64_t>& rows) const {
  const Shape d = check(p);
  check_rows(rows, d.n_q);
  std::optional<ErrorBound> full = error_bound(p);
  if (!full) return full;
  ErrorBound eb;
  eb.description = full->description;
  const size_t r = rows.size();
  eb.out_l2.resize(static_cast<size_t>(d.batch * d.heads) * r);
  if (!full->prob_l1.empty()) eb.prob_l1.resize(eb.out_l2.size());
  for (int64_t bh = 0; bh < d.batch * d.heads; ++bh)
    for (size_t t = 0; t < r; ++t) {
      const size_t from = static_cast<size_t>(bh * d.n_q + rows[t]), to = static_cast<size_t>(bh) * r + t;
      eb.out_l2[to] = full->out_l2[from];
      if (!eb.prob_l1.empty()) eb.prob_l1[to] = full->prob_l1[from];
    }
  return eb;
}

void Backend::weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows, float* w) const {
  const Shape d = check_weights_rows(p, b, h, rows, w);
  if (!capabilities().weights) weights(p, b, h, w);  // throws: not available
  if (d.n_q * d.n_k > kMaxWeights)
    detail::fail("weights: backend ", spec(), " computes rows from the whole n_q x n_k = ", d.n_q * d.n_k,
                 " matrix; expected at most ", kMaxWeights, " entries");
  std::vector<float> all(static_cast<size_t>(d.n_q * d.n_k));
  weights(p, b, h, all.data());
  for (size_t t = 0; t < rows.size(); ++t)
    std::copy(all.begin() + rows[t] * d.n_k, all.begin() + (rows[t] + 1) * d.n_k, w + static_cast<int64_t>(t) * d.n_k);
}

Shape Backend::check(const Problem& p) const {
  const Shape d = p.validate();
  // ATTNKIT_SIMD is resolved by the first kernel call, which most backends make inside an OpenMP
  // region, where an exception is std::terminate: a bad value must throw here.
  simd_path();
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

Shape Backend::check_weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows,
                                  const float* w) const {
  const Shape d = check(p);
  if (b < 0 || b >= d.batch) detail::fail("weights: batch ", b, "; expected a value in [0, ", d.batch, ")");
  if (h < 0 || h >= d.heads) detail::fail("weights: head ", h, "; expected a value in [0, ", d.heads, ")");
  if (w == nullptr) detail::fail("weights: w is null; expected rows.size() * n_k floats");
  check_rows(rows, d.n_q);
  if (static_cast<int64_t>(rows.size()) * d.n_k > kMaxWeights)
    detail::fail("weights: rows x n_k = ", static_cast<int64_t>(rows.size()) * d.n_k, " entries; expected at most ",
                 kMaxWeights);
  return d;
}

}  // namespace attnkit
