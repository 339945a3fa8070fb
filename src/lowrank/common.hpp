#pragma once
// Internal: what nystrom and linformer share: segments, landmark means, softmax rows and the
// BLAS calls (row-major, float).
#include <cstdint>
#include <vector>

#include "../core/blas_threads.hpp"
#include "attnkit/problem.hpp"

namespace attnkit::lowrank {

// Process-wide, reference-counted: safe when several threads run forward() at once.

constexpr int64_t kQueryChunk = 256;  // query rows per task in the output pass

// Keys [0, visible_keys) of batch b are not padding (neither backend has a causal mask).
inline int64_t visible_keys(const Problem& p, int64_t b) { return p.key_end(b, 0); }

// First row of segment i when r rows are cut into m contiguous segments: ⌊i·r/m⌋, so every
// segment has ⌊r/m⌋ or ⌈r/m⌉ rows.
inline int64_t segment_begin(int64_t r, int64_t m, int64_t i) { return i * r / m; }

// out [m × d] = the means of the m segments of the r rows x (row stride ld); m <= r.
void segment_means(const float* x, int64_t ld, int64_t r, int64_t d, int64_t m, float* out);

// In place, rows × cols at row stride ld: x ← exp(x − max of its row); sums[i] = the row's sum
// (accumulated in double). The caller divides (or scales a product) by sums.
void exp_rows(float* x, int64_t rows, int64_t cols, int64_t ld, double* sums);

// C [m × n] = alpha · A [m × k] · Bᵀ (B [n × k]), row strides lda, ldb, ldc.
void gemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
             float* c, int64_t ldc);
// C [m × n] = A [m × k] · B [k × n].
void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc);

// Divides row i of x (rows × cols, stride ld) by sums[i]; a zero sum gives a zero row.
void divide_rows(float* x, int64_t rows, int64_t cols, int64_t ld, const double* sums);

// Zeros the output rows of (b, h) (a batch with no visible key).
void zero_rows(const Problem& p, int64_t b, int64_t h, int64_t n_q, int64_t d_v);

}  // namespace attnkit::lowrank
