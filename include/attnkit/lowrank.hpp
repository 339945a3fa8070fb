#pragma once
// Low-rank attention: the n_q × n_k probability matrix replaced by a product through a small
// inner dimension, O((n_q + n_k)·m·d) per head instead of O(n_q·n_k·d).
//
//   nystrom    Nyströmformer (Xiong et al. 2021). Per (batch, head), with s the scale and n the
//              visible keys of the batch (key_lengths; all n_k without padding):
//                landmarks  Q̃ [m_q × d]: means of m_q = min(M, n_q) contiguous segments of the
//                           queries; K̃ [m_k × d]: means of m_k = min(M, n) contiguous segments of
//                           the visible keys. Segment i of r rows into m is rows
//                           [⌊i·r/m⌋, ⌊(i+1)·r/m⌋): ⌊r/m⌋ or ⌈r/m⌉ rows, r need not be divisible.
//                F = softmax(s·Q K̃ᵀ) [n_q × m_k], A = softmax(s·Q̃ K̃ᵀ) [m_q × m_k],
//                B = softmax(s·Q̃ Kᵀ) [m_q × n, the visible keys only]
//                out = F · Z · (B V), Z ≈ pinv(A) [m_k × m_q] by I iterations of
//                  Z ← ¼ Z (13I − AZ (15I − AZ (7I − AZ))),
//                  Z₀ = Aᵀ / (max_i Σ_j |A_ij| · max_j Σ_i |A_ij|), per (batch, head).
//              The iteration runs in double precision (A and B·V are rounded float products).
//              M ≥ n (and M ≥ n_q) makes F = A = B the exact probability matrix P and
//              out = P·pinv(P)·P·V = P·V: exact attention up to the convergence of the iteration
//              (20 iterations: 1e-3 on the tests' inputs). The paper's learned depthwise-conv skip
//              connection has no untrained form and is not part of this backend.
//   linformer  Linformer (Wang et al. 2020) with its shared projection: per batch, with n the
//              visible keys, E [K × n] a Gaussian matrix with entries N(0, 1/K) projects the keys
//              and the values along the sequence axis: out = softmax(s·Q (E K)ᵀ) (E V).
//              The paper learns E in training; a random E is the only training-free form (its
//              error is that of a random projection, not of a trained Linformer).
//              E is one matrix for every batch and head (the same E for K and V), a function of
//              (seed, K) only: E[r][c] for the first n columns, so a batch with fewer visible keys
//              uses a prefix of the columns. Entry pair (r, 2t), (r, 2t+1) is Box–Muller of one
//              64-bit hash, with mix() the splitmix64 finaliser
//                mix(x) = x += 0x9E3779B97F4A7C15; x = (x ^ x>>30)·0xBF58476D1CE4E5B9;
//                         x = (x ^ x>>27)·0x94D049BB133111EB; x ^ x>>31   (mod 2^64)
//                h = mix(mix(mix(seed) ^ r) ^ t),
//                u1 = ((h>>40) + 0.5)/2^24, u2 = ((h & 0xFFFFFF) + 0.5)/2^24,
//                E[r][2t] = √(−2 ln u1)·cos(2π u2)/√K, E[r][2t+1] = √(−2 ln u1)·sin(2π u2)/√K,
//              evaluated in float (xsimd log, sqrt, sincos: within a few float roundings of the
//              exact value; |entries| ≤ 5.9/√K). LinformerBackend::projection(n) returns it.
//
// Spec strings (defaults shown, canonical order):
//   nystrom:landmarks=64,iterations=6
//     landmarks    M, 1..65536
//     iterations   I, 0..100 (0: Z = Z₀)
//   linformer:k=256,seed=0
//     k            K, the projected length, 1..65536
//     seed         0..2^31−1, the only source of randomness
//
// Masks: key_lengths (padding keys take no part: not in K̃, B, E K or E V), cross-attention
// (n_q != n_k) and grouped-query attention (the query heads of a group share their kv head's
// keys and values) are supported. The causal mask is not: landmark pooling (and E) mixes future
// keys into every row. forward() and weights() throw attnkit::Error naming mask.causal. A batch
// whose key_lengths entry is 0 gets all-zero output rows; NaN inputs propagate.
//
// weights(p, b, h, w): the implied matrix, nystrom F·Z·B, linformer softmax(s·Q (E K)ᵀ)·E, over
// the visible keys (padding columns 0). These are not probability rows: their sums are not 1
// (Nyström's close to 1 where Z ≈ pinv(A)) and entries may be NEGATIVE (Z has negative entries;
// E is Gaussian).
//
// cost(): flops actually executed (landmark means, the products, one flop per exp, the
// iteration; for linformer one per drawn entry of E); bytes: inputs and output once.
// error_bound(): std::nullopt (no a-posteriori bound is known for either).
//
// Layout: any strides Problem allows; the products run through OpenBLAS sgemm (dgemm for the
// iteration) with BLAS single-threaded inside OpenMP regions over (batch × heads) and over
// (batch × heads × query chunks of 256 rows). Output is bit-identical for any thread count.
// Memory: nystrom O(threads·M·n + batch·heads·M·(d + d_v)); linformer O(K·n + batch·kv_heads·K·
// (d + d_v) + threads·256·K). forward/weights/cost are const and thread-safe. Errors:
// attnkit::Error naming the argument (options out of range in the constructors).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attnkit/backend.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

struct NystromOptions {
  int64_t landmarks = 64;
  int64_t iterations = 6;
};

struct LinformerOptions {
  int64_t k = 256;
  int64_t seed = 0;
};

class NystromBackend final : public Backend {
 public:
  // Throws attnkit::Error for an option out of the ranges above.
  explicit NystromBackend(NystromOptions o = {});
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  Cost cost(const Shape& s) const override;
  std::optional<ErrorBound> error_bound(const Problem&) const override { return std::nullopt; }
  // F·Z·B of (b, h): may be negative, rows need not sum to 1 (see above).
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;
  const NystromOptions& options() const { return opt_; }

 private:
  NystromOptions opt_;
};

class LinformerBackend final : public Backend {
 public:
  // Throws attnkit::Error for an option out of the ranges above.
  explicit LinformerBackend(LinformerOptions o = {});
  std::string spec() const override;
  Capabilities capabilities() const override;
  void forward(const Problem& p) const override;
  Cost cost(const Shape& s) const override;
  std::optional<ErrorBound> error_bound(const Problem&) const override { return std::nullopt; }
  // softmax(s·Q (E K)ᵀ)·E of (b, h): may be negative, rows need not sum to 1.
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;
  // E [k × n] row-major, as forward uses it (n >= 0; throws attnkit::Error for n < 0 or k·n
  // above 2^31 entries).
  std::vector<float> projection(int64_t n) const;
  const LinformerOptions& options() const { return opt_; }

 private:
  LinformerOptions opt_;
};

BackendInfo nystrom_info();
BackendInfo linformer_info();

}  // namespace attnkit
