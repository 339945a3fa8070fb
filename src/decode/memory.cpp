// Large decode buffers: 2 MiB alignment and transparent huge pages (memory.hpp).
#include "memory.hpp"

#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace attnkit::decode {

void FreeBytes::operator()(void* p) const { std::free(p); }

Bytes alloc_large(int64_t n) {
  constexpr size_t kHuge = size_t{2} << 20;
  const bool large = n >= int64_t{4} << 20;
  const size_t align = large ? kHuge : 64;
  size_t bytes = (static_cast<size_t>(n < 64 ? 64 : n) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, bytes);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (large) (void)madvise(p, bytes, MADV_HUGEPAGE);  // a hint: failure only costs speed
#endif
  return Bytes(static_cast<unsigned char*>(p));
}

}  // namespace attnkit::decode
