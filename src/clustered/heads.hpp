#pragma once
// Internal: what forward, error_bound and weights share: per-head bookkeeping and clustering of
// every head of a problem.
#include <cblas.h>

#include <cstdint>
#include <vector>

#include "../core/blas_threads.hpp"
#include "attnkit/clustered.hpp"
#include "attnkit/problem.hpp"
#include "cluster.hpp"

namespace attnkit::clustered {

// Process-wide, reference-counted: safe when several threads run forward() at once.
using attnkit::SingleThreadedBlas;

// Keys [0, visible_keys) of batch b are not padding (the backend has no causal mask).
inline int64_t visible_keys(const Problem& p, int64_t b) { return p.key_end(b, 0); }

// Clusters the queries of every (batch, head), heads[b * H + h]; OpenMP over heads. Call with
// BLAS single-threaded.
void cluster_all(const Problem& p, const Shape& d, const ClusteredOptions& o, std::vector<HeadClusters>& heads);

}  // namespace attnkit::clustered
