// Linked into the test executables that meson runs once per SIMD path: when ATTNKIT_SIMD names a
// path this CPU cannot run, exit with 77 (meson's "skipped") before Catch2 starts.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "attnkit/simd.hpp"

namespace {
const bool checked = [] {
  const char* env = std::getenv("ATTNKIT_SIMD");
  if (env && *env) {
    // An fp32 path, or a precision kernel set (amx, avx512bf16: they run with the avx512 path).
    const auto paths = attnkit::simd_paths(), sets = attnkit::precision_paths();
    const std::string want = env;
    const bool runs = std::find(paths.begin(), paths.end(), want) != paths.end() ||
                      (want != "portable" && std::find(sets.begin(), sets.end(), want) != sets.end());
    if (!runs) {
      std::fprintf(stderr, "ATTNKIT_SIMD=%s: this CPU/build cannot run that path; skipped\n", env);
      std::_Exit(77);
    }
  }
  return true;
}();
}  // namespace
