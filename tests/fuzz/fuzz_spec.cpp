// libFuzzer target: any spec string gives a backend whose spec() round-trips, or attnkit::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "attnkit/error.hpp"
#include "attnkit/registry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string spec(reinterpret_cast<const char*>(data), size);
  // projection=FILE would read arbitrary paths: keep the fuzzer off the file system.
  if (spec.find("projection") != std::string::npos) return 0;
  try {
    const auto b = attnkit::make_backend(spec);
    const std::string canon = b->spec();
    if (attnkit::make_backend(canon)->spec() != canon) std::abort();
  } catch (const attnkit::Error&) {
  }
  return 0;
}
