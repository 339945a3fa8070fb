// fp64 oracle: one score row at a time, straight from the definition.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/numerics.hpp"
#include "../core/parallel_errors.hpp"
#include "attnkit/error.hpp"
#include "attnkit/exact.hpp"

namespace attnkit {

namespace {
// Probabilities of query row i of (b, h) over all n_k keys, in fp64; masked keys get 0.
// Returns false when the row sees no key (all zeros).
bool reference_row(const Problem& p, const Shape& d, int64_t b, int64_t h, int64_t i, std::vector<double>& w) {
  const int64_t g = h / d.group();
  const int64_t end = p.key_end(b, i);
  const double s = p.effective_scale();
  const float* q = p.q.row(b, h, i);
  std::fill(w.begin(), w.end(), 0.0);
  if (end == 0) return false;
  for (int64_t j = 0; j < end; ++j) {
    const float* k = p.k.row(b, g, j);
    double dot = 0;
    for (int64_t c = 0; c < d.d; ++c) dot += static_cast<double>(q[c]) * k[c];
    w[static_cast<size_t>(j)] = s * dot;
  }
  return numerics::softmax_row(w.data(), end);
}
}  // namespace

Capabilities ReferenceBackend::capabilities() const {
  return {.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};
}

namespace {
// Output rows of query row i of (b, h) in fp64, written as float to out.
void reference_output(const Problem& p, const Shape& d, int64_t b, int64_t h, int64_t i, std::vector<double>& w,
                      std::vector<double>& o, float* out) {
  const int64_t g = h / d.group();
  reference_row(p, d, b, h, i, w);
  std::fill(o.begin(), o.end(), 0.0);
  const int64_t end = p.key_end(b, i);
  for (int64_t j = 0; j < end; ++j) {
    const double wj = w[static_cast<size_t>(j)];
    const float* v = p.v.row(b, g, j);
    for (int64_t c = 0; c < d.d_v; ++c) o[static_cast<size_t>(c)] += wj * v[c];
  }
  for (int64_t c = 0; c < d.d_v; ++c) out[c] = static_cast<float>(o[static_cast<size_t>(c)]);
}
}  // namespace

void ReferenceBackend::forward(const Problem& p) const {
  const Shape d = check(p);
  const int64_t rows = d.batch * d.heads * d.n_q;
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    std::vector<double> w, o;
#pragma omp for schedule(dynamic, 16)
    for (int64_t r = 0; r < rows; ++r)
      errors.run([&] {
        w.resize(static_cast<size_t>(d.n_k));
        o.resize(static_cast<size_t>(d.d_v));
        const int64_t b = r / (d.heads * d.n_q), h = r / d.n_q % d.heads, i = r % d.n_q;
        reference_output(p, d, b, h, i, w, o, p.out.row(b, h, i));
      });
  }
  errors.rethrow();
}

void ReferenceBackend::forward_rows(const Problem& p, const std::vector<int64_t>& rows, float* out) const {
  const Shape d = check(p);
  for (int64_t i : rows)
    if (i < 0 || i >= d.n_q) detail::fail("rows: ", i, "; expected a value in [0, ", d.n_q, ")");
  const int64_t m = static_cast<int64_t>(rows.size()), total = d.batch * d.heads * m;
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    std::vector<double> w, o;
#pragma omp for schedule(dynamic, 4)
    for (int64_t r = 0; r < total; ++r)
      errors.run([&] {
        w.resize(static_cast<size_t>(d.n_k));
        o.resize(static_cast<size_t>(d.d_v));
        const int64_t b = r / (d.heads * m), h = r / m % d.heads, x = r % m;
        reference_output(p, d, b, h, rows[static_cast<size_t>(x)], w, o, out + r * d.d_v);
      });
  }
  errors.rethrow();
}

void ReferenceBackend::weights(const Problem& p, int64_t b, int64_t h, float* w) const {
  const Shape d = check_weights(p, b, h, w);
  std::vector<double> row(static_cast<size_t>(d.n_k));
  for (int64_t i = 0; i < d.n_q; ++i) {
    reference_row(p, d, b, h, i, row);
    for (int64_t j = 0; j < d.n_k; ++j) w[i * d.n_k + j] = static_cast<float>(row[static_cast<size_t>(j)]);
  }
}

void ReferenceBackend::weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows,
                                    float* w) const {
  const Shape d = check_weights_rows(p, b, h, rows, w);
  std::vector<double> row(static_cast<size_t>(d.n_k));
  for (size_t t = 0; t < rows.size(); ++t) {
    reference_row(p, d, b, h, rows[t], row);
    for (int64_t j = 0; j < d.n_k; ++j) w[static_cast<int64_t>(t) * d.n_k + j] = static_cast<float>(row[static_cast<size_t>(j)]);
  }
}

BackendInfo reference_info() {
  return {"reference", "fp64 oracle, one score row at a time (slow, obviously correct)", {},
          ReferenceBackend().capabilities(),
          [](const Params&) { return std::make_unique<ReferenceBackend>(); }};
}

}  // namespace attnkit
