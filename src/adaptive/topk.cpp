// topk: exact top-k attention. Per (batch, head, tile of 64 query rows) task: the streaming
// choice of select_topk, then softmax over the chosen scores and a gathered P·V.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../core/blas_rows.hpp"
#include "../core/blas_threads.hpp"
#include "../core/parallel_errors.hpp"
#include "attnkit/adaptive.hpp"
#include "attnkit/error.hpp"
#include "sets.hpp"
#include "topk_select.hpp"

namespace attnkit {

namespace {

constexpr int64_t kRows = 64;  // query rows per task

constexpr Capabilities kCaps{.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

// The one parameter table: constructor checks, spec() and topk_info() all use it.
const std::vector<ParamDef>& topk_params() {
  static const std::vector<ParamDef> defs = {
      {"k", ParamType::Int, "256", 1, 1073741824.0, "keys per query (ties: lower index)"}};
  return defs;
}

Params topk_resolve(const TopkOptions& o) { return Params("topk", topk_params(), {{"k", std::to_string(o.k)}}); }

}  // namespace

TopkBackend::TopkBackend(TopkOptions o) : opt_(o) { topk_resolve(o); }

std::string TopkBackend::spec() const { return topk_resolve(opt_).canonical(); }

Capabilities TopkBackend::capabilities() const { return kCaps; }

void TopkBackend::forward(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check(p);
  const int64_t tiles = (d.n_q + kRows - 1) / kRows;
  const int64_t tasks = d.batch * d.heads * tiles;
  SingleThreadedBlas blas;
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    adaptive::TopkScratch sc;
    adaptive::RowKeys keys;
    std::vector<float> chosen, acc;
    std::vector<char> nan_rows;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t)
      errors.run([&] {
        const int64_t bh = t / tiles, b = bh / d.heads, h = bh % d.heads, g = h / d.group();
        const int64_t i0 = (tiles - 1 - t % tiles) * kRows;  // heaviest (last, causal) first
        const int64_t rows = std::min(kRows, d.n_q - i0);
        keys.clear();
        chosen.clear();
        adaptive::select_topk(p, d, b, h, i0, rows, opt_.k, sc, keys, chosen, nan_rows);
        acc.resize(static_cast<size_t>(d.d_v));
        for (int64_t r = 0; r < rows; ++r) {
          float* o = p.out.row(b, h, i0 + r);
          const int64_t a = keys.first[r], e = keys.first[r + 1];
          if (nan_rows[static_cast<size_t>(r)]) {
            std::fill(o, o + d.d_v, std::numeric_limits<float>::quiet_NaN());
            continue;
          }
          if (a == e) {
            std::fill(o, o + d.d_v, 0.0f);
            continue;
          }
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t x = a; x < e; ++x) mx = std::max(mx, chosen[static_cast<size_t>(x)]);
          std::fill(acc.begin(), acc.end(), 0.0f);
          float sum = 0;
          for (int64_t x = a; x < e; ++x) {
            const float w = std::exp(chosen[static_cast<size_t>(x)] - mx);
            sum += w;
            const float* v = p.v.row(b, g, keys.idx[static_cast<size_t>(x)]);
            for (int64_t c = 0; c < d.d_v; ++c) acc[static_cast<size_t>(c)] += w * v[c];
          }
          for (int64_t c = 0; c < d.d_v; ++c) o[c] = acc[static_cast<size_t>(c)] / sum;
        }
      });
  }
  errors.rethrow();
}

Cost TopkBackend::cost(const Shape& s) const {
  Cost c = exact_cost(s);
  const double half = s.causal ? 0.5 : 1.0;
  const double rows = static_cast<double>(s.batch) * s.heads * s.n_q;
  c.flops = rows * (2.0 * s.n_k * s.d * half + 2.0 * static_cast<double>(std::min(opt_.k, s.n_k)) * s.d_v);
  return c;
}

namespace {

// The chosen keys of every row of (b, h), as forward() chooses them.
void head_keys(const Problem& p, const Shape& d, int64_t k, int64_t b, int64_t h, adaptive::RowKeys& keys) {
  keys.clear();
  SingleThreadedBlas blas;
  adaptive::TopkScratch sc;
  std::vector<float> chosen;
  std::vector<char> nan_rows;
  for (int64_t i0 = 0; i0 < d.n_q; i0 += kRows)
    adaptive::select_topk(p, d, b, h, i0, std::min(kRows, d.n_q - i0), k, sc, keys, chosen, nan_rows);
}

}  // namespace

std::optional<ErrorBound> TopkBackend::error_bound(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  std::vector<int64_t> all(static_cast<size_t>(check(p).n_q));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  return error_bound_rows(p, all);
}

std::optional<ErrorBound> TopkBackend::error_bound_rows(const Problem& caller, const std::vector<int64_t>& rows) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check(p);
  for (int64_t i : rows)
    if (i < 0 || i >= d.n_q) detail::fail("rows: row ", i, "; expected rows in [0, ", d.n_q, ")");
  return adaptive::set_error_bound(
      p, d,
      "topk: eps_i = full-softmax mass outside the row's k chosen keys (fp64); prob L1 = 2 eps_i; "
      "||O~_i - O_i||_2 <= 2 eps_i max_{visible j} ||v_j||_2",
      [&](int64_t b, int64_t h, adaptive::RowKeys& keys) { head_keys(p, d, opt_.k, b, h, keys); },
      &rows);
}

void TopkBackend::weights(const Problem& caller, int64_t b, int64_t h, float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check_weights(p, b, h, w);
  adaptive::RowKeys keys;
  head_keys(p, d, opt_.k, b, h, keys);
  adaptive::set_weights(p, d, b, h, keys, w);
}

BackendInfo topk_info() {
  return {"topk",
          "exact top-k attention: softmax over each row's k largest scores (the oracle of row-sparse methods; O(n^2 d))",
          topk_params(),
          kCaps,
          [](const Params& pr) { return std::make_unique<TopkBackend>(TopkOptions{pr.get_int("k")}); }};
}

}  // namespace attnkit
