#pragma once
// Internal: the two feature maps (FAVOR+ and elu+1) and their block kernels, shared by the forward
// engine, weights() and the recurrent state.
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "attnkit/kernelized.hpp"

namespace attnkit::kern {

enum class Kind { Favor, Elu1 };

// What a spec fixes: the kind and, for FAVOR+, how W is obtained.
class FeatureMap {
 public:
  static std::shared_ptr<const FeatureMap> favor(const PerformerOptions& o);  // loads o.projection
  static std::shared_ptr<const FeatureMap> elu1();

  Kind kind() const { return kind_; }
  int64_t dim(int64_t d) const { return kind_ == Kind::Favor ? m_ : d; }
  bool redraw() const { return opt_.redraw; }
  // Unscaled W (m × d) of (batch b, kv head g). Throws attnkit::Error when a projection file's d
  // differs from d. Cached for the shared draw (thread-safe).
  std::vector<float> projection(int64_t d, int64_t b, int64_t g) const;

 private:
  Kind kind_ = Kind::Elu1;
  int64_t m_ = 0;
  PerformerOptions opt_;
  std::vector<float> file_w_;  // from projection=, m × file_d_
  int64_t file_d_ = 0;
  mutable std::mutex mu_;
  mutable std::map<int64_t, std::vector<float>> cache_;  // shared draw per d
};

// One forward call's features: W scaled by √s per (batch, kv head) slot, and the block kernels.
// Read-only after construction (shared by the OpenMP threads).
class Features {
 public:
  // W for every (b < batch, g < kv_heads) slot (one shared slot unless redraw). With only_b >= 0:
  // one slot holding the W of (only_b, only_g), returned by w() for any (b, g).
  Features(const FeatureMap& fm, int64_t d, float scale, int64_t batch, int64_t kv_heads, int64_t only_b = -1,
           int64_t only_g = -1);
  Kind kind() const { return kind_; }
  int64_t m() const { return m_; }
  int64_t d() const { return d_; }
  const float* w(int64_t b, int64_t g) const {
    return ws_.empty() ? nullptr : ws_.data() + (per_slot_ ? (b * kv_heads_ + g) : 0) * m_ * d_;
  }
  // Query features of `rows` rows (row stride ldx) into phi (rows × m): FAVOR+ exp(Wx − max_l(Wx)_l)
  // (the row's own stabiliser; −‖x‖²/2 and 1/√m are per-row constants and cancel); elu+1.
  void queries(const float* x, int64_t ldx, int64_t rows, const float* w, float* phi) const;
  // Key logits Wx − s‖x‖²/2 into phi; returns their max. elu+1: final features, returns 0.
  float key_logits(const float* x, int64_t ldx, int64_t rows, const float* w, float* phi) const;
  // FAVOR+: phi = exp(phi − c) with the (batch, kv head)'s shared constant c. elu+1: nothing.
  void key_finish(float* phi, int64_t rows, float c) const;

 private:
  Kind kind_;
  int64_t m_, d_, kv_heads_;
  float scale_;
  bool per_slot_ = false;
  std::vector<float> ws_;
};

}  // namespace attnkit::kern
