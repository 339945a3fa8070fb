#pragma once
// Internal: the table of SIMD code paths. Each path is one compilation of attend_arch.cpp with its
// own instruction-set flags, in its own namespace (attnkit::simd::<path>); dispatch.cpp picks one.
#include <span>

#include "attend.hpp"

namespace attnkit::simd {

struct Path {
  const char* name;
  void (*attend)(const AttendArgs& a, std::span<const KeySpan> spans, const TileMask* mask,
                 int64_t block_k, Workspace& ws);
  void (*exp)(const float* x, float* y, int64_t n);
  int64_t lanes;  // floats per vector register
};

// The path of this process: ATTNKIT_SIMD if set, else the best one the CPU runs. Chosen once;
// throws attnkit::Error (every call) when ATTNKIT_SIMD names a path that is not available.
const Path& active_path();

// Defined by the per-path translation units that this build has (see meson.build).
namespace avx512 { extern const Path path; }
namespace avx2 { extern const Path path; }
namespace sse2 { extern const Path path; }
namespace native { extern const Path path; }
namespace generic { extern const Path path; }

}  // namespace attnkit::simd
