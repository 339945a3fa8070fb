#pragma once
// Internal: the kernels of one SIMD path besides attend (element-wise feature-map kernels,
// Hamming K-means kernels), declared in that path's namespace. Included only by the per-path
// translation units (*_arch.cpp, compiled with -DATTNKIT_SIMD_NS=<path>); attend_arch.cpp puts
// them into the path's table (paths.hpp), which is the only way anything else calls them.
#include <cstdint>

#include "paths.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

// Element-wise (elementwise_arch.cpp); contracts in elementwise.hpp.
float add_and_max(float* p, int64_t n, float off);
float max_of(const float* p, int64_t n);
void exp_shift(float* p, int64_t n, float c);
void elu_plus_one(float* p, int64_t n);

// Hamming K-means (hamming_arch.cpp); contracts in hamming.hpp.
int64_t assign_nearest(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label);
void count_bits(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts, uint32_t* sizes);
void make_codes(const float* proj, int64_t n, const float* thr, uint64_t* codes);

// The portable reduced-precision kernels (lowp_portable_arch.cpp); contract in lowp.hpp.
void attend_lowp_portable(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans, const TileMask* mask,
                          Workspace& ws);

// Records that a kernel of group k ran on this path (kernel_path in paths.hpp): a relaxed load,
// and a store only when the path changed, so concurrent callers do not bounce the cache line.
// Builtins, not std::atomic: no inline std:: function compiled with this path's flags.
inline void ran(Kernel k) {
  const char** slot = &kernel_path[static_cast<int>(k)];
  if (__atomic_load_n(slot, __ATOMIC_RELAXED) != path.name) __atomic_store_n(slot, path.name, __ATOMIC_RELAXED);
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
