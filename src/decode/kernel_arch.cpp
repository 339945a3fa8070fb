// One SIMD path of the decode kernels (kernel.hpp). Compiled once per path (src/decode/meson.build)
// with that path's flags and -DATTNKIT_SIMD_NS / -DATTNKIT_SIMD_ARCH, like src/simd/attend_arch.cpp.
//
// Decode is bandwidth-bound: every cache row is loaded once and used by all query rows of its
// group (kRowBlock rows per register block), so the work per loaded byte is what GQA allows.
//   QK: 4 query rows x 2 keys = 8 vector accumulators over d, reduced with one haddp (AVX: 8 dot
//       products in one vector) — the rows' q vectors come from L1, the key vectors from memory.
//   softmax: per row a running (max, sum); the accumulator is rescaled only when the max grows.
//   PV: 4 rows x 2 output vectors of accumulators in registers over the 16 keys of a tile.
// bf16 / int8 elements are widened to float in registers as they are loaded (one vpmovzx/vpmovsx
// per vector: a widened copy in L1 scratch cost a store per vector, the bottleneck on Zen 2);
// int8 scales multiply the scores (keys) and the probabilities (values), never the elements.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>
#if defined(__AVX2__) || defined(__AVX512BW__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../simd/exp.hpp"
#include "kernel.hpp"

namespace attnkit::decode::ATTNKIT_SIMD_NS {

namespace {

using A = ATTNKIT_SIMD_ARCH;
using B = xsimd::batch<float, A>;
constexpr int64_t W = B::size;
constexpr int64_t TK = kTileKeys;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
static_assert(TK % W == 0, "a tile of scores is whole vectors");
static_assert(kRowBlock == 4, "dot4x2 computes 4 rows");

inline int64_t lo(int64_t a, int64_t b) { return a < b ? a : b; }

inline float to_f(float x) { return x; }
inline float to_f(int8_t x) { return static_cast<float>(x); }
inline float to_f(uint16_t x) {
  const uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// W consecutive stored elements as floats.
inline B load_f(const float* p) { return B::load_unaligned(p); }
inline B load_f(const uint16_t* p) {
#if defined(__AVX512BW__)
  static_assert(W == 16);
  return B(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16)));
#elif defined(__AVX2__)
  static_assert(W == 8);
  return B(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16)));
#else
  alignas(64) float t[W];
  for (int64_t i = 0; i < W; ++i) t[i] = to_f(p[i]);
  return B::load_aligned(t);
#endif
}
inline B load_f(const int8_t* p) {
#if defined(__AVX512BW__)
  static_assert(W == 16);
  return B(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))));
#elif defined(__AVX2__)
  static_assert(W == 8);
  return B(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
#else
  alignas(64) float t[W];
  for (int64_t i = 0; i < W; ++i) t[i] = to_f(p[i]);
  return B::load_aligned(t);
#endif
}

// out[2r + i] = q_r · k_i for 4 rows of q (row stride d) and keys k0, k1.
template <class E>
inline void dot4x2(const float* q, int64_t d, const E* k0, const E* k1, float* out) {
  B a[8];
  for (auto& x : a) x = B(0.0f);
  int64_t c = 0;
  for (; c + W <= d; c += W) {
    const B x0 = load_f(k0 + c), x1 = load_f(k1 + c);
    for (int r = 0; r < 4; ++r) {
      const B qr = B::load_unaligned(q + r * d + c);
      a[2 * r] = xsimd::fma(qr, x0, a[2 * r]);
      a[2 * r + 1] = xsimd::fma(qr, x1, a[2 * r + 1]);
    }
  }
  if constexpr (W == 8) {
    xsimd::haddp(a).store_unaligned(out);
  } else if constexpr (W == 4) {
    xsimd::haddp(a).store_unaligned(out);
    xsimd::haddp(a + 4).store_unaligned(out + 4);
  } else {
    for (int i = 0; i < 8; ++i) out[i] = xsimd::hadd(a[i]);
  }
  for (; c < d; ++c)
    for (int r = 0; r < 4; ++r) {
      out[2 * r] += q[r * d + c] * to_f(k0[c]);
      out[2 * r + 1] += q[r * d + c] * to_f(k1[c]);
    }
}

// acc[0..n) *= f
inline void scale_row(float* acc, int64_t n, float f) {
  const B fb(f);
  int64_t c = 0;
  for (; c + W <= n; c += W) (B::load_unaligned(acc + c) * fb).store_unaligned(acc + c);
  for (; c < n; ++c) acc[c] *= f;
}

// acc rows 0..3 (stride dv) += Σ_j p[r*TK + j] · v_j for j < nk.
template <class E>
inline void pv4(const float* p, const E* vp, int64_t nk, int64_t dv, float* acc) {
  int64_t c = 0;
  for (; c + 2 * W <= dv; c += 2 * W) {
    B o[8];
    for (int r = 0; r < 4; ++r) {
      o[2 * r] = B::load_unaligned(acc + r * dv + c);
      o[2 * r + 1] = B::load_unaligned(acc + r * dv + c + W);
    }
    for (int64_t j = 0; j < nk; ++j) {
      const B v0 = load_f(vp + j * dv + c), v1 = load_f(vp + j * dv + c + W);
      for (int r = 0; r < 4; ++r) {
        const B pr(p[r * TK + j]);
        o[2 * r] = xsimd::fma(pr, v0, o[2 * r]);
        o[2 * r + 1] = xsimd::fma(pr, v1, o[2 * r + 1]);
      }
    }
    for (int r = 0; r < 4; ++r) {
      o[2 * r].store_unaligned(acc + r * dv + c);
      o[2 * r + 1].store_unaligned(acc + r * dv + c + W);
    }
  }
  for (; c + W <= dv; c += W) {
    B o[4];
    for (int r = 0; r < 4; ++r) o[r] = B::load_unaligned(acc + r * dv + c);
    for (int64_t j = 0; j < nk; ++j) {
      const B v0 = load_f(vp + j * dv + c);
      for (int r = 0; r < 4; ++r) o[r] = xsimd::fma(B(p[r * TK + j]), v0, o[r]);
    }
    for (int r = 0; r < 4; ++r) o[r].store_unaligned(acc + r * dv + c);
  }
  for (; c < dv; ++c)
    for (int r = 0; r < 4; ++r) {
      float s = acc[r * dv + c];
      for (int64_t j = 0; j < nk; ++j) s += p[r * TK + j] * to_f(vp[j * dv + c]);
      acc[r * dv + c] = s;
    }
}

template <class E>
void attend_tiles(const Rows& R, const Block& blk, float* m, float* l, float* acc, float* s) {
  const int64_t d = R.d, dv = R.d_v, rows = R.rows;
  const E* kb = static_cast<const E*>(blk.k);
  const E* vb = static_cast<const E*>(blk.v);
  const bool int8 = std::is_same_v<E, int8_t>;
  for (int64_t j0 = 0; j0 < blk.count; j0 += TK) {
    const int64_t nk = lo(TK, blk.count - j0);
    const int64_t p0 = blk.pos0 + j0, p1 = p0 + nk;
    bool any = false;
    for (int64_t r = 0; r < rows; ++r) any |= R.begin[r] < p1 && R.end[r] > p0;
    if (!any) continue;
    const E* kp = kb + j0 * d;
    const E* vp = vb + j0 * dv;

    float dots[8];
    for (int64_t rb = 0; rb < rows; rb += 4) {
      for (int64_t j = 0; j < nk; j += 2) {
        if (rb == 0) {
          // pv4 reads the values one column block at a time (a cache line of each row of the
          // tile in turn), a pattern the hardware prefetcher follows badly: request this key
          // pair's value rows now, in order, while the dot products run; and the next tile's
          // key rows, so that they arrive during this tile's softmax and PV.
          const char* vr = reinterpret_cast<const char*>(vp + j * dv);
          for (int64_t o = 0; o < lo(2, nk - j) * dv * int64_t(sizeof(E)); o += 64) __builtin_prefetch(vr + o);
          const int64_t jn = j0 + TK + j, n2 = lo(2, blk.count - jn);
          if (n2 > 0) {
            const char* kr = reinterpret_cast<const char*>(kb + jn * d);
            for (int64_t o = 0; o < n2 * d * int64_t(sizeof(E)); o += 64) __builtin_prefetch(kr + o);
          }
        }
        const E* k1 = j + 1 < nk ? kp + (j + 1) * d : kp + j * d;
        dot4x2(R.q + rb * d, d, kp + j * d, k1, dots);
        for (int r = 0; r < 4; ++r) {
          s[(rb + r) * TK + j] = dots[2 * r];
          if (j + 1 < nk) s[(rb + r) * TK + j + 1] = dots[2 * r + 1];
        }
      }
    }

    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s + r * TK;
      if (!(R.begin[r] < p1 && R.end[r] > p0)) {
        for (int64_t j = 0; j < TK; ++j) sr[j] = 0.0f;
        continue;
      }
      if (int8)
        for (int64_t j = 0; j < nk; ++j) sr[j] *= blk.ks[j0 + j];
      for (int64_t j = nk; j < TK; ++j) sr[j] = kNegInf;
      if (R.begin[r] > p0 || R.end[r] < p1)
        for (int64_t j = 0; j < nk; ++j)
          if (p0 + j < R.begin[r] || p0 + j >= R.end[r]) sr[j] = kNegInf;
      float mt = m[r];
      for (int64_t j = 0; j < nk; ++j) mt = sr[j] > mt ? sr[j] : mt;
      if (mt == kNegInf || std::isnan(mt)) {  // nothing finite to add (NaN inputs propagate)
        if (std::isnan(mt)) {
          m[r] = mt;
          l[r] = mt;
        }
        for (int64_t j = 0; j < TK; ++j) sr[j] = 0.0f;
        continue;
      }
      if (mt != m[r]) {
        const float alpha = m[r] == kNegInf ? 0.0f : std::exp(m[r] - mt);
        l[r] *= alpha;
        scale_row(acc + r * dv, dv, alpha);
        m[r] = mt;
      }
      const B mb(mt);
      B sum(0.0f);
      for (int64_t j = 0; j < TK; j += W) {
        const B e = simd::ATTNKIT_SIMD_NS::exp(B::load_unaligned(sr + j) - mb);
        sum += e;
        e.store_unaligned(sr + j);
      }
      l[r] += xsimd::hadd(sum);
      if (int8)
        for (int64_t j = 0; j < nk; ++j) sr[j] *= blk.vs[j0 + j];
    }

    for (int64_t rb = 0; rb < rows; rb += 4) pv4(s + rb * TK, vp, nk, dv, acc + rb * dv);
  }
}

void attend_block(const Rows& R, const Block& blk, float* m, float* l, float* acc, float* scratch) {
  switch (blk.storage) {
    case KvStorage::F32: attend_tiles<float>(R, blk, m, l, acc, scratch); break;
    case KvStorage::BF16: attend_tiles<uint16_t>(R, blk, m, l, acc, scratch); break;
    case KvStorage::Int8: attend_tiles<int8_t>(R, blk, m, l, acc, scratch); break;
  }
}

void page_bounds(const float* q, int64_t d, const float* bounds, int64_t pages, float* out) {
  for (int64_t p = 0; p < pages; ++p) {
    const float* lo_ = bounds + p * 2 * d;
    const float* hi_ = lo_ + d;
    B a(0.0f);
    int64_t c = 0;
    for (; c + W <= d; c += W) {
      const B qv = B::load_unaligned(q + c);
      a += xsimd::max(qv * B::load_unaligned(lo_ + c), qv * B::load_unaligned(hi_ + c));
    }
    float t = xsimd::hadd(a);
    for (; c < d; ++c) t += std::fmax(q[c] * lo_[c], q[c] * hi_[c]);
    out[p] = t;
  }
}

double stream_sum(const float* p, int64_t n) {
  B a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 += B::load_aligned(p + i);
    a1 += B::load_aligned(p + i + W);
    a2 += B::load_aligned(p + i + 2 * W);
    a3 += B::load_aligned(p + i + 3 * W);
  }
  double t = xsimd::hadd((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) t += p[i];
  return t;
}

}  // namespace

extern const Kernels kernels{ATTNKIT_SIMD_NAME, attend_block, page_bounds, stream_sum};

}  // namespace attnkit::decode::ATTNKIT_SIMD_NS
