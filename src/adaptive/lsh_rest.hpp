#pragma once
// Internal: lsh's rest term (rest=mean, attnkit/adaptive.hpp): running fp64 sums of the keys and
// values [0, end) of one (batch, kv head) and the log of the estimated softmax mass of the keys a
// row did not see. Shared by forward() and weights() so both use the same estimate.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attnkit/problem.hpp"

namespace attnkit::adaptive {

class RestSums {
 public:
  RestSums(int64_t d, int64_t d_v) : k_(static_cast<size_t>(d), 0.0), v_(static_cast<size_t>(d_v), 0.0) {}

  // Sums over keys [0, end), added in key order from key 0 whatever rows came before, so a row's
  // sums have the same bits for any split of the rows across threads.
  void advance(const Problem& p, int64_t b, int64_t g, int64_t end) {
    if (end < upto_) {
      std::fill(k_.begin(), k_.end(), 0.0);
      std::fill(v_.begin(), v_.end(), 0.0);
      kk_ = 0;
      upto_ = 0;
    }
    for (; upto_ < end; ++upto_) {
      const float* kr = p.k.row(b, g, upto_);
      const float* vr = p.v.row(b, g, upto_);
      for (size_t c = 0; c < k_.size(); ++c) {
        const double x = kr[c];
        k_[c] += x;
        kk_ += x * x;
      }
      for (size_t c = 0; c < v_.size(); ++c) v_[c] += vr[c];
    }
  }

  // log of m·exp(scale·q·k̄ + ½·scale²·|q|²·τ²) over the keys [0, upto) (upto >= 1, m >= 1):
  // the mean of exp(s) when the scores of the m unseen keys are normal around the mean key's
  // score with the keys' mean per-channel variance τ² (isotropic).
  double log_mass(const float* q, double scale, int64_t m) const {
    const double inv = 1.0 / static_cast<double>(upto_);
    double qk = 0, qq = 0, kbar2 = 0;
    for (size_t c = 0; c < k_.size(); ++c) {
      const double kb = k_[c] * inv, x = q[c];
      qk += x * kb;
      qq += x * x;
      kbar2 += kb * kb;
    }
    const double tau2 = std::max(0.0, kk_ * inv - kbar2) / static_cast<double>(k_.size());
    return scale * qk + 0.5 * scale * scale * qq * tau2 + std::log(static_cast<double>(m));
  }

  // Mean value v̄ (channel c) over the keys [0, upto).
  double mean_v(size_t c) const { return v_[c] / static_cast<double>(upto_); }

 private:
  std::vector<double> k_, v_;
  double kk_ = 0;
  int64_t upto_ = 0;
};

}  // namespace attnkit::adaptive
