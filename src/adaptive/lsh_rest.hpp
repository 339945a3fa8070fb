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
  RestSums(int64_t d, int64_t d_v)
      : k_(static_cast<size_t>(d), 0.0), kk_(static_cast<size_t>(d), 0.0), kbar_(static_cast<size_t>(d), 0.0),
        v_(static_cast<size_t>(d_v), 0.0) {}

  // Sums over keys [0, end), added in key order from key 0 whatever rows came before,
  // so a row's sums have the same bits for any split of the rows across threads. Per-channel
  // sums (also of k²) so that the loops vectorise; the channel reductions happen once per new
  // prefix. Precondition end >= 1 (callers pass rows with an unseen visible key; it runs inside
  // OpenMP regions, so it does not throw).
  void advance(const Problem& p, int64_t b, int64_t g, int64_t end) {
    if (end < upto_) {
      std::fill(k_.begin(), k_.end(), 0.0);
      std::fill(kk_.begin(), kk_.end(), 0.0);
      std::fill(v_.begin(), v_.end(), 0.0);
      upto_ = 0;
    }
    if (end == upto_) return;  // the reductions below are those of this prefix
    for (; upto_ < end; ++upto_) {
      const float* kr = p.k.row(b, g, upto_);
      const float* vr = p.v.row(b, g, upto_);
      for (size_t c = 0; c < k_.size(); ++c) {
        const double x = kr[c];
        k_[c] += x;
        kk_[c] += x * x;
      }
      for (size_t c = 0; c < v_.size(); ++c) v_[c] += vr[c];
    }
    const double inv = 1.0 / static_cast<double>(upto_);
    double kbar2 = 0, kk = 0;
    for (size_t c = 0; c < k_.size(); ++c) {
      kbar_[c] = k_[c] * inv;
      kbar2 += kbar_[c] * kbar_[c];
      kk += kk_[c];
    }
    tau2_ = std::max(0.0, kk * inv - kbar2) / static_cast<double>(k_.size());
    inv_ = inv;
  }

  // log of m·exp(scale·q·k̄ + ½·scale²·|q|²·τ²) over the keys [0, upto) (upto >= 1, m >= 1):
  // the mean of exp(s) when the scores of the m unseen keys are normal around the mean key's
  // score with the keys' mean per-channel variance τ² (isotropic).
  double log_mass(const float* q, double scale, int64_t m) const {
    double qk[4] = {0, 0, 0, 0}, qq[4] = {0, 0, 0, 0};  // four chains: no serial add latency
    const size_t d = k_.size(), d4 = d & ~size_t{3};
    for (size_t c = 0; c < d4; c += 4)
      for (size_t u = 0; u < 4; ++u) {
        const double x = q[c + u];
        qk[u] += x * kbar_[c + u];
        qq[u] += x * x;
      }
    for (size_t c = d4; c < d; ++c) {
      const double x = q[c];
      qk[0] += x * kbar_[c];
      qq[0] += x * x;
    }
    const double sqk = (qk[0] + qk[1]) + (qk[2] + qk[3]), sqq = (qq[0] + qq[1]) + (qq[2] + qq[3]);
    return scale * sqk + 0.5 * scale * scale * sqq * tau2_ + std::log(static_cast<double>(m));
  }

  // Mean value v̄ (channel c) over the keys [0, upto).
  double mean_v(size_t c) const { return v_[c] * inv_; }

 private:
  std::vector<double> k_, kk_, kbar_, v_;
  double tau2_ = 0, inv_ = 0;
  int64_t upto_ = 0;
};

}  // namespace attnkit::adaptive
