#pragma once
// Internal: the online-softmax tile loop of the reduced-precision kernels, shared by every kernel
// set. Included by one translation unit per set, inside that set's namespace
// (attnkit::simd::ATTNKIT_SIMD_NS, compiled with its instruction-set flags and xsimd architecture
// ATTNKIT_SIMD_ARCH). A set supplies only the two products, as a class Impl:
//   Impl(const LowpKV& kv, const void* q, int64_t rp, int64_t rows)  q: the packed query block
//        (below); rows <= rp real rows (the padding rows are zero)
//   void qk(int64_t t0, int64_t nt, float* S, int64_t lds)
//        S[r][j] = raw dot of query r (r < rp) and key t0·kKeyTile + j (j < nt·kKeyTile): the
//        fp32 sum of bf16 products, or the int32 integer dot (as float: exact below 2^24)
//   void pv(const uint16_t* P, int64_t ldp, int64_t k0, int64_t nk, float* acc, int64_t lda)
//        acc[r][c] += Σ_j P[r][j] · v[k0 + j][c] for r < rp, c < dvp, j < nk (k0, nk multiples
//        of kKeyTile; P bf16)
//   void begin(), end()   around a call (AMX: tile configuration and release)
// Packed query block: bf16 [rp][dp] (unscaled), or int8 [rp][dp] with one scale for the block;
// rp = rows rounded up to 16, zero rows and channels as padding.
//
// Layout of a step (kStepKeys keys, aligned to kKeyTile): S [rp][kStepKeys] fp32 scores,
// P [rp][kStepKeys] bf16 probabilities, acc [rp][dvp] fp32. The running max m, sum l and the
// acc rescale are done per row in fp32 before P·V, so the products themselves never see anything
// but bf16 / int8 operands.
#include <xsimd/xsimd.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "exp.hpp"
#include "reduce.hpp"
#include "lowp_paths.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

namespace lowp {

using A = ATTNKIT_SIMD_ARCH;
using B = xsimd::batch<float, A>;
constexpr int64_t W = B::size;
constexpr int64_t kStepKeys = 4 * kKeyTile;
constexpr int64_t kRowPad = 16;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t lo(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t hi(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// The packed query block; returns its int8 scale (1 for bf16). Branch-free loops that vectorise:
// exact calls this once per 64 rows and n keys, but local once per 64 rows and a few hundred keys.
inline float pack_queries(const AttendArgs& a, Precision prec, int64_t rp, int64_t dp, void* buf) {
  const int64_t d = a.d;
  if (prec == Precision::bf16) {
    uint16_t* qb = static_cast<uint16_t*>(buf);
    for (int64_t r = 0; r < a.rows; ++r) {
      const float* q = a.q + r * a.q_stride;
      uint16_t* o = qb + r * dp;
      for (int64_t c = 0; c < d; ++c) {
        uint32_t u;
        std::memcpy(&u, q + c, 4);
        const uint32_t rn = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        o[c] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : rn);
      }
      std::memset(o + d, 0, static_cast<size_t>(dp - d) * 2);
    }
    std::memset(qb + a.rows * dp, 0, static_cast<size_t>((rp - a.rows) * dp) * 2);
    return 1.0f;
  }
  int8_t* q8 = static_cast<int8_t*>(buf);
  float amax = 0.0f, bad = 0.0f;  // bad: NaN when any element is NaN or infinite (x · 0)
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* q = a.q + r * a.q_stride;
    for (int64_t c = 0; c < d; ++c) {
      const float x = std::fabs(q[c]);
      amax = amax > x ? amax : x;
      bad += q[c] * 0.0f;
    }
  }
  const bool finite = bad == 0.0f;
  const float inv = (finite && amax > 0.0f) ? 127.0f / amax : 0.0f;
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* q = a.q + r * a.q_stride;
    int8_t* o = q8 + r * dp;
    for (int64_t c = 0; c < d; ++c) o[c] = quantize_int8(q[c], inv);
    std::memset(o + d, 0, static_cast<size_t>(dp - d));
  }
  std::memset(q8 + a.rows * dp, 0, static_cast<size_t>((rp - a.rows) * dp));
  return finite ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN();
}

// Rounds the W lanes of p to bf16 (nearest even, NaN kept) and stores them.
inline void store_bf16(const B& p, uint16_t* dst) {
#if defined(__AVX512BF16__)
  if constexpr (W == 16) {
    const __m256bh h = _mm512_cvtneps_pbh(p);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), reinterpret_cast<const __m256i&>(h));
    return;
  }
#endif
  using I = xsimd::batch<int32_t, A>;
  const I u = xsimd::bitwise_cast<I>(p);
  const I r = (u + I(0x7fff) + ((u >> 16) & I(1))) >> 16;
  // All ones in NaN lanes, from the sign of 0x7f800000 - |u| (no overflow: both in [0, 2^31)).
  // Arithmetic, not xsimd::select: xsimd 8.1's AVX-512 select on int32 does not compile at -O0.
  const I nan = (I(0x7f800000) - (u & I(0x7fffffff))) >> 31;
  alignas(64) int32_t tmp[W];
  (r ^ ((r ^ ((u >> 16) | I(0x40))) & nan)).store_aligned(tmp);
  for (int64_t i = 0; i < W; ++i) dst[i] = static_cast<uint16_t>(tmp[i]);
}

// e^x for the softmax of the fast sets (x <= the slack below, -inf or NaN): exp_softmax_lowp
// (exp.hpp: 10 instructions instead of exp()'s 24 with AVX-512, which matters because the AMX
// products leave the softmax as the bulk of the work; P is rounded to bf16, 2^-9, anyway). The
// portable set keeps exp().
inline B softmax_exp(const B& x) {
#if defined(__AVX512BF16__)
  if constexpr (W == 16) return exp_softmax_lowp<A>(x);
#endif
  return exp<A>(x);
}

// The running shift moves only when a tile's max exceeds it by more than this (natural log
// units): then exp(s - m) <= e^8 stays far inside fp32 and bf16 range, the sum and output are
// unchanged (the final division uses the same shift), and the accumulator is rescaled on a few
// tiles per row instead of on every tile where the max grew a little.
constexpr float kShiftSlack = 8.0f;

template <class Impl>
void attend_tiles(const AttendArgs& a, const LowpKV& kv, std::span<const KeySpan> spans, const TileMask* mask,
                  Workspace& ws) {
  const int64_t rows = a.rows;
  if (rows <= 0) return;
  const Precision prec = kv.prec_;
  const int64_t rp = round_up(rows, kRowPad), dp = kv.dp_, dvp = kv.dvp_;
  const int64_t qbytes = round_up(rp * dp * (prec == Precision::bf16 ? 2 : 1), 64);
  const int64_t pbytes = rp * kStepKeys * 2;
  float* S = ws.scores(rp * kStepKeys);
  float* acc = ws.acc(rp * dvp);
  float* m = ws.rowstats(rp + rp * W);
  float* lsum = m + rp;  // per row, W partial sums (one horizontal sum at the end)
  char* raw = reinterpret_cast<char*>(ws.packed((qbytes + pbytes) / 4 + 16));
  void* qbuf = raw;
  uint16_t* P = reinterpret_cast<uint16_t*>(raw + qbytes);

  const float qscale = pack_queries(a, prec, rp, dp, qbuf);
  // Padding rows of P stay zero (they add nothing); the real rows are written for each step's keys.
  std::memset(P + rows * kStepKeys, 0, static_cast<size_t>((rp - rows) * kStepKeys) * 2);
  std::memset(acc, 0, static_cast<size_t>(rp * dvp) * 4);
  std::memset(lsum, 0, static_cast<size_t>(rp * W) * 4);
  for (int64_t r = 0; r < rp; ++r) m[r] = kNegInf;

  Impl impl(kv, qbuf, rp, rows);
  impl.begin();
  const int64_t packed_keys = kv.tiles_ * kKeyTile;
  constexpr int64_t kTiles = kStepKeys / kKeyTile;
  for (const KeySpan& span : spans) {
    const int64_t sb = hi(span.begin, 0), se = lo(span.end, kv.n_k_);
    if (se <= sb) continue;
    for (int64_t k0 = sb / kKeyTile * kKeyTile; k0 < se; k0 += kStepKeys) {
      int64_t nk = lo(kStepKeys, packed_keys - k0);
      int64_t vb = hi(sb, k0), ve = lo(se, k0 + nk);  // visible keys of the step
      const TileKind kind = mask ? mask->classify(a.row0, rows, vb, ve - vb) : TileKind::Full;
      if (kind == TileKind::Empty) continue;
      // Drop trailing key tiles no row sees (the causal diagonal): a quarter to three quarters of
      // the step's work there.
      while (kind == TileKind::Partial && nk > kKeyTile) {
        const int64_t t0 = k0 + nk - kKeyTile, b = hi(vb, t0);
        if (b < ve && mask->classify(a.row0, rows, b, ve - b) != TileKind::Empty) break;
        nk -= kKeyTile;
        ve = lo(ve, k0 + nk);
      }
      const int64_t nt = nk / kKeyTile;
      impl.qk(k0 / kKeyTile, nt, S, kStepKeys);
      // Hide the keys outside the span and (Partial) those the mask hides: -inf in the raw scores,
      // which every factor below (> 0, or NaN) keeps -inf (or NaN).
      if (vb > k0 || ve < k0 + nk)
        for (int64_t r = 0; r < rows; ++r) {
          float* s = S + r * kStepKeys;
          for (int64_t j = 0; j < vb - k0; ++j) s[j] = kNegInf;
          for (int64_t j = ve - k0; j < nk; ++j) s[j] = kNegInf;
        }
      if (kind == TileKind::Partial) mask->apply(a.row0, rows, vb, ve - vb, S + (vb - k0), kStepKeys);
      // score = raw · f_t per key tile: the softmax scale, times the int8 scales of Q and K.
      B f[kTiles];
      float fs[kTiles];
      for (int64_t t = 0; t < nt; ++t) {
        float ft = prec == Precision::bf16 ? a.scale : a.scale * qscale * kv.kscale_[k0 / kKeyTile + t];
        if (ft == 0.0f) ft = 1.0f;  // an all-zero Q block or K tile: its raw dots are 0 anyway
        fs[t] = ft;
        f[t] = B(ft);
      }
      for (int64_t r = 0; r < rows; ++r) {
        const float* s = S + r * kStepKeys;
        uint16_t* pr = P + r * kStepKeys;
        if (m[r] == kNegInf) {  // nothing seen yet: the shift is this step's max
          B mx(kNegInf);
          for (int64_t t = 0; t < nt; ++t)
            for (int64_t j = t * kKeyTile; j < (t + 1) * kKeyTile; j += W)
              mx = max_skip_nan<A>(mx, B::load_aligned(s + j) * f[t]);
          const float tmax = hmax<A>(mx);
          if (tmax == kNegInf) {  // nothing visible in this step either (or only NaN: made NaN here)
            // The scores, not the raw dots: a NaN key makes its tile's int8 scale NaN (hmax skips NaN).
            bool nan = false;
            for (int64_t j = 0; j < nk; ++j) nan |= std::isnan(s[j] * fs[j / kKeyTile]);
            if (nan) lsum[r * W] = std::numeric_limits<float>::quiet_NaN();
            std::memset(pr, 0, static_cast<size_t>(nk) * 2);
            continue;
          }
          m[r] = tmax;
        }
        // One pass with the current shift that also finds how far the step's scores exceed it;
        // past the slack (rare after a row's first steps), move the shift and redo the pass.
        // The redone pass caps s·f - m at the slack: m is a rounded fp32 score, and where scores
        // reach ~1e9 its rounding alone (half an ulp: up to 64 and more) put u past exp's range,
        // inf / inf = NaN. The cap changes nothing else (after the move every u <= rounding noise).
        auto pass_over = [&](const B& shift, B& sum, auto capped) {
          B over(kNegInf);
          for (int64_t t = 0; t < nt; ++t)
            for (int64_t j = t * kKeyTile; j < (t + 1) * kKeyTile; j += W) {
              B u = xsimd::fma(B::load_aligned(s + j), f[t], shift);
              if constexpr (decltype(capped)::value) u = xsimd::select(u > B(kShiftSlack), B(kShiftSlack), u);  // NaN stays
              over = xsimd::max(over, u);
              const B p = softmax_exp(u);
              sum += p;
              store_bf16(p, pr + j);
            }
          return over;
        };
        for (int pass = 0; pass < 2; ++pass) {
          const B shift(-m[r]);
          B sum = B::load_aligned(lsum + r * W);
          const B over = pass == 0 ? pass_over(shift, sum, std::false_type{}) : pass_over(shift, sum, std::true_type{});
          if (pass == 0 && xsimd::any(over > B(kShiftSlack))) {
            const float tmax = m[r] + hmax<A>(over);
            const B al(std::exp(m[r] - tmax));
            m[r] = tmax;
            float* o = acc + r * dvp;
            for (int64_t c = 0; c < dvp; c += W) (B::load_aligned(o + c) * al).store_aligned(o + c);
            (B::load_aligned(lsum + r * W) * al).store_aligned(lsum + r * W);
            continue;
          }
          sum.store_aligned(lsum + r * W);
          break;
        }
      }
      impl.pv(P, kStepKeys, k0, nk, acc, dvp);
    }
  }
  impl.end();

  for (int64_t r = 0; r < rows; ++r) {
    float l = 0.0f;
    for (int64_t i = 0; i < W; ++i) l += lsum[r * W + i];
    float* o = a.out + r * a.out_stride;
    const bool any = l > 0.0f || std::isnan(l);
    const float inv = any ? 1.0f / l : 0.0f;
    for (int64_t c = 0; c < a.d_v; ++c) o[c] = any ? acc[r * dvp + c] * inv : 0.0f;
    if (a.row_max) a.row_max[r] = m[r] == kNegInf ? 0.0f : m[r];
    if (a.row_sum) a.row_sum[r] = l;
  }
}

}  // namespace lowp

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
