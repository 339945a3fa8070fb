#pragma once
// Internal: clustering the queries of one (batch, head): LSH codes, K-means in Hamming space,
// real-space centroids.
#include <cstdint>
#include <vector>

#include "attnkit/clustered.hpp"

namespace attnkit::clustered {

// The clusters of one head. Only non-empty clusters are kept, numbered 0..count-1.
struct HeadClusters {
  int64_t count = 0;
  std::vector<int32_t> label;    // n: cluster of each query
  std::vector<int32_t> order;    // n: the queries sorted by cluster (ascending index inside one)
  std::vector<int32_t> start;    // count + 1: cluster c is order[start[c] .. start[c+1])
  std::vector<float> centroid;   // count x d: mean of the member queries
};

// Per-thread scratch for cluster_head; reused across heads of one call.
struct ClusterScratch {
  std::vector<float> planes, proj;
  std::vector<double> offset;
  std::vector<uint64_t> codes, centres;
  std::vector<uint32_t> counts, sizes;
  std::vector<int32_t> pick;
  std::vector<double> sum;
};

// Clusters the n query rows q (row stride q_stride, d columns) with the options' clusters, bits,
// iterations and the random stream of (seed, b, h). When clusters >= n every query is its own
// cluster (centroid = the query), which makes the approximation exact.
void cluster_head(const float* q, int64_t q_stride, int64_t n, int64_t d, const ClusteredOptions& o, int64_t b,
                  int64_t h, ClusterScratch& ws, HeadClusters& out);

}  // namespace attnkit::clustered
