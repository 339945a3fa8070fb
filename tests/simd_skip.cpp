// Linked into the test executables that meson runs once per SIMD path: when ATTNKIT_SIMD names a
// path this CPU cannot run, exit with 77 (meson's "skipped") before Catch2 starts. Also when it
// names the path the default run (no ATTNKIT_SIMD) already uses: that run is the same test, and
// the whole test command has a 30-minute budget.
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
    // The (fp32 path, precision kernel set) pair of this run and of the default run.
    const bool is_set = want == "amx" || want == "avx512bf16";
    const std::string run_path = is_set ? "avx512" : want, run_set = is_set ? want : "portable";
    if (run_path == paths.front() && run_set == sets.front()) {
      std::fprintf(stderr, "ATTNKIT_SIMD=%s: the default run of this suite used that path already; skipped\n", env);
      std::_Exit(77);
    }
  }
  return true;
}();
}  // namespace
