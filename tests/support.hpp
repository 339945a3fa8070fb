#pragma once
// Helpers shared by the test files: random problems and comparison against `reference`.
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "attnkit/attnkit.hpp"

namespace attnkit::test {

// True in the AddressSanitizer build of the test command's second stage. A few full-length
// trained-input cases (n = 2048, O(n²) fp64 oracles) and repeats of a case on other values (more
// input families, more layers) run only in the release stage: under the sanitizer they take
// minutes and check no memory access that the cases kept there do not.
inline constexpr bool sanitized() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#else
  return false;
#endif
}

// Owns q, k, v, out for a problem of the given sizes (dense [B,H,N,D] layout).
struct Owned {
  Tensor q, k, v, out;
  Problem p;
  Owned(int64_t B, int64_t H, int64_t Hkv, int64_t nq, int64_t nk, int64_t d, int64_t dv, uint64_t seed,
        float sd = 1.0f)
      : q(B, H, nq, d), k(B, Hkv, nk, d), v(B, Hkv, nk, dv), out(B, H, nq, dv) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.0f, sd), nv(0.0f, 1.0f);
    for (int64_t i = 0; i < q.numel(); ++i) q.data()[i] = nd(rng);
    for (int64_t i = 0; i < k.numel(); ++i) k.data()[i] = nd(rng);
    for (int64_t i = 0; i < v.numel(); ++i) v.data()[i] = nv(rng);
    p.q = q.view();
    p.k = k.view();
    p.v = v.view();
    p.out = out.view();
  }
};

// Runs `reference` on p (into a fresh tensor) and returns it.
inline Tensor reference_of(const Problem& p) {
  const Shape d = p.dims();
  Tensor ref(d.batch, d.heads, d.n_q, d.d_v);
  Problem pr = p;
  pr.out = ref.view();
  ReferenceBackend().forward(pr);
  return ref;
}

inline double rel_error(const Backend& b, const Problem& p) {
  b.forward(p);
  const Tensor ref = reference_of(p);
  return compare(ConstView(p.out), ref.cview()).rel_fro;
}

// Directory of ../shared/data (set by meson as ATTNKIT_DATA_DIR); empty when absent.
inline std::string data_dir() {
  const char* d = std::getenv("ATTNKIT_DATA_DIR");
  return d ? d : "";
}

// The SIMD path the latest call of a kernel group ("attend", "elementwise", "hamming") ran on, ""
// if none ran yet (attnkit::simd_kernel_paths).
inline std::string kernel_path(const std::string& group) {
  for (const auto& [g, path] : simd_kernel_paths())
    if (g == group) return path;
  return "(no such group)";
}

// The path every kernel must run on: ATTNKIT_SIMD when set (meson runs the family suites once per
// path of the build), else the best one this CPU runs.
// The fp32 path ATTNKIT_SIMD asks for (a precision kernel set, amx or avx512bf16, runs with the
// avx512 path), or the default one.
inline std::string wanted_simd_path() {
  const char* env = std::getenv("ATTNKIT_SIMD");
  if (!env || !*env) return simd_paths().front();
  const std::string e = env;
  return e == "amx" || e == "avx512bf16" ? "avx512" : e;
}

}  // namespace attnkit::test
