#pragma once
// Internal: drawing the FAVOR+ projection W from a seed.
#include <cstdint>
#include <vector>

namespace attnkit::kern {

// W, m × d row-major. orthogonal: ⌈m/d⌉ independent blocks of d orthonormal rows (modified
// Gram–Schmidt in double of Gaussian rows), the last block truncated, each row then scaled by an
// independent χ(d) norm (norm of a fresh Gaussian d-vector), so each row is marginally N(0, I_d);
// otherwise iid N(0, I_d) rows. regularized: every row scaled to norm √d instead. The draw is a
// function of (seed, stream, m, d, orthogonal, regularized) only, identical on every platform
// (own generator and Box–Muller, no std distributions).
std::vector<float> draw_projection(int64_t m, int64_t d, bool orthogonal, bool regularized, uint64_t seed,
                                   uint64_t stream);

}  // namespace attnkit::kern
