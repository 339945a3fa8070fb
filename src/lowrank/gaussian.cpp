#include "gaussian.hpp"

#include <cmath>

namespace attnkit::lowrank {

namespace {

uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

void gaussian_rows(int64_t seed, int64_t k, int64_t r0, int64_t r1, int64_t n, float* e, int64_t ld) {
  const double inv = 1.0 / std::sqrt(static_cast<double>(k)), two_pi = 6.283185307179586476925286766559;
  const uint64_t s = mix(static_cast<uint64_t>(seed));
  for (int64_t r = r0; r < r1; ++r) {
    float* row = e + (r - r0) * ld;
    const uint64_t sr = mix(s ^ static_cast<uint64_t>(r));
    for (int64_t c = 0; c < n; c += 2) {
      const uint64_t h = mix(sr ^ static_cast<uint64_t>(c / 2));
      const double u1 = (static_cast<double>(h >> 32) + 0.5) * 0x1p-32;
      const double u2 = (static_cast<double>(h & 0xFFFFFFFFull) + 0.5) * 0x1p-32;
      const double rad = std::sqrt(-2.0 * std::log(u1)) * inv;
      row[c] = static_cast<float>(rad * std::cos(two_pi * u2));
      if (c + 1 < n) row[c + 1] = static_cast<float>(rad * std::sin(two_pi * u2));
    }
  }
}

}  // namespace attnkit::lowrank
