// The AVX512-BF16 / AVX512-VNNI reduced-precision kernel set (lowp.hpp): vdpbf16ps for the bf16
// products, vpdpbusd for the int8 Q·Kᵀ. Compiled with -mavx512bf16 -mavx512vnni (meson.build);
// lowp.cpp runs it only on CPUs that have both.
//
// Register blocking: 4 query rows × up to 4 vectors of 16 keys (Q·Kᵀ) or 16 output channels
// (P·V): 16 accumulators, the packed operands (lowp.hpp) loaded once per 4 rows, the query /
// probability pair (or int8 quad) broadcast as one 32-bit lane.
//
// vpdpbusd multiplies unsigned by signed bytes: the query quad is fed as q + 128 (a XOR with
// 0x80 per byte) and 128 · Σ_c k[j][c] (LowpKV's per-key sums) is taken off afterwards, which is
// exact in int32.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "lowp_driver.hpp"
#include "paths.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

namespace {

constexpr int kRows = 4;

inline int32_t load32(const void* p) {
  int32_t x;
  std::memcpy(&x, p, 4);
  return x;
}

class Avx512Bf16 {
 public:
  Avx512Bf16(const LowpKV& kv, const void* q, int64_t rp, int64_t rows)
      : kv_(kv), q_(q), rows4_((rows + kRows - 1) / kRows * kRows) {
    (void)rp;  // rows4_ <= rp: the padding rows of the packed block are zero
  }
  void begin() {}
  void end() {}

  void qk(int64_t t0, int64_t nt, float* S, int64_t lds) const {
    for (int64_t t = 0; t < nt; t += 2) {
      if (nt - t >= 2)
        qk_n<4>(t0 + t, S + t * kKeyTile, lds);
      else
        qk_n<2>(t0 + t, S + t * kKeyTile, lds);
    }
  }

  void pv(const uint16_t* P, int64_t ldp, int64_t k0, int64_t nk, float* acc, int64_t lda) const {
    const int64_t dvp = kv_.dvp_;
    const int32_t* vb = reinterpret_cast<const int32_t*>(kv_.vb_.data()) + (k0 / 2) * dvp;
    for (int64_t c0 = 0; c0 < dvp; c0 += 64) {
      const int64_t nv = (dvp - c0) / 16 < 4 ? (dvp - c0) / 16 : 4;
      switch (nv) {
        case 1: pv_n<1>(P, ldp, vb + c0, dvp, nk, acc + c0, lda); break;
        case 2: pv_n<2>(P, ldp, vb + c0, dvp, nk, acc + c0, lda); break;
        case 3: pv_n<3>(P, ldp, vb + c0, dvp, nk, acc + c0, lda); break;
        default: pv_n<4>(P, ldp, vb + c0, dvp, nk, acc + c0, lda); break;
      }
    }
  }

 private:
  // NV vectors of 16 keys: key vector v is half v % 2 of key tile t0 + v / 2.
  template <int NV>
  void qk_n(int64_t t0, float* S, int64_t lds) const {
    const int64_t dp = kv_.dp_;
    if (kv_.prec_ == Precision::bf16) {
      const uint16_t* qb = static_cast<const uint16_t*>(q_);
      const uint16_t* kt = kv_.kb_.data() + t0 * dp * kKeyTile;
      for (int64_t r0 = 0; r0 < rows4_; r0 += kRows) {
        __m512 acc[kRows][NV];
        for (auto& row : acc)
          for (auto& x : row) x = _mm512_setzero_ps();
        for (int64_t cp = 0; cp < dp / 2; ++cp) {
          __m512i k[NV];
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v)
            k[v] = _mm512_loadu_si512(kt + (v / 2) * dp * kKeyTile + cp * 2 * kKeyTile + (v % 2) * 32);
#pragma GCC unroll 4
          for (int rr = 0; rr < kRows; ++rr) {
            const __m512i q = _mm512_set1_epi32(load32(qb + (r0 + rr) * dp + 2 * cp));
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[rr][v] = _mm512_dpbf16_ps(acc[rr][v], (__m512bh)q, (__m512bh)k[v]);
          }
        }
        for (int rr = 0; rr < kRows; ++rr)
          for (int v = 0; v < NV; ++v) _mm512_store_ps(S + (r0 + rr) * lds + v * 16, acc[rr][v]);
      }
      return;
    }
    const int8_t* q8 = static_cast<const int8_t*>(q_);
    const int8_t* kt = kv_.k8_.data() + t0 * dp * kKeyTile;
    const int32_t* ksum = kv_.ksum_.data() + t0 * kKeyTile;
    const __m512i flip = _mm512_set1_epi32(static_cast<int32_t>(0x80808080u));
    for (int64_t r0 = 0; r0 < rows4_; r0 += kRows) {
      __m512i acc[kRows][NV];
      for (auto& row : acc)
        for (auto& x : row) x = _mm512_setzero_si512();
      for (int64_t cq = 0; cq < dp / 4; ++cq) {
        __m512i k[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          k[v] = _mm512_loadu_si512(kt + (v / 2) * dp * kKeyTile + cq * 4 * kKeyTile + (v % 2) * 64);
#pragma GCC unroll 4
        for (int rr = 0; rr < kRows; ++rr) {
          const __m512i q = _mm512_xor_si512(_mm512_set1_epi32(load32(q8 + (r0 + rr) * dp + 4 * cq)), flip);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[rr][v] = _mm512_dpbusd_epi32(acc[rr][v], q, k[v]);
        }
      }
      for (int v = 0; v < NV; ++v) {
        const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(ksum + v * 16), 7);  // 128 · Σ_c k
        for (int rr = 0; rr < kRows; ++rr)
          _mm512_store_ps(S + (r0 + rr) * lds + v * 16, _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[rr][v], corr)));
      }
    }
  }

  // acc[r][c] += Σ_j P[r][j] v[j][c] for NV vectors of 16 channels; v: key pairs, row stride dvp.
  template <int NV>
  void pv_n(const uint16_t* P, int64_t ldp, const int32_t* v, int64_t dvp, int64_t nk, float* acc, int64_t lda) const {
    for (int64_t r0 = 0; r0 < rows4_; r0 += kRows) {
      __m512 o[kRows][NV];
      for (int rr = 0; rr < kRows; ++rr)
        for (int c = 0; c < NV; ++c) o[rr][c] = _mm512_load_ps(acc + (r0 + rr) * lda + c * 16);
      for (int64_t j = 0; j < nk / 2; ++j) {
        __m512i vv[NV];
#pragma GCC unroll 4
        for (int c = 0; c < NV; ++c) vv[c] = _mm512_loadu_si512(v + j * dvp + c * 16);
#pragma GCC unroll 4
        for (int rr = 0; rr < kRows; ++rr) {
          const __m512i p = _mm512_set1_epi32(load32(P + (r0 + rr) * ldp + 2 * j));
#pragma GCC unroll 4
          for (int c = 0; c < NV; ++c) o[rr][c] = _mm512_dpbf16_ps(o[rr][c], (__m512bh)p, (__m512bh)vv[c]);
        }
      }
      for (int rr = 0; rr < kRows; ++rr)
        for (int c = 0; c < NV; ++c) _mm512_store_ps(acc + (r0 + rr) * lda + c * 16, o[rr][c]);
    }
  }

  const LowpKV& kv_;
  const void* q_;
  int64_t rows4_;
};

}  // namespace

void attend_lowp_kernel(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans, const TileMask* mask,
                        Workspace& ws) {
  __atomic_store_n(&kernel_path[static_cast<int>(Kernel::lowp)], static_cast<const char*>("avx512bf16"), __ATOMIC_RELAXED);
  lowp::attend_tiles<Avx512Bf16>(a, kv, spans, mask, ws);
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
