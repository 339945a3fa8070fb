// Picks the SIMD path once per process: ATTNKIT_SIMD if set, else the best one the CPU runs.
// Which paths exist is decided by the build (src/simd/meson.build defines ATTNKIT_SIMD_HAS_*);
// CPU support comes from xsimd's CPUID probe.
#include <xsimd/xsimd.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "paths.hpp"

namespace attnkit::simd {

namespace {

// Paths of this build that this CPU can run, best first.
std::vector<const Path*> runnable() {
  std::vector<const Path*> out;
  [[maybe_unused]] const auto cpu = xsimd::available_architectures();
#if ATTNKIT_SIMD_HAS_NATIVE
  out.push_back(&native::path);
#endif
#if ATTNKIT_SIMD_HAS_AVX512 || ATTNKIT_SIMD_HAS_AVX2
  // Both paths are built with -mpopcnt (the Hamming kernels); every AVX2 CPU has it, but xsimd
  // does not report it, so check.
  __builtin_cpu_init();
  [[maybe_unused]] const bool popcnt = __builtin_cpu_supports("popcnt");
#endif
#if ATTNKIT_SIMD_HAS_AVX512
  if (cpu.avx512bw && popcnt) out.push_back(&avx512::path);
#endif
#if ATTNKIT_SIMD_HAS_AVX2
  if (cpu.fma3_avx2 && popcnt) out.push_back(&avx2::path);
#endif
#if ATTNKIT_SIMD_HAS_SSE2
  if (cpu.sse2) out.push_back(&sse2::path);
#endif
#if ATTNKIT_SIMD_HAS_GENERIC
  out.push_back(&generic::path);
#endif
  return out;
}

struct Choice {
  const Path* path = nullptr;
  std::string error;  // non-empty when ATTNKIT_SIMD asks for something unavailable
};

Choice choose() {
  const std::vector<const Path*> paths = runnable();
  Choice ch;
  const char* env = std::getenv("ATTNKIT_SIMD");
  if (!env || !*env) {
    if (paths.empty())
      ch.error = "attnkit: no SIMD path of this build runs on this CPU";
    else
      ch.path = paths.front();
    return ch;
  }
  // A reduced-precision kernel set's name: its fp32 kernels are the avx512 path's. Whether the
  // set itself runs here is lowp.cpp's question (lowp_path_name() throws when it does not).
  const std::string want = is_lowp_set_name(env) ? "avx512" : env;
  std::string names;
  for (const Path* p : paths) {
    if (want == p->name) {
      ch.path = p;
      return ch;
    }
    if (!names.empty()) names += '|';
    names += p->name;
  }
  ch.error = "ATTNKIT_SIMD=" + std::string(env) + " is not available in this build on this CPU; expected one of " +
             names + " (or unset)";
  return ch;
}

}  // namespace

const char* kernel_path[kKernelGroups] = {};

const char* last_path(Kernel k) {
  const char* p = __atomic_load_n(&kernel_path[static_cast<int>(k)], __ATOMIC_RELAXED);
  return p ? p : "";
}

const Path& active_path() {
  static const Choice choice = choose();
  if (!choice.path) throw Error(choice.error);
  return *choice.path;
}

}  // namespace attnkit::simd

namespace attnkit {

std::string simd_path() { return simd::active_path().name; }

std::vector<std::string> simd_paths() {
  std::vector<std::string> out;
  for (const simd::Path* p : simd::runnable()) out.emplace_back(p->name);
  return out;
}

std::vector<std::pair<std::string, std::string>> simd_kernel_paths() {
  return {{"attend", simd::last_path(simd::Kernel::attend)},
          {"elementwise", simd::last_path(simd::Kernel::elementwise)},
          {"hamming", simd::last_path(simd::Kernel::hamming)},
          {"lowp", simd::last_path(simd::Kernel::lowp)}};
}

void simd_exp(const float* x, float* y, int64_t n) {
  if (n < 0) detail::fail("simd_exp: n=", n, "; expected n >= 0");
  simd::active_path().exp(x, y, n);
}

}  // namespace attnkit
