// Norm bounds for the clustered error bound (see spectral.hpp for the argument).
#include "spectral.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace attnkit::clustered {

namespace {
constexpr int kSquarings = 6;
constexpr double kInflate = 1.0 + 1e-9;

double frobenius(const std::vector<double>& m) {
  double s = 0;
  for (double x : m) s += x * x;
  return std::sqrt(s);
}
}  // namespace

double spectral_norm_upper(const float* a, int64_t rows, int64_t stride, int64_t cols) {
  const size_t c = static_cast<size_t>(cols);
  std::vector<double> g(c * c, 0.0), t(c * c);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = a + r * stride;
    for (size_t i = 0; i < c; ++i) {
      const double xi = x[i];
      for (size_t j = 0; j <= i; ++j) g[i * c + j] += xi * x[j];
    }
  }
  for (size_t i = 0; i < c; ++i)
    for (size_t j = 0; j < i; ++j) g[j * c + i] = g[i * c + j];
  // log λ_max <= Σ_t 2^-t log c_t, c_t the Frobenius norm before the t-th normalisation.
  double log_bound = 0, weight = 1;
  for (int s = 0;; ++s) {
    const double f = frobenius(g);
    if (f == 0 || !std::isfinite(f)) return f == 0 ? 0.0 : f;
    log_bound += weight * std::log(f);
    if (s == kSquarings) break;
    for (double& x : g) x /= f;
    std::fill(t.begin(), t.end(), 0.0);
    for (size_t i = 0; i < c; ++i)
      for (size_t k = 0; k < c; ++k) {
        const double gik = g[i * c + k];
        for (size_t j = 0; j < c; ++j) t[i * c + j] += gik * g[k * c + j];
      }
    g.swap(t);
    weight *= 0.5;
  }
  return std::sqrt(std::exp(log_bound)) * kInflate;
}

double max_row_norm(const float* a, int64_t rows, int64_t stride, int64_t cols) {
  double best = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += static_cast<double>(a[r * stride + j]) * a[r * stride + j];
    best = std::max(best, s);
  }
  return std::sqrt(best) * kInflate;
}

}  // namespace attnkit::clustered
