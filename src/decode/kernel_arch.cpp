// One SIMD path of the decode kernels (kernel.hpp). Compiled once per path (src/decode/meson.build)
// with that path's flags and -DATTNKIT_SIMD_NS / -DATTNKIT_SIMD_ARCH, like src/simd/attend_arch.cpp.
//
// Decode is bandwidth-bound: every cache row is loaded once and used by all query rows of its
// group (kRowBlock rows per register block), so the work per loaded byte is what GQA allows.
//   QK: 4 query rows x 3 keys = 12 vector accumulators over d (2 keys for int8, see kWide; 4 keys
//       on AVX-512), reduced with haddp — the rows' q vectors come from L1, the keys from memory.
//   softmax: per row a running (max, sum); the accumulator is rescaled only when the max grows;
//       vectorised for a tile every row sees whole (the common case).
//   PV: 4 rows x 3 output vectors of accumulators in registers over the keys of a tile (kTile).
//   The rows of the next tile are prefetched (into L2) during this tile's arithmetic.
// Per cache row that is 4 x (d + d_v) FMAs = 64 cycles at d = 128 on Zen 2 (two 8-wide FMAs per
// cycle); measured in L1 at 3.3 GHz: ~40 ns per row (f32), i.e. about half the FMA peak.
// bf16 elements are widened to float in registers as they are loaded (one vpmovzx per vector: a
// widened copy in L1 scratch cost a store per vector, the bottleneck on Zen 2). int8 storage runs
// integer dot products instead (q quantised to int16, weights to u8, see "int8 storage" below;
// tiles of 128 rows, kTile) where d <= 512,
// the float kernel with widened elements above; its scales multiply the scores (keys) and the
// probabilities (values), never the elements.
// AVX-512 (16-float vectors, 32 registers; measured on a Skylake-SP Xeon): QK takes 4 keys (16
// accumulators, one transposing reduction: hsum16), PV 4 output vectors per pass, bf16 splits its
// 64-byte loads into even and odd channels (eo_split) instead of widening, and int8 runs its QK and
// PV in 512-bit registers (dot4i_zmm, pv8_step_zmm). N = 65536, H = 32, G = 8, 2 threads, best of
// 3-5 rounds alternating with the previous build (a noisy shared host): f32 38.8 -> 31.2 ms per
// token (the read bandwidth), int8 23.6 -> 15.2, bf16 27.1 -> 23.2 (even / odd, in a slow phase);
// acceptance runs since: f32 32.3-35.9, bf16 18.2-21.9, int8 14.6-15.4.
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
#include "../simd/reduce.hpp"
#include "kernel.hpp"

namespace attnkit::decode::ATTNKIT_SIMD_NS {

namespace {

using A = ATTNKIT_SIMD_ARCH;
using B = xsimd::batch<float, A>;
constexpr int64_t W = B::size;
constexpr int64_t TK = kTileKeys;  // the scratch's row stride: room for the longest tile
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

// Software prefetch of the rows kPrefetchTiles tiles ahead, spread over the tile's arithmetic (the
// steps of the QK and PV loops): the hardware prefetcher alone left a tile's loads mostly
// serialised with its arithmetic (time per row ≈ compute + memory), and a burst of a whole tile's
// prefetches stalled the pipeline on full miss buffers.
constexpr int64_t kPrefetchTiles = 1;

inline thread_local int64_t tl_last_steps = 0;  // steps of this thread's last tile

struct Prefetch {
  const char *k = nullptr, *k_end = nullptr, *v = nullptr, *v_end = nullptr;
  // Paced: `rate` 1/256 lines per step, so that a tile's lines are spread over the steps of the
  // tile (counted in the previous one) instead of bursting at its start;
  // two lines per step filled the miss buffers and stalled the arithmetic behind the prefetches
  // (time ≈ compute + memory). Pacing, N = 65536, 1 thread, same process: f32 68.7 -> 51.0 ms,
  // bf16 52.4 -> 33.5 ms, int8 37.4 -> 23.7 ms.
  // last_steps starts from the thread's previous block: a block of one page (16 rows) is one tile,
  // and a fresh estimate per block would never pace.
  int64_t credit = 0, rate = 512, steps = 0, last_steps = tl_last_steps;
  // The order of a tile's lines: keys and values alternating, or all keys first (they are used
  // first). Measured, N = 65536 at 2 threads, best of 4 alternating runs: f32 alternating 22.1 ->
  // 17.2 ms per token (16384: 5.68 -> 4.65; 4096, in L3: 1.45 -> 1.22), pages:page=16,keep=8192
  // (f32) 5.09 -> 4.63, bf16 the same (12.6, 12.8); int8 is faster keys first (7.79 against 8.28).
  bool alternate = true, key_turn = false;
  explicit Prefetch(bool alternate_kv) : alternate(alternate_kv) {}
  void set(const void* kp, int64_t kn, const void* vp, int64_t vn) {
    k = static_cast<const char*>(kp);
    k_end = k + kn;
    v = static_cast<const char*>(vp);
    v_end = v + vn;
    const int64_t lines = (kn + vn + 63) / 64;
    if (last_steps > 0) rate = (lines * 256 + last_steps - 1) / last_steps;
    credit = 0;
  }
  inline void one() {
    key_turn = !alternate || !key_turn || v >= v_end;
    if (k < k_end && key_turn) {
      // prefetcht1: meant for L2, to keep the tile in L1; AMD documents T1/T2 stopping at L2 only
      // from Zen 4 on, and on this Zen 2 t0 and t1 measured alike (int8, N = 65536).
      __builtin_prefetch(k, 0, 2);
      k += 64;
    } else if (v < v_end) {
      __builtin_prefetch(v, 0, 2);
      v += 64;
    }
  }
  inline void step() {
    ++steps;
    credit += rate;
    while (credit >= 256) {
      one();
      credit -= 256;
    }
  }
  void finish() {
    for (; k < k_end; k += 64) __builtin_prefetch(k, 0, 2);
    for (; v < v_end; v += 64) __builtin_prefetch(v, 0, 2);
    if (steps > 0) last_steps = tl_last_steps = steps;
    steps = 0;
  }
};

// Prefetch steps of the float kernel: f32 steps every vector of channels in QK and every key in
// PV; bf16 (compute-bound: per cache row the same time for a cache in L3) once per dot4 call and
// every kCoarsePvKeys keys, as a step's bookkeeping is ~10 instructions against ~20 of arithmetic.
// N = 65536, 2 threads, best of 3 alternating: bf16 13.4 -> 11.4 ms per token (PV steps every 4
// keys 12.1, 16: 11.6, 32: 12.0); f32 with those steps 18.5 -> 22.0 (f32 is bound by the reads,
// whose timing the fine steps keep even).
template <class E>
constexpr bool kFinePacing = std::is_same_v<E, float>;
constexpr int64_t kCoarsePvKeys = 8;

// Keys per QK step and value vectors per PV step: 3 (12 accumulators, enough independent FMA chains
// to hide the FMA latency) where the 16 registers suffice; int8's widening needs one more register,
// and at 3 GCC spilled an accumulator every step (52 vs 42 ns per cache row at 2, in L1).
template <class E>
constexpr bool kWide = !std::is_same_v<E, int8_t>;
// With 16-float vectors (AVX-512: 32 registers) QK takes 4 keys per step: 16 accumulators that one
// haddp reduces (a 16-lane vector holds 16 sums), where 3 keys left 12 accumulators reduced one by
// one (~8 instructions each, as many as the step's FMAs).
constexpr int kQuadKeys = W == 16 ? 4 : 3;

// Keeps x in a register. Without it GCC folds the load of a q vector into each FMA that uses it
// (two loads instead of one), and the QK loop becomes load-bound on Zen 2's two load ports.
inline void in_reg(B& x) {
#if defined(__GNUC__) && defined(__AVX512F__)
  asm("" : "+v"(x.data));
#elif defined(__GNUC__) && (defined(__SSE2__) || defined(__AVX__))
  asm("" : "+x"(x.data));
#else
  (void)x;
#endif
}


#if defined(__AVX512F__)
// The 16 horizontal sums of a[0..16), in order, in one vector: 45 shuffles and adds (16 separate
// reductions: ~130). xsimd 8.1's haddp for avx512f returns its sums in the lane order
// 0 1 4 5 2 3 6 7 8 9 12 13 10 11 14 15, so it is not used.
// Int: the vectors hold int32 (the sums of int8 storage's QK, exact in any order).
template <bool Int = false>
inline __m512 hsum16(const __m512* a) {
  const auto add = [](__m512 x, __m512 y) {
    if constexpr (Int) return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(x), _mm512_castps_si512(y)));
    else return _mm512_add_ps(x, y);
  };
  __m512 b[8], c[4];
  for (int k = 0; k < 8; ++k) {  // per 128-bit lane: [x0+x2, y0+y2, x1+x3, y1+y3], x = a[2k], y = a[2k+1]
    const __m512 x = a[2 * k], y = a[2 * k + 1];
    b[k] = add(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y));
  }
  for (int k = 0; k < 4; ++k)  // per 128-bit lane: the lane sums of a[4k .. 4k+3]
    c[k] = add(_mm512_shuffle_ps(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
               _mm512_shuffle_ps(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 d0 = add(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                        _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 d1 = add(_mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(2, 0, 2, 0)),
                        _mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return add(_mm512_shuffle_f32x4(d0, d1, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(d0, d1, _MM_SHUFFLE(3, 1, 3, 1)));
}
inline __m512 hsum16(const B* a) {
  __m512 x[16];
  for (int i = 0; i < 16; ++i) x[i] = a[i];
  return hsum16<false>(x);
}
#endif

// out[0..n) = the horizontal sums of a[0..n): whole groups of W with one haddp (AVX-512: hsum16),
// the rest one by one.
template <int N>
inline void reduce_sums(const B* a, float* out) {
  int i = 0;
#if defined(__AVX512F__)
  static_assert(W == 16);
  for (; i + W <= N; i += W) _mm512_storeu_ps(out + i, hsum16(a + i));
#else
  for (; i + W <= N; i += W) xsimd::haddp(a + i).store_unaligned(out + i);
#endif
  for (; i < N; ++i) out[i] = xsimd::hadd(a[i]);
}

// out[r * K + i] = q_r · k_i for the 4 rows of q (row stride d) and K keys k0, k0 + d, ...
// 4 x K accumulators: K = 3 gives 12 independent FMA chains (enough to hide the FMA latency at two
// per cycle) with 4 q + 3 key loads per 12 FMAs; K = 2 and 1 take the tile's remainder.
template <int K, class E>
inline void dot4(const float* q, int64_t d, const E* k0, float* out, Prefetch& pf) {
  B a[4 * K];
  for (auto& x : a) x = B(0.0f);
  int64_t c = 0;
  if constexpr (!kFinePacing<E>) pf.step();
  for (; c + W <= d; c += W) {
    if constexpr (kFinePacing<E>) pf.step();
    B x[K];
    for (int i = 0; i < K; ++i) x[i] = load_f(k0 + i * d + c);
    for (int r = 0; r < 4; ++r) {
      B qr = B::load_unaligned(q + r * d + c);
      if constexpr (K > 1) in_reg(qr);
      for (int i = 0; i < K; ++i) a[r * K + i] = xsimd::fma(qr, x[i], a[r * K + i]);
    }
  }
  reduce_sums<4 * K>(a, out);
  for (; c < d; ++c)
    for (int r = 0; r < 4; ++r)
      for (int i = 0; i < K; ++i) out[r * K + i] += q[r * d + c] * to_f(k0[i * d + c]);
}

// acc[0..n) *= f
inline void scale_row(float* acc, int64_t n, float f) {
  const B fb(f);
  int64_t c = 0;
  for (; c + W <= n; c += W) (B::load_unaligned(acc + c) * fb).store_unaligned(acc + c);
  for (; c < n; ++c) acc[c] *= f;
}

// acc rows 0..3 (stride dv), columns [c, c + NV·W) += Σ_j p[r*TK + j] · v_j[c..] for j < nk.
// NV = 3: 12 accumulators in registers (12 FMAs per key against 5-cycle FMA latency).
template <int NV, class E>
inline void pv_cols(const float* p, const E* vp, int64_t nk, int64_t dv, float* acc, int64_t c, Prefetch& pf) {
  B o[4 * NV];
  for (int r = 0; r < 4; ++r)
    for (int i = 0; i < NV; ++i) o[r * NV + i] = B::load_unaligned(acc + r * dv + c + i * W);
  for (int64_t j = 0; j < nk; ++j) {
    if (kFinePacing<E> || j % kCoarsePvKeys == 0) pf.step();
    B v[NV];
    for (int i = 0; i < NV; ++i) v[i] = load_f(vp + j * dv + c + i * W);
    for (int r = 0; r < 4; ++r) {
      const B pr(p[r * TK + j]);
      for (int i = 0; i < NV; ++i) o[r * NV + i] = xsimd::fma(pr, v[i], o[r * NV + i]);
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int i = 0; i < NV; ++i) o[r * NV + i].store_unaligned(acc + r * dv + c + i * W);
}

// ---- bf16 storage on 16-float vectors (AVX-512): even / odd channels ----
// A 64-byte load holds 32 bf16 channels; shifting each 32-bit lane left by 16 gives the even
// channels as floats, masking off its low half the odd ones: 2 instructions per 32 channels where
// widening (vpmovzxwd + vpslld per 16) takes 4, on the ports the FMAs use. QK multiplies them by q
// in the same order (eo_q: per 32 channels, the 16 even then the 16 odd); PV accumulates even and
// odd channels apart and interleaves them once per tile.
#if defined(__AVX512F__)
constexpr bool kEvenOdd = true;
inline void eo_split(const uint16_t* p, __m512& even, __m512& odd) {
  const __m512i x = _mm512_loadu_si512(p);
  even = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// qeo[r * d + c + i] = q[r * d + c + 2i], qeo[r * d + c + 16 + i] = q[r * d + c + 2i + 1] for each
// 32 channels c (d a multiple of 32).
inline void eo_q(const float* q, int64_t rows, int64_t d, float* qeo) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < d; c += 32) {
      const __m512 a = _mm512_loadu_ps(q + r * d + c), b = _mm512_loadu_ps(q + r * d + c + 16);
      _mm512_storeu_ps(qeo + r * d + c, _mm512_permutex2var_ps(a, ie, b));
      _mm512_storeu_ps(qeo + r * d + c + 16, _mm512_permutex2var_ps(a, io, b));
    }
}

// out[r * 4 + i] = q_r · k_i for the 4 rows of qeo (eo_q's order, row stride d) and 4 bf16 keys.
inline void dot4_eo(const float* qeo, int64_t d, const uint16_t* k0, float* out, Prefetch& pf) {
  B a[16];
  for (auto& x : a) x = B(0.0f);
  pf.step();
  for (int64_t c = 0; c < d; c += 32) {
    __m512 e[4], o[4];
    for (int i = 0; i < 4; ++i) eo_split(k0 + i * d + c, e[i], o[i]);
    for (int r = 0; r < 4; ++r) {
      B qe = B::load_unaligned(qeo + r * d + c), qo = B::load_unaligned(qeo + r * d + c + 16);
      in_reg(qe);
      in_reg(qo);
      for (int i = 0; i < 4; ++i) a[r * 4 + i] = xsimd::fma(qo, B(o[i]), xsimd::fma(qe, B(e[i]), a[r * 4 + i]));
    }
  }
  reduce_sums<16>(a, out);
}

// acc rows 0..3 (stride dv), columns [c, c + 64) += Σ_j p[r*TK + j] · v_j[c..] for j < nk (bf16).
inline void pv_cols_eo(const float* p, const uint16_t* vp, int64_t nk, int64_t dv, float* acc, int64_t c, Prefetch& pf) {
  __m512 o[16];  // row r: even 0-31, odd 0-31, even 32-63, odd 32-63
  for (auto& x : o) x = _mm512_setzero_ps();
  for (int64_t j = 0; j < nk; ++j) {
    if (j % kCoarsePvKeys == 0) pf.step();
    __m512 v[4];
    eo_split(vp + j * dv + c, v[0], v[1]);
    eo_split(vp + j * dv + c + 32, v[2], v[3]);
    for (int r = 0; r < 4; ++r) {
      const __m512 pr = _mm512_set1_ps(p[r * TK + j]);
      for (int i = 0; i < 4; ++i) o[r * 4 + i] = _mm512_fmadd_ps(pr, v[i], o[r * 4 + i]);
    }
  }
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int r = 0; r < 4; ++r)
    for (int h = 0; h < 2; ++h) {
      float* ar = acc + r * dv + c + 32 * h;
      const __m512 e = o[r * 4 + 2 * h], od = o[r * 4 + 2 * h + 1];
      _mm512_storeu_ps(ar, _mm512_add_ps(_mm512_loadu_ps(ar), _mm512_permutex2var_ps(e, lo, od)));
      _mm512_storeu_ps(ar + 16, _mm512_add_ps(_mm512_loadu_ps(ar + 16), _mm512_permutex2var_ps(e, hi, od)));
    }
}
#else
constexpr bool kEvenOdd = false;
#endif

// acc rows 0..3 (stride dv) += Σ_j p[r*TK + j] · v_j for j < nk.
template <class E>
inline void pv4(const float* p, const E* vp, int64_t nk, int64_t dv, float* acc, Prefetch& pf) {
  int64_t c = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<E, uint16_t>)
    for (; c + 64 <= dv; c += 64) pv_cols_eo(p, vp, nk, dv, acc, c, pf);
#endif
  if constexpr (kWide<E> && W == 16) {
    // 32 registers: groups of 4 vectors (16 accumulators; d_v = 128 = 2 x 4), each pass over the
    // keys broadcasting the 4 rows' probabilities once
    for (; c + 4 * W <= dv; c += 4 * W) pv_cols<4>(p, vp, nk, dv, acc, c, pf);
    if (c + 3 * W <= dv) {
      pv_cols<3>(p, vp, nk, dv, acc, c, pf);
      c += 3 * W;
    }
  } else if constexpr (kWide<E>) {
    // Groups of 3 vectors, then of 2: a last single vector (4 accumulators) would be bound by the
    // FMA latency (d_v = 128 = 16 vectors: 4 x 3 + 2 x 2, not 5 x 3 + 1).
    const int64_t nv = dv / W;
    const int64_t n3 = nv % 3 == 1 && nv >= 4 ? nv / 3 - 1 : nv / 3;
    for (int64_t g = 0; g < n3; ++g, c += 3 * W) pv_cols<3>(p, vp, nk, dv, acc, c, pf);
  }
  for (; c + 2 * W <= dv; c += 2 * W) pv_cols<2>(p, vp, nk, dv, acc, c, pf);
  if (c + W <= dv) {
    pv_cols<1>(p, vp, nk, dv, acc, c, pf);
    c += W;
  }
  for (; c < dv; ++c)
    for (int r = 0; r < 4; ++r) {
      float s = acc[r * dv + c];
      for (int64_t j = 0; j < nk; ++j) s += p[r * TK + j] * to_f(vp[j * dv + c]);
      acc[r * dv + c] = s;
    }
}

// ---- int8 storage: integer dot products (Rows::q16 set) ----
// QK: q as int16 (quantised once per attend, engine.cpp) times the int8 keys, summed exactly in
// int32 (vpmaddwd: 16 products per instruction, no int8 -> float conversion of the keys);
// score = float(sum) · q scale · key scale. PV: per tile and row the weights p · v_scale as u8
// (quantize_u8) times the int8 values with vpmaddubsw, 8 cache rows per int32 widening (pv4u),
// summed exactly in int32 over the tile (<= 128 x 255 x 127 < 2^31), then acc += float(sum) ·
// weight scale. Both avoid the per-element int8 -> float conversions of the float kernel. Integer
// sums are exact, so every SIMD path computes the same sums; the portable path runs the same
// arithmetic in scalar code.

// sums[r * K + i] += Σ_{c0 <= c < d} q16[r][c] · k_i[c]: the channels past the last whole vector.
template <int K>
[[gnu::noinline]] void dot4i_tail(const int16_t* q, int64_t d, const int8_t* k0, int64_t c0, int32_t* sums) {
  for (int r = 0; r < 4; ++r)
    for (int i = 0; i < K; ++i) {
      int32_t s = 0;
      for (int64_t c = c0; c < d; ++c) s += int32_t{q[r * d + c]} * int32_t{k0[i * d + c]};
      sums[r * K + i] += s;
    }
}

#if defined(__AVX2__)
// The exact int32 sums Σ_c q16[r][c] · k_i[c] of the 4 rows and K <= 2 keys, as
// [r0k0, r0k1, r1k0, r1k1, r2k0, r2k1, r3k0, r3k1] (K = 2; K = 1: row r at 2r).
template <int K>
inline __m256i dot4i_vec(const int16_t* q, int64_t d, const int8_t* k0, Prefetch& pf) {
  static_assert(K == 1 || K == 2);
  int64_t c = 0;
  // Named accumulators (an array of them made GCC shuffle registers every step).
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const int8_t* k1 = k0 + (K == 2 ? d : 0);
  pf.step();  // once per call: a step per 16 channels cost more instructions than the madds' slack
  for (; c + 16 <= d; c += 16) {
    const __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k0 + c)));
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + c));
    const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + d + c));
    const __m256i q2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 2 * d + c));
    const __m256i q3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 3 * d + c));
    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(q0, x0));
    a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(q1, x0));
    a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(q2, x0));
    a6 = _mm256_add_epi32(a6, _mm256_madd_epi16(q3, x0));
    if constexpr (K == 2) {
      const __m256i x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k1 + c)));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(q0, x1));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(q1, x1));
      a5 = _mm256_add_epi32(a5, _mm256_madd_epi16(q2, x1));
      a7 = _mm256_add_epi32(a7, _mm256_madd_epi16(q3, x1));
    }
  }
  // Horizontal sums with a hadd tree (exact int32): lane 2r + i = row r, key i.
  const __m256i h01 = _mm256_hadd_epi32(a0, a1), h23 = _mm256_hadd_epi32(a2, a3);
  const __m256i h45 = _mm256_hadd_epi32(a4, a5), h67 = _mm256_hadd_epi32(a6, a7);
  const __m256i h03 = _mm256_hadd_epi32(h01, h23), h47 = _mm256_hadd_epi32(h45, h67);
  __m256i t = _mm256_add_epi32(_mm256_permute2x128_si256(h03, h47, 0x20), _mm256_permute2x128_si256(h03, h47, 0x31));
  if (c < d) {  // channels past the last whole vector
    alignas(32) int32_t sums[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sums), t);
    if constexpr (K == 1) {
      int32_t s4[4] = {sums[0], sums[2], sums[4], sums[6]};
      dot4i_tail<1>(q, d, k0, c, s4);
      for (int r = 0; r < 4; ++r) sums[2 * r] = s4[r];
    } else {
      dot4i_tail<2>(q, d, k0, c, sums);
    }
    t = _mm256_load_si256(reinterpret_cast<const __m256i*>(sums));
  }
  return t;
}

// srow[r * TK + j] = float(sum_r,j) · qs[r] (· ks[j] if ks) for 8 keys j of the 4 rows, from the
// dot4i_vec<2> sums of their 4 key pairs: a 4 x 4 transpose of 64-bit (row, pair) cells gives
// each row its 8 scores in order (the scalar scatter of 8 scores per pair took ~9% of the kernel).
inline void scores8(const __m256i t[4], const float* qs, const float* ks, float* srow) {
  const __m256d a = _mm256_castsi256_pd(t[0]), b = _mm256_castsi256_pd(t[1]);
  const __m256d c = _mm256_castsi256_pd(t[2]), e = _mm256_castsi256_pd(t[3]);
  const __m256d u0 = _mm256_unpacklo_pd(a, b), u1 = _mm256_unpackhi_pd(a, b);
  const __m256d u2 = _mm256_unpacklo_pd(c, e), u3 = _mm256_unpackhi_pd(c, e);
  const __m256d row[4] = {_mm256_permute2f128_pd(u0, u2, 0x20), _mm256_permute2f128_pd(u1, u3, 0x20),
                          _mm256_permute2f128_pd(u0, u2, 0x31), _mm256_permute2f128_pd(u1, u3, 0x31)};
  const __m256 kv = ks ? _mm256_loadu_ps(ks) : _mm256_set1_ps(1.0f);
  for (int r = 0; r < 4; ++r) {
    // (float(sum) · qs) · ks: the order (and so the rounding) of the scalar path
    __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_castpd_si256(row[r])), _mm256_set1_ps(qs[r]));
    if (ks) x = _mm256_mul_ps(x, kv);
    _mm256_storeu_ps(srow + r * TK, x);
  }
}
#endif

#if defined(__AVX512BW__)
// AVX-512BW, d a multiple of 32: the exact int32 sums Σ_c q16[r][c] · k_i[c] of the 4 rows and 4
// keys k0, k0 + d, ..., lane 4r + i = row r, key i. Twice the channels per vpmaddwd of dot4i_vec
// and 16 accumulators in the 32 registers.
inline __m512i dot4i_zmm(const int16_t* q, int64_t d, const int8_t* k0, Prefetch& pf) {
  __m512 a[16];
  for (auto& x : a) x = _mm512_setzero_ps();
  pf.step();
  for (int64_t c = 0; c < d; c += 32) {
    __m512i x[4];
    for (int i = 0; i < 4; ++i) x[i] = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k0 + i * d + c)));
    for (int r = 0; r < 4; ++r) {
      const __m512i qr = _mm512_loadu_si512(q + r * d + c);
      for (int i = 0; i < 4; ++i)
        a[r * 4 + i] = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a[r * 4 + i]), _mm512_madd_epi16(qr, x[i])));
    }
  }
  return _mm512_castps_si512(hsum16<true>(a));
}

// srow[r * TK + j] = (float(sum_r,j) · qs[r]) · ks[j] for 16 keys j of the 4 rows, from the
// dot4i_zmm sums of their 4 key quads: a 4 x 4 transpose of 128-bit (row, quad) cells.
inline void scores16(const __m512i t[4], const float* qs, const float* ks, float* srow) {
  const __m512i u0 = _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0));  // t0 rows 0 1, t1 rows 0 1
  const __m512i u1 = _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2));
  const __m512i u2 = _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i u3 = _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2));
  const __m512i row[4] = {_mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(3, 1, 3, 1)),
                          _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(3, 1, 3, 1))};
  const __m512 kv = _mm512_loadu_ps(ks);
  for (int r = 0; r < 4; ++r)
    _mm512_storeu_ps(srow + r * TK, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(row[r]), _mm512_set1_ps(qs[r])), kv));
}
#endif

// out[r * K + i] = float(Σ_c q16[r][c] · k_i[c]) (exact int32 sum) for the 4 rows and K <= 2 keys.
template <int K>
inline void dot4i(const int16_t* q, int64_t d, const int8_t* k0, float* out, Prefetch& pf) {
  static_assert(K == 1 || K == 2);
#if defined(__AVX2__)
  const __m256i t = dot4i_vec<K>(q, d, k0, pf);
  _mm256_storeu_ps(out, _mm256_cvtepi32_ps(t));
  if constexpr (K == 1)  // the K = 1 sums sit at 0, 2, 4, 6
    for (int r = 1; r < 4; ++r) out[r] = out[2 * r];
#else
  (void)pf;
  int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  dot4i_tail<K>(q, d, k0, 0, sums);
  for (int i = 0; i < 4 * K; ++i) out[i] = static_cast<float>(sums[i]);
#endif
}

// ---- int8 PV: u8 weights, 8 cache rows per widening ----
// vpmaddubsw multiplies 32 u8 x s8 byte pairs per instruction and sums adjacent products into
// int16; vpmaddwd (int16 pairs, the previous kernel) does 16. The cache rows are interleaved four
// at a time (each 32-bit lane: one channel of rows j..j+3), so that a lane's two int16 sums are
// w_j·v_j + w_j+1·v_j+1 and w_j+2·v_j+2 + w_j+3·v_j+3; the next four rows' products are added in
// int16 and one vpmaddwd with ones widens the lane to the int32 sum of 8 rows. That is 3
// multiplying instructions per 64 multiply-adds instead of 4 (the PV loop in L1: 41 -> 31 cycles
// per cache row). No int16 sum may overflow: each sums 4 weights times values of |v| <= 127, so
// the weights are scaled for 4 of them to sum to at most 256 (+ 2 from rounding: 258 · 127 < 2^15).

// The weight groups of one lane: positions {0, 1, 4, 5} and {2, 3, 6, 7} of each 8.
// w8[j] (j < nk rounded up to 8; 0 past nk) = min(round-half-even(w[j] · 256 / G), 255), G the
// largest lane group sum (x0 + x4) + (x1 + x5) or (x2 + x6) + (x3 + x7) over the groups of 8
// weights w >= 0 of one row (that order of additions on every path); returns the weight scale
// G / 256 (0 if no weight is positive; a NaN weight is never the largest sum and becomes 255).
inline float quantize_u8(const float* w, int64_t nk, uint8_t* w8) {
  const int64_t nk8 = (nk + 7) / 8 * 8;
  float G = 0;
  int64_t j = 0;
#if defined(__AVX512F__)
  {  // two groups per vector, the same additions per lane as below
    __m512 gz = _mm512_setzero_ps();
    for (; j + 16 <= nk; j += 16) {
      const __m512 x = _mm512_loadu_ps(w + j);
      const __m512 t = _mm512_add_ps(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(2, 3, 0, 1)));
      const __m512 u = _mm512_add_ps(t, _mm512_permute_ps(t, _MM_SHUFFLE(2, 3, 0, 1)));
      gz = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, gz, _CMP_GT_OQ), gz, u);
    }
    G = _mm512_reduce_max_ps(gz);  // no NaN (the blend lets none win), all >= 0
  }
#endif
#if defined(__AVX2__)
  __m256 gv = _mm256_setzero_ps();
  for (; j + 8 <= nk; j += 8) {
    const __m256 x = _mm256_loadu_ps(w + j);
    const __m256 t = _mm256_add_ps(x, _mm256_permute2f128_ps(x, x, 1));        // x0+x4, x1+x5, ...
    const __m256 u = _mm256_add_ps(t, _mm256_permute_ps(t, _MM_SHUFFLE(2, 3, 0, 1)));  // lane 0, 2: the sums
    gv = _mm256_blendv_ps(gv, u, _mm256_cmp_ps(u, gv, _CMP_GT_OQ));
  }
  const float g8 = simd::ATTNKIT_SIMD_NS::hmax_m256(gv);  // gv holds no NaN (the blend lets none win)
  G = g8 > G ? g8 : G;
#endif
  for (; j < nk8; j += 8) {
    float x[8];
    for (int i = 0; i < 8; ++i) x[i] = j + i < nk ? w[j + i] : 0.0f;
    const float lo = (x[0] + x[4]) + (x[1] + x[5]), hi = (x[2] + x[6]) + (x[3] + x[7]);
    G = lo > G ? lo : G;
    G = hi > G ? hi : G;
  }
  if (!(G > 0)) {
    std::memset(w8, 0, static_cast<size_t>(nk8));
    return 0.0f;
  }
  const float inv = 256.0f / G;
  j = 0;
#if defined(__AVX512F__)
  {
    const __m512 iv = _mm512_set1_ps(inv), top = _mm512_set1_ps(255.0f);
    for (; j + 16 <= nk; j += 16) {
      // as below; values in [0, 255], so the unsigned saturating narrowing is exact
      const __m512i x = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(_mm512_loadu_ps(w + j), iv), top));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(w8 + j), _mm512_cvtusepi32_epi8(x));
    }
  }
#endif
#if defined(__AVX2__)
  // _mm256_cvtps_epi32 rounds in the current (default: nearest-even) mode, like std::nearbyint;
  // _mm256_min_ps(x, 255) gives 255 for a NaN x, like the scalar loop.
  const __m256 iv = _mm256_set1_ps(inv), top = _mm256_set1_ps(255.0f);
  for (; j + 8 <= nk; j += 8) {
    const __m256i x = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_loadu_ps(w + j), iv), top));
    const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(w8 + j), _mm_packus_epi16(h, h));
  }
#endif
  for (; j < nk8; ++j) {
    if (j >= nk) {
      w8[j] = 0;
      continue;
    }
    const float y = w[j] * inv;
    w8[j] = static_cast<uint8_t>(std::nearbyint(y < 255.0f ? y : 255.0f));
  }
  return G / 256.0f;
}

// acc[r * dv + c] += float(Σ_j w8[r][j] · v_j[c]) · ws[r] for c in [c0, dv): past the last whole block.
[[gnu::noinline]] void pv4u_tail(const uint8_t* w8, const float* ws, const int8_t* vp, int64_t nk, int64_t dv, float* acc,
                                 int64_t c0) {
  for (int64_t c = c0; c < dv; ++c)
    for (int r = 0; r < 4; ++r) {
      int32_t s = 0;
      for (int64_t j = 0; j < nk; ++j) s += int32_t{w8[r * TK + j]} * int32_t{vp[j * dv + c]};
      acc[r * dv + c] += static_cast<float>(s) * ws[r];
    }
}

// The int8 kernel paces its prefetches (Prefetch) over the whole tile, QK and PV, a step per
// about the same time: a QK step (dot4i_vec<2>: 2 keys of 4 rows) takes ~82 cycles, a pv8_step
// ~29. With steps only in QK, the next tile's lines were requested during QK at twice the mean
// rate, about one core's streaming bandwidth, and none during PV: N = 65536, 2 threads, best of 5
// alternating, 8.22 -> 7.81 ms per token with a step per 3 pv8_steps (per 2: 7.92, per 4: 7.81,
// per 6: 8.02; 1 thread: 16.0 -> 15.3 ms).
constexpr int kPvStepsPerPacing = 3;

#if defined(__AVX2__) && defined(__GNUC__)
alignas(32) constexpr int16_t kOnes16[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// One step of pv4u: rows a[0..7] (16 channels each) times the 4 rows' weights wb[r * TK + 0..7]
// into o[2r] (channels 0-7) and o[2r + 1] (8-15). Inline asm (GCC and clang): given intrinsics,
// GCC computed all 16 products before the sums and kept accumulators on the stack (17+ live
// vectors); written out, the step needs the 8 accumulators, the 4 interleaved vectors and 4
// temporaries: the 16 registers. The rows a[i] are read without "m" operands: the cache is not
// written while an attend runs. Other compilers run pv4u_tail's scalar loop.
inline void pv8_step(const int8_t* const a[8], const uint8_t* wb, __m256i& o0, __m256i& o1, __m256i& o2, __m256i& o3,
                     __m256i& o4, __m256i& o5, __m256i& o6, __m256i& o7) {
  static_assert(TK == 128, "the weight displacements below are rows of 128 bytes");
#define ATTNKIT_PV8_ROW(off, oa, ob)                                                                  \
  "vpbroadcastd " #off "(%[w]), %%ymm12\n\t"                                                         \
  "vpbroadcastd 4+" #off "(%[w]), %%ymm13\n\t"                                                       \
  "vpmaddubsw %%ymm8, %%ymm12, %%ymm14\n\t"                                                         \
  "vpmaddubsw %%ymm10, %%ymm13, %%ymm15\n\t"                                                        \
  "vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                                                            \
  "vpmaddwd %[ones], %%ymm14, %%ymm14\n\t"                                                          \
  "vpaddd %%ymm14, %[" #oa "], %[" #oa "]\n\t"                                                       \
  "vpmaddubsw %%ymm9, %%ymm12, %%ymm14\n\t"                                                         \
  "vpmaddubsw %%ymm11, %%ymm13, %%ymm15\n\t"                                                        \
  "vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                                                            \
  "vpmaddwd %[ones], %%ymm14, %%ymm14\n\t"                                                          \
  "vpaddd %%ymm14, %[" #ob "], %[" #ob "]\n\t"
// Rows p0..p3 (16 channels each) into ymm A (channels 0-7) and ymm B (8-15), each 32-bit lane one
// channel of the 4 rows; C..F are scratch.
#define ATTNKIT_PV8_QUAD(p0, p1, p2, p3, A, B, C, D, E, F)                                            \
  "vmovdqu (%[" #p0 "]), %%xmm" #A "\n\t"                                                           \
  "vmovdqu (%[" #p1 "]), %%xmm" #B "\n\t"                                                           \
  "vmovdqu (%[" #p2 "]), %%xmm" #C "\n\t"                                                           \
  "vmovdqu (%[" #p3 "]), %%xmm" #D "\n\t"                                                           \
  "vpunpckhbw %%xmm" #B ", %%xmm" #A ", %%xmm" #E "\n\t"                                            \
  "vpunpcklbw %%xmm" #B ", %%xmm" #A ", %%xmm" #A "\n\t"                                            \
  "vpunpckhbw %%xmm" #D ", %%xmm" #C ", %%xmm" #F "\n\t"                                            \
  "vpunpcklbw %%xmm" #D ", %%xmm" #C ", %%xmm" #C "\n\t"                                            \
  "vpunpckhwd %%xmm" #C ", %%xmm" #A ", %%xmm" #B "\n\t"                                            \
  "vpunpcklwd %%xmm" #C ", %%xmm" #A ", %%xmm" #A "\n\t"                                            \
  "vinserti128 $1, %%xmm" #B ", %%ymm" #A ", %%ymm" #A "\n\t"                                       \
  "vpunpckhwd %%xmm" #F ", %%xmm" #E ", %%xmm" #B "\n\t"                                            \
  "vpunpcklwd %%xmm" #F ", %%xmm" #E ", %%xmm" #E "\n\t"                                            \
  "vinserti128 $1, %%xmm" #B ", %%ymm" #E ", %%ymm" #B "\n\t"
  // X0, X1 (rows 0-3) in ymm8, ymm9; Y0, Y1 (rows 4-7) in ymm10, ymm11.
  asm(ATTNKIT_PV8_QUAD(a0, a1, a2, a3, 8, 9, 10, 11, 12, 13) ATTNKIT_PV8_QUAD(a4, a5, a6, a7, 10, 11, 12, 13, 14, 15)
      ATTNKIT_PV8_ROW(0, o0, o1) ATTNKIT_PV8_ROW(128, o2, o3) ATTNKIT_PV8_ROW(256, o4, o5) ATTNKIT_PV8_ROW(384, o6, o7)
      : [o0] "+x"(o0), [o1] "+x"(o1), [o2] "+x"(o2), [o3] "+x"(o3), [o4] "+x"(o4), [o5] "+x"(o5), [o6] "+x"(o6),
        [o7] "+x"(o7)
      : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [a4] "r"(a[4]), [a5] "r"(a[5]),
        [a6] "r"(a[6]), [a7] "r"(a[7]), [w] "r"(wb), [ones] "m"(*reinterpret_cast<const __m256i*>(kOnes16)),
        "m"(*reinterpret_cast<const uint8_t(*)[4 * TK]>(wb))
      : "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
#undef ATTNKIT_PV8_ROW
#undef ATTNKIT_PV8_QUAD
}
#endif

#if defined(__AVX512BW__)
// pv8_step in 512-bit registers: 8 cache rows x 32 channels. Four rows' 32 bytes are interleaved in
// each 128-bit lane as in ATTNKIT_PV8_QUAD (32-bit lane: one channel of the 4 rows), which leaves
// the channels of the two vectors of a quad in the order [0-3, 16-19, 8-11, 24-27] and
// [4-7, 20-23, 12-15, 28-31]; pv4u puts them in order once per tile (kPvLoIdx, kPvHiIdx). Half the
// shuffles and multiplying instructions per channel of the 256-bit step, and 32 registers: written
// with intrinsics, GCC keeps the 8 accumulators and the 4 interleaved vectors in registers.
inline void quad_zmm(const int8_t* p0, const int8_t* p1, const int8_t* p2, const int8_t* p3, __m512i& x0, __m512i& x1) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1));
  const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p2));
  const __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p3));
  const __m256i ab_lo = _mm256_unpacklo_epi8(a, b), ab_hi = _mm256_unpackhi_epi8(a, b);
  const __m256i cd_lo = _mm256_unpacklo_epi8(c, d), cd_hi = _mm256_unpackhi_epi8(c, d);
  x0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_unpacklo_epi16(ab_lo, cd_lo)), _mm256_unpacklo_epi16(ab_hi, cd_hi), 1);
  x1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_unpackhi_epi16(ab_lo, cd_lo)), _mm256_unpackhi_epi16(ab_hi, cd_hi), 1);
}

// o[2r], o[2r + 1] += the int32 sums over the 8 rows a[0..7] (32 channels each, quad_zmm's order)
// of w8[r * TK + i] · a[i] for the 4 query rows r.
inline void pv8_step_zmm(const int8_t* const a[8], const uint8_t* wb, __m512i o[8]) {
  __m512i x0, x1, y0, y1;
  quad_zmm(a[0], a[1], a[2], a[3], x0, x1);
  quad_zmm(a[4], a[5], a[6], a[7], y0, y1);
  const __m512i ones = _mm512_set1_epi16(1);
  for (int r = 0; r < 4; ++r) {
    int32_t w0, w1;
    std::memcpy(&w0, wb + r * TK, 4);
    std::memcpy(&w1, wb + r * TK + 4, 4);
    const __m512i b0 = _mm512_set1_epi32(w0), b1 = _mm512_set1_epi32(w1);
    // 4 products of |w| <= 258 (rows j..j+3 sum to <= 258) times |v| <= 127 per int16: no overflow
    const __m512i lo = _mm512_add_epi16(_mm512_maddubs_epi16(b0, x0), _mm512_maddubs_epi16(b1, y0));
    const __m512i hi = _mm512_add_epi16(_mm512_maddubs_epi16(b0, x1), _mm512_maddubs_epi16(b1, y1));
    o[2 * r] = _mm512_add_epi32(o[2 * r], _mm512_madd_epi16(lo, ones));
    o[2 * r + 1] = _mm512_add_epi32(o[2 * r + 1], _mm512_madd_epi16(hi, ones));
  }
}
#endif

// a[i] = b + i · dv: the 8 rows of a whole group, from the address of its first.
inline void group_rows(const int8_t* b, int64_t dv, const int8_t* a[8]) {
  for (int i = 0; i < 8; ++i) a[i] = b + i * dv;
}
// a[i] = channel c of value row j + i (i < 8); past nk, row nk - 1 again (in the block; its
// weight there is 0).
inline void value_rows(const int8_t* vp, int64_t j, int64_t nk, int64_t dv, int64_t c, const int8_t* a[8]) {
  if (j + 8 <= nk) {
    group_rows(vp + j * dv + c, dv, a);
  } else {
    for (int i = 0; i < 8; ++i) a[i] = vp + (j + i < nk ? j + i : nk - 1) * dv + c;
  }
}

// acc rows 0..3 (stride dv) += float(Σ_j w8[r][j] · v_j) · ws[r] for j < nk (w8 row stride TK,
// quantize_u8's weights: 0 from nk to the next multiple of 8).
inline void pv4u(const uint8_t* w8, const float* ws, const int8_t* vp, int64_t nk, int64_t dv, float* acc, Prefetch& pf) {
  int64_t c = 0;
#if defined(__AVX512BW__)
  {
    int since_step = 0;
    const int64_t nk8 = (nk + 7) / 8 * 8;
    // lanes of (x0 sums, x1 sums) holding channels 0-15 and 16-31 (see quad_zmm)
    const __m512i lo_idx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi_idx = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    // Whole groups of 8 rows take their row addresses from one base (value_rows' per-row clamp,
    // its spills and the pacing counter were ~20 scalar instructions per step of ~110), two groups
    // per prefetch step (a step does twice the 256-bit step's work, kPvStepsPerPacing); the group
    // past nk (if any) goes through value_rows.
    const int64_t nk16 = nk / 16 * 16;
    for (; c + 32 <= dv; c += 32) {
      __m512i o[8];
      for (auto& x : o) x = _mm512_setzero_si512();
      int64_t j = 0;
      for (; j < nk16; j += 16) {
        const int8_t* a[8];
        group_rows(vp + j * dv + c, dv, a);
        pv8_step_zmm(a, w8 + j, o);
        group_rows(vp + (j + 8) * dv + c, dv, a);
        pv8_step_zmm(a, w8 + j + 8, o);
        pf.step();
      }
      for (; j < nk8; j += 8) {
        const int8_t* a[8];
        value_rows(vp, j, nk, dv, c, a);
        pv8_step_zmm(a, w8 + j, o);
        if (++since_step == 2) {
          since_step = 0;
          pf.step();
        }
      }
      for (int r = 0; r < 4; ++r) {
        const __m512 f = _mm512_set1_ps(ws[r]);
        const __m512 s0 = _mm512_cvtepi32_ps(o[2 * r]), s1 = _mm512_cvtepi32_ps(o[2 * r + 1]);
        float* ar = acc + r * dv + c;
        _mm512_storeu_ps(ar, _mm512_fmadd_ps(_mm512_permutex2var_ps(s0, lo_idx, s1), f, _mm512_loadu_ps(ar)));
        _mm512_storeu_ps(ar + 16, _mm512_fmadd_ps(_mm512_permutex2var_ps(s0, hi_idx, s1), f, _mm512_loadu_ps(ar + 16)));
      }
    }
  }
#endif
#if defined(__AVX2__) && defined(__GNUC__)
  int since_step = 0;
  const int64_t nk8 = (nk + 7) / 8 * 8;
  for (; c + 16 <= dv; c += 16) {
    __m256i o0 = _mm256_setzero_si256(), o1 = o0, o2 = o0, o3 = o0, o4 = o0, o5 = o0, o6 = o0, o7 = o0;
    // Prefetch pacing continues here, a step per kPvStepsPerPacing pv8_steps (see there).
    for (int64_t j = 0; j < nk8; j += 8) {
      const int8_t* a[8];
      value_rows(vp, j, nk, dv, c, a);
      pv8_step(a, w8 + j, o0, o1, o2, o3, o4, o5, o6, o7);
      if (++since_step == kPvStepsPerPacing) {
        since_step = 0;
        pf.step();
      }
    }
    auto put = [&](int r, __m256i lo8, __m256i hi8) {
      const __m256 f = _mm256_set1_ps(ws[r]);
      float* ar = acc + r * dv + c;
      _mm256_storeu_ps(ar, _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo8), f, _mm256_loadu_ps(ar)));
      _mm256_storeu_ps(ar + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi8), f, _mm256_loadu_ps(ar + 8)));
    };
    put(0, o0, o1);
    put(1, o2, o3);
    put(2, o4, o5);
    put(3, o6, o7);
  }
#else
  (void)pf;
#endif
  if (c < dv) pv4u_tail(w8, ws, vp, nk, dv, acc, c);
}

// Cache rows per tile: the per-tile work (softmax bookkeeping, the weights' scale, the PV
// accumulators' load, scale and store) is a fixed cost per tile. int8's tile is 128 rows (33 KiB at
// d = 128): N = 65536 at 2 threads, 9.6 -> 9.2 ms per token against 32 rows. f32 and bf16 keep 32
// (32 KiB of f32 rows): at 128 their prefetched tile ahead crowded L2 (f32 23.6 -> 25.1 ms).
template <class E>
constexpr int64_t kTile = std::is_same_v<E, int8_t> ? 128 : 32;
static_assert(kTile<int8_t> <= TK && kTile<float> <= TK && kTile<uint16_t> <= TK);

template <class E>
void attend_tiles(const Rows& R, const Block& blk, float* m, float* l, float* acc, float* s) {
  constexpr int64_t tile = kTile<E>;
  const int64_t d = R.d, dv = R.d_v, rows = R.rows;
  const E* kb = static_cast<const E*>(blk.k);
  const E* vb = static_cast<const E*>(blk.v);
  constexpr bool int8 = std::is_same_v<E, int8_t>;
  const bool use_int = int8 && R.q16;  // the integer kernel (int8, d <= kInt16MaxD)
  const int64_t kbytes = d * int64_t(sizeof(E)), vbytes = dv * int64_t(sizeof(E));
  // bf16 on 16-float vectors: q in even / odd channel order (dot4_eo), in the scratch after the
  // int8 part, at a whole vector (a load split across two cache lines costs two)
  [[maybe_unused]] const bool use_eo = kEvenOdd && std::is_same_v<E, uint16_t> && d % 32 == 0;
  [[maybe_unused]] float* qeo = s + (rows * TK + rows * (TK / 4) + rows + 15) / 16 * 16;
#if defined(__AVX512F__)
  if (use_eo) eo_q(R.q, rows, d, qeo);
#endif
  // The first tiles: nobody requested them yet.
  Prefetch pf(!int8);
  // A block of several tiles requests, during its last tile, the next block's first tile (one tile
  // ahead, like its own tiles); a block of one tile (a page) the block after next's, and the first
  // block of a run its own and the next block's at its start (one block ahead is too close).
  const bool long_block = blk.count > tile;
  if (!blk.first_requested) {  // the first tiles: nobody requested them yet
    pf.set(kb, lo(kPrefetchTiles * tile, blk.count) * kbytes, vb, lo(kPrefetchTiles * tile, blk.count) * vbytes);
    pf.finish();
    if (blk.next_k[0] && !long_block) {
      const int64_t n = lo(tile, blk.next_count[0]);
      pf.set(blk.next_k[0], n * kbytes, blk.next_v[0], n * vbytes);
      pf.finish();
    }
  }
  for (int64_t j0 = 0; j0 < blk.count; j0 += tile) {
    const int64_t nk = lo(tile, blk.count - j0);
    const int64_t p0 = blk.pos0 + j0, p1 = p0 + nk;
    {  // the tile kPrefetchTiles ahead (or the next block's first rows), requested during this one
      pf.finish();
      const int64_t a = j0 + kPrefetchTiles * tile;
      if (a < blk.count) {
        const int64_t n = lo(tile, blk.count - a);
        pf.set(kb + a * d, n * kbytes, vb + a * dv, n * vbytes);
        // int8: the tile's key and value scales too (4 bytes a row each, 2 x 8 lines of a 128-row
        // tile, their own arrays): N = 65536, 2 threads, 8.36 -> 8.25 and 8.41 -> 8.23 ms per token
        // (best of 4, alternating; 1 thread the same).
        if (int8 && blk.ks)
          for (int64_t o = 0; o < n; o += 16) {
            __builtin_prefetch(blk.ks + a + o, 0, 2);
            __builtin_prefetch(blk.vs + a + o, 0, 2);
          }
      } else if (const int nb = long_block ? 0 : 1; blk.next_k[nb] && j0 + tile >= blk.count) {  // the last tile
        const int64_t n = lo(tile, blk.next_count[nb]);
        pf.set(blk.next_k[nb], n * kbytes, blk.next_v[nb], n * vbytes);
      } else {
        pf.set(nullptr, 0, nullptr, 0);
      }
    }
    bool any = false;
    for (int64_t r = 0; r < rows; ++r) any |= R.begin[r] < p1 && R.end[r] > p0;
    if (!any) continue;
    const E* kp = kb + j0 * d;
    const E* vp = vb + j0 * dv;

    // Scores are processed in whole vectors: [nk, nkw) is padding (-inf, probability 0).
    const int64_t nkw = (nk + W - 1) / W * W;
    const bool vec_scales = int8 && nk == nkw;  // a partial vector of scales would read past the block
    // The integer kernel's scores of a whole tile leave QK multiplied by the key scales already.
#if defined(__AVX2__)
    const bool ks_applied = use_int && vec_scales;
#else
    const bool ks_applied = false;
#endif
    float dots[16];
    if (use_int) {  // int8, integer dot products
      for (int64_t rb = 0; rb < rows; rb += 4) {
        const int16_t* q = R.q16 + rb * d;
        float* srow = s + rb * TK;
        const float* qs = R.q16_scale + rb;
        int64_t j = 0;
#if defined(__AVX512BW__)
        if (ks_applied && d % 32 == 0)  // nk is a whole number of vectors, so of 16 keys
          for (; j + 16 <= nk; j += 16) {
            __m512i t[4];
            for (int p = 0; p < 4; ++p) t[p] = dot4i_zmm(q, d, reinterpret_cast<const int8_t*>(kp + (j + 4 * p) * d), pf);
            scores16(t, qs, blk.ks + j0 + j, srow + j);
          }
#endif
#if defined(__AVX2__)
        if (ks_applied)  // nk is a whole number of vectors, so of 8 keys
          for (; j + 8 <= nk; j += 8) {
            __m256i t[4];
            for (int p = 0; p < 4; ++p) t[p] = dot4i_vec<2>(q, d, reinterpret_cast<const int8_t*>(kp + (j + 2 * p) * d), pf);
            scores8(t, qs, blk.ks + j0 + j, srow + j);
          }
#endif
        for (; j + 2 <= nk; j += 2) {
          dot4i<2>(q, d, reinterpret_cast<const int8_t*>(kp + j * d), dots, pf);
          for (int r = 0; r < 4; ++r)
            for (int i = 0; i < 2; ++i) srow[r * TK + j + i] = dots[r * 2 + i] * qs[r];
        }
        for (; j < nk; ++j) {
          dot4i<1>(q, d, reinterpret_cast<const int8_t*>(kp + j * d), dots, pf);
          for (int r = 0; r < 4; ++r) srow[r * TK + j] = dots[r] * qs[r];
        }
      }
    } else {
      for (int64_t rb = 0; rb < rows; rb += 4) {
        const float* q = R.q + rb * d;
        float* srow = s + rb * TK;
        int64_t j = 0;
        // Steps of kQuadKeys keys, then pairs. Triples leave a remainder of one key as 2 pairs
        // instead (16 keys = 4 triples + 2 pairs: the single-key loop is latency-bound); with
        // quads that would cost a quad and still leave the single key.
        constexpr int KQ = kQuadKeys;
        const int64_t n3 = kWide<E> ? nk / KQ - (KQ == 3 && nk % KQ == 1 && nk > KQ ? 1 : 0) : 0;
        if constexpr (kWide<E>)
          for (; j < KQ * n3; j += KQ) {
#if defined(__AVX512F__)
            if constexpr (std::is_same_v<E, uint16_t>) {
              if (use_eo)
                dot4_eo(qeo + rb * d, d, kp + j * d, dots, pf);
              else
                dot4<KQ>(q, d, kp + j * d, dots, pf);
            } else {
              dot4<KQ>(q, d, kp + j * d, dots, pf);
            }
#else
            dot4<KQ>(q, d, kp + j * d, dots, pf);
#endif
            // whole rows of KQ floats (one vector copy each): element by element, GCC extracted
            // each of the 16 sums from the register with its own shuffle
            for (int r = 0; r < 4; ++r) std::memcpy(srow + r * TK + j, dots + r * KQ, KQ * sizeof(float));
          }
        for (; j + 2 <= nk; j += 2) {
          dot4<2>(q, d, kp + j * d, dots, pf);
          for (int r = 0; r < 4; ++r)
            for (int i = 0; i < 2; ++i) srow[r * TK + j + i] = dots[r * 2 + i];
        }
        for (; j < nk; ++j) {
          dot4<1>(q, d, kp + j * d, dots, pf);
          for (int r = 0; r < 4; ++r) srow[r * TK + j] = dots[r];
        }
      }
    }

    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s + r * TK;
      if (!(R.begin[r] < p1 && R.end[r] > p0)) {
        for (int64_t j = 0; j < nk; ++j) sr[j] = 0.0f;
        continue;
      }
      float mt = m[r];
      if (int8 && !vec_scales)
        for (int64_t j = 0; j < nk; ++j) sr[j] *= blk.ks[j0 + j];
      for (int64_t j = nk; j < nkw; ++j) sr[j] = kNegInf;
      if (R.begin[r] <= p0 && R.end[r] >= p1) {
        // Whole tile visible (the common case): vector scale and max.
        B mx(kNegInf);
        for (int64_t j = 0; j < nkw; j += W) {
          B x = B::load_unaligned(sr + j);
          if (vec_scales && !ks_applied) {
            x = x * B::load_unaligned(blk.ks + j0 + j);
            x.store_unaligned(sr + j);
          }
          mx = simd::ATTNKIT_SIMD_NS::max_skip_nan<A>(mx, x);  // like the scalar loop: a NaN score never wins
        }
        const float hm = simd::ATTNKIT_SIMD_NS::hmax<A>(mx);
        mt = hm > mt ? hm : mt;
      } else {
        if (vec_scales && !ks_applied)
          for (int64_t j = 0; j < nk; ++j) sr[j] *= blk.ks[j0 + j];
        for (int64_t j = 0; j < nk; ++j)
          if (p0 + j < R.begin[r] || p0 + j >= R.end[r]) sr[j] = kNegInf;
        for (int64_t j = 0; j < nk; ++j) mt = sr[j] > mt ? sr[j] : mt;
      }
      if (mt == kNegInf || std::isnan(mt)) {  // nothing finite to add (NaN inputs propagate)
        if (std::isnan(mt)) {
          m[r] = mt;
          l[r] = mt;
        }
        for (int64_t j = 0; j < nk; ++j) sr[j] = 0.0f;
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
      for (int64_t j = 0; j < nkw; j += W) {
        const B x = B::load_unaligned(sr + j) - mb;
        // int8's weights are rounded to u8 next, bf16's values carry 8 significant bits: the short exp
        // (simd/exp.hpp) costs nothing in accuracy there and saves ~5% (int8, 8.63 -> 8.22 ms per
        // token at N = 65536, 2 threads) and ~4% (bf16, 12.58 -> 12.07 ms).
        // f32 keeps exp(): its decode equals the forward to 1e-6.
        B e = (use_int || std::is_same_v<E, uint16_t>) ? simd::ATTNKIT_SIMD_NS::exp_softmax_lowp<A>(x)
                                                       : simd::ATTNKIT_SIMD_NS::exp(x);
        sum += e;
        if (vec_scales) e = e * B::load_unaligned(blk.vs + j0 + j);
        e.store_unaligned(sr + j);
      }
      l[r] += xsimd::hadd(sum);
      if (int8 && !vec_scales)
        for (int64_t j = 0; j < nk; ++j) sr[j] *= blk.vs[j0 + j];
    }

    if (use_int) {
      // The weights as u8 (after the scores: s + rows * TK), one scale per row after them.
      uint8_t* w8 = reinterpret_cast<uint8_t*>(s + rows * TK);
      float* ws = s + rows * TK + rows * (TK / 4);
      for (int64_t r = 0; r < rows; ++r) ws[r] = quantize_u8(s + r * TK, nk, w8 + r * TK);
      for (int64_t rb = 0; rb < rows; rb += 4)
        pv4u(w8 + rb * TK, ws + rb, reinterpret_cast<const int8_t*>(vp), nk, dv, acc + rb * dv, pf);
      continue;
    }
    for (int64_t rb = 0; rb < rows; rb += 4) pv4(s + rb * TK, vp, nk, dv, acc + rb * dv, pf);
  }
  // A block of one tile (a page) ends with its requests for the block after next: issue what the
  // pacing left and record its steps for the next block's rate. Without this, pages' blocks paced at
  // the rate of the thread's last long block's tiles (twice as many steps) and never requested about
  // half of each next page: pages:page=16,keep=8192 at N = 65536, 2 threads, 4.71 -> 4.33 ms per
  // token (best of 3 alternating). Long blocks keep their last tile's pacing (exact, unchanged).
  if (!long_block) pf.finish();
}

void attend_block(const Rows& R, const Block& blk, float* m, float* l, float* acc, float* scratch) {
  switch (blk.storage) {
    case KvStorage::F32: attend_tiles<float>(R, blk, m, l, acc, scratch); break;
    case KvStorage::BF16: attend_tiles<uint16_t>(R, blk, m, l, acc, scratch); break;
    case KvStorage::Int8: attend_tiles<int8_t>(R, blk, m, l, acc, scratch); break;
  }
}

void page_bounds(const float* qpn, int64_t d, const uint16_t* bounds, int64_t pages, float* out, int64_t out_stride) {
  // Vectors over the pages of a block, not over channels: per channel, NV vectors of lo and of hi
  // (kBoundLanes pages) meet the 4 rows' broadcast q⁺_c and q⁻_c; 4·NV accumulators, no horizontal
  // reduction. The page-major form (8 accumulators over channels, reduced per page) spent a third
  // of its time reducing and was latency-bound: cold 16 MiB scan at 2 threads, 2.36 -> 1.40 ms
  // (devbench). The next block is requested one line per channel while this one is computed (a
  // block is d lines).
  constexpr int64_t L = kBoundLanes;
  static_assert(L % W == 0, "a block of bounds is whole vectors");
  constexpr int NV = static_cast<int>(L / W);
  const int64_t block = 2 * d * L;
  for (int64_t p = 0; p < pages; p += L) {
    const uint16_t* lo_ = bounds + (p / L) * block;
    const uint16_t* hi_ = lo_ + d * L;
    const char* next = p + L < pages ? reinterpret_cast<const char*>(lo_ + block) : nullptr;
    B a[4 * NV];
    for (auto& x : a) x = B(0.0f);
    for (int64_t c = 0; c < d; ++c) {
      if (next) __builtin_prefetch(next + c * 64, 0, 2);
      B h[NV], l[NV];
      for (int v = 0; v < NV; ++v) {
        h[v] = load_f(hi_ + c * L + v * W);
        l[v] = load_f(lo_ + c * L + v * W);
      }
      for (int r = 0; r < 4; ++r) {
        const B qp(qpn[r * 2 * d + c]), qn(qpn[r * 2 * d + d + c]);
        for (int v = 0; v < NV; ++v) {
          a[r * NV + v] = xsimd::fma(qp, h[v], a[r * NV + v]);
          a[r * NV + v] = xsimd::fma(qn, l[v], a[r * NV + v]);
        }
      }
    }
    for (int r = 0; r < 4; ++r)
      for (int v = 0; v < NV; ++v) a[r * NV + v].store_unaligned(out + r * out_stride + p + v * W);
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
