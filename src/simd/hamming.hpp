#pragma once
// Internal: the bit-parallel kernels of K-means in Hamming space (clustered attention), on the
// SIMD path of this process (paths.hpp; ATTNKIT_SIMD and -Dnative apply). Each path's code is in
// hamming_arch.cpp; all paths give identical results. Thread-safe.
#include <cstdint>

namespace attnkit::simd {

// label[i] = argmin_c popcount(codes[i] ^ centres[c]) (smallest c on ties), for i < n.
// `codes` must be readable up to n rounded up to a multiple of 8 (the AVX-512 code loads 8 codes
// at a time). Returns how many labels changed.
int64_t assign_nearest(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label);

// Majority vote: counts[c * 64 + b] += bit b of codes[i], sizes[c] += 1, for each i with c =
// label[i]. counts (count x 64) and sizes (count) must be zeroed by the caller. Bits >= `bits`
// must be zero in every code.
void count_bits(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts, uint32_t* sizes);

// codes[i] bit b = [proj[i * 64 + b] > thr[b]] for b < 64 (the LSH codes; a threshold of +inf
// gives a zero bit).
void make_codes(const float* proj, int64_t n, const float* thr, uint64_t* codes);

}  // namespace attnkit::simd
