#pragma once
// y = x·W + bias for row-major matrices with explicit leading dimensions: the projections of the
// multi-head layer. One OpenBLAS sgemm; the bias is broadcast into y first and sgemm adds to it.
#include <cstdint>

namespace attnkit::layer {

// x [rows, in] (row stride ldx), W [in, out] (row stride ldw), bias [out] or nullptr,
// y [rows, out] (row stride ldy). Call outside OpenMP regions (OpenBLAS threads itself).
void linear(const float* x, int64_t ldx, int64_t rows, int64_t in, const float* w, int64_t ldw, int64_t out,
            const float* bias, float* y, int64_t ldy);

}  // namespace attnkit::layer
