#pragma once
// Internal: what the reduced-precision kernel sets share besides lowp.hpp: the kernel signature,
// the bf16 and int8 rounding every set uses, and the sets built apart from the fp32 paths.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "lowp.hpp"

namespace attnkit::simd {

using LowpKernel = void (*)(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans,
                            const TileMask* mask, Workspace& ws);

// fp32 -> bf16, round to nearest even; NaN stays a (quiet) NaN, ±inf stays ±inf.
inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Symmetric int8: x · inv clamped to [-127, 127] (inv = 127 / max|x| of the tile, or 0), rounded
// to nearest even by the 1.5 · 2^23 trick (exact for |y| < 2^22; no libm call in the inner loops;
// without -ffast-math the compiler keeps (y + big) - big). NaN gives 0: callers make the tile's
// scale NaN instead, so NaN still reaches the output.
inline int8_t quantize_int8(float x, float inv) {
  float y = x * inv;
  y = y > 127.0f ? 127.0f : (y < -127.0f ? -127.0f : y);
  y = y == y ? y : 0.0f;
  constexpr float big = 12582912.0f;
  return static_cast<int8_t>((y + big) - big);
}

// "amx" or "avx512bf16": ATTNKIT_SIMD values that name a reduced-precision kernel set (they run
// the fp32 kernels of the avx512 path).
bool is_lowp_set_name(const std::string& s);

namespace amx { void attend_lowp_kernel(const AttendArgs&, const LowpKV&, std::span<const KeySpan>, const TileMask*, Workspace&); }
namespace avx512bf16 { void attend_lowp_kernel(const AttendArgs&, const LowpKV&, std::span<const KeySpan>, const TileMask*, Workspace&); }

}  // namespace attnkit::simd
