#pragma once
// Kernelized (linear-time) attention: softmax weights exp(s·q·k) replaced by φ(q)·φ(k), so
//   O_i = φ(q_i)·(Σ_j φ(k_j) v_jᵀ) / φ(q_i)·(Σ_j φ(k_j))
// costs O((n_q + n_k)·m·d) per head instead of O(n_q·n_k·d).
//
//   performer  FAVOR+ positive random features (Choromanski et al. 2021, "Rethinking Attention with
//              Performers"): x = q·√s, φ(x) = exp(W x − ‖x‖²/2)/√m, W m×d shared by queries and keys.
//              φ(q)·φ(k) is an unbiased estimator of exp(s·q·k).
//   linear     φ(x) = elu(x) + 1 on the raw rows (no scale, m = d; Katharopoulos et al. 2020).
//
// Spec strings (defaults shown, canonical order):
//   performer:features=256,orthogonal=1,regularized=0,redraw=0,seed=0,chunk=0[,projection=FILE.npy]
//     features     m, the number of random features, 1..65536.
//     orthogonal   1: W is ⌈m/d⌉ blocks of d orthonormal rows (Gram–Schmidt of seeded Gaussian rows,
//                  the last block truncated), each row scaled by an independent χ(d) norm (the norm
//                  of a fresh Gaussian d-vector), so every row is marginally N(0, I_d).
//                  0: iid N(0, I_d) rows.
//     regularized  1: every row scaled to norm √d instead (lower variance, no longer unbiased).
//     redraw       0: one W for the whole call, a function of seed (and d) only.
//                  1: a different W per (batch, kv head), drawn from (seed, b, kv head); query heads
//                  of a grouped-query group share their kv head's W. Still a function of seed only:
//                  the same spec and input give the same output on every call.
//     seed         the only source of randomness (0..2^31−1).
//     chunk        rows per causal chunk, 0..4096 (0 = auto); intra-chunk work is a masked GEMM.
//     projection   a float32 .npy [features, d] holding W (e.g. a trained Performer's) used instead
//                  of drawing one: the output is then fully determined by the input. `features` must
//                  equal the file's row count; d must equal the problem's d (checked in forward);
//                  redraw=1 with a projection file is an error.
//   linear:chunk=0
//     chunk        as performer's: rows per causal chunk, 0..4096 (0 = auto).
//
// Stabilisers (they do not change the mathematical result): a query row's features are divided by
// exp of that row's own max logit (a per-row constant cancels in the row's ratio). Key features share
// ONE constant for all keys of a (batch, kv head) — never a per-key max, which would change the
// relative weights of keys. Keys are processed in chunks with a running maximum; when it grows the
// state (Σφ(k)vᵀ, Σφ(k)) is rescaled by exp(old − new), so every key term always carries the same
// constant; under a causal mask the constant is the running max over the keys absorbed so far, which
// again is common to every key a query sees (it is the max over the keys up to the last row of the
// query's chunk, so a key the query does not see yet may raise it).
// Range: in float32 a feature below e^-87.3 is 0 (the features' exp), and a product φ(q)_l·φ(k)_l
// below FLT_MIN is a subnormal (few bits) or 0: keys whose logits lie that far below the constant,
// e.g. for inputs of large norm (logits W·k·√s − s‖k‖²/2 spread by hundreds: q, k ~ N(0, 6²) at
// d = 32; N(0, 5²) at d = 128, n = 4096). A row that sees n keys loses at most n·m·FLT_MIN of its
// denominator so (FAVOR+ features are <= 1; linear's elu+1 query features are not bounded, so
// there it holds for queries of moderate magnitude); when its denominator is below
// n·m·FLT_MIN / 1e-3, that loss may exceed 1e-3 of the row, and forward(), weights() and
// KernelizedState::query throw attnkit::Error naming the row instead of returning zeros, a ratio
// of subnormals, or weights missing a dominant key. Remedies: scale the inputs down; under the
// causal mask chunk=1 (a row's constant includes the keys up to its chunk's last row, which it may
// not see; with chunk=1 only keys it sees); an exact backend. A key whose ‖k‖² overflows float32
// has logits −inf: features 0.
// A row that sees no key (key_lengths 0, causal rows before the first key) gets zeros; NaN inputs
// propagate, but under the causal mask only to the rows that see them.
//
// Masks: causal (bottom-right aligned as Problem defines, also for n_q != n_k; computed in chunks:
// per chunk one masked intra-chunk product plus the running state), key_lengths (padded keys get
// zero features), cross-attention and grouped-query attention are all supported. There is no
// arbitrary mask in the Problem, so nothing is refused beyond Problem::validate.
//
// Layout: any strides Problem allows. Threads: OpenMP over (batch × kv heads × key segments) for the
// key state and (batch × heads × query chunks) for the outputs, non-causal; causal over (batch × kv
// heads), and when there are fewer than 8 of those also over up to 8 query-row segments (each starts
// from a prefix state; this recomputes the keys' features once more). BLAS is single-threaded inside
// the region. Output is bit-identical for any thread count (segment and chunk boundaries depend only
// on the shape and the spec). Memory: O(threads·(chunk·m + m·d_v) + batch·kv_heads·8·m·d_v), never n².
//
// forward/weights/cost are const and thread-safe. Errors: attnkit::Error naming the argument.
// error_bound: FAVOR+ and elu+1 give no a-posteriori bound (FAVOR+ has only a variance, Lemma 2 of the
// paper, not a bound per row), so error_bound() returns std::nullopt.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnkit/backend.hpp"
#include "attnkit/spec.hpp"

namespace attnkit {

namespace kern {
class FeatureMap;  // internal (src/kernelized/feature_map.hpp)
class Features;
}

struct PerformerOptions {
  int64_t features = 256;
  bool orthogonal = true;
  bool regularized = false;
  bool redraw = false;
  int64_t seed = 0;
  int64_t chunk = 0;
  std::string projection;  // .npy path; empty = draw W from seed
};

struct LinearOptions {
  int64_t chunk = 0;
};

// Shared machinery of `performer` and `linear` (same engine, different feature map).
class KernelizedBackend : public Backend {
 public:
  static constexpr Capabilities kCapabilities{.causal = true, .key_lengths = true, .cross = true, .gqa = true,
                                             .weights = true};
  Capabilities capabilities() const override { return kCapabilities; }
  void forward(const Problem& p) const override;
  // Flops actually executed (projections, the state GEMMs, the output GEMMs, the causal intra-chunk
  // GEMMs; exp counted as one flop each).
  Cost cost(const Shape& s) const override;
  // None: see the header comment.
  std::optional<ErrorBound> error_bound(const Problem&) const override { return std::nullopt; }
  // The implied matrix φ(q_i)·φ(k_j) / Σ_j' φ(q_i)·φ(k_j') over the visible keys, batch b, head h.
  // Row i's key features carry forward()'s constant for that row (the stabiliser above) or, for
  // keys up to an earlier row's chunk, that row's smaller one with the product rescaled: the same
  // underflow as forward() but for products below FLT_MIN. Where neither throws (the range note),
  // weights·V is forward's output to float32 rounding; a row below the floor throws as there.
  // weights_rows gives the same rows to rounding. Time O(n_q·n_k·m) (one GEMM) plus one exp per
  // (row, distinct constant) pair.
  void weights(const Problem& p, int64_t b, int64_t h, float* w) const override;
  void weights_rows(const Problem& p, int64_t b, int64_t h, const std::vector<int64_t>& rows, float* w) const override;

  // Feature dimension m for head dimension d.
  int64_t feature_dim(int64_t d) const;
  // The unstabilised feature vector of one row x (d floats) as used for softmax scale `scale`:
  // performer: exp(W x√s − s‖x‖²/2)/√m with the W of (batch b, kv head g) (b, g matter only with
  // redraw=1); linear: elu(x)+1. For tests and inspection.
  std::vector<float> features(const float* x, int64_t d, float scale, int64_t b = 0, int64_t g = 0) const;
  // W (m×d row-major, unscaled) of (b, g); performer only (linear throws).
  std::vector<float> projection_matrix(int64_t d, int64_t b = 0, int64_t g = 0) const;
  int64_t chunk() const { return chunk_; }
  const kern::FeatureMap& feature_map() const { return *fm_; }

 protected:
  KernelizedBackend(std::shared_ptr<const kern::FeatureMap> fm, int64_t chunk);

 private:
  std::shared_ptr<const kern::FeatureMap> fm_;
  int64_t chunk_;
};

// Throws attnkit::Error for options out of range, an unreadable/mis-shaped projection file, or
// redraw=1 together with a projection file.
class PerformerBackend final : public KernelizedBackend {
 public:
  explicit PerformerBackend(PerformerOptions o = {});
  std::string spec() const override;
  const PerformerOptions& options() const { return opt_; }

 private:
  PerformerOptions opt_;
};

// Throws attnkit::Error for chunk out of [0, 4096].
class LinearBackend final : public KernelizedBackend {
 public:
  explicit LinearBackend(LinearOptions o = {});
  std::string spec() const override;
};

// Recurrent (decode) form of causal kernelized attention for one (batch, kv head): the state
// (S = Σ φ(k)vᵀ, z = Σ φ(k)) absorbs one token at a time. After push(k_0..k_t), query(q_t) equals
// row t of the causal batch result (n_q = n_k) to float rounding. Not thread-safe (one per stream).
class KernelizedState {
 public:
  // scale: unset = 1/√d. b, g select W under redraw=1. The backend must outlive the state.
  // Throws attnkit::Error for d < 1, d_v < 1, b < 0 or g < 0, a scale that is not finite and > 0,
  // and (performer with a projection file) d other than the file's d.
  KernelizedState(const KernelizedBackend& backend, int64_t d, int64_t d_v, std::optional<float> scale = {},
                  int64_t b = 0, int64_t g = 0);
  ~KernelizedState();
  KernelizedState(KernelizedState&&) noexcept;
  KernelizedState& operator=(KernelizedState&&) noexcept;
  // Appends one key (d floats) and value (d_v floats).
  void push(const float* k, const float* v);
  // Attention of one query (d floats) over every key pushed so far, into out (d_v floats); zeros
  // before the first push. Throws attnkit::Error when every pushed key's feature underflowed float32
  // for this query (the range note above), leaving out unwritten.
  void query(const float* q, float* out) const;
  // push(k, v) then query(q, out): one token of causal self-attention.
  void step(const float* q, const float* k, const float* v, float* out) {
    push(k, v);
    query(q, out);
  }
  void reset();
  int64_t tokens() const { return tokens_; }

 private:
  std::unique_ptr<kern::Features> f_;  // scaled W (performer) and the feature kernels
  int64_t d_, d_v_, m_;
  std::vector<float> state_;          // m × (d_v + 1): S with z as the last column
  mutable std::vector<float> phi_;    // scratch: one feature row
  float c_;                           // the key stabiliser the state carries (running max)
  int64_t tokens_ = 0;
};

BackendInfo performer_info();
BackendInfo linear_info();

}  // namespace attnkit
