// The AMX reduced-precision kernel set (lowp.hpp): tdpbf16ps for the bf16 products, tdpbssd for
// the int8 Q·Kᵀ (signed × signed, so no offset correction). Compiled with -mamx-tile -mamx-bf16
// -mamx-int8 (meson.build); lowp.cpp runs it only on CPUs with AMX after Linux granted the tile
// data state (arch_prctl), so the first tile instruction cannot fault.
//
// Every tile register is configured as 16 rows × 64 bytes, the largest shape: A = 16 query rows ×
// 32 bf16 (or 64 int8) channels, B = 16 channel pairs (quads) × 16 keys in the packed VNNI order
// of LowpKV, C = 16 rows × 16 fp32 (int32). Q·Kᵀ of one 16-row group keeps up to four key
// groups in tmm0-3 (A in tmm4, B in tmm5-7); P·V keeps four 16-channel groups of the output in
// tmm0-3, reads P (A) into tmm4 once per 32 keys and V (B) into tmm5-7. The packed query block
// and P are row-major with 16-row padding (lowp_driver.hpp), so tiles never read past them.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "lowp_driver.hpp"
#include "paths.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

class Amx {
 public:
  Amx(const LowpKV& kv, const void* q, int64_t rp, int64_t rows) : kv_(kv), q_(static_cast<const char*>(q)), rp_(rp) {
    (void)rows;  // whole 16-row groups: the padding rows are zero
  }

  void begin() {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) {
      cfg.colsb[t] = 64;
      cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
  }
  void end() { _tile_release(); }

  void qk(int64_t t0, int64_t nt, float* S, int64_t lds) const {
    for (int64_t t = 0; t < nt; t += 2) qk2(t0 + t, nt - t >= 2 ? 2 : 1, S + t * kKeyTile, lds);
  }

 private:
  // Key tiles t0 and (nt == 2) t0 + 1: four key groups of 16, in tmm0-3.
  void qk2(int64_t t0, int64_t nt, float* S, int64_t lds) const {
    const int64_t dp = kv_.dp_;
    const bool bf16 = kv_.prec_ == Precision::bf16;
    // Bytes per packed key tile, per query row, per channel chunk (32 bf16 or 64 int8 = 64 bytes).
    const int64_t tile_bytes = dp * kKeyTile * (bf16 ? 2 : 1);
    const int64_t qrow = dp * (bf16 ? 2 : 1);
    const int64_t chunks = qrow / 64;
    const char* k0 = bf16 ? reinterpret_cast<const char*>(kv_.kb_.data()) : reinterpret_cast<const char*>(kv_.k8_.data());
    const char* kt0 = k0 + t0 * tile_bytes;  // key groups 0, 1
    const char* kt1 = kt0 + tile_bytes;      // key groups 2, 3 (nt == 2)
    for (int64_t g = 0; g < rp_; g += 16) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t kc = 0; kc < chunks; ++kc) {
        _tile_loadd(4, q_ + g * qrow + kc * 64, qrow);
        const char* b = kt0 + kc * 16 * 128;
        _tile_loadd(5, b, 128);
        _tile_loadd(6, b + 64, 128);
        if (bf16) {
          _tile_dpbf16ps(0, 4, 5);
          _tile_dpbf16ps(1, 4, 6);
        } else {
          _tile_dpbssd(0, 4, 5);
          _tile_dpbssd(1, 4, 6);
        }
        if (nt == 2) {
          const char* b1 = kt1 + kc * 16 * 128;
          _tile_loadd(7, b1, 128);
          _tile_loadd(5, b1 + 64, 128);
          if (bf16) {
            _tile_dpbf16ps(2, 4, 7);
            _tile_dpbf16ps(3, 4, 5);
          } else {
            _tile_dpbssd(2, 4, 7);
            _tile_dpbssd(3, 4, 5);
          }
        }
      }
      float* s = S + g * lds;
      const int64_t stride = lds * 4;
      _tile_stored(0, s, stride);
      _tile_stored(1, s + 16, stride);
      if (nt == 2) {
        _tile_stored(2, s + 32, stride);
        _tile_stored(3, s + 48, stride);
      }
      if (!bf16) {  // int32 dots stored in place: convert to float
        const int64_t nk = nt * kKeyTile;
        for (int64_t r = 0; r < 16; ++r)
          for (int64_t j = 0; j < nk; j += 16) {
            float* p = s + r * lds + j;
            _mm512_store_ps(p, _mm512_cvtepi32_ps(_mm512_load_si512(p)));
          }
      }
    }
  }


 public:
  void pv(const uint16_t* P, int64_t ldp, int64_t k0, int64_t nk, float* acc, int64_t lda) const {
    const int64_t dvp = kv_.dvp_;
    const char* vb = reinterpret_cast<const char*>(kv_.vb_.data()) + (k0 / 2) * dvp * 4;
    const int64_t vstride = dvp * 4;  // one key pair: dvp channels × 2 bf16
    const int64_t astride = lda * 4, pstride = ldp * 2;
    for (int64_t g = 0; g < rp_; g += 16) {
      const char* pg = reinterpret_cast<const char*>(P + g * ldp);
      for (int64_t c0 = 0; c0 < dvp; c0 += 64) {
        const int64_t ng = (dvp - c0) / 16 < 4 ? (dvp - c0) / 16 : 4;
        float* o = acc + g * lda + c0;
        _tile_loadd(0, o, astride);
        if (ng > 1) _tile_loadd(1, o + 16, astride);
        if (ng > 2) _tile_loadd(2, o + 32, astride);
        if (ng > 3) _tile_loadd(3, o + 48, astride);
        for (int64_t kc = 0; kc < nk / 32; ++kc) {
          _tile_loadd(4, pg + kc * 64, pstride);
          const char* b = vb + kc * 16 * vstride + c0 * 4;
          _tile_loadd(5, b, vstride);
          _tile_dpbf16ps(0, 4, 5);
          if (ng > 1) {
            _tile_loadd(6, b + 64, vstride);
            _tile_dpbf16ps(1, 4, 6);
          }
          if (ng > 2) {
            _tile_loadd(7, b + 128, vstride);
            _tile_dpbf16ps(2, 4, 7);
          }
          if (ng > 3) {
            _tile_loadd(5, b + 192, vstride);
            _tile_dpbf16ps(3, 4, 5);
          }
        }
        _tile_stored(0, o, astride);
        if (ng > 1) _tile_stored(1, o + 16, astride);
        if (ng > 2) _tile_stored(2, o + 32, astride);
        if (ng > 3) _tile_stored(3, o + 48, astride);
      }
    }
  }

 private:
  const LowpKV& kv_;
  const char* q_;
  int64_t rp_;
};

}  // namespace

void attend_lowp_kernel(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans, const TileMask* mask,
                        Workspace& ws) {
  __atomic_store_n(&kernel_path[static_cast<int>(Kernel::lowp)], static_cast<const char*>("amx"), __ATOMIC_RELAXED);
  lowp::attend_tiles<Amx>(a, kv, spans, mask, ws);
}

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
