#pragma once
// Exact attention: `reference` (fp64, the oracle) and `exact` (fast, streaming, float32).
//
// Spec (defaults shown, canonical order; an fp32 spec leaves precision out):
//   reference                      no parameters
//   exact:block_q=0,block_k=0[,precision=fp32|bf16|int8]
//     block_q    0     query rows per tile, in [0, 4096] (0 = auto from d and the caches)
//     block_k    0     keys per tile, in [0, 8192] (0 = auto; fp32 only: bf16 / int8 use 32-key tiles)
//     precision  fp32  fp32 | bf16 | int8 (attnkit/precision.hpp)
#include <vector>

#include "attnkit/backend.hpp"
#include "attnkit/precision.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

// fp64 accumulation, one score row at a time; O(n_k) scratch per thread. Every mask kind, cross,
// GQA, weights. Slow on purpose: it is the oracle for tests and error figures. Every member is
// const and thread-safe; each one taking a Problem validates it as forward() does and throws
// attnkit::Error naming the argument.
class ReferenceBackend final : public Backend {
 public:
  std::string spec() const override { return "reference"; }
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;
  void weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows, float* w) const override;
  // Reference output of the query rows `rows` only (each in [0, n_q)), for checks at sizes where
  // the full reference is too slow: out is dense [batch, heads, rows.size(), d_v] floats.
  // p.out is not touched (it must still be a valid view). Throws attnkit::Error for a row out of range.
  void forward_rows(const Problem& p, const std::vector<int64_t>& rows, float* out) const;
};

struct ExactOptions {
  int64_t block_q = 0;  // query rows per tile; 0 = chosen from d and the caches
  int64_t block_k = 0;  // keys per tile; 0 = chosen from d and the caches (fp32 only: bf16 / int8 use 32-key tiles)
  ComputePrecision precision = ComputePrecision::fp32;  // spec precision=fp32|bf16|int8 (attnkit/precision.hpp)
};

// Streaming (never stores n_q x n_k) online-softmax attention in float32, FlashAttention-style,
// OpenMP over (batch, head, query block), heaviest (causal: last) blocks first, dynamic schedule.
// Every mask kind, cross, GQA, weights. Relative Frobenius error vs reference <= 2e-6 on gaussian
// inputs, on every SIMD path (attnkit/simd.hpp, docs/simd.md).
// Per query block of bq rows and key block of bk keys: S = scale·Q_b·K_bᵀ by a register-blocked
// SIMD micro-kernel reading K and V straight from their (strided) views, running max/sum per row,
// the accumulator rescaled only by exp(m_old − m_new) (exactly 1 when the max did not grow),
// O += P·V_b, one division per output at the end. Causal and key_lengths skip whole key blocks
// (and, inside the diagonal block, whole micro-tiles): causal costs about half.
// Extra memory: O(threads · bq · (bk + d + d_v)) floats, about 0.4 (d = 64) to 0.5 (d = 128) MiB
// per thread with the defaults, whatever n is (measured: 0.7 MiB in all for n = 65536, H = 1,
// d = 64, 2 threads). Block sizes (spec block_q, block_k; 0 = auto): see src/simd/blocks.cpp,
// choose_blocks: bq = 256, bk <= 252 (n_k split into equal tiles), shrunk to fit half the L2
// cache. No BLAS calls.
// precision=bf16|int8 (attnkit/precision.hpp, docs/precision.md): K and V of every (batch, kv head)
// are packed once per call (O(n_k·(d + d_v)) work, that many more bytes held during the call, in
// cost().bytes), then the same query-block tasks run the reduced-precision tile kernels
// (src/simd/lowp.hpp; `attnkit list` names the kernel set). Such a backend has no weights
// (capabilities().weights false; weights() throws) and no error bound: its error is measured
// against `reference` (tests/test_precision.cpp: bf16 <= 1e-2, int8 <= 3e-2 relative Frobenius).
// Thread-safe: forward() may run concurrently from several threads.
class ExactBackend final : public Backend {
 public:
  // Throws attnkit::Error (naming the option, its value and the range above) for an option out
  // of range.
  explicit ExactBackend(ExactOptions o = {});
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;
  void weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows, float* w) const override;
  // exact_cost(s), plus the packed K/V for bf16 / int8.
  Cost cost(const Shape& s) const override;

 private:
  ExactOptions opt_;
};

BackendInfo reference_info();
BackendInfo exact_info();

}  // namespace attnkit
