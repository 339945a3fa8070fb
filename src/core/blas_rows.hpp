#pragma once
// Internal: a Problem whose row strides BLAS accepts.
//
// BLAS reads an M x K row-major matrix with a leading dimension lda >= K. A valid attnkit input
// view can have a smaller row stride: 0 on an axis of one row (numpy's and the Python module's
// layout for a size-1 axis), 0 on a broadcast sequence axis (np.broadcast_to), or overlapping rows.
// Handed to BLAS as lda, OpenBLAS rejects the call ("parameter number 8 had an illegal value"),
// prints a line, skips the product and returns: silently wrong output. Backends that pass a
// problem's rows to BLAS (performer and linear, clustered, topk, lsh, nystrom, linformer) start
// from this instead of the caller's Problem (pruned multiplies only its own buffers):
//   - a view of one row gets the row stride of a dense row (the stride is never used to address);
//   - an input view of several rows with a row stride below its row length is copied densely
//     (O(B·H·n·d) extra memory, only for such views);
//   - out cannot alias rows (Problem::validate refuses it), so it only needs the first rule.
// Everything else (data pointers, other strides, mask, scale) is the caller's, unchanged.
#include "attnkit/problem.hpp"
#include "attnkit/tensor.hpp"

namespace attnkit {

class BlasRows {
 public:
  // Validates p first (throws what Problem::validate throws).
  explicit BlasRows(const Problem& p);
  const Problem& problem() const { return p_; }

 private:
  Problem p_;
  Tensor q_, k_, v_;  // dense copies, allocated only where a view needs one
};

}  // namespace attnkit
