#pragma once
// The peers of a sweep: the exact attention a user would otherwise run (numpy's unfused
// softmax(QKᵀ)V with its OpenBLAS, PyTorch's math path), timed by reports/peers.py on the very
// inputs the backends get, in the same run, with the same thread count.
#include <string>
#include <vector>

#include "attnkit/tensor.hpp"

namespace attnkit::cli {

// Largest n_q or n_k a peer is timed at: the peers materialise the n_q × n_k score matrix of
// every head (4096² floats × heads = 256 MiB at 4 heads).
inline constexpr long kPeersMaxN = 4096;

struct PeerResult {
  std::string label;   // "numpy (unfused)", "torch 1.13.0 (math)", or "torch (math)" when absent
  std::string status;  // "ok" or "unavailable: <why>"
  double ms_best = 0, ms_median = 0;
  int64_t runs = 0;    // timed runs
  Tensor out;          // the peer's output [B,H,n_q,d_v] (status ok only)
};

// Writes q, k, v under dir, runs peers.py (found as python_script.hpp says: file peers.py,
// override $ATTNKIT_PEERS) with `threads`, `repeat` and `min_time_s` (as the sweep's), reads its results back and removes its
// files. Throws attnkit::Error (starting with "sweep peers") when the script cannot be found or
// run, or writes something unexpected.
std::vector<PeerResult> run_peers(const std::string& dir, const Tensor& q, const Tensor& k, const Tensor& v,
                                  bool causal, int threads, int repeat, double min_time_s);

}  // namespace attnkit::cli
