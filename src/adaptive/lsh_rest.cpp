// lsh's rest=mean prefix sums (lsh_rest.hpp has the definition they follow).
#include "lsh_rest.hpp"

#include <algorithm>
#include <cmath>

namespace attnkit::adaptive {

RestBlocks::RestBlocks(int64_t d, int64_t d_v) : d_(d), d_v_(d_v) {}

void RestBlocks::reset(const Problem& p, int64_t b, int64_t g, int64_t end) {
  p_ = &p;
  b_ = b;
  g_ = g;
  full_ = end / kRestBlock;
  s_.assign(static_cast<size_t>((full_ + 1) * width()), 0.0);
}

// Per-channel sums (also of k²) so that the loops vectorise across channels; every channel's
// keys are added in key order.
void RestBlocks::add_keys(double* s, int64_t j0, int64_t j1) const {
  double* k = s;
  double* kk = s + d_;
  double* v = s + 2 * d_;
  for (int64_t j = j0; j < j1; ++j) {
    const float* kr = p_->k.row(b_, g_, j);
    const float* vr = p_->v.row(b_, g_, j);
    for (int64_t c = 0; c < d_; ++c) {
      const double x = kr[c];
      k[c] += x;
      kk[c] += x * x;
    }
    for (int64_t c = 0; c < d_v_; ++c) v[c] += vr[c];
  }
}

void RestBlocks::sum_block(int64_t u) {
  double* s = s_.data() + (u + 1) * width();
  std::fill(s, s + width(), 0.0);
  add_keys(s, u * kRestBlock, (u + 1) * kRestBlock);
}

void RestBlocks::accumulate() {
  const int64_t w = width();
  for (int64_t u = 0; u < full_; ++u) {
    const double* prev = s_.data() + u * w;
    double* next = s_.data() + (u + 1) * w;
    for (int64_t c = 0; c < w; ++c) next[c] = prev[c] + next[c];  // P_{u+1} = P_u + B_u
  }
}

RestSums::RestSums(const RestBlocks& blocks)
    : bl_(blocks), run_(static_cast<size_t>(blocks.width()), 0.0), kbar_(static_cast<size_t>(blocks.d()), 0.0) {}

void RestSums::advance(int64_t end) {
  const int64_t u = end / kRestBlock;
  if (u != block_ || end < upto_) {  // restart from the block's start: S = P_u
    const double* P = bl_.prefix(u);
    std::copy(P, P + bl_.width(), run_.begin());
    block_ = u;
    upto_ = u * kRestBlock;
  } else if (end == upto_ && inv_ != 0) {
    return;  // the reductions below are those of this prefix
  }
  bl_.add_keys(run_.data(), upto_, end);
  upto_ = end;
  const size_t d = kbar_.size();
  const double inv = 1.0 / static_cast<double>(end);
  double kbar2 = 0, kk = 0;
  for (size_t c = 0; c < d; ++c) {
    kbar_[c] = run_[c] * inv;
    kbar2 += kbar_[c] * kbar_[c];
    kk += run_[d + c];
  }
  tau2_ = std::max(0.0, kk * inv - kbar2) / static_cast<double>(d);
  inv_ = inv;
}

double RestSums::log_mass(const float* q, double scale, int64_t m) const {
  double qk[4] = {0, 0, 0, 0}, qq[4] = {0, 0, 0, 0};  // four chains: no serial add latency
  const size_t d = kbar_.size(), d4 = d & ~size_t{3};
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

}  // namespace attnkit::adaptive
