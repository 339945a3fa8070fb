// The portable reduced-precision kernel set: bf16 and int8 products emulated through fp32 and
// int32 lanes, with the rounding of the fast sets (lowp.hpp). Compiled once per fp32 SIMD path
// (src/simd/meson.build), so it is vectorised with that path's flags; it is the lowp kernel of
// that path (Path::attend_lowp). A bf16 × bf16 product is exact in fp32 (8 + 8 significant bits),
// so the only difference from vdpbf16ps / tdpbf16ps is the order of the fp32 sums; int8 dots are
// exact int32 sums, bit-identical to vpdpbusd / tdpbssd.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>

#include "kernels_arch.hpp"
#include "lowp_driver.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

namespace {

using lowp::B;
using lowp::W;
using I = xsimd::batch<int32_t, lowp::A>;
constexpr int64_t kVecs = kKeyTile / W;  // vectors per key tile
constexpr int64_t kPvVecs = 16 / W;      // vectors per 16 output channels

inline B low_half(const I& x) { return xsimd::bitwise_cast<B>(x << 16); }
inline B high_half(const I& x) { return xsimd::bitwise_cast<B>(x & I(static_cast<int32_t>(0xffff0000u))); }

class Portable {
 public:
  Portable(const LowpKV& kv, const void* q, int64_t rp, int64_t rows) : kv_(kv), q_(q), rp_(rp), rows_(rows) {}
  void begin() {}
  void end() {}

  void qk(int64_t t0, int64_t nt, float* S, int64_t lds) const {
    const int64_t dp = kv_.dp_;
    for (int64_t t = 0; t < nt; ++t) {
      if (kv_.prec_ == Precision::bf16) {
        const uint16_t* kt = kv_.kb_.data() + (t0 + t) * dp * kKeyTile;
        const uint16_t* qb = static_cast<const uint16_t*>(q_);
        for (int64_t r = 0; r < rows_; ++r) {
          const uint16_t* q = qb + r * dp;
          B acc[kVecs];
          for (auto& x : acc) x = B(0.0f);
          for (int64_t cp = 0; cp < dp / 2; ++cp) {
            const B qe(from_bf16(q[2 * cp])), qo(from_bf16(q[2 * cp + 1]));
            const int32_t* k = reinterpret_cast<const int32_t*>(kt + cp * kKeyTile * 2);
#pragma GCC unroll 8
            for (int64_t v = 0; v < kVecs; ++v) {
              const I x = I::load_unaligned(k + v * W);
              acc[v] = xsimd::fma(qe, low_half(x), acc[v]);
              acc[v] = xsimd::fma(qo, high_half(x), acc[v]);
            }
          }
          for (int64_t v = 0; v < kVecs; ++v) acc[v].store_aligned(S + r * lds + t * kKeyTile + v * W);
        }
      } else {
        const int8_t* kt = kv_.k8_.data() + (t0 + t) * dp * kKeyTile;
        const int8_t* q8 = static_cast<const int8_t*>(q_);
        for (int64_t r = 0; r < rows_; ++r) {
          const int8_t* q = q8 + r * dp;
          I acc[kVecs];
          for (auto& x : acc) x = I(0);
          for (int64_t cq = 0; cq < dp / 4; ++cq) {
            const I q0(q[4 * cq]), q1(q[4 * cq + 1]), q2(q[4 * cq + 2]), q3(q[4 * cq + 3]);
            const int32_t* k = reinterpret_cast<const int32_t*>(kt + cq * kKeyTile * 4);
#pragma GCC unroll 8
            for (int64_t v = 0; v < kVecs; ++v) {
              const I x = I::load_unaligned(k + v * W);
              // The four signed bytes of each lane, sign-extended by arithmetic shifts.
              acc[v] += q0 * ((x << 24) >> 24) + q1 * ((x << 16) >> 24) + q2 * ((x << 8) >> 24) + q3 * (x >> 24);
            }
          }
          for (int64_t v = 0; v < kVecs; ++v)
            xsimd::to_float(acc[v]).store_aligned(S + r * lds + t * kKeyTile + v * W);
        }
      }
    }
  }

  void pv(const uint16_t* P, int64_t ldp, int64_t k0, int64_t nk, float* acc, int64_t lda) const {
    const int64_t dvp = kv_.dvp_;
    const int32_t* vb = reinterpret_cast<const int32_t*>(kv_.vb_.data()) + (k0 / 2) * dvp;
    for (int64_t r = 0; r < rows_; ++r) {
      const uint16_t* p = P + r * ldp;
      float* o = acc + r * lda;
      for (int64_t c0 = 0; c0 < dvp; c0 += 16) {
        B sum[kPvVecs];
        for (int64_t v = 0; v < kPvVecs; ++v) sum[v] = B::load_aligned(o + c0 + v * W);
        for (int64_t j = 0; j < nk / 2; ++j) {
          if ((p[2 * j] | p[2 * j + 1]) == 0) continue;  // both probabilities 0 (masked keys)
          const B pe(from_bf16(p[2 * j])), po(from_bf16(p[2 * j + 1]));
#pragma GCC unroll 4
          for (int64_t v = 0; v < kPvVecs; ++v) {
            const I x = I::load_unaligned(vb + j * dvp + c0 + v * W);
            sum[v] = xsimd::fma(pe, low_half(x), sum[v]);
            sum[v] = xsimd::fma(po, high_half(x), sum[v]);
          }
        }
        for (int64_t v = 0; v < kPvVecs; ++v) sum[v].store_aligned(o + c0 + v * W);
      }
    }
  }

 private:
  const LowpKV& kv_;
  const void* q_;
  int64_t rp_, rows_;
};

}  // namespace

void attend_lowp_portable(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans, const TileMask* mask,
                          Workspace& ws) {
  __atomic_store_n(&kernel_path[static_cast<int>(Kernel::lowp)], static_cast<const char*>("portable"), __ATOMIC_RELAXED);
  lowp::attend_tiles<Portable>(a, kv, spans, mask, ws);
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
