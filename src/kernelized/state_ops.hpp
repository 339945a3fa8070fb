#pragma once
// Internal: the running key state (S = Σ φ(k) vᵀ with z = Σ φ(k) as an extra last column, and the
// shared key stabiliser c it carries) and the block operations on it.
#include <cblas.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>

#include "feature_map.hpp"

namespace attnkit::kern {

// Makes the state carry constant max(c, cm): rescales it by exp(c − new) when the constant grows, so
// all key terms keep one common constant. Returns the constant to finish the new keys with.
inline float raise_constant(float* state, int64_t len, float& c, float cm) {
  if (cm > c) {
    if (c != -INFINITY) cblas_sscal(static_cast<int>(len), std::exp(c - cm), state, 1);
    c = cm;
  }
  return c;
}

// state[:, :dv] += φᵀ V, state[:, dv] += φᵀ 1 for `rows` finished key features φ (rows × m).
inline void accumulate(const float* phi, int64_t rows, int64_t m, const float* v, int64_t ldv, int64_t dv,
                       const float* ones, float* state) {
  const int lds = static_cast<int>(dv + 1);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(dv),
              static_cast<int>(rows), 1.0f, phi, static_cast<int>(m), v, static_cast<int>(ldv), 1.0f, state, lds);
  cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(rows), static_cast<int>(m), 1.0f, phi,
              static_cast<int>(m), ones, 1, 1.0f, state + dv, lds);
}

// Absorbs keys [k0, k1) (rows of k / v with strides ldk / ldv) into the state, `ck` keys at a time;
// phi is scratch of ck × m, ones holds ck ones.
inline void absorb(const Features& f, const float* w, const float* k, int64_t ldk, const float* v, int64_t ldv,
                   int64_t dv, int64_t k0, int64_t k1, int64_t ck, float* state, float& c, float* phi,
                   const float* ones) {
  const int64_t m = f.m();
  for (int64_t a = k0; a < k1; a += ck) {
    const int64_t rows = k1 - a < ck ? k1 - a : ck;
    const float cm = f.key_logits(k + a * ldk, ldk, rows, w, phi);
    f.key_finish(phi, rows, raise_constant(state, m * (dv + 1), c, cm));
    accumulate(phi, rows, m, v + a * ldv, ldv, dv, ones, state);
  }
}

// Underflow: every feature product φ(q)_l·φ(k)_l that float32 lost (to zero, or to a subnormal's
// few bits) was below FLT_MIN, so a row that sees n keys lost at most n·m·FLT_MIN of its
// denominator (FAVOR+ features are <= 1). Below the floor n·m·FLT_MIN / kUnderflowTolerance that
// loss may exceed 1e-3 of the row (inputs of large norm: attnkit/kernelized.hpp, "Range"), and
// the row is an error. A tolerance of FLT_EPSILON instead refused rows that had lost nothing
// (gaussian q, k of σ = 4 at d = 128, trained inputs ×3): the approximation's own error is far
// above 1e-3.
constexpr double kUnderflowTolerance = 1e-3;
inline double denominator_floor(int64_t n_visible, int64_t m) {
  return static_cast<double>(n_visible) * static_cast<double>(m) * (double{FLT_MIN} / kUnderflowTolerance);
}

// The attnkit::Error for a row below the floor. row: e.g. "query row 5 of batch 0, head 1";
// chunked: the causal chunked path with chunks of more than one row (its message suggests chunk=1).
[[noreturn]] void fail_underflow(Kind kind, const std::string& row, double den, double floor, bool chunked);
// "query row i of batch b, head h"
std::string row_name(int64_t b, int64_t h, int64_t i);

// Throws fail_underflow when a row that sees n_visible > 0 keys has den below the floor (NaN: no).
template <class Name>
void check_denominator(Kind kind, double den, int64_t n_visible, int64_t m, bool chunked, Name name) {
  if (n_visible > 0 && den < denominator_floor(n_visible, m))
    fail_underflow(kind, name(), den, denominator_floor(n_visible, m), chunked);
}

// out row = num / den from an augmented row (dv numerators, then the denominator). A row that saw
// no key (den 0) gets zeros; NaN propagates. visible(r): how many keys block row r sees; a row
// whose den is below the floor throws (check_denominator, name(r) names it).
template <class Visible, class Name>
void finish_rows(const float* aug, int64_t rows, int64_t dv, float* out, int64_t ldo, Kind kind, int64_t m,
                 bool chunked, Visible visible, Name name) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = aug + r * (dv + 1);
    float* o = out + r * ldo;
    const float den = a[dv];
    check_denominator(kind, den, visible(r), m, chunked, [&] { return name(r); });
    if (den <= 0.0f) {
      for (int64_t c = 0; c < dv; ++c) o[c] = 0.0f;
    } else {  // a division, not a reciprocal: 1/den overflows for a subnormal den
      for (int64_t c = 0; c < dv; ++c) o[c] = a[c] / den;
    }
  }
}

}  // namespace attnkit::kern
