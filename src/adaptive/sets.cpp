#include "sets.hpp"

#include "../core/numerics.hpp"
#include "../core/parallel_errors.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnkit::adaptive {


ErrorBound set_error_bound(const Problem& p, const Shape& d, const std::string& description, const HeadKeys& keys,
                           const std::vector<int64_t>* rows) {
  ErrorBound eb;
  eb.description = description;
  const int64_t per_head = rows ? static_cast<int64_t>(rows->size()) : d.n_q;
  eb.out_l2.assign(static_cast<size_t>(d.batch * d.heads * per_head), 0.0);
  eb.prob_l1.assign(eb.out_l2.size(), 0.0);
  // Largest value norm among the keys a row sees: vmax[(b * kv_heads + g) * n_k + key_end - 1].
  const std::vector<double> vmax = numerics::value_norm_running_max(p);
  RowKeys rk;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      keys(b, h, rk);
      const int64_t g = h / d.group();
      ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
      {
        std::vector<double> s;
        std::vector<char> inside;
#pragma omp for schedule(dynamic, 16)
        for (int64_t t = 0; t < per_head; ++t)
          errors.run([&] {
            const int64_t i = rows ? (*rows)[static_cast<size_t>(t)] : t;
            const int64_t ke = p.key_end(b, i);
            if (ke == 0) return;
            numerics::score_row_fp64(p, d, b, h, i, ke, s);
            inside.assign(static_cast<size_t>(ke), 0);
            for (int64_t x = rk.first[i]; x < rk.first[i + 1]; ++x) inside[static_cast<size_t>(rk.idx[x])] = 1;
            double mx = -std::numeric_limits<double>::infinity(), in = 0, out = 0;
            bool chosen = false;
            for (double x : s) mx = std::max(mx, x);
            for (int64_t j = 0; j < ke; ++j) {
              const double e = std::exp(s[static_cast<size_t>(j)] - mx);
              (inside[static_cast<size_t>(j)] ? in : out) += e;
              chosen |= inside[static_cast<size_t>(j)] != 0;
            }
            const double vm = vmax[static_cast<size_t>((b * d.kv_heads + g) * d.n_k + ke - 1)];
            const size_t r = static_cast<size_t>((b * d.heads + h) * per_head + t);
            // in == 0 with chosen keys is underflow, not an empty set: eps = 1 (L1 2, 2·max ||v||).
            const double eps = out / (in + out);
            if (!chosen && !std::isnan(eps)) {
              eb.prob_l1[r] = 1.0;
              eb.out_l2[r] = vm;
            } else {
              eb.prob_l1[r] = 2 * eps;
              eb.out_l2[r] = 2 * eps * vm;
            }
          });
      }
      errors.rethrow();
    }
  return eb;
}

void set_weights(const Problem& p, const Shape& d, int64_t b, int64_t h, const RowKeys& keys, float* w) {
  std::vector<double> s, x;
  for (int64_t i = 0; i < d.n_q; ++i) {
    float* row = w + i * d.n_k;
    std::fill(row, row + d.n_k, 0.0f);
    const int64_t a = keys.first[i], e = keys.first[i + 1];
    if (a == e) continue;
    numerics::score_row_fp64(p, d, b, h, i, p.key_end(b, i), s);
    x.resize(static_cast<size_t>(e - a));
    for (int64_t t = a; t < e; ++t) x[static_cast<size_t>(t - a)] = s[static_cast<size_t>(keys.idx[t])];
    numerics::softmax_row(x.data(), e - a);  // the shared guards: NaN row, masked keys
    for (int64_t t = a; t < e; ++t) row[keys.idx[t]] = static_cast<float>(x[static_cast<size_t>(t - a)]);
  }
}

}  // namespace attnkit::adaptive
