// Clustering one head's queries (Vyas et al. 2020 §3.2): B-bit LSH codes from random
// hyperplanes, K-means on the codes with Hamming distance, then the mean of each cluster's
// member queries as its centroid.
#include "cluster.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../simd/hamming.hpp"
#include "rng.hpp"

namespace attnkit::clustered {

// The Hamming kernels run on the process's SIMD path (src/simd, ATTNKIT_SIMD).
using simd::assign_nearest;
using simd::count_bits;
using simd::make_codes;

namespace {

template <class T>
T* sized(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// codes[i] bit b = [w_b · q_i > t_b]. The planes w_b are N(0, I); each offset t_b is a seeded
// random point of the projections' spread (mean + 0.5·sd·z, z ~ N(0,1)), so every plane cuts
// through the queries instead of missing them when they do not surround the origin (trained
// queries rarely do). Projections are n x 64 (planes >= bits are zero, their threshold +inf) so
// the loops have a fixed width. Codes are padded to a multiple of 8 with zeros for the vector
// kernel.
void hash_queries(const float* q, int64_t q_stride, int64_t n, int64_t d, int bits, Rng& rng, ClusterScratch& ws) {
  float* planes = sized(ws.planes, 64 * d);
  for (int64_t i = 0; i < 64 * d; ++i) planes[i] = i < bits * d ? static_cast<float>(rng.normal()) : 0.0f;
  float* proj = sized(ws.proj, n * 64);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), 64, static_cast<int>(d), 1.0f, q,
              static_cast<int>(q_stride), planes, static_cast<int>(d), 0.0f, proj, 64);
  double* sum = sized(ws.offset, 2 * 64);
  double* sq = sum + 64;
  std::fill(sum, sum + 2 * 64, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int b = 0; b < 64; ++b) {
      const double x = proj[i * 64 + b];
      sum[b] += x;
      sq[b] += x * x;
    }
  float thr[64];
  for (int b = 0; b < 64; ++b) {
    if (b >= bits) {
      thr[b] = std::numeric_limits<float>::infinity();
      continue;
    }
    const double mean = sum[b] / static_cast<double>(n);
    const double var = std::max(0.0, sq[b] / static_cast<double>(n) - mean * mean);
    thr[b] = static_cast<float>(mean + 0.5 * std::sqrt(var) * rng.normal());
  }
  const int64_t padded = (n + 7) / 8 * 8;
  uint64_t* codes = sized(ws.codes, padded);
  make_codes(proj, n, thr, codes);
  std::fill(codes + n, codes + padded, uint64_t{0});
}

// K-means on ws.codes[0..n) into `label`; returns the number of centres used (labels < it).
int64_t kmeans(int64_t n, const ClusteredOptions& o, Rng& rng, ClusterScratch& ws, int32_t* label) {
  const uint64_t* codes = ws.codes.data();
  const int64_t count = std::min(o.clusters, n);
  uint64_t* centres = sized(ws.centres, count);
  // Seeds: the codes of `count` distinct queries chosen by a partial Fisher-Yates shuffle.
  int32_t* pick = sized(ws.pick, n);
  for (int64_t i = 0; i < n; ++i) pick[i] = static_cast<int32_t>(i);
  for (int64_t c = 0; c < count; ++c) {
    std::swap(pick[c], pick[c + static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - c)))]);
    centres[c] = codes[pick[c]];
  }
  std::fill(label, label + n, 0);
  assign_nearest(codes, n, centres, count, label);
  uint32_t* counts = sized(ws.counts, count * 64);
  uint32_t* sizes = sized(ws.sizes, count);
  for (int64_t it = 0; it < o.iterations; ++it) {
    std::fill(counts, counts + count * 64, 0u);
    std::fill(sizes, sizes + count, 0u);
    count_bits(codes, n, label, static_cast<int>(o.bits), counts, sizes);
    for (int64_t c = 0; c < count; ++c) {
      if (sizes[c] == 0) {  // an empty cluster restarts from a seeded random query's code
        centres[c] = codes[rng.below(static_cast<uint64_t>(n))];
        continue;
      }
      uint64_t code = 0;
      for (int b = 0; b < o.bits; ++b) {
        const uint32_t twice = 2 * counts[c * 64 + b];
        const uint64_t bit = twice > sizes[c] ? 1 : twice < sizes[c] ? 0 : (centres[c] >> b) & 1u;  // tie: keep
        code |= bit << b;
      }
      centres[c] = code;
    }
    if (assign_nearest(codes, n, centres, count, label) == 0) break;
  }
  return count;
}

}  // namespace

void cluster_head(const float* q, int64_t q_stride, int64_t n, int64_t d, const ClusteredOptions& o, int64_t b,
                  int64_t h, ClusterScratch& ws, HeadClusters& out) {
  out.label.resize(static_cast<size_t>(n));
  out.order.resize(static_cast<size_t>(n));
  int32_t* label = out.label.data();
  int64_t count = n;
  if (o.clusters >= n) {
    for (int64_t i = 0; i < n; ++i) label[i] = static_cast<int32_t>(i);
  } else {
    Rng rng(static_cast<uint64_t>(o.seed), static_cast<uint64_t>(b), static_cast<uint64_t>(h));
    hash_queries(q, q_stride, n, d, static_cast<int>(o.bits), rng, ws);
    count = kmeans(n, o, rng, ws, label);
  }
  // Drop empty clusters (renumber in index order), then counting-sort the queries by cluster.
  std::vector<int32_t>& start = out.start;
  start.assign(static_cast<size_t>(count + 1), 0);
  for (int64_t i = 0; i < n; ++i) ++start[static_cast<size_t>(label[i]) + 1];
  std::vector<int32_t> rename(static_cast<size_t>(count));
  int32_t used = 0;
  for (int64_t c = 0; c < count; ++c) rename[static_cast<size_t>(c)] = start[static_cast<size_t>(c) + 1] ? used++ : -1;
  for (int64_t i = 0; i < n; ++i) label[i] = rename[static_cast<size_t>(label[i])];
  out.count = used;
  start.assign(static_cast<size_t>(used + 1), 0);
  for (int64_t i = 0; i < n; ++i) ++start[static_cast<size_t>(label[i]) + 1];
  for (int64_t c = 0; c < used; ++c) start[static_cast<size_t>(c) + 1] += start[static_cast<size_t>(c)];
  std::vector<int32_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n; ++i) out.order[static_cast<size_t>(fill[static_cast<size_t>(label[i])]++)] = static_cast<int32_t>(i);
  // Centroids: member means, accumulated in double in member order (deterministic).
  out.centroid.resize(static_cast<size_t>(used * d));
  double* sum = sized(ws.sum, d);
  for (int64_t c = 0; c < used; ++c) {
    std::fill(sum, sum + d, 0.0);
    const int64_t s = start[static_cast<size_t>(c)], e = start[static_cast<size_t>(c) + 1];
    for (int64_t m = s; m < e; ++m) {
      const float* row = q + out.order[static_cast<size_t>(m)] * q_stride;
      for (int64_t x = 0; x < d; ++x) sum[x] += row[x];
    }
    float* cen = out.centroid.data() + c * d;
    const double inv = 1.0 / static_cast<double>(e - s);
    for (int64_t x = 0; x < d; ++x) cen[x] = static_cast<float>(sum[x] * inv);
  }
}

}  // namespace attnkit::clustered
