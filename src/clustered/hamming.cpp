// K-means in Hamming space: nearest-centre assignment by popcount, and bit counts for the
// majority-vote update. The assignment is the O(n·C·iterations) part of clustering, so it has an
// AVX-512 path (8 queries per vector, one broadcast centre at a time: no horizontal reductions,
// ties resolve to the smallest centre index exactly like the scalar loop).
#include "hamming.hpp"

#include <cstddef>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ATTNKIT_CLUSTERED_X86 1
#endif

namespace attnkit::clustered {

namespace {

// Portable body; compiled twice on x86 (with and without the POPCNT instruction).
template <class Popcount>
int64_t assign_scalar(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label,
                      Popcount pc) {
  int64_t changed = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t x = codes[i];
    int best = 65;
    int32_t arg = 0;
    for (int64_t c = 0; c < count; ++c) {
      const int dist = pc(x ^ centres[c]);
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

int64_t assign_generic(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label) {
  return assign_scalar(codes, n, centres, count, label, [](uint64_t x) { return __builtin_popcountll(x); });
}

#ifdef ATTNKIT_CLUSTERED_X86
__attribute__((target("popcnt"))) int64_t assign_popcnt(const uint64_t* codes, int64_t n, const uint64_t* centres,
                                                         int64_t count, int32_t* label) {
  return assign_scalar(codes, n, centres, count, label, [](uint64_t x) { return __builtin_popcountll(x); });
}

__attribute__((target("avx512f,avx512vpopcntdq"))) int64_t assign_avx512(const uint64_t* codes, int64_t n,
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
#endif

using AssignFn = int64_t (*)(const uint64_t*, int64_t, const uint64_t*, int64_t, int32_t*);

AssignFn choose_assign() {
#ifdef ATTNKIT_CLUSTERED_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq")) return assign_avx512;
  if (__builtin_cpu_supports("popcnt")) return assign_popcnt;
#endif
  return assign_generic;
}

}  // namespace

int64_t assign_nearest(const uint64_t* codes, int64_t n, const uint64_t* centres, int64_t count, int32_t* label) {
  static const AssignFn fn = choose_assign();
  return fn(codes, n, centres, count, label);
}

namespace {

void count_bits_generic(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts,
                        uint32_t* sizes) {
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t x = codes[i];
    uint32_t* row = counts + static_cast<ptrdiff_t>(label[i]) * 64;
    sizes[label[i]] += 1;
    for (int b = 0; b < bits; ++b) row[b] += static_cast<uint32_t>((x >> b) & 1u);
  }
}

uint64_t code_generic(const float* p, const float* thr) {
  uint64_t c = 0;
  for (int b = 0; b < 64; ++b) c |= static_cast<uint64_t>(p[b] > thr[b]) << b;
  return c;
}

void make_codes_generic(const float* proj, int64_t n, const float* thr, uint64_t* codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = code_generic(proj + i * 64, thr);
}

#ifdef ATTNKIT_CLUSTERED_X86
// 64 counters = 4 vectors of 16 uint32; one masked add per 16 bits of the code. (Bits >= `bits`
// are zero in every code, so counting all 64 is the same.)
__attribute__((target("avx512f"))) void count_bits_avx512(const uint64_t* codes, int64_t n, const int32_t* label,
                                                           int, uint32_t* counts, uint32_t* sizes) {
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
}

__attribute__((target("avx512f"))) void make_codes_avx512(const float* proj, int64_t n, const float* thr,
                                                           uint64_t* codes) {
  __m512 t[4];
  for (int q = 0; q < 4; ++q) t[q] = _mm512_loadu_ps(thr + 16 * q);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t c = 0;
    for (int q = 0; q < 4; ++q)
      c |= static_cast<uint64_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(proj + i * 64 + 16 * q), t[q], _CMP_GT_OQ))
           << (16 * q);
    codes[i] = c;
  }
}
#endif

bool have_avx512f() {
#ifdef ATTNKIT_CLUSTERED_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

}  // namespace

void count_bits(const uint64_t* codes, int64_t n, const int32_t* label, int bits, uint32_t* counts, uint32_t* sizes) {
#ifdef ATTNKIT_CLUSTERED_X86
  static const bool fast = have_avx512f();
  if (fast) return count_bits_avx512(codes, n, label, bits, counts, sizes);
#endif
  count_bits_generic(codes, n, label, bits, counts, sizes);
}

void make_codes(const float* proj, int64_t n, const float* thr, uint64_t* codes) {
#ifdef ATTNKIT_CLUSTERED_X86
  static const bool fast = have_avx512f();
  if (fast) return make_codes_avx512(proj, n, thr, codes);
#endif
  make_codes_generic(proj, n, thr, codes);
}

}  // namespace attnkit::clustered
