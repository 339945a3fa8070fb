#pragma once
// Internal: the table of SIMD code paths. Each path is one compilation of the *_arch.cpp files with
// its own instruction-set flags, in its own namespace (attnkit::simd::<path>); dispatch.cpp picks
// one per process, and every SIMD kernel of attnkit (attend, exp, the element-wise feature-map
// kernels of kernelized, the Hamming kernels of clustered) is called through that one choice.
#include <cstdint>
#include <span>

#include "attend.hpp"
#include "lowp_paths.hpp"

namespace attnkit::simd {

struct Path {
  const char* name;
  int64_t lanes;  // floats per vector register
  void (*attend)(const AttendArgs& a, std::span<const KeySpan> spans, const TileMask* mask,
                 int64_t block_k, Workspace& ws);
  void (*exp)(const float* x, float* y, int64_t n);
  // elementwise.hpp
  float (*add_and_max)(float* p, int64_t n, float off);
  float (*max_of)(const float* p, int64_t n);
  void (*exp_shift)(float* p, int64_t n, float c);
  void (*elu_plus_one)(float* p, int64_t n);
  // hamming.hpp
  int64_t (*assign_nearest)(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count,
                            int32_t* label);
  void (*count_bits)(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts,
                     uint32_t* sizes);
  void (*make_codes)(const float* proj, int64_t n, const float* thr, uint64_t* codes);
  // lowp.hpp: this path's portable reduced-precision kernel set.
  LowpKernel attend_lowp;
};

// The path of this process: ATTNKIT_SIMD if set, else the best one the CPU runs. Chosen once;
// throws attnkit::Error (every call) when ATTNKIT_SIMD names a path that is not available.
// ATTNKIT_SIMD=amx or avx512bf16 names a reduced-precision kernel set (lowp.hpp); its fp32 path
// is avx512.
const Path& active_path();

// Groups of kernels, for kernel_path: which path the latest call of a group ran on.
enum class Kernel { attend, elementwise, hamming, lowp };
inline constexpr int kKernelGroups = 4;
// kernel_path[k]: name of the path whose kernel of group k ran last (nullptr before the first
// call). Written by the kernels themselves (kernels_arch.hpp), so it shows what really ran; read it
// with last_path(). Atomic access only (__atomic builtins).
extern const char* kernel_path[kKernelGroups];
// The path that the latest call of a kernel of group k ran on, "" if none ran yet. Thread-safe.
const char* last_path(Kernel k);

// Defined by the per-path translation units that this build has (see meson.build).
namespace avx512 { extern const Path path; }
namespace avx2 { extern const Path path; }
namespace sse2 { extern const Path path; }
namespace native { extern const Path path; }
namespace generic { extern const Path path; }

}  // namespace attnkit::simd
