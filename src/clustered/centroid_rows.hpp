#pragma once
// Internal: full probability rows of a block of centroids, and what the improved (top-k)
// variant keeps of them.
#include <cstdint>
#include <vector>

#include "attnkit/problem.hpp"

namespace attnkit::clustered {

// A block of centroid rows against the visible keys [0, n_vis) of one kv head.
struct CentroidBlock {
  const float* c = nullptr; int64_t rows = 0, d = 0;       // rows x d, dense
  const float* k = nullptr; int64_t k_stride = 0;           // key 0 of the kv head
  const float* v = nullptr; int64_t v_stride = 0; int64_t d_v = 0;
  int64_t n_vis = 0;                                        // >= 1
  float scale = 1;

  // `rows` centroids (dense, d wide) of batch b attending to kv head g of p's first n_vis keys.
  static CentroidBlock for_head(const Problem& p, int64_t b, int64_t g, const float* c, int64_t rows,
                                int64_t n_vis, float scale) {
    CentroidBlock a;
    a.c = c;
    a.rows = rows;
    a.d = p.q.shape[3];
    a.k = p.k.row(b, g, 0);
    a.k_stride = p.k.stride[2];
    a.v = p.v.row(b, g, 0);
    a.v_stride = p.v.stride[2];
    a.d_v = p.v.shape[3];
    a.n_vis = n_vis;
    a.scale = scale;
    return a;
  }
};

// P (rows x n_vis, dense, caller's) = softmax(scale · c kᵀ) row by row. When topk > 0 also picks,
// per row r, the min(topk, n_vis) keys with the largest scores (ties: smaller key index), written
// ascending to idx[r * topk ...]; `sel` is scratch of n_vis floats. NaN scores count as -inf for
// the selection and propagate into P as IEEE says.
void centroid_probs(const CentroidBlock& a, float* P, int64_t topk, int32_t* idx, std::vector<float>& sel);

// For the improved variant, given P and idx from centroid_probs: prob[r*topk + t] = P at the t-th
// top key, mass[r] = their sum, and rest[r * d_v ...] = Σ over the other keys of P·v (the
// centroid's output without its top keys; computed directly, not by a subtraction). Zeroes the
// top entries of P.
void split_topk(const CentroidBlock& a, float* P, int64_t topk, const int32_t* idx, float* prob, float* mass,
                float* rest);

}  // namespace attnkit::clustered
