// The forward pass of kernelized attention: non-causal (key state per (batch, kv head) built from
// fixed segments in parallel, then one GEMM per query chunk) and causal (chunked prefix sums).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <optional>
#include <vector>

#include "../core/blas_rows.hpp"
#include "../core/blas_threads.hpp"
#include "../core/parallel_errors.hpp"
#include "attnkit/error.hpp"
#include "attnkit/kernelized.hpp"
#include "feature_map.hpp"
#include "state_ops.hpp"

namespace attnkit {

namespace {

using kern::Features;

constexpr int64_t kKeyChunk = 256;    // keys per feature block when building a state
constexpr int64_t kQueryChunk = 256;  // query rows per task, non-causal
constexpr int64_t kCausalChunk = 64;  // default causal chunk (measured: 64 beats 32, 128, 256)

// Segments of the keys of one (batch, kv head) built in parallel: depends on n_k only, so the
// result is the same for any thread count. At most 8 segments, at least 1024 keys each.
int64_t segment_size(int64_t n_k) {
  int64_t s = std::max<int64_t>(1024, (n_k + 7) / 8);
  return (s + kKeyChunk - 1) / kKeyChunk * kKeyChunk;
}

// Per-thread scratch, allocated once per forward call.
struct Scratch {
  std::vector<float> phik, phiq, aug, a, ones;
  Scratch(int64_t m, int64_t dv, int64_t rows_k, int64_t rows_q, int64_t causal_chunk)
      : phik(static_cast<size_t>(rows_k * m)),
        phiq(static_cast<size_t>(rows_q * m)),
        aug(static_cast<size_t>(rows_q * (dv + 1))),
        a(static_cast<size_t>(causal_chunk * causal_chunk)),
        ones(static_cast<size_t>(std::max(rows_k, causal_chunk)), 1.0f) {}
};

int64_t key_length(const Problem& p, int64_t b, int64_t n_k) {
  return p.mask.key_lengths.empty() ? n_k : std::min<int64_t>(n_k, p.mask.key_lengths[static_cast<size_t>(b)]);
}

void forward_noncausal(const Problem& p, const Shape& D, const Features& f) {
  const int64_t m = f.m(), dv = D.d_v, lds = dv + 1, slen = m * lds;
  const int64_t seg = segment_size(D.n_k), nseg = (D.n_k + seg - 1) / seg;
  const int64_t kv = D.batch * D.kv_heads;
  std::vector<float> states(static_cast<size_t>(kv * nseg * slen));
  std::vector<float> consts(static_cast<size_t>(kv * nseg), -INFINITY);
  const int64_t qchunks = (D.n_q + kQueryChunk - 1) / kQueryChunk;
  ParallelErrors errors;  // an allocation failing in a thread: bad_alloc for the caller, not an abort
#pragma omp parallel
  {
    std::optional<Scratch> s;
    errors.run([&] { s.emplace(m, dv, kKeyChunk, kQueryChunk, 0); });
    // 1. Per (b, g, segment): the state of that segment's keys, with its own running constant.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < kv * nseg; ++t)
      errors.run([&] {
        const int64_t bg = t / nseg, sg = t % nseg, b = bg / D.kv_heads, g = bg % D.kv_heads;
        const int64_t len = key_length(p, b, D.n_k);
        const int64_t k0 = sg * seg, k1 = std::min(len, k0 + seg);
        if (k0 >= k1) return;
        kern::absorb(f, f.w(b, g), p.k.row(b, g, 0), p.k.stride[2], p.v.row(b, g, 0), p.v.stride[2], dv, k0, k1,
                     kKeyChunk, states.data() + t * slen, consts[static_cast<size_t>(t)], s->phik.data(),
                     s->ones.data());
      });
    // 2. Merge the segments of each (b, g) into segment 0, in order, to one common constant.
#pragma omp for schedule(static)
    for (int64_t bg = 0; bg < kv; ++bg) {
      float* s0 = states.data() + bg * nseg * slen;
      float* c = consts.data() + bg * nseg;
      float cmax = -INFINITY;
      for (int64_t sg = 0; sg < nseg; ++sg) cmax = std::max(cmax, c[sg]);
      if (cmax == -INFINITY) continue;  // no key (all padding): the state stays zero
      if (c[0] != cmax) {
        const float f0 = c[0] == -INFINITY ? 0.0f : std::exp(c[0] - cmax);
        cblas_sscal(static_cast<int>(slen), f0, s0, 1);
      }
      for (int64_t sg = 1; sg < nseg; ++sg)
        if (c[sg] != -INFINITY)
          cblas_saxpy(static_cast<int>(slen), std::exp(c[sg] - cmax), s0 + sg * slen, 1, s0, 1);
    }
    // 3. Per (b, h, query chunk): features, one GEMM against [S | z], divide.
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < D.batch * D.heads * qchunks; ++t)
      errors.run([&] {
        const int64_t bh = t / qchunks, qc = t % qchunks, b = bh / D.heads, h = bh % D.heads, g = h / D.group();
        const int64_t i0 = qc * kQueryChunk, rows = std::min(kQueryChunk, D.n_q - i0);
        const float* state = states.data() + (b * D.kv_heads + g) * nseg * slen;
        f.queries(p.q.row(b, h, i0), p.q.stride[2], rows, f.w(b, g), s->phiq.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(lds),
                    static_cast<int>(m), 1.0f, s->phiq.data(), static_cast<int>(m), state, static_cast<int>(lds),
                    0.0f, s->aug.data(), static_cast<int>(lds));
        const int64_t sees = key_length(p, b, D.n_k);
        kern::finish_rows(s->aug.data(), rows, dv, p.out.row(b, h, i0), p.out.stride[2], f.kind(), m, false,
                          [&](int64_t) { return sees; }, [&](int64_t r) { return kern::row_name(b, h, i0 + r); });
      });
  }
  errors.rethrow();
}

// Causal, query rows [r0, r1) of (b, g), chunks of C rows in order, starting from a state that holds
// the keys [0, absorbed). Before chunk [i0, i1) the state holds exactly the keys every row of the
// chunk sees, [0, e(i0)); the keys [e(i0), e(i1 − 1)) are the intra-chunk part, a masked product
// φ_Q φ_Kᵀ (row r sees intra key c iff e0 + c < e(i0 + r)), absorbed after the chunk.
void causal_rows(const Problem& p, const Shape& D, const Features& f, int64_t C, int64_t b, int64_t g, int64_t r0,
                 int64_t r1, float* state, float& c, int64_t absorbed, Scratch& s) {
  const int64_t m = f.m(), dv = D.d_v, lds = dv + 1, slen = m * lds;
  const float* w = f.w(b, g);
  const float* k = p.k.row(b, g, 0);
  const float* v = p.v.row(b, g, 0);
  const int64_t ldk = p.k.stride[2], ldv = p.v.stride[2];
  for (int64_t i0 = r0; i0 < r1; i0 += C) {
    const int64_t rows = std::min(C, r1 - i0);
    const int64_t e0 = p.key_end(b, i0), e1 = p.key_end(b, i0 + rows - 1);
    kern::absorb(f, w, k, ldk, v, ldv, dv, absorbed, e0, kKeyChunk, state, c, s.phik.data(), s.ones.data());
    absorbed = e0;
    const int64_t nk = e1 - e0;  // < rows: e grows by at most one per row
    // A non-finite value among the intra keys': the masked product would give rows that do not
    // see it 0·NaN; then each row takes only the keys it sees (rarely: a scan of nk·dv per chunk).
    bool v_finite = true;
    if (nk > 0) {
      const float cm = f.key_logits(k + e0 * ldk, ldk, nk, w, s.phik.data());
      f.key_finish(s.phik.data(), nk, kern::raise_constant(state, slen, c, cm));
      for (int64_t j = 0; j < nk && v_finite; ++j)
        for (int64_t x = 0; x < dv; ++x) v_finite &= std::isfinite(v[(e0 + j) * ldv + x]);
    }
    for (int64_t h = g * D.group(); h < (g + 1) * D.group(); ++h) {
      f.queries(p.q.row(b, h, i0), p.q.stride[2], rows, w, s.phiq.data());
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(lds),
                  static_cast<int>(m), 1.0f, s.phiq.data(), static_cast<int>(m), state, static_cast<int>(lds), 0.0f,
                  s.aug.data(), static_cast<int>(lds));
      if (nk > 0) {
        float* A = s.a.data();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(nk),
                    static_cast<int>(m), 1.0f, s.phiq.data(), static_cast<int>(m), s.phik.data(), static_cast<int>(m),
                    0.0f, A, static_cast<int>(nk));
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t vis = p.key_end(b, i0 + r) - e0;
          std::fill(A + r * nk + std::max<int64_t>(vis, 0), A + (r + 1) * nk, 0.0f);
        }
        if (v_finite) {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(dv),
                      static_cast<int>(nk), 1.0f, A, static_cast<int>(nk), v + e0 * ldv, static_cast<int>(ldv), 1.0f,
                      s.aug.data(), static_cast<int>(lds));
        } else {
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t vis = std::min(std::max<int64_t>(p.key_end(b, i0 + r) - e0, 0), nk);
            if (vis > 0)
              cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(vis), static_cast<int>(dv), 1.0f, v + e0 * ldv,
                          static_cast<int>(ldv), A + r * nk, 1, 1.0f, s.aug.data() + r * lds, 1);
          }
        }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(rows), static_cast<int>(nk), 1.0f, A,
                    static_cast<int>(nk), s.ones.data(), 1, 1.0f, s.aug.data() + dv, static_cast<int>(lds));
      }
      kern::finish_rows(s.aug.data(), rows, dv, p.out.row(b, h, i0), p.out.stride[2], f.kind(), m, C > 1,
                        [&](int64_t t) { return p.key_end(b, i0 + t); },
                        [&](int64_t t) { return kern::row_name(b, h, i0 + t); });
    }
    if (nk > 0) {
      kern::accumulate(s.phik.data(), nk, m, v + e0 * ldv, ldv, dv, s.ones.data(), state);
      absorbed = e1;
    }
  }
}

// Query-row segments per (b, g) for causal: one when there are enough (b, g) tasks, else up to 8 of
// >= 2048 rows (a multiple of C) so a single head still uses every thread. Shape-only: the output
// is the same for any thread count.
int64_t causal_segment_rows(const Shape& D, int64_t C) {
  if (D.batch * D.kv_heads >= 8) return D.n_q;
  const int64_t rows = std::max<int64_t>(2048, (D.n_q + 7) / 8);
  return (rows + C - 1) / C * C;
}

// Causal: segments of query rows run in parallel. Segment s starts from the prefix state of the keys
// [0, K_s), K_s = e(first row of s) (K_0 = 0): phase 1 builds the states of [K_s, K_{s+1}) in
// parallel, phase 2 turns them into prefix states in order (rescaled to a common constant), phase 3
// runs the chunk loop of every segment from its prefix state.
void forward_causal(const Problem& p, const Shape& D, const Features& f, int64_t C) {
  const int64_t m = f.m(), dv = D.d_v, slen = m * (dv + 1);
  const int64_t kv = D.batch * D.kv_heads;
  const int64_t seg = causal_segment_rows(D, C), nseg = (D.n_q + seg - 1) / seg;
  std::vector<float> states(static_cast<size_t>(kv * nseg * slen));
  std::vector<float> consts(static_cast<size_t>(kv * nseg), -INFINITY);
  auto start_key = [&](int64_t b, int64_t sg) { return sg == 0 ? int64_t{0} : p.key_end(b, sg * seg); };
  ParallelErrors errors;  // an allocation failing in a thread: bad_alloc for the caller, not an abort
#pragma omp parallel
  {
    std::optional<Scratch> s;
    errors.run([&] { s.emplace(m, dv, std::max(kKeyChunk, C), C, C); });
    // 1. states[s + 1] = keys [K_s, K_{s+1}) (segment 0's prefix is empty).
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < kv * nseg; ++t)
      errors.run([&] {
        const int64_t bg = t / nseg, sg = t % nseg, b = bg / D.kv_heads, g = bg % D.kv_heads;
        if (sg + 1 >= nseg) return;
        kern::absorb(f, f.w(b, g), p.k.row(b, g, 0), p.k.stride[2], p.v.row(b, g, 0), p.v.stride[2], dv,
                     start_key(b, sg), start_key(b, sg + 1), kKeyChunk, states.data() + (t + 1) * slen,
                     consts[static_cast<size_t>(t + 1)], s->phik.data(), s->ones.data());
      });
    // 2. Prefix sums in segment order: states[s] += states[s − 1], to the larger constant.
#pragma omp for schedule(static)
    for (int64_t bg = 0; bg < kv; ++bg)
      for (int64_t sg = 1; sg < nseg; ++sg) {
        float* prev = states.data() + (bg * nseg + sg - 1) * slen;
        float* cur = states.data() + (bg * nseg + sg) * slen;
        const float cp = consts[static_cast<size_t>(bg * nseg + sg - 1)];
        float& cc = consts[static_cast<size_t>(bg * nseg + sg)];
        if (cp == -INFINITY) continue;
        if (cc < cp) {
          if (cc != -INFINITY) cblas_sscal(static_cast<int>(slen), std::exp(cc - cp), cur, 1);
          cc = cp;
        }
        cblas_saxpy(static_cast<int>(slen), std::exp(cp - cc), prev, 1, cur, 1);
      }
    // 3. Every segment from its prefix state (the state buffers are reused as running states).
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < kv * nseg; ++t)
      errors.run([&] {
        const int64_t bg = t / nseg, sg = t % nseg, b = bg / D.kv_heads, g = bg % D.kv_heads;
        causal_rows(p, D, f, C, b, g, sg * seg, std::min(D.n_q, (sg + 1) * seg), states.data() + t * slen,
                    consts[static_cast<size_t>(t)], start_key(b, sg), *s);
      });
  }
  errors.rethrow();
}

}  // namespace

KernelizedBackend::KernelizedBackend(std::shared_ptr<const kern::FeatureMap> fm, int64_t chunk)
    : fm_(std::move(fm)), chunk_(chunk) {}  // chunk: checked by the backend's parameter table (backends.cpp)

int64_t KernelizedBackend::feature_dim(int64_t d) const { return fm_->dim(d); }

void KernelizedBackend::forward(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape D = check(p);
  const Features f(*fm_, D.d, p.effective_scale(), D.batch, D.kv_heads);  // throws on a projection d mismatch
  SingleThreadedBlas blas;
  if (p.mask.causal)
    forward_causal(p, D, f, chunk_ ? chunk_ : kCausalChunk);
  else
    forward_noncausal(p, D, f);
}

namespace {

// The implied probability rows of (b, h): every query row (rows == nullptr) or the rows listed,
// written as (count) x n_k. Each query's features depend on that query alone.
// Key constants: forward() gives a row's keys the running maximum of the key logits up to the last
// row of its chunk (causal; one maximum for all keys without the mask). Computing every key's
// features at the largest of those would underflow the keys of early rows (a later key may lie
// hundreds above them); computing them per row costs n² exps. Instead the keys are cut into blocks
// at the rows' key ends E_1 < … < E_G, block b's features taken at C_b = max logit of keys [0, E_b)
// (so each is <= 1), one GEMM gives φ(q_i)·φ(k_j) at block constants, and entry (i, j) is scaled by
// exp(C_b(j) − C_row(i)) <= 1, the row's own constant. The weights so carry no more underflow than
// forward()'s, often less; kern::check_denominator decides, for both, when a row has lost too much.
void implied_rows(const kern::FeatureMap& fm, const Problem& p, const Shape& D, int64_t chunk, int64_t b, int64_t h,
                  const std::vector<int64_t>* rows, float* w) {
  const int64_t g = h / D.group();
  const Features f(fm, D.d, p.effective_scale(), D.batch, D.kv_heads, b, g);
  const int64_t m = f.m(), len = key_length(p, b, D.n_k), count = rows ? static_cast<int64_t>(rows->size()) : D.n_q;
  std::fill(w, w + count * D.n_k, 0.0f);
  if (len == 0 || count == 0) return;
  auto row_of = [&](int64_t t) { return rows ? (*rows)[static_cast<size_t>(t)] : t; };
  auto sees = [&](int64_t t) { return std::min(p.key_end(b, row_of(t)), len); };  // keys [0, sees) visible
  const bool blocks = p.mask.causal && f.kind() == kern::Kind::Favor;  // elu+1 has no constant
  // E(t): the key end whose constant the row gets.
  auto end_of = [&](int64_t t) {
    if (!blocks) return len;
    const int64_t i = row_of(t), last = std::min(i / chunk * chunk + chunk, D.n_q) - 1;
    return std::min(p.key_end(b, last), len);
  };
  std::vector<int64_t> ends;
  for (int64_t t = 0; t < count; ++t)
    if (sees(t) > 0) ends.push_back(end_of(t));
  if (ends.empty()) return;
  std::sort(ends.begin(), ends.end());
  ends.erase(std::unique(ends.begin(), ends.end()), ends.end());
  const int64_t keys = ends.back();
  SingleThreadedBlas blas;
  std::vector<float> phik(static_cast<size_t>(keys * m)), phiq(static_cast<size_t>(count * m));
  const float cmax = f.key_logits(p.k.row(b, g, 0), p.k.stride[2], keys, f.w(b, g), phik.data());
  std::vector<float> bc(ends.size(), cmax);  // C_b
  if (blocks) {
    float run = -INFINITY;  // running max as forward's: NaN logits never raise it
    int64_t j = 0;
    for (size_t bi = 0; bi < ends.size(); ++bi) {
      for (; j < ends[bi]; ++j)
        for (int64_t l = 0; l < m; ++l) {
          const float x = phik[static_cast<size_t>(j * m + l)];
          run = x > run ? x : run;
        }
      bc[bi] = run;
    }
  }
  for (size_t bi = 0, j0 = 0; bi < ends.size(); j0 = static_cast<size_t>(ends[bi]), ++bi)
    f.key_finish(phik.data() + j0 * m, ends[bi] - static_cast<int64_t>(j0), bc[bi]);
  if (rows)
    for (int64_t t = 0; t < count; ++t) f.queries(p.q.row(b, h, row_of(t)), p.q.stride[2], 1, f.w(b, g), phiq.data() + t * m);
  else
    f.queries(p.q.row(b, h, 0), p.q.stride[2], D.n_q, f.w(b, g), phiq.data());
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(count), static_cast<int>(keys),
              static_cast<int>(m), 1.0f, phiq.data(), static_cast<int>(m), phik.data(), static_cast<int>(m), 0.0f, w,
              static_cast<int>(D.n_k));
  for (int64_t t = 0; t < count; ++t) {
    float* row = w + t * D.n_k;
    const int64_t e = sees(t);
    std::fill(row + std::min(e, keys), row + keys, 0.0f);
    if (e == 0) continue;
    if (blocks) {  // entry (t, j) from C_b(j) to the row's constant
      const size_t gi = static_cast<size_t>(std::lower_bound(ends.begin(), ends.end(), end_of(t)) - ends.begin());
      for (size_t bi = 0, j0 = 0; bi < gi && static_cast<int64_t>(j0) < e; j0 = static_cast<size_t>(ends[bi]), ++bi) {
        if (bc[bi] == bc[gi]) continue;
        const float s = std::exp(bc[bi] - bc[gi]);
        for (int64_t j = static_cast<int64_t>(j0); j < std::min(ends[bi], e); ++j) row[j] *= s;
      }
    }
    double sum = 0;
    for (int64_t j = 0; j < e; ++j) sum += row[j];
    // As forward: no visible key gives zeros, NaN propagates, and a row whose sum lies below the
    // floor is an error (kern::check_denominator).
    kern::check_denominator(f.kind(), sum, e, m, blocks && chunk > 1, [&] { return kern::row_name(b, h, row_of(t)); });
    for (int64_t j = 0; j < e; ++j) row[j] = static_cast<float>(row[j] / sum);
  }
}

}  // namespace

void KernelizedBackend::weights(const Problem& caller, int64_t b, int64_t h, float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape D = check_weights(p, b, h, w);
  implied_rows(*fm_, p, D, chunk_ ? chunk_ : kCausalChunk, b, h, nullptr, w);
}

void KernelizedBackend::weights_rows(const Problem& caller, int64_t b, int64_t h, const std::vector<int64_t>& rows,
                                     float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape D = check_weights_rows(p, b, h, rows, w);
  implied_rows(*fm_, p, D, chunk_ ? chunk_ : kCausalChunk, b, h, &rows, w);
}

Cost KernelizedBackend::cost(const Shape& s) const {
  const double m = static_cast<double>(fm_->dim(s.d));
  const bool favor = fm_->kind() == kern::Kind::Favor;
  const double bg = static_cast<double>(s.batch) * s.kv_heads, bh = static_cast<double>(s.batch) * s.heads;
  const double dv1 = s.d_v + 1.0;
  // Feature rows: projection GEMM (FAVOR+ only) plus one exp / elu (counted as one flop) per feature.
  const double feat = (favor ? 2.0 * s.d * m + 2.0 * m : 0.0) + m;
  double flops = bg * s.n_k * (feat + 2.0 * m * dv1)  // keys: features, state update
                 + bh * s.n_q * (feat + 2.0 * m * dv1);  // queries: features, output GEMM
  if (s.causal) {
    const double C = static_cast<double>(chunk_ ? chunk_ : kCausalChunk);
    const double nk = std::min(C, static_cast<double>(s.n_q)) - 1.0;  // intra keys per chunk, at most C − 1
    flops += bh * s.n_q * nk * 2.0 * (m + dv1);  // masked φ_Q φ_Kᵀ and its product with [V | 1]
    Shape dims;
    dims.batch = s.batch, dims.kv_heads = s.kv_heads, dims.n_q = s.n_q;
    const int64_t seg = causal_segment_rows(dims, static_cast<int64_t>(C));
    const double nseg = static_cast<double>((s.n_q + seg - 1) / seg);
    flops += bg * s.n_k * (nseg - 1.0) / nseg * (feat + 2.0 * m * dv1);  // prefix states of the segments
  }
  Cost c = exact_cost(s);  // bytes: every input and output once
  c.flops = flops;
  return c;
}

std::vector<float> KernelizedBackend::features(const float* x, int64_t d, float scale, int64_t b, int64_t g) const {
  if (d < 1) detail::fail("features: d=", d, "; expected d >= 1");
  if (!(scale > 0) || !std::isfinite(scale)) detail::fail("features: scale=", scale, "; expected a finite value > 0");
  const int64_t m = fm_->dim(d);
  std::vector<float> out(static_cast<size_t>(m));
  if (fm_->kind() == kern::Kind::Elu1) {
    for (int64_t i = 0; i < d; ++i) out[static_cast<size_t>(i)] = x[i] > 0 ? x[i] + 1.0f : std::exp(x[i]);
    return out;
  }
  const std::vector<float> w = fm_->projection(d, b, g);
  const double rs = std::sqrt(static_cast<double>(scale));
  double sq = 0;
  for (int64_t c = 0; c < d; ++c) sq += static_cast<double>(x[c]) * x[c];
  for (int64_t l = 0; l < m; ++l) {
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(w[static_cast<size_t>(l * d + c)]) * x[c];
    out[static_cast<size_t>(l)] = static_cast<float>(std::exp(rs * dot - 0.5 * scale * sq) / std::sqrt(static_cast<double>(m)));
  }
  return out;
}

std::vector<float> KernelizedBackend::projection_matrix(int64_t d, int64_t b, int64_t g) const {
  return fm_->projection(d, b, g);
}

}  // namespace attnkit
