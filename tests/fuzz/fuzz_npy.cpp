// libFuzzer target: the .npy parser must reject or accept any byte string without crashing or
// allocating beyond the limit.
#include <cstddef>
#include <cstdint>

#include "attnkit/error.hpp"
#include "attnkit/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const attnkit::NpyArray a = attnkit::parse_npy(data, size, "fuzz", int64_t{1} << 20);
    (void)a.numel();
  } catch (const attnkit::Error&) {
  }
  return 0;
}
