#pragma once
// Multi-head attention layer over any backend (library attnkit-layer).
//
//   Q = X·W_Q + b_Q          X [B, n, d_model]            W_Q [d_model, H·d]
//   K = S·W_K + b_K          S = X (self) or C [B, m, d_model] (cross); W_K [d_model, H_kv·d]
//   V = S·W_V + b_V                                        W_V [d_model, H_kv·d_v]
//   O_h = attention(Q_h, K_g, V_g, mask)  per head h, g = h / (H/H_kv)   (any Backend)
//   Y = concat_h(O_h)·W_O + b_O                            W_O [H·d_v, d_model]
//
// Native layout: every weight matrix is row-major [in_features, out_features] (y = x·W). Head h
// owns columns [h·d, (h+1)·d) of W_Q (and likewise for W_K, W_V and rows of W_O), so the projected
// activations [B, n, H·d] are seen as [B, H, n, d] by strides (View::bnhd), without copies.
//
// This is exactly torch.nn.MultiheadAttention(d_model, H, batch_first=True)'s math (scale
// 1/sqrt(d), heads split the same way). Its state_dict is in the transposed (out x in) layout;
// from_torch() takes it as is: in_proj_weight [3·d_model, d_model] (rows W_q; W_k; W_v, each
// out x in), in_proj_bias [3·d_model], out_proj.weight [d_model, d_model] (out x in),
// out_proj.bias [d_model]. Masks: PyTorch's key_padding_mask (True = ignore) with padding at the
// end of each sequence is Mask::key_lengths (number of real keys per batch); the causal
// attn_mask (upper triangle -inf) is Mask::causal. Differences from PyTorch, all documented:
// a query row that sees no key gives zeros here (PyTorch gives NaN); causal with n != m is
// bottom-right aligned (query i sees key j iff j <= i + m - n), as everywhere in attnkit;
// add_bias_kv, add_zero_attn, dropout, kdim/vdim != d_model and arbitrary attn_mask are not
// supported (construct a native layer instead where the shapes differ).
//
// Thread-safety: forward() and weights() are const and may run concurrently; each call
// allocates its own activations (B·n·(H·d + H·d_v) + B·m·H_kv·(d + d_v) floats). Projections are
// OpenBLAS sgemm calls made outside any OpenMP region (OpenBLAS's own threads); the backend runs
// its OpenMP region between them.
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "attnkit/backend.hpp"
#include "attnkit/problem.hpp"

namespace attnkit {

// Dense C-order [batch, seq, width] float32 activations (X, the context C, the output Y).
template <class T>
struct SeqView {
  T* data = nullptr;
  int64_t batch = 0, seq = 0, width = 0;
  operator SeqView<const T>() const { return {data, batch, seq, width}; }
};
using ConstSeq = SeqView<const float>;
using MutSeq = SeqView<float>;

struct MhaConfig {
  int64_t d_model = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;    // 0 = heads; heads % kv_heads == 0 (grouped-query attention)
  int64_t head_dim = 0;    // d; 0 = d_model / heads (must divide)
  int64_t head_dim_v = 0;  // d_v; 0 = head_dim
  std::optional<float> scale;  // unset = 1/sqrt(head_dim), as PyTorch
};

// Native layout (see the top of this file). Biases: empty = none.
struct MhaWeights {
  std::vector<float> wq;  // [d_model, H·d]
  std::vector<float> wk;  // [d_model, H_kv·d]
  std::vector<float> wv;  // [d_model, H_kv·d_v]
  std::vector<float> wo;  // [H·d_v, d_model]
  std::vector<float> bq;  // [H·d] or empty
  std::vector<float> bk;  // [H_kv·d] or empty
  std::vector<float> bv;  // [H_kv·d_v] or empty
  std::vector<float> bo;  // [d_model] or empty
};

// torch.nn.MultiheadAttention's state_dict tensors, in PyTorch's own (out x in) layout.
struct TorchMhaWeights {
  std::vector<float> in_proj_weight;   // [3·d_model, d_model]
  std::vector<float> in_proj_bias;     // [3·d_model] or empty (bias=False)
  std::vector<float> out_proj_weight;  // [d_model, d_model]
  std::vector<float> out_proj_bias;    // [d_model] or empty
};

class MultiHeadAttention {
 public:
  // Throws attnkit::Error naming the first bad size (config value or weight vector length) or a
  // null backend. The weights are copied (W_Q, W_K, W_V side by side into one [d_model, ·]
  // matrix so self-attention projects with one sgemm).
  MultiHeadAttention(const MhaConfig& cfg, const MhaWeights& w, std::shared_ptr<const Backend> backend);
  // Same with a backend made by make_backend(spec), e.g. "exact" or "local:window=256".
  MultiHeadAttention(const MhaConfig& cfg, const MhaWeights& w, std::string_view backend_spec = "exact");

  // Converts PyTorch's layout (transposes each block once). heads must divide d_model; H_kv = H.
  // Throws attnkit::Error for d_model < 1, heads < 1 or not a divisor of d_model, or a weight
  // vector whose length is not the one above (biases may be empty), naming it and the expected
  // length. Thread-safe (a pure function of its arguments).
  static MhaWeights native_from_torch(int64_t d_model, int64_t heads, const TorchMhaWeights& t);
  // native_from_torch then the constructor: throws what either throws.
  static MultiHeadAttention from_torch(int64_t d_model, int64_t heads, const TorchMhaWeights& t,
                                       std::shared_ptr<const Backend> backend);
  static MultiHeadAttention from_torch(int64_t d_model, int64_t heads, const TorchMhaWeights& t,
                                       std::string_view backend_spec = "exact");

  // Self-attention: y [B, n, d_model] from x [B, n, d_model]. mask.key_lengths has B entries in
  // [0, n]. y may alias x (x is fully read before y is written). Throws attnkit::Error for a bad
  // shape, a null pointer or what the backend refuses (e.g. a mask it cannot honour).
  void forward(ConstSeq x, MutSeq y, const Mask& mask = {}) const;
  // Cross-attention: queries from x [B, n, d_model], keys and values from context [B, m, d_model];
  // mask.key_lengths entries in [0, m].
  void forward(ConstSeq x, ConstSeq context, MutSeq y, const Mask& mask = {}) const;

  // Probability matrix of batch b, head h (n x m row-major, rows of fully masked queries are
  // zero) as the backend computes it (Backend::weights; its capability and size limit apply).
  void weights(ConstSeq x, const Mask& mask, int64_t b, int64_t h, float* w) const;  // self
  void weights(ConstSeq x, ConstSeq context, const Mask& mask, int64_t b, int64_t h, float* w) const;

  // The resolved configuration (kv_heads, head_dim, head_dim_v filled in).
  const MhaConfig& config() const { return cfg_; }
  const Backend& backend() const { return *backend_; }

 private:
  struct Activations;
  Activations project(ConstSeq x, const ConstSeq* context, const Mask& mask) const;

  MhaConfig cfg_;
  std::shared_ptr<const Backend> backend_;
  int64_t wq_cols_ = 0, wk_cols_ = 0, wv_cols_ = 0;  // H·d, H_kv·d, H_kv·d_v
  std::vector<float> w_qkv_;   // [d_model, wq_cols + wk_cols + wv_cols]
  std::vector<float> b_qkv_;   // same width, or empty
  std::vector<float> wo_, bo_;
};

}  // namespace attnkit
