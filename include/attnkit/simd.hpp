#pragma once
// Which SIMD code path the kernels run, and the vectorised exp they use.
//
// Every SIMD kernel of attnkit goes through this one choice: the softmax tile kernel (exact,
// local, clustered, pruned, lsh, ring), its reduced-precision variant (exact, local, pruned with
// precision=bf16|int8, kernel set below), the element-wise feature-map kernels (performer, linear),
// the Hamming K-means kernels (clustered) and the decode kernels (decode.hpp).
//
// attnkit is portable by default: the kernels are compiled once per x86-64 instruction set
// (AVX-512 "avx512", AVX2+FMA "avx2", baseline SSE2 "sse2") and the best one the CPU supports is
// picked once, on first use. The environment variable
//
//     ATTNKIT_SIMD=avx512|avx2|sse2|amx|avx512bf16
//
// forces a path (read once per process; a path this CPU or build lacks is an attnkit::Error on
// the first forward()); amx and avx512bf16 name a reduced-precision kernel set and run the avx512
// fp32 path (precision_path()). Built with -Dnative=true the kernels are compiled for the build
// host only (-march=native) and there is a single path, named "native" (ATTNKIT_SIMD may name it
// or be unset). On other CPU families the single path is "generic" (xsimd's best arch at build time).
// See docs/simd.md.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attnkit {

// Name of the path the kernels use in this process ("avx512", "avx2", "sse2", "native", "generic").
// Chosen once; thread-safe. Throws attnkit::Error (every call) when ATTNKIT_SIMD names a path that
// is not available.
std::string simd_path();

// The paths this build has and this CPU can run, best first. Does not look at ATTNKIT_SIMD;
// thread-safe; never throws.
std::vector<std::string> simd_paths();

// Which path the latest call of each group of SIMD kernels ran on, recorded by the kernels
// themselves (so tests and `attnkit run --json` can show that ATTNKIT_SIMD reaches every kernel):
// {"attend", path} the softmax tile kernel, {"elementwise", path} the feature maps of performer and
// linear, {"hamming", path} the clustering of clustered, {"lowp", set} the reduced-precision
// (precision=bf16|int8) tile kernels, whose set is "amx", "avx512bf16" or "portable"; path "" for a
// group not called yet in this process. Thread-safe; does not choose a path (never throws for a bad ATTNKIT_SIMD).
std::vector<std::pair<std::string, std::string>> simd_kernel_paths();

// The kernel set of precision=bf16|int8 (docs/precision.md) in this process: "amx" (AMX tiles),
// "avx512bf16" (AVX512-BF16 + AVX512-VNNI) or "portable" (the same rounding through fp32 / int32
// lanes of the fp32 path). The best one the CPU runs (AMX only when Linux grants the tile state),
// or the one ATTNKIT_SIMD names: amx and avx512bf16 pick that set (with the avx512 fp32 path), any
// fp32 path name picks portable. Chosen once; thread-safe; throws attnkit::Error (every call) when
// ATTNKIT_SIMD names something this CPU cannot run.
std::string precision_path();

// The precision kernel sets this build and CPU can run, fastest first; "portable" is always last.
// Does not look at ATTNKIT_SIMD; never throws.
std::vector<std::string> precision_paths();

// Maximum relative error of simd_exp on [-87.33654, 88.37626] (tested on every path). Below that
// range it returns exactly 0 (so exp(-inf) = 0), above it +inf; NaN stays NaN.
inline constexpr double simd_exp_max_rel_error = 2.0e-7;  // measured 1.18e-7 (10^7 points), every path

// y[i] = exp(x[i]) with the active path's vectorised exp (the one the softmax kernels use).
// Exposed for tests and benchmarks; x and y may alias. Thread-safe. Throws attnkit::Error for
// n < 0, and what simd_path() throws (it picks the path).
void simd_exp(const float* x, float* y, int64_t n);

}  // namespace attnkit
