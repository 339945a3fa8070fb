// The local backend's accounting in fp64: cost (allowed pairs), the a-posteriori error identity
// and the implied probability matrix.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/numerics.hpp"
#include "../core/parallel_errors.hpp"
#include "../simd/lowp_heads.hpp"
#include "attnkit/error.hpp"
#include "attnkit/local.hpp"

namespace attnkit {

namespace {


// inside[j] = 1 for j in N(i) (j < key_end).
void mark(const std::vector<KeyRun>& runs, int64_t key_end, std::vector<char>& inside) {
  inside.assign(static_cast<size_t>(key_end), 0);
  for (const KeyRun& r : runs)
    for (int64_t j = r.begin; j < r.end; j += r.step) inside[static_cast<size_t>(j)] = 1;
}

}  // namespace

Cost LocalBackend::cost(const Shape& s) const {
  const LocalPattern pat(opt_, s.n_q, s.n_k, s.causal);
  std::vector<KeyRun> runs;
  double pairs = 0;
  const int64_t heads = pat.per_head() ? s.heads : 1;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < s.n_q; ++i) {
      const int64_t ke = s.causal ? std::clamp<int64_t>(i + s.n_k - s.n_q + 1, 0, s.n_k) : s.n_k;
      pat.row(h, i, ke, runs);
      for (const KeyRun& r : runs) pairs += static_cast<double>(r.size());
    }
  if (!pat.per_head()) pairs *= static_cast<double>(s.heads);
  Cost c = exact_cost(s);
  c.flops = static_cast<double>(s.batch) * pairs * 2.0 * (s.d + s.d_v);
  c.bytes += lowp::extra_bytes(opt_.precision, s);
  return c;
}

namespace {

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = i;
  return r;
}

// The identity for query rows `rows` of every (batch, head), indexed (b * heads + h) * rows.size() + t.
ErrorBound bound_on(const Problem& p, const Shape& d, const LocalPattern& pat, const std::vector<int64_t>& rows) {
  // vmax[(b, g), j] = max over keys j' <= j of ||v_j'||_2: the bound needs the visible keys' max.
  const std::vector<double> vmax = numerics::value_norm_running_max(p);
  const int64_t m = static_cast<int64_t>(rows.size()), total = d.batch * d.heads * m;
  ErrorBound eb;
  eb.description =
      "local: eps_i = full-softmax mass outside N(i) (fp64, exact); prob L1 = 2 eps_i; "
      "||O~_i - O_i||_2 <= 2 eps_i max_{visible j} ||v_j||_2 (a row with no allowed key: L1 = 1, bound max ||v_j||)";
  eb.out_l2.assign(static_cast<size_t>(total), 0.0);
  eb.prob_l1.assign(static_cast<size_t>(total), 0.0);
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    std::vector<double> s;
    std::vector<char> inside;
    std::vector<KeyRun> runs;
#pragma omp for schedule(dynamic, 16)
    for (int64_t r = 0; r < total; ++r)
      errors.run([&] {
        const int64_t b = r / (d.heads * m), h = r / m % d.heads, i = rows[static_cast<size_t>(r % m)];
        const int64_t ke = p.key_end(b, i);
        if (ke == 0) return;  // both outputs are zero rows
        pat.row(h, i, ke, runs);
        mark(runs, ke, inside);
        numerics::score_row_fp64(p, d, b, h, i, ke, s);
        double mx = -std::numeric_limits<double>::infinity();
        for (double x : s) mx = std::max(mx, x);
        double in = 0, out = 0;
        bool allowed = false;
        for (int64_t j = 0; j < ke; ++j) {
          const double e = std::exp(s[static_cast<size_t>(j)] - mx);
          (inside[static_cast<size_t>(j)] ? in : out) += e;
          allowed |= inside[static_cast<size_t>(j)] != 0;
        }
        const double vm = vmax[static_cast<size_t>((b * d.kv_heads + h / d.group()) * d.n_k + ke - 1)];
        // in == 0 with allowed keys is underflow (they lie > 745 below the row's max), not an empty
        // row: the approximate row is still a convex mix of values, eps = 1 gives L1 2, 2·max ||v||.
        const double eps = out / (in + out);
        if (!allowed && !std::isnan(eps)) {  // approximate row is zero: L1 = 1, ||O_i|| <= max ||v||
          eb.prob_l1[static_cast<size_t>(r)] = 1.0;
          eb.out_l2[static_cast<size_t>(r)] = vm;
        } else {
          eb.prob_l1[static_cast<size_t>(r)] = 2 * eps;
          eb.out_l2[static_cast<size_t>(r)] = 2 * eps * vm;
        }
      });
  }
  errors.rethrow();
  return eb;
}

// Rows `rows` of the restricted softmax of (b, h), written as rows.size() x n_k.
void weights_on(const Problem& p, const Shape& d, const LocalPattern& pat, int64_t b, int64_t h,
                const std::vector<int64_t>& rows, float* w) {
  std::vector<double> s;
  std::vector<char> inside;
  std::vector<KeyRun> runs;
  for (size_t t = 0; t < rows.size(); ++t) {
    const int64_t i = rows[t];
    float* row = w + static_cast<int64_t>(t) * d.n_k;
    std::fill(row, row + d.n_k, 0.0f);
    const int64_t ke = p.key_end(b, i);
    pat.row(h, i, ke, runs);
    if (runs.empty()) continue;
    mark(runs, ke, inside);
    numerics::score_row_fp64(p, d, b, h, i, ke, s);
    // Keys outside the pattern are masked: -inf scores, probability exactly 0.
    for (int64_t j = 0; j < ke; ++j)
      if (!inside[static_cast<size_t>(j)]) s[static_cast<size_t>(j)] = -std::numeric_limits<double>::infinity();
    numerics::softmax_row(s.data(), ke);  // a NaN score: the allowed keys get NaN, the others stay 0
    for (int64_t j = 0; j < ke; ++j)
      if (inside[static_cast<size_t>(j)]) row[j] = static_cast<float>(s[static_cast<size_t>(j)]);
  }
}

}  // namespace

// The identity is exact arithmetic's (float32 rounding sits in the sweep's 1e-5 slack); bf16 / int8
// rounding is far larger and has no checked bound: none is claimed (attnkit/precision.hpp).
std::optional<ErrorBound> LocalBackend::error_bound(const Problem& p) const {
  const Shape d = check(p);
  if (opt_.precision != ComputePrecision::fp32) return std::nullopt;
  return bound_on(p, d, LocalPattern(opt_, d.n_q, d.n_k, p.mask.causal), all_rows(d.n_q));
}

std::optional<ErrorBound> LocalBackend::error_bound_rows(const Problem& p, const std::vector<int64_t>& rows) const {
  const Shape d = check(p);
  for (int64_t i : rows)
    if (i < 0 || i >= d.n_q) detail::fail("rows: row ", i, "; expected rows in [0, ", d.n_q, ")");
  if (opt_.precision != ComputePrecision::fp32) return std::nullopt;
  return bound_on(p, d, LocalPattern(opt_, d.n_q, d.n_k, p.mask.causal), rows);
}

void LocalBackend::weights(const Problem& p, int64_t b, int64_t h, float* w) const {
  const Shape d = check_weights(p, b, h, w);
  if (opt_.precision != ComputePrecision::fp32) Backend::weights(p, b, h, w);  // throws: not available
  weights_on(p, d, LocalPattern(opt_, d.n_q, d.n_k, p.mask.causal), b, h, all_rows(d.n_q), w);
}

void LocalBackend::weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows,
                                float* w) const {
  const Shape d = check_weights_rows(p, b, h, rows, w);
  if (opt_.precision != ComputePrecision::fp32) Backend::weights(p, b, h, w);  // throws: not available
  weights_on(p, d, LocalPattern(opt_, d.n_q, d.n_k, p.mask.causal), b, h, rows, w);
}

}  // namespace attnkit
