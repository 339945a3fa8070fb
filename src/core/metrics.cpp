#include "attnkit/metrics.hpp"

#include <cmath>
#include <limits>

#include "attnkit/error.hpp"
#include "parallel_errors.hpp"

namespace attnkit {

namespace {
void same_shape(ConstView a, ConstView r) {
  for (int i = 0; i < 4; ++i)
    if (a.shape[i] != r.shape[i])
      detail::fail("approx: shape[", i, "] is ", a.shape[i], "; expected ", r.shape[i], " (the reference's)");
}
}  // namespace

ErrorMetrics compare(ConstView a, ConstView r) {
  same_shape(a, r);
  double max_abs = 0, diff2 = 0, ref2 = 0, row_sum = 0;
  bool nan = false;
  int64_t rows = 0;
  for (int64_t b = 0; b < r.shape[0]; ++b)
    for (int64_t h = 0; h < r.shape[1]; ++h)
      for (int64_t i = 0; i < r.shape[2]; ++i) {
        const float* pa = a.row(b, h, i);
        const float* pr = r.row(b, h, i);
        double row2 = 0;
        for (int64_t c = 0; c < r.shape[3]; ++c) {
          const double e = static_cast<double>(pa[c]) - pr[c];
          if (std::isnan(e)) nan = true;
          max_abs = std::max(max_abs, std::fabs(e));
          row2 += e * e;
          ref2 += static_cast<double>(pr[c]) * pr[c];
        }
        diff2 += row2;
        row_sum += std::sqrt(row2);
        ++rows;
      }
  ErrorMetrics m;
  const double qnan = std::numeric_limits<double>::quiet_NaN();
  m.max_abs = nan ? qnan : max_abs;
  m.rel_fro = nan ? qnan : (ref2 > 0 ? std::sqrt(diff2 / ref2) : (diff2 > 0 ? INFINITY : 0.0));
  m.mean_row_l2 = nan ? qnan : (rows ? row_sum / rows : 0.0);
  return m;
}

std::vector<double> row_l2_errors(ConstView a, ConstView r) {
  same_shape(a, r);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(r.shape[0] * r.shape[1] * r.shape[2]));
  for (int64_t b = 0; b < r.shape[0]; ++b)
    for (int64_t h = 0; h < r.shape[1]; ++h)
      for (int64_t i = 0; i < r.shape[2]; ++i) {
        double s = 0;
        for (int64_t c = 0; c < r.shape[3]; ++c) {
          const double e = static_cast<double>(a.row(b, h, i)[c]) - r.row(b, h, i)[c];
          s += e * e;
        }
        out.push_back(std::sqrt(s));
      }
  return out;
}

double row_l1(const float* p, const float* r, int64_t n) {
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::fabs(static_cast<double>(p[j]) - r[j]);
  return s;
}

void mean_value_baseline(const Problem& p, MutView out) {
  const Shape d = p.validate();
  for (int a = 0; a < 4; ++a)
    if (out.shape[a] != p.out.shape[a])
      detail::fail("baseline out: shape[", a, "] is ", out.shape[a], "; expected ", p.out.shape[a]);
  // One (batch, kv head) per iteration, summed in key order by one thread: the same bits for any
  // thread count.
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    std::vector<double> prefix;
#pragma omp for schedule(static)
    for (int64_t bg = 0; bg < d.batch * d.kv_heads; ++bg)
      errors.run([&] {
        prefix.resize(static_cast<size_t>((d.n_k + 1) * d.d_v));
        const int64_t b = bg / d.kv_heads, g = bg % d.kv_heads;
        // prefix sums of v rows, so each query's visible prefix mean costs O(d_v)
        for (int64_t c = 0; c < d.d_v; ++c) prefix[static_cast<size_t>(c)] = 0;
        for (int64_t j = 0; j < d.n_k; ++j)
          for (int64_t c = 0; c < d.d_v; ++c)
            prefix[static_cast<size_t>((j + 1) * d.d_v + c)] =
                prefix[static_cast<size_t>(j * d.d_v + c)] + p.v.row(b, g, j)[c];
        for (int64_t hh = 0; hh < d.group(); ++hh) {
          const int64_t h = g * d.group() + hh;
          for (int64_t i = 0; i < d.n_q; ++i) {
            const int64_t e = p.key_end(b, i);
            float* o = out.row(b, h, i);
            for (int64_t c = 0; c < d.d_v; ++c)
              o[c] = e > 0 ? static_cast<float>(prefix[static_cast<size_t>(e * d.d_v + c)] / e) : 0.0f;
          }
        }
      });
  }
  errors.rethrow();
}

}  // namespace attnkit
