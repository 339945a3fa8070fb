#pragma once
// Which OpenBLAS kernels run, and a fix for programs on CPUs that OpenBLAS 0.3.21 does not know.
//
// Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise Intel Sapphire/Emerald Rapids and
// falls back to its SSE3 "Prescott" kernels: sgemm 2048³ ran at ~60 GFLOP/s instead of ~256 on
// 2 cores of such a machine. OpenBLAS reads OPENBLAS_CORETYPE only when it is loaded, so the fix
// for a program is to set it and start again.
#include <string>

namespace attnkit {

// The kernel set OpenBLAS chose, e.g. "SkylakeX", "Haswell", "Prescott". Thread-safe.
std::string blas_core();

// For executables only, first thing in main(): when OPENBLAS_CORETYPE is unset, OpenBLAS chose a
// generic core (Prescott, Core2, Nehalem...) and the CPU supports AVX-512 (F, BW, DQ, VL) or
// AVX2 + FMA, re-executes the program (/proc/self/exe, same argv) with OPENBLAS_CORETYPE=SkylakeX
// or Haswell. Does nothing when ATTNKIT_KEEP_BLAS_CORE is set, when OPENBLAS_CORETYPE is set, or
// when re-execution fails (then it just returns). Never returns after a successful re-exec.
void reexec_with_fitting_blas_core(char** argv);

}  // namespace attnkit
