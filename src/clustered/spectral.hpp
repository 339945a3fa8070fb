#pragma once
// Internal: guaranteed upper bounds on norms of a block of rows, for the a-posteriori bound.
#include <cstdint>

namespace attnkit::clustered {

// An upper bound on the spectral norm ||A||_2 of the rows x cols matrix A (row stride `stride`).
//
// Power iteration on a vector converges from below (a Rayleigh quotient never exceeds λ_max), so
// it cannot be used as a bound as is. Instead: G = AᵀA (cols x cols, in double) and, for any
// m >= 1, λ_max(G) <= ||G^m||_F = (Σ λ_i^{2m})^{1/2} <= cols^{1/2} λ_max(G)^m. G^m with m = 2^6
// comes from 6 squarings (each normalised to Frobenius norm 1, the scales kept as logs), so the
// result is >= ||A||_2 always and at most cols^{1/256}·||A||_2 (1.6% above for cols = 64). The
// result is then inflated by 1e-9 relative to cover rounding in the double arithmetic.
// Cost: rows·cols² + 6·cols³ flops. Returns 0 for rows == 0 or an all-zero A.
double spectral_norm_upper(const float* a, int64_t rows, int64_t stride, int64_t cols);

// max_i ||a_i||_2 over the rows (in double, inflated by 1e-9 relative).
double max_row_norm(const float* a, int64_t rows, int64_t stride, int64_t cols);

}  // namespace attnkit::clustered
