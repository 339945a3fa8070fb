#pragma once
// Internal: the Nyströmformer's iterative Moore–Penrose pseudo-inverse (Razavi et al. 2014, as
// used by Xiong et al. 2021), in double precision.
#include <cstdint>
#include <vector>

namespace attnkit::lowrank {

// Z [cols × rows] ≈ pinv(A) for A [rows × cols] (row-major) by `iterations` steps of
//   Z ← ¼ Z (13I − AZ (15I − AZ (7I − AZ))),  Z₀ = Aᵀ / (‖A‖₁ ‖A‖∞),
// ‖A‖₁ = max_j Σ_i |A_ij| (largest column sum), ‖A‖∞ = max_i Σ_j |A_ij| (largest row sum).
// An all-zero A gives Z = 0. scratch is resized as needed (3·rows² + cols·rows doubles).
void newton_schulz_pinv(const double* a, int64_t rows, int64_t cols, int64_t iterations, double* z,
                        std::vector<double>& scratch);

}  // namespace attnkit::lowrank
