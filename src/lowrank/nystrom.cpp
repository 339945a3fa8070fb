// Nyströmformer: landmark pass per (batch, head) (K̃, Z ≈ pinv(A), B), then the output pass per
// query chunk (F · W with W = Z·(B V) of the head).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/blas_rows.hpp"
#include "../core/parallel_errors.hpp"
#include "attnkit/error.hpp"
#include "attnkit/lowrank.hpp"
#include "common.hpp"
#include "pinv.hpp"

namespace attnkit {

namespace {

using namespace lowrank;

// Per-thread scratch of the landmark pass.
struct LandmarkScratch {
  std::vector<float> qt, a, b;
  std::vector<double> sums, ad, ws;
};

// The landmark pass of (b, h): K̃ [mk × d] into kt, Z [mk × mq] into z (double), the normalised
// B [mq × n] into s.b. Returns n, the visible keys (0: nothing else is computed).
struct Landmarks {
  int64_t n = 0, mq = 0, mk = 0;
};

Landmarks landmark_pass(const Problem& p, const Shape& D, int64_t b, int64_t h, const NystromOptions& o, float scale,
                        float* kt, std::vector<double>& z, LandmarkScratch& s) {
  Landmarks L;
  L.n = visible_keys(p, b);
  if (L.n == 0) return L;
  const int64_t g = h / D.group(), d = D.d;
  L.mq = std::min(o.landmarks, D.n_q);
  L.mk = std::min(o.landmarks, L.n);
  s.qt.resize(static_cast<size_t>(L.mq * d));
  segment_means(p.q.row(b, h, 0), p.q.stride[2], D.n_q, d, L.mq, s.qt.data());
  segment_means(p.k.row(b, g, 0), p.k.stride[2], L.n, d, L.mk, kt);

  // A = softmax(s·Q̃ K̃ᵀ), then Z ≈ pinv(A) in double.
  s.a.resize(static_cast<size_t>(L.mq * L.mk));
  s.sums.resize(static_cast<size_t>(L.mq));
  gemm_nt(L.mq, L.mk, d, scale, s.qt.data(), d, kt, d, s.a.data(), L.mk);
  exp_rows(s.a.data(), L.mq, L.mk, L.mk, s.sums.data());
  divide_rows(s.a.data(), L.mq, L.mk, L.mk, s.sums.data());
  s.ad.assign(s.a.begin(), s.a.end());
  z.resize(static_cast<size_t>(L.mk * L.mq));
  newton_schulz_pinv(s.ad.data(), L.mq, L.mk, o.iterations, z.data(), s.ws);

  // B = softmax(s·Q̃ Kᵀ) over the visible keys.
  const float* k = p.k.row(b, g, 0);  // row strides BLAS accepts: the caller's BlasRows
  const int64_t ldk = p.k.stride[2];
  s.b.resize(static_cast<size_t>(L.mq * L.n));
  gemm_nt(L.mq, L.n, d, scale, s.qt.data(), d, k, ldk, s.b.data(), L.n);
  exp_rows(s.b.data(), L.mq, L.n, L.n, s.sums.data());
  divide_rows(s.b.data(), L.mq, L.n, L.n, s.sums.data());
  return L;
}

// F·W for query rows [i0, i1) of (b, h) into out, F = softmax(s·Q K̃ᵀ) (normalised after the product).
void output_rows(const Problem& p, const Shape& D, int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t mk,
                 const float* kt, const float* w, float scale, std::vector<float>& f, std::vector<float>& o,
                 std::vector<double>& sums) {
  const int64_t c = i1 - i0, dv = D.d_v;
  f.resize(static_cast<size_t>(c * mk));
  o.resize(static_cast<size_t>(c * dv));
  sums.resize(static_cast<size_t>(c));
  gemm_nt(c, mk, D.d, scale, p.q.row(b, h, i0), p.q.stride[2], kt, D.d, f.data(), mk);
  exp_rows(f.data(), c, mk, mk, sums.data());
  gemm_nn(c, dv, mk, f.data(), mk, w, dv, o.data(), dv);
  divide_rows(o.data(), c, dv, dv, sums.data());
  for (int64_t i = 0; i < c; ++i) std::copy(o.data() + i * dv, o.data() + (i + 1) * dv, p.out.row(b, h, i0 + i));
}

void refuse_causal(const Problem& p, const std::string& spec) {
  if (p.mask.causal)
    detail::fail("mask.causal: backend ", spec,
                 " does not support a causal mask (landmark pooling mixes future keys into every row); expected "
                 "causal=false");
}

}  // namespace

void NystromBackend::forward(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  refuse_causal(p, spec());
  const Shape D = check(p);
  const float scale = p.effective_scale();
  const int64_t bh = D.batch * D.heads, M = opt_.landmarks, dv = D.d_v;
  const int64_t mmax = std::min(M, std::max(D.n_q, D.n_k));
  // Per (b, h): K̃ and W = Z·(B V), both [mk × ·], and mk (0: no visible key).
  std::vector<float> kt(static_cast<size_t>(bh * mmax * D.d)), w(static_cast<size_t>(bh * mmax * dv));
  std::vector<int64_t> mk(static_cast<size_t>(bh), 0);
  const int64_t qchunks = (D.n_q + kQueryChunk - 1) / kQueryChunk;
  SingleThreadedBlas blas;
  ParallelErrors errors;  // an allocation failing in a thread: bad_alloc for the caller, not an abort
#pragma omp parallel
  {
    LandmarkScratch s;
    std::vector<double> z, bvd, wd;
    std::vector<float> bv;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < bh; ++t)
      errors.run([&] {
        const int64_t b = t / D.heads, h = t % D.heads, g = h / D.group();
        float* ktt = kt.data() + t * mmax * D.d;
        const Landmarks L = landmark_pass(p, D, b, h, opt_, scale, ktt, z, s);
        mk[static_cast<size_t>(t)] = L.mk;
        if (L.n == 0) return;
        const float* v = p.v.row(b, g, 0);
        const int64_t ldv = p.v.stride[2];
        bv.resize(static_cast<size_t>(L.mq * dv));
        gemm_nn(L.mq, dv, L.n, s.b.data(), L.n, v, ldv, bv.data(), dv);  // B V
        bvd.assign(bv.begin(), bv.end());
        wd.resize(static_cast<size_t>(L.mk * dv));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(L.mk), static_cast<int>(dv),
                    static_cast<int>(L.mq), 1.0, z.data(), static_cast<int>(L.mq), bvd.data(), static_cast<int>(dv),
                    0.0, wd.data(), static_cast<int>(dv));
        std::copy(wd.begin(), wd.end(), w.begin() + t * mmax * dv);
      });
    std::vector<float> f, o;
    std::vector<double> sums;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < bh * qchunks; ++t)
      errors.run([&] {
        const int64_t hd = t / qchunks, b = hd / D.heads, h = hd % D.heads;
        const int64_t i0 = (t % qchunks) * kQueryChunk, i1 = std::min(D.n_q, i0 + kQueryChunk);
        const int64_t m = mk[static_cast<size_t>(hd)];
        if (m == 0) {
          for (int64_t i = i0; i < i1; ++i) std::fill(p.out.row(b, h, i), p.out.row(b, h, i) + dv, 0.0f);
          return;
        }
        output_rows(p, D, b, h, i0, i1, m, kt.data() + hd * mmax * D.d, w.data() + hd * mmax * dv, scale, f, o, sums);
      });
  }
  errors.rethrow();
}

void NystromBackend::weights(const Problem& caller, int64_t b, int64_t h, float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  refuse_causal(p, spec());
  const Shape D = check_weights(p, b, h, w);
  std::fill(w, w + D.n_q * D.n_k, 0.0f);
  const float scale = p.effective_scale();
  SingleThreadedBlas blas;
  LandmarkScratch s;
  std::vector<double> z;
  std::vector<float> kt(static_cast<size_t>(std::min(opt_.landmarks, D.n_k) * D.d));
  const Landmarks L = landmark_pass(p, D, b, h, opt_, scale, kt.data(), z, s);
  if (L.n == 0) return;
  // Z·B in double (the iteration's precision), then F·(Z·B).
  std::vector<double> bd(s.b.begin(), s.b.end()), zb(static_cast<size_t>(L.mk * L.n));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(L.mk), static_cast<int>(L.n),
              static_cast<int>(L.mq), 1.0, z.data(), static_cast<int>(L.mq), bd.data(), static_cast<int>(L.n), 0.0,
              zb.data(), static_cast<int>(L.n));
  std::vector<float> zbf(zb.begin(), zb.end()), f(static_cast<size_t>(D.n_q * L.mk));
  std::vector<double> sums(static_cast<size_t>(D.n_q));
  gemm_nt(D.n_q, L.mk, D.d, scale, p.q.row(b, h, 0), p.q.stride[2], kt.data(), D.d, f.data(), L.mk);
  exp_rows(f.data(), D.n_q, L.mk, L.mk, sums.data());
  divide_rows(f.data(), D.n_q, L.mk, L.mk, sums.data());
  gemm_nn(D.n_q, L.n, L.mk, f.data(), L.mk, zbf.data(), L.n, w, D.n_k);
}

Cost NystromBackend::cost(const Shape& s) const {
  const double bh = static_cast<double>(s.batch) * s.heads;
  const double nq = static_cast<double>(s.n_q), nk = static_cast<double>(s.n_k), d = static_cast<double>(s.d),
               dv = static_cast<double>(s.d_v);
  const double mq = static_cast<double>(std::min(opt_.landmarks, s.n_q));
  const double mk = static_cast<double>(std::min(opt_.landmarks, s.n_k));
  const double I = static_cast<double>(opt_.iterations);
  // Per (b, h): landmark means; A, B, F with their exp and normalisation; B V; the iteration (three
  // mq×mq×mq products and one mk×mq×mq per step); W = Z (B V); F W.
  const double per_head = (nq + nk) * d                              // segment sums
                          + mq * mk * (2.0 * d + 2.0)                 // A
                          + mq * nk * (2.0 * d + 2.0) + 2.0 * mq * nk * dv  // B, B V
                          + I * (2.0 * mq * mk * mq + 4.0 * mq * mq * mq + 2.0 * mk * mq * mq)  // pinv
                          + 2.0 * mk * mq * dv                        // W
                          + nq * mk * (2.0 * d + 1.0) + nq * (2.0 * mk * dv + dv);  // F, F W, normalise
  Cost c = exact_cost(s);  // bytes: every input and output once
  c.flops = bh * per_head;
  return c;
}

}  // namespace attnkit
