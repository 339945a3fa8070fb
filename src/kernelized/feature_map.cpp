#include "feature_map.hpp"

#include <cblas.h>

#include <cmath>

#include "../simd/elementwise.hpp"
#include "attnkit/error.hpp"
#include "attnkit/npy.hpp"
#include "projection.hpp"

namespace attnkit::kern {

// The element-wise kernels run on the process's SIMD path (src/simd, ATTNKIT_SIMD).
using simd::add_and_max;
using simd::elu_plus_one;
using simd::exp_shift;
using simd::max_of;

std::shared_ptr<const FeatureMap> FeatureMap::favor(const PerformerOptions& o) {
  auto fm = std::make_shared<FeatureMap>();
  fm->kind_ = Kind::Favor;
  fm->m_ = o.features;
  fm->opt_ = o;
  if (!o.projection.empty()) {
    if (o.redraw)
      detail::fail("performer: redraw=1 with projection=", o.projection,
                   "; expected redraw=0 (a projection file fixes W)");
    NpyArray a = read_npy(o.projection);
    if (a.dtype != NpyArray::DType::Float32 || a.shape.size() != 2)
      detail::fail("performer: projection=", o.projection, ": expected a float32 array of shape [features, d]");
    if (a.shape[0] != o.features)
      detail::fail("performer: projection=", o.projection, " has ", a.shape[0], " rows but features=", o.features,
                   "; expected features=", a.shape[0]);
    if (a.shape[1] < 1) detail::fail("performer: projection=", o.projection, ": d is 0; expected d >= 1");
    for (float x : a.f32)
      if (!std::isfinite(x))
        detail::fail("performer: projection=", o.projection, ": non-finite entry ", x, "; expected finite values");
    fm->file_d_ = a.shape[1];
    fm->file_w_ = std::move(a.f32);
  }
  return fm;
}

std::shared_ptr<const FeatureMap> FeatureMap::elu1() { return std::make_shared<FeatureMap>(); }

std::vector<float> FeatureMap::projection(int64_t d, int64_t b, int64_t g) const {
  if (kind_ != Kind::Favor) detail::fail("linear: has no projection matrix; expected a performer backend");
  if (!file_w_.empty()) {
    if (d != file_d_)
      detail::fail("q: d is ", d, " but performer projection=", opt_.projection, " has d=", file_d_,
                   "; expected d=", file_d_);
    return file_w_;
  }
  if (opt_.redraw) {
    const uint64_t stream = 1 + ((static_cast<uint64_t>(b) << 32) | static_cast<uint64_t>(g));
    return draw_projection(m_, d, opt_.orthogonal, opt_.regularized, static_cast<uint64_t>(opt_.seed), stream);
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(d);
  if (it == cache_.end())
    it = cache_.emplace(d, draw_projection(m_, d, opt_.orthogonal, opt_.regularized,
                                           static_cast<uint64_t>(opt_.seed), 0)).first;
  return it->second;
}

Features::Features(const FeatureMap& fm, int64_t d, float scale, int64_t batch, int64_t kv_heads, int64_t only_b,
                   int64_t only_g)
    : kind_(fm.kind()), m_(fm.dim(d)), d_(d), kv_heads_(kv_heads), scale_(scale) {
  if (kind_ != Kind::Favor) return;
  if (only_b >= 0) {
    const std::vector<float> w = fm.projection(d, only_b, only_g);
    const float rs = std::sqrt(scale);
    ws_.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) ws_[i] = w[i] * rs;
    return;
  }
  per_slot_ = fm.redraw();
  const int64_t slots = per_slot_ ? batch * kv_heads : 1;
  ws_.resize(static_cast<size_t>(slots * m_ * d_));
  const float rs = std::sqrt(scale);  // x = q·√s, so W·x = (√s·W)·q
  for (int64_t t = 0; t < slots; ++t) {
    const std::vector<float> w = fm.projection(d, per_slot_ ? t / kv_heads : 0, per_slot_ ? t % kv_heads : 0);
    float* dst = ws_.data() + t * m_ * d_;
    for (int64_t i = 0; i < m_ * d_; ++i) dst[i] = w[static_cast<size_t>(i)] * rs;
  }
}

void Features::queries(const float* x, int64_t ldx, int64_t rows, const float* w, float* phi) const {
  if (kind_ == Kind::Elu1) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * ldx;
      float* pr = phi + r * m_;
      for (int64_t c = 0; c < m_; ++c) pr[c] = xr[c];
      elu_plus_one(pr, m_);
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(m_),
              static_cast<int>(d_), 1.0f, x, static_cast<int>(ldx), w, static_cast<int>(d_), 0.0f, phi,
              static_cast<int>(m_));
  for (int64_t r = 0; r < rows; ++r) {
    float* pr = phi + r * m_;
    exp_shift(pr, m_, max_of(pr, m_));
  }
}

float Features::key_logits(const float* x, int64_t ldx, int64_t rows, const float* w, float* phi) const {
  if (kind_ == Kind::Elu1) {
    queries(x, ldx, rows, w, phi);
    return 0.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(m_),
              static_cast<int>(d_), 1.0f, x, static_cast<int>(ldx), w, static_cast<int>(d_), 0.0f, phi,
              static_cast<int>(m_));
  float mx = -INFINITY;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    const float sq = cblas_sdot(static_cast<int>(d_), xr, 1, xr, 1);
    const float c = add_and_max(phi + r * m_, m_, -0.5f * scale_ * sq);
    mx = c > mx ? c : mx;
  }
  return mx;
}

void Features::key_finish(float* phi, int64_t rows, float c) const {
  // c = -inf: every logit so far is -inf (keys whose ‖k‖² overflows float32): their features are 0,
  // not exp(-inf + inf) = NaN, which would poison the state of every later row.
  if (kind_ == Kind::Favor) exp_shift(phi, rows * m_, c == -INFINITY ? 0.0f : c);
}

}  // namespace attnkit::kern
