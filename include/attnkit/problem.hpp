#pragma once
// The attention problem every backend solves:
//   out[b,h,i,:] = Σ_j softmax_j(scale · q[b,h,i,:]·k[b,g,j,:] + mask) · v[b,g,j,:],  g = h / (H/H_kv)
#include <cstdint>
#include <optional>
#include <vector>

#include "attnkit/tensor.hpp"

namespace attnkit {

struct Mask {
  // Bottom-right aligned causal mask: query i sees key j iff j <= i + n_k - n_q. With n_q > n_k the
  // first n_q - n_k rows see no key at all and produce zeros.
  bool causal = false;
  // Optional, one entry per batch: keys j >= key_lengths[b] are padding. Each entry in [0, n_k].
  // Empty means no padding.
  std::vector<int32_t> key_lengths;
};

// Sizes of a problem: returned by Problem::validate() (causal filled from the mask) and passed,
// without data, to Backend::cost().
struct Shape {
  int64_t batch = 1, heads = 1, kv_heads = 1, n_q = 1, n_k = 1, d = 64, d_v = 64;
  bool causal = false;
  int64_t group() const { return heads / kv_heads; }  // query heads per kv head
};

// Shapes: q [B,H,n_q,d], k [B,H_kv,n_k,d], v [B,H_kv,n_k,d_v], out [B,H,n_q,d_v], H % H_kv == 0.
// n_q != n_k is cross-attention; H_kv < H is grouped-query attention. Every dimension >= 1.
// A query row that sees no key (fully masked) gets an all-zero output row.
// Range: the fp32 backends compute the scores scale·q·k in float32 (`reference` in fp64, where
// finite float inputs cannot overflow). A score beyond ±FLT_MAX (≈ 3.4e38) is not detected: +inf
// makes its row's output NaN (inf − inf in the softmax; with nystrom, whose landmarks mix rows,
// other rows' too), and a row whose every visible score is −inf gets zeros, as if it saw no key.
// Keep |scale·q·k| below that, or use `reference`. (performer and linear never form the scores;
// their float32 limit is their features': attnkit/kernelized.hpp.)
// Thread-safety: a Problem only refers to its tensors; its const member functions only read and may
// be called concurrently.
struct Problem {
  ConstView q, k, v;
  MutView out;
  // Softmax temperature; unset means 1/sqrt(d). Must be finite and > 0.
  std::optional<float> scale;
  Mask mask;

  // Checks every invariant above plus: non-null data, last-axis stride 1, non-negative strides,
  // element offsets that fit in int64, out not overlapping any input nor itself (its axes of size
  // > 1, by increasing stride, each stride past the span of the smaller ones: every dense layout and
  // permutation of one), key_lengths size and range.
  // Inputs may alias rows (zero or small strides: a broadcast); every backend reads them as given.
  // Throws attnkit::Error naming the argument, the value seen and the value expected.
  Shape validate() const;

  // Sizes without checks (call validate() first).
  Shape dims() const;
  float effective_scale() const;

  // End (exclusive) of the keys visible to query row i of batch b: visible keys are
  // [0, key_end(b, i)) — the mask's only shapes are a prefix (padding) and a causal diagonal.
  // Returns a value in [0, n_k]; 0 means the row sees nothing. b in [0, B), i in [0, n_q) on a
  // validated problem: unchecked, never throws.
  int64_t key_end(int64_t b, int64_t i) const {
    int64_t end = k.shape[2];
    if (!mask.key_lengths.empty() && mask.key_lengths[static_cast<size_t>(b)] < end)
      end = mask.key_lengths[static_cast<size_t>(b)];
    if (mask.causal) {
      const int64_t c = i + k.shape[2] - q.shape[2] + 1;
      if (c < end) end = c < 0 ? 0 : c;
    }
    return end;
  }
};

}  // namespace attnkit
