// lsh: Reformer-style LSH attention. Per (batch, head): buckets and sorted orders of every round
// (lsh_plan), then per (round, chunk) task softmax attention of the chunk's queries over its
// key-rank range (gathered, sgemm), written with its log-sum-exp to the round's buffers; then the
// rounds are merged row by row with weights exp(lse_r - LSE).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "../core/blas_threads.hpp"
#include "attnkit/adaptive.hpp"
#include "attnkit/error.hpp"
#include "attnkit/simd.hpp"
#include "lsh_plan.hpp"
#include "../core/numerics.hpp"
#include "sets.hpp"

namespace attnkit {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct ChunkScratch {
  std::vector<float> q, k, v, s, o;
  std::vector<int64_t> keys;
};

// One chunk of one round: out rows (chunk's queries, in q_order) and their lse.
void chunk_attend(const Problem& p, const Shape& d, int64_t b, int64_t h, const adaptive::LshRound& lr, int64_t c,
                  int64_t C, float scale, float* o_round, float* lse_round, ChunkScratch& sc) {
  const int64_t g = h / d.group();
  const int64_t q0 = c * C, nq = std::min(C, d.n_q - q0);
  const int64_t lo = lr.lo[static_cast<size_t>(c)], nk = lr.hi[static_cast<size_t>(c)] - lo;
  if (nk <= 0) {
    for (int64_t r = 0; r < nq; ++r) lse_round[lr.q_order[static_cast<size_t>(q0 + r)]] = kNegInf;
    return;
  }
  sc.q.resize(static_cast<size_t>(nq * d.d));
  sc.k.resize(static_cast<size_t>(nk * d.d));
  sc.v.resize(static_cast<size_t>(nk * d.d_v));
  sc.s.resize(static_cast<size_t>(nq * nk));
  sc.o.resize(static_cast<size_t>(nq * d.d_v));
  for (int64_t r = 0; r < nq; ++r)
    std::memcpy(sc.q.data() + r * d.d, p.q.row(b, h, lr.q_order[static_cast<size_t>(q0 + r)]), sizeof(float) * d.d);
  for (int64_t x = 0; x < nk; ++x) {
    const int64_t j = lr.k_order[static_cast<size_t>(lo + x)];
    std::memcpy(sc.k.data() + x * d.d, p.k.row(b, g, j), sizeof(float) * d.d);
    std::memcpy(sc.v.data() + x * d.d_v, p.v.row(b, g, j), sizeof(float) * d.d_v);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(nk),
              static_cast<int>(d.d), scale, sc.q.data(), static_cast<int>(d.d), sc.k.data(), static_cast<int>(d.d), 0.0f,
              sc.s.data(), static_cast<int>(nk));
  std::vector<float> lse(static_cast<size_t>(nq)), inv(static_cast<size_t>(nq));
  for (int64_t r = 0; r < nq; ++r) {
    const int64_t i = lr.q_order[static_cast<size_t>(q0 + r)];
    const int64_t ke = p.key_end(b, i);
    float* s = sc.s.data() + r * nk;
    float m = kNegInf;
    bool nan = false;
    for (int64_t x = 0; x < nk; ++x) {
      if (lr.k_order[static_cast<size_t>(lo + x)] >= ke) {
        s[x] = kNegInf;  // causal (key after the query's position) or padding
        continue;
      }
      nan |= std::isnan(s[x]);
      if (s[x] > m) m = s[x];
    }
    if (m == kNegInf && !nan) {  // the row sees none of the chunk's keys
      std::fill(s, s + nk, 0.0f);
      lse[static_cast<size_t>(r)] = kNegInf;
      inv[static_cast<size_t>(r)] = 0;
      continue;
    }
    for (int64_t x = 0; x < nk; ++x) s[x] -= m;  // masked keys stay -inf: exp gives 0
    simd_exp(s, s, nk);                          // the softmax kernels' vectorised exp
    float l = 0;
    for (int64_t x = 0; x < nk; ++x) l += s[x];
    lse[static_cast<size_t>(r)] = nan ? std::numeric_limits<float>::quiet_NaN() : m + std::log(l);
    inv[static_cast<size_t>(r)] = 1.0f / l;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(nq), static_cast<int>(d.d_v),
              static_cast<int>(nk), 1.0f, sc.s.data(), static_cast<int>(nk), sc.v.data(), static_cast<int>(d.d_v), 0.0f,
              sc.o.data(), static_cast<int>(d.d_v));
  for (int64_t r = 0; r < nq; ++r) {
    const int64_t i = lr.q_order[static_cast<size_t>(q0 + r)];
    lse_round[i] = lse[static_cast<size_t>(r)];
    float* o = o_round + i * d.d_v;
    for (int64_t x = 0; x < d.d_v; ++x) o[x] = sc.o[static_cast<size_t>(r * d.d_v + x)] * inv[static_cast<size_t>(r)];
  }
}

// Mixture weights of the rounds for one row: w[r] = exp(lse_r - LSE); returns false when the row
// sees no key in any round (w all zero) and sets nan when a round's lse is NaN.
bool round_weights(const float* lse, int64_t stride, int64_t R, double* w, bool& nan) {
  double m = -std::numeric_limits<double>::infinity();
  nan = false;
  for (int64_t r = 0; r < R; ++r) {
    const double x = lse[r * stride];
    nan |= std::isnan(x);
    if (x > m) m = x;
  }
  if (nan || m == -std::numeric_limits<double>::infinity()) return false;
  double sum = 0;
  for (int64_t r = 0; r < R; ++r) sum += (w[r] = std::exp(static_cast<double>(lse[r * stride]) - m));
  for (int64_t r = 0; r < R; ++r) w[r] /= sum;
  return true;
}

constexpr Capabilities kCaps{.causal = true, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

// The one parameter table: constructor checks, spec() and lsh_info() all use it. rounds <= 64:
// the merge keeps the rounds' weights in a fixed array.
const std::vector<ParamDef>& lsh_params() {
  static const std::vector<ParamDef> defs = {
      {"buckets", ParamType::Int, "64", 2, 4096, "hash buckets per round (even; rotation d x buckets/2)"},
      {"rounds", ParamType::Int, "4", 1, 64, "hash rounds, merged by their log-sum-exp"},
      {"chunk", ParamType::Int, "64", 1, 1048576, "queries per chunk; each chunk sees 2*chunk sorted keys"},
      {"seed", ParamType::Int, "0", 0, 9007199254740992.0, "seed of the rotations"}};
  return defs;
}

Params lsh_resolve(const LshOptions& o) {
  return Params("lsh", lsh_params(),
                {{"buckets", std::to_string(o.buckets)},
                 {"rounds", std::to_string(o.rounds)},
                 {"chunk", std::to_string(o.chunk)},
                 {"seed", std::to_string(o.seed)}});
}

}  // namespace

LshBackend::LshBackend(LshOptions o) : opt_(o) {
  lsh_resolve(o);
  if (o.buckets % 2 != 0) detail::fail("lsh: buckets=", o.buckets, "; expected an even number ([x R, -x R] has 2 entries per column)");
}

std::string LshBackend::spec() const { return lsh_resolve(opt_).canonical(); }

Capabilities LshBackend::capabilities() const { return kCaps; }

void LshBackend::forward(const Problem& p) const {
  const Shape d = check(p);
  const float scale = p.effective_scale();
  const int64_t R = opt_.rounds, C = opt_.chunk, chunks = (d.n_q + C - 1) / C;
  simd_path();  // a bad ATTNKIT_SIMD throws here, not inside the parallel region
  SingleThreadedBlas blas;
  const std::vector<std::vector<float>> rot = adaptive::lsh_rotations(opt_, d.kv_heads, d.d);
  std::vector<adaptive::LshRound> rounds;
  std::vector<float> o_rounds(static_cast<size_t>(R * d.n_q * d.d_v)), lse(static_cast<size_t>(R * d.n_q));
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t h = 0; h < d.heads; ++h) {
      adaptive::lsh_plan(p, d, opt_, rot, b, h, rounds);
#pragma omp parallel
      {
        ChunkScratch sc;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < R * chunks; ++t) {
          const int64_t r = t / chunks, c = t % chunks;
          chunk_attend(p, d, b, h, rounds[static_cast<size_t>(r)], c, C, scale, o_rounds.data() + r * d.n_q * d.d_v,
                       lse.data() + r * d.n_q, sc);
        }
#pragma omp for schedule(static)
        for (int64_t i = 0; i < d.n_q; ++i) {
          double w[64];
          bool nan = false;
          float* o = p.out.row(b, h, i);
          if (!round_weights(lse.data() + i, d.n_q, R, w, nan)) {
            std::fill(o, o + d.d_v, nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
            continue;
          }
          for (int64_t x = 0; x < d.d_v; ++x) {
            double acc = 0;
            for (int64_t r = 0; r < R; ++r)
              if (w[r] > 0) acc += w[r] * o_rounds[static_cast<size_t>((r * d.n_q + i) * d.d_v + x)];
            o[x] = static_cast<float>(acc);
          }
        }
      }
    }
}

Cost LshBackend::cost(const Shape& s) const {
  Cost c = exact_cost(s);
  const double R = static_cast<double>(opt_.rounds);
  const double keys = static_cast<double>(std::min<int64_t>(2 * opt_.chunk, s.n_k));
  c.flops = static_cast<double>(s.batch * s.heads) *
            (R * (s.n_q + s.n_k) * s.d * static_cast<double>(opt_.buckets) +
             R * static_cast<double>(s.n_q) * keys * 2.0 * (s.d + s.d_v));
  return c;
}

void LshBackend::weights(const Problem& p, int64_t b, int64_t h, float* w) const {
  const Shape d = check_weights(p, b, h, w);
  const int64_t R = opt_.rounds, C = opt_.chunk, chunks = (d.n_q + C - 1) / C;
  std::vector<adaptive::LshRound> rounds;
  {
    SingleThreadedBlas blas;
    adaptive::lsh_plan(p, d, opt_, adaptive::lsh_rotations(opt_, d.kv_heads, d.d), b, h, rounds);
  }
  // Per round and row: the key range's fp64 softmax (as lse and the row of keys).
  std::vector<double> s, lse(static_cast<size_t>(R * d.n_q), -std::numeric_limits<double>::infinity());
  std::vector<int64_t> chunk_of(static_cast<size_t>(R * d.n_q));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t x = c * C; x < std::min(d.n_q, c * C + C); ++x)
        chunk_of[static_cast<size_t>(r * d.n_q + rounds[static_cast<size_t>(r)].q_order[static_cast<size_t>(x)])] = c;
  std::fill(w, w + d.n_q * d.n_k, 0.0f);
  std::vector<double> row(static_cast<size_t>(d.n_k));
  for (int64_t i = 0; i < d.n_q; ++i) {
    const int64_t ke = p.key_end(b, i);
    numerics::score_row_fp64(p, d, b, h, i, ke, s);
    std::vector<double> l(static_cast<size_t>(R), -std::numeric_limits<double>::infinity());
    bool nan = false;
    for (int64_t r = 0; r < R; ++r) {
      const adaptive::LshRound& lr = rounds[static_cast<size_t>(r)];
      const int64_t c = chunk_of[static_cast<size_t>(r * d.n_q + i)];
      double m = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t x = lr.lo[static_cast<size_t>(c)]; x < lr.hi[static_cast<size_t>(c)]; ++x) {
        const int64_t j = lr.k_order[static_cast<size_t>(x)];
        if (j < ke) {
          nan |= std::isnan(s[static_cast<size_t>(j)]);
          m = std::max(m, s[static_cast<size_t>(j)]);
        }
      }
      if (m == -std::numeric_limits<double>::infinity()) continue;
      for (int64_t x = lr.lo[static_cast<size_t>(c)]; x < lr.hi[static_cast<size_t>(c)]; ++x) {
        const int64_t j = lr.k_order[static_cast<size_t>(x)];
        if (j < ke) sum += std::exp(s[static_cast<size_t>(j)] - m);
      }
      l[static_cast<size_t>(r)] = m + std::log(sum);
    }
    float* wr = w + i * d.n_k;
    if (nan) {
      for (int64_t j = 0; j < ke; ++j) wr[j] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    double M = -std::numeric_limits<double>::infinity(), tot = 0;
    for (double x : l) M = std::max(M, x);
    if (M == -std::numeric_limits<double>::infinity()) continue;
    for (double x : l) tot += std::exp(x - M);
    const double LSE = M + std::log(tot);
    std::fill(row.begin(), row.end(), 0.0);
    for (int64_t r = 0; r < R; ++r) {
      if (l[static_cast<size_t>(r)] == -std::numeric_limits<double>::infinity()) continue;
      const adaptive::LshRound& lr = rounds[static_cast<size_t>(r)];
      const int64_t c = chunk_of[static_cast<size_t>(r * d.n_q + i)];
      // weight of round r times its softmax row: exp(lse_r - LSE) · exp(s_j - lse_r)
      for (int64_t x = lr.lo[static_cast<size_t>(c)]; x < lr.hi[static_cast<size_t>(c)]; ++x) {
        const int64_t j = lr.k_order[static_cast<size_t>(x)];
        if (j < ke) row[static_cast<size_t>(j)] += std::exp(s[static_cast<size_t>(j)] - LSE);
      }
    }
    for (int64_t j = 0; j < ke; ++j) wr[j] = static_cast<float>(row[static_cast<size_t>(j)]);
  }
}

BackendInfo lsh_info() {
  return {"lsh",
          "Reformer-style LSH attention: per round, queries and keys sorted by angular-LSH bucket, each query chunk sees 2*chunk keys",
          lsh_params(),
          kCaps,
          [](const Params& pr) {
            return std::make_unique<LshBackend>(
                LshOptions{pr.get_int("buckets"), pr.get_int("rounds"), pr.get_int("chunk"), pr.get_int("seed")});
          }};
}

}  // namespace attnkit
