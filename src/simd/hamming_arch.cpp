// One SIMD path of the K-means-in-Hamming-space kernels of clustered attention: nearest-centre
// assignment by popcount and bit counts for the majority vote. Compiled once per path like
// attend_arch.cpp; what each path gets follows from its instruction-set flags:
//   avx512: 8 codes per vector with AVX-512 VPOPCNTDQ when the CPU has it (Ice Lake and later;
//           checked once, the path itself only needs F/CD/DQ/BW), else POPCNT; AVX-512 bit counts
//           and code packing.
//   avx2:   POPCNT (the path requires it, dispatch.cpp); portable bit counts and code packing.
//   sse2, generic: portable code (popcount without the POPCNT instruction).
//   native: whatever -march=native enables of the above.
// Every variant gives identical results (ties go to the smallest centre index).
#include <cstddef>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels_arch.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

namespace {

int64_t assign_scalar(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label) {
  int64_t changed = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t x = codes[i];
    int best = 65;
    int32_t arg = 0;
    for (int64_t c = 0; c < count; ++c) {
      const int dist = __builtin_popcountll(x ^ centres[c]);
      if (dist < best) {
        best = dist;
        arg = static_cast<int32_t>(c);
      }
    }
    changed += label[i] != arg;
    label[i] = arg;
  }
  return changed;
}

#if defined(__AVX512F__)
// 8 queries per vector, one broadcast centre at a time: no horizontal reductions, and ties
// resolve to the smallest centre index exactly like the scalar loop.
__attribute__((target("avx512vpopcntdq"))) int64_t assign_vpopcnt(const uint64_t* codes, int64_t n,
                                                                   const uint64_t* centres, int64_t count,
                                                                   int32_t* label) {
  int64_t changed = 0;
  for (int64_t i = 0; i < n; i += 8) {
    const __m512i x = _mm512_loadu_si512(codes + i);
    __m512i best = _mm512_set1_epi64(65), arg = _mm512_setzero_si512();
    for (int64_t c = 0; c < count; ++c) {
      const __m512i dist = _mm512_popcnt_epi64(_mm512_xor_si512(x, _mm512_set1_epi64(static_cast<long long>(centres[c]))));
      const __mmask8 closer = _mm512_cmplt_epi64_mask(dist, best);
      best = _mm512_mask_mov_epi64(best, closer, dist);
      arg = _mm512_mask_mov_epi64(arg, closer, _mm512_set1_epi64(c));
    }
    alignas(64) int64_t a[8];
    _mm512_store_si512(a, arg);
    const int64_t m = n - i < 8 ? n - i : 8;
    for (int64_t r = 0; r < m; ++r) {
      changed += label[i + r] != a[r];
      label[i + r] = static_cast<int32_t>(a[r]);
    }
  }
  return changed;
}

bool have_vpopcnt() {
#if defined(__AVX512VPOPCNTDQ__)
  return true;
#else
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vpopcntdq");
#endif
}
#endif

}  // namespace

int64_t assign_nearest(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label) {
  ran(Kernel::hamming);
#if defined(__AVX512F__)
  static const bool vpopcnt = have_vpopcnt();
  if (vpopcnt) return assign_vpopcnt(codes, n, centres, count, label);
#endif
  return assign_scalar(codes, n, centres, count, label);
}

void count_bits(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts, uint32_t* sizes) {
  ran(Kernel::hamming);
#if defined(__AVX512F__)
  // 64 counters = 4 vectors of 16 uint32; one masked add per 16 bits of the code. (Bits >= `bits`
  // are zero in every code, so counting all 64 is the same.)
  (void)bits;
  const __m512i one = _mm512_set1_epi32(1);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t x = codes[i];
    uint32_t* row = counts + static_cast<ptrdiff_t>(label[i]) * 64;
    sizes[label[i]] += 1;
    for (int q = 0; q < 4; ++q) {
      const __m512i c = _mm512_loadu_si512(row + 16 * q);
      _mm512_storeu_si512(row + 16 * q, _mm512_mask_add_epi32(c, static_cast<__mmask16>(x >> (16 * q)), c, one));
    }
  }
#else
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t x = codes[i];
    uint32_t* row = counts + static_cast<ptrdiff_t>(label[i]) * 64;
    sizes[label[i]] += 1;
    for (int b = 0; b < bits; ++b) row[b] += static_cast<uint32_t>((x >> b) & 1u);
  }
#endif
}

void make_codes(const float* proj, int64_t n, const float* thr, uint64_t* codes) {
  ran(Kernel::hamming);
#if defined(__AVX512F__)
  __m512 t[4];
  for (int q = 0; q < 4; ++q) t[q] = _mm512_loadu_ps(thr + 16 * q);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t c = 0;
    for (int q = 0; q < 4; ++q)
      c |= static_cast<uint64_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(proj + i * 64 + 16 * q), t[q], _CMP_GT_OQ))
           << (16 * q);
    codes[i] = c;
  }
#else
  for (int64_t i = 0; i < n; ++i) {
    const float* p = proj + i * 64;
    uint64_t c = 0;
    for (int b = 0; b < 64; ++b) c |= static_cast<uint64_t>(p[b] > thr[b]) << b;
    codes[i] = c;
  }
#endif
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
