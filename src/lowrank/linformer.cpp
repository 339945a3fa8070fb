// Linformer with a random shared projection: E drawn once per call, E K and E V per (batch, kv
// head), then softmax(s·Q (E K)ᵀ) (E V) per query chunk.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/blas_rows.hpp"
#include "../core/parallel_errors.hpp"
#include "attnkit/error.hpp"
#include "attnkit/lowrank.hpp"
#include "common.hpp"
#include "gaussian.hpp"

namespace attnkit {

namespace {

using namespace lowrank;

constexpr int64_t kMaxProjection = int64_t{1} << 31;  // entries of E
constexpr int64_t kRowsPerTask = 8;                   // rows of E drawn per task

void refuse_causal(const Problem& p, const std::string& spec) {
  if (p.mask.causal)
    detail::fail("mask.causal: backend ", spec,
                 " does not support a causal mask (the projection E mixes future keys into every row); expected "
                 "causal=false");
}

void check_projection_size(int64_t k, int64_t n) {
  if (n < 0) detail::fail("linformer: n=", n, "; expected n >= 0");
  if (n > 0 && k > kMaxProjection / n)
    detail::fail("linformer: projection of k x n = ", k, " x ", n, " entries; expected at most ", kMaxProjection);
}

// E [k × n] into e (row stride n), rows drawn in parallel when called outside a parallel region.
void draw(int64_t seed, int64_t k, int64_t n, float* e) {
  const int64_t tasks = (k + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t r0 = t * kRowsPerTask, r1 = std::min(k, r0 + kRowsPerTask);
    gaussian_rows(seed, k, r0, r1, n, e + r0 * n, n);
  }
}

// (E K, E V) of batch b, kv head g, E the first n columns of e (row stride lde): one product
// E·[K | V] (K and V copied side by side, n × (d + d_v)) reads E once and gives sgemm twice the
// width.
void project(const Problem& p, const Shape& D, int64_t b, int64_t g, int64_t k, int64_t n, const float* e, int64_t lde,
             float* ek, float* ev, std::vector<float>& kv, std::vector<float>& out) {
  const int64_t d = D.d, dv = D.d_v, w = d + dv;
  kv.resize(static_cast<size_t>(n * w));
  out.resize(static_cast<size_t>(k * w));
  for (int64_t j = 0; j < n; ++j) {
    std::copy(p.k.row(b, g, j), p.k.row(b, g, j) + d, kv.data() + j * w);
    std::copy(p.v.row(b, g, j), p.v.row(b, g, j) + dv, kv.data() + j * w + d);
  }
  gemm_nn(k, w, n, e, lde, kv.data(), w, out.data(), w);
  for (int64_t r = 0; r < k; ++r) {
    std::copy(out.data() + r * w, out.data() + r * w + d, ek + r * d);
    std::copy(out.data() + r * w + d, out.data() + (r + 1) * w, ev + r * dv);
  }
}

}  // namespace

void LinformerBackend::forward(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  refuse_causal(p, spec());
  const Shape D = check(p);
  const float scale = p.effective_scale();
  const int64_t K = opt_.k, dv = D.d_v, kvc = D.batch * D.kv_heads, bh = D.batch * D.heads;
  int64_t nmax = 0;
  for (int64_t b = 0; b < D.batch; ++b) nmax = std::max(nmax, visible_keys(p, b));
  check_projection_size(K, nmax);
  // One E for every batch: a batch with n visible keys uses its first n columns.
  std::vector<float> e(static_cast<size_t>(K * nmax));
  std::vector<float> ek(static_cast<size_t>(kvc * K * D.d)), ev(static_cast<size_t>(kvc * K * dv));
  const int64_t qchunks = (D.n_q + kQueryChunk - 1) / kQueryChunk;
  SingleThreadedBlas blas;
  draw(opt_.seed, K, nmax, e.data());
  ParallelErrors errors;  // an allocation failing in a thread: bad_alloc for the caller, not an abort
#pragma omp parallel
  {
    std::vector<float> copy, wide;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < kvc; ++t)
      errors.run([&] {
        const int64_t b = t / D.kv_heads, g = t % D.kv_heads, n = visible_keys(p, b);
        if (n > 0)
          project(p, D, b, g, K, n, e.data(), nmax, ek.data() + t * K * D.d, ev.data() + t * K * dv, copy, wide);
      });
    std::vector<float> l, o;
    std::vector<double> sums;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < bh * qchunks; ++t)
      errors.run([&] {
        const int64_t hd = t / qchunks, b = hd / D.heads, h = hd % D.heads, g = h / D.group();
        const int64_t i0 = (t % qchunks) * kQueryChunk, i1 = std::min(D.n_q, i0 + kQueryChunk), c = i1 - i0;
        if (visible_keys(p, b) == 0) {
          for (int64_t i = i0; i < i1; ++i) std::fill(p.out.row(b, h, i), p.out.row(b, h, i) + dv, 0.0f);
          return;
        }
        const int64_t kv = b * D.kv_heads + g;
        l.resize(static_cast<size_t>(c * K));
        o.resize(static_cast<size_t>(c * dv));
        sums.resize(static_cast<size_t>(c));
        gemm_nt(c, K, D.d, scale, p.q.row(b, h, i0), p.q.stride[2], ek.data() + kv * K * D.d, D.d, l.data(), K);
        exp_rows(l.data(), c, K, K, sums.data());
        gemm_nn(c, dv, K, l.data(), K, ev.data() + kv * K * dv, dv, o.data(), dv);
        divide_rows(o.data(), c, dv, dv, sums.data());
        for (int64_t i = 0; i < c; ++i) std::copy(o.data() + i * dv, o.data() + (i + 1) * dv, p.out.row(b, h, i0 + i));
      });
  }
  errors.rethrow();
}

void LinformerBackend::weights(const Problem& caller, int64_t b, int64_t h, float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  refuse_causal(p, spec());
  const Shape D = check_weights(p, b, h, w);
  std::fill(w, w + D.n_q * D.n_k, 0.0f);
  const int64_t n = visible_keys(p, b), K = opt_.k, g = h / D.group();
  if (n == 0) return;
  check_projection_size(K, n);
  SingleThreadedBlas blas;
  std::vector<float> e(static_cast<size_t>(K * n)), ek(static_cast<size_t>(K * D.d)),
      ev(static_cast<size_t>(K * D.d_v)), copy, wide;
  draw(opt_.seed, K, n, e.data());
  project(p, D, b, g, K, n, e.data(), n, ek.data(), ev.data(), copy, wide);
  std::vector<float> l(static_cast<size_t>(D.n_q * K));
  std::vector<double> sums(static_cast<size_t>(D.n_q));
  gemm_nt(D.n_q, K, D.d, p.effective_scale(), p.q.row(b, h, 0), p.q.stride[2], ek.data(), D.d, l.data(), K);
  exp_rows(l.data(), D.n_q, K, K, sums.data());
  divide_rows(l.data(), D.n_q, K, K, sums.data());
  gemm_nn(D.n_q, n, K, l.data(), K, e.data(), n, w, D.n_k);  // softmax(·) E
}

std::vector<float> LinformerBackend::projection(int64_t n) const {
  check_projection_size(opt_.k, n);
  std::vector<float> e(static_cast<size_t>(opt_.k * n));
  draw(opt_.seed, opt_.k, n, e.data());
  return e;
}

Cost LinformerBackend::cost(const Shape& s) const {
  const double K = static_cast<double>(opt_.k), nq = static_cast<double>(s.n_q), nk = static_cast<double>(s.n_k);
  const double d = static_cast<double>(s.d), dv = static_cast<double>(s.d_v);
  const double bg = static_cast<double>(s.batch) * s.kv_heads, bh = static_cast<double>(s.batch) * s.heads;
  Cost c = exact_cost(s);  // bytes: every input and output once
  c.flops = K * nk                                              // drawing E (one per entry)
            + bg * 2.0 * K * nk * (d + dv)                      // E K, E V
            + bh * (nq * K * (2.0 * d + 1.0) + nq * (2.0 * K * dv + dv));  // logits + exp, P (E V), normalise
  return c;
}

}  // namespace attnkit
