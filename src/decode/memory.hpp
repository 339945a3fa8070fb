#pragma once
// Internal: the large buffers of decode (the KV cache, the read-bandwidth probe's buffer). Buffers of
// 4 MiB or more are aligned to 2 MiB and, on Linux, marked for transparent huge pages
// (madvise(MADV_HUGEPAGE): this machine's THP mode is "madvise"): a selective backend (pages) reads
// scattered 8 KiB runs of a cache of hundreds of MiB, where 4 KiB pages cost a TLB miss per run.
// The probe gets the same memory so that the ceiling and the decode are measured alike.
#include <cstdint>
#include <memory>

namespace attnkit::decode {

struct FreeBytes {
  void operator()(void* p) const;
};
using Bytes = std::unique_ptr<unsigned char[], FreeBytes>;

// n bytes (at least 64), 64-byte aligned (2 MiB for n >= 4 MiB), uninitialised. Throws std::bad_alloc.
Bytes alloc_large(int64_t n);

}  // namespace attnkit::decode
