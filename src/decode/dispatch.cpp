// Picks the decode kernels of the SIMD path the process runs (attnkit::simd_path(): the best path
// of the CPU or ATTNKIT_SIMD), so decode and the other kernels always use the same instruction set.
#include <string>

#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "kernel.hpp"

namespace attnkit::decode {

#if ATTNKIT_SIMD_HAS_AVX512
namespace avx512 { extern const Kernels kernels; }
#endif
#if ATTNKIT_SIMD_HAS_AVX2
namespace avx2 { extern const Kernels kernels; }
#endif
#if ATTNKIT_SIMD_HAS_SSE2
namespace sse2 { extern const Kernels kernels; }
#endif
#if ATTNKIT_SIMD_HAS_NATIVE
namespace native { extern const Kernels kernels; }
#endif
#if ATTNKIT_SIMD_HAS_GENERIC
namespace generic { extern const Kernels kernels; }
#endif

namespace {
const Kernels* find(const std::string& name) {
  const Kernels* all[] = {
#if ATTNKIT_SIMD_HAS_AVX512
      &avx512::kernels,
#endif
#if ATTNKIT_SIMD_HAS_AVX2
      &avx2::kernels,
#endif
#if ATTNKIT_SIMD_HAS_SSE2
      &sse2::kernels,
#endif
#if ATTNKIT_SIMD_HAS_NATIVE
      &native::kernels,
#endif
#if ATTNKIT_SIMD_HAS_GENERIC
      &generic::kernels,
#endif
  };
  for (const Kernels* k : all)
    if (name == k->name) return k;
  return nullptr;
}
}  // namespace

const Kernels& kernels() {
  static const Kernels* chosen = find(simd_path());  // simd_path() throws for a bad ATTNKIT_SIMD
  if (!chosen) detail::fail("decode: no kernels for SIMD path ", simd_path(), " in this build");
  return *chosen;
}

}  // namespace attnkit::decode
