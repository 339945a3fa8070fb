#include "projection.hpp"

#include <algorithm>
#include <cmath>

namespace attnkit::kern {

namespace {

// splitmix64: small, seedable, the same everywhere.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  double gauss() {  // Box–Muller, one value per call (the pair's second value is dropped: simpler)
    const double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

double norm(const double* x, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += x[i] * x[i];
  return std::sqrt(s);
}

}  // namespace

std::vector<float> draw_projection(int64_t m, int64_t d, bool orthogonal, bool regularized, uint64_t seed,
                                   uint64_t stream) {
  Rng rng{seed * 0x2545F4914F6CDD1Dull ^ (stream + 1) * 0x9E3779B97F4A7C15ull};
  std::vector<double> block(static_cast<size_t>(d * d)), g(static_cast<size_t>(d));
  std::vector<float> w(static_cast<size_t>(m * d));
  for (int64_t r0 = 0; r0 < m; r0 += d) {
    const int64_t rows = std::min(d, m - r0);
    for (auto& x : block) x = rng.gauss();
    if (orthogonal) {
      // Modified Gram–Schmidt over all d rows (a Gaussian d×d matrix has full rank almost surely;
      // a degenerate row is redrawn).
      for (int64_t i = 0; i < d; ++i) {
        double* ri = &block[static_cast<size_t>(i * d)];
        for (int tries = 0;; ++tries) {
          for (int64_t j = 0; j < i; ++j) {
            const double* rj = &block[static_cast<size_t>(j * d)];
            double dot = 0;
            for (int64_t c = 0; c < d; ++c) dot += ri[c] * rj[c];
            for (int64_t c = 0; c < d; ++c) ri[c] -= dot * rj[c];
          }
          const double nr = norm(ri, d);
          if (nr > 1e-6 || tries > 8) {
            for (int64_t c = 0; c < d; ++c) ri[c] /= nr;
            break;
          }
          for (int64_t c = 0; c < d; ++c) ri[c] = rng.gauss();
        }
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      double* ri = &block[static_cast<size_t>(i * d)];
      double target;  // the row's norm
      if (regularized) {
        target = std::sqrt(static_cast<double>(d));
      } else if (orthogonal) {
        for (auto& x : g) x = rng.gauss();
        target = norm(g.data(), d);  // χ(d)
      } else {
        target = norm(ri, d);  // iid Gaussian row: keep it as drawn
      }
      const double f = target / norm(ri, d);
      for (int64_t c = 0; c < d; ++c) w[static_cast<size_t>((r0 + i) * d + c)] = static_cast<float>(ri[c] * f);
    }
  }
  return w;
}

}  // namespace attnkit::kern
