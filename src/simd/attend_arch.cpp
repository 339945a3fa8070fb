// One SIMD path of the fused attention tile kernel. This file is compiled once per path
// (src/simd/meson.build) with that path's instruction-set flags and
//   -DATTNKIT_SIMD_NS=<path name>  -DATTNKIT_SIMD_ARCH=<xsimd architecture>
// Everything of ours here lives in namespace attnkit::simd::<path>, so none of our inline functions
// compiled with AVX-512 flags can be merged by the linker into the code another path runs; the
// xsimd templates are instantiated per architecture type anyway. What remains shared are trivial
// std accessors (std::span::begin/end), inlined in optimised builds; in -O0 builds their
// out-of-line copies contain no vector code.
//
// Layout of one call (rows = query block, nk = keys of one key block):
//   Qt  [d][rp]     the query block, scaled by `scale` and transposed once per call; rp = rows
//                   rounded up to the vector width, zero padded.
//   St  [nk][rp]    scores transposed: keys are rows, queries are SIMD lanes. St = K_b · Qt is a
//                   register-blocked micro-kernel that broadcasts K straight from the (strided)
//                   input and loads Qt vectors: no packing of K or V, which would otherwise be
//                   repeated for every query block. In this layout a query's running max, sum and
//                   rescale factor are lanes of a vector: no horizontal reductions anywhere.
//   acc [rows][dvp] the unnormalised output, fp32. O += P·V_b is a second micro-kernel that
//                   broadcasts P and loads V rows straight from the input; it sums the tile in
//                   registers and then stores acc·exp(m_old − m_new) + tile sum, so the rescale
//                   costs no extra pass (the factor is exactly 1 when the max did not grow).
//   One division per output element at the end; m = −inf rows (nothing visible yet) use 0 as the
//   shift so that exp(−inf − 0) = 0 and never NaN.
// GCC 12 reports the _mm512_undefined_ps() placeholders inside its own AVX-512 intrinsics (used by
// xsimd's conversions and selects) as (maybe-)uninitialized once they are inlined here: a known
// false positive of the compiler's headers, not of this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "attend.hpp"
#include "exp.hpp"
#include "kernels_arch.hpp"
#include "paths.hpp"

namespace attnkit::simd::ATTNKIT_SIMD_NS {

namespace {

using A = ATTNKIT_SIMD_ARCH;
using B = xsimd::batch<float, A>;
constexpr int64_t W = B::size;
// Register budget: 32 vector registers with AVX-512, 16 otherwise.
constexpr bool kWide = W >= 16;
constexpr int kQkKeys = 6;              // QK micro-tile: keys x query vectors (24 or 12 accumulators)
constexpr int kQkVecs = kWide ? 4 : 2;
constexpr int kPvRows = 6;               // PV micro-tile: query rows x output vectors
constexpr int kPvVecs = kWide ? 4 : 2;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t lo(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// Calls f(std::integral_constant<int, n>) for a runtime n in [1, N].
template <int N, class F>
inline void upto(int64_t n, F&& f) {
  if constexpr (N > 0) {
    if (n == N)
      f(std::integral_constant<int, N>{});
    else
      upto<N - 1>(n, f);
  }
}

// St[c][j*W ..] = sum_p k[c][p] * Qt[p][j*W ..] for C keys and J query vectors; with a non-null
// mx also mx[j*W ..] = max(mx, max_c St[c][j*W ..]) while the scores are still in registers.
template <int C, int J>
inline void qk_tile(const float* k, int64_t ks, const float* qt, int64_t ldq, int64_t d, float* st, int64_t lds,
                    float* mx) {
  B acc[C][J];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c)
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) acc[c][j] = B(0.0f);
  for (int64_t p = 0; p < d; ++p) {
    B qv[J];
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) qv[j] = B::load_aligned(qt + p * ldq + j * W);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const B kc(k[c * ks + p]);
#pragma GCC unroll 4
      for (int j = 0; j < J; ++j) acc[c][j] = xsimd::fma(kc, qv[j], acc[c][j]);
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c)
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) acc[c][j].store_aligned(st + c * lds + j * W);
  if (mx) {
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) {
      B m = B::load_aligned(mx + j * W);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) m = xsimd::max(m, acc[c][j]);
      m.store_aligned(mx + j * W);
    }
  }
}

// o[r][j*W ..] = alpha[r] * o[r][j*W ..] + sum_c pt[c][r] * v[c][j*W ..] for R rows, J vectors.
// The tile's sum starts from zero and is added to the rescaled accumulator once at the end: a
// two-level summation, so the rounding error grows with sqrt(bk) + sqrt(n / bk), not sqrt(n)
// (it kept the relative error under 2e-6 at n = 16384, where one running sum did not).
template <int R, int J>
inline void pv_tile(const float* pt, int64_t ldp, const float* v, int64_t vs, int64_t nk, float* o, int64_t ldo,
                    const float* alpha) {
  B acc[R][J];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) acc[r][j] = B(0.0f);
  for (int64_t c = 0; c < nk; ++c) {
    B vv[J];
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) vv[j] = B::load_unaligned(v + c * vs + j * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const B p(pt[c * ldp + r]);
#pragma GCC unroll 4
      for (int j = 0; j < J; ++j) acc[r][j] = xsimd::fma(p, vv[j], acc[r][j]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const B a(alpha[r]);
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j)
      xsimd::fma(B::load_aligned(o + r * ldo + j * W), a, acc[r][j]).store_aligned(o + r * ldo + j * W);
  }
}

// The part of a Partial tile (causal diagonal, padding edge) that any query can see, so that the
// kernels skip sub-tiles the mask hides completely: this is what makes causal cost about half.
struct Visible {
  const TileMask* mask = nullptr;  // null: the whole tile is visible
  int64_t row0 = 0, rows = 0, k0 = 0;
  // Does any of the rows [r, r + nr) see any key of [c, c + nc) (tile-relative)?
  bool any(int64_t r, int64_t nr, int64_t c, int64_t nc) const {
    if (!mask) return true;
    nr = lo(nr, rows - r);
    return nr > 0 && mask->classify(row0 + r, nr, k0 + c, nc) != TileKind::Empty;
  }
};

// St (nk x rp) = K_b · Qt for every key and every query lane (sub-tiles no row sees are left
// unwritten: the mask sets them to -inf afterwards). With a non-null mx (rp floats, set to -inf
// here), also the per-query max of the tile: saves softmax_tile a pass, for unmasked tiles only.
__attribute__((noinline)) void scores(const float* k, int64_t ks, int64_t nk, const float* qt, int64_t rp, int64_t d,
                                      float* st, const Visible& vis, float* mx) {
  if (mx)
    for (int64_t r = 0; r < rp; ++r) mx[r] = kNegInf;
  // Query vectors outer: the d x 2W slice of Qt they read stays in L1 while the K rows stream.
  for (int64_t j0 = 0; j0 < rp; j0 += kQkVecs * W) {
    const int64_t jn = lo(kQkVecs, (rp - j0) / W);
    for (int64_t c0 = 0; c0 < nk; c0 += kQkKeys) {
      const int64_t cn = lo(kQkKeys, nk - c0);
      if (!vis.any(j0, jn * W, c0, cn)) continue;
      upto<kQkKeys>(cn, [&](auto C) {
        upto<kQkVecs>(jn, [&](auto J) { qk_tile<C, J>(k + c0 * ks, ks, qt + j0, rp, d, st + c0 * rp + j0, rp, mx ? mx + j0 : nullptr);
        });
      });
    }
  }
}

// One past the last key (tile-relative, whole micro-tiles) that any of the rows [r, r + nr) sees.
inline int64_t visible_end(const Visible& vis, int64_t r, int64_t nr, int64_t nk) {
  int64_t e = nk;
  while (e > 0) {
    const int64_t c = (e - 1) / kQkKeys * kQkKeys;
    if (vis.any(r, nr, c, e - c)) break;
    e = c;
  }
  return e;
}

// Online softmax over one tile, one vector of queries at a time: new max m, St <- exp(St - m),
// l <- l * alpha + rowsum, alpha = exp(m_old - m_new). tile_max: the tile's max from scores(), or
// null to compute it here. NaN needs no check: max() may drop a NaN score, but exp(NaN - shift)
// is NaN, so the row's sum and output become NaN all the same. In a masked tile, keys after the
// last one the vector's queries see are set to P = 0 without an exp (the sums are unchanged:
// they would add exact zeros), which is most of the diagonal tile's softmax work under causal.
__attribute__((noinline)) void softmax_tile(float* st, int64_t nk_tile, int64_t rp, float* m, float* l,
                                            float* alpha, const float* tile_max, const Visible& vis) {
  const B ninf(kNegInf), zero(0.0f);
  for (int64_t j = 0; j < rp; j += W) {
    const int64_t nk = vis.mask ? visible_end(vis, j, W, nk_tile) : nk_tile;
    for (int64_t c = nk; c < nk_tile; ++c) zero.store_aligned(st + c * rp + j);
    B mx = ninf;
    if (tile_max)
      mx = B::load_aligned(tile_max + j);
    else
      for (int64_t c = 0; c < nk; ++c) mx = xsimd::max(mx, B::load_aligned(st + c * rp + j));
    const B m_old = B::load_aligned(m + j);
    const B m_new = xsimd::select(mx > m_old, mx, m_old);
    const B shift = xsimd::select(m_new == ninf, zero, m_new);  // nothing visible yet: exp(-inf) = 0
    B sum0 = zero, sum1 = zero;
    int64_t c = 0;
    for (; c + 1 < nk; c += 2) {
      const B p0 = exp<A>(B::load_aligned(st + c * rp + j) - shift);
      const B p1 = exp<A>(B::load_aligned(st + (c + 1) * rp + j) - shift);
      p0.store_aligned(st + c * rp + j);
      p1.store_aligned(st + (c + 1) * rp + j);
      sum0 += p0;
      sum1 += p1;
    }
    if (c < nk) {
      const B p0 = exp<A>(B::load_aligned(st + c * rp + j) - shift);
      p0.store_aligned(st + c * rp + j);
      sum0 += p0;
    }
    const B a = exp<A>(m_old - shift);  // 1 when the max did not grow, 0 on the first visible tile
    a.store_aligned(alpha + j);
    (B::load_aligned(l + j) * a + (sum0 + sum1)).store_aligned(l + j);
    m_new.store_aligned(m + j);
  }
}

// acc (rows x dvp) = alpha * acc + P · V_b, P = St read transposed.
__attribute__((noinline)) void accumulate(const float* st, int64_t rp, int64_t rows, const float* v, int64_t vs,
                                          int64_t nk_tile, int64_t dv, float* acc, int64_t dvp, const float* alpha,
                                          const Visible& vis) {
  const int64_t vecs = dv / W;
  for (int64_t r0 = 0; r0 < rows; r0 += kPvRows) {
    const int64_t rn = lo(kPvRows, rows - r0);
    // Trailing keys these rows cannot see have P = 0: stop before them (whole micro-tiles).
    const int64_t nk = vis.mask ? visible_end(vis, r0, rn, nk_tile) : nk_tile;
    for (int64_t j0 = 0; j0 < vecs; j0 += kPvVecs) {
      const int64_t jn = lo(kPvVecs, vecs - j0);
      upto<kPvRows>(rn, [&](auto R) {
        upto<kPvVecs>(jn, [&](auto J) {
          pv_tile<R, J>(st + r0, rp, v + j0 * W, vs, nk, acc + r0 * dvp + j0 * W, dvp, alpha + r0);
        });
      });
    }
    // d_v not a multiple of the vector width: the last columns one at a time.
    for (int64_t r = r0; r < r0 + rn; ++r)
      for (int64_t col = vecs * W; col < dv; ++col) {
        float s = 0.0f;
        for (int64_t c = 0; c < nk; ++c) s += st[c * rp + r] * v[c * vs + col];
        acc[r * dvp + col] = acc[r * dvp + col] * alpha[r] + s;
      }
  }
}

void attend_impl(const AttendArgs& a, std::span<const KeySpan> spans, const TileMask* mask, int64_t block_k,
                 Workspace& ws) {
  ran(Kernel::attend);
  const int64_t rows = a.rows, d = a.d, dv = a.d_v;
  if (rows <= 0) return;
  const int64_t rp = round_up(rows, W), dvp = round_up(dv, W);
  const int64_t bk = block_k < 1 ? 1 : block_k;
  float* st = ws.scores(bk * rp);
  float* acc = ws.acc(rows * dvp);
  float* m = ws.rowstats(4 * rp);
  float* l = m + rp;
  float* alpha = l + rp;
  float* tile_max = alpha + rp;
  float* qt = ws.packed(d * rp);

  for (int64_t r = 0; r < rows; ++r) {
    const float* q = a.q + r * a.q_stride;
    for (int64_t p = 0; p < d; ++p) qt[p * rp + r] = q[p] * a.scale;
  }
  for (int64_t p = 0; p < d; ++p)
    for (int64_t r = rows; r < rp; ++r) qt[p * rp + r] = 0.0f;
  for (int64_t r = 0; r < rp; ++r) {
    m[r] = kNegInf;
    l[r] = 0.0f;
  }
  for (int64_t i = 0; i < rows * dvp; ++i) acc[i] = 0.0f;

  for (const KeySpan& span : spans) {
    for (int64_t k0 = span.begin; k0 < span.end; k0 += bk) {
      const int64_t nk = lo(bk, span.end - k0);
      const TileKind kind = mask ? mask->classify(a.row0, rows, k0, nk) : TileKind::Full;
      if (kind == TileKind::Empty) continue;
      const Visible vis{kind == TileKind::Partial ? mask : nullptr, a.row0, rows, k0};
      float* mx = kind == TileKind::Full ? tile_max : nullptr;
      scores(a.k + k0 * a.k_stride, a.k_stride, nk, qt, rp, d, st, vis, mx);
      if (kind == TileKind::Partial) mask->apply_transposed(a.row0, rows, k0, nk, st, rp);
      softmax_tile(st, nk, rp, m, l, alpha, mx, vis);
      accumulate(st, rp, rows, a.v + k0 * a.v_stride, a.v_stride, nk, dv, acc, dvp, alpha, vis);
    }
  }

  for (int64_t r = 0; r < rows; ++r) {
    float* o = a.out + r * a.out_stride;
    const bool any = l[r] > 0.0f || std::isnan(l[r]);  // l = 0: the row saw no key, output zeros
    const float inv = any ? 1.0f / l[r] : 0.0f;
    for (int64_t c = 0; c < dv; ++c) o[c] = any ? acc[r * dvp + c] * inv : 0.0f;
  }
  if (a.row_max)  // the same shift softmax_tile used: m, or 0 while nothing was visible
    for (int64_t r = 0; r < rows; ++r) a.row_max[r] = m[r] == kNegInf ? 0.0f : m[r];
  if (a.row_sum)
    for (int64_t r = 0; r < rows; ++r) a.row_sum[r] = l[r];
}

void exp_array(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) exp<A>(B::load_unaligned(x + i)).store_unaligned(y + i);
  if (i < n) {
    alignas(64) float buf[W] = {};
    for (int64_t t = i; t < n; ++t) buf[t - i] = x[t];
    exp<A>(B::load_aligned(buf)).store_aligned(buf);
    for (int64_t t = i; t < n; ++t) y[t] = buf[t - i];
  }
}

#define ATTNKIT_STR2(x) #x
#define ATTNKIT_STR(x) ATTNKIT_STR2(x)

}  // namespace

extern const Path path{.name = ATTNKIT_STR(ATTNKIT_SIMD_NS),
                       .lanes = W,
                       .attend = &attend_impl,
                       .exp = &exp_array,
                       .add_and_max = &add_and_max,
                       .max_of = &max_of,
                       .exp_shift = &exp_shift,
                       .elu_plus_one = &elu_plus_one,
                       .assign_nearest = &assign_nearest,
                       .count_bits = &count_bits,
                       .make_codes = &make_codes,
                       .attend_lowp = &attend_lowp_portable};

}  // namespace attnkit::simd::ATTNKIT_SIMD_NS
