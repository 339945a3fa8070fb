#pragma once
// The one interface every attention backend implements.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attnkit/problem.hpp"

namespace attnkit {

// What a backend can honour. forward() throws attnkit::Error, naming the missing capability,
// when a Problem asks for something the backend lacks; it never ignores a part of the Problem.
struct Capabilities {
  bool causal = false;       // Mask::causal
  bool key_lengths = false;  // Mask::key_lengths
  bool cross = false;        // n_q != n_k
  bool gqa = false;          // kv_heads < heads
  bool weights = false;      // Backend::weights() gives the (implied) probability matrix
  // Under Mask::causal, keys a row cannot see have no influence on its output at all, not even on
  // which visible keys it attends to. false for lsh: its bucket sort of every key decides which
  // visible keys share a row's chunk (attnkit/adaptive.hpp); it never attends to a hidden key.
  bool causal_future_independent = true;
};

// Work of one forward call, for reports: floating point operations actually executed and bytes
// moved to and from memory at least once.
struct Cost {
  double flops = 0;
  double bytes = 0;
};


// An a-posteriori error bound that theory gives for a given problem. Rows are indexed
// (b * heads + h) * n_q + i.
struct ErrorBound {
  std::string description;       // which theorem / formula
  std::vector<double> out_l2;    // per row: ||approx_i - exact_i||_2 <= out_l2[row]
  std::vector<double> prob_l1;   // per row, where known: L1 distance of the probability rows
                                 // (empty when the backend has no such figure)
};

// Thread-safety: every member function is const and thread-safe: one backend object may serve
// forward(), cost(), error_bound(), error_bound_rows(), weights() and weights_rows() from many
// threads at once (shared caches inside a backend are locked).
class Backend {
 public:
  virtual ~Backend() = default;

  // Canonical spec string with every default filled in; make_backend(spec()) recreates it.
  virtual std::string spec() const = 0;
  virtual Capabilities capabilities() const = 0;

  // Computes p.out. Validates p first (Problem::validate plus capabilities) and throws
  // attnkit::Error before any work. Thread-safe: one backend object may run forward() from many
  // threads at once on different problems. Uses OpenMP threads inside (omp_get_max_threads()).
  virtual void forward(const Problem& p) const = 0;

  // Flops and bytes of a forward call of this shape. Default: exact attention's count. s is not
  // validated: pass the Shape of a valid problem (Problem::validate()), every size >= 1.
  virtual Cost cost(const Shape& s) const;

  // The bound theory gives for this problem, or nullopt where it gives none. The default returns
  // nullopt without looking at p; backends that give a bound validate p first (check(p)) and so
  // throw attnkit::Error for an invalid problem or a missing capability (e.g. clustered under
  // Mask::causal), as forward() does.
  virtual std::optional<ErrorBound> error_bound(const Problem& p) const;

  // The same bound for the query rows `rows` only (each in [0, n_q), the same rows for every
  // batch and head), indexed (b * heads + h) * rows.size() + t: a check on sampled rows where the
  // full bound would cost an O(n_q·n_k·d) pass. Default: error_bound(p) restricted to `rows`;
  // backends whose bound costs per row override it. Validates p like forward() (also the
  // default) and throws attnkit::Error for that or for a row out of range.
  virtual std::optional<ErrorBound> error_bound_rows(const Problem& p, const std::vector<int64_t>& rows) const;

  // Probability matrix (exact or implied by the approximation) of batch b, head h, written to
  // w as n_q x n_k row-major floats; fully masked rows are zeros. Only for backends with
  // capabilities().weights; others throw attnkit::Error. Also throws (check_weights) for an
  // invalid p, b or h out of range, a null w, or n_q * n_k above kMaxWeights.
  virtual void weights(const Problem& p, int64_t b, int64_t h, float* w) const;

  // The rows `rows` (each in [0, n_q)) of that matrix, written to w as rows.size() x n_k
  // row-major floats. Default: weights() into a scratch matrix, so it throws where weights()
  // does (above kMaxWeights); backends whose rows are independent override it, and then work
  // at any n_k with rows.size() * n_k within kMaxWeights.
  virtual void weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows, float* w) const;

  static constexpr int64_t kMaxWeights = int64_t{1} << 26;  // 64 Mi entries = 256 MiB of floats

 protected:
  // Validates p and that the backend's capabilities cover it; returns the sizes.
  Shape check(const Problem& p) const;
  // check(p) plus the arguments of weights(): b and h in range, w non-null, n_q * n_k within
  // kMaxWeights. Every weights() implementation starts with it.
  Shape check_weights(const Problem& p, int64_t b, int64_t h, const float* w) const;
  // The arguments of weights_rows(): as check_weights, but the limit is on rows.size() * n_k,
  // and every row must lie in [0, n_q).
  Shape check_weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows,
                           const float* w) const;
};

// Exact attention's flop count: 2 * (d + d_v) per visible (query, key) pair and head (QK^T and
// PV): n_q * n_k pairs without a mask; under the causal mask (aligned bottom-right) the pairs it
// leaves visible, about half when n_q = n_k and n_k * (n_k + 1) / 2 when n_q >= n_k. Key padding
// is not counted out. bytes: q, k, v and the output once each, fp32. Never throws.
Cost exact_cost(const Shape& s);

// The exact-equivalent flop count of a problem: exact_cost(p.validate()).flops, so the causal mask
// counts (key padding does not). Every "exact-equivalent GFLOP/s" figure (attnkit run, the sweep's
// gflops, bench/'s GFLOPS_exact_eq) is this divided by the time. Throws what p.validate() throws.
double exact_equivalent_flops(const Problem& p);

}  // namespace attnkit
