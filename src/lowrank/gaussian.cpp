// Box–Muller in blocks: the 64-bit hashes are scalar, log / sqrt / sincos run on xsimd batches of
// the build's baseline instruction set (SSE2 on x86-64; the per-CPU dispatch of src/simd is not
// needed for a step this small). Drawing scalar double log + sin + cos took 88 ms for 256 × 16384
// entries here, about a third of a whole linformer:k=256 forward at that length.
#include "gaussian.hpp"

#include <algorithm>
#include <cmath>
#include <xsimd/xsimd.hpp>

namespace attnkit::lowrank {

namespace {

uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr int64_t kBlock = 256;  // pairs per block (a multiple of every batch size)

}  // namespace

void gaussian_rows(int64_t seed, int64_t k, int64_t r0, int64_t r1, int64_t n, float* e, int64_t ld) {
  using B = xsimd::batch<float>;
  const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(k)));
  const float two_pi = 6.28318530717958647692f, unit = 0x1p-24f;
  const uint64_t s = mix(static_cast<uint64_t>(seed));
  alignas(64) float u1[kBlock], u2[kBlock], zc[kBlock], zs[kBlock];
  const int64_t pairs = (n + 1) / 2;
  for (int64_t r = r0; r < r1; ++r) {
    float* row = e + (r - r0) * ld;
    const uint64_t sr = mix(s ^ static_cast<uint64_t>(r));
    for (int64_t t0 = 0; t0 < pairs; t0 += kBlock) {
      const int64_t cnt = std::min(kBlock, pairs - t0);
      for (int64_t t = 0; t < cnt; ++t) {
        const uint64_t h = mix(sr ^ static_cast<uint64_t>(t0 + t));
        u1[t] = (static_cast<float>(h >> 40) + 0.5f) * unit;        // 24 bits: exact in float
        u2[t] = (static_cast<float>(h & 0xFFFFFFull) + 0.5f) * unit;
      }
      for (int64_t t = cnt; t < kBlock; ++t) u1[t] = u2[t] = 0.5f;  // the last batch's unused lanes
      for (int64_t t = 0; t < cnt; t += static_cast<int64_t>(B::size)) {
        const B rad = xsimd::sqrt(B(-2.0f) * xsimd::log(B::load_aligned(u1 + t))) * B(inv);
        const auto sc = xsimd::sincos(B(two_pi) * B::load_aligned(u2 + t));
        (rad * sc.second).store_aligned(zc + t);
        (rad * sc.first).store_aligned(zs + t);
      }
      for (int64_t t = 0; t < cnt; ++t) {
        const int64_t c = 2 * (t0 + t);
        row[c] = zc[t];
        if (c + 1 < n) row[c + 1] = zs[t];
      }
    }
  }
}

}  // namespace attnkit::lowrank
