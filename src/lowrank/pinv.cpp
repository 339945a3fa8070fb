#include "pinv.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace attnkit::lowrank {

namespace {

// C [m × n] = alpha · A [m × k] · B [k × n], all contiguous.
void dgemm(int64_t m, int64_t n, int64_t k, double alpha, const double* a, const double* b, double* c) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
              alpha, a, static_cast<int>(k), b, static_cast<int>(n), 0.0, c, static_cast<int>(n));
}

// x ← c·I − x for a square r × r matrix.
void shift_negate(double* x, int64_t r, double c) {
  for (int64_t i = 0; i < r * r; ++i) x[i] = -x[i];
  for (int64_t i = 0; i < r; ++i) x[i * r + i] += c;
}

}  // namespace

void newton_schulz_pinv(const double* a, int64_t rows, int64_t cols, int64_t iterations, double* z,
                        std::vector<double>& scratch) {
  // Z₀: the norms of this A only (a norm over all heads would start most heads far too small).
  double row_max = 0, col_max = 0;
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::fabs(a[i * cols + j]);
    row_max = std::max(row_max, s);
  }
  for (int64_t j = 0; j < cols; ++j) {
    double s = 0;
    for (int64_t i = 0; i < rows; ++i) s += std::fabs(a[i * cols + j]);
    col_max = std::max(col_max, s);
  }
  const double norm = row_max * col_max;
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) z[j * rows + i] = norm > 0 ? a[i * cols + j] / norm : 0.0;
  if (!(norm > 0)) return;  // zero A: Z = 0; NaN in A: Z₀ carries the NaN on

  const int64_t r2 = rows * rows;
  scratch.resize(static_cast<size_t>(3 * r2 + cols * rows));
  double* az = scratch.data();
  double* t = az + r2;
  double* u = t + r2;
  double* zn = u + r2;
  for (int64_t it = 0; it < iterations; ++it) {
    dgemm(rows, rows, cols, 1.0, a, z, az);  // AZ
    std::copy(az, az + r2, t);
    shift_negate(t, rows, 7.0);              // 7I − AZ
    dgemm(rows, rows, rows, 1.0, az, t, u);  // AZ (7I − AZ)
    shift_negate(u, rows, 15.0);             // 15I − …
    dgemm(rows, rows, rows, 1.0, az, u, t);  // AZ (15I − …)
    shift_negate(t, rows, 13.0);             // 13I − …
    dgemm(cols, rows, rows, 0.25, z, t, zn);  // ¼ Z (13I − …)
    std::copy(zn, zn + cols * rows, z);
  }
}

}  // namespace attnkit::lowrank
