#pragma once
// Internal: the clustered backend's only source of randomness. SplitMix64 (portable, the same
// stream on every platform and standard library, unlike std::normal_distribution).
#include <cmath>
#include <cstdint>

namespace attnkit::clustered {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  // Stream of (seed, a, b): e.g. (spec seed, batch, head), so heads are independent of the order
  // in which threads process them.
  Rng(uint64_t seed, uint64_t a, uint64_t b) : s_(mix(mix(seed ^ 0x9e3779b97f4a7c15ull) + a) ^ mix(b + 0x632be59bd9b4e019ull)) {}

  uint64_t next() { return mix(s_ += 0x9e3779b97f4a7c15ull); }
  // Uniform in [0, n), n >= 1 (the modulo bias is below 2^-40 for the sizes used here).
  uint64_t below(uint64_t n) { return next() % n; }
  // Uniform in (0, 1).
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  // Standard normal (Box-Muller; one value per call, for simplicity).
  double normal() {
    const double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t s_;
};

}  // namespace attnkit::clustered
