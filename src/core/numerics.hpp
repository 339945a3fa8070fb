#pragma once
// Internal: small numerics shared by the backends, the CLI and the tests, written once: the row
// softmax with its guards, the running maximum of value norms that the error bounds use, and
// floor division. Header-only (templates and one-liners); not installed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attnkit/problem.hpp"

namespace attnkit::numerics {

// Softmax of one score row in place, x[j] = exp(x[j] - max) * (mass / sum), with the guards every
// softmax of attnkit shares:
//   - n == 0, a row that sees no key: nothing is written and it returns false (the caller's zeros
//     stand: a row with nothing to attend to outputs 0);
//   - a NaN score anywhere: the whole row is NaN (bad input shows, never a plausible-looking row);
//   - -inf scores (masked keys) get exactly 0.
// `mass` is 1 for a probability row; clustered's top-k rows spread a centroid's mass instead.
// T is float or double; sums run left to right in T.
template <class T>
inline bool softmax_row(T* x, int64_t n, T mass = T(1)) {
  if (n <= 0) return false;
  T mx = -std::numeric_limits<T>::infinity();
  bool nan = false;
  for (int64_t j = 0; j < n; ++j) {
    mx = std::max(mx, x[j]);
    nan |= std::isnan(x[j]);
  }
  if (nan) {
    std::fill(x, x + n, std::numeric_limits<T>::quiet_NaN());
    return true;
  }
  T sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (x[j] = std::exp(x[j] - mx));
  const T f = mass / sum;
  for (int64_t j = 0; j < n; ++j) x[j] *= f;
  return true;
}

// Running maximum of the values' L2 norms, in fp64: out[(b * kv_heads + g) * n_k + j] =
// max_{j' <= j} ||v[b, g, j']||_2. Error bounds need the largest norm among the keys a row can
// see: keys [0, e) give the entry at j = e - 1, all keys the entry at j = n_k - 1.
inline std::vector<double> value_norm_running_max(const Problem& p) {
  const int64_t B = p.v.shape[0], G = p.v.shape[1], n = p.v.shape[2], dv = p.v.shape[3];
  std::vector<double> out(static_cast<size_t>(B * G * n));
  for (int64_t bg = 0; bg < B * G; ++bg) {
    double m = 0;
    for (int64_t j = 0; j < n; ++j) {
      const float* v = p.v.row(bg / G, bg % G, j);
      double n2 = 0;
      for (int64_t c = 0; c < dv; ++c) n2 += static_cast<double>(v[c]) * v[c];
      m = std::max(m, std::sqrt(n2));
      out[static_cast<size_t>(bg * n + j)] = m;
    }
  }
  return out;
}

// floor(a / b) for b > 0, also for negative a (C++ division truncates towards zero).
// s[j] = scale · q_i·k_j in fp64 for j < key_end, query row i of (batch b, head h) against its kv
// head's keys: the exact scores the a-posteriori bounds and implied weights are measured with.
inline void score_row_fp64(const Problem& p, const Shape& d, int64_t b, int64_t h, int64_t i, int64_t key_end,
                           std::vector<double>& s) {
  const int64_t g = h / d.group();
  const double scale = p.effective_scale();
  const float* q = p.q.row(b, h, i);
  s.resize(static_cast<size_t>(key_end));
  for (int64_t j = 0; j < key_end; ++j) {
    const float* k = p.k.row(b, g, j);
    double dot = 0;
    for (int64_t c = 0; c < d.d; ++c) dot += static_cast<double>(q[c]) * k[c];
    s[static_cast<size_t>(j)] = scale * dot;
  }
}

constexpr int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace attnkit::numerics
