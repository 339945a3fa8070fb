// Centroid probability rows for the improved variant and for weights(): the whole row is needed
// (top-k selection and the row's normaliser), so this computes it at once instead of streaming
// like simd::attend.
#include "centroid_rows.hpp"

#include <cblas.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <limits>

#include "../core/numerics.hpp"

namespace attnkit::clustered {

namespace {
float selection_key(float s) { return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s; }
}  // namespace

void centroid_probs(const CentroidBlock& a, float* P, int64_t topk, int32_t* idx, std::vector<float>& sel) {
  const int64_t n = a.n_vis;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(a.rows), static_cast<int>(n),
              static_cast<int>(a.d), a.scale, a.c, static_cast<int>(a.d), a.k, static_cast<int>(a.k_stride), 0.0f, P,
              static_cast<int>(n));
  const int64_t kk = std::min(topk, n);
  if (static_cast<int64_t>(sel.size()) < n) sel.resize(static_cast<size_t>(n));
  float* key = sel.data();
  for (int64_t r = 0; r < a.rows; ++r) {
    float* s = P + r * n;
    if (kk > 0) {
      // The kk-th largest score thr: a first guess t0 = the kk-th largest of a prefix (the true
      // thr is >= t0), then nth_element over only the scores >= t0 (a branchless filter; few on
      // most rows). Then one ascending scan takes every key above thr and keys equal to it in
      // index order until kk: the order (score descending, index ascending), without sorting.
      const int64_t prefix = std::min(n, std::max<int64_t>(1024, 8 * kk));
      for (int64_t j = 0; j < prefix; ++j) key[j] = selection_key(s[j]);
      std::nth_element(key, key + (kk - 1), key + prefix, std::greater<float>());
      const float t0 = key[kk - 1];
      int64_t cand = 0;
      for (int64_t j = 0; j < n; ++j) {
        const float x = selection_key(s[j]);
        key[cand] = x;
        cand += x >= t0;
      }
      std::nth_element(key, key + (kk - 1), key + cand, std::greater<float>());
      const float thr = key[kk - 1];
      int64_t above = 0;
      for (int64_t j = 0; j < n; ++j) above += selection_key(s[j]) > thr;
      int64_t ties = kk - above, t = 0;
      int32_t* out = idx + r * topk;
      for (int64_t j = 0; j < n && t < kk; ++j) {
        const float x = selection_key(s[j]);
        if (x > thr || (x == thr && ties-- > 0)) out[t++] = static_cast<int32_t>(j);
      }
    }
    numerics::softmax_row(s, n);
  }
}

void split_topk(const CentroidBlock& a, float* P, int64_t topk, const int32_t* idx, float* prob, float* mass,
                float* rest) {
  const int64_t n = a.n_vis, kk = std::min(topk, n);
  for (int64_t r = 0; r < a.rows; ++r) {
    float* p = P + r * n;
    float m = 0;
    for (int64_t t = 0; t < kk; ++t) {
      float& x = p[idx[r * topk + t]];
      prob[r * topk + t] = x;
      m += x;
      x = 0;
    }
    mass[r] = m;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(a.rows), static_cast<int>(a.d_v),
              static_cast<int>(n), 1.0f, P, static_cast<int>(n), a.v, static_cast<int>(a.v_stride), 0.0f, rest,
              static_cast<int>(a.d_v));
}

}  // namespace attnkit::clustered
