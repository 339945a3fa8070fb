// ClusteredBackend: options, spec, cost, the a-posteriori error bound and the implied weights.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../core/blas_rows.hpp"
#include "../core/numerics.hpp"
#include "../core/parallel_errors.hpp"
#include "attnkit/clustered.hpp"
#include "attnkit/error.hpp"
#include "centroid_rows.hpp"
#include "heads.hpp"
#include "spectral.hpp"

namespace attnkit {

namespace {
constexpr int64_t kMaxClusters = int64_t{1} << 20;
constexpr int64_t kMaxIterations = 1000;
constexpr int64_t kMaxTopk = 65536;
constexpr int64_t kMaxSeed = int64_t{1} << 53;

// clustered's options, written once: the constructor checks them against this table, spec()
// prints them through it, clustered_info() lists it.
std::vector<ParamDef> clustered_params() {
  return {{"clusters", ParamType::Int, "100", 1, static_cast<double>(kMaxClusters), "clusters per (batch, head)"},
          {"bits", ParamType::Int, "63", 1, 63, "LSH hash bits"},
          {"iterations", ParamType::Int, "10", 0, static_cast<double>(kMaxIterations), "K-means rounds (Hamming)"},
          {"topk", ParamType::Int, "0", 0, static_cast<double>(kMaxTopk),
           "keys recomputed exactly per cluster (0 = plain clustered attention)"},
          {"seed", ParamType::Int, "0", 0, static_cast<double>(kMaxSeed), "random seed"}};
}

Params clustered_values(const ClusteredOptions& o) {
  auto kv = [](const char* k, int64_t v) { return std::pair<std::string, std::string>(k, std::to_string(v)); };
  return Params("clustered", clustered_params(),
                {kv("clusters", o.clusters), kv("bits", o.bits), kv("iterations", o.iterations), kv("topk", o.topk),
                 kv("seed", o.seed)});
}

// No causal mask: a centroid mixes queries that see different keys.
constexpr Capabilities kClusteredCaps{.causal = false, .key_lengths = true, .cross = true, .gqa = true, .weights = true};

}  // namespace

ClusteredBackend::ClusteredBackend(ClusteredOptions o) : opt_(o) { clustered_values(o); }

std::string ClusteredBackend::spec() const { return clustered_values(opt_).canonical(); }

Capabilities ClusteredBackend::capabilities() const { return kClusteredCaps; }

Cost ClusteredBackend::cost(const Shape& s) const {
  if (opt_.clusters >= s.n_q) return exact_cost(s);
  const double bh = static_cast<double>(s.batch) * s.heads;
  const double c = static_cast<double>(opt_.clusters), nq = static_cast<double>(s.n_q);
  const double nk = static_cast<double>(s.n_k), kk = static_cast<double>(std::min<int64_t>(opt_.topk, s.n_k));
  Cost r;
  // hashing GEMM + K-means (one popcount-compare per query and centre and round, counted as 1)
  // + centroid attention + (top-k) member products
  r.flops = bh * (2.0 * nq * s.d * opt_.bits + nq * c * (opt_.iterations + 1) + 2.0 * c * nk * (s.d + s.d_v) +
                  2.0 * nq * kk * (s.d + s.d_v));
  r.bytes = exact_cost(s).bytes;
  return r;
}

std::optional<ErrorBound> ClusteredBackend::error_bound(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check(p);
  const double s = p.effective_scale();
  // Norms of the visible keys and values of every (batch, kv head).
  const int64_t kv_count = d.batch * d.kv_heads;
  std::vector<double> k_spec(static_cast<size_t>(kv_count)), v_spec(k_spec.size()), k_max(k_spec.size()),
      v_max(k_spec.size());
  clustered::SingleThreadedBlas blas;
  ParallelErrors errors;  // the spectral norms allocate: bad_alloc for the caller, not an abort
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t bg = 0; bg < kv_count; ++bg)
    errors.run([&] {
      const int64_t b = bg / d.kv_heads, g = bg % d.kv_heads, n = clustered::visible_keys(p, b);
      const size_t u = static_cast<size_t>(bg);
      k_spec[u] = clustered::spectral_norm_upper(p.k.row(b, g, 0), n, p.k.stride[2], d.d);
      v_spec[u] = clustered::spectral_norm_upper(p.v.row(b, g, 0), n, p.v.stride[2], d.d_v);
      k_max[u] = clustered::max_row_norm(p.k.row(b, g, 0), n, p.k.stride[2], d.d);
      v_max[u] = clustered::max_row_norm(p.v.row(b, g, 0), n, p.v.stride[2], d.d_v);
    });
  errors.rethrow();
  std::vector<clustered::HeadClusters> heads;
  clustered::cluster_all(p, d, opt_, heads);
  ErrorBound eb;
  eb.description = opt_.topk == 0
                       ? "clustered (Vyas et al. 2020): ||o_i - exact_i||_2 <= min(s ||q_i - c||_2 ||K||_2 ||V||_2, "
                         "max_j ||v_j||_2 * prob_l1) (softmax 1-Lipschitz; spectral norms bounded above by "
                         "||(K^T K)^64||_F^(1/128)); prob_l1 <= min(2, s ||q_i - c||_2 max_j ||k_j||_2)"
                       : "improved clustered (Vyas et al. 2020, Prop. 2): prob_l1 <= min(2, s ||q_i - c||_2 "
                         "max_j ||k_j||_2) (never above the centroid row's); ||o_i - exact_i||_2 <= max_j ||v_j||_2 "
                         "* prob_l1";
  eb.out_l2.resize(static_cast<size_t>(d.batch * d.heads * d.n_q));
  eb.prob_l1.resize(eb.out_l2.size());
  for (int64_t bh = 0; bh < d.batch * d.heads; ++bh) {
    const int64_t b = bh / d.heads, h = bh % d.heads, g = h / d.group();
    const size_t u = static_cast<size_t>(b * d.kv_heads + g);
    const bool none = clustered::visible_keys(p, b) == 0;
    const clustered::HeadClusters& hc = heads[static_cast<size_t>(bh)];
    for (int64_t i = 0; i < d.n_q; ++i) {
      const float* q = p.q.row(b, h, i);
      const float* c = hc.centroid.data() + hc.label[static_cast<size_t>(i)] * d.d;
      double dist = 0;
      for (int64_t x = 0; x < d.d; ++x) dist += (static_cast<double>(q[x]) - c[x]) * (static_cast<double>(q[x]) - c[x]);
      dist = std::sqrt(dist);
      const size_t row = static_cast<size_t>(bh * d.n_q + i);
      const double l1 = none ? 0.0 : std::min(2.0, s * dist * k_max[u]);
      eb.prob_l1[row] = l1;
      // Both routes hold for plain rows (its L1 route is Prop. 2's right-hand side); top-k has only
      // the L1 route.
      const double l1_route = v_max[u] * l1, spectral_route = s * dist * k_spec[u] * v_spec[u];
      eb.out_l2[row] = none ? 0.0 : opt_.topk == 0 ? std::min(spectral_route, l1_route) : l1_route;
    }
  }
  return eb;
}

namespace {

// The implied probability rows of (b, h): every query row (rows == nullptr) or the rows listed,
// written as (count) x n_k. The clustering always sees every query of the head.
void implied_rows(const ClusteredOptions& opt, const Problem& p, const Shape& d, int64_t b, int64_t h,
                  const std::vector<int64_t>* rows, float* w) {
  const int64_t count = rows ? static_cast<int64_t>(rows->size()) : d.n_q;
  std::fill(w, w + count * d.n_k, 0.0f);
  const int64_t n = clustered::visible_keys(p, b), g = h / d.group();
  if (n == 0) return;
  clustered::SingleThreadedBlas blas;
  clustered::HeadClusters hc;
  clustered::ClusterScratch cs;
  clustered::cluster_head(p.q.row(b, h, 0), p.q.stride[2], d.n_q, d.d, opt, b, h, cs, hc);
  const float scale = p.effective_scale();
  const int64_t topk = opt.topk, kk = std::min(topk, n);
  const clustered::CentroidBlock a = clustered::CentroidBlock::for_head(p, b, g, hc.centroid.data(), hc.count, n, scale);
  std::vector<float> P(static_cast<size_t>(hc.count * n));
  std::vector<int32_t> idx(static_cast<size_t>(hc.count * topk));
  std::vector<float> sel;
  clustered::centroid_probs(a, P.data(), topk, idx.data(), sel);
  std::vector<float> x(static_cast<size_t>(kk));
  for (int64_t r = 0; r < count; ++r) {
    const int64_t i = rows ? (*rows)[static_cast<size_t>(r)] : r;
    const int64_t c = hc.label[static_cast<size_t>(i)];
    const float* pc = P.data() + c * n;
    float* row = w + r * d.n_k;
    std::copy(pc, pc + n, row);
    if (kk == 0) continue;
    // improved: the centroid's mass on its top keys, spread by the query's own scores there
    const int32_t* top = idx.data() + c * topk;
    float mass = 0;
    for (int64_t t = 0; t < kk; ++t) {
      mass += pc[top[t]];
      const float* k = p.k.row(b, g, top[t]);
      const float* q = p.q.row(b, h, i);
      float dot = 0;
      for (int64_t e = 0; e < d.d; ++e) dot += q[e] * k[e];
      x[static_cast<size_t>(t)] = scale * dot;
    }
    numerics::softmax_row(x.data(), kk, mass);
    for (int64_t t = 0; t < kk; ++t) row[top[t]] = x[static_cast<size_t>(t)];
  }
}

}  // namespace

void ClusteredBackend::weights(const Problem& caller, int64_t b, int64_t h, float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check_weights(p, b, h, w);
  implied_rows(opt_, p, d, b, h, nullptr, w);
}

void ClusteredBackend::weights_rows(const Problem& caller, int64_t b, int64_t h, const std::vector<int64_t>& rows,
                                    float* w) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check_weights_rows(p, b, h, rows, w);
  implied_rows(opt_, p, d, b, h, &rows, w);
}

BackendInfo clustered_info() {
  return {"clustered",
          "clustered attention (Vyas et al. 2020): LSH + Hamming K-means of the queries, exact attention for the "
          "centroids; topk > 0 = improved variant",
          clustered_params(),
          kClusteredCaps,
          [](const Params& pr) {
            return std::make_unique<ClusteredBackend>(ClusteredOptions{pr.get_int("clusters"), pr.get_int("bits"),
                                                                       pr.get_int("iterations"), pr.get_int("topk"),
                                                                       pr.get_int("seed")});
          }};
}

}  // namespace attnkit
