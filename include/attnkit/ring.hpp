#pragma once
// Ring attention over MPI (library attnkit-ring, built when meson finds MPI; option -Dmpi).
//
// Exact softmax attention over a sequence of n positions split across the P ranks of an MPI
// communicator (sequence parallelism). Each rank holds its own rows of Q, K and V; the K/V slices
// travel around the ring rank -> rank+1 while every rank attends its queries to the slice it
// holds on the exact tile engine, and merges the partial (output, log-sum-exp) pairs per row.
// Peak memory per rank: the local slices plus two K/V blocks (send and receive), O(n/P · d).
//
// Not included by attnkit/attnkit.hpp: this header needs <mpi.h>, the rest of attnkit does not.
// OpenMPI's and MPICH's deprecated C++ bindings are not used (and warn under -Wextra): skip them.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <array>
#include <cstdint>
#include <string>

#include "attnkit/problem.hpp"

namespace attnkit {

// Which global positions each rank holds.
//   Contiguous: rank r holds [r·n/P, (r+1)·n/P) (integer division: n need not divide by P).
//   Zigzag: the sequence is cut into 2P chunks (chunk c = [c·n/(2P), (c+1)·n/(2P))); rank r holds
//     chunks r and 2P−1−r, in that order, so that every rank does the same causal work.
enum class RingLayout { Contiguous, Zigzag };

// "contiguous" or "zigzag"; anything else throws attnkit::Error listing both.
RingLayout parse_ring_layout(const std::string& name);
const char* ring_layout_name(RingLayout layout);

// The global positions of one rank's rows: up to two half-open ranges, ascending. Its local row
// i is the i-th position of seg[0] followed by seg[1].
struct RingRows {
  std::array<int64_t, 2> begin{0, 0}, end{0, 0};
  int64_t count() const { return (end[0] - begin[0]) + (end[1] - begin[1]); }
  // Global position of local row i (0 <= i < count()).
  int64_t position(int64_t i) const { return i < end[0] - begin[0] ? begin[0] + i : begin[1] + (i - (end[0] - begin[0])); }
};

// Rows of `rank` out of `ranks` for a sequence of n. Throws for ranks < 1, rank outside
// [0, ranks), n < ranks (contiguous) or n < 2·ranks (zigzag): every rank holds at least one row.
RingRows ring_rows(int64_t n, int rank, int ranks, RingLayout layout);

// Per-rank timings of one ring_attention call (milliseconds of wall time on this rank).
struct RingStats {
  double total_ms = 0;    // the whole call, from the entry check to the last merge
  double compute_ms = 0;  // attending to blocks and merging (the exact engine, all threads)
  double wait_ms = 0;     // blocked in MPI_Waitall for the K/V exchange
  int steps = 0;          // P
};

// Computes this rank's rows of out = softmax(scale · Q Kᵀ + mask) V over the global sequence.
//
// Collective over `comm`: every rank calls it with the same n, layout, mask and scale.
//   local.q   [B, H,    n_r, d]     this rank's query rows (n_r = ring_rows(n, rank, P, layout).count())
//   local.k   [B, H_kv, n_r, d]     this rank's key rows
//   local.v   [B, H_kv, n_r, d_v]   this rank's value rows
//   local.out [B, H,    n_r, d_v]   written: this rank's output rows
// Views may be strided as in any Problem (last axis contiguous); H % H_kv == 0.
//   local.mask.causal        self-attention causal mask over global positions (key j visible to
//                            query i iff j <= i)
//   local.mask.key_lengths   [B] or empty, in global positions: keys >= key_lengths[b] are padding
//   local.scale              unset: 1/sqrt(d)
// A query that sees no key gets zeros, as everywhere in attnkit. block_k: keys per tile of the
// engine (0: as exact chooses it).
//
// Errors: every rank checks its own arguments, then the ranks agree (one MPI_Allreduce) before any
// exchange: if any rank's arguments are wrong (shapes, n, layout, mask, scale differing between
// ranks), every rank throws attnkit::Error — the failing rank with the reason, the others saying
// which rank failed — so that no rank is left waiting. Errors after that point (out of memory,
// MPI failures) are not agreed on; MPI's default error handler aborts the job.
//
// Threads: OpenMP inside each step (the calling thread's team, OMP_NUM_THREADS); MPI is called
// only from the calling thread, outside parallel regions, so MPI_THREAD_FUNNELED suffices. Not
// reentrant on the same communicator.
RingStats ring_attention(MPI_Comm comm, const Problem& local, int64_t n, RingLayout layout, int64_t block_k = 0);

}  // namespace attnkit
