// ClusteredBackend::forward: cluster every head, attend with the centroids (plain: the shared
// exact tile kernel; top-k: full centroid rows), then give each query its cluster's result
// (top-k: recomputed on the cluster's top keys as small dense products over the sorted members).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../core/blas_rows.hpp"
#include "../core/numerics.hpp"
#include "../core/parallel_errors.hpp"
#include "../simd/attend.hpp"
#include "attnkit/clustered.hpp"
#include "attnkit/exact.hpp"
#include "centroid_rows.hpp"
#include "heads.hpp"

namespace attnkit {

namespace clustered {

void cluster_all(const Problem& p, const Shape& d, const ClusteredOptions& o, std::vector<HeadClusters>& heads) {
  const int64_t bh_count = d.batch * d.heads;
  heads.resize(static_cast<size_t>(bh_count));
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    ClusterScratch ws;
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < bh_count; ++bh)
      errors.run([&] {
        const int64_t b = bh / d.heads, h = bh % d.heads;
        cluster_head(p.q.row(b, h, 0), p.q.stride[2], d.n_q, d.d, o, b, h, ws, heads[static_cast<size_t>(bh)]);
      });
  }
  errors.rethrow();
}

namespace {

constexpr int64_t kCentroidBlock = 64;   // centroid rows per attend() call (plain)
constexpr int64_t kTopkBlock = 32;       // centroid rows per full-row block (top-k): 32·n_k floats
constexpr int64_t kMemberBlock = 128;    // member queries per top-k product
constexpr int64_t kBroadcastBlock = 256;  // query rows per broadcast task
constexpr int64_t kKeyTile = 256;

// Flat (head, block) task list: head of task t and the block's first row.
struct Tasks {
  std::vector<int64_t> head, first;
  void add_blocks(int64_t h, int64_t rows, int64_t block) {
    for (int64_t r = 0; r < rows; r += block) {
      head.push_back(h);
      first.push_back(r);
    }
  }
  int64_t size() const { return static_cast<int64_t>(head.size()); }
};

template <class T>
T* sized(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

void forward_plain(const Problem& p, const Shape& d, const std::vector<HeadClusters>& heads) {
  const int64_t bh_count = d.batch * d.heads;
  const float scale = p.effective_scale();
  std::vector<std::vector<float>> outs(static_cast<size_t>(bh_count));
  Tasks centroid_tasks, broadcast_tasks;
  for (int64_t bh = 0; bh < bh_count; ++bh) {
    const int64_t count = heads[static_cast<size_t>(bh)].count;
    outs[static_cast<size_t>(bh)].resize(static_cast<size_t>(count * d.d_v));
    centroid_tasks.add_blocks(bh, count, kCentroidBlock);
    broadcast_tasks.add_blocks(bh, d.n_q, kBroadcastBlock);
  }
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    simd::Workspace ws;
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < centroid_tasks.size(); ++t)
      errors.run([&] {
        const int64_t bh = centroid_tasks.head[static_cast<size_t>(t)], r0 = centroid_tasks.first[static_cast<size_t>(t)];
        const int64_t b = bh / d.heads, g = (bh % d.heads) / d.group();
        const HeadClusters& hc = heads[static_cast<size_t>(bh)];
        simd::AttendArgs a;
        a.q = hc.centroid.data() + r0 * d.d;
        a.q_stride = d.d;
        a.rows = std::min(kCentroidBlock, hc.count - r0);
        a.k = p.k.row(b, g, 0);
        a.k_stride = p.k.stride[2];
        a.v = p.v.row(b, g, 0);
        a.v_stride = p.v.stride[2];
        a.d = d.d;
        a.d_v = d.d_v;
        a.scale = scale;
        a.out = outs[static_cast<size_t>(bh)].data() + r0 * d.d_v;
        a.out_stride = d.d_v;
        const simd::KeySpan span{0, clustered::visible_keys(p, b)};
        simd::attend(a, std::span<const simd::KeySpan>(&span, 1), nullptr, kKeyTile, ws);
      });
#pragma omp for schedule(static)
    for (int64_t t = 0; t < broadcast_tasks.size(); ++t) {
      const int64_t bh = broadcast_tasks.head[static_cast<size_t>(t)], i0 = broadcast_tasks.first[static_cast<size_t>(t)];
      const int64_t b = bh / d.heads, h = bh % d.heads;
      const HeadClusters& hc = heads[static_cast<size_t>(bh)];
      const float* oc = outs[static_cast<size_t>(bh)].data();
      for (int64_t i = i0; i < std::min(i0 + kBroadcastBlock, d.n_q); ++i) {
        const float* src = oc + hc.label[static_cast<size_t>(i)] * d.d_v;
        std::copy(src, src + d.d_v, p.out.row(b, h, i));
      }
    }
  }
  errors.rethrow();
}

// What the top-k variant keeps per centroid of one head.
struct TopkHead {
  std::vector<int32_t> idx;  // count x topk: top key indices, ascending
  std::vector<float> prob;   // count x topk: centroid probabilities on them
  std::vector<float> mass;   // count: their sum
  std::vector<float> rest;   // count x d_v: centroid output over the other keys
};

// Scratch of one thread for the member products.
struct MemberScratch {
  std::vector<float> kt, vt, qm, s, o;
};

// Members [m0, m1) (positions in hc.order) of cluster c: exact scores on the cluster's top keys,
// softmax over them scaled to the centroid's mass there, plus the centroid's output elsewhere.
void members_topk(const Problem& p, const Shape& d, int64_t b, int64_t h, const HeadClusters& hc, const TopkHead& th,
                  int64_t c, int64_t kk, int64_t topk, float scale, MemberScratch& ms) {
  const int64_t g = h / d.group();
  float* kt = sized(ms.kt, kk * d.d);
  float* vt = sized(ms.vt, kk * d.d_v);
  const int32_t* idx = th.idx.data() + c * topk;
  for (int64_t t = 0; t < kk; ++t) {
    std::copy(p.k.row(b, g, idx[t]), p.k.row(b, g, idx[t]) + d.d, kt + t * d.d);
    std::copy(p.v.row(b, g, idx[t]), p.v.row(b, g, idx[t]) + d.d_v, vt + t * d.d_v);
  }
  const float mass = th.mass[static_cast<size_t>(c)];
  const float* rest = th.rest.data() + c * d.d_v;
  const int64_t s0 = hc.start[static_cast<size_t>(c)], s1 = hc.start[static_cast<size_t>(c) + 1];
  for (int64_t m0 = s0; m0 < s1; m0 += kMemberBlock) {
    const int64_t rows = std::min(kMemberBlock, s1 - m0);
    float* qm = sized(ms.qm, rows * d.d);
    float* s = sized(ms.s, rows * kk);
    float* o = sized(ms.o, rows * d.d_v);
    for (int64_t r = 0; r < rows; ++r) {
      const float* q = p.q.row(b, h, hc.order[static_cast<size_t>(m0 + r)]);
      std::copy(q, q + d.d, qm + r * d.d);
      std::copy(rest, rest + d.d_v, o + r * d.d_v);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(kk),
                static_cast<int>(d.d), scale, qm, static_cast<int>(d.d), kt, static_cast<int>(d.d), 0.0f, s,
                static_cast<int>(kk));
    for (int64_t r = 0; r < rows; ++r) {
      numerics::softmax_row(s + r * kk, kk, mass);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(d.d_v),
                static_cast<int>(kk), 1.0f, s, static_cast<int>(kk), vt, static_cast<int>(d.d_v), 1.0f, o,
                static_cast<int>(d.d_v));
    for (int64_t r = 0; r < rows; ++r)
      std::copy(o + r * d.d_v, o + (r + 1) * d.d_v, p.out.row(b, h, hc.order[static_cast<size_t>(m0 + r)]));
  }
}

void forward_topk(const Problem& p, const Shape& d, const std::vector<HeadClusters>& heads, int64_t topk) {
  const int64_t bh_count = d.batch * d.heads;
  const float scale = p.effective_scale();
  std::vector<TopkHead> tops(static_cast<size_t>(bh_count));
  Tasks centroid_tasks, cluster_tasks, zero_tasks;
  for (int64_t bh = 0; bh < bh_count; ++bh) {
    const int64_t count = heads[static_cast<size_t>(bh)].count;
    if (clustered::visible_keys(p, bh / d.heads) == 0) {  // nothing visible: zeros, nothing else
      zero_tasks.add_blocks(bh, 1, 1);
      continue;
    }
    TopkHead& th = tops[static_cast<size_t>(bh)];
    th.idx.resize(static_cast<size_t>(count * topk));
    th.prob.resize(static_cast<size_t>(count * topk));
    th.mass.resize(static_cast<size_t>(count));
    th.rest.resize(static_cast<size_t>(count * d.d_v));
    centroid_tasks.add_blocks(bh, count, kTopkBlock);
    cluster_tasks.add_blocks(bh, count, 1);
  }
  ParallelErrors errors;  // an exception (bad_alloc) leaves the region for the caller, not as an abort
#pragma omp parallel
  {
    std::vector<float> P;
    std::vector<float> sel;
    MemberScratch ms;
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t t = 0; t < zero_tasks.size(); ++t) {
      const int64_t bh = zero_tasks.head[static_cast<size_t>(t)];
      for (int64_t i = 0; i < d.n_q; ++i) std::fill_n(p.out.row(bh / d.heads, bh % d.heads, i), d.d_v, 0.0f);
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < centroid_tasks.size(); ++t)
      errors.run([&] {
        const int64_t bh = centroid_tasks.head[static_cast<size_t>(t)], r0 = centroid_tasks.first[static_cast<size_t>(t)];
        const int64_t b = bh / d.heads, g = (bh % d.heads) / d.group();
        const HeadClusters& hc = heads[static_cast<size_t>(bh)];
        TopkHead& th = tops[static_cast<size_t>(bh)];
        const clustered::CentroidBlock a =
            clustered::CentroidBlock::for_head(p, b, g, hc.centroid.data() + r0 * d.d, std::min(kTopkBlock, hc.count - r0),
                                               clustered::visible_keys(p, b), scale);
        float* buf = sized(P, a.rows * a.n_vis);
        clustered::centroid_probs(a, buf, topk, th.idx.data() + r0 * topk, sel);
        clustered::split_topk(a, buf, topk, th.idx.data() + r0 * topk, th.prob.data() + r0 * topk,
                              th.mass.data() + r0, th.rest.data() + r0 * d.d_v);
      });
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < cluster_tasks.size(); ++t)
      errors.run([&] {
        const int64_t bh = cluster_tasks.head[static_cast<size_t>(t)], c = cluster_tasks.first[static_cast<size_t>(t)];
        const int64_t b = bh / d.heads, h = bh % d.heads;
        const int64_t kk = std::min(topk, clustered::visible_keys(p, b));
        members_topk(p, d, b, h, heads[static_cast<size_t>(bh)], tops[static_cast<size_t>(bh)], c, kk, topk, scale, ms);
      });
  }
  errors.rethrow();
}

}  // namespace
}  // namespace clustered

void ClusteredBackend::forward(const Problem& caller) const {
  const BlasRows blas_rows(caller);  // row strides BLAS accepts (blas_rows.hpp)
  const Problem& p = blas_rows.problem();
  const Shape d = check(p);
  if (opt_.clusters >= d.n_q) {  // every query its own cluster: that is exact attention
    ExactBackend().forward(p);
    return;
  }
  clustered::SingleThreadedBlas blas;
  std::vector<clustered::HeadClusters> heads;
  clustered::cluster_all(p, d, opt_, heads);
  if (opt_.topk == 0)
    clustered::forward_plain(p, d, heads);
  else
    clustered::forward_topk(p, d, heads, opt_.topk);
}

}  // namespace attnkit
