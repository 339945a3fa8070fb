#include "common.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attnkit/simd.hpp"

namespace attnkit::lowrank {

void segment_means(const float* x, int64_t ld, int64_t r, int64_t d, int64_t m, float* out) {
  std::vector<double> acc(static_cast<size_t>(d));
  for (int64_t i = 0; i < m; ++i) {
    const int64_t lo = segment_begin(r, m, i), hi = segment_begin(r, m, i + 1);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = lo; j < hi; ++j) {
      const float* row = x + j * ld;
      for (int64_t c = 0; c < d; ++c) acc[static_cast<size_t>(c)] += row[c];
    }
    const double inv = 1.0 / static_cast<double>(hi - lo);
    for (int64_t c = 0; c < d; ++c) out[i * d + c] = static_cast<float>(acc[static_cast<size_t>(c)] * inv);
  }
}

void exp_rows(float* x, int64_t rows, int64_t cols, int64_t ld, double* sums) {
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * ld;
    // Eight running maxima / sums: lets the compiler vectorise without reassociation flags.
    float mx[8];
    std::fill(mx, mx + 8, -INFINITY);
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      for (int u = 0; u < 8; ++u) mx[u] = std::max(mx[u], row[j + u]);
    float m = -INFINITY;
    for (int u = 0; u < 8; ++u) m = std::max(m, mx[u]);
    for (; j < cols; ++j) m = std::max(m, row[j]);
    if (std::isnan(m) || m == -INFINITY) m = 0;  // NaN rows stay NaN through the exp below
    for (j = 0; j < cols; ++j) row[j] -= m;
    simd_exp(row, row, cols);
    float s8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (j = 0; j + 8 <= cols; j += 8)
      for (int u = 0; u < 8; ++u) s8[u] += row[j + u];
    double s = 0;
    for (int u = 0; u < 8; ++u) s += s8[u];
    for (; j < cols; ++j) s += row[j];
    sums[i] = s;
  }
}

void gemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
             float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
              alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), 0.0f, c, static_cast<int>(ldc));
}

void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), 0.0f, c,
              static_cast<int>(ldc));
}

void divide_rows(float* x, int64_t rows, int64_t cols, int64_t ld, const double* sums) {
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * ld;
    const float inv = sums[i] == 0 ? 0.0f : static_cast<float>(1.0 / sums[i]);
    for (int64_t j = 0; j < cols; ++j) row[j] = sums[i] == 0 ? 0.0f : row[j] * inv;
  }
}

void zero_rows(const Problem& p, int64_t b, int64_t h, int64_t n_q, int64_t d_v) {
  for (int64_t i = 0; i < n_q; ++i) {
    float* row = p.out.row(b, h, i);
    std::fill(row, row + d_v, 0.0f);
  }
}

}  // namespace attnkit::lowrank
