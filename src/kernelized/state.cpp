// KernelizedState: the recurrent (one token at a time) form of causal kernelized attention; and the
// underflow error every kernelized path throws (state_ops.hpp: check_denominator).
#include <cmath>
#include <string>

#include "attnkit/error.hpp"
#include "attnkit/kernelized.hpp"
#include "feature_map.hpp"
#include "state_ops.hpp"

namespace attnkit {

namespace kern {
void fail_underflow(Kind kind, const std::string& row, double den, double floor, bool chunked) {
  const char* what = "float32 features or their products underflowed, and what was lost may exceed 1e-3 of the "
                     "row; ";
  if (kind == Kind::Favor)
    detail::fail("performer: ", row, " sees keys, but the denominator Σ φ(q)·φ(k) of its weights is ", den, ", below ",
                 floor, " (keys · features · FLT_MIN / 1e-3): ", what,
                 "the feature logits W·x·√s − s‖x‖²/2 of the keys it sees lie far (tens of units in natural log) "
                 "below the stabiliser, or the query's features are that small where the keys' are not; expected "
                 "inputs of smaller norm (scale q and k down)",
                 chunked ? ", a smaller chunk (chunk=1: a row's key constant then comes only from keys it sees)" : "",
                 " or an exact backend");
  detail::fail("linear: ", row, " sees keys, but the denominator Σ φ(q)·φ(k) of its weights is ", den, ", below ", floor,
               " (keys · features · FLT_MIN / 1e-3): ", what,
               "elu+1 features of large negative channels (elu(x) + 1 = e^x below 0) are that small; expected inputs of "
               "smaller magnitude or an exact backend");
}

std::string row_name(int64_t b, int64_t h, int64_t i) {
  return "query row " + std::to_string(i) + " of batch " + std::to_string(b) + ", head " + std::to_string(h);
}
}  // namespace kern

KernelizedState::KernelizedState(const KernelizedBackend& backend, int64_t d, int64_t d_v, std::optional<float> scale,
                                 int64_t b, int64_t g)
    : d_(d), d_v_(d_v), m_(0), c_(-INFINITY) {
  if (d < 1) detail::fail("KernelizedState: d=", d, "; expected d >= 1");
  if (d_v < 1) detail::fail("KernelizedState: d_v=", d_v, "; expected d_v >= 1");
  if (b < 0 || g < 0) detail::fail("KernelizedState: b=", b, ", g=", g, "; expected b >= 0 and g >= 0");
  const float s = scale ? *scale : 1.0f / std::sqrt(static_cast<float>(d));
  if (!(s > 0) || !std::isfinite(s)) detail::fail("KernelizedState: scale=", s, "; expected a finite value > 0");
  f_ = std::make_unique<kern::Features>(backend.feature_map(), d, s, 1, 1, b, g);
  m_ = f_->m();
  state_.assign(static_cast<size_t>(m_ * (d_v + 1)), 0.0f);
  phi_.resize(static_cast<size_t>(m_));
}

KernelizedState::~KernelizedState() = default;
KernelizedState::KernelizedState(KernelizedState&&) noexcept = default;
KernelizedState& KernelizedState::operator=(KernelizedState&&) noexcept = default;

void KernelizedState::push(const float* k, const float* v) {
  const float cm = f_->key_logits(k, d_, 1, f_->w(0, 0), phi_.data());
  f_->key_finish(phi_.data(), 1, kern::raise_constant(state_.data(), m_ * (d_v_ + 1), c_, cm));
  for (int64_t l = 0; l < m_; ++l) {
    float* row = state_.data() + l * (d_v_ + 1);
    const float p = phi_[static_cast<size_t>(l)];
    for (int64_t c = 0; c < d_v_; ++c) row[c] += p * v[c];
    row[d_v_] += p;
  }
  ++tokens_;
}

void KernelizedState::query(const float* q, float* out) const {
  f_->queries(q, d_, 1, f_->w(0, 0), phi_.data());
  std::vector<float> aug(static_cast<size_t>(d_v_ + 1), 0.0f);
  for (int64_t l = 0; l < m_; ++l) {
    const float* row = state_.data() + l * (d_v_ + 1);
    const float p = phi_[static_cast<size_t>(l)];
    for (int64_t c = 0; c <= d_v_; ++c) aug[static_cast<size_t>(c)] += p * row[c];
  }
  kern::finish_rows(aug.data(), 1, d_v_, out, d_v_, f_->kind(), m_, false, [&](int64_t) { return tokens_; },
                    [&](int64_t) { return "the query after " + std::to_string(tokens_) + " keys"; });
}

void KernelizedState::reset() {
  std::fill(state_.begin(), state_.end(), 0.0f);
  c_ = -INFINITY;
  tokens_ = 0;
}

}  // namespace attnkit
