#include "linear.hpp"

#include <cblas.h>

#include <algorithm>

namespace attnkit::layer {

void linear(const float* x, int64_t ldx, int64_t rows, int64_t in, const float* w, int64_t ldw, int64_t out,
            const float* bias, float* y, int64_t ldy) {
  if (bias)
    for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + out, y + r * ldy);
  // blasint is 32-bit in Debian's OpenBLAS: MultiHeadAttention checks that every size fits.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows), static_cast<blasint>(out),
              static_cast<blasint>(in), 1.0f, x, static_cast<blasint>(ldx), w, static_cast<blasint>(ldw),
              bias ? 1.0f : 0.0f, y, static_cast<blasint>(ldy));
}

}  // namespace attnkit::layer
