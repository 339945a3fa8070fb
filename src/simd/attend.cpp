#include "attend.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnkit::simd {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
float* grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}
}  // namespace

float* Workspace::scores(int64_t n) { return grow(s_, n); }
float* Workspace::acc(int64_t n) { return grow(a_, n); }
float* Workspace::rowstats(int64_t n) { return grow(r_, n); }

void PrefixMask::apply(int64_t q0, int64_t nq, int64_t k0, int64_t nk, float* S, int64_t lds) const {
  for (int64_t r = 0; r < nq; ++r) {
    const int64_t e = end(q0 + r);
    for (int64_t c = std::max<int64_t>(0, e - k0); c < nk; ++c) S[r * lds + c] = kNegInf;
  }
}

void attend(const AttendArgs& a, std::span<const KeySpan> spans, const TileMask* mask,
            int64_t block_k, Workspace& ws) {
  const int64_t rows = a.rows, dv = a.d_v;
  float* S = ws.scores(rows * block_k);
  float* acc = ws.acc(rows * dv);
  float* m = ws.rowstats(2 * rows);
  float* l = m + rows;
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, 0.0f);
  std::fill(acc, acc + rows * dv, 0.0f);
  for (const KeySpan& span : spans) {
    for (int64_t k0 = span.begin; k0 < span.end; k0 += block_k) {
      const int64_t nk = std::min(block_k, span.end - k0);
      const TileKind kind = mask ? mask->classify(a.row0, rows, k0, nk) : TileKind::Full;
      if (kind == TileKind::Empty) continue;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(nk),
                  static_cast<int>(a.d), a.scale, a.q, static_cast<int>(a.q_stride), a.k + k0 * a.k_stride,
                  static_cast<int>(a.k_stride), 0.0f, S, static_cast<int>(nk));
      if (kind == TileKind::Partial) mask->apply(a.row0, rows, k0, nk, S, nk);
      for (int64_t r = 0; r < rows; ++r) {
        float* s = S + r * nk;
        float mx = kNegInf;
        bool nan = false;
        for (int64_t c = 0; c < nk; ++c) {
          mx = std::max(mx, s[c]);
          nan |= std::isnan(s[c]);
        }
        if (nan) mx = std::numeric_limits<float>::quiet_NaN();
        if (mx == kNegInf) {  // nothing visible in this tile for this row: contributes nothing
          std::fill(s, s + nk, 0.0f);
          continue;
        }
        const float m_new = std::max(m[r], mx);
        float sum = 0;
        for (int64_t c = 0; c < nk; ++c) {
          s[c] = std::exp(s[c] - m_new);
          sum += s[c];
        }
        if (m_new != m[r] && m[r] != kNegInf) {
          const float f = std::exp(m[r] - m_new);
          l[r] *= f;
          for (int64_t c = 0; c < dv; ++c) acc[r * dv + c] *= f;
        }
        if (nan || std::isnan(m_new)) {
          l[r] = std::numeric_limits<float>::quiet_NaN();
        }
        m[r] = m_new;
        l[r] += sum;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(dv),
                  static_cast<int>(nk), 1.0f, S, static_cast<int>(nk), a.v + k0 * a.v_stride,
                  static_cast<int>(a.v_stride), 1.0f, acc, static_cast<int>(dv));
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* o = a.out + r * a.out_stride;
    const float inv = l[r] > 0 || std::isnan(l[r]) ? 1.0f / l[r] : 0.0f;
    for (int64_t c = 0; c < dv; ++c) o[c] = l[r] > 0 || std::isnan(l[r]) ? acc[r * dv + c] * inv : 0.0f;
  }
}

}  // namespace attnkit::simd
