#pragma once
// Internal: the bit-parallel kernels of K-means in Hamming space.
#include <cstdint>

namespace attnkit::clustered {

// label[i] = argmin_c popcount(codes[i] ^ centres[c]) (smallest c on ties), for i < n.
// `codes` must be readable up to n rounded up to a multiple of 8 (the AVX-512 path loads 8 codes
// at a time). Returns how many labels changed. Chooses AVX-512 VPOPCNTDQ, POPCNT or portable
// code once, by what the CPU supports; all give identical results.
int64_t assign_nearest(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label);

// Majority vote: counts[c * 64 + b] += bit b of codes[i], sizes[c] += 1, for each i with c =
// label[i]. counts (count x 64) and sizes (count) must be zeroed by the caller.
void count_bits(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts, uint32_t* sizes);

// codes[i] bit b = [proj[i * 64 + b] > thr[b]] for b < 64 (the LSH codes; a threshold of +inf
// gives a zero bit). AVX-512 or portable code, identical results.
void make_codes(const float* proj, int64_t n, const float* thr, uint64_t* codes);

}  // namespace attnkit::clustered
