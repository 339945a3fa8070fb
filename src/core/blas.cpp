#include "attnkit/blas.hpp"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace attnkit {

std::string blas_core() {
  const char* c = openblas_get_corename();
  return c ? c : "unknown";
}

void reexec_with_fitting_blas_core(char** argv) {
  if (std::getenv("ATTNKIT_KEEP_BLAS_CORE") || std::getenv("OPENBLAS_CORETYPE")) return;
  const std::string core = blas_core();
  const bool generic = core == "Prescott" || core == "Core2" || core == "Nehalem" || core == "Penryn" ||
                       core == "Dunnington" || core == "Atom" || core == "Katmai" || core == "Coppermine" ||
                       core == "Northwood" || core == "Banias";
  if (!generic) return;
  __builtin_cpu_init();
  const char* want = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    want = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    want = "Haswell";
  if (!want) return;
  setenv("OPENBLAS_CORETYPE", want, 1);
  setenv("ATTNKIT_KEEP_BLAS_CORE", "1", 1);  // never loop
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");  // exec failed: carry on with the generic kernels
}

}  // namespace attnkit
